// Convolution with 1, 2 or 3 spatial axes (NC[D][H]W, PyTorch semantics: cross-correlation),
// im2col/col2im, and the variant tables of its kernels. One geometry and one plan serve
// every rank: 1-D and 2-D problems are 3-D ones with leading axes of size 1 (kernel 1,
// stride 1, no padding on those axes).
//
// ConvPlan packs the weights once for the chosen GEMM microkernel and computes, per image
// and group, Y_g[Cout/g x OD*OH*OW] = W_g[Cout/g x K] * col(X_g), K = Cin/g * KD*KH*KW, with
// col(X) packed block by block straight into the GEMM's B panels (tiled im2col: the
// workspace is one KC x NC block per thread whatever the input size; pointwise stride-1
// unpadded convolutions read X directly as the B matrix). Where they apply it runs instead
// (see ConvAlgorithm):
//  * a direct depthwise kernel per plane (groups == in_channels == out_channels, no
//    kernel/stride/padding along depth);
//  * on x86, the implicit GEMM (ImplicitGemmFn: the column matrix read straight from x,
//    never packed) for stride-1 layers of single-depth inputs whose output rows are at
//    least three quarters as wide as the input's;
//  * Winograd F(2x2,3x3) / F(4x4,3x3) for 3x3 stride-1 dilation-1 ungrouped layers with
//    >= 8 channels on single-depth inputs, and its 3-D form for 3x3x3 layers (while the
//    per-image workspace of the transformed volume stays within 64 MiB).
// Images holding Inf/NaN take the GEMM path instead of Winograd, whose tile transforms would
// spread a non-finite value past its receptive field (PyTorch's semantics, DESIGN.md 5).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "fastdl/buffer.h"
#include "fastdl/common.h"
#include "fastdl/gemm.h"

namespace fdl {

using Size3 = std::array<std::size_t, 3>;  // spatial extents {depth, height, width}

inline std::size_t volume(const Size3& s) { return s[0] * s[1] * s[2]; }

struct ConvGeometry {
  std::size_t in_channels = 0, out_channels = 0, groups = 1;
  Size3 kernel{1, 1, 1}, stride{1, 1, 1}, dilation{1, 1, 1};
  Size3 pad_before{0, 0, 0}, pad_after{0, 0, 0};

