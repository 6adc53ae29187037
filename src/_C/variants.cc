// fastdl._C.variants(op): every op's variant table, registered by its binding file.
#include <map>

#include "bindings.h"

namespace fastdl_bindings {

namespace {

std::map<std::string, std::function<py::dict()>>& registry() {
  static std::map<std::string, std::function<py::dict()>> ops;
  return ops;
}

}  // namespace

void register_variants(const std::string& op, std::function<py::dict()> describe) {
  registry()[op] = std::move(describe);
}

FloatArray output_array(const py::object& out, const std::vector<py::ssize_t>& shape) {
  if (out.is_none()) return FloatArray(shape);
  py::ssize_t size = 1;
  for (py::ssize_t s : shape) size *= s;
  // check_: a float32 C-contiguous ndarray as it is (a cast would write into a copy).
  const bool usable = py::array_t<float, py::array::c_style>::check_(out) &&
                      py::reinterpret_borrow<py::array>(out).writeable() &&
                      py::reinterpret_borrow<py::array>(out).size() == size;
  if (usable) return py::reinterpret_borrow<FloatArray>(out);
  throw py::value_error("out: expected a writeable C-contiguous float32 array of the output's "
                        "shape");
}

FloatArray exact_array(const py::object& a, const char* name) {
  if (py::array_t<float, py::array::c_style>::check_(a))
    return py::reinterpret_borrow<FloatArray>(a);
  throw py::value_error(std::string(name) + ": expected a C-contiguous float32 array (a call "
                        "bound to its memory reads it in place)");
}

FloatArray bound_output(const py::object& out, const std::vector<py::ssize_t>& shape) {
  if (out.is_none()) throw py::value_error("out: a bound call writes into a given array");
  return output_array(out, shape);
}

}  // namespace fastdl_bindings

using namespace fastdl_bindings;

void bind_variants(py::module_& m) {
  m.def("variants", [](const std::string& op) {
    const auto it = registry().find(op);
    if (it != registry().end()) return it->second();
    std::string known;
    for (const auto& entry : registry()) known += (known.empty() ? "'" : ", '") + entry.first + "'";
    throw py::value_error("op: expected one of " + known + ", got '" + op + "'");
  }, py::arg("op"),
     "Every compiled variant of `op` by name, best first, the reference last: a dict of its "
     "ISA (and tile sizes where it has them), or None where this CPU cannot run it.");
  m.def("variant_ops", [] {
    py::list ops;
    for (const auto& entry : registry()) ops.append(entry.first);
    return ops;
  }, "The ops fastdl._C.variants() answers for.");
}
