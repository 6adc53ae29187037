#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "fastdl/common.h"
#include "fastdl/gemm.h"
#include "fastdl/isa.h"
#include "fastdl/variants.h"

namespace fastdl_bindings {

namespace py = pybind11;
using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// 'relu' -> Activation::kRelu; None -> kNone.
fdl::Activation parse_activation(const py::object& name);

// The variant named `name` in `table` (None: `best`); ValueError if unknown or not
// runnable on this CPU. `family` names the table in the message ("GEMM", "pooling", ...).
template <class Variant>
const Variant& pick_variant(const std::vector<Variant>& table, const Variant& best,
                            const py::object& name, const char* family) {
  if (name.is_none()) return best;
  const std::string s = py::str(name);
  const Variant* v = fdl::find_variant(table, s.c_str());
  if (!v) throw py::value_error(std::string("variant: no ") + family + " variant named '" + s + "'");
  if (!fdl::cpu_supports(v->isa))
    throw py::value_error("variant: this CPU cannot run '" + s + "'");
  return *v;
}

// fastdl._C.variants(op): {name: {"isa": ..., + describe(variant, dict)} or None where
// this CPU cannot run it}, best first.
template <class Variant, class Describe>
py::dict variants_dict(const std::vector<Variant>& table, Describe describe) {
  py::dict out;
  for (const auto& v : table) {
    if (!fdl::cpu_supports(v.isa)) {
      out[v.name] = py::none();
      continue;
    }
    py::dict d;
    d["isa"] = fdl::isa_name(v.isa);
    describe(v, d);
    out[v.name] = d;
  }
  return out;
}

inline const fdl::GemmUkernel& pick_gemm(const py::object& name) {
  return pick_variant(fdl::gemm_variants(), fdl::gemm_best(), name, "GEMM");
}

}  // namespace fastdl_bindings

void bind_gemm(pybind11::module_& m);
void bind_conv(pybind11::module_& m);
void bind_pooling(pybind11::module_& m);
void bind_activation(pybind11::module_& m);
void bind_batchnorm(pybind11::module_& m);
void bind_rnn(pybind11::module_& m);
void bind_conv_nd(pybind11::module_& m);
