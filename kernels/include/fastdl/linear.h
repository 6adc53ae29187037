// Fully connected layer on the packed GEMM.
#pragma once

#include <cstddef>
#include <mutex>
#include <shared_mutex>

#include "fastdl/buffer.h"
#include "fastdl/common.h"
#include "fastdl/gemm.h"

namespace fdl {

// Dense GEMM-backed linear layer: y[M x N] = act(x[M x K] * W^T + b), W: [N x K].
class LinearPlan {
 public:
  LinearPlan(std::size_t in_features, std::size_t out_features, const float* weights,
             const float* bias, Activation act, float alpha, const GemmUkernel* uk = nullptr);
  // New weights [N x K] and bias (null iff the plan was built without one), repacked in
  // place: no allocation. Waits for running calls to finish.
  void set_weights(const float* weights, const float* bias);
  // x [rows x K] -> y [rows x N]. Calls from several threads at once are safe.
  void run(const float* x, std::size_t rows, float* y) const;
  const GemmUkernel& ukernel() const { return *uk_; }

 private:
  std::size_t k_, n_;
  const GemmUkernel* uk_;
  AlignedBuffer packed_;  // W^T packed as B (full-K panels of NR columns)
  AlignedBuffer bias_;
  Epilogue ep_;
  mutable std::shared_mutex weights_mu_;  // run() holds it shared, set_weights() exclusive
};

}  // namespace fdl
