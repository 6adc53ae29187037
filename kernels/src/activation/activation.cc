// The activation variant table (from variants.inc), dispatch on the active ISA, and the
// threaded entry points. ISA-neutral: built with baseline flags.
#include <algorithm>

#include "fastdl/activation.h"
#include "fastdl/isa.h"
#include "fastdl/threadpool.h"
#include "fastdl/variants.h"

#define FDL_ACTIVATION_VARIANT(isa, level, width)                                           \
  void fdl_f32_activation__##isa(std::size_t, const float*, float*, fdl::Activation, float); \
  void fdl_f32_softmax__##isa(std::size_t, std::size_t, std::size_t, const float*, float*,  \
                              float, bool);                                                 \
  void fdl_f32_exp__##isa(std::size_t, const float*, float*);                               \
  void fdl_f32_activation_backward__##isa(std::size_t, const float*, const float*, float*,  \
                                          fdl::Activation, float);                          \
  void fdl_f32_softmax_backward__##isa(std::size_t, std::size_t, std::size_t, const float*, \
                                       const float*, float*, float, bool);
#include "variants.inc"
#undef FDL_ACTIVATION_VARIANT

namespace fdl {

const std::vector<ActivationVariant>& activation_variants() {
  static const std::vector<ActivationVariant> table = {
#define FDL_ACTIVATION_VARIANT(isa, level, width)                                         \
  {"fdl_f32_activation__" #isa, Isa::level, width, &fdl_f32_activation__##isa,         \
   &fdl_f32_softmax__##isa, &fdl_f32_exp__##isa, &fdl_f32_activation_backward__##isa,    \
   &fdl_f32_softmax_backward__##isa},
#include "variants.inc"
#undef FDL_ACTIVATION_VARIANT
  };
  return table;
}

const ActivationVariant& activation_best() { return best_variant(activation_variants()); }

const ActivationVariant* activation_find(const char* name) {
  return find_variant(activation_variants(), name);
}

namespace {
// Floats per task: below two of these the pool costs more than it saves.
constexpr std::size_t kGrain = 1u << 15;
}  // namespace

void activation(const ActivationVariant& v, std::size_t n, const float* x, float* y,
                Activation act, float alpha) {
  const std::size_t tasks = n / kGrain;
  if (tasks < 2) return v.activation(n, x, y, act, alpha);
  // Task boundaries on 64-float (cache line, whole vector) multiples.
  auto start = [&](std::size_t t) { return t == tasks ? n : n * t / tasks / 64 * 64; };
  parallel_for(tasks, [&](std::size_t t) {
    const std::size_t i0 = start(t), i1 = start(t + 1);
    v.activation(i1 - i0, x + i0, y + i0, act, alpha);
  });
}

void softmax(const ActivationVariant& v, std::size_t outer, std::size_t n, std::size_t inner,
             const float* x, float* y, float scale, bool log) {
  const std::size_t size = n * inner;  // floats per outer index
  const std::size_t tasks = std::min(outer, outer * size / kGrain);
  if (tasks < 2) return v.softmax(outer, n, inner, x, y, scale, log);
  parallel_for(tasks, [&](std::size_t t) {
    const std::size_t o0 = outer * t / tasks, o1 = outer * (t + 1) / tasks;
    v.softmax(o1 - o0, n, inner, x + o0 * size, y + o0 * size, scale, log);
  });
}

void activation_backward(const ActivationVariant& v, std::size_t n, const float* t,
                         const float* dy, float* dx, Activation act, float alpha) {
  const std::size_t tasks = n / kGrain;
  if (tasks < 2) return v.activation_backward(n, t, dy, dx, act, alpha);
  auto start = [&](std::size_t k) { return k == tasks ? n : n * k / tasks / 64 * 64; };
  parallel_for(tasks, [&](std::size_t k) {
    const std::size_t i0 = start(k), i1 = start(k + 1);
    v.activation_backward(i1 - i0, t + i0, dy + i0, dx + i0, act, alpha);
  });
}

void softmax_backward(const ActivationVariant& v, std::size_t outer, std::size_t n,
                      std::size_t inner, const float* y, const float* dy, float* dx,
                      float scale, bool log) {
  const std::size_t size = n * inner;
  const std::size_t tasks = std::min(outer, outer * size / kGrain);
  if (tasks < 2) return v.softmax_backward(outer, n, inner, y, dy, dx, scale, log);
  parallel_for(tasks, [&](std::size_t k) {
    const std::size_t o0 = outer * k / tasks, o1 = outer * (k + 1) / tasks;
    v.softmax_backward(o1 - o0, n, inner, y + o0 * size, dy + o0 * size, dx + o0 * size,
                       scale, log);
  });
}

}  // namespace fdl
