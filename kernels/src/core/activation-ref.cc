#include <cmath>

#include "fastdl/activation.h"

namespace fdl {

float activate_ref(float x, Activation act, float alpha) {
  switch (act) {
    case Activation::kNone: return x;
    case Activation::kRelu: return x < 0.0f ? 0.0f : x;  // NaN stays NaN
    case Activation::kRelu6: return x < 0.0f ? 0.0f : (x > 6.0f ? 6.0f : x);
    case Activation::kLeakyRelu: return x < 0.0f ? alpha * x : x;
    case Activation::kSigmoid: return 1.0f / (1.0f + std::exp(-x));
    case Activation::kTanh: return std::tanh(x);
    case Activation::kSilu: return x / (1.0f + std::exp(-x));
    case Activation::kElu: return x > 0.0f ? x : alpha * std::expm1(x);
    case Activation::kHardSwish: {
      float t = x + 3.0f;  // clamped to [0, 6]; NaN stays NaN
      t = t < 0.0f ? 0.0f : (t > 6.0f ? 6.0f : t);
      return x * t / 6.0f;
    }
  }
  return x;
}

}  // namespace fdl
