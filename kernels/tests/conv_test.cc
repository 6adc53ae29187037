// The convolution (fastdl/conv.h): fdl::ConvPlan over 1, 2 and 3 spatial axes for every
// GEMM variant and every ConvAlgorithm, each depthwise and Winograd variant on its own edge
// sweep, fdl::ConvTransposePlan, im2col and col2im. The oracle is the library's direct
// convolution fdl_f32_conv__ref (the specification, conv-ref.cc), itself checked here
// against independent loops. Shapes stay small enough for qemu-aarch64.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "fastdl/activation.h"
#include "fastdl/conv.h"
#include "fastdl/conv_transpose.h"
#include "fastdl/gemm.h"
#include "fastdl/isa.h"
#include "fastdl/threadpool.h"
#include "fastdl/variants.h"
#include "test_util.h"
#include "../src/conv/implicit-gemm.h"
#include "../src/conv/depthwise-window.h"
#include "../src/conv/padded-grid.h"
#include "../src/conv/winograd.h"

namespace {

using fdl::Size3;
using fdl_test::random_vector;
using A = fdl::ConvAlgorithm;

constexpr float kAlpha = 0.1f;  // leaky_relu slope (not the default, so passing it is checked)
constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kCanary = -12345.0f;

using fdl_test::ThreadCountGuard;

// A convolution problem. Axes are {depth, height, width}; a 2-D case has depth 1 with
// kernel 1, stride 1 and no padding along it, a 1-D one also height 1.
struct ConvCase {
  std::size_t batch = 2, cin = 3, cout = 4, groups = 1;
  Size3 in{1, 9, 8}, k{1, 3, 3}, s{1, 1, 1}, d{1, 1, 1}, pb{0, 1, 1}, pa{0, 1, 1};
  bool bias = true;
  fdl::Activation act = fdl::Activation::kNone;

  fdl::ConvGeometry geometry() const {
    fdl::ConvGeometry g;
    g.in_channels = cin, g.out_channels = cout, g.groups = groups;
    g.kernel = k, g.stride = s, g.dilation = d, g.pad_before = pb, g.pad_after = pa;
    return g;
  }
  bool fits() const {
    for (int a = 0; a < 3; ++a)
      if (in[a] + pb[a] + pa[a] < d[a] * (k[a] - 1) + 1) return false;
    return true;
  }
  Size3 out() const { return geometry().out_size(in); }
  std::size_t x_size() const { return batch * cin * fdl::volume(in); }
  std::size_t w_size() const { return cout * (cin / groups) * fdl::volume(k); }
  std::size_t y_size() const { return batch * cout * fdl::volume(out()); }
  std::size_t terms() const { return cin / groups * fdl::volume(k); }
  std::string str() const {
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "n%zu c%zu->%zu g%zu in %zux%zux%zu k %zux%zux%zu s %zux%zux%zu d %zux%zux%zu "
                  "pad (%zu,%zu,%zu)/(%zu,%zu,%zu)%s act%d",
                  batch, cin, cout, groups, in[0], in[1], in[2], k[0], k[1], k[2], s[0], s[1],
                  s[2], d[0], d[1], d[2], pb[0], pb[1], pb[2], pa[0], pa[1], pa[2],
                  bias ? " bias" : "", int(act));
    return buf;
  }
};

// A 2-D case: in h x w, kernel kh x kw, stride, dilation, padding (top, bottom, left, right).
ConvCase case2d(std::size_t cin, std::size_t cout, std::size_t h, std::size_t w, std::size_t kh,
                std::size_t kw, std::size_t sh = 1, std::size_t sw = 1, std::size_t pt = 0,
                std::size_t pbot = 0, std::size_t pl = 0, std::size_t pr = 0) {
  ConvCase c;
  c.cin = cin, c.cout = cout, c.in = {1, h, w}, c.k = {1, kh, kw}, c.s = {1, sh, sw};
  c.pb = {0, pt, pl}, c.pa = {0, pbot, pr};
  return c;
}

// The direct convolution of the library (the specification) and the error scale of each
// output: the same convolution over |x|, |w|, |b| without activation (the magnitude of the
// terms, which bounds the rounding error whatever their sum cancels to).
struct Reference {
  std::vector<float> y;
  std::vector<float> magnitude;
};

Reference reference(const ConvCase& c, const std::vector<float>& x, const std::vector<float>& w,
                    const std::vector<float>& b) {
  const auto& direct = fdl::variant_for(fdl::conv_variants(), fdl::Isa::kRef);
  Reference r{std::vector<float>(c.y_size()), std::vector<float>(c.y_size())};
  const auto g = c.geometry();
  direct.fn(g, x.data(), c.batch, c.in, w.data(), c.bias ? b.data() : nullptr, c.act, kAlpha,
            r.y.data());
  auto abs_of = [](std::vector<float> v) {
    for (auto& e : v) e = std::fabs(e);
    return v;
  };
  const auto ax = abs_of(x), aw = abs_of(w), ab = abs_of(b);
  direct.fn(g, ax.data(), c.batch, c.in, aw.data(), c.bias ? ab.data() : nullptr,
            fdl::Activation::kNone, 0.0f, r.magnitude.data());
  return r;
}

// Winograd transforms lose a little more than a plain dot product: the tolerance grows with
// the magnitude of the terms, not with their (possibly cancelling) sum.
float tolerance(const ConvCase& c, float magnitude) {
  return 1e-5f + 5e-6f * std::sqrt(float(c.terms())) * magnitude;
}

// Index of the first output further from the reference than its tolerance, or -1.
long first_mismatch(const ConvCase& c, const std::vector<float>& y, const Reference& r) {
  for (std::size_t i = 0; i < r.y.size(); ++i) {
    const bool both_nan = std::isnan(y[i]) && std::isnan(r.y[i]);
    if (!both_nan && !(std::fabs(y[i] - r.y[i]) <= tolerance(c, r.magnitude[i]))) return long(i);
  }
  return -1;
}

const char* algorithm_name(A a) {
  switch (a) {
    case A::kAuto: return "auto";
    case A::kIm2col: return "im2col";
    case A::kWinograd: return "winograd";
    case A::kDepthwise: return "depthwise";
    case A::kDirect: return "direct";
    case A::kNarrow: return "narrow";
    case A::kWinogradF2: return "winograd_f2";
    case A::kWinogradF4: return "winograd_f4";
  }
  return "?";
}

constexpr A kAlgorithms[] = {A::kAuto,   A::kIm2col,     A::kWinograd,   A::kDepthwise,
                             A::kDirect, A::kWinogradF2, A::kWinogradF4, A::kNarrow};

bool is_2d(const ConvCase& c) {
  return c.k[0] == 1 && c.s[0] == 1 && c.pb[0] == 0 && c.pa[0] == 0;
}

// What a plan with `algorithm` should run for this case: kAuto picks only SIMD kernels
// (the GEMM's ISA not ref): depthwise when groups == in == out channels (and nothing along
// depth); Winograd for 3x3 (2-D, depth-1 inputs) or 3x3x3 stride-1 dilation-1 ungrouped
// layers with >= 8 channels; else, and whenever forced elsewhere, im2col + GEMM.
std::string expected_algorithm(const ConvCase& c, const fdl::GemmUkernel& uk, A algorithm) {
  if (algorithm == A::kDirect) return "direct";
  const bool pick = algorithm == A::kAuto && uk.isa != fdl::Isa::kRef;
  const bool depthwise = c.groups == c.cin && c.groups == c.cout && is_2d(c);
  if (depthwise && (pick || algorithm == A::kDepthwise)) return "depthwise";
  const bool narrow = is_2d(c) && c.in[0] == 1 && c.cin <= 4 && c.groups == 1 && c.d == Size3{1, 1, 1} &&
                      c.s[1] == c.s[2] && (c.s[1] == 1 || c.s[1] == 2);
  if (narrow && (algorithm == A::kNarrow || (pick && c.k[1] <= 7 && c.k[2] <= 7))) return "narrow";
  const bool unit = c.s == Size3{1, 1, 1} && c.d == Size3{1, 1, 1} && c.groups == 1 &&
                    c.cin >= 8 && c.cout >= 8;
  const bool w2 = unit && is_2d(c) && c.k == Size3{1, 3, 3} && c.in[0] == 1;
  const bool w3 = unit && c.k == Size3{3, 3, 3};
  const bool forced = algorithm == A::kWinograd || algorithm == A::kWinogradF2 ||
                      algorithm == A::kWinogradF4;
  if ((w2 || w3) && !depthwise && (pick || forced)) {
    if (algorithm == A::kWinogradF2) return "winograd_f2";
    if (algorithm == A::kWinogradF4) return "winograd_f4";
    return "winograd";
  }
  return "im2col";
}

// Algorithms plans reported in run_plan, per GEMM variant name.
std::set<std::string>& algorithms_seen(const fdl::GemmUkernel& uk) {
  static std::map<std::string, std::set<std::string>> seen;
  return seen[uk.name];
}

// Runs the case through a plan and returns y with a canary just past its end.
std::vector<float> run_plan(const ConvCase& c, const fdl::GemmUkernel* uk,
                            const std::vector<float>& x, const std::vector<float>& w,
                            const std::vector<float>& b, A algorithm = A::kAuto) {
  fdl::ConvPlan plan(c.geometry(), w.data(), c.bias ? b.data() : nullptr, c.act, kAlpha, uk,
                     algorithm);
  const fdl::GemmUkernel& used = uk ? *uk : fdl::gemm_best();
  const std::string alg = plan.algorithm(c.in);
  const std::string want = expected_algorithm(c, used, algorithm);
  // Huge 3-D volumes leave Winograd for im2col (tested on its own below).
  if (want == "winograd") {
    EXPECT_TRUE(alg == "winograd_f2" || alg == "winograd_f4")
        << used.name << " " << algorithm_name(algorithm) << " " << c.str() << " uses " << alg;
  } else {
    EXPECT_EQ(alg, want) << used.name << " " << algorithm_name(algorithm) << " " << c.str();
  }
  algorithms_seen(used).insert(alg);
  std::vector<float> y(c.y_size() + 1, kCanary);
  plan.run(x.data(), c.batch, c.in, y.data());
  return y;
}

// Runs the case through plans for `uk` with every algorithm and compares every output (and
// a canary just past the end) with the reference. Returns false after the first mismatch.
bool check_case(const ConvCase& c, const fdl::GemmUkernel* uk, unsigned seed,
                std::initializer_list<A> algorithms = {}) {
  const auto x = random_vector(c.x_size(), seed);
  const auto w = random_vector(c.w_size(), seed + 1);
  const auto b = random_vector(c.cout, seed + 2);
  const Reference ref = reference(c, x, w, b);
  const std::vector<A> list = algorithms.size()
                                  ? std::vector<A>(algorithms)
                                  : std::vector<A>(std::begin(kAlgorithms), std::end(kAlgorithms));
  for (A algorithm : list) {
    auto y = run_plan(c, uk, x, w, b, algorithm);
    if (y.back() != kCanary) {
      ADD_FAILURE() << "wrote past the output: " << algorithm_name(algorithm) << " " << c.str();
      return false;
    }
    y.pop_back();
    const long i = first_mismatch(c, y, ref);
    if (i >= 0) {
      ADD_FAILURE() << (uk ? uk->name : "default") << " " << algorithm_name(algorithm) << " "
                    << c.str() << " output " << i << " of " << ref.y.size() << ": got " << y[i]
                    << " want " << ref.y[i] << " tol " << tolerance(c, ref.magnitude[i]);
      return false;
    }
  }
  return true;
}

