// Reference depthwise gradient kernels: plain loops over every product, the specification
// of DepthwiseWeightGradFn and DepthwiseInputGradFn that the ISA kernels
// (depthwise_backward-plane.inc) are tested against. Never optimised.
#include <cstddef>

#include "fastdl/conv_backward.h"

namespace {

// fn(o, i, tap) for every product of one plane: output o = oh*OW + ow reads input
// i = ih*in_w + iw through tap ky*KW + kx (the ones inside the input).
template <class Fn>
void for_each_product(const fdl::ConvGeometry& g, std::size_t in_h, std::size_t in_w, Fn fn) {
  using sidx = std::ptrdiff_t;
  const std::size_t OH = g.out_size(1, in_h), OW = g.out_size(2, in_w);
  for (std::size_t oh = 0; oh < OH; ++oh)
    for (std::size_t ow = 0; ow < OW; ++ow)
      for (std::size_t ky = 0; ky < g.kernel[1]; ++ky)
        for (std::size_t kx = 0; kx < g.kernel[2]; ++kx) {
          const sidx ih = static_cast<sidx>(oh * g.stride[1] + ky * g.dilation[1]) -
                          static_cast<sidx>(g.pad_before[1]);
          const sidx iw = static_cast<sidx>(ow * g.stride[2] + kx * g.dilation[2]) -
                          static_cast<sidx>(g.pad_before[2]);
          if (ih < 0 || iw < 0 || ih >= static_cast<sidx>(in_h) || iw >= static_cast<sidx>(in_w))
            continue;
          fn(oh * OW + ow, static_cast<std::size_t>(ih) * in_w + static_cast<std::size_t>(iw),
             ky * g.kernel[2] + kx);
        }
}

}  // namespace

void fdl_f32_depthwise_weight_grad__ref(const fdl::ConvGeometry& g, const float* x,
                                        std::size_t x_stride, const float* dy,
                                        std::size_t dy_stride, std::size_t planes,
                                        std::size_t in_h, std::size_t in_w, double* dw) {
  for (std::size_t p = 0; p < planes; ++p) {
    const float* xp = x + p * x_stride;
    const float* dyp = dy + p * dy_stride;
    for_each_product(g, in_h, in_w, [&](std::size_t o, std::size_t i, std::size_t tap) {
      dw[tap] += static_cast<double>(dyp[o]) * xp[i];
    });
  }
}

void fdl_f32_depthwise_input_grad__ref(const fdl::ConvGeometry& g, const float* dy,
                                       std::size_t dy_stride, std::size_t multiplier,
                                       const float* w, std::size_t in_h, std::size_t in_w,
                                       float* dx) {
  for (std::size_t i = 0; i < in_h * in_w; ++i) dx[i] = 0.0f;
  for (std::size_t j = 0; j < multiplier; ++j) {
    const float* dyj = dy + j * dy_stride;
    const float* wj = w + j * g.kernel[1] * g.kernel[2];
    for_each_product(g, in_h, in_w, [&](std::size_t o, std::size_t i, std::size_t tap) {
      dx[i] += dyj[o] * wj[tap];
    });
  }
}
