// The convolution's gradients (fastdl/conv_backward.h): dw and dx as GEMMs over chunks of
// images (the images' positions side by side in one GEMM), dx scattered back by col2im;
// depthwise layers on their direct per-plane kernels; a stride-1 layer's dw as shifted dot
// products over zero-padded copies of x and dy.
#include "fastdl/conv_backward.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "fastdl/buffer.h"
#include "fastdl/threadpool.h"
#include "fastdl/variants.h"
#include "padded-grid.h"

namespace fdl {
namespace {

// Columns (in floats) one chunk of images may take in conv_input_gradient: bounds the
// workspace while giving small images a GEMM wide enough to be worth its packing.
constexpr std::size_t kColumnBudget = std::size_t{1} << 23;

// A matrix of `rows` rows whose K axis runs over `images` images of `length` positions
// each: element (r, k) is at src[(k / length) * image_stride + r * row_stride + k % length]
// (a group's rows of dy or of the input, or of per-image im2col matrices, image after
// image).
struct PackRowsAcrossImages final : Packer {
  const float* src;
  std::size_t row_stride, image_stride, length;
  PackRowsAcrossImages(const float* s, std::size_t rs, std::size_t is, std::size_t len)
      : src(s), row_stride(rs), image_stride(is), length(len) {}

  // Within one image the rows are a dense row-major block: each run of k is packed by
  // PackRowsByK (its blocked transpose), into the panel's rows p .. p + run.
  void pack(std::size_t r0, std::size_t rows, std::size_t k0, std::size_t kc, std::size_t w,
            float* dst) const override {
    for (std::size_t q = 0; q * w < rows; ++q, dst += kc * w) {
      const std::size_t n = std::min(w, rows - q * w);
      for (std::size_t p = 0; p < kc;) {  // runs of k inside one image
        const std::size_t k = k0 + p, image = k / length, l = k % length;
        const std::size_t run = std::min(kc - p, length - l);
        const float* base = src + image * image_stride + (r0 + q * w) * row_stride + l;
        PackRowsByK(base, row_stride).pack(0, n, 0, run, w, dst + p * w);
        p += run;
      }
    }
  }
};

// B of a GEMM whose columns run over `images` images of `length` positions each: element
// (column r, k) is at src[(r / length) * image_stride + k * k_stride + r % length] (the
// rows of dy of one group, image after image, read as K x columns).
struct PackColumnsAcrossImages final : Packer {
  const float* src;
  std::size_t k_stride, image_stride, length;
  PackColumnsAcrossImages(const float* s, std::size_t ks, std::size_t is, std::size_t len)
      : src(s), k_stride(ks), image_stride(is), length(len) {}

  void pack(std::size_t r0, std::size_t rows, std::size_t k0, std::size_t kc, std::size_t w,
            float* dst) const override {
    for (std::size_t q = 0; q * w < rows; ++q, dst += kc * w) {
      const std::size_t n = std::min(w, rows - q * w);
      for (std::size_t t = 0; t < n;) {  // runs of columns inside one image
        const std::size_t r = r0 + q * w + t, image = r / length, l = r % length;
        const std::size_t run = std::min(n - t, length - l);
        const float* base = src + image * image_stride + k0 * k_stride + l;
        for (std::size_t p = 0; p < kc; ++p) {
          const float* s = base + p * k_stride;
          float* d = dst + p * w + t;
          for (std::size_t i = 0; i < run; ++i) d[i] = s[i];
        }
        t += run;
      }
      for (std::size_t p = 0; p < kc; ++p)
        for (std::size_t t = n; t < w; ++t) dst[p * w + t] = 0.0f;
    }
  }
};

// The im2col matrix of one group's channels over a chunk of images, read by rows: element
// (row kk = c * taps + tap, column k = n * L + l) is x[n][c] at the input the tap reads
// for output position l (0 in the padding) -- the A operand of dW^T = cols * dY^T, packed
// straight from x with no column matrix in memory.
struct PackIm2colRows final : Packer {
  const ConvGeometry& g;
  const float* x;  // the group's first channel of the chunk's first image
  Size3 in, out;
  std::size_t image_stride;

