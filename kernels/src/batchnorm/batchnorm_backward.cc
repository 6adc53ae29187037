// The batch-norm gradient's driver (contract: batch_norm_backward in fastdl/batchnorm.h):
// per-channel sums, then the per-channel coefficients of dx = a * dy + p * (x - mean) + q,
// then the elementwise pass, on the variant's plane or row kernels. ISA-neutral.
#include <algorithm>
#include <cstddef>
#include <vector>

#include "fastdl/batchnorm.h"
#include "fastdl/threadpool.h"
#include "fastdl/variants.h"

namespace fdl {
namespace {

// Below this many elements a pass runs on the caller: waking the pool costs more.
constexpr std::size_t kSerialBelow = 1u << 15;
// Rows layout: a task takes this many rows; its float accumulators are flushed into its
// doubles every kRowBlock rows. Fixed, so the sums do not depend on the thread count.
constexpr std::size_t kRowsPerTask = 512;
constexpr std::size_t kRowBlock = 64;

template <class Fn>
void run(std::size_t tasks, std::size_t elements, const Fn& fn) {
  if (elements < kSerialBelow || tasks < 2) {
    for (std::size_t t = 0; t < tasks; ++t) fn(t);
  } else {
    parallel_for(tasks, fn);
  }
}

// sum_dy[c], sum_dyxc[c] (zeroed by the caller) over planes [batch][channels][spatial].
void plane_sums(const BatchNormVariant& v, const float* x, const float* dy, std::size_t batch,
                std::size_t channels, std::size_t spatial, const float* mean, double* sum_dy,
                double* sum_dyxc) {
  run(channels, batch * channels * spatial, [&](std::size_t c) {
    for (std::size_t n = 0; n < batch; ++n) {
      const std::size_t at = (n * channels + c) * spatial;
      v.sums(x + at, dy + at, spatial, mean[c], &sum_dy[c], &sum_dyxc[c]);
    }
  });
}

// The same over rows [rows][channels]: each task's partial sums, added in task order.
void row_sums(const BatchNormVariant& v, const float* x, const float* dy, std::size_t rows,
              std::size_t channels, const float* mean, double* sum_dy, double* sum_dyxc) {
  const std::size_t tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
  std::vector<double> partial(2 * tasks * channels, 0.0);
  run(tasks, rows * channels, [&](std::size_t t) {
    double* pdy = &partial[2 * t * channels];
    double* pdyxc = pdy + channels;
    std::vector<float> acc(2 * channels);
    const std::size_t end = std::min(rows, (t + 1) * kRowsPerTask);
    for (std::size_t r = t * kRowsPerTask; r < end; r += kRowBlock) {
      const std::size_t n = std::min(kRowBlock, end - r);
      std::fill(acc.begin(), acc.end(), 0.0f);
      v.sums_rows(x + r * channels, dy + r * channels, n, channels, mean, acc.data(),
                  acc.data() + channels);
      for (std::size_t c = 0; c < channels; ++c) {
        pdy[c] += acc[c];
        pdyxc[c] += acc[channels + c];
      }
    }
  });
  for (std::size_t t = 0; t < tasks; ++t)
    for (std::size_t c = 0; c < channels; ++c) {
      sum_dy[c] += partial[2 * t * channels + c];
      sum_dyxc[c] += partial[(2 * t + 1) * channels + c];
    }
}

}  // namespace

void batch_norm_backward(const float* x, const float* dy, std::size_t batch,
                         std::size_t channels, std::size_t spatial, const float* mean,
                         const float* inv_std, const float* gamma, bool training, float* dx,
                         float* dgamma, float* dbeta, const BatchNormVariant* variant) {
  const BatchNormVariant& v = variant ? *variant : best_variant(batchnorm_variants());
  if (channels == 1) {  // one channel: the whole tensor is one plane
    spatial *= batch;
    batch = batch ? 1 : 0;
  }
  const bool rows = spatial == 1;
  const std::size_t m = batch * spatial;
  std::vector<double> sum_dy(channels, 0.0), sum_dyxc(channels, 0.0);
  if (m > 0 && (training || dgamma || dbeta)) {
    if (rows) row_sums(v, x, dy, batch, channels, mean, sum_dy.data(), sum_dyxc.data());
    else plane_sums(v, x, dy, batch, channels, spatial, mean, sum_dy.data(), sum_dyxc.data());
  }
  // dx = a * dy + p * (x - mean) + q: with k = gamma * inv_std, training gives
  // a = k, p = -k * inv_std * dgamma / m, q = -k * dbeta / m; inference a = k, p = q = 0.
  std::vector<float> a(channels), p(channels), q(channels);
  for (std::size_t c = 0; c < channels; ++c) {
    const double s = inv_std[c];
    const double k = (gamma ? gamma[c] : 1.0) * s;
    const double dg = m > 0 ? sum_dyxc[c] * s : 0.0;  // an empty sum, whatever inv_std is
    if (dgamma) dgamma[c] = static_cast<float>(dg);
    if (dbeta) dbeta[c] = static_cast<float>(sum_dy[c]);
    a[c] = static_cast<float>(k);
    p[c] = training && m > 0 ? static_cast<float>(-k * s * dg / double(m)) : 0.0f;
    q[c] = training && m > 0 ? static_cast<float>(-k * sum_dy[c] / double(m)) : 0.0f;
  }
  if (!dx || m == 0) return;
  if (rows) {
    const std::size_t tasks = (batch + kRowsPerTask - 1) / kRowsPerTask;
    run(tasks, batch * channels, [&](std::size_t t) {
      const std::size_t r = t * kRowsPerTask, n = std::min(kRowsPerTask, batch - r);
      v.grad_rows(x + r * channels, dy + r * channels, n, channels, mean, a.data(), p.data(),
                  q.data(), dx + r * channels);
    });
  } else {
    run(batch * channels, batch * channels * spatial, [&](std::size_t plane) {
      const std::size_t c = plane % channels, at = plane * spatial;
      v.grad(x + at, dy + at, spatial, mean[c], a[c], p[c], q[c], dx + at);
    });
  }
}

}  // namespace fdl
