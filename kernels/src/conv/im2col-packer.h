// The tiled im2col packer (private to kernels/src/conv): produces blocks of the virtual
// column matrix of one image and group straight in the GEMM's B-panel layout, so col(X) is
// never materialised. Used by ConvPlan (every rank) and fdl::im2col.
#pragma once

#include <algorithm>
#include <cstddef>

#include "fastdl/conv.h"
#include "fastdl/gemm.h"

namespace fdl {

// Element (r, k) of the K x (OD*OH*OW) column matrix, r = (od*OH + oh)*OW + ow,
// k = ((c*KD + kz)*KH + ky)*KW + kx, is
//   x[c][od*sd - pd + kz*dd][oh*sh - ph + ky*dh][ow*sw - pw + kx*dw]   (0 outside x).
// Rows are walked as runs along ow (one output row at a time), each run split into the
// three zones left padding / inside / right padding, so the inner copies have no branch.
class Im2colPacker final : public Packer {
 public:
  using sidx = std::ptrdiff_t;

  // Positions s in [0, seg) of a run starting at input column `first` (stride sw) that
  // read inside [0, width): [lo, hi). Stride 1 needs no division.
  static void inside(sidx first, sidx sw, sidx width, sidx seg, sidx& lo, sidx& hi) {
    if (sw == 1) {
      lo = first >= 0 ? 0 : -first;
      hi = first > width - 1 ? 0 : width - first;
    } else {
      lo = first >= 0 ? 0 : (-first + sw - 1) / sw;
      hi = first > width - 1 ? 0 : (width - 1 - first) / sw + 1;
    }
    hi = std::min(hi, seg);
    if (lo > hi) lo = hi;
  }

  // n panels of w floats, read S apart from src, into dst, dst + stride, ...: fixed-size
  // copies for the microkernels' panel widths and strides 1 and 2, which the compiler
  // turns into whole moves (stride 2: loads and shuffles).
  template <std::size_t W, int S>
  static void copy_fixed(const float* src, std::size_t n, std::size_t stride, float* dst) {
    for (std::size_t i = 0; i < n; ++i, src += W * S, dst += stride)
      for (std::size_t q = 0; q < W; ++q) dst[q] = src[q * S];
  }
  template <int S>
  static void copy_panels(const float* src, std::size_t n, std::size_t w, std::size_t stride,
                          float* dst) {
    switch (w) {
      case 32: return copy_fixed<32, S>(src, n, stride, dst);
      case 16: return copy_fixed<16, S>(src, n, stride, dst);
      case 12: return copy_fixed<12, S>(src, n, stride, dst);
      case 8: return copy_fixed<8, S>(src, n, stride, dst);
      default:
        for (std::size_t i = 0; i < n; ++i, src += w * S, dst += stride)
          for (std::size_t q = 0; q < w; ++q) dst[q] = src[q * S];
    }
  }

  Im2colPacker(const ConvGeometry& g, const float* x, const Size3& in)
      : g_(g), x_(x), in_(in), out_(g.out_size(in)) {}

  void pack(std::size_t r0, std::size_t rows, std::size_t k0, std::size_t kc, std::size_t w,
            float* dst) const override {
    const std::size_t KD = g_.kernel[0], KH = g_.kernel[1], KW = g_.kernel[2];
    const std::size_t D = in_[0], H = in_[1], W = in_[2];
    const std::size_t OH = out_[1], OW = out_[2];
    const std::size_t panel_stride = kc * w;
    const std::size_t khw = KH * KW, taps = KD * khw;
    std::size_t c = k0 / taps, kz = (k0 % taps) / khw, ky = (k0 % khw) / KW, kx = k0 % KW;
    const sidx sw = static_cast<sidx>(g_.stride[2]), Wi = static_cast<sidx>(W);
    // Where row r0 starts, the same for every k (divisions once per block).
    const std::size_t plane0 = r0 / (OH * OW), oh0 = (r0 / OW) % OH, ow0 = r0 % OW;
    for (std::size_t p = 0; p < kc; ++p) {
      const float* xc = x_ + c * D * H * W;
      const sidx z_off = static_cast<sidx>(kz * g_.dilation[0]) -
                         static_cast<sidx>(g_.pad_before[0]);
      const sidx y_off = static_cast<sidx>(ky * g_.dilation[1]) -
                         static_cast<sidx>(g_.pad_before[1]);
      const sidx x_off = static_cast<sidx>(kx * g_.dilation[2]) -
                         static_cast<sidx>(g_.pad_before[2]);
      float* row = dst + p * w;  // this k's slot in panel 0
      // The inside range of a whole output row is the same for every row: computed once.
      sidx row_lo, row_hi;
      inside(x_off, sw, Wi, static_cast<sidx>(OW), row_lo, row_hi);
      std::size_t plane = plane0, oh = oh0, ow = ow0;
      std::size_t t = 0;
      // Where position t lands: lane `lane` of the panel at `panel` (tracked, not divided).
      float* panel = row;
      std::size_t lane = 0;
      while (t < rows) {
        const std::size_t seg = std::min(rows - t, OW - ow);
        const sidx iz = static_cast<sidx>(plane * g_.stride[0]) + z_off;
        const sidx ih = static_cast<sidx>(oh * g_.stride[1]) + y_off;
        // Run positions s in [s_lo, s_hi) read inside the input row.
        sidx s_lo = 0, s_hi = 0;
        if (iz >= 0 && iz < static_cast<sidx>(D) && ih >= 0 && ih < static_cast<sidx>(H)) {
          if (seg == OW) {
            s_lo = row_lo;
            s_hi = row_hi;
          } else {
            inside(static_cast<sidx>(ow) * sw + x_off, sw, Wi, static_cast<sidx>(seg), s_lo, s_hi);
          }
        }
        const sidx row_index = (iz >= 0 ? iz : 0) * static_cast<sidx>(H) + (ih >= 0 ? ih : 0);
        const float* src = xc + row_index * Wi +
                           static_cast<sidx>(ow) * sw + x_off;
        for (sidx s = 0; s < static_cast<sidx>(seg);) {
          // Whole panels inside the input row at stride 1 or 2 (long rows: 1-D
          // convolutions, strided stems): fixed-width copies, one per panel, no zone logic
          // per run.
          if (sw <= 2 && lane == 0 && s >= s_lo) {
            const sidx whole = (std::min(s_hi, static_cast<sidx>(seg)) - s) / static_cast<sidx>(w);
            if (whole > 0) {
              if (sw == 1)
                copy_panels<1>(src + s, static_cast<std::size_t>(whole), w, panel_stride, panel);
              else
                copy_panels<2>(src + 2 * s, static_cast<std::size_t>(whole), w, panel_stride, panel);
              panel += static_cast<std::size_t>(whole) * panel_stride;
              s += whole * static_cast<sidx>(w);
              continue;
            }
          }
          // Run inside one panel and one of the three zones.
          float* out = panel + lane;
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
          lane += static_cast<std::size_t>(end - s);
          if (lane == w) {
            lane = 0;
            panel += panel_stride;
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
      if (lane != 0) std::fill(panel + lane, panel + w, 0.0f);  // past the last row
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
  const ConvGeometry& g_;
  const float* x_;
  Size3 in_, out_;
};

}  // namespace fdl
