// Winograd F(m x m, 3 x 3) transform matrices (Lavin & Gray 2015), alpha = m + 2:
//   Y = A^T [ (G g G^T) .* (B^T d B) ] A
// F(2,3) uses interpolation points 0, 1, -1, inf; F(4,3) uses 0, 1, -1, 2, -2, inf.
// B^T and A^T hold only 0, +-1 and small integers, so the transforms (winograd-transform.inc)
// skip zero terms at compile time.
#pragma once

namespace fdl {
namespace winograd {

template <int M>
struct Matrices;

template <>
struct Matrices<2> {
  static constexpr int kAlpha = 4;
  static constexpr float BT[4][4] = {
      {1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  static constexpr float AT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
  static constexpr double G[4][3] = {
      {1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
};

template <>
struct Matrices<4> {
  static constexpr int kAlpha = 6;
  static constexpr float BT[6][6] = {
      {4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
      {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  static constexpr float AT[4][6] = {
      {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
  static constexpr double G[6][3] = {
      {1.0 / 4, 0, 0},
      {-1.0 / 6, -1.0 / 6, -1.0 / 6},
      {-1.0 / 6, 1.0 / 6, -1.0 / 6},
      {1.0 / 24, 1.0 / 12, 1.0 / 6},
      {1.0 / 24, -1.0 / 12, 1.0 / 6},
      {0, 0, 1}};
};

// U = G g G^T (alpha x alpha) for one 3x3 kernel g (row-major), in float: the kernel
// transform of the 2-D Winograd convolution and of each depth slice of the 3-D one. Float
// is enough: its rounding (~1e-7 relative) is far below the transform's own error.
template <int M>
inline void transform_kernel(const float* g, float* u) {
  using Mat = Matrices<M>;
  constexpr int A = Mat::kAlpha;
  float tmp[A][3];
  for (int i = 0; i < A; ++i)
    for (int j = 0; j < 3; ++j) {
      float s = 0;
      for (int k = 0; k < 3; ++k) s += static_cast<float>(Mat::G[i][k]) * g[k * 3 + j];
      tmp[i][j] = s;
    }
  for (int i = 0; i < A; ++i)
    for (int j = 0; j < A; ++j) {
      float s = 0;
      for (int k = 0; k < 3; ++k) s += tmp[i][k] * static_cast<float>(Mat::G[j][k]);
      u[i * A + j] = s;
    }
}

}  // namespace winograd
}  // namespace fdl
