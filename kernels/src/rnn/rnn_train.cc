// Training one recurrent layer and direction (fastdl/rnn_train.h): the forward that saves
// the gates, and backpropagation through time. ISA-neutral: the products run on the GEMM
// microkernel it is given and the LSTM/GRU forward on the step kernels of RnnPlan; what is
// left per step is elementwise and memory-bound (no transcendental function in the
// backward: the forward saved the activations), compiled with the baseline flags.
#include "fastdl/rnn_train.h"

#include <algorithm>
#include <cstring>

#include "fastdl/activation.h"
#include "fastdl/buffer.h"
#include "fastdl/threadpool.h"

namespace fdl {
namespace {

bool plain_rnn(RnnKind k) { return k == RnnKind::kRnnTanh || k == RnnKind::kRnnRelu; }

// C[M x N] (+)= act(A B) on microkernel uk: A read by packer a, B by packer b.
void product(const GemmUkernel& uk, std::size_t M, std::size_t N, std::size_t K,
             const Packer& a, const Packer& b, float* c, std::size_t ldc, bool accumulate,
             bool parallel, Activation act = Activation::kNone) {
  Epilogue ep;
  ep.accumulate = accumulate;
  ep.act = act;
  gemm(uk, M, N, K, GemmOperand{nullptr, &a}, GemmOperand{nullptr, &b}, c, ldc, ep, parallel);
}

// As product() with B packed once (pack_all) for a product repeated every step.
struct PackedB {
  AlignedBuffer data;
  std::size_t n = 0, k = 0;
  void pack(const GemmUkernel& uk, const Packer& b, std::size_t n_, std::size_t k_) {
    n = n_;
    k = k_;
    data.resize(packed_size(n, k, uk.nr));
    pack_all(b, n, k, uk.nr, data.data());
  }
  void apply(const GemmUkernel& uk, std::size_t M, const Packer& a, float* c, std::size_t ldc,
             bool accumulate, bool parallel, Activation act = Activation::kNone) const {
    Epilogue ep;
    ep.accumulate = accumulate;
    ep.act = act;
    gemm(uk, M, n, k, GemmOperand{nullptr, &a}, GemmOperand{data.data(), nullptr}, c, ldc, ep,
         parallel);
  }
};

// The forward of the kinds RnnPlan does not run: one GEMM for the input projection of
// every step (all biases folded: they are all outside the reset here), then per step
// kRnn*: y_t = act(y_t + h_{t-1} W_hh^T), the projection written into y and finished in
// place by the GEMM's accumulate epilogue;
// kGruResetBefore: [hr, hz] = h_{t-1} W_h{r,z}^T, r and z, rh = r * h_{t-1} (saved),
// hn = rh W_hn^T, n = tanh(xn + hn), h_t = (1 - z) n + z h_{t-1}; the gate activations on
// act_fn (an activation variant's vectorised kernel).
void forward_by_products(const GemmUkernel& uk, ActivationFn act_fn, const RnnTrainShape& p,
                         const float* x, const float* h0, const RnnWeights& w, float* y,
                         float* h_n, float* saved, bool parallel) {
  const std::size_t T = p.steps, B = p.batch, I = p.input, H = p.hidden;
  const std::size_t G = rnn_gates(p.kind), GH = G * H, rows = T * B;
  const bool rnn = plain_rnn(p.kind);
  const std::size_t lds = rnn_saved_blocks(p.kind) * H;
  AlignedBuffer xproj_buf, bias(GH), zero_h(B * H), hh(B * 2 * H), hn(B * H);
  for (std::size_t j = 0; j < GH; ++j)
    bias.data()[j] = (w.b_ih ? w.b_ih[j] : 0.0f) + (w.b_hh ? w.b_hh[j] : 0.0f);
  float* xproj = y;  // the plain RNN finishes its projection in place
  if (!rnn) {
    xproj_buf.resize(rows * GH);
    xproj = xproj_buf.data();
  }
  {
    Epilogue ep;
    ep.bias_col = bias.data();
    PackRowsByK a(x, I), b(w.w_ih, I);  // B (n = gate row, k = input) at w_ih[n * I + k]
    gemm(uk, rows, GH, I, GemmOperand{nullptr, &a}, GemmOperand{nullptr, &b}, xproj, GH, ep,
         parallel);
  }
  std::fill(zero_h.data(), zero_h.data() + B * H, 0.0f);
  // W_hh^T as B: element (n = gate row, k = unit) at w_hh[n * H + k].
  PackedB w_rz, w_n;
  w_rz.pack(uk, PackRowsByK(w.w_hh, H), rnn ? H : 2 * H, H);
  if (!rnn) w_n.pack(uk, PackRowsByK(w.w_hh + 2 * H * H, H), H, H);
  const Activation act = p.kind == RnnKind::kRnnRelu ? Activation::kRelu : Activation::kTanh;
  const float* h_prev = h0 ? h0 : zero_h.data();
  for (std::size_t s = 0; s < T; ++s) {
    if (stop_requested()) return;  // interrupted: the caller discards the outputs
    const std::size_t t = p.reverse ? T - 1 - s : s;
    float* y_t = y + t * B * H;
    PackRowsByK a(h_prev, H);
    if (rnn) {
      w_rz.apply(uk, B, a, y_t, H, true, parallel, act);
    } else {
      const float* xp = xproj + t * B * GH;
      float* sv = saved + t * B * lds;
      // r, z = sigmoid(x_{r,z} + h_{t-1} W_h{r,z}^T), vectorised over the B x 2H block.
      float* rz = hh.data();
      w_rz.apply(uk, B, a, rz, 2 * H, false, parallel);
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t j = 0; j < 2 * H; ++j) rz[b * 2 * H + j] += xp[b * GH + j];
      act_fn(B * 2 * H, rz, rz, Activation::kSigmoid, 0.0f);
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t j = 0; j < H; ++j) {
          const float r = rz[b * 2 * H + j];
          sv[b * lds + j] = r;
          sv[b * lds + H + j] = rz[b * 2 * H + H + j];
          sv[b * lds + 3 * H + j] = r * h_prev[b * H + j];
        }
      // n = tanh(x_n + (r * h_{t-1}) W_hn^T)
      float* n = hn.data();
      w_n.apply(uk, B, PackRowsByK(sv + 3 * H, lds), n, H, false, parallel);
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t j = 0; j < H; ++j) n[b * H + j] += xp[b * GH + 2 * H + j];
      act_fn(B * H, n, n, Activation::kTanh, 0.0f);
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t j = 0; j < H; ++j) {
          const float z = sv[b * lds + H + j];
          sv[b * lds + 2 * H + j] = n[b * H + j];
          y_t[b * H + j] = (1.0f - z) * n[b * H + j] + z * h_prev[b * H + j];
        }
    }
    h_prev = y_t;
  }
  if (B * H != 0) std::memcpy(h_n, h_prev, B * H * sizeof(float));  // empty: h_n may be null
}

