// Reference depthwise plane kernel: plain loops, the specification of DepthwisePlaneFn that
// the ISA kernels (depthwise-plane.inc) are tested against. Never optimised.
#include <cstddef>

#include "fastdl/activation.h"
#include "fastdl/conv.h"
#include "depthwise-window.h"

void fdl_f32_depthwise__ref(const fdl::ConvGeometry& g, const float* x, std::size_t in_h,
                            std::size_t in_w, const float* w, float bias, fdl::Activation act,
                            float alpha, float* y) {
  using sidx = std::ptrdiff_t;
  const sidx H = static_cast<sidx>(in_h), W = static_cast<sidx>(in_w);
  const std::size_t OH = g.out_size(1, in_h), OW = g.out_size(2, in_w);
  for (std::size_t oh = 0; oh < OH; ++oh)
    for (std::size_t ow = 0; ow < OW; ++ow) {
      float acc = bias;
      for (std::size_t ky = 0; ky < g.kernel[1]; ++ky)
        for (std::size_t kx = 0; kx < g.kernel[2]; ++kx) {
          const sidx ih = static_cast<sidx>(oh * g.stride[1] + ky * g.dilation[1]) -
                          static_cast<sidx>(g.pad_before[1]);
          const sidx iw = static_cast<sidx>(ow * g.stride[2] + kx * g.dilation[2]) -
                          static_cast<sidx>(g.pad_before[2]);
          if (ih >= 0 && ih < H && iw >= 0 && iw < W)
            acc += w[ky * g.kernel[2] + kx] * x[ih * W + iw];
        }
      y[oh * OW + ow] = fdl::activate_ref(acc, act, alpha);
    }
}
