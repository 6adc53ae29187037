// The convolution's gradients against a double-precision direct reference: dx, dw and db
// on every GEMM variant and every algorithm (GEMM, shifted dot products), over 1-D/2-D/3-D
// geometries with groups, stride, dilation and uneven padding, pointwise layers (no
// im2col), chunks of images past the column budget and the staging budget, accumulation
// and empty batches; the shifted dot product kernels against their reference at every
// tile edge.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fastdl/conv_backward.h"
#include "fastdl/threadpool.h"
#include "test_util.h"

namespace {

using fdl::ConvGeometry;
using fdl::Size3;

struct Case {
  std::size_t batch, cin, cout, groups;
  Size3 in, kernel, stride, dilation, pad_before, pad_after;
};

// Calls fn(n, co, ci_in_group, tap index, out index, in index) for every product of the
// convolution: y[n][co][o] += w[co][ci][tap] * x[n][group*cin_g + ci][i].
template <class Fn>
void for_each_product(const ConvGeometry& g, std::size_t batch, const Size3& in, Fn fn) {
  const Size3 out = g.out_size(in);
  const std::size_t cin_g = g.in_channels / g.groups, cout_g = g.out_channels / g.groups;
  for (std::size_t n = 0; n < batch; ++n)
    for (std::size_t co = 0; co < g.out_channels; ++co)
      for (std::size_t ci = 0; ci < cin_g; ++ci)
        for (std::size_t kz = 0; kz < g.kernel[0]; ++kz)
          for (std::size_t ky = 0; ky < g.kernel[1]; ++ky)
            for (std::size_t kx = 0; kx < g.kernel[2]; ++kx)
              for (std::size_t oz = 0; oz < out[0]; ++oz)
                for (std::size_t oy = 0; oy < out[1]; ++oy)
                  for (std::size_t ox = 0; ox < out[2]; ++ox) {
                    const long iz = long(oz * g.stride[0] + kz * g.dilation[0]) - long(g.pad_before[0]);
                    const long iy = long(oy * g.stride[1] + ky * g.dilation[1]) - long(g.pad_before[1]);
                    const long ix = long(ox * g.stride[2] + kx * g.dilation[2]) - long(g.pad_before[2]);
                    if (iz < 0 || iy < 0 || ix < 0 || iz >= long(in[0]) || iy >= long(in[1]) ||
                        ix >= long(in[2]))
                      continue;
                    const std::size_t c = co / cout_g * cin_g + ci;
                    const std::size_t tap = (kz * g.kernel[1] + ky) * g.kernel[2] + kx;
                    const std::size_t o = (oz * out[1] + oy) * out[2] + ox;
                    const std::size_t i = (std::size_t(iz) * in[1] + std::size_t(iy)) * in[2] +
                                          std::size_t(ix);
                    fn(n, co, c, ci * g.taps() + tap, o, i);
                  }
}

void check(const fdl::GemmUkernel& uk, const Case& c, bool accumulate,
           fdl::ConvGradAlgorithm algorithm = fdl::ConvGradAlgorithm::kAuto) {
  ConvGeometry g;
  g.in_channels = c.cin;
  g.out_channels = c.cout;
  g.groups = c.groups;
  g.kernel = c.kernel;
  g.stride = c.stride;
  g.dilation = c.dilation;
  g.pad_before = c.pad_before;
  g.pad_after = c.pad_after;
  const std::size_t V = fdl::volume(c.in), L = fdl::volume(g.out_size(c.in));
  const std::size_t wsize = c.cout * g.weights_per_output();
  const auto x = fdl_test::random_vector(c.batch * c.cin * V, 1);
  const auto w = fdl_test::random_vector(wsize, 2);
  const auto dy = fdl_test::random_vector(c.batch * c.cout * L, 3);
  const double base = accumulate ? 0.25 : 0.0;
  std::vector<double> dx_want(x.size(), 0.0), dw_want(wsize, base), db_want(c.cout, base);
  for_each_product(g, c.batch, c.in, [&](std::size_t n, std::size_t co, std::size_t ci,
                                         std::size_t wi, std::size_t o, std::size_t i) {
    const double d = dy[(n * c.cout + co) * L + o];
    dx_want[(n * c.cin + ci) * V + i] += d * w[co * g.weights_per_output() + wi];
    dw_want[co * g.weights_per_output() + wi] += d * x[(n * c.cin + ci) * V + i];
  });
  for (std::size_t n = 0; n < c.batch; ++n)
    for (std::size_t co = 0; co < c.cout; ++co)
      for (std::size_t o = 0; o < L; ++o) db_want[co] += dy[(n * c.cout + co) * L + o];

  const float start = accumulate ? 0.25f : 99.0f;
  std::vector<float> dx(x.size(), 99.0f), dw(wsize, start), db(c.cout, start);
  fdl::conv_weight_gradient(uk, g, x.data(), c.batch, c.in, dy.data(), dw.data(), db.data(),
                            accumulate, algorithm);
  fdl::conv_input_gradient(uk, g, w.data(), c.batch, c.in, dy.data(), dx.data(), algorithm);
  const std::string where = std::string(uk.name) + " algorithm " +
                            std::to_string(static_cast<int>(algorithm)) + " batch " +
                            std::to_string(c.batch) +
                            " cin " + std::to_string(c.cin) + " cout " + std::to_string(c.cout) +
                            " groups " + std::to_string(c.groups);
  const double terms = double(c.batch) * L;
  for (std::size_t i = 0; i < wsize; ++i)
    ASSERT_NEAR(dw[i], dw_want[i], 2e-6 * (1 + terms)) << where << " dw " << i;
  for (std::size_t i = 0; i < c.cout; ++i)
    ASSERT_NEAR(db[i], db_want[i], 2e-6 * (1 + terms)) << where << " db " << i;
  for (std::size_t i = 0; i < dx.size(); ++i)
    ASSERT_NEAR(dx[i], dx_want[i], 1e-5 * (1 + c.cout * g.taps())) << where << " dx " << i;
}

const Case kCases[] = {
    // batch cin cout groups  in          kernel     stride     dilation   pad before / after
    {2, 3, 5, 1, {1, 1, 17}, {1, 1, 3}, {1, 1, 1}, {1, 1, 1}, {0, 0, 1}, {0, 0, 1}},  // 1-D
    {3, 4, 6, 2, {1, 1, 20}, {1, 1, 4}, {1, 1, 2}, {1, 1, 3}, {0, 0, 2}, {0, 0, 0}},
    {2, 3, 8, 1, {1, 9, 7}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},   // 2-D
    {2, 6, 9, 3, {1, 11, 10}, {1, 3, 2}, {1, 2, 3}, {1, 2, 1}, {0, 1, 0}, {0, 2, 1}},
    {3, 5, 5, 5, {1, 8, 8}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},   // depthwise
    {4, 16, 24, 1, {1, 6, 5}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}}, // pointwise
    {2, 8, 4, 2, {1, 7, 7}, {1, 1, 1}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}},   // 1x1 stride 2
    {2, 2, 3, 1, {4, 5, 6}, {2, 3, 2}, {1, 2, 1}, {2, 1, 1}, {1, 0, 1}, {0, 1, 1}},   // 3-D
    // Stride 1 with >= 8 input channels per group: dx as a transposed convolution
    {2, 16, 12, 2, {1, 9, 8}, {1, 3, 2}, {1, 1, 1}, {1, 2, 1}, {0, 1, 0}, {0, 2, 1}},
    {2, 8, 5, 1, {4, 5, 6}, {2, 3, 2}, {1, 1, 1}, {2, 1, 1}, {1, 0, 1}, {0, 1, 1}},
    {3, 9, 4, 1, {1, 1, 30}, {1, 1, 5}, {1, 1, 1}, {1, 1, 3}, {0, 0, 12}, {0, 0, 0}},  // causal
};

