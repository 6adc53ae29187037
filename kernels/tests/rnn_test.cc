// Every LSTM/GRU step variant (src/rnn/variants.inc) against a double-precision step over
// the unpacked torch-layout weights, on row counts around each ISA's tile and hidden sizes
// that are not multiples of the unit block, both k orders; and RnnPlan (2 layers,
// bidirectional, initial states or zeros, T = 0 and 1, threaded or not) against a
// double-precision model of torch.nn.LSTM / torch.nn.GRU. Small shapes: this also runs
// under qemu-aarch64.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "fastdl/isa.h"
#include "fastdl/rnn.h"
#include "fastdl/threadpool.h"
#include "test_util.h"

namespace {

using fdl::RnnKind;
using fdl_test::random_vector;

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// One step of one batch row in double: h, c (LSTM) updated in place. x: this row's input
// [in], weights in torch layout.
void step_double(RnnKind kind, std::size_t in, std::size_t H, const float* x, const float* w_ih,
                 const float* w_hh, const float* b_ih, const float* b_hh, std::vector<double>& h,
                 std::vector<double>& c) {
  const std::size_t G = fdl::rnn_gates(kind);
  std::vector<double> xi(G * H), hh(G * H);
  for (std::size_t r = 0; r < G * H; ++r) {
    double a = b_ih ? b_ih[r] : 0.0, b = b_hh ? b_hh[r] : 0.0;
    for (std::size_t k = 0; k < in; ++k) a += double(w_ih[r * in + k]) * x[k];
    for (std::size_t k = 0; k < H; ++k) b += double(w_hh[r * H + k]) * h[k];
    xi[r] = a;
    hh[r] = b;
  }
  for (std::size_t j = 0; j < H; ++j) {
    if (kind == RnnKind::kLstm) {
      const double i = sigmoid(xi[j] + hh[j]), f = sigmoid(xi[H + j] + hh[H + j]);
      const double g = std::tanh(xi[2 * H + j] + hh[2 * H + j]);
      const double o = sigmoid(xi[3 * H + j] + hh[3 * H + j]);
      c[j] = f * c[j] + i * g;
      h[j] = o * std::tanh(c[j]);
    } else {
      const double r = sigmoid(xi[j] + hh[j]), z = sigmoid(xi[H + j] + hh[H + j]);
      const double n = std::tanh(xi[2 * H + j] + r * hh[2 * H + j]);
      h[j] = (1 - z) * n + z * h[j];
    }
  }
}

struct Weights {
  std::vector<float> w_ih, w_hh, b_ih, b_hh;
  Weights(RnnKind kind, std::size_t in, std::size_t H, unsigned seed) {
    const std::size_t G = fdl::rnn_gates(kind);
    w_ih = random_vector(G * H * in, seed);
    w_hh = random_vector(G * H * H, seed + 1);
    b_ih = random_vector(G * H, seed + 2);
    b_hh = random_vector(G * H, seed + 3);
  }
  fdl::RnnWeights view(bool bias) const {
    return {w_ih.data(), w_hh.data(), bias ? b_ih.data() : nullptr, bias ? b_hh.data() : nullptr};
  }
};

const char* kind_name(RnnKind k) { return k == RnnKind::kLstm ? "lstm" : "gru"; }

class RnnVariant : public fdl_test::VariantTest<fdl::RnnVariant> {};

// The step kernel alone: xproj holds W_ih x + b_ih + b_hh (GRU n gate: + b_in) laid out
// [g][Hp], as RnnPlan's GEMM produces it.
void check_step(const fdl::RnnVariant& v, RnnKind kind, std::size_t rows, std::size_t H,
                bool backward) {
  const std::size_t G = fdl::rnn_gates(kind), in = 3;
  const std::size_t hp = fdl::rnn_padded_hidden(H, v.unit_block);
  const bool lstm = kind == RnnKind::kLstm;
  Weights w(kind, in, H, 11 + unsigned(H));
  const auto x = random_vector(rows * in, 5);
  const auto h0 = random_vector(rows * H, 6), c0 = random_vector(rows * H, 7);
  std::vector<float> packed(G * hp * H), xproj(rows * G * hp, 0.0f), bias_hn(hp, 0.0f);
  fdl::rnn_pack_recurrent(kind, H, v.unit_block, w.w_hh.data(), packed.data());
  for (std::size_t j = 0; j < H; ++j) bias_hn[j] = w.b_hh[2 * H + j];
  const std::size_t ldh = hp + 3;  // a row stride wider than the row
  std::vector<float> h_prev(rows * ldh, 0.0f), h_next(rows * ldh, -9.0f), c(rows * hp, 0.0f);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t j = 0; j < H; ++j) {
      h_prev[r * ldh + j] = h0[r * H + j];
      c[r * hp + j] = c0[r * H + j];
    }
    for (std::size_t g = 0; g < G; ++g)
      for (std::size_t j = 0; j < H; ++j) {
        const std::size_t s = g * H + j;
        double a = double(w.b_ih[s]) + (lstm || g < 2 ? w.b_hh[s] : 0.0f);
        for (std::size_t k = 0; k < in; ++k) a += double(w.w_ih[s * in + k]) * x[r * in + k];
        xproj[r * G * hp + g * hp + j] = float(a);
      }
  }
  fdl::RnnStepArgs a;
  a.rows = rows;
  a.hidden = H;
  a.blocks = hp / v.unit_block;
  a.w = packed.data();
  a.bias_hn = bias_hn.data();
  a.xproj = xproj.data();
  a.ldx = G * hp;
  a.h_prev = h_prev.data();
  a.ldh = ldh;
  a.h_next = h_next.data();
  a.ldhn = ldh;
  a.c = lstm ? c.data() : nullptr;
  a.ldc = hp;
  a.backward = backward;
  (lstm ? v.lstm : v.gru)(a);
  for (std::size_t r = 0; r < rows; ++r) {
    std::vector<double> h(h0.begin() + r * H, h0.begin() + (r + 1) * H);
    std::vector<double> cc(c0.begin() + r * H, c0.begin() + (r + 1) * H);
    step_double(kind, in, H, x.data() + r * in, w.w_ih.data(), w.w_hh.data(), w.b_ih.data(),
                w.b_hh.data(), h, cc);
    for (std::size_t j = 0; j < hp; ++j) {
      const double want_h = j < H ? h[j] : 0.0;
      ASSERT_NEAR(h_next[r * ldh + j], want_h, 2e-6 * (1 + std::sqrt(double(H))))
          << v.name << " " << kind_name(kind) << " rows=" << rows << " H=" << H
          << " backward=" << backward << " at " << r << "," << j;
      if (lstm)
        ASSERT_NEAR(c[r * hp + j], j < H ? cc[j] : 0.0, 4e-6 * (1 + std::sqrt(double(H))))
            << v.name << " c rows=" << rows << " H=" << H << " at " << r << "," << j;
    }
  }
}

