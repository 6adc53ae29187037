// Batch normalisation over NC(spatial) tensors, PyTorch semantics.
//
// Inference is a per-channel affine map y = act(x * scale[c] + shift[c]) with
//   scale = gamma / sqrt(running_var + eps),  shift = beta - running_mean * scale;
// batch_norm_scale_shift() computes those, batch_norm_apply() applies them (the same kernel
// serves training once the batch statistics are known). Folding into a convolution or
// linear layer (fastdl.ops.fold_batch_norm) removes even that pass at inference.
#pragma once

#include <cstddef>
#include <vector>

#include "fastdl/common.h"

namespace fdl {

// The plane kernel: y[i] = act(x[i] * scale + shift) for i < n; x may equal y.
using BatchNormPlaneFn = void (*)(const float* x, std::size_t n, float scale, float shift,
                                  Activation act, float alpha, float* y);

struct BatchNormVariant {
  const char* name;  // fdl_f32_batchnorm__<isa>
  Isa isa;
  BatchNormPlaneFn plane;
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

}  // namespace fdl
