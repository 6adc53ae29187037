// Pooling: output sizes, divisors, the variant table and the threaded driver. ISA-neutral
// (built with baseline flags); the kernels are in pool-<isa>.cc.
#include <algorithm>

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

// Problems below this many window taps run on one thread: waking the pool costs more.
constexpr std::size_t kParallelMinTaps = 1u << 16;

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
  std::size_t n = 0;
  for (std::size_t k = 0; k < kernel[axis]; ++k) {
    const sidx pos = start + static_cast<sidx>(k * dilation[axis]);
    n += pos >= lo && pos < hi;
  }
  return n;
}

const std::vector<PoolVariant>& pool_variants() {
  static const std::vector<PoolVariant> table = {
#define FDL_POOL_VARIANT(sfx, isa) {"fdl_f32_pool__" #sfx, Isa::isa, &fdl_f32_pool__##sfx},
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
  const std::size_t taps = planes * out * p.kernel[0] * p.kernel[1] * p.kernel[2];
  const std::size_t threads = static_cast<std::size_t>(num_threads());
  // A few chunks per thread balance uneven progress; each chunk sets up its buffers once.
  const std::size_t chunks =
      taps < kParallelMinTaps || threads <= 1 ? 1 : std::min(planes, 4 * threads);
  if (chunks <= 1) {
    v.fn(p, planes, x, y, indices);
    return;
  }
  parallel_for(chunks, [&](std::size_t i) {
    const std::size_t p0 = planes * i / chunks, p1 = planes * (i + 1) / chunks;
    v.fn(p, p1 - p0, x + p0 * in, y + p0 * out, indices ? indices + p0 * out : nullptr);
  });
}

}  // namespace fdl
