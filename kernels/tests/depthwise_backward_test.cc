// The depthwise convolution's gradient kernels (fastdl/conv_backward.h) against a double
// evaluation of every product: each variant's weight_grad and input_grad on single planes
// over an edge sweep (output and input widths on and around 1-3 vector widths, heights
// across the 4-row blocks and 8-row strips, stride 1, 2 and 3, dilation, uneven and
// over-sized padding, the fixed 3x3/5x5 forms and the general one), the multiplier, Inf/NaN
// inputs; then conv_weight_gradient / conv_input_gradient on the depthwise path (the choice
// per ISA, chunks of images, depth slices, accumulation, empty batches, thread counts, the
// fused pass of conv_gradients).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "fastdl/conv_backward.h"
#include "fastdl/threadpool.h"
#include "fastdl/variants.h"
#include "test_util.h"

namespace {

using fdl::ConvGeometry;
using fdl::Size3;
using fdl_test::random_vector;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kCanary = -12345.0f;

using fdl_test::ThreadCountGuard;

// A depthwise layer: channels C, multiplier m (C*m outputs), a 2-D window (depth slices
// `depth` with a kernel of depth 1).
struct DwCase {
  std::size_t batch = 1, channels = 1, multiplier = 1, depth = 1;
  std::size_t h = 5, w = 5, kh = 3, kw = 3, sh = 1, sw = 1, dh = 1, dw = 1;
  std::size_t pt = 1, pb = 1, pl = 1, pr = 1;

  ConvGeometry geometry() const {
    ConvGeometry g;
    g.in_channels = g.groups = channels;
    g.out_channels = channels * multiplier;
    g.kernel = {1, kh, kw}, g.stride = {1, sh, sw}, g.dilation = {1, dh, dw};
    g.pad_before = {0, pt, pl}, g.pad_after = {0, pb, pr};
    return g;
  }
  Size3 in() const { return {depth, h, w}; }
  bool fits() const {
    return h + pt + pb >= dh * (kh - 1) + 1 && w + pl + pr >= dw * (kw - 1) + 1;
  }
  std::string str() const {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "n%zu c%zu m%zu depth%zu in %zux%zu k %zux%zu s %zux%zu d %zux%zu pad t%zu "
                  "b%zu l%zu r%zu",
                  batch, channels, multiplier, depth, h, w, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr);
    return buf;
  }
};

// Double evaluation of dx, dw (with the sums of |products| each entry adds, for the
// tolerance) by visiting every product of the convolution.
struct Expected {
  std::vector<double> dx, dx_abs, dw, dw_abs;
};

Expected expected(const DwCase& c, const std::vector<float>& x, const std::vector<float>& w,
                  const std::vector<float>& dy) {
  const ConvGeometry g = c.geometry();
  const Size3 out = g.out_size(c.in());
  const std::size_t O = g.out_channels, taps = c.kh * c.kw;
  const std::size_t plane = c.h * c.w, oplane = out[1] * out[2];
  Expected e;
  e.dx.assign(x.size(), 0.0), e.dx_abs.assign(x.size(), 0.0);
  e.dw.assign(w.size(), 0.0), e.dw_abs.assign(w.size(), 0.0);
  for (std::size_t n = 0; n < c.batch; ++n)
    for (std::size_t co = 0; co < O; ++co)
      for (std::size_t z = 0; z < c.depth; ++z)
        for (std::size_t oh = 0; oh < out[1]; ++oh)
          for (std::size_t ow = 0; ow < out[2]; ++ow)
            for (std::size_t ky = 0; ky < c.kh; ++ky)
              for (std::size_t kx = 0; kx < c.kw; ++kx) {
                const long ih = long(oh * c.sh + ky * c.dh) - long(c.pt);
                const long iw = long(ow * c.sw + kx * c.dw) - long(c.pl);
                if (ih < 0 || iw < 0 || ih >= long(c.h) || iw >= long(c.w)) continue;
                const std::size_t xi = ((n * c.channels + co / c.multiplier) * c.depth + z) * plane +
                                       std::size_t(ih) * c.w + std::size_t(iw);
                const std::size_t yi = ((n * O + co) * c.depth + z) * oplane + oh * out[2] + ow;
                const std::size_t wi = co * taps + ky * c.kw + kx;
                const double pw = double(dy[yi]) * x[xi], px = double(dy[yi]) * w[wi];
                e.dw[wi] += pw, e.dw_abs[wi] += std::fabs(pw);
                e.dx[xi] += px, e.dx_abs[xi] += std::fabs(px);
              }
  return e;
}

