// Activations: the scalar specification used by every fused epilogue, and the standalone
// kernels over arrays (elementwise y = act(x); softmax / log_softmax over rows) with their
// gradients.
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

// The gradient of an activation: dx[i] = dy[i] * act'(x[i]), read from t[i], which is the
// activation's output y for the activations whose derivative is a function of it (none,
// relu, relu6, sigmoid, tanh: backward_reads_output) and its input x for the others
// (leaky_relu, elu, silu, hard_swish). At the kinks the derivative is PyTorch's: relu' and
// relu6' are 0 where y is 0 or 6, leaky_relu'(0) = alpha, elu'(0) = alpha,
// hard_swish'(-3) = 0 and hard_swish'(3) = 1. dx may alias dy or t.
using ActivationBackwardFn = void (*)(std::size_t n, const float* t, const float* dy,
                                      float* dx, Activation act, float alpha);

// The gradient of SoftmaxFn (same [outer][n][inner] layout and scale) from its output y:
//   softmax:     dx = scale * y * (dy - sum(dy * y))
//   log_softmax: dx = scale * (dy - exp(y) * sum(dy))
// sums along n, per vector. dx may alias dy.
using SoftmaxBackwardFn = void (*)(std::size_t outer, std::size_t n, std::size_t inner,
                                   const float* y, const float* dy, float* dx, float scale,
                                   bool log);

// Whether ActivationBackwardFn reads the activation's output (true) or its input.
constexpr bool backward_reads_output(Activation act) {
  return act == Activation::kNone || act == Activation::kRelu || act == Activation::kRelu6 ||
         act == Activation::kSigmoid || act == Activation::kTanh;
}

// The specification of ActivationBackwardFn for one element: dy * act'(x), t as above.
float activate_backward_ref(float t, float dy, Activation act, float alpha);

struct ActivationVariant {
  const char* name;  // fdl_f32_activation__<isa>
  Isa isa;
  int width;         // floats per vector
  ActivationFn activation;
  SoftmaxFn softmax;
  ExpFn exp;
  ActivationBackwardFn activation_backward;
  SoftmaxBackwardFn softmax_backward;
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
void activation_backward(const ActivationVariant& v, std::size_t n, const float* t,
                         const float* dy, float* dx, Activation act, float alpha);
void softmax_backward(const ActivationVariant& v, std::size_t outer, std::size_t n,
                      std::size_t inner, const float* y, const float* dy, float* dx,
                      float scale, bool log);

}  // namespace fdl
