// The tiled N-d im2col packer (private to kernels/src): produces blocks of the virtual
// column matrix of one image and group straight in the GEMM's B-panel layout, so col(X) is
// never materialised. Shared by Conv2dPlan (depth 1), Conv3dPlan and fdl::im2col.
#pragma once

#include <algorithm>
#include <cstddef>

#include "fastdl/conv3d.h"
#include "fastdl/gemm.h"

namespace fdl {

// Element (r, k) of the K x (OD*OH*OW) column matrix, r = (od*OH + oh)*OW + ow,
// k = ((c*KD + kz)*KH + ky)*KW + kx, is
//   x[c][od*sd - pd + kz*dd][oh*sh - ph + ky*dh][ow*sw - pw + kx*dw]   (0 outside x).
// Rows are walked as runs along ow (one output row at a time), each run split into the
// three zones left padding / inside / right padding, so the inner copies have no branch.
class Im2colPacker final : public Packer {
 public:
  Im2colPacker(const Conv3dGeometry& g, const float* x, const Size3& in)
      : g_(g), x_(x), in_(in), out_(g.out_size(in)) {}

  void pack(std::size_t r0, std::size_t rows, std::size_t k0, std::size_t kc, std::size_t w,
            float* dst) const override {
    using sidx = std::ptrdiff_t;
    const std::size_t KD = g_.kernel[0], KH = g_.kernel[1], KW = g_.kernel[2];
    const std::size_t D = in_[0], H = in_[1], W = in_[2];
    const std::size_t OH = out_[1], OW = out_[2];
    const std::size_t panels = (rows + w - 1) / w;
    const std::size_t panel_stride = kc * w;
    const std::size_t khw = KH * KW, taps = KD * khw;
    std::size_t c = k0 / taps, kz = (k0 % taps) / khw, ky = (k0 % khw) / KW, kx = k0 % KW;
    const sidx sw = static_cast<sidx>(g_.stride[2]), Wi = static_cast<sidx>(W);
    for (std::size_t p = 0; p < kc; ++p) {
      const float* xc = x_ + c * D * H * W;
      const sidx z_off = static_cast<sidx>(kz * g_.dilation[0]) - static_cast<sidx>(g_.pad_before[0]);
      const sidx y_off = static_cast<sidx>(ky * g_.dilation[1]) - static_cast<sidx>(g_.pad_before[1]);
      const sidx x_off = static_cast<sidx>(kx * g_.dilation[2]) - static_cast<sidx>(g_.pad_before[2]);
      float* row = dst + p * w;  // this k's slot in panel 0
      std::size_t plane = r0 / (OH * OW);
      std::size_t oh = (r0 / OW) % OH, ow = r0 % OW;
      std::size_t t = 0;
      while (t < rows) {
        const std::size_t seg = std::min(rows - t, OW - ow);
        const sidx iz = static_cast<sidx>(plane * g_.stride[0]) + z_off;
        const sidx ih = static_cast<sidx>(oh * g_.stride[1]) + y_off;
        // Run positions s in [s_lo, s_hi) read inside the input row.
        sidx s_lo = 0, s_hi = 0;
        if (iz >= 0 && iz < static_cast<sidx>(D) && ih >= 0 && ih < static_cast<sidx>(H)) {
          const sidx first = static_cast<sidx>(ow) * sw + x_off;  // iw at s = 0
          s_lo = first >= 0 ? 0 : (-first + sw - 1) / sw;
          s_hi = first > Wi - 1 ? 0 : (Wi - 1 - first) / sw + 1;
          s_hi = std::min<sidx>(s_hi, static_cast<sidx>(seg));
          if (s_lo > s_hi) s_lo = s_hi;
        }
        const float* src = xc + ((iz >= 0 ? iz : 0) * static_cast<sidx>(H) + (ih >= 0 ? ih : 0)) * Wi +
                           static_cast<sidx>(ow) * sw + x_off;
        for (sidx s = 0; s < static_cast<sidx>(seg);) {
          // Run inside one panel and one of the three zones.
          const std::size_t tt = t + static_cast<std::size_t>(s);
          const std::size_t lane = tt % w;
          float* out = row + (tt / w) * panel_stride + lane;
          sidx end = std::min<sidx>(static_cast<sidx>(seg), s + static_cast<sidx>(w - lane));
          if (s < s_lo) {
            end = std::min(end, s_lo);
            std::fill(out, out + (end - s), 0.0f);
          } else if (s < s_hi) {
            end = std::min(end, s_hi);
            if (sw == 1) {
              const float* in = src + s;
              for (sidx q = 0; q < end - s; ++q) out[q] = in[q];  // runs <= NR: no memcpy call
            } else {
              for (sidx q = s; q < end; ++q) out[q - s] = src[q * sw];
            }
          } else {
            std::fill(out, out + (end - s), 0.0f);
          }
          s = end;
        }
        t += seg;
        ow = 0;
        if (++oh == OH) {
          oh = 0;
          ++plane;
        }
      }
      for (std::size_t tt = rows; tt < panels * w; ++tt) row[(tt / w) * panel_stride + tt % w] = 0.0f;
      if (++kx == KW) {
        kx = 0;
        if (++ky == KH) {
          ky = 0;
          if (++kz == KD) {
            kz = 0;
            ++c;
          }
        }
      }
    }
  }

 private:
  const Conv3dGeometry& g_;
  const float* x_;
  Size3 in_, out_;
};

}  // namespace fdl