// |got - want| within float32 sums' rounding of the products' magnitudes (NaN == NaN).
::testing::AssertionResult close(const std::vector<float>& got, const std::vector<double>& want,
                                 const std::vector<double>& abs, double rel, const char* what) {
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i]) && std::isnan(got[i])) continue;
    if (std::isinf(want[i]) && got[i] == want[i]) continue;
    const double tol = rel * abs[i] + 1e-6;
    if (!(std::fabs(got[i] - want[i]) <= tol))
      return ::testing::AssertionFailure()
             << what << "[" << i << "] = " << got[i] << ", expected " << want[i] << " (tol " << tol
             << ")";
  }
  return ::testing::AssertionSuccess();
}

std::size_t lanes_of(fdl::Isa isa) {
  return isa == fdl::Isa::kAvx512 ? 16 : isa == fdl::Isa::kAvx2 ? 8 : 4;
}

// The plane kernels of variant v on case c (one channel's planes): dw through weight_grad
// over all images, dx through input_grad per image. Checks both and that nothing was
// written past either output.
void check_planes(const fdl::DepthwiseBackwardVariant& v, const DwCase& c,
                  const std::vector<float>& x, const std::vector<float>& dy) {
  const ConvGeometry g = c.geometry();
  const Size3 out = g.out_size(c.in());
  const std::size_t taps = c.kh * c.kw, m = c.multiplier;
  const std::size_t plane = c.h * c.w, oplane = out[1] * out[2];
  const auto w = random_vector(m * taps, 77);
  const Expected e = expected(c, x, w, dy);
  std::vector<double> dw(m * taps + 1, 0.0);
  dw.back() = kCanary;
  for (std::size_t j = 0; j < m; ++j)
    v.weight_grad(g, x.data(), plane, dy.data() + j * oplane, m * oplane, c.batch, c.h, c.w,
                  dw.data() + j * taps);
  ASSERT_EQ(dw.back(), kCanary) << v.name << " dw past the end " << c.str();
  std::vector<float> dwf(dw.begin(), dw.end() - 1);
  ASSERT_TRUE(close(dwf, e.dw, e.dw_abs, 1e-5, "dw")) << v.name << " " << c.str();
  std::vector<float> dx(x.size() + 1, 99.0f);
  dx.back() = kCanary;
  for (std::size_t n = 0; n < c.batch; ++n)
    v.input_grad(g, dy.data() + n * m * oplane, oplane, m, w.data(), c.h, c.w,
                 dx.data() + n * plane);
  ASSERT_EQ(dx.back(), kCanary) << v.name << " dx past the end " << c.str();
  dx.pop_back();
  ASSERT_TRUE(close(dx, e.dx, e.dx_abs, 1e-5, "dx")) << v.name << " " << c.str();
}

class DepthwiseBackwardVariant : public fdl_test::VariantTest<fdl::DepthwiseBackwardVariant> {};

