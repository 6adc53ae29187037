// Every activation variant (src/activation/variants.inc) against double-precision
// references: elementwise activations on sizes around the vector width (guards past the
// end, in place), NaN/Inf; dense sweeps that measure the max error of the vectorised
// exp, sigmoid, tanh, silu and elu and assert the bounds documented in
// src/simd/activation-vec.inc; softmax/log_softmax (large magnitudes, temperature,
// NaN/Inf rows); the threaded entry points; elu and hard_swish fused into every GEMM.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "fastdl/activation.h"
#include "fastdl/gemm.h"
#include "fastdl/isa.h"
#include "test_util.h"

namespace {

using fdl::Activation;

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kAlpha = 0.7f;  // leaky_relu slope / elu alpha: not a default

const Activation kAll[] = {Activation::kNone,    Activation::kRelu,      Activation::kRelu6,
                           Activation::kLeakyRelu, Activation::kSigmoid, Activation::kTanh,
                           Activation::kSilu,    Activation::kElu,       Activation::kHardSwish};

const char* act_name(Activation a) {
  static const char* kNames[] = {"none", "relu",  "relu6", "leaky_relu", "sigmoid",
                                 "tanh", "silu", "elu",   "hard_swish"};
  return kNames[static_cast<int>(a)];
}

double act_double(double x, Activation act, double alpha) {
  switch (act) {
    case Activation::kNone: return x;
    case Activation::kRelu: return x < 0 ? 0 : x;
    case Activation::kRelu6: return x < 0 ? 0 : (x > 6 ? 6 : x);
    case Activation::kLeakyRelu: return x < 0 ? alpha * x : x;
    case Activation::kSigmoid: return 1 / (1 + std::exp(-x));
    case Activation::kTanh: return std::tanh(x);
    case Activation::kSilu: return x / (1 + std::exp(-x));
    case Activation::kElu: return x > 0 ? x : alpha * std::expm1(x);
    case Activation::kHardSwish: return x * std::min(std::max(x + 3, 0.0), 6.0) / 6;
  }
  return x;
}

// The bounds documented in activation-vec.inc: |y - want| <= abs + rel * |want|. `abs`
// covers results below the normal float range (flushed to 0 or rounded as denormals).
struct Bound {
  double abs, rel;
};
Bound bound(Activation act) {
  constexpr double kU = 1.0 / (1 << 23);  // 2^-23: one ulp at 1.0
  constexpr double kDenormal = 1e-44;
  switch (act) {
    case Activation::kSigmoid: return {1.2e-38, 2 * kU};
    case Activation::kTanh: return {kDenormal, 1.5 * kU};
    case Activation::kSilu: return {1.2e-36, 2.5 * kU};
    case Activation::kElu: return {kDenormal, 2 * kU};
    case Activation::kHardSwish: return {kDenormal, 1.5 * kU};
    default: return {kDenormal, kU};  // one rounding at most (leaky_relu's product)
  }
}

// True when y is what `want` (double) rounds to within the bound; NaN and Inf exactly.
bool within(float y, double want, Bound b) {
  if (std::isnan(want)) return std::isnan(y);
  if (std::isinf(want)) return y == want;
  return std::fabs(y - want) <= b.abs + b.rel * std::fabs(want);
}

std::vector<float> random_vector(std::size_t n, unsigned seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Uniform over [-100, 100] and log-spaced magnitudes from 1e-30 to 100, both signs.
std::vector<float> sweep() {
  std::vector<float> v;
  const int n = 1 << 20;
  for (int i = 0; i <= n; ++i) v.push_back(-100.0f + 200.0f * i / n);
  for (int i = 0; i <= n; ++i) {
    const float m = std::pow(10.0f, -30.0f + 32.0f * i / n);
    v.push_back(m);
    v.push_back(-m);
  }
  return v;
}

const std::vector<float> kSpecials = {kNan,  kInf,     -kInf,   0.0f,   -0.0f,  1e-45f, -1e-45f,
                                      88.0f, -88.0f,   100.0f,  -100.0f, 3.0f,  -3.0f,  6.0f,
                                      -6.0f, 0.5f,     -0.5f,   -87.5f, 89.0f,  -1e-8f, 1e-8f};

class ActivationVariant : public fdl_test::VariantTest<fdl::ActivationVariant> {};

TEST_P(ActivationVariant, SizesAroundTheVectorWidth) {
  const auto& v = GetParam();
  const std::size_t w = std::max(v.width, 4);
  for (std::size_t n : {std::size_t(0), std::size_t(1), w - 1, w, w + 1, 2 * w - 1, 2 * w,
                        2 * w + 1, 3 * w + 5, std::size_t(257)}) {
    const auto x = random_vector(n, unsigned(n), -10.0f, 10.0f);
    for (Activation act : kAll) {
      std::vector<float> y(n + 3, 123.0f);
      v.activation(n, x.data(), y.data(), act, kAlpha);
      for (std::size_t i = 0; i < n; ++i)
        ASSERT_TRUE(within(y[i], act_double(x[i], act, kAlpha), bound(act)))
            << v.name << " " << act_name(act) << " n=" << n << " x=" << x[i] << " y=" << y[i];
      for (std::size_t i = n; i < n + 3; ++i) ASSERT_EQ(y[i], 123.0f) << "wrote past n=" << n;
      std::vector<float> inplace = x;
      v.activation(n, inplace.data(), inplace.data(), act, kAlpha);
      for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(inplace[i], y[i]) << "in place, n=" << n;
    }
  }
}

TEST_P(ActivationVariant, NanAndInfLikePyTorch) {
  const auto& v = GetParam();
  for (Activation act : kAll) {
    std::vector<float> y(kSpecials.size());
    v.activation(kSpecials.size(), kSpecials.data(), y.data(), act, kAlpha);
    for (std::size_t i = 0; i < y.size(); ++i)
      EXPECT_TRUE(within(y[i], act_double(kSpecials[i], act, kAlpha), bound(act)))
          << v.name << " " << act_name(act) << "(" << kSpecials[i] << ") = " << y[i];
  }
  // A few exact values PyTorch gives.
  const float x[] = {-kInf, kInf, -kInf, -0.0f};
  float y[4];
  v.activation(4, x, y, Activation::kSigmoid, 0);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 1.0f);
  v.activation(4, x, y, Activation::kSilu, 0);
  EXPECT_TRUE(std::isnan(y[0])) << "silu(-inf) is NaN in PyTorch";
  v.activation(4, x, y, Activation::kHardSwish, 0);
  EXPECT_TRUE(std::isnan(y[0])) << "hard_swish(-inf) is NaN in PyTorch";
  EXPECT_EQ(y[1], kInf);
  v.activation(4, x, y, Activation::kElu, 0.5f);
  EXPECT_EQ(y[0], -0.5f);
}

// Measures the max error over a dense sweep, prints it and checks the documented bound.
TEST_P(ActivationVariant, MaxErrorWithinDocumentedBounds) {
  const auto& v = GetParam();
  const auto x = sweep();
  std::vector<float> y(x.size());
  for (Activation act : {Activation::kSigmoid, Activation::kTanh, Activation::kSilu,
                         Activation::kElu, Activation::kHardSwish, Activation::kLeakyRelu}) {
    v.activation(x.size(), x.data(), y.data(), act, kAlpha);
    double max_abs = 0, max_rel = 0;
    std::size_t bad = 0, first_bad = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double want = act_double(x[i], act, kAlpha), err = std::fabs(y[i] - want);
      max_abs = std::max(max_abs, err);
      if (std::fabs(want) > 1e-30) max_rel = std::max(max_rel, err / std::fabs(want));
      if (!within(y[i], want, bound(act)) && bad++ == 0) first_bad = i;
    }
    std::printf("%s %-10s max abs error %.3g, max rel error %.3g (%.2f x 2^-23)\n", v.name,
                act_name(act), max_abs, max_rel, max_rel * (1 << 23));
    EXPECT_EQ(bad, 0u) << v.name << " " << act_name(act) << ": first at x=" << x[first_bad]
                       << " y=" << y[first_bad]
                       << " want=" << act_double(x[first_bad], act, kAlpha);
  }
}

