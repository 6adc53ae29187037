// has_nonfinite: the scan that sends images holding Inf/NaN away from the Winograd paths
// (conv2d, conv3d), whose tile transforms would spread a non-finite value past its
// receptive field (PyTorch's semantics, DESIGN.md 5). Private to kernels/src.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace fdl {

// Any Inf or NaN among n floats (exponent bits all ones); an integer OR that vectorises.
inline bool has_nonfinite(const float* x, std::size_t n) {
  std::uint32_t found = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    found |= static_cast<std::uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return found != 0;
}

}  // namespace fdl
