// Ctrl-C in long kernel calls (see run_interruptible in bindings.h).
//
// While an interruptible call runs, SIGINT goes first to on_sigint, which tells the pool to
// stop handing out tasks and then calls the handler it displaced (Python's, which marks the
// signal for the interpreter). Python re-installs its own C handler whenever a script calls
// signal.signal, so ours is installed for the call only, not once at import.
#include <pthread.h>
#include <signal.h>

#include "bindings.h"
#include "fastdl/threadpool.h"

namespace fastdl_bindings {
namespace {

struct sigaction g_displaced;   // the handler on_sigint replaced (Python's)
unsigned long g_main_ident = 0;  // Python's main thread: the only one signals reach

void on_sigint(int sig, siginfo_t* info, void* context) {
  fdl::interrupt();
  if (g_displaced.sa_flags & SA_SIGINFO) {
    g_displaced.sa_sigaction(sig, info, context);
  } else if (g_displaced.sa_handler != SIG_DFL && g_displaced.sa_handler != SIG_IGN) {
    g_displaced.sa_handler(sig);
  }
}

// The child of a fork() has one thread, the one that forked; Python makes it the main one.
void after_fork_in_child() { g_main_ident = PyThread_get_thread_ident(); }

// Whether SIGINT, as Python handles it now, raises KeyboardInterrupt. A handler of the
// user's (or fit's, which defers Ctrl-C to the end of a step) expects the call to finish.
bool sigint_raises() {
  static PyObject* getsignal = nullptr;
  static PyObject* default_handler = nullptr;
  static PyObject* sigint = nullptr;
  if (!getsignal) {
    // _signal's getsignal: signal.getsignal wraps it in a Python-level enum conversion
    // that costs ~2 us per call (0.03 us here), paid on every watched kernel call.
    py::module_ signal = py::module_::import("_signal");
    getsignal = py::object(signal.attr("getsignal")).release().ptr();
    default_handler = py::object(signal.attr("default_int_handler")).release().ptr();
    sigint = py::int_(SIGINT).release().ptr();
  }
  PyObject* handler = PyObject_CallOneArg(getsignal, sigint);
  if (!handler) throw py::error_already_set();
  const bool raises = handler == default_handler;
  Py_DECREF(handler);
  return raises;
}

}  // namespace

SigintWatch::SigintWatch() {
  if (PyThread_get_thread_ident() != g_main_ident || !sigint_raises()) return;
  struct sigaction ours = {};
  ours.sa_sigaction = on_sigint;
  ours.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&ours.sa_mask);
  installed_ = sigaction(SIGINT, &ours, &g_displaced) == 0;
}

SigintWatch::~SigintWatch() { restore(); }

void SigintWatch::restore() {
  if (installed_) sigaction(SIGINT, &g_displaced, nullptr);
  installed_ = false;
}

void SigintWatch::finish(bool interrupted) {
  restore();
  if (!interrupted) return;
  // Python's handler saw the signal too: running it raises KeyboardInterrupt.
  if (PyErr_CheckSignals() == 0) PyErr_SetNone(PyExc_KeyboardInterrupt);
  throw py::error_already_set();
}

void init_interrupts() {
  g_main_ident = py::module_::import("threading").attr("main_thread")().attr("ident")
                     .cast<unsigned long>();
  pthread_atfork(nullptr, nullptr, after_fork_in_child);
}

}  // namespace fastdl_bindings
