// Helpers shared by the kernel tests.
#pragma once

#include <cstddef>
#include <ostream>
#include <random>
#include <vector>

#include "fastdl/activation.h"
#include "fastdl/batchnorm.h"
#include "fastdl/conv.h"
#include "fastdl/gemm.h"
#include "fastdl/pool.h"
#include "fastdl/rnn.h"

namespace fdl_test {

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
inline void PrintTo(const DepthwiseVariant& v, std::ostream* os) { *os << v.name; }
inline void PrintTo(const WinogradVariant& v, std::ostream* os) { *os << v.name; }
inline void PrintTo(const Col2imVariant& v, std::ostream* os) { *os << v.name; }

}  // namespace fdl
