// Direct depthwise convolution (groups == in_channels == out_channels): each output plane
// is one input plane convolved with its own kernel. Not a GEMM: there is no reduction over
// channels to block for, so the kernel streams each plane once with the taps in registers.
// Private to kernels/src/conv2d.
#pragma once

#include <cstddef>

#include "fastdl/common.h"
#include "fastdl/conv.h"

namespace fdl {

// One plane: x [in_h][in_w] -> y [out_h][out_w] = act(conv(x, w [kernel_h][kernel_w]) + bias),
// with g's stride, dilation and padding (channel fields ignored).
using DepthwisePlaneFn = void (*)(const Conv2dGeometry& g, const float* x, std::size_t in_h,
                                  std::size_t in_w, const float* w, float bias, Activation act,
                                  float alpha, float* y);

// The kernel for `isa`, or null where this build has none (then im2col + GEMM is used).
DepthwisePlaneFn depthwise_kernel(Isa isa);

}  // namespace fdl
