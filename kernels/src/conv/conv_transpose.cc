// ConvTransposePlan: W^T packed once; per (image, group, run of output channels) GEMMs over
// blocks of input positions, each block of columns scattered into y by col2im while it is
// still in cache. See fastdl/conv_transpose.h for the contract.
#include <algorithm>
#include <numeric>

#include "fastdl/conv_transpose.h"
#include "fastdl/threadpool.h"
#include "fastdl/variants.h"

namespace fdl {

namespace {

// Target size of one thread's block of columns (floats, 256 KiB): within L2 with the
// GEMM's packed B block; larger blocks amortise re-reading the packed weights per block.
constexpr std::size_t kColBlockFloats = 65536;

struct Workspace {
  AlignedBuffer cols;
};
Workspace& workspace() {
  static thread_local Workspace ws;
  return ws;
}

}  // namespace

ConvTransposePlan::ConvTransposePlan(const ConvGeometry& g, const float* weights,
                                     const float* bias, Activation act, float alpha,
                                     const GemmUkernel* uk)
    : g_(g), uk_(uk ? uk : &gemm_best()),
      act_variant_(&variant_for(activation_variants(), uk_->isa)),
      col2im_(&variant_for(col2im_variants(), uk_->isa)), act_(act), alpha_(alpha),
      col_block_(kColBlockFloats) {
  const std::size_t taps = g.taps();
  cin_g_ = g.in_channels / g.groups;
  cout_g_ = g.out_channels / g.groups;
  m_per_group_ = cout_g_ * taps;
  // A run of output channels starts on a whole MR panel of packed rows (row = co*taps + t).
  const std::size_t mr = static_cast<std::size_t>(uk_->mr);
  channel_align_ = mr / std::gcd(mr, taps);
  packed_per_group_ = packed_size(m_per_group_, cin_g_, uk_->mr);
  packed_.resize(packed_per_group_ * g.groups);
  bias_.resize(g.out_channels);
  set_weights(weights, bias);
}

void ConvTransposePlan::set_weights(const float* weights, const float* bias) {
  std::unique_lock<std::shared_mutex> lock(weights_mu_);
  for (std::size_t grp = 0; grp < g_.groups; ++grp) {
    // W_g [Cin/g][Cout/g * taps] read transposed: element (r, k) at src[k * ld + r].
    PackKByRows src(weights + grp * cin_g_ * m_per_group_, m_per_group_);
    pack_all(src, m_per_group_, cin_g_, uk_->mr, packed_.data() + grp * packed_per_group_);
  }
  for (std::size_t c = 0; c < g_.out_channels; ++c) bias_.data()[c] = bias ? bias[c] : 0.0f;
}

Size3 ConvTransposePlan::default_out_size(const Size3& in) const {
  Size3 out{};
  for (int a = 0; a < 3; ++a) {
    const std::ptrdiff_t o =
        (static_cast<std::ptrdiff_t>(in[a]) - 1) * static_cast<std::ptrdiff_t>(g_.stride[a]) -
        static_cast<std::ptrdiff_t>(g_.pad_before[a] + g_.pad_after[a]) +
        static_cast<std::ptrdiff_t>(g_.dilation[a] * (g_.kernel[a] - 1)) + 1;
    out[a] = o > 0 ? static_cast<std::size_t>(o) : 0;
  }
  return out;
}

void ConvTransposePlan::run(const float* x, std::size_t batch, const Size3& in,
                            const Size3& out, float* y) const {
  const std::size_t L = volume(in), plane = volume(out), taps = g_.taps();
  if (batch == 0 || plane == 0 || g_.out_channels == 0) return;
  std::shared_lock<std::shared_mutex> lock(weights_mu_);
  // Work units: (image, group, run of channel_align_ * q output channels). Runs write
  // disjoint channels of y, so they never race in the scatter.
  const std::size_t threads = static_cast<std::size_t>(num_threads());
  const std::size_t outer = batch * g_.groups;
  const std::size_t unit_max = (cout_g_ + channel_align_ - 1) / channel_align_;
  std::size_t runs = 1;
  if (outer < 2 * threads) runs = std::min(unit_max, (2 * threads + outer - 1) / outer);
  const std::size_t K = cin_g_;
  auto task = [&](std::size_t job) {
    const std::size_t run = job % runs, og = job / runs;
    const std::size_t n = og / g_.groups, grp = og % g_.groups;
    const std::size_t c0 = std::min(cout_g_, unit_max * run / runs * channel_align_);
    const std::size_t c1 = std::min(cout_g_, unit_max * (run + 1) / runs * channel_align_);
    if (c0 >= c1) return;
    const std::size_t co = grp * cout_g_ + c0;  // first output channel of this run
    float* yr = y + (n * g_.out_channels + co) * plane;
    for (std::size_t c = 0; c < c1 - c0; ++c)
      std::fill(yr + c * plane, yr + (c + 1) * plane, bias_.data()[co + c]);
    const std::size_t rows = (c1 - c0) * taps;
    if (L > 0 && K > 0) {
      const float* xg = x + (n * g_.in_channels + grp * cin_g_) * L;
      const float* a = packed_.data() + grp * packed_per_group_ + c0 * taps * K;
      const std::size_t nr = static_cast<std::size_t>(uk_->nr);
      // Column blocks sized for a group's whole run of channels, whatever this run's share:
      // the blocks set the order in which col2im adds the taps into y, and that order may
      // not depend on the thread count (which sets `runs`).
      std::size_t block = std::max<std::size_t>(1, col_block_ / (cout_g_ * taps));
      block = std::min(L, std::max(nr, block / nr * nr));
      Workspace& ws = workspace();
      ws.cols.resize(rows * block);
      for (std::size_t l0 = 0; l0 < L; l0 += block) {
        const std::size_t nb = std::min(block, L - l0);
        PackKByRows b(xg + l0, L);
        gemm(*uk_, rows, nb, K, GemmOperand{a, nullptr}, GemmOperand{nullptr, &b},
             ws.cols.data(), nb, Epilogue{}, false);
        col2im_->fn(g_, c1 - c0, ws.cols.data(), nb, l0, nb, in, out, yr);
      }
    }
    if (act_ != Activation::kNone)
      act_variant_->activation((c1 - c0) * plane, yr, yr, act_, alpha_);
  };
  parallel_for(outer * runs, task);
}

}  // namespace fdl
