// ConvChain: see fastdl/conv_chain.h.
#include "fastdl/conv_chain.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "fastdl/isa.h"
#include "fastdl/threadpool.h"

namespace fdl {

namespace {

// Scratch a thread's strip keeps (expanded rows and depthwise output): l2_half_bytes().
// Measured on MobileNetV2's 112x112, 56x56 and 28x28 blocks (AVX-512, 1 MiB L2, 1 thread,
// caches cold and warm): 512 KiB 3-15% faster than 256 KiB, and than 1 MiB on the 112x112
// block.
std::size_t strip_bytes() { return l2_half_bytes(); }

void check_pointwise(const ConvPlan& plan, const char* what) {
  if (!plan.pointwise_rows_apply())
    throw std::invalid_argument(std::string(what) +
                                ": expected a pointwise (1x1, stride 1, unpadded, one group) "
                                "plan");
}

// The vertical extent of the depthwise window (dilation included).
std::size_t window_rows(const ConvGeometry& g) {
  return (g.kernel[1] - 1) * g.dilation[1] + 1;
}

}  // namespace

ConvChain::ConvChain(const ConvPlan* expand, const ConvPlan& depthwise, const ConvPlan& project)
    : expand_(expand), depthwise_(depthwise), project_(project) {
  const ConvGeometry& d = depthwise.geometry();
  const std::size_t k = window_rows(d);
  if (!depthwise.depthwise_rows_apply())
    throw std::invalid_argument("depthwise: expected a depthwise plan");
  if (d.pad_before[1] >= k || d.pad_after[1] >= k)
    throw std::invalid_argument("depthwise: vertical padding must be narrower than the window");
  if (expand) {
    check_pointwise(*expand, "expand");
    if (expand->geometry().out_channels != d.in_channels)
      throw std::invalid_argument("expand: its " +
                                  std::to_string(expand->geometry().out_channels) +
                                  " output channels do not match the depthwise plan's " +
                                  std::to_string(d.in_channels));
  }
  check_pointwise(project, "project");
  if (project.geometry().in_channels != d.out_channels)
    throw std::invalid_argument("project: its " +
                                std::to_string(project.geometry().in_channels) +
                                " input channels do not match the depthwise plan's " +
                                std::to_string(d.out_channels) + " outputs");
}

std::size_t ConvChain::in_channels() const {
  return expand_ ? expand_->geometry().in_channels : depthwise_.geometry().in_channels;
}

std::size_t ConvChain::strip_rows(std::size_t in_h, std::size_t in_w) const {
  const ConvGeometry& d = depthwise_.geometry();
  const std::size_t out_h = d.out_size(1, in_h), out_w = d.out_size(2, in_w);
  const std::size_t s = d.stride[1], k = window_rows(d), c = d.in_channels;
  // Per strip of R rows: the expanded rows ((R - 1) * s + k of in_w floats, expand only)
  // and the depthwise output (R of out_w) for every channel.
  const std::size_t floats = strip_bytes() / sizeof(float) / std::max<std::size_t>(c, 1);
  const std::size_t fixed = expand_ ? (k - std::min(k, s)) * in_w : 0;
  const std::size_t per_row = (expand_ ? s * in_w : 0) + out_w;
  const std::size_t rows =
      floats > fixed ? (floats - fixed) / std::max<std::size_t>(per_row, 1) : 1;
  return std::clamp<std::size_t>(rows, 1, std::max<std::size_t>(out_h, 1));
}

bool ConvChain::pays(bool expands, std::size_t channels, std::size_t in_h, std::size_t in_w,
                     std::size_t in_channels, std::size_t out_channels) {
  if (!expands) return false;
  if (cpu_vendor() == CpuVendor::kIntel) return true;
  const std::size_t expanded = channels * in_h * in_w;
  const bool small = in_channels && out_channels &&
                     expanded * (in_channels + out_channels + 9) <= kSmallBlockMacs;
  return small || expanded * sizeof(float) > 2 * strip_bytes();
}

void ConvChain::run_rows(const float* x, std::size_t in_h, std::size_t in_w, std::size_t o0,
                         std::size_t o1, float* y) const {
  using sidx = std::ptrdiff_t;
  const ConvGeometry& d = depthwise_.geometry();
  const std::size_t H = in_h, W = in_w;
  const std::size_t out_h = d.out_size(1, H), out_w = d.out_size(2, W);
  const std::size_t channels = d.in_channels, s = d.stride[1], k = window_rows(d);
  const std::size_t R = strip_rows(H, W), cap = (R - 1) * s + k;
  thread_local AlignedBuffer expanded, dw_out;
  if (expand_) expanded.resize(channels * cap * W);
  dw_out.resize(channels * R * out_w);
  // Image rows [have0, have1) are expanded rows 0.. of the scratch.
  sidx have0 = 0, have1 = 0;
  // Strips of equal height (a last strip of a row or two would make GEMMs of few columns).
  const std::size_t strips = (o1 - o0 + R - 1) / R, step = (o1 - o0 + strips - 1) / strips;
  for (std::size_t o = o0; o < o1; o += step) {
    const std::size_t r = std::min(step, o1 - o);
    // Input rows the strip's windows cover, and the part of them inside the image.
    const sidx need0 = sidx(o * s) - sidx(d.pad_before[1]);
    const sidx need1 = sidx((o + r - 1) * s + k) - sidx(d.pad_before[1]);
    const sidx in0 = std::clamp<sidx>(need0, 0, sidx(H));
    const sidx in1 = std::clamp<sidx>(need1, in0, sidx(H));
    const float* rows = x + in0 * sidx(W);
    std::size_t ld = H * W;
    if (expand_) {
      float* e = expanded.data();
      const std::size_t plane = cap * W;
      sidx keep = 0;  // rows the previous strip expanded, moved to the top
      if (in0 >= have0 && in0 < have1) {
        keep = std::min(have1, in1) - in0;
        if (in0 > have0)
          for (std::size_t c = 0; c < channels; ++c)
            std::memmove(e + c * plane, e + c * plane + (in0 - have0) * sidx(W),
                         std::size_t(keep) * W * sizeof(float));
      }
      expand_->run_pointwise_rows(x + (in0 + keep) * sidx(W), H * W,
                                  std::size_t(in1 - in0 - keep) * W, e + keep * sidx(W), plane);
      have0 = in0;
      have1 = in1;
      rows = e;
      ld = plane;
    }
    float* dw = dw_out.data();
    depthwise_.run_depthwise_rows(rows, ld, std::size_t(in1 - in0), W,
                                  std::size_t(in0 - need0), std::size_t(need1 - in1), dw,
                                  r * out_w);
    project_.run_pointwise_rows(dw, r * out_w, r * out_w, y + o * out_w, out_h * out_w);
  }
}

void ConvChain::run(const float* x, std::size_t batch, std::size_t in_h, std::size_t in_w,
                    float* y) const {
  const ConvGeometry& d = depthwise_.geometry();
  const std::size_t out_h = d.out_size(1, in_h), out_w = d.out_size(2, in_w);
  if (batch == 0 || out_h == 0 || out_w == 0 || out_channels() == 0) return;
  const std::size_t threads = static_cast<std::size_t>(num_threads());
  // Each task a run of consecutive output rows, an equal share of the image (its strips
  // pass their overlap rows on); an image splits only when there are fewer images than
  // threads.
  const std::size_t parts =
      std::min(out_h, std::max<std::size_t>(1, (threads + batch - 1) / batch));
  const std::size_t in_image = in_channels() * in_h * in_w;
  const std::size_t out_image = out_channels() * out_h * out_w;
  auto task = [&](std::size_t t) {
    const std::size_t n = t / parts, part = t % parts;
    run_rows(x + n * in_image, in_h, in_w, part * out_h / parts, (part + 1) * out_h / parts,
             y + n * out_image);
  };
  const std::size_t tasks = batch * parts;
  if (tasks == 1) {
    task(0);
  } else {
    parallel_for(tasks, task);
  }
}

}  // namespace fdl
