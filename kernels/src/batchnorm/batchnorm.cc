// Batch norm: the variant table (from variants.inc) and the forward's drivers, parallel
// over (image, channel) planes / channels (the gradient's: batchnorm_backward.cc).
// ISA-neutral (baseline flags).
#include <cmath>
#include <type_traits>
#include <vector>

#include "fastdl/activation.h"
#include "fastdl/batchnorm.h"
#include "fastdl/isa.h"
#include "fastdl/threadpool.h"
#include "fastdl/variants.h"

#define FDL_BATCHNORM_VARIANT(sfx, isa)                                            \
  std::remove_pointer_t<fdl::BatchNormPlaneFn> fdl_f32_batchnorm__##sfx;            \
  std::remove_pointer_t<fdl::BatchNormPlaneSumsFn> fdl_f32_batchnorm_sums__##sfx;   \
  std::remove_pointer_t<fdl::BatchNormPlaneGradFn> fdl_f32_batchnorm_grad__##sfx;   \
  std::remove_pointer_t<fdl::BatchNormRowSumsFn> fdl_f32_batchnorm_sums_rows__##sfx; \
  std::remove_pointer_t<fdl::BatchNormRowGradFn> fdl_f32_batchnorm_grad_rows__##sfx;
#include "variants.inc"
#undef FDL_BATCHNORM_VARIANT

namespace fdl {

const std::vector<BatchNormVariant>& batchnorm_variants() {
  static const std::vector<BatchNormVariant> table = {
#define FDL_BATCHNORM_VARIANT(sfx, isa)                                                \
  {"fdl_f32_batchnorm__" #sfx, Isa::isa, &fdl_f32_batchnorm__##sfx,                     \
   &fdl_f32_batchnorm_sums__##sfx, &fdl_f32_batchnorm_grad__##sfx,                      \
   &fdl_f32_batchnorm_sums_rows__##sfx, &fdl_f32_batchnorm_grad_rows__##sfx},
#include "variants.inc"
#undef FDL_BATCHNORM_VARIANT
  };
  return table;
}

void batch_norm_apply(const float* x, std::size_t batch, std::size_t channels,
                      std::size_t spatial, const float* scale, const float* shift,
                      Activation act, float alpha, float* y, const BatchNormVariant* variant) {
  const BatchNormPlaneFn plane = (variant ? *variant : best_variant(batchnorm_variants())).plane;
  // Runs of planes, a few per thread (parallel_runs; a task per plane made the threads
  // contend for the job's counter: 64 planes of 56x56 on 2 threads took longer than on 1).
  // Small tensors run on the caller: waking the pool costs more than the work.
  const std::size_t planes = batch * channels;
  auto run = [&](std::size_t first, std::size_t count) {
    for (std::size_t p = first; p < first + count; ++p) {
      const std::size_t c = p % channels;
      plane(x + p * spatial, spatial, scale[c], shift[c], act, alpha, y + p * spatial);
    }
  };
  if (planes * spatial < (1u << 15)) {
    run(0, planes);
  } else {
    parallel_runs(planes, planes * spatial, run);
  }
}

void batch_norm_scale_shift(const float* mean, const float* var, const float* gamma,
                            const float* beta, double eps, std::size_t channels, float* scale,
                            float* shift) {
  for (std::size_t c = 0; c < channels; ++c) {
    const double s = (gamma ? gamma[c] : 1.0) / std::sqrt(static_cast<double>(var[c]) + eps);
    scale[c] = static_cast<float>(s);
    shift[c] = static_cast<float>((beta ? beta[c] : 0.0) - mean[c] * s);
  }
}

void batch_norm_statistics(const float* x, std::size_t batch, std::size_t channels,
                           std::size_t spatial, double* mean, double* variance) {
  const double count = static_cast<double>(batch * spatial);
  parallel_for(channels, [&](std::size_t c) {
    double sum = 0;
    for (std::size_t n = 0; n < batch; ++n) {
      const float* p = x + (n * channels + c) * spatial;
      for (std::size_t i = 0; i < spatial; ++i) sum += p[i];
    }
    const double m = count > 0 ? sum / count : 0.0;
    double sq = 0;
    for (std::size_t n = 0; n < batch; ++n) {
      const float* p = x + (n * channels + c) * spatial;
      for (std::size_t i = 0; i < spatial; ++i) sq += (p[i] - m) * (p[i] - m);
    }
    mean[c] = m;
    variance[c] = count > 0 ? sq / count : 0.0;
  });
}

}  // namespace fdl
