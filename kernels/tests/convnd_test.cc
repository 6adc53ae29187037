// fdl::Conv3dPlan (im2col and Winograd paths) and fdl::ConvTransposePlan (1-D, 2-D and 3-D
// as 3-D with unit axes) for every GEMM variant against naive double-precision loops; the
// N-d im2col against naive loops and col2im as its adjoint. Shapes stay small: these also
// run under qemu-aarch64.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "fastdl/activation.h"
#include "fastdl/conv3d.h"
#include "fastdl/conv_transpose.h"
#include "fastdl/gemm.h"
#include "fastdl/isa.h"
#include "fastdl/threadpool.h"
#include "test_util.h"

namespace {

using fdl::Size3;
using fdl_test::random_vector;
constexpr float kAlpha = 0.1f;

struct NdCase {
  std::size_t batch, cin, cout, groups;
  Size3 in, k, s, d, pb, pa;
  fdl::Activation act = fdl::Activation::kNone;
  bool bias = true;

  fdl::Conv3dGeometry geometry() const {
    fdl::Conv3dGeometry g;
    g.in_channels = cin, g.out_channels = cout, g.groups = groups;
    g.kernel = k, g.stride = s, g.dilation = d, g.pad_before = pb, g.pad_after = pa;
    return g;
  }
  std::string str() const {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "n%zu c%zu->%zu g%zu in %zux%zux%zu k %zux%zux%zu s %zux%zux%zu d %zux%zux%zu",
                  batch, cin, cout, groups, in[0], in[1], in[2], k[0], k[1], k[2], s[0], s[1],
                  s[2], d[0], d[1], d[2]);
    return buf;
  }
};

double act_ref(double v, fdl::Activation act) {
  return fdl::activate_ref(static_cast<float>(v), act, kAlpha);
}

// Naive forward convolution: x [N][Cin][in], w [Cout][Cin/g][k] -> [N][Cout][out].
std::vector<double> naive_conv(const NdCase& c, const std::vector<float>& x,
                               const std::vector<float>& w, const float* b) {
  const auto g = c.geometry();
  const Size3 out = g.out_size(c.in);
  const std::size_t cin_g = c.cin / c.groups, cout_g = c.cout / c.groups;
  std::vector<double> y(c.batch * c.cout * fdl::volume(out));
  std::size_t i = 0;
  for (std::size_t n = 0; n < c.batch; ++n)
    for (std::size_t o = 0; o < c.cout; ++o)
      for (std::size_t z = 0; z < out[0]; ++z)
        for (std::size_t yy = 0; yy < out[1]; ++yy)
          for (std::size_t xx = 0; xx < out[2]; ++xx, ++i) {
            double s = b ? b[o] : 0.0;
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
            y[i] = act_ref(s, c.act);
          }
  return y;
}

// Naive transposed convolution: x [N][Cin][in], w [Cin][Cout/g][k] -> [N][Cout][out].
std::vector<double> naive_conv_transpose(const NdCase& c, const Size3& out,
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
  for (auto& v : y) v = act_ref(v, c.act);
  return y;
}

// |got - want| within float32 rounding of a sum of `terms` products of magnitude <= 1.
void expect_close(const std::vector<float>& got, const std::vector<double>& want,
                  std::size_t terms, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const double tol = 1e-5 + 4e-6 * terms;
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol) << what << " at " << i;
}

const Size3 k1{1, 1, 1};
const Size3 z3{0, 0, 0};

std::vector<NdCase> conv3d_cases() {
  using A = fdl::Activation;
  return {
      {2, 3, 4, 1, {4, 5, 6}, {3, 3, 3}, k1, k1, k1, k1},
      {1, 4, 6, 2, {5, 4, 7}, {2, 3, 1}, {2, 1, 3}, {1, 2, 1}, {1, 0, 2}, {0, 2, 1}, A::kRelu},
      {2, 5, 7, 1, {3, 3, 3}, k1, k1, k1, z3, z3, A::kSigmoid},  // pointwise
      {1, 6, 6, 6, {4, 6, 5}, {3, 3, 3}, {1, 2, 1}, k1, k1, k1, A::kNone, false},  // depthwise
      {1, 8, 9, 1, {4, 6, 7}, {3, 3, 3}, k1, k1, k1, k1, A::kLeakyRelu},  // Winograd F2/F4
      {2, 9, 8, 1, {3, 9, 10}, {3, 3, 3}, k1, k1, {0, 1, 2}, {2, 1, 0}, A::kTanh},  // Winograd
      {1, 8, 8, 1, {2, 3, 3}, {3, 3, 3}, k1, k1, {1, 1, 1}, {1, 1, 1}},  // tiny Winograd
  };
}

class NdVariant : public ::testing::TestWithParam<fdl::GemmUkernel> {
 protected:
  const fdl::GemmUkernel& uk() const { return GetParam(); }
  void SetUp() override {
    if (!fdl::cpu_supports(GetParam().isa))
      GTEST_SKIP() << "CPU lacks " << fdl::isa_name(GetParam().isa);
  }
};

