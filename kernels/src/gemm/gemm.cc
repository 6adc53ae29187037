// The SGEMM driver: variant table, packers, cache blocking and threading around one
// microkernel. ISA-neutral (built with baseline flags); the microkernels are the only
// ISA-specific code.
#include <algorithm>
#include <atomic>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#include <xmmintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "fastdl/activation.h"
#include "fastdl/buffer.h"
#include "fastdl/gemm.h"
#include "fastdl/isa.h"
#include "fastdl/threadpool.h"
#include "fastdl/variants.h"

#define FDL_GEMM_VARIANT(sfx, isa, mr, nr, edge_nr, kc, mc, nc)                             \
  void fdl_f32_gemm__##sfx(std::size_t, std::size_t, const float*, const float*,        \
                           std::size_t, float*, std::size_t, int, const fdl::Epilogue&);
#include "variants.inc"
#undef FDL_GEMM_VARIANT

namespace {

// dst[j * dst_stride + i] = src[i * src_stride + j] for i, j < 4.
inline void transpose4x4(const float* src, std::size_t src_stride, float* dst,
                         std::size_t dst_stride) {
#if defined(__SSE2__)
  __m128 r0 = _mm_loadu_ps(src), r1 = _mm_loadu_ps(src + src_stride);
  __m128 r2 = _mm_loadu_ps(src + 2 * src_stride), r3 = _mm_loadu_ps(src + 3 * src_stride);
  _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
  _mm_storeu_ps(dst, r0);
  _mm_storeu_ps(dst + dst_stride, r1);
  _mm_storeu_ps(dst + 2 * dst_stride, r2);
  _mm_storeu_ps(dst + 3 * dst_stride, r3);
#elif defined(__aarch64__)
  const float32x4x2_t t01 = vtrnq_f32(vld1q_f32(src), vld1q_f32(src + src_stride));
  const float32x4x2_t t23 =
      vtrnq_f32(vld1q_f32(src + 2 * src_stride), vld1q_f32(src + 3 * src_stride));
  vst1q_f32(dst, vcombine_f32(vget_low_f32(t01.val[0]), vget_low_f32(t23.val[0])));
  vst1q_f32(dst + dst_stride, vcombine_f32(vget_low_f32(t01.val[1]), vget_low_f32(t23.val[1])));
  vst1q_f32(dst + 2 * dst_stride,
            vcombine_f32(vget_high_f32(t01.val[0]), vget_high_f32(t23.val[0])));
  vst1q_f32(dst + 3 * dst_stride,
            vcombine_f32(vget_high_f32(t01.val[1]), vget_high_f32(t23.val[1])));
#else
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < 4; ++j) dst[j * dst_stride + i] = src[i * src_stride + j];
#endif
}

}  // namespace

