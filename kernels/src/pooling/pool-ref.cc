// The reference pooling kernels: every window read tap by tap, the specification the other
// variants are tested against, and average pooling's gradient spread the same way. Never
// optimised. Also fdl_f32_pool_argmax__ref, the index pass the SIMD variants run after
// their vector max pooling (see pool-plane.inc), and max pooling's gradient, the scatter
// every variant shares.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "pool-variants.h"

namespace {
using sidx = std::ptrdiff_t;

// The pooling geometry per axis (depth, height, width) as signed sizes.
struct Geometry {
  sidx in[3], out[3], k[3], s[3], pad[3], dil[3];
  sidx in_plane, out_plane;
  explicit Geometry(const fdl::PoolParams& p) {
    for (int a = 0; a < 3; ++a) {
      in[a] = static_cast<sidx>(p.in_size[a]), out[a] = static_cast<sidx>(p.out_size(a));
      k[a] = static_cast<sidx>(p.kernel[a]), s[a] = static_cast<sidx>(p.stride[a]);
      pad[a] = static_cast<sidx>(p.pad[a]), dil[a] = static_cast<sidx>(p.dilation[a]);
    }
    in_plane = in[0] * in[1] * in[2];
    out_plane = out[0] * out[1] * out[2];
  }

  // Calls f(flat input index) for every in-bounds tap of the window at output position
  // pos (od, oh, ow), in PyTorch's scan order.
  template <class F>
  void visit_taps(const sidx pos[3], F f) const {
    sidx start[3];
    for (int a = 0; a < 3; ++a) start[a] = pos[a] * s[a] - pad[a];
    for (sidx kd = 0; kd < k[0]; ++kd) {
      const sidx id = start[0] + kd * dil[0];
      if (id < 0 || id >= in[0]) continue;
      for (sidx kh = 0; kh < k[1]; ++kh) {
        const sidx ih = start[1] + kh * dil[1];
        if (ih < 0 || ih >= in[1]) continue;
        for (sidx kw = 0; kw < k[2]; ++kw) {
          const sidx iw = start[2] + kw * dil[2];
          if (iw < 0 || iw >= in[2]) continue;
          f((id * in[1] + ih) * in[2] + iw);
        }
      }
    }
  }
};

// Average pooling's divisor for the window at output position pos (see fastdl/pool.h).
double avg_divisor(const fdl::PoolParams& p, const sidx pos[3]) {
  if (p.divisor_override) return static_cast<double>(p.divisor_override);
  double divisor = 1.0;
  for (int a = 0; a < 3; ++a)
    divisor *= static_cast<double>(p.divisor_taps(a, static_cast<std::size_t>(pos[a])));
  return divisor;
}
}  // namespace

void fdl_f32_pool__ref(const fdl::PoolParams& p, std::size_t planes, const float* x, float* y,
                       std::int64_t* indices) {
  const Geometry geo(p);
  const sidx *in = geo.in, *out = geo.out, *s = geo.s, *pad = geo.pad, *dil = geo.dil;
  const sidx in_plane = geo.in_plane, out_plane = geo.out_plane;
  const bool is_max = p.kind == fdl::PoolKind::kMax;
  for (std::size_t plane = 0; plane < planes; ++plane) {
    const float* xp = x + plane * in_plane;
    sidx o = static_cast<sidx>(plane) * out_plane;
    for (sidx od = 0; od < out[0]; ++od)
      for (sidx oh = 0; oh < out[1]; ++oh)
        for (sidx ow = 0; ow < out[2]; ++ow, ++o) {
          const sidx pos[3] = {od, oh, ow};
          sidx first[3];  // the first tap past the left padding per axis
          for (int a = 0; a < 3; ++a) {
            first[a] = pos[a] * s[a] - pad[a];
            while (first[a] < 0) first[a] += dil[a];
          }
          float best = -std::numeric_limits<float>::infinity();
          sidx best_index = (first[0] * in[1] + first[1]) * in[2] + first[2];
          double sum = 0.0;
          geo.visit_taps(pos, [&](sidx index) {
            const float v = xp[index];
            if (v > best || std::isnan(v)) best = v, best_index = index;
            sum += v;
          });
          if (is_max) {
            y[o] = best;
            if (indices) indices[o] = best_index;
            continue;
          }
          y[o] = static_cast<float>(sum / avg_divisor(p, pos));
        }
  }
}

