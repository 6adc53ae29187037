// The batch-norm gradient: every variant's kernels against the reference variant (lengths
// around every vector width and the float sum block), and batch_norm_backward on every
// variant against a double-precision evaluation of its formula (training and inference,
// planes and rows, one channel, no gamma, outputs left out, an empty batch, sizes that
// take the thread pool).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "fastdl/batchnorm.h"
#include "fastdl/isa.h"
#include "test_util.h"

namespace {

class BatchNormBackwardVariant : public fdl_test::VariantTest<fdl::BatchNormVariant> {};

const fdl::BatchNormVariant& ref() { return fdl::batchnorm_variants().back(); }

std::vector<std::size_t> lengths() {
  std::vector<std::size_t> n;
  for (std::size_t i = 0; i <= 49; ++i) n.push_back(i);
  for (std::size_t b : {fdl::kBatchNormSumBlock, 2 * fdl::kBatchNormSumBlock})
    for (std::size_t d : {b - 1, b, b + 1, b + 17}) n.push_back(d);
  return n;
}

TEST_P(BatchNormBackwardVariant, PlaneSumsMatchReference) {
  const auto& v = GetParam();
  for (std::size_t n : lengths()) {
    const auto x = fdl_test::random_vector(n, 1), dy = fdl_test::random_vector(n, 2);
    double s = 0.5, t = -0.25, rs = 0.5, rt = -0.25, abs_t = 0;  // the sums add to these
    v.sums(x.data(), dy.data(), n, 0.3f, &s, &t);
    ref().sums(x.data(), dy.data(), n, 0.3f, &rs, &rt);
    for (std::size_t i = 0; i < n; ++i) abs_t += std::fabs(dy[i] * (x[i] - 0.3));
    EXPECT_NEAR(s, rs, 1e-6 * (1 + n / 64.0)) << v.name << " n=" << n;
    EXPECT_NEAR(t, rt, 1e-6 * (1 + abs_t / 64)) << v.name << " n=" << n;
  }
}

TEST_P(BatchNormBackwardVariant, PlaneGradMatchesReference) {
  const auto& v = GetParam();
  for (std::size_t n : lengths()) {
    const auto x = fdl_test::random_vector(n, 3), dy = fdl_test::random_vector(n, 4);
    std::vector<float> dx(n + 1, 7.0f), want(n);
    v.grad(x.data(), dy.data(), n, -0.2f, 1.5f, -0.7f, 0.25f, dx.data());
    ref().grad(x.data(), dy.data(), n, -0.2f, 1.5f, -0.7f, 0.25f, want.data());
    EXPECT_EQ(dx[n], 7.0f) << "wrote past the end";
    for (std::size_t i = 0; i < n; ++i)
      ASSERT_NEAR(dx[i], want[i], 2e-6) << v.name << " n=" << n << " i=" << i;
    std::vector<float> inplace = dy;  // dx may alias dy
    v.grad(x.data(), inplace.data(), n, -0.2f, 1.5f, -0.7f, 0.25f, inplace.data());
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(inplace[i], dx[i]) << "in place";
  }
}

TEST_P(BatchNormBackwardVariant, RowKernelsMatchReference) {
  const auto& v = GetParam();
  for (std::size_t channels = 0; channels <= 49; ++channels) {
    for (std::size_t rows : {1, 3, 70}) {
      const std::size_t size = rows * channels;
      const auto x = fdl_test::random_vector(size, 5), dy = fdl_test::random_vector(size, 6);
      const auto mean = fdl_test::random_vector(channels, 7);
      const auto a = fdl_test::random_vector(channels, 8), p = fdl_test::random_vector(channels, 9),
                 q = fdl_test::random_vector(channels, 10);
      std::vector<float> acc(2 * channels + 1, 0.5f), racc(2 * channels, 0.5f);
      acc[2 * channels] = 7.0f;
      v.sums_rows(x.data(), dy.data(), rows, channels, mean.data(), acc.data(),
                  acc.data() + channels);
      ref().sums_rows(x.data(), dy.data(), rows, channels, mean.data(), racc.data(),
                      racc.data() + channels);
      EXPECT_EQ(acc[2 * channels], 7.0f) << "wrote past the end";
      for (std::size_t c = 0; c < 2 * channels; ++c)
        ASSERT_NEAR(acc[c], racc[c], 2e-6 * (1 + rows)) << v.name << " C=" << channels;
      std::vector<float> dx(size + 1, 7.0f), want(size);
      v.grad_rows(x.data(), dy.data(), rows, channels, mean.data(), a.data(), p.data(),
                  q.data(), dx.data());
      ref().grad_rows(x.data(), dy.data(), rows, channels, mean.data(), a.data(), p.data(),
                      q.data(), want.data());
      EXPECT_EQ(dx[size], 7.0f) << "wrote past the end";
      for (std::size_t i = 0; i < size; ++i)
        ASSERT_NEAR(dx[i], want[i], 2e-6) << v.name << " C=" << channels << " i=" << i;
    }
  }
}

struct Shape {
  std::size_t batch, channels, spatial;
};

// batch_norm_backward against the formula evaluated in double from the same float inputs.
void check_backward(const fdl::BatchNormVariant& v, Shape s, bool training, bool with_gamma) {
  const std::size_t size = s.batch * s.channels * s.spatial, m = s.batch * s.spatial;
  auto x = fdl_test::random_vector(size, 11);
  for (std::size_t i = 0; i < size; ++i) x[i] = 3.0f * x[i] + float((i / s.spatial) % s.channels);
  const auto dy = fdl_test::random_vector(size, 12);
  const auto gamma = fdl_test::random_vector(s.channels, 13);
  std::vector<double> mean(s.channels, 0.0), var(s.channels, 0.0);
  if (m) fdl::batch_norm_statistics(x.data(), s.batch, s.channels, s.spatial, mean.data(), var.data());
  std::vector<float> meanf(s.channels), inv_std(s.channels);
  for (std::size_t c = 0; c < s.channels; ++c) {
    meanf[c] = static_cast<float>(mean[c] + (training ? 0.0 : 0.1));  // running: not the batch's
    inv_std[c] = static_cast<float>(1 / std::sqrt(var[c] + 1e-3));
  }
  std::vector<float> dx(size + 1, 7.0f), dg(s.channels), db(s.channels);
  const float* g = with_gamma ? gamma.data() : nullptr;
  fdl::batch_norm_backward(x.data(), dy.data(), s.batch, s.channels, s.spatial, meanf.data(),
                           inv_std.data(), g, training, dx.data(), dg.data(), db.data(), &v);
  EXPECT_EQ(dx[size], 7.0f) << "wrote past the end";
  auto at = [&](std::size_t n, std::size_t c, std::size_t i) {
    return (n * s.channels + c) * s.spatial + i;
  };
  for (std::size_t c = 0; c < s.channels; ++c) {
    double sdy = 0, sdyxh = 0, mag = 0;
    for (std::size_t n = 0; n < s.batch; ++n)
      for (std::size_t i = 0; i < s.spatial; ++i) {
        const double xh = (double(x[at(n, c, i)]) - meanf[c]) * inv_std[c];
        sdy += dy[at(n, c, i)];
        sdyxh += dy[at(n, c, i)] * xh;
        mag += std::fabs(dy[at(n, c, i)] * xh);
      }
    EXPECT_NEAR(db[c], sdy, 1e-5 * (1 + m / 32.0)) << v.name << " c=" << c;
    EXPECT_NEAR(dg[c], sdyxh, 1e-5 * (1 + mag / 32)) << v.name << " c=" << c;
    const double k = (with_gamma ? gamma[c] : 1.0) * inv_std[c];
    for (std::size_t n = 0; n < s.batch; ++n)
      for (std::size_t i = 0; i < s.spatial; ++i) {
        const double xh = (double(x[at(n, c, i)]) - meanf[c]) * inv_std[c];
        const double want = training ? k / m * (m * double(dy[at(n, c, i)]) - sdy - xh * sdyxh)
                                     : k * dy[at(n, c, i)];
        ASSERT_NEAR(dx[at(n, c, i)], want, 2e-5 * (1 + std::fabs(k)))
            << v.name << " N,C,S=" << s.batch << "," << s.channels << "," << s.spatial
            << " training=" << training << " at " << n << "," << c << "," << i;
      }
  }
}

TEST_P(BatchNormBackwardVariant, BackwardMatchesDoubleFormula) {
  const auto& v = GetParam();
  const Shape shapes[] = {{4, 3, 13}, {2, 5, 1}, {1, 2, 17}, {7, 1, 1}, {3, 1, 5},
                          {2, 33, 1}, {9, 16, 1}, {1, 4, 1025}, {0, 3, 4}, {2, 3, 0},
                          {8, 4, 1500}, {1100, 40, 1}};
  for (const Shape& s : shapes)
    for (bool training : {true, false})
      for (bool with_gamma : {true, false}) check_backward(v, s, training, with_gamma);
}

TEST_P(BatchNormBackwardVariant, OutputsMayBeLeftOut) {
  const auto& v = GetParam();
  const std::size_t b = 3, c = 4, s = 6;
  const auto x = fdl_test::random_vector(b * c * s, 20), dy = fdl_test::random_vector(b * c * s, 21);
  const std::vector<float> mean(c, 0.1f), inv_std(c, 1.3f);
  std::vector<float> dx(b * c * s), dx2(b * c * s), dg(c), db(c);
  fdl::batch_norm_backward(x.data(), dy.data(), b, c, s, mean.data(), inv_std.data(), nullptr,
                           true, dx.data(), dg.data(), db.data(), &v);
  fdl::batch_norm_backward(x.data(), dy.data(), b, c, s, mean.data(), inv_std.data(), nullptr,
                           true, dx2.data(), nullptr, nullptr, &v);
  EXPECT_EQ(dx, dx2);
  std::vector<float> dg2(c, 9.0f), db2(c, 9.0f);
  fdl::batch_norm_backward(x.data(), dy.data(), b, c, s, mean.data(), inv_std.data(), nullptr,
                           false, nullptr, dg2.data(), db2.data(), &v);
  EXPECT_EQ(dg, dg2);
  EXPECT_EQ(db, db2);
}

INSTANTIATE_TEST_SUITE_P(AllVariants, BatchNormBackwardVariant,
                         ::testing::ValuesIn(fdl::batchnorm_variants()),
                         fdl_test::VariantName());

}  // namespace
