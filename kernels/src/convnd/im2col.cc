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

namespace {

using sidx = std::ptrdiff_t;

// Positions s in [0, seg) of a run whose first output column is `first` (stride sw) that
// land inside [0, width): [lo, hi).
inline void inside_range(sidx first, sidx sw, sidx width, sidx seg, sidx& lo, sidx& hi) {
  lo = first >= 0 ? 0 : (-first + sw - 1) / sw;
  hi = first > width - 1 ? 0 : (width - 1 - first) / sw + 1;
  hi = std::min(hi, seg);
  if (lo > hi) lo = hi;
}

// y[first + s*sw] += src[s] for s in [lo, hi).
inline void scatter_run(float* y, sidx first, sidx sw, const float* src, sidx lo, sidx hi) {
  if (sw == 1) {
    for (sidx s = lo; s < hi; ++s) y[first + s] += src[s];
  } else {
    for (sidx s = lo; s < hi; ++s) y[first + s * sw] += src[s];
  }
}

}  // namespace

void col2im_accumulate(const Conv3dGeometry& g, std::size_t channels, const float* cols,
                       std::size_t ld, std::size_t l0, std::size_t n, const Size3& grid,
                       const Size3& out, float* y) {
  if (n == 0) return;
  const std::size_t KD = g.kernel[0], KH = g.kernel[1], KW = g.kernel[2];
  const std::size_t GH = grid[1], GW = grid[2];
  const sidx OD = static_cast<sidx>(out[0]), OH = static_cast<sidx>(out[1]);
  const sidx OW = static_cast<sidx>(out[2]);
  const sidx sw = static_cast<sidx>(g.stride[2]);
  const std::size_t plane = out[0] * out[1] * out[2];
  // Stride 2, dilation 1 (the usual upsampling layer): taps kx and kx+1 fill the even and
  // odd columns of one contiguous stretch, so they are scattered together: a contiguous
  // update of y that vectorises, instead of two strided ones that do not.
  const bool pairs = sw == 2 && g.dilation[2] == 1;
  for (std::size_t c = 0; c < channels; ++c) {
    float* yc = y + c * plane;
    for (std::size_t kz = 0; kz < KD; ++kz)
      for (std::size_t ky = 0; ky < KH; ++ky)
        for (std::size_t kx = 0; kx < KW;) {
          const std::size_t taps = pairs && kx + 1 < KW ? 2 : 1;
          const float* crow = cols + (((c * KD + kz) * KH + ky) * KW + kx) * ld;
          const sidx z_off = static_cast<sidx>(kz * g.dilation[0]) - static_cast<sidx>(g.pad_before[0]);
          const sidx y_off = static_cast<sidx>(ky * g.dilation[1]) - static_cast<sidx>(g.pad_before[1]);
          const sidx x_off = static_cast<sidx>(kx * g.dilation[2]) - static_cast<sidx>(g.pad_before[2]);
          // The inside range of a whole grid row is the same for every row: computed once.
          sidx row_lo, row_hi, row_lo2, row_hi2;
          inside_range(x_off, sw, OW, static_cast<sidx>(GW), row_lo, row_hi);
          inside_range(x_off + 1, sw, OW, static_cast<sidx>(GW), row_lo2, row_hi2);
          std::size_t gd = l0 / (GH * GW), gh = (l0 / GW) % GH, gw = l0 % GW;
          for (std::size_t t = 0; t < n;) {
            const std::size_t seg = std::min(n - t, GW - gw);
            const sidx od = static_cast<sidx>(gd * g.stride[0]) + z_off;
            const sidx oh = static_cast<sidx>(gh * g.stride[1]) + y_off;
            if (od >= 0 && od < OD && oh >= 0 && oh < OH) {
              float* yrow = yc + (od * OH + oh) * OW;
              const sidx first = static_cast<sidx>(gw) * sw + x_off;  // ow at s = 0
              const float* src = crow + t;
              const bool whole = seg == GW;
              sidx lo = row_lo, hi = row_hi, lo2 = row_lo2, hi2 = row_hi2;
              if (!whole) inside_range(first, sw, OW, static_cast<sidx>(seg), lo, hi);
              if (taps == 1) {
                scatter_run(yrow, first, sw, src, lo, hi);
              } else {
                const float* src2 = src + ld;  // tap kx + 1 writes column ow + 1
                if (!whole) inside_range(first + 1, sw, OW, static_cast<sidx>(seg), lo2, hi2);
                const sidx a = std::max(lo, lo2), b = std::max(a, std::min(hi, hi2));
                float* yy = yrow + first;
                for (sidx s = a; s < b; ++s) {
                  yy[2 * s] += src[s];
                  yy[2 * s + 1] += src2[s];
                }
                scatter_run(yrow, first, 2, src, lo, std::min(hi, a));
                scatter_run(yrow, first, 2, src, std::max(lo, b), hi);
                scatter_run(yrow, first + 1, 2, src2, lo2, std::min(hi2, a));
                scatter_run(yrow, first + 1, 2, src2, std::max(lo2, b), hi2);
              }
            }
            t += seg;
            gw = 0;
            if (++gh == GH) {
              gh = 0;
              ++gd;
            }
          }
          kx += taps;
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