// 2-D cases generated around every fast path and tile edge.
std::vector<ConvCase> generated_2d_cases() {
  std::vector<ConvCase> cases;
  std::mt19937 rng(2024);
  auto pick = [&](std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
  };
  auto random_padding = [&](ConvCase& c, std::size_t k) {
    do {
      c.in = {1, pick(1, 20), pick(1, 20)};
      c.pb = {0, pick(0, k / 2 + 1), pick(0, k / 2 + 1)};
      c.pa = {0, pick(0, k / 2 + 1), pick(0, k / 2 + 1)};
    } while (!c.fits());
  };
  const std::size_t channels[] = {1, 3, 8, 16, 17};
  // Every kernel size x stride x channel count, random spatial sizes 1..20 and random
  // (often asymmetric) padding that keeps the kernel inside the padded input.
  for (std::size_t k : {1, 2, 3, 4, 5, 7})
    for (std::size_t s : {1, 2, 3})
      for (std::size_t ci = 0; ci < 5; ++ci) {
        ConvCase c = case2d(channels[ci], channels[(ci + k + s) % 5], 1, 1, k, k, s, s);
        random_padding(c, k);
        c.batch = (k + s + ci) % 4 == 0 ? 1 : 2;
        c.bias = (k + ci) % 3 != 0;
        c.act = static_cast<fdl::Activation>((k + s + ci) % 9);
        cases.push_back(c);
      }
  // The Winograd candidates: 3x3, stride 1, dilation 1, groups 1, >= 8 channels, output
  // sizes 1..20 (so every residue modulo the 2/4/6 output tiles), symmetric and
  // asymmetric padding.
  for (std::size_t size = 1; size <= 20; ++size) {
    ConvCase c = case2d(channels[2 + size % 3], channels[2 + (size / 3) % 3], size, 21 - size,
                        3, 3, 1, 1, 1, 1, 1, 1);
    c.batch = size % 5 == 0 ? 1 : 2;
    c.act = static_cast<fdl::Activation>(size % 9);
    cases.push_back(c);  // pad 1: output == input size
    if (size >= 3) {
      c.pb = c.pa = {0, 0, 0};
      c.in[2] = std::max<std::size_t>(3, 23 - size);
      c.bias = size % 2 == 0;
      cases.push_back(c);  // valid: output size - 2
    }
    c.pb = {0, size % 3, (size + 1) % 3};
    c.pa = {0, 2 - size % 3, size % 2};
    c.in = {1, size + 1, size + 2};
    if (c.fits()) cases.push_back(c);
  }
  // Padding wider than the window: whole patches, and rows and columns of the others, lie
  // in the padding (the transforms' row masks are empty there).
  {
    ConvCase c = case2d(8, 16, 3, 2, 3, 3, 1, 1, 5, 3, 4, 6);
    c.act = fdl::Activation::kSigmoid;
    cases.push_back(c);
    c = case2d(16, 8, 9, 21, 3, 3, 1, 1, 0, 7, 9, 0);
    cases.push_back(c);
  }
  // Winograd with many channels (K = 9 * 32 = 288 crosses the 256 K block), and a big
  // image (more output pixels than the GEMM's column block).
  {
    ConvCase c = case2d(32, 20, 13, 11, 3, 3, 1, 1, 1, 1, 1, 1);
    c.act = fdl::Activation::kRelu;
    cases.push_back(c);
    c = case2d(8, 8, 67, 69, 3, 3, 1, 1, 1, 1, 1, 1);
    c.batch = 1;
    cases.push_back(c);
  }
  // Dilation (square and per-axis) with odd and even kernels.
  for (std::size_t k : {2, 3, 5}) {
    ConvCase c = case2d(k == 3 ? 8 : 3, 5, 11, 7, k, k, 1, 1, k - 1, k - 1, k - 1, k - 1);
    c.d = {1, 2, 2};
    cases.push_back(c);
    c.d = {1, 2, 1}, c.s = {1, 2, 1}, c.pb = {0, 0, 2}, c.pa = {0, 1, 0};
    cases.push_back(c);
  }
  // Groups: 2 groups, depthwise (multiplier 1 and 2), with strides, pads and activations.
  struct G { std::size_t cin, cout, groups, k, s; };
  for (const G& g : {G{4, 6, 2, 3, 1}, G{16, 16, 2, 3, 1}, G{6, 4, 2, 5, 2}, G{17, 34, 17, 3, 1},
                     G{3, 3, 3, 3, 1}, G{8, 8, 8, 3, 1}, G{16, 16, 16, 5, 2}, G{8, 16, 8, 3, 2},
                     G{16, 16, 16, 3, 3}, G{1, 1, 1, 3, 1}, G{8, 8, 2, 1, 1}}) {
    ConvCase c = case2d(g.cin, g.cout, 10, 13, g.k, g.k, g.s, g.s, g.k / 2, g.k / 2 + g.s - 1,
                        g.k / 2, g.k / 2 + g.s - 1);
    c.groups = g.groups;
    c.act = static_cast<fdl::Activation>((g.cin + g.k) % 9);
    cases.push_back(c);
  }
  // Depthwise over every kernel size, stride and dilation, random sizes 1..20 and
  // asymmetric padding, every activation.
  {
    const std::size_t dw_channels[] = {1, 3, 8, 17, 16};
    int i = 0;
    for (std::size_t k : {1, 2, 3, 4, 5, 7})
      for (std::size_t s : {1, 2, 3})
        for (std::size_t dil : {1, 2}) {
          const std::size_t ch = dw_channels[i % 5];
          ConvCase c = case2d(ch, ch, 1, 1, k, (k == 2 || k == 4) ? k + 1 : k, s, 1 + (s + i) % 3);
          c.groups = ch;
          c.d = {1, dil, 1 + (dil + i) % 2};
          random_padding(c, k);
          c.batch = 1 + i % 2;
          c.bias = i % 3 != 0;
          c.act = static_cast<fdl::Activation>(i % 9);
          cases.push_back(c);
          ++i;
        }
  }
  // Pointwise (read directly as the B matrix), also with M crossing the 144-row block and
  // an input whose pixel count is not a multiple of any tile.
  for (std::size_t cout : {1, 7, 17, 150})
    cases.push_back(case2d(cout == 150 ? 5 : 17, cout, 7, 9, 1, 1));
  // Rectangular kernels, mixed strides, a kernel exactly as large as the padded input
  // (1x1 output), a 1x1 input, 5x5 with K = 17 * 25 = 425 > the K block.
  cases.push_back(case2d(3, 4, 9, 8, 4, 2, 1, 3, 2, 1, 0, 1));
  cases.push_back(case2d(3, 4, 5, 6, 7, 7, 1, 1, 1, 1, 0, 1));
  cases.push_back(case2d(8, 8, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1));
  {
    ConvCase c = case2d(17, 9, 12, 10, 5, 5, 1, 1, 2, 2, 2, 2);
    c.act = fdl::Activation::kSilu;
    cases.push_back(c);
    c.s = {1, 2, 1};
    cases.push_back(c);
  }
  return cases;
}

// 1-D and 3-D cases (1-D: depth and height 1).
std::vector<ConvCase> generated_nd_cases() {
  using Act = fdl::Activation;
  auto nd = [](std::size_t batch, std::size_t cin, std::size_t cout, std::size_t groups,
               Size3 in, Size3 k, Size3 s, Size3 d, Size3 pb, Size3 pa, Act act = Act::kNone,
               bool bias = true) {
    ConvCase c;
    c.batch = batch, c.cin = cin, c.cout = cout, c.groups = groups, c.in = in, c.k = k;
    c.s = s, c.d = d, c.pb = pb, c.pa = pa, c.act = act, c.bias = bias;
    return c;
  };
  const Size3 one{1, 1, 1}, zero{0, 0, 0};
  return {
      // 1-D: plain, strided with asymmetric padding, dilated (TCN), causal, depthwise.
      nd(2, 3, 5, 1, {1, 1, 17}, {1, 1, 3}, one, one, {0, 0, 1}, {0, 0, 1}),
      nd(1, 4, 6, 2, {1, 1, 23}, {1, 1, 4}, {1, 1, 2}, one, {0, 0, 2}, {0, 0, 1}, Act::kRelu),
      nd(2, 8, 8, 1, {1, 1, 40}, {1, 1, 3}, one, {1, 1, 4}, {0, 0, 4}, {0, 0, 4}, Act::kTanh),
      nd(1, 5, 3, 1, {1, 1, 9}, {1, 1, 3}, one, {1, 1, 2}, {0, 0, 4}, zero, Act::kNone, false),
      nd(2, 8, 8, 8, {1, 1, 33}, {1, 1, 5}, {1, 1, 2}, one, {0, 0, 2}, {0, 0, 2}, Act::kSilu),
      // 3-D.
      nd(2, 3, 4, 1, {4, 5, 6}, {3, 3, 3}, one, one, one, one),
      nd(1, 4, 6, 2, {5, 4, 7}, {2, 3, 1}, {2, 1, 3}, {1, 2, 1}, {1, 0, 2}, {0, 2, 1}, Act::kRelu),
      nd(2, 5, 7, 1, {3, 3, 3}, one, one, one, zero, zero, Act::kSigmoid),  // pointwise
      nd(1, 6, 6, 6, {4, 6, 5}, {3, 3, 3}, {1, 2, 1}, one, one, one, Act::kNone, false),
      nd(1, 6, 6, 6, {3, 7, 5}, {1, 3, 3}, one, one, {0, 1, 1}, {0, 1, 1}, Act::kElu),  // dw
      nd(1, 8, 9, 1, {4, 6, 7}, {3, 3, 3}, one, one, one, one, Act::kLeakyRelu),  // Winograd
      nd(2, 9, 8, 1, {3, 9, 10}, {3, 3, 3}, one, one, {0, 1, 2}, {2, 1, 0}, Act::kTanh),
      nd(1, 8, 8, 1, {2, 3, 3}, {3, 3, 3}, one, one, one, one),  // tiny Winograd
      nd(1, 8, 8, 1, {3, 6, 6}, {1, 3, 3}, one, one, {0, 1, 1}, {0, 1, 1}),  // 2-D kernel, D 3
  };
}

// ------------------------------------------------------------ the specification itself

// Independent loops (double) for a convolution: the check of fdl_f32_conv__ref.
std::vector<double> independent_conv(const ConvCase& c, const std::vector<float>& x,
                                     const std::vector<float>& w, const std::vector<float>& b) {
  const Size3 out = c.out();
  const std::size_t cin_g = c.cin / c.groups, cout_g = c.cout / c.groups;
  std::vector<double> y(c.y_size());
  std::size_t i = 0;
  for (std::size_t n = 0; n < c.batch; ++n)
    for (std::size_t o = 0; o < c.cout; ++o)
      for (std::size_t z = 0; z < out[0]; ++z)
        for (std::size_t yy = 0; yy < out[1]; ++yy)
          for (std::size_t xx = 0; xx < out[2]; ++xx, ++i) {
            double s = c.bias ? b[o] : 0.0;
            const std::size_t grp = o / cout_g;
            for (std::size_t ci = 0; ci < cin_g; ++ci)
              for (std::size_t kz = 0; kz < c.k[0]; ++kz)
                for (std::size_t ky = 0; ky < c.k[1]; ++ky)
                  for (std::size_t kx = 0; kx < c.k[2]; ++kx) {
                    const long iz = long(z * c.s[0] + kz * c.d[0]) - long(c.pb[0]);
                    const long iy = long(yy * c.s[1] + ky * c.d[1]) - long(c.pb[1]);
                    const long ix = long(xx * c.s[2] + kx * c.d[2]) - long(c.pb[2]);
                    if (iz < 0 || iy < 0 || ix < 0 || iz >= long(c.in[0]) ||
                        iy >= long(c.in[1]) || ix >= long(c.in[2]))
                      continue;
                    const std::size_t xi =
                        (((n * c.cin + grp * cin_g + ci) * c.in[0] + iz) * c.in[1] + iy) *
                            c.in[2] + ix;
                    const std::size_t wi =
                        (((o * cin_g + ci) * c.k[0] + kz) * c.k[1] + ky) * c.k[2] + kx;
                    s += double(x[xi]) * w[wi];
                  }
            y[i] = fdl::activate_ref(static_cast<float>(s), c.act, kAlpha);
          }
  return y;
}

