// The gradients of the dense family against double-precision references: every
// activation's backward (every variant, sizes around the vector width, the kinks, in
// place), softmax/log_softmax backward along rows and columns, and linear_backward on every
// GEMM variant (sizes around the register tile, accumulation, no dx / no db, empty batch).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "fastdl/activation.h"
#include "fastdl/gemm.h"
#include "fastdl/linear.h"
#include "test_util.h"

namespace {

using fdl::Activation;
constexpr float kAlpha = 0.7f;

const Activation kAll[] = {Activation::kNone,    Activation::kRelu,      Activation::kRelu6,
                           Activation::kLeakyRelu, Activation::kSigmoid, Activation::kTanh,
                           Activation::kSilu,    Activation::kElu,       Activation::kHardSwish};

// dy * act'(x) in double from the input x (PyTorch's values at the kinks).
double derivative(double x, Activation act, double alpha) {
  const double s = 1 / (1 + std::exp(-x));
  switch (act) {
    case Activation::kNone: return 1;
    case Activation::kRelu: return x > 0 ? 1 : 0;
    case Activation::kRelu6: return x > 0 && x < 6 ? 1 : 0;
    case Activation::kLeakyRelu: return x > 0 ? 1 : alpha;
    case Activation::kSigmoid: return s * (1 - s);
    case Activation::kTanh: return 1 - std::tanh(x) * std::tanh(x);
    case Activation::kSilu: return s * (1 + x * (1 - s));
    case Activation::kElu: return x > 0 ? 1 : alpha * std::exp(x);
    case Activation::kHardSwish: return x <= -3 ? 0 : (x >= 3 ? 1 : x / 3 + 0.5);
  }
  return 1;
}

// What the kernel reads for x: the activation's output or its input.
std::vector<float> operand(const std::vector<float>& x, Activation act) {
  if (!fdl::backward_reads_output(act)) return x;
  std::vector<float> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = fdl::activate_ref(x[i], act, kAlpha);
  return y;
}

class BackwardVariant : public fdl_test::VariantTest<fdl::ActivationVariant> {};

TEST_P(BackwardVariant, ActivationGradientsMatchDoubleReference) {
  const auto& v = GetParam();
  const std::size_t w = v.width;
  for (Activation act : kAll) {
    for (std::size_t n : {std::size_t(1), w - 1 ? w - 1 : 2, w, w + 1, 2 * w + 3,
                          std::size_t(200)}) {
      auto x = fdl_test::random_vector(n, 3);
      for (auto& e : x) e *= 8.0f;  // past every kink (relu6's 6, hard_swish's +-3)
      if (n >= 8) {  // the kinks themselves
        x[0] = 0.0f; x[1] = 6.0f; x[2] = -3.0f; x[3] = 3.0f; x[4] = -0.0f;
      }
      const auto dy = fdl_test::random_vector(n, 4);
      const auto t = operand(x, act);
      std::vector<float> dx(n + 1, 123.0f);
      v.activation_backward(n, t.data(), dy.data(), dx.data(), act, kAlpha);
      for (std::size_t i = 0; i < n; ++i) {
        // Output-based gradients see y rounded to float: compare with the derivative
        // at that y (sigmoid, tanh), not at x.
        double want;
        if (act == Activation::kSigmoid) want = dy[i] * (double(t[i]) * (1 - double(t[i])));
        else if (act == Activation::kTanh) want = dy[i] * (1 - double(t[i]) * t[i]);
        else want = dy[i] * derivative(x[i], act, kAlpha);
        EXPECT_NEAR(dx[i], want, 1e-6 + 3e-7 * std::fabs(want))
            << v.name << " act " << int(act) << " n " << n << " at " << i << " x " << x[i];
      }
      EXPECT_EQ(dx[n], 123.0f) << "wrote past the end";
      std::vector<float> inplace = dy;
      v.activation_backward(n, t.data(), inplace.data(), inplace.data(), act, kAlpha);
      for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(inplace[i], dx[i]) << "in place";
    }
  }
}

void check_softmax_backward(const fdl::ActivationVariant& v, std::size_t outer, std::size_t n,
                            std::size_t inner, float scale, bool log) {
  const std::size_t size = outer * n * inner;
  auto x = fdl_test::random_vector(size, 7);
  for (auto& e : x) e *= 5.0f;
  std::vector<float> y(size);
  fdl::activation_best().softmax(outer, n, inner, x.data(), y.data(), scale, log);
  const auto dy = fdl_test::random_vector(size, 8);
  std::vector<float> dx(size + 1, 123.0f);
  v.softmax_backward(outer, n, inner, y.data(), dy.data(), dx.data(), scale, log);
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t c = 0; c < inner; ++c) {
      auto at = [&](std::size_t k) { return (o * n + k) * inner + c; };
      double sum = 0;
      for (std::size_t k = 0; k < n; ++k) sum += log ? dy[at(k)] : double(dy[at(k)]) * y[at(k)];
      for (std::size_t k = 0; k < n; ++k) {
        const double yk = y[at(k)];
        const double want = scale * (log ? dy[at(k)] - std::exp(yk) * sum : yk * (dy[at(k)] - sum));
        ASSERT_NEAR(dx[at(k)], want, 2e-6 * (1 + std::fabs(sum)))
            << v.name << " n " << n << " inner " << inner << " log " << log;
      }
    }
  EXPECT_EQ(dx[size], 123.0f) << "wrote past the end";
}