  // THE output extent (the only C++ copy of the formula): along `axis` for an input extent
  // `in`; 0 if the dilated kernel does not fit the padded input (callers refuse that case).
  // Inline, and no division at stride 1: the plane kernels ask per plane (a depthwise
  // layer of 960 7x7 planes spent 14% of its time here).
  std::size_t out_size(int axis, std::size_t in) const {
    const std::size_t span = dilation[axis] * (kernel[axis] - 1) + 1;
    const std::size_t padded = in + pad_before[axis] + pad_after[axis];
    if (padded < span) return 0;
    return (stride[axis] == 1 ? padded - span : (padded - span) / stride[axis]) + 1;
  }
  Size3 out_size(const Size3& in) const;
  std::size_t taps() const { return kernel[0] * kernel[1] * kernel[2]; }
  // Weights per output channel: in_channels / groups * taps().
  std::size_t weights_per_output() const { return in_channels / groups * taps(); }
};

// ----------------------------------------------------------------------------- variants

// The naive direct convolution: the specification every algorithm is tested against.
// x [batch][in_channels][in], w [out_channels][in_channels / groups][taps], bias (or null)
// -> y [batch][out_channels][out_size(in)] = act(conv + bias). Accumulates in double.
using ConvDirectFn = void (*)(const ConvGeometry& g, const float* x, std::size_t batch,
                              const Size3& in, const float* w, const float* bias,
                              Activation act, float alpha, float* y);
struct ConvVariant {
  const char* name;  // fdl_f32_conv__<isa>
  Isa isa;
  ConvDirectFn fn;
};

// One depthwise plane: x [in_h][in_w] -> y [out_h][out_w] = act(conv(x, w [KH][KW]) + bias)
// with g's height/width stride, dilation and padding (axes 1 and 2; channels ignored).
using DepthwisePlaneFn = void (*)(const ConvGeometry& g, const float* x, std::size_t in_h,
                                  std::size_t in_w, const float* w, float bias,
                                  Activation act, float alpha, float* y);
struct DepthwiseVariant {
  const char* name;  // fdl_f32_depthwise__<isa>
  Isa isa;
  DepthwisePlaneFn fn;
};

// `channels` (at most the variant's `channels`) consecutive depthwise planes at once:
// x [channels][in_h][in_w] -> y [channels][out_h][out_w], w [channels][KH][KW], bias
// [channels] or null; a square 3x3 or 5x5 kernel, the same stride 1 or 2 along height and
// width, dilation 1. For small planes, on ISAs that have it (x86).
using DepthwiseChannelsFn = void (*)(const ConvGeometry& g, const float* x, std::size_t in_h,
                                     std::size_t in_w, std::size_t channels, const float* w,
                                     const float* bias, Activation act, float alpha, float* y);
struct DepthwiseChannelsVariant {
  const char* name;  // fdl_f32_depthwise_channels__<isa>
  Isa isa;
  std::size_t channels;  // per call: the ISA's vector width
  DepthwiseChannelsFn fn;
};

// The narrow convolution (few input channels, 2-D, stride 1 or 2 in both directions,
// dilation 1, groups 1) over one zero-padded image: padded [in_channels][padded_h]
// [padded_w], whose rows reach past the last output's taps far enough for whole vectors
// (narrow_padded_width). With stride 2 each padded row is stored deinterleaved: its even
// columns, then its odd ones (padded_w / 2 each; padded_w is even), so the inputs of one
// tap for consecutive outputs are consecutive floats. Weights come packed per block of
// kNarrowBlock output channels, [tap = (ci*KH + ky)*KW + kx][kNarrowBlock], the block's
// bias [kNarrowBlock] beside them (zeros past the last channel).
struct NarrowConv {
  std::size_t in_channels, kernel_h, kernel_w, stride;
  std::size_t out_h, out_w, padded_h, padded_w;
};
constexpr std::size_t kNarrowBlock = 8;
constexpr std::size_t kNarrowMaxChannels = 4;
// A multiple of every variant's step along a row (kNarrowVectors x vector width, checked
// where each is compiled): the padded rows are sized for whole steps.
constexpr std::size_t kNarrowStep = 32;
// Floats per padded row that every variant may read for out_w outputs.
std::size_t narrow_padded_width(std::size_t out_w, std::size_t kernel_w, std::size_t stride);
// One block: output rows [oh0, oh1) of its first `channels` (<= kNarrowBlock) channels into
// y [channel][out_h][out_w] = act(conv + bias).
using NarrowConvFn = void (*)(const NarrowConv& nc, const float* padded, const float* w,
                              const float* bias, Activation act, float alpha, float* y,
                              std::size_t channels, std::size_t oh0, std::size_t oh1);
struct NarrowVariant {
  const char* name;  // fdl_f32_narrow__<isa>
  Isa isa;
  NarrowConvFn fn;
};

// The implicit GEMM (im2col without the column matrix) of a stride-1 2-D convolution on
// single-depth inputs (1-D convolutions are 2-D ones of height 1): Y_g = W_g * col(X_g)
// with the weights packed as the GEMM's A (full-K panels of `mr` rows, k = ci * taps +
// tap) and col(X) read straight from x [in_channels][H][W], on the grid of OH rows of W
// pixels: grid pixel q = oh * W + ow of tap t reads x[ci][q + shift[t]] where that tap
// falls inside the image and zero where it does not; it is output pixel (oh, ow) if ow <
// out_w (out_w == W for 'same' widths; the grid's last W - out_w columns are computed and
// dropped otherwise). On ISAs with free masked loads (x86): no column matrix is packed,
// no padded copy made.
struct ImplicitGemm {
  std::size_t in_channels;      // per group
  std::size_t taps;             // KH * KW
  std::size_t plane;            // H * W: floats per input channel
  std::size_t in_w, out_w;      // W, and the output's width (<= W)
  std::size_t out_plane;        // OH * out_w: floats per output channel
  std::size_t mr;               // rows per packed A panel
  const std::ptrdiff_t* shift;  // [taps]: (ky * dh - pad_top) * W + kx * dw - pad_left
};
// Grid pixels per call (and bits of a lane mask).
constexpr std::size_t kImplicitBlock = 32;
// One panel's first `rows` (<= mr) output channels over the grid pixels [q0, q0 + n) (n <=
// kImplicitBlock) of one image x: y[r][oh * out_w + ow] = act(sum over k of a[k][r] *
// col[k][q] + bias[r]) for y [rows][out_plane] (bias null: none), for each pixel q = oh * W
// + ow with ow < out_w. lanes [taps]: bit j set iff grid pixel q0 + j is an output pixel
// and reads inside the image at that tap (implicit_gemm_lanes).
using ImplicitGemmFn = void (*)(const ImplicitGemm& s, const float* x, const float* a,
                                std::size_t rows, std::size_t q0, std::size_t n,
                                const std::uint32_t* lanes, const float* bias, Activation act,
                                float alpha, float* y);
struct ImplicitGemmVariant {
  const char* name;  // fdl_f32_implicit_gemm__<isa>
  Isa isa;
  std::size_t mr;  // the A panels it reads: its ISA's GEMM tile rows (0: any, the reference)
  ImplicitGemmFn fn;
};

struct WinogradTransforms;  // the input/output tile transforms (src/conv/winograd.h)
struct WinogradVariant {
  const char* name;  // fdl_f32_winograd__<isa>
  Isa isa;
  const WinogradTransforms* f2;  // F(2x2, 3x3)
  const WinogradTransforms* f4;  // F(4x4, 3x3)
};

// Adds a block of a column matrix into y [channels][out]: the scatter half of col2im and of
// transposed convolution. The column matrix has rows c*taps + tap (c < channels) and one
// column per position of the grid `grid` (position l = (gd*GH + gh)*GW + gw meets output
// pixel gd*sd - pd + kz*dd, ...); the block holds columns [l0, l0 + n), column l at
// cols[row * ld + (l - l0)]. Contributions outside `out` are dropped.
using Col2imFn = void (*)(const ConvGeometry& g, std::size_t channels, const float* cols,
                          std::size_t ld, std::size_t l0, std::size_t n, const Size3& grid,
                          const Size3& out, float* y);
struct Col2imVariant {
  const char* name;  // fdl_f32_col2im__<isa>
  Isa isa;
  Col2imFn fn;
};

// Every variant compiled into this build, best first, the reference last (including ones
// this CPU cannot run). From src/conv/variants.inc.
const std::vector<ConvVariant>& conv_variants();
const std::vector<DepthwiseVariant>& depthwise_variants();
const std::vector<DepthwiseChannelsVariant>& depthwise_channels_variants();
const std::vector<WinogradVariant>& winograd_variants();
const std::vector<Col2imVariant>& col2im_variants();
const std::vector<NarrowVariant>& narrow_variants();
const std::vector<ImplicitGemmVariant>& implicit_gemm_variants();

// ----------------------------------------------------------------------------- the plan

// How a plan computes. kAuto picks, where the GEMM's ISA has SIMD kernels for them (the
// reference variants are for forced algorithms and tests), depthwise, then Winograd with
// the cheaper tile size for the input, else im2col + GEMM. kIm2col forces the GEMM path;
// kDepthwise, kWinograd (either tile size) and kWinogradF2 / kWinogradF4 force theirs where
// they apply (else im2col), with the GEMM's ISA's variant or the reference one. kNarrow
// takes the narrow kernel for 2-D convolutions with at most kNarrowMaxChannels input
// channels, groups 1, dilation 1 and the same stride 1 or 2 along both axes; kAuto too,
// after depthwise, where the window is at most 3x3.
// kDirect runs the naive specification (conv_variants(); slow, for tests).
enum class ConvAlgorithm : int {
  kAuto = 0,
  kIm2col = 1,
  kWinograd = 2,
  kDepthwise = 3,
  kDirect = 4,
  kWinogradF2 = 5,
  kWinogradF4 = 6,
  kNarrow = 7,
};

class WinogradConv;
struct PaddedGrid;
struct ImplicitGemmTables;
class Conv3dWinograd;

class ConvPlan {
 public:
  // weights: [out_channels][in_channels / groups][taps]; bias: [out_channels] or null. Both
  // are copied. `uk` defaults to gemm_best().
  ConvPlan(const ConvGeometry& g, const float* weights, const float* bias, Activation act,
           float alpha, const GemmUkernel* uk = nullptr,
           ConvAlgorithm algorithm = ConvAlgorithm::kAuto);
  ~ConvPlan();

