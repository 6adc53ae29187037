#include <immintrin.h>

#include <cstddef>

namespace {
#include "../simd/vec-avx2.inc"
#include "peak-fma.inc"
}  // namespace

double fdl_fma_loop__avx2(std::size_t iterations, float* sink) { return fma_loop(iterations, sink); }
