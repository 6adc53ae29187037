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

float activate_backward_ref(float t, float dy, Activation act, float alpha) {
  switch (act) {  // t: the output for none/relu/relu6/sigmoid/tanh, else the input
    case Activation::kNone: return dy;
    case Activation::kRelu: return t > 0.0f ? dy : 0.0f;
    case Activation::kRelu6: return t > 0.0f && t < 6.0f ? dy : 0.0f;
    case Activation::kLeakyRelu: return t > 0.0f ? dy : dy * alpha;
    case Activation::kSigmoid: return dy * (t * (1.0f - t));
    case Activation::kTanh: return dy * (1.0f - t * t);
    case Activation::kSilu: {
      const float s = 1.0f / (1.0f + std::exp(-t));
      return dy * (s * (1.0f + t * (1.0f - s)));
    }
    case Activation::kElu: return t > 0.0f ? dy : dy * (alpha * std::exp(t));
    case Activation::kHardSwish:
      return t <= -3.0f ? 0.0f : (t >= 3.0f ? dy : dy * (t / 3.0f + 0.5f));
  }
  return dy;
}

}  // namespace fdl
