// The training pair of fastdl/rnn_train.h against a double-precision model of the same
// layer and its backpropagation through time: every step-kernel variant on its ISA's GEMM,
// every kind (LSTM, GRU, the reset-before GRU, the plain RNNs), both directions, hidden
// sizes around each variant's unit block, batches around its tiles, T = 1, gradients through
// y only, h_n / c_n only, and both; no biases and zero initial states; T = 0 and B = 0.
// Small shapes: this also runs under qemu-aarch64.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "fastdl/rnn_train.h"
#include "test_util.h"

namespace {

using fdl::RnnKind;
using fdl_test::random_vector;
using Doubles = std::vector<double>;

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

struct Problem {
  RnnKind kind;
  std::size_t T, B, I, H;
  bool reverse = false, bias = true, state = true;
  bool grad_y = true, grad_state = true;
};

struct Data {
  std::vector<float> x, h0, c0, w_ih, w_hh, b_ih, b_hh, dy, dh_n, dc_n;
  explicit Data(const Problem& p) {
    const std::size_t GH = fdl::rnn_gates(p.kind) * p.H;
    auto scaled = [](std::vector<float> v, float s) {
      for (auto& e : v) e *= s;
      return v;
    };
    x = random_vector(p.T * p.B * p.I, 1);
    h0 = scaled(random_vector(p.B * p.H, 2), 0.5f);
    c0 = scaled(random_vector(p.B * p.H, 3), 0.5f);
    w_ih = scaled(random_vector(GH * p.I, 4), 1.0f / std::sqrt(float(p.I)));
    w_hh = scaled(random_vector(GH * p.H, 5), 1.0f / std::sqrt(float(p.H)));
    b_ih = scaled(random_vector(GH, 6), 0.3f);
    b_hh = scaled(random_vector(GH, 7), 0.3f);
    dy = random_vector(p.T * p.B * p.H, 8);
    dh_n = random_vector(p.B * p.H, 9);
    dc_n = random_vector(p.B * p.H, 10);
  }
};

// The layer in double: y [T][B][H], h_n, c_n [B][H], and per step and row the activated
// gates a [G*H], the cell state c (LSTM), and `last` (GRU: W_hn h + b_hn; reset-before GRU:
// r * h_{t-1}).
struct Model {
  Doubles y, hn, cn, a, c, last;
};

Model forward(const Problem& p, const Data& d) {
  const std::size_t T = p.T, B = p.B, I = p.I, H = p.H, G = fdl::rnn_gates(p.kind), GH = G * H;
  Model m;
  m.y.assign(T * B * H, 0.0);
  m.a.assign(T * B * GH, 0.0);
  m.c.assign(T * B * H, 0.0);
  m.last.assign(T * B * H, 0.0);
  m.hn.assign(B * H, 0.0);
  m.cn.assign(B * H, 0.0);
  for (std::size_t b = 0; b < B; ++b) {
    Doubles h(H, 0.0), c(H, 0.0);
    if (p.state)
      for (std::size_t j = 0; j < H; ++j) {
        h[j] = d.h0[b * H + j];
        c[j] = d.c0[b * H + j];
      }
    for (std::size_t s = 0; s < T; ++s) {
      const std::size_t t = p.reverse ? T - 1 - s : s, row = t * B + b;
      Doubles xp(GH), hh(GH), rh(H);
      for (std::size_t r = 0; r < GH; ++r) {
        double acc = p.bias ? d.b_ih[r] : 0.0;
        for (std::size_t k = 0; k < I; ++k) acc += double(d.w_ih[r * I + k]) * d.x[row * I + k];
        xp[r] = acc;
      }
      auto recurrent = [&](std::size_t r, const Doubles& v) {
        double acc = p.bias ? d.b_hh[r] : 0.0;
        for (std::size_t k = 0; k < H; ++k) acc += double(d.w_hh[r * H + k]) * v[k];
        return acc;
      };
      for (std::size_t r = 0; r < GH; ++r) hh[r] = recurrent(r, h);
      double* a = &m.a[row * GH];
      for (std::size_t j = 0; j < H; ++j) {
        if (p.kind == RnnKind::kLstm) {
          a[j] = sigmoid(xp[j] + hh[j]);
          a[H + j] = sigmoid(xp[H + j] + hh[H + j]);
          a[2 * H + j] = std::tanh(xp[2 * H + j] + hh[2 * H + j]);
          a[3 * H + j] = sigmoid(xp[3 * H + j] + hh[3 * H + j]);
        } else if (G == 3) {
          a[j] = sigmoid(xp[j] + hh[j]);
          a[H + j] = sigmoid(xp[H + j] + hh[H + j]);
          rh[j] = a[j] * h[j];
        }
      }
      for (std::size_t j = 0; j < H; ++j) {
        double hj;
        if (p.kind == RnnKind::kLstm) {
          c[j] = a[H + j] * c[j] + a[j] * a[2 * H + j];
          m.c[row * H + j] = c[j];
          hj = a[3 * H + j] * std::tanh(c[j]);
        } else if (G == 3) {
          const bool rb = p.kind == RnnKind::kGruResetBefore;
          const double last = rb ? rh[j] : hh[2 * H + j];
          const double pre = rb ? xp[2 * H + j] + recurrent(2 * H + j, rh)
                                : xp[2 * H + j] + a[j] * last;
          a[2 * H + j] = std::tanh(pre);
          m.last[row * H + j] = last;
          hj = (1 - a[H + j]) * a[2 * H + j] + a[H + j] * h[j];
        } else {
          const double pre = xp[j] + hh[j];
          hj = p.kind == RnnKind::kRnnTanh ? std::tanh(pre) : std::max(pre, 0.0);
          a[j] = hj;
        }
        m.y[row * H + j] = hj;
      }
      for (std::size_t j = 0; j < H; ++j) h[j] = m.y[row * H + j];
    }
    for (std::size_t j = 0; j < H; ++j) {
      m.hn[b * H + j] = h[j];
      m.cn[b * H + j] = c[j];
    }
  }
  return m;
}

struct Grads {
  Doubles dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh;
};

Grads backward(const Problem& p, const Data& d, const Model& m) {
  const std::size_t T = p.T, B = p.B, I = p.I, H = p.H, G = fdl::rnn_gates(p.kind), GH = G * H;
  Grads g;
  g.dx.assign(T * B * I, 0.0);
  g.dh0.assign(B * H, 0.0);
  g.dc0.assign(B * H, 0.0);
  g.dw_ih.assign(GH * I, 0.0);
  g.dw_hh.assign(GH * H, 0.0);
  g.db_ih.assign(GH, 0.0);
  g.db_hh.assign(GH, 0.0);
  for (std::size_t b = 0; b < B; ++b) {
    Doubles dh(H, 0.0), dc(H, 0.0);
    if (p.grad_state)
      for (std::size_t j = 0; j < H; ++j) {
        dh[j] = d.dh_n[b * H + j];
        if (p.kind == RnnKind::kLstm) dc[j] = d.dc_n[b * H + j];
      }
    for (std::size_t s = T; s-- > 0;) {
      const std::size_t t = p.reverse ? T - 1 - s : s, row = t * B + b;
      const std::size_t prow = (p.reverse ? t + 1 : t - 1) * B + b;  // s > 0
      Doubles hp(H), cp(H), dht(H), dg(GH, 0.0), dgh(GH, 0.0), next(H, 0.0);
      for (std::size_t j = 0; j < H; ++j) {
        hp[j] = s > 0 ? m.y[prow * H + j] : p.state ? d.h0[b * H + j] : 0.0;
        cp[j] = s > 0 ? m.c[prow * H + j] : p.state ? d.c0[b * H + j] : 0.0;
        dht[j] = dh[j] + (p.grad_y ? d.dy[row * H + j] : 0.0);
      }
      const double* a = &m.a[row * GH];
      Doubles drh(H, 0.0);
      if (p.kind == RnnKind::kGruResetBefore) {
        for (std::size_t j = 0; j < H; ++j)
          dg[2 * H + j] = dht[j] * (1 - a[H + j]) * (1 - a[2 * H + j] * a[2 * H + j]);
        for (std::size_t k = 0; k < H; ++k)
          for (std::size_t j = 0; j < H; ++j)
            drh[k] += dg[2 * H + j] * double(d.w_hh[(2 * H + j) * H + k]);
      }
      for (std::size_t j = 0; j < H; ++j) {
        if (p.kind == RnnKind::kLstm) {
          const double i = a[j], f = a[H + j], gg = a[2 * H + j], o = a[3 * H + j];
          const double tc = std::tanh(m.c[row * H + j]);
          const double dct = dc[j] + dht[j] * o * (1 - tc * tc);
          dg[j] = dct * gg * i * (1 - i);
          dg[H + j] = dct * cp[j] * f * (1 - f);
          dg[2 * H + j] = dct * i * (1 - gg * gg);
          dg[3 * H + j] = dht[j] * tc * o * (1 - o);
          dc[j] = dct * f;
        } else if (G == 3) {
          const double r = a[j], z = a[H + j], n = a[2 * H + j];
          dg[H + j] = dht[j] * (hp[j] - n) * z * (1 - z);
          next[j] = dht[j] * z;
          if (p.kind == RnnKind::kGru) {
            const double dn = dht[j] * (1 - z) * (1 - n * n);
            dg[j] = dn * m.last[row * H + j] * r * (1 - r);
            dg[2 * H + j] = dn;
          } else {
            dg[j] = drh[j] * hp[j] * r * (1 - r);
            next[j] += drh[j] * r;
          }
        } else {
          const double h = a[j];
          dg[j] = p.kind == RnnKind::kRnnTanh ? dht[j] * (1 - h * h) : h > 0 ? dht[j] : 0.0;
        }
      }
      dgh = dg;
      if (p.kind == RnnKind::kGru)
        for (std::size_t j = 0; j < H; ++j) dgh[2 * H + j] = dg[2 * H + j] * a[j];
      const std::size_t back_rows = p.kind == RnnKind::kGruResetBefore ? 2 * H : GH;
      for (std::size_t r = 0; r < back_rows; ++r)
        for (std::size_t k = 0; k < H; ++k) next[k] += dgh[r] * double(d.w_hh[r * H + k]);
      dh = next;
      for (std::size_t r = 0; r < GH; ++r) {
        g.db_ih[r] += dg[r];
        g.db_hh[r] += dgh[r];
        for (std::size_t k = 0; k < I; ++k) {
          g.dw_ih[r * I + k] += dg[r] * d.x[row * I + k];
          g.dx[row * I + k] += dg[r] * double(d.w_ih[r * I + k]);
        }
        const bool by_rh = p.kind == RnnKind::kGruResetBefore && r >= 2 * H;
        for (std::size_t k = 0; k < H; ++k)
          g.dw_hh[r * H + k] += dgh[r] * (by_rh ? m.last[row * H + k] : hp[k]);
      }
    }
    for (std::size_t j = 0; j < H; ++j) {
      g.dh0[b * H + j] = dh[j];
      g.dc0[b * H + j] = dc[j];
    }
  }
  return g;
}

const char* kind_name(RnnKind k) {
  static const char* names[] = {"lstm", "gru", "gru_reset_before", "rnn_tanh", "rnn_relu"};
  return names[int(k)];
}

const fdl::GemmUkernel& gemm_of(fdl::Isa isa) {
  for (const auto& g : fdl::gemm_variants())
    if (g.isa == isa) return g;
  return fdl::gemm_variants().back();
}

void expect_near(const std::vector<float>& got, const Doubles& want, double rtol,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 1.0;  // values of order one: an absolute floor
  for (double w : want) scale = std::max(scale, std::abs(w));
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], rtol * scale) << what << " at " << i;
}

