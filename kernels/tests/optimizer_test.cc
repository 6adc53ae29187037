// Every optimizer variant (src/optimizer/variants.inc) against the formulas of
// fastdl/optimizer.h in double precision: sizes around the vector width, every option
// (momentum, nesterov, centered, amsgrad, weight decay), three steps in a row; the
// threaded entry points against one call.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "fastdl/optimizer.h"
#include "test_util.h"

namespace {

using fdl::OptimizerStep;

class OptimizerVariant : public fdl_test::VariantTest<fdl::OptimizerVariant> {};

// State of one weight: w, and up to three slots (their meaning per rule).
struct State {
  std::vector<float> w, a, b, c;
  explicit State(std::size_t n, unsigned seed)
      : w(fdl_test::random_vector(n, seed)), a(n), b(n), c(n) {
    // Slots of a running optimizer: positive squared averages, small means.
    const auto r = fdl_test::random_vector(n, seed + 1);
    for (std::size_t i = 0; i < n; ++i) {
      a[i] = 0.1f + 0.1f * std::fabs(r[i]);
      b[i] = 0.2f + 0.1f * std::fabs(r[i]);
      c[i] = 0.01f * r[i];
    }
  }
};

double sq(double x) { return x * x; }

void expect_near(const std::vector<float>& got, const std::vector<double>& want,
                 const std::string& what) {
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 2e-6 * (1 + std::fabs(want[i]))) << what << " at " << i;
}

std::vector<std::size_t> sizes(const fdl::OptimizerVariant& v) {
  const std::size_t w = v.width;
  return {1, w - 1 ? w - 1 : 2, w, w + 1, 3 * w + 2, 1000};
}

TEST_P(OptimizerVariant, SgdMatchesTheFormula) {
  const auto& v = GetParam();
  for (std::size_t n : sizes(v))
    for (int mode = 0; mode < 3; ++mode) {  // plain, momentum, nesterov
      State s(n, 3);
      std::vector<double> w(s.w.begin(), s.w.end()), vel(s.a.begin(), s.a.end());
      OptimizerStep st;
      st.lr = 0.1f;
      st.momentum = mode ? 0.9f : 0.0f;
      st.nesterov = mode == 2;
      for (int step = 0; step < 3; ++step) {
        const auto g = fdl_test::random_vector(n, 10 + step);
        v.sgd(n, s.w.data(), g.data(), mode ? s.a.data() : nullptr, st);
        for (std::size_t i = 0; i < n; ++i) {
          if (!mode) { w[i] -= 0.1 * g[i]; continue; }
          vel[i] = 0.9 * vel[i] - 0.1 * g[i];
          w[i] += mode == 2 ? 0.9 * vel[i] - 0.1 * g[i] : vel[i];
        }
      }
      expect_near(s.w, w, std::string(v.name) + " sgd mode " + std::to_string(mode));
    }
}

TEST_P(OptimizerVariant, RmspropMatchesTheFormula) {
  const auto& v = GetParam();
  for (std::size_t n : sizes(v))
    for (int mode = 0; mode < 2; ++mode) {  // plain; momentum and centered
      State s(n, 4);
      std::vector<double> w(s.w.begin(), s.w.end()), r(s.a.begin(), s.a.end()),
          m(s.b.begin(), s.b.end()), a(s.c.begin(), s.c.end());
      OptimizerStep st;
      st.lr = 0.01f;
      st.rho = 0.9f;
      st.momentum = mode ? 0.5f : 0.0f;
      st.epsilon = 1e-7f;
      for (int step = 0; step < 3; ++step) {
        const auto g = fdl_test::random_vector(n, 20 + step);
        v.rmsprop(n, s.w.data(), g.data(), s.a.data(), mode ? s.b.data() : nullptr,
                  mode ? s.c.data() : nullptr, st);
        for (std::size_t i = 0; i < n; ++i) {
          r[i] = 0.9 * r[i] + 0.1 * sq(g[i]);
          double d = r[i] + 1e-7;
          if (mode) {
            a[i] = 0.9 * a[i] + 0.1 * g[i];
            d = r[i] - sq(a[i]) + 1e-7;
          }
          double inc = 0.01 * g[i] / std::sqrt(d);
          if (mode) inc = m[i] = 0.5 * m[i] + inc;
          w[i] -= inc;
        }
      }
      expect_near(s.w, w, std::string(v.name) + " rmsprop mode " + std::to_string(mode));
    }
}

