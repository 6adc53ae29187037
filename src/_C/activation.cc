// Bindings for the activation kernels: elementwise activations, softmax / log_softmax,
// activation names for every fused epilogue, and variants("activation").
#include "bindings.h"
#include "fastdl/activation.h"
#include "fastdl/isa.h"

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

namespace {

// The variant named `name` (None: the best for the active ISA); ValueError if unknown or
// not runnable on this CPU.
const fdl::ActivationVariant& pick_activation(const py::object& name) {
  return pick_variant(fdl::activation_variants(), fdl::activation_best(), name, "activation");
}

}  // namespace

void bind_activation(py::module_& m) {
  register_variants("activation", [] {
    return variants_dict(fdl::activation_variants(),
                         [](const fdl::ActivationVariant& v, py::dict& d) { d["width"] = v.width; });
  });
  m.def("activation", [](const FloatArray& x, const py::object& act, float alpha,
                         const py::object& variant) {
    const fdl::ActivationVariant& v = pick_activation(variant);
    const fdl::Activation a = parse_activation(act);
    FloatArray y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    {
      py::gil_scoped_release release;
      fdl::activation(v, x.size(), x.data(), y.mutable_data(), a, alpha);
    }
    return y;
  }, py::arg("x"), py::arg("activation"), py::arg("alpha") = 0.0f,
     py::arg("variant") = py::none(),
     "act(x) elementwise, any shape; alpha is leaky_relu's slope or elu's alpha.");

  m.def("softmax", [](const FloatArray& x, float scale, bool log, const py::object& variant) {
    if (x.ndim() != 3) throw py::value_error("x: expected a 3-D array (outer, n, inner)");
    const fdl::ActivationVariant& v = pick_activation(variant);
    const std::size_t outer = x.shape(0), n = x.shape(1), inner = x.shape(2);
    FloatArray y({outer, n, inner});
    {
      py::gil_scoped_release release;
      fdl::softmax(v, outer, n, inner, x.data(), y.mutable_data(), scale, log);
    }
    return y;
  }, py::arg("x"), py::arg("scale") = 1.0f, py::arg("log") = false,
     py::arg("variant") = py::none(),
     "softmax(x * scale) (log_softmax with log=True) along axis 1 of a 3-D array.");

  m.def("bind_softmax", [](const py::object& x_obj, const py::object& out, float scale,
                           bool log) {
    FloatArray x = exact_array(x_obj, "x");
    if (x.ndim() != 3) throw py::value_error("x: expected a 3-D array (outer, n, inner)");
    FloatArray y = bound_output(out, shape_of(x));
    const fdl::ActivationVariant* v = &fdl::activation_best();
    const std::size_t outer = x.shape(0), n = x.shape(1), inner = x.shape(2);
    const float* xd = x.data();
    float* yd = y.mutable_data();
    return std::make_shared<BoundCall>([v, outer, n, inner, xd, yd, scale, log] {
      fdl::softmax(*v, outer, n, inner, xd, yd, scale, log);
    }, double(x.size()), py::make_tuple(x, y));
  }, py::arg("x"), py::arg("out"), py::arg("scale") = 1.0f, py::arg("log") = false,
     "softmax(x, scale, log) into out bound to their memory (BoundCall); out may be x.");

  m.def("activation_backward", [](const FloatArray& dy, const FloatArray& t,
                                  const py::object& act, float alpha, const py::object& variant) {
    if (dy.size() != t.size()) throw py::value_error("t: expected the size of dy");
    const fdl::ActivationVariant& v = pick_activation(variant);
    const fdl::Activation a = parse_activation(act);
    FloatArray dx(std::vector<py::ssize_t>(dy.shape(), dy.shape() + dy.ndim()));
    {
      py::gil_scoped_release release;
      fdl::activation_backward(v, dy.size(), t.data(), dy.data(), dx.mutable_data(), a, alpha);
    }
    return dx;
  }, py::arg("dy"), py::arg("t"), py::arg("activation"), py::arg("alpha") = 0.0f,
     py::arg("variant") = py::none(),
     "dy * act'(x), any shape; t is the activation's output for none, relu, relu6, sigmoid "
     "and tanh, its input for the others.");

  m.def("softmax_backward", [](const FloatArray& y, const FloatArray& dy, float scale, bool log,
                               const py::object& variant) {
    if (y.ndim() != 3) throw py::value_error("y: expected a 3-D array (outer, n, inner)");
    if (dy.size() != y.size()) throw py::value_error("dy: expected the size of y");
    const fdl::ActivationVariant& v = pick_activation(variant);
    const std::size_t outer = y.shape(0), n = y.shape(1), inner = y.shape(2);
    FloatArray dx({outer, n, inner});
    {
      py::gil_scoped_release release;
      fdl::softmax_backward(v, outer, n, inner, y.data(), dy.data(), dx.mutable_data(), scale,
                            log);
    }
    return dx;
  }, py::arg("y"), py::arg("dy"), py::arg("scale") = 1.0f, py::arg("log") = false,
     py::arg("variant") = py::none(),
     "The gradient of softmax(x * scale) (log_softmax) along axis 1 from its output y.");
}
