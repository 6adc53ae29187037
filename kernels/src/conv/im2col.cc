// The convolution geometry, im2col (the tiled packer with one panel as wide as the whole
// matrix) and col2im (the scatter of col2im_variants() for the active ISA). See
// fastdl/conv.h.
#include <cstring>

#include "fastdl/conv.h"
#include "fastdl/variants.h"
#include "im2col-packer.h"

namespace fdl {

Size3 ConvGeometry::out_size(const Size3& in) const {
  return Size3{out_size(0, in[0]), out_size(1, in[1]), out_size(2, in[2])};
}

void im2col(const ConvGeometry& g, const float* x, const Size3& in, float* cols) {
  const std::size_t L = volume(g.out_size(in)), K = g.in_channels * g.taps();
  if (L == 0 || K == 0) return;
  // Panel width L: one panel is the whole column matrix stored k-major, i.e. [K, L].
  Im2colPacker(g, x, in).pack(0, L, 0, K, L, cols);
}

void col2im(const ConvGeometry& g, const float* cols, const Size3& out, float* y) {
  std::memset(y, 0, g.in_channels * volume(out) * sizeof(float));
  const Size3 grid = g.out_size(out);
  const std::size_t L = volume(grid);
  best_variant(col2im_variants()).fn(g, g.in_channels, cols, L, 0, L, grid, out, y);
}

}  // namespace fdl
