// Embedding gradient row sums, avx512 build of embedding-rows.inc.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "fastdl/embedding.h"

namespace {
#include "../simd/vec-avx512.inc"
#include "embedding-rows.inc"
}  // namespace

void fdl_f32_embedding_backward__avx512(const float* dy, std::size_t dim,
                                      const std::int64_t* positions, std::size_t count,
                                      float scale, float* dst) {
  embedding_row_sum(dy, dim, positions, count, scale, dst);
}
