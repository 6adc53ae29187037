// Max and average pooling over 1, 2 or 3 spatial axes (PyTorch semantics, NCHW-style
// planes), and global pooling as the special case kernel = input size; and their gradients.
//
// A *plane* is one (image, channel) pair: a dense [D][H][W] block. 1-D pooling is the 3-D
// case with D = H = 1 (kernel 1, stride 1, no padding on those axes); 2-D has D = 1.
// For every output position o along an axis, the window's taps read input positions
//   start(o) + k * dilation, k in [0, kernel),  start(o) = o * stride - pad.
// Taps outside [0, size) are padding: -inf for max (so they never win), absent for avg.
//
// Max: the largest tap; NaN if any tap is NaN. With indices, the flat index into the
// input plane (d * H + h) * W + w of the first largest tap in (d, h, w) scan order, or of
// the last NaN; a window of only -inf and padding gives the tap PyTorch starts from, the
// first one past the left padding on every axis.
// Avg: the sum of the in-bounds taps divided by divisor_override if non-zero, else by the
// product over axes of the number of taps inside [-pad, size + pad) (count_include_pad)
// or inside [0, size) (otherwise). A window that ceil_mode lets run past the padding
// counts only the part inside it, as PyTorch does.
//
// Nothing is validated here (see common.h): fastdl/ refuses pad > kernel / 2 and empty
// outputs, as PyTorch does, and the dilation of an average pool is 1.
//
// Variants (src/pooling/variants.inc): fdl_f32_pool__ref, the specification, and one per
// ISA built from src/pooling/pool-plane.inc, vectorised along the output width. Indices
// of 2x2 windows at stride 2 without padding come from the vector kernel with the maxima;
// the other geometries' from the reference kernel's scalar argmax pass.
//
// Gradients (PyTorch's):
//   avg: dx[i] = the sum over the windows o whose in-bounds taps include input position i
//        of dy[o] / divisor(o), the forward's divisor. One per variant (avg_backward).
//   max: dx = 0, then dx[indices[o]] += dy[o] for every output o of the plane, with the
//        indices max pooling returned. It needs no geometry, only the plane sizes, and is
//        one scalar kernel for every ISA: a scatter to data-dependent addresses that
//        collide wherever windows overlap (AVX-512's scatter would need conflict detection
//        and gains nothing on the memory-bound loop).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fastdl/common.h"

namespace fdl {

enum class PoolKind : int { kMax = 0, kAvg = 1 };

struct PoolParams {
  PoolKind kind = PoolKind::kMax;
  // Per axis, in the order D, H, W.
  std::size_t in_size[3] = {1, 1, 1};
  std::size_t kernel[3] = {1, 1, 1};
  std::size_t stride[3] = {1, 1, 1};
  std::size_t pad[3] = {0, 0, 0};
  std::size_t dilation[3] = {1, 1, 1};
  // Rounds the output size up; the last window must still start inside the input or its
  // left padding.
  bool ceil_mode = false;
  bool count_include_pad = true;      // avg only
  std::int64_t divisor_override = 0;  // avg only; 0: none