TEST_P(ActivationVariant, ExpRelativeErrorAndRange) {
  const auto& v = GetParam();
  // The range where exp is a normal float: error <= 1.5 ulp of the result.
  std::vector<float> x;
  for (int i = 0; i <= (1 << 21); ++i) x.push_back(-87.33f + (88.3f + 87.33f) * i / (1 << 21));
  std::vector<float> y(x.size());
  v.exp(x.size(), x.data(), y.data());
  double max_ulp = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double want = std::exp(double(x[i]));
    const double ulp = std::nextafter(float(want), kInf) - float(want);
    max_ulp = std::max(max_ulp, std::fabs(y[i] - want) / ulp);
  }
  std::printf("%s exp        max error %.2f ulp on [-87.33, 88.3]\n", v.name, max_ulp);
  EXPECT_LE(max_ulp, 1.5) << v.name;
  const float edge[] = {-kInf, -100.0f, -88.0f, kNan, 88.3f, 1000.0f};
  float out[6];
  v.exp(6, edge, out);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_LT(out[1], 1e-38f);  // the vectorised exp gives 0, std::exp a denormal
  EXPECT_LT(out[2], 1.2e-38f);
  EXPECT_TRUE(std::isnan(out[3]));
  EXPECT_TRUE(std::isfinite(out[4]));
  if (v.isa != fdl::Isa::kRef) EXPECT_TRUE(std::isfinite(out[5])) << "clamped, never Inf";
}

