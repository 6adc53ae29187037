// The col2im scatter (ref build of col2im-scatter.inc).
#include <algorithm>
#include <cstddef>

#include "fastdl/conv.h"

namespace {
#include "col2im-scatter.inc"
}  // namespace

void fdl_f32_col2im__ref(const fdl::ConvGeometry& g, std::size_t channels, const float* cols,
                         std::size_t ld, std::size_t l0, std::size_t n, const fdl::Size3& grid,
                         const fdl::Size3& out, float* y) {
  col2im_scatter(g, channels, cols, ld, l0, n, grid, out, y);
}
