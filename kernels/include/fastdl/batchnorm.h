// Batch normalisation over NC(spatial) tensors, PyTorch semantics.
//
// Inference is a per-channel affine map y = act(x * scale[c] + shift[c]) with
//   scale = gamma / sqrt(running_var + eps),  shift = beta - running_mean * scale;
// batch_norm_scale_shift() computes those, batch_norm_apply() applies them (the same kernel
// serves training once the batch statistics are known). Folding into a convolution or
// linear layer (fastdl.ops.fold_batch_norm) removes even that pass at inference.
//
// The gradient (batch_norm_backward) is two passes per channel: the reductions
// dbeta = sum(dy) and dgamma = sum(dy * xhat), then the elementwise dx. Each variant brings
// them in two layouts: planes (one (image, channel) plane of `spatial` floats at a time,
// the mean a scalar) and rows (spatial == 1: x [rows][channels], vectorised across the
// channels, the per-channel vectors loaded alongside).
#pragma once

#include <cstddef>
#include <vector>

#include "fastdl/common.h"

namespace fdl {

// The plane kernel: y[i] = act(x[i] * scale + shift) for i < n; x may equal y.
using BatchNormPlaneFn = void (*)(const float* x, std::size_t n, float scale, float shift,
                                  Activation act, float alpha, float* y);

// Over one plane: *sum_dy += sum(dy[i]), *sum_dyxc += sum(dy[i] * (x[i] - mean)), i < n.
// The ISA kernels add in float vector lanes over blocks of kBatchNormSumBlock floats and add
// each block's lanes to the doubles; the reference adds in double.
using BatchNormPlaneSumsFn = void (*)(const float* x, const float* dy, std::size_t n,
                                      float mean, double* sum_dy, double* sum_dyxc);
constexpr std::size_t kBatchNormSumBlock = 1024;

// Over one plane: dx[i] = a * dy[i] + p * (x[i] - mean) + q, i < n. dx may alias dy.
using BatchNormPlaneGradFn = void (*)(const float* x, const float* dy, std::size_t n,
                                      float mean, float a, float p, float q, float* dx);

// Over x, dy [rows][channels] (rows contiguous): acc_dy[c] += sum_r dy[r][c],
// acc_dyxc[c] += sum_r dy[r][c] * (x[r][c] - mean[c]), in float (the caller flushes the
// accumulators into doubles every few rows).
using BatchNormRowSumsFn = void (*)(const float* x, const float* dy, std::size_t rows,
                                    std::size_t channels, const float* mean, float* acc_dy,
                                    float* acc_dyxc);

// Over x, dy [rows][channels]: dx[r][c] = a[c] * dy[r][c] + p[c] * (x[r][c] - mean[c]) + q[c].
// dx may alias dy.
using BatchNormRowGradFn = void (*)(const float* x, const float* dy, std::size_t rows,
                                    std::size_t channels, const float* mean, const float* a,
                                    const float* p, const float* q, float* dx);

struct BatchNormVariant {
  const char* name;  // fdl_f32_batchnorm__<isa>
  Isa isa;
  BatchNormPlaneFn plane;
  // The gradient's kernels: fdl_f32_batchnorm_{sums,grad,sums_rows,grad_rows}__<isa>.
  BatchNormPlaneSumsFn sums;
  BatchNormPlaneGradFn grad;
  BatchNormRowSumsFn sums_rows;
  BatchNormRowGradFn grad_rows;
};

// Every variant compiled into this build, best first, the reference last (including ones
// this CPU cannot run). From src/batchnorm/variants.inc.
const std::vector<BatchNormVariant>& batchnorm_variants();

// y[n][c][i] = act(x[n][c][i] * scale[c] + shift[c]) for i < spatial; x may equal y.
// `variant` defaults to the active ISA's.
void batch_norm_apply(const float* x, std::size_t batch, std::size_t channels,
                      std::size_t spatial, const float* scale, const float* shift,
                      Activation act, float alpha, float* y,
                      const BatchNormVariant* variant = nullptr);

// scale[c] = gamma[c] / sqrt(var[c] + eps), shift[c] = beta[c] - mean[c] * scale[c],
// computed in double; gamma / beta null mean 1 / 0.
void batch_norm_scale_shift(const float* mean, const float* var, const float* gamma,
                            const float* beta, double eps, std::size_t channels, float* scale,
                            float* shift);

// Per-channel mean and biased variance of x [batch][channels][spatial], accumulated in
// double (two passes: mean, then squared deviations).
void batch_norm_statistics(const float* x, std::size_t batch, std::size_t channels,
                           std::size_t spatial, double* mean, double* variance);

// The gradient of y = xhat * gamma[c] + beta[c], xhat = (x - mean[c]) * inv_std[c], over
// x and dy [batch][channels][spatial] (PyTorch semantics), m = batch * spatial:
//   dbeta[c]  = sum dy                 dgamma[c] = sum dy * xhat        (both modes)
//   training:  mean / inv_std are this batch's own (biased variance), so dx includes the
//              paths through them:  dx = gamma * inv_std / m * (m * dy - dbeta - xhat * dgamma)
//   inference: mean / inv_std are fixed (running statistics):  dx = dy * gamma * inv_std
// The sums are accumulated per channel in double from float blocks (see
// BatchNormPlaneSumsFn: at most kBatchNormSumBlock / vector width terms per float lane; rows
// layout: 64 rows per float block), so their error does not grow with m. Work is split over
// channels (planes) or fixed chunks of rows (rows layout), never by thread count: results
// do not depend on it. gamma null means 1; dx null: not computed; dgamma / dbeta null: not
// returned (training computes them anyway). dx may alias dy.
void batch_norm_backward(const float* x, const float* dy, std::size_t batch,
                         std::size_t channels, std::size_t spatial, const float* mean,
                         const float* inv_std, const float* gamma, bool training, float* dx,
                         float* dgamma, float* dbeta, const BatchNormVariant* variant = nullptr);

}  // namespace fdl
