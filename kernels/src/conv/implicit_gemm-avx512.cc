// The implicit GEMM, avx512 build of implicit_gemm-tile.inc (12 rows x 2 zmm of pixels:
// 24 accumulators, as the GEMM's 12x32 tile).
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "fastdl/conv.h"
#include "fastdl/gemm.h"

namespace {
#include "../simd/vec-avx512.inc"
#include "../simd/activation-vec.inc"
#include "../gemm/gemm-ukernel.inc"
constexpr int kImplicitRows = 12;  // the A panels of fdl_f32_gemm__avx512_*
constexpr int kImplicitVectors = 2;
#include "implicit_gemm-tile.inc"
}  // namespace

void fdl_f32_implicit_gemm__avx512(const fdl::ImplicitGemm& s, const float* x, const float* a,
                                 std::size_t rows, std::size_t q0, std::size_t n,
                                 const std::uint32_t* lanes, const float* bias,
                                 fdl::Activation act, float alpha, float* y) {
  implicit_gemm_any(s, x, a, rows, q0, n, lanes, bias, act, alpha, y);
}
