// Bindings for the GEMM family: matmul, LinearPlan, variants("gemm").
#include <memory>

#include "bindings.h"
#include "fastdl/linear.h"

using namespace fastdl_bindings;

namespace {

class PyLinearPlan {
 public:
  // w [out, in], or [in, out] with kn.
  PyLinearPlan(const FloatArray& w, const py::object& b, const py::object& act, float alpha,
               const py::object& variant, bool kn)
      : k_(w.shape(kn ? 0 : 1)), n_(w.shape(kn ? 1 : 0)) {
    FloatArray bias;
    plan_ = std::make_unique<fdl::LinearPlan>(k_, n_, w.data(), optional_data(b, bias),
                                              parse_activation(act), alpha, &pick_gemm(variant),
                                              kn);
  }
  // x [rows, in] -> y [rows, out] (into `out` when given).
  FloatArray call(const FloatArray& x, const py::object& out) const {
    const std::size_t rows = x.shape(0);
    FloatArray y = output_array(out, {py::ssize_t(rows), py::ssize_t(n_)});
    run_interruptible(double(rows) * k_ * n_, [&] {
      plan_->run(x.data(), rows, y.mutable_data());
    });
    return y;
  }
  // call(x, out) bound to x's and out's memory (self: this plan's Python object, kept).
  BoundCallPtr bind(const py::object& self, const py::object& x_obj, const py::object& out) const {
    FloatArray x = exact_array(x_obj, "x");
    if (x.ndim() != 2 || std::size_t(x.shape(1)) != k_)
      throw py::value_error("x: expected (rows, " + std::to_string(k_) + ")");
    const std::size_t rows = x.shape(0);
    FloatArray y = bound_output(out, {py::ssize_t(rows), py::ssize_t(n_)});
    const fdl::LinearPlan* plan = plan_.get();
    const float* xd = x.data();
    float* yd = y.mutable_data();
    return std::make_shared<BoundCall>([plan, xd, rows, yd] { plan->run(xd, rows, yd); },
                                       double(rows) * k_ * n_, py::make_tuple(self, x, y));
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
    run_interruptible(double(M) * N * K, [&] {
      fdl::matmul(uk, M, N, K, a.data(), b.data(), c.mutable_data());
    });
    return c;
  }, py::arg("a"), py::arg("b"), py::arg("variant") = py::none());

  m.def("linear_backward", [](const FloatArray& dy, const FloatArray& x, const FloatArray& w,
                              bool has_bias, bool needs_dx, bool kn, const py::object& variant) {
    const int n_axis = kn ? 1 : 0;  // w [N, K], or [K, N] with kn
    if (x.ndim() != 2 || w.ndim() != 2 || dy.ndim() != 2 || w.shape(1 - n_axis) != x.shape(1) ||
        dy.shape(0) != x.shape(0) || dy.shape(1) != w.shape(n_axis))
      throw py::value_error("linear_backward: expected dy [M, N], x [M, K], w [N, K] "
                            "([K, N] with kn)");
    const std::size_t M = x.shape(0), K = x.shape(1), N = w.shape(n_axis);
    const fdl::GemmUkernel& uk = pick_gemm(variant);
    FloatArray dw(std::vector<py::ssize_t>(w.shape(), w.shape() + 2));
    py::object dx = py::none(), db = py::none();
    float* dx_data = nullptr;
    float* db_data = nullptr;
    if (needs_dx) {
      FloatArray a({M, K});
      dx_data = a.mutable_data();
      dx = a;
    }
    if (has_bias) {
      FloatArray a({N});
      db_data = a.mutable_data();
      db = a;
    }
    run_interruptible(2.0 * M * N * K, [&] {
      fdl::linear_backward(uk, M, K, N, x.data(), w.data(), dy.data(), dx_data,
                           dw.mutable_data(), db_data, false, kn);
    });
    return py::make_tuple(dx, dw, db);
  }, py::arg("dy"), py::arg("x"), py::arg("w"), py::arg("has_bias") = true,
     py::arg("needs_dx") = true, py::arg("kn") = false, py::arg("variant") = py::none(),
     "(dx or None, dw, db or None): the gradients of y = x @ w.T + b from dy; with kn, w "
     "and dw are [K, N] (y = x @ w + b).");

  py::class_<PyLinearPlan>(m, "LinearPlan")
      .def(py::init<const FloatArray&, const py::object&, const py::object&, float,
                    const py::object&, bool>(),
           py::arg("w"), py::arg("b"), py::arg("activation"), py::arg("alpha"),
           py::arg("variant") = py::none(), py::arg("kn") = false,
           "w [out, in], or with kn [in, out] (y = x @ w + b).")
      .def("__call__", &PyLinearPlan::call, py::arg("x"), py::arg("out") = py::none())
      .def("bind", bind_method<PyLinearPlan>(), py::arg("x"), py::arg("out"),
           "call(x, out) bound to their memory (BoundCall).")
      .def("set_weights", &PyLinearPlan::set_weights, py::arg("w"), py::arg("b"),
           "Repacks new weights of the same shapes in place.")
      .def_property_readonly("variant", &PyLinearPlan::variant);
}
