// Packed single-precision GEMM with a fused epilogue:
//   C[M x N] = act(A[M x K] * B[K x N] + bias)
//
// Operands are read through *panels*: a panel holds `w` consecutive rows of A (w = MR) or
// columns of B (w = NR) for a run of k, stored k-major: panel[k * w + t]. Rows/columns past
// the edge of the matrix are zero. A *packed operand* holds the full K of each panel, panel
// after panel (panel p starts at p * w * K), so the block [k0, k0+kc) of panel p is at
// p * w * K + k0 * w. Weights are packed once in this form (plans); activations are packed
// per call, block by block, by a Packer.
//
// Microkernels (one per ISA, see src/gemm/variants.inc) compute one MR x NR tile.
#pragma once

#include <cstddef>
#include <vector>

#include "fastdl/common.h"

namespace fdl {

// Microkernel flags.
enum : int {
  kGemmAccumulate = 1,  // add to what is in C (otherwise overwrite)
  kGemmFinal = 2,       // this is the last K block: apply bias and activation
  kGemmARow = 4,        // m == 1 and `a` is that row with unit stride (a[p], not a[p * mr])
  // Hints: `a` (a packed panel) or `b` (a packed panel, ldb == nr) streams from memory,
  // this being the first of the tiles that read it. The microkernel then asks for its
  // lines ahead of use (the hardware prefetchers alone left a pointwise layer whose
  // weights come from DRAM 30% slower than with warm caches).
  kGemmPrefetchA = 16,
  kGemmPrefetchB = 32,
};
// Only columns [0, n) of C are wanted, n = flags >> kGemmColumnsShift (0: all nr; a
// right-edge tile that narrow). A microkernel may then compute fewer columns: half a tile
// where nr / 2 is whole vectors, single columns (vectors along the rows) on full-height
// tiles, in the same order of sums as its full tile (results do not depend on where the
// panels end); others (and the reference) compute all nr. Columns past n are left as they
// were or overwritten: the caller must not read them.
constexpr int kGemmColumnsShift = 8;

// Computes rows [0, m) (m <= mr) and all nr columns of one tile:
//   c[i * ldc + j] (+)= sum_p a[p * mr + i] * b[p * ldb + j]
// (ldb = nr for a packed B panel; larger where B's rows are read in place, see GemmOperand)
// then, with kGemmFinal, c = act(c + bias_row[i] + bias_col[j]). bias pointers in `ep` are
// already offset to this tile; bias_col must have nr readable entries.
using GemmUkernelFn = void (*)(std::size_t m, std::size_t k, const float* a, const float* b,
                               std::size_t ldb, float* c, std::size_t ldc, int flags,
                               const Epilogue& ep);

struct GemmUkernel {
  const char* name;  // fdl_f32_gemm__<isa>_<MR>x<NR>
  Isa isa;
  int mr, nr;
  int edge_nr;     // the narrowest tile it computes: nr / 2 if it computes half tiles
  int kc, mc, nc;  // cache blocking: K block, rows of A per L2 block, columns of B per L3 block
  GemmUkernelFn fn;
};

// Every variant compiled into this build, best first (including ones this CPU cannot run).
const std::vector<GemmUkernel>& gemm_variants();
// The variant for the active ISA (see isa.h).
const GemmUkernel& gemm_best();
// nullptr if no variant has that name.
const GemmUkernel* gemm_find(const char* name);
// The columns of C that `gemm` computes for n columns: whole NR panels, but a last panel
// of at most edge_nr columns is computed that narrow (half tiles). Work is rows x this.
// (Not counted: on full-height tiles a few edge columns may be computed one by one.)
std::size_t gemm_computed_columns(std::size_t n, const GemmUkernel& uk);

// Produces the panels for rows [r0, r0 + rows) (rows <= w * number of panels) and
// k in [k0, k0 + kc) into dst, panel after panel, each kc * w floats, zero-padded.
struct Packer {
  virtual ~Packer() = default;
  virtual void pack(std::size_t r0, std::size_t rows, std::size_t k0, std::size_t kc,
                    std::size_t w, float* dst) const = 0;
};

// Packer over a dense matrix whose element (r, k) is at src[r * ld + k] ("row-major
// rows", e.g. A of a row-major GEMM, or linear weights W[N x K] read as B).
struct PackRowsByK final : Packer {
  const float* src; std::size_t ld;
  PackRowsByK(const float* s, std::size_t l) : src(s), ld(l) {}
  void pack(std::size_t r0, std::size_t rows, std::size_t k0, std::size_t kc, std::size_t w,
            float* dst) const override;
};

// Packer over a dense matrix whose element (r, k) is at src[k * ld + r] (e.g. B of a
// row-major GEMM, or the input of a 1x1 convolution, channels x pixels).
struct PackKByRows final : Packer {
  const float* src; std::size_t ld;
  PackKByRows(const float* s, std::size_t l) : src(s), ld(l) {}
  void pack(std::size_t r0, std::size_t rows, std::size_t k0, std::size_t kc, std::size_t w,
            float* dst) const override;
};

// Floats needed to pack `rows` rows with full K for panel width w.
std::size_t packed_size(std::size_t rows, std::size_t k, std::size_t w);
// Packs all rows and the full K into dst (packed_size floats).
void pack_all(const Packer& src, std::size_t rows, std::size_t k, std::size_t w, float* dst);

// One GEMM operand: either packed (full-K panels) or a packer.
// B only, besides: `rows`, a K x N matrix whose row k starts at rows + k * ld, read in place
// by the microkernel for whole NR panels (no packing: a pointwise convolution's input,
// whose packing costs up to a fifth of the layer where M is small); `packer` then packs
// only the right-edge panel. Whether B's rows are read in place or packed after all is
// chosen per CPU (gemm.cc: reads_b_in_place); set_gemm_b_rows overrides it.
struct GemmOperand {
  const float* packed = nullptr;
  const Packer* packer = nullptr;
  const float* rows = nullptr;
  std::size_t ld = 0;
};

// How gemm() reads a B given as `rows`: kAuto as measured fastest on this CPU; kInPlace
// wherever the microkernel can (its panel rows at least two cache lines, ld not a multiple
// of 4 KiB); kPacked never. Process-wide; for tests (both paths on any CPU) and timing.
enum class GemmBRows { kAuto, kInPlace, kPacked };
void set_gemm_b_rows(GemmBRows policy);

// C = act(A * B + bias) (with ep.accumulate: C = act(C + A * B + bias)) with microkernel `uk`. A is M x K (panels of uk.mr), B is K x N
// (panels of uk.nr). C is row-major with leading dimension ldc. With `parallel`, the work
// is split over the thread pool; otherwise it runs on the calling thread.
void gemm(const GemmUkernel& uk, std::size_t M, std::size_t N, std::size_t K,
          const GemmOperand& a, const GemmOperand& b, float* c, std::size_t ldc,
          const Epilogue& ep, bool parallel);

// Plain row-major C[M x N] = A[M x K] * B[K x N] (both operands packed per call), threaded.
void matmul(const GemmUkernel& uk, std::size_t M, std::size_t N, std::size_t K, const float* a,
            const float* b, float* c);

}  // namespace fdl
