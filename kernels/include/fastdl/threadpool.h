// The library's one persistent thread pool (no OpenMP: its runtimes collide with
// PyTorch's and NumPy's in one process and are not fork-safe).
//
// parallel_for(n, fn) calls fn(i) for every i in [0, n) and returns when all calls are
// done. The calling thread takes part. Tasks are handed out dynamically, so uneven task
// costs balance. Calls from inside a task run serially (no nested parallelism).
// After fork() the child starts with no worker threads and re-creates them on demand.
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

}  // namespace fdl
