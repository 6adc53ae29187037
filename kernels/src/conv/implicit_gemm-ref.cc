// Reference implicit GEMM: plain loops, the specification of ImplicitGemmFn that the ISA
// kernels (implicit_gemm-tile.inc) are tested against. Never optimised.
#include <cstddef>
#include <cstdint>

#include "fastdl/activation.h"
#include "fastdl/conv.h"

void fdl_f32_implicit_gemm__ref(const fdl::ImplicitGemm& s, const float* x, const float* a,
                                std::size_t rows, std::size_t q0, std::size_t n,
                                const std::uint32_t* lanes, const float* bias,
                                fdl::Activation act, float alpha, float* y) {
  const std::ptrdiff_t plane = static_cast<std::ptrdiff_t>(s.plane);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < n; ++j) {
      const std::size_t oh = (q0 + j) / s.in_w, ow = (q0 + j) % s.in_w;
      if (ow >= s.out_w) continue;  // a dropped grid column
      const std::ptrdiff_t q = static_cast<std::ptrdiff_t>(q0 + j);
      float acc = 0.0f;
      for (std::size_t ci = 0; ci < s.in_channels; ++ci)
        for (std::size_t t = 0; t < s.taps; ++t) {
          if (!((lanes[t] >> j) & 1u)) continue;  // the tap reads padding here
          const float w = a[(ci * s.taps + t) * s.mr + r];
          acc += w * x[static_cast<std::ptrdiff_t>(ci) * plane + q + s.shift[t]];
        }
      y[r * s.out_plane + oh * s.out_w + ow] =
          fdl::activate_ref(acc + (bias ? bias[r] : 0.0f), act, alpha);
    }
}
