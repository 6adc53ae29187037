// The depthwise windows the specialised kernels take (depthwise-plane.inc's padded and
// masked forms, depthwise-channels.inc): MobileNet-style square 3x3 or 5x5, the same
// stride 1 or 2 along height and width, no dilation. Private to kernels/src/conv.
#pragma once

#include "fastdl/conv.h"

namespace fdl {

inline bool depthwise_window_specialised(const ConvGeometry& g) {
  const auto k = g.kernel[1], s = g.stride[1];
  return k == g.kernel[2] && (k == 3 || k == 5) && (s == 1 || s == 2) && g.stride[2] == s &&
         g.dilation[1] == 1 && g.dilation[2] == 1;
}

}  // namespace fdl
