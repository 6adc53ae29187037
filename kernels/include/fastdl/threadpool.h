// The library's one persistent thread pool (no OpenMP: its runtimes collide with
// PyTorch's and NumPy's in one process and are not fork-safe).
//
// parallel_for(n, fn) calls fn(i) for every i in [0, n) and returns when all calls are
// done. The calling thread takes part. Tasks are handed out dynamically, so uneven task
// costs balance. Calls from inside a task run serially (no nested parallelism).
// After fork() the child starts with no worker threads and re-creates them on demand.
// A task that throws (std::bad_alloc) ends the job's handout; parallel_for rethrows the
// first exception once every thread has left the job. Where the OS refuses the pool its
// threads, jobs run serially on the caller.
#pragma once

#include <cstddef>
#include <functional>

namespace fdl {

// Number of threads kernels use (>= 1). Initially FASTDL_NUM_THREADS if set and valid,
// else the number of CPUs this process may run on.
int num_threads();
void set_num_threads(int n);

// Restrict the pool's threads (and the caller) to these CPUs; an empty list lifts the
// restriction. Returns false if the OS refused.
bool set_thread_affinity(const int* cpus, int count);

void parallel_for(std::size_t n, const std::function<void(std::size_t)>& fn);

// fn(first, count) over `n` equal items in runs of consecutive ones: once on the calling
// thread when the whole job's `work` (taps, FMAs: any per-element measure) is below
// kParallelMinWork or there is one thread (waking the pool costs more), else a few runs
// per thread (they balance uneven progress, and one task per item would make the threads
// contend for the job's counter on jobs of many cheap items; each run sets up once).
constexpr std::size_t kParallelMinWork = std::size_t{1} << 16;
void parallel_runs(std::size_t n, std::size_t work,
                   const std::function<void(std::size_t, std::size_t)>& fn);

// Stopping a long call early (Ctrl-C). A parallel_for job started on a thread inside an
// active InterruptibleScope skips its remaining tasks once interrupt() has been called; the
// caller then discards the call's outputs (interrupted() says so). Tasks are checked where
// the job hands them out, so the latency is one task per thread (see stop_requested). Code that builds lasting
// state inside such a call (a plan's lazily packed weights) runs under an
// UninterruptibleScope, so that state is never left half built.
void interrupt();  // async-signal-safe: called from a SIGINT handler

// True once interrupt() has reached the interruptible call this thread works for (as its
// caller or on one of its tasks). Loops that run long inside one task (an RNN's recurrence
// over all steps) poll it between iterations and return early.
bool stop_requested();

class InterruptibleScope {
 public:
  explicit InterruptibleScope(bool active);  // active: clears an earlier interrupt()
  ~InterruptibleScope();
  InterruptibleScope(const InterruptibleScope&) = delete;
  InterruptibleScope& operator=(const InterruptibleScope&) = delete;
  bool interrupted() const;  // interrupt() arrived while this scope was active

 private:
  bool active_, was_;
};

class UninterruptibleScope {
 public:
  UninterruptibleScope();
  ~UninterruptibleScope();
  UninterruptibleScope(const UninterruptibleScope&) = delete;
  UninterruptibleScope& operator=(const UninterruptibleScope&) = delete;

 private:
  bool was_;
};

}  // namespace fdl
