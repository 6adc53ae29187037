// Bindings for the GEMM family: variants, matmul, LinearPlan.
#include <pybind11/stl.h>

#include "bindings.h"
#include "fastdl/isa.h"
#include "fastdl/linear.h"

namespace fastdl_bindings {

fdl::Activation parse_activation(const py::object& name) {
  if (name.is_none()) return fdl::Activation::kNone;
  const std::string s = py::str(name);
  static const struct { const char* name; fdl::Activation act; } kTable[] = {
      {"relu", fdl::Activation::kRelu},       {"relu6", fdl::Activation::kRelu6},
      {"leaky_relu", fdl::Activation::kLeakyRelu}, {"sigmoid", fdl::Activation::kSigmoid},
      {"tanh", fdl::Activation::kTanh},       {"silu", fdl::Activation::kSilu},
      {"elu", fdl::Activation::kElu},         {"hard_swish", fdl::Activation::kHardSwish}};
  for (const auto& e : kTable)
    if (s == e.name) return e.act;
  throw py::value_error("activation: unknown '" + s + "'");
}

}  // namespace fastdl_bindings

using namespace fastdl_bindings;

py::dict activation_variants();  // activation.cc
py::dict pool_variants();        // pooling.cc
py::dict rnn_variants();         // rnn.cc

namespace {

class PyLinearPlan {
 public:
  PyLinearPlan(const FloatArray& w, const py::object& b, const py::object& act, float alpha,
               const py::object& variant)
      : k_(w.shape(1)), n_(w.shape(0)) {
    FloatArray bias;
    if (!b.is_none()) bias = b.cast<FloatArray>();
    plan_ = std::make_unique<fdl::LinearPlan>(k_, n_, w.data(), b.is_none() ? nullptr : bias.data(),
                                              parse_activation(act), alpha, &pick_gemm(variant));
  }
  FloatArray call(const FloatArray& x) const {
    const std::size_t rows = x.shape(0);
    FloatArray y({rows, n_});
    {
      py::gil_scoped_release release;
      plan_->run(x.data(), rows, y.mutable_data());
    }
    return y;
  }
  std::string variant() const { return plan_->ukernel().name; }

 private:
  std::size_t k_, n_;
  std::unique_ptr<fdl::LinearPlan> plan_;
};

}  // namespace

void bind_gemm(py::module_& m) {
  m.def("variants", [](const std::string& op) {
    if (op == "activation") return activation_variants();
    if (op == "pool") return pool_variants();
    if (op == "rnn") return rnn_variants();
    if (op != "gemm")
      throw py::value_error("op: expected 'gemm', 'activation', 'pool' or 'rnn', got '" + op +
                            "'");
    return variants_dict(fdl::gemm_variants(), [](const fdl::GemmUkernel& v, py::dict& d) {
      d["mr"] = v.mr;
      d["nr"] = v.nr;
    });
  }, py::arg("op"),
     "Every compiled variant of `op` by name, best first: a dict of its tile and ISA, or "
     "None where this CPU cannot run it.");

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
      .def("__call__", &PyLinearPlan::call, py::arg("x"))
      .def_property_readonly("variant", &PyLinearPlan::variant);
}
