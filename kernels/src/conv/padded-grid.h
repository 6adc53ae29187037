// The padded-grid form of a stride-1 2-D convolution (private to kernels/src/conv), for
// small images where the tiled im2col packer spends its time in short runs: one output row
// is shorter than a B panel, so every (k, row) pair is a run with its own zone logic.
//
// The input is copied once into a zero-padded buffer, Hp x Wp per channel. On that grid the
// output is computed for every padded column, OH rows of Wp: output position r = oh*Wp + ow
// reads padded[c][r + ky*dh*Wp + kx*dw], so row k of the column matrix is one contiguous run
// of the buffer, shifted by k's offset, and packing is plain copies. The Wp - OW columns
// past each output row are computed and dropped when the result is compacted into y.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "fastdl/conv.h"
#include "fastdl/gemm.h"

namespace fdl {

struct PaddedGrid {
  std::size_t H, W, Hp, Wp, OH, OW;
  std::size_t channel_stride;  // floats per channel of the padded buffer (with its tail)
  std::size_t columns;         // OH * Wp: the GEMM's N

  // The form applies to convolutions with a single depth slice and unit strides.
  static bool applies(const ConvGeometry& g, const Size3& in) {
    return in[0] == 1 && g.kernel[0] == 1 && g.pad_before[0] == 0 && g.pad_after[0] == 0 &&
           g.stride[1] == 1 && g.stride[2] == 1;
  }

  PaddedGrid(const ConvGeometry& g, const Size3& in) {
    const Size3 out = g.out_size(in);
    H = in[1];
    W = in[2];
    Hp = H + g.pad_before[1] + g.pad_after[1];
    Wp = W + g.pad_before[2] + g.pad_after[2];
    OH = out[1];
    OW = out[2];
    // The last output row's dropped columns read up to (KW-1)*dw past the grid.
    channel_stride = Hp * Wp + (g.kernel[2] - 1) * g.dilation[2];
    columns = OH * Wp;
  }

  // Worth it where output rows are short (the tiled packer then spends more on its runs'
  // zone logic than on copying) and the dropped columns add at most 1/8 to the GEMM's B
  // panels of width nr.
  bool pays(std::size_t nr) const {
    const std::size_t panels = (OH * OW + nr - 1) / nr, grid_panels = (columns + nr - 1) / nr;
    return OW < 64 && grid_panels * 8 <= panels * 9;
  }

  // x [channels][H][W] into dst [channels][channel_stride], zero-padded.
  void pad(const ConvGeometry& g, const float* x, std::size_t channels, float* dst) const {
    const std::size_t top = g.pad_before[1], left = g.pad_before[2];
    for (std::size_t c = 0; c < channels; ++c) {
      float* d = dst + c * channel_stride;
      const float* s = x + c * H * W;
      std::fill(d, d + top * Wp, 0.0f);
      for (std::size_t h = 0; h < H; ++h) {
        float* row = d + (top + h) * Wp;
        std::fill(row, row + left, 0.0f);
        std::memcpy(row + left, s + h * W, W * sizeof(float));
        std::fill(row + left + W, row + Wp, 0.0f);
      }
      std::fill(d + (top + H) * Wp, d + channel_stride, 0.0f);
    }
  }

  // y rows [rows][OH][OW] from the grid's [rows][OH][Wp].
  void compact(const float* grid, std::size_t rows, float* y) const {
    for (std::size_t m = 0; m < rows; ++m)
      for (std::size_t oh = 0; oh < OH; ++oh)
        std::memcpy(y + (m * OH + oh) * OW, grid + m * columns + oh * Wp, OW * sizeof(float));
  }
};

// B panels of the column matrix over a padded buffer: element (r, k) is
// src[offset[k] + r], offset[k] = c * channel_stride + ky*dh*Wp + kx*dw for
// k = (c*KH + ky)*KW + kx.
class ShiftedRowsPacker final : public Packer {
 public:
  ShiftedRowsPacker(const ConvGeometry& g, const PaddedGrid& grid, const float* padded,
                    std::size_t channels)
      : src_(padded) {
    const std::size_t KH = g.kernel[1], KW = g.kernel[2];
    offset_.resize(channels * KH * KW);
    std::size_t k = 0;
    for (std::size_t c = 0; c < channels; ++c)
      for (std::size_t ky = 0; ky < KH; ++ky)
        for (std::size_t kx = 0; kx < KW; ++kx)
          offset_[k++] = c * grid.channel_stride + ky * g.dilation[1] * grid.Wp +
                         kx * g.dilation[2];
  }

  void pack(std::size_t r0, std::size_t rows, std::size_t k0, std::size_t kc, std::size_t w,
            float* dst) const override {
    switch (w) {
      case 32: return pack_fixed<32>(r0, rows, k0, kc, dst);
      case 16: return pack_fixed<16>(r0, rows, k0, kc, dst);
      case 12: return pack_fixed<12>(r0, rows, k0, kc, dst);
      case 8: return pack_fixed<8>(r0, rows, k0, kc, dst);
      default: return pack_any(r0, rows, k0, kc, w, dst);
    }
  }

 private:
  // Whole panels are fixed-size copies (whole vector moves); the last may be partial.
  template <std::size_t Wd>
  void pack_fixed(std::size_t r0, std::size_t rows, std::size_t k0, std::size_t kc,
                  float* dst) const {
    const std::size_t whole = rows / Wd;
    for (std::size_t q = 0; q < whole; ++q, dst += kc * Wd) {
      const float* base = src_ + r0 + q * Wd;
      for (std::size_t p = 0; p < kc; ++p) {
        const float* s = base + offset_[k0 + p];
        float* d = dst + p * Wd;
        for (std::size_t t = 0; t < Wd; ++t) d[t] = s[t];
      }
    }
    if (rows % Wd) pack_any(r0 + whole * Wd, rows % Wd, k0, kc, Wd, dst);
  }

  void pack_any(std::size_t r0, std::size_t rows, std::size_t k0, std::size_t kc,
                std::size_t w, float* dst) const {
    for (std::size_t q = 0; q * w < rows; ++q, dst += kc * w) {
      const std::size_t n = std::min(w, rows - q * w);
      const float* base = src_ + r0 + q * w;
      for (std::size_t p = 0; p < kc; ++p) {
        const float* s = base + offset_[k0 + p];
        float* d = dst + p * w;
        for (std::size_t t = 0; t < n; ++t) d[t] = s[t];
        for (std::size_t t = n; t < w; ++t) d[t] = 0.0f;
      }
    }
  }

  const float* src_;
  std::vector<std::size_t> offset_;
};

}  // namespace fdl
