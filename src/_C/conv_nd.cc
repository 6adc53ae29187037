// Bindings for the N-d convolutions: Conv3dPlan, ConvTransposePlan (1-D/2-D/3-D) and the
// N-d im2col/col2im. Spatial arguments come as lists with one entry per spatial axis
// (padding: (before, after) per axis, flattened); they are widened to the kernels' three
// axes with leading unit axes.
#include <pybind11/stl.h>

#include <vector>

#include "bindings.h"
#include "fastdl/conv3d.h"
#include "fastdl/conv_transpose.h"

using namespace fastdl_bindings;

namespace {

using Sizes = std::vector<std::size_t>;

// {a, b} -> {1, a, b}: the trailing `dims` axes are the given ones, the others `fill`.
fdl::Size3 widen(const Sizes& v, std::size_t fill) {
  fdl::Size3 out{fill, fill, fill};
  const std::size_t dims = v.size();
  for (std::size_t i = 0; i < dims; ++i) out[3 - dims + i] = v[i];
  return out;
}

// kernel [spatial...] (from w's shape), stride, dilation, padding (before, after per axis).
fdl::Conv3dGeometry geometry(const Sizes& kernel, const Sizes& stride, const Sizes& padding,
                             const Sizes& dilation) {
  fdl::Conv3dGeometry g;
  g.kernel = widen(kernel, 1);
  g.stride = widen(stride, 1);
  g.dilation = widen(dilation, 1);
  Sizes before, after;
  for (std::size_t i = 0; i + 1 < padding.size(); i += 2) {
    before.push_back(padding[i]);
    after.push_back(padding[i + 1]);
  }
  g.pad_before = widen(before, 0);
  g.pad_after = widen(after, 0);
  return g;
}

Sizes spatial_shape(const py::array& a, std::size_t first) {
  Sizes s;
  for (py::ssize_t i = static_cast<py::ssize_t>(first); i < a.ndim(); ++i)
    s.push_back(static_cast<std::size_t>(a.shape(i)));
  return s;
}

fdl::ConvAlgorithm parse_algorithm(const std::string& name) {
  if (name == "auto") return fdl::ConvAlgorithm::kAuto;
  if (name == "im2col") return fdl::ConvAlgorithm::kIm2col;
  if (name == "winograd") return fdl::ConvAlgorithm::kWinograd;
  throw py::value_error("algorithm: expected 'auto', 'im2col' or 'winograd', got '" + name + "'");
}

class PyConv3dPlan {
 public:
  PyConv3dPlan(const FloatArray& w, const py::object& b, const Sizes& stride,
               const Sizes& padding, const Sizes& dilation, std::size_t groups,
               const py::object& act, float alpha, const py::object& variant,
               const std::string& algorithm) {
    fdl::Conv3dGeometry g = geometry(spatial_shape(w, 2), stride, padding, dilation);
    g.out_channels = w.shape(0);
    g.in_channels = w.shape(1) * groups;
    g.groups = groups;
    FloatArray bias;
    if (!b.is_none()) bias = b.cast<FloatArray>();
    plan_ = std::make_unique<fdl::Conv3dPlan>(g, w.data(), b.is_none() ? nullptr : bias.data(),
                                              parse_activation(act), alpha, &pick_gemm(variant),
                                              parse_algorithm(algorithm));
  }

  FloatArray call(const FloatArray& x) const {
    const auto& g = plan_->geometry();
    const fdl::Size3 in{static_cast<std::size_t>(x.shape(2)), static_cast<std::size_t>(x.shape(3)),
                        static_cast<std::size_t>(x.shape(4))};
    const fdl::Size3 out = g.out_size(in);
    FloatArray y({static_cast<std::size_t>(x.shape(0)), g.out_channels, out[0], out[1], out[2]});
    {
      py::gil_scoped_release release;
      plan_->run(x.data(), x.shape(0), in, y.mutable_data());
    }
    return y;
  }
  std::string variant() const { return plan_->ukernel().name; }
  std::string algorithm(std::size_t d, std::size_t h, std::size_t w) const {
    return plan_->algorithm(fdl::Size3{d, h, w});
  }

 private:
  std::unique_ptr<fdl::Conv3dPlan> plan_;
};

class PyConvTransposePlan {
 public:
  // w [in_channels, out_channels / groups, k...] with 1 to 3 spatial axes.
  PyConvTransposePlan(const FloatArray& w, const py::object& b, const Sizes& stride,
                      const Sizes& padding, const Sizes& dilation, std::size_t groups,
                      const py::object& act, float alpha, const py::object& variant) {
    fdl::Conv3dGeometry g = geometry(spatial_shape(w, 2), stride, padding, dilation);
    g.in_channels = w.shape(0);
    g.out_channels = w.shape(1) * groups;
    g.groups = groups;
    FloatArray bias;
    if (!b.is_none()) bias = b.cast<FloatArray>();
    plan_ = std::make_unique<fdl::ConvTransposePlan>(
        g, w.data(), b.is_none() ? nullptr : bias.data(), parse_activation(act), alpha,
        &pick_gemm(variant));
  }

