// Transposed convolution (1-D, 2-D, 3-D; PyTorch conv_transpose semantics, NC[D][H]W).
//
// y = the adjoint of the forward convolution with the same geometry, + bias, activation:
//   y[co][o] = bias[co] + sum over ci, taps, i with  o = i*s - p + t*d  of x[ci][i] * w[ci][co][t]
// per axis. Computed without zero-stuffing the input: per image and group,
//   cols [Cout/g * taps x L] = W_g^T [Cout/g * taps x Cin/g] * X_g [Cin/g x L],  L = volume(in),
// then col2im scatters cols into y (initialised with the bias). The GEMM runs over blocks
// of input positions so that the block of cols stays in cache until it is scattered.
//
// The geometry is a ConvGeometry read the transposed way: in_channels are x's channels,
// out_channels y's; padding is `pad_before` (PyTorch's symmetric padding); pad_after is
// unused: the output extent is given to run() (it also carries output_padding).
#pragma once

#include <mutex>
#include <shared_mutex>

#include "fastdl/activation.h"
#include "fastdl/conv.h"

namespace fdl {

class ConvTransposePlan {
 public:
  // weights: [in_channels, out_channels / groups, KD, KH, KW] (PyTorch's layout); bias:
  // [out_channels] or null. Both are copied. `uk` defaults to gemm_best().
  ConvTransposePlan(const ConvGeometry& g, const float* weights, const float* bias,
                    Activation act, float alpha, const GemmUkernel* uk = nullptr);

  // New weights and bias of the same shapes (bias null means zeros), repacked in place: no
  // allocation. Waits for running calls to finish.
  void set_weights(const float* weights, const float* bias);

  // Output extent along each axis without output_padding: (in-1)*s - 2p + d*(k-1) + 1
  // (0 if that is not positive).
  Size3 default_out_size(const Size3& in) const;

  // x: [batch, in_channels, in] -> y: [batch, out_channels, out] for any out (usually
  // default_out_size(in) + output_padding). Calls from several threads at once are safe.
  void run(const float* x, std::size_t batch, const Size3& in, const Size3& out,
           float* y) const;

  const ConvGeometry& geometry() const { return g_; }
  const GemmUkernel& ukernel() const { return *uk_; }
  // Floats of cols each thread computes and scatters at a time (the GEMM's column blocks
  // hold about this / rows input positions, at least NR). For tuning and tests.
  void set_column_block(std::size_t floats) { col_block_ = floats; }

 private:
  ConvGeometry g_;
  const GemmUkernel* uk_;
  // The GEMM's ISA's variants (the reference ones where it has none), so a plan built for a
  // variant runs that ISA's code throughout.
  const ActivationVariant* act_variant_;
  const Col2imVariant* col2im_;
  std::size_t cout_g_, cin_g_, m_per_group_, packed_per_group_;
  std::size_t channel_align_;  // output channels per work unit: whole MR panels of rows
  AlignedBuffer packed_;       // per group: W_g^T packed as A (rows (co, tap), K = Cin/g)
  AlignedBuffer bias_;
  Activation act_;
  float alpha_;
  std::size_t col_block_;
  mutable std::shared_mutex weights_mu_;  // run() holds it shared, set_weights() exclusive
};

}  // namespace fdl