void fdl_f32_pool_argmax__ref(const fdl::PoolParams& p, std::size_t planes, const float* x,
                              const float* y, std::int64_t* indices) {
  const Geometry geo(p);
  const sidx *in = geo.in, *out = geo.out, *k = geo.k, *s = geo.s, *pad = geo.pad, *dil = geo.dil;
  const sidx in_plane = geo.in_plane, out_plane = geo.out_plane;
  // Per axis and output position: the in-bounds input coordinates of its window in scan
  // order, and the first non-negative one even if out of bounds (a dilated window may lie
  // wholly in the padding; then the index is the reference's (first[0] * H + first[1]) *
  // W + first[2]). The same for every plane: computed once per call.
  struct Taps {
    std::vector<sidx> inside;
    sidx first;
  };
  std::vector<Taps> axes[3];
  for (int a = 0; a < 3; ++a) {
    axes[a].resize(static_cast<std::size_t>(out[a]));
    for (sidx o = 0; o < out[a]; ++o) {
      Taps& t = axes[a][static_cast<std::size_t>(o)];
      for (sidx j = 0; j < k[a]; ++j) {
        const sidx i = o * s[a] - pad[a] + j * dil[a];
        if (i >= 0 && i < in[a]) t.inside.push_back(i);
      }
      t.first = o * s[a] - pad[a];
      while (t.first < 0) t.first += dil[a];
    }
  }
  for (std::size_t plane = 0; plane < planes; ++plane) {
    const float* xp = x + plane * in_plane;
    sidx o = static_cast<sidx>(plane) * out_plane;
    for (sidx od = 0; od < out[0]; ++od) {
      const std::vector<sidx>& zs = axes[0][static_cast<std::size_t>(od)].inside;
      const sidx z0 = axes[0][static_cast<std::size_t>(od)].first;
      for (sidx oh = 0; oh < out[1]; ++oh) {
        const std::vector<sidx>& ys = axes[1][static_cast<std::size_t>(oh)].inside;
        const sidx y0 = axes[1][static_cast<std::size_t>(oh)].first;
        for (sidx ow = 0; ow < out[2]; ++ow, ++o) {
          const std::vector<sidx>& xs = axes[2][static_cast<std::size_t>(ow)].inside;
          const sidx x0 = axes[2][static_cast<std::size_t>(ow)].first;
          const float want = y[o];
          sidx found = (z0 * in[1] + y0) * in[2] + x0;  // all -inf: the first tap
          // Branch-free: which tap holds the maximum is data-dependent, and a branch per
          // tap mispredicted about once per output. The first equal tap in scan order is
          // the last one selected in reverse order; the last NaN the last in scan order.
          if (!std::isnan(want)) {
            for (std::size_t a = zs.size(); a-- > 0;)
              for (std::size_t b = ys.size(); b-- > 0;) {
                const sidx row = (zs[a] * in[1] + ys[b]) * in[2];
                for (std::size_t c = xs.size(); c-- > 0;) {
                  const sidx i = row + xs[c];
                  found = xp[i] == want ? i : found;
                }
              }
          } else {
            for (const sidx z : zs)
              for (const sidx yy : ys) {
                const sidx row = (z * in[1] + yy) * in[2];
                for (const sidx xx : xs) found = std::isnan(xp[row + xx]) ? row + xx : found;
              }
          }
          indices[o] = found;
        }
      }
    }
  }
}