TEST_P(RnnVariant, StepMatchesDoublePrecision) {
  const fdl::RnnVariant& v = GetParam();
  const std::size_t ub = v.unit_block;
  for (RnnKind kind : {RnnKind::kLstm, RnnKind::kGru})
    for (std::size_t rows : {1, 2, 3, 4, 5, 6, 7, 9, 13})
      for (std::size_t H : {std::size_t(1), ub - 1, ub, 2 * ub + 3})
        for (bool backward : {false, true}) {
          if (H == 0) continue;
          check_step(v, kind, rows, H, backward);
          if (HasFatalFailure()) return;
        }
}

// torch.nn.LSTM/GRU in double: x [T, B, in], states [L*D, B, H] -> y [T, B, D*H].
void model_double(RnnKind kind, std::size_t in, std::size_t H, std::size_t layers, std::size_t D,
                  const std::vector<Weights>& w, bool bias, const std::vector<float>& x,
                  std::size_t T, std::size_t B, const float* h0, const float* c0,
                  std::vector<double>& y, std::vector<double>& hn, std::vector<double>& cn) {
  std::vector<float> seq = x;
  std::size_t width = in;
  hn.assign(layers * D * B * H, 0.0);
  cn.assign(layers * D * B * H, 0.0);
  for (std::size_t l = 0; l < layers; ++l) {
    std::vector<float> out(T * B * D * H);
    y.assign(T * B * D * H, 0.0);
    for (std::size_t d = 0; d < D; ++d) {
      const Weights& wd = w[l * D + d];
      for (std::size_t b = 0; b < B; ++b) {
        const std::size_t s = ((l * D + d) * B + b) * H;
        std::vector<double> h(H, 0.0), c(H, 0.0);
        for (std::size_t j = 0; j < H; ++j) {
          if (h0) h[j] = h0[s + j];
          if (c0) c[j] = c0[s + j];
        }
        for (std::size_t i = 0; i < T; ++i) {
          const std::size_t t = d == 1 ? T - 1 - i : i;
          step_double(kind, width, H, &seq[(t * B + b) * width], wd.w_ih.data(), wd.w_hh.data(),
                      bias ? wd.b_ih.data() : nullptr, bias ? wd.b_hh.data() : nullptr, h, c);
          for (std::size_t j = 0; j < H; ++j) {
            y[(t * B + b) * D * H + d * H + j] = h[j];
            out[(t * B + b) * D * H + d * H + j] = float(h[j]);
          }
        }
        for (std::size_t j = 0; j < H; ++j) {
          hn[s + j] = h[j];
          cn[s + j] = c[j];
        }
      }
    }
    seq = out;
    width = D * H;
  }
}

