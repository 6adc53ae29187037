// Direct depthwise convolution, avx2 build of depthwise-plane.inc.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <new>

#include "fastdl/conv.h"
#include "depthwise-window.h"

namespace {
#include "../simd/vec-avx2.inc"
#include "../simd/activation-vec.inc"
#include "plane-scratch.inc"
#include "depthwise-masked.inc"
#include "depthwise-flat.inc"
#include "depthwise-plane.inc"
#include "depthwise-channels.inc"
}  // namespace

void fdl_f32_depthwise__avx2(const fdl::ConvGeometry& g, const float* x, std::size_t in_h,
                             std::size_t in_w, const float* w, float bias, fdl::Activation act,
                             float alpha, float* y) {
  depthwise_any(g, x, in_h, in_w, w, bias, act, alpha, y);
}

void fdl_f32_depthwise_channels__avx2(const fdl::ConvGeometry& g, const float* x,
                                       std::size_t in_h, std::size_t in_w,
                                       std::size_t channels, const float* w, const float* bias,
                                       fdl::Activation act, float alpha, float* y) {
  depthwise_channels_any(g, x, in_h, in_w, channels, w, bias, act, alpha, y);
}
