// Reference LSTM/GRU step kernels: plain loops over the packed W_hh, the specification of
// fdl::RnnStepFn (fastdl/rnn.h) every other variant is tested against. Never optimised.
// Always sums k in increasing order (`backward` only changes rounding in the fast variants).
#include "fastdl/activation.h"
#include "fastdl/rnn.h"

namespace {

constexpr std::size_t kUnitBlock = 4;  // as listed in variants.inc

// sum_k h[k] * W(g, j, k) for the packed layout of fastdl/rnn.h.
float recurrent(const fdl::RnnStepArgs& a, const float* h, int gates, int g, std::size_t j) {
  const std::size_t q = j / kUnitBlock, lane = j % kUnitBlock;
  float acc = 0.0f;
  for (std::size_t k = 0; k < a.hidden; ++k)
    acc += h[k] * a.w[((q * a.hidden + k) * gates + g) * kUnitBlock + lane];
  return acc;
}

float sigmoid(float x) { return fdl::activate_ref(x, fdl::Activation::kSigmoid, 0.0f); }
float tanh_(float x) { return fdl::activate_ref(x, fdl::Activation::kTanh, 0.0f); }

}  // namespace

void fdl_f32_lstm_step__ref(const fdl::RnnStepArgs& a) {
  const std::size_t hp = a.blocks * kUnitBlock;
  for (std::size_t r = 0; r < a.rows; ++r) {
    const float* h = a.h_prev + r * a.ldh;
    const float* x = a.xproj + r * a.ldx;
    float* c = a.c + r * a.ldc;
    for (std::size_t j = 0; j < hp; ++j) {
      const float i = sigmoid(x[j] + recurrent(a, h, 4, 0, j));
      const float f = sigmoid(x[hp + j] + recurrent(a, h, 4, 1, j));
      const float g = tanh_(x[2 * hp + j] + recurrent(a, h, 4, 2, j));
      const float o = sigmoid(x[3 * hp + j] + recurrent(a, h, 4, 3, j));
      c[j] = f * c[j] + i * g;
      const float tc = tanh_(c[j]);
      a.h_next[r * a.ldhn + j] = o * tc;
      if (a.saved) {
        float* s = a.saved + r * a.lds + j;
        s[0] = i;
        s[hp] = f;
        s[2 * hp] = g;
        s[3 * hp] = o;
        s[4 * hp] = c[j];
        s[5 * hp] = tc;
      }
    }
  }
}

void fdl_f32_gru_step__ref(const fdl::RnnStepArgs& a) {
  const std::size_t hp = a.blocks * kUnitBlock;
  for (std::size_t r = 0; r < a.rows; ++r) {
    const float* h = a.h_prev + r * a.ldh;
    const float* x = a.xproj + r * a.ldx;
    for (std::size_t j = 0; j < hp; ++j) {
      const float rg = sigmoid(x[j] + recurrent(a, h, 3, 0, j));
      const float z = sigmoid(x[hp + j] + recurrent(a, h, 3, 1, j));
      const float hn = recurrent(a, h, 3, 2, j) + a.bias_hn[j];
      const float n = tanh_(x[2 * hp + j] + rg * hn);
      a.h_next[r * a.ldhn + j] = (1.0f - z) * n + z * h[j];
      if (a.saved) {
        float* s = a.saved + r * a.lds + j;
        s[0] = rg;
        s[hp] = z;
        s[2 * hp] = n;
        s[3 * hp] = hn;
      }
    }
  }
}
