// Standalone timing of every GEMM variant this CPU can run (no Python):
//   fastdl_gemm_bench [M N K] [threads]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "fastdl/gemm.h"
#include "fastdl/isa.h"
#include "fastdl/threadpool.h"

int main(int argc, char** argv) {
  std::size_t M = 1024, N = 1024, K = 1024;
  if (argc >= 4) {
    M = std::strtoul(argv[1], nullptr, 10);
    N = std::strtoul(argv[2], nullptr, 10);
    K = std::strtoul(argv[3], nullptr, 10);
  }
  fdl::set_num_threads(argc >= 5 ? std::atoi(argv[4]) : 1);
  std::vector<float> a(M * K, 0.5f), b(K * N, 0.25f), c(M * N);
  fdl::PackRowsByK ap(a.data(), K);
  fdl::PackKByRows bp(b.data(), N);
  for (const auto& uk : fdl::gemm_variants()) {
    if (!fdl::cpu_supports(uk.isa)) continue;
    auto once = [&] {
      fdl::gemm(uk, M, N, K, {nullptr, &ap}, {nullptr, &bp}, c.data(), N, fdl::Epilogue{}, true);
    };
    once();
    double best = 1e30;
    for (int rep = 0; rep < 10; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      once();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::printf("%-28s %zux%zux%zu threads=%d  %.3f ms  %.1f GFLOP/s\n", uk.name, M, N, K,
                fdl::num_threads(), best * 1e3, 2.0 * M * N * K / best * 1e-9);
  }
  return 0;
}
