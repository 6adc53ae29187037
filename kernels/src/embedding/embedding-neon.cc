// Embedding gradient row sums, neon build of embedding-rows.inc.
#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "fastdl/embedding.h"

namespace {
#include "../simd/vec-neon.inc"
#include "embedding-rows.inc"
}  // namespace

void fdl_f32_embedding_backward__neon(const float* dy, std::size_t dim,
                                      const std::int64_t* positions, std::size_t count,
                                      float scale, float* dst) {
  embedding_row_sum(dy, dim, positions, count, scale, dst);
}