// Column sums of a [rows][n] (leading dimension ld), kRnnBiasBlock rows per partial sum.
void column_sums(const float* a, std::size_t rows, std::size_t n, std::size_t ld, float* out) {
  std::fill(out, out + n, 0.0f);
  AlignedBuffer partial(n);
  for (std::size_t r0 = 0; r0 < rows; r0 += kRnnBiasBlock) {
    float* s = partial.data();
    std::fill(s, s + n, 0.0f);
    const std::size_t r1 = std::min(rows, r0 + kRnnBiasBlock);
    for (std::size_t r = r0; r < r1; ++r)
      for (std::size_t j = 0; j < n; ++j) s[j] += a[r * ld + j];
    for (std::size_t j = 0; j < n; ++j) out[j] += s[j];
  }
}

// One backward step of B rows, elementwise: from dht (dy_t + dh from step t+1) and the
// saved gates, the pre-activation gradients dg (input side, ld GH) and dgh (recurrent
// side), dh := the direct part of dh_{t-1} (0 for LSTM and RNN), dc := dc_{t-1} (LSTM).
// h_prev: h_{t-1} (ld H); c_prev: c_{t-1} (LSTM, ld lds or H); drh: kGruResetBefore's
// d(r h_{t-1}) = dG_n W_hn, computed by the caller after the n row of dg (first pass).
struct StepRows {
  std::size_t B, H, hs, lds;
  const float* dht;
  const float* sv;      // saved of step t
  const float* h_prev;
  const float* c_prev;  // LSTM
  std::size_t ldcp;
  const float* y_t;     // plain RNN: h_t
  float* dg;
  float* dgh;
  float* dh;
  float* dc;
};

