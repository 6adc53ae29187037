// Scalar activations: the specification that every vectorised epilogue is tested against.
#pragma once

#include <cstddef>

#include "fastdl/common.h"

namespace fdl {

float activate_ref(float x, Activation act, float alpha);

}  // namespace fdl