// With `replaced`, the plan is built with other weights and then given the checked ones
// through set_weights.
void check_plan(const fdl::RnnVariant& v, RnnKind kind, std::size_t layers, bool bidirectional,
                std::size_t T, std::size_t B, bool with_state, bool bias, bool parallel,
                bool replaced = false) {
  const std::size_t in = 5, H = 7, D = bidirectional ? 2 : 1;
  std::vector<Weights> w, other;
  std::vector<fdl::RnnWeights> views, other_views;
  for (std::size_t l = 0; l < layers; ++l)
    for (std::size_t d = 0; d < D; ++d) {
      w.emplace_back(kind, l ? D * H : in, H, 100 + 10 * (l * D + d));
      other.emplace_back(kind, l ? D * H : in, H, 900 + 10 * (l * D + d));
    }
  for (const auto& wi : w) views.push_back(wi.view(bias));
  for (const auto& wi : other) other_views.push_back(wi.view(true));
  fdl::RnnPlan plan(kind, in, H, layers, bidirectional,
                    replaced ? other_views.data() : views.data(), &v);
  if (replaced) plan.set_weights(views.data());
  const auto x = random_vector(T * B * in, 3);
  const auto h0 = random_vector(layers * D * B * H, 4), c0 = random_vector(layers * D * B * H, 5);
  const bool lstm = kind == RnnKind::kLstm;
  std::vector<float> y(T * B * D * H, -9.0f), hn(layers * D * B * H, -9.0f), cn(hn);
  plan.run(x.data(), T, B, with_state ? h0.data() : nullptr,
           with_state && lstm ? c0.data() : nullptr, y.data(), hn.data(),
           lstm ? cn.data() : nullptr, parallel);
  std::vector<double> wy, whn, wcn;
  model_double(kind, in, H, layers, D, w, bias, x, T, B, with_state ? h0.data() : nullptr,
               with_state && lstm ? c0.data() : nullptr, wy, whn, wcn);
  const std::string what = std::string(v.name) + " " + kind_name(kind) +
                           " layers=" + std::to_string(layers) + " D=" + std::to_string(D) +
                           " T=" + std::to_string(T) + " B=" + std::to_string(B) +
                           " state=" + std::to_string(with_state) + " bias=" + std::to_string(bias);
  for (std::size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], wy[i], 2e-5) << what << " y " << i;
  for (std::size_t i = 0; i < hn.size(); ++i)
    ASSERT_NEAR(hn[i], whn[i], 2e-5) << what << " h_n " << i;
  if (lstm)
    for (std::size_t i = 0; i < cn.size(); ++i)
      ASSERT_NEAR(cn[i], wcn[i], 4e-5) << what << " c_n " << i;
}

TEST_P(RnnVariant, PlanMatchesDoublePrecisionModel) {
  const fdl::RnnVariant& v = GetParam();
  for (RnnKind kind : {RnnKind::kLstm, RnnKind::kGru}) {
    check_plan(v, kind, 1, false, 4, 1, false, true, false);
    check_plan(v, kind, 2, true, 3, 3, true, true, true);
    check_plan(v, kind, 2, false, 1, 5, true, false, true);
    check_plan(v, kind, 1, true, 0, 2, true, true, false);  // T = 0: h_n = h0
    check_plan(v, kind, 1, true, 2, 0, false, true, true);  // empty batch
    check_plan(v, kind, 2, true, 3, 2, true, false, true, true);  // set_weights, no bias
    check_plan(v, kind, 1, false, 4, 3, false, true, false, true);
    if (HasFatalFailure()) return;
  }
}

TEST(RnnPlan, ThreadedRecurrenceMatchesSerialAndTheModel) {
  // Batch chunks and directions on the pool (enough work to leave the serial path).
  const RnnKind kind = RnnKind::kLstm;
  const std::size_t in = 4, H = 24, T = 12, B = 9;
  Weights fw(kind, in, H, 1), bw(kind, in, H, 2);
  const fdl::RnnWeights views[] = {fw.view(true), bw.view(true)};
  fdl::RnnPlan plan(kind, in, H, 1, true, views);
  const auto x = random_vector(T * B * in, 3);
  std::vector<float> y1(T * B * 2 * H), y2(y1), h1(2 * B * H), h2(h1), c1(h1), c2(h1);
  const int before = fdl::num_threads();
  fdl::set_num_threads(3);
  plan.run(x.data(), T, B, nullptr, nullptr, y1.data(), h1.data(), c1.data(), true);
  fdl::set_num_threads(before);
  plan.run(x.data(), T, B, nullptr, nullptr, y2.data(), h2.data(), c2.data(), false);
  EXPECT_EQ(y1, y2);
  EXPECT_EQ(h1, h2);
  EXPECT_EQ(c1, c2);
  std::vector<double> wy, whn, wcn;
  model_double(kind, in, H, 1, 2, {fw, bw}, true, x, T, B, nullptr, nullptr, wy, whn, wcn);
  for (std::size_t i = 0; i < y1.size(); ++i) ASSERT_NEAR(y1[i], wy[i], 2e-5) << "y " << i;
  for (std::size_t i = 0; i < h1.size(); ++i) ASSERT_NEAR(h1[i], whn[i], 2e-5) << "h_n " << i;
}

INSTANTIATE_TEST_SUITE_P(AllVariants, RnnVariant,
                         ::testing::ValuesIn(fdl::rnn_variants()),
                         fdl_test::VariantName());

}  // namespace
