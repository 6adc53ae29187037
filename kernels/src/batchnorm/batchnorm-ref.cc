// Reference batch-norm plane kernel: a plain loop, the specification of BatchNormPlaneFn
// that the ISA kernels (batchnorm-plane.inc) are tested against. Never optimised.
#include <cstddef>

#include "fastdl/activation.h"
#include "fastdl/batchnorm.h"

void fdl_f32_batchnorm__ref(const float* x, std::size_t n, float scale, float shift,
                            fdl::Activation act, float alpha, float* y) {
  for (std::size_t i = 0; i < n; ++i) y[i] = fdl::activate_ref(x[i] * scale + shift, act, alpha);
}