TEST(ConvReference, DirectConvolutionMatchesIndependentLoops) {
  auto cases = generated_nd_cases();
  const auto flat = generated_2d_cases();
  for (std::size_t i = 0; i < flat.size(); i += 7) cases.push_back(flat[i]);
  unsigned seed = 1;
  for (const ConvCase& c : cases) {
    const auto x = random_vector(c.x_size(), ++seed), w = random_vector(c.w_size(), ++seed);
    const auto b = random_vector(c.cout, ++seed);
    const auto want = independent_conv(c, x, w, b);
    const Reference r = reference(c, x, w, b);
    for (std::size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(r.y[i], want[i], 1e-6 * (1 + std::fabs(want[i]))) << c.str() << " at " << i;
  }
}

TEST(ConvGeometry, OutputSizes) {
  fdl::ConvGeometry g;
  g.kernel = {1, 5, 5}, g.stride = {1, 3, 2}, g.dilation = {1, 2, 1};
  g.pad_before = {0, 0, 1}, g.pad_after = {0, 2, 0};
  EXPECT_EQ(g.out_size(1, 12), (12 + 2 - 9) / 3 + 1u);
  EXPECT_EQ(g.out_size(2, 7), (7 + 1 - 5) / 2 + 1u);
  EXPECT_EQ(g.out_size(1, 6), 0u);  // 6 + 2 < 9: does not fit
  EXPECT_EQ(g.out_size(2, 3), 0u);
  EXPECT_EQ(g.out_size(0, 4), 4u);
  EXPECT_EQ(g.out_size(Size3{4, 12, 7}), (Size3{4, 2, 2}));
}

// ------------------------------------------------------------ plans x GEMM variants

class ConvVariant : public fdl_test::VariantTest<fdl::GemmUkernel> {
 protected:
  const fdl::GemmUkernel& uk() const { return GetParam(); }
};

TEST_P(ConvVariant, Generated2dCasesMatchReference) {
  const auto cases = generated_2d_cases();
  ASSERT_GT(cases.size(), 150u);
  unsigned seed = 1;
  int failures = 0;
  for (const ConvCase& c : cases) {
    ASSERT_TRUE(c.fits()) << c.str();
    if (!check_case(c, &uk(), seed += 3) && ++failures >= 10) FAIL() << "too many failures";
  }
  // The cases reach every algorithm, on the reference GEMM through the forced ones.
  const auto& seen = algorithms_seen(uk());
  for (const char* alg : {"im2col", "winograd_f2", "winograd_f4", "depthwise", "narrow", "direct"})
    EXPECT_TRUE(seen.count(alg)) << uk().name << " never ran " << alg;
}

// The narrow kernel's step shapes: one row of vectors, or one vector over several rows
// where that wastes fewer columns (output widths at and around multiples of every ISA's
// vector and step: 4, 8, 16, 32 floats), the rows left over when the height is not a
// multiple of the step, stride 2's deinterleaved rows (odd and even input widths and
// paddings) and the unrolled windows (2x2, 3x3, 7x7 s2) beside the generic ones (5x5,
// 7x7 s1, rectangular).
TEST_P(ConvVariant, NarrowShapesMatchReference) {
  std::vector<ConvCase> cases;
  unsigned i = 0;
  for (std::size_t out_w : {1, 7, 8, 15, 16, 17, 31, 32, 33, 48, 56, 63, 64, 65, 112})
    for (std::size_t k : {2, 3, 5, 7})
      for (std::size_t s : {1, 2}) {
        const std::size_t pad = k / 2;
        const std::size_t in_w = std::max<std::size_t>(1, (out_w - 1) * s + k - 2 * pad + i % 2);
        ConvCase c = case2d(1 + i % 4, 5 + 3 * (i % 5), 3 + i % 6, in_w, k, k, s, s, pad, pad,
                            pad, pad);
        c.act = static_cast<fdl::Activation>(i % 9);
        c.bias = i % 3 != 0;
        ++i;
        if (c.fits()) cases.push_back(c);
      }
  cases.push_back(case2d(3, 9, 13, 40, 7, 5, 2, 2, 3, 1, 2, 0));
  // Images large enough to split into strips of output rows, each strip padding its own
  // input rows (the windows' rows shared with the next strip padded by both): stride 2
  // with 7x7 windows and a batch of two, stride 1, asymmetric padding, a last strip of
  // one row or a few, and channels past a whole block.
  cases.push_back(case2d(3, 20, 70, 45, 7, 7, 2, 2, 3, 3, 3, 3));
  cases.back().batch = 2;
  cases.push_back(case2d(2, 9, 41, 50, 3, 3, 1, 1, 1, 1, 1, 1));
  cases.push_back(case2d(3, 16, 67, 60, 5, 5, 2, 2, 2, 1, 2, 0));
  cases.push_back(case2d(3, 20, 80, 30, 3, 3, 2, 2, 1, 1, 1, 1));  // 40 rows: whole strips
  // A batch of small images (the seed CIFAR CNN's first layer): images side by side.
  cases.push_back(case2d(3, 16, 32, 32, 2, 2, 1, 1, 0, 1, 0, 1));
  cases.back().batch = 9;
  fdl_test::ThreadCountGuard guard;
  fdl::set_num_threads(3);
  int failures = 0;
  unsigned seed = 7;
  for (const ConvCase& c : cases)
    if (!check_case(c, &uk(), seed += 3, {A::kNarrow, A::kAuto}) && ++failures >= 10)
      FAIL() << "too many failures";
}

// Small stride-1 images whose rows are short against the B panels and wider than the
// input's (else the implicit GEMM runs on x86) take the padded-grid form (padded-grid.h):
// k2 convolutions padded on both sides, dilated, grouped and batched ones.
TEST_P(ConvVariant, PaddedGridCasesMatchReference) {
  std::vector<ConvCase> cases = {case2d(16, 32, 16, 16, 2, 2, 1, 1, 0, 1, 1, 1),
                                 case2d(8, 12, 5, 31, 3, 2, 1, 1, 2, 1, 2, 1),
                                 case2d(6, 9, 10, 15, 3, 2, 1, 1, 1, 1, 1, 1)};
  cases[1].d = {1, 2, 2};
  cases[2].groups = 3, cases[2].batch = 3;
  cases.push_back(case2d(3, 16, 16, 16, 2, 2, 1, 1, 0, 1, 1, 1));  // a batch in chunks
  cases.back().batch = 37;
  unsigned seed = 900;
  for (const ConvCase& c : cases) {
    ASSERT_TRUE(c.fits()) << c.str();
    const fdl::PaddedGrid grid(c.geometry(), c.in, c.batch, c.cout / c.groups);
    EXPECT_TRUE(fdl::PaddedGrid::applies(c.geometry(), c.in) && grid.pays(uk().nr)) << c.str();
    EXPECT_FALSE(fdl::implicit_gemm_applies(c.geometry(), c.in)) << c.str();
    EXPECT_TRUE(check_case(c, &uk(), seed += 3));
  }
}

// Stride-1 layers whose output rows are 3/4 to all of the input's width take the implicit
// GEMM on x86 (implicit-gemm.h): the seed CIFAR CNN's k2 'same' layers, 1-D ones (dilated,
// 'valid'), rows narrower than a vector and across pixel blocks, padding on one side only
// or beyond the window, output channels around the A panels, groups, batches, threads.
TEST_P(ConvVariant, ImplicitGemmCasesMatchReference) {
  std::vector<ConvCase> cases = {case2d(16, 32, 16, 16, 2, 2, 1, 1, 0, 1, 0, 1),
                                 case2d(32, 64, 8, 8, 2, 2, 1, 1, 0, 1, 0, 1),
                                 case2d(5, 13, 1, 37, 1, 3, 1, 1, 0, 0, 1, 1),
                                 case2d(7, 25, 1, 70, 1, 3, 1, 1, 0, 0, 4, 4),
                                 case2d(6, 12, 9, 3, 3, 3, 1, 1, 1, 1, 0, 2),
                                 case2d(9, 1, 5, 7, 2, 3, 1, 1, 3, 0, 2, 0),
                                 case2d(12, 18, 11, 5, 3, 1, 1, 1, 1, 2, 0, 0),
                                 case2d(8, 7, 40, 1, 5, 1, 1, 1, 2, 2, 0, 0),
                                 case2d(10, 24, 13, 17, 3, 5, 1, 1, 2, 2, 2, 2),
                                 case2d(32, 64, 1, 62, 1, 3),           // 'valid' 1-D
                                 case2d(7, 13, 9, 8, 3, 2, 1, 1, 0, 0, 0, 0),  // 8 -> 7 wide
                                 case2d(5, 6, 12, 21, 2, 5, 1, 1, 0, 1, 1, 0)};  // 21 -> 18
  cases[3].d = {1, 1, 4};
  cases[4].d = {1, 2, 1};
  cases[6].groups = 3, cases[6].batch = 5;
  cases[8].d = {1, 2, 1}, cases[8].batch = 3;
  unsigned seed = 960;
  for (std::size_t threads : {1, 3}) {
    fdl_test::ThreadCountGuard guard;
    fdl::set_num_threads(static_cast<int>(threads));
    for (const ConvCase& c : cases) {
      ASSERT_TRUE(c.fits()) << c.str();
      EXPECT_TRUE(fdl::implicit_gemm_applies(c.geometry(), c.in)) << c.str();
      EXPECT_TRUE(check_case(c, &uk(), seed += 3, {A::kIm2col, A::kAuto})) << threads;
    }
  }
}

// One plan called on input sizes in turn (a model's arena shapes): the implicit GEMM's
// shifts and lane masks kept for the last size are rebuilt for each new one.
TEST_P(ConvVariant, ImplicitGemmPlanFollowsItsInputSize) {
  fdl::ConvGeometry g;
  g.in_channels = 6, g.out_channels = 13;
  g.kernel = {1, 2, 3}, g.pad_before = {0, 0, 1}, g.pad_after = {0, 1, 1};
  const auto w = random_vector(13 * 6 * 6, 1), b = random_vector(13, 2);
  fdl::ConvPlan plan(g, w.data(), b.data(), fdl::Activation::kRelu, kAlpha, &uk());
  fdl::ConvPlan direct(g, w.data(), b.data(), fdl::Activation::kRelu, kAlpha, &uk(),
                       A::kDirect);
  unsigned seed = 990;
  for (const Size3 in : {Size3{1, 8, 8}, Size3{1, 5, 17}, Size3{1, 8, 8}, Size3{1, 9, 8}}) {
    ASSERT_TRUE(fdl::implicit_gemm_applies(g, in));
    const auto x = random_vector(2 * 6 * fdl::volume(in), ++seed);
    std::vector<float> got(2 * 13 * fdl::volume(g.out_size(in))), want(got.size());
    plan.run(x.data(), 2, in, got.data());
    direct.run(x.data(), 2, in, want.data());
    for (std::size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 1e-4f * (1.0f + std::fabs(want[i])))
          << uk().name << " " << in[1] << "x" << in[2] << " at " << i;
  }
}

// Pointwise layers on small images, where the GEMM runs transposed (pixels as its rows:
// 5x5 with many input channels, on every tile; output channels not a multiple of the
// transpose's 4x4 blocks, and enough of them at 3x11 for the transpose to split over the
// threads), and the direct form beside them (14x14): grouped, batched, with bias and
// activation.
TEST_P(ConvVariant, PointwiseSmallImagesMatchReference) {
  std::vector<ConvCase> cases = {case2d(256, 64, 5, 5, 1, 1), case2d(512, 128, 5, 5, 1, 1),
                                 case2d(20, 96, 14, 14, 1, 1), case2d(400, 90, 5, 5, 1, 1),
                                 case2d(300, 1990, 3, 11, 1, 1)};
  for (auto& c : cases) c.pb = c.pa = {0, 0, 0};
  cases[1].groups = 2;
  cases[2].act = fdl::Activation::kRelu6;
  unsigned seed = 950;
  for (const ConvCase& c : cases) EXPECT_TRUE(check_case(c, &uk(), seed += 3));
  EXPECT_TRUE(fdl::ConvPlan::pointwise_runs_transposed(25, 64, 256, uk()));
  if (uk().nr >= 16) {  // the x86 tiles (NEON's 12 columns compute other widths)
    EXPECT_TRUE(fdl::ConvPlan::pointwise_runs_transposed(25, 90, 400, uk()));
    EXPECT_TRUE(fdl::ConvPlan::pointwise_runs_transposed(33, 1990, 300, uk()));
  }
  EXPECT_FALSE(fdl::ConvPlan::pointwise_runs_transposed(196, 96, 20, uk()));
}

// The transposed form's output transpose goes by 4x4 blocks: pixel counts (its rows) and
// channel counts (its columns) of every residue mod 4, each the first shape of that pair
// the plan runs transposed on this tile (pointwise_runs_transposed, 300 input channels),
// against the reference.
TEST_P(ConvVariant, TransposedPointwiseEdgesMatchReference) {
  unsigned seed = 1200;
  int found = 0;
  for (std::size_t rows_mod = 0; rows_mod < 4; ++rows_mod)
    for (std::size_t cols_mod = 0; cols_mod < 4; ++cols_mod) {
      bool done = false;
      for (std::size_t pixels = 20 + rows_mod; pixels <= 132 && !done; pixels += 4)
        for (std::size_t m = 40 + cols_mod; m <= 200 && !done; m += 4)
          if (fdl::ConvPlan::pointwise_runs_transposed(pixels, m, 300, uk())) {
            ConvCase c = case2d(300, m, 1, pixels, 1, 1);
            c.pb = c.pa = {0, 0, 0};
            EXPECT_TRUE(check_case(c, &uk(), seed += 3)) << pixels << " pixels, " << m;
            done = true;
            ++found;
          }
    }
  if (uk().nr >= 16) EXPECT_EQ(found, 16);  // the x86 tiles reach every residue pair
}

TEST_P(ConvVariant, Generated1dAnd3dCasesMatchReference) {
  unsigned seed = 500;
  for (const ConvCase& c : generated_nd_cases()) {
    ASSERT_TRUE(c.fits()) << c.str();
    EXPECT_TRUE(check_case(c, &uk(), seed += 3));
  }
}

TEST_P(ConvVariant, EveryActivationWithAndWithoutBias) {
  for (int act = 0; act <= 8; ++act)
    for (bool bias : {false, true})
      for (bool winograd : {false, true}) {
        ConvCase c = winograd ? case2d(8, 9, 7, 10, 3, 3, 1, 1, 1, 1, 1, 1)
                              : case2d(3, 4, 9, 8, 3, 3, 2, 1, 1, 1, 1, 1);
        c.act = static_cast<fdl::Activation>(act);
        c.bias = bias;
        EXPECT_TRUE(check_case(c, &uk(), 100 + act));
      }
}

TEST_P(ConvVariant, ZeroBatchWritesNothing) {
  for (std::size_t cin : {3, 8}) {
    ConvCase c = case2d(cin, cin, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1);
    const auto w = random_vector(c.w_size(), 1), b = random_vector(c.cout, 2);
    fdl::ConvPlan plan(c.geometry(), w.data(), b.data(), c.act, kAlpha, &uk());
    float canary = 3.0f;
    plan.run(nullptr, 0, c.in, &canary);
    EXPECT_EQ(canary, 3.0f);
  }
}

TEST_P(ConvVariant, PlanReusedAcrossInputSizes) {
  for (std::size_t cin : {3, 8}) {
    ConvCase c = case2d(cin, 11, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1);
    c.act = fdl::Activation::kRelu6;
    const auto w = random_vector(c.w_size(), 5), b = random_vector(c.cout, 6);
    fdl::ConvPlan plan(c.geometry(), w.data(), b.data(), c.act, kAlpha, &uk());
    EXPECT_STREQ(plan.ukernel().name, uk().name);
    for (std::size_t size : {5, 1, 16, 9, 2, 20}) {
      c.in = {1, size, size + 3}, c.batch = size % 2 + 1;
      const auto x = random_vector(c.x_size(), unsigned(size));
      const Reference ref = reference(c, x, w, b);
      std::vector<float> y(c.y_size());
      plan.run(x.data(), c.batch, c.in, y.data());
      EXPECT_EQ(first_mismatch(c, y, ref), -1) << c.str();
    }
  }
}

// New weights through set_weights give what a plan built with them gives, on every
// algorithm (the lazily built Winograd forms included), and no new allocation is visible:
// the packed buffers are the same size, so results for both sets stay right when
// alternated.
TEST_P(ConvVariant, SetWeightsRepacksEveryAlgorithm) {
  std::vector<ConvCase> cases = {
      case2d(8, 9, 12, 10, 3, 3, 1, 1, 1, 1, 1, 1),   // Winograd 2-D
      case2d(3, 5, 11, 9, 3, 3, 2, 2, 1, 0, 1, 0),    // im2col
      case2d(16, 16, 9, 14, 3, 3, 1, 1, 1, 1, 1, 1),  // depthwise (groups set below)
      case2d(17, 7, 5, 6, 1, 1),                      // pointwise
      case2d(256, 64, 5, 5, 1, 1),                    // pointwise, transposed
      case2d(3, 16, 10, 12, 3, 3, 2, 2, 1, 1, 1, 1),  // narrow
  };
  cases[2].groups = 16;
  ConvCase w3;  // Winograd 3-D
  w3.cin = 8, w3.cout = 8, w3.in = {3, 5, 6}, w3.k = {3, 3, 3}, w3.pb = w3.pa = {1, 1, 1};
  cases.push_back(w3);
  for (const ConvCase& c : cases)
    for (A algorithm : {A::kAuto, A::kIm2col, A::kWinogradF2, A::kWinogradF4, A::kNarrow}) {
      const auto x = random_vector(c.x_size(), 1);
      const auto w1 = random_vector(c.w_size(), 2), b1 = random_vector(c.cout, 3);
      const auto w2 = random_vector(c.w_size(), 4), b2 = random_vector(c.cout, 5);
      fdl::ConvPlan plan(c.geometry(), w1.data(), b1.data(), c.act, kAlpha, &uk(), algorithm);
      std::vector<float> y(c.y_size());
      plan.run(x.data(), c.batch, c.in, y.data());  // builds the lazy forms with w1
      for (int round = 0; round < 2; ++round) {
        const auto& w = round == 0 ? w2 : w1;
        const auto& b = round == 0 ? b2 : b1;
        plan.set_weights(w.data(), b.data());
        plan.run(x.data(), c.batch, c.in, y.data());
        EXPECT_EQ(first_mismatch(c, y, reference(c, x, w, b)), -1)
            << c.str() << " " << algorithm_name(algorithm) << " round " << round;
      }
    }
}

// Results do not depend on the thread count (bit-identical), and are right.
TEST_P(ConvVariant, ThreadCountDoesNotChangeResults) {
  ThreadCountGuard guard;
  std::vector<ConvCase> cases = {
      case2d(16, 24, 30, 29, 3, 3, 1, 1, 1, 1, 1, 1),  // Winograd
      case2d(3, 40, 40, 37, 3, 3, 2, 2, 1, 1, 1, 1),   // im2col
      case2d(16, 16, 19, 19, 3, 3, 1, 1, 1, 1, 1, 1),  // depthwise (groups set below)
      case2d(64, 70, 23, 21, 1, 1),                    // pointwise
      case2d(3, 16, 130, 131, 3, 3, 2, 2, 1, 1, 1, 1), // narrow, its padding split too
  };
  cases[2].groups = 16;
  for (const ConvCase& c : cases) {
    const auto x = random_vector(c.x_size(), 1);
    const auto w = random_vector(c.w_size(), 2), b = random_vector(c.cout, 3);
    const Reference ref = reference(c, x, w, b);
    for (A algorithm : kAlgorithms) {
      fdl::set_num_threads(1);
      auto y1 = run_plan(c, &uk(), x, w, b, algorithm);
      y1.pop_back();
      EXPECT_EQ(first_mismatch(c, y1, ref), -1) << c.str() << " " << algorithm_name(algorithm);
      for (int t : {2, 3, 4}) {
        fdl::set_num_threads(t);
        auto yt = run_plan(c, &uk(), x, w, b, algorithm);
        yt.pop_back();
        ASSERT_EQ(0, std::memcmp(y1.data(), yt.data(), y1.size() * sizeof(float)))
            << c.str() << " " << algorithm_name(algorithm) << " differs between 1 and " << t
            << " threads";
      }
    }
  }
}

// One NaN or Inf at channel 1, pixel (6, 5) of a 13x13 image, 3x3 pad 1: the outputs whose
// receptive field holds it are (5..7, 4..6). Counts outputs that break the rule
// "non-finite (NaN for a NaN input) inside the receptive field, finite outside it"; with
// `margin` > 0 outputs within `margin` of the receptive field may be anything.
// `depthwise`: 8 channels, groups 8, so only output channel 1 reads the bad pixel.
int count_misplaced_nonfinite(const fdl::GemmUkernel& uk, std::size_t cin, float bad,
                              A algorithm, long margin, bool depthwise = false) {
  ConvCase c = case2d(depthwise ? 8 : cin, 8, 13, 13, 3, 3, 1, 1, 1, 1, 1, 1);
  c.batch = 1;
  if (depthwise) c.groups = 8;
  auto x = random_vector(c.x_size(), 7);
  x[(1 * 13 + 6) * 13 + 5] = bad;
  const auto w = random_vector(c.w_size(), 8), b = random_vector(c.cout, 9);
  const auto y = run_plan(c, &uk, x, w, b, algorithm);
  int wrong = 0;
  for (std::size_t o = 0; o < c.cout; ++o)
    for (long i = 0; i < 13; ++i)
      for (long j = 0; j < 13; ++j) {
        const bool sees = i >= 5 && i <= 7 && j >= 4 && j <= 6 && (!depthwise || o == 1);
        const bool near = i >= 5 - margin && i <= 7 + margin && j >= 4 - margin && j <= 6 + margin;
        const float v = y[(o * 13 + i) * 13 + j];
        bool ok = sees ? (std::isnan(bad) ? std::isnan(v) : !std::isfinite(v)) : std::isfinite(v);
        if (!sees && near && margin > 0) ok = true;
        if (!ok && ++wrong <= 3)
          ADD_FAILURE() << uk.name << " " << algorithm_name(algorithm) << " cin " << cin
                        << " input " << bad << ": output " << o << "," << i << "," << j << " = "
                        << v;
      }
  return wrong;
}

// PyTorch semantics (DESIGN.md section 5): NaN/Inf appears exactly where the receptive
// field holds it, on every path (Winograd too, where a tile's transforms mix its pixels).
TEST_P(ConvVariant, NanAndInfStayInsideTheirReceptiveField) {
  for (float bad : {kNan, kInf}) {
    EXPECT_EQ(count_misplaced_nonfinite(uk(), 3, bad, A::kAuto, 0), 0);
    for (A algorithm : kAlgorithms) {
      EXPECT_EQ(count_misplaced_nonfinite(uk(), 8, bad, algorithm, 0), 0);
      EXPECT_EQ(count_misplaced_nonfinite(uk(), 8, bad, algorithm, 0, true), 0);
    }
  }
}

TEST_P(ConvVariant, Conv3dWinogradKeepsNanInsideItsReceptiveField) {
  ConvCase c;
  c.batch = 1, c.cin = 8, c.cout = 8, c.in = {3, 8, 8}, c.k = {3, 3, 3};
  c.pb = c.pa = {1, 1, 1};
  auto x = random_vector(c.x_size(), 3);
  x[2 * 64 + 7 * 8 + 7] = kNan;  // channel 0, z 2, corner
  const auto w = random_vector(c.w_size(), 4);
  for (A algorithm : {A::kAuto, A::kWinogradF2, A::kWinogradF4}) {
    fdl::ConvPlan plan(c.geometry(), w.data(), nullptr, c.act, kAlpha, &uk(), algorithm);
    std::vector<float> y(c.y_size());
    plan.run(x.data(), 1, c.in, y.data());
    for (std::size_t o = 0; o < c.cout; ++o)
      for (std::size_t z = 0; z < 3; ++z)
        for (std::size_t i = 0; i < 8; ++i)
          for (std::size_t j = 0; j < 8; ++j) {
            const bool reached = z >= 1 && i >= 6 && j >= 6;
            ASSERT_EQ(std::isnan(y[((o * 3 + z) * 8 + i) * 8 + j]), reached)
                << algorithm_name(algorithm) << " at " << o << "," << z << "," << i << "," << j;
          }
  }
}

TEST_P(ConvVariant, Conv3dHugeVolumesLeaveWinogradForIm2col) {
  ConvCase c;
  c.cin = 8, c.cout = 8, c.k = {3, 3, 3}, c.pb = c.pa = {1, 1, 1};
  const auto w = random_vector(c.w_size(), 7);
  fdl::ConvPlan plan(c.geometry(), w.data(), nullptr, c.act, kAlpha, &uk());
  EXPECT_STREQ(plan.algorithm(Size3{64, 256, 256}), "im2col");  // workspace would be > 64 MiB
  const std::string small = plan.algorithm(Size3{4, 8, 8});
  EXPECT_EQ(small != "im2col", uk().isa != fdl::Isa::kRef) << small;
}

INSTANTIATE_TEST_SUITE_P(AllVariants, ConvVariant,
                         ::testing::ValuesIn(fdl::gemm_variants()),
                         fdl_test::VariantName());

TEST(ConvDefaultVariant, NullUkernelUsesBestAndMatches) {
  EXPECT_TRUE(check_case(case2d(8, 8, 11, 6, 3, 3, 1, 1, 1, 1, 1, 1), nullptr, 42));
  const auto w = random_vector(8 * 8 * 9, 1);
  fdl::ConvPlan plan(case2d(8, 8, 1, 1, 3, 3).geometry(), w.data(), nullptr,
                     fdl::Activation::kNone, kAlpha);
  EXPECT_STREQ(plan.ukernel().name, fdl::gemm_best().name);
}

// ------------------------------------------------------------ depthwise variants

// The GEMM microkernel of the same ISA as `isa` (a plan's kernels follow its GEMM's ISA).
const fdl::GemmUkernel& gemm_for(fdl::Isa isa) {
  return fdl::variant_for(fdl::gemm_variants(), isa);
}

class DepthwiseVariant : public fdl_test::VariantTest<fdl::DepthwiseVariant> {};

// Runs `c` (random data from `seed`) through variant `v`'s depthwise plan: it must write
// nothing past the output and match the reference everywhere. Call it under
// ASSERT_NO_FATAL_FAILURE.
void check_depthwise(const fdl::DepthwiseVariant& v, const ConvCase& c, unsigned seed) {
  const auto x = random_vector(c.x_size(), seed), wt = random_vector(c.w_size(), seed + 1);
  const auto b = random_vector(c.cout, seed + 2);
  fdl::ConvPlan plan(c.geometry(), wt.data(), c.bias ? b.data() : nullptr, c.act, kAlpha,
                     &gemm_for(v.isa), A::kDepthwise);
  ASSERT_STREQ(plan.depthwise_variant(), v.name);
  std::vector<float> y(c.y_size() + 1, kCanary);
  plan.run(x.data(), c.batch, c.in, y.data());
  ASSERT_EQ(y.back(), kCanary) << "wrote past the end: " << c.str();
  y.pop_back();
  const auto want = reference(c, x, wt, b);
  ASSERT_EQ(first_mismatch(c, y, want), -1) << v.name << " " << c.str();
  // The plane kernel alone too: the plan may have taken the channels-at-once kernel
  // (small 2-D planes on x86), which leaves the plane kernels to ConvChain and larger
  // planes.
  if (c.in[0] != 1 || c.k[0] != 1) return;
  const fdl::ConvGeometry g = c.geometry();
  const std::size_t in_plane = fdl::volume(c.in), out_plane = fdl::volume(c.out());
  const std::size_t taps = fdl::volume(c.k);
  std::vector<float> planes(c.y_size() + 1, kCanary);
  for (std::size_t n = 0; n < c.batch; ++n)
    for (std::size_t ch = 0; ch < c.cout; ++ch)
      v.fn(g, x.data() + (n * c.cin + ch) * in_plane, c.in[1], c.in[2], wt.data() + ch * taps,
           c.bias ? b[ch] : 0.0f, c.act, kAlpha, planes.data() + (n * c.cout + ch) * out_plane);
  ASSERT_EQ(planes.back(), kCanary) << "wrote past the end: " << c.str();
  planes.pop_back();
  ASSERT_EQ(first_mismatch(c, planes, want), -1) << v.name << " planes " << c.str();
}

// The channels-at-once kernel of v's ISA (if it has one) alone on case c, block by block of
// its width, against the reference: the plan takes it only where it pays on this CPU.
void check_channel_blocks(const fdl::DepthwiseVariant& v, const ConvCase& c, unsigned seed) {
  const fdl::DepthwiseChannelsVariant* blocks = nullptr;
  for (const auto& b : fdl::depthwise_channels_variants())
    if (b.isa == v.isa) blocks = &b;
  // Its contract (the plan's conditions but the CPU's): 2-D planes of at most 256 pixels
  // and outputs of at most 196, the specialised windows.
  if (!blocks || c.in[0] != 1 || c.k[0] != 1 || c.in[1] * c.in[2] > 256 ||
      fdl::volume(c.out()) > 196 || !fdl::depthwise_window_specialised(c.geometry()))
    return;
  const auto x = random_vector(c.x_size(), seed), wt = random_vector(c.w_size(), seed + 1);
  const auto b = random_vector(c.cout, seed + 2);
  const fdl::ConvGeometry g = c.geometry();
  const std::size_t in_plane = fdl::volume(c.in), out_plane = fdl::volume(c.out());
  const std::size_t taps = fdl::volume(c.k), width = blocks->channels;
  std::vector<float> y(c.y_size() + 1, kCanary);
  for (std::size_t n = 0; n < c.batch; ++n)
    for (std::size_t c0 = 0; c0 < c.cout; c0 += width)
      blocks->fn(g, x.data() + (n * c.cin + c0) * in_plane, c.in[1], c.in[2],
                 std::min(width, c.cout - c0), wt.data() + c0 * taps,
                 c.bias ? b.data() + c0 : nullptr, c.act, kAlpha,
                 y.data() + (n * c.cout + c0) * out_plane);
  ASSERT_EQ(y.back(), kCanary) << "wrote past the end: " << c.str();
  y.pop_back();
  ASSERT_EQ(first_mismatch(c, y, reference(c, x, wt, b)), -1)
      << blocks->name << " channel blocks " << c.str();
}

// Every vector fast path at its edges: output widths 1 to 3x the vector width (+-1 around
// each multiple), odd left padding, stride 1 and 2, the specialised 3x3/5x5 kernels and
// the general form (dilation, other kernels), heights across the 4-row blocks and 8-row
// strips.
TEST_P(DepthwiseVariant, EdgeSweepMatchesReference) {
  const auto& v = GetParam();
  const std::size_t lanes = v.isa == fdl::Isa::kAvx512 ? 16 : v.isa == fdl::Isa::kRef ? 4 : 8;
  std::vector<std::size_t> widths;
  for (std::size_t w = 1; w <= 3 * lanes + 1; ++w) widths.push_back(w);
  unsigned seed = 1;
  int checked = 0;
  for (std::size_t k : {3, 5, 2})
    for (std::size_t s : {1, 2})
      for (std::size_t dil : {1, 2})
        for (std::size_t w : widths) {
          const std::size_t h = 1 + (w * 7 + k) % 18;  // 1..18: partial and whole strips
          const std::size_t pl = (w % 3 == 0) ? 1 : (w % 3 == 1 ? k / 2 : 0);  // odd, half, 0
          const std::size_t pt = (w + s) % 2 ? k / 2 : 1;
          ConvCase c = case2d(5, 5, h, w * s, k, k, s, s, pt, k - 1 - pt % k, pl, (w + 1) % k);
          c.groups = 5, c.d = {1, dil, dil}, c.batch = 1;
          c.act = static_cast<fdl::Activation>((w + k) % 9);
          c.bias = w % 4 != 0;
          if (!c.fits()) continue;
          ASSERT_NO_FATAL_FAILURE(check_depthwise(v, c, seed += 3));
          ASSERT_NO_FATAL_FAILURE(check_channel_blocks(v, c, seed));
          ++checked;
        }
  EXPECT_GT(checked, 8 * int(widths.size()));  // most geometries fit
}

// Planes of rows up to half a vector wide, stride 1, the output as wide as the input: the
// masked-load ISAs run them as one run of outputs across rows (depthwise-flat.inc). Every
// split of the padding, heights from 1 up past the flat form's 8 vectors (8 x 16 = 128
// outputs exactly at 8 wide and 16 high; beyond: the row kernel again), so row and column
// masks meet at every lane position.
TEST_P(DepthwiseVariant, SmallPlanesAsOneRunMatchReference) {
  const auto& v = GetParam();
  unsigned seed = 7;
  for (std::size_t k : {3, 5})
    for (std::size_t w = 1; w <= 9; ++w)
      for (std::size_t h : {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 14, 15, 16, 17, 20})
        for (std::size_t split = 0; split < k; ++split) {  // padding (split, k - 1 - split)
          const std::size_t pt = (split + h) % k;
          ConvCase c = case2d(3, 3, h, w, k, k, 1, 1, pt, k - 1 - pt, split, k - 1 - split);
          c.groups = 3, c.batch = 1;
          c.act = static_cast<fdl::Activation>((w + h + split) % 9);
          c.bias = (w + split) % 3 != 0;
          if (!c.fits()) continue;
          ASSERT_NO_FATAL_FAILURE(check_depthwise(v, c, seed += 3));
        }
}

// The flat form keeps its tap masks per thread for the last plane geometry: planes that
// differ only in their bottom padding (so in output rows and vectors) must not reuse them.
TEST_P(DepthwiseVariant, SmallPlanesDifferingInBottomPaddingOnly) {
  const auto& v = GetParam();
  unsigned seed = 31;
  for (std::size_t k : {3, 5})
    for (std::size_t pb : {std::size_t{0}, k - 1, 2 * k, k / 2, 3 * k}) {  // 1 to 8 vectors
      ConvCase c = case2d(2, 2, 8, 8, k, k, 1, 1, k / 2, pb, k / 2, k - 1 - k / 2);
      c.groups = 2, c.batch = 1;
      if (!c.fits()) continue;
      ASSERT_NO_FATAL_FAILURE(check_depthwise(v, c, seed += 3));
    }
}

// A left padding wider than the row (PyTorch's padding='same' with a dilation of 2^31 - 1,
// found by tests/test_fuzz_io.py through fastdl.io.from_torch): the general form's vector
// loop ran from the row's end on to the padding's width, writing far past the output.
TEST_P(DepthwiseVariant, PaddingWiderThanTheRowStaysInsideIt) {
  const auto& v = GetParam();
  for (std::size_t k : {2, 3}) {
    const std::size_t reach = 2147483647;  // dilation * (k - 1) over k - 1 gaps
    ConvCase c = case2d(5, 5, 3, 6, 1, k, 1, 1, 0, 0, reach * (k - 1) / 2,
                        reach * (k - 1) - reach * (k - 1) / 2);
    c.groups = 5, c.d = {1, 1, reach}, c.batch = 1;
    ASSERT_TRUE(c.fits());
    ASSERT_NO_FATAL_FAILURE(check_depthwise(v, c, 5));
  }
}

// The masked-load kernels (depthwise-masked.inc) read rows in place and mask off the lanes
// of a tap that fall outside the row: those lanes must not touch memory. The plane is put
// against an inaccessible page, ending at it and starting after it, where a lane that read
// outside the plane would fault; the output must equal the same kernel's on a plain copy.
TEST_P(DepthwiseVariant, ReadsNothingOutsideThePlane) {
  const auto& v = GetParam();
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  char* region = static_cast<char*>(
      mmap(nullptr, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(region, MAP_FAILED);
  ASSERT_EQ(mprotect(region, page, PROT_NONE), 0);
  ASSERT_EQ(mprotect(region + 2 * page, page, PROT_NONE), 0);
  float* const data = reinterpret_cast<float*>(region + page);
  const std::size_t page_floats = page / sizeof(float);
  unsigned seed = 11;
  for (std::size_t k : {3, 5})
    for (std::size_t s : {1, 2})
      for (std::size_t w : {1, 5, 7, 14, 17, 33}) {
        const std::size_t h = 2 + w % 5;
        ConvCase c = case2d(1, 1, h, w, k, k, s, s, k / 2, k / 2, k / 2, k / 2);
        c.batch = 1;
        if (!c.fits()) continue;
        const fdl::ConvGeometry g = c.geometry();
        const auto x = random_vector(h * w, ++seed), wt = random_vector(k * k, ++seed);
        const std::size_t out = c.y_size();
        std::vector<float> expected(out), y(out);
        v.fn(g, x.data(), h, w, wt.data(), 0.5f, fdl::Activation::kNone, kAlpha,
             expected.data());
        for (float* placed : {data + page_floats - h * w, data}) {  // at the end, at the start
          std::memcpy(placed, x.data(), h * w * sizeof(float));
          std::fill(y.begin(), y.end(), kCanary);
          v.fn(g, placed, h, w, wt.data(), 0.5f, fdl::Activation::kNone, kAlpha, y.data());
          ASSERT_EQ(std::memcmp(y.data(), expected.data(), out * sizeof(float)), 0)
              << v.name << " " << c.str();
        }
      }
  munmap(region, 3 * page);
}

// Empty rows (W == 0) under a padding wide enough for outputs: every output is the bias
// through the activation (the masked kernels' padding rows must still be real memory).
TEST_P(DepthwiseVariant, EmptyRowsUnderWidePaddingGiveTheBias) {
  const auto& v = GetParam();
  for (std::size_t k : {3, 5})
    for (std::size_t s : {1, 2}) {
      ConvCase c = case2d(1, 1, 3, 0, k, k, s, s, k - 1, k - 1, k - 1, k - 1);
      c.batch = 1;
      const fdl::ConvGeometry g = c.geometry();
      const Size3 out = c.out();
      ASSERT_GT(out[2], 0u);
      const std::vector<float> wt(k * k, 1.0f);
      std::vector<float> y(out[1] * out[2], kCanary);
      const float x_unused = 0.0f;
      v.fn(g, &x_unused, 3, 0, wt.data(), -0.5f, fdl::Activation::kRelu, kAlpha, y.data());
      for (float value : y) ASSERT_EQ(value, 0.0f) << v.name << " " << c.str();
      v.fn(g, &x_unused, 3, 0, wt.data(), 0.25f, fdl::Activation::kNone, kAlpha, y.data());
      for (float value : y) ASSERT_EQ(value, 0.25f) << v.name << " " << c.str();
    }
}

// Small planes a vector's width of channels at a time (DepthwiseChannelsFn, x86; the plan
// picks it for 2-D planes of at most 256 pixels): channel counts around the block width,
// sizes around 7, 8, 14 and 16 and the 256-pixel limit, strides 1 and 2, 3x3 and 5x5, every
// padding split up to the window, two images; 1 and 2 threads bit for bit.
TEST_P(DepthwiseVariant, ChannelBlocksMatchReference) {
  const auto& v = GetParam();
  unsigned seed = 41;
  int checked = 0;
  for (std::size_t k : {3, 5})
    for (std::size_t s : {1, 2})
      for (std::size_t ch : {1, 7, 8, 9, 15, 16, 17, 33})
        for (std::size_t hw : {1, 7, 8, 14, 16}) {
          const std::size_t h = hw, w = (hw * 3 + ch) % 17 + 1;
          const std::size_t pt = (ch + hw) % k, pl = (ch + s) % k;
          ConvCase c = case2d(ch, ch, h, w, k, k, s, s, pt, (pt + 1) % k, pl, k - 1 - pl);
          c.groups = ch, c.batch = 2;
          c.act = static_cast<fdl::Activation>((ch + hw + k) % 9);
          c.bias = (ch + hw) % 3 != 0;
          if (!c.fits()) continue;
          ASSERT_NO_FATAL_FAILURE(check_depthwise(v, c, seed += 3));
          ASSERT_NO_FATAL_FAILURE(check_channel_blocks(v, c, seed));
          ++checked;
          const auto x = random_vector(c.x_size(), seed), wt = random_vector(c.w_size(), seed);
          fdl::ConvPlan plan(c.geometry(), wt.data(), nullptr, c.act, kAlpha,
                             &gemm_for(v.isa), A::kDepthwise);
          std::vector<float> one(c.y_size()), two(c.y_size());
          fdl_test::ThreadCountGuard guard;
          fdl::set_num_threads(1);
          plan.run(x.data(), c.batch, c.in, one.data());
          fdl::set_num_threads(2);
          plan.run(x.data(), c.batch, c.in, two.data());
          ASSERT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0)
              << v.name << " " << c.str();
        }
  EXPECT_GT(checked, 100);
}

INSTANTIATE_TEST_SUITE_P(AllVariants, DepthwiseVariant,
                         ::testing::ValuesIn(fdl::depthwise_variants()),
                         fdl_test::VariantName());

// ------------------------------------------------------------ implicit GEMM variants

class ImplicitGemmVariant : public fdl_test::VariantTest<fdl::ImplicitGemmVariant> {};

// Every row count of a panel, every block of planes whose pixels end mid-vector and
// mid-block, taps reading padding on every side, against the reference variant; nothing
// written outside the block's pixels and rows.
TEST_P(ImplicitGemmVariant, MatchesReferenceAtEveryTileEdge) {
  const fdl::ImplicitGemmVariant& ref = fdl::implicit_gemm_variants().back();
  const std::size_t mr = GetParam().mr ? GetParam().mr : 5;
  struct Shape {
    Size3 in, k, d, pb, pa;
  };
  const Shape shapes[] = {{{1, 16, 16}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}, {0, 1, 1}},
                          {{1, 7, 5}, {1, 3, 3}, {1, 2, 1}, {0, 3, 1}, {0, 0, 1}},
                          {{1, 1, 45}, {1, 1, 3}, {1, 1, 4}, {0, 0, 5}, {0, 0, 3}},
                          {{1, 9, 1}, {1, 4, 1}, {1, 1, 1}, {0, 1, 0}, {0, 2, 0}},
                          {{1, 6, 9}, {1, 2, 3}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}},   // 9 -> 7
                          {{1, 3, 40}, {1, 1, 5}, {1, 1, 2}, {0, 0, 1}, {0, 0, 0}}};  // -> 33
  // Rows of whole tiles (AVX2's 16 pixels, AVX-512's 32, a block's 32) and one either side.
  std::vector<Shape> sweep(std::begin(shapes), std::end(shapes));
  for (std::size_t w : {15, 16, 17, 31, 32, 33, 63, 64, 65})
    sweep.push_back({{1, 1, w}, {1, 1, 3}, {1, 1, 1}, {0, 0, 1}, {0, 0, 1}});
  int checked = 0;
  for (const Shape& sh : sweep) {
    fdl::ConvGeometry g;
    g.in_channels = 3, g.out_channels = mr;
    g.kernel = sh.k, g.dilation = sh.d, g.pad_before = sh.pb, g.pad_after = sh.pa;
    ASSERT_TRUE(fdl::implicit_gemm_applies(g, sh.in));
    const std::size_t taps = g.taps(), plane = sh.in[1] * sh.in[2];
    const Size3 out = g.out_size(sh.in);
    const std::size_t out_plane = out[1] * out[2], grid = out[1] * sh.in[2];
    const std::size_t blocks = (grid + fdl::kImplicitBlock - 1) / fdl::kImplicitBlock;
    const fdl::ImplicitGemmTables tables(g, sh.in);
    const std::vector<std::uint32_t>& lanes = tables.lanes;
    const fdl::ImplicitGemm s{3, taps, plane, sh.in[2], out[2], out_plane, mr,
                              tables.shift.data()};
    const auto x = fdl_test::random_vector(3 * plane, 11);
    const auto a = fdl_test::random_vector(3 * taps * mr, 12);
    const auto bias = fdl_test::random_vector(mr, 13);
    for (std::size_t rows = 1; rows <= mr; ++rows)
      for (std::size_t b = 0; b < blocks; ++b) {
        const std::size_t q0 = b * fdl::kImplicitBlock;
        const std::size_t n = std::min(fdl::kImplicitBlock, grid - q0);
        for (fdl::Activation act : {fdl::Activation::kNone, fdl::Activation::kRelu,
                                    fdl::Activation::kSigmoid}) {
          std::vector<float> got(mr * out_plane, 7.0f), want(mr * out_plane, 7.0f);
          const float* bs = act == fdl::Activation::kNone ? nullptr : bias.data();
          GetParam().fn(s, x.data(), a.data(), rows, q0, n, lanes.data() + b * taps, bs, act,
                        0.1f, got.data());
          ref.fn(s, x.data(), a.data(), rows, q0, n, lanes.data() + b * taps, bs, act, 0.1f,
                 want.data());
          for (std::size_t i = 0; i < got.size(); ++i)
            ASSERT_NEAR(got[i], want[i], 1e-4) << GetParam().name << " rows " << rows
                                               << " block " << b << " at " << i;
          ++checked;
        }
      }
  }
  EXPECT_GT(checked, 30);
}

