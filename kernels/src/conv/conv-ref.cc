// The naive direct convolution (fdl_f32_conv__ref): the specification of every convolution
// algorithm (contract: ConvDirectFn in fastdl/conv.h). Plain loops over every output and
// tap, accumulated in double; output planes are split over the thread pool so that tests
// can afford large shapes. Never optimised otherwise.
#include <cstddef>

#include "fastdl/activation.h"
#include "fastdl/conv.h"
#include "fastdl/threadpool.h"

void fdl_f32_conv__ref(const fdl::ConvGeometry& g, const float* x, std::size_t batch,
                       const fdl::Size3& in, const float* w, const float* bias,
                       fdl::Activation act, float alpha, float* y) {
  using sidx = std::ptrdiff_t;
  const fdl::Size3 out = g.out_size(in);
  const std::size_t cin_g = g.in_channels / g.groups, cout_g = g.out_channels / g.groups;
  const std::size_t in_plane = fdl::volume(in), out_plane = fdl::volume(out), taps = g.taps();
  // Input coordinate of output o, tap k along `axis`, or -1 where it lies in the padding.
  auto at = [&](int axis, std::size_t o, std::size_t k) -> sidx {
    const sidx i = static_cast<sidx>(o * g.stride[axis] + k * g.dilation[axis]) -
                   static_cast<sidx>(g.pad_before[axis]);
    return i >= 0 && i < static_cast<sidx>(in[axis]) ? i : -1;
  };
  fdl::parallel_for(batch * g.out_channels, [&](std::size_t plane) {
    const std::size_t n = plane / g.out_channels, co = plane % g.out_channels;
    const std::size_t grp = co / cout_g;
    const float* xg = x + (n * g.in_channels + grp * cin_g) * in_plane;
    const float* wo = w + co * cin_g * taps;
    float* yo = y + plane * out_plane;
    for (std::size_t od = 0; od < out[0]; ++od)
      for (std::size_t oh = 0; oh < out[1]; ++oh)
        for (std::size_t ow = 0; ow < out[2]; ++ow) {
          double acc = bias ? bias[co] : 0.0;
          for (std::size_t c = 0; c < cin_g; ++c)
            for (std::size_t kz = 0; kz < g.kernel[0]; ++kz)
              for (std::size_t ky = 0; ky < g.kernel[1]; ++ky)
                for (std::size_t kx = 0; kx < g.kernel[2]; ++kx) {
                  const sidx iz = at(0, od, kz), iy = at(1, oh, ky), ix = at(2, ow, kx);
                  if (iz < 0 || iy < 0 || ix < 0) continue;
                  const std::size_t tap = (kz * g.kernel[1] + ky) * g.kernel[2] + kx;
                  const std::size_t pos =
                      (static_cast<std::size_t>(iz) * in[1] + static_cast<std::size_t>(iy)) *
                          in[2] + static_cast<std::size_t>(ix);
                  acc += static_cast<double>(wo[c * taps + tap]) * xg[c * in_plane + pos];
                }
          yo[(od * out[1] + oh) * out[2] + ow] =
              fdl::activate_ref(static_cast<float>(acc), act, alpha);
        }
  });
}
