// Depthwise convolution gradients, neon build of depthwise_backward-plane.inc.
#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "fastdl/conv_backward.h"

namespace {
constexpr int kVecRegisters = 32;
#include "../simd/vec-neon.inc"
#include "plane-scratch.inc"
#include "depthwise_backward-plane.inc"
}  // namespace

void fdl_f32_depthwise_weight_grad__neon(const fdl::ConvGeometry& g, const float* x,
                                        std::size_t x_stride, const float* dy,
                                        std::size_t dy_stride, std::size_t planes,
                                        std::size_t in_h, std::size_t in_w, double* dw) {
  depthwise_weight_grad(g, x, x_stride, dy, dy_stride, planes, in_h, in_w, dw);
}

void fdl_f32_depthwise_input_grad__neon(const fdl::ConvGeometry& g, const float* dy,
                                       std::size_t dy_stride, std::size_t multiplier,
                                       const float* w, std::size_t in_h, std::size_t in_w,
                                       float* dx) {
  depthwise_input_grad(g, dy, dy_stride, multiplier, w, in_h, in_w, dx);
}
