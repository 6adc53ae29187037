// The stride-1 weight gradient's shifted dot products, avx2 build of shifted_dots-plane.inc.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>

#include "fastdl/conv_backward.h"

namespace {
constexpr int kVecRegisters = 16;
#include "../simd/vec-avx2.inc"
#include "shifted_dots-plane.inc"
}  // namespace

void fdl_f32_shifted_dots__avx2(const float* dy, std::size_t rows, std::size_t row_stride,
                               const float* x, const std::size_t* offsets, std::size_t cols,
                               std::size_t length, std::size_t planes, std::size_t dy_plane,
                               std::size_t x_plane, float* out) {
  shifted_dots_any(dy, rows, row_stride, x, offsets, cols, length, planes, dy_plane, x_plane,
                   out);
}
