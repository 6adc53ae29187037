// The embedding gradient: the variant table (from variants.inc) and the driver that buckets
// positions by row and splits the rows over the thread pool. ISA-neutral (baseline flags).
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "fastdl/embedding.h"
#include "fastdl/threadpool.h"
#include "fastdl/variants.h"

#define FDL_EMBEDDING_VARIANT(sfx, isa) \
  std::remove_pointer_t<fdl::EmbeddingRowSumFn> fdl_f32_embedding_backward__##sfx;
#include "variants.inc"
#undef FDL_EMBEDDING_VARIANT

namespace fdl {

const std::vector<EmbeddingVariant>& embedding_variants() {
  static const std::vector<EmbeddingVariant> table = {
#define FDL_EMBEDDING_VARIANT(sfx, isa) \
  {"fdl_f32_embedding_backward__" #sfx, Isa::isa, &fdl_f32_embedding_backward__##sfx},
#include "variants.inc"
#undef FDL_EMBEDDING_VARIANT
  };
  return table;
}

namespace {

// Floats of work (rows of dw written plus rows of dy added) below which a task is not worth
// handing to another thread.
constexpr std::size_t kEmbeddingTaskFloats = std::size_t{1} << 15;

}  // namespace

bool embedding_backward(const std::int64_t* indices, std::size_t n, const float* dy,
                        std::size_t dim, std::size_t num_embeddings, std::int64_t padding_idx,
                        bool scale_grad_by_freq, float* dw, const EmbeddingVariant* variant) {
  const auto rows = static_cast<std::int64_t>(num_embeddings);
  for (std::size_t p = 0; p < n; ++p)
    if (indices[p] < 0 || indices[p] >= rows) return false;
  if (num_embeddings == 0 || dim == 0) return true;
  const EmbeddingRowSumFn row_sum = (variant ? *variant : best_variant(embedding_variants())).row_sum;
  // Counting sort: start[r] .. start[r + 1] index `order`, the positions of row r in
  // increasing order.
  std::vector<std::size_t> start(num_embeddings + 1, 0);
  for (std::size_t p = 0; p < n; ++p) ++start[static_cast<std::size_t>(indices[p]) + 1];
  for (std::size_t r = 0; r < num_embeddings; ++r) start[r + 1] += start[r];
  std::vector<std::int64_t> order(n);
  {
    std::vector<std::size_t> next(start.begin(), start.end() - 1);
    for (std::size_t p = 0; p < n; ++p)
      order[next[static_cast<std::size_t>(indices[p])]++] = static_cast<std::int64_t>(p);
  }
  // Tasks: consecutive rows of about equal work, (1 + count) * dim floats per row.
  const std::size_t total = (num_embeddings + n) * dim;
  const std::size_t target = std::max(kEmbeddingTaskFloats,
                                      total / (4 * static_cast<std::size_t>(num_threads())) + 1);
  std::vector<std::size_t> bounds{0};
  std::size_t work = 0;
  for (std::size_t r = 0; r < num_embeddings; ++r) {
    work += (1 + start[r + 1] - start[r]) * dim;
    if (work >= target && r + 1 < num_embeddings) {
      bounds.push_back(r + 1);
      work = 0;
    }
  }
  bounds.push_back(num_embeddings);
  parallel_for(bounds.size() - 1, [&](std::size_t t) {
    for (std::size_t r = bounds[t]; r < bounds[t + 1]; ++r) {
      const std::size_t count = start[r + 1] - start[r];
      float* out = dw + r * dim;
      if (count == 0 || static_cast<std::int64_t>(r) == padding_idx) {
        std::memset(out, 0, dim * sizeof(float));
        continue;
      }
      const float scale = scale_grad_by_freq ? 1.0f / static_cast<float>(count) : 1.0f;
      row_sum(dy, dim, order.data() + start[r], count, scale, out);
    }
  });
  return true;
}

}  // namespace fdl
