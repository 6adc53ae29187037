// Reference embedding-gradient row sum: plain loops in double, the specification of
// EmbeddingRowSumFn the ISA kernels (embedding-rows.inc) are tested against.
#include <cstddef>
#include <cstdint>

#include "fastdl/embedding.h"

void fdl_f32_embedding_backward__ref(const float* dy, std::size_t dim,
                                     const std::int64_t* positions, std::size_t count,
                                     float scale, float* dst) {
  for (std::size_t d = 0; d < dim; ++d) {
    double sum = 0.0;
    for (std::size_t k = 0; k < count; ++k)
      sum += dy[static_cast<std::size_t>(positions[k]) * dim + d];
    dst[d] = static_cast<float>(sum) * scale;
  }
}
