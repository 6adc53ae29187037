// Gradients of the convolution y = conv(x, w) + b (conv.h's geometry, layouts and PyTorch
// semantics, 1-3 spatial axes, groups, stride, dilation, padding before/after).
//
//   dx = the transposed convolution of dy with the same w and geometry: per group,
//        cols [in/g * taps x L] = W_g^T * dY_g over a chunk of images at once (their
//        positions side by side), then col2im sends every column back to the pixels its
//        taps read. Padding is pad_before; taps that fell in the padding are dropped.
//   dw [out_channels][in_channels / groups][taps] = sum over images of
//        dY_g [out/g x L] * col(X_g)^T [L x in/g * taps]  (one GEMM per group, computing
//        the transpose: its K axis runs over every image's positions, its A operand is
//        col(X_g) packed block by block straight from x)
//   db [out_channels] = sum of dy over images and positions.
//
// The transposed convolution's gradients are the same three computations with the roles
// of x and dy exchanged (fastdl/ops does that), so these two functions serve both.
#pragma once

#include <cstddef>

#include "fastdl/conv.h"
#include "fastdl/gemm.h"

namespace fdl {

// Positions of dy summed per partial sum of db (see conv_weight_gradient).
constexpr std::size_t kConvBiasBlock = 256;

// dw (and db unless null) of conv(x, w) from dy [batch][out_channels][out_size(in)], x
// [batch][in_channels][in]. With `accumulate` the gradients are added to what dw and db
// hold (a weight used several times), else overwritten. On microkernel uk, threaded.
//
// Every entry is a float32 sum over batch x L products: the GEMM adds uk.kc of them per
// chain, then the chains, so the rounding error grows about as
// (kc + batch * L / kc) * 2^-24 * sum |terms| rather than batch * L * 2^-24; db sums
// kConvBiasBlock positions per partial sum, then the partials.
void conv_weight_gradient(const GemmUkernel& uk, const ConvGeometry& g, const float* x,
                          std::size_t batch, const Size3& in, const float* dy, float* dw,
                          float* db, bool accumulate);

// dx [batch][in_channels][in] (overwritten) of conv(x, w) from dy [batch][out_channels]
// [out_size(in)]; w [out_channels][in_channels / groups][taps]. Threaded.
void conv_input_gradient(const GemmUkernel& uk, const ConvGeometry& g, const float* w,
                         std::size_t batch, const Size3& in, const float* dy, float* dx);

}  // namespace fdl
