// ConvPlan: weights packed once (and repacked in place by set_weights); per image and group
// one GEMM whose B operand is packed straight from the input (tiled im2col), or the
// depthwise, Winograd or direct kernels where they apply. See fastdl/conv.h.
#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "fastdl/conv.h"
#include "fastdl/threadpool.h"
#include "fastdl/variants.h"
#include "../core/nonfinite.h"
#include "depthwise-window.h"
#include "im2col-packer.h"
#include "implicit-gemm.h"
#include "padded-grid.h"
#include "winograd.h"
#include "winograd3d.h"

namespace fdl {

namespace {

// dst [cols][rows] = src [rows][cols]^T for the columns [c0, c1): 4x4 blocks through
// registers (GCC/Clang vector extensions: SSE shuffles on x86, NEON on ARM; 4x faster than
// element by element, which cost MobileNetV2's 160->960 7x7 layer a sixth of its time), the
// last rows and columns element by element.
void transpose_columns(const float* src, std::size_t rows, std::size_t cols, float* dst,
                       std::size_t c0, std::size_t c1) {
  typedef float V4 __attribute__((vector_size(16)));
  const std::size_t rows4 = rows - rows % 4;
  std::size_t c = c0;
  for (; c + 4 <= c1; c += 4) {
    for (std::size_t r = 0; r < rows4; r += 4) {
      V4 a, b, e, f;
      std::memcpy(&a, src + r * cols + c, sizeof a);
      std::memcpy(&b, src + (r + 1) * cols + c, sizeof b);
      std::memcpy(&e, src + (r + 2) * cols + c, sizeof e);
      std::memcpy(&f, src + (r + 3) * cols + c, sizeof f);
      const V4 ab_lo = __builtin_shufflevector(a, b, 0, 4, 1, 5);
      const V4 ab_hi = __builtin_shufflevector(a, b, 2, 6, 3, 7);
      const V4 ef_lo = __builtin_shufflevector(e, f, 0, 4, 1, 5);
      const V4 ef_hi = __builtin_shufflevector(e, f, 2, 6, 3, 7);
      const V4 out[4] = {__builtin_shufflevector(ab_lo, ef_lo, 0, 1, 4, 5),
                         __builtin_shufflevector(ab_lo, ef_lo, 2, 3, 6, 7),
                         __builtin_shufflevector(ab_hi, ef_hi, 0, 1, 4, 5),
                         __builtin_shufflevector(ab_hi, ef_hi, 2, 3, 6, 7)};
      for (std::size_t k = 0; k < 4; ++k) std::memcpy(dst + (c + k) * rows + r, &out[k], sizeof(V4));
    }
    for (std::size_t k = c; k < c + 4; ++k)
      for (std::size_t r = rows4; r < rows; ++r) dst[k * rows + r] = src[r * cols + k];
  }
  for (; c < c1; ++c)
    for (std::size_t r = 0; r < rows; ++r) dst[c * rows + r] = src[r * cols + c];
}

// dst [cols][rows] = src [rows][cols]^T, with `parallel` split over the thread pool by
// groups of 4 columns.
void transpose(const float* src, std::size_t rows, std::size_t cols, float* dst, bool parallel) {
  const std::size_t groups = (cols + 3) / 4;
  auto run = [&](std::size_t first, std::size_t count) {
    transpose_columns(src, rows, cols, dst, first * 4, std::min(cols, (first + count) * 4));
  };
  if (parallel) {
    parallel_runs(groups, rows * cols, run);
  } else {
    run(0, groups);
  }
}

bool is_pointwise(const ConvGeometry& g) {
  for (int a = 0; a < 3; ++a)
    if (g.kernel[a] != 1 || g.stride[a] != 1 || g.pad_before[a] != 0 || g.pad_after[a] != 0)
      return false;
  return true;
}

// One kernel per channel and nothing to do along depth: every (image, channel, depth) plane
// is an independent 2-D depthwise convolution.
bool is_depthwise(const ConvGeometry& g) {
  return g.groups == g.in_channels && g.groups == g.out_channels && g.kernel[0] == 1 &&
         g.stride[0] == 1 && g.pad_before[0] == 0 && g.pad_after[0] == 0;
}

// Few input channels, 2-D, groups 1, dilation 1, the same stride 1 or 2 both ways.
bool is_narrow(const ConvGeometry& g) {
  return g.groups == 1 && g.in_channels <= kNarrowMaxChannels && g.kernel[0] == 1 &&
         g.stride[0] == 1 && g.pad_before[0] == 0 && g.pad_after[0] == 0 &&
         g.dilation[1] == 1 && g.dilation[2] == 1 && g.stride[1] == g.stride[2] &&
         (g.stride[1] == 1 || g.stride[1] == 2);
}

std::size_t narrow_blocks(const ConvGeometry& g) {
  return (g.out_channels + kNarrowBlock - 1) / kNarrowBlock;
}

}  // namespace

std::size_t narrow_padded_width(std::size_t out_w, std::size_t kernel_w, std::size_t stride) {
  const std::size_t steps = (out_w + kNarrowStep - 1) / kNarrowStep;
  const std::size_t width = steps * kNarrowStep * stride + kernel_w + 1;
  return stride == 2 ? width + width % 2 : width;  // stride 2: two halves of equal length
}

ConvPlan::ConvPlan(const ConvGeometry& g, const float* weights, const float* bias,
                   Activation act, float alpha, const GemmUkernel* uk, ConvAlgorithm algorithm)
    : g_(g), uk_(uk ? uk : &gemm_best()) {
  // kAuto takes the SIMD kernels only; the reference variants serve forced algorithms.
  const bool simd = uk_->isa != Isa::kRef;
  const bool auto_pick = algorithm == ConvAlgorithm::kAuto && simd;
  direct_ = algorithm == ConvAlgorithm::kDirect;
  if (is_depthwise(g) && (auto_pick || algorithm == ConvAlgorithm::kDepthwise)) {
    depthwise_ = &variant_for(depthwise_variants(), uk_->isa);
    for (const DepthwiseChannelsVariant& v : depthwise_channels_variants())
      if (v.isa == uk_->isa) depthwise_channels_ = &v;
  }
  // Auto: windows up to 7x7 (K = cin*KH*KW <= 196 is too small for im2col's packing to
  // pay; measured on AVX-512 and AVX2 kernels, 3 channels, 5x5 and 7x7, strides 1 and 2:
  // narrow 8-20% faster, the ResNet stem 2.72 -> 2.18 ms).
  if (!depthwise_ && is_narrow(g) &&
      ((auto_pick && g.kernel[1] <= 7 && g.kernel[2] <= 7) ||
       algorithm == ConvAlgorithm::kNarrow))
    narrow_ = &variant_for(narrow_variants(), uk_->isa);
  // The GEMM path's implicit form: the GEMM's ISA's own variant, which reads its A panels
  // (none for the reference GEMM, nor on NEON: no free masked loads).
  for (const ImplicitGemmVariant& v : implicit_gemm_variants())
    if (simd && !direct_ && v.isa == uk_->isa && v.mr == static_cast<std::size_t>(uk_->mr))
      implicit_ = &v;
  if (algorithm == ConvAlgorithm::kWinogradF2) forced_tile_ = 2;
  if (algorithm == ConvAlgorithm::kWinogradF4) forced_tile_ = 4;
  const bool want_winograd =
      auto_pick || algorithm == ConvAlgorithm::kWinograd || forced_tile_ != 0;
  if (!depthwise_ && !narrow_ && want_winograd) {
    winograd_3d_ = Conv3dWinograd::applies(g);
    if (winograd_3d_ || WinogradConv::applies(g))
      winograd_ = &variant_for(winograd_variants(), uk_->isa);
  }
  weights_.resize(g.out_channels * g.weights_per_output());
  m_per_group_ = g.out_channels / g.groups;
  k_per_group_ = g.weights_per_output();
  packed_per_group_ = packed_size(m_per_group_, k_per_group_, uk_->mr);
  packed_.resize(packed_per_group_ * g.groups);
  if (bias) {
    bias_.resize(g.out_channels);
    ep_.bias_row = bias_.data();
  }
  if (narrow_) narrow_packed_.resize(narrow_blocks(g) * (k_per_group_ + 1) * kNarrowBlock);
  ep_.act = act;
  ep_.alpha = alpha;
  pack(weights, bias);
  if (winograd_ && winograd_3d_)
    winograd3d_ = std::make_unique<Conv3dWinograd>(g, weights_.data(), *uk_, *winograd_);
}

ConvPlan::~ConvPlan() = default;

void ConvPlan::pack(const float* weights, const float* bias) {
  if (g_.out_channels == 0) return;  // nothing to pack (and no buffers to copy into)
  std::memcpy(weights_.data(), weights, g_.out_channels * k_per_group_ * sizeof(float));
  if (bias) std::memcpy(bias_.data(), bias, g_.out_channels * sizeof(float));
  for (std::size_t grp = 0; grp < g_.groups; ++grp) {
    PackRowsByK src(weights + grp * m_per_group_ * k_per_group_, k_per_group_);
    pack_all(src, m_per_group_, k_per_group_, uk_->mr, packed_.data() + grp * packed_per_group_);
  }
  if (narrow_) {
    // Block b: [tap][kNarrowBlock] then its bias [kNarrowBlock]; zeros past the channels.
    const std::size_t taps = k_per_group_, block = (taps + 1) * kNarrowBlock;
    for (std::size_t b = 0; b < narrow_blocks(g_); ++b) {
      float* dst = narrow_packed_.data() + b * block;
      for (std::size_t c = 0; c < kNarrowBlock; ++c) {
        const std::size_t co = b * kNarrowBlock + c;
        const bool real = co < g_.out_channels;
        for (std::size_t t = 0; t < taps; ++t)
          dst[t * kNarrowBlock + c] = real ? weights[co * taps + t] : 0.0f;
        dst[taps * kNarrowBlock + c] = real && bias ? bias[co] : 0.0f;
      }
    }
  }
}

void ConvPlan::set_weights(const float* weights, const float* bias) {
  std::unique_lock<std::shared_mutex> lock(weights_mu_);
  pack(weights, bias);
  if (winograd3d_) winograd3d_->set_weights(weights_.data());
  {
    std::lock_guard<std::mutex> pointwise_lock(pointwise_mu_);
    if (pointwise_b_ready_) pack_pointwise_b();
  }
  std::lock_guard<std::mutex> forms_lock(winograd_mu_);
  for (auto& form : winograd_forms_)
    if (form) form->set_weights(weights_.data());
}

void ConvPlan::pack_pointwise_b() const {
  const std::size_t per_group = packed_size(m_per_group_, k_per_group_, uk_->nr);
  pointwise_b_.resize(per_group * g_.groups);
  for (std::size_t grp = 0; grp < g_.groups; ++grp) {
    PackRowsByK src(weights_.data() + grp * m_per_group_ * k_per_group_, k_per_group_);
    pack_all(src, m_per_group_, k_per_group_, uk_->nr, pointwise_b_.data() + grp * per_group);
  }
  pointwise_b_ready_ = true;
}

const float* ConvPlan::pointwise_b() const {
  std::lock_guard<std::mutex> lock(pointwise_mu_);
  UninterruptibleScope whole;  // lasting state: never left half packed
  if (!pointwise_b_ready_) pack_pointwise_b();
  return pointwise_b_.data();
}

const WinogradConv& ConvPlan::winograd2d(int m) const {
  std::lock_guard<std::mutex> lock(winograd_mu_);
  auto& form = winograd_forms_[m == 4 ? 1 : 0];
  UninterruptibleScope whole;  // lasting state: never left half transformed
  if (!form) form = std::make_unique<WinogradConv>(g_, m, weights_.data(), *uk_, *winograd_);
  return *form;
}

std::shared_ptr<const ImplicitGemmTables> ConvPlan::implicit_tables(const Size3& in) const {
  std::lock_guard<std::mutex> lock(implicit_mu_);
  if (!implicit_tables_ || implicit_tables_->in != in)
    implicit_tables_ = std::make_shared<const ImplicitGemmTables>(g_, in);
  return implicit_tables_;
}

int ConvPlan::winograd_tile(const Size3& in) const {
  if (forced_tile_) return forced_tile_;
  if (winograd_3d_) return winograd3d_->best_tile(in);
  return WinogradConv::best_tile(g_, *uk_, in[1], in[2]);
}

ConvPlan::Path ConvPlan::path(const Size3& in) const {
  if (direct_) return Path::kDirect;
  if (depthwise_) return Path::kDepthwise;
  if (narrow_ && in[0] == 1) return Path::kNarrow;
  if (winograd_ && winograd_3d_ && winograd3d_->fits(in, winograd_tile(in)))
    return Path::kWinograd3d;
  // The 2-D form reads channel planes H*W apart: the input must have depth 1.
  if (winograd_ && !winograd_3d_ && in[0] == 1) return Path::kWinograd2d;
  return Path::kIm2col;
}

const char* ConvPlan::algorithm(const Size3& in) const {
  switch (path(in)) {
    case Path::kDirect: return "direct";
    case Path::kDepthwise: return "depthwise";
    case Path::kNarrow: return "narrow";
    case Path::kWinograd3d:
    case Path::kWinograd2d: return winograd_tile(in) == 4 ? "winograd_f4" : "winograd_f2";
    case Path::kIm2col: break;
  }
  return "im2col";
}

void ConvPlan::run(const float* x, std::size_t batch, const Size3& in, float* y) const {
  const std::size_t out_plane = volume(g_.out_size(in));
  if (batch == 0 || out_plane == 0 || g_.out_channels == 0) return;
  std::shared_lock<std::shared_mutex> lock(weights_mu_);
  const Path p = path(in);
  if (p == Path::kDirect) {
    variant_for(conv_variants(), Isa::kRef)
        .fn(g_, x, batch, in, weights_.data(), ep_.bias_row, ep_.act, ep_.alpha, y);
    return;
  }
  if (p == Path::kDepthwise) return run_depthwise(x, batch, in, y);
  if (p == Path::kNarrow) return run_narrow(x, batch, in, y);
  if (p == Path::kIm2col) return run_gemm(x, batch, in, y);
  const std::size_t in_image = g_.in_channels * volume(in);
  const std::size_t out_image = g_.out_channels * out_plane;
  const int m = winograd_tile(in);
  const WinogradConv* form2d = p == Path::kWinograd2d ? &winograd2d(m) : nullptr;
  for (std::size_t n = 0; n < batch; ++n) {
    const float* xn = x + n * in_image;
    float* yn = y + n * out_image;
    // A tile's transforms mix all its pixels: an Inf/NaN would spread past its receptive
    // field, so such images take the GEMM path (PyTorch's semantics, DESIGN.md 5).
    if (has_nonfinite(xn, in_image)) {
      run_gemm(xn, 1, in, yn);
    } else if (form2d) {
      form2d->run(xn, in[1], in[2], ep_.bias_row, ep_.act, ep_.alpha, yn);
    } else {
      winograd3d_->run(xn, in, m, ep_.bias_row, ep_.act, ep_.alpha, yn);
    }
  }
}

namespace {

// Whether the depthwise layer runs a vector's width of channels at once
// (DepthwiseChannelsFn) on inputs of size `in`: 2-D input planes of at most 256 pixels and
// outputs of at most 196 (MobileNet's 14x14 and 7x7, and 14x14 at stride 2), the
// specialised windows (depthwise-window.h). Measured on AVX-512, 1 thread, 512 channels,
// against the plane kernels: 7x7 14.2 -> 10.0 us, 10x10 25.2 -> 14.8, 14x14 32.5 -> 25.9,
// 14x14 at stride 2 29.2 -> 15.7, 960 of 7x7 26.8 -> 15.6; 16x16 no faster (its input
// transposes outweigh the masks and part-filled vectors saved). Those are Zen 4's figures;
// on Intel (Sapphire Rapids) only stride 2 pays, where the outputs are a quarter of the
// pixels transposed in: the transposes' shuffles share port 5 with the second FMA unit
// there, and at stride 1 the plane kernels won (1 thread: 512 channels of 14x14 67 -> 52
// us, 256 33 -> 25, 1024 of 7x7 43 -> 38; 2 threads: 44 -> 32, 32 -> 27; 14x14 at stride
// 2 30 against 33).
bool depthwise_runs_by_channels(const ConvGeometry& g, const Size3& in) {
  if (cpu_vendor() == CpuVendor::kIntel && g.stride[1] == 1) return false;
  return in[0] == 1 && g.kernel[0] == 1 && in[1] * in[2] <= 256 &&
         volume(g.out_size(in)) <= 196 && depthwise_window_specialised(g);
}

}  // namespace

void ConvPlan::run_depthwise(const float* x, std::size_t batch, const Size3& in,
                             float* y) const {
  const Size3 out = g_.out_size(in);
  const std::size_t in_plane = in[1] * in[2], out_plane = out[1] * out[2];
  const std::size_t depth = in[0], taps = g_.taps();
  if (depthwise_channels_ && depthwise_runs_by_channels(g_, in)) {
    const std::size_t width = depthwise_channels_->channels, C = g_.out_channels;
    const std::size_t blocks = (C + width - 1) / width, tasks = batch * blocks;
    parallel_runs(tasks, tasks * width * out_plane * taps,
                  [&](std::size_t first, std::size_t count) {
      for (std::size_t t = first; t < first + count; ++t) {
        const std::size_t n = t / blocks, c0 = (t % blocks) * width;
        depthwise_channels_->fn(g_, x + (n * C + c0) * in_plane, in[1], in[2],
                                std::min(width, C - c0), weights_.data() + c0 * taps,
                                ep_.bias_row ? ep_.bias_row + c0 : nullptr, ep_.act, ep_.alpha,
                                y + (n * C + c0) * out_plane);
      }
    });
    return;
  }
  // Planes (image, channel, depth slice); the channel picks the kernel.
  const std::size_t planes = batch * g_.out_channels * depth;
  parallel_runs(planes, planes * out_plane * taps, [&](std::size_t first, std::size_t count) {
    for (std::size_t p = first; p < first + count; ++p) {
      const std::size_t c = (p / depth) % g_.out_channels;
      depthwise_->fn(g_, x + p * in_plane, in[1], in[2], weights_.data() + c * taps,
                     ep_.bias_row ? ep_.bias_row[c] : 0.0f, ep_.act, ep_.alpha,
                     y + p * out_plane);
    }
  });
}

bool ConvPlan::pointwise_rows_apply() const {
  return is_pointwise(g_) && g_.groups == 1 && !direct_;
}

void ConvPlan::run_pointwise_rows(const float* x, std::size_t ldx, std::size_t pixels,
                                  float* y, std::size_t ldy) const {
  if (!pointwise_rows_apply())
    throw std::logic_error("run_pointwise_rows: the plan is not a pointwise one");
  if (pixels == 0 || g_.out_channels == 0) return;
  std::shared_lock<std::shared_mutex> lock(weights_mu_);
  PackKByRows cols(x, ldx);
  gemm(*uk_, m_per_group_, pixels, k_per_group_, GemmOperand{packed_.data(), nullptr},
       GemmOperand{nullptr, &cols, x, ldx}, y, ldy, ep_, false);
}

void ConvPlan::run_depthwise_rows(const float* x, std::size_t ldx, std::size_t rows,
                                  std::size_t in_w, std::size_t pad_top,
                                  std::size_t pad_bottom, float* y, std::size_t ldy) const {
  if (!depthwise_rows_apply())
    throw std::logic_error("run_depthwise_rows: the plan is not a depthwise one");
  ConvGeometry g = g_;
  g.pad_before[1] = pad_top;
  g.pad_after[1] = pad_bottom;
  if (g.out_size(1, rows) == 0 || g.out_size(2, in_w) == 0) return;
  std::shared_lock<std::shared_mutex> lock(weights_mu_);
  const std::size_t taps = g_.taps();
  for (std::size_t c = 0; c < g_.out_channels; ++c)
    depthwise_->fn(g, x + c * ldx, rows, in_w, weights_.data() + c * taps,
                   ep_.bias_row ? ep_.bias_row[c] : 0.0f, ep_.act, ep_.alpha, y + c * ldy);
}

void ConvPlan::run_narrow(const float* x, std::size_t batch, const Size3& in, float* y) const {
  const Size3 out = g_.out_size(in);
  NarrowConv nc;
  nc.in_channels = g_.in_channels;
  nc.kernel_h = g_.kernel[1];
  nc.kernel_w = g_.kernel[2];
  nc.stride = g_.stride[1];
  nc.out_h = out[1];
  nc.out_w = out[2];
  nc.padded_h = in[1] + g_.pad_before[1] + g_.pad_after[1];
  nc.padded_w = narrow_padded_width(nc.out_w, nc.kernel_w, nc.stride);
  const std::size_t top = g_.pad_before[1], left = g_.pad_before[2];
  const std::size_t H = in[1], W = in[2], plane = nc.out_h * nc.out_w;
  const std::size_t taps = k_per_group_, block = (taps + 1) * kNarrowBlock;
  const std::size_t blocks = narrow_blocks(g_);
  // An image large enough to split runs strip by strip of output rows (tasks), each task
  // padding just the input rows its windows read into its own thread's buffer and then
  // computing every block from there: no thread reads rows another core padded, and the
  // rows stay in cache across the blocks. Against padding the whole image first (split
  // over the pool) and then handing out (block, strip) tasks, on Sapphire Rapids at 2
  // threads: MobileNet's 3x3/2 stem 0.27 -> 0.24 ms, ResNet's 7x7/2 1.31 -> 1.21-1.24;
  // 1 thread unchanged. A batch of small images (the seed CIFAR CNN's first layer) runs
  // whole images side by side.
  constexpr std::size_t kStrip = 8;
  const std::size_t strips = (nc.out_h + kStrip - 1) / kStrip;
  const std::size_t image_work = g_.out_channels * plane * taps;
  const bool split_images = image_work >= (std::size_t{1} << 18);
  // Output rows [oh0, oh1) of image n: input rows [oh0 * s, (oh1 - 1) * s + kh) padded.
  auto rows_of_image = [&](std::size_t n, std::size_t oh0, std::size_t oh1) {
    thread_local AlignedBuffer padded;
    const std::size_t r0 = oh0 * nc.stride, r1 = (oh1 - 1) * nc.stride + nc.kernel_h;
    NarrowConv part = nc;
    part.padded_h = r1 - r0;
    padded.resize(nc.in_channels * part.padded_h * nc.padded_w);
    const float* xn = x + n * g_.in_channels * H * W;
    float* yn = y + n * g_.out_channels * plane + oh0 * nc.out_w;
    for (std::size_t c = 0; c < nc.in_channels; ++c)
      (nc.stride == 2 ? pad_rows_deinterleaved : pad_rows)(
          xn + c * H * W, H, W, top, left, nc.padded_w, r0, r1,
          padded.data() + c * part.padded_h * nc.padded_w, r0);
    for (std::size_t b = 0; b < blocks; ++b) {
      const float* wb = narrow_packed_.data() + b * block;
      const std::size_t channels = std::min(kNarrowBlock, g_.out_channels - b * kNarrowBlock);
      narrow_->fn(part, padded.data(), wb, wb + taps * kNarrowBlock, ep_.act, ep_.alpha,
                  yn + b * kNarrowBlock * plane, channels, 0, oh1 - oh0);
    }
  };
  auto one_image = [&](std::size_t n, bool parallel) {
    auto strip = [&](std::size_t t) {
      rows_of_image(n, t * kStrip, std::min(nc.out_h, (t + 1) * kStrip));
    };
    if (parallel) {
      parallel_for(strips, strip);
    } else {
      rows_of_image(n, 0, nc.out_h);
    }
  };
  if (split_images || batch == 1) {
    for (std::size_t n = 0; n < batch; ++n) one_image(n, split_images);
    return;
  }
  parallel_runs(batch, batch * image_work, [&](std::size_t first, std::size_t count) {
    for (std::size_t n = first; n < first + count; ++n) one_image(n, false);
  });
}

// out^T [pixels][channels] = x^T W^T, then transposed into y. A tile's cost follows its
// rows closely (a 1-row edge tile is cheap) but its columns in steps of NR / 2 or NR
// (7x7 = 49 pixels compute 64 columns; 160 channels exactly 160). The transpose costs
// about as much as 32 more k per output (fitted on AVX-512 over MobileNetV2's shapes: 7x7
// transposed is 13-20% faster, 14x14 and 28x28 direct 0-50% faster).
bool ConvPlan::pointwise_runs_transposed(std::size_t pixels, std::size_t m, std::size_t k,
                                         const GemmUkernel& uk) {
  if (pixels > 1024) return false;
  const double direct = double(m) * double(gemm_computed_columns(pixels, uk)) * double(k);
  const double transposed = double(pixels) * double(gemm_computed_columns(m, uk)) * double(k + 32);
  return transposed < 0.95 * direct;
}

void ConvPlan::run_gemm(const float* x, std::size_t batch, const Size3& in, float* y) const {
  const std::size_t L = volume(g_.out_size(in));
  const std::size_t cin_g = g_.in_channels / g_.groups;
  const std::size_t in_image = g_.in_channels * volume(in);
  const std::size_t out_image = g_.out_channels * L;
  const std::size_t threads = static_cast<std::size_t>(num_threads());
  const bool pointwise = is_pointwise(g_);
  if (!pointwise && implicit_ && implicit_gemm_applies(g_, in))
    return run_implicit_gemm(x, batch, in, y);
  if (!pointwise && PaddedGrid::applies(g_, in)) {
    PaddedGrid grid(g_, in, batch, m_per_group_);
    if (grid.pays(uk_->nr)) return run_padded_grid(grid, x, batch, y);
  }
  const std::size_t jobs = batch * g_.groups;
  // Many independent (image, group) GEMMs: one per task. Few: each GEMM splits itself.
  const bool outer_parallel = jobs >= 2 * threads;
  const bool transposed =
      pointwise && pointwise_runs_transposed(L, m_per_group_, k_per_group_, *uk_);
  const float* packed_b = transposed ? pointwise_b() : nullptr;
  auto one = [&](std::size_t job) {
    const std::size_t n = job / g_.groups, grp = job % g_.groups;
    const float* xg = x + n * in_image + grp * cin_g * volume(in);
    float* yg = y + n * out_image + grp * m_per_group_ * L;
    Epilogue ep = ep_;
    if (ep.bias_row) ep.bias_row += grp * m_per_group_;
    GemmOperand a{packed_.data() + grp * packed_per_group_, nullptr};
    if (transposed) {
      // Rows: pixels, read from x [channels][pixels]; B: the weights; C: [pixels][M].
      const std::size_t M = m_per_group_;
      thread_local AlignedBuffer staged;
      staged.resize(L * M);
      PackKByRows rows(xg, L);
      Epilogue ep_t;
      ep_t.bias_col = ep.bias_row;
      ep_t.act = ep.act;
      ep_t.alpha = ep.alpha;
      const std::size_t per_group = packed_size(M, k_per_group_, uk_->nr);
      gemm(*uk_, L, M, k_per_group_, GemmOperand{nullptr, &rows},
           GemmOperand{packed_b + grp * per_group, nullptr}, staged.data(), M, ep_t,
           !outer_parallel);
      transpose(staged.data(), L, M, yg, !outer_parallel);
    } else if (pointwise) {
      PackKByRows cols(xg, L);
      gemm(*uk_, m_per_group_, L, k_per_group_, a, GemmOperand{nullptr, &cols, xg, L}, yg, L, ep,
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

void ConvPlan::run_implicit_gemm(const float* x, std::size_t batch, const Size3& in,
                                 float* y) const {
  const std::size_t taps = g_.taps(), cin_g = g_.in_channels / g_.groups;
  const Size3 out = g_.out_size(in);
  const std::size_t plane = in[1] * in[2], out_plane = out[1] * out[2];
  const std::size_t grid = out[1] * in[2];  // the pixels computed: OH rows of W
  const std::size_t blocks = implicit_gemm_blocks(g_, in);
  const std::size_t mr = static_cast<std::size_t>(uk_->mr);
  const std::size_t panels = (m_per_group_ + mr - 1) / mr;
  const std::shared_ptr<const ImplicitGemmTables> tables = implicit_tables(in);
  const ImplicitGemm s{cin_g, taps, plane, in[2], out[2], out_plane, mr, tables->shift.data()};
  const std::uint32_t* lane_table = tables->lanes.data();
  const std::size_t in_image = g_.in_channels * plane, out_image = g_.out_channels * out_plane;
  // Tasks: (image, group, pixel block, panel), panels innermost: consecutive tasks of a
  // thread read the same input columns.
  const std::size_t tasks = batch * g_.groups * blocks * panels;
  parallel_runs(tasks, tasks * mr * kImplicitBlock * k_per_group_,
                [&](std::size_t first, std::size_t count) {
    for (std::size_t task = first; task < first + count; ++task) {
      const std::size_t panel = task % panels, block = task / panels % blocks;
      const std::size_t grp = task / (panels * blocks) % g_.groups;
      const std::size_t n = task / (panels * blocks * g_.groups);
      const std::size_t row0 = grp * m_per_group_ + panel * mr;
      const std::size_t q0 = block * kImplicitBlock;
      implicit_->fn(s, x + n * in_image + grp * cin_g * plane,
                    packed_.data() + grp * packed_per_group_ + panel * mr * k_per_group_,
                    std::min(mr, m_per_group_ - panel * mr), q0,
                    std::min(kImplicitBlock, grid - q0), lane_table + block * taps,
                    ep_.bias_row ? ep_.bias_row + row0 : nullptr, ep_.act, ep_.alpha,
                    y + n * out_image + row0 * out_plane);
    }
  });
}

void ConvPlan::run_padded_grid(const PaddedGrid& sized, const float* x, std::size_t batch,
                               float* y) const {
  const std::size_t cin_g = g_.in_channels / g_.groups;
  const std::size_t in_image = g_.in_channels * sized.H * sized.W;
  const std::size_t out_plane = sized.OH * sized.OW, out_image = g_.out_channels * out_plane;
  const std::size_t threads = static_cast<std::size_t>(num_threads());
  // Chunks of images, each one GEMM; with enough images, at least two chunks per thread
  // run side by side (each pads, multiplies and compacts in its own cache).
  std::size_t per_chunk = sized.images;
  if (batch >= 2 * threads) per_chunk = std::min(per_chunk, (batch + 2 * threads - 1) / (2 * threads));
  const std::size_t chunks = (batch + per_chunk - 1) / per_chunk, jobs = chunks * g_.groups;
  const bool outer_parallel = jobs >= 2 * threads;
  auto one = [&](std::size_t job) {
    const std::size_t chunk = job / g_.groups, grp = job % g_.groups;
    const std::size_t n0 = chunk * per_chunk, n = std::min(per_chunk, batch - n0);
    PaddedGrid grid = sized;
    grid.set_images(n);
    Epilogue ep = ep_;
    if (ep.bias_row) ep.bias_row += grp * m_per_group_;
    GemmOperand a{packed_.data() + grp * packed_per_group_, nullptr};
    // Buffers per thread, reused across calls (outer-parallel jobs each use their own).
    thread_local AlignedBuffer padded, staged;
    padded.resize(cin_g * grid.channel_stride);
    staged.resize(m_per_group_ * grid.columns);
    grid.pad(g_, x + n0 * in_image + grp * cin_g * grid.H * grid.W, in_image, cin_g,
             padded.data());
    ShiftedRowsPacker cols(g_, grid, padded.data(), cin_g);
    gemm(*uk_, m_per_group_, grid.columns, k_per_group_, a, GemmOperand{nullptr, &cols},
         staged.data(), grid.columns, ep, !outer_parallel);
    grid.compact(staged.data(), m_per_group_, y + n0 * out_image + grp * m_per_group_ * out_plane,
                 out_image);
  };
  if (outer_parallel) {
    parallel_for(jobs, one);
  } else {
    for (std::size_t j = 0; j < jobs; ++j) one(j);
  }
}

}  // namespace fdl