void lstm_step(const StepRows& s) {
  const std::size_t H = s.H, hs = s.hs, GH = 4 * H;
  for (std::size_t b = 0; b < s.B; ++b) {
    const float* sv = s.sv + b * s.lds;
    const float* cp = s.c_prev + b * s.ldcp;
    const float* dht = s.dht + b * H;
    float* dg = s.dg + b * GH;
    float* dc = s.dc + b * H;
    for (std::size_t j = 0; j < H; ++j) {
      const float i = sv[j], f = sv[hs + j], g = sv[2 * hs + j], o = sv[3 * hs + j];
      const float tc = sv[5 * hs + j];
      const float dct = dc[j] + dht[j] * o * (1.0f - tc * tc);
      dg[j] = dct * g * i * (1.0f - i);
      dg[H + j] = dct * cp[j] * f * (1.0f - f);
      dg[2 * H + j] = dct * i * (1.0f - g * g);
      dg[3 * H + j] = dht[j] * tc * o * (1.0f - o);
      dc[j] = dct * f;
    }
  }
  std::fill(s.dh, s.dh + s.B * H, 0.0f);
}

void gru_step(const StepRows& s) {
  const std::size_t H = s.H, hs = s.hs, GH = 3 * H;
  for (std::size_t b = 0; b < s.B; ++b) {
    const float* sv = s.sv + b * s.lds;
    const float* hp = s.h_prev + b * H;
    const float* dht = s.dht + b * H;
    float* dg = s.dg + b * GH;
    float* dgh = s.dgh + b * GH;
    float* dh = s.dh + b * H;
    for (std::size_t j = 0; j < H; ++j) {
      const float r = sv[j], z = sv[hs + j], n = sv[2 * hs + j], hn = sv[3 * hs + j];
      const float dn = dht[j] * (1.0f - z) * (1.0f - n * n);
      const float dr = dn * hn * r * (1.0f - r);
      const float dz = dht[j] * (hp[j] - n) * z * (1.0f - z);
      dg[j] = dgh[j] = dr;
      dg[H + j] = dgh[H + j] = dz;
      dg[2 * H + j] = dn;
      dgh[2 * H + j] = dn * r;
      dh[j] = dht[j] * z;
    }
  }
}

// kGruResetBefore, first pass: the n row of dg (what d(r h) needs).
void gru_rb_n(const StepRows& s) {
  const std::size_t H = s.H, hs = s.hs, GH = 3 * H;
  for (std::size_t b = 0; b < s.B; ++b) {
    const float* sv = s.sv + b * s.lds;
    const float* dht = s.dht + b * H;
    float* dg = s.dg + b * GH;
    for (std::size_t j = 0; j < H; ++j) {
      const float z = sv[hs + j], n = sv[2 * hs + j];
      dg[2 * H + j] = dht[j] * (1.0f - z) * (1.0f - n * n);
    }
  }
}

// kGruResetBefore, second pass, with drh = d(r h_{t-1}) [B][H].
void gru_rb_rest(const StepRows& s, const float* drh) {
  const std::size_t H = s.H, hs = s.hs, GH = 3 * H;
  for (std::size_t b = 0; b < s.B; ++b) {
    const float* sv = s.sv + b * s.lds;
    const float* hp = s.h_prev + b * H;
    const float* dht = s.dht + b * H;
    const float* d_rh = drh + b * H;
    float* dg = s.dg + b * GH;
    float* dh = s.dh + b * H;
    for (std::size_t j = 0; j < H; ++j) {
      const float r = sv[j], z = sv[hs + j], n = sv[2 * hs + j];
      dg[j] = d_rh[j] * hp[j] * r * (1.0f - r);
      dg[H + j] = dht[j] * (hp[j] - n) * z * (1.0f - z);
      dh[j] = dht[j] * z + d_rh[j] * r;
    }
  }
}

