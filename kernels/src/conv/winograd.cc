// WinogradConv: weight transform and packing at construction (and on set_weights); per
// image the three stages described in winograd.h, each split over the thread pool.
#include "winograd.h"

#include <algorithm>

#include "fastdl/isa.h"
#include "fastdl/threadpool.h"
#include "winograd-matrices.h"

namespace fdl {

namespace {

struct Workspace {
  AlignedBuffer v, m;
};
Workspace& workspace() {
  static thread_local Workspace ws;
  return ws;
}

}  // namespace

WinogradTiling winograd_tiling(const ConvGeometry& g, int m, std::size_t nr, std::size_t in_h,
                               std::size_t in_w) {
  WinogradTiling t;
  t.in_h = in_h;
  t.in_w = in_w;
  t.out_h = g.out_size(1, in_h);
  t.out_w = g.out_size(2, in_w);
  t.pad_top = g.pad_before[1];
  t.pad_left = g.pad_before[2];
  t.tiles_x = (t.out_w + m - 1) / m;
  t.tiles = t.tiles_x * ((t.out_h + m - 1) / m);
  t.first = 0;
  t.nr = nr;
  t.tiles_padded = (t.tiles + nr - 1) / nr * nr;
  t.columns = t.tiles_padded;
  return t;
}

void winograd_pack_kernel(int m, const float* weights, std::size_t rows, std::size_t k,
                          const GemmUkernel& uk, float* u) {
  const std::size_t points = static_cast<std::size_t>((m + 2) * (m + 2));
  const std::size_t per_point = packed_size(rows, k, uk.mr), mr = uk.mr;
  // Row r, column c of point xi's matrix goes to xi * per_point + (r / MR) * MR * k + c * MR
  // + r % MR. One task per panel of MR rows (a panel's cache lines are written by one
  // thread only). The points' matrices lie per_point floats apart, a multiple of 4 KiB when
  // the sizes are round: storing each value straight there would send alpha^2 streams into
  // the same cache sets. So a block of columns is transformed into a small staging buffer,
  // point after point, then copied out as one contiguous run per point.
  constexpr std::size_t kStage = 4096;  // floats: 16 KiB, stays in L1
  const std::size_t block = std::max<std::size_t>(1, kStage / (points * mr));
  const std::size_t panels = (rows + mr - 1) / mr;
  parallel_for(panels, [&](std::size_t p) {
    alignas(64) float stage[kStage];
    float slice[36];
    const std::size_t r0 = p * mr, r1 = std::min(rows, r0 + mr);
    float* panel = u + p * mr * k;
    for (std::size_t c0 = 0; c0 < k; c0 += block) {
      const std::size_t c1 = std::min(k, c0 + block), run = (c1 - c0) * mr;
      std::fill(stage, stage + points * run, 0.0f);  // a partial panel's padding rows: 0
      for (std::size_t c = c0; c < c1; ++c)
        for (std::size_t r = r0; r < r1; ++r) {
          const float* g = weights + (r * k + c) * 9;
          if (m == 2) winograd::transform_kernel<2>(g, slice);
          else winograd::transform_kernel<4>(g, slice);
          for (std::size_t xi = 0; xi < points; ++xi)
            stage[xi * run + (c - c0) * mr + (r - r0)] = slice[xi];
        }
      for (std::size_t xi = 0; xi < points; ++xi)
        std::copy(stage + xi * run, stage + (xi + 1) * run, panel + xi * per_point + c0 * mr);
    }
  });
}

bool WinogradConv::applies(const ConvGeometry& g) {
  return g.kernel[0] == 1 && g.stride[0] == 1 && g.pad_before[0] == 0 && g.pad_after[0] == 0 &&
         g.kernel[1] == 3 && g.kernel[2] == 3 && g.stride[1] == 1 && g.stride[2] == 1 &&
         g.dilation[1] == 1 && g.dilation[2] == 1 && g.groups == 1 && g.in_channels >= 8 &&
         g.out_channels >= 8;
}

int WinogradConv::best_tile(const ConvGeometry& g, const GemmUkernel& uk, std::size_t in_h,
                            std::size_t in_w) {
  // GEMM work is alpha^2 x the columns computed; transforms scale alike. (Small planes:
  // 14x14 has 16 F(4,3) tiles, half a panel of 32, against 49 F(2,3) tiles, two panels.)
  const WinogradTiling t2 = winograd_tiling(g, 2, uk.nr, in_h, in_w);
  const WinogradTiling t4 = winograd_tiling(g, 4, uk.nr, in_h, in_w);
  return 36 * gemm_computed_columns(t4.tiles, uk) <= 16 * gemm_computed_columns(t2.tiles, uk) ? 4 : 2;
}

WinogradConv::WinogradConv(const ConvGeometry& g, int m, const float* weights,
                           const GemmUkernel& uk, const WinogradVariant& variant)
    : g_(g), m_(m), alpha_(m + 2), uk_(uk), tr_(m == 2 ? variant.f2 : variant.f4) {
  packed_per_point_ = packed_size(g.out_channels, g.in_channels, uk.mr);
  u_.resize(packed_per_point_ * static_cast<std::size_t>(alpha_ * alpha_));
  set_weights(weights);
}

void WinogradConv::set_weights(const float* weights) {
  winograd_pack_kernel(m_, weights, g_.out_channels, g_.in_channels, uk_, u_.data());
}

std::size_t WinogradConv::block_tiles(std::size_t tiles) const {
  const std::size_t points = static_cast<std::size_t>(alpha_ * alpha_);
  const std::size_t per_tile = points * (g_.in_channels + g_.out_channels) * sizeof(float);
  if (tiles * per_tile <= 2 * l2_half_bytes()) return 0;  // V and M stay in L2 as they are
  const std::size_t nr = uk_.nr;
  const std::size_t block = std::max(nr, l2_half_bytes() / per_tile / nr * nr);
  return tiles >= 2 * block ? block : 0;
}

void WinogradConv::run_blocks(const float* x, const WinogradTiling& whole, std::size_t block,
                              const float* bias, Activation act, float alpha, float* y) const {
  const std::size_t cin = g_.in_channels, cout = g_.out_channels, points = alpha_ * alpha_;
  const std::size_t blocks = (whole.tiles + block - 1) / block;
  parallel_for(blocks, [&](std::size_t b) {
    WinogradTiling t = whole;
    t.first = b * block;
    t.tiles = std::min(block, whole.tiles - t.first);
    t.tiles_padded = (t.tiles + t.nr - 1) / t.nr * t.nr;
    t.columns = gemm_computed_columns(t.tiles, uk_);
    Workspace& ws = workspace();  // this thread's
    ws.v.resize(points * t.point_stride(cin));
    ws.m.resize(points * t.point_stride(cout));
    tr_->input(t, x, cin, 0, cin, ws.v.data());
    for (std::size_t xi = 0; xi < points; ++xi)
      gemm(uk_, cout, t.tiles, cin, GemmOperand{u_.data() + xi * packed_per_point_, nullptr},
           GemmOperand{ws.v.data() + xi * t.point_stride(cin), nullptr},
           ws.m.data() + xi * t.point_stride(cout), t.tiles_padded, Epilogue{}, false);
    tr_->output(t, ws.m.data(), cout, 0, cout, bias, act, alpha, y);
  });
}

void WinogradConv::run(const float* x, std::size_t in_h, std::size_t in_w, const float* bias,
                       Activation act, float alpha, float* y) const {
  WinogradTiling t = winograd_tiling(g_, m_, uk_.nr, in_h, in_w);
  if (const std::size_t block = block_tiles(t.tiles))
    return run_blocks(x, t, block, bias, act, alpha, y);
  t.columns = gemm_computed_columns(t.tiles, uk_);  // the GEMMs below take N = t.tiles
  const std::size_t cin = g_.in_channels, cout = g_.out_channels, points = alpha_ * alpha_;
  Workspace& ws = workspace();
  ws.v.resize(points * t.point_stride(cin));
  ws.m.resize(points * t.point_stride(cout));
  float* v = ws.v.data();
  float* mm = ws.m.data();
  const std::size_t threads = static_cast<std::size_t>(num_threads());
  // Enough chunks to balance, few enough to keep per-chunk loop overhead small.
  auto chunks_of = [&](std::size_t n) { return std::min(n, 4 * threads); };

  const std::size_t in_chunks = chunks_of(cin);
  parallel_for(in_chunks, [&](std::size_t i) {
    tr_->input(t, x, cin, cin * i / in_chunks, cin * (i + 1) / in_chunks, v);
  });
  // N = the real tiles (V's panels are padded to NR): a last panel of at most NR / 2 tiles
  // is computed half wide; M's padding columns are left unwritten (the output transform
  // reads only real tiles' values).
  parallel_for(points, [&](std::size_t xi) {
    gemm(uk_, cout, t.tiles, cin, GemmOperand{u_.data() + xi * packed_per_point_, nullptr},
         GemmOperand{v + xi * t.point_stride(cin), nullptr}, mm + xi * t.point_stride(cout),
         t.tiles_padded, Epilogue{}, false);
  });
  const std::size_t out_chunks = chunks_of(cout);
  parallel_for(out_chunks, [&](std::size_t i) {
    tr_->output(t, mm, cout, cout * i / out_chunks, cout * (i + 1) / out_chunks, bias, act,
                alpha, y);
  });
}

}  // namespace fdl
