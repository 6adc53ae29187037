// Bindings for the GEMM family: matmul, LinearPlan, variants("gemm").
#include <memory>

#include "bindings.h"
#include "fastdl/linear.h"

using namespace fastdl_bindings;

namespace {

class PyLinearPlan {
 public:
  PyLinearPlan(const FloatArray& w, const py::object& b, const py::object& act, float alpha,
               const py::object& variant)
      : k_(w.shape(1)), n_(w.shape(0)) {
    FloatArray bias;
    plan_ = std::make_unique<fdl::LinearPlan>(k_, n_, w.data(), optional_data(b, bias),
                                              parse_activation(act), alpha, &pick_gemm(variant));
  }
  // x [rows, in] -> y [rows, out] (into `out` when given).
  FloatArray call(const FloatArray& x, const py::object& out) const {
    const std::size_t rows = x.shape(0);
    FloatArray y = output_array(out, {py::ssize_t(rows), py::ssize_t(n_)});
    {
      py::gil_scoped_release release;
      plan_->run(x.data(), rows, y.mutable_data());
    }
    return y;
  }
  void set_weights(const FloatArray& w, const py::object& b) { set_plan_weights(*plan_, w, b); }
  std::string variant() const { return plan_->ukernel().name; }

 private:
  std::size_t k_, n_;
  std::unique_ptr<fdl::LinearPlan> plan_;
};

}  // namespace

void bind_gemm(py::module_& m) {
  register_variants("gemm", [] {
    return variants_dict(fdl::gemm_variants(), [](const fdl::GemmUkernel& v, py::dict& d) {
      d["mr"] = v.mr;
      d["nr"] = v.nr;
    });
  });

  m.def("matmul", [](const FloatArray& a, const FloatArray& b, const py::object& variant) {
    const std::size_t M = a.shape(0), K = a.shape(1), N = b.shape(1);
    const fdl::GemmUkernel& uk = pick_gemm(variant);
    FloatArray c({M, N});
    {
      py::gil_scoped_release release;
      fdl::matmul(uk, M, N, K, a.data(), b.data(), c.mutable_data());
    }
    return c;
  }, py::arg("a"), py::arg("b"), py::arg("variant") = py::none());

  py::class_<PyLinearPlan>(m, "LinearPlan")
      .def(py::init<const FloatArray&, const py::object&, const py::object&, float,
                    const py::object&>(),
           py::arg("w"), py::arg("b"), py::arg("activation"), py::arg("alpha"),
           py::arg("variant") = py::none())
      .def("__call__", &PyLinearPlan::call, py::arg("x"), py::arg("out") = py::none())
      .def("set_weights", &PyLinearPlan::set_weights, py::arg("w"), py::arg("b"),
           "Repacks new weights of the same shapes in place.")
      .def_property_readonly("variant", &PyLinearPlan::variant);
}
