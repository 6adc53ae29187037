// Persistent thread pool. Workers sleep on a condition variable between jobs after a short
// spin (successive layers reuse them without a wake-up cost); the caller spins briefly for
// the job's end before it sleeps. A job is one parallel_for:
// an atomic counter hands out task indices to the workers and the caller alike. Once every
// task is handed out the caller closes the job and waits only for the workers inside it: a
// worker the OS has not scheduled yet (the other core busy) leaves the caller to run the
// tasks alone instead of holding it until the worker gets a core.
#include <sched.h>
#include <unistd.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "fastdl/threadpool.h"

namespace fdl {
namespace {

thread_local bool t_inside_task = false;
// This thread works for an interruptible call: jobs it starts may stop early. The caller's
// InterruptibleScope sets it; a worker holds its job's value while it runs the job's tasks.
thread_local bool t_interruptible = false;
std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "interrupt() runs in a signal handler");

// Whether task handout stops now, for a job started with `interruptible`.
inline bool stop_now(bool interruptible) {
  return interruptible && g_interrupted.load(std::memory_order_relaxed);
}

int available_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? static_cast<int>(hc) : 1;
}

int initial_threads() {
  if (const char* env = std::getenv("FASTDL_NUM_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1 && v <= 1024) return static_cast<int>(v);
  }
  return available_cpus();
}

class Pool {
 public:
  explicit Pool(int workers, const std::vector<int>& cpus) : cpus_(cpus) {
    try {
      for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
    } catch (...) {  // the OS refused a thread: the started ones must not outlive *this
      stop_and_join();
      throw;
    }
  }
  ~Pool() { stop_and_join(); }

  // Runs the job; the caller holds busy_ so only one job is in flight. A task that throws
  // (std::bad_alloc) ends the handout; once every worker has left the job (fn lives on the
  // caller's stack), the first exception is rethrown here.
  void run(std::size_t n, const std::function<void(std::size_t)>& fn, bool interruptible) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      fn_ = &fn;
      n_ = n;
      interruptible_ = interruptible;
      failed_.store(false);
      error_ = nullptr;
      next_.store(0);
      open_.store(true);  // after the job's fields: a worker that sees it open sees them
      generation_.fetch_add(1);
    }
    cv_work_.notify_all();
    drain();
    // Every task is handed out (or the handout stopped). Close the job: a worker that joins
    // from now on sees it closed and touches nothing (seq_cst: either the worker's
    // increment of inside_ comes first and the load below sees it, or the worker sees
    // open_ false). Then wait for those inside: spin briefly, as small jobs (a batch-1
    // layer) end within microseconds, well before a futex sleep and wake-up would.
    open_.store(false);
    const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(100);
    while (inside_.load() != 0 && std::chrono::steady_clock::now() < spin_until) {
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_done_.wait(lock, [this] { return inside_.load() == 0; });
    fn_ = nullptr;
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

  std::mutex busy;

 private:
  void stop_and_join() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      generation_.fetch_add(1);
    }
    cv_work_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void drain() {
    const bool was_interruptible = t_interruptible;
    t_interruptible = interruptible_;
    t_inside_task = true;
    for (;;) {
      if (stop_now(interruptible_) || failed_.load(std::memory_order_relaxed)) break;
      std::size_t i = next_.fetch_add(1);
      if (i >= n_) break;
      try {
        (*fn_)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true, std::memory_order_relaxed);
      }
    }
    t_inside_task = false;
    t_interruptible = was_interruptible;
  }

  void work() {
    if (!cpus_.empty()) {
      cpu_set_t set;
      CPU_ZERO(&set);
      for (int c : cpus_) CPU_SET(c, &set);
      pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    }
    std::uint64_t seen = 0;  // the generation at construction: no job is missed
    for (;;) {
      // Spin briefly: back-to-back kernels then start without a futex wake-up.
      const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
      while (generation_.load(std::memory_order_acquire) == seen &&
             std::chrono::steady_clock::now() < spin_until)
        std::this_thread::yield();
      std::unique_lock<std::mutex> lock(mu_);
      cv_work_.wait(lock, [&] { return generation_.load() != seen; });
      seen = generation_.load();
      if (stop_) return;
      lock.unlock();
      inside_.fetch_add(1);
      if (open_.load()) drain();  // else the caller already ran every task (see run())
      // The caller may be spinning on inside_ or asleep on cv_done_: leave under the lock
      // so that a caller about to sleep cannot miss the notification.
      lock.lock();
      if (inside_.fetch_sub(1) == 1) cv_done_.notify_one();
    }
  }

  std::vector<int> cpus_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  std::atomic<std::uint64_t> generation_{0};
  const std::function<void(std::size_t)>* fn_ = nullptr;
  std::size_t n_ = 0;
  bool interruptible_ = false;
  std::atomic<bool> failed_{false};  // a task threw: hand out no more
  std::mutex error_mu_;
  std::exception_ptr error_;  // the first task's exception, rethrown by run()
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> open_{false};  // the job takes workers (run() closes it)
  std::atomic<int> inside_{0};     // workers that joined the job and have not left it
  bool stop_ = false;
};

