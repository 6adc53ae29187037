// The thread pool: every index exactly once, nesting, concurrent callers, interrupts, tasks
// that throw, set_num_threads, replacing the pool without touching freed memory, and fork()
// (the child re-creates its workers and computes a convolution that matches the reference
// and the parent's result).
#include <gtest/gtest.h>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fastdl/conv.h"
#include "fastdl/threadpool.h"
#include "fastdl/variants.h"
#include "test_util.h"

namespace {

using fdl_test::random_vector;

using fdl_test::ThreadCountGuard;

// ------------------------------------------------------------------- thread pool

// The threads that ran a job of 4 * `expect` tasks. Each task waits (up to 10 s) until
// `expect` threads have joined the job, so that a pool of that many threads shows all of
// them however late its workers wake (a fixed sleep per task flaked on loaded machines).
std::set<std::thread::id> threads_used(std::size_t expect) {
  std::mutex mu;
  std::set<std::thread::id> ids;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  fdl::parallel_for(4 * expect, [&](std::size_t) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ids.insert(std::this_thread::get_id());
    }
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (ids.size() >= expect) return;
      }
      if (std::chrono::steady_clock::now() > deadline) return;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  return ids;
}

// Calls parallel_for(n) and checks that every index ran exactly once.
void expect_each_index_once(std::size_t n) {
  std::vector<std::atomic<int>> hits(n);
  for (auto& h : hits) h.store(0);
  std::atomic<std::size_t> out_of_range{0};
  fdl::parallel_for(n, [&](std::size_t i) {
    if (i >= n) {
      out_of_range.fetch_add(1);
      return;
    }
    hits[i].fetch_add(1);
  });
  EXPECT_EQ(out_of_range.load(), 0u) << "n=" << n;
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "index " << i << " of " << n;
}

TEST(ThreadPool, ParallelForCoversEveryIndexExactlyOnce) {
  ThreadCountGuard guard;
  for (int t : {1, 2, 3, 8})
    for (std::size_t n : {0, 1, 2, 3, 7, 64, 1000, 100003}) {
      fdl::set_num_threads(t);
      SCOPED_TRACE("threads " + std::to_string(t));
      expect_each_index_once(n);
    }
}

TEST(ThreadPool, ManySmallJobsInARow) {
  ThreadCountGuard guard;
  fdl::set_num_threads(3);
  for (int rep = 0; rep < 2000; ++rep) {
    std::atomic<std::size_t> sum{0};
    const std::size_t n = 1 + rep % 9;
    fdl::parallel_for(n, [&](std::size_t i) { sum.fetch_add(i + 1); });
    ASSERT_EQ(sum.load(), n * (n + 1) / 2) << "rep " << rep;
  }
}

TEST(ThreadPool, UsesMoreThanOneThread) {
  ThreadCountGuard guard;
  fdl::set_num_threads(2);
  const auto ids = threads_used(2);
  EXPECT_EQ(ids.size(), 2u);
  EXPECT_TRUE(ids.count(std::this_thread::get_id())) << "the calling thread takes part";
}

TEST(ThreadPool, NestedCallsRunEveryInnerIndex) {
  ThreadCountGuard guard;
  fdl::set_num_threads(4);
  const std::size_t outer = 13, inner = 11;
  std::vector<std::atomic<int>> hits(outer * inner);
  for (auto& h : hits) h.store(0);
  fdl::parallel_for(outer, [&](std::size_t i) {
    fdl::parallel_for(inner, [&](std::size_t j) {
      fdl::parallel_for(2, [&](std::size_t k) {  // a third level too
        if (k == 0) hits[i * inner + j].fetch_add(1);
      });
    });
  });
  for (std::size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i].load(), 1) << i;
  expect_each_index_once(100);  // the pool still works afterwards
}

TEST(ThreadPool, ConcurrentCallersEachGetTheirWorkDone) {
  ThreadCountGuard guard;
  fdl::set_num_threads(2);
  std::vector<std::thread> callers;
  std::atomic<int> bad{0};
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&, c] {
      for (int rep = 0; rep < 200; ++rep) {
        const std::size_t n = 5 + (rep + c) % 50;
        std::vector<std::atomic<int>> hits(n);
        for (auto& h : hits) h.store(0);
        fdl::parallel_for(n, [&](std::size_t i) { hits[i].fetch_add(1); });
        for (auto& h : hits)
          if (h.load() != 1) bad.fetch_add(1);
      }
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(bad.load(), 0);
}

