// Training one recurrent layer in one direction (PyTorch semantics, weights in torch's
// layout as for RnnPlan, see rnn.h): a forward that keeps what the backward needs, and
// backpropagation through time over the whole sequence.
//
// Forward (rnn_train_forward):
//   kLstm, kGru: RnnPlan::run_train -- the input projection of every step as one GEMM, then
//     the per-ISA step kernels over gate-interleaved W_hh, which also store the activated
//     gates (and c', tanh(c') / W_hn h + b_hn) of every step into `saved`.
//   kGruResetBefore, kRnnTanh, kRnnRelu: the input projection as one GEMM, then per step
//     GEMMs on the packed microkernels (the reset-before GRU multiplies W_hn by r * h, which
//     exists only after r: two products per step), the gates stored into `saved`.
//
// `saved` [T][B][S * hs], blocks of hs floats per row (hs = rnn_saved_hidden(...) >= H, the
// units past H unused):
//   kLstm            i, f, g, o, c_t, tanh(c_t)          S = 6
//   kGru             r, z, n, W_hn h_{t-1} + b_hn        S = 4
//   kGruResetBefore  r, z, n, r * h_{t-1}                S = 4
//   kRnnTanh/Relu    nothing (y is enough)               S = 0
//
// Backward (rnn_train_backward), after the gradients of oneDNN's and PyTorch's LSTM/GRU:
//   1. The step loop, backward in time: dh_t = dy_t + (what step t+1 sent back), with dc_t
//      (LSTM), gives the gradients of the pre-activation gates dG_t (input side) and dGh_t
//      (recurrent side; they differ for kGru, whose n row is dG_n * r there), then
//      dh_{t-1} = dGh_t W_hh (a small GEMM per step: the sequential part) + dh_t z (GRUs)
//      (+ d(r h) r for kGruResetBefore, whose d(r h) = dG_n W_hn is one more GEMM per step).
//   2. After the loop, over all T * B rows at once: dW_ih = dG^T X (one GEMM), dW_hh =
//      dGh^T H_prev (one GEMM over the outputs shifted by a step, plus one over the B rows
//      of h0; kGruResetBefore's n rows: dG_n^T (r H_prev) from `saved`), dx = dG W_ih (one
//      GEMM), db_ih / db_hh the column sums of dG / dGh.
//   The weight gradients sum T * B products per entry in float32: the GEMM adds uk.kc of
//   them per chain and then the chains, the biases kRnnBiasBlock rows per partial sum, so
//   the rounding error grows about as (block + T * B / block) * 2^-24 * sum |terms| rather
//   than T * B * 2^-24. The recurrence itself carries dh through T steps: its error grows
//   with T as the forward's does.
#pragma once

#include <cstddef>

#include "fastdl/gemm.h"
#include "fastdl/rnn.h"

namespace fdl {

constexpr std::size_t kRnnBiasBlock = 256;

// S of the table above.
std::size_t rnn_saved_blocks(RnnKind kind);
// hs: the units per saved block, for this kind on this step-kernel variant.
std::size_t rnn_saved_hidden(RnnKind kind, std::size_t hidden, const RnnVariant& v);

struct RnnTrainShape {
  RnnKind kind;
  std::size_t steps, batch, input, hidden;
  bool reverse;  // run from the last step to the first
};

// x [T][B][input]; h0, c0 [B][H] or null (zeros; c0: LSTM only); weights w. Writes y
// [T][B][H], h_n [B][H], c_n [B][H] (LSTM; else unused) and saved [T][B][S * hs], hs =
// rnn_saved_hidden(kind, H, v). Step kernel v (kLstm, kGru), GEMM microkernel uk; threaded
// with `parallel`.
void rnn_train_forward(const RnnVariant& v, const GemmUkernel& uk, const RnnTrainShape& p,
                       const float* x, const float* h0, const float* c0, const RnnWeights& w,
                       float* y, float* h_n, float* c_n, float* saved, bool parallel = true);

// The gradients of rnn_train_forward's outputs (same shape, inputs and weights; y and saved
// as it wrote them, hs its saved block size) from dy [T][B][H], dh_n, dc_n [B][H] (each null
// for zeros). Writes dx [T][B][input] (skipped when null), dh0 [B][H], dc0 [B][H] (LSTM;
// else unused), dw_ih [G*H][input], dw_hh [G*H][H], db_ih, db_hh [G*H] (all overwritten).
void rnn_train_backward(const GemmUkernel& uk, const RnnTrainShape& p, std::size_t hs,
                        const float* dy, const float* dh_n, const float* dc_n, const float* x,
                        const float* y, const float* saved, const float* h0, const float* c0,
                        const float* w_ih, const float* w_hh, float* dx, float* dh0, float* dc0,
                        float* dw_ih, float* dw_hh, float* db_ih, float* db_hh,
                        bool parallel = true);

}  // namespace fdl
