// ConvChain: a depthwise-separable block -- an optional pointwise expansion, a 2-D
// depthwise convolution, a pointwise projection (MobileNet's blocks; the plans' fused
// bias and activation each) -- run strip by strip of output rows.
//
// Why: run layer by layer, the expanded tensor ([6 x channels][H][W]: 4.8 MB at
// MobileNetV2's 112x112 block) is written out to memory by the expansion and read back by
// the depthwise layer, whose output the projection reads back again. Per strip, the
// expanded rows and the depthwise output live in a per-thread scratch that stays in L2.
// The rows a strip shares with the next one (the depthwise window's overlap) are moved,
// not recomputed, within a thread's run of strips.
//
// The result equals running the three plans one after the other bit for bit (every output
// element computed by the same kernels over the same operands in the same order), except
// where the expansion's own run() would take the narrow kernel (4 or fewer input
// channels): the chain runs its packed GEMM, which rounds differently.
#pragma once

#include <cstddef>

#include "fastdl/conv.h"

namespace fdl {

class ConvChain {
 public:
  // expand: a pointwise plan (1x1, stride 1, no padding, one group) or null; depthwise: a
  // 2-D depthwise plan over expand's output channels (or the block's input channels);
  // project: a pointwise plan over the depthwise channels. The plans are referenced, not
  // copied: they must outlive the chain (set_weights on them reaches it). Throws
  // std::invalid_argument naming the plan that does not fit.
  ConvChain(const ConvPlan* expand, const ConvPlan& depthwise, const ConvPlan& project);

  // x: [batch][in_channels][in_h][in_w] -> y: [batch][project's out_channels][out_h][out_w]
  // (the depthwise layer's output size). Threaded over images and strips.
  void run(const float* x, std::size_t batch, std::size_t in_h, std::size_t in_w,
           float* y) const;

  // Output rows per strip for an input of in_h x in_w (at least 1).
  std::size_t strip_rows(std::size_t in_h, std::size_t in_w) const;

  // Whether chaining beats running the plans one by one: where there is an expansion
  // whose output (channels x in_h x in_w) outgrows the L2 cache (twice a strip's
  // scratch). Measured on MobileNetV2's blocks (AVX-512, 1 MiB L2, 1 thread, in the model):
  // 16->96->24 at 112x112 1.47 -> 1.07 ms, 24->144->24 at 56x56 0.73 -> 0.75; with caches
  // cold 1.77 -> 1.09 and 0.99 -> 0.76. At 28x28 (602 KB expanded) 5% slower in the model,
  // at 14x14 0-9%, and without an expansion (MobileNetV1's depthwise + pointwise) -10% to
  // +25%.
  // Also where the block is small (given its in_channels and out_channels: at most
  // kSmallBlockMacs multiply-adds in its three layers): one parallel run of strips instead
  // of three layers each too small to split well, the data in one core's cache. Measured
  // (AVX-512, in ShuffleNetV2 x0.5, c->c->c blocks of ~1M MACs at 28x28, 14x14, 7x7): 1
  // thread 18 -> 16 us, 2 threads 18 -> 12 us; blocks of 2.7-11M MACs were -10% to +10%.
  // Those are AMD's (Zen 4) figures. On Intel (Sapphire Rapids, AVX-512, 2 MiB L2) every
  // block with an expansion pays: MobileNetV2's, 1 thread chain / three plans 0.45 at
  // 112x112, 0.60-0.67 at 56x56, 0.81-0.87 at 28x28 to 7x7; 2 threads 0.48-0.90.
  static constexpr std::size_t kSmallBlockMacs = std::size_t(3) << 19;  // 1.5M
  static bool pays(bool expands, std::size_t channels, std::size_t in_h, std::size_t in_w,
                   std::size_t in_channels = 0, std::size_t out_channels = 0);

  std::size_t in_channels() const;
  std::size_t out_channels() const { return project_.geometry().out_channels; }
  const ConvGeometry& depthwise_geometry() const { return depthwise_.geometry(); }

 private:
  // One image's output rows [o0, o1), on the calling thread.
  void run_rows(const float* x, std::size_t in_h, std::size_t in_w, std::size_t o0,
                std::size_t o1, float* y) const;

  const ConvPlan* expand_;
  const ConvPlan& depthwise_;
  const ConvPlan& project_;
};

}  // namespace fdl
