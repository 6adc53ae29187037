// The embedding gradient (fastdl/embedding.h) against a double evaluation: every variant's
// row sum over row lengths on and around 1-4 vectors and counts past the float block, and
// embedding_backward with repeated indices, padding_idx, scale_grad_by_freq, skewed
// frequencies, empty inputs, out-of-range indices and 1-3 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "fastdl/embedding.h"
#include "fastdl/threadpool.h"
#include "test_util.h"

namespace {

using fdl_test::random_vector;

constexpr float kCanary = -12345.0f;

using fdl_test::ThreadCountGuard;

class EmbeddingVariant : public fdl_test::VariantTest<fdl::EmbeddingVariant> {};

// The double evaluation of dw and the sums of |terms| per entry (for the tolerance).
void expected(const std::vector<std::int64_t>& idx, const std::vector<float>& dy,
              std::size_t dim, std::size_t rows, std::int64_t padding, bool freq,
              std::vector<double>& want, std::vector<double>& mag) {
  want.assign(rows * dim, 0.0), mag.assign(rows * dim, 0.0);
  std::vector<std::size_t> count(rows, 0);
  for (auto i : idx) ++count[std::size_t(i)];
  for (std::size_t p = 0; p < idx.size(); ++p) {
    const std::size_t r = std::size_t(idx[p]);
    if (std::int64_t(r) == padding) continue;
    const double s = freq ? 1.0 / double(count[r]) : 1.0;
    for (std::size_t d = 0; d < dim; ++d) {
      want[r * dim + d] += s * dy[p * dim + d];
      mag[r * dim + d] += std::fabs(s * dy[p * dim + d]);
    }
  }
}

TEST_P(EmbeddingVariant, RowSumsMatchDoubleEvaluation) {
  const auto& v = GetParam();
  unsigned seed = 1;
  for (std::size_t dim = 1; dim <= 4 * 16 + 17; ++dim)
    for (std::size_t count : {1, 2, 7, 256, 257, 700}) {
      const std::size_t n = count + 3;
      const auto dy = random_vector(n * dim, ++seed);
      std::vector<std::int64_t> pos(count);
      for (std::size_t k = 0; k < count; ++k) pos[k] = std::int64_t((k * 7 + dim) % n);
      std::vector<float> dst(dim + 1, 99.0f);
      dst.back() = kCanary;
      const float scale = count % 2 ? 0.5f : 1.0f;
      v.row_sum(dy.data(), dim, pos.data(), count, scale, dst.data());
      ASSERT_EQ(dst.back(), kCanary) << v.name << " dim " << dim << " count " << count;
      for (std::size_t d = 0; d < dim; ++d) {
        double want = 0.0, mag = 0.0;
        for (std::size_t k = 0; k < count; ++k) {
          want += dy[std::size_t(pos[k]) * dim + d];
          mag += std::fabs(dy[std::size_t(pos[k]) * dim + d]);
        }
        ASSERT_NEAR(dst[d], scale * want, 1e-5 * scale * mag + 1e-6)
            << v.name << " dim " << dim << " count " << count << " d " << d;
      }
    }
}

TEST_P(EmbeddingVariant, BackwardMatchesDoubleEvaluation) {
  const auto& v = GetParam();
  ThreadCountGuard guard;
  std::mt19937 rng(5);
  struct Case {
    std::size_t n, dim, rows;
    std::int64_t padding;
    bool freq, skewed;
  };
  const Case cases[] = {{50, 8, 10, 3, false, false},   {300, 33, 7, -1, true, false},
                        {1000, 17, 5000, 0, false, false}, {4000, 64, 100, 5, true, true},
                        {1, 1, 1, -1, false, false},     {2000, 3, 2, 1, false, true}};
  for (const Case& c : cases) {
    std::vector<std::int64_t> idx(c.n);
    std::uniform_int_distribution<std::int64_t> any(0, std::int64_t(c.rows) - 1);
    for (std::size_t p = 0; p < c.n; ++p) idx[p] = c.skewed && p % 3 ? 1 : any(rng);
    const auto dy = random_vector(c.n * c.dim, unsigned(c.n));
    std::vector<double> want, mag;
    expected(idx, dy, c.dim, c.rows, c.padding, c.freq, want, mag);
    std::vector<float> first;
    for (int threads : {1, 2, 3}) {
      fdl::set_num_threads(threads);
      std::vector<float> dw(c.rows * c.dim + 1, 99.0f);
      dw.back() = kCanary;
      ASSERT_TRUE(fdl::embedding_backward(idx.data(), c.n, dy.data(), c.dim, c.rows, c.padding,
                                          c.freq, dw.data(), &v));
      ASSERT_EQ(dw.back(), kCanary) << v.name;
      dw.pop_back();
      for (std::size_t i = 0; i < dw.size(); ++i)
        ASSERT_NEAR(dw[i], want[i], 1e-5 * mag[i] + 1e-6)
            << v.name << " n " << c.n << " dim " << c.dim << " rows " << c.rows << " at " << i;
      if (first.empty()) first = dw;
      EXPECT_EQ(dw, first) << v.name << ": depends on the thread count (" << threads << ")";
    }
  }
}

TEST_P(EmbeddingVariant, RefusesIndicesOutOfRangeAndTakesEmptyInputs) {
  const auto& v = GetParam();
  const auto dy = random_vector(4 * 3, 1);
  std::vector<float> dw(5 * 3, kCanary);
  for (std::int64_t bad : {-1, 5, 1000}) {
    const std::vector<std::int64_t> idx{0, 4, bad, 2};
    EXPECT_FALSE(fdl::embedding_backward(idx.data(), 4, dy.data(), 3, 5, -1, false, dw.data(), &v));
    for (float f : dw) ASSERT_EQ(f, kCanary) << "wrote before refusing";
  }
  EXPECT_TRUE(fdl::embedding_backward(nullptr, 0, nullptr, 3, 5, -1, false, dw.data(), &v));
  for (float f : dw) ASSERT_EQ(f, 0.0f);
  const std::vector<std::int64_t> idx{0, 4, 2, 2};
  EXPECT_TRUE(fdl::embedding_backward(idx.data(), 4, dy.data(), 0, 5, -1, false, nullptr, &v));
  EXPECT_TRUE(fdl::embedding_backward(nullptr, 0, nullptr, 3, 0, -1, false, nullptr, &v));
}

INSTANTIATE_TEST_SUITE_P(AllVariants, EmbeddingVariant,
                         ::testing::ValuesIn(fdl::embedding_variants()), fdl_test::VariantName());

}  // namespace
