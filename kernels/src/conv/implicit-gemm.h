// Where the implicit GEMM (fdl::ImplicitGemmFn, fastdl/conv.h) applies to a convolution,
// and the tap shifts and lane masks it reads (private to kernels/src/conv and its tests).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "fastdl/conv.h"

namespace fdl {

// Stride 1 along height and width of a single-depth input, output rows as wide as the
// input's (the horizontal padding totals the dilated window's extent minus one).
inline bool implicit_gemm_applies(const ConvGeometry& g, const Size3& in) {
  return in[0] == 1 && g.kernel[0] == 1 && g.pad_before[0] == 0 && g.pad_after[0] == 0 &&
         g.stride[1] == 1 && g.stride[2] == 1 &&
         g.pad_before[2] + g.pad_after[2] == g.dilation[2] * (g.kernel[2] - 1) &&
         g.out_size(in)[1] > 0 && in[2] > 0;
}

// shift [taps] (ImplicitGemm::shift) and lanes [blocks][taps]: block b's pixels [32b, 32b +
// 32) of the out_h * in_w output plane, bit j of tap t set iff pixel 32b + j exists and
// reads inside the image at that tap.
inline void implicit_gemm_lanes(const ConvGeometry& g, const Size3& in, std::ptrdiff_t* shift,
                                std::uint32_t* lanes) {
  using sidx = std::ptrdiff_t;
  const sidx H = static_cast<sidx>(in[1]), W = static_cast<sidx>(in[2]);
  const sidx OH = static_cast<sidx>(g.out_size(in)[1]), out_plane = OH * W;
  const sidx KW = static_cast<sidx>(g.kernel[2]), taps = static_cast<sidx>(g.taps());
  const sidx block = static_cast<sidx>(kImplicitBlock);
  const sidx blocks = (out_plane + block - 1) / block;
  for (sidx t = 0; t < taps; ++t) {
    const sidx dy = (t / KW) * static_cast<sidx>(g.dilation[1]) - static_cast<sidx>(g.pad_before[1]);
    const sidx dx = (t % KW) * static_cast<sidx>(g.dilation[2]) - static_cast<sidx>(g.pad_before[2]);
    shift[t] = dy * W + dx;
    // The outputs whose tap lands inside: rows [r0, r1), columns [c0, c1).
    const sidx r0 = std::max<sidx>(0, -dy), r1 = std::min(OH, H - dy);
    const sidx c0 = std::max<sidx>(0, -dx), c1 = std::min(W, W - dx);
    for (sidx b = 0; b < blocks; ++b) {
      const sidx q0 = b * block, q1 = std::min(q0 + block, out_plane);
      std::uint64_t bits = 0;
      for (sidx oh = std::max(q0 / W, r0); oh < std::min((q1 - 1) / W + 1, r1); ++oh) {
        const sidx lo = std::max(q0, oh * W + c0), hi = std::min(q1, oh * W + c1);
        if (lo < hi) bits |= ((std::uint64_t{1} << (hi - q0)) - 1) & ~((std::uint64_t{1} << (lo - q0)) - 1);
      }
      lanes[b * taps + t] = static_cast<std::uint32_t>(bits);
    }
  }
}

}  // namespace fdl