// interrupt() while a job of an InterruptibleScope runs: the job hands out no further tasks,
// its tasks see stop_requested(), and the next jobs (in and out of a scope) run whole.
// Tasks past index 10 wait until interrupt() has returned: the thread that took index 10 may
// be descheduled before running it (seen under qemu on a loaded machine), and without the
// wait the others would go on meanwhile. With it, each thread can have started at most one
// task that the stop cannot take back.
TEST(ThreadPool, InterruptStopsTheScopesJobAndNothingElse) {
  ThreadCountGuard guard;
  for (int threads : {1, 2, 3}) {
    fdl::set_num_threads(threads);
    const std::size_t n = 10000;
    std::atomic<std::size_t> ran{0}, saw_stop{0};
    std::atomic<bool> issued{false};
    bool interrupted = false;
    {
      fdl::InterruptibleScope scope(true);
      fdl::parallel_for(n, [&](std::size_t i) {
        if (i == 10) {
          fdl::interrupt();
          issued.store(true);
        }
        while (i > 10 && !issued.load()) std::this_thread::yield();
        if (fdl::stop_requested()) saw_stop.fetch_add(1);
        ran.fetch_add(1);
      });
      interrupted = scope.interrupted();
    }
    EXPECT_TRUE(interrupted) << threads;
    EXPECT_LE(ran.load(), 11 + static_cast<std::size_t>(threads)) << threads;
    EXPECT_GE(saw_stop.load(), 1u) << threads;
    EXPECT_FALSE(fdl::stop_requested());  // outside the scope
    expect_each_index_once(1000);         // the flag is left set, but no scope is active
    fdl::InterruptibleScope next(true);   // a new scope starts clear
    EXPECT_FALSE(next.interrupted());
    expect_each_index_once(1000);
  }
}

// What builds lasting state inside an interruptible call finishes despite interrupt().
TEST(ThreadPool, UninterruptibleScopeRunsItsJobsWhole) {
  ThreadCountGuard guard;
  fdl::set_num_threads(2);
  fdl::InterruptibleScope scope(true);
  fdl::interrupt();
  {
    fdl::UninterruptibleScope whole;
    EXPECT_FALSE(fdl::stop_requested());
    expect_each_index_once(500);
  }
  std::atomic<int> ran{0};
  fdl::parallel_for(100, [&](std::size_t) { ran.fetch_add(1); });
  EXPECT_EQ(ran.load(), 0);
  EXPECT_TRUE(fdl::stop_requested());
}

// An inactive scope (a call that may not stop) and other threads' jobs ignore interrupt().
TEST(ThreadPool, InterruptLeavesOtherCallsAlone) {
  ThreadCountGuard guard;
  fdl::set_num_threads(2);
  fdl::InterruptibleScope inactive(false);
  fdl::interrupt();
  EXPECT_FALSE(inactive.interrupted());
  expect_each_index_once(1000);
  std::thread other([] {
    fdl::InterruptibleScope scope(true);  // clears the flag for its own call
    expect_each_index_once(1000);
  });
  other.join();
  fdl::interrupt();
  std::thread plain([] { expect_each_index_once(1000); });
  plain.join();
}

// A task that throws: parallel_for rethrows it on the caller once the workers have left the
// job (its function lives on the caller's stack), hands out no more tasks, and the pool
// runs the next jobs whole.
TEST(ThreadPool, ATasksExceptionReachesTheCallerAfterTheJob) {
  ThreadCountGuard guard;
  for (int threads : {1, 2, 3}) {
    fdl::set_num_threads(threads);
    for (std::size_t thrower : {std::size_t{0}, std::size_t{500}, std::size_t{9999}}) {
      std::atomic<std::size_t> ran{0};
      bool caught = false;
      try {
        fdl::parallel_for(10000, [&](std::size_t i) {
          if (i == thrower) throw std::bad_alloc();
          std::this_thread::sleep_for(std::chrono::microseconds(i % 7 == 0 ? 20 : 0));
          ran.fetch_add(1);
        });
      } catch (const std::bad_alloc&) {
        caught = true;
      }
      EXPECT_TRUE(caught) << threads << " threads, task " << thrower;
      EXPECT_LT(ran.load(), 10000u);
      expect_each_index_once(1000);
      // Still parallel: the job released the pool and the caller is not left "in a task".
      EXPECT_EQ(threads_used(static_cast<std::size_t>(threads)).size(),
                static_cast<std::size_t>(threads))
          << "task " << thrower;
    }
  }
}

TEST(ThreadPool, SetNumThreadsChangesNumThreads) {
  ThreadCountGuard guard;
  for (int t : {1, 3, 2, 7, 1}) {
    fdl::set_num_threads(t);
    EXPECT_EQ(fdl::num_threads(), t);
    expect_each_index_once(50);
  }
  fdl::set_num_threads(0);  // clamped to 1
  EXPECT_EQ(fdl::num_threads(), 1);
  fdl::set_num_threads(-4);
  EXPECT_EQ(fdl::num_threads(), 1);
}

// Runs `body` in a fork()ed child and returns its wait status (a crash or an abort
// there cannot take the test binary down); SIGALRM after 20 s turns a hang into a failure.
template <class F>
int status_of_child(F body) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(20);
    body();
    _exit(0);
  }
  int status = -1;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return status;
}

