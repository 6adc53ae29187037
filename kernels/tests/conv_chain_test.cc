// ConvChain: strip by strip, the same floats as its three plans run one after the other
// (where its expansion runs as a GEMM there too).
#include <cmath>
#include <cstring>
#include <string>
#include <memory>
#include <stdexcept>
#include <vector>

#include "fastdl/conv_chain.h"
#include "test_util.h"

namespace {

using fdl::ConvGeometry;
using fdl::ConvPlan;
using fdl::Size3;

struct ChainCase {
  std::size_t in_c, mid_c, out_c;  // in_c == mid_c and expand false: no expansion
  bool expand;
  std::size_t kernel, stride, pad, dilation;
  std::size_t h, w, batch;
};

ConvGeometry pointwise(std::size_t in, std::size_t out) {
  ConvGeometry g;
  g.in_channels = in;
  g.out_channels = out;
  return g;
}

ConvGeometry depthwise(const ChainCase& c) {
  ConvGeometry g;
  g.in_channels = g.out_channels = g.groups = c.mid_c;
  g.kernel = {1, c.kernel, c.kernel};
  g.stride = {1, c.stride, c.stride};
  g.dilation = {1, c.dilation, c.dilation};
  g.pad_before = g.pad_after = {0, c.pad, c.pad};
  return g;
}

class ConvChainVariant : public fdl_test::VariantTest<fdl::GemmUkernel> {
 protected:
  // The chain against the plans run one by one: bit for bit.
  void check(const ChainCase& c, unsigned seed) {
    const fdl::GemmUkernel& uk = variant();
    const auto we = fdl_test::random_vector(c.mid_c * c.in_c, seed);
    const auto be = fdl_test::random_vector(c.mid_c, seed + 1);
    const auto wd = fdl_test::random_vector(c.mid_c * c.kernel * c.kernel, seed + 2);
    const auto bd = fdl_test::random_vector(c.mid_c, seed + 3);
    const auto wp = fdl_test::random_vector(c.out_c * c.mid_c, seed + 4);
    const auto bp = fdl_test::random_vector(c.out_c, seed + 5);
    std::unique_ptr<ConvPlan> expand;
    if (c.expand)
      expand = std::make_unique<ConvPlan>(pointwise(c.in_c, c.mid_c), we.data(), be.data(),
                                          fdl::Activation::kRelu6, 0.0f, &uk);
    // The reference variants take the depthwise kernel when asked only.
    const ConvPlan dw(depthwise(c), wd.data(), bd.data(), fdl::Activation::kRelu6, 0.0f, &uk,
                      fdl::ConvAlgorithm::kDepthwise);
    const ConvPlan project(pointwise(c.mid_c, c.out_c), wp.data(), bp.data(),
                           fdl::Activation::kNone, 0.0f, &uk);
    const fdl::ConvChain chain(expand.get(), dw, project);

    const Size3 in{1, c.h, c.w};
    const Size3 out = dw.geometry().out_size(in);
    const auto x = fdl_test::random_vector(c.batch * c.in_c * c.h * c.w, seed + 6);
    std::vector<float> mid(c.batch * c.mid_c * c.h * c.w);
    std::vector<float> dwo(c.batch * c.mid_c * fdl::volume(out));
    std::vector<float> want(c.batch * c.out_c * fdl::volume(out));
    const float* dw_in = x.data();
    if (expand) {
      expand->run(x.data(), c.batch, in, mid.data());
      dw_in = mid.data();
    }
    dw.run(dw_in, c.batch, in, dwo.data());
    project.run(dwo.data(), c.batch, out, want.data());

    for (int threads : {1, 2}) {
      fdl::set_num_threads(threads);
      std::vector<float> got(want.size(), -7.0f);
      chain.run(x.data(), c.batch, c.h, c.w, got.data());
      if (!expand || std::string(expand->algorithm(in)) != "narrow") {
        ASSERT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * sizeof(float)))
            << "threads " << threads << ", strip rows " << chain.strip_rows(c.h, c.w);
        continue;
      }
      // An expansion the plan runs narrow: the chain's GEMM sums in another order.
      for (std::size_t i = 0; i < want.size(); ++i)
        ASSERT_NEAR(got[i], want[i], 1e-5f * (1.0f + std::abs(want[i]))) << "at " << i;
    }
  }
  fdl_test::ThreadCountGuard guard_;
};

