// The pooling gradients against naive double-precision loops written here from PyTorch's
// rules: every variant's average pooling gradient (src/pooling/variants.inc) on generated
// cases (1-D, 2-D and 3-D windows, kernel = stride, overlapping windows, odd strides,
// padding up to half the kernel, ceil_mode with partial last windows, count_include_pad
// both ways, divisor_override, widths around the vector widths +-1, global windows), max
// pooling's scatter with the forward's indices (ties and overlapping windows sending several
// gradients to one input, indices out of range skipped and counted), and the threaded
// drivers (thread counts, empty batches).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastdl/pool.h"
#include "fastdl/threadpool.h"
#include "test_util.h"

namespace {

using sidx = std::ptrdiff_t;

struct Case {
  fdl::PoolParams p;
  std::size_t planes = 2;
  std::string str() const {
    std::ostringstream s;
    s << "planes" << planes;
    for (int a = 0; a < 3; ++a)
      s << " [in" << p.in_size[a] << " k" << p.kernel[a] << " s" << p.stride[a] << " p"
        << p.pad[a] << " d" << p.dilation[a] << "]";
    s << (p.ceil_mode ? " ceil" : "") << (p.count_include_pad ? " include_pad" : "")
      << " divisor" << p.divisor_override;
    return s.str();
  }
};

// PyTorch's pooling_output_shape, written out independently of the library.
sidx out_size(const fdl::PoolParams& p, int a) {
  const sidx in = sidx(p.in_size[a]), k = sidx(p.kernel[a]), s = sidx(p.stride[a]);
  const sidx pad = sidx(p.pad[a]), d = sidx(p.dilation[a]);
  const sidx num = in + 2 * pad - d * (k - 1) - 1 + (p.ceil_mode ? s - 1 : 0);
  sidx out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  if (p.ceil_mode && (out - 1) * s >= in + pad) --out;
  return out;
}

struct Naive {
  std::vector<double> dx;
  std::vector<double> scale;  // sum of |contributions|: the rounding error's scale
};

// Average pooling's gradient, window by window (PyTorch's avg_pool backward): each output's
// gradient over its divisor added to each in-bounds tap.
Naive naive_avg_backward(const Case& c, const std::vector<float>& dy) {
  const auto& p = c.p;
  sidx in[3], out[3];
  for (int a = 0; a < 3; ++a) in[a] = sidx(p.in_size[a]), out[a] = out_size(p, a);
  const sidx in_plane = in[0] * in[1] * in[2];
  Naive r{std::vector<double>(c.planes * in_plane), std::vector<double>(c.planes * in_plane)};
  std::size_t o = 0;
  for (std::size_t plane = 0; plane < c.planes; ++plane)
    for (sidx od = 0; od < out[0]; ++od)
      for (sidx oh = 0; oh < out[1]; ++oh)
        for (sidx ow = 0; ow < out[2]; ++ow, ++o) {
          const sidx pos[3] = {od, oh, ow};
          sidx start[3], end[3];  // the window clipped to the padded input
          double divisor = 1.0;
          for (int a = 0; a < 3; ++a) {
            const sidx pad = sidx(p.pad[a]);
            start[a] = pos[a] * sidx(p.stride[a]) - pad;
            end[a] = std::min(start[a] + sidx(p.kernel[a]), in[a] + pad);
            const sidx lo = std::max<sidx>(start[a], 0), hi = std::min(end[a], in[a]);
            divisor *= double(p.count_include_pad ? end[a] - start[a] : hi - lo);
          }
          if (p.divisor_override) divisor = double(p.divisor_override);
          const double g = dy[o] / divisor;
          for (sidx d = std::max<sidx>(start[0], 0); d < std::min(end[0], in[0]); ++d)
            for (sidx h = std::max<sidx>(start[1], 0); h < std::min(end[1], in[1]); ++h)
              for (sidx w = std::max<sidx>(start[2], 0); w < std::min(end[2], in[2]); ++w) {
                const std::size_t i = plane * in_plane + (d * in[1] + h) * in[2] + w;
                r.dx[i] += g;
                r.scale[i] += std::fabs(g);
              }
        }
  return r;
}

using fdl_test::random_vector;

// dx from fn(dx.data()) written into a buffer with a guard element past the end.
template <class Fn>
std::vector<float> guarded(std::size_t n, Fn fn, const std::string& what) {
  std::vector<float> dx(n + 1, 12345.0f);
  fn(dx.data());
  EXPECT_EQ(dx[n], 12345.0f) << "wrote past dx: " << what;
  dx.pop_back();
  return dx;
}

bool check_avg(const Case& c, const fdl::PoolVariant& v, unsigned seed) {
  std::size_t out_plane = 1;
  for (int a = 0; a < 3; ++a) out_plane *= std::size_t(out_size(c.p, a));
  EXPECT_EQ(out_plane, c.p.out_plane()) << c.str();
  const auto dy = random_vector(c.planes * out_plane, seed);
  const Naive want = naive_avg_backward(c, dy);
  const auto dx = guarded(
      c.planes * c.p.in_plane(),
      [&](float* dx) { v.avg_backward(c.p, c.planes, dy.data(), dx); }, c.str());
  // Each contribution is rounded once (the division) and then summed: at most the window's
  // tap count of them per input.
  const double taps = double(c.p.kernel[0] * c.p.kernel[1] * c.p.kernel[2]);
  for (std::size_t i = 0; i < dx.size(); ++i)
    if (std::fabs(dx[i] - want.dx[i]) > 1e-7 + 1.2e-7 * (taps + 2) * want.scale[i]) {
      ADD_FAILURE() << v.name << " " << c.str() << ": dx[" << i << "] is " << dx[i]
                    << ", want " << want.dx[i];
      return false;
    }
  return true;
}

fdl::PoolParams avg(std::vector<std::size_t> in, std::size_t k, std::size_t s, std::size_t pad) {
  fdl::PoolParams p;
  p.kind = fdl::PoolKind::kAvg;
  const std::size_t lead = 3 - in.size();  // leading axes of size 1 (1-D, 2-D)
  for (std::size_t a = 0; a < in.size(); ++a) {
    p.in_size[lead + a] = in[a];
    p.kernel[lead + a] = k, p.stride[lead + a] = s, p.pad[lead + a] = pad;
  }
  return p;
}

// Max pooling over 2x2 windows at stride 2 of h x w planes.
fdl::PoolParams max_2x2(std::size_t h, std::size_t w) {
  fdl::PoolParams p = avg({h, w}, 2, 2, 0);
  p.kind = fdl::PoolKind::kMax;
  return p;
}

bool fits(const fdl::PoolParams& p) {
  for (int a = 0; a < 3; ++a)
    if (2 * p.pad[a] > p.kernel[a] || out_size(p, a) < 1) return false;
  return true;
}

std::vector<Case> avg_cases() {
  std::vector<Case> cases;
  auto add = [&](fdl::PoolParams p, std::size_t planes = 2) {
    for (bool ceil_mode : {false, true})
      for (bool include : {true, false})
        for (std::int64_t divisor : {0, 0, 3, -2}) {
          if (divisor && !include) continue;  // count_include_pad is moot with an override
          p.ceil_mode = ceil_mode, p.count_include_pad = include, p.divisor_override = divisor;
          if (fits(p)) cases.push_back({p, planes});
        }
  };
  // 2-D: the common windows on widths up to past 3 vectors of the widest ISA (16 floats),
  // so the whole-vector adds and their scalar tails meet inside the tested sizes.
  for (std::size_t w = 1; w <= 50; ++w)
    for (auto ks : {std::pair<int, int>{2, 2}, {3, 2}, {3, 1}, {2, 1}, {1, 1}, {5, 2}, {4, 3}})
      for (std::size_t pad : {0, 1, 2}) add(avg({5, w}, ks.first, ks.second, pad));
  for (std::size_t w : {63, 64, 65, 130}) add(avg({3, w}, 3, 1, 1));
  // Asymmetric geometry, windows past the padding (ceil_mode), kernel larger than input.
  {
    auto p = avg({10, 21}, 3, 2, 1);
    p.kernel[1] = 1, p.stride[1] = 1, p.pad[1] = 0, p.kernel[2] = 5, p.pad[2] = 2, p.stride[2] = 3;
    add(p);
  }
  add(avg({2, 2}, 4, 3, 0));
  add(avg({6, 7}, 4, 4, 2));
  // 1-D and 3-D.
  for (std::size_t w : {1, 6, 7, 8, 9, 16, 17, 100})
    for (std::size_t k : {1, 2, 3, 4})
      for (std::size_t s : {1, 2, 3}) add(avg({w}, k, s, k / 2), 3);
  for (std::size_t w : {5, 8, 9, 17}) {
    add(avg({4, 6, w}, 3, 2, 1));
    add(avg({3, 5, w}, 2, 2, 0));
    add(avg({5, 4, w}, 3, 1, 1));
  }
  // Global windows (kernel = input: the whole-plane path) and wide ones.
  for (std::size_t n : {1, 7, 8, 9, 16, 17, 33, 200}) add(avg({n}, n, 1, 0), 3);
  {
    auto p = avg({3, 4, 19}, 1, 1, 0);
    p.kernel[0] = 3, p.kernel[1] = 4, p.kernel[2] = 19;
    add(p);
    p = avg({7, 7}, 7, 1, 0);
    add(p, 5);
  }
  add(avg({100}, 40, 30, 20));
  return cases;
}

class PoolBackwardTest : public fdl_test::VariantTest<fdl::PoolVariant> {};

TEST_P(PoolBackwardTest, AvgGradientMatchesNaiveLoops) {
  const auto cases = avg_cases();
  ASSERT_GT(cases.size(), 1000u);
  unsigned seed = 1;
  int failures = 0;
  for (const Case& c : cases)
    if (!check_avg(c, variant(), seed++) && ++failures >= 10) FAIL() << "too many failures";
}

TEST_P(PoolBackwardTest, AvgDriverSplitsPlanesAcrossThreadsWithTheSameResult) {
  const int saved = fdl::num_threads();
  Case c{avg({40, 41}, 3, 2, 1), 37};
  c.p.count_include_pad = false;
  const std::size_t n = c.planes * c.p.in_plane();
  const auto dy = random_vector(c.planes * c.p.out_plane(), 5);
  std::vector<float> one(n, 1.0f), many(n, 2.0f);
  fdl::set_num_threads(1);
  fdl::avg_pool_backward(c.p, c.planes, dy.data(), one.data(), &variant());
  fdl::set_num_threads(4);
  fdl::avg_pool_backward(c.p, c.planes, dy.data(), many.data(), &variant());
  fdl::set_num_threads(saved);
  EXPECT_EQ(one, many);
  const Naive want = naive_avg_backward(c, dy);
  for (std::size_t i = 0; i < n; ++i) ASSERT_NEAR(many[i], want.dx[i], 1e-6) << i;
  fdl::avg_pool_backward(c.p, 0, nullptr, nullptr, &variant());  // an empty batch
}

// The 2x2/2 gradient from the input: bit for bit the scatter of the reference forward's
// indices, on every width around the vector sizes, with ties, NaN and -inf in the windows;
// and the driver on other geometries (indices first) and across threads.
TEST_P(PoolBackwardTest, MaxGradientFromTheInputIsTheScatterOfTheIndices) {
  const fdl::PoolVariant& ref = fdl::pool_variants().back();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (std::size_t h : {2, 4, 6})
    for (std::size_t w = 2; w <= 70; w += 2)
      for (int pattern = 0; pattern < 3; ++pattern) {
        const fdl::PoolParams p = max_2x2(h, w);
        ASSERT_TRUE(fdl::is_pool_2x2_even(p));
        const std::size_t planes = 3, in = p.in_plane(), out = p.out_plane();
        auto x = random_vector(planes * in, unsigned(w * 7 + h + pattern));
        for (std::size_t i = 0; i + 5 < x.size(); i += 5) x[i + 1] = x[i];  // ties
        if (pattern >= 1)
          for (std::size_t i = pattern; i < x.size(); i += 7) x[i] = nan;
        if (pattern == 2)
          for (std::size_t i = 0; i < x.size(); i += 3) x[i] = -inf;
        const auto dy = random_vector(planes * out, 9);
        std::vector<float> y(planes * out), got(planes * in, 99.0f), want(planes * in);
        std::vector<std::int64_t> indices(planes * out);
        ref.fn(p, planes, x.data(), y.data(), indices.data());
        fdl::max_pool_backward(planes, in, out, dy.data(), indices.data(), want.data());
        variant().max_backward_2x2(p, planes, x.data(), dy.data(), got.data());
        ASSERT_EQ(got, want) << variant().name << " " << h << "x" << w << " pattern "
                             << pattern;
      }
  // Other geometries: the driver computes the indices; threads change nothing.
  Case c{avg({40, 41}, 3, 2, 1), 37};
  c.p.kind = fdl::PoolKind::kMax;
  const std::size_t n = c.planes * c.p.in_plane(), m = c.planes * c.p.out_plane();
  const auto x = random_vector(n, 11), dy = random_vector(m, 12);
  std::vector<float> y(m), want(n), one(n), many(n);
  std::vector<std::int64_t> indices(m);
  fdl::pool(c.p, c.planes, x.data(), y.data(), indices.data(), &variant());
  fdl::max_pool_backward(c.planes, c.p.in_plane(), c.p.out_plane(), dy.data(), indices.data(),
                         want.data());
  const int saved = fdl::num_threads();
  for (auto in_size : {std::array<std::size_t, 2>{40, 41}, {40, 42}}) {
    c.p.in_size[1] = in_size[0], c.p.in_size[2] = in_size[1];
    if (in_size[1] == 42) {  // 2x2/2 even: the fused kernel through the driver
      c.p.kernel[1] = c.p.kernel[2] = 2, c.p.pad[1] = c.p.pad[2] = 0;
      const std::size_t n2 = c.planes * c.p.in_plane(), m2 = c.planes * c.p.out_plane();
      const auto x2 = random_vector(n2, 13), dy2 = random_vector(m2, 14);
      std::vector<float> y2(m2);
      indices.assign(m2, 0);
      want.assign(n2, 0.0f), one.assign(n2, 0.0f), many.assign(n2, 0.0f);
      fdl::pool(c.p, c.planes, x2.data(), y2.data(), indices.data(), &ref);
      fdl::max_pool_backward(c.planes, c.p.in_plane(), c.p.out_plane(), dy2.data(),
                             indices.data(), want.data());
      fdl::set_num_threads(1);
      fdl::max_pool_input_backward(c.p, c.planes, x2.data(), dy2.data(), one.data(), &variant());
      fdl::set_num_threads(4);
      fdl::max_pool_input_backward(c.p, c.planes, x2.data(), dy2.data(), many.data(), &variant());
    } else {
      fdl::set_num_threads(1);
      fdl::max_pool_input_backward(c.p, c.planes, x.data(), dy.data(), one.data(), &variant());
      fdl::set_num_threads(4);
      fdl::max_pool_input_backward(c.p, c.planes, x.data(), dy.data(), many.data(), &variant());
    }
    EXPECT_EQ(one, want);
    EXPECT_EQ(many, want);
  }
  fdl::set_num_threads(saved);
}

// Bitwise equality (NaN == NaN with the same bits).
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The 2x2/2 codes: the maxima are the reference forward's bit for bit, each code names the
// tap of its index (4 where gated and the maximum is not > 0), and the codes' spread is the
// scatter of the indices (of dy where the gate keeps it); on every width around the vector
// sizes, with ties, NaN, -inf and all-negative windows; the driver across threads.
TEST_P(PoolBackwardTest, MaxCodesNameTheIndicesTapsAndSpreadAsTheirScatter) {
  const fdl::PoolVariant& ref = fdl::pool_variants().back();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (std::size_t h : {2, 4, 6})
    for (std::size_t w = 2; w <= 70; w += 2)
      for (int pattern = 0; pattern < 4; ++pattern)
        for (bool gate : {false, true}) {
          const fdl::PoolParams p = max_2x2(h, w);
          const std::size_t planes = 3, in = p.in_plane(), out = p.out_plane();
          auto x = random_vector(planes * in, unsigned(w * 7 + h + pattern));
          for (std::size_t i = 0; i + 5 < x.size(); i += 5) x[i + 1] = x[i];  // ties
          if (pattern == 1 || pattern == 2)
            for (std::size_t i = pattern; i < x.size(); i += 7) x[i] = nan;
          if (pattern == 2)
            for (std::size_t i = 0; i < x.size(); i += 3) x[i] = -inf;
          if (pattern == 3)  // ReLU outputs: zeros, so whole windows of 0
            for (auto& v : x) v = std::max(v - 0.3f, 0.0f);
          const auto dy = random_vector(planes * out, 9);
          std::vector<float> want_y(planes * out), y(planes * out, 7.0f), codes(planes * out);
          std::vector<std::int64_t> indices(planes * out);
          ref.fn(p, planes, x.data(), want_y.data(), indices.data());
          variant().max_codes_2x2(p, planes, x.data(), y.data(), codes.data(), gate);
          const std::string where = std::string(variant().name) + " " + std::to_string(h) +
                                    "x" + std::to_string(w) + " pattern " +
                                    std::to_string(pattern) + (gate ? " gated" : "");
          ASSERT_TRUE(same_bits(y, want_y)) << where;
          std::vector<float> kept(dy);
          for (std::size_t o = 0; o < indices.size(); ++o) {
            const auto i = static_cast<std::size_t>(indices[o] % static_cast<std::int64_t>(in));
            const float code = static_cast<float>(2 * ((i / w) % 2) + i % 2);
            const bool off = gate && !(want_y[o] > 0.0f);
            ASSERT_EQ(codes[o], off ? 4.0f : code) << where << " output " << o;
            if (off) kept[o] = 0.0f;
          }
          std::vector<float> got(planes * in, 99.0f), want(planes * in);
          fdl::max_pool_backward(planes, in, out, kept.data(), indices.data(), want.data());
          variant().max_codes_backward_2x2(p, planes, codes.data(), dy.data(), got.data());
          ASSERT_TRUE(same_bits(got, want)) << where;
        }
  // The driver: 1 and 4 threads agree with the variant called on the whole batch.
  fdl::PoolParams p = max_2x2(12, 18);
  const std::size_t planes = 37, in = p.in_plane(), out = p.out_plane();
  const auto x = random_vector(planes * in, 21), dy = random_vector(planes * out, 22);
  std::vector<float> y0(planes * out), c0(planes * out), dx0(planes * in);
  variant().max_codes_2x2(p, planes, x.data(), y0.data(), c0.data(), true);
  variant().max_codes_backward_2x2(p, planes, c0.data(), dy.data(), dx0.data());
  const int saved = fdl::num_threads();
  for (int threads : {1, 4}) {
    fdl::set_num_threads(threads);
    std::vector<float> y(planes * out), c(planes * out), dx(planes * in);
    fdl::max_pool_codes(p, planes, x.data(), y.data(), c.data(), true, &variant());
    fdl::max_pool_codes_backward(p, planes, c.data(), dy.data(), dx.data(), &variant());
    EXPECT_TRUE(same_bits(y, y0) && same_bits(c, c0) && same_bits(dx, dx0)) << threads;
  }
  fdl::set_num_threads(saved);
  p.in_size[2] = 17;  // odd width: refused
  EXPECT_THROW(fdl::max_pool_codes(p, 1, x.data(), y0.data(), c0.data(), false),
               std::invalid_argument);
}

// Codes between and beyond the taps': the thresholds every variant shares with the reference.
TEST_P(PoolBackwardTest, MaxCodesBackwardThresholds) {
  const fdl::PoolParams p = max_2x2(2, 40);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> values = {-3.0f, 0.0f, 0.49f, 0.5f, 1.2f, 1.5f, 2.49f, 2.5f, 3.49f,
                                     3.5f, 4.0f, 9.0f, nan};
  std::vector<float> codes(20), dy(20);
  for (std::size_t i = 0; i < 20; ++i) codes[i] = values[i % values.size()], dy[i] = float(i + 1);
  const fdl::PoolVariant& ref = fdl::pool_variants().back();
  std::vector<float> want(80), got(80, 5.0f);
  ref.max_codes_backward_2x2(p, 1, codes.data(), dy.data(), want.data());
  variant().max_codes_backward_2x2(p, 1, codes.data(), dy.data(), got.data());
  EXPECT_EQ(got, want) << variant().name;
  for (std::size_t t = 0; t < 20; ++t) {  // the reference's own taps
    const float c = codes[t];
    const int tap = c < 0.5f ? 0 : c < 1.5f ? 1 : c < 2.5f ? 2 : c < 3.5f ? 3 : -1;
    for (int k = 0; k < 4; ++k)
      EXPECT_EQ(want[(k / 2) * 40 + 2 * t + k % 2], k == tap ? dy[t] : 0.0f) << t << " " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, PoolBackwardTest,
                         ::testing::ValuesIn(fdl::pool_variants()), fdl_test::VariantName());

// Max pooling's gradient with the reference forward's indices against a naive double
// scatter: overlapping windows and ties send several gradients to one input.
TEST(MaxPoolBackward, ScattersEachGradientToItsWindowsMaximum) {
  const fdl::PoolVariant* ref = fdl::pool_find("fdl_f32_pool__ref");
  ASSERT_NE(ref, nullptr);
  unsigned seed = 1;
  for (std::size_t w : {1, 5, 8, 9, 17, 33})
    for (auto ks : {std::pair<int, int>{2, 2}, {3, 1}, {3, 2}, {4, 3}})
      for (std::size_t d : {1, 2}) {
        if (d == 2 && w < 5) continue;  // a dilated window wholly in the padding: no input
        fdl::PoolParams p = avg({6, w}, ks.first, ks.second, ks.first / 2);
        p.kind = fdl::PoolKind::kMax;
        p.dilation[1] = p.dilation[2] = d;
        p.ceil_mode = w % 2 == 1;
        if (!fits(p)) continue;
        const std::size_t planes = 3, in = p.in_plane(), out = p.out_plane();
        auto x = random_vector(planes * in, seed++);
        for (std::size_t i = 0; i + 3 < x.size(); i += 3) x[i + 1] = x[i];  // ties
        std::vector<float> y(planes * out);
        std::vector<std::int64_t> index(planes * out);
        ref->fn(p, planes, x.data(), y.data(), index.data());
        const auto dy = random_vector(planes * out, seed++);
        std::vector<double> want(planes * in, 0.0);
        for (std::size_t plane = 0; plane < planes; ++plane)
          for (std::size_t o = 0; o < out; ++o)
            want[plane * in + std::size_t(index[plane * out + o])] += dy[plane * out + o];
        std::size_t skipped = 99;
        const auto dx = guarded(
            planes * in,
            [&](float* dx) {
              skipped = fdl::max_pool_backward(planes, in, out, dy.data(), index.data(), dx);
            },
            "max");
        EXPECT_EQ(skipped, 0u);
        for (std::size_t i = 0; i < dx.size(); ++i)
          ASSERT_NEAR(dx[i], want[i], 1e-6) << "w" << w << " k" << ks.first << " i" << i;
      }
}

TEST(MaxPoolBackward, SkipsAndCountsIndicesOutsideThePlane) {
  const std::size_t planes = 2, in = 5, out = 4;
  const std::vector<float> dy = {1, 2, 3, 4, 10, 20, 30, 40};
  const std::vector<std::int64_t> index = {0, -1, 4, 0, 5, 2, std::int64_t(1) << 40, 2};
  std::size_t skipped = 0;
  const auto dx = guarded(
      planes * in,
      [&](float* dx) {
        skipped = fdl::max_pool_backward(planes, in, out, dy.data(), index.data(), dx);
      },
      "out of range");
  EXPECT_EQ(skipped, 3u);
  EXPECT_EQ(dx, (std::vector<float>{5, 0, 0, 0, 3, 0, 0, 60, 0, 0}));
}

TEST(MaxPoolBackward, DriverSplitsPlanesAcrossThreadsWithTheSameResult) {
  const int saved = fdl::num_threads();
  const std::size_t planes = 300, in = 400, out = 100;
  const auto dy = random_vector(planes * out, 9);
  std::vector<std::int64_t> index(planes * out);
  std::mt19937 rng(3);
  for (auto& i : index) i = std::int64_t(rng() % (in + 2)) - 1;  // a few out of range
  std::vector<float> one(planes * in), many(planes * in);
  fdl::set_num_threads(1);
  const std::size_t s1 = fdl::max_pool_backward(planes, in, out, dy.data(), index.data(),
                                                one.data());
  fdl::set_num_threads(4);
  const std::size_t s4 = fdl::max_pool_backward(planes, in, out, dy.data(), index.data(),
                                                many.data());
  fdl::set_num_threads(saved);
  EXPECT_EQ(one, many);
  EXPECT_EQ(s1, s4);
  const std::size_t bad = std::size_t(std::count_if(
      index.begin(), index.end(), [&](std::int64_t i) { return i < 0 || i >= std::int64_t(in); }));
  EXPECT_EQ(s1, bad);
  EXPECT_GT(bad, 0u);
  EXPECT_EQ(fdl::max_pool_backward(0, in, out, nullptr, nullptr, nullptr), 0u);
}

}  // namespace