struct State {
  std::mutex mu;  // guards the fields below
  int threads = initial_threads();
  std::vector<int> cpus;
  Pool* pool = nullptr;  // owned; leaked (never destroyed) in a forked child
  pid_t owner = 0;
};

State& state() {
  static State* s = new State();  // never destroyed: workers may outlive static teardown
  return *s;
}

// The pool for the current settings, created on demand, re-created after fork().
Pool* current_pool(State& s) {
  pid_t pid = getpid();
  if (s.pool && s.owner != pid) s.pool = nullptr;  // threads did not survive fork: abandon
  if (!s.pool && s.threads > 1) {
    try {
      s.pool = new Pool(s.threads - 1, s.cpus);
      s.owner = pid;
    } catch (const std::exception&) {  // no memory or threads for a pool: run serially
      return nullptr;
    }
  }
  return s.pool;
}

// Destroys the pool once its job in flight (if any) is done; s.mu must be held, which
// also keeps new jobs from starting on it (they take `busy` under s.mu).
void retire_pool(State& s) {
  if (s.pool && s.owner == getpid()) {
    s.pool->busy.lock();
    s.pool->busy.unlock();
    delete s.pool;
  }
  s.pool = nullptr;
}

}  // namespace

int num_threads() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.threads;
}

void set_num_threads(int n) {
  if (n < 1) n = 1;
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (n == s.threads) return;
  s.threads = n;
  retire_pool(s);
}

bool set_thread_affinity(const int* cpus, int count) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (count == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) CPU_SET(c, &set);
  } else {
    for (int i = 0; i < count; ++i) CPU_SET(cpus[i], &set);
  }
  bool ok = sched_setaffinity(0, sizeof(set), &set) == 0;
  if (count == 0) ok = true;  // lifting may be partially refused (offline CPUs): fine
  if (!ok) return false;
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.cpus.assign(cpus, cpus + count);
  retire_pool(s);
  return true;
}

void parallel_for(std::size_t n, const std::function<void(std::size_t)>& fn) {
  if (n == 0) return;
  // Nested jobs (inside a task) run to the end: the outer job's handout stops them.
  const bool interruptible = t_interruptible && !t_inside_task;
  Pool* pool = nullptr;
  if (n > 1 && !t_inside_task) {
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mu);
    pool = current_pool(s);
    // Another thread's job in flight: run this one serially rather than wait.
    if (pool && !pool->busy.try_lock()) pool = nullptr;
  }
  if (!pool) {
    struct InsideTask {  // restored however the loop ends (a task may throw)
      bool was = t_inside_task;
      InsideTask() { t_inside_task = true; }
      ~InsideTask() { t_inside_task = was; }
    } inside;
    for (std::size_t i = 0; i < n && !stop_now(interruptible); ++i) fn(i);
    return;
  }
  std::unique_lock<std::mutex> busy(pool->busy, std::adopt_lock);
  pool->run(n, fn, interruptible);
}

void parallel_runs(std::size_t n, std::size_t work,
                   const std::function<void(std::size_t, std::size_t)>& fn) {
  if (n == 0) return;
  const std::size_t threads = static_cast<std::size_t>(num_threads());
  const std::size_t runs =
      work < kParallelMinWork || threads <= 1 ? 1 : std::min(n, 4 * threads);
  if (runs <= 1) return fn(0, n);
  parallel_for(runs, [&](std::size_t i) {
    const std::size_t first = n * i / runs, end = n * (i + 1) / runs;
    fn(first, end - first);
  });
}

void interrupt() { g_interrupted.store(true, std::memory_order_relaxed); }

bool stop_requested() { return stop_now(t_interruptible); }

InterruptibleScope::InterruptibleScope(bool active) : active_(active), was_(t_interruptible) {
  if (active_) {
    g_interrupted.store(false, std::memory_order_relaxed);
    t_interruptible = true;
  }
}

InterruptibleScope::~InterruptibleScope() {
  if (active_) t_interruptible = was_;
}

bool InterruptibleScope::interrupted() const {
  return active_ && g_interrupted.load(std::memory_order_relaxed);
}

UninterruptibleScope::UninterruptibleScope() : was_(t_interruptible) { t_interruptible = false; }

UninterruptibleScope::~UninterruptibleScope() { t_interruptible = was_; }

}  // namespace fdl
