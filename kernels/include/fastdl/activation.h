// Activations: the scalar specification used by every fused epilogue, and the standalone
// kernels over arrays (elementwise y = act(x); softmax / log_softmax over rows).
//
// Variants (one per ISA, listed in src/activation/variants.inc) are named
// fdl_f32_activation__<isa>; each is the family of that ISA's kernels below. Accuracy of
// the vectorised exp/expm1/sigmoid/tanh: see src/simd/activation-vec.inc.
#pragma once

#include <cstddef>
#include <vector>

#include "fastdl/common.h"

namespace fdl {

// The specification of every activation: y = act(x). `alpha` is the activation's parameter
// (leaky_relu's slope, elu's alpha; ignored by the others). NaN propagates.
float activate_ref(float x, Activation act, float alpha);

// y[i] = act(x[i]) for i < n. x == y (in place) is allowed.
using ActivationFn = void (*)(std::size_t n, const float* x, float* y, Activation act,
                              float alpha);

// Softmax along the middle axis of x [outer][n][inner] (dense; inner == 1: along rows).
// For each of the outer * inner vectors v of n floats: z = (v - max(v)) * scale, then
//   softmax:     y = exp(z) / sum(exp(z))
//   log_softmax: y = z - log(sum(exp(z)))
// i.e. softmax(v * scale) computed without overflow (scale = 1 / temperature > 0). As in
// PyTorch, a vector holding NaN or +Inf, or only -Inf, gives NaN everywhere; -Inf entries
// of the others give 0 (log: -Inf). x == y is allowed.
using SoftmaxFn = void (*)(std::size_t outer, std::size_t n, std::size_t inner, const float* x,
                           float* y, float scale, bool log);

// y[i] = exp(x[i]) (the vectorised exp, exposed for tests and reuse).
using ExpFn = void (*)(std::size_t n, const float* x, float* y);

struct ActivationVariant {
  const char* name;  // fdl_f32_activation__<isa>
  Isa isa;
  int width;         // floats per vector
  ActivationFn activation;
  SoftmaxFn softmax;
  ExpFn exp;
};

// Every variant compiled into this build, best first (including ones this CPU cannot run).
const std::vector<ActivationVariant>& activation_variants();
// The variant for the active ISA (see isa.h).
const ActivationVariant& activation_best();
// nullptr if no variant has that name.
const ActivationVariant* activation_find(const char* name);

// The kernels above split over the thread pool (large inputs only).
void activation(const ActivationVariant& v, std::size_t n, const float* x, float* y,
                Activation act, float alpha);
void softmax(const ActivationVariant& v, std::size_t outer, std::size_t n, std::size_t inner,
             const float* x, float* y, float scale, bool log);

}  // namespace fdl
