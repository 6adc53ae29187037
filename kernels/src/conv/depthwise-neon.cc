// Direct depthwise convolution, neon build of depthwise-plane.inc.
#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <new>

#include "fastdl/conv.h"
#include "depthwise-window.h"

namespace {
#include "../simd/vec-neon.inc"
#include "../simd/activation-vec.inc"
#include "plane-scratch.inc"
#include "depthwise-masked.inc"
#include "depthwise-flat.inc"
#include "depthwise-plane.inc"
}  // namespace

void fdl_f32_depthwise__neon(const fdl::ConvGeometry& g, const float* x, std::size_t in_h,
                             std::size_t in_w, const float* w, float bias, fdl::Activation act,
                             float alpha, float* y) {
  depthwise_any(g, x, in_h, in_w, w, bias, act, alpha, y);
}
