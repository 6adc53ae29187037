// Fully connected layer on the packed GEMM.
#pragma once

#include <cstddef>

#include "fastdl/buffer.h"
#include "fastdl/common.h"
#include "fastdl/gemm.h"

namespace fdl {

// Dense GEMM-backed linear layer: y[M x N] = act(x[M x K] * W^T + b), W: [N x K].
class LinearPlan {
 public:
  LinearPlan(std::size_t in_features, std::size_t out_features, const float* weights,
             const float* bias, Activation act, float alpha, const GemmUkernel* uk = nullptr);
  void run(const float* x, std::size_t rows, float* y) const;
  const GemmUkernel& ukernel() const { return *uk_; }

 private:
  std::size_t k_, n_;
  const GemmUkernel* uk_;
  AlignedBuffer packed_;  // W^T packed as B (full-K panels of NR columns)
  AlignedBuffer bias_;
  Epilogue ep_;
};

}  // namespace fdl
