// LinearPlan: W^T packed once as the GEMM's B operand; x is packed per call.
#include <algorithm>
#include <cstring>
#include <vector>

#include "fastdl/linear.h"

namespace fdl {

LinearPlan::LinearPlan(std::size_t in_features, std::size_t out_features, const float* weights,
                       const float* bias, Activation act, float alpha, const GemmUkernel* uk,
                       bool kn)
    : k_(in_features), n_(out_features), uk_(uk ? uk : &gemm_best()), kn_(kn) {
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
  if (kn_)
    pack_all(PackKByRows(weights, n_), n_, k_, uk_->nr, packed_.data());
  else
    pack_all(PackRowsByK(weights, k_), n_, k_, uk_->nr, packed_.data());
  if (bias && n_) std::memcpy(bias_.data(), bias, n_ * sizeof(float));  // n_ 0: no buffer
}

void LinearPlan::run(const float* x, std::size_t rows, float* y) const {
  std::shared_lock<std::shared_mutex> lock(weights_mu_);
  PackRowsByK a(x, k_);
  gemm(*uk_, rows, n_, k_, GemmOperand{nullptr, &a}, GemmOperand{packed_.data(), nullptr}, y,
       n_, ep_, true);
}

void linear_backward(const GemmUkernel& uk, std::size_t M, std::size_t K, std::size_t N,
                     const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db, bool accumulate, bool kn) {
  if (dx) {  // dx = dy [M x N] * W [N x K]; W's (n, k) at w[n * K + k], or w[k * N + n]
    PackRowsByK a(dy, N);
    PackKByRows b_nk(w, K);
    PackRowsByK b_kn(w, N);
    const Packer& b = kn ? static_cast<const Packer&>(b_kn) : b_nk;
    gemm(uk, M, K, N, GemmOperand{nullptr, &a}, GemmOperand{nullptr, &b}, dx, K, Epilogue{},
         true);
  }
  Epilogue ep;
  ep.accumulate = accumulate;
  if (kn) {  // dw = x^T [K x M] * dy [M x N]: both read column-wise
    PackKByRows a(x, K);
    PackKByRows b(dy, N);
    gemm(uk, K, N, M, GemmOperand{nullptr, &a}, GemmOperand{nullptr, &b}, dw, N, ep, true);
  } else {  // dw = dy^T [N x M] * x [M x K]
    PackKByRows a(dy, N);
    PackKByRows b(x, K);
    gemm(uk, N, K, M, GemmOperand{nullptr, &a}, GemmOperand{nullptr, &b}, dw, K, ep, true);
  }
  if (db) {
    if (!accumulate) std::fill(db, db + N, 0.0f);
    std::vector<float> partial(N);
    for (std::size_t r0 = 0; r0 < M; r0 += kLinearBiasBlock) {
      std::fill(partial.begin(), partial.end(), 0.0f);
      const std::size_t r1 = std::min(M, r0 + kLinearBiasBlock);
      for (std::size_t r = r0; r < r1; ++r)
        for (std::size_t j = 0; j < N; ++j) partial[j] += dy[r * N + j];
      for (std::size_t j = 0; j < N; ++j) db[j] += partial[j];
    }
  }
}

}  // namespace fdl
