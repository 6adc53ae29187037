// Pooling: output sizes, divisors, the variant table and the threaded drivers (forward and
// gradients). ISA-neutral (built with baseline flags); the kernels are in pool-<isa>.cc.
#include <algorithm>
#include <atomic>
#include <stdexcept>

#include "fastdl/isa.h"
#include "fastdl/pool.h"
#include "fastdl/threadpool.h"
#include "fastdl/variants.h"
#include "pool-variants.h"

namespace fdl {

namespace {

using sidx = std::ptrdiff_t;

// Floor division (the numerator may be negative, the denominator is positive).
sidx floor_div(sidx a, sidx b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

}  // namespace

std::size_t PoolParams::out_size(int axis) const {
  const sidx in = static_cast<sidx>(in_size[axis]), k = static_cast<sidx>(kernel[axis]);
  const sidx s = static_cast<sidx>(stride[axis]), p = static_cast<sidx>(pad[axis]);
  const sidx span = static_cast<sidx>(dilation[axis]) * (k - 1) + 1;
  sidx out = floor_div(in + 2 * p - span + (ceil_mode ? s - 1 : 0), s) + 1;
  if (ceil_mode && out > 0 && (out - 1) * s >= in + p) --out;  // last window starts in the pad
  return out > 0 ? static_cast<std::size_t>(out) : 0;
}

std::size_t PoolParams::in_plane() const { return in_size[0] * in_size[1] * in_size[2]; }

std::size_t PoolParams::out_plane() const { return out_size(0) * out_size(1) * out_size(2); }

std::size_t PoolParams::divisor_taps(int axis, std::size_t o) const {
  const sidx in = static_cast<sidx>(in_size[axis]), p = static_cast<sidx>(pad[axis]);
  const sidx lo = count_include_pad ? -p : 0, hi = count_include_pad ? in + p : in;
  const sidx start = static_cast<sidx>(o * stride[axis]) - p;
  const sidx d = static_cast<sidx>(dilation[axis]), taps = static_cast<sidx>(kernel[axis]);
  // The taps k in [0, taps) with lo <= start + k d < hi, counted without visiting them (a
  // window may be far longer than the input).
  const sidx first = std::max<sidx>(0, -floor_div(start - lo, d));  // ceil((lo - start) / d)
  const sidx last = std::min<sidx>(taps - 1, floor_div(hi - 1 - start, d));
  return last >= first ? static_cast<std::size_t>(last - first + 1) : 0;
}

const std::vector<PoolVariant>& pool_variants() {
  static const std::vector<PoolVariant> table = {
#define FDL_POOL_VARIANT(sfx, isa) \
  {"fdl_f32_pool__" #sfx, Isa::isa, &fdl_f32_pool__##sfx, &fdl_f32_avg_pool_backward__##sfx, \
   &fdl_f32_max_pool_backward_2x2__##sfx, &fdl_f32_max_pool_codes_2x2__##sfx,                \
   &fdl_f32_max_pool_codes_backward_2x2__##sfx},
#include "variants.inc"
#undef FDL_POOL_VARIANT
  };
  return table;
}

const PoolVariant& pool_best() { return best_variant(pool_variants()); }

const PoolVariant* pool_find(const char* name) { return find_variant(pool_variants(), name); }

void pool(const PoolParams& p, std::size_t planes, const float* x, float* y,
          std::int64_t* indices, const PoolVariant* variant) {
  const PoolVariant& v = variant ? *variant : pool_best();
  const std::size_t in = p.in_plane(), out = p.out_plane();
  if (planes == 0 || out == 0) return;
  parallel_runs(planes, planes * out * p.kernel[0] * p.kernel[1] * p.kernel[2],
                [&](std::size_t p0, std::size_t n) {
                  v.fn(p, n, x + p0 * in, y + p0 * out,
                       indices ? indices + p0 * out : nullptr);
                });
}

void avg_pool_backward(const PoolParams& p, std::size_t planes, const float* dy, float* dx,
                       const PoolVariant* variant) {
  const PoolVariant& v = variant ? *variant : pool_best();
  const std::size_t in = p.in_plane(), out = p.out_plane();
  if (planes == 0) return;
  // Every input is written (zeroed at least) as well as every tap spread.
  parallel_runs(planes, planes * (in + out * p.kernel[0] * p.kernel[1] * p.kernel[2]),
                [&](std::size_t p0, std::size_t n) {
                  v.avg_backward(p, n, dy + p0 * out, dx + p0 * in);
                });
}

bool is_pool_2x2_even(const PoolParams& p) {
  return p.in_size[0] == 1 && p.kernel[0] == 1 && p.stride[0] == 1 && p.pad[0] == 0 &&
         p.kernel[1] == 2 && p.kernel[2] == 2 && p.stride[1] == 2 && p.stride[2] == 2 &&
         p.pad[1] == 0 && p.pad[2] == 0 && p.dilation[1] == 1 && p.dilation[2] == 1 &&
         p.in_size[1] % 2 == 0 && p.in_size[2] % 2 == 0 && p.in_size[2] > 0;
}

void max_pool_input_backward(const PoolParams& p, std::size_t planes, const float* x,
                             const float* dy, float* dx, const PoolVariant* variant) {
  const PoolVariant& v = variant ? *variant : pool_best();
  const std::size_t in = p.in_plane(), out = p.out_plane();
  if (planes == 0) return;
  if (!is_pool_2x2_even(p)) {
    std::vector<float> y(planes * out);
    std::vector<std::int64_t> indices(planes * out);
    pool(p, planes, x, y.data(), indices.data(), &v);
    max_pool_backward(planes, in, out, dy, indices.data(), dx);
    return;
  }
  parallel_runs(planes, planes * (in + out), [&](std::size_t p0, std::size_t n) {
    v.max_backward_2x2(p, n, x + p0 * in, dy + p0 * out, dx + p0 * in);
  });
}

void max_pool_codes(const PoolParams& p, std::size_t planes, const float* x, float* y,
                    float* codes, bool relu_gate, const PoolVariant* variant) {
  if (!is_pool_2x2_even(p))
    throw std::invalid_argument("max_pool_codes: 2x2 windows at stride 2 on even planes only");
  const PoolVariant& v = variant ? *variant : pool_best();
  const std::size_t in = p.in_plane(), out = p.out_plane();
  if (planes == 0) return;
  parallel_runs(planes, planes * (in + out), [&](std::size_t p0, std::size_t n) {
    v.max_codes_2x2(p, n, x + p0 * in, y + p0 * out, codes + p0 * out, relu_gate);
  });
}

void max_pool_codes_backward(const PoolParams& p, std::size_t planes, const float* codes,
                             const float* dy, float* dx, const PoolVariant* variant) {
  if (!is_pool_2x2_even(p))
    throw std::invalid_argument(
        "max_pool_codes_backward: 2x2 windows at stride 2 on even planes only");
  const PoolVariant& v = variant ? *variant : pool_best();
  const std::size_t in = p.in_plane(), out = p.out_plane();
  if (planes == 0) return;
  parallel_runs(planes, planes * (in + out), [&](std::size_t p0, std::size_t n) {
    v.max_codes_backward_2x2(p, n, codes + p0 * out, dy + p0 * out, dx + p0 * in);
  });
}

std::size_t max_pool_backward(std::size_t planes, std::size_t in_plane, std::size_t out_plane,
                              const float* dy, const std::int64_t* indices, float* dx) {
  if (planes == 0) return 0;
  std::atomic<std::size_t> total{0};
  parallel_runs(planes, planes * (in_plane + out_plane), [&](std::size_t p0, std::size_t n) {
    total += fdl_f32_max_pool_backward__ref(n, in_plane, out_plane, dy + p0 * out_plane,
                                            indices + p0 * out_plane, dx + p0 * in_plane);
  });
  return total;
}

}  // namespace fdl
