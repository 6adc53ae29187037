// fdl::Conv2dPlan for every GEMM variant and every ConvAlgorithm against a naive
// double-precision direct convolution, on generated edge cases (kernel sizes odd and even,
// strides, dilation, groups and depthwise, channel counts around the tiles, asymmetric
// padding, zero and small spatial sizes, the 3x3 stride-1 shapes the Winograd path takes,
// every epilogue), checking which algorithm each plan reports; fdl::im2col / fdl::col2im
// against naive loops; and the thread pool (coverage, nesting, concurrency,
// set_num_threads, fork()).
#include <gtest/gtest.h>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fastdl/activation.h"
#include "fastdl/conv.h"
#include "fastdl/gemm.h"
#include "fastdl/isa.h"
#include "fastdl/threadpool.h"
#include "test_util.h"

namespace {

constexpr float kAlpha = 0.1f;  // leaky_relu slope (not the default, so passing it is checked)
constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

using fdl_test::random_vector;

// Restores the pool size when a test ends, whatever it did.
struct ThreadCountGuard {
  int saved = fdl::num_threads();
  ~ThreadCountGuard() { fdl::set_num_threads(saved); }
};

struct ConvCase {
  std::size_t batch = 2, cin = 3, cout = 4, groups = 1, h = 9, w = 8;
  std::size_t kh = 3, kw = 3, sh = 1, sw = 1, dh = 1, dw = 1;
  std::size_t pt = 1, pb = 1, pl = 1, pr = 1;
  bool bias = true;
  fdl::Activation act = fdl::Activation::kNone;