TEST_P(OptimizerVariant, AdamMatchesTheFormula) {
  const auto& v = GetParam();
  for (std::size_t n : sizes(v))
    for (int mode = 0; mode < 2; ++mode) {  // plain; amsgrad with weight decay
      State s(n, 5);
      std::vector<double> w(s.w.begin(), s.w.end()), m(s.c.begin(), s.c.end()),
          vv(s.a.begin(), s.a.end()), vh(s.b.begin(), s.b.end());
      OptimizerStep st;
      st.lr = 0.01f;
      st.beta_1 = 0.9f;
      st.beta_2 = 0.999f;
      st.epsilon = 1e-7f;
      st.decay = mode ? 0.004f : 0.0f;
      for (int step = 0; step < 3; ++step) {
        const auto g = fdl_test::random_vector(n, 30 + step);
        v.adam(n, s.w.data(), g.data(), s.c.data(), s.a.data(), mode ? s.b.data() : nullptr,
               st);
        for (std::size_t i = 0; i < n; ++i) {
          if (mode) w[i] -= w[i] * 0.004;
          m[i] += (g[i] - m[i]) * (1 - 0.9f);
          vv[i] += (sq(g[i]) - vv[i]) * (1 - 0.999f);
          double use = vv[i];
          if (mode) use = vh[i] = std::max(vh[i], vv[i]);
          w[i] -= 0.01 * m[i] / (std::sqrt(use) + 1e-7);
        }
      }
      expect_near(s.w, w, std::string(v.name) + " adam mode " + std::to_string(mode));
    }
}

TEST_P(OptimizerVariant, AdagradMatchesTheFormula) {
  const auto& v = GetParam();
  for (std::size_t n : sizes(v)) {
    State s(n, 6);
    std::vector<double> w(s.w.begin(), s.w.end()), acc(s.a.begin(), s.a.end());
    OptimizerStep st;
    st.lr = 0.05f;
    st.epsilon = 1e-7f;
    for (int step = 0; step < 3; ++step) {
      const auto g = fdl_test::random_vector(n, 40 + step);
      v.adagrad(n, s.w.data(), g.data(), s.a.data(), st);
      for (std::size_t i = 0; i < n; ++i) {
        acc[i] += sq(g[i]);
        w[i] -= 0.05 * g[i] / std::sqrt(acc[i] + 1e-7);
      }
    }
    expect_near(s.w, w, std::string(v.name) + " adagrad");
  }
}

TEST_P(OptimizerVariant, ThreadedEntryPointsMatchOneCall) {
  const auto& v = GetParam();
  const std::size_t n = 5 * 65536 + 13;
  const auto g = fdl_test::random_vector(n, 7);
  State one(n, 8), threaded(n, 8);
  OptimizerStep st;
  st.lr = 0.01f;
  v.adam(n, one.w.data(), g.data(), one.a.data(), one.b.data(), nullptr, st);
  fdl::adam_update(v, n, threaded.w.data(), g.data(), threaded.a.data(), threaded.b.data(),
                   nullptr, st);
  EXPECT_EQ(one.w, threaded.w);
  EXPECT_EQ(one.b, threaded.b);
}

INSTANTIATE_TEST_SUITE_P(AllVariants, OptimizerVariant,
                         ::testing::ValuesIn(fdl::optimizer_variants()),
                         fdl_test::VariantName());

}  // namespace
