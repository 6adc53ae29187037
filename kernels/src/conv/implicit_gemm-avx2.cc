// The implicit GEMM, avx2 build of implicit_gemm-tile.inc (6 rows x 2 ymm of pixels:
// 12 accumulators, as the GEMM's 6x16 tile).
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "fastdl/conv.h"
#include "fastdl/gemm.h"

namespace {
#include "../simd/vec-avx2.inc"
#include "../simd/activation-vec.inc"
#include "../gemm/gemm-ukernel.inc"
constexpr int kImplicitRows = 6;  // the A panels of fdl_f32_gemm__avx2_*
constexpr int kImplicitVectors = 2;
#include "implicit_gemm-tile.inc"
}  // namespace

void fdl_f32_implicit_gemm__avx2(const fdl::ImplicitGemm& s, const float* x, const float* a,
                                 std::size_t rows, std::size_t q0, std::size_t n,
                                 const std::uint32_t* lanes, const float* bias,
                                 fdl::Activation act, float alpha, float* y) {
  implicit_gemm_any(s, x, a, rows, q0, n, lanes, bias, act, alpha, y);
}