// The reference reads through the lane bits alone: a tap's padding is wherever its bits
// are clear, whatever lies at its address (here the neighbouring rows and channels).
TEST(ImplicitGemmLanes, MarkExactlyThePixelsReadingInsideTheImage) {
  for (std::size_t left : {1, 0}) {  // output rows as wide as the input's, one narrower
    fdl::ConvGeometry g;
    g.kernel = {1, 3, 2}, g.dilation = {1, 2, 1};
    g.pad_before = {0, 3, left}, g.pad_after = {0, 0, 0};
    const Size3 in{1, 6, 5};
    const std::size_t OH = g.out_size(in)[1], OW = g.out_size(in)[2], W = 5, taps = 6;
    const std::size_t grid = OH * W, blocks = (grid + 31) / 32;
    ASSERT_EQ(OW, 4 + left);
    std::vector<std::ptrdiff_t> shift(taps);
    std::vector<std::uint32_t> lanes(blocks * taps);
    fdl::implicit_gemm_lanes(g, in, shift.data(), lanes.data());
    for (std::size_t t = 0; t < taps; ++t) {
      const long dy = long(t / 2) * 2 - 3, dx = long(t % 2) - long(left);
      EXPECT_EQ(shift[t], dy * 5 + dx);
      for (std::size_t q = 0; q < blocks * 32; ++q) {
        const long oh = long(q / W), ow = long(q % W);
        const bool inside = q < grid && ow < long(OW) && oh + dy >= 0 && oh + dy < 6 &&
                            ow + dx >= 0 && ow + dx < 5;
        EXPECT_EQ(bool((lanes[q / 32 * taps + t] >> (q % 32)) & 1u), inside)
            << left << " " << t << " " << q;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, ImplicitGemmVariant,
                         ::testing::ValuesIn(fdl::implicit_gemm_variants()),
                         fdl_test::VariantName());

// ------------------------------------------------------------ Winograd variants

class WinogradVariant : public fdl_test::VariantTest<fdl::WinogradVariant> {};

// The tile size follows the GEMM columns each microkernel really computes: on 7x7 planes
// F(2,3)'s 16 tiles beat F(4,3)'s 4 (36 points each) whether or not the GEMM computes a
// half-wide last panel (NEON's 8x12 cannot: counting one there picked F(4,3)); on 14x14
// F(4,3)'s 16 tiles beat F(2,3)'s 49; 56x56 takes F(4,3) everywhere.
TEST(WinogradTile, FollowsTheColumnsEachGemmComputes) {
  ConvCase c = case2d(64, 64, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1);
  for (const fdl::GemmUkernel& uk : fdl::gemm_variants()) {
    EXPECT_EQ(fdl::WinogradConv::best_tile(c.geometry(), uk, 7, 7), 2) << uk.name;
    EXPECT_EQ(fdl::WinogradConv::best_tile(c.geometry(), uk, 14, 14), 4) << uk.name;
    EXPECT_EQ(fdl::WinogradConv::best_tile(c.geometry(), uk, 56, 56), 4) << uk.name;
    EXPECT_TRUE(uk.edge_nr == uk.nr || 2 * uk.edge_nr == uk.nr) << uk.name;
  }
}

// F(2,3), F(4,3) and the automatic choice against the direct convolution on the sizes where
// whole groups of vector-lane tiles meet the bottom and right edges (H, W multiples of 4
// and 8 with full tile groups at the edge), and where tile counts lie one past multiples
// of the lanes and of NR (28: 7 x 7 = 49 F(4,3) tiles, 60: 15 x 15 = 225; a lane group
// with one live tile, a GEMM edge of one column), with 8 to 64 channels.
TEST_P(WinogradVariant, SizeSweepMatchesReference) {
  const auto& v = GetParam();
  const std::size_t sizes[] = {16, 28, 40, 56, 60, 64, 80};
  const std::size_t channels[][2] = {{8, 8}, {16, 24}, {32, 8}, {64, 16}, {24, 64}};
  unsigned seed = 7;
  int i = 0;
  for (std::size_t h : sizes)
    for (std::size_t w : sizes) {
      const auto& ch = channels[i++ % 5];
      ConvCase c = case2d(ch[0], ch[1], h, w, 3, 3, 1, 1, 1, 1, 1, 1);
      c.batch = 1;
      if (i % 3 == 0) c.pb = c.pa = {0, 0, 0};  // valid: output (h-2) x (w-2)
      c.act = static_cast<fdl::Activation>(i % 9);
      const auto x = random_vector(c.x_size(), ++seed), wt = random_vector(c.w_size(), ++seed);
      const auto b = random_vector(c.cout, ++seed);
      const Reference ref = reference(c, x, wt, b);
      for (A algorithm : {A::kWinogradF2, A::kWinogradF4, A::kWinograd}) {
        fdl::ConvPlan plan(c.geometry(), wt.data(), b.data(), c.act, kAlpha, &gemm_for(v.isa),
                           algorithm);
        ASSERT_STREQ(plan.winograd_variant(), v.name);
        std::vector<float> y(c.y_size() + 1, kCanary);
        plan.run(x.data(), 1, c.in, y.data());
        ASSERT_EQ(y.back(), kCanary) << "wrote past the end: " << c.str();
        y.pop_back();
        const long bad = first_mismatch(c, y, ref);
        ASSERT_EQ(bad, -1) << v.name << " " << algorithm_name(algorithm) << " " << c.str()
                           << ": got " << y[bad] << " want " << ref.y[bad];
      }
    }
}

// The blocked form (blocks of tiles whose V and M fit half the L2, one block per task):
// taken where the whole image's V and M would not fit the L2 (here for any L2 size), and
// equal to the direct convolution over many blocks and a partial last one, with padding,
// bias and an activation; bit for bit the same at 1 and 2 threads.
TEST_P(WinogradVariant, BlockedFormMatchesReference) {
  const auto& v = GetParam();
  ThreadCountGuard guard;
  // Odd tile counts (15 x 17, 29 x 33): blocks, multiples of NR, leave a partial last one.
  ConvCase c = case2d(48, 40, 57, 68, 3, 3, 1, 1, 1, 2, 0, 0);
  c.batch = 1;
  c.act = fdl::Activation::kRelu6;
  const auto x = random_vector(c.x_size(), 31), wt = random_vector(c.w_size(), 32);
  const auto b = random_vector(c.cout, 33);
  const Reference ref = reference(c, x, wt, b);
  const Size3 out = c.out();
  for (int m : {2, 4}) {
    fdl::WinogradConv conv(c.geometry(), m, wt.data(), gemm_for(v.isa), v);
    const std::size_t tiles = ((out[1] + m - 1) / m) * ((out[2] + m - 1) / m);
    const std::size_t block = conv.block_tiles(tiles);
    ASSERT_GT(block, 0u) << v.name << " F(" << m << ",3)";
    ASSERT_NE(tiles % block, 0u) << "a partial last block";
    std::vector<float> y1(c.y_size() + 1, kCanary), y2(c.y_size() + 1, kCanary);
    fdl::set_num_threads(1);
    conv.run(x.data(), c.in[1], c.in[2], b.data(), c.act, kAlpha, y1.data());
    fdl::set_num_threads(2);
    conv.run(x.data(), c.in[1], c.in[2], b.data(), c.act, kAlpha, y2.data());
    ASSERT_EQ(y1.back(), kCanary) << "wrote past the end";
    ASSERT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float))) << v.name;
    y1.pop_back();
    const long bad = first_mismatch(c, y1, ref);
    ASSERT_EQ(bad, -1) << v.name << " F(" << m << ",3): got " << y1[bad] << " want "
                       << ref.y[bad];
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, WinogradVariant,
                         ::testing::ValuesIn(fdl::winograd_variants()),
                         fdl_test::VariantName());

// ------------------------------------------------------------ transposed convolution

// Naive transposed convolution: x [N][Cin][in], w [Cin][Cout/g][k] -> [N][Cout][out].
std::vector<double> naive_conv_transpose(const ConvCase& c, const Size3& out,
                                         const std::vector<float>& x,
                                         const std::vector<float>& w, const float* b) {
  const std::size_t cin_g = c.cin / c.groups, cout_g = c.cout / c.groups;
  const std::size_t plane = fdl::volume(out), L = fdl::volume(c.in);
  std::vector<double> y(c.batch * c.cout * plane);
  for (std::size_t n = 0; n < c.batch; ++n)
    for (std::size_t o = 0; o < c.cout; ++o)
      for (std::size_t p = 0; p < plane; ++p) y[(n * c.cout + o) * plane + p] = b ? b[o] : 0.0;
  for (std::size_t n = 0; n < c.batch; ++n)
    for (std::size_t ci = 0; ci < c.cin; ++ci)
      for (std::size_t l = 0; l < L; ++l) {
        const std::size_t iz = l / (c.in[1] * c.in[2]), iy = (l / c.in[2]) % c.in[1];
        const std::size_t ix = l % c.in[2];
        const double xv = x[(n * c.cin + ci) * L + l];
        const std::size_t grp = ci / cin_g;
        for (std::size_t oc = 0; oc < cout_g; ++oc)
          for (std::size_t kz = 0; kz < c.k[0]; ++kz)
            for (std::size_t ky = 0; ky < c.k[1]; ++ky)
              for (std::size_t kx = 0; kx < c.k[2]; ++kx) {
                const long oz = long(iz * c.s[0] + kz * c.d[0]) - long(c.pb[0]);
                const long oy = long(iy * c.s[1] + ky * c.d[1]) - long(c.pb[1]);
                const long ox = long(ix * c.s[2] + kx * c.d[2]) - long(c.pb[2]);
                if (oz < 0 || oy < 0 || ox < 0 || oz >= long(out[0]) || oy >= long(out[1]) ||
                    ox >= long(out[2]))
                  continue;
                const std::size_t wi =
                    (((ci * cout_g + oc) * c.k[0] + kz) * c.k[1] + ky) * c.k[2] + kx;
                y[((n * c.cout + grp * cout_g + oc) * out[0] + oz) * out[1] * out[2] +
                  oy * out[2] + ox] += xv * w[wi];
              }
      }
  for (auto& v : y) v = fdl::activate_ref(static_cast<float>(v), c.act, kAlpha);
  return y;
}

TEST_P(ConvVariant, ConvTransposeMatchesNaiveLoops) {
  using Act = fdl::Activation;
  struct T {
    std::size_t batch, cin, cout, groups;
    Size3 in, k, s, d, pad, extra;  // extra: output_padding
    Act act;
    bool bias;
  };
  const Size3 one{1, 1, 1}, zero{0, 0, 0};
  const std::vector<T> cases = {
      {2, 3, 4, 1, {1, 1, 7}, one, one, one, zero, zero, Act::kNone, true},  // 1-D k1
      {1, 4, 6, 2, {1, 1, 9}, {1, 1, 3}, {1, 1, 2}, {1, 1, 2}, {0, 0, 1}, {0, 0, 1}, Act::kNone,
       true},
      {2, 5, 3, 1, {1, 6, 5}, {1, 4, 4}, {1, 2, 2}, one, {0, 1, 1}, zero, Act::kRelu, true},
      {1, 6, 4, 2, {1, 5, 7}, {1, 3, 2}, {1, 3, 1}, {1, 1, 2}, {0, 2, 0}, {0, 2, 0}, Act::kNone,
       true},
      {1, 7, 14, 1, {1, 4, 4}, {1, 3, 3}, one, one, one, zero, Act::kSilu, true},  // many rows
      {2, 2, 3, 1, {3, 4, 2}, {2, 3, 2}, {2, 1, 3}, {1, 2, 1}, {1, 0, 1}, {1, 0, 2}, Act::kNone,
       true},
      {1, 4, 4, 4, {2, 3, 3}, {3, 3, 3}, {2, 2, 2}, one, one, {1, 1, 0}, Act::kNone, false},
      {1, 3, 2, 1, {1, 7, 13}, {1, 4, 4}, {1, 2, 2}, one, {0, 1, 3}, {0, 1, 1}, Act::kNone, true},
      {1, 2, 3, 1, {1, 5, 11}, {1, 3, 5}, {1, 2, 2}, one, {0, 0, 2}, zero, Act::kRelu, true},
  };
  unsigned seed = 40;
  for (const T& t : cases) {
    ConvCase c;
    c.batch = t.batch, c.cin = t.cin, c.cout = t.cout, c.groups = t.groups, c.in = t.in;
    c.k = t.k, c.s = t.s, c.d = t.d, c.pb = c.pa = t.pad, c.act = t.act, c.bias = t.bias;
    const auto g = c.geometry();
    const auto x = random_vector(c.x_size(), ++seed);
    const auto w = random_vector(c.cin * (c.cout / c.groups) * g.taps(), ++seed);
    const auto b = random_vector(c.cout, ++seed);
    const auto w2 = random_vector(w.size(), ++seed), b2 = random_vector(c.cout, ++seed);
    fdl::ConvTransposePlan plan(g, w2.data(), c.bias ? b2.data() : nullptr, c.act, kAlpha,
                                &uk());
    plan.set_weights(w.data(), c.bias ? b.data() : nullptr);  // replaces w2, b2 entirely
    Size3 out = plan.default_out_size(c.in);
    for (int a = 0; a < 3; ++a) out[a] += t.extra[a];
    const auto want = naive_conv_transpose(c, out, x, w, c.bias ? b.data() : nullptr);
    // Column blocks of whole and partial grid rows (1 float: NR columns per block).
    for (std::size_t block : {std::size_t(1), std::size_t(65536)})
      for (int threads : {1, 3}) {
        ThreadCountGuard guard;
        fdl::set_num_threads(threads);
        plan.set_column_block(block);
        std::vector<float> y(c.batch * c.cout * fdl::volume(out) + 1, 9.0f);
        plan.run(x.data(), c.batch, c.in, out, y.data());
        EXPECT_EQ(y.back(), 9.0f) << "wrote past the end";
        const double tol = 1e-5 + 4e-6 * c.cin * g.taps();
        for (std::size_t i = 0; i < want.size(); ++i)
          ASSERT_NEAR(y[i], want[i], tol) << c.str() << " block " << block << " at " << i;
      }
  }
}

// ------------------------------------------------------------ im2col / col2im

struct UnfoldCase {
  std::size_t c;
  Size3 in, k, s, d, pb, pa;
  fdl::ConvGeometry geometry() const {
    fdl::ConvGeometry g;
    g.in_channels = g.out_channels = c;
    g.kernel = k, g.stride = s, g.dilation = d, g.pad_before = pb, g.pad_after = pa;
    return g;
  }
};

const UnfoldCase kUnfoldCases[] = {
    {3, {1, 6, 7}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},
    {1, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}},
    {2, {1, 5, 5}, {1, 5, 5}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}},
    {4, {1, 9, 8}, {1, 2, 2}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}, {0, 1, 1}},
    {3, {1, 10, 11}, {1, 3, 3}, {1, 2, 3}, {1, 2, 1}, {0, 2, 1}, {0, 0, 3}},
    {2, {1, 7, 20}, {1, 4, 3}, {1, 3, 1}, {1, 1, 2}, {0, 1, 0}, {0, 2, 0}},
    {17, {1, 13, 12}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},
    {1, {1, 20, 3}, {1, 7, 1}, {1, 1, 1}, {1, 1, 1}, {0, 3, 0}, {0, 3, 0}},
    {2, {1, 4, 4}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 3, 3}, {0, 3, 3}},  // pad > kernel/2
    {1, {1, 2, 40}, {1, 1, 5}, {1, 1, 4}, {1, 1, 3}, {0, 0, 2}, {0, 0, 2}},
    {2, {3, 4, 5}, {2, 3, 2}, {1, 2, 1}, {2, 1, 1}, {1, 0, 1}, {0, 1, 2}},
    {3, {1, 1, 11}, {1, 1, 3}, {1, 1, 2}, {1, 1, 3}, {0, 0, 2}, {0, 0, 1}},
    {1, {5, 3, 3}, {3, 1, 1}, {2, 1, 1}, {1, 1, 1}, {2, 0, 0}, {2, 0, 0}},
    {2, {1, 9, 10}, {1, 3, 2}, {1, 1, 1}, {1, 2, 3}, {0, 2, 0}, {0, 1, 3}},  // dilated
    // Stride-1 and stride-2 rows long enough for the whole-panel copies (and +-1 around).
    {2, {1, 3, 63}, {1, 1, 3}, {1, 1, 1}, {1, 1, 1}, {0, 0, 1}, {0, 0, 1}},
    {2, {1, 3, 65}, {1, 2, 3}, {1, 1, 2}, {1, 1, 1}, {0, 1, 3}, {0, 0, 2}},
};

