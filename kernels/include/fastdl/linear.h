// Fully connected layer on the packed GEMM.
#pragma once

#include <cstddef>
#include <mutex>
#include <shared_mutex>

#include "fastdl/buffer.h"
#include "fastdl/common.h"
#include "fastdl/gemm.h"

namespace fdl {

// Dense GEMM-backed linear layer: y[M x N] = act(x[M x K] * W^T + b), W: [N x K], or
// with `kn` W^T [K x N] (Keras' kernel: packed straight, no transpose; both layouts pack
// to the same panels).
class LinearPlan {
 public:
  LinearPlan(std::size_t in_features, std::size_t out_features, const float* weights,
             const float* bias, Activation act, float alpha, const GemmUkernel* uk = nullptr,
             bool kn = false);
  // New weights (in the plan's layout) and bias (null iff the plan was built without one),
  // repacked in place: no allocation. Waits for running calls to finish.
  void set_weights(const float* weights, const float* bias);
  // x [rows x K] -> y [rows x N]. Calls from several threads at once are safe.
  void run(const float* x, std::size_t rows, float* y) const;
  const GemmUkernel& ukernel() const { return *uk_; }

 private:
  std::size_t k_, n_;
  const GemmUkernel* uk_;
  bool kn_;
  AlignedBuffer packed_;  // W^T packed as B (full-K panels of NR columns)
  AlignedBuffer bias_;
  Epilogue ep_;
  mutable std::shared_mutex weights_mu_;  // run() holds it shared, set_weights() exclusive
};

// The gradients of y = x * W^T + b (x [M x K], W [N x K]) from dy [M x N], on microkernel uk
// (threaded):
//   dx [M x K] = dy * W          (skipped when dx is null: a first layer needs none)
//   dw [N x K] = dy^T * x
//   db [N]     = sum of dy's rows  (skipped when db is null)
// With `kn`, w holds W^T [K x N] (Keras' kernel) and dw gets dW^T [K x N] = x^T * dy.
// With `accumulate`, dw and db are added to what they hold (a weight used several times);
// dx is always overwritten. Sums over the M rows run in float32 in blocks: the GEMM adds
// uk.kc rows per chain and then the blocks, db kLinearBiasBlock rows per partial sum; the
// rounding error of an entry grows about as (block + M / block) * 2^-24 * sum |terms|
// rather than M * 2^-24.
constexpr std::size_t kLinearBiasBlock = 256;
void linear_backward(const GemmUkernel& uk, std::size_t M, std::size_t K, std::size_t N,
                     const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db, bool accumulate, bool kn = false);

}  // namespace fdl
