// Gradients of the convolution y = conv(x, w) + b (conv.h's geometry, layouts and PyTorch
// semantics, 1-3 spatial axes, groups, stride, dilation, padding before/after).
//
//   dx = the transposed convolution of dy with the same w and geometry: per group,
//        cols [in/g * taps x L] = W_g^T * dY_g over a chunk of images at once (their
//        positions side by side), then col2im sends every column back to the pixels its
//        taps read. Padding is pad_before; taps that fell in the padding are dropped.
//        A stride-1 layer with >= 8 input channels per group instead runs the forward
//        convolution (ConvPlan, whatever algorithm it picks: Winograd for 3x3) of dy with
//        the kernels flipped and the channels exchanged, padded by dilation * (k - 1) -
//        padding (64 channels 3x3 on 56x56 at batch 8, 1 thread: 28 -> 10.7 ms).
//   dw [out_channels][in_channels / groups][taps] = sum over images of
//        dY_g [out/g x L] * col(X_g)^T [L x in/g * taps]  (one GEMM per group, computing
//        the transpose: its K axis runs over every image's positions, its A operand is
//        col(X_g) packed block by block straight from x)
//   db [out_channels] = sum of dy over images and positions.
//
// The transposed convolution's gradients are the same three computations with the roles
// of x and dy exchanged (fastdl/ops does that), so these two functions serve both.
//
// Depthwise layers (groups == in_channels, out_channels = m * in_channels for a depth
// multiplier m >= 1, nothing along depth: see is_depthwise_gradient; single-channel
// convolutions too) would run one tiny GEMM per channel (M = m rows, N or K = the taps);
// they take direct per-plane kernels instead (DepthwiseBackwardVariant,
// src/conv/depthwise_backward-<isa>.cc; measured faster than the GEMMs for multipliers up
// to 64, e.g. a 1 -> 32 channel 3x3 layer on 28x28 at batch 32: dw 1.6 -> 0.46 ms):
//   dw[co][tap] = sum over planes and outputs o of dy[co][o] * x[co / m][o*s - p + tap*d]
//                 (vectorised along the output row, float32 vector sums per block of rows
//                 added into double; threaded over channels and chunks of images)
//   dx[c][i]    = sum over j < m and the taps that read i of dy[c*m + j][o] * w[c*m + j][tap]
//                 (the transposed direct kernel, one input plane at a time, threaded over
//                 the (image, channel) planes).
#pragma once

#include <cstddef>
#include <vector>

#include "fastdl/conv.h"
#include "fastdl/gemm.h"