TEST_P(BackwardVariant, SoftmaxGradientsAlongRowsAndColumns) {
  const auto& v = GetParam();
  const std::size_t w = std::max(v.width, 4);
  for (bool log : {false, true}) {
    for (std::size_t n : {std::size_t(1), w - 1, w, w + 1, 2 * w + 1, std::size_t(100)})
      check_softmax_backward(v, 3, n, 1, 0.5f, log);
    for (std::size_t inner : {std::size_t(2), w - 1, w, w + 1})
      check_softmax_backward(v, 2, 9, inner, 1.0f, log);
  }
}

TEST_P(BackwardVariant, ThreadedEntryPointsMatchOneCall) {
  const auto& v = GetParam();
  const std::size_t n = 3 * 32768 + 17;
  const auto x = fdl_test::random_vector(n, 5), dy = fdl_test::random_vector(n, 6);
  std::vector<float> one(n), threaded(n);
  v.activation_backward(n, x.data(), dy.data(), one.data(), Activation::kSilu, 0);
  fdl::activation_backward(v, n, x.data(), dy.data(), threaded.data(), Activation::kSilu, 0);
  EXPECT_EQ(one, threaded);
  v.softmax_backward(n / 499, 499, 1, x.data(), dy.data(), one.data(), 1.0f, false);
  fdl::softmax_backward(v, n / 499, 499, 1, x.data(), dy.data(), threaded.data(), 1.0f, false);
  EXPECT_EQ(one, threaded);
}

INSTANTIATE_TEST_SUITE_P(AllVariants, BackwardVariant,
                         ::testing::ValuesIn(fdl::activation_variants()),
                         fdl_test::VariantName());

class LinearBackward : public fdl_test::VariantTest<fdl::GemmUkernel> {};

