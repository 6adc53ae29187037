// The embedding lookup's gradient (torch.nn.functional.embedding semantics): the forward
// y[p] = w[indices[p]] (a gather, done by fastdl.ops) sends each row of dy back to the row
// of the table it came from:
//   dw[r] = scale_r * sum over positions p with indices[p] == r of dy[p]     (r != padding_idx)
//   dw[padding_idx] = 0,  scale_r = 1 / count_r with scale_grad_by_freq (count_r: how often r
//   occurs in indices), else 1.
// Positions are bucketed by row (a counting sort), so every row of dw is summed by one
// thread, in position order, with no atomics: the result does not depend on the thread
// count. Rows are split into tasks of about equal work (rows to write plus rows of dy to
// add); one very frequent row is one task.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fastdl/common.h"

namespace fdl {

// dst[0..dim) (overwritten) = scale * the sum over k < count of dy[positions[k] * dim + ...],
// the rows added in the order given. The ISA kernels add float32 vectors over blocks of
// kEmbeddingBlock rows and the blocks in double; the reference adds in double.
using EmbeddingRowSumFn = void (*)(const float* dy, std::size_t dim,
                                   const std::int64_t* positions, std::size_t count, float scale,
                                   float* dst);
constexpr std::size_t kEmbeddingBlock = 256;

struct EmbeddingVariant {
  const char* name;  // fdl_f32_embedding_backward__<isa>
  Isa isa;
  EmbeddingRowSumFn row_sum;
};

// Every variant compiled into this build, best first, the reference last (including ones
// this CPU cannot run). From src/embedding/variants.inc.
const std::vector<EmbeddingVariant>& embedding_variants();

// dw [num_embeddings][dim] (overwritten) from dy [n][dim] and indices [n]; padding_idx < 0:
// none. Threaded. Returns false, writing nothing, if an index lies outside
// [0, num_embeddings). `variant` defaults to the active ISA's.
bool embedding_backward(const std::int64_t* indices, std::size_t n, const float* dy,
                        std::size_t dim, std::size_t num_embeddings, std::int64_t padding_idx,
                        bool scale_grad_by_freq, float* dw,
                        const EmbeddingVariant* variant = nullptr);

}  // namespace fdl
