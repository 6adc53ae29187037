// The FMA peak loop, avx2 build of peak-fma.inc.
#include <immintrin.h>

#include <cstddef>

#include "fastdl/peak.h"

namespace {
#include "../simd/vec-avx2.inc"
#include "peak-fma.inc"
}  // namespace

double fdl_f32_peak__avx2(std::size_t iterations, float* sink) {
  return fma_loop(iterations, sink);
}