class ConvBackward : public fdl_test::VariantTest<fdl::GemmUkernel> {};

TEST_P(ConvBackward, MatchesDoubleReference) {
  for (const Case& c : kCases) check(GetParam(), c, false);
}

TEST_P(ConvBackward, AccumulatesAndTakesEmptyBatches) {
  check(GetParam(), kCases[3], true);
  Case empty = kCases[2];
  empty.batch = 0;
  check(GetParam(), empty, false);  // zeros
  check(GetParam(), empty, true);   // what was there
}

TEST_P(ConvBackward, ChunksOfImagesPastTheColumnBudget) {
  // 128 x 9 x 90 x 90 columns per image, past the budget (8M floats): one image per chunk.
  check(GetParam(), {2, 128, 2, 1, {1, 90, 90}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1},
                     {0, 1, 1}}, false);
  // 16 x 9 x 60 x 60 columns per image: chunks of 16 images and a last one of 8.
  check(GetParam(), {40, 16, 3, 1, {1, 60, 60}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1},
                     {0, 1, 1}}, false);
}

TEST_P(ConvBackward, EveryAlgorithmMatches) {
  using A = fdl::ConvGradAlgorithm;
  for (A algorithm : {A::kGemm, A::kShiftedDots}) {
    for (const Case& c : kCases) check(GetParam(), c, false, algorithm);
    check(GetParam(), kCases[2], true, algorithm);
    // 7 x 3 x 3 = 63 columns and 11 rows: every tile edge of both register tiles.
    check(GetParam(), {3, 7, 11, 1, {1, 6, 9}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 2, 0},
                       {0, 0, 2}}, false, algorithm);
  }
  // 16 x 62 x 62 staged floats per image: past the staging budget, chunks of one image.
  check(GetParam(), {5, 16, 3, 1, {1, 60, 60}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1},
                     {0, 1, 1}}, false, A::kShiftedDots);
}

