// The optimizer variant table (from variants.inc), dispatch on the active ISA, and the
// threaded entry points. ISA-neutral: built with baseline flags.
#include <algorithm>

#include "fastdl/isa.h"
#include "fastdl/optimizer.h"
#include "fastdl/threadpool.h"
#include "fastdl/variants.h"

#define FDL_OPTIMIZER_VARIANT(isa, level, width)                                             \
  void fdl_f32_sgd__##isa(std::size_t, float*, const float*, float*,                        \
                          const fdl::OptimizerStep&);                                       \
  void fdl_f32_rmsprop__##isa(std::size_t, float*, const float*, float*, float*, float*,    \
                              const fdl::OptimizerStep&);                                   \
  void fdl_f32_adam__##isa(std::size_t, float*, const float*, float*, float*, float*,       \
                           const fdl::OptimizerStep&);                                      \
  void fdl_f32_adagrad__##isa(std::size_t, float*, const float*, float*,                    \
                              const fdl::OptimizerStep&);
#include "variants.inc"
#undef FDL_OPTIMIZER_VARIANT

namespace fdl {

const std::vector<OptimizerVariant>& optimizer_variants() {
  static const std::vector<OptimizerVariant> table = {
#define FDL_OPTIMIZER_VARIANT(isa, level, width)                                           \
  {"fdl_f32_optimizer__" #isa, Isa::level, width, &fdl_f32_sgd__##isa,                  \
   &fdl_f32_rmsprop__##isa, &fdl_f32_adam__##isa, &fdl_f32_adagrad__##isa},
#include "variants.inc"
#undef FDL_OPTIMIZER_VARIANT
  };
  return table;
}

const OptimizerVariant& optimizer_best() { return best_variant(optimizer_variants()); }

const OptimizerVariant* optimizer_find(const char* name) {
  return find_variant(optimizer_variants(), name);
}

namespace {

// Floats per task: an update streams 4-7 arrays, so below this the pool costs more than
// the second core's bandwidth saves.
constexpr std::size_t kGrain = 1u << 16;

// Calls f(offset, count) over [0, n), split over the pool when n is large; boundaries on
// 64-float multiples (whole cache lines and vectors).
template <typename F>
void split(std::size_t n, F f) {
  const std::size_t tasks = n / kGrain;
  if (tasks < 2) return f(std::size_t(0), n);
  auto start = [&](std::size_t t) { return t == tasks ? n : n * t / tasks / 64 * 64; };
  parallel_for(tasks, [&](std::size_t t) { f(start(t), start(t + 1) - start(t)); });
}

float* at(float* p, std::size_t i) { return p ? p + i : nullptr; }

}  // namespace

void sgd_update(const OptimizerVariant& v, std::size_t n, float* w, const float* g,
                float* velocity, const OptimizerStep& s) {
  split(n, [&](std::size_t i, std::size_t k) { v.sgd(k, w + i, g + i, at(velocity, i), s); });
}

void rmsprop_update(const OptimizerVariant& v, std::size_t n, float* w, const float* g,
                    float* rms, float* mom, float* avg, const OptimizerStep& s) {
  split(n, [&](std::size_t i, std::size_t k) {
    v.rmsprop(k, w + i, g + i, rms + i, at(mom, i), at(avg, i), s);
  });
}

void adam_update(const OptimizerVariant& v, std::size_t n, float* w, const float* g, float* m,
                 float* vv, float* vhat, const OptimizerStep& s) {
  split(n, [&](std::size_t i, std::size_t k) {
    v.adam(k, w + i, g + i, m + i, vv + i, at(vhat, i), s);
  });
}

void adagrad_update(const OptimizerVariant& v, std::size_t n, float* w, const float* g,
                    float* acc, const OptimizerStep& s) {
  split(n, [&](std::size_t i, std::size_t k) { v.adagrad(k, w + i, g + i, acc + i, s); });
}

}  // namespace fdl