// Softmax of the n floats x[0], x[stride], ... into y[0], y[stride], ...
void softmax_double(std::size_t n, std::size_t stride, const float* x, double scale, bool log,
                    double* y) {
  double max = -HUGE_VAL;
  for (std::size_t k = 0; k < n; ++k) {
    const double v = x[k * stride];
    max = std::isnan(v) || v > max ? v : max;
  }
  double sum = 0;
  for (std::size_t k = 0; k < n; ++k) sum += std::exp((x[k * stride] - max) * scale);
  for (std::size_t k = 0; k < n; ++k) {
    const double z = (x[k * stride] - max) * scale;
    y[k * stride] = log ? z - std::log(sum) : std::exp(z) / sum;
  }
}

// x [outer][n][inner] of uniform values in +-magnitude, softmax along n.
void check_softmax(const fdl::ActivationVariant& v, std::size_t outer, std::size_t n,
                   std::size_t inner, float magnitude, float scale, bool log) {
  const std::size_t size = outer * n * inner;
  const auto x = random_vector(size, unsigned(n * 7 + inner), -magnitude, magnitude);
  std::vector<float> y(size + 3, 123.0f);
  v.softmax(outer, n, inner, x.data(), y.data(), scale, log);
  std::vector<double> want(size);
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t c = 0; c < inner; ++c)
      softmax_double(n, inner, x.data() + o * n * inner + c, scale, log,
                     want.data() + o * n * inner + c);
  for (std::size_t i = 0; i < size; ++i) {
    // z = (x - max) * scale rounds to 2^-24 of |z|; exp turns that into a relative error
    // of the same size (softmax), log_softmax keeps it absolute.
    const double z = std::fabs(log ? want[i] : 0.0) + magnitude * scale;
    const double tol = log ? 1e-6 + 2e-7 * z : 1e-7 + want[i] * (3e-6 + 1.2e-7 * z);
    ASSERT_NEAR(y[i], want[i], tol) << v.name << (log ? " log_softmax" : " softmax")
                                    << " outer=" << outer << " n=" << n << " inner=" << inner
                                    << " magnitude=" << magnitude << " scale=" << scale
                                    << " at " << i;
  }
  for (std::size_t i = size; i < size + 3; ++i) ASSERT_EQ(y[i], 123.0f) << "wrote past the end";
  std::vector<float> inplace = x;
  v.softmax(outer, n, inner, inplace.data(), inplace.data(), scale, log);
  for (std::size_t i = 0; i < size; ++i) ASSERT_EQ(inplace[i], y[i]) << "in place";
}

TEST_P(ActivationVariant, SoftmaxAlongRowsMatchesDoubleReference) {
  const auto& v = GetParam();
  const std::size_t w = std::max(v.width, 4);
  for (std::size_t n : {std::size_t(1), w - 1, w, w + 1, 2 * w - 1, 2 * w + 1, 3 * w + 5,
                        std::size_t(1000)})
    for (float magnitude : {1.0f, 30.0f, 1e4f})
      for (float scale : {1.0f, 0.25f, 3.0f})
        for (bool log : {false, true}) check_softmax(v, 3, n, 1, magnitude, scale, log);
}

TEST_P(ActivationVariant, SoftmaxAlongColumnsMatchesDoubleReference) {
  const auto& v = GetParam();
  const std::size_t w = std::max(v.width, 4);
  for (std::size_t inner : {std::size_t(2), std::size_t(3), w - 1, w, w + 1, 2 * w + 3})
    for (std::size_t n : {std::size_t(1), std::size_t(5), std::size_t(33)})
      for (float magnitude : {1.0f, 1e4f})
        for (bool log : {false, true}) check_softmax(v, 2, n, inner, magnitude, 0.5f, log);
  check_softmax(v, 2, 0, 5, 1.0f, 1.0f, false);  // nothing to do, nothing written
}

