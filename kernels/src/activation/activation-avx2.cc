// Activation kernels, avx2 build of activation-kernels.inc.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "fastdl/activation.h"

namespace {
#include "../simd/vec-avx2.inc"
#include "../simd/activation-vec.inc"
#include "activation-kernels.inc"
}  // namespace

void fdl_f32_activation__avx2(std::size_t n, const float* x, float* y, fdl::Activation act,
                              float alpha) {
  activation_any(n, x, y, act, alpha);
}

void fdl_f32_softmax__avx2(std::size_t outer, std::size_t n, std::size_t inner,
                           const float* x, float* y, float scale, bool log) {
  softmax_any(outer, n, inner, x, y, scale, log);
}

void fdl_f32_exp__avx2(std::size_t n, const float* x, float* y) { exp_any(n, x, y); }

void fdl_f32_activation_backward__avx2(std::size_t n, const float* t, const float* dy, float* dx,
                                 fdl::Activation act, float alpha) {
  activation_backward_any(n, t, dy, dx, act, alpha);
}

void fdl_f32_softmax_backward__avx2(std::size_t outer, std::size_t n, std::size_t inner,
                                  const float* y, const float* dy, float* dx, float scale,
                                  bool log) {
  softmax_backward_any(outer, n, inner, y, dy, dx, scale, log);
}
