// Reference Winograd tile transforms: the matrices of winograd-matrices.h applied by plain
// loops in double, one tile at a time (lanes = 1). The specification the ISA transforms of
// winograd-transform.inc are tested against; never optimised. Contracts: WinogradTransforms.
#include <cstddef>

#include "fastdl/activation.h"
#include "winograd-matrices.h"
#include "winograd.h"

namespace {

using sidx = std::ptrdiff_t;

template <int M>
struct RefTransforms {
  using Mat = fdl::winograd::Matrices<M>;
  static constexpr int kA = Mat::kAlpha;

  static void input(const fdl::WinogradTiling& t, const float* x, std::size_t channels,
                    std::size_t c0, std::size_t c1, float* v) {
    const std::size_t point_stride = t.point_stride(channels);
    const sidx H = static_cast<sidx>(t.in_h), W = static_cast<sidx>(t.in_w);
    for (std::size_t tile = 0; tile < t.columns; ++tile) {
      const std::size_t at = t.first + tile;
      const sidx oy = static_cast<sidx>((at / t.tiles_x) * M) - static_cast<sidx>(t.pad_top);
      const sidx ox = static_cast<sidx>((at % t.tiles_x) * M) - static_cast<sidx>(t.pad_left);
      float* vt = v + (tile / t.nr) * t.nr * channels + tile % t.nr;
      for (std::size_t c = c0; c < c1; ++c) {
        double d[kA][kA];  // the input patch, zero outside the image and for padding tiles
        for (int i = 0; i < kA; ++i)
          for (int j = 0; j < kA; ++j) {
            const sidx iy = oy + i, ix = ox + j;
            const bool in = tile < t.tiles && iy >= 0 && iy < H && ix >= 0 && ix < W;
            d[i][j] = in ? x[c * t.in_h * t.in_w + static_cast<std::size_t>(iy * W + ix)] : 0.0;
          }
        double tmp[kA][kA];  // B^T d
        for (int i = 0; i < kA; ++i)
          for (int j = 0; j < kA; ++j) {
            tmp[i][j] = 0;
            for (int k = 0; k < kA; ++k) tmp[i][j] += Mat::BT[i][k] * d[k][j];
          }
        for (int i = 0; i < kA; ++i)  // (B^T d) B
          for (int j = 0; j < kA; ++j) {
            double s = 0;
            for (int k = 0; k < kA; ++k) s += tmp[i][k] * Mat::BT[j][k];
            vt[c * t.nr + static_cast<std::size_t>(i * kA + j) * point_stride] =
                static_cast<float>(s);
          }
      }
    }
  }

  static void output(const fdl::WinogradTiling& t, const float* m, std::size_t out_channels,
                     std::size_t o0, std::size_t o1, const float* bias, fdl::Activation act,
                     float alpha, float* y) {
    const std::size_t point_stride = t.point_stride(out_channels);
    for (std::size_t o = o0; o < o1; ++o) {
      for (std::size_t tile = 0; tile < t.tiles; ++tile) {
        const float* mt = m + o * t.tiles_padded + tile;
        double tmp[M][kA];  // A^T m
        for (int i = 0; i < M; ++i)
          for (int j = 0; j < kA; ++j) {
            tmp[i][j] = 0;
            for (int k = 0; k < kA; ++k)
              tmp[i][j] += Mat::AT[i][k] * mt[static_cast<std::size_t>(k * kA + j) * point_stride];
          }
        const std::size_t at = t.first + tile;
        const std::size_t y0 = (at / t.tiles_x) * M, x0 = (at % t.tiles_x) * M;
        for (int i = 0; i < M && y0 + i < t.out_h; ++i)
          for (int j = 0; j < M && x0 + j < t.out_w; ++j) {
            double s = bias ? bias[o] : 0.0;
            for (int k = 0; k < kA; ++k) s += tmp[i][k] * Mat::AT[j][k];  // (A^T m) A
            y[(o * t.out_h + y0 + i) * t.out_w + x0 + j] =
                fdl::activate_ref(static_cast<float>(s), act, alpha);
          }
      }
    }
  }
};

}  // namespace

extern const fdl::WinogradTransforms fdl_f32_winograd_m2__ref = {
    1, &RefTransforms<2>::input, &RefTransforms<2>::output};
extern const fdl::WinogradTransforms fdl_f32_winograd_m4__ref = {
    1, &RefTransforms<4>::input, &RefTransforms<4>::output};
