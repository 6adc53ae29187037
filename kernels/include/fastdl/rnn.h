// LSTM and GRU layers (PyTorch semantics: torch.nn.LSTM / torch.nn.GRU, inference; the
// training forward and backpropagation through time: rnn_train.h).
//
//   LSTM, gates i, f, g, o (rows of W in that order, H each):
//     i = sigmoid(.), f = sigmoid(.), g = tanh(.), o = sigmoid(.)   of  W_i x + b_i + W_h h + b_h
//     c' = f * c + i * g,   h' = o * tanh(c')
//   GRU, gates r, z, n:
//     r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
//     n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h
//
// How a layer runs (RnnPlan):
//  1. The input projection of every time step, both directions at once, is ONE packed GEMM
//     (fastdl/gemm.h) with the biases folded into its epilogue: xproj[t*B + b] =
//     x[t][b] W_ih^T + b_ih + b_hh (GRU's n gate: + b_in only; b_hn is applied inside r*(.)).
//     Its columns are laid out [direction][gate][Hp], Hp = H rounded up to the unit block.
//  2. The recurrence runs step by step through a per-ISA step kernel (src/rnn/variants.inc)
//     over W_hh packed once, gate-interleaved: for each block of UB hidden units and each
//     k < H, the UB rows of every gate of those units are adjacent, so one pass over a block
//     produces all gates of UB units and the gate activations and state update happen in
//     registers. Threads split the batch (and the directions) for the whole sequence: no
//     fork/join per time step.
#pragma once

#include <cstddef>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "fastdl/buffer.h"
#include "fastdl/common.h"
#include "fastdl/gemm.h"

namespace fdl {

// kLstm and kGru run in RnnPlan (inference and training); the other kinds only in the
// training pair of rnn_train.h: kGruResetBefore is Keras' GRU with reset_after=False
// (n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)), kRnnTanh / kRnnRelu torch.nn.RNN
// (Keras' SimpleRNN): h' = act(W_ih x + b_ih + W_hh h + b_hh).
enum class RnnKind : int { kLstm = 0, kGru = 1, kGruResetBefore = 2, kRnnTanh = 3, kRnnRelu = 4 };

// Gates per unit: 4 (LSTM), 3 (the GRUs) or 1 (the plain RNNs).
inline int rnn_gates(RnnKind kind) {
  if (kind == RnnKind::kLstm) return 4;
  return kind == RnnKind::kRnnTanh || kind == RnnKind::kRnnRelu ? 1 : 3;
}

// One time step of rows [0, rows) of a batch, all Hp units (Hp = blocks * unit_block).
// Packed W_hh (see rnn_pack_recurrent): block q, input unit k, gate g, lane u at
//   w[((q * hidden + k) * G + g) * UB + u].
// For each row r (pointers advance by their ld per row):
//   pre[g][j] = xproj[r][g * Hp + j] + sum_{k < hidden} h_prev[r][k] * Wpacked(g, j, k)
// then the update above writes h_next[r][j] for j < Hp (and, LSTM, c[r][j] in place).
// Reads h_prev[r][j] for j < Hp (GRU's z * h). Units j >= H hold zero weights and bias: they
// stay 0 when they start at 0. `backward` walks the blocks and k in reverse order (the
// result is the same up to rounding): alternating it from step to step makes the start of
// one step's pass over W_hh the part the previous step read last, still in L1.
// With `saved` (training), row r also stores what backpropagation needs, blocks of Hp
// floats at saved + r * lds: LSTM i, f, g, o (activated), c', tanh(c'); GRU r, z, n,
// W_hn h + b_hn (rnn_train.h reads them back).
struct RnnStepArgs {
  std::size_t rows = 0, hidden = 0, blocks = 0;
  const float* w = nullptr;
  const float* bias_hn = nullptr;  // GRU: b_hn [Hp] (zero-padded); LSTM: unused
  const float* xproj = nullptr;
  std::size_t ldx = 0;
  const float* h_prev = nullptr;
  std::size_t ldh = 0;
  float* h_next = nullptr;
  std::size_t ldhn = 0;
  float* c = nullptr;  // LSTM only
  std::size_t ldc = 0;
  bool backward = false;
  float* saved = nullptr;  // training: 6 (LSTM) or 4 (GRU) blocks of Hp per row, or null
  std::size_t lds = 0;
};

using RnnStepFn = void (*)(const RnnStepArgs& args);

struct RnnVariant {
  const char* name;  // fdl_f32_rnn__<isa>
  Isa isa;
  int unit_block;    // UB: hidden units per packed block
  RnnStepFn lstm;
  RnnStepFn gru;
};

// Every variant compiled into this build, best first (including ones this CPU cannot run).
const std::vector<RnnVariant>& rnn_variants();
// The variant for the active ISA (see isa.h).
const RnnVariant& rnn_best();
// nullptr if no variant has that name.
const RnnVariant* rnn_find(const char* name);

// H rounded up to a multiple of unit_block.
std::size_t rnn_padded_hidden(std::size_t hidden, int unit_block);
// Packs W_hh [G*H x H] (torch layout, gate-major rows) into dst: G * Hp * H floats,
// zero rows for the padding units.
void rnn_pack_recurrent(RnnKind kind, std::size_t hidden, int unit_block, const float* w_hh,
                        float* dst);

// Weights of one layer and direction, torch layout: w_ih [G*H x in], w_hh [G*H x H],
// b_ih / b_hh [G*H] or null (zeros).
struct RnnWeights {
  const float* w_ih;
  const float* w_hh;
  const float* b_ih;
  const float* b_hh;
};

// A stack of `layers` LSTM/GRU layers, uni- or bidirectional, with all weights packed once.
class RnnPlan {
 public:
  // weights[l * D + d]: layer l, direction d (0 forward, 1 reverse), D = 2 if bidirectional.
  // Layer 0 reads `input` features, the others D * hidden.
  RnnPlan(RnnKind kind, std::size_t input, std::size_t hidden, std::size_t layers,
          bool bidirectional, const RnnWeights* weights, const RnnVariant* variant = nullptr,
          const GemmUkernel* gemm = nullptr);