void check(const fdl::RnnVariant& v, const Problem& p, bool parallel = false) {
  const Data d(p);
  const std::size_t T = p.T, B = p.B, H = p.H, G = fdl::rnn_gates(p.kind), GH = G * H;
  const bool lstm = p.kind == RnnKind::kLstm;
  const fdl::GemmUkernel& uk = gemm_of(v.isa);
  const fdl::RnnTrainShape shape{p.kind, T, B, p.I, H, p.reverse};
  const std::size_t hs = fdl::rnn_saved_hidden(p.kind, H, v);
  std::vector<float> y(T * B * H, -9.0f), hn(B * H, -9.0f), cn(B * H, -9.0f);
  std::vector<float> saved(T * B * fdl::rnn_saved_blocks(p.kind) * hs, -9.0f);
  const fdl::RnnWeights w{d.w_ih.data(), d.w_hh.data(), p.bias ? d.b_ih.data() : nullptr,
                          p.bias ? d.b_hh.data() : nullptr};
  fdl::rnn_train_forward(v, uk, shape, d.x.data(), p.state ? d.h0.data() : nullptr,
                         p.state && lstm ? d.c0.data() : nullptr, w, y.data(), hn.data(),
                         lstm ? cn.data() : nullptr, saved.data(), parallel);
  std::vector<float> dx(T * B * p.I, -9.0f), dh0(B * H, -9.0f), dc0(B * H, -9.0f),
      dw_ih(GH * p.I, -9.0f), dw_hh(GH * H, -9.0f), db_ih(GH, -9.0f), db_hh(GH, -9.0f);
  fdl::rnn_train_backward(uk, shape, hs, p.grad_y ? d.dy.data() : nullptr,
                          p.grad_state ? d.dh_n.data() : nullptr,
                          p.grad_state && lstm ? d.dc_n.data() : nullptr, d.x.data(), y.data(),
                          saved.data(), p.state ? d.h0.data() : nullptr,
                          p.state && lstm ? d.c0.data() : nullptr, d.w_ih.data(), d.w_hh.data(),
                          dx.data(), dh0.data(), lstm ? dc0.data() : nullptr, dw_ih.data(),
                          dw_hh.data(), db_ih.data(), db_hh.data(), parallel);
  const Model m = forward(p, d);
  const Grads g = backward(p, d, m);
  const std::string what = std::string(v.name) + " " + kind_name(p.kind) + " T=" +
                           std::to_string(T) + " B=" + std::to_string(B) + " H=" +
                           std::to_string(H) + " reverse=" + std::to_string(p.reverse) +
                           " bias=" + std::to_string(p.bias) + " state=" +
                           std::to_string(p.state) + " grads(y,state)=" +
                           std::to_string(p.grad_y) + std::to_string(p.grad_state);
  expect_near(y, m.y, 1e-5, what + " y");
  expect_near(hn, m.hn, 1e-5, what + " h_n");
  if (lstm) expect_near(cn, m.cn, 1e-5, what + " c_n");
  expect_near(dx, g.dx, 5e-5, what + " dx");
  expect_near(dh0, g.dh0, 5e-5, what + " dh0");
  if (lstm) expect_near(dc0, g.dc0, 5e-5, what + " dc0");
  expect_near(dw_ih, g.dw_ih, 5e-5, what + " dw_ih");
  expect_near(dw_hh, g.dw_hh, 5e-5, what + " dw_hh");
  expect_near(db_ih, g.db_ih, 5e-5, what + " db_ih");
  expect_near(db_hh, g.db_hh, 5e-5, what + " db_hh");
}