  PackIm2colRows(const ConvGeometry& geometry, const float* group_x, const Size3& in_size,
                 std::size_t stride)
      : g(geometry), x(group_x), in(in_size), out(geometry.out_size(in_size)),
        image_stride(stride) {}

  void pack(std::size_t r0, std::size_t rows, std::size_t k0, std::size_t kc, std::size_t w,
            float* dst) const override {
    const std::size_t taps = g.taps(), V = volume(in), L = volume(out);
    const std::size_t plane_out = out[1] * out[2];
    for (std::size_t q = 0; q * w < rows; ++q, dst += kc * w) {
      const std::size_t n = std::min(w, rows - q * w);
      for (std::size_t t = 0; t < n; ++t) {
        const std::size_t kk = r0 + q * w + t, c = kk / taps, tap = kk % taps;
        const std::size_t kz = tap / (g.kernel[1] * g.kernel[2]);
        const std::size_t ky = tap / g.kernel[2] % g.kernel[1], kx = tap % g.kernel[2];
        const long dz = long(kz * g.dilation[0]) - long(g.pad_before[0]);
        const long dy = long(ky * g.dilation[1]) - long(g.pad_before[1]);
        const long dx = long(kx * g.dilation[2]) - long(g.pad_before[2]);
        float* d = dst + t;
        for (std::size_t p = 0; p < kc;) {  // runs along one output row
          const std::size_t k = k0 + p, image = k / L, l = k % L;
          const std::size_t od = l / plane_out, oh = l / out[2] % out[1], ow = l % out[2];
          const std::size_t run = std::min(kc - p, out[2] - ow);
          const long iz = long(od * g.stride[0]) + dz, iy = long(oh * g.stride[1]) + dy;
          if (iz < 0 || iy < 0 || iz >= long(in[0]) || iy >= long(in[1])) {
            for (std::size_t i = 0; i < run; ++i) d[(p + i) * w] = 0.0f;
          } else {
            const float* row = x + image * image_stride + c * V +
                               (std::size_t(iz) * in[1] + std::size_t(iy)) * in[2];
            for (std::size_t i = 0; i < run; ++i) {
              const long ix = long((ow + i) * g.stride[2]) + dx;
              d[(p + i) * w] = ix >= 0 && ix < long(in[2]) ? row[ix] : 0.0f;
            }
          }
          p += run;
        }
      }
      for (std::size_t p = 0; p < kc; ++p)
        for (std::size_t t = n; t < w; ++t) dst[p * w + t] = 0.0f;
    }
  }
};

// db[c] += the sum of row c of a [channels][length] block, kConvBiasBlock at a time.
void add_row_sums(const float* a, std::size_t channels, std::size_t length, float* db) {
  for (std::size_t c = 0; c < channels; ++c) {
    const float* row = a + c * length;
    float total = 0.0f;
    for (std::size_t l0 = 0; l0 < length; l0 += kConvBiasBlock) {
      const std::size_t l1 = std::min(length, l0 + kConvBiasBlock);
      float lanes[8] = {};  // independent chains the compiler keeps in one vector
      std::size_t l = l0;
      for (; l + 8 <= l1; l += 8)
        for (int j = 0; j < 8; ++j) lanes[j] += row[l + j];
      float partial = 0.0f;
      for (; l < l1; ++l) partial += row[l];
      for (int j = 0; j < 8; ++j) partial += lanes[j];
      total += partial;
    }
    db[c] += total;
  }
}

// Asks for the cache lines of the first 16 KB of n floats at p (the hardware prefetcher
// follows a plane once it is read in order, but not the jump to the next channel's).
void prefetch_floats(const float* p, std::size_t n) {
  const std::size_t end = std::min<std::size_t>(n, 4096);
  for (std::size_t i = 0; i < end; i += 16) __builtin_prefetch(p + i);
}

// Output positions per task of the depthwise weight gradient: a channel's images go in
// chunks of about this many (fixed by the shape alone, so the sums do not depend on the
// thread count), each chunk's sums in double, the chunks added in order. A chunk's dy
// (128 KB) stays in L2 between the input and the weight gradient of the fused pass.
constexpr std::size_t kDepthwiseTaskPositions = std::size_t{1} << 15;

void depthwise_input_gradient(const DepthwiseBackwardVariant& v, const ConvGeometry& g,
                              const float* w, std::size_t batch, const Size3& in,
                              const float* dy, float* dx) {
  const Size3 out = g.out_size(in);
  const std::size_t C = g.in_channels, O = g.out_channels, m = O / C, taps = g.taps();
  const std::size_t depth = in[0], plane = in[1] * in[2], out_plane = out[1] * out[2];
  // Planes (image, channel, depth slice) of dx; channel c's kernels are c*m ... c*m + m-1.
  parallel_for(batch * C * depth, [&](std::size_t p) {
    const std::size_t n = p / (C * depth), c = p / depth % C, z = p % depth;
    v.input_grad(g, dy + ((n * O + c * m) * depth + z) * out_plane, depth * out_plane, m,
                 w + c * m * taps, in[1], in[2], dx + p * plane);
  });
}

// dw (added into) and, unless null, dx (overwritten) of a depthwise layer. With dx and
// enough channels for the pool, a task is one input channel and chunk of images: the
// chunk's dx planes, then the dw sums of the channel's m outputs over it while its dy is
// still in cache. Otherwise dx goes plane by plane first, then a task is one output
// channel and chunk. The sums are the same either way.
void depthwise_gradients(const DepthwiseBackwardVariant& v, const ConvGeometry& g,
                         const float* x, const float* w, std::size_t batch, const Size3& in,
                         const float* dy, float* dx, float* dw) {
  const Size3 out = g.out_size(in);
  const std::size_t C = g.in_channels, O = g.out_channels, m = O / C, taps = g.taps();
  const std::size_t depth = in[0], plane = in[1] * in[2], out_plane = out[1] * out[2];
  const std::size_t per_task =
      std::clamp<std::size_t>(kDepthwiseTaskPositions / std::max<std::size_t>(1, depth * out_plane),
                              1, batch);
  const std::size_t chunks = (batch + per_task - 1) / per_task;
  std::vector<double> sums(O * chunks * taps, 0.0);  // [co][chunk][tap]
  // The dw sums of output channel co over images [n0, n0 + images) of chunk k.
  auto weight_sums = [&](std::size_t co, std::size_t k, std::size_t n0, std::size_t images) {
    for (std::size_t z = 0; z < depth; ++z)  // x[n][co / m][z], dy[n][co][z], n = n0, ...
      v.weight_grad(g, x + ((n0 * C + co / m) * depth + z) * plane, C * depth * plane,
                    dy + ((n0 * O + co) * depth + z) * out_plane, O * depth * out_plane, images,
                    in[1], in[2], sums.data() + (co * chunks + k) * taps);
  };
  const bool fused = dx && C * chunks >= 4 * static_cast<std::size_t>(num_threads());
  if (dx && !fused) depthwise_input_gradient(v, g, w, batch, in, dy, dx);
  if (fused) {
    parallel_for(C * chunks, [&](std::size_t t) {
      const std::size_t c = t / chunks, k = t % chunks, n0 = k * per_task;
      const std::size_t images = std::min(per_task, batch - n0);
      for (std::size_t n = n0; n < n0 + images; ++n) {
        if (n + 1 < n0 + images)  // the next image's planes lie a channel apart: fetch early
          prefetch_floats(dy + ((n + 1) * O + c * m) * depth * out_plane,
                          m * depth * out_plane);
        for (std::size_t z = 0; z < depth; ++z)  // dx[n][c][z] from dy[n][c*m + j][z], j < m
          v.input_grad(g, dy + ((n * O + c * m) * depth + z) * out_plane, depth * out_plane, m,
                       w + c * m * taps, in[1], in[2], dx + ((n * C + c) * depth + z) * plane);
      }
      for (std::size_t j = 0; j < m; ++j) weight_sums(c * m + j, k, n0, images);
    });
  } else {
    parallel_for(O * chunks, [&](std::size_t t) {
      const std::size_t co = t / chunks, k = t % chunks, n0 = k * per_task;
      weight_sums(co, k, n0, std::min(per_task, batch - n0));
    });
  }
  for (std::size_t co = 0; co < O; ++co)
    for (std::size_t tap = 0; tap < taps; ++tap) {
      double total = dw[co * taps + tap];
      for (std::size_t k = 0; k < chunks; ++k) total += sums[(co * chunks + k) * taps + tap];
      dw[co * taps + tap] = static_cast<float>(total);
    }
}

// Floats of staged x and dy per chunk of images in the shifted dot products: a chunk's
// operands stay in L2 while every register tile reads them.
constexpr std::size_t kShiftedDotsStaging = std::size_t{1} << 17;

std::size_t round_up(std::size_t n, std::size_t m) { return (n + m - 1) / m * m; }

// dw and db (added into; db may be null) of a stride-1 layer as shifted dot products
// (conv_backward.h). Tasks are chunks of images, fixed by the shape: each stages its
// images' x zero-padded and dy on the padded grid, then runs v per group; the chunks' sums
// are added in order in double. db is one more column of the same dot products: dy against
// a run of ones staged after each image's x.
void shifted_dots_weight_gradient(const ShiftedDotsVariant& v, const ConvGeometry& g,
                                  const float* x, std::size_t batch, const Size3& in,
                                  const float* dy, float* dw, float* db) {
  const std::size_t C = g.in_channels, O = g.out_channels;
  const std::size_t cin_g = C / g.groups, cout_g = O / g.groups, taps = g.taps();
  const std::size_t kg = cin_g * taps, cols = kg + (db ? 1 : 0);
  const Size3 out = g.out_size(in);
  Size3 padded;
  for (int a = 0; a < 3; ++a) padded[a] = g.pad_before[a] + in[a] + g.pad_after[a];
  const std::size_t Hp = padded[1], Wp = padded[2];
  // dy's positions on the padded grid: up to the last output, rounded to whole vectors.
  const std::size_t length =
      round_up(((out[0] - 1) * Hp + out[1] - 1) * Wp + out[2], 16);
  std::vector<std::size_t> tap_offset(taps);
  for (std::size_t t = 0; t < taps; ++t) {
    const std::size_t kz = t / (g.kernel[1] * g.kernel[2]), ky = t / g.kernel[2] % g.kernel[1];
    const std::size_t kx = t % g.kernel[2];
    tap_offset[t] = (kz * g.dilation[0] * Hp + ky * g.dilation[1]) * Wp + kx * g.dilation[2];
  }
  // A staged x plane: the padded volume, and zeros as far as the last tap's window reads.
  // An image's staged x: its C planes, then (for db) `length` ones.
  const std::size_t x_plane =
      round_up(std::max(volume(padded), tap_offset[taps - 1] + length), 16);
  const std::size_t x_image = C * x_plane + (db ? length : 0);

  const std::size_t per_image = x_image + O * length;
  const std::size_t per_chunk =
      std::clamp<std::size_t>(kShiftedDotsStaging / per_image, 1, batch);
  const std::size_t chunks = (batch + per_chunk - 1) / per_chunk;
  const std::size_t V = volume(in), L = volume(out), sums_per_chunk = O * cols;
  std::vector<float> sums(chunks * sums_per_chunk);
  // Chunk k's images staged into xs and dys.
  // Rows are short (a 32-wide image: 128 bytes): copied inline, not through memcpy calls.
  auto copy_rows = [](const float* src, std::size_t rows, std::size_t width, float* dst,
                      std::size_t dst_stride) {
    for (std::size_t r = 0; r < rows; ++r, src += width, dst += dst_stride)
      for (std::size_t i = 0; i < width; ++i) dst[i] = src[i];
  };
  const bool flat = in[0] == 1 && out[0] == 1;  // one depth slice: planes staged row by row
  auto stage = [&](std::size_t k, float* xs, float* dys) {
    const std::size_t n0 = k * per_chunk, images = std::min(per_chunk, batch - n0);
    if (!flat) {
      std::fill(xs, xs + images * x_image, 0.0f);
      std::fill(dys, dys + images * O * length, 0.0f);
    }
    for (std::size_t n = 0; n < images; ++n) {
      float* image = xs + n * x_image;
      for (std::size_t c = 0; c < C; ++c) {
        const float* src = x + ((n0 + n) * C + c) * V;
        float* plane = image + c * x_plane;
        if (flat) {  // every element written once: the padding's zeros around the rows
          pad_plane(src, in[1], in[2], g.pad_before[1], g.pad_before[2], Hp, Wp, plane);
          std::fill(plane + Hp * Wp, plane + x_plane, 0.0f);
          continue;
        }
        for (std::size_t z = 0; z < in[0]; ++z)
          copy_rows(src + z * in[1] * in[2], in[1], in[2],
                    plane + ((z + g.pad_before[0]) * Hp + g.pad_before[1]) * Wp + g.pad_before[2],
                    Wp);
      }
      if (db) std::fill(image + C * x_plane, image + x_image, 1.0f);
    }
    for (std::size_t i = 0; i < images * O; ++i) {  // (image, channel) planes of dy
      const float* src = dy + n0 * O * L + i * L;
      float* plane = dys + i * length;
      if (!flat) {
        for (std::size_t z = 0; z < out[0]; ++z)
          copy_rows(src + z * out[1] * out[2], out[1], out[2], plane + z * Hp * Wp, Wp);
        continue;
      }
      // Rows Wp apart, zeros between them and after the last up to `length` (which ends
      // within the last row's padding or past it).
      for (std::size_t r = 0; r < out[1]; ++r) {
        float* row = plane + r * Wp;
        for (std::size_t i2 = 0; i2 < out[2]; ++i2) row[i2] = src[r * out[2] + i2];
        const std::size_t end = std::min(length, (r + 1) * Wp);
        std::fill(row + out[2], plane + end, 0.0f);
      }
      std::fill(plane + std::min(length, out[1] * Wp), plane + length, 0.0f);
    }
  };
  // Rows [r0, r1) of group `group`'s sums over staged chunk k. An entry's sum does not
  // depend on which rows share its register tile: splitting rows changes no result.
  auto dots = [&](std::size_t k, const float* xs, const float* dys, std::size_t group,
                  std::size_t r0, std::size_t r1) {
    const std::size_t images = std::min(per_chunk, batch - k * per_chunk);
    const std::size_t first = group * cin_g;  // the group's first input channel
    std::vector<std::size_t> offsets(cols);
    for (std::size_t c = 0; c < cin_g; ++c)
      for (std::size_t t = 0; t < taps; ++t) offsets[c * taps + t] = c * x_plane + tap_offset[t];
    if (db) offsets[kg] = (C - first) * x_plane;  // the ones, from the group's channels
    v.fn(dys + (group * cout_g + r0) * length, r1 - r0, length, xs + first * x_plane,
         offsets.data(), cols, length, images, O * length, x_image,
         sums.data() + k * sums_per_chunk + (group * cout_g + r0) * cols);
  };
  const std::size_t threads = static_cast<std::size_t>(num_threads());
  if (chunks >= threads) {
    parallel_for(chunks, [&](std::size_t k) {
      const std::size_t images = std::min(per_chunk, batch - k * per_chunk);
      AlignedBuffer xs(images * x_image), dys(images * O * length);
      stage(k, xs.data(), dys.data());
      for (std::size_t group = 0; group < g.groups; ++group)
        dots(k, xs.data(), dys.data(), group, 0, cout_g);
    });
  } else {  // few chunks (a small batch of large images): each one's rows across the pool
    // About two tasks per thread, each a multiple of 4 rows (every ISA's tile height).
    const std::size_t per_group = (2 * threads + g.groups - 1) / g.groups;
    const std::size_t per_block = round_up((cout_g + per_group - 1) / per_group, 4);
    const std::size_t blocks = (cout_g + per_block - 1) / per_block;
    AlignedBuffer xs(per_chunk * x_image), dys(per_chunk * O * length);
    for (std::size_t k = 0; k < chunks; ++k) {
      stage(k, xs.data(), dys.data());
      parallel_for(g.groups * blocks, [&](std::size_t t) {
        const std::size_t group = t / blocks, r0 = t % blocks * per_block;
        dots(k, xs.data(), dys.data(), group, r0, std::min(cout_g, r0 + per_block));
      });
    }
  }
  for (std::size_t co = 0; co < O; ++co)
    for (std::size_t j = 0; j < cols; ++j) {
      double total = 0.0;
      for (std::size_t k = 0; k < chunks; ++k) total += sums[k * sums_per_chunk + co * cols + j];
      (j < kg ? dw[co * kg + j] : db[co]) += static_cast<float>(total);
    }
}

// dx of a stride-1 layer as the forward convolution of dy (ConvPlan: Winograd, the padded
// grid, ... whatever it picks) with the kernels flipped and the channel roles exchanged
// per group, padded by dilation * (kernel - 1) - padding on each side: no column matrix and
// no col2im. False (nothing written) where the stride is not 1, the padding exceeds the
// dilated kernel's reach, or dx has so few channels per group that the forward
// convolution's GEMM would be a few rows tall (3 -> 16 channels 2x2 on 32x32 at batch 32:
// 0.47 ms against 0.34 for the GEMM and col2im; 16 -> 32 on 16x16: 0.55 against 0.66).
constexpr std::size_t kTransposedConvMinChannels = 8;

bool transposed_convolution_input_gradient(const GemmUkernel& uk, const ConvGeometry& g,
                                           const float* w, std::size_t batch, const Size3& in,
                                           const float* dy, float* dx) {
  if (!is_shifted_dots_gradient(g) || g.in_channels / g.groups < kTransposedConvMinChannels)
    return false;
  ConvGeometry t = g;
  t.in_channels = g.out_channels;
  t.out_channels = g.in_channels;
  for (int a = 0; a < 3; ++a) {
    const std::size_t reach = g.dilation[a] * (g.kernel[a] - 1);
    if (g.pad_before[a] > reach || g.pad_after[a] > reach) return false;
    t.pad_before[a] = reach - g.pad_before[a];
    t.pad_after[a] = reach - g.pad_after[a];
  }
  const std::size_t cin_g = g.in_channels / g.groups, cout_g = g.out_channels / g.groups;
  const std::size_t taps = g.taps();
  // t's weights [in_channels][out_channels / groups][taps]: w's, kernels flipped.
  std::vector<float> flipped(g.in_channels * cout_g * taps);
  for (std::size_t group = 0; group < g.groups; ++group)
    for (std::size_t o = 0; o < cout_g; ++o)
      for (std::size_t c = 0; c < cin_g; ++c) {
        const float* src = w + ((group * cout_g + o) * cin_g + c) * taps;
        float* dst = flipped.data() + ((group * cin_g + c) * cout_g + o) * taps;
        for (std::size_t k = 0; k < taps; ++k) dst[k] = src[taps - 1 - k];
      }
  const ConvPlan plan(t, flipped.data(), nullptr, Activation::kNone, 0.0f, &uk);
  plan.run(dy, batch, g.out_size(in), dx);
  return true;
}

}  // namespace

bool is_shifted_dots_gradient(const ConvGeometry& g) { return g.stride == Size3{1, 1, 1}; }

bool is_depthwise_gradient(const ConvGeometry& g) {
  return g.in_channels > 0 && g.groups == g.in_channels && g.out_channels > 0 &&
         g.out_channels % g.in_channels == 0 && g.kernel[0] == 1 && g.stride[0] == 1 &&
         g.pad_before[0] == 0 && g.pad_after[0] == 0;
}

const DepthwiseBackwardVariant* depthwise_gradient_variant(const GemmUkernel& uk,
                                                           const ConvGeometry& g,
                                                           ConvGradAlgorithm algorithm) {
  if (algorithm == ConvGradAlgorithm::kGemm || algorithm == ConvGradAlgorithm::kShiftedDots ||
      !is_depthwise_gradient(g))
    return nullptr;
  // kAuto takes the SIMD kernels only; the reference variant serves the forced algorithm.
  if (algorithm == ConvGradAlgorithm::kAuto && uk.isa == Isa::kRef) return nullptr;
  return &variant_for(depthwise_backward_variants(), uk.isa);
}

namespace {

// kAuto on a SIMD microkernel: where the kernels' own algorithms replace the GEMMs.
bool simd_auto(const GemmUkernel& uk, ConvGradAlgorithm algorithm) {
  return algorithm == ConvGradAlgorithm::kAuto && uk.isa != Isa::kRef;
}

// The shifted-dots variant `algorithm` picks for g's dw on microkernel uk, or null (see
// ConvGradAlgorithm): stride 1, not taken by the depthwise kernels.
const ShiftedDotsVariant* shifted_dots_variant(const GemmUkernel& uk, const ConvGeometry& g,
                                               ConvGradAlgorithm algorithm) {
  if (!is_shifted_dots_gradient(g) || depthwise_gradient_variant(uk, g, algorithm))
    return nullptr;
  if (algorithm != ConvGradAlgorithm::kShiftedDots && !simd_auto(uk, algorithm)) return nullptr;
  return &variant_for(shifted_dots_variants(), uk.isa);
}

}  // namespace

void conv_gradients(const GemmUkernel& uk, const ConvGeometry& g, const float* x,
                    const float* w, std::size_t batch, const Size3& in, const float* dy,
                    float* dx, float* dw, float* db, bool accumulate,
                    ConvGradAlgorithm algorithm) {
  const DepthwiseBackwardVariant* v = depthwise_gradient_variant(uk, g, algorithm);
  if (!v || !dx || batch == 0 || volume(g.out_size(in)) == 0) {
    conv_weight_gradient(uk, g, x, batch, in, dy, dw, db, accumulate, algorithm);
    if (dx) conv_input_gradient(uk, g, w, batch, in, dy, dx, algorithm);
    return;
  }
  if (!accumulate) {
    std::fill(dw, dw + g.out_channels * g.weights_per_output(), 0.0f);
    if (db) std::fill(db, db + g.out_channels, 0.0f);
  }
  const std::size_t L = volume(g.out_size(in));
  if (db)
    for (std::size_t n = 0; n < batch; ++n)
      add_row_sums(dy + n * g.out_channels * L, g.out_channels, L, db);
  depthwise_gradients(*v, g, x, w, batch, in, dy, dx, dw);
}

void conv_weight_gradient(const GemmUkernel& uk, const ConvGeometry& g, const float* x,
                          std::size_t batch, const Size3& in, const float* dy, float* dw,
                          float* db, bool accumulate, ConvGradAlgorithm algorithm) {
  const std::size_t cin_g = g.in_channels / g.groups, cout_g = g.out_channels / g.groups;
  const std::size_t kg = cin_g * g.taps(), V = volume(in), L = volume(g.out_size(in));
  if (!accumulate) {
    std::fill(dw, dw + g.out_channels * kg, 0.0f);
    if (db) std::fill(db, db + g.out_channels, 0.0f);
  }
  if (batch == 0 || L == 0 || kg == 0 || cout_g == 0) return;
  if (const ShiftedDotsVariant* v = shifted_dots_variant(uk, g, algorithm))
    return shifted_dots_weight_gradient(*v, g, x, batch, in, dy, dw, db);
  if (db)
    for (std::size_t n = 0; n < batch; ++n)
      add_row_sums(dy + n * g.out_channels * L, g.out_channels, L, db);
  if (const DepthwiseBackwardVariant* v = depthwise_gradient_variant(uk, g, algorithm))
    return depthwise_gradients(*v, g, x, nullptr, batch, in, dy, nullptr, dw);

  // Per group, dW_g^T [kg x cout_g] = cols [kg x batch * L] * dY_g^T in one GEMM (the
  // images' positions are its K axis; it packs the columns straight from x, block by
  // block, and a 1x1 stride-1 unpadded layer's columns are x itself), then added
  // transposed into dw.
  const bool pointwise = g.taps() == 1 && L == V && g.stride == Size3{1, 1, 1} &&
                         g.pad_before == Size3{0, 0, 0};
  AlignedBuffer t(kg * cout_g);
  for (std::size_t group = 0; group < g.groups; ++group) {
    const float* xg = x + group * cin_g * V;
    PackRowsAcrossImages direct(xg, V, g.in_channels * V, V);
    PackIm2colRows columns(g, xg, in, g.in_channels * V);
    const Packer& a = pointwise ? static_cast<const Packer&>(direct) : columns;
    PackRowsAcrossImages b(dy + group * cout_g * L, L, g.out_channels * L, L);
    gemm(uk, kg, cout_g, batch * L, GemmOperand{nullptr, &a}, GemmOperand{nullptr, &b},
         t.data(), cout_g, Epilogue{}, true);
    float* dwg = dw + group * cout_g * kg;
    for (std::size_t co = 0; co < cout_g; ++co)
      for (std::size_t kk = 0; kk < kg; ++kk) dwg[co * kg + kk] += t.data()[kk * cout_g + co];
  }
}

void conv_input_gradient(const GemmUkernel& uk, const ConvGeometry& g, const float* w,
                         std::size_t batch, const Size3& in, const float* dy, float* dx,
                         ConvGradAlgorithm algorithm) {
  const std::size_t cin_g = g.in_channels / g.groups, cout_g = g.out_channels / g.groups;
  const std::size_t kg = cin_g * g.taps(), V = volume(in);
  const Size3 grid = g.out_size(in);
  const std::size_t L = volume(grid);
  if (batch == 0 || V == 0) return;
  if (L == 0 || kg == 0 || cout_g == 0) return std::fill(dx, dx + batch * g.in_channels * V, 0.0f);
  if (const DepthwiseBackwardVariant* v = depthwise_gradient_variant(uk, g, algorithm))
    return depthwise_input_gradient(*v, g, w, batch, in, dy, dx);
  if (simd_auto(uk, algorithm) &&
      transposed_convolution_input_gradient(uk, g, w, batch, in, dy, dx))
    return;
  std::fill(dx, dx + batch * g.in_channels * V, 0.0f);
  const Col2imVariant& scatter = variant_for(col2im_variants(), uk.isa);
  const std::size_t chunk = std::clamp<std::size_t>(kColumnBudget / (kg * L), 1, batch);
  AlignedBuffer cols(chunk * kg * L);
  for (std::size_t n0 = 0; n0 < batch; n0 += chunk) {
    const std::size_t images = std::min(chunk, batch - n0);
    for (std::size_t group = 0; group < g.groups; ++group) {
      // cols [kg x images * L] = W_g^T [kg x cout_g] * dY_g [cout_g x images * L]: W_g's
      // (kk, co) is w[co * kg + kk]; dY_g's column n * L + l of row co is dy[n][co][l].
      PackKByRows a(w + group * cout_g * kg, kg);
      PackColumnsAcrossImages b(dy + (n0 * g.out_channels + group * cout_g) * L, L,
                                g.out_channels * L, L);
      gemm(uk, kg, images * L, cout_g, GemmOperand{nullptr, &a}, GemmOperand{nullptr, &b},
           cols.data(), images * L, Epilogue{}, true);
      parallel_for(images, [&](std::size_t i) {  // each image's columns back to its pixels
        float* image = dx + ((n0 + i) * g.in_channels + group * cin_g) * V;
        scatter.fn(g, cin_g, cols.data() + i * L, images * L, 0, L, grid, in, image);
      });
    }
  }
}

}  // namespace fdl
