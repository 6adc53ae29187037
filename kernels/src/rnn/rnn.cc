// LSTM/GRU driver: the step-kernel variant table (from variants.inc), packing, and RnnPlan
// (input projection GEMM per layer, recurrence split over batch chunks and directions).
// ISA-neutral: built with baseline flags.
#include <algorithm>
#include <cstring>
#include <vector>

#include "fastdl/isa.h"
#include "fastdl/rnn.h"
#include "fastdl/threadpool.h"
#include "fastdl/variants.h"

#define FDL_RNN_VARIANT(isa, level, unit_block)             \
  void fdl_f32_lstm_step__##isa(const fdl::RnnStepArgs&); \
  void fdl_f32_gru_step__##isa(const fdl::RnnStepArgs&);
#include "variants.inc"
#undef FDL_RNN_VARIANT

namespace fdl {

const std::vector<RnnVariant>& rnn_variants() {
  static const std::vector<RnnVariant> table = {
#define FDL_RNN_VARIANT(isa, level, unit_block)                                     \
  {"fdl_f32_rnn__" #isa, Isa::level, unit_block, &fdl_f32_lstm_step__##isa, \
   &fdl_f32_gru_step__##isa},
#include "variants.inc"
#undef FDL_RNN_VARIANT
  };
  return table;
}

const RnnVariant& rnn_best() { return best_variant(rnn_variants()); }

const RnnVariant* rnn_find(const char* name) { return find_variant(rnn_variants(), name); }

std::size_t rnn_padded_hidden(std::size_t hidden, int unit_block) {
  const std::size_t ub = static_cast<std::size_t>(unit_block);
  return (hidden + ub - 1) / ub * ub;
}

void rnn_pack_recurrent(RnnKind kind, std::size_t hidden, int unit_block, const float* w_hh,
                        float* dst) {
  const std::size_t G = rnn_gates(kind), H = hidden, UB = unit_block;
  const std::size_t blocks = rnn_padded_hidden(H, unit_block) / UB;
  for (std::size_t q = 0; q < blocks; ++q)
    for (std::size_t k = 0; k < H; ++k)
      for (std::size_t g = 0; g < G; ++g, dst += UB)
        for (std::size_t u = 0; u < UB; ++u) {
          const std::size_t j = q * UB + u;
          dst[u] = j < H ? w_hh[(g * H + j) * H + k] : 0.0f;
        }
}

namespace {

// Below this many multiply-adds per layer the recurrence runs on the calling thread: waking
// the pool costs more.
constexpr std::size_t kParallelMinMacs = 1u << 17;

// Per-thread storage, grown on demand and reused across calls.
struct SequenceWorkspace {  // the outputs of the layers between the first and the last
  AlignedBuffer seq[2];
};
struct ProjectionWorkspace {  // one layer's input projection of every step
  AlignedBuffer xproj;
};
struct StateWorkspace {
  AlignedBuffer h[2], c;
};

}  // namespace

namespace {

// W_ih of both directions of one layer read as the GEMM's B operand with rows renumbered
// [d][g][Hp]: row (d, g, j) is row g*H + j of direction d's W_ih, zero for padding units.
struct GateRowsPacker final : Packer {
  const RnnWeights* dirs;  // this layer's directions
  std::size_t gates, hidden, hp, input;
  GateRowsPacker(const RnnWeights* d, std::size_t g, std::size_t h, std::size_t p, std::size_t in)
      : dirs(d), gates(g), hidden(h), hp(p), input(in) {}
  void pack(std::size_t r0, std::size_t rows, std::size_t k0, std::size_t kc, std::size_t w,
            float* dst) const override {
    for (std::size_t q = 0; q * w < rows; ++q, dst += kc * w)
      for (std::size_t t = 0; t < w; ++t) {
        const std::size_t r = r0 + q * w + t, d = r / (gates * hp), j = r % hp;
        const float* src = q * w + t < rows && j < hidden
                               ? dirs[d].w_ih + ((r / hp) % gates * hidden + j) * input + k0
                               : nullptr;
        for (std::size_t p = 0; p < kc; ++p) dst[p * w + t] = src ? src[p] : 0.0f;
      }
  }
};

}  // namespace

RnnPlan::RnnPlan(RnnKind kind, std::size_t input, std::size_t hidden, std::size_t layers,
                 bool bidirectional, const RnnWeights* weights, const RnnVariant* variant,
                 const GemmUkernel* gemm)
    : kind_(kind), input_(input), hidden_(hidden), layers_(layers),
      dirs_(bidirectional ? 2 : 1), gates_(rnn_gates(kind)),
      variant_(variant ? variant : &rnn_best()), gemm_(gemm ? gemm : &gemm_best()) {
  const std::size_t G = gates_, H = hidden_, D = dirs_;
  hp_ = rnn_padded_hidden(H, variant_->unit_block);
  const std::size_t cols = D * G * hp_;
  layer_.resize(layers_);
  for (std::size_t l = 0; l < layers_; ++l) {
    Layer& L = layer_[l];
    L.input = l == 0 ? input_ : D * H;
    L.bias.resize(cols);
    L.w_ih.resize(packed_size(cols, L.input, gemm_->nr));
    for (std::size_t d = 0; d < D; ++d) {
      L.w_hh[d].resize(G * hp_ * H);
      if (kind_ == RnnKind::kGru) L.b_hn[d].resize(hp_);
    }
  }
  set_weights(weights);
}

void RnnPlan::set_weights(const RnnWeights* weights) {
  std::unique_lock<std::shared_mutex> lock(weights_mu_);
  const std::size_t G = gates_, H = hidden_, D = dirs_, hp = hp_, cols = D * G * hp;
  for (std::size_t l = 0; l < layers_; ++l) {
    Layer& L = layer_[l];
    std::fill(L.bias.data(), L.bias.data() + cols, 0.0f);
    for (std::size_t d = 0; d < D; ++d) {
      const RnnWeights& src = weights[l * D + d];
      for (std::size_t g = 0; g < G; ++g)
        for (std::size_t j = 0; j < H; ++j) {
          const std::size_t row = (d * G + g) * hp + j, s = g * H + j;
          float b = src.b_ih ? src.b_ih[s] : 0.0f;
          // GRU's b_hn is applied inside r * (W_hn h + b_hn): not foldable.
          const bool fold_hh = kind_ == RnnKind::kLstm || g < 2;
          if (fold_hh && src.b_hh) b += src.b_hh[s];
          L.bias.data()[row] = b;
        }
      rnn_pack_recurrent(kind_, H, variant_->unit_block, src.w_hh, L.w_hh[d].data());
      if (kind_ == RnnKind::kGru)
        for (std::size_t j = 0; j < hp; ++j)
          L.b_hn[d].data()[j] = j < H && src.b_hh ? src.b_hh[2 * H + j] : 0.0f;
    }
    pack_all(GateRowsPacker(weights + l * D, G, H, hp, L.input), cols, L.input, gemm_->nr,
             L.w_ih.data());
  }
}

void RnnPlan::run(const float* x, std::size_t steps, std::size_t batch, const float* h0,
                  const float* c0, float* y, float* h_n, float* c_n, bool parallel) const {
  const std::size_t rows = steps * batch, width = dirs_ * hidden_;
  std::shared_lock<std::shared_mutex> lock(weights_mu_);
  thread_local SequenceWorkspace ws;
  if (layers_ > 1) {
    ws.seq[0].resize(rows * width);
    ws.seq[1].resize(rows * width);
  }
  for (std::size_t l = 0; l < layers_; ++l) {
    const float* in = l == 0 ? x : ws.seq[(l - 1) % 2].data();
    float* out = l + 1 == layers_ ? y : ws.seq[l % 2].data();
    run_layer(l, in, steps, batch, h0, c0, out, h_n, c_n, nullptr, false, parallel);
  }
}

void RnnPlan::run_train(const float* x, std::size_t steps, std::size_t batch, const float* h0,
                        const float* c0, float* y, float* h_n, float* c_n, float* saved,
                        bool reverse, bool parallel) const {
  std::shared_lock<std::shared_mutex> lock(weights_mu_);
  run_layer(0, x, steps, batch, h0, c0, y, h_n, c_n, saved, reverse, parallel);
}

// Layer l: in [T, B, input of l] -> out [T, B, D * H]; h0 / c0 / h_n / c_n of the whole
// stack ([layers * D, B, H]). `saved` and `reverse`: one-direction plans only (run_train).
void RnnPlan::run_layer(std::size_t l, const float* in, std::size_t steps, std::size_t batch,
                        const float* h0, const float* c0, float* out, float* h_n, float* c_n,
                        float* saved, bool reverse, bool parallel) const {
  const std::size_t G = gates_, H = hidden_, D = dirs_, hp = hp_, cols = D * G * hp;
  const std::size_t rows = steps * batch, states = batch * H;
  const std::size_t threads = parallel ? static_cast<std::size_t>(num_threads()) : 1;
  thread_local ProjectionWorkspace ws;
  ws.xproj.resize(rows * cols);
  const Layer& L = layer_[l];
  // 1. Every step's input projection, both directions: one GEMM.
  Epilogue ep;
  ep.bias_col = L.bias.data();
  PackRowsByK a(in, L.input);
  gemm(*gemm_, rows, cols, L.input, GemmOperand{nullptr, &a},
       GemmOperand{L.w_ih.data(), nullptr}, ws.xproj.data(), cols, ep, parallel);
  // 2. The recurrence: each task owns a direction and a chunk of the batch for all steps.
  const std::size_t macs = rows * D * G * hp * H;
  std::size_t chunks =
      threads <= 1 || macs < kParallelMinMacs ? 1 : std::max<std::size_t>(1, threads / D);
  chunks = std::min(chunks, batch);
  const std::size_t tasks = D * chunks;
  // `ws` is thread_local: name this thread's buffer before other threads run the tasks.
  const float* xproj = ws.xproj.data();
  auto task = [&](std::size_t i) {
    const std::size_t d = i / chunks, ch = i % chunks;
    const std::size_t b0 = batch * ch / chunks, b1 = batch * (ch + 1) / chunks;
    const std::size_t s = (l * D + d) * states;
    run_direction(L, static_cast<int>(d), xproj + d * G * hp, steps, batch, b0, b1,
                  h0 ? h0 + s : nullptr, c0 && c_n ? c0 + s : nullptr, out + d * H, h_n + s,
                  c_n ? c_n + s : nullptr, saved, (d == 1) != reverse);
  };
  if (tasks == 1) {
    task(0);
  } else if (tasks > 1) {
    parallel_for(tasks, task);
  }
}

// Direction `dir` of one layer for batch rows [b0, b1): xproj row t*B + b (ld D*G*Hp), y row
// t*B + b (ld D*H, already offset to this direction's columns), h0/c0/h_n/c_n [B x H] of
// this layer and direction. `saved` (or null): [T][B][S * Hp], RnnStepArgs::saved's rows.
void RnnPlan::run_direction(const Layer& layer, int dir, const float* xproj, std::size_t steps,
                            std::size_t batch, std::size_t b0, std::size_t b1, const float* h0,
                            const float* c0, float* y, float* h_n, float* c_n, float* saved,
                            bool reverse) const {
  const std::size_t G = gates_, H = hidden_, D = dirs_, hp = hp_, rows = b1 - b0;
  const std::size_t ldx = D * G * hp, ldy = D * H;
  const bool lstm = kind_ == RnnKind::kLstm;
  thread_local StateWorkspace ws;
  ws.h[0].resize(rows * hp);
  ws.h[1].resize(rows * hp);
  if (lstm) ws.c.resize(rows * hp);
  auto init = [&](const float* src, float* dst) {
    for (std::size_t r = 0; r < rows; ++r) {
      float* d = dst + r * hp;
      if (src) std::memcpy(d, src + (b0 + r) * H, H * sizeof(float));
      else std::fill(d, d + H, 0.0f);
      std::fill(d + H, d + hp, 0.0f);
    }
  };
  init(h0, ws.h[0].data());
  if (lstm) init(c0, ws.c.data());

  // With no padding units the step writes h_t straight into y and reads h_{t-1} from there.
  const bool direct = hp == H;
  RnnStepArgs args;
  args.rows = rows;
  args.hidden = H;
  args.blocks = hp / variant_->unit_block;
  args.w = layer.w_hh[dir].data();
  args.bias_hn = lstm ? nullptr : layer.b_hn[dir].data();
  args.ldx = ldx;
  args.c = lstm ? ws.c.data() : nullptr;
  args.ldc = hp;
  const RnnStepFn step = lstm ? variant_->lstm : variant_->gru;
  args.lds = (lstm ? 6 : 4) * hp;
  auto y_row = [&](std::size_t t) { return y + (t * batch + b0) * ldy; };
  std::size_t t_prev = 0;
  for (std::size_t s = 0; s < steps; ++s) {
    if (stop_requested()) return;  // interrupted: the caller discards the outputs
    const std::size_t t = reverse ? steps - 1 - s : s;
    args.xproj = xproj + (t * batch + b0) * ldx;
    if (direct) {
      args.h_prev = s == 0 ? ws.h[0].data() : y_row(t_prev);
      args.ldh = s == 0 ? hp : ldy;
      args.h_next = y_row(t);
      args.ldhn = ldy;
    } else {
      args.h_prev = ws.h[s % 2].data();
      args.ldh = hp;
      args.h_next = ws.h[(s + 1) % 2].data();
      args.ldhn = hp;
    }
    args.backward = s % 2 == 1;
    args.saved = saved ? saved + (t * batch + b0) * args.lds : nullptr;
    step(args);
    if (!direct)
      for (std::size_t r = 0; r < rows; ++r)
        std::memcpy(y_row(t) + r * ldy, args.h_next + r * hp, H * sizeof(float));
    t_prev = t;
  }
  // Final states.
  const float* h_last = ws.h[0].data();
  std::size_t ld_last = hp;
  if (steps > 0) {
    h_last = direct ? y_row(t_prev) : ws.h[steps % 2].data();
    ld_last = direct ? ldy : hp;
  }
  for (std::size_t r = 0; r < rows; ++r) {
    std::memcpy(h_n + (b0 + r) * H, h_last + r * ld_last, H * sizeof(float));
    if (lstm) std::memcpy(c_n + (b0 + r) * H, ws.c.data() + r * hp, H * sizeof(float));
  }
}

}  // namespace fdl
