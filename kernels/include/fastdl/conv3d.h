// N-d convolution geometry (1, 2 or 3 spatial axes, NC[D][H]W, PyTorch semantics), the N-d
// im2col/col2im, and the 3-D convolution plan.
//
// Every N-d kernel works on three spatial axes (depth, height, width); 1-D and 2-D problems
// are 3-D ones with leading axes of size 1 (kernel 1, stride 1, no padding), so one
// packer, one col2im and one plan serve all of them.
//
// Conv3dPlan packs the weights once for the chosen GEMM microkernel and computes, per image
// and group, Y_g[Cout/g x OD*OH*OW] = W_g[Cout/g x K] * col(X_g), K = Cin/g * KD*KH*KW,
// with col(X) packed block by block straight into the GEMM's B panels (tiled im2col: the
// workspace is one KC x NC block per thread whatever the input size). 3x3x3 stride-1
// ungrouped layers with >= 8 channels take a Winograd form instead (see algorithm()),
// unless the volume is so large that its transformed planes would exceed 64 MiB.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <mutex>

#include "fastdl/buffer.h"
#include "fastdl/common.h"
#include "fastdl/conv.h"
#include "fastdl/gemm.h"

namespace fdl {

using Size3 = std::array<std::size_t, 3>;  // spatial extents {depth, height, width}

struct Conv3dGeometry {
  std::size_t in_channels = 0, out_channels = 0, groups = 1;
  Size3 kernel{1, 1, 1}, stride{1, 1, 1}, dilation{1, 1, 1};
  Size3 pad_before{0, 0, 0}, pad_after{0, 0, 0};

  // Output extent along `axis` for an input extent `in`; 0 if the dilated kernel does not
  // fit the padded input (the caller has already refused that case).
  std::size_t out_size(int axis, std::size_t in) const;
  Size3 out_size(const Size3& in) const;
  std::size_t taps() const { return kernel[0] * kernel[1] * kernel[2]; }
};

// The 2-D geometry as a 3-D one with a depth axis of size 1.
Conv3dGeometry to_3d(const Conv2dGeometry& g);

inline std::size_t volume(const Size3& s) { return s[0] * s[1] * s[2]; }

// N-d torch unfold for one image: x [C][in] -> cols [C*taps][volume(out_size(in))], row
// ((c*KD + kz)*KH + ky)*KW + kx, column (od*OH + oh)*OW + ow. Only g.in_channels of the
// channel fields is used (as C).
void im2col(const Conv3dGeometry& g, const float* x, const Size3& in, float* cols);

// Adds a block of a column matrix into y [channels][out] — the scatter half of fold and of
// transposed convolution. The column matrix has rows c*taps + tap (c < channels) and one
// column per position of the grid `grid` (position l = (gd*GH + gh)*GW + gw meets output
// pixel gd*sd - pd + kz*dd, ...); the block holds columns [l0, l0 + n), column l at
// cols[row * ld + (l - l0)]. Contributions outside `out` are dropped.
void col2im_accumulate(const Conv3dGeometry& g, std::size_t channels, const float* cols,
                       std::size_t ld, std::size_t l0, std::size_t n, const Size3& grid,
                       const Size3& out, float* y);

// N-d torch fold for one image, the adjoint of im2col: cols [C*taps][L] -> y [C][out]
// (overwritten), L = volume(out_size(out)).
void col2im(const Conv3dGeometry& g, const float* cols, const Size3& out, float* y);

class Conv3dWinograd;

class Conv3dPlan {
 public:
  // weights: [out_channels, in_channels / groups, KD, KH, KW]; bias: [out_channels] or
  // null. Both are copied. `uk` defaults to gemm_best(). kIm2col forces the GEMM path;
  // kAuto (and kWinograd) take Winograd where it applies.
  Conv3dPlan(const Conv3dGeometry& g, const float* weights, const float* bias, Activation act,
             float alpha, const GemmUkernel* uk = nullptr,
             ConvAlgorithm algorithm = ConvAlgorithm::kAuto);
  ~Conv3dPlan();

  // x: [batch, in_channels, in] -> y: [batch, out_channels, out_size(in)].
  void run(const float* x, std::size_t batch, const Size3& in, float* y) const;

  const Conv3dGeometry& geometry() const { return g_; }
  const GemmUkernel& ukernel() const { return *uk_; }
  // What run() uses for this input size: "im2col" or "winograd_f2"/"winograd_f4".
  const char* algorithm(const Size3& in) const;

 private:
  void run_gemm(const float* x, std::size_t batch, const Size3& in, float* y) const;

  Conv3dGeometry g_;
  const GemmUkernel* uk_;
  std::size_t m_per_group_, k_per_group_, packed_per_group_;
  AlignedBuffer packed_;  // per group: weights packed as A (full-K panels of MR rows)
  AlignedBuffer bias_;
  Epilogue ep_;
  std::unique_ptr<Conv3dWinograd> winograd_;  // null where Winograd does not apply
};

}  // namespace fdl
