// Where the implicit GEMM (fdl::ImplicitGemmFn, fastdl/conv.h) applies to a convolution,
// and the tap shifts and lane masks it reads (private to kernels/src/conv and its tests).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fastdl/conv.h"

namespace fdl {

// Stride 1 along height and width of a single-depth input, output rows at most as wide as
// the input's and at least three quarters of it (the dropped grid columns cost at most a
// third more multiplications; narrower outputs take im2col).
inline bool implicit_gemm_applies(const ConvGeometry& g, const Size3& in) {
  const Size3 out = g.out_size(in);
  return in[0] == 1 && g.kernel[0] == 1 && g.pad_before[0] == 0 && g.pad_after[0] == 0 &&
         g.stride[1] == 1 && g.stride[2] == 1 && out[1] > 0 && out[2] > 0 &&
         out[2] <= in[2] && 4 * out[2] >= 3 * in[2];
}

// Blocks of kImplicitBlock pixels over the grid of out_h rows of in_w pixels.
inline std::size_t implicit_gemm_blocks(const ConvGeometry& g, const Size3& in) {
  return (g.out_size(in)[1] * in[2] + kImplicitBlock - 1) / kImplicitBlock;
}

// shift [taps] (ImplicitGemm::shift) and lanes [blocks][taps]: block b's pixels [32b, 32b +
// 32) of the out_h x in_w grid, bit j of tap t set iff grid pixel 32b + j is an output
// pixel (exists, and its column is below out_w) and reads inside the image at that tap.
inline void implicit_gemm_lanes(const ConvGeometry& g, const Size3& in, std::ptrdiff_t* shift,
                                std::uint32_t* lanes) {
  using sidx = std::ptrdiff_t;
  const sidx H = static_cast<sidx>(in[1]), W = static_cast<sidx>(in[2]);
  const sidx OH = static_cast<sidx>(g.out_size(in)[1]), grid = OH * W;
  const sidx OW = static_cast<sidx>(g.out_size(in)[2]);
  const sidx KW = static_cast<sidx>(g.kernel[2]), taps = static_cast<sidx>(g.taps());
  const sidx block = static_cast<sidx>(kImplicitBlock);
  const sidx blocks = static_cast<sidx>(implicit_gemm_blocks(g, in));
  for (sidx t = 0; t < taps; ++t) {
    const sidx dy = (t / KW) * static_cast<sidx>(g.dilation[1]) -
                    static_cast<sidx>(g.pad_before[1]);
    const sidx dx = (t % KW) * static_cast<sidx>(g.dilation[2]) -
                    static_cast<sidx>(g.pad_before[2]);
    shift[t] = dy * W + dx;
    // The outputs whose tap lands inside: rows [r0, r1), columns [c0, c1).
    const sidx r0 = std::max<sidx>(0, -dy), r1 = std::min(OH, H - dy);
    const sidx c0 = std::max<sidx>(0, -dx), c1 = std::min(OW, W - dx);
    for (sidx b = 0; b < blocks; ++b) {
      const sidx q0 = b * block, q1 = std::min(q0 + block, grid);
      std::uint64_t bits = 0;
      for (sidx oh = std::max(q0 / W, r0); oh < std::min((q1 - 1) / W + 1, r1); ++oh) {
        const sidx lo = std::max(q0, oh * W + c0), hi = std::min(q1, oh * W + c1);
        if (lo < hi)
          bits |= ((std::uint64_t{1} << (hi - q0)) - 1) & ~((std::uint64_t{1} << (lo - q0)) - 1);
      }
      lanes[b * taps + t] = static_cast<std::uint32_t>(bits);
    }
  }
}

// The shifts and lane masks of one input size, which a plan keeps for the size it was last
// called with (recomputing them cost 0.2-0.4 us a call on 8x8 to 16x16 images against a
// 5 us layer, 16 us on 112x112).
struct ImplicitGemmTables {
  Size3 in;
  std::vector<std::ptrdiff_t> shift;  // [taps]
  std::vector<std::uint32_t> lanes;   // [blocks][taps]
  ImplicitGemmTables(const ConvGeometry& g, const Size3& size)
      : in(size), shift(g.taps()), lanes(implicit_gemm_blocks(g, size) * g.taps()) {
    implicit_gemm_lanes(g, size, shift.data(), lanes.data());
  }
};

}  // namespace fdl