const RnnKind kKinds[] = {RnnKind::kLstm, RnnKind::kGru, RnnKind::kGruResetBefore,
                          RnnKind::kRnnTanh, RnnKind::kRnnRelu};

class RnnTrainVariant : public fdl_test::VariantTest<fdl::RnnVariant> {};

TEST_P(RnnTrainVariant, MatchesDoublePrecisionBackpropagation) {
  const fdl::RnnVariant& v = GetParam();
  const std::size_t ub = v.unit_block;
  for (RnnKind kind : kKinds) {
    for (std::size_t H : {std::size_t(1), ub - 1, ub, ub + 1, 2 * ub + 3})
      for (std::size_t B : {1, 3, 7}) {
        if (H == 0) continue;
        check(v, {kind, 3, B, 4, H, B == 3});
        if (HasFatalFailure()) return;
      }
    Problem p{kind, 1, 2, 3, 5};  // T = 1
    check(v, p);
    p = {kind, 4, 3, 2, 6, true};
    p.grad_y = false;  // through h_n / c_n only
    check(v, p);
    p.grad_y = true;
    p.grad_state = false;  // through y only
    check(v, p);
    p = {kind, 5, 2, 3, 7, false, false, false};  // no biases, zero initial states
    check(v, p);
    check(v, {kind, 6, 13, 5, 33, true}, true);  // several tiles, threaded
    check(v, {kind, 0, 3, 2, 4});                // T = 0: dh0 = dh_n
    check(v, {kind, 3, 0, 2, 4});                // B = 0
    if (HasFatalFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, RnnTrainVariant, ::testing::ValuesIn(fdl::rnn_variants()),
                         fdl_test::VariantName());

}  // namespace
