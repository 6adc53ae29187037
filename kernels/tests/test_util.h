// Helpers shared by the kernel tests.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "fastdl/activation.h"
#include "fastdl/batchnorm.h"
#include "fastdl/conv.h"
#include "fastdl/conv_backward.h"
#include "fastdl/embedding.h"
#include "fastdl/gemm.h"
#include "fastdl/isa.h"
#include "fastdl/optimizer.h"
#include "fastdl/pool.h"
#include "fastdl/rnn.h"
#include "fastdl/threadpool.h"

namespace fdl_test {

// Restores the pool size when a test ends, whatever it did.
struct ThreadCountGuard {
  int saved = fdl::num_threads();
  ~ThreadCountGuard() { fdl::set_num_threads(saved); }
};

// How gemm() reads B rows (fdl::set_gemm_b_rows) for the guard's lifetime; then automatic.
struct GemmBRowsGuard {
  explicit GemmBRowsGuard(fdl::GemmBRows policy) { fdl::set_gemm_b_rows(policy); }
  ~GemmBRowsGuard() { fdl::set_gemm_b_rows(fdl::GemmBRows::kAuto); }
};

// The fixture of a test parametrized over an op's variant table: a variant this CPU cannot
// run is a counted skip, never left out of the list.
template <class Variant>
class VariantTest : public ::testing::TestWithParam<Variant> {
 protected:
  const Variant& variant() const { return this->GetParam(); }
  void SetUp() override {
    if (!fdl::cpu_supports(this->GetParam().isa))
      GTEST_SKIP() << "CPU lacks " << fdl::isa_name(this->GetParam().isa);
  }
};

// Names each parametrized test after its variant.
struct VariantName {
  template <class Variant>
  std::string operator()(const ::testing::TestParamInfo<Variant>& info) const {
    return info.param.name;
  }
};

// n floats uniform in [-1, 1), reproducible from `seed`.
inline std::vector<float> random_vector(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

}  // namespace fdl_test

namespace fdl {

// Variant table entries print as their names in failure messages.
inline void PrintTo(const GemmUkernel& v, std::ostream* os) { *os << v.name; }
inline void PrintTo(const ActivationVariant& v, std::ostream* os) { *os << v.name; }
inline void PrintTo(const PoolVariant& v, std::ostream* os) { *os << v.name; }
inline void PrintTo(const RnnVariant& v, std::ostream* os) { *os << v.name; }
inline void PrintTo(const BatchNormVariant& v, std::ostream* os) { *os << v.name; }
inline void PrintTo(const OptimizerVariant& v, std::ostream* os) { *os << v.name; }
inline void PrintTo(const DepthwiseVariant& v, std::ostream* os) { *os << v.name; }
inline void PrintTo(const WinogradVariant& v, std::ostream* os) { *os << v.name; }
inline void PrintTo(const Col2imVariant& v, std::ostream* os) { *os << v.name; }
inline void PrintTo(const ImplicitGemmVariant& v, std::ostream* os) { *os << v.name; }
inline void PrintTo(const DepthwiseBackwardVariant& v, std::ostream* os) { *os << v.name; }
inline void PrintTo(const EmbeddingVariant& v, std::ostream* os) { *os << v.name; }

}  // namespace fdl
