#include <atomic>
#include <chrono>
#include <cstddef>

#include "fastdl/isa.h"
#include "fastdl/peak.h"
#include "fastdl/threadpool.h"

#if defined(__x86_64__) || defined(_M_X64)
double fdl_fma_loop__avx2(std::size_t iterations, float* sink);
double fdl_fma_loop__avx512(std::size_t iterations, float* sink);
#elif defined(__aarch64__)
double fdl_fma_loop__neon(std::size_t iterations, float* sink);
#endif

namespace fdl {
namespace {

double fma_loop_ref(std::size_t iterations, float* sink) {
  constexpr int kChains = 12;
  float acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = float(i);
  for (std::size_t it = 0; it < iterations; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * 0.999999f + 1e-7f;
  for (int i = 0; i < kChains; ++i) *sink += acc[i];
  return 2.0 * kChains * static_cast<double>(iterations);
}

using LoopFn = double (*)(std::size_t, float*);

LoopFn active_loop() {
  switch (active_isa()) {
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::kAvx512: return fdl_fma_loop__avx512;
    case Isa::kAvx2: return fdl_fma_loop__avx2;
#elif defined(__aarch64__)
    case Isa::kNeon: return fdl_fma_loop__neon;
#endif
    default: return fma_loop_ref;
  }
}

}  // namespace

double fma_peak_gflops(double seconds) {
  const LoopFn loop = active_loop();
  const int threads = num_threads();
  constexpr std::size_t kChunk = 1 << 16;
  float sink = 0;
  loop(kChunk, &sink);  // warm up: clocks ramp, pages and code are touched
  std::atomic<double> total_flops{0.0};
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  parallel_for(static_cast<std::size_t>(threads), [&](std::size_t) {
    float local_sink = 0;
    double flops = 0;
    while (std::chrono::steady_clock::now() < deadline) flops += loop(kChunk, &local_sink);
    double cur = total_flops.load();
    while (!total_flops.compare_exchange_weak(cur, cur + flops)) {
    }
    if (local_sink == 12345.0f) total_flops.store(-1);  // never true; keeps sink live
  });
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return total_flops.load() / elapsed * 1e-9;
}

}  // namespace fdl