TEST(Im2col, MatchesNaiveLoops) {
  for (const UnfoldCase& u : kUnfoldCases) {
    const auto g = u.geometry();
    const Size3 out = g.out_size(u.in);
    const std::size_t L = fdl::volume(out), rows = u.c * g.taps();
    ASSERT_GT(L, 0u);
    const auto x = random_vector(u.c * fdl::volume(u.in), 3);
    std::vector<float> cols(rows * L + 1, -5.0f);
    fdl::im2col(g, x.data(), u.in, cols.data());
    EXPECT_EQ(cols.back(), -5.0f) << "wrote past the end";
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t c = r / g.taps(), tap = r % g.taps();
      const std::size_t kz = tap / (u.k[1] * u.k[2]), ky = (tap / u.k[2]) % u.k[1];
      const std::size_t kx = tap % u.k[2];
      for (std::size_t l = 0; l < L; ++l) {
        const std::size_t oz = l / (out[1] * out[2]), oy = (l / out[2]) % out[1], ox = l % out[2];
        const long iz = long(oz * u.s[0] + kz * u.d[0]) - long(u.pb[0]);
        const long iy = long(oy * u.s[1] + ky * u.d[1]) - long(u.pb[1]);
        const long ix = long(ox * u.s[2] + kx * u.d[2]) - long(u.pb[2]);
        const bool in = iz >= 0 && iy >= 0 && ix >= 0 && iz < long(u.in[0]) &&
                        iy < long(u.in[1]) && ix < long(u.in[2]);
        const float want =
            in ? x[((c * u.in[0] + iz) * u.in[1] + iy) * u.in[2] + ix] : 0.0f;
        ASSERT_EQ(cols[r * L + l], want) << "row " << r << " col " << l;
      }
    }
  }
}

