// Every GEMM variant against a double-precision triple loop, on shapes around the
// register tile and cache blocks, with every epilogue.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "fastdl/activation.h"
#include "fastdl/gemm.h"
#include "fastdl/isa.h"
#include "fastdl/linear.h"
#include "test_util.h"

namespace {

struct Shape {
  std::size_t m, n, k;
};

using fdl_test::random_vector;
using fdl_test::ThreadCountGuard;

class GemmVariant : public fdl_test::VariantTest<fdl::GemmUkernel> {};

void check(const fdl::GemmUkernel& uk, Shape s, fdl::Activation act, bool prepacked_a,
           bool with_bias_row, bool with_bias_col, bool prepacked_b = false) {
  const auto a = random_vector(s.m * s.k, 1), b = random_vector(s.k * s.n, 2);
  const auto br = random_vector(s.m, 3), bc = random_vector(s.n, 4);
  std::vector<float> c(s.m * s.n, -7.0f);
  fdl::Epilogue ep;
  ep.act = act;
  ep.alpha = 0.1f;
  if (with_bias_row) ep.bias_row = br.data();
  if (with_bias_col) ep.bias_col = bc.data();
  fdl::PackRowsByK apack(a.data(), s.k);
  fdl::PackKByRows bpack(b.data(), s.n);
  std::vector<float> packed_a(fdl::packed_size(s.m, s.k, uk.mr) + 1);
  fdl::GemmOperand aop{nullptr, &apack};
  if (prepacked_a) {
    fdl::pack_all(apack, s.m, s.k, uk.mr, packed_a.data());
    aop = fdl::GemmOperand{packed_a.data(), nullptr};
  }
  std::vector<float> packed_b(fdl::packed_size(s.n, s.k, uk.nr) + 1);
  fdl::GemmOperand bop{nullptr, &bpack};
  if (prepacked_b) {
    fdl::pack_all(bpack, s.n, s.k, uk.nr, packed_b.data());
    bop = fdl::GemmOperand{packed_b.data(), nullptr};
  }
  fdl::gemm(uk, s.m, s.n, s.k, aop, bop, c.data(), s.n, ep, true);
  for (std::size_t i = 0; i < s.m; ++i) {
    for (std::size_t j = 0; j < s.n; ++j) {
      double acc = 0;
      for (std::size_t p = 0; p < s.k; ++p) acc += double(a[i * s.k + p]) * b[p * s.n + j];
      if (with_bias_row) acc += br[i];
      if (with_bias_col) acc += bc[j];
      const float want = fdl::activate_ref(float(acc), act, 0.1f);
      ASSERT_NEAR(c[i * s.n + j], want, 2e-5 * (1 + std::sqrt(double(s.k))))
          << uk.name << " m=" << s.m << " n=" << s.n << " k=" << s.k << " at " << i << "," << j
          << " act=" << int(act);
    }
  }
}

TEST_P(GemmVariant, MatchesReferenceAroundTiles) {
  const fdl::GemmUkernel& uk = GetParam();
  const std::size_t mr = uk.mr, nr = uk.nr, kc = uk.kc;
  std::vector<Shape> shapes = {{1, 1, 1}, {mr, nr, 1}, {mr - 1, nr - 1, 3}, {mr + 1, nr + 1, 7},
                               {2 * mr + 1, 3 * nr - 1, kc - 1}, {mr, nr, kc}, {3, 5, kc + 1},
                               {1, 1000, 64}, {std::size_t(uk.mc) + 1, 2 * nr + 3, 2 * kc + 5},
                               {4, 4, 0}, {mr + 1, nr + nr / 2, 19}, {mr, nr / 2 + 1, 9},
                               {2, nr / 2, 300},
                               // One B panel against several A panels, K past two blocks
                               // (prepacked A then takes K whole), and one column past it
                               {2 * mr + 1, nr - 3, 2 * kc + 5}, {3 * mr, nr, 3 * kc + 2},
                               {2 * mr + 1, nr + 1, 2 * kc + 5}};
  // One block of A rows at small K: B blocks of 64 KiB (gemm.cc: ~1024 columns at K = 16),
  // N a whole number of them and one column either side.
  const std::size_t block_n =
      std::max<std::size_t>(4, (64u << 10) / (16 * nr * sizeof(float))) * nr;
  for (std::size_t n : {block_n - 1, block_n, block_n + 1, 2 * block_n})
    shapes.push_back({mr + 1, n, 16});
  for (const Shape& s : shapes)
    for (bool pre : {false, true}) check(uk, s, fdl::Activation::kNone, pre, false, false);
  // Prepacked B (weights as B: pointwise layers run transposed, Dense) against one block of
  // A rows takes K whole: rows up to MC and one past it, edge and whole panels of B.
  const std::size_t mc = uk.mc;
  const std::vector<Shape> b_shapes = {{mr - 1, nr + 3, 2 * kc + 5}, {2 * mr + 1, 3 * nr, 2 * kc + 5},
                                       {mc, 2 * nr - 1, kc + 9}, {mc + 1, nr, 2 * kc + 5}};
  for (const Shape& s : b_shapes)
    for (bool pre : {false, true}) check(uk, s, fdl::Activation::kNone, pre, false, false, true);
  for (int act = 0; act <= 6; ++act)
    check(uk, {mr + 1, nr + 3, 17}, static_cast<fdl::Activation>(act), true, true, false);
  check(uk, {mr + 2, 2 * nr + 5, 33}, fdl::Activation::kRelu, false, false, true);
  check(uk, {2, 3, kc + 9}, fdl::Activation::kSilu, false, true, true);
  // One row of A (kGemmARow: the row packed with unit stride), K past one block.
  check(uk, {1, 2 * nr + 7, 3 * kc + 1}, fdl::Activation::kTanh, false, true, true);
}

// Right-edge panels of every width 1..NR-1 (half tiles, columns computed one by one on
// full-height tiles, both): each column bit for bit what a full tile computes for it (the
// same B columns inside a wider problem), over two K blocks (accumulation), with both
// biases and a clamp or an exp-based activation; rows a multiple of MR and one tile more.
TEST_P(GemmVariant, EdgeColumnsSumLikeFullTiles) {
  const fdl::GemmUkernel& uk = GetParam();
  const std::size_t mr = uk.mr, nr = uk.nr, k = uk.kc + 9, wide = 2 * nr;
  for (std::size_t m : {2 * mr, 2 * mr + 3}) {
    const auto a = random_vector(m * k, 5), b = random_vector(k * wide, 6);
    const auto br = random_vector(m, 7), bc = random_vector(wide, 8);
    fdl::Epilogue ep;
    ep.bias_row = br.data();
    ep.bias_col = bc.data();
    std::vector<float> packed_a(fdl::packed_size(m, k, uk.mr));
    fdl::PackRowsByK apack(a.data(), k);
    fdl::pack_all(apack, m, k, uk.mr, packed_a.data());
    const fdl::GemmOperand aop{packed_a.data(), nullptr};
    fdl::PackKByRows bpack(b.data(), wide);
    for (fdl::Activation act : {fdl::Activation::kRelu6, fdl::Activation::kSigmoid}) {
      ep.act = act;
      std::vector<float> full(m * wide);
      fdl::gemm(uk, m, wide, k, aop, fdl::GemmOperand{nullptr, &bpack}, full.data(), wide, ep,
                false);
      for (std::size_t n = nr + 1; n < wide; ++n) {
        std::vector<float> edge(m * n, -7.0f);
        fdl::gemm(uk, m, n, k, aop, fdl::GemmOperand{nullptr, &bpack}, edge.data(), n, ep,
                  false);
        for (std::size_t i = 0; i < m; ++i)
          ASSERT_EQ(0, std::memcmp(&edge[i * n], &full[i * wide], n * sizeof(float)))
              << uk.name << " m=" << m << " n=" << n << " row " << i << " act=" << int(act);
      }
    }
  }
  // And against the double loops (an accumulating K and a lone K block).
  for (std::size_t n : {nr + 1, nr + 2, nr + nr / 2 + 1, nr + nr / 2 + 3, 2 * nr - 1})
    for (std::size_t kk : {std::size_t{37}, std::size_t(uk.kc) + 5})
      check(uk, {3 * mr, n, kk}, fdl::Activation::kTanh, true, true, true);
}

// The prefetch hints (kGemmPrefetchA/B) only ask for cache lines: every row count, with
// and without them, the same tile bit for bit (and the prefetched lines run past the
// operands' ends without faulting).
TEST_P(GemmVariant, PrefetchHintsChangeNothing) {
  const fdl::GemmUkernel& uk = GetParam();
  const std::size_t mr = uk.mr, nr = uk.nr, k = uk.kc + 9;
  const auto a = random_vector(mr * k, 11), b = random_vector(k * nr, 12);
  const auto br = random_vector(mr, 13);
  fdl::Epilogue ep;
  ep.bias_row = br.data();
  ep.act = fdl::Activation::kRelu;
  for (std::size_t m = 1; m <= mr; ++m) {
    std::vector<float> plain(mr * nr, -3.0f);
    uk.fn(m, k, a.data(), b.data(), nr, plain.data(), nr, fdl::kGemmFinal, ep);
    for (int hint : {int{fdl::kGemmPrefetchA}, int{fdl::kGemmPrefetchB},
                     fdl::kGemmPrefetchA | fdl::kGemmPrefetchB}) {
      std::vector<float> hinted(mr * nr, -3.0f);
      uk.fn(m, k, a.data(), b.data(), nr, hinted.data(), nr, fdl::kGemmFinal | hint, ep);
      ASSERT_EQ(0, std::memcmp(plain.data(), hinted.data(), plain.size() * sizeof(float)))
          << uk.name << " m=" << m << " hint=" << hint;
    }
  }
}

// Few panels both ways (a transposed pointwise layer at 7x7: 49 rows by 160 columns), where
// gemm splits over the threads whichever way comes out more even: on 2 threads the same
// results, bit for bit, as on 1, with each operand packed per call or prepacked, and right
// against the double loops.
TEST_P(GemmVariant, FewPanelsSplitLikeOneThread) {
  const fdl::GemmUkernel& uk = GetParam();
  ThreadCountGuard guard;
  const std::size_t mr = uk.mr, nr = uk.nr;
  for (Shape s : {Shape{4 * mr + 1, 5 * nr, 0}, Shape{5 * mr, 3 * nr + 1, 0},
                  Shape{2 * mr + 1, 2 * nr, 0}}) {
    s.k = (std::size_t{1} << 18) / (s.m * s.n) + 3;  // enough work to split (gemm.cc)
    const auto a = random_vector(s.m * s.k, 21), b = random_vector(s.k * s.n, 22);
    fdl::PackRowsByK apack(a.data(), s.k);
    fdl::PackKByRows bpack(b.data(), s.n);
    std::vector<float> packed_b(fdl::packed_size(s.n, s.k, uk.nr));
    fdl::pack_all(bpack, s.n, s.k, uk.nr, packed_b.data());
    for (bool prepacked_b : {false, true}) {
      const fdl::GemmOperand bop = prepacked_b ? fdl::GemmOperand{packed_b.data(), nullptr}
                                               : fdl::GemmOperand{nullptr, &bpack};
      std::vector<float> one(s.m * s.n), two(s.m * s.n);
      fdl::set_num_threads(1);
      fdl::gemm(uk, s.m, s.n, s.k, fdl::GemmOperand{nullptr, &apack}, bop, one.data(), s.n,
                fdl::Epilogue{}, true);
      fdl::set_num_threads(2);
      fdl::gemm(uk, s.m, s.n, s.k, fdl::GemmOperand{nullptr, &apack}, bop, two.data(), s.n,
                fdl::Epilogue{}, true);
      ASSERT_EQ(0, std::memcmp(one.data(), two.data(), one.size() * sizeof(float)))
          << uk.name << " m=" << s.m << " n=" << s.n << " prepacked_b=" << prepacked_b;
    }
    check(uk, s, fdl::Activation::kRelu, false, true, false, true);
  }
}

// B read in place (GemmOperand::rows, row stride ld >= n): the same results, bit for bit,
// as B packed (the same microkernel sums in the same order), on shapes with a right-edge
// panel, whole panels only (N = 4 NR, one column-block of a single A block) and one short
// of that, K past one block, a lone row of A and M past one block; strides equal to n, past
// it, and a multiple of 4 KiB (packed after all); 1 and 2 threads.
TEST_P(GemmVariant, ReadsBRowsInPlaceLikePacked) {
  const fdl::GemmUkernel& uk = GetParam();
  ThreadCountGuard guard;
  // In place wherever the microkernel can, whichever way this CPU's automatic choice goes.
  const fdl_test::GemmBRowsGuard b_rows(fdl::GemmBRows::kInPlace);
  const std::size_t mr = uk.mr, nr = uk.nr, kc = uk.kc;
  const std::vector<Shape> shapes = {{2 * mr + 1, 3 * nr + 5, kc + 7}, {mr, nr, 5},
                                     {1, 2 * nr + 1, 9}, {std::size_t(uk.mc) + 1, 4 * nr + 1, 40},
                                     {3, nr / 2, 11}, {mr + 1, 4 * nr, 17},
                                     {2, 4 * nr - 1, 13}};
  for (const Shape& s : shapes)
    for (std::size_t ld : {s.n, s.n + 3, std::size_t{1024}}) {
      if (ld < s.n) continue;
      const auto a = random_vector(s.m * s.k, 1), b = random_vector(s.k * ld, 2);
      const auto bias = random_vector(s.m, 3);
      fdl::Epilogue ep;
      ep.act = fdl::Activation::kRelu6;
      ep.bias_row = bias.data();
      fdl::PackRowsByK apack(a.data(), s.k);
      fdl::PackKByRows bpack(b.data(), ld);
      for (int threads : {1, 2}) {
        fdl::set_num_threads(threads);
        std::vector<float> packed(s.m * s.n, -7.0f), in_place(s.m * s.n, -7.0f);
        fdl::gemm(uk, s.m, s.n, s.k, fdl::GemmOperand{nullptr, &apack},
                  fdl::GemmOperand{nullptr, &bpack}, packed.data(), s.n, ep, true);
        fdl::gemm(uk, s.m, s.n, s.k, fdl::GemmOperand{nullptr, &apack},
                  fdl::GemmOperand{nullptr, &bpack, b.data(), ld}, in_place.data(), s.n, ep,
                  true);
        ASSERT_EQ(0, std::memcmp(packed.data(), in_place.data(), packed.size() * sizeof(float)))
            << uk.name << " m=" << s.m << " n=" << s.n << " k=" << s.k << " ld=" << ld
            << " threads=" << threads;
        for (std::size_t i = 0; i < s.m; ++i)
          for (std::size_t j = 0; j < s.n; ++j) {
            double acc = bias[i];
            for (std::size_t p = 0; p < s.k; ++p) acc += double(a[i * s.k + p]) * b[p * ld + j];
            const float want = fdl::activate_ref(float(acc), fdl::Activation::kRelu6, 0.0f);
            ASSERT_NEAR(in_place[i * s.n + j], want, 2e-5 * (1 + std::sqrt(double(s.k))))
                << uk.name << " m=" << s.m << " n=" << s.n << " k=" << s.k << " ld=" << ld;
          }
      }
    }
}

// LinearPlan y = act(x W^T + b), built with other weights then given W and b through
// set_weights, against double loops; rows and features around the tile sizes; W as
// [out x in] and (kn) as W^T [in x out].
TEST_P(GemmVariant, LinearPlanTakesNewWeights) {
  const fdl::GemmUkernel& uk = GetParam();
  const std::size_t mr = uk.mr, nr = uk.nr;
  for (bool kn : {false, true})
  for (const Shape& s : {Shape{1, nr + 1, 9}, Shape{mr + 2, 3, 300}}) {
    const std::size_t rows = s.m, out = s.n, in = s.k;
    const auto x = random_vector(rows * in, 1), w = random_vector(out * in, 2);
    const auto b = random_vector(out, 3), w0 = random_vector(out * in, 4);
    const auto b0 = random_vector(out, 5);
    std::vector<float> wt(in * out);  // W^T
    for (std::size_t j = 0; j < out; ++j)
      for (std::size_t p = 0; p < in; ++p) wt[p * out + j] = w[j * in + p];
    fdl::LinearPlan plan(in, out, w0.data(), b0.data(), fdl::Activation::kTanh, 0.0f, &uk, kn);
    plan.set_weights(kn ? wt.data() : w.data(), b.data());
    std::vector<float> y(rows * out);
    plan.run(x.data(), rows, y.data());
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < out; ++j) {
        double acc = b[j];
        for (std::size_t p = 0; p < in; ++p) acc += double(x[i * in + p]) * w[j * in + p];
        ASSERT_NEAR(y[i * out + j], std::tanh(acc), 2e-5 * (1 + std::sqrt(double(in))))
            << uk.name << (kn ? " kn" : "") << " at " << i << "," << j;
      }
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, GemmVariant,
                         ::testing::ValuesIn(fdl::gemm_variants()),
                         fdl_test::VariantName());

}  // namespace