TEST_P(ActivationVariant, SoftmaxNanAndInfRowsLikePyTorch) {
  const auto& v = GetParam();
  const std::size_t n = 2 * std::max(v.width, 4) + 1;
  for (bool log : {false, true}) {
    for (int kind = 0; kind < 4; ++kind) {
      std::vector<float> x(n, 1.0f);
      x[3] = 2.0f;
      if (kind == 0) x[n - 1] = kNan;
      if (kind == 1) x[1] = kInf;
      if (kind == 2) std::fill(x.begin(), x.end(), -kInf);
      if (kind == 3) x[n - 1] = -kInf;
      // As a row (inner 1) and as column 1 of three (inner 3; the others hold 0).
      std::vector<float> columns(3 * n, 0.0f);
      for (std::size_t k = 0; k < n; ++k) columns[3 * k + 1] = x[k];
      std::vector<float> y(n), yc(3 * n);
      v.softmax(1, n, 1, x.data(), y.data(), 1.0f, log);
      v.softmax(1, n, 3, columns.data(), yc.data(), 1.0f, log);
      for (std::size_t i = 0; i < n; ++i) {
        for (float out : {y[i], yc[3 * i + 1]}) {
          if (kind < 3) {
            EXPECT_TRUE(std::isnan(out)) << v.name << " kind " << kind << " at " << i;
          } else if (i == n - 1) {
            EXPECT_EQ(out, log ? -kInf : 0.0f) << v.name << " -inf entry";
          } else {
            EXPECT_TRUE(std::isfinite(out)) << v.name << " at " << i;
          }
        }
        EXPECT_TRUE(std::isfinite(yc[3 * i]) && std::isfinite(yc[3 * i + 2])) << "other columns";
      }
    }
  }
}

TEST_P(ActivationVariant, ThreadedEntryPointsMatchOneCall) {
  const auto& v = GetParam();
  const std::size_t n = 3 * 32768 + 17;
  const auto x = random_vector(n, 5, -8.0f, 8.0f);
  std::vector<float> one(n), threaded(n);
  v.activation(n, x.data(), one.data(), Activation::kTanh, 0);
  fdl::activation(v, n, x.data(), threaded.data(), Activation::kTanh, 0);
  EXPECT_EQ(one, threaded);
  const std::size_t rows = 301, cols = 499;  // 43 x 499 x 7 too
  std::vector<float> xs = random_vector(rows * cols, 6, -20.0f, 20.0f);
  one.assign(rows * cols, 0.0f);
  threaded.assign(rows * cols, 0.0f);
  for (std::size_t inner : {std::size_t(1), std::size_t(7)}) {
    const std::size_t outer = rows / inner;
    v.softmax(outer, cols, inner, xs.data(), one.data(), 0.5f, true);
    fdl::softmax(v, outer, cols, inner, xs.data(), threaded.data(), 0.5f, true);
    EXPECT_EQ(one, threaded) << "inner=" << inner;
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, ActivationVariant,
                         ::testing::ValuesIn(fdl::activation_variants()),
                         fdl_test::VariantName());

TEST(ActivationDispatch, BestFollowsTheActiveIsaAndFindKnowsEveryName) {
  EXPECT_EQ(fdl::activation_variants().back().isa, fdl::Isa::kRef);
  const auto& best = fdl::activation_best();
  EXPECT_TRUE(best.isa == fdl::active_isa() || best.isa == fdl::Isa::kRef);
  for (const auto& v : fdl::activation_variants()) EXPECT_EQ(fdl::activation_find(v.name), &v);
  EXPECT_EQ(fdl::activation_find("fdl_f32_activation__nope"), nullptr);
}

// The activations added after the first GEMM epilogues, fused into every GEMM variant.
TEST(ActivationEpilogue, EluAndHardSwishFuseIntoEveryGemm) {
  for (const auto& uk : fdl::gemm_variants()) {
    if (!fdl::cpu_supports(uk.isa)) continue;
    const std::size_t m = uk.mr + 1, n = 2 * uk.nr + 3, k = 19;
    const auto a = random_vector(m * k, 1, -1, 1), b = random_vector(k * n, 2, -1, 1);
    const auto bias = random_vector(n, 3, -1, 1);
    for (Activation act : {Activation::kElu, Activation::kHardSwish}) {
      fdl::Epilogue ep;
      ep.act = act;
      ep.alpha = kAlpha;
      ep.bias_col = bias.data();
      fdl::PackRowsByK ap(a.data(), k);
      fdl::PackKByRows bp(b.data(), n);
      std::vector<float> c(m * n);
      fdl::gemm(uk, m, n, k, {nullptr, &ap}, {nullptr, &bp}, c.data(), n, ep, false);
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j) {
          double acc = bias[j];
          for (std::size_t p = 0; p < k; ++p) acc += double(a[i * k + p]) * b[p * n + j];
          ASSERT_NEAR(c[i * n + j], act_double(acc, act, kAlpha), 1e-5)
              << uk.name << " " << act_name(act) << " at " << i << "," << j;
        }
    }
  }
}

}  // namespace
