// Declarations of every pooling variant in variants.inc. Private to kernels/src/pooling.
#pragma once

#include <cstddef>
#include <cstdint>

#include "fastdl/pool.h"

#define FDL_POOL_VARIANT(sfx, isa)                                                        \
  void fdl_f32_pool__##sfx(const fdl::PoolParams&, std::size_t, const float*, float*, \
                           std::int64_t*);                                                \
  void fdl_f32_avg_pool_backward__##sfx(const fdl::PoolParams&, std::size_t, const float*, \
                                        float*);                                            \
  void fdl_f32_max_pool_backward_2x2__##sfx(const fdl::PoolParams&, std::size_t,             \
                                            const float*, const float*, float*);            \
  void fdl_f32_max_pool_codes_2x2__##sfx(const fdl::PoolParams&, std::size_t, const float*,  \
                                         float*, float*, bool);                              \
  void fdl_f32_max_pool_codes_backward_2x2__##sfx(const fdl::PoolParams&, std::size_t,       \
                                                  const float*, const float*, float*);
#include "variants.inc"
#undef FDL_POOL_VARIANT

// Max pooling's indices (PyTorch's flat index within each input plane) for the maxima y
// already computed: per output, the first tap in PyTorch's scan order equal to y, or the
// last NaN tap where y is NaN (PyTorch updates on `v > best || isnan(v)`); where every
// tap is -inf, the first in-bounds tap. The SIMD variants compute y with their vector
// kernels and then call this scalar pass, instead of the reference's full scalar pooling.
void fdl_f32_pool_argmax__ref(const fdl::PoolParams& p, std::size_t planes, const float* x,
                              const float* y, std::int64_t* indices);

// Max pooling's gradient over `planes` planes (the contract of fdl::max_pool_backward),
// scalar on every ISA (see fastdl/pool.h); returns the number of indices skipped for lying
// outside [0, in_plane).
std::size_t fdl_f32_max_pool_backward__ref(std::size_t planes, std::size_t in_plane,
                                           std::size_t out_plane, const float* dy,
                                           const std::int64_t* indices, float* dx);
