#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "fastdl/common.h"
#include "fastdl/gemm.h"

namespace fastdl_bindings {

namespace py = pybind11;
using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// 'relu' -> Activation::kRelu; None -> kNone.
fdl::Activation parse_activation(const py::object& name);

// The variant named `name` (None: the best for the active ISA); ValueError if unknown or
// not runnable on this CPU.
const fdl::GemmUkernel& pick_gemm(const py::object& name);

}  // namespace fastdl_bindings

void bind_gemm(pybind11::module_& m);
void bind_conv(pybind11::module_& m);
void bind_pooling(pybind11::module_& m);
void bind_activation(pybind11::module_& m);
void bind_batchnorm(pybind11::module_& m);
