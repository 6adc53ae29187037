// Winograd F(m x m, 3 x 3) convolution for 3x3, stride 1, dilation 1, ungrouped layers on
// single-depth inputs (private to kernels/src/conv; the 3-D form is in winograd3d.h).
//
// Per image, with T tiles of m x m outputs (T rounded up to the GEMM's NR as T_pad):
//   1. input transform: V[xi] = B^T d B for every tile d and channel, written straight
//      into packed GEMM B panels: V[xi] is K = Cin by N = T_pad, panel p (NR tiles) at
//      p * NR * Cin, element (c, t) at p * NR * Cin + c * NR + t % NR, the matrices
//      WinogradTiling::point_stride apart;
//   2. alpha^2 independent GEMMs: M[xi] [Cout x T_pad] = U[xi] [Cout x Cin] * V[xi];
//   3. output transform: y = A^T M A per tile and channel, + bias, activation, clipped to
//      the output size.
// U = G g G^T is computed once per plan and packed as the GEMM's A operand.
#pragma once

#include <cstddef>

#include "fastdl/buffer.h"
#include "fastdl/conv.h"
#include "fastdl/gemm.h"

namespace fdl {

// Where the tiles of one image lie (or of a block of them: tile i of V and M is the
// image's tile first + i, row-major over tiles_x per row; tiles, tiles_padded and columns
// count the block's).
struct WinogradTiling {
  std::size_t in_h, in_w, out_h, out_w;
  std::size_t pad_top, pad_left;
  std::size_t tiles_x, tiles;
  std::size_t first;
  std::size_t nr, tiles_padded;  // the GEMM's NR; tiles rounded up to a multiple of it
  // The tiles the GEMM reads from V (<= tiles_padded; all of them unless the caller says
  // fewer): the input transform skips groups of lanes past them.
  std::size_t columns;

  // Floats from one point's matrix to the next in V (rows = channels) and M (rows = output
  // channels): the matrix and one cache line more, so that a tile's alpha^2 loads or stores
  // do not all fall into one cache set when the matrices are multiples of 4 KiB (64
  // channels of 32 tiles, say): 36 lines of one set thrash an 8- or 12-way L1.
  std::size_t point_stride(std::size_t rows) const { return tiles_padded * rows + 16; }
};

// The tile transforms of one ISA and tile size (fdl::WinogradVariant holds both sizes).
// `lanes` consecutive tiles are transformed together; tile ranges given to them start at
// multiples of `lanes` (tiles_padded is a multiple of it).
struct WinogradTransforms {
  int lanes;
  // Channels [c0, c1) of image x [C][in_h][in_w] -> v (all alpha^2 matrices, layout above).
  void (*input)(const WinogradTiling& t, const float* x, std::size_t channels,
                std::size_t c0, std::size_t c1, float* v);
  // Output channels [o0, o1): m [alpha^2][Cout][tiles_padded] -> y [Cout][out_h][out_w].
  void (*output)(const WinogradTiling& t, const float* m, std::size_t out_channels,
                 std::size_t o0, std::size_t o1, const float* bias, Activation act,
                 float alpha, float* y);
};

// Where the tiles of an image of in_h x in_w lie for tile size m, padding (pad_top,
// pad_left) and the GEMM's NR (g's height and width axes).
WinogradTiling winograd_tiling(const ConvGeometry& g, int m, std::size_t nr, std::size_t in_h,
                               std::size_t in_w);

// U = G g G^T of every 3x3 slice of weights [rows][k][3][3], packed as the GEMM's A operand
// for each of the alpha^2 points: A[xi] [rows x k] at u + xi * packed_size(rows, k, uk.mr)
// (the panels' padding rows zero). Split over the thread pool.
void winograd_pack_kernel(int m, const float* weights, std::size_t rows, std::size_t k,
                          const GemmUkernel& uk, float* u);

class WinogradConv {
 public:
  // True if g is a convolution this path computes: 3x3 over height and width, stride 1,
  // dilation 1, kernel 1 / stride 1 / no padding along depth, groups 1, >= 8 input and
  // output channels. (Inputs must also have depth 1: see ConvPlan.)
  static bool applies(const ConvGeometry& g);
  // The tile size (2 or 4) that costs least for this input size.
  static int best_tile(const ConvGeometry& g, const GemmUkernel& uk, std::size_t in_h,
                       std::size_t in_w);

  WinogradConv(const ConvGeometry& g, int m, const float* weights, const GemmUkernel& uk,
               const WinogradVariant& variant);
  // Transforms and packs new weights of the same shape into the existing buffers.
  void set_weights(const float* weights);
  // One image: x [Cin][H][W] -> y [Cout][OH][OW], bias may be null.
  void run(const float* x, std::size_t in_h, std::size_t in_w, const float* bias,
           Activation act, float alpha, float* y) const;
  // Tiles per block of the blocked form for an image of `tiles` tiles, 0 for the whole
  // image at once. The whole-image form writes V and M (alpha^2 x (Cin + Cout) x tiles
  // floats) for every tile before reading them back: past the L2 they return from L3 or
  // memory (64ch 112x112: 14 MB, the transforms 3x slower per tile than on 32x32). Blocks
  // whose V and M fit l2_half_bytes() (at least NR tiles) run the three stages back to
  // back instead, one block per task. Public for the tests.
  std::size_t block_tiles(std::size_t tiles) const;

 private:
  void run_blocks(const float* x, const WinogradTiling& whole, std::size_t block,
                  const float* bias, Activation act, float alpha, float* y) const;
  ConvGeometry g_;
  int m_, alpha_;
  const GemmUkernel& uk_;
  const WinogradTransforms* tr_;
  std::size_t packed_per_point_;
  AlignedBuffer u_;  // alpha^2 packed A operands
};

}  // namespace fdl
