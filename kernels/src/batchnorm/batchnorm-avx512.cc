// Batch-norm plane kernel, avx512 build of batchnorm-plane.inc.
#include <immintrin.h>

#include <cstddef>

#include "fastdl/batchnorm.h"

namespace {
#include "../simd/vec-avx512.inc"
#include "../simd/activation-vec.inc"
#include "batchnorm-plane.inc"
}  // namespace

void fdl_f32_batchnorm__avx512(const float* x, std::size_t n, float scale, float shift,
                             fdl::Activation act, float alpha, float* y) {
  batch_norm_plane(x, n, scale, shift, act, alpha, y);
}
