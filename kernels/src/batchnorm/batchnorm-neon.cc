// Batch-norm plane kernel, neon build of batchnorm-plane.inc.
#include <arm_neon.h>

#include <cstddef>

#include "fastdl/batchnorm.h"

namespace {
#include "../simd/vec-neon.inc"
#include "../simd/activation-vec.inc"
#include "batchnorm-plane.inc"
}  // namespace

void fdl_f32_batchnorm__neon(const float* x, std::size_t n, float scale, float shift,
                             fdl::Activation act, float alpha, float* y) {
  batch_norm_plane(x, n, scale, shift, act, alpha, y);
}
