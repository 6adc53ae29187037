// Reference SGEMM microkernel: plain loops, the specification of GemmUkernelFn. Never
// optimised; every other variant is tested against it.
#include "fastdl/activation.h"
#include "fastdl/gemm.h"

void fdl_f32_gemm__ref_4x8(std::size_t m, std::size_t k, const float* a, const float* b,
                           std::size_t ldb, float* c, std::size_t ldc, int flags,
                           const fdl::Epilogue& ep) {
  constexpr std::size_t kMR = 4, kNR = 8;
  const std::size_t a_stride = flags & fdl::kGemmARow ? 1 : kMR;
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < kNR; ++j) {
      float acc = 0.0f;
      for (std::size_t p = 0; p < k; ++p) acc += a[p * a_stride + i] * b[p * ldb + j];
      float& out = c[i * ldc + j];
      if (flags & fdl::kGemmAccumulate) acc += out;
      if (flags & fdl::kGemmFinal) {
        if (ep.bias_row) acc += ep.bias_row[i];
        if (ep.bias_col) acc += ep.bias_col[j];
        acc = fdl::activate_ref(acc, ep.act, ep.alpha);
      }
      out = acc;
    }
  }
}