  // New weights of the same shapes (layout as for the constructor), repacked in place: no
  // allocation. Waits for running calls to finish.
  void set_weights(const RnnWeights* weights);

  // x [T, B, input] dense. h0, c0 [layers * D, B, hidden] or null (zeros; c0: LSTM only).
  // Writes y [T, B, D * hidden], h_n and (LSTM) c_n [layers * D, B, hidden]. With
  // `parallel`, batch chunks and directions run on the thread pool. Calls from several
  // threads at once are safe.
  void run(const float* x, std::size_t steps, std::size_t batch, const float* h0,
           const float* c0, float* y, float* h_n, float* c_n, bool parallel = true) const;

  // The training forward of a one-layer, one-direction plan: run() (direction `reverse`:
  // from the last step to the first) that also writes `saved` [steps][batch][S * Hp]
  // (S = 6 LSTM, 4 GRU; see RnnStepArgs::saved), what rnn_train_backward (rnn_train.h)
  // reads back.
  void run_train(const float* x, std::size_t steps, std::size_t batch, const float* h0,
                 const float* c0, float* y, float* h_n, float* c_n, float* saved, bool reverse,
                 bool parallel = true) const;

  // Hp: the hidden size rounded up to the variant's unit block.
  std::size_t padded_hidden() const { return hp_; }
  RnnKind kind() const { return kind_; }
  const RnnVariant& variant() const { return *variant_; }
  const GemmUkernel& gemm_ukernel() const { return *gemm_; }

 private:
  struct Layer {
    std::size_t input;
    AlignedBuffer w_ih;    // both directions' W_ih, columns [d][g][Hp], packed as GEMM B
    AlignedBuffer bias;    // [D * G * Hp], the GEMM epilogue's bias_col
    AlignedBuffer w_hh[2]; // per direction, rnn_pack_recurrent
    AlignedBuffer b_hn[2]; // GRU: per direction, [Hp]
  };
  void run_layer(std::size_t l, const float* in, std::size_t steps, std::size_t batch,
                 const float* h0, const float* c0, float* out, float* h_n, float* c_n,
                 float* saved, bool reverse, bool parallel) const;
  void run_direction(const Layer& layer, int dir, const float* xproj, std::size_t steps,
                     std::size_t batch, std::size_t b0, std::size_t b1, const float* h0,
                     const float* c0, float* y, float* h_n, float* c_n, float* saved,
                     bool reverse) const;

  RnnKind kind_;
  std::size_t input_, hidden_, layers_, dirs_, hp_;
  int gates_;
  const RnnVariant* variant_;
  const GemmUkernel* gemm_;
  std::vector<Layer> layer_;
  mutable std::shared_mutex weights_mu_;  // run() holds it shared, set_weights() exclusive
};

}  // namespace fdl
