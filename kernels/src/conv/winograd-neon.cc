// Winograd F(2,3) and F(4,3) transforms, neon build of winograd-transform.inc.
#include <arm_neon.h>

#include <algorithm>
#include <cstddef>

#include "winograd-matrices.h"
#include "winograd.h"

namespace {
#include "../simd/vec-neon.inc"
#include "../simd/activation-vec.inc"
#include "winograd-transform.inc"
}  // namespace

extern const fdl::WinogradTransforms fdl_f32_winograd_m2__neon = {
    Vec::kWidth, &WinogradKernel<2>::input, &WinogradKernel<2>::output};
extern const fdl::WinogradTransforms fdl_f32_winograd_m4__neon = {
    Vec::kWidth, &WinogradKernel<4>::input, &WinogradKernel<4>::output};
