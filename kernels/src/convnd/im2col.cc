// N-d geometry, im2col (the tiled packer with one panel as wide as the whole matrix) and
// the col2im scatter shared by fold and transposed convolution. See fastdl/conv3d.h.
#include <cstring>

#include "fastdl/conv3d.h"
#include "im2col-packer.h"

namespace fdl {

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
  using sidx = std::ptrdiff_t;
  if (n == 0) return;
  const std::size_t KD = g.kernel[0], KH = g.kernel[1], KW = g.kernel[2];
  const std::size_t GH = grid[1], GW = grid[2];
  const sidx OD = static_cast<sidx>(out[0]), OH = static_cast<sidx>(out[1]);
  const sidx OW = static_cast<sidx>(out[2]);
  const sidx sw = static_cast<sidx>(g.stride[2]);
  const std::size_t plane = out[0] * out[1] * out[2];
  for (std::size_t c = 0; c < channels; ++c) {
    float* yc = y + c * plane;
    for (std::size_t kz = 0; kz < KD; ++kz)
      for (std::size_t ky = 0; ky < KH; ++ky)
        for (std::size_t kx = 0; kx < KW; ++kx) {
          const float* crow = cols + (((c * KD + kz) * KH + ky) * KW + kx) * ld;
          const sidx z_off = static_cast<sidx>(kz * g.dilation[0]) - static_cast<sidx>(g.pad_before[0]);
          const sidx y_off = static_cast<sidx>(ky * g.dilation[1]) - static_cast<sidx>(g.pad_before[1]);
          const sidx x_off = static_cast<sidx>(kx * g.dilation[2]) - static_cast<sidx>(g.pad_before[2]);
          std::size_t gd = l0 / (GH * GW), gh = (l0 / GW) % GH, gw = l0 % GW;
          for (std::size_t t = 0; t < n;) {
            const std::size_t seg = std::min(n - t, GW - gw);
            const sidx od = static_cast<sidx>(gd * g.stride[0]) + z_off;
            const sidx oh = static_cast<sidx>(gh * g.stride[1]) + y_off;
            if (od >= 0 && od < OD && oh >= 0 && oh < OH) {
              const sidx first = static_cast<sidx>(gw) * sw + x_off;  // ow at s = 0
              sidx s_lo = first >= 0 ? 0 : (-first + sw - 1) / sw;
              sidx s_hi = first > OW - 1 ? 0 : (OW - 1 - first) / sw + 1;
              s_hi = std::min<sidx>(s_hi, static_cast<sidx>(seg));
              float* yrow = yc + (od * OH + oh) * OW;
              const float* src = crow + t;
              if (sw == 1) {
                for (sidx s = s_lo; s < s_hi; ++s) yrow[first + s] += src[s];
              } else {
                for (sidx s = s_lo; s < s_hi; ++s) yrow[first + s * sw] += src[s];
              }
            }
            t += seg;
            gw = 0;
            if (++gh == GH) {
              gh = 0;
              ++gd;
            }
          }
        }
  }
}

void col2im(const Conv3dGeometry& g, const float* cols, const Size3& out, float* y) {
  std::memset(y, 0, g.in_channels * volume(out) * sizeof(float));
  const Size3 grid = g.out_size(out);
  const std::size_t L = volume(grid);
  col2im_accumulate(g, g.in_channels, cols, L, 0, L, grid, out, y);
}

}  // namespace fdl
