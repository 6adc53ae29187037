// SGEMM microkernel for AArch64 NEON: 8x12 tile (24 q-register accumulators, 3 for B,
// broadcast loads), sized for the Cortex-A73's 32 vector registers.
#include <arm_neon.h>

#include <algorithm>
#include <utility>

#include "fastdl/gemm.h"

namespace {
#include "../simd/vec-neon.inc"
#include "../simd/activation-vec.inc"
#include "gemm-ukernel.inc"
}  // namespace

// variants.inc declares this kernel's EDGE_NR as 12: NR, it has no half tiles.
static_assert(!GemmTile<8, 12>::kHalves, "EDGE_NR in variants.inc");

void fdl_f32_gemm__neon_8x12(std::size_t m, std::size_t k, const float* a, const float* b,
                             std::size_t ldb, float* c, std::size_t ldc, int flags,
                             const fdl::Epilogue& ep) {
  GemmTile<8, 12>::run(m, k, a, b, ldb, c, ldc, flags, ep);
}