void rnn_step(const StepRows& s, bool relu) {
  const std::size_t n = s.B * s.H;
  for (std::size_t i = 0; i < n; ++i) {
    const float h = s.y_t[i];
    s.dg[i] = relu ? (h > 0.0f ? s.dht[i] : 0.0f) : s.dht[i] * (1.0f - h * h);
  }
  std::fill(s.dh, s.dh + n, 0.0f);
}

}  // namespace

std::size_t rnn_saved_blocks(RnnKind kind) {
  switch (kind) {
    case RnnKind::kLstm: return 6;
    case RnnKind::kGru:
    case RnnKind::kGruResetBefore: return 4;
    default: return 0;
  }
}

std::size_t rnn_saved_hidden(RnnKind kind, std::size_t hidden, const RnnVariant& v) {
  if (kind == RnnKind::kLstm || kind == RnnKind::kGru)
    return rnn_padded_hidden(hidden, v.unit_block);
  return hidden;
}

void rnn_train_forward(const RnnVariant& v, const GemmUkernel& uk, const RnnTrainShape& p,
                       const float* x, const float* h0, const float* c0, const RnnWeights& w,
                       float* y, float* h_n, float* c_n, float* saved, bool parallel) {
  if (p.kind == RnnKind::kLstm || p.kind == RnnKind::kGru) {
    const RnnPlan plan(p.kind, p.input, p.hidden, 1, false, &w, &v, &uk);
    plan.run_train(x, p.steps, p.batch, h0, c0, y, h_n, c_n, saved, p.reverse, parallel);
    return;
  }
  // The gate activations of the reset-before GRU on the vectorised kernels of v's ISA.
  const ActivationVariant* act = &activation_best();
  for (const ActivationVariant& a : activation_variants())
    if (a.isa == v.isa) act = &a;
  forward_by_products(uk, act->activation, p, x, h0, w, y, h_n, saved, parallel);
}