TEST_P(NdVariant, Conv3dMatchesNaiveLoops) {
  unsigned seed = 10;
  bool winograd_seen = false;
  for (const NdCase& c : conv3d_cases()) {
    const auto g = c.geometry();
    const Size3 out = g.out_size(c.in);
    const auto x = random_vector(c.batch * c.cin * fdl::volume(c.in), ++seed);
    const auto w = random_vector(c.cout * (c.cin / c.groups) * g.taps(), ++seed);
    const auto b = random_vector(c.cout, ++seed);
    const auto want = naive_conv(c, x, w, c.bias ? b.data() : nullptr);
    for (auto algo : {fdl::ConvAlgorithm::kAuto, fdl::ConvAlgorithm::kIm2col}) {
      fdl::Conv3dPlan plan(g, w.data(), c.bias ? b.data() : nullptr, c.act, kAlpha, &uk(), algo);
      const std::string used = plan.algorithm(c.in);
      if (algo == fdl::ConvAlgorithm::kIm2col) EXPECT_EQ(used, "im2col");
      winograd_seen = winograd_seen || used != "im2col";
      std::vector<float> y(c.batch * c.cout * fdl::volume(out) + 1, 9.0f);
      plan.run(x.data(), c.batch, c.in, y.data());
      EXPECT_EQ(y.back(), 9.0f) << "wrote past the end";
      y.pop_back();
      expect_close(y, want, (c.cin / c.groups) * g.taps(), c.str() + " " + used);
    }
  }
  if (uk().isa != fdl::Isa::kRef) EXPECT_TRUE(winograd_seen) << uk().name;
}

TEST_P(NdVariant, Conv3dWinogradKeepsNanInsideItsReceptiveField) {
  NdCase c{1, 8, 8, 1, {3, 8, 8}, {3, 3, 3}, k1, k1, k1, k1};
  const auto g = c.geometry();
  auto x = random_vector(c.cin * fdl::volume(c.in), 3);
  x[2 * 64 + 7 * 8 + 7] = std::numeric_limits<float>::quiet_NaN();  // channel 0, z 2, corner
  const auto w = random_vector(c.cout * c.cin * 27, 4);
  fdl::Conv3dPlan plan(g, w.data(), nullptr, c.act, kAlpha, &uk());
  std::vector<float> y(c.cout * fdl::volume(g.out_size(c.in)));
  plan.run(x.data(), 1, c.in, y.data());
  for (std::size_t o = 0; o < c.cout; ++o)
    for (std::size_t z = 0; z < 3; ++z)
      for (std::size_t i = 0; i < 8; ++i)
        for (std::size_t j = 0; j < 8; ++j) {
          const bool reached = z >= 1 && i >= 6 && j >= 6;
          EXPECT_EQ(std::isnan(y[((o * 3 + z) * 8 + i) * 8 + j]), reached);
        }
}

TEST_P(NdVariant, Conv3dHugeVolumesLeaveWinogradForIm2col) {
  NdCase c{1, 8, 8, 1, {64, 256, 256}, {3, 3, 3}, k1, k1, k1, k1};
  const auto w = random_vector(8 * 8 * 27, 7);
  fdl::Conv3dPlan plan(c.geometry(), w.data(), nullptr, c.act, kAlpha, &uk());
  EXPECT_EQ(std::string(plan.algorithm(c.in)), "im2col");  // workspace would be > 64 MiB
  const std::string small = plan.algorithm(Size3{4, 8, 8});
  EXPECT_EQ(small != "im2col", uk().isa != fdl::Isa::kRef) << small;
}