// The padded-grid packer over a chunk of three images: column r = n*OH*Wp + oh*Wp + ow of
// row k holds the input that output position (oh, ow) of image n reads for k (0 in the
// padding) wherever ow < OW; whole panels, panels across images and partial ones, every
// microkernel width, any K block.
TEST(PaddedGrid, ShiftedRowsPackerMatchesNaiveLoops) {
  constexpr std::size_t kImages = 3;
  for (const UnfoldCase& u : kUnfoldCases) {
    const auto g = u.geometry();
    if (!fdl::PaddedGrid::applies(g, u.in)) continue;
    const fdl::PaddedGrid grid(g, u.in, kImages, 1);
    ASSERT_EQ(grid.images, kImages);
    const std::size_t x_image = u.c * fdl::volume(u.in);
    std::vector<float> padded(u.c * grid.channel_stride + 1, -5.0f);
    const auto x = random_vector(kImages * x_image, 3);
    grid.pad(g, x.data(), x_image, u.c, padded.data());
    EXPECT_EQ(padded.back(), -5.0f) << "pad wrote past the end";
    const fdl::ShiftedRowsPacker packer(g, grid, padded.data(), u.c);
    const std::size_t K = u.c * g.taps();
    for (std::size_t w : {8u, 12u, 16u, 32u, 5u}) {
      const std::size_t k0 = K / 3, kc = K - k0, r0 = std::min(w / 2, grid.columns - 1);
      const std::size_t rows = grid.columns - r0;
      std::vector<float> panels(((rows + w - 1) / w) * w * kc);
      packer.pack(r0, rows, k0, kc, w, panels.data());
      for (std::size_t p = 0; p < kc; ++p) {
        const std::size_t k = k0 + p, c = k / g.taps(), ky = (k / u.k[2]) % u.k[1];
        const std::size_t kx = k % u.k[2];
        for (std::size_t t = 0; t < rows; ++t) {
          const std::size_t r = r0 + t, n = r / grid.per_image, q = r % grid.per_image;
          const std::size_t oy = q / grid.Wp, ox = q % grid.Wp;
          if (ox >= grid.OW) continue;  // dropped columns
          const long iy = long(oy + ky * u.d[1]) - long(u.pb[1]);
          const long ix = long(ox + kx * u.d[2]) - long(u.pb[2]);
          const bool in = iy >= 0 && ix >= 0 && iy < long(u.in[1]) && ix < long(u.in[2]);
          const float want = in ? x[n * x_image + (c * u.in[1] + iy) * u.in[2] + ix] : 0.0f;
          ASSERT_EQ(panels[(t / w) * w * kc + p * w + t % w], want)
              << "w " << w << " k " << k << " r " << r;
        }
      }
    }
  }
}

