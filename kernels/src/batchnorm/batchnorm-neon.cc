// Batch-norm kernels, neon build of batchnorm-plane.inc (the forward's plane) and
// batchnorm-backward.inc (the gradient's sums and elementwise passes).
#include <arm_neon.h>

#include <algorithm>
#include <cstddef>

#include "fastdl/batchnorm.h"

namespace {
#include "../simd/vec-neon.inc"
#include "../simd/activation-vec.inc"
#include "batchnorm-plane.inc"
#include "batchnorm-backward.inc"
}  // namespace

void fdl_f32_batchnorm__neon(const float* x, std::size_t n, float scale, float shift,
                            fdl::Activation act, float alpha, float* y) {
  batch_norm_plane(x, n, scale, shift, act, alpha, y);
}

void fdl_f32_batchnorm_sums__neon(const float* x, const float* dy, std::size_t n, float mean,
                                 double* sum_dy, double* sum_dyxc) {
  bn_sums(x, dy, n, mean, sum_dy, sum_dyxc);
}

void fdl_f32_batchnorm_grad__neon(const float* x, const float* dy, std::size_t n, float mean,
                                 float a, float p, float q, float* dx) {
  bn_grad(x, dy, n, mean, a, p, q, dx);
}

void fdl_f32_batchnorm_sums_rows__neon(const float* x, const float* dy, std::size_t rows,
                                      std::size_t channels, const float* mean, float* acc_dy,
                                      float* acc_dyxc) {
  bn_sums_rows(x, dy, rows, channels, mean, acc_dy, acc_dyxc);
}

void fdl_f32_batchnorm_grad_rows__neon(const float* x, const float* dy, std::size_t rows,
                                      std::size_t channels, const float* mean, const float* a,
                                      const float* p, const float* q, float* dx) {
  bn_grad_rows(x, dy, rows, channels, mean, a, p, q, dx);
}