TEST_P(ConvChainVariant, MatchesThePlansRunOneByOne) {
  // Several strips each (the scratch budget holds a few rows at these channel counts),
  // stride 1 and 2, odd and even sizes, 5x5 and dilated windows, batches split and not.
  const ChainCase cases[] = {
      {16, 96, 24, true, 3, 2, 1, 1, 57, 57, 1},    // MobileNetV2's stride-2 block
      {24, 144, 24, true, 3, 1, 1, 1, 40, 37, 1},   // its stride-1 block
      {32, 32, 16, false, 3, 1, 1, 1, 64, 30, 1},   // no expansion: x read in place
      {32, 32, 64, false, 3, 2, 1, 1, 45, 60, 2},
      {8, 300, 8, true, 5, 1, 2, 1, 23, 19, 3},     // more images than threads
      {8, 200, 12, true, 3, 1, 2, 2, 26, 31, 1},    // dilation 2
      {3, 160, 6, true, 5, 2, 2, 1, 9, 8, 1},       // fewer output rows than a strip;
                                                  // 3 channels: the plan runs narrow
      {6, 512, 5, true, 3, 2, 0, 1, 30, 30, 1},     // no padding
  };
  // Pointwise inputs read in place and packed (gemm's choice differs between CPUs).
  for (fdl::GemmBRows b_rows : {fdl::GemmBRows::kInPlace, fdl::GemmBRows::kPacked}) {
    const fdl_test::GemmBRowsGuard guard(b_rows);
    unsigned seed = 1;
    for (const ChainCase& c : cases) {
      SCOPED_TRACE(::testing::Message()
                   << "case " << c.in_c << "->" << c.mid_c << "->" << c.out_c << " k"
                   << c.kernel << " s" << c.stride << " p" << c.pad << " d" << c.dilation
                   << " " << c.h << "x" << c.w << " batch " << c.batch << " B rows "
                   << (b_rows == fdl::GemmBRows::kInPlace ? "in place" : "packed"));
      check(c, seed += 10);
    }
  }
}

TEST_P(ConvChainVariant, StripsOverlapAcrossManyStrips) {
  // Many 1-2 row strips: the overlap rows passed on from strip to strip, both strides.
  for (std::size_t stride : {1, 2}) {
    const ChainCase c{5, 1200, 4, true, 3, stride, 1, 1, 21, 17, 1};
    check(c, 100 + unsigned(stride));
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, ConvChainVariant, ::testing::ValuesIn(fdl::gemm_variants()),
                         fdl_test::VariantName());

TEST(ConvChain, RefusesPlansThatDoNotChain) {
  const auto w = fdl_test::random_vector(64 * 64 * 9, 5);
  const ConvPlan pw(pointwise(8, 16), w.data(), nullptr, fdl::Activation::kNone, 0.0f);
  const ConvPlan pw16(pointwise(16, 4), w.data(), nullptr, fdl::Activation::kNone, 0.0f);
  ChainCase c{16, 16, 4, true, 3, 1, 1, 1, 8, 8, 1};
  const ConvPlan dw(depthwise(c), w.data(), nullptr, fdl::Activation::kNone, 0.0f);
  c.mid_c = 12;
  const ConvPlan dw12(depthwise(c), w.data(), nullptr, fdl::Activation::kNone, 0.0f);
  c.mid_c = 16;
  c.pad = 3;
  const ConvPlan dw_wide(depthwise(c), w.data(), nullptr, fdl::Activation::kNone, 0.0f);
  ConvGeometry full = pointwise(16, 16);
  full.kernel = {1, 3, 3};
  const ConvPlan dense3x3(full, w.data(), nullptr, fdl::Activation::kNone, 0.0f);
  const ConvPlan pw_direct(pointwise(8, 16), w.data(), nullptr, fdl::Activation::kNone, 0.0f,
                           nullptr, fdl::ConvAlgorithm::kDirect);

  EXPECT_NO_THROW(fdl::ConvChain(&pw, dw, pw16));
  EXPECT_NO_THROW(fdl::ConvChain(nullptr, dw, pw16));
  EXPECT_THROW(fdl::ConvChain(&pw, dw12, pw16), std::invalid_argument);     // 16 vs 12
  EXPECT_THROW(fdl::ConvChain(&pw, dense3x3, pw16), std::invalid_argument); // not depthwise
  EXPECT_THROW(fdl::ConvChain(&dense3x3, dw, pw16), std::invalid_argument); // not pointwise
  EXPECT_THROW(fdl::ConvChain(&pw, dw, pw), std::invalid_argument);         // 8 inputs
  EXPECT_THROW(fdl::ConvChain(&pw, dw_wide, pw16), std::invalid_argument);  // pad 3 >= 3
  EXPECT_THROW(fdl::ConvChain(&pw_direct, dw, pw16), std::invalid_argument);  // no packed GEMM
}

}  // namespace
