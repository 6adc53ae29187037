#include <immintrin.h>

#include <cstddef>

namespace {
#include "../simd/vec-avx512.inc"
#include "peak-fma.inc"
}  // namespace

double fdl_fma_loop__avx512(std::size_t iterations, float* sink) { return fma_loop(iterations, sink); }
