// The col2im scatter per ISA (private to kernels/src/convnd): the same plain C++
// (col2im-scatter.inc) compiled with each ISA's flags in col2im-<isa>.cc; the baseline
// build is in col2im-ref.cc.
#pragma once

#include "fastdl/common.h"
#include "fastdl/conv3d.h"

namespace fdl {

// Contract: fdl::col2im_accumulate (fastdl/conv3d.h).
using Col2imFn = void (*)(const Conv3dGeometry& g, std::size_t channels, const float* cols,
                          std::size_t ld, std::size_t l0, std::size_t n, const Size3& grid,
                          const Size3& out, float* y);

// The scatter compiled for `isa`, or the baseline one if this build has none for it.
Col2imFn col2im_kernel(Isa isa);

}  // namespace fdl
