// WinogradConv: weight transform and packing at construction; per image the three stages
// described in winograd.h, each split over the thread pool.
#include "winograd.h"

#include <algorithm>
#include <vector>

#include "fastdl/threadpool.h"
#include "winograd-matrices.h"

#if defined(__x86_64__) || defined(_M_X64)
extern const fdl::WinogradTransforms fdl_f32_winograd_m2__avx2, fdl_f32_winograd_m4__avx2;
extern const fdl::WinogradTransforms fdl_f32_winograd_m2__avx512, fdl_f32_winograd_m4__avx512;
#elif defined(__aarch64__)
extern const fdl::WinogradTransforms fdl_f32_winograd_m2__neon, fdl_f32_winograd_m4__neon;
#endif

namespace fdl {

const WinogradTransforms* winograd_transforms(Isa isa, int m) {
  switch (isa) {
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::kAvx2: return m == 2 ? &fdl_f32_winograd_m2__avx2 : &fdl_f32_winograd_m4__avx2;
    case Isa::kAvx512: return m == 2 ? &fdl_f32_winograd_m2__avx512 : &fdl_f32_winograd_m4__avx512;
#elif defined(__aarch64__)
    case Isa::kNeon: return m == 2 ? &fdl_f32_winograd_m2__neon : &fdl_f32_winograd_m4__neon;
#endif
    default: return nullptr;
  }
}

namespace {

WinogradTiling tiling(const Conv2dGeometry& g, int m, std::size_t nr, std::size_t in_h,
                      std::size_t in_w) {
  WinogradTiling t;
  t.in_h = in_h;
  t.in_w = in_w;
  t.out_h = g.out_h(in_h);
  t.out_w = g.out_w(in_w);
  t.pad_top = g.pad_top;
  t.pad_left = g.pad_left;
  t.tiles_x = (t.out_w + m - 1) / m;
  t.tiles = t.tiles_x * ((t.out_h + m - 1) / m);
  t.nr = nr;
  t.tiles_padded = (t.tiles + nr - 1) / nr * nr;
  return t;
}

struct Workspace {
  AlignedBuffer v, m;
};
Workspace& workspace() {
  static thread_local Workspace ws;
  return ws;
}

}  // namespace

bool WinogradConv::applies(const Conv2dGeometry& g, const GemmUkernel& uk) {
  return g.kernel_h == 3 && g.kernel_w == 3 && g.stride_h == 1 && g.stride_w == 1 &&
         g.dilation_h == 1 && g.dilation_w == 1 && g.groups == 1 && g.in_channels >= 8 &&
         g.out_channels >= 8 && winograd_transforms(uk.isa, 4) != nullptr;
}

int WinogradConv::best_tile(const Conv2dGeometry& g, const GemmUkernel& uk, std::size_t in_h,
                            std::size_t in_w) {
  // GEMM work is alpha^2 x padded tiles; transforms scale alike.
  const WinogradTiling t2 = tiling(g, 2, uk.nr, in_h, in_w);
  const WinogradTiling t4 = tiling(g, 4, uk.nr, in_h, in_w);
  return 36 * t4.tiles_padded <= 16 * t2.tiles_padded ? 4 : 2;
}

WinogradConv::WinogradConv(const Conv2dGeometry& g, int m, const float* weights,
                           const GemmUkernel& uk)
    : g_(g), m_(m), alpha_(m + 2), uk_(uk), tr_(winograd_transforms(uk.isa, m)) {
  const std::size_t cin = g.in_channels, cout = g.out_channels, points = alpha_ * alpha_;
  // transformed[xi][o][c]
  std::vector<float> transformed(points * cout * cin);
  std::vector<double> u(points);
  for (std::size_t o = 0; o < cout; ++o)
    for (std::size_t c = 0; c < cin; ++c) {
      const float* k = weights + (o * cin + c) * 9;
      if (m == 2) winograd::transform_kernel<2>(k, u.data());
      else winograd::transform_kernel<4>(k, u.data());
      for (std::size_t xi = 0; xi < points; ++xi)
        transformed[(xi * cout + o) * cin + c] = static_cast<float>(u[xi]);
    }
  packed_per_point_ = packed_size(cout, cin, uk.mr);
  u_.resize(packed_per_point_ * points);
  for (std::size_t xi = 0; xi < points; ++xi)
    pack_all(PackRowsByK(transformed.data() + xi * cout * cin, cin), cout, cin, uk.mr,
             u_.data() + xi * packed_per_point_);
}

void WinogradConv::run(const float* x, std::size_t in_h, std::size_t in_w, const float* bias,
                       Activation act, float alpha, float* y) const {
  const WinogradTiling t = tiling(g_, m_, uk_.nr, in_h, in_w);
  const std::size_t cin = g_.in_channels, cout = g_.out_channels, points = alpha_ * alpha_;
  Workspace& ws = workspace();
  ws.v.resize(points * t.tiles_padded * cin);
  ws.m.resize(points * cout * t.tiles_padded);
  float* v = ws.v.data();
  float* mm = ws.m.data();
  const std::size_t threads = static_cast<std::size_t>(num_threads());
  // Enough chunks to balance, few enough to keep per-chunk loop overhead small.
  auto chunks_of = [&](std::size_t n) { return std::min(n, 4 * threads); };

  const std::size_t in_chunks = chunks_of(cin);
  parallel_for(in_chunks, [&](std::size_t i) {
    tr_->input(t, x, cin, cin * i / in_chunks, cin * (i + 1) / in_chunks, v);
  });
  parallel_for(points, [&](std::size_t xi) {
    gemm(uk_, cout, t.tiles_padded, cin, GemmOperand{u_.data() + xi * packed_per_point_, nullptr},
         GemmOperand{v + xi * t.tiles_padded * cin, nullptr}, mm + xi * cout * t.tiles_padded,
         t.tiles_padded, Epilogue{}, false);
  });
  const std::size_t out_chunks = chunks_of(cout);
  parallel_for(out_chunks, [&](std::size_t i) {
    tr_->output(t, mm, cout, cout * i / out_chunks, cout * (i + 1) / out_chunks, bias, act,
                alpha, y);
  });
}

}  // namespace fdl
