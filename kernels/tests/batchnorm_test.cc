// Batch-norm plane kernels of every variant (skipped where the CPU lacks its ISA) against
// the reference variant, and the batch statistics against a direct double computation.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "fastdl/activation.h"
#include "fastdl/batchnorm.h"
#include "fastdl/isa.h"
#include "test_util.h"

namespace {

class BatchNormVariant : public fdl_test::VariantTest<fdl::BatchNormVariant> {};

// Lengths 0 to 3x the widest vector (16) and +-1 around every multiple: the vector loop and
// the tail meet inside the tested sizes; every activation; a NaN.
TEST_P(BatchNormVariant, PlaneKernelMatchesReference) {
  const fdl::BatchNormVariant& v = GetParam();
  const auto& ref = fdl::batchnorm_variants().back();
  ASSERT_EQ(ref.isa, fdl::Isa::kRef);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> d(-4.0f, 4.0f);
  for (std::size_t n = 0; n <= 49; ++n) {
    for (int act = 0; act <= 8; ++act) {
      std::vector<float> x(n), y(n + 1, 7.0f), want(n);
      for (auto& e : x) e = d(rng);
      if (n > 2) x[2] = NAN;
      const auto a = static_cast<fdl::Activation>(act);
      v.plane(x.data(), n, 1.5f, -0.25f, a, 0.1f, y.data());
      ref.plane(x.data(), n, 1.5f, -0.25f, a, 0.1f, want.data());
      EXPECT_EQ(y[n], 7.0f) << "wrote past the end";
      for (std::size_t i = 0; i < n; ++i) {
        if (std::isnan(want[i])) {
          EXPECT_TRUE(std::isnan(y[i])) << v.name << " n=" << n << " i=" << i;
        } else {
          EXPECT_NEAR(y[i], want[i], 1e-5f * (1 + std::fabs(want[i])))
              << v.name << " n=" << n << " i=" << i << " act=" << act;
        }
      }
    }
  }
}

TEST(BatchNorm, ReferenceIsTheAffineMapThenTheActivation) {
  const auto& ref = fdl::batchnorm_variants().back();
  const float x[3] = {-2.0f, 0.5f, 3.0f};
  float y[3];
  ref.plane(x, 3, 2.0f, 1.0f, fdl::Activation::kRelu, 0.0f, y);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 2.0f);
  EXPECT_EQ(y[2], 7.0f);
}

INSTANTIATE_TEST_SUITE_P(AllVariants, BatchNormVariant,
                         ::testing::ValuesIn(fdl::batchnorm_variants()),
                         fdl_test::VariantName());

TEST(BatchNorm, ApplyAndStatistics) {
  const std::size_t batch = 3, channels = 4, spatial = 13;
  std::vector<float> x(batch * channels * spatial), y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37 * i) * (1 + i % 5);
  std::vector<double> mean(channels), var(channels);
  fdl::batch_norm_statistics(x.data(), batch, channels, spatial, mean.data(), var.data());
  std::vector<float> scale(channels), shift(channels);
  for (std::size_t c = 0; c < channels; ++c) {
    double m = 0, v = 0;
    for (std::size_t n = 0; n < batch; ++n)
      for (std::size_t i = 0; i < spatial; ++i) m += x[(n * channels + c) * spatial + i];
    m /= batch * spatial;
    for (std::size_t n = 0; n < batch; ++n)
      for (std::size_t i = 0; i < spatial; ++i) {
        const double dlt = x[(n * channels + c) * spatial + i] - m;
        v += dlt * dlt;
      }
    v /= batch * spatial;
    EXPECT_NEAR(mean[c], m, 1e-12);
    EXPECT_NEAR(var[c], v, 1e-12);
    scale[c] = static_cast<float>(1 / std::sqrt(v + 1e-5));
    shift[c] = static_cast<float>(-m / std::sqrt(v + 1e-5));
  }
  fdl::batch_norm_apply(x.data(), batch, channels, spatial, scale.data(), shift.data(),
                        fdl::Activation::kNone, 0.0f, y.data());
  // Normalised: each channel now has mean 0 and variance 1.
  std::vector<double> m2(channels), v2(channels);
  fdl::batch_norm_statistics(y.data(), batch, channels, spatial, m2.data(), v2.data());
  for (std::size_t c = 0; c < channels; ++c) {
    EXPECT_NEAR(m2[c], 0.0, 1e-5);
    EXPECT_NEAR(v2[c], 1.0, 1e-4);
  }
}

}  // namespace