TEST_P(NdVariant, ConvTransposeMatchesNaiveLoops) {
  using A = fdl::Activation;
  struct T {
    NdCase c;
    Size3 extra;  // output_padding
  };
  const std::vector<T> cases = {
      {{2, 3, 4, 1, {1, 1, 7}, k1, k1, k1, z3, z3}, z3},                          // 1-D k1
      {{1, 4, 6, 2, {1, 1, 9}, {1, 1, 3}, {1, 1, 2}, {1, 1, 2}, {0, 0, 1}, {0, 0, 1}}, {0, 0, 1}},
      {{2, 5, 3, 1, {1, 6, 5}, {1, 4, 4}, {1, 2, 2}, k1, {0, 1, 1}, {0, 1, 1}, A::kRelu}, z3},
      {{1, 6, 4, 2, {1, 5, 7}, {1, 3, 2}, {1, 3, 1}, {1, 1, 2}, {0, 2, 0}, {0, 2, 0}}, {0, 2, 0}},
      {{1, 7, 14, 1, {1, 4, 4}, {1, 3, 3}, {1, 1, 1}, k1, k1, k1, A::kSilu}, z3},  // many rows
      {{2, 2, 3, 1, {3, 4, 2}, {2, 3, 2}, {2, 1, 3}, {1, 2, 1}, {1, 0, 1}, {1, 0, 1}}, {1, 0, 2}},
      {{1, 4, 4, 4, {2, 3, 3}, {3, 3, 3}, {2, 2, 2}, k1, k1, k1, A::kNone, false}, {1, 1, 0}},
      {{1, 3, 2, 1, {1, 7, 13}, {1, 4, 4}, {1, 2, 2}, k1, {0, 1, 3}, {0, 1, 3}}, {0, 1, 1}},
      {{1, 2, 3, 1, {1, 5, 11}, {1, 3, 5}, {1, 2, 2}, k1, {0, 0, 2}, {0, 0, 2}, A::kRelu}, z3},
  };
  unsigned seed = 40;
  for (const T& t : cases) {
    const NdCase& c = t.c;
    const auto g = c.geometry();
    const auto x = random_vector(c.batch * c.cin * fdl::volume(c.in), ++seed);
    const auto w = random_vector(c.cin * (c.cout / c.groups) * g.taps(), ++seed);
    const auto b = random_vector(c.cout, ++seed);
    fdl::ConvTransposePlan plan(g, w.data(), c.bias ? b.data() : nullptr, c.act, kAlpha, &uk());
    Size3 out = plan.default_out_size(c.in);
    for (int a = 0; a < 3; ++a) out[a] += t.extra[a];
    const auto want = naive_conv_transpose(c, out, x, w, c.bias ? b.data() : nullptr);
    // Column blocks of whole and partial grid rows (1 float: NR columns per block).
    for (std::size_t block : {std::size_t(1), std::size_t(65536)})
      for (int threads : {1, 3}) {
        const int saved = fdl::num_threads();
        fdl::set_num_threads(threads);
        plan.set_column_block(block);
        std::vector<float> y(c.batch * c.cout * fdl::volume(out) + 1, 9.0f);
        plan.run(x.data(), c.batch, c.in, out, y.data());
        fdl::set_num_threads(saved);
        EXPECT_EQ(y.back(), 9.0f) << "wrote past the end";
        y.pop_back();
        expect_close(y, want, c.cin * g.taps(), c.str() + " block " + std::to_string(block));
      }
  }
}

std::string variant_name(const ::testing::TestParamInfo<fdl::GemmUkernel>& info) {
  return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(AllVariants, NdVariant, ::testing::ValuesIn(fdl::gemm_variants()),
                         variant_name);

TEST(Im2colNd, MatchesNaiveLoopsAndCol2imIsItsAdjoint) {
  const std::vector<NdCase> cases = {
      {1, 2, 2, 1, {3, 4, 5}, {2, 3, 2}, {1, 2, 1}, {2, 1, 1}, {1, 0, 1}, {0, 1, 2}},
      {1, 3, 3, 1, {1, 1, 11}, {1, 1, 3}, {1, 1, 2}, {1, 1, 3}, {0, 0, 2}, {0, 0, 1}},
      {1, 1, 1, 1, {5, 3, 3}, {3, 1, 1}, {2, 1, 1}, k1, {2, 0, 0}, {2, 0, 0}},
  };
  for (const NdCase& c : cases) {
    const auto g = c.geometry();
    const Size3 out = g.out_size(c.in);
    const std::size_t L = fdl::volume(out), rows = c.cin * g.taps();
    const auto x = random_vector(c.cin * fdl::volume(c.in), 5);
    std::vector<float> cols(rows * L + 1, -5.0f);
    fdl::im2col(g, x.data(), c.in, cols.data());
    EXPECT_EQ(cols.back(), -5.0f);
    // im2col with a 1x1x1 weight per (channel, tap) is the convolution's patch matrix:
    // check it through naive_conv with one-hot weights.
    for (std::size_t r = 0; r < rows; ++r) {
      NdCase one = c;
      one.cin = 1, one.cout = 1, one.bias = false;
      std::vector<float> w(g.taps(), 0.0f), xc(x.begin() + (r / g.taps()) * fdl::volume(c.in),
                                               x.begin() + (r / g.taps() + 1) * fdl::volume(c.in));
      w[r % g.taps()] = 1.0f;
      const auto want = naive_conv(one, xc, w, nullptr);
      for (std::size_t l = 0; l < L; ++l) ASSERT_EQ(cols[r * L + l], want[l]) << c.str();
    }
    // <im2col(x), v> == <x, col2im(v)>
    const auto v = random_vector(rows * L, 6);
    std::vector<float> back(c.cin * fdl::volume(c.in) + 1, 77.0f);
    fdl::col2im(g, v.data(), c.in, back.data());
    EXPECT_EQ(back.back(), 77.0f);
    double lhs = 0, rhs = 0;
    for (std::size_t i = 0; i < rows * L; ++i) lhs += double(cols[i]) * v[i];
    for (std::size_t i = 0; i < x.size(); ++i) rhs += double(x[i]) * back[i];
    EXPECT_NEAR(lhs, rhs, 1e-4 * (1 + std::fabs(lhs))) << c.str();
  }
}

}  // namespace