// A batch smaller than the pool splits each staged chunk's rows across threads instead of
// the chunks: the same sums, bit for bit, at any thread count.
TEST_P(ConvBackward, ShiftedDotsGiveTheSameSumsAtAnyThreadCount) {
  const fdl::GemmUkernel& uk = GetParam();
  fdl::ConvGeometry g;
  g.in_channels = 6, g.out_channels = 22, g.groups = 2;
  g.kernel = {1, 3, 3}, g.pad_before = g.pad_after = {0, 1, 1};
  const Size3 in{1, 40, 37};
  for (std::size_t batch : {1, 2, 9}) {
    const auto x = fdl_test::random_vector(batch * 6 * 40 * 37, 1);
    const auto dy = fdl_test::random_vector(batch * 22 * 40 * 37, 2);
    std::vector<float> dw1(22 * 3 * 9), db1(22), dw4(dw1.size()), db4(22);
    const int saved = fdl::num_threads();
    fdl::set_num_threads(1);
    fdl::conv_weight_gradient(uk, g, x.data(), batch, in, dy.data(), dw1.data(), db1.data(),
                              false, fdl::ConvGradAlgorithm::kShiftedDots);
    fdl::set_num_threads(4);
    fdl::conv_weight_gradient(uk, g, x.data(), batch, in, dy.data(), dw4.data(), db4.data(),
                              false, fdl::ConvGradAlgorithm::kShiftedDots);
    fdl::set_num_threads(saved);
    EXPECT_EQ(dw1, dw4) << uk.name << " batch " << batch;
    EXPECT_EQ(db1, db4) << uk.name << " batch " << batch;
  }
}

// The shifted dot products on 'same'-width layers (the CIFAR CNN's 2x2 with right padding,
// left-only and both-side padding, dilation, groups, a batch past one chunk).
TEST_P(ConvBackward, ShiftedDotsOnSameWidthLayers) {
  using A = fdl::ConvGradAlgorithm;
  const Case cases[] = {
      {32, 3, 16, 1, {1, 32, 32}, {1, 2, 2}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {0, 1, 1}},
      {3, 4, 6, 2, {1, 8, 16}, {1, 3, 3}, {1, 1, 1}, {1, 1, 2}, {0, 1, 2}, {0, 1, 2}},
      {2, 5, 7, 1, {1, 6, 8}, {1, 2, 2}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {0, 0, 0}},
      {2, 3, 4, 1, {1, 4, 4}, {1, 3, 5}, {1, 1, 1}, {1, 1, 1}, {0, 1, 2}, {0, 1, 2}},
  };
  for (const Case& c : cases) check(GetParam(), c, false, A::kShiftedDots);
  check(GetParam(), cases[1], true, A::kShiftedDots);
}

class ShiftedDots : public fdl_test::VariantTest<fdl::ShiftedDotsVariant> {};

// Every rows x cols block up to past two tiles each way, planes, strides and offsets that
// are not multiples of anything, against the reference variant.
TEST_P(ShiftedDots, MatchesReferenceAtEveryTileEdge) {
  const fdl::ShiftedDotsVariant& ref = fdl::shifted_dots_variants().back();
  const std::size_t length = 48, planes = 3, row_stride = 53, dy_plane = 13 * 53 + 5;
  const std::size_t x_plane = 700;
  const auto dy = fdl_test::random_vector(planes * dy_plane, 1);
  const auto x = fdl_test::random_vector(planes * x_plane, 2);
  for (std::size_t rows = 1; rows <= 9; ++rows)
    for (std::size_t cols = 1; cols <= 13; ++cols) {
      std::vector<std::size_t> offsets(cols);
      for (std::size_t c = 0; c < cols; ++c) offsets[c] = (c * 37 + 3) % (x_plane - length);
      std::vector<float> got(rows * cols, 99.0f), want(rows * cols);
      GetParam().fn(dy.data(), rows, row_stride, x.data(), offsets.data(), cols, length, planes,
                    dy_plane, x_plane, got.data());
      ref.fn(dy.data(), rows, row_stride, x.data(), offsets.data(), cols, length, planes,
             dy_plane, x_plane, want.data());
      for (std::size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], want[i], 1e-4) << GetParam().name << " " << rows << "x" << cols
                                           << " at " << i;
    }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, ShiftedDots,
                         ::testing::ValuesIn(fdl::shifted_dots_variants()),
                         fdl_test::VariantName());

INSTANTIATE_TEST_SUITE_P(AllVariants, ConvBackward, ::testing::ValuesIn(fdl::gemm_variants()),
                         fdl_test::VariantName());

}  // namespace