  // New weights and bias of the same shapes (bias null iff the plan was built without
  // one), repacked in place: no allocation. Waits for running calls to finish.
  void set_weights(const float* weights, const float* bias);

  // x: [batch][in_channels][in] -> y: [batch][out_channels][out_size(in)]. Calls from several
  // threads at once are safe.
  void run(const float* x, std::size_t batch, const Size3& in, float* y) const;

  const ConvGeometry& geometry() const { return g_; }
  const GemmUkernel& ukernel() const { return *uk_; }
  // What run() uses for this input size: "im2col", "depthwise", "winograd_f2",
  // "winograd_f4", "narrow" or "direct".
  const char* algorithm(const Size3& in) const;
  // The variant names of the kernels this plan may run besides its GEMM microkernel
  // (null where the plan does not use that kind).
  const char* depthwise_variant() const { return depthwise_ ? depthwise_->name : nullptr; }
  const char* winograd_variant() const { return winograd_ ? winograd_->name : nullptr; }
  const char* narrow_variant() const { return narrow_ ? narrow_->name : nullptr; }
  const char* implicit_gemm_variant() const { return implicit_ ? implicit_->name : nullptr; }
  // Whether a pointwise GEMM of m output channels (per group), k input channels and
  // `pixels` pixels runs transposed (pixels as its rows) on `uk`: where that computes
  // fewer tile columns (7x7 images; see run_gemm).
  static bool pointwise_runs_transposed(std::size_t pixels, std::size_t m, std::size_t k,
                                        const GemmUkernel& uk);