// Every vector path at its edges: output widths 1 to 3x the vector width +1, inputs for
// stride 1, 2 and 3, the fixed 3x3 / 5x5 forms (stride 1 and 2, dilation 1) and the
// general form (2x2, 1x3, 3x1, 4x4, dilation 2), padding 0, half, odd and larger than the
// window, heights across blocks and strips, multiplier 1 and 2.
TEST_P(DepthwiseBackwardVariant, EdgeSweepMatchesDoubleEvaluation) {
  const auto& v = GetParam();
  const std::size_t lanes = lanes_of(v.isa);
  const std::size_t kernels[][2] = {{3, 3}, {5, 5}, {2, 2}, {1, 3}, {3, 1}, {4, 4}};
  unsigned seed = 1;
  int checked = 0;
  for (const auto& k : kernels)
    for (std::size_t s : {1, 2, 3})
      for (std::size_t dil : {1, 2})
        for (std::size_t ow = 1; ow <= 3 * lanes + 1; ow += (ow < 3 || ow + 2 >= lanes) ? 1 : 3) {
          DwCase c;
          c.kh = k[0], c.kw = k[1], c.sh = c.sw = s, c.dh = c.dw = dil;
          c.h = 1 + (ow * 7 + k[0] + s) % 19;  // 1..19: partial and whole blocks, strips
          c.pl = ow % 4 == 0 ? 0 : (ow % 4 == 1 ? c.kw / 2 : (ow % 4 == 2 ? 1 : c.kw + 1));
          c.pr = (ow + 1) % c.kw;
          c.pt = (ow + s) % 2 ? c.kh / 2 : (ow % 5 == 0 ? c.kh + 1 : 0);
          c.pb = c.kh - 1 - std::min(c.kh - 1, c.pt);
          // Input width giving about ow outputs: (ow - 1) * s + window - pads, +/- 1.
          const long span = long((ow - 1) * s + dil * (c.kw - 1) + 1) - long(c.pl + c.pr);
          c.w = std::size_t(std::max(1L, span + long(ow % 3) - 1));
          c.multiplier = ow % 5 == 3 ? 2 : 1;
          c.batch = 1 + ow % 2;
          if (!c.fits()) continue;
          const Size3 out = c.geometry().out_size(c.in());
          const auto x = random_vector(c.batch * c.h * c.w, ++seed);
          const auto dy = random_vector(c.batch * c.multiplier * out[1] * out[2], ++seed);
          check_planes(v, c, x, dy);
          if (HasFatalFailure()) return;
          ++checked;
        }
  EXPECT_GT(checked, 300);
}

// MobileNet's planes (112, 56, 28, 14, 7) through the fixed forms, whole rows of vectors
// and partial ones, several images into one channel's sums.
TEST_P(DepthwiseBackwardVariant, MobileNetPlanes) {
  const auto& v = GetParam();
  unsigned seed = 100;
  for (std::size_t size : {112, 56, 28, 14, 7})
    for (std::size_t k : {3, 5})
      for (std::size_t s : {1, 2}) {
        DwCase c;
        c.batch = size > 28 ? 2 : 5;
        c.h = c.w = size, c.kh = c.kw = k, c.sh = c.sw = s;
        c.pt = c.pl = k / 2, c.pb = c.pr = k / 2 - (s == 2 ? 1 : 0);  // TF 'same' on stride 2
        const Size3 out = c.geometry().out_size(c.in());
        const auto x = random_vector(c.batch * c.h * c.w, ++seed);
        const auto dy = random_vector(c.batch * out[1] * out[2], ++seed);
        check_planes(v, c, x, dy);
        if (HasFatalFailure()) return;
      }
}

// Inf/NaN in x: a value no valid output reads leaves dw finite (the lanes past a row's end
// are masked, not multiplied by zero); one it reads makes the taps reading it NaN or Inf as
// the double evaluation does. Inf in dy flows into dx and dw likewise.
TEST_P(DepthwiseBackwardVariant, NonFiniteValuesFlowAsTheProductsSay) {
  const auto& v = GetParam();
  const std::size_t lanes = lanes_of(v.isa);
  for (std::size_t k : {3, 2})
    for (std::size_t s : {1, 2})
      for (std::size_t width : {lanes - 1, lanes + 3, 2 * lanes + 1}) {
        DwCase c;
        c.kh = c.kw = k, c.sh = c.sw = s, c.pt = c.pb = 0, c.pl = c.pr = 0;
        c.h = 6, c.w = width;
        if (!c.fits()) continue;
        const Size3 out = c.geometry().out_size(c.in());
        auto x = random_vector(c.h * c.w, 5);
        auto dy = random_vector(out[1] * out[2], 6);
        const std::size_t last_read = (out[2] - 1) * s + (k - 1);
        for (std::size_t col = last_read + 1; col < c.w; ++col) x[2 * c.w + col] = kInf;
        x[c.w + c.w / 2] = kNan;  // read: its taps' dw are NaN
        check_planes(v, c, x, dy);
        if (HasFatalFailure()) return;
        x = random_vector(c.h * c.w, 7);
        dy[std::min(out[2] + 1, dy.size() - 1)] = kInf;  // one output row: its last
        check_planes(v, c, x, dy);
        if (HasFatalFailure()) return;
      }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, DepthwiseBackwardVariant,
                         ::testing::ValuesIn(fdl::depthwise_backward_variants()),
                         fdl_test::VariantName());

