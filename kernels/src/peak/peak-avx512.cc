// The FMA peak loop, avx512 build of peak-fma.inc.
#include <immintrin.h>

#include <cstddef>

#include "fastdl/peak.h"

namespace {
#include "../simd/vec-avx512.inc"
#include "peak-fma.inc"
}  // namespace

double fdl_f32_peak__avx512(std::size_t iterations, float* sink) {
  return fma_loop(iterations, sink);
}
