// The FMA peak loop in scalar C++: the reference variant (FASTDL_ISA=ref's peak).
#include <cstddef>

#include "fastdl/peak.h"

double fdl_f32_peak__ref(std::size_t iterations, float* sink) {
  constexpr int kChains = 12;
  float acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = float(i);
  for (std::size_t it = 0; it < iterations; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * 0.999999f + 1e-7f;
  for (int i = 0; i < kChains; ++i) *sink += acc[i];
  return 2.0 * kChains * static_cast<double>(iterations);
}
