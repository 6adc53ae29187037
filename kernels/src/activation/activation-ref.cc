// Reference activation kernels: plain scalar loops over activate_ref, the specification
// every vectorised variant is tested against. Never optimised.
#include <cmath>
#include <limits>

#include "fastdl/activation.h"

void fdl_f32_activation__ref(std::size_t n, const float* x, float* y, fdl::Activation act,
                             float alpha) {
  for (std::size_t i = 0; i < n; ++i) y[i] = fdl::activate_ref(x[i], act, alpha);
}

void fdl_f32_softmax__ref(std::size_t outer, std::size_t n, std::size_t inner, const float* x,
                          float* y, float scale, bool log) {
  for (std::size_t o = 0; o < outer; ++o, x += n * inner, y += n * inner) {
    for (std::size_t c = 0; c < inner; ++c) {  // the column x[k * inner + c], k < n
      float max = -std::numeric_limits<float>::infinity();
      for (std::size_t k = 0; k < n; ++k) {
        const float v = x[k * inner + c];
        max = v > max || std::isnan(v) ? v : max;
      }
      double sum = 0.0;
      for (std::size_t k = 0; k < n; ++k) sum += std::exp((x[k * inner + c] - max) * scale);
      for (std::size_t k = 0; k < n; ++k) {
        const float z = (x[k * inner + c] - max) * scale;
        y[k * inner + c] = static_cast<float>(log ? z - std::log(sum) : std::exp(z) / sum);
      }
    }
  }
}

void fdl_f32_exp__ref(std::size_t n, const float* x, float* y) {
  for (std::size_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

void fdl_f32_activation_backward__ref(std::size_t n, const float* t, const float* dy, float* dx,
                                      fdl::Activation act, float alpha) {
  for (std::size_t i = 0; i < n; ++i) dx[i] = fdl::activate_backward_ref(t[i], dy[i], act, alpha);
}

void fdl_f32_softmax_backward__ref(std::size_t outer, std::size_t n, std::size_t inner,
                                   const float* y, const float* dy, float* dx, float scale,
                                   bool log) {
  for (std::size_t o = 0; o < outer; ++o, y += n * inner, dy += n * inner, dx += n * inner) {
    for (std::size_t c = 0; c < inner; ++c) {  // the column [k * inner + c], k < n
      double sum = 0.0;
      for (std::size_t k = 0; k < n; ++k)
        sum += log ? double(dy[k * inner + c]) : double(dy[k * inner + c]) * y[k * inner + c];
      for (std::size_t k = 0; k < n; ++k) {
        const double yk = y[k * inner + c], dk = dy[k * inner + c];
        dx[k * inner + c] =
            static_cast<float>(scale * (log ? dk - std::exp(yk) * sum : yk * (dk - sum)));
      }
    }
  }
}
