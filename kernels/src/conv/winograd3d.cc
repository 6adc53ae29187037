// Conv3dWinograd: see winograd3d.h.
#include "winograd3d.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "fastdl/threadpool.h"

namespace fdl {

namespace {

// B operand of one output plane: rows k = c*3 + kz of the GEMM are rows c*D + d0 + kz of
// V (d0 = od - pad: the first input plane the window meets), zero where that plane lies in
// the depth padding. V's panels hold `vk` = C*D rows each; all panels are full (V is
// padded to whole panels), so each (c, kz) is one contiguous copy of NR floats.
struct DepthWindowPacker final : Packer {
  const float* v;
  std::size_t vk, depth;
  std::ptrdiff_t d0;
  DepthWindowPacker(const float* v_, std::size_t vk_, std::size_t depth_, std::ptrdiff_t d0_)
      : v(v_), vk(vk_), depth(depth_), d0(d0_) {}
  void pack(std::size_t r0, std::size_t rows, std::size_t k0, std::size_t kc, std::size_t w,
            float* dst) const override {
    for (std::size_t q = 0; q * w < rows; ++q, dst += kc * w) {
      const float* panel = v + (r0 / w + q) * w * vk;
      for (std::size_t p = 0; p < kc; ++p) {
        const std::size_t k = k0 + p, c = k / 3;
        const std::ptrdiff_t d = d0 + static_cast<std::ptrdiff_t>(k % 3);
        float* out = dst + p * w;
        if (d < 0 || d >= static_cast<std::ptrdiff_t>(depth)) {
          std::fill(out, out + w, 0.0f);
        } else {
          std::memcpy(out, panel + (c * depth + static_cast<std::size_t>(d)) * w,
                      w * sizeof(float));
        }
      }
    }
  }
};

struct Workspace {
  AlignedBuffer v, m, bias;
};
Workspace& workspace() {
  static thread_local Workspace ws;
  return ws;
}

}  // namespace

bool Conv3dWinograd::applies(const ConvGeometry& g) {
  for (int a = 0; a < 3; ++a)
    if (g.kernel[a] != 3 || g.stride[a] != 1 || g.dilation[a] != 1) return false;
  return g.groups == 1 && g.in_channels >= 8 && g.out_channels >= 8;
}

Conv3dWinograd::Conv3dWinograd(const ConvGeometry& g, const float* weights,
                               const GemmUkernel& uk, const WinogradVariant& variant)
    : g_(g), uk_(uk) {
  const std::size_t cout = g_.out_channels, k = 3 * g_.in_channels;
  for (int i = 0; i < 2; ++i) {
    Form& f = forms_[i];
    f.m = i == 0 ? 2 : 4;
    f.tr = i == 0 ? variant.f2 : variant.f4;
    f.packed_per_point = packed_size(cout, k, uk_.mr);
    f.u.resize(f.packed_per_point * static_cast<std::size_t>((f.m + 2) * (f.m + 2)));
  }
  set_weights(weights);
}

void Conv3dWinograd::set_weights(const float* weights) {
  // The weights [Cout][Cin][3][3][3] are already a 2-D weight array [Cout][3*Cin][3][3] in
  // the K order (c, kz) of the GEMMs.
  for (Form& f : forms_)
    winograd_pack_kernel(f.m, weights, g_.out_channels, 3 * g_.in_channels, uk_, f.u.data());
}

WinogradTiling Conv3dWinograd::tiling(int m, const Size3& in) const {
  return winograd_tiling(g_, m, uk_.nr, in[1], in[2]);
}

int Conv3dWinograd::best_tile(const Size3& in) const {
  return 36 * tiling(4, in).tiles_padded <= 16 * tiling(2, in).tiles_padded ? 4 : 2;
}

bool Conv3dWinograd::fits(const Size3& in, int m) const {
  const std::size_t points = static_cast<std::size_t>((m + 2) * (m + 2));
  const std::size_t planes = g_.in_channels * in[0] + g_.out_channels * g_.out_size(0, in[0]);
  return points * tiling(m, in).tiles_padded * planes <= kMaxWorkspaceFloats;
}

void Conv3dWinograd::run(const float* x, const Size3& in, int m, const float* bias,
                         Activation act, float alpha, float* y) const {
  const Form& f = forms_[m == 4 ? 1 : 0];
  const WinogradTiling t = tiling(f.m, in);
  const std::size_t cin = g_.in_channels, cout = g_.out_channels;
  const std::size_t depth = in[0], od_count = g_.out_size(0, in[0]);
  const std::size_t points = static_cast<std::size_t>((f.m + 2) * (f.m + 2));
  const std::size_t planes_in = cin * depth, planes_out = cout * od_count;
  const std::size_t tp = t.tiles_padded;
  Workspace& ws = workspace();
  ws.v.resize(points * t.point_stride(planes_in));
  ws.m.resize(points * t.point_stride(planes_out));
  float* v = ws.v.data();
  float* mm = ws.m.data();
  const float* plane_bias = nullptr;
  if (bias) {  // the output transform's "channel" o*OD + od takes bias[o]
    ws.bias.resize(planes_out);
    for (std::size_t o = 0; o < cout; ++o)
      std::fill(ws.bias.data() + o * od_count, ws.bias.data() + (o + 1) * od_count, bias[o]);
    plane_bias = ws.bias.data();
  }
  const std::size_t threads = static_cast<std::size_t>(num_threads());
  auto chunks_of = [&](std::size_t n) { return std::min(n, 4 * threads); };

  const std::size_t in_chunks = chunks_of(planes_in);
  parallel_for(in_chunks, [&](std::size_t i) {
    f.tr->input(t, x, planes_in, planes_in * i / in_chunks, planes_in * (i + 1) / in_chunks, v);
  });
  const std::ptrdiff_t pad = static_cast<std::ptrdiff_t>(g_.pad_before[0]);
  parallel_for(points * od_count, [&](std::size_t job) {
    const std::size_t xi = job % points, od = job / points;
    DepthWindowPacker b(v + xi * t.point_stride(planes_in), planes_in, depth,
                        static_cast<std::ptrdiff_t>(od) - pad);
    gemm(uk_, cout, tp, 3 * cin, GemmOperand{f.u.data() + xi * f.packed_per_point, nullptr},
         GemmOperand{nullptr, &b}, mm + xi * t.point_stride(planes_out) + od * tp, od_count * tp,
         Epilogue{}, false);
  });
  const std::size_t out_chunks = chunks_of(planes_out);
  parallel_for(out_chunks, [&](std::size_t i) {
    f.tr->output(t, mm, planes_out, planes_out * i / out_chunks,
                 planes_out * (i + 1) / out_chunks, plane_bias, act, alpha, y);
  });
}

}  // namespace fdl