  // Pieces of run() over part of one 2-D image, on the calling thread: what ConvChain
  // (conv_chain.h) runs its strips with. Each applies where its *_rows_apply() says (else
  // it throws std::logic_error).
  // A pointwise plan (1x1, stride 1, no padding, one group): y[co][j] = act(sum over ci of
  // w[co][ci] * x[ci][j] + bias[co]) for j < pixels; x's channel rows are ldx floats apart,
  // y's ldy.
  void run_pointwise_rows(const float* x, std::size_t ldx, std::size_t pixels, float* y,
                          std::size_t ldy) const;
  // A 2-D depthwise plan: x holds `rows` rows of in_w floats per channel (planes ldx
  // apart), with pad_top and pad_bottom rows of zeros above and below them in place of the
  // layer's own vertical padding; y gets every output row those rows give (planes ldy
  // apart).
  void run_depthwise_rows(const float* x, std::size_t ldx, std::size_t rows, std::size_t in_w,
                          std::size_t pad_top, std::size_t pad_bottom, float* y,
                          std::size_t ldy) const;
  // A pointwise plan of one group (any algorithm but the forced direct one: the rows run
  // the packed GEMM weights, packed whatever run() picks), resp. a depthwise plan.
  bool pointwise_rows_apply() const;
  bool depthwise_rows_apply() const { return depthwise_ && !direct_; }