// ------------------------------------------------------------ through the entry points

// conv_weight_gradient / conv_input_gradient with `algorithm` on microkernel uk, against the
// double evaluation; db against the plain sums; conv_gradients gives the same bits.
void check_entry_points(const fdl::GemmUkernel& uk, const DwCase& c,
                        fdl::ConvGradAlgorithm algorithm, bool accumulate) {
  const ConvGeometry g = c.geometry();
  const Size3 out = g.out_size(c.in());
  const std::size_t O = g.out_channels, taps = c.kh * c.kw;
  const std::size_t L = fdl::volume(out);
  const auto x = random_vector(c.batch * c.channels * fdl::volume(c.in()), 11);
  const auto w = random_vector(O * taps, 12);
  const auto dy = random_vector(c.batch * O * L, 13);
  Expected e = expected(c, x, w, dy);
  std::vector<double> db_want(O, accumulate ? 0.5 : 0.0), db_abs(O, 0.0);
  for (std::size_t n = 0; n < c.batch; ++n)
    for (std::size_t co = 0; co < O; ++co)
      for (std::size_t l = 0; l < L; ++l) {
        db_want[co] += dy[(n * O + co) * L + l];
        db_abs[co] += std::fabs(dy[(n * O + co) * L + l]);
      }
  if (accumulate)
    for (auto& d : e.dw) d += 0.5;
  std::vector<float> dw(O * taps, accumulate ? 0.5f : 99.0f), db(O, accumulate ? 0.5f : 99.0f);
  std::vector<float> dx(x.size() + 1, 99.0f);
  dx.back() = kCanary;
  fdl::conv_weight_gradient(uk, g, x.data(), c.batch, c.in(), dy.data(), dw.data(), db.data(),
                            accumulate, algorithm);
  fdl::conv_input_gradient(uk, g, w.data(), c.batch, c.in(), dy.data(), dx.data(), algorithm);
  ASSERT_EQ(dx.back(), kCanary) << uk.name << " " << c.str();
  dx.pop_back();
  const std::string where = std::string(uk.name) + " " + c.str();
  ASSERT_TRUE(close(dw, e.dw, e.dw_abs, 1e-5, "dw")) << where;
  ASSERT_TRUE(close(db, db_want, db_abs, 1e-5, "db")) << where;
  ASSERT_TRUE(close(dx, e.dx, e.dx_abs, 1e-5, "dx")) << where;
  // All three at once (the depthwise layers' fused pass): the same sums in the same order.
  std::vector<float> dw2(O * taps, accumulate ? 0.5f : 99.0f), db2(O, accumulate ? 0.5f : 99.0f);
  std::vector<float> dx2(x.size() + 1, 99.0f);
  dx2.back() = kCanary;
  fdl::conv_gradients(uk, g, x.data(), w.data(), c.batch, c.in(), dy.data(), dx2.data(),
                      dw2.data(), db2.data(), accumulate, algorithm);
  ASSERT_EQ(dx2.back(), kCanary) << where;
  dx2.pop_back();
  EXPECT_EQ(dx2, dx) << where;
  EXPECT_EQ(dw2, dw) << where;
  EXPECT_EQ(db2, db) << where;
}

class DepthwiseGradientPath : public fdl_test::VariantTest<fdl::GemmUkernel> {};

