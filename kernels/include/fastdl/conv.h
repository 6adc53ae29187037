// 2-D convolution (NCHW, PyTorch semantics: cross-correlation) and im2col/col2im.
//
// Conv2dPlan packs the weights once for the chosen GEMM microkernel and runs the
// convolution as, per image and group, Y_g[Cout/g x OH*OW] = W_g[Cout/g x K] * col(X_g),
// K = Cin/g * KH * KW. col(X) is never materialised: its K x (OH*OW) blocks are packed
// straight from X into the GEMM's B panels (tiled im2col), so the workspace is one
// KC x NC block per thread whatever the input size. 1x1 stride-1 unpadded convolutions
// read X directly as the B matrix.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>

#include "fastdl/buffer.h"
#include "fastdl/common.h"
#include "fastdl/gemm.h"

namespace fdl {

struct Conv2dGeometry {
  std::size_t in_channels = 0, out_channels = 0, groups = 1;
  std::size_t kernel_h = 1, kernel_w = 1;
  std::size_t stride_h = 1, stride_w = 1;
  std::size_t dilation_h = 1, dilation_w = 1;
  std::size_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;

  // Output size for an input of in_h x in_w; 0 if the dilated kernel does not fit the
  // padded input (the caller has already refused that case).
  std::size_t out_h(std::size_t in_h) const;
  std::size_t out_w(std::size_t in_w) const;
};

// How a plan computes. kAuto picks, where the ISA has the kernels: a direct depthwise
// kernel when groups == in_channels == out_channels; Winograd F(2,3)/F(4,3) for 3x3
// stride-1 dilation-1 ungrouped layers with >= 8 channels; else im2col + GEMM.
// kIm2col forces the GEMM path (the others fall back to it where they do not apply).
enum class ConvAlgorithm : int { kAuto = 0, kIm2col = 1, kWinograd = 2, kDepthwise = 3 };

class WinogradConv;

class Conv2dPlan {
 public:
  // weights: [out_channels, in_channels / groups, kernel_h, kernel_w]; bias: [out_channels]
  // or null. Both are copied. `uk` defaults to gemm_best(). kWinograd where it does not
  // apply falls back to kIm2col.
  Conv2dPlan(const Conv2dGeometry& g, const float* weights, const float* bias,
             Activation act, float alpha, const GemmUkernel* uk = nullptr,
             ConvAlgorithm algorithm = ConvAlgorithm::kAuto);
  ~Conv2dPlan();

  // x: [batch, in_channels, in_h, in_w] -> y: [batch, out_channels, out_h, out_w].
  void run(const float* x, std::size_t batch, std::size_t in_h, std::size_t in_w,
           float* y) const;

  const Conv2dGeometry& geometry() const { return g_; }
  const GemmUkernel& ukernel() const { return *uk_; }
  // What run() uses for this input size: "im2col", "depthwise", "winograd_f2" or
  // "winograd_f4".
  const char* algorithm(std::size_t in_h, std::size_t in_w) const;

 private:
  // The im2col + GEMM path for a batch.
  void run_gemm(const float* x, std::size_t batch, std::size_t in_h, std::size_t in_w,
                float* y) const;
  // The Winograd form for tile size m (2 or 4), built on first use.
  const WinogradConv& winograd(int m) const;

  Conv2dGeometry g_;
  const GemmUkernel* uk_;
  bool winograd_;
  void (*depthwise_)(const Conv2dGeometry&, const float*, std::size_t, std::size_t,
                     const float*, float, Activation, float, float*) = nullptr;
  AlignedBuffer weights_;  // kept for the depthwise kernel and for Winograd forms
  mutable std::mutex winograd_mu_;
  mutable std::unique_ptr<WinogradConv> winograd_forms_[2];  // F(2,3), F(4,3)
  std::size_t m_per_group_, k_per_group_, packed_per_group_;
  AlignedBuffer packed_;  // per group: weights packed as A (full-K panels of MR rows)
  AlignedBuffer bias_;
  Epilogue ep_;
};

// torch.nn.functional.unfold for one image: x [C, H, W] -> cols [C*KH*KW, OH*OW], row
// index (c * KH + ky) * KW + kx, column oh * OW + ow. Geometry's channel/group fields
// are ignored except in_channels.
void im2col(const Conv2dGeometry& g, const float* x, std::size_t in_h, std::size_t in_w,
            float* cols);

// torch.nn.functional.fold for one image, the adjoint of im2col: overlapping entries
// are summed into y [C, H, W] (which is overwritten).
void col2im(const Conv2dGeometry& g, const float* cols, std::size_t in_h, std::size_t in_w,
            float* y);

}  // namespace fdl