  // Output size along `axis` (0 if even one window does not fit; callers refuse that).
  std::size_t out_size(int axis) const;
  // Elements of one input / output plane.
  std::size_t in_plane() const;
  std::size_t out_plane() const;
  // Avg: how many taps of window `o` along `axis` the divisor counts (see above).
  std::size_t divisor_taps(int axis, std::size_t o) const;
};

// Pools `planes` consecutive planes: x [planes][D][H][W] -> y [planes][OD][OH][OW];
// indices (max only, may be null) the same shape as y.
using PoolFn = void (*)(const PoolParams& p, std::size_t planes, const float* x, float* y,
                        std::int64_t* indices);

// The gradient of max pooling recomputed from its input, over `planes` planes of 2x2
// windows at stride 2 on even, unpadded planes (is_pool_2x2_even): dx [planes][in_plane]
// (overwritten) is dy at the tap max pooling's indices would name and 0 elsewhere, with no
// indices kept between the passes.
using MaxPoolInputBackwardFn = void (*)(const PoolParams& p, std::size_t planes,
                                        const float* x, const float* dy, float* dx);

// Max pooling over `planes` planes of 2x2 windows at stride 2 on even, unpadded planes
// (is_pool_2x2_even) that keeps, instead of indices, one float code per window in `codes`
// (the shape of y): which tap won, 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right
// (the tap PyTorch's indices name); with relu_gate, 4 ("no tap") where the maximum is not
// > 0 or is NaN, so that the gradient spread from the codes is also the gradient through a
// ReLU that produced x (relu(max) = max(relu), and ReLU's gradient is 0 there).
using MaxPoolCodesFn = void (*)(const PoolParams& p, std::size_t planes, const float* x,
                                float* y, float* codes, bool relu_gate);

// The gradient of MaxPoolCodesFn's pooling: dx [planes][in_plane] (every element written)
// is each window's dy at the tap its code names, 0 elsewhere. A code c names tap 0 if
// c < 0.5, else 1 if c < 1.5, 2 if c < 2.5, 3 if c < 3.5, and no tap otherwise (4, NaN).
using MaxPoolCodesBackwardFn = void (*)(const PoolParams& p, std::size_t planes,
                                        const float* codes, const float* dy, float* dx);

// The gradient of average pooling (p.kind == kAvg) over `planes` planes: dy
// [planes][OD][OH][OW] -> dx [planes][D][H][W], overwritten.
using AvgPoolBackwardFn = void (*)(const PoolParams& p, std::size_t planes, const float* dy,
                                   float* dx);

struct PoolVariant {
  const char* name;  // fdl_f32_pool__<isa>
  Isa isa;
  PoolFn fn;
  AvgPoolBackwardFn avg_backward;  // fdl_f32_avg_pool_backward__<isa>
  MaxPoolInputBackwardFn max_backward_2x2;  // fdl_f32_max_pool_backward_2x2__<isa>
  MaxPoolCodesFn max_codes_2x2;              // fdl_f32_max_pool_codes_2x2__<isa>
  MaxPoolCodesBackwardFn max_codes_backward_2x2;  // fdl_f32_max_pool_codes_backward_2x2__<isa>
};

// 2x2 windows at stride 2 (dilation 1, no padding) over 2-D planes of even height and
// width: the downsampling pool that the variants run on a flat path.
bool is_pool_2x2_even(const PoolParams& p);

// Every variant compiled into this build, best first (including ones this CPU cannot run).
const std::vector<PoolVariant>& pool_variants();
// The variant for the active ISA (see isa.h).
const PoolVariant& pool_best();
// nullptr if no variant has that name.
const PoolVariant* pool_find(const char* name);

// Pools `planes` planes (as PoolFn) on the thread pool, planes split across threads.
// `variant` defaults to pool_best().
void pool(const PoolParams& p, std::size_t planes, const float* x, float* y,
          std::int64_t* indices = nullptr, const PoolVariant* variant = nullptr);

// The gradient of average pooling (AvgPoolBackwardFn) on the thread pool, planes split
// across threads. `variant` defaults to pool_best().
void avg_pool_backward(const PoolParams& p, std::size_t planes, const float* dy, float* dx,
                       const PoolVariant* variant = nullptr);

// The gradient of max pooling from its input x [planes][in_plane] (no indices): dx
// (overwritten) equals max_pool_backward's with the indices pool() returns for x. 2x2/2
// even planes run the variant's fused kernel on the thread pool; other geometries compute
// the indices first. `variant` defaults to pool_best().
void max_pool_input_backward(const PoolParams& p, std::size_t planes, const float* x,
                             const float* dy, float* dx, const PoolVariant* variant = nullptr);

// MaxPoolCodesFn and MaxPoolCodesBackwardFn on the thread pool, planes split across
// threads (p must be is_pool_2x2_even: std::invalid_argument otherwise). `variant`
// defaults to pool_best().
void max_pool_codes(const PoolParams& p, std::size_t planes, const float* x, float* y,
                    float* codes, bool relu_gate, const PoolVariant* variant = nullptr);
void max_pool_codes_backward(const PoolParams& p, std::size_t planes, const float* codes,
                             const float* dy, float* dx, const PoolVariant* variant = nullptr);

// The gradient of max pooling over `planes` planes of in_plane inputs and out_plane outputs
// (dy and indices [planes][out_plane], dx [planes][in_plane], overwritten), on the thread
// pool: dx = 0, then dx[plane][indices[plane][o]] += dy[plane][o]. An index outside
// [0, in_plane) is skipped, its gradient dropped; returns how many were (callers refuse
// such indices, so a bad one never writes out of bounds).
std::size_t max_pool_backward(std::size_t planes, std::size_t in_plane, std::size_t out_plane,
                              const float* dy, const std::int64_t* indices, float* dx);

}  // namespace fdl
