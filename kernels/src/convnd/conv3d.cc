// Conv3dPlan: weights packed once; per image and group one GEMM whose B operand is packed
// straight from the input by the N-d tiled im2col packer; 3x3x3 stride-1 layers take the
// Winograd form. See fastdl/conv3d.h for the contract.
#include <cstdint>
#include <cstring>

#include "fastdl/conv3d.h"
#include "fastdl/threadpool.h"
#include "../core/nonfinite.h"
#include "im2col-packer.h"
#include "winograd3d.h"

namespace fdl {

namespace {

bool is_pointwise(const Conv3dGeometry& g) {
  for (int a = 0; a < 3; ++a)
    if (g.kernel[a] != 1 || g.stride[a] != 1 || g.pad_before[a] != 0 || g.pad_after[a] != 0)
      return false;
  return true;
}

}  // namespace

Conv3dPlan::Conv3dPlan(const Conv3dGeometry& g, const float* weights, const float* bias,
                       Activation act, float alpha, const GemmUkernel* uk,
                       ConvAlgorithm algorithm)
    : g_(g), uk_(uk ? uk : &gemm_best()) {
  m_per_group_ = g.out_channels / g.groups;
  k_per_group_ = (g.in_channels / g.groups) * g.taps();
  packed_per_group_ = packed_size(m_per_group_, k_per_group_, uk_->mr);
  packed_.resize(packed_per_group_ * g.groups);
  for (std::size_t grp = 0; grp < g.groups; ++grp) {
    PackRowsByK src(weights + grp * m_per_group_ * k_per_group_, k_per_group_);
    pack_all(src, m_per_group_, k_per_group_, uk_->mr, packed_.data() + grp * packed_per_group_);
  }
  if (bias) {
    bias_.resize(g.out_channels);
    std::memcpy(bias_.data(), bias, g.out_channels * sizeof(float));
    ep_.bias_row = bias_.data();
  }
  ep_.act = act;
  ep_.alpha = alpha;
  if (algorithm != ConvAlgorithm::kIm2col && Conv3dWinograd::applies(g, *uk_))
    winograd_ = std::make_unique<Conv3dWinograd>(g, weights, *uk_);
}

Conv3dPlan::~Conv3dPlan() = default;

const char* Conv3dPlan::algorithm(const Size3& in) const {
  if (!winograd_ || !winograd_->fits(in)) return "im2col";
  return winograd_->best_tile(in) == 4 ? "winograd_f4" : "winograd_f2";
}

void Conv3dPlan::run(const float* x, std::size_t batch, const Size3& in, float* y) const {
  const Size3 out = g_.out_size(in);
  if (winograd_ && batch > 0 && volume(out) > 0 && winograd_->fits(in)) {
    const std::size_t in_image = g_.in_channels * volume(in);
    const std::size_t out_image = g_.out_channels * volume(out);
    for (std::size_t n = 0; n < batch; ++n) {
      const float* xn = x + n * in_image;
      // A tile's transforms mix all its pixels: an Inf/NaN would spread past its receptive
      // field, so such images take the GEMM path (PyTorch's semantics).
      if (has_nonfinite(xn, in_image)) {
        run_gemm(xn, 1, in, y + n * out_image);
      } else {
        winograd_->run(xn, in, ep_.bias_row, ep_.act, ep_.alpha, y + n * out_image);
      }
    }
    return;
  }
  run_gemm(x, batch, in, y);
}

void Conv3dPlan::run_gemm(const float* x, std::size_t batch, const Size3& in, float* y) const {
  const std::size_t L = volume(g_.out_size(in));
  const std::size_t cin_g = g_.in_channels / g_.groups;
  const std::size_t in_image = g_.in_channels * volume(in);
  const std::size_t out_image = g_.out_channels * L;
  const std::size_t jobs = batch * g_.groups;
  if (jobs == 0 || L == 0) return;
  const bool pointwise = is_pointwise(g_);
  // Many independent (image, group) GEMMs: one per task. Few: each GEMM splits itself.
  const bool outer_parallel = jobs >= 2 * static_cast<std::size_t>(num_threads());
  auto one = [&](std::size_t job) {
    const std::size_t n = job / g_.groups, grp = job % g_.groups;
    const float* xg = x + n * in_image + grp * cin_g * volume(in);
    float* yg = y + n * out_image + grp * m_per_group_ * L;
    Epilogue ep = ep_;
    if (ep.bias_row) ep.bias_row += grp * m_per_group_;
    GemmOperand a{packed_.data() + grp * packed_per_group_, nullptr};
    if (pointwise) {
      PackKByRows cols(xg, L);
      gemm(*uk_, m_per_group_, L, k_per_group_, a, GemmOperand{nullptr, &cols}, yg, L, ep,
           !outer_parallel);
    } else {
      Im2colPacker cols(g_, xg, in);
      gemm(*uk_, m_per_group_, L, k_per_group_, a, GemmOperand{nullptr, &cols}, yg, L, ep,
           !outer_parallel);
    }
  };
  if (outer_parallel) {
    parallel_for(jobs, one);
  } else {
    for (std::size_t j = 0; j < jobs; ++j) one(j);
  }
}

}  // namespace fdl