namespace fdl {

// ------------------------------------------------------------ depthwise kernels

// The weight gradient of one output channel over `planes` planes: adds into dw[ky*KW + kx]
// (double) the sum over planes p and outputs (oh, ow) of
//   dy[p * dy_stride + oh*OW + ow] * x[p * x_stride + ih*in_w + iw],
//   ih = oh*sh - pt + ky*dh, iw = ow*sw - pl + kx*dw (g's axes 1 and 2; 0 in the padding),
// OH x OW = g.out_size of in_h x in_w.
using DepthwiseWeightGradFn = void (*)(const ConvGeometry& g, const float* x,
                                       std::size_t x_stride, const float* dy,
                                       std::size_t dy_stride, std::size_t planes,
                                       std::size_t in_h, std::size_t in_w, double* dw);
// The input gradient of one input plane from its `multiplier` output planes: dx[ih*in_w +
// iw] (overwritten) = the sum over j < multiplier and taps (ky, kx) of
//   dy[j * dy_stride + oh*OW + ow] * w[j * taps + ky*KW + kx]
// over the (oh, ow) inside the output with oh*sh - pt + ky*dh = ih, ow*sw - pl + kx*dw = iw.
using DepthwiseInputGradFn = void (*)(const ConvGeometry& g, const float* dy,
                                      std::size_t dy_stride, std::size_t multiplier,
                                      const float* w, std::size_t in_h, std::size_t in_w,
                                      float* dx);
struct DepthwiseBackwardVariant {
  const char* name;  // fdl_f32_depthwise_backward__<isa>
  Isa isa;
  DepthwiseWeightGradFn weight_grad;  // fdl_f32_depthwise_weight_grad__<isa>
  DepthwiseInputGradFn input_grad;    // fdl_f32_depthwise_input_grad__<isa>
};
// Every variant compiled into this build, best first, the reference last (src/conv/
// variants.inc).
const std::vector<DepthwiseBackwardVariant>& depthwise_backward_variants();

// ------------------------------------------------------------ shifted dot products

// The stride-1 weight gradient's kernel: out[r][c] (rows x cols, overwritten) = the sum
// over planes and p < length of
//   dy[plane * dy_plane + r * row_stride + p] * x[plane * x_plane + offsets[c] + p].
// length is a multiple of 16 (every ISA's vector width divides it); nothing is read
// outside those ranges.
using ShiftedDotsFn = void (*)(const float* dy, std::size_t rows, std::size_t row_stride,
                               const float* x, const std::size_t* offsets, std::size_t cols,
                               std::size_t length, std::size_t planes, std::size_t dy_plane,
                               std::size_t x_plane, float* out);
struct ShiftedDotsVariant {
  const char* name;  // fdl_f32_shifted_dots__<isa>
  Isa isa;
  ShiftedDotsFn fn;
};
// Every variant compiled into this build, best first, the reference last.
const std::vector<ShiftedDotsVariant>& shifted_dots_variants();

// groups == in_channels, out_channels a multiple of in_channels, kernel 1 and no stride or
// padding along depth: every (image, channel, depth slice) plane is independent.
bool is_depthwise_gradient(const ConvGeometry& g);

// How the gradients are computed. kAuto takes the depthwise kernels of the GEMM's ISA where
// the geometry is depthwise and that ISA has SIMD kernels (as ConvPlan picks its depthwise
// path), else the shifted dot products for a stride-1 layer's dw and the forward
// convolution for its dx (SIMD ISAs; see above), else the GEMMs; kGemm forces the GEMMs; kDepthwise forces the depthwise kernels where the
// geometry is depthwise (the GEMM ISA's variant, or the reference one); kShiftedDots forces
// the shifted dot products for dw where the stride is 1 (dx as kGemm). Non-finite inputs:
// the shifted dot products also multiply the padded grid's dropped columns (dy 0 there) by
// x values the convolution never pairs with them, so an Inf or NaN in x can make dw NaN
// also at taps that never read it (the GEMMs keep it to its taps); with such an x the
// forward output and the loss are not finite either.
enum class ConvGradAlgorithm : int { kAuto = 0, kGemm = 1, kDepthwise = 2, kShiftedDots = 3 };

// Stride 1 on every axis: dw as shifted dot products (see conv_weight_gradient).
bool is_shifted_dots_gradient(const ConvGeometry& g);

// The depthwise variant `algorithm` picks for g on microkernel uk, or null for the GEMMs.
const DepthwiseBackwardVariant* depthwise_gradient_variant(const GemmUkernel& uk,
                                                           const ConvGeometry& g,
                                                           ConvGradAlgorithm algorithm);

// ------------------------------------------------------------ entry points

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
//
// Stride-1 layers (not depthwise) take the shifted dot products instead of the GEMM,
// which would spend more time packing the im2col rows and dy than multiplying when the
// channels are few (a CIFAR 3 -> 16 2x2 layer: 1.3 -> 0.1 ms): with x zero-padded to
// Dp x Hp x Wp and dy laid out on that padded grid (zero outside the output),
//   dw[co][c][tap] = sum over images and padded positions q of
//                    dy_p[co][q] * x_p[c][q + (kz*Hp + ky)*Wp + kx (dilated)],
// every operand read contiguously, none packed. Each vector lane sums one chunk's
// products (a chunk: the images whose staged x and dy fit 2^17 floats, or one image; fixed
// by the shape alone), the chunks' sums are added in double in order: the error grows as
// about (chunk positions / vector width) * 2^-24 * sum |terms|, and no result depends on
// the thread count.
void conv_weight_gradient(const GemmUkernel& uk, const ConvGeometry& g, const float* x,
                          std::size_t batch, const Size3& in, const float* dy, float* dw,
                          float* db, bool accumulate,
                          ConvGradAlgorithm algorithm = ConvGradAlgorithm::kAuto);

// dx [batch][in_channels][in] (overwritten) of conv(x, w) from dy [batch][out_channels]
// [out_size(in)]; w [out_channels][in_channels / groups][taps]. Threaded.
void conv_input_gradient(const GemmUkernel& uk, const ConvGeometry& g, const float* w,
                         std::size_t batch, const Size3& in, const float* dy, float* dx,
                         ConvGradAlgorithm algorithm = ConvGradAlgorithm::kAuto);

// dw, db (unless null) and dx (unless null) at once, as conv_weight_gradient and
// conv_input_gradient compute them; a depthwise layer's in one pass over each chunk of
// images (its dx planes, then its dw sums while its dy is still in cache).
void conv_gradients(const GemmUkernel& uk, const ConvGeometry& g, const float* x,
                    const float* w, std::size_t batch, const Size3& in, const float* dy,
                    float* dx, float* dw, float* db, bool accumulate,
                    ConvGradAlgorithm algorithm = ConvGradAlgorithm::kAuto);

}  // namespace fdl