void check_linear_backward(const fdl::GemmUkernel& uk, std::size_t M, std::size_t K,
                           std::size_t N, bool accumulate, bool with_dx, bool with_db) {
  const auto x = fdl_test::random_vector(M * K, 11), w = fdl_test::random_vector(N * K, 12);
  const auto dy = fdl_test::random_vector(M * N, 13);
  const float start = accumulate ? 0.5f : 99.0f;  // 99: must be overwritten
  std::vector<float> dx(M * K, 99.0f), dw(N * K, start), db(N, start);
  fdl::linear_backward(uk, M, K, N, x.data(), w.data(), dy.data(), with_dx ? dx.data() : nullptr,
                       dw.data(), with_db ? db.data() : nullptr, accumulate);
  const std::string where = std::string(uk.name) + " M" + std::to_string(M) + " K" +
                            std::to_string(K) + " N" + std::to_string(N);
  const double base = accumulate ? 0.5 : 0.0;
  for (std::size_t n = 0; n < N; ++n) {
    for (std::size_t k = 0; k < K; ++k) {
      double want = base;
      for (std::size_t m = 0; m < M; ++m) want += double(dy[m * N + n]) * x[m * K + k];
      ASSERT_NEAR(dw[n * K + k], want, 1e-5 * (1 + M)) << where << " dw";
    }
    double want = base;
    for (std::size_t m = 0; m < M; ++m) want += dy[m * N + n];
    if (with_db) ASSERT_NEAR(db[n], want, 1e-5 * (1 + M)) << where << " db";
    else ASSERT_EQ(db[n], start) << "db written without being asked for";
  }
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t k = 0; k < K; ++k) {
      double want = 0;
      for (std::size_t n = 0; n < N; ++n) want += double(dy[m * N + n]) * w[n * K + k];
      if (with_dx) ASSERT_NEAR(dx[m * K + k], want, 1e-5 * (1 + N)) << where << " dx";
      else ASSERT_EQ(dx[m * K + k], 99.0f) << "dx written without being asked for";
    }
}

TEST_P(LinearBackward, MatchesDoubleReferenceAroundTheTile) {
  const auto& uk = GetParam();
  const std::size_t mr = uk.mr, nr = uk.nr;
  for (std::size_t M : {std::size_t(1), mr - 1, mr + 1, 3 * mr})
    for (std::size_t N : {std::size_t(1), nr - 1, nr + 1, 2 * nr + 3})
      for (std::size_t K : {std::size_t(1), nr + 1, std::size_t(37)})
        check_linear_backward(uk, M, K, N, false, true, true);
}

TEST_P(LinearBackward, KerasKernelLayoutGivesTheTransposedGradient) {
  const auto& uk = GetParam();
  const std::size_t M = 2 * uk.mr + 1, K = uk.nr + 3, N = 7;
  const auto x = fdl_test::random_vector(M * K, 21), dy = fdl_test::random_vector(M * N, 22);
  const auto w = fdl_test::random_vector(N * K, 23);  // W [N x K]
  std::vector<float> wt(K * N);                       // W^T [K x N]
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t k = 0; k < K; ++k) wt[k * N + n] = w[n * K + k];
  std::vector<float> dx(M * K), dw(N * K), dx_kn(M * K), dw_kn(K * N);
  fdl::linear_backward(uk, M, K, N, x.data(), w.data(), dy.data(), dx.data(), dw.data(),
                       nullptr, false);
  fdl::linear_backward(uk, M, K, N, x.data(), wt.data(), dy.data(), dx_kn.data(),
                       dw_kn.data(), nullptr, false, true);
  for (std::size_t i = 0; i < M * K; ++i) ASSERT_NEAR(dx_kn[i], dx[i], 1e-5) << "dx " << i;
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t k = 0; k < K; ++k)
      ASSERT_NEAR(dw_kn[k * N + n], dw[n * K + k], 1e-5) << "dw " << n << "," << k;
}

TEST_P(LinearBackward, AccumulatesSkipsAndTakesEmptyBatches) {
  const auto& uk = GetParam();
  check_linear_backward(uk, 13, 9, 11, true, true, true);
  check_linear_backward(uk, 13, 9, 11, false, false, false);
  check_linear_backward(uk, 0, 9, 11, false, true, true);   // gradients of nothing: zeros
  check_linear_backward(uk, 0, 9, 11, true, true, true);    // ...added to what is there
  check_linear_backward(uk, 600, 70, 40, false, true, true);  // past kc rows: several blocks
}

INSTANTIATE_TEST_SUITE_P(AllVariants, LinearBackward, ::testing::ValuesIn(fdl::gemm_variants()),
                         fdl_test::VariantName());

}  // namespace