void fdl_f32_avg_pool_backward__ref(const fdl::PoolParams& p, std::size_t planes,
                                    const float* dy, float* dx) {
  const Geometry geo(p);
  const sidx* out = geo.out;
  std::vector<double> sums(static_cast<std::size_t>(geo.in_plane));
  for (std::size_t plane = 0; plane < planes; ++plane) {
    std::fill(sums.begin(), sums.end(), 0.0);
    sidx o = static_cast<sidx>(plane) * geo.out_plane;
    for (sidx od = 0; od < out[0]; ++od)
      for (sidx oh = 0; oh < out[1]; ++oh)
        for (sidx ow = 0; ow < out[2]; ++ow, ++o) {
          const sidx pos[3] = {od, oh, ow};
          const double share = dy[o] / avg_divisor(p, pos);
          geo.visit_taps(pos, [&](sidx index) { sums[index] += share; });
        }
    float* dxp = dx + static_cast<sidx>(plane) * geo.in_plane;
    for (sidx i = 0; i < geo.in_plane; ++i) dxp[i] = static_cast<float>(sums[i]);
  }
}

std::size_t fdl_f32_max_pool_backward__ref(std::size_t planes, std::size_t in_plane,
                                           std::size_t out_plane, const float* dy,
                                           const std::int64_t* indices, float* dx) {
  std::fill(dx, dx + planes * in_plane, 0.0f);
  std::size_t skipped = 0;
  for (std::size_t plane = 0; plane < planes; ++plane) {
    float* dxp = dx + plane * in_plane;
    for (std::size_t o = 0; o < out_plane; ++o) {
      const std::int64_t i = indices[plane * out_plane + o];
      // One unsigned comparison refuses negative indices too.
      if (static_cast<std::uint64_t>(i) >= in_plane) {
        ++skipped;
        continue;
      }
      dxp[i] += dy[plane * out_plane + o];
    }
  }
  return skipped;
}

// The specification: the reference pooling's indices, then the scatter.
void fdl_f32_max_pool_backward_2x2__ref(const fdl::PoolParams& p, std::size_t planes,
                                        const float* x, const float* dy, float* dx) {
  std::vector<float> y(planes * p.out_plane());
  std::vector<std::int64_t> indices(y.size());
  fdl_f32_pool__ref(p, planes, x, y.data(), indices.data());
  fdl_f32_max_pool_backward__ref(planes, p.in_plane(), p.out_plane(), dy, indices.data(), dx);
}

// The specification of the codes: the reference pooling's indices, each as its tap within
// the window (2 * row + column), 4 where relu_gate and the maximum is not > 0.
void fdl_f32_max_pool_codes_2x2__ref(const fdl::PoolParams& p, std::size_t planes,
                                     const float* x, float* y, float* codes, bool relu_gate) {
  const std::size_t outputs = planes * p.out_plane(), W = p.in_size[2];
  std::vector<std::int64_t> indices(outputs);
  fdl_f32_pool__ref(p, planes, x, y, indices.data());
  for (std::size_t o = 0; o < outputs; ++o) {
    const auto i = static_cast<std::size_t>(indices[o]);
    const float code = static_cast<float>(2 * ((i / W) % 2) + (i % W) % 2);
    codes[o] = relu_gate && !(y[o] > 0.0f) ? 4.0f : code;
  }
}

// The specification of the spread: each window's tap named by its code (the thresholds of
// fdl::MaxPoolCodesBackwardFn) gets its gradient, the other taps 0.
void fdl_f32_max_pool_codes_backward_2x2__ref(const fdl::PoolParams& p, std::size_t planes,
                                              const float* codes, const float* dy,
                                              float* dx) {
  const std::size_t W = p.in_size[2], OW = W / 2, rows = planes * (p.in_size[1] / 2);
  for (std::size_t j = 0; j < rows; ++j)
    for (std::size_t t = 0; t < OW; ++t) {
      const float c = codes[j * OW + t];
      int tap = -1;
      for (int k = 0; k < 4 && tap < 0; ++k)
        if (c < static_cast<float>(k) + 0.5f) tap = k;
      for (int k = 0; k < 4; ++k)
        dx[(2 * j + k / 2) * W + 2 * t + k % 2] = k == tap ? dy[j * OW + t] : 0.0f;
    }
}
