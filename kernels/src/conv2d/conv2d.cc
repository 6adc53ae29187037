// Conv2dPlan: weights packed once; per image and group one GEMM whose B operand is packed
// straight from the input (tiled im2col). See fastdl/conv.h for the contract.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "fastdl/conv.h"
#include "fastdl/conv3d.h"
#include "fastdl/threadpool.h"
#include "../convnd/im2col-packer.h"
#include "../core/nonfinite.h"
#include "depthwise.h"
#include "winograd.h"

namespace fdl {

std::size_t Conv2dGeometry::out_h(std::size_t in_h) const {
  const std::size_t span = dilation_h * (kernel_h - 1) + 1, padded = in_h + pad_top + pad_bottom;
  return padded < span ? 0 : (padded - span) / stride_h + 1;
}

std::size_t Conv2dGeometry::out_w(std::size_t in_w) const {
  const std::size_t span = dilation_w * (kernel_w - 1) + 1, padded = in_w + pad_left + pad_right;
  return padded < span ? 0 : (padded - span) / stride_w + 1;
}

namespace {

bool is_pointwise(const Conv2dGeometry& g) {
  return g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 &&
         g.pad_top == 0 && g.pad_bottom == 0 && g.pad_left == 0 && g.pad_right == 0;
}

}  // namespace

Conv2dPlan::Conv2dPlan(const Conv2dGeometry& g, const float* weights, const float* bias,
                       Activation act, float alpha, const GemmUkernel* uk,
                       ConvAlgorithm algorithm)
    : g_(g), uk_(uk ? uk : &gemm_best()) {
  const bool is_depthwise = g.groups == g.in_channels && g.groups == g.out_channels;
  if (is_depthwise && (algorithm == ConvAlgorithm::kAuto || algorithm == ConvAlgorithm::kDepthwise))
    depthwise_ = depthwise_kernel(uk_->isa);
  winograd_ = (algorithm == ConvAlgorithm::kAuto || algorithm == ConvAlgorithm::kWinograd) &&
              WinogradConv::applies(g, *uk_);
  if (winograd_ || depthwise_) {
    const std::size_t n = g.out_channels * (g.in_channels / g.groups) * g.kernel_h * g.kernel_w;
    weights_.resize(n);
    std::memcpy(weights_.data(), weights, n * sizeof(float));
  }
  m_per_group_ = g.out_channels / g.groups;
  k_per_group_ = (g.in_channels / g.groups) * g.kernel_h * g.kernel_w;
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
}

Conv2dPlan::~Conv2dPlan() = default;

const WinogradConv& Conv2dPlan::winograd(int m) const {
  std::lock_guard<std::mutex> lock(winograd_mu_);
  auto& form = winograd_forms_[m == 4 ? 1 : 0];
  if (!form) form = std::make_unique<WinogradConv>(g_, m, weights_.data(), *uk_);
  return *form;
}

const char* Conv2dPlan::algorithm(std::size_t in_h, std::size_t in_w) const {
  if (depthwise_) return "depthwise";
  if (!winograd_) return "im2col";
  return WinogradConv::best_tile(g_, *uk_, in_h, in_w) == 4 ? "winograd_f4" : "winograd_f2";
}

void Conv2dPlan::run(const float* x, std::size_t batch, std::size_t in_h, std::size_t in_w,
                     float* y) const {
  const std::size_t oh = g_.out_h(in_h), ow = g_.out_w(in_w);
  if (depthwise_ && batch > 0 && oh * ow > 0) {
    const std::size_t planes = batch * g_.out_channels, taps = g_.kernel_h * g_.kernel_w;
    parallel_for(planes, [&](std::size_t p) {
      const std::size_t c = p % g_.out_channels;
      depthwise_(g_, x + p * in_h * in_w, in_h, in_w, weights_.data() + c * taps,
                 ep_.bias_row ? ep_.bias_row[c] : 0.0f, ep_.act, ep_.alpha, y + p * oh * ow);
    });
    return;
  }
  if (winograd_ && batch > 0 && oh * ow > 0) {
    const WinogradConv& form = winograd(WinogradConv::best_tile(g_, *uk_, in_h, in_w));
    const std::size_t in_image = g_.in_channels * in_h * in_w;
    const std::size_t out_image = g_.out_channels * oh * ow;
    for (std::size_t n = 0; n < batch; ++n) {
      const float* xn = x + n * in_image;
      // A tile's transforms mix all its pixels: an Inf/NaN would spread past its receptive
      // field, so such images take the GEMM path (PyTorch's semantics, DESIGN.md 5).
      if (has_nonfinite(xn, in_image)) {
        run_gemm(xn, 1, in_h, in_w, y + n * out_image);
      } else {
        form.run(xn, in_h, in_w, ep_.bias_row, ep_.act, ep_.alpha, y + n * out_image);
      }
    }
    return;
  }
  run_gemm(x, batch, in_h, in_w, y);
}

void Conv2dPlan::run_gemm(const float* x, std::size_t batch, std::size_t in_h,
                          std::size_t in_w, float* y) const {
  const std::size_t oh = g_.out_h(in_h), ow = g_.out_w(in_w);
  const std::size_t cin_g = g_.in_channels / g_.groups;
  const std::size_t in_image = g_.in_channels * in_h * in_w;
  const std::size_t out_image = g_.out_channels * oh * ow;
  const std::size_t jobs = batch * g_.groups;
  if (jobs == 0 || oh * ow == 0) return;
  const bool pointwise = is_pointwise(g_);
  // Many independent (image, group) GEMMs: one per task. Few: each GEMM splits itself.
  const bool outer_parallel = jobs >= 2 * static_cast<std::size_t>(num_threads());
  const Conv3dGeometry g3 = to_3d(g_);
  auto one = [&](std::size_t job) {
    const std::size_t n = job / g_.groups, grp = job % g_.groups;
    const float* xg = x + n * in_image + grp * cin_g * in_h * in_w;
    float* yg = y + n * out_image + grp * m_per_group_ * oh * ow;
    Epilogue ep = ep_;
    if (ep.bias_row) ep.bias_row += grp * m_per_group_;
    GemmOperand a{packed_.data() + grp * packed_per_group_, nullptr};
    if (pointwise) {
      PackKByRows cols(xg, in_h * in_w);
      gemm(*uk_, m_per_group_, oh * ow, k_per_group_, a, GemmOperand{nullptr, &cols}, yg,
           oh * ow, ep, !outer_parallel);
    } else {
      Im2colPacker cols(g3, xg, Size3{1, in_h, in_w});
      gemm(*uk_, m_per_group_, oh * ow, k_per_group_, a, GemmOperand{nullptr, &cols}, yg,
           oh * ow, ep, !outer_parallel);
    }
  };
  if (outer_parallel) {
    parallel_for(jobs, one);
  } else {
    for (std::size_t j = 0; j < jobs; ++j) one(j);
  }
}

void im2col(const Conv2dGeometry& g, const float* x, std::size_t in_h, std::size_t in_w,
            float* cols) {
  im2col(to_3d(g), x, Size3{1, in_h, in_w}, cols);
}

void col2im(const Conv2dGeometry& g, const float* cols, std::size_t in_h, std::size_t in_w,
            float* y) {
  col2im(to_3d(g), cols, Size3{1, in_h, in_w}, y);
}

}  // namespace fdl
