// Reference shifted dot products: the plain sums of fdl::ShiftedDotsFn, in double, that
// the ISA kernels (shifted_dots-plane.inc) are tested against. Never optimised.
#include <cstddef>

#include "fastdl/conv_backward.h"

void fdl_f32_shifted_dots__ref(const float* dy, std::size_t rows, std::size_t row_stride,
                              const float* x, const std::size_t* offsets, std::size_t cols,
                              std::size_t length, std::size_t planes, std::size_t dy_plane,
                              std::size_t x_plane, float* out) {
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) {
      double sum = 0.0;
      for (std::size_t plane = 0; plane < planes; ++plane) {
        const float* d = dy + plane * dy_plane + r * row_stride;
        const float* w = x + plane * x_plane + offsets[c];
        for (std::size_t p = 0; p < length; ++p) sum += double(d[p]) * w[p];
      }
      out[r * cols + c] = static_cast<float>(sum);
    }
}
