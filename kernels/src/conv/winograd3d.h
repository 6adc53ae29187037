// Winograd form of 3x3x3, stride-1, dilation-1, ungrouped 3-D convolutions (private to
// kernels/src/conv), built on the 2-D F(m x m, 3 x 3) transforms of winograd.h:
//
//   y[:, od] = sum over kz of conv2d_3x3(x[:, od - pd + kz], w[:, :, kz])
//
// i.e. each output depth plane is one 2-D Winograd convolution over 3*Cin stacked input
// channels (c, kz). Per image:
//   1. the 2-D input transform of every input plane (channels x depth planes as C*D
//      "channels"): V[xi] is (C*D) x T_pad in GEMM B-panel layout, row c*D + d;
//   2. per output plane od and point xi, one GEMM M[xi][:, od] = U[xi] [Cout x 3Cin] *
//      B [3Cin x T_pad], whose B panels are copied from V (rows c*D + od - pd + kz, the
//      three depth taps of a channel lie next to each other; planes in the depth padding
//      are zeros);
//   3. the 2-D output transform over Cout*OD "channels" (M's rows o*OD + od), + bias,
//      activation.
#pragma once

#include <cstddef>

#include "fastdl/buffer.h"
#include "fastdl/conv.h"
#include "fastdl/gemm.h"
#include "winograd.h"

namespace fdl {

class Conv3dWinograd {
 public:
  // True if g is a convolution this path computes: 3x3x3, stride 1, dilation 1, groups 1,
  // >= 8 input and output channels.
  static bool applies(const ConvGeometry& g);

  // weights [Cout][Cin][3][3][3]; transforms and packs them for both tile sizes.
  Conv3dWinograd(const ConvGeometry& g, const float* weights, const GemmUkernel& uk,
                 const WinogradVariant& variant);
  // Transforms and packs new weights of the same shape into the existing buffers.
  void set_weights(const float* weights);
  // The tile size (2 or 4) that costs least for this input size.
  int best_tile(const Size3& in) const;
  // Whether the per-image workspace with tile size m (all transformed input and output
  // planes, about 2.25x the input plus 2.25x the output with F(4,3)) stays within
  // kMaxWorkspaceFloats; larger volumes take the im2col path, whose workspace does not grow
  // with the input.
  bool fits(const Size3& in, int m) const;
  static constexpr std::size_t kMaxWorkspaceFloats = std::size_t(1) << 24;  // 64 MiB
  // One image with tile size m (2 or 4): x [Cin][in] -> y [Cout][out_size(in)]; bias may
  // be null.
  void run(const float* x, const Size3& in, int m, const float* bias, Activation act,
           float alpha, float* y) const;

 private:
  struct Form {
    int m = 0;
    const WinogradTransforms* tr = nullptr;
    std::size_t packed_per_point = 0;
    AlignedBuffer u;  // alpha^2 packed A operands [Cout x 3Cin], K order (c, kz)
  };
  WinogradTiling tiling(int m, const Size3& in) const;

  ConvGeometry g_;
  const GemmUkernel& uk_;
  Form forms_[2];  // F(2,3), F(4,3)
};

}  // namespace fdl
