// The padded-grid form of a stride-1 2-D convolution (private to kernels/src/conv), for
// small images where the tiled im2col packer spends its time in short runs: one output row
// is shorter than a B panel, so every (k, row) pair is a run with its own zone logic.
//
// A chunk of images is copied once into a zero-padded buffer laid out [channel][image]
// [Hp][Wp]. On that grid the output is computed for every padded column, OH rows of Wp per
// image: output position q = oh*Wp + ow of image n reads
//   padded[c][n][0][0] + q + ky*dh*Wp + kx*dw,
// so row k of the column matrix is a few long contiguous runs of the buffer (one per
// image), shifted by k's offset, and packing is plain copies. All images of the chunk are
// columns of one GEMM (batched small images make one large GEMM, not many tiny ones). The
// Wp - OW columns past each output row are computed and dropped when the result is
// compacted into y.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "fastdl/conv.h"
#include "fastdl/gemm.h"

namespace fdl {

// dst[0, n) = src[0, n): the baseline build of plane-scratch.inc's copy_floats (this header
// is compiled with the baseline flags). Short runs (an image row) as plain moves, not a
// memcpy call each.
inline void copy_floats(float* dst, const float* src, std::size_t n) {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (std::size_t q = 0; q < 16; ++q) dst[i + q] = src[i + q];
  for (; i < n; ++i) dst[i] = src[i];
}

// Rows [r0, r1) of one zero-padded plane: src [H][W] into dst [rows][row_len] with `top`
// zero rows and `left` zero columns before it, zeros after it to the end of each row and of
// the plane (every element written once: no fill of the whole buffer first). dst holds the
// plane's rows from `dst_row0` on (0: the whole plane; r0 >= dst_row0).
inline void pad_rows(const float* src, std::size_t H, std::size_t W, std::size_t top,
                     std::size_t left, std::size_t row_len, std::size_t r0, std::size_t r1,
                     float* dst, std::size_t dst_row0 = 0) {
  for (std::size_t r = r0; r < r1; ++r) {
    float* row = dst + (r - dst_row0) * row_len;
    if (r < top || r >= top + H) {
      std::fill(row, row + row_len, 0.0f);
      continue;
    }
    std::fill(row, row + left, 0.0f);
    copy_floats(row + left, src + (r - top) * W, W);
    std::fill(row + left + W, row + row_len, 0.0f);
  }
}

// pad_rows with each padded row stored deinterleaved (the narrow kernel's stride-2 rows,
// NarrowConv): its even columns, then its odd ones, row_len / 2 each (row_len even).
// Written straight from src, every element once.
inline void pad_rows_deinterleaved(const float* src, std::size_t H, std::size_t W,
                                   std::size_t top, std::size_t left, std::size_t row_len,
                                   std::size_t r0, std::size_t r1, float* dst,
                                   std::size_t dst_row0 = 0) {
  const std::size_t half = row_len / 2;
  for (std::size_t r = r0; r < r1; ++r) {
    float* row = dst + (r - dst_row0) * row_len;
    if (r < top || r >= top + H) {
      std::fill(row, row + row_len, 0.0f);
      continue;
    }
    const float* s = src + (r - top) * W;
    // out[j] = padded column 2j + phase: zeros left of the image, its columns (j in
    // [j0, j1): 2j + phase in [left, left + W)), zeros after.
    for (std::size_t phase = 0; phase < 2; ++phase) {
      float* out = row + phase * half;
      const std::size_t j0 = std::min(half, left > phase ? (left - phase + 1) / 2 : 0);
      const std::size_t end = left + W;
      const std::size_t j1 =
          std::max(j0, std::min(half, end > phase ? (end - phase + 1) / 2 : 0));
      std::fill(out, out + j0, 0.0f);
      for (std::size_t j = j0; j < j1; ++j) out[j] = s[2 * j + phase - left];
      std::fill(out + j1, out + half, 0.0f);
    }
  }
}

// The whole plane of `rows` rows (see pad_rows).
inline void pad_plane(const float* src, std::size_t H, std::size_t W, std::size_t top,
                      std::size_t left, std::size_t rows, std::size_t row_len, float* dst) {
  pad_rows(src, H, W, top, left, row_len, 0, rows, dst);
}

struct PaddedGrid {
  std::size_t H, W, Hp, Wp, OH, OW;
  std::size_t images;          // images per chunk (one GEMM)
  std::size_t image_stride;    // Hp * Wp: floats per image of one padded channel
  std::size_t per_image;       // OH * Wp: GEMM columns per image
  std::size_t channel_stride;  // floats per channel of the padded buffer (with its tail)
  std::size_t columns;         // images * per_image: the GEMM's N

  // The form applies to convolutions with a single depth slice and unit strides.
  static bool applies(const ConvGeometry& g, const Size3& in) {
    return in[0] == 1 && g.kernel[0] == 1 && g.pad_before[0] == 0 && g.pad_after[0] == 0 &&
           g.stride[1] == 1 && g.stride[2] == 1;
  }

