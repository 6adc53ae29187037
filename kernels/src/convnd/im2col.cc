// N-d geometry, im2col (the tiled packer with one panel as wide as the whole matrix) and
// the col2im scatter shared by fold and transposed convolution. See fastdl/conv3d.h.
#include <cstring>

#include "fastdl/conv3d.h"
#include "col2im.h"
#include "fastdl/isa.h"
#include "im2col-packer.h"

#define FDL_COL2IM_DECLARE(isa)                                                             \
  void fdl_f32_col2im__##isa(const fdl::Conv3dGeometry&, std::size_t, const float*,        \
                             std::size_t, std::size_t, std::size_t, const fdl::Size3&,      \
                             const fdl::Size3&, float*);
FDL_COL2IM_DECLARE(ref)
#if defined(__x86_64__) || defined(_M_X64)
FDL_COL2IM_DECLARE(avx2)
FDL_COL2IM_DECLARE(avx512)
#elif defined(__aarch64__)
FDL_COL2IM_DECLARE(neon)
#endif
#undef FDL_COL2IM_DECLARE

namespace fdl {

Col2imFn col2im_kernel(Isa isa) {
  switch (isa) {
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::kAvx2: return &fdl_f32_col2im__avx2;
    case Isa::kAvx512: return &fdl_f32_col2im__avx512;
#elif defined(__aarch64__)
    case Isa::kNeon: return &fdl_f32_col2im__neon;
#endif
    default: return &fdl_f32_col2im__ref;
  }
}

std::size_t Conv3dGeometry::out_size(int axis, std::size_t in) const {
  const std::size_t span = dilation[axis] * (kernel[axis] - 1) + 1;
  const std::size_t padded = in + pad_before[axis] + pad_after[axis];
  return padded < span ? 0 : (padded - span) / stride[axis] + 1;
}

Size3 Conv3dGeometry::out_size(const Size3& in) const {
  return Size3{out_size(0, in[0]), out_size(1, in[1]), out_size(2, in[2])};
}

Conv3dGeometry to_3d(const Conv2dGeometry& g) {
  Conv3dGeometry t;
  t.in_channels = g.in_channels;
  t.out_channels = g.out_channels;
  t.groups = g.groups;
  t.kernel = {1, g.kernel_h, g.kernel_w};
  t.stride = {1, g.stride_h, g.stride_w};
  t.dilation = {1, g.dilation_h, g.dilation_w};
  t.pad_before = {0, g.pad_top, g.pad_left};
  t.pad_after = {0, g.pad_bottom, g.pad_right};
  return t;
}

void im2col(const Conv3dGeometry& g, const float* x, const Size3& in, float* cols) {
  const std::size_t L = volume(g.out_size(in)), K = g.in_channels * g.taps();
  if (L == 0 || K == 0) return;
  // Panel width L: one panel is the whole column matrix stored k-major, i.e. [K, L].
  Im2colPacker(g, x, in).pack(0, L, 0, K, L, cols);
}

void col2im_accumulate(const Conv3dGeometry& g, std::size_t channels, const float* cols,
                       std::size_t ld, std::size_t l0, std::size_t n, const Size3& grid,
                       const Size3& out, float* y) {
  col2im_kernel(active_isa())(g, channels, cols, ld, l0, n, grid, out, y);
}

void col2im(const Conv3dGeometry& g, const float* cols, const Size3& out, float* y) {
  std::memset(y, 0, g.in_channels * volume(out) * sizeof(float));
  const Size3 grid = g.out_size(out);
  const std::size_t L = volume(grid);
  col2im_accumulate(g, g.in_channels, cols, L, 0, L, grid, out, y);
}

}  // namespace fdl
