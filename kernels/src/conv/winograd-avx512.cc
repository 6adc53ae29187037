// Winograd F(2,3) and F(4,3) transforms, avx512 build of winograd-transform.inc.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>

#include "winograd-matrices.h"
#include "winograd.h"

namespace {
#include "../simd/vec-avx512.inc"
#include "../simd/activation-vec.inc"
#include "winograd-transform.inc"
}  // namespace

extern const fdl::WinogradTransforms fdl_f32_winograd_m2__avx512 = {
    Vec::kWidth, &WinogradKernel<2>::input, &WinogradKernel<2>::output};
extern const fdl::WinogradTransforms fdl_f32_winograd_m4__avx512 = {
    Vec::kWidth, &WinogradKernel<4>::input, &WinogradKernel<4>::output};