// Replacing the pool (set_num_threads, set_thread_affinity) must not touch it after it is
// freed. Freed blocks of every small size are queued first, so that a write into a freed
// block corrupts the allocator's free list and the following mallocs abort.
void churn_heap_around(void (*change)(int), int rounds) {
  for (int r = 0; r < rounds; ++r) {
    fdl::set_num_threads(2 + r % 2);
    fdl::parallel_for(64, [](std::size_t) {});  // the pool exists now
    std::vector<void*> blocks;
    for (std::size_t size = 16; size <= 2048; size += 16) blocks.push_back(std::malloc(size));
    for (void* b : blocks) std::free(b);
    change(r);
    blocks.clear();
    for (int twice = 0; twice < 2; ++twice)
      for (std::size_t size = 16; size <= 2048; size += 16) {
        void* b = std::malloc(size);
        std::memset(b, 0x5a, size);
        blocks.push_back(b);
      }
    for (void* b : blocks) std::free(b);
  }
}

TEST(ThreadPool, ReplacingThePoolDoesNotCorruptTheHeap) {
  const int by_count = status_of_child([] {
    churn_heap_around([](int r) { fdl::set_num_threads(r % 2 ? 1 : 4); }, 6);
  });
  EXPECT_TRUE(WIFEXITED(by_count) && WEXITSTATUS(by_count) == 0)
      << "set_num_threads: child " << (WIFSIGNALED(by_count) ? "killed by signal " : "exit ")
      << (WIFSIGNALED(by_count) ? WTERMSIG(by_count) : WEXITSTATUS(by_count));
  const int by_affinity = status_of_child([] {
    churn_heap_around([](int) { fdl::set_thread_affinity(nullptr, 0); }, 6);
  });
  EXPECT_TRUE(WIFEXITED(by_affinity) && WEXITSTATUS(by_affinity) == 0)
      << "set_thread_affinity: child " << (WIFSIGNALED(by_affinity) ? "killed by signal " : "exit ")
      << (WIFSIGNALED(by_affinity) ? WTERMSIG(by_affinity) : WEXITSTATUS(by_affinity));
}

// A 16 -> 16 channel 3x3 convolution of a 40x40 image on the default GEMM variant (the
// threaded Winograd path on SIMD builds).
std::vector<float> convolve(const std::vector<float>& x, const std::vector<float>& w,
                            const std::vector<float>& b, fdl::ConvAlgorithm algorithm) {
  fdl::ConvGeometry g;
  g.in_channels = g.out_channels = 16;
  g.kernel = {1, 3, 3};
  g.pad_before = g.pad_after = {0, 1, 1};
  const fdl::Size3 in{1, 40, 40};
  std::vector<float> y(16 * 40 * 40);
  fdl::ConvPlan plan(g, w.data(), b.data(), fdl::Activation::kNone, 0.0f, nullptr, algorithm);
  plan.run(x.data(), 1, in, y.data());
  return y;
}

// Forks after the pool's workers exist; the child (which has none of them) must still
// finish a parallel_for and a threaded convolution, whose result matches the parent's and
// the direct convolution's. A SIGALRM turns a deadlock into a failure instead of a hang.
TEST(ThreadPool, ForkedChildCanStillRunParallelFor) {
  ThreadCountGuard guard;
  fdl::set_num_threads(2);
  expect_each_index_once(1000);  // creates the pool in the parent
  const auto x = random_vector(16 * 40 * 40, 1);
  const auto wt = random_vector(16 * 16 * 9, 2), b = random_vector(16, 3);
  const auto parent = convolve(x, wt, b, fdl::ConvAlgorithm::kAuto);
  const auto reference = convolve(x, wt, b, fdl::ConvAlgorithm::kDirect);
  for (std::size_t i = 0; i < parent.size(); ++i)
    ASSERT_NEAR(parent[i], reference[i], 1e-4f * (1 + std::fabs(reference[i]))) << i;
  std::fflush(nullptr);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0) << "fork failed";
  if (pid == 0) {
    alarm(20);
    std::vector<std::atomic<int>> hits(5000);
    for (auto& h : hits) h.store(0);
    fdl::parallel_for(hits.size(), [&](std::size_t i) { hits[i].fetch_add(1); });
    for (auto& h : hits)
      if (h.load() != 1) _exit(3);
    // The child re-created its workers.
    if (threads_used(2).size() < 2) _exit(4);
    const auto child = convolve(x, wt, b, fdl::ConvAlgorithm::kAuto);
    if (std::memcmp(child.data(), parent.data(), child.size() * sizeof(float)) != 0) _exit(5);
    fdl::set_num_threads(3);
    if (fdl::num_threads() != 3) _exit(6);
    std::atomic<std::size_t> sum{0};
    fdl::parallel_for(100, [&](std::size_t i) { sum.fetch_add(i); });
    if (sum.load() != 4950) _exit(7);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died by signal "
                                 << (WIFSIGNALED(status) ? WTERMSIG(status) : 0)
                                 << " (SIGALRM = deadlock)";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "3: index coverage, 4: one thread, 5: conv result, "
                                       "6: set_num_threads, 7: second job";
  expect_each_index_once(1000);  // and the parent's pool still works
}

}  // namespace