  // `rows`: the GEMM's M (output channels per group); chunks are sized so that the staged
  // output of one stays around a megabyte.
  PaddedGrid(const ConvGeometry& g, const Size3& in, std::size_t batch, std::size_t rows) {
    const Size3 out = g.out_size(in);
    H = in[1];
    W = in[2];
    Hp = H + g.pad_before[1] + g.pad_after[1];
    Wp = W + g.pad_before[2] + g.pad_after[2];
    OH = out[1];
    OW = out[2];
    image_stride = Hp * Wp;
    per_image = OH * Wp;
    constexpr std::size_t kStagedFloats = std::size_t{1} << 18;
    images = std::max<std::size_t>(1, std::min(batch, kStagedFloats / std::max<std::size_t>(
                                                          1, rows * per_image)));
    set_images(images);
  }

  // Re-sizes for a chunk of n <= images images (the last chunk of a batch).
  void set_images(std::size_t n) {
    images = n;
    // The last image's dropped columns read up to (KW-1)*dw past its grid: the tail.
    channel_stride = images * image_stride + (Wp - OW);
    columns = images * per_image;
  }

  // Worth it where output rows are short (the tiled packer then spends more on its runs'
  // zone logic than on copying) and the dropped columns add at most 1/8 to the GEMM's B
  // panels of width nr.
  bool pays(std::size_t nr) const {
    const std::size_t n = images;
    const std::size_t panels = (n * OH * OW + nr - 1) / nr, grid_panels = (columns + nr - 1) / nr;
    return OW < 64 && grid_panels * 8 <= panels * 9;
  }

  // The chunk's images x [images][channels][H][W] (x_image floats apart) into dst
  // [channels][channel_stride], zero-padded.
  void pad(const ConvGeometry& g, const float* x, std::size_t x_image, std::size_t channels,
           float* dst) const {
    const std::size_t top = g.pad_before[1], left = g.pad_before[2];
    for (std::size_t c = 0; c < channels; ++c) {
      float* dc = dst + c * channel_stride;
      for (std::size_t n = 0; n < images; ++n)
        pad_plane(x + n * x_image + c * H * W, H, W, top, left, Hp, Wp, dc + n * image_stride);
      std::fill(dc + images * image_stride, dc + channel_stride, 0.0f);
    }
  }

  // y [images][rows][OH][OW] (y_image floats apart) from the grid's [rows][images][OH][Wp].
  void compact(const float* grid, std::size_t rows, float* y, std::size_t y_image) const {
    for (std::size_t m = 0; m < rows; ++m)
      for (std::size_t n = 0; n < images; ++n) {
        const float* src = grid + m * columns + n * per_image;
        float* dst = y + n * y_image + m * OH * OW;
        for (std::size_t oh = 0; oh < OH; ++oh)
          copy_floats(dst + oh * OW, src + oh * Wp, OW);
      }
  }
};

// B panels of the column matrix over a padded buffer: element (r, k), r = n*per_image + q,
// is src[offset[k] + n*image_stride + q], offset[k] = c*channel_stride + ky*dh*Wp + kx*dw
// for k = (c*KH + ky)*KW + kx.
class ShiftedRowsPacker final : public Packer {
 public:
  ShiftedRowsPacker(const ConvGeometry& g, const PaddedGrid& grid, const float* padded,
                    std::size_t channels)
      : src_(padded), per_image_(grid.per_image), image_stride_(grid.image_stride) {
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
      case 32: return pack_width<32>(r0, rows, k0, kc, dst);
      case 16: return pack_width<16>(r0, rows, k0, kc, dst);
      case 12: return pack_width<12>(r0, rows, k0, kc, dst);
      case 8: return pack_width<8>(r0, rows, k0, kc, dst);
      default: return pack_width<0>(r0, rows, k0, kc, dst, w);
    }
  }

 private:
  // A run of a panel's columns inside one image: lanes [lane, lane + len) read
  // src + offset[k] + from.
  struct Run {
    std::size_t lane, from, len;
  };

  // Wd: the panel width fixed at compile time (whole panels inside one image are
  // fixed-size copies, i.e. whole vector moves), or 0 for any width w.
  template <std::size_t Wd>
  void pack_width(std::size_t r0, std::size_t rows, std::size_t k0, std::size_t kc, float* dst,
                  std::size_t w = Wd) const {
    if (Wd) w = Wd;
    std::vector<Run> runs;
    for (std::size_t q = 0; q * w < rows; ++q, dst += kc * w) {
      const std::size_t first = r0 + q * w, n = std::min(w, rows - q * w);
      runs.clear();
      for (std::size_t t = 0; t < n;) {
        const std::size_t r = first + t, at = r % per_image_;
        const std::size_t len = std::min(n - t, per_image_ - at);
        runs.push_back({t, (r / per_image_) * image_stride_ + at, len});
        t += len;
      }
      if (Wd && runs.size() == 1 && n == Wd) {
        const float* base = src_ + runs[0].from;
        for (std::size_t p = 0; p < kc; ++p) {
          const float* s = base + offset_[k0 + p];
          float* d = dst + p * Wd;
          for (std::size_t t = 0; t < Wd; ++t) d[t] = s[t];
        }
        continue;
      }
      for (std::size_t p = 0; p < kc; ++p) {
        const float* s = src_ + offset_[k0 + p];
        float* d = dst + p * w;
        for (const Run& run : runs)
          for (std::size_t t = 0; t < run.len; ++t) d[run.lane + t] = s[run.from + t];
        for (std::size_t t = n; t < w; ++t) d[t] = 0.0f;
      }
    }
  }

  const float* src_;
  std::size_t per_image_, image_stride_;
  std::vector<std::size_t> offset_;
};

}  // namespace fdl
