// Bindings for the convolution (fastdl/conv.h, conv_backward.h): ConvPlan and
// ConvTransposePlan for 1, 2 or 3 spatial axes, conv_backward, and variants("conv" /
// "depthwise" / "winograd" / "col2im" / "narrow" / "depthwise_backward" / "shifted_dots").
// Spatial arguments come as lists with one entry per spatial axis (padding: (before, after)
// per axis, flattened); they are widened to the kernels' three axes with leading unit axes.
#include <pybind11/stl.h>

#include <memory>
#include <vector>

#include "bindings.h"
#include "fastdl/conv.h"
#include "fastdl/conv_backward.h"
#include "fastdl/conv_chain.h"
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

Sizes spatial_shape(const py::array& a) {
  Sizes s;
  for (py::ssize_t i = 2; i < a.ndim(); ++i) s.push_back(static_cast<std::size_t>(a.shape(i)));
  return s;
}

// Kernel extents from w's spatial axes, stride, dilation, padding (before, after per axis).
fdl::ConvGeometry geometry(const Sizes& kernel, const Sizes& stride, const Sizes& padding,
                           const Sizes& dilation) {
  fdl::ConvGeometry g;
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

// The names ConvPlan::algorithm() reports, and "auto" / "winograd" (either tile size).
fdl::ConvAlgorithm parse_algorithm(const std::string& name) {
  static const struct { const char* name; fdl::ConvAlgorithm algorithm; } kTable[] = {
      {"auto", fdl::ConvAlgorithm::kAuto},          {"im2col", fdl::ConvAlgorithm::kIm2col},
      {"winograd", fdl::ConvAlgorithm::kWinograd},  {"winograd_f2", fdl::ConvAlgorithm::kWinogradF2},
      {"winograd_f4", fdl::ConvAlgorithm::kWinogradF4},
      {"depthwise", fdl::ConvAlgorithm::kDepthwise}, {"narrow", fdl::ConvAlgorithm::kNarrow},
      {"direct", fdl::ConvAlgorithm::kDirect}};
  for (const auto& e : kTable)
    if (name == e.name) return e.algorithm;
  throw py::value_error("algorithm: expected 'auto', 'im2col', 'winograd', 'winograd_f2', "
                        "'winograd_f4', 'depthwise', 'narrow' or 'direct', got '" + name + "'");
}

std::vector<py::ssize_t> output_shape(std::size_t batch, std::size_t channels,
                                      const fdl::Size3& out, std::size_t dims) {
  std::vector<py::ssize_t> shape{py::ssize_t(batch), py::ssize_t(channels)};
  for (std::size_t a = 3 - dims; a < 3; ++a) shape.push_back(py::ssize_t(out[a]));
  return shape;
}

class PyConvPlan {
 public:
  // w [out_channels, in_channels / groups, k...] with 1 to 3 spatial axes.
  PyConvPlan(const FloatArray& w, const py::object& b, const Sizes& stride,
             const Sizes& padding, const Sizes& dilation, std::size_t groups,
             const py::object& act, float alpha, const py::object& variant,
             const std::string& algorithm)
      : dims_(static_cast<std::size_t>(w.ndim()) - 2) {
    fdl::ConvGeometry g = geometry(spatial_shape(w), stride, padding, dilation);
    g.out_channels = w.shape(0);
    g.in_channels = w.shape(1) * groups;
    g.groups = groups;
    FloatArray bias;
    plan_ = std::make_unique<fdl::ConvPlan>(g, w.data(), optional_data(b, bias),
                                            parse_activation(act), alpha, &pick_gemm(variant),
                                            parse_algorithm(algorithm));
  }

  // x [N, in_channels, in...] -> y [N, out_channels, out...] (into `out` when given).
  FloatArray call(const FloatArray& x, const py::object& out) const {
    const fdl::Size3 in = widen(spatial_shape(x), 1);
    const fdl::Size3 o = plan_->geometry().out_size(in);
    FloatArray y = output_array(out, output_shape(x.shape(0), plan_->geometry().out_channels, o,
                                                  dims_));
    const fdl::ConvGeometry& g = plan_->geometry();
    const double work = double(y.size()) * (g.in_channels / g.groups) * g.taps();
    run_interruptible(work, [&] {
      plan_->run(x.data(), x.shape(0), in, y.mutable_data());
    });
    return y;
  }
  // call(x, out) bound to x's and out's memory (self: this plan's Python object, kept).
  BoundCallPtr bind(const py::object& self, const py::object& x_obj, const py::object& out) const {
    FloatArray x = exact_array(x_obj, "x");
    const fdl::ConvGeometry& g = plan_->geometry();
    if (std::size_t(x.ndim()) != dims_ + 2 || std::size_t(x.shape(1)) != g.in_channels)
      throw py::value_error("x: expected (N, " + std::to_string(g.in_channels) + ", ...) with " +
                            std::to_string(dims_) + " spatial axes");
    const fdl::Size3 in = widen(spatial_shape(x), 1);
    FloatArray y = bound_output(out, output_shape(x.shape(0), g.out_channels, g.out_size(in),
                                                  dims_));
    const fdl::ConvPlan* plan = plan_.get();
    const float* xd = x.data();
    float* yd = y.mutable_data();
    const std::size_t batch = x.shape(0);
    return std::make_shared<BoundCall>([plan, xd, batch, in, yd] { plan->run(xd, batch, in, yd); },
                                       double(y.size()) * (g.in_channels / g.groups) * g.taps(),
                                       py::make_tuple(self, x, y));
  }
  void set_weights(const FloatArray& w, const py::object& b) { set_plan_weights(*plan_, w, b); }
  std::string variant() const { return plan_->ukernel().name; }
  std::string algorithm(const Sizes& in) const { return plan_->algorithm(widen(in, 1)); }
  const fdl::ConvPlan& plan() const { return *plan_; }
  std::size_t dims() const { return dims_; }
  py::dict kernels() const {
    py::dict d;
    d["gemm"] = plan_->ukernel().name;
    auto name = [](const char* s) { return s ? py::object(py::str(s)) : py::object(py::none()); };
    d["depthwise"] = name(plan_->depthwise_variant());
    d["winograd"] = name(plan_->winograd_variant());
    d["narrow"] = name(plan_->narrow_variant());
    d["implicit_gemm"] = name(plan_->implicit_gemm_variant());
    return d;
  }

 private:
  std::size_t dims_;
  std::unique_ptr<fdl::ConvPlan> plan_;
};

// fdl::ConvChain over three 2-D plans (expand may be None); keeps them alive.
class PyConvChain {
 public:
  PyConvChain(const py::object& expand, const PyConvPlan& depthwise, const PyConvPlan& project) {
    const PyConvPlan* e = expand.is_none() ? nullptr : &expand.cast<const PyConvPlan&>();
    for (const PyConvPlan* p : {e, &depthwise, &project})
      if (p && p->dims() != 2) throw py::value_error("ConvChain: expected 2-D convolution plans");
    chain_ = std::make_unique<fdl::ConvChain>(e ? &e->plan() : nullptr, depthwise.plan(),
                                              project.plan());
  }

  // x [N, in_channels, H, W] -> y [N, out_channels, out_h, out_w] (into `out` when given).
  FloatArray call(const FloatArray& x, const py::object& out) const {
    if (x.ndim() != 4 || std::size_t(x.shape(1)) != chain_->in_channels())
      throw py::value_error("x: expected (N, " + std::to_string(chain_->in_channels()) +
                            ", H, W)");
    const std::size_t h = x.shape(2), w = x.shape(3);
    const fdl::ConvGeometry& g = chain_->depthwise_geometry();
    const fdl::Size3 o = g.out_size(fdl::Size3{1, h, w});
    if (o[1] == 0 || o[2] == 0) throw py::value_error("x: smaller than the depthwise window");
    FloatArray y = output_array(out, output_shape(x.shape(0), chain_->out_channels(), o, 2));
    const double work = double(y.size()) * g.in_channels * 2;
    run_interruptible(work, [&] { chain_->run(x.data(), x.shape(0), h, w, y.mutable_data()); });
    return y;
  }
  // call(x, out) bound to x's and out's memory (self: this chain's Python object, kept).
  BoundCallPtr bind(const py::object& self, const py::object& x_obj, const py::object& out) const {
    FloatArray x = exact_array(x_obj, "x");
    if (x.ndim() != 4 || std::size_t(x.shape(1)) != chain_->in_channels())
      throw py::value_error("x: expected (N, " + std::to_string(chain_->in_channels()) +
                            ", H, W)");
    const std::size_t h = x.shape(2), w = x.shape(3), batch = x.shape(0);
    const fdl::ConvGeometry& g = chain_->depthwise_geometry();
    const fdl::Size3 o = g.out_size(fdl::Size3{1, h, w});
    if (o[1] == 0 || o[2] == 0) throw py::value_error("x: smaller than the depthwise window");
    FloatArray y = bound_output(out, output_shape(batch, chain_->out_channels(), o, 2));
    const fdl::ConvChain* chain = chain_.get();
    const float* xd = x.data();
    float* yd = y.mutable_data();
    return std::make_shared<BoundCall>([chain, xd, batch, h, w, yd] {
      chain->run(xd, batch, h, w, yd);
    }, double(y.size()) * g.in_channels * 2, py::make_tuple(self, x, y));
  }
 private:
  std::unique_ptr<fdl::ConvChain> chain_;
};

class PyConvTransposePlan {
 public:
  // w [in_channels, out_channels / groups, k...] with 1 to 3 spatial axes.
  PyConvTransposePlan(const FloatArray& w, const py::object& b, const Sizes& stride,
                      const Sizes& padding, const Sizes& dilation, std::size_t groups,
                      const py::object& act, float alpha, const py::object& variant)
      : dims_(static_cast<std::size_t>(w.ndim()) - 2) {
    fdl::ConvGeometry g = geometry(spatial_shape(w), stride, padding, dilation);
    g.in_channels = w.shape(0);
    g.out_channels = w.shape(1) * groups;
    g.groups = groups;
    FloatArray bias;
    plan_ = std::make_unique<fdl::ConvTransposePlan>(g, w.data(), optional_data(b, bias),
                                                     parse_activation(act), alpha,
                                                     &pick_gemm(variant));
  }

  // x [N, Cin, in...] -> y [N, Cout, output_size...] (into `out` when given).
  FloatArray call(const FloatArray& x, const Sizes& output_size, const py::object& out) const {
    const fdl::Size3 in = widen(spatial_shape(x), 1), o = widen(output_size, 1);
    FloatArray y = output_array(out, output_shape(x.shape(0), plan_->geometry().out_channels, o,
                                                  dims_));
    const fdl::ConvGeometry& g = plan_->geometry();
    const double work = double(x.size()) * (g.out_channels / g.groups) * g.taps();
    run_interruptible(work, [&] {
      plan_->run(x.data(), x.shape(0), in, o, y.mutable_data());
    });
    return y;
  }
  void set_weights(const FloatArray& w, const py::object& b) { set_plan_weights(*plan_, w, b); }
  std::string variant() const { return plan_->ukernel().name; }

 private:
  std::size_t dims_;
  std::unique_ptr<fdl::ConvTransposePlan> plan_;
};

// (dx or None, dw, db or None) of y = conv(x, w) + b from dy; padding flat (before, after).
// "auto" / "gemm" / "depthwise" (fdl::ConvGradAlgorithm).
fdl::ConvGradAlgorithm parse_grad_algorithm(const std::string& name) {
  if (name == "auto") return fdl::ConvGradAlgorithm::kAuto;
  if (name == "gemm") return fdl::ConvGradAlgorithm::kGemm;
  if (name == "depthwise") return fdl::ConvGradAlgorithm::kDepthwise;
  if (name == "shifted_dots") return fdl::ConvGradAlgorithm::kShiftedDots;
  throw py::value_error("algorithm: expected 'auto', 'gemm', 'depthwise' or 'shifted_dots', "
                        "got '" + name + "'");
}

py::tuple conv_backward(const FloatArray& dy, const FloatArray& x, const FloatArray& w,
                        const Sizes& stride, const Sizes& padding, const Sizes& dilation,
                        std::size_t groups, bool has_bias, bool needs_dx,
                        const py::object& variant, const std::string& algorithm) {
  const std::size_t dims = static_cast<std::size_t>(w.ndim()) - 2;
  fdl::ConvGeometry g = geometry(spatial_shape(w), stride, padding, dilation);
  g.out_channels = w.shape(0);
  g.in_channels = w.shape(1) * groups;
  g.groups = groups;
  const fdl::Size3 in = widen(spatial_shape(x), 1);
  if (x.ndim() != w.ndim() || dy.ndim() != w.ndim() || std::size_t(x.shape(1)) != g.in_channels ||
      dy.shape(0) != x.shape(0) ||
      output_shape(x.shape(0), g.out_channels, g.out_size(in), dims) !=
          std::vector<py::ssize_t>(dy.shape(), dy.shape() + dy.ndim()))
    throw py::value_error("conv_backward: dy, x and w do not match the geometry");
  const fdl::GemmUkernel& uk = pick_gemm(variant);
  const fdl::ConvGradAlgorithm how = parse_grad_algorithm(algorithm);
  FloatArray dw(std::vector<py::ssize_t>(w.shape(), w.shape() + w.ndim()));
  py::object dx = py::none(), db = py::none();
  float* dx_data = nullptr;
  float* db_data = nullptr;
  if (needs_dx) {
    FloatArray a(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    dx_data = a.mutable_data();
    dx = a;
  }
  if (has_bias) {
    FloatArray a({py::ssize_t(g.out_channels)});
    db_data = a.mutable_data();
    db = a;
  }
  const double work = 2.0 * dy.size() * (g.in_channels / groups) * g.taps();
  run_interruptible(work, [&] {
    fdl::conv_gradients(uk, g, x.data(), w.data(), x.shape(0), in, dy.data(), dx_data,
                        dw.mutable_data(), db_data, false, how);
  });
  return py::make_tuple(dx, dw, db);
}

}  // namespace

void bind_conv(py::module_& m) {
  register_variants("conv", [] { return variants_dict(fdl::conv_variants()); });
  register_variants("depthwise", [] { return variants_dict(fdl::depthwise_variants()); });
  register_variants("winograd", [] { return variants_dict(fdl::winograd_variants()); });
  register_variants("col2im", [] { return variants_dict(fdl::col2im_variants()); });
  register_variants("narrow", [] { return variants_dict(fdl::narrow_variants()); });
  register_variants("implicit_gemm", [] {
    return variants_dict(fdl::implicit_gemm_variants(),
                         [](const fdl::ImplicitGemmVariant& v, py::dict& d) { d["mr"] = v.mr; });
  });
  register_variants("depthwise_backward",
                    [] { return variants_dict(fdl::depthwise_backward_variants()); });
  register_variants("shifted_dots",
                    [] { return variants_dict(fdl::shifted_dots_variants()); });

  py::class_<PyConvPlan>(m, "ConvPlan")
      .def(py::init<const FloatArray&, const py::object&, const Sizes&, const Sizes&,
                    const Sizes&, std::size_t, const py::object&, float, const py::object&,
                    const std::string&>(),
           py::arg("w"), py::arg("b"), py::arg("stride"), py::arg("padding"),
           py::arg("dilation"), py::arg("groups"), py::arg("activation"), py::arg("alpha"),
           py::arg("variant") = py::none(), py::arg("algorithm") = "auto")
      .def("__call__", &PyConvPlan::call, py::arg("x"), py::arg("out") = py::none())
      .def("bind", bind_method<PyConvPlan>(), py::arg("x"), py::arg("out"),
           "call(x, out) bound to their memory (BoundCall).")
      .def("set_weights", &PyConvPlan::set_weights, py::arg("w"), py::arg("b"),
           "Repacks new weights of the same shapes in place.")
      .def("algorithm", &PyConvPlan::algorithm, py::arg("in_sizes"),
           "The algorithm used for inputs of these spatial sizes.")
      .def_property_readonly("kernels", &PyConvPlan::kernels,
                             "The variants this plan runs: gemm, depthwise, winograd, narrow and "
                             "implicit_gemm (None where it has none of that kind).")
      .def_property_readonly("variant", &PyConvPlan::variant);
  py::class_<PyConvChain>(m, "ConvChain",
                          "An optional pointwise expansion, a depthwise and a pointwise "
                          "plan run strip by strip (fastdl/conv_chain.h).")
      .def(py::init<const py::object&, const PyConvPlan&, const PyConvPlan&>(),
           py::arg("expand"), py::arg("depthwise"), py::arg("project"), py::keep_alive<1, 2>(),
           py::keep_alive<1, 3>(), py::keep_alive<1, 4>())
      .def("__call__", &PyConvChain::call, py::arg("x"), py::arg("out") = py::none())
      .def("bind", bind_method<PyConvChain>(), py::arg("x"), py::arg("out"),
           "call(x, out) bound to their memory (BoundCall).")
      .def_static("pays", &fdl::ConvChain::pays, py::arg("expands"), py::arg("channels"),
                  py::arg("height"), py::arg("width"), py::arg("in_channels") = 0,
                  py::arg("out_channels") = 0,
                  "Whether chaining beats the plans one by one for this expanded tensor "
                  "(and block, given its in_channels and out_channels).");
  py::class_<PyConvTransposePlan>(m, "ConvTransposePlan")
      .def(py::init<const FloatArray&, const py::object&, const Sizes&, const Sizes&,
                    const Sizes&, std::size_t, const py::object&, float, const py::object&>(),
           py::arg("w"), py::arg("b"), py::arg("stride"), py::arg("padding"),
           py::arg("dilation"), py::arg("groups"), py::arg("activation"), py::arg("alpha"),
           py::arg("variant") = py::none())
      .def("__call__", &PyConvTransposePlan::call, py::arg("x"), py::arg("output_size"),
           py::arg("out") = py::none())
      .def("set_weights", &PyConvTransposePlan::set_weights, py::arg("w"), py::arg("b"),
           "Repacks new weights of the same shapes in place.")
      .def_property_readonly("variant", &PyConvTransposePlan::variant);
  m.def("conv_backward", &conv_backward, py::arg("dy"), py::arg("x"), py::arg("w"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        py::arg("has_bias") = true, py::arg("needs_dx") = true, py::arg("variant") = py::none(),
        py::arg("algorithm") = "auto",
        "(dx or None, dw, db or None): the gradients of y = conv(x, w) + b from dy (padding "
        "flat (before, after) per axis). variant: the GEMM microkernel; algorithm: 'auto' "
        "(depthwise layers on the direct depthwise kernels of the GEMM's ISA where it has SIMD "
        "ones), 'gemm' or 'depthwise' (forced where the layer is depthwise, the reference "
        "kernels for the reference GEMM).");
}