  fdl::Conv2dGeometry geometry() const {
    fdl::Conv2dGeometry g;
    g.in_channels = cin;
    g.out_channels = cout;
    g.groups = groups;
    g.kernel_h = kh;
    g.kernel_w = kw;
    g.stride_h = sh;
    g.stride_w = sw;
    g.dilation_h = dh;
    g.dilation_w = dw;
    g.pad_top = pt;
    g.pad_bottom = pb;
    g.pad_left = pl;
    g.pad_right = pr;
    return g;
  }
  bool fits() const {
    return h + pt + pb >= dh * (kh - 1) + 1 && w + pl + pr >= dw * (kw - 1) + 1;
  }
  std::size_t oh() const { return (h + pt + pb - dh * (kh - 1) - 1) / sh + 1; }
  std::size_t ow() const { return (w + pl + pr - dw * (kw - 1) - 1) / sw + 1; }
  std::string str() const {
    std::ostringstream s;
    s << "n" << batch << " cin" << cin << " cout" << cout << " g" << groups << " in" << h << "x"
      << w << " k" << kh << "x" << kw << " s" << sh << "x" << sw << " d" << dh << "x" << dw
      << " pad(t" << pt << ",b" << pb << ",l" << pl << ",r" << pr << ")"
      << (bias ? " bias" : "") << " act" << int(act);
    return s.str();
  }
};

// Naive direct convolution in double: value and sum of |products| (the error scale).
void naive_conv(const ConvCase& c, const std::vector<float>& x, const std::vector<float>& wt,
                const std::vector<float>& b, std::vector<double>* y, std::vector<double>* mag) {
  const std::size_t OH = c.oh(), OW = c.ow(), cin_g = c.cin / c.groups, cout_g = c.cout / c.groups;
  y->assign(c.batch * c.cout * OH * OW, 0.0);
  mag->assign(y->size(), 0.0);
  for (std::size_t n = 0; n < c.batch; ++n)
    for (std::size_t o = 0; o < c.cout; ++o) {
      const std::size_t grp = o / cout_g;
      for (std::size_t i = 0; i < OH; ++i)
        for (std::size_t j = 0; j < OW; ++j) {
          double acc = c.bias ? b[o] : 0.0, m = c.bias ? std::fabs(b[o]) : 0.0;
          for (std::size_t ci = 0; ci < cin_g; ++ci)
            for (std::size_t ky = 0; ky < c.kh; ++ky)
              for (std::size_t kx = 0; kx < c.kw; ++kx) {
                const long iy = long(i * c.sh + ky * c.dh) - long(c.pt);
                const long ix = long(j * c.sw + kx * c.dw) - long(c.pl);
                if (iy < 0 || ix < 0 || iy >= long(c.h) || ix >= long(c.w)) continue;
                const double xv = x[((n * c.cin + grp * cin_g + ci) * c.h + iy) * c.w + ix];
                const double wv = wt[((o * cin_g + ci) * c.kh + ky) * c.kw + kx];
                acc += xv * wv;
                m += std::fabs(xv * wv);
              }
          (*y)[((n * c.cout + o) * OH + i) * OW + j] = acc;
          (*mag)[((n * c.cout + o) * OH + i) * OW + j] = m;
        }
    }
}

// What a plan with `algorithm` should run for this case, where the variant's ISA has the
// kernels (not ref): the direct depthwise kernel when groups == in == out channels
// (auto, depthwise); Winograd for 3x3 stride-1 dilation-1 ungrouped layers with >= 8
// channels (auto, winograd); else, and whenever forced elsewhere, im2col + GEMM.
std::string expected_algorithm(const ConvCase& c, const fdl::GemmUkernel& uk,
                               fdl::ConvAlgorithm algorithm) {
  using A = fdl::ConvAlgorithm;
  const bool simd = uk.isa != fdl::Isa::kRef;
  const bool depthwise = simd && c.groups == c.cin && c.groups == c.cout;
  const bool winograd = simd && c.kh == 3 && c.kw == 3 && c.sh == 1 && c.sw == 1 && c.dh == 1 &&
                        c.dw == 1 && c.groups == 1 && c.cin >= 8 && c.cout >= 8;
  if (depthwise && (algorithm == A::kAuto || algorithm == A::kDepthwise)) return "depthwise";
  if (winograd && (algorithm == A::kAuto || algorithm == A::kWinograd)) return "winograd";
  return "im2col";
}

const char* algorithm_name(fdl::ConvAlgorithm a) {
  switch (a) {
    case fdl::ConvAlgorithm::kAuto: return "auto";
    case fdl::ConvAlgorithm::kIm2col: return "im2col";
    case fdl::ConvAlgorithm::kWinograd: return "winograd";
    case fdl::ConvAlgorithm::kDepthwise: return "depthwise";
  }
  return "?";
}

constexpr fdl::ConvAlgorithm kAlgorithms[] = {
    fdl::ConvAlgorithm::kAuto, fdl::ConvAlgorithm::kIm2col, fdl::ConvAlgorithm::kWinograd,
    fdl::ConvAlgorithm::kDepthwise};

// Algorithms plans reported in run_plan, per variant name.
std::set<std::string>& algorithms_seen(const fdl::GemmUkernel& uk) {
  static std::map<std::string, std::set<std::string>> seen;
  return seen[uk.name];
}

std::vector<float> run_plan(const ConvCase& c, const fdl::GemmUkernel* uk,
                            const std::vector<float>& x, const std::vector<float>& wt,
                            const std::vector<float>& b,
                            fdl::ConvAlgorithm algorithm = fdl::ConvAlgorithm::kAuto) {
  fdl::Conv2dPlan plan(c.geometry(), wt.data(), c.bias ? b.data() : nullptr, c.act, kAlpha, uk,
                       algorithm);
  const fdl::GemmUkernel& used = uk ? *uk : fdl::gemm_best();
  const std::string alg = plan.algorithm(c.h, c.w);
  const std::string want = expected_algorithm(c, used, algorithm);
  if (want == "winograd") {
    EXPECT_TRUE(alg == "winograd_f2" || alg == "winograd_f4")
        << used.name << " " << algorithm_name(algorithm) << " " << c.str() << " uses " << alg;
  } else {
    EXPECT_EQ(alg, want) << used.name << " " << algorithm_name(algorithm) << " " << c.str();
  }
  algorithms_seen(used).insert(alg);
  std::vector<float> y(c.batch * c.cout * c.oh() * c.ow() + 1, -12345.0f);  // + a canary
  plan.run(x.data(), c.batch, c.h, c.w, y.data());
  return y;
}

std::string plan_algorithm(const ConvCase& c, const fdl::GemmUkernel& uk,
                           fdl::ConvAlgorithm algorithm) {
  const std::vector<float> wt(c.cout * (c.cin / c.groups) * c.kh * c.kw);
  return fdl::Conv2dPlan(c.geometry(), wt.data(), nullptr, c.act, kAlpha, &uk, algorithm)
      .algorithm(c.h, c.w);
}

// Runs the case through plans for `uk` with every algorithm and compares every output
// (and a canary just past the end) with the naive convolution. Returns false after the
// first mismatch.
bool check_case(const ConvCase& c, const fdl::GemmUkernel* uk, unsigned seed) {
  const auto x = random_vector(c.batch * c.cin * c.h * c.w, seed);
  const auto wt = random_vector(c.cout * (c.cin / c.groups) * c.kh * c.kw, seed + 1);
  const auto b = random_vector(c.cout, seed + 2);
  std::vector<double> ref, mag;
  naive_conv(c, x, wt, b, &ref, &mag);
  for (fdl::ConvAlgorithm algorithm : kAlgorithms) {
    const auto y = run_plan(c, uk, x, wt, b, algorithm);
    if (y.back() != -12345.0f) {
      ADD_FAILURE() << "wrote past the output: " << algorithm_name(algorithm) << " " << c.str();
      return false;
    }
    for (std::size_t i = 0; i < ref.size(); ++i) {
      // Winograd transforms lose a little more than a plain dot product: the tolerance
      // grows with the magnitude of the terms, not with their (possibly cancelling) sum.
      const double want = fdl::activate_ref(float(ref[i]), c.act, kAlpha);
      const double tol = 1e-5 + 5e-6 * std::sqrt(double(c.cin / c.groups * c.kh * c.kw)) * mag[i];
      if (!(std::fabs(y[i] - want) <= tol)) {
        ADD_FAILURE() << (uk ? uk->name : "default") << " " << algorithm_name(algorithm) << " "
                      << c.str() << " output " << i << " of " << ref.size() << ": got " << y[i]
                      << " want " << want << " tol " << tol;
        return false;
      }
    }
  }
  return true;
}

std::vector<ConvCase> generated_cases() {
  std::vector<ConvCase> cases;
  std::mt19937 rng(2024);
  auto pick = [&](std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
  };
  const std::size_t channels[] = {1, 3, 8, 16, 17};
  // Every kernel size x stride x channel count, random spatial sizes 1..20 and random
  // (often asymmetric) padding that keeps the kernel inside the padded input.
  for (std::size_t k : {1, 2, 3, 4, 5, 7})
    for (std::size_t s : {1, 2, 3})
      for (std::size_t ci = 0; ci < 5; ++ci) {
        ConvCase c;
        c.cin = channels[ci];
        c.cout = channels[(ci + k + s) % 5];
        c.kh = c.kw = k;
        c.sh = c.sw = s;
        do {
          c.h = pick(1, 20);
          c.w = pick(1, 20);
          c.pt = pick(0, k / 2 + 1);
          c.pb = pick(0, k / 2 + 1);
          c.pl = pick(0, k / 2 + 1);
          c.pr = pick(0, k / 2 + 1);
        } while (!c.fits());
        c.batch = (k + s + ci) % 4 == 0 ? 1 : 2;
        c.bias = (k + ci) % 3 != 0;
        c.act = static_cast<fdl::Activation>((k + s + ci) % 7);
        cases.push_back(c);
      }
  // The Winograd candidates: 3x3, stride 1, dilation 1, groups 1, >= 8 channels, output
  // sizes 1..20 (so every residue modulo the 2/4/6 output tiles), symmetric and
  // asymmetric padding.
  for (std::size_t size = 1; size <= 20; ++size) {
    ConvCase c;
    c.cin = channels[2 + size % 3];
    c.cout = channels[2 + (size / 3) % 3];
    c.h = size;
    c.w = 21 - size;
    c.batch = size % 5 == 0 ? 1 : 2;
    c.act = static_cast<fdl::Activation>(size % 7);
    cases.push_back(c);  // pad 1: output == input size
    if (size >= 3) {
      c.pt = c.pb = c.pl = c.pr = 0;
      c.w = std::max<std::size_t>(3, 23 - size);
      c.bias = size % 2 == 0;
      cases.push_back(c);  // valid: output size - 2
    }
    c.pt = size % 3;
    c.pb = 2 - size % 3;
    c.pl = (size + 1) % 3;
    c.pr = size % 2;
    c.h = size + 1;
    c.w = size + 2;
    if (c.fits()) cases.push_back(c);
  }
  // Winograd with many channels (K = 9 * 32 = 288 crosses the 256 K block), and a big
  // image (more output pixels than the GEMM's column block).
  {
    ConvCase c;
    c.cin = 32, c.cout = 20, c.h = 13, c.w = 11, c.act = fdl::Activation::kRelu;
    cases.push_back(c);
    c.cin = 8, c.cout = 8, c.h = 67, c.w = 69, c.batch = 1, c.act = fdl::Activation::kNone;
    cases.push_back(c);
  }
  // Dilation (square and per-axis) with odd and even kernels.
  for (std::size_t k : {2, 3, 5}) {
    ConvCase c;
    c.kh = c.kw = k;
    c.dh = c.dw = 2;
    c.pt = c.pb = c.pl = c.pr = k - 1;
    c.h = 11, c.w = 7;
    c.cin = k == 3 ? 8 : 3;
    c.cout = 5;
    cases.push_back(c);
    c.dh = 2, c.dw = 1, c.sh = 2, c.pt = 0, c.pb = 1, c.pl = 2, c.pr = 0;
    cases.push_back(c);
  }
  // Groups: 2 groups, depthwise (multiplier 1 and 2), with strides, pads and activations.
  struct G { std::size_t cin, cout, groups, k, s; };
  for (const G& g : {G{4, 6, 2, 3, 1}, G{16, 16, 2, 3, 1}, G{6, 4, 2, 5, 2}, G{17, 34, 17, 3, 1},
                     G{3, 3, 3, 3, 1}, G{8, 8, 8, 3, 1}, G{16, 16, 16, 5, 2}, G{8, 16, 8, 3, 2},
                     G{16, 16, 16, 3, 3}, G{1, 1, 1, 3, 1}, G{8, 8, 2, 1, 1}}) {
    ConvCase c;
    c.cin = g.cin, c.cout = g.cout, c.groups = g.groups, c.kh = c.kw = g.k, c.sh = c.sw = g.s;
    c.pt = c.pl = g.k / 2, c.pb = c.pr = g.k / 2 + g.s - 1;
    c.h = 10, c.w = 13;
    c.act = static_cast<fdl::Activation>((g.cin + g.k) % 7);
    cases.push_back(c);
  }
  // Depthwise (groups == in == out channels: the direct kernel) over every kernel size,
  // stride and dilation, random sizes 1..20 and asymmetric padding, every activation.
  {
    const std::size_t dw_channels[] = {1, 3, 8, 17, 16};
    int i = 0;
    for (std::size_t k : {1, 2, 3, 4, 5, 7})
      for (std::size_t s : {1, 2, 3})
        for (std::size_t d : {1, 2}) {
          ConvCase c;
          c.cin = c.cout = c.groups = dw_channels[i % 5];
          c.kh = k, c.kw = (k == 2 || k == 4) ? k + 1 : k;  // some rectangular kernels
          c.sh = s, c.sw = 1 + (s + i) % 3;
          c.dh = d, c.dw = 1 + (d + i) % 2;
          do {
            c.h = pick(1, 20);
            c.w = pick(1, 20);
            c.pt = pick(0, k / 2 + 1);
            c.pb = pick(0, k / 2 + 1);
            c.pl = pick(0, k / 2 + 1);
            c.pr = pick(0, k / 2 + 1);
          } while (!c.fits());
          c.batch = 1 + i % 2;
          c.bias = i % 3 != 0;
          c.act = static_cast<fdl::Activation>(i % 7);
          cases.push_back(c);
          ++i;
        }
    // The specialised 3x3 / 5x5, stride 1 / 2 kernels: widths around the vector blocks
    // (1..40), padding 0 / k/2 / asymmetric, dilation 1 and 2.
    for (std::size_t k : {3, 5})
      for (std::size_t s : {1, 2})
        for (std::size_t w : {1, 4, 7, 8, 9, 15, 16, 17, 23, 33, 40}) {
          ConvCase c;
          c.cin = c.cout = c.groups = (w % 3 == 0) ? 17 : 8;
          c.kh = c.kw = k, c.sh = c.sw = s;
          c.h = 3 + w % 5, c.w = w;
          c.pt = c.pb = c.pl = c.pr = k / 2;
          if (w % 4 == 1) c.pt = 0, c.pb = k - 1, c.pl = k - 1, c.pr = 0;
          if (w % 4 == 3) c.pt = 1, c.pb = 0, c.pl = 0, c.pr = 1;
          if (w == 23) c.dh = c.dw = 2, c.pt = c.pb = c.pl = c.pr = k - 1;
          c.act = static_cast<fdl::Activation>(w % 7);
          c.batch = 1 + w % 2;
          if (c.fits()) cases.push_back(c);
        }
    ConvCase c;  // a wide plane (vector loops with several full blocks and a tail)
    c.cin = c.cout = c.groups = 4, c.h = 5, c.w = 77;
    cases.push_back(c);
    c.sw = 2;
    cases.push_back(c);
  }
  // Pointwise (read directly as the B matrix), also with M crossing the 144-row block and
  // an input whose pixel count is not a multiple of any tile.
  for (std::size_t cout : {1, 7, 17, 150}) {
    ConvCase c;
    c.kh = c.kw = 1, c.pt = c.pb = c.pl = c.pr = 0;
    c.cin = cout == 150 ? 5 : 17, c.cout = cout, c.h = 7, c.w = 9;
    cases.push_back(c);
  }
  // Rectangular kernels, mixed strides, a kernel exactly as large as the padded input
  // (1x1 output), a 1x1 input, 5x5 with K = 17 * 25 = 425 > the K block.
  {
    ConvCase c;
    c.kh = 4, c.kw = 2, c.sh = 1, c.sw = 3, c.pt = 2, c.pb = 1, c.pl = 0, c.pr = 1;
    cases.push_back(c);
    c = ConvCase();
    c.kh = 7, c.kw = 7, c.h = 5, c.w = 6, c.pt = 1, c.pb = 1, c.pl = 0, c.pr = 1;
    cases.push_back(c);
    c = ConvCase();
    c.h = c.w = 1, c.cin = 8, c.cout = 8;
    cases.push_back(c);
    c = ConvCase();
    c.cin = 17, c.cout = 9, c.kh = c.kw = 5, c.pt = c.pb = c.pl = c.pr = 2, c.h = 12, c.w = 10;
    c.act = fdl::Activation::kSilu;
    cases.push_back(c);
    c.sh = 2;
    cases.push_back(c);
  }
  return cases;
}

class ConvVariant : public ::testing::TestWithParam<fdl::GemmUkernel> {
 protected:
  const fdl::GemmUkernel& uk() const { return GetParam(); }
  void SetUp() override {
    if (!fdl::cpu_supports(GetParam().isa))
      GTEST_SKIP() << "CPU lacks " << fdl::isa_name(GetParam().isa);
  }
};

TEST_P(ConvVariant, GeneratedCasesMatchNaiveConvolution) {
  const auto cases = generated_cases();
  ASSERT_GT(cases.size(), 150u);
  unsigned seed = 1;
  int failures = 0;
  for (const ConvCase& c : cases) {
    ASSERT_TRUE(c.fits()) << c.str();
    if (!check_case(c, &uk(), seed += 3) && ++failures >= 10) FAIL() << "too many failures";
  }
  // The cases reach every algorithm wherever the ISA has it.
  const auto& seen = algorithms_seen(uk());
  EXPECT_TRUE(seen.count("im2col"));
  if (uk().isa != fdl::Isa::kRef) {
    EXPECT_TRUE(seen.count("winograd_f2")) << uk().name;
    EXPECT_TRUE(seen.count("winograd_f4")) << uk().name;
    EXPECT_TRUE(seen.count("depthwise")) << uk().name;
  }
}

TEST_P(ConvVariant, EveryActivationWithAndWithoutBias) {
  for (int act = 0; act <= 6; ++act)
    for (bool bias : {false, true})
      for (bool winograd : {false, true}) {
        ConvCase c;
        c.act = static_cast<fdl::Activation>(act);
        c.bias = bias;
        if (winograd) c.cin = 8, c.cout = 9, c.h = 7, c.w = 10;
        else c.sh = 2;
        EXPECT_TRUE(check_case(c, &uk(), 100 + act));
      }
}

TEST_P(ConvVariant, ZeroBatchWritesNothing) {
  for (std::size_t cin : {3, 8}) {
    ConvCase c;
    c.batch = 0, c.cin = cin, c.cout = cin;
    const auto wt = random_vector(c.cout * c.cin * 9, 1), b = random_vector(c.cout, 2);
    fdl::Conv2dPlan plan(c.geometry(), wt.data(), b.data(), c.act, kAlpha, &uk());
    float canary = 3.0f;
    plan.run(nullptr, 0, c.h, c.w, &canary);
    EXPECT_EQ(canary, 3.0f);
  }
}

TEST_P(ConvVariant, PlanReusedAcrossInputSizes) {
  for (std::size_t cin : {3, 8}) {
    ConvCase c;
    c.cin = cin, c.cout = 11, c.act = fdl::Activation::kRelu6;
    const auto wt = random_vector(c.cout * c.cin * 9, 5), b = random_vector(c.cout, 6);
    fdl::Conv2dPlan plan(c.geometry(), wt.data(), b.data(), c.act, kAlpha, &uk());
    EXPECT_STREQ(plan.ukernel().name, uk().name);
    for (std::size_t size : {5, 1, 16, 9, 2, 20}) {
      c.h = size, c.w = size + 3, c.batch = size % 2 + 1;
      const auto x = random_vector(c.batch * c.cin * c.h * c.w, unsigned(size));
      std::vector<double> ref, mag;
      naive_conv(c, x, wt, b, &ref, &mag);
      std::vector<float> y(ref.size());
      plan.run(x.data(), c.batch, c.h, c.w, y.data());
      for (std::size_t i = 0; i < y.size(); ++i)
        ASSERT_NEAR(y[i], fdl::activate_ref(float(ref[i]), c.act, kAlpha),
                    1e-5 + 5e-6 * std::sqrt(double(c.cin * 9)) * mag[i])
            << c.str() << " at " << i;
    }
  }
}

TEST_P(ConvVariant, ThreadCountDoesNotChangeResults) {
  ThreadCountGuard guard;
  std::vector<ConvCase> cases(4);
  cases[0].cin = 16, cases[0].cout = 24, cases[0].h = 30, cases[0].w = 29;        // Winograd
  cases[1].cin = 3, cases[1].cout = 40, cases[1].h = 40, cases[1].w = 37;          // im2col
  cases[1].sh = cases[1].sw = 2;
  cases[2].cin = cases[2].cout = cases[2].groups = 16, cases[2].h = cases[2].w = 19;  // depthwise
  cases[3].cin = 64, cases[3].cout = 70, cases[3].kh = cases[3].kw = 1;            // pointwise
  cases[3].pt = cases[3].pb = cases[3].pl = cases[3].pr = 0, cases[3].h = 23, cases[3].w = 21;
  for (const ConvCase& c : cases) {
    const auto x = random_vector(c.batch * c.cin * c.h * c.w, 1);
    const auto wt = random_vector(c.cout * (c.cin / c.groups) * c.kh * c.kw, 2);
    const auto b = random_vector(c.cout, 3);
    for (fdl::ConvAlgorithm algorithm : kAlgorithms) {
      fdl::set_num_threads(1);
      const auto y1 = run_plan(c, &uk(), x, wt, b, algorithm);
      for (int t : {2, 3, 4}) {
        fdl::set_num_threads(t);
        const auto yt = run_plan(c, &uk(), x, wt, b, algorithm);
        ASSERT_EQ(0, std::memcmp(y1.data(), yt.data(), y1.size() * sizeof(float)))
            << c.str() << " " << algorithm_name(algorithm) << " differs between 1 and " << t
            << " threads";
      }
    }
  }
}

// One NaN or Inf at channel 1, pixel (6, 5) of a 13x13 image, 3x3 pad 1: the outputs
// whose receptive field holds it are (5..7, 4..6). Counts outputs that break the rule
// "non-finite (NaN for a NaN input) inside the receptive field, finite outside it";
// with `margin` > 0 outputs within `margin` of the receptive field may be anything.
// `depthwise`: 8 channels, groups 8, so only output channel 1 reads the bad pixel.
int count_misplaced_nonfinite(const fdl::GemmUkernel& uk, std::size_t cin, float bad,
                              fdl::ConvAlgorithm algorithm, long margin, bool depthwise = false) {
  ConvCase c;
  c.batch = 1, c.cin = cin, c.cout = 8, c.h = 13, c.w = 13;
  if (depthwise) c.cin = c.groups = 8;
  auto x = random_vector(c.cin * c.h * c.w, 7);
  x[(1 * c.h + 6) * c.w + 5] = bad;
  const auto wt = random_vector(c.cout * (c.cin / c.groups) * 9, 8), b = random_vector(c.cout, 9);
  const auto y = run_plan(c, &uk, x, wt, b, algorithm);
  int wrong = 0;
  for (std::size_t o = 0; o < c.cout; ++o)
    for (long i = 0; i < long(c.oh()); ++i)
      for (long j = 0; j < long(c.ow()); ++j) {
        const bool sees = i >= 5 && i <= 7 && j >= 4 && j <= 6 && (!depthwise || o == 1);
        const bool near = i >= 5 - margin && i <= 7 + margin && j >= 4 - margin && j <= 6 + margin;
        const float v = y[(o * c.oh() + i) * c.ow() + j];
        bool ok = sees ? (std::isnan(bad) ? std::isnan(v) : !std::isfinite(v)) : std::isfinite(v);
        if (!sees && near && margin > 0) ok = true;
        if (!ok && ++wrong <= 3)
          ADD_FAILURE() << uk.name << " " << algorithm_name(algorithm) << " ("
                        << plan_algorithm(c, uk, algorithm) << ") cin " << cin << " input " << bad
                        << ": output " << o << "," << i << "," << j << " = " << v;
      }
  return wrong;
}

// NaN/Inf in the input: non-finite exactly where the receptive field holds it (im2col,
// depthwise).
TEST_P(ConvVariant, NanAndInfStayInsideTheirReceptiveField) {
  for (float bad : {kNan, kInf}) {
    EXPECT_EQ(count_misplaced_nonfinite(uk(), 3, bad, fdl::ConvAlgorithm::kAuto, 0), 0);
    EXPECT_EQ(count_misplaced_nonfinite(uk(), 8, bad, fdl::ConvAlgorithm::kIm2col, 0), 0);
    for (fdl::ConvAlgorithm algorithm : kAlgorithms)
      EXPECT_EQ(count_misplaced_nonfinite(uk(), 8, bad, algorithm, 0, true), 0);
  }
}

// Winograd never hides a NaN/Inf and keeps it within the output tiles that read it.
TEST_P(ConvVariant, WinogradNanAndInfStayNearTheirReceptiveField) {
  for (float bad : {kNan, kInf})
    for (fdl::ConvAlgorithm algorithm : {fdl::ConvAlgorithm::kAuto, fdl::ConvAlgorithm::kWinograd})
      EXPECT_EQ(count_misplaced_nonfinite(uk(), 8, bad, algorithm, 3), 0);
}

// PyTorch semantics (DESIGN.md section 5): NaN appears only where the receptive field
// holds it, also on the Winograd path (where a tile's transforms mix all its pixels).
TEST_P(ConvVariant, WinogradNanAndInfStayInsideTheirReceptiveField) {
  for (float bad : {kNan, kInf})
    EXPECT_EQ(count_misplaced_nonfinite(uk(), 8, bad, fdl::ConvAlgorithm::kWinograd, 0), 0);
}

TEST(ConvDefaultVariant, NullUkernelUsesBestAndMatches) {
  ConvCase c;
  c.cin = 8, c.cout = 8, c.h = 11, c.w = 6;
  EXPECT_TRUE(check_case(c, nullptr, 42));
  const auto wt = random_vector(8 * 8 * 9, 1);
  fdl::Conv2dPlan plan(c.geometry(), wt.data(), nullptr, c.act, kAlpha);
  EXPECT_STREQ(plan.ukernel().name, fdl::gemm_best().name);
}

TEST(ConvGeometry, OutputSizes) {
  ConvCase c;
  const auto g = c.geometry();
  EXPECT_EQ(g.out_h(9), 9u);
  EXPECT_EQ(g.out_w(8), 8u);
  fdl::Conv2dGeometry s = g;
  s.kernel_h = s.kernel_w = 5, s.stride_h = 3, s.stride_w = 2, s.dilation_h = 2;
  s.pad_top = 0, s.pad_bottom = 2, s.pad_left = 1, s.pad_right = 0;
  EXPECT_EQ(s.out_h(12), (12 + 2 - 9) / 3 + 1u);
  EXPECT_EQ(s.out_w(7), (7 + 1 - 5) / 2 + 1u);
  EXPECT_EQ(s.out_h(6), 0u);  // 6 + 2 < 9: does not fit
  EXPECT_EQ(s.out_w(3), 0u);
}

std::string variant_name(const ::testing::TestParamInfo<fdl::GemmUkernel>& info) {
  return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(AllVariants, ConvVariant, ::testing::ValuesIn(fdl::gemm_variants()),
                         variant_name);

// ------------------------------------------------------------------- im2col / col2im

struct UnfoldCase {
  std::size_t c, h, w, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr;
  fdl::Conv2dGeometry geometry() const {
    ConvCase cc;
    cc.cin = cc.cout = c, cc.kh = kh, cc.kw = kw, cc.sh = sh, cc.sw = sw, cc.dh = dh, cc.dw = dw;
    cc.pt = pt, cc.pb = pb, cc.pl = pl, cc.pr = pr;
    return cc.geometry();
  }
};

const UnfoldCase kUnfoldCases[] = {
    {3, 6, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
    {2, 5, 5, 5, 5, 1, 1, 1, 1, 0, 0, 0, 0}, {4, 9, 8, 2, 2, 2, 2, 1, 1, 0, 1, 0, 1},
    {3, 10, 11, 3, 3, 2, 3, 2, 1, 2, 0, 1, 3}, {2, 7, 20, 4, 3, 3, 1, 1, 2, 1, 2, 0, 0},
    {17, 13, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, {1, 20, 3, 7, 1, 1, 1, 1, 1, 3, 3, 0, 0},
    {2, 4, 4, 3, 3, 1, 1, 1, 1, 3, 3, 3, 3},  // padding larger than half the kernel
    {1, 2, 40, 1, 5, 1, 4, 1, 3, 0, 0, 2, 2},
};

TEST(Im2col, MatchesNaiveLoops) {
  for (const UnfoldCase& u : kUnfoldCases) {
    const auto g = u.geometry();
    const std::size_t OH = g.out_h(u.h), OW = g.out_w(u.w), L = OH * OW;
    ASSERT_GT(L, 0u);
    const auto x = random_vector(u.c * u.h * u.w, 3);
    std::vector<float> cols(u.c * u.kh * u.kw * L + 1, -5.0f);
    fdl::im2col(g, x.data(), u.h, u.w, cols.data());
    EXPECT_EQ(cols.back(), -5.0f) << "wrote past the end";
    for (std::size_t c = 0; c < u.c; ++c)
      for (std::size_t ky = 0; ky < u.kh; ++ky)
        for (std::size_t kx = 0; kx < u.kw; ++kx)
          for (std::size_t i = 0; i < OH; ++i)
            for (std::size_t j = 0; j < OW; ++j) {
              const long iy = long(i * u.sh + ky * u.dh) - long(u.pt);
              const long ix = long(j * u.sw + kx * u.dw) - long(u.pl);
              const bool in = iy >= 0 && ix >= 0 && iy < long(u.h) && ix < long(u.w);
              const float want = in ? x[(c * u.h + iy) * u.w + ix] : 0.0f;
              const std::size_t row = (c * u.kh + ky) * u.kw + kx;
              ASSERT_EQ(cols[row * L + i * OW + j], want)
                  << "case c" << u.c << " " << u.h << "x" << u.w << " k" << u.kh << "x" << u.kw
                  << " row " << row << " col " << i * OW + j;
            }
  }
}

TEST(Col2im, MatchesNaiveLoopsAndIsTheAdjointOfIm2col) {
  for (const UnfoldCase& u : kUnfoldCases) {
    const auto g = u.geometry();
    const std::size_t OH = g.out_h(u.h), OW = g.out_w(u.w), L = OH * OW;
    const std::size_t rows = u.c * u.kh * u.kw;
    const auto cols = random_vector(rows * L, 4);
    std::vector<float> y(u.c * u.h * u.w + 1, 77.0f);  // col2im must overwrite, not add
    fdl::col2im(g, cols.data(), u.h, u.w, y.data());
    EXPECT_EQ(y.back(), 77.0f) << "wrote past the end";
    std::vector<double> want(u.c * u.h * u.w, 0.0);
    for (std::size_t c = 0; c < u.c; ++c)
      for (std::size_t ky = 0; ky < u.kh; ++ky)
        for (std::size_t kx = 0; kx < u.kw; ++kx)
          for (std::size_t i = 0; i < OH; ++i)
            for (std::size_t j = 0; j < OW; ++j) {
              const long iy = long(i * u.sh + ky * u.dh) - long(u.pt);
              const long ix = long(j * u.sw + kx * u.dw) - long(u.pl);
              if (iy < 0 || ix < 0 || iy >= long(u.h) || ix >= long(u.w)) continue;
              want[(c * u.h + iy) * u.w + ix] +=
                  cols[((c * u.kh + ky) * u.kw + kx) * L + i * OW + j];
            }
    for (std::size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(y[i], want[i], 1e-5 * (1 + u.kh * u.kw)) << "pixel " << i;
    // <im2col(x), cols> == <x, col2im(cols)>
    const auto x = random_vector(u.c * u.h * u.w, 5);
    std::vector<float> xc(rows * L);
    fdl::im2col(g, x.data(), u.h, u.w, xc.data());
    double lhs = 0, rhs = 0;
    for (std::size_t i = 0; i < xc.size(); ++i) lhs += double(xc[i]) * cols[i];
    for (std::size_t i = 0; i < x.size(); ++i) rhs += double(x[i]) * y[i];
    EXPECT_NEAR(lhs, rhs, 1e-4 * (1 + std::fabs(lhs)));
  }
}

// ------------------------------------------------------------------- thread pool

// Calls parallel_for(n) and checks that every index ran exactly once.
void expect_each_index_once(std::size_t n) {
  std::vector<std::atomic<int>> hits(n);
  for (auto& h : hits) h.store(0);
  std::atomic<std::size_t> out_of_range{0};
  fdl::parallel_for(n, [&](std::size_t i) {
    if (i >= n) {
      out_of_range.fetch_add(1);
      return;
    }
    hits[i].fetch_add(1);
  });
  EXPECT_EQ(out_of_range.load(), 0u) << "n=" << n;
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "index " << i << " of " << n;
}

TEST(ThreadPool, ParallelForCoversEveryIndexExactlyOnce) {
  ThreadCountGuard guard;
  for (int t : {1, 2, 3, 8})
    for (std::size_t n : {0, 1, 2, 3, 7, 64, 1000, 100003}) {
      fdl::set_num_threads(t);
      SCOPED_TRACE("threads " + std::to_string(t));
      expect_each_index_once(n);
    }
}

TEST(ThreadPool, ManySmallJobsInARow) {
  ThreadCountGuard guard;
  fdl::set_num_threads(3);
  for (int rep = 0; rep < 2000; ++rep) {
    std::atomic<std::size_t> sum{0};
    const std::size_t n = 1 + rep % 9;
    fdl::parallel_for(n, [&](std::size_t i) { sum.fetch_add(i + 1); });
    ASSERT_EQ(sum.load(), n * (n + 1) / 2) << "rep " << rep;
  }
}

TEST(ThreadPool, UsesMoreThanOneThread) {
  ThreadCountGuard guard;
  fdl::set_num_threads(2);
  std::mutex mu;
  std::set<std::thread::id> ids;
  fdl::parallel_for(100, [&](std::size_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_EQ(ids.size(), 2u);
  EXPECT_TRUE(ids.count(std::this_thread::get_id())) << "the calling thread takes part";
}

TEST(ThreadPool, NestedCallsRunEveryInnerIndex) {
  ThreadCountGuard guard;
  fdl::set_num_threads(4);
  const std::size_t outer = 13, inner = 11;
  std::vector<std::atomic<int>> hits(outer * inner);
  for (auto& h : hits) h.store(0);
  fdl::parallel_for(outer, [&](std::size_t i) {
    fdl::parallel_for(inner, [&](std::size_t j) {
      fdl::parallel_for(2, [&](std::size_t k) {  // a third level too
        if (k == 0) hits[i * inner + j].fetch_add(1);
      });
    });
  });
  for (std::size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i].load(), 1) << i;
  expect_each_index_once(100);  // the pool still works afterwards
}

TEST(ThreadPool, ConcurrentCallersEachGetTheirWorkDone) {
  ThreadCountGuard guard;
  fdl::set_num_threads(2);
  std::vector<std::thread> callers;
  std::atomic<int> bad{0};
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&, c] {
      for (int rep = 0; rep < 200; ++rep) {
        const std::size_t n = 5 + (rep + c) % 50;
        std::vector<std::atomic<int>> hits(n);
        for (auto& h : hits) h.store(0);
        fdl::parallel_for(n, [&](std::size_t i) { hits[i].fetch_add(1); });
        for (auto& h : hits)
          if (h.load() != 1) bad.fetch_add(1);
      }
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(ThreadPool, SetNumThreadsChangesNumThreads) {
  ThreadCountGuard guard;
  for (int t : {1, 3, 2, 7, 1}) {
    fdl::set_num_threads(t);
    EXPECT_EQ(fdl::num_threads(), t);
    expect_each_index_once(50);
  }
  fdl::set_num_threads(0);  // clamped to 1
  EXPECT_EQ(fdl::num_threads(), 1);
  fdl::set_num_threads(-4);
  EXPECT_EQ(fdl::num_threads(), 1);
}

// Runs `body` in a fork()ed child and returns its wait status (a crash or an abort
// there cannot take the test binary down); SIGALRM after 20 s turns a hang into a failure.
template <class F>
int status_of_child(F body) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(20);
    body();
    _exit(0);
  }
  int status = -1;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return status;
}

// Replacing the pool (set_num_threads, set_thread_affinity) must not touch it after it is
// freed. Freed blocks of every small size are queued first, so that a write into a freed
// block corrupts the allocator's free list and the following mallocs abort.
void churn_heap_around(void (*change)(int), int rounds) {
  for (int r = 0; r < rounds; ++r) {
    fdl::set_num_threads(2 + r % 2);
    fdl::parallel_for(64, [](std::size_t) {});  // the pool exists now
    std::vector<void*> blocks;
    for (std::size_t size = 16; size <= 2048; size += 16) blocks.push_back(std::malloc(size));
    for (void* b : blocks) std::free(b);
    change(r);
    blocks.clear();
    for (int twice = 0; twice < 2; ++twice)
      for (std::size_t size = 16; size <= 2048; size += 16) {
        void* b = std::malloc(size);
        std::memset(b, 0x5a, size);
        blocks.push_back(b);
      }
    for (void* b : blocks) std::free(b);
  }
}

TEST(ThreadPool, ReplacingThePoolDoesNotCorruptTheHeap) {
  const int by_count = status_of_child([] {
    churn_heap_around([](int r) { fdl::set_num_threads(r % 2 ? 1 : 4); }, 6);
  });
  EXPECT_TRUE(WIFEXITED(by_count) && WEXITSTATUS(by_count) == 0)
      << "set_num_threads: child " << (WIFSIGNALED(by_count) ? "killed by signal " : "exit ")
      << (WIFSIGNALED(by_count) ? WTERMSIG(by_count) : WEXITSTATUS(by_count));
  const int by_affinity = status_of_child([] {
    churn_heap_around([](int) { fdl::set_thread_affinity(nullptr, 0); }, 6);
  });
  EXPECT_TRUE(WIFEXITED(by_affinity) && WEXITSTATUS(by_affinity) == 0)
      << "set_thread_affinity: child " << (WIFSIGNALED(by_affinity) ? "killed by signal " : "exit ")
      << (WIFSIGNALED(by_affinity) ? WTERMSIG(by_affinity) : WEXITSTATUS(by_affinity));
}

// Forks after the pool's workers exist; the child (which has none of them) must still
// finish a parallel_for and a threaded convolution. A SIGALRM turns a deadlock into a
// failure instead of a hang.
TEST(ThreadPool, ForkedChildCanStillRunParallelFor) {
  ThreadCountGuard guard;
  fdl::set_num_threads(2);
  expect_each_index_once(1000);  // creates the pool in the parent
  ConvCase c;
  c.cin = 16, c.cout = 16, c.h = 40, c.w = 40;
  const auto x = random_vector(c.batch * c.cin * c.h * c.w, 1);
  const auto wt = random_vector(c.cout * c.cin * 9, 2), b = random_vector(c.cout, 3);
  const auto parent = run_plan(c, nullptr, x, wt, b);
  std::fflush(nullptr);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0) << "fork failed";
  if (pid == 0) {
    alarm(20);
    std::vector<std::atomic<int>> hits(5000);
    for (auto& h : hits) h.store(0);
    std::mutex mu;
    std::set<std::thread::id> ids;
    fdl::parallel_for(hits.size(), [&](std::size_t i) {
      hits[i].fetch_add(1);
      if (i % 50 == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        std::lock_guard<std::mutex> lock(mu);
        ids.insert(std::this_thread::get_id());
      }
    });
    for (auto& h : hits)
      if (h.load() != 1) _exit(3);
    if (ids.size() < 2) _exit(4);  // the child re-created its workers
    const auto child = run_plan(c, nullptr, x, wt, b);
    if (std::memcmp(child.data(), parent.data(), child.size() * sizeof(float)) != 0) _exit(5);
    fdl::set_num_threads(3);
    if (fdl::num_threads() != 3) _exit(6);
    std::atomic<std::size_t> sum{0};
    fdl::parallel_for(100, [&](std::size_t i) { sum.fetch_add(i); });
    if (sum.load() != 4950) _exit(7);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died by signal "
                                 << (WIFSIGNALED(status) ? WTERMSIG(status) : 0)
                                 << " (SIGALRM = deadlock)";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "3: index coverage, 4: one thread, 5: conv result, "
                                       "6: set_num_threads, 7: second job";
  expect_each_index_once(1000);  // and the parent's pool still works
}

}  // namespace
