// Every pooling variant (src/pooling/variants.inc) against a naive double-precision loop
// written here from PyTorch's rules, on generated cases: 1-D, 2-D and 3-D windows, kernel
// = stride, odd strides, padding up to half the kernel, dilation, ceil_mode with partial
// last windows, count_include_pad both ways, divisor_override, widths around the vector
// width +-1, global windows, NaN and -inf inputs, with and without indices; and the
// threaded driver fdl::pool (thread counts, empty batches).
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "fastdl/isa.h"
#include "test_util.h"
#include "fastdl/pool.h"
#include "fastdl/threadpool.h"

namespace {

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
using sidx = std::ptrdiff_t;

struct PoolCase {
  fdl::PoolParams p;
  std::size_t planes = 3;
  std::string str() const {
    std::ostringstream s;
    s << (p.kind == fdl::PoolKind::kMax ? "max" : "avg") << " planes" << planes;
    for (int a = 0; a < 3; ++a)
      s << " [in" << p.in_size[a] << " k" << p.kernel[a] << " s" << p.stride[a] << " p"
        << p.pad[a] << " d" << p.dilation[a] << "]";
    s << (p.ceil_mode ? " ceil" : "") << (p.count_include_pad ? " include_pad" : "")
      << " divisor" << p.divisor_override;
    return s.str();
  }
};

// PyTorch's pooling_output_shape, written out independently of the library.
sidx torch_out_size(sidx in, sidx k, sidx s, sidx pad, sidx d, bool ceil_mode) {
  const sidx num = in + 2 * pad - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  sidx out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  if (ceil_mode && (out - 1) * s >= in + pad) --out;
  return out;
}

struct Naive {
  std::vector<double> y;
  std::vector<std::int64_t> index;
  std::vector<double> scale;  // avg: sum of |taps| / |divisor|, the rounding error's scale
};

Naive naive_pool(const PoolCase& c, const std::vector<float>& x) {
  const auto& p = c.p;
  sidx in[3], out[3];
  for (int a = 0; a < 3; ++a) {
    in[a] = sidx(p.in_size[a]);
    out[a] = torch_out_size(in[a], p.kernel[a], p.stride[a], p.pad[a], p.dilation[a], p.ceil_mode);
  }
  Naive r;
  for (std::size_t plane = 0; plane < c.planes; ++plane)
    for (sidx od = 0; od < out[0]; ++od)
      for (sidx oh = 0; oh < out[1]; ++oh)
        for (sidx ow = 0; ow < out[2]; ++ow) {
          const sidx o[3] = {od, oh, ow};
          double best = -kInf, sum = 0.0, mag = 0.0, divisor = 1.0;
          bool nan = false;
          // PyTorch starts from the first tap past the left padding on every axis.
          sidx first[3];
          for (int a = 0; a < 3; ++a) {
            first[a] = o[a] * sidx(p.stride[a]) - sidx(p.pad[a]);
            while (first[a] < 0) first[a] += sidx(p.dilation[a]);
          }
          std::int64_t best_index = (first[0] * in[1] + first[1]) * in[2] + first[2];
          for (sidx kd = 0; kd < sidx(p.kernel[0]); ++kd)
            for (sidx kh = 0; kh < sidx(p.kernel[1]); ++kh)
              for (sidx kw = 0; kw < sidx(p.kernel[2]); ++kw) {
                const sidx tap[3] = {kd, kh, kw};
                sidx pos[3];
                bool inside = true;
                for (int a = 0; a < 3; ++a) {
                  pos[a] = o[a] * sidx(p.stride[a]) - sidx(p.pad[a]) + tap[a] * sidx(p.dilation[a]);
                  inside = inside && pos[a] >= 0 && pos[a] < in[a];
                }
                if (!inside) continue;
                const std::int64_t index = (pos[0] * in[1] + pos[1]) * in[2] + pos[2];
                const double v = x[plane * in[0] * in[1] * in[2] + index];
                if (std::isnan(v)) nan = true, best_index = index;  // the last NaN
                else if (!nan && v > best) best = v, best_index = index;  // the first max
                sum += v;
                mag += std::fabs(v);
              }
          if (p.divisor_override) {
            divisor = double(p.divisor_override);
          } else {
            for (int a = 0; a < 3; ++a) {
              const sidx start = o[a] * sidx(p.stride[a]) - sidx(p.pad[a]);
              const sidx lo = p.count_include_pad ? -sidx(p.pad[a]) : 0;
              const sidx hi = p.count_include_pad ? in[a] + sidx(p.pad[a]) : in[a];
              const sidx end = std::min(start + sidx(p.kernel[a]), hi);  // dilation 1 (avg)
              divisor *= double(end - std::max(start, lo));
            }
          }
          const bool is_max = p.kind == fdl::PoolKind::kMax;
          r.y.push_back(is_max ? (nan ? double(kNan) : best) : sum / divisor);
          r.index.push_back(best_index);
          r.scale.push_back(mag / std::fabs(divisor));
        }
  return r;
}

std::vector<float> random_input(const PoolCase& c, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> x(c.planes * c.p.in_plane());
  for (auto& v : x) v = d(rng);
  // Ties (max picks the first), and a few NaN / -inf for max pooling.
  for (std::size_t i = 0; i + 7 < x.size(); i += 7) x[i + 1] = x[i];
  return x;
}

// Runs `variant` on the case and compares with the naive loop; returns true if equal.
bool check_case(const PoolCase& c, const fdl::PoolVariant& variant, const std::vector<float>& x,
                bool with_indices) {
  const Naive want = naive_pool(c, x);
  const std::size_t n = c.planes * c.p.out_plane();
  EXPECT_EQ(n, want.y.size()) << c.str();
  if (n != want.y.size()) return false;
  std::vector<float> y(n + 1, 12345.0f);  // one guard element past the end
  std::vector<std::int64_t> index(n + 1, -7);
  with_indices = with_indices && c.p.kind == fdl::PoolKind::kMax;
  variant.fn(c.p, c.planes, x.data(), y.data(), with_indices ? index.data() : nullptr);
  // avg: the sums are kernel[0] * kernel[1] rows deep, then kernel[2] columns.
  const double depth = double(c.p.kernel[0] * c.p.kernel[1] + c.p.kernel[2]);
  EXPECT_EQ(y[n], 12345.0f) << "wrote past the output: " << c.str();
  for (std::size_t i = 0; i < n; ++i) {
    const double got = y[i], expect = want.y[i];
    const double tol = 1e-6 + 1.2e-7 * depth * want.scale[i];
    const bool ok = std::isnan(expect) ? std::isnan(got)
                    : got == expect || (c.p.kind == fdl::PoolKind::kAvg &&
                                        std::fabs(got - expect) <= tol);
    if (!ok) {
      ADD_FAILURE() << variant.name << " " << c.str() << ": output " << i << " is " << got
                    << ", want " << expect;
      return false;
    }
    if (with_indices && index[i] != want.index[i]) {
      ADD_FAILURE() << variant.name << " " << c.str() << ": index " << i << " is " << index[i]
                    << ", want " << want.index[i];
      return false;
    }
  }
  return true;
}

fdl::PoolParams params(fdl::PoolKind kind, std::vector<std::size_t> in, std::size_t k,
                       std::size_t s, std::size_t pad, std::size_t d = 1) {
  fdl::PoolParams p;
  p.kind = kind;
  const std::size_t lead = 3 - in.size();  // leading axes of size 1 (1-D, 2-D)
  for (std::size_t a = 0; a < in.size(); ++a) {
    p.in_size[lead + a] = in[a];
    p.kernel[lead + a] = k, p.stride[lead + a] = s, p.pad[lead + a] = pad;
    p.dilation[lead + a] = d;
  }
  return p;
}

bool fits(const fdl::PoolParams& p) {
  for (int a = 0; a < 3; ++a) {
    if (2 * p.pad[a] > p.kernel[a]) return false;  // PyTorch's pad <= kernel / 2
    if (torch_out_size(p.in_size[a], p.kernel[a], p.stride[a], p.pad[a], p.dilation[a],
                       p.ceil_mode) < 1)
      return false;
  }
  return true;
}

std::vector<PoolCase> generated_cases() {
  std::vector<PoolCase> cases;
  auto add = [&](fdl::PoolParams p, std::size_t planes = 3) {
    for (auto kind : {fdl::PoolKind::kMax, fdl::PoolKind::kAvg})
      for (bool ceil_mode : {false, true})
        for (bool include : {true, false}) {
          p.kind = kind, p.ceil_mode = ceil_mode, p.count_include_pad = include;
          if (kind == fdl::PoolKind::kMax && !include) continue;  // no such option
          if (kind == fdl::PoolKind::kAvg)
            for (auto& d : p.dilation) d = 1;
          if (fits(p)) cases.push_back({p, planes});
        }
  };
  const auto kMax = fdl::PoolKind::kMax;
  // 2-D: the common windows on every width from 1 to 3x the widest vector (16) and beyond,
  // so each vector loop and its tail meet inside the tested sizes; odd and even padding.
  std::vector<std::size_t> widths;
  for (std::size_t w = 1; w <= 49; ++w) widths.push_back(w);
  widths.push_back(65);
  for (std::size_t w : widths)
    for (auto ks : {std::pair<int, int>{2, 2}, {3, 2}, {3, 1}, {2, 1}, {1, 1}, {3, 3}, {5, 2}})
      for (std::size_t pad : {0, 1, 2})
        add(params(kMax, {5, w}, ks.first, ks.second, pad));
  // 3x3 at stride 2 (its own register kernel on x86): every height around the window,
  // widths whole vectors apart and SqueezeNet's / ResNet's.
  for (std::size_t h : {1, 2, 3, 4, 6, 7})
    for (std::size_t w : {31, 32, 33, 111, 112, 113})
      for (std::size_t pad : {0, 1}) add(params(kMax, {h, w}, 3, 2, pad), 2);
  // 2x2 at stride 2 on even planes (the flat-run kernel): every even width up to past 4
  // vectors, rows wider than its chunk, one plane and many.
  for (std::size_t w = 2; w <= 70; w += 2) add(params(kMax, {4, w}, 2, 2, 0), 5);
  add(params(kMax, {2, 8200}, 2, 2, 0), 2);
  add(params(kMax, {8, 8}, 2, 2, 0), 300);
  // Output rows narrower than a vector (1, 2, 4 and 8 outputs: a vector of outputs across
  // rows at a time) in runs of whole vectors and with a partial last one.
  for (std::size_t w : {2, 4, 8, 16})
    for (std::size_t planes : {37, 64}) add(params(kMax, {2, w}, 2, 2, 0), planes);
  // Pairs of columns at stride 2 on rows of even width, one row tall and one deep (1-D
  // pooling by 2, and the same windows on 2-D and 3-D maps: one flat run of pairs), runs
  // of every length around the vector loop's end; odd widths and a dilated pair stay on the
  // row kernel.
  for (std::size_t w = 2; w <= 40; w += 2)
    for (std::size_t planes : {1, 3, 17}) add(params(kMax, {w}, 2, 2, 0), planes);
  // Runs of exactly 2, 3 and 4 vectors of outputs (AVX2's 8 lanes: 4, 6 and 8) and one
  // output over and under each.
  for (std::size_t outputs : {32, 48, 64})
    for (std::size_t w : {2 * outputs - 2, 2 * outputs, 2 * outputs + 2})
      add(params(kMax, {w}, 2, 2, 0), 1);
  add(params(kMax, {4100}, 2, 2, 0), 2);
  for (std::size_t w : {6, 33, 34}) {
    auto p = params(kMax, {3, 5, w}, 2, 2, 0);
    p.kernel[0] = p.kernel[1] = p.stride[0] = p.stride[1] = 1;
    add(p, 2);
    p.kernel[0] = p.stride[0] = 2;  // two deep: not a run of pairs
    add(p, 2);
  }
  add(params(kMax, {18}, 2, 2, 0, 2), 3);
  {
    auto p = params(fdl::PoolKind::kAvg, {36}, 2, 2, 0);
    p.divisor_override = 3;
    cases.push_back({p, 3});
  }
  // Dilation, odd strides, kernel = stride, tall and wide windows.
  for (std::size_t d : {2, 3})
    for (std::size_t w : {9, 17, 40}) add(params(kMax, {11, w}, 3, 1, 1, d));
  add(params(kMax, {12, 35}, 4, 4, 2));
  add(params(kMax, {13, 29}, 4, 3, 1));
  add(params(kMax, {9, 50}, 6, 5, 3));
  // A window of padding only (depth 2, taps at -1 and 2).
  {
    auto p = params(kMax, {2, 3, 9}, 1, 1, 0);
    p.kernel[0] = 2, p.pad[0] = 1, p.dilation[0] = 3;
    add(p, 2);
  }
  // Kernel larger than the input (ceil_mode only), asymmetric geometry.
  add(params(kMax, {2, 2}, 4, 3, 0));
  {
    auto p = params(kMax, {10, 21}, 3, 2, 1);
    p.kernel[1] = 1, p.stride[1] = 1, p.pad[1] = 0, p.kernel[2] = 5, p.pad[2] = 2, p.stride[2] = 3;
    add(p);
  }
  // 1-D and 3-D.
  for (std::size_t w : {1, 6, 7, 8, 9, 16, 17, 100})
    for (std::size_t k : {1, 2, 3, 4})
      for (std::size_t s : {1, 2, 3}) add(params(kMax, {w}, k, s, k / 2), 4);
  for (std::size_t w : {5, 8, 9, 17}) {
    add(params(kMax, {4, 6, w}, 3, 2, 1), 2);
    add(params(kMax, {3, 5, w}, 2, 2, 0), 2);
    add(params(kMax, {5, 4, w}, 3, 1, 1, 2), 2);
  }
  // Wide windows (whole vectors along each window), with stride and ceil_mode overhang.
  add(params(kMax, {100}, 40, 30, 20), 2);
  add(params(kMax, {77}, 33, 33, 0), 2);
  {
    auto p = params(kMax, {3, 90}, 1, 1, 0);
    p.kernel[2] = 17, p.stride[2] = 5, p.pad[2] = 8;
    add(p, 2);
  }
  // Rows read in place (one input row per window row, no padding): global 1-D windows
  // and wide ones.
  add(params(kMax, {1000}, 1000, 1, 0), 3);
  {
    auto p = params(kMax, {4, 150}, 1, 1, 0);
    p.kernel[2] = 70, p.stride[2] = 40;
    add(p, 2);
  }
  // Global windows (kernel = input).
  add(params(kMax, {7, 7}, 7, 1, 0), 5);
  add(params(kMax, {1, 33}, 1, 1, 0));
  {
    auto p = params(kMax, {3, 4, 19}, 1, 1, 0);
    p.kernel[0] = 3, p.kernel[1] = 4, p.kernel[2] = 19;
    add(p, 2);
    p = params(kMax, {56, 56}, 1, 1, 0);
    p.kernel[1] = p.kernel[2] = 56;
    add(p, 2);
  }
  // Whole planes of every length around the vector chains (1-D global windows).
  for (std::size_t n : {1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 200})
    add(params(kMax, {n}, n, 1, 0), 3);
  {
    auto p = params(fdl::PoolKind::kAvg, {5, 5}, 5, 1, 0);
    p.divisor_override = 7;
    cases.push_back({p, 4});
  }
  // divisor_override (avg), positive and negative as PyTorch allows.
  for (std::int64_t div : {3, -2}) {
    auto p = params(fdl::PoolKind::kAvg, {9, 17}, 3, 2, 1);
    p.divisor_override = div;
    cases.push_back({p, 2});
    p.ceil_mode = true;
    cases.push_back({p, 2});
  }
  return cases;
}

class PoolVariantTest : public fdl_test::VariantTest<fdl::PoolVariant> {};

TEST_P(PoolVariantTest, GeneratedCasesMatchNaiveLoops) {
  const auto cases = generated_cases();
  ASSERT_GT(cases.size(), 500u);
  unsigned seed = 1;
  int failures = 0;
  for (const PoolCase& c : cases) {
    const auto x = random_input(c, seed++);
    for (bool with_indices : {false, true})
      if (!check_case(c, variant(), x, with_indices) && ++failures >= 10)
        FAIL() << "too many failures";
  }
}

TEST_P(PoolVariantTest, NanWinsAndMinusInfinityLoses) {
  for (std::size_t w : {7, 8, 9, 16, 17, 33}) {
    // {kernel, stride, pad}; 2x2 at stride 2 without padding is the fused-index path on
    // even widths; 1-D pairs (rows of 2w) the flat run of pairs.
    std::vector<PoolCase> shapes;
    for (auto ksp : {std::array<int, 3>{3, 2, 1}, {2, 2, 1}, {2, 2, 0}, {3, 1, 1}})
      shapes.push_back({params(fdl::PoolKind::kMax, {6, w}, ksp[0], ksp[1], ksp[2]), 2});
    shapes.push_back({params(fdl::PoolKind::kMax, {2 * w}, 2, 2, 0), 3});
    for (PoolCase c : shapes) {
      for (int pattern = 0; pattern < 4; ++pattern) {
        auto x = random_input(c, 100 + pattern);
        for (std::size_t i = pattern; i < x.size(); i += 5 + pattern) x[i] = kNan;
        for (std::size_t i = 2 * pattern + 1; i < x.size(); i += 3) x[i] = -kInf;
        if (pattern == 3)  // a whole plane of -inf: every window's value is -inf
          for (std::size_t i = 0; i < c.p.in_plane(); ++i) x[i] = -kInf;
        for (bool with_indices : {false, true})
          ASSERT_TRUE(check_case(c, variant(), x, with_indices)) << "pattern " << pattern;
      }
      c.p.kind = fdl::PoolKind::kAvg;  // NaN and inf propagate through the sums
      auto x = random_input(c, 7);
      x[w + 2] = kNan, x[3 * w] = kInf;
      ASSERT_TRUE(check_case(c, variant(), x, false));
    }
  }
}

TEST_P(PoolVariantTest, DriverSplitsPlanesAcrossThreadsWithTheSameResult) {
  const int saved = fdl::num_threads();
  PoolCase c{params(fdl::PoolKind::kMax, {40, 41}, 3, 2, 1), 37};
  const auto x = random_input(c, 3);
  const std::size_t n = c.planes * c.p.out_plane();
  for (auto kind : {fdl::PoolKind::kMax, fdl::PoolKind::kAvg}) {
    c.p.kind = kind;
    const bool is_max = kind == fdl::PoolKind::kMax;
    std::vector<float> one(n), many(n);
    std::vector<std::int64_t> i_one(n), i_many(n);
    fdl::set_num_threads(1);
    fdl::pool(c.p, c.planes, x.data(), one.data(), is_max ? i_one.data() : nullptr, &variant());
    fdl::set_num_threads(4);
    fdl::pool(c.p, c.planes, x.data(), many.data(), is_max ? i_many.data() : nullptr,
              &variant());
    EXPECT_EQ(one, many);
    EXPECT_EQ(i_one, i_many);
    fdl::pool(c.p, c.planes, x.data(), many.data(), nullptr, &variant());
    const Naive want = naive_pool(c, x);
    for (std::size_t i = 0; i < n; ++i) ASSERT_NEAR(many[i], want.y[i], 1e-6) << i;
    fdl::pool(c.p, 0, nullptr, nullptr, nullptr, &variant());  // an empty batch: nothing to do
  }
  fdl::set_num_threads(saved);
}

INSTANTIATE_TEST_SUITE_P(AllVariants, PoolVariantTest,
                         ::testing::ValuesIn(fdl::pool_variants()),
                         fdl_test::VariantName());

TEST(PoolParams, OutputSizesFollowPyTorch) {
  struct Row { std::size_t in, k, s, pad, d; bool ceil; std::size_t out; };
  const Row rows[] = {
      {112, 3, 2, 1, 1, false, 56}, {5, 2, 2, 0, 1, false, 2}, {5, 2, 2, 0, 1, true, 3},
      {6, 3, 2, 1, 1, true, 4},     {4, 2, 3, 1, 1, true, 2},  {5, 2, 2, 1, 1, true, 3},
      {2, 2, 2, 1, 1, true, 2},     {2, 4, 3, 0, 1, true, 1},  {2, 4, 3, 0, 1, false, 0},
      {9, 3, 1, 1, 3, false, 5},    {7, 7, 1, 0, 1, false, 1}, {1, 1, 1, 0, 1, true, 1},
  };
  for (const Row& r : rows) {
    fdl::PoolParams p;
    p.in_size[2] = r.in, p.kernel[2] = r.k, p.stride[2] = r.s, p.pad[2] = r.pad;
    p.dilation[2] = r.d, p.ceil_mode = r.ceil;
    EXPECT_EQ(p.out_size(2), r.out) << r.in << " k" << r.k << " s" << r.s << " p" << r.pad
                                    << " d" << r.d << (r.ceil ? " ceil" : "");
  }
}

// divisor_taps counts in closed form (windows may be far longer than the input); every
// kernel and the reference use it, so it is checked here against visiting the taps.
TEST(PoolParams, DivisorTapsCountTheTapsOneByOne) {
  for (std::size_t in = 1; in <= 6; ++in)
    for (std::size_t k = 1; k <= 9; ++k)
      for (std::size_t s = 1; s <= 3; ++s)
        for (std::size_t pad = 0; 2 * pad <= k; ++pad)
          for (std::size_t d = 1; d <= 3; ++d)
            for (bool ceil : {false, true})
              for (bool include_pad : {false, true}) {
                fdl::PoolParams p;
                p.kind = fdl::PoolKind::kAvg;
                p.in_size[2] = in, p.kernel[2] = k, p.stride[2] = s, p.pad[2] = pad;
                p.dilation[2] = d, p.ceil_mode = ceil, p.count_include_pad = include_pad;
                const long lo = include_pad ? -static_cast<long>(pad) : 0;
                const long hi = static_cast<long>(include_pad ? in + pad : in);
                for (std::size_t o = 0; o < p.out_size(2); ++o) {
                  std::size_t taps = 0;
                  for (std::size_t t = 0; t < k; ++t) {
                    const long pos = static_cast<long>(o * s + t * d) - static_cast<long>(pad);
                    taps += pos >= lo && pos < hi;
                  }
                  ASSERT_EQ(p.divisor_taps(2, o), taps)
                      << "in " << in << " k" << k << " s" << s << " p" << pad << " d" << d
                      << (ceil ? " ceil" : "") << (include_pad ? " include_pad" : "")
                      << " output " << o;
                }
              }
}

TEST(PoolParams, BestVariantMatchesTheActiveIsa) {
  const fdl::PoolVariant& best = fdl::pool_best();
  EXPECT_TRUE(best.isa == fdl::active_isa() || best.isa == fdl::Isa::kRef);
  EXPECT_EQ(fdl::pool_find(best.name), &best);
  EXPECT_EQ(fdl::pool_find("fdl_f32_pool__nope"), nullptr);
}

}  // namespace
