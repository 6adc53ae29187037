// SGEMM microkernel for AVX-512: 12x32 tile (24 zmm accumulators, 2 for B, 1 broadcast).
#include <immintrin.h>

#include <algorithm>
#include <utility>

#include "fastdl/gemm.h"

namespace {
#include "../simd/vec-avx512.inc"
#include "../simd/activation-vec.inc"
#include "gemm-ukernel.inc"
}  // namespace

// variants.inc declares this kernel's EDGE_NR as 16: NR / 2, the half tiles it computes.
static_assert(GemmTile<12, 32>::kHalves, "EDGE_NR in variants.inc");

void fdl_f32_gemm__avx512_12x32(std::size_t m, std::size_t k, const float* a, const float* b,
                                std::size_t ldb, float* c, std::size_t ldc, int flags,
                                const fdl::Epilogue& ep) {
  GemmTile<12, 32>::run(m, k, a, b, ldb, c, ldc, flags, ep);
}
