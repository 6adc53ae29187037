// Shared by the pybind11 binding files of fastdl._C. Arguments were validated by fastdl/
// (fastdl/_validate.py and the ops); this layer converts, allocates outputs (or takes the
// caller's `out`), releases the GIL and calls one kernel entry point.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fastdl/common.h"
#include "fastdl/gemm.h"
#include "fastdl/isa.h"
#include "fastdl/threadpool.h"
#include "fastdl/variants.h"

namespace fastdl_bindings {

namespace py = pybind11;
using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// 'relu' -> Activation::kRelu; None -> kNone (activation.cc).
fdl::Activation parse_activation(const py::object& name);

// The variant named `name` in `table` (None: `best`); ValueError if unknown or not
// runnable on this CPU. `family` names the table in the message ("GEMM", "pooling", ...).
template <class Variant>
const Variant& pick_variant(const std::vector<Variant>& table, const Variant& best,
                            const py::object& name, const char* family) {
  if (name.is_none()) return best;
  const std::string s = py::str(name);
  const Variant* v = fdl::find_variant(table, s.c_str());
  if (!v) throw py::value_error(std::string("variant: no ") + family + " variant named '" + s + "'");
  if (!fdl::cpu_supports(v->isa))
    throw py::value_error("variant: this CPU cannot run '" + s + "'");
  return *v;
}

// {name: {"isa": ..., + describe(variant, dict)} or None where this CPU cannot run it},
// best first: one op's answer to fastdl._C.variants(op).
template <class Variant, class Describe>
py::dict variants_dict(const std::vector<Variant>& table, Describe describe) {
  py::dict out;
  for (const auto& v : table) {
    if (!fdl::cpu_supports(v.isa)) {
      out[v.name] = py::none();
      continue;
    }
    py::dict d;
    d["isa"] = fdl::isa_name(v.isa);
    describe(v, d);
    out[v.name] = d;
  }
  return out;
}

template <class Variant>
py::dict variants_dict(const std::vector<Variant>& table) {
  return variants_dict(table, [](const Variant&, py::dict&) {});
}

// Makes fastdl._C.variants(op) answer for `op` (called by each binding file at import).
void register_variants(const std::string& op, std::function<py::dict()> describe);

inline const fdl::GemmUkernel& pick_gemm(const py::object& name) {
  return pick_variant(fdl::gemm_variants(), fdl::gemm_best(), name, "GEMM");
}

// The caller's `out` (fastdl/ checked its dtype, layout and shape) or a new array of
// `shape`. A size mismatch (a direct call of fastdl._C that skipped the checks) raises
// rather than writing out of bounds.
FloatArray output_array(const py::object& out, const std::vector<py::ssize_t>& shape);

inline std::vector<py::ssize_t> shape_of(const py::array& a) {
  return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

// `a` as it is, for a call bound to its memory (BoundCall): a float32 C-contiguous ndarray
// (a cast would read a copy); ValueError naming `name` otherwise.
FloatArray exact_array(const py::object& a, const char* name);
// The caller's `out` for a bound call (output_array's checks; None is refused: a bound
// call's output is an array its caller keeps).
FloatArray bound_output(const py::object& out, const std::vector<py::ssize_t>& shape);

// A kernel call with its operands fixed, run later without Python and without the GIL
// (CallSequence): once a model's buffers are placed, its trace replays its steps as these.
// `keep` holds what the call reads and writes (the plan, the arrays) alive; `work` is its
// multiply-adds, roughly (run_interruptible).
// A call may read one of the arrays CallSequence::run is given (a model's input, new
// memory on every call) through an InputSlot, which run() fills before the calls.
struct InputSlot {
  std::size_t index;                 // which of run()'s arrays
  std::vector<py::ssize_t> shape;    // the shape it must have (float32, any strides)
  const float* data = nullptr;       // set by run()
  std::vector<std::ptrdiff_t> strides;  // in floats
};

class BoundCall {
 public:
  BoundCall(std::function<void()> run, double work, py::object keep,
            std::shared_ptr<InputSlot> input = nullptr)
      : run_(std::move(run)), work_(work), keep_(std::move(keep)), input_(std::move(input)) {}
  void run() const { run_(); }
  double work() const { return work_; }
  const std::shared_ptr<InputSlot>& input() const { return input_; }

 private:
  std::function<void()> run_;
  double work_;
  py::object keep_;
  std::shared_ptr<InputSlot> input_;
};
using BoundCallPtr = std::shared_ptr<BoundCall>;

// A plan class's Python method bind(x, out): Plan::bind(self, x, out), `self` (the Python
// object) kept alive by the call.
template <class Plan>
auto bind_method() {
  return [](const py::object& self, const py::object& x, const py::object& out) {
    return self.cast<const Plan&>().bind(self, x, out);
  };
}

// A float32 view of an optional argument (None -> empty), kept alive by the caller.
inline const float* optional_data(const py::object& value, FloatArray& keep) {
  if (value.is_none()) return nullptr;
  keep = value.cast<FloatArray>();
  return keep.data();
}

// plan.set_weights(w, b or None) without the GIL (fastdl/ checked the shapes).
template <class Plan>
void set_plan_weights(Plan& plan, const FloatArray& w, const py::object& b) {
  FloatArray bias;
  const float* bias_data = optional_data(b, bias);
  py::gil_scoped_release release;
  plan.set_weights(w.data(), bias_data);
}

// Ctrl-C in a long call. Holds SIGINT for the call when it is made on Python's main thread
// and Python's handler would raise KeyboardInterrupt (interrupt.cc); construct and finish
// with the GIL held.
class SigintWatch {
 public:
  SigintWatch();
  ~SigintWatch();
  SigintWatch(const SigintWatch&) = delete;
  SigintWatch& operator=(const SigintWatch&) = delete;
  bool active() const { return installed_; }
  // Puts Python's handler back; raises KeyboardInterrupt when the call was interrupted.
  void finish(bool interrupted);

 private:
  void restore();
  bool installed_ = false;
};

// Runs `kernel` without the GIL. Made on the main thread while SIGINT raises
// KeyboardInterrupt, Ctrl-C stops it after the tasks running at that moment and raises
// KeyboardInterrupt here. Only for kernels that write nothing but their outputs (which,
// a caller's `out` included, are then unspecified): a stopped in-place update would leave
// half-updated state. Elsewhere (other threads, a handler of the user's, fit deferring
// Ctrl-C to the end of a step) the call runs to its end.
// `work` is the call's multiply-adds, roughly: a call below kWatchedWork ends within
// milliseconds anyway and skips the watch (two system calls, 1-3 us).
constexpr double kWatchedWork = 1e7;

template <class Kernel>
void run_interruptible(double work, Kernel&& kernel) {
  if (work < kWatchedWork) {
    py::gil_scoped_release release;
    kernel();
    return;
  }
  SigintWatch watch;
  bool interrupted = false;
  {
    py::gil_scoped_release release;
    fdl::InterruptibleScope scope(watch.active());
    kernel();
    interrupted = scope.interrupted();
  }
  watch.finish(interrupted);
}

// At import: records Python's main thread (the one signals reach).
void init_interrupts();

}  // namespace fastdl_bindings

void bind_variants(pybind11::module_& m);
void bind_bound_calls(pybind11::module_& m);
void bind_gemm(pybind11::module_& m);
void bind_conv(pybind11::module_& m);
void bind_pooling(pybind11::module_& m);
void bind_activation(pybind11::module_& m);
void bind_batchnorm(pybind11::module_& m);
void bind_embedding(pybind11::module_& m);
void bind_rnn(pybind11::module_& m);
void bind_optimizer(pybind11::module_& m);
void bind_kernel_api(pybind11::module_& m);
