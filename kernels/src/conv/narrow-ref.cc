// Reference narrow convolution: plain loops, the specification of NarrowConvFn that the
// ISA kernels (narrow-plane.inc) are tested against. Never optimised.
#include <cstddef>

#include "fastdl/activation.h"
#include "fastdl/conv.h"

void fdl_f32_narrow__ref(const fdl::NarrowConv& nc, const float* padded, const float* w,
                         const float* bias, fdl::Activation act, float alpha, float* y,
                         std::size_t channels, std::size_t oh0, std::size_t oh1) {
  const std::size_t taps = nc.in_channels * nc.kernel_h * nc.kernel_w;
  const std::size_t channel = nc.padded_h * nc.padded_w;
  for (std::size_t c = 0; c < channels; ++c)
    for (std::size_t oh = oh0; oh < oh1; ++oh)
      for (std::size_t ow = 0; ow < nc.out_w; ++ow) {
        float acc = bias[c];
        for (std::size_t t = 0; t < taps; ++t) {
          const std::size_t ci = t / (nc.kernel_h * nc.kernel_w);
          const std::size_t ky = (t / nc.kernel_w) % nc.kernel_h, kx = t % nc.kernel_w;
          // Stride 2: the row's even columns, then its odd ones (NarrowConv).
          const std::size_t col = nc.stride == 1 ? ow + kx
                                                 : (kx % 2) * (nc.padded_w / 2) + ow + kx / 2;
          acc += w[t * fdl::kNarrowBlock + c] *
                 padded[ci * channel + (oh * nc.stride + ky) * nc.padded_w + col];
        }
        y[(c * nc.out_h + oh) * nc.out_w + ow] = fdl::activate_ref(acc, act, alpha);
      }
}
