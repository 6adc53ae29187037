// Reference optimizer updates: plain scalar loops of the formulas in fastdl/optimizer.h,
// the specification every vectorised variant is tested against. Never optimised.
#include <algorithm>
#include <cmath>

#include "fastdl/optimizer.h"

void fdl_f32_sgd__ref(std::size_t n, float* w, const float* g, float* velocity,
                      const fdl::OptimizerStep& s) {
  for (std::size_t i = 0; i < n; ++i) {
    if (!velocity) {
      w[i] -= s.lr * g[i];
      continue;
    }
    const float v = s.momentum * velocity[i] - s.lr * g[i];
    velocity[i] = v;
    w[i] += s.nesterov ? s.momentum * v - s.lr * g[i] : v;
  }
}

void fdl_f32_rmsprop__ref(std::size_t n, float* w, const float* g, float* rms, float* mom,
                          float* avg, const fdl::OptimizerStep& s) {
  for (std::size_t i = 0; i < n; ++i) {
    const float r = s.rho * rms[i] + (1.0f - s.rho) * g[i] * g[i];
    rms[i] = r;
    float d = r + s.epsilon;
    if (avg) {
      const float a = s.rho * avg[i] + (1.0f - s.rho) * g[i];
      avg[i] = a;
      d = r - a * a + s.epsilon;
    }
    float step = s.lr * g[i] / std::sqrt(d);
    if (mom) {
      step = s.momentum * mom[i] + step;
      mom[i] = step;
    }
    w[i] -= step;
  }
}

void fdl_f32_adam__ref(std::size_t n, float* w, const float* g, float* m, float* v, float* vhat,
                       const fdl::OptimizerStep& s) {
  for (std::size_t i = 0; i < n; ++i) {
    float wi = w[i];
    if (s.decay != 0.0f) wi -= wi * s.decay;
    const float mi = m[i] + (g[i] - m[i]) * (1.0f - s.beta_1);
    float vi = v[i] + (g[i] * g[i] - v[i]) * (1.0f - s.beta_2);
    m[i] = mi;
    v[i] = vi;
    if (vhat) {
      vi = std::max(vhat[i], vi);
      vhat[i] = vi;
    }
    w[i] = wi - s.lr * mi / (std::sqrt(vi) + s.epsilon);
  }
}

void fdl_f32_adagrad__ref(std::size_t n, float* w, const float* g, float* acc,
                          const fdl::OptimizerStep& s) {
  for (std::size_t i = 0; i < n; ++i) {
    const float a = acc[i] + g[i] * g[i];
    acc[i] = a;
    w[i] -= s.lr * g[i] / std::sqrt(a + s.epsilon);
  }
}