// The naive fold (scatter) of cols into y [C][in].
std::vector<double> naive_col2im(const UnfoldCase& u, const std::vector<float>& cols) {
  const auto g = u.geometry();
  const Size3 out = g.out_size(u.in);
  const std::size_t L = fdl::volume(out);
  std::vector<double> y(u.c * fdl::volume(u.in), 0.0);
  for (std::size_t r = 0; r < u.c * g.taps(); ++r) {
    const std::size_t c = r / g.taps(), tap = r % g.taps();
    const std::size_t kz = tap / (u.k[1] * u.k[2]), ky = (tap / u.k[2]) % u.k[1];
    const std::size_t kx = tap % u.k[2];
    for (std::size_t l = 0; l < L; ++l) {
      const std::size_t oz = l / (out[1] * out[2]), oy = (l / out[2]) % out[1], ox = l % out[2];
      const long iz = long(oz * u.s[0] + kz * u.d[0]) - long(u.pb[0]);
      const long iy = long(oy * u.s[1] + ky * u.d[1]) - long(u.pb[1]);
      const long ix = long(ox * u.s[2] + kx * u.d[2]) - long(u.pb[2]);
      if (iz < 0 || iy < 0 || ix < 0 || iz >= long(u.in[0]) || iy >= long(u.in[1]) ||
          ix >= long(u.in[2]))
        continue;
      y[((c * u.in[0] + iz) * u.in[1] + iy) * u.in[2] + ix] += cols[r * L + l];
    }
  }
  return y;
}

