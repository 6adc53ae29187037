// The narrow convolution, avx512 build of narrow-plane.inc.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>

#include "fastdl/conv.h"

namespace {
#include "../simd/vec-avx512.inc"
#include "../simd/activation-vec.inc"
constexpr int kNarrowVectors = 2;  // kNarrowBlock x 2 accumulators fit the registers
#include "narrow-plane.inc"
}  // namespace

void fdl_f32_narrow__avx512(const fdl::NarrowConv& nc, const float* padded, const float* w,
                        const float* bias, fdl::Activation act, float alpha, float* y,
                        std::size_t channels, std::size_t oh0, std::size_t oh1) {
  narrow_any(nc, padded, w, bias, act, alpha, y, channels, oh0, oh1);
}
