// Helpers shared by the kernel tests.
#pragma once

#include <cstddef>
#include <random>
#include <vector>

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