 private:
  enum class Path { kIm2col, kDepthwise, kWinograd2d, kWinograd3d, kNarrow, kDirect };
  Path path(const Size3& in) const;
  int winograd_tile(const Size3& in) const;  // 2 or 4: forced, else the cheaper one
  void pack(const float* weights, const float* bias);
  void run_gemm(const float* x, std::size_t batch, const Size3& in, float* y) const;
  // Stride-1 convolutions of single-depth inputs (implicit-gemm.h).
  void run_implicit_gemm(const float* x, std::size_t batch, const Size3& in, float* y) const;
  // Stride-1 2-D convolutions of small images (kernels/src/conv/padded-grid.h).
  void run_padded_grid(const PaddedGrid& grid, const float* x, std::size_t batch,
                       float* y) const;
  void run_depthwise(const float* x, std::size_t batch, const Size3& in, float* y) const;
  void run_narrow(const float* x, std::size_t batch, const Size3& in, float* y) const;
  const WinogradConv& winograd2d(int m) const;  // built on first use

  ConvGeometry g_;
  const GemmUkernel* uk_;
  bool direct_ = false;
  const DepthwiseVariant* depthwise_ = nullptr;
  const DepthwiseChannelsVariant* depthwise_channels_ = nullptr;  // its ISA's, if any
  const NarrowVariant* narrow_ = nullptr;
  const ImplicitGemmVariant* implicit_ = nullptr;  // the GEMM ISA's, if it has one
  AlignedBuffer narrow_packed_;  // per block of kNarrowBlock channels: [taps][block], bias
  const WinogradVariant* winograd_ = nullptr;  // 2-D or 3-D form, where one applies
  bool winograd_3d_ = false;
  int forced_tile_ = 0;  // 2 or 4 when the algorithm names the tile size
  AlignedBuffer weights_;  // as given: the depthwise and direct kernels and Winograd forms
  std::size_t m_per_group_, k_per_group_, packed_per_group_;
  AlignedBuffer packed_;  // per group: weights packed as A (full-K panels of MR rows)
  AlignedBuffer bias_;
  Epilogue ep_;
  // Pointwise layers on small images run transposed (pixels as the GEMM's rows; see
  // run_gemm): the weights packed as its B operand per group, made on first use.
  const float* pointwise_b() const;
  void pack_pointwise_b() const;
  mutable std::mutex pointwise_mu_;
  mutable AlignedBuffer pointwise_b_;
  mutable bool pointwise_b_ready_ = false;
  // The implicit GEMM's shifts and lane masks for the last input size (implicit-gemm.h).
  std::shared_ptr<const ImplicitGemmTables> implicit_tables(const Size3& in) const;
  mutable std::mutex implicit_mu_;
  mutable std::shared_ptr<const ImplicitGemmTables> implicit_tables_;
  mutable std::mutex winograd_mu_;
  mutable std::unique_ptr<WinogradConv> winograd_forms_[2];  // 2-D F(2,3), F(4,3)
  std::unique_ptr<Conv3dWinograd> winograd3d_;
  // run() holds it shared, set_weights() exclusive.
  mutable std::shared_mutex weights_mu_;
};

// ----------------------------------------------------------------------------- im2col

// torch unfold for one image, 1-3 spatial axes: x [C][in] -> cols [C*taps][L],
// L = volume(out_size(in)), row ((c*KD + kz)*KH + ky)*KW + kx, column (od*OH + oh)*OW + ow.
// Only g.in_channels of the channel fields is used (as C).
void im2col(const ConvGeometry& g, const float* x, const Size3& in, float* cols);

// torch fold for one image, the adjoint of im2col: cols [C*taps][L] -> y [C][out]
// (overwritten), L = volume(out_size(out)). Uses the active ISA's col2im variant.
void col2im(const ConvGeometry& g, const float* cols, const Size3& out, float* y);

}  // namespace fdl