  // x [N, Cin, in...] -> y [N, Cout, output_size...].
  FloatArray call(const FloatArray& x, const Sizes& output_size) const {
    const fdl::Size3 in = widen(spatial_shape(x, 2), 1), out = widen(output_size, 1);
    std::vector<std::size_t> shape{static_cast<std::size_t>(x.shape(0)),
                                   plan_->geometry().out_channels};
    shape.insert(shape.end(), output_size.begin(), output_size.end());
    FloatArray y(shape);
    {
      py::gil_scoped_release release;
      plan_->run(x.data(), x.shape(0), in, out, y.mutable_data());
    }
    return y;
  }
  std::string variant() const { return plan_->ukernel().name; }

 private:
  std::unique_ptr<fdl::ConvTransposePlan> plan_;
};

// x [N, C, spatial...] -> [N, C * taps, L] (torch unfold, N-d).
FloatArray im2col_nd(const FloatArray& x, const Sizes& kernel, const Sizes& dilation,
                     const Sizes& padding, const Sizes& stride) {
  fdl::Conv3dGeometry g = geometry(kernel, stride, padding, dilation);
  const std::size_t n = x.shape(0), c = x.shape(1);
  g.in_channels = g.out_channels = c;
  const fdl::Size3 in = widen(spatial_shape(x, 2), 1);
  const std::size_t L = fdl::volume(g.out_size(in)), rows = c * g.taps();
  FloatArray cols({n, rows, L});
  {
    py::gil_scoped_release release;
    const std::size_t image = c * fdl::volume(in);
    for (std::size_t i = 0; i < n; ++i)
      fdl::im2col(g, x.data() + i * image, in, cols.mutable_data() + i * rows * L);
  }
  return cols;
}

// cols [N, C * taps, L] -> [N, C, output_size...], overlapping entries summed (torch fold).
FloatArray col2im_nd(const FloatArray& cols, const Sizes& output_size, const Sizes& kernel,
                     const Sizes& dilation, const Sizes& padding, const Sizes& stride) {
  fdl::Conv3dGeometry g = geometry(kernel, stride, padding, dilation);
  const std::size_t n = cols.shape(0), c = cols.shape(1) / g.taps(), L = cols.shape(2);
  g.in_channels = g.out_channels = c;
  const fdl::Size3 out = widen(output_size, 1);
  std::vector<std::size_t> shape{n, c};
  shape.insert(shape.end(), output_size.begin(), output_size.end());
  FloatArray y(shape);
  {
    py::gil_scoped_release release;
    const std::size_t image = c * fdl::volume(out);
    for (std::size_t i = 0; i < n; ++i)
      fdl::col2im(g, cols.data() + i * cols.shape(1) * L, out, y.mutable_data() + i * image);
  }
  return y;
}

}  // namespace

void bind_conv_nd(py::module_& m) {
  py::class_<PyConv3dPlan>(m, "Conv3dPlan")
      .def(py::init<const FloatArray&, const py::object&, const Sizes&, const Sizes&,
                    const Sizes&, std::size_t, const py::object&, float, const py::object&,
                    const std::string&>(),
           py::arg("w"), py::arg("b"), py::arg("stride"), py::arg("padding"),
           py::arg("dilation"), py::arg("groups"), py::arg("activation"), py::arg("alpha"),
           py::arg("variant") = py::none(), py::arg("algorithm") = "auto")
      .def("__call__", &PyConv3dPlan::call, py::arg("x"))
      .def("algorithm", &PyConv3dPlan::algorithm, py::arg("in_d"), py::arg("in_h"),
           py::arg("in_w"), "The algorithm used for inputs of this spatial size.")
      .def_property_readonly("variant", &PyConv3dPlan::variant);
  py::class_<PyConvTransposePlan>(m, "ConvTransposePlan")
      .def(py::init<const FloatArray&, const py::object&, const Sizes&, const Sizes&,
                    const Sizes&, std::size_t, const py::object&, float, const py::object&>(),
           py::arg("w"), py::arg("b"), py::arg("stride"), py::arg("padding"),
           py::arg("dilation"), py::arg("groups"), py::arg("activation"), py::arg("alpha"),
           py::arg("variant") = py::none())
      .def("__call__", &PyConvTransposePlan::call, py::arg("x"), py::arg("output_size"))
      .def_property_readonly("variant", &PyConvTransposePlan::variant);
  m.def("im2col_nd", &im2col_nd, py::arg("x"), py::arg("kernel_size"), py::arg("dilation"),
        py::arg("padding"), py::arg("stride"));
  m.def("col2im_nd", &col2im_nd, py::arg("cols"), py::arg("output_size"),
        py::arg("kernel_size"), py::arg("dilation"), py::arg("padding"), py::arg("stride"));
}
