// Optimizer updates, avx512 build of optimizer-kernels.inc.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "fastdl/optimizer.h"

namespace {
#include "../simd/vec-avx512.inc"
#include "optimizer-kernels.inc"
}  // namespace

void fdl_f32_sgd__avx512(std::size_t n, float* w, const float* g, float* velocity,
                     const fdl::OptimizerStep& s) {
  sgd_any(n, w, g, velocity, s);
}

void fdl_f32_rmsprop__avx512(std::size_t n, float* w, const float* g, float* rms, float* mom,
                         float* avg, const fdl::OptimizerStep& s) {
  rmsprop_any(n, w, g, rms, mom, avg, s);
}

void fdl_f32_adam__avx512(std::size_t n, float* w, const float* g, float* m, float* v, float* vhat,
                      const fdl::OptimizerStep& s) {
  adam_any(n, w, g, m, v, vhat, s);
}

void fdl_f32_adagrad__avx512(std::size_t n, float* w, const float* g, float* acc,
                         const fdl::OptimizerStep& s) {
  adagrad_any(n, w, g, acc, s);
}
