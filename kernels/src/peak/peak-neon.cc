// The FMA peak loop, neon build of peak-fma.inc.
#include <arm_neon.h>

#include <cstddef>

#include "fastdl/peak.h"

namespace {
#include "../simd/vec-neon.inc"
#include "peak-fma.inc"
}  // namespace

double fdl_f32_peak__neon(std::size_t iterations, float* sink) {
  return fma_loop(iterations, sink);
}
