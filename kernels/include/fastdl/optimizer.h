// Optimizer updates: one pass over a weight, its gradient and the optimizer's state arrays
// ("slots"), in place. The formulas are Keras 3's, in float32 arithmetic as Keras computes:
//   sgd:      momentum == 0 (velocity null): w -= lr g
//             else v = momentum v - lr g; w += v (nesterov: w += momentum v - lr g)
//   rmsprop:  r = rho r + (1 - rho) g^2; centered (avg given): a = rho a + (1 - rho) g,
//             d = r - a^2 + eps, else d = r + eps; s = lr g / sqrt(d);
//             momentum (mom given): m = momentum m + s, w -= m; else w -= s
//   adam:     w -= decay w (decoupled weight decay, AdamW; decay = lr * weight_decay);
//             m += (g - m)(1 - beta_1); v += (g^2 - v)(1 - beta_2); amsgrad (vhat given):
//             vhat = max(vhat, v), used for v; w -= lr m / (sqrt(v) + eps), lr being the
//             bias-corrected rate lr sqrt(1 - beta_2^t) / (1 - beta_1^t)
//   adagrad:  a += g^2; w -= lr g / sqrt(a + eps)
// Variants (one per ISA, src/optimizer/variants.inc) are named fdl_f32_optimizer__<isa>.
#pragma once

#include <cstddef>
#include <vector>

#include "fastdl/common.h"

namespace fdl {

struct OptimizerStep {
  float lr = 0.0f;
  float momentum = 0.0f;  // sgd, rmsprop
  bool nesterov = false;  // sgd
  float rho = 0.9f;       // rmsprop
  float beta_1 = 0.9f, beta_2 = 0.999f;  // adam
  float epsilon = 1e-7f;
  float decay = 0.0f;     // adam: lr * weight_decay
};

using SgdFn = void (*)(std::size_t n, float* w, const float* g, float* velocity,
                       const OptimizerStep& s);
using RmspropFn = void (*)(std::size_t n, float* w, const float* g, float* rms, float* mom,
                           float* avg, const OptimizerStep& s);
using AdamFn = void (*)(std::size_t n, float* w, const float* g, float* m, float* v,
                        float* vhat, const OptimizerStep& s);
using AdagradFn = void (*)(std::size_t n, float* w, const float* g, float* acc,
                           const OptimizerStep& s);

struct OptimizerVariant {
  const char* name;  // fdl_f32_optimizer__<isa>
  Isa isa;
  int width;         // floats per vector
  SgdFn sgd;
  RmspropFn rmsprop;
  AdamFn adam;
  AdagradFn adagrad;
};

// Every variant compiled into this build, best first (including ones this CPU cannot run).
const std::vector<OptimizerVariant>& optimizer_variants();
// The variant for the active ISA (see isa.h).
const OptimizerVariant& optimizer_best();
// nullptr if no variant has that name.
const OptimizerVariant* optimizer_find(const char* name);

// The updates of variant v split over the thread pool (large weights only). Null slots as
// above.
void sgd_update(const OptimizerVariant& v, std::size_t n, float* w, const float* g,
                float* velocity, const OptimizerStep& s);
void rmsprop_update(const OptimizerVariant& v, std::size_t n, float* w, const float* g,
                    float* rms, float* mom, float* avg, const OptimizerStep& s);
void adam_update(const OptimizerVariant& v, std::size_t n, float* w, const float* g, float* m,
                 float* vv, float* vhat, const OptimizerStep& s);
void adagrad_update(const OptimizerVariant& v, std::size_t n, float* w, const float* g,
                    float* acc, const OptimizerStep& s);

}  // namespace fdl
