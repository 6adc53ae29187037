#include "depthwise.h"

#define FDL_DWCONV_DECL(isa)                                                                  \
  void fdl_f32_dwconv__##isa(const fdl::Conv2dGeometry&, const float*, std::size_t,          \
                             std::size_t, const float*, float, fdl::Activation, float, float*);
#if defined(__x86_64__) || defined(_M_X64)
FDL_DWCONV_DECL(avx2)
FDL_DWCONV_DECL(avx512)
#elif defined(__aarch64__)
FDL_DWCONV_DECL(neon)
#endif
#undef FDL_DWCONV_DECL

namespace fdl {

DepthwisePlaneFn depthwise_kernel(Isa isa) {
  switch (isa) {
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::kAvx2: return fdl_f32_dwconv__avx2;
    case Isa::kAvx512: return fdl_f32_dwconv__avx512;
#elif defined(__aarch64__)
    case Isa::kNeon: return fdl_f32_dwconv__neon;
#endif
    default: return nullptr;
  }
}

}  // namespace fdl
