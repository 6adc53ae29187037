// Declarations of every pooling variant in variants.inc. Private to kernels/src/pooling.
#pragma once

#include <cstddef>
#include <cstdint>

#include "fastdl/pool.h"

#define FDL_POOL_VARIANT(sfx, isa)                                                        \
  void fdl_f32_pool__##sfx(const fdl::PoolParams&, std::size_t, const float*, float*, \
                           std::int64_t*);
#include "variants.inc"
#undef FDL_POOL_VARIANT
