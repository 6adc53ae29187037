// SGEMM microkernel for AVX2 + FMA: 6x16 tile (12 ymm accumulators, 2 for B, 1 broadcast).
#include <immintrin.h>

#include <algorithm>
#include <utility>

#include "fastdl/gemm.h"

namespace {
#include "../simd/vec-avx2.inc"
#include "../simd/activation-vec.inc"
#include "gemm-ukernel.inc"
}  // namespace

// variants.inc declares this kernel's EDGE_NR as 8: NR / 2, the half tiles it computes.
static_assert(GemmTile<6, 16>::kHalves, "EDGE_NR in variants.inc");

void fdl_f32_gemm__avx2_6x16(std::size_t m, std::size_t k, const float* a, const float* b,
                             std::size_t ldb, float* c, std::size_t ldc, int flags,
                             const fdl::Epilogue& ep) {
  GemmTile<6, 16>::run(m, k, a, b, ldb, c, ldc, flags, ep);
}