TEST(Col2im, MatchesNaiveLoopsAndIsTheAdjointOfIm2col) {
  for (const UnfoldCase& u : kUnfoldCases) {
    const auto g = u.geometry();
    const std::size_t L = fdl::volume(g.out_size(u.in)), rows = u.c * g.taps();
    const auto cols = random_vector(rows * L, 4);
    std::vector<float> y(u.c * fdl::volume(u.in) + 1, 77.0f);  // col2im overwrites, not adds
    fdl::col2im(g, cols.data(), u.in, y.data());
    EXPECT_EQ(y.back(), 77.0f) << "wrote past the end";
    const auto want = naive_col2im(u, cols);
    for (std::size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(y[i], want[i], 1e-5 * (1 + g.taps())) << "pixel " << i;
    // <im2col(x), cols> == <x, col2im(cols)>
    const auto x = random_vector(u.c * fdl::volume(u.in), 5);
    std::vector<float> xc(rows * L);
    fdl::im2col(g, x.data(), u.in, xc.data());
    double lhs = 0, rhs = 0;
    for (std::size_t i = 0; i < xc.size(); ++i) lhs += double(xc[i]) * cols[i];
    for (std::size_t i = 0; i < x.size(); ++i) rhs += double(x[i]) * y[i];
    EXPECT_NEAR(lhs, rhs, 1e-4 * (1 + std::fabs(lhs)));
  }
}

class Col2imVariant : public fdl_test::VariantTest<fdl::Col2imVariant> {};

// Each variant's scatter against the naive fold, on the unfold cases and on a sweep of row
// widths 1..49 at stride 1 and 2 (the paired stride-2 taps and the vectorised runs at
// their edges), with odd left padding.
TEST_P(Col2imVariant, ScatterMatchesNaiveFold) {
  std::vector<UnfoldCase> cases(std::begin(kUnfoldCases), std::end(kUnfoldCases));
  for (std::size_t w = 1; w <= 49; ++w)
    for (std::size_t s : {1, 2})
      cases.push_back({2, {1, 2, w}, {1, 2, 3 + w % 3}, {1, 1, s}, {1, 1, 1}, {0, 1, w % 3},
                       {0, 0, 3}});
  for (const UnfoldCase& u : cases) {
    const auto g = u.geometry();
    const Size3 grid = g.out_size(u.in);
    const std::size_t L = fdl::volume(grid);
    if (L == 0) continue;
    const auto cols = random_vector(u.c * g.taps() * L, 4);
    std::vector<float> y(u.c * fdl::volume(u.in) + 1, 0.0f);
    y.back() = 77.0f;
    GetParam().fn(g, u.c, cols.data(), L, 0, L, grid, u.in, y.data());
    EXPECT_EQ(y.back(), 77.0f) << "wrote past the end";
    const auto want = naive_col2im(u, cols);
    for (std::size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(y[i], want[i], 1e-5 * (1 + g.taps())) << GetParam().name << " pixel " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, Col2imVariant,
                         ::testing::ValuesIn(fdl::col2im_variants()),
                         fdl_test::VariantName());

}  // namespace
