// Pooling, avx2 build of pool-plane.inc.
#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <new>

#include "pool-variants.h"

namespace {
#include "../simd/vec-avx2.inc"
#include "pool-plane.inc"
}  // namespace

void fdl_f32_pool__avx2(const fdl::PoolParams& p, std::size_t planes, const float* x,
                        float* y, std::int64_t* indices) {
  pool_any(p, planes, x, y, indices);
}

void fdl_f32_avg_pool_backward__avx2(const fdl::PoolParams& p, std::size_t planes,
                                     const float* dy, float* dx) {
  avg_pool_backward_any(p, planes, dy, dx);
}

void fdl_f32_max_pool_backward_2x2__avx2(const fdl::PoolParams& p, std::size_t planes,
                                         const float* x, const float* dy, float* dx) {
  max_pool_backward_2x2(p, planes, x, dy, dx);
}

void fdl_f32_max_pool_codes_2x2__avx2(const fdl::PoolParams& p, std::size_t planes,
                                     const float* x, float* y, float* codes, bool relu_gate) {
  pool_2x2_even<fdl::PoolKind::kMax, true>(p, planes, x, y, nullptr, codes, relu_gate);
}

void fdl_f32_max_pool_codes_backward_2x2__avx2(const fdl::PoolParams& p, std::size_t planes,
                                              const float* codes, const float* dy, float* dx) {
  max_pool_codes_backward_2x2(p, planes, codes, dy, dx);
}
