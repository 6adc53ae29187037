// Reference batch-norm kernels: plain loops, the specification of BatchNormPlaneFn and of
// the gradient's kernels that the ISA kernels (batchnorm-plane.inc, batchnorm-backward.inc)
// are tested against. Never optimised.
#include <cstddef>

#include "fastdl/activation.h"
#include "fastdl/batchnorm.h"

void fdl_f32_batchnorm__ref(const float* x, std::size_t n, float scale, float shift,
                            fdl::Activation act, float alpha, float* y) {
  for (std::size_t i = 0; i < n; ++i) y[i] = fdl::activate_ref(x[i] * scale + shift, act, alpha);
}

// The gradient's kernels: plain loops, sums in double (contracts in fastdl/batchnorm.h).
void fdl_f32_batchnorm_sums__ref(const float* x, const float* dy, std::size_t n, float mean,
                                 double* sum_dy, double* sum_dyxc) {
  for (std::size_t i = 0; i < n; ++i) {
    *sum_dy += dy[i];
    *sum_dyxc += static_cast<double>(dy[i]) * (static_cast<double>(x[i]) - mean);
  }
}

void fdl_f32_batchnorm_grad__ref(const float* x, const float* dy, std::size_t n, float mean,
                                 float a, float p, float q, float* dx) {
  for (std::size_t i = 0; i < n; ++i)
    dx[i] = static_cast<float>(double(a) * dy[i] + double(p) * (double(x[i]) - mean) + q);
}

void fdl_f32_batchnorm_sums_rows__ref(const float* x, const float* dy, std::size_t rows,
                                      std::size_t channels, const float* mean, float* acc_dy,
                                      float* acc_dyxc) {
  for (std::size_t c = 0; c < channels; ++c) {
    double s = 0.0, t = 0.0;
    for (std::size_t r = 0; r < rows; ++r) {
      const double d = dy[r * channels + c];
      s += d;
      t += d * (static_cast<double>(x[r * channels + c]) - mean[c]);
    }
    acc_dy[c] = static_cast<float>(acc_dy[c] + s);
    acc_dyxc[c] = static_cast<float>(acc_dyxc[c] + t);
  }
}

void fdl_f32_batchnorm_grad_rows__ref(const float* x, const float* dy, std::size_t rows,
                                      std::size_t channels, const float* mean, const float* a,
                                      const float* p, const float* q, float* dx) {
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < channels; ++c) {
      const std::size_t i = r * channels + c;
      dx[i] = static_cast<float>(double(a[c]) * dy[i] +
                                 double(p[c]) * (double(x[i]) - mean[c]) + q[c]);
    }
}