void rnn_train_backward(const GemmUkernel& uk, const RnnTrainShape& p, std::size_t hs,
                        const float* dy, const float* dh_n, const float* dc_n, const float* x,
                        const float* y, const float* saved, const float* h0, const float* c0,
                        const float* w_ih, const float* w_hh, float* dx, float* dh0, float* dc0,
                        float* dw_ih, float* dw_hh, float* db_ih, float* db_hh, bool parallel) {
  const std::size_t T = p.steps, B = p.batch, I = p.input, H = p.hidden;
  const std::size_t G = rnn_gates(p.kind), GH = G * H, rows = T * B, BH = B * H;
  const std::size_t lds = rnn_saved_blocks(p.kind) * hs;
  const bool lstm = p.kind == RnnKind::kLstm, gru = p.kind == RnnKind::kGru;
  const bool rb = p.kind == RnnKind::kGruResetBefore;
  // dG, and dGh where it differs (kGru); the running dh and dc; dh_t; d(r h).
  AlignedBuffer dg_buf(rows * GH), dgh_buf(gru ? rows * GH : 0), dht(BH), zero(BH), drh(BH);
  float* dg = dg_buf.data();
  float* dgh = gru ? dgh_buf.data() : dg;
  float* dh = dh0;  // dh0 is the running dh_t: dh_n in, dh_0 out
  float* dc = dc0;
  std::fill(zero.data(), zero.data() + BH, 0.0f);
  if (dh_n) std::memcpy(dh, dh_n, BH * sizeof(float));
  else std::fill(dh, dh + BH, 0.0f);
  if (lstm) {
    if (dc_n) std::memcpy(dc, dc_n, BH * sizeof(float));
    else std::fill(dc, dc + BH, 0.0f);
  }
  // W_hh as B of dh += dGh_t W_hh: element (n = unit, k = gate row) at w_hh[k * H + n]; the
  // reset-before GRU: rows r, z here, and W_hn apart for d(r h) = dG_n W_hn.
  PackedB w_back, w_n;
  w_back.pack(uk, PackKByRows(w_hh, H), H, rb ? 2 * H : GH);
  if (rb) w_n.pack(uk, PackKByRows(w_hh + 2 * H * H, H), H, H);

  for (std::size_t s = T; s-- > 0;) {
    if (stop_requested()) return;  // interrupted: the caller discards the outputs
    const std::size_t t = p.reverse ? T - 1 - s : s;
    const std::size_t tp = p.reverse ? t + 1 : t - 1;  // the step before (s > 0)
    StepRows r;
    r.B = B;
    r.H = H;
    r.hs = hs;
    r.lds = lds;
    r.sv = saved + t * B * lds;
    r.h_prev = s > 0 ? y + tp * BH : (h0 ? h0 : zero.data());
    r.c_prev = c0 ? c0 : zero.data();  // c_{t-1}: LSTM only
    r.ldcp = H;
    if (lstm && s > 0) {
      r.c_prev = saved + tp * B * lds + 4 * hs;
      r.ldcp = lds;
    }
    r.y_t = y + t * BH;
    r.dg = dg + t * B * GH;
    r.dgh = dgh + t * B * GH;
    r.dh = dh;
    r.dc = dc;
    float* d = dht.data();
    for (std::size_t i = 0; i < BH; ++i) d[i] = dh[i] + (dy ? dy[t * BH + i] : 0.0f);
    r.dht = d;
    if (lstm) {
      lstm_step(r);
    } else if (gru) {
      gru_step(r);
    } else if (rb) {
      gru_rb_n(r);
      w_n.apply(uk, B, PackRowsByK(r.dg + 2 * H, GH), drh.data(), H, false, parallel);
      gru_rb_rest(r, drh.data());
    } else {
      rnn_step(r, p.kind == RnnKind::kRnnRelu);
    }
    // dh_{t-1} += dGh_t W_hh (only rows r, z for the reset-before GRU).
    w_back.apply(uk, B, PackRowsByK(r.dgh, GH), dh, H, true, parallel);
  }

  // The weight gradients over all steps at once. dW_ih = dG^T X.
  product(uk, GH, I, rows, PackKByRows(dg, GH), PackKByRows(x, I), dw_ih, I, false, parallel);
  // dW_hh = dGh^T H_prev: H_prev is y shifted by one step, h0 for the first step.
  const std::size_t rest = rows - std::min(rows, B);  // the rows of every step but the first
  const std::size_t first = p.reverse ? (T - 1) * B : 0;  // the first processed step's rows
  const std::size_t g_off = p.reverse ? 0 : B, y_off = p.reverse ? B : 0;
  const std::size_t m = rb ? 2 * H : GH;  // the reset-before GRU's n rows come from `saved`
  product(uk, m, H, rest, PackKByRows(dgh + g_off * GH, GH), PackKByRows(y + y_off * H, H),
          dw_hh, H, false, parallel);
  if (h0 && T > 0)
    product(uk, m, H, B, PackKByRows(dgh + first * GH, GH), PackKByRows(h0, H), dw_hh, H, true,
            parallel);
  if (rb)  // dW_hn = dG_n^T (r H_prev)
    product(uk, H, H, rows, PackKByRows(dg + 2 * H, GH), PackKByRows(saved + 3 * hs, lds),
            dw_hh + 2 * H * H, H, false, parallel);
  column_sums(dg, rows, GH, GH, db_ih);
  column_sums(dgh, rows, GH, GH, db_hh);
  // dx = dG W_ih: B element (n = input, k = gate row) at w_ih[k * I + n].
  if (dx) product(uk, rows, I, GH, PackRowsByK(dg, GH), PackKByRows(w_ih, I), dx, I, false,
                  parallel);
}

}  // namespace fdl
