#include <arm_neon.h>

#include <cstddef>

namespace {
#include "../simd/vec-neon.inc"
#include "peak-fma.inc"
}  // namespace

double fdl_fma_loop__neon(std::size_t iterations, float* sink) { return fma_loop(iterations, sink); }