// kAuto takes the depthwise kernels of the GEMM's ISA (not for the reference GEMM); forced
// for every ISA; never for grouped or depth-windowed layers.
TEST_P(DepthwiseGradientPath, ChoosesTheDepthwiseKernelsAsConvPlanDoes) {
  const auto& uk = GetParam();
  using A = fdl::ConvGradAlgorithm;
  DwCase c;
  c.channels = 4, c.multiplier = 2;
  const ConvGeometry g = c.geometry();
  const auto* picked = fdl::depthwise_gradient_variant(uk, g, A::kAuto);
  if (uk.isa == fdl::Isa::kRef) {
    EXPECT_EQ(picked, nullptr);
  } else {
    ASSERT_NE(picked, nullptr);
    EXPECT_EQ(picked->isa, uk.isa);
  }
  const auto* forced = fdl::depthwise_gradient_variant(uk, g, A::kDepthwise);
  ASSERT_NE(forced, nullptr);
  EXPECT_EQ(forced, &fdl::variant_for(fdl::depthwise_backward_variants(), uk.isa));
  EXPECT_EQ(fdl::depthwise_gradient_variant(uk, g, A::kGemm), nullptr);
  ConvGeometry grouped = g;
  grouped.groups = 2;
  EXPECT_EQ(fdl::depthwise_gradient_variant(uk, grouped, A::kDepthwise), nullptr);
  ConvGeometry deep = g;
  deep.kernel[0] = 2;
  EXPECT_EQ(fdl::depthwise_gradient_variant(uk, deep, A::kDepthwise), nullptr);
  ConvGeometry ragged = g;  // 8 outputs from 3 channels is not depthwise
  ragged.in_channels = ragged.groups = 3, ragged.out_channels = 8;
  EXPECT_FALSE(fdl::is_depthwise_gradient(ragged));
}

TEST_P(DepthwiseGradientPath, MatchesDoubleEvaluation) {
  const auto& uk = GetParam();
  using A = fdl::ConvGradAlgorithm;
  DwCase c;
  c.batch = 3, c.channels = 5, c.h = 11, c.w = 13;
  for (A a : {A::kAuto, A::kDepthwise, A::kGemm}) {
    check_entry_points(uk, c, a, false);
    if (HasFatalFailure()) return;
  }
  DwCase m2 = c;  // multiplier 2, stride 2, uneven padding, dilation
  m2.multiplier = 2, m2.sh = m2.sw = 2, m2.pt = 0, m2.pb = 2, m2.pl = 2, m2.pr = 1, m2.dh = 2;
  check_entry_points(uk, m2, A::kDepthwise, false);
  check_entry_points(uk, m2, A::kDepthwise, true);
  DwCase deep = c;  // depth slices: a 3-D input with a 1 x k x k window
  deep.depth = 3, deep.channels = 2, deep.multiplier = 3, deep.kh = 5, deep.kw = 5, deep.pt = 2;
  check_entry_points(uk, deep, A::kDepthwise, false);
  DwCase conv1d = c;  // 1-D: height 1
  conv1d.h = 1, conv1d.kh = 1, conv1d.pt = conv1d.pb = 0, conv1d.w = 70, conv1d.kw = 7;
  conv1d.pl = 6, conv1d.pr = 0, conv1d.dw = 3;
  check_entry_points(uk, conv1d, A::kDepthwise, false);
  DwCase empty = c;
  empty.batch = 0;
  check_entry_points(uk, empty, A::kDepthwise, false);
  check_entry_points(uk, empty, A::kDepthwise, true);
}

// Several chunks of images per channel (32K outputs per task) on 1, 2 and 3 threads: the
// sums do not depend on the thread count.
TEST_P(DepthwiseGradientPath, ChunksOfImagesAndThreadCounts) {
  const auto& uk = GetParam();
  ThreadCountGuard guard;
  DwCase c;
  c.batch = 9, c.channels = 3, c.h = c.w = 70;  // 4900 outputs an image: 6 per chunk
  std::vector<float> first;
  for (int threads : {1, 2, 3}) {
    fdl::set_num_threads(threads);
    check_entry_points(uk, c, fdl::ConvGradAlgorithm::kDepthwise, false);
    if (HasFatalFailure()) return;
    const ConvGeometry g = c.geometry();
    const auto x = random_vector(c.batch * c.channels * c.h * c.w, 21);
    const auto dy = random_vector(c.batch * c.channels * c.h * c.w, 22);
    std::vector<float> dw(c.channels * 9);
    fdl::conv_weight_gradient(uk, g, x.data(), c.batch, c.in(), dy.data(), dw.data(), nullptr,
                              false, fdl::ConvGradAlgorithm::kDepthwise);
    if (first.empty()) first = dw;
    EXPECT_EQ(dw, first) << threads << " threads";
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, DepthwiseGradientPath,
                         ::testing::ValuesIn(fdl::gemm_variants()), fdl_test::VariantName());

}  // namespace
