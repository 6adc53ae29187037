// fastdl kernel library: shared types.
//
// Contract for every kernel entry point in this library:
//  * inputs are raw, dense, row-major float32 buffers described by sizes and a params struct;
//  * outputs are written into caller-provided memory, never allocated here;
//  * nothing is validated beyond what the header of each op states: the Python layer
//    (fastdl/) checks arguments once at the public boundary and everything below trusts it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fdl {

// Activations that can be fused into a kernel's write-back.
enum class Activation : int {
  kNone = 0,
  kRelu = 1,
  kRelu6 = 2,
  kLeakyRelu = 3,  // x >= 0 ? x : alpha * x
  kSigmoid = 4,
  kTanh = 5,
  kSilu = 6,       // x * sigmoid(x)
  kElu = 7,        // x > 0 ? x : alpha * (exp(x) - 1)
  kHardSwish = 8,  // x * min(max(x + 3, 0), 6) / 6
};

// What happens to an output tile after its accumulation is complete:
//   y = act(acc + bias)
// bias_row[i] is added to row i of the output (conv: one per output channel),
// bias_col[j] to column j (linear: one per output feature); either may be null.
struct Epilogue {
  const float* bias_row = nullptr;
  const float* bias_col = nullptr;
  Activation act = Activation::kNone;
  float alpha = 0.01f;  // the activation's parameter: leaky_relu's slope, elu's alpha
  bool accumulate = false;  // add the product to what the output holds (GEMM: C += A * B,
                            // e.g. a weight gradient summed over several uses)
};

// Instruction-set levels, ordered: a higher level implies the lower ones can run.
enum class Isa : int { kRef = 0, kAvx2 = 1, kAvx512 = 2, kNeon = 3 };

const char* isa_name(Isa isa);

}  // namespace fdl
