// The FMA peak: the variant table (from variants.inc) and the timed run on every thread.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <type_traits>

#include "fastdl/peak.h"
#include "fastdl/threadpool.h"
#include "fastdl/variants.h"

#define FDL_PEAK_VARIANT(sfx, isa) std::remove_pointer_t<fdl::PeakLoopFn> fdl_f32_peak__##sfx;
#include "variants.inc"
#undef FDL_PEAK_VARIANT

namespace fdl {

const std::vector<PeakVariant>& peak_variants() {
  static const std::vector<PeakVariant> table = {
#define FDL_PEAK_VARIANT(sfx, isa) {"fdl_f32_peak__" #sfx, Isa::isa, &fdl_f32_peak__##sfx},
#include "variants.inc"
#undef FDL_PEAK_VARIANT
  };
  return table;
}

double fma_peak_gflops(double seconds, const PeakVariant* variant) {
  const PeakLoopFn loop = (variant ? *variant : best_variant(peak_variants())).loop;
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
