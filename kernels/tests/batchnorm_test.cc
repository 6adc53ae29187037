// Batch-norm plane kernels of every ISA this CPU runs against the scalar reference, and
// the batch statistics against a direct double computation.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "fastdl/activation.h"
#include "fastdl/batchnorm.h"
#include "fastdl/isa.h"

namespace {

TEST(BatchNorm, PlaneKernelsMatchReference) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> d(-4.0f, 4.0f);
  for (fdl::Isa isa : {fdl::Isa::kRef, fdl::Isa::kAvx2, fdl::Isa::kAvx512, fdl::Isa::kNeon}) {
    if (!fdl::cpu_supports(isa)) continue;
    const fdl::BatchNormPlaneFn plane = fdl::batch_norm_plane_kernel(isa);
    ASSERT_NE(plane, nullptr);
    for (std::size_t n : {0, 1, 3, 7, 8, 9, 15, 16, 17, 33, 100}) {
      for (int act = 0; act <= 6; ++act) {
        std::vector<float> x(n), y(n);
        for (auto& v : x) v = d(rng);
        if (n > 2) x[2] = NAN;
        plane(x.data(), n, 1.5f, -0.25f, static_cast<fdl::Activation>(act), 0.1f, y.data());
        for (std::size_t i = 0; i < n; ++i) {
          const float want =
              fdl::activate_ref(x[i] * 1.5f - 0.25f, static_cast<fdl::Activation>(act), 0.1f);
          if (std::isnan(want)) {
            EXPECT_TRUE(std::isnan(y[i])) << fdl::isa_name(isa) << " n=" << n << " i=" << i;
          } else {
            EXPECT_NEAR(y[i], want, 1e-5f * (1 + std::fabs(want)))
                << fdl::isa_name(isa) << " n=" << n << " i=" << i << " act=" << act;
          }
        }
      }
    }
  }
}

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
