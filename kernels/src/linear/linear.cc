// LinearPlan: W^T packed once as the GEMM's B operand; x is packed per call.
#include <cstring>

#include "fastdl/linear.h"

namespace fdl {

LinearPlan::LinearPlan(std::size_t in_features, std::size_t out_features, const float* weights,
                       const float* bias, Activation act, float alpha, const GemmUkernel* uk)
    : k_(in_features), n_(out_features), uk_(uk ? uk : &gemm_best()) {
  packed_.resize(packed_size(n_, k_, uk_->nr));
  if (bias) {
    bias_.resize(n_);
    ep_.bias_col = bias_.data();
  }
  ep_.act = act;
  ep_.alpha = alpha;
  set_weights(weights, bias);
}

void LinearPlan::set_weights(const float* weights, const float* bias) {
  std::unique_lock<std::shared_mutex> lock(weights_mu_);
  pack_all(PackRowsByK(weights, k_), n_, k_, uk_->nr, packed_.data());
  if (bias) std::memcpy(bias_.data(), bias, n_ * sizeof(float));
}

void LinearPlan::run(const float* x, std::size_t rows, float* y) const {
  std::shared_lock<std::shared_mutex> lock(weights_mu_);
  PackRowsByK a(x, k_);
  gemm(*uk_, rows, n_, k_, GemmOperand{nullptr, &a}, GemmOperand{packed_.data(), nullptr}, y,
       n_, ep_, true);
}

}  // namespace fdl