namespace fdl {

const std::vector<GemmUkernel>& gemm_variants() {
  static const std::vector<GemmUkernel> table = {
#define FDL_GEMM_VARIANT(sfx, isa, mr, nr, edge_nr, kc, mc, nc) \
  {"fdl_f32_gemm__" #sfx, Isa::isa, mr, nr, edge_nr, kc, mc, nc, &fdl_f32_gemm__##sfx},
#include "variants.inc"
#undef FDL_GEMM_VARIANT
  };
  return table;
}

const GemmUkernel& gemm_best() { return best_variant(gemm_variants()); }

const GemmUkernel* gemm_find(const char* name) { return find_variant(gemm_variants(), name); }

std::size_t gemm_computed_columns(std::size_t n, const GemmUkernel& uk) {
  const std::size_t nr = static_cast<std::size_t>(uk.nr), edge = static_cast<std::size_t>(uk.edge_nr);
  const std::size_t rest = n % nr;
  return n - rest + (rest == 0 ? 0 : rest <= edge ? edge : nr);
}

void PackRowsByK::pack(std::size_t r0, std::size_t rows, std::size_t k0, std::size_t kc,
                       std::size_t w, float* dst) const {
  for (std::size_t q = 0; q * w < rows; ++q, dst += kc * w) {
    const std::size_t n = std::min(w, rows - q * w);
    const float* base = src + (r0 + q * w) * ld + k0;
    // A transpose: blocks of kBlock k's, so that the kBlock panel rows written (strided by
    // w) stay in L1 while every source row gives them one cache line (not kc lines per row);
    // 4 x 4 tiles through registers where the baseline ISA has 4-float vectors.
    constexpr std::size_t kBlock = 16;
    for (std::size_t p0 = 0; p0 < kc; p0 += kBlock) {
      const std::size_t p1 = std::min(kc, p0 + kBlock);
      std::size_t t = 0;
      if (p1 - p0 == kBlock)
        for (; t + 4 <= n; t += 4)
          for (std::size_t p = p0; p < p1; p += 4)
            transpose4x4(base + t * ld + p, ld, dst + p * w + t, w);
      for (; t < n; ++t) {
        const float* row = base + t * ld;
        for (std::size_t p = p0; p < p1; ++p) dst[p * w + t] = row[p];
      }
    }
    for (std::size_t t = n; t < w; ++t)
      for (std::size_t p = 0; p < kc; ++p) dst[p * w + t] = 0.0f;
  }
}

namespace {

// kc runs of Wd floats, ld apart, into one panel: fixed-size copies (whole vector moves).
template <std::size_t Wd>
void copy_full_panel(const float* base, std::size_t ld, std::size_t kc, float* dst) {
  for (std::size_t p = 0; p < kc; ++p) std::memcpy(dst + p * Wd, base + p * ld, Wd * sizeof(float));
}

}  // namespace

void PackKByRows::pack(std::size_t r0, std::size_t rows, std::size_t k0, std::size_t kc,
                       std::size_t w, float* dst) const {
  for (std::size_t q = 0; q * w < rows; ++q, dst += kc * w) {
    const std::size_t n = std::min(w, rows - q * w);
    const float* base = src + k0 * ld + r0 + q * w;
    // Whole panels of every width a microkernel uses (B: NR; A, where pixels are the rows of
    // a transposed pointwise convolution: MR).
    if (n == w) {
      switch (w) {
        case 32: copy_full_panel<32>(base, ld, kc, dst); continue;
        case 16: copy_full_panel<16>(base, ld, kc, dst); continue;
        case 12: copy_full_panel<12>(base, ld, kc, dst); continue;
        case 8: copy_full_panel<8>(base, ld, kc, dst); continue;
        case 6: copy_full_panel<6>(base, ld, kc, dst); continue;
        case 4: copy_full_panel<4>(base, ld, kc, dst); continue;
        default: break;
      }
    }
    for (std::size_t p = 0; p < kc; ++p) {
      const float* s = base + p * ld;
      float* d = dst + p * w;
      for (std::size_t t = 0; t < n; ++t) d[t] = s[t];  // short runs: no memcpy call
      for (std::size_t t = n; t < w; ++t) d[t] = 0.0f;
    }
  }
}

std::size_t packed_size(std::size_t rows, std::size_t k, std::size_t w) {
  return ((rows + w - 1) / w) * w * k;
}

void pack_all(const Packer& src, std::size_t rows, std::size_t k, std::size_t w, float* dst) {
  if (rows == 0 || k == 0) return;
  // Panel by panel so each panel holds its full K contiguously.
  for (std::size_t r = 0; r < rows; r += w) src.pack(r, std::min(w, rows - r), 0, k, w, dst + r * k);
}

namespace {

// Per-thread packing workspace, grown on demand and reused across calls.
struct Workspace {
  AlignedBuffer a, b;
};
Workspace& workspace() {
  thread_local Workspace ws;
  return ws;
}

// Problems below this many multiply-adds run on one thread: waking the pool costs more.
constexpr std::size_t kParallelMinMacs = 1u << 18;

// Rows [r0, ...) of another packer, renumbered from 0.
struct PackOffsetRows final : Packer {
  const Packer& base;
  std::size_t r0;
  PackOffsetRows(const Packer& b, std::size_t r) : base(b), r0(r) {}
  void pack(std::size_t r, std::size_t rows, std::size_t k0, std::size_t kc, std::size_t w,
            float* dst) const override {
    base.pack(r0 + r, rows, k0, kc, w, dst);
  }
};

// Whether the microkernel reads B's rows in place (GemmOperand::rows) instead of packed
// panels. Measured over MobileNet's pointwise layers: on Zen 4 with 32-float panel rows
// (AVX-512) 4-18% faster, packing was up to a fifth of the time; with 16-float rows
// (AVX2) neutral to 17% slower (each k starts a new cache line of a strided stream). On
// Intel's Sapphire Rapids the AVX-512 strided panels are 3-22% slower than packing them
// (the same with rows 64-byte aligned: not split loads), so only AMD reads in place. NEON's
// 12-float rows are not tried. Rows a multiple of 4 KiB apart all fall into one L1 set:
// packed.
std::atomic<GemmBRows> g_b_rows{GemmBRows::kAuto};

bool reads_b_in_place(const GemmUkernel& uk, std::size_t ld) {
  const GemmBRows policy = g_b_rows.load(std::memory_order_relaxed);
  if (policy == GemmBRows::kPacked || (policy == GemmBRows::kAuto && cpu_vendor() != CpuVendor::kAmd))
    return false;
  return uk.nr * sizeof(float) >= 128 && (ld * sizeof(float)) % 4096 != 0;
}

// Rows [m0, m1) and columns [n0, n1) of C. How K is blocked and whether A is read as a
// lone row follow from the whole problem's M and N (one_panel, one_row, one_b_panel), never
// from the task's share of it: each element's sum then runs in the same order whatever the
// thread count, so the results are bit-identical across thread counts.
struct Task {
  std::size_t m0, m1, n0, n1;
  bool one_panel, one_row, one_b_panel, one_a_block;  // M <= MR, M == 1, N <= NR, M <= MC
};

void run_task(const GemmUkernel& uk, std::size_t K, const GemmOperand& a, const GemmOperand& b,
              float* c, std::size_t ldc, const Epilogue& ep, const Task& t) {
  const std::size_t MR = uk.mr, NR = uk.nr;
  // K is taken whole where one operand is read by a single pass of the other, so K blocks
  // buy no reuse: a single row panel of A (GEMV-like: packed B streams as one contiguous
  // run, C is written once); a single column panel of B against prepacked A (Winograd on
  // small planes) and a single block of A rows against prepacked B (pointwise layers run
  // transposed): the prepacked weights then stream from memory panel after panel. Not
  // with B read in place (a pointwise layer's input): ConvChain's strips of it must sum
  // like the whole plane's, whatever N a strip has.
  const bool streams_weights = (t.one_b_panel && a.packed && !b.rows) ||
                               (t.one_a_block && b.packed);
  const std::size_t KC = t.one_panel || streams_weights ? K : uk.kc;
  const std::size_t MC = uk.mc;
  // With a single block of A rows, each B block is used once: keep it small enough to
  // stay in L1/L2 between packing and use instead of streaming it through L3, 64 KiB (4
  // panels at K = 128 on AVX-512; more at small K, where short blocks paid their set-up:
  // 32->64 pointwise at 112x112 851 -> 722 us, 48->96 at 56x56 246 -> 235 on Sapphire
  // Rapids; at least 4 panels).
  constexpr std::size_t kOneBlockBBytes = std::size_t{64} << 10;
  const std::size_t block_panels =
      std::max<std::size_t>(4, kOneBlockBBytes / (std::min(KC, K) * NR * sizeof(float)));
  const std::size_t NC =
      t.m1 - t.m0 <= MC ? std::min<std::size_t>(uk.nc, block_panels * NR) : uk.nc;
  Workspace& ws = workspace();
  if (!b.packed) ws.b.resize(std::min(KC, K) *
                             ((std::min(NC, t.n1 - t.n0) + NR - 1) / NR) * NR);
  if (!a.packed && t.m1 - t.m0 > MC) ws.a.resize(std::min(KC, K) *
                             ((std::min(MC, t.m1 - t.m0) + MR - 1) / MR) * MR);
  // A single block of A rows is packed once, whole K, and then read like prepacked
  // weights (otherwise every B block would repack it).
  const float* a_full = a.packed;  // full-K panels starting at row a_row0
  std::size_t a_row0 = 0;
  // A lone row (a GEMV: a batch-1 Dense layer) is packed as that row (unit stride).
  const bool a_row = !a.packed && t.one_row;
  if (!a.packed && t.m1 - t.m0 <= MC) {
    const std::size_t w = a_row ? 1 : MR;
    ws.a.resize(packed_size(t.m1 - t.m0, K, w));
    pack_all(PackOffsetRows(*a.packer, t.m0), t.m1 - t.m0, K, w, ws.a.data());
    a_full = ws.a.data();
    a_row0 = t.m0;
  }
  const int row_flag = a_row ? kGemmARow : 0;
  const float* b_rows = b.rows && reads_b_in_place(uk, b.ld) ? b.rows : nullptr;
  alignas(64) float edge_c[64 * 64];
  alignas(64) float edge_bias[64];

  for (std::size_t jc = t.n0; jc < t.n1; jc += NC) {
    const std::size_t nc = std::min(NC, t.n1 - jc);
    for (std::size_t pc = 0; pc < K;) {
      const std::size_t kc = std::min(KC, K - pc);
      const int flags =
          (pc > 0 || ep.accumulate ? kGemmAccumulate : 0) | (pc + kc >= K ? kGemmFinal : 0) | row_flag;
      const float* bblock;
      std::size_t bstride;  // floats between consecutive B panels
      if (b.packed) {
        bblock = b.packed + (jc / NR) * NR * K + pc * NR;
        bstride = NR * K;
      } else if (b_rows) {  // whole panels in place (NR columns apart); a right edge packed
        bblock = b_rows + pc * b.ld + jc;
        bstride = NR;
        if (nc % NR) b.packer->pack(jc + nc - nc % NR, nc % NR, pc, kc, NR, ws.b.data());
      } else {
        b.packer->pack(jc, nc, pc, kc, NR, ws.b.data());
        bblock = ws.b.data();
        bstride = NR * kc;
      }
      for (std::size_t ic = t.m0; ic < t.m1; ic += MC) {
        if (stop_requested()) return;  // interrupted: the caller discards C
        const std::size_t mc = std::min(MC, t.m1 - ic);
        const float* ablock;
        std::size_t astride;
        if (a_row) {
          ablock = a_full + pc;
          astride = 0;  // one tile
        } else if (a_full) {
          ablock = a_full + ((ic - a_row0) / MR) * MR * K + pc * MR;
          astride = MR * K;
        } else {
          a.packer->pack(ic, mc, pc, kc, MR, ws.a.data());
          ablock = ws.a.data();
          astride = MR * kc;
        }
        for (std::size_t jr = 0; jr < nc; jr += NR) {
          const std::size_t n = std::min(NR, nc - jr);
          const bool packed_edge = b_rows && n < NR;
          const float* bpanel = packed_edge ? ws.b.data() : bblock + (jr / NR) * bstride;
          const std::size_t ldb = b_rows && !packed_edge ? b.ld : NR;
          const std::size_t col = jc + jr;
          for (std::size_t ir = 0; ir < mc; ir += MR) {
            const float* apanel = ablock + (ir / MR) * astride;
            const std::size_t m = std::min(MR, mc - ir);
            // The first tile to read a panel of prepacked (or packed-once) operand from
            // memory asks for it ahead; the tiles after it find it in cache.
            const int flags_tile = flags | (jr == 0 && a_full && !a_row ? kGemmPrefetchA : 0) |
                                   (ir == 0 && b.packed ? kGemmPrefetchB : 0);
            const std::size_t row = ic + ir;
            Epilogue tile_ep = ep;
            if (ep.bias_row) tile_ep.bias_row = ep.bias_row + row;
            float* ctile = c + row * ldc + col;
            if (n == NR) {
              if (ep.bias_col) tile_ep.bias_col = ep.bias_col + col;
              uk.fn(m, kc, apanel, bpanel, ldb, ctile, ldc, flags_tile, tile_ep);
              continue;
            }
            // Right edge: run the full-width kernel on a staging tile.
            if (flags & kGemmAccumulate)
              for (std::size_t i = 0; i < m; ++i)
                std::memcpy(edge_c + i * NR, ctile + i * ldc, n * sizeof(float));
            if (ep.bias_col) {
              std::memcpy(edge_bias, ep.bias_col + col, n * sizeof(float));
              std::fill(edge_bias + n, edge_bias + NR, 0.0f);
              tile_ep.bias_col = edge_bias;
            }
            uk.fn(m, kc, apanel, bpanel, ldb, edge_c, NR,
                  flags_tile | static_cast<int>(n) << kGemmColumnsShift, tile_ep);
            for (std::size_t i = 0; i < m; ++i)
              std::memcpy(ctile + i * ldc, edge_c + i * NR, n * sizeof(float));
          }
        }
      }
      pc += kc;
    }
  }
}

// The largest share of `n` (rows or columns, in panels of `w`) that one of `chunks`
// chunks of whole panels gets, split as gemm splits them.
double largest_chunk(std::size_t n, std::size_t w, std::size_t chunks) {
  const std::size_t panels = (n + w - 1) / w;
  std::size_t largest = 0;
  for (std::size_t i = 0; i < chunks; ++i) {
    const std::size_t p0 = panels * i / chunks, p1 = panels * (i + 1) / chunks;
    largest = std::max(largest, std::min(n, p1 * w) - p0 * w);
  }
  return double(largest) / double(n);
}

}  // namespace

void set_gemm_b_rows(GemmBRows policy) { g_b_rows.store(policy, std::memory_order_relaxed); }

void gemm(const GemmUkernel& uk, std::size_t M, std::size_t N, std::size_t K,
          const GemmOperand& a, const GemmOperand& b, float* c, std::size_t ldc,
          const Epilogue& ep, bool parallel) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // an empty sum: C = act(bias), and the operands may be empty/null
    for (std::size_t i = 0; i < M; ++i)
      for (std::size_t j = 0; j < N; ++j)
        c[i * ldc + j] = activate_ref((ep.accumulate ? c[i * ldc + j] : 0.0f) +
                                          (ep.bias_row ? ep.bias_row[i] : 0.0f) +
                                          (ep.bias_col ? ep.bias_col[j] : 0.0f),
                                      ep.act, ep.alpha);
    return;
  }
  const std::size_t MR = uk.mr, NR = uk.nr;
  std::size_t threads = parallel ? static_cast<std::size_t>(num_threads()) : 1;
  if (M * N * K < kParallelMinMacs) threads = 1;
  const std::size_t m_panels = (M + MR - 1) / MR, n_panels = (N + NR - 1) / NR;
  const Task whole{0, M, 0, N, M <= MR, M == 1, N <= NR, M <= std::size_t(uk.mc)};
  if (threads <= 1) {
    run_task(uk, K, a, b, c, ldc, ep, whole);
    return;
  }
  // Split the dimension with more panels into one chunk per thread (whole panels, so
  // packed operands stay aligned); each chunk packs its own share of the other operand.
  // Where neither has many panels, the one whose chunks come out more even (a C of 49 rows
  // by 160 columns on 2 threads: rows 24 | 25, not columns 96 | 64).
  bool split_n = n_panels >= m_panels || n_panels >= 4 * threads;
  if (n_panels < 4 * threads && m_panels > 1 && n_panels > 1) {
    const double by_rows = largest_chunk(M, MR, std::min(threads, m_panels));
    const double by_columns = largest_chunk(N, NR, std::min(threads, n_panels));
    if (by_rows != by_columns) split_n = by_columns < by_rows;
  }
  const std::size_t panels = split_n ? n_panels : m_panels;
  const std::size_t chunks = std::min(threads, panels);
  parallel_for(chunks, [&](std::size_t i) {
    const std::size_t p0 = panels * i / chunks, p1 = panels * (i + 1) / chunks;
    Task t = whole;
    if (split_n) {
      t.n0 = p0 * NR;
      t.n1 = std::min(N, p1 * NR);
    } else {
      t.m0 = p0 * MR;
      t.m1 = std::min(M, p1 * MR);
    }
    run_task(uk, K, a, b, c, ldc, ep, t);
  });
}

void matmul(const GemmUkernel& uk, std::size_t M, std::size_t N, std::size_t K, const float* a,
            const float* b, float* c) {
  PackRowsByK ap(a, K);
  PackKByRows bp(b, N);
  gemm(uk, M, N, K, GemmOperand{nullptr, &ap}, GemmOperand{nullptr, &bp}, c, N, Epilogue{}, true);
}

}  // namespace fdl
