// Bindings for Conv2dPlan.
#include <pybind11/stl.h>

#include <array>

#include "bindings.h"
#include "fastdl/conv.h"

using namespace fastdl_bindings;

namespace {

using Pair = std::array<std::size_t, 2>;
using Quad = std::array<std::size_t, 4>;

class PyConv2dPlan {
 public:
  PyConv2dPlan(const FloatArray& w, const py::object& b, Pair stride, Quad padding,
               Pair dilation, std::size_t groups, const py::object& act, float alpha,
               const py::object& variant, const std::string& algorithm) {
    fdl::Conv2dGeometry g;
    g.out_channels = w.shape(0);
    g.in_channels = w.shape(1) * groups;
    g.groups = groups;
    g.kernel_h = w.shape(2);
    g.kernel_w = w.shape(3);
    g.stride_h = stride[0];
    g.stride_w = stride[1];
    g.dilation_h = dilation[0];
    g.dilation_w = dilation[1];
    g.pad_top = padding[0];
    g.pad_bottom = padding[1];
    g.pad_left = padding[2];
    g.pad_right = padding[3];
    FloatArray bias;
    if (!b.is_none()) bias = b.cast<FloatArray>();
    plan_ = std::make_unique<fdl::Conv2dPlan>(g, w.data(), b.is_none() ? nullptr : bias.data(),
                                              parse_activation(act), alpha, &pick_gemm(variant),
                                              parse_algorithm(algorithm));
  }

  FloatArray call(const FloatArray& x) const {
    const auto& g = plan_->geometry();
    const std::size_t n = x.shape(0), h = x.shape(2), w = x.shape(3);
    FloatArray y({n, g.out_channels, g.out_h(h), g.out_w(w)});
    {
      py::gil_scoped_release release;
      plan_->run(x.data(), n, h, w, y.mutable_data());
    }
    return y;
  }
  std::string variant() const { return plan_->ukernel().name; }
  std::string algorithm(std::size_t h, std::size_t w) const { return plan_->algorithm(h, w); }

 private:
  static fdl::ConvAlgorithm parse_algorithm(const std::string& name) {
    if (name == "auto") return fdl::ConvAlgorithm::kAuto;
    if (name == "im2col") return fdl::ConvAlgorithm::kIm2col;
    if (name == "winograd") return fdl::ConvAlgorithm::kWinograd;
    if (name == "depthwise") return fdl::ConvAlgorithm::kDepthwise;
    throw py::value_error("algorithm: expected 'auto', 'im2col', 'winograd' or 'depthwise', got '" +
                          name + "'");
  }

  std::unique_ptr<fdl::Conv2dPlan> plan_;
};

}  // namespace

void bind_conv(py::module_& m) {
  py::class_<PyConv2dPlan>(m, "Conv2dPlan")
      .def(py::init<const FloatArray&, const py::object&, Pair, Quad, Pair, std::size_t,
                    const py::object&, float, const py::object&, const std::string&>(),
           py::arg("w"), py::arg("b"), py::arg("stride"), py::arg("padding"),
           py::arg("dilation"), py::arg("groups"), py::arg("activation"), py::arg("alpha"),
           py::arg("variant") = py::none(), py::arg("algorithm") = "auto")
      .def("__call__", &PyConv2dPlan::call, py::arg("x"))
      .def("algorithm", &PyConv2dPlan::algorithm, py::arg("in_h"), py::arg("in_w"),
           "The algorithm used for inputs of this spatial size.")
      .def_property_readonly("variant", &PyConv2dPlan::variant);
}
