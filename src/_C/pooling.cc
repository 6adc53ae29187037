// Bindings for pooling (fdl::pool): max_pool / avg_pool over 1, 2 or 3 spatial axes, their
// gradients max_pool_backward / max_pool_input_backward / avg_pool_backward, the 2x2/2
// max pooling with window codes (max_pool_2x2_codes and its backward), and
// variants("pool"). Arguments were
// validated by fastdl/ops/pooling.py; what would make a kernel read or write out of bounds
// on a direct call (a gradient of the wrong shape, an index outside its plane) still raises.
#include <pybind11/stl.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "bindings.h"
#include "fastdl/isa.h"
#include "fastdl/pool.h"

using namespace fastdl_bindings;

namespace {

using Sizes = std::vector<std::size_t>;  // one entry per spatial axis

const fdl::PoolVariant& pick_pool(const py::object& name) {
  return pick_variant(fdl::pool_variants(), fdl::pool_best(), name, "pooling");
}

// x [N, C, *spatial] with 1 to 3 spatial axes; the leading axes of PoolParams stay 1.
fdl::PoolParams geometry(fdl::PoolKind kind, const FloatArray& x, const Sizes& kernel,
                         const Sizes& stride, const Sizes& padding, const Sizes& dilation,
                         bool ceil_mode) {
  const std::size_t dims = static_cast<std::size_t>(x.ndim()) - 2, lead = 3 - dims;
  fdl::PoolParams p;
  p.kind = kind;
  p.ceil_mode = ceil_mode;
  for (std::size_t a = 0; a < dims; ++a) {
    p.in_size[lead + a] = static_cast<std::size_t>(x.shape(2 + a));
    p.kernel[lead + a] = kernel[a];
    p.stride[lead + a] = stride[a];
    p.pad[lead + a] = padding[a];
    p.dilation[lead + a] = dilation[a];
  }
  return p;
}

// y's shape [N, C, *out] for x [N, C, *spatial].
std::vector<py::ssize_t> output_shape(const FloatArray& x, const fdl::PoolParams& p) {
  std::vector<py::ssize_t> shape = {x.shape(0), x.shape(1)};
  for (int a = 3 - (static_cast<int>(x.ndim()) - 2); a < 3; ++a)
    shape.push_back(static_cast<py::ssize_t>(p.out_size(a)));
  return shape;
}

fdl::PoolParams avg_geometry(const FloatArray& x, const Sizes& kernel, const Sizes& stride,
                             const Sizes& padding, bool ceil_mode, bool count_include_pad,
                             const py::object& divisor_override) {
  auto p = geometry(fdl::PoolKind::kAvg, x, kernel, stride, padding, Sizes(kernel.size(), 1),
                    ceil_mode);
  p.count_include_pad = count_include_pad;
  if (!divisor_override.is_none()) p.divisor_override = divisor_override.cast<std::int64_t>();
  return p;
}

// Runs the pool on every (n, c) plane of x; returns y (into `out` when given), or (y,
// indices).
py::object run(const FloatArray& x, const fdl::PoolParams& p, bool return_indices,
               const py::object& variant, const py::object& out) {
  const fdl::PoolVariant& v = pick_pool(variant);
  const std::vector<py::ssize_t> shape = output_shape(x, p);
  FloatArray y = output_array(out, shape);
  py::array_t<std::int64_t> indices;
  if (return_indices) indices = py::array_t<std::int64_t>(shape);
  std::int64_t* index_data = return_indices ? indices.mutable_data() : nullptr;
  const std::size_t planes = static_cast<std::size_t>(x.shape(0) * x.shape(1));
  {
    py::gil_scoped_release release;
    fdl::pool(p, planes, x.data(), y.mutable_data(), index_data, &v);
  }
  if (return_indices) return py::make_tuple(y, indices);
  return std::move(y);
}

// The pool of x into out, bound to their memory.
BoundCallPtr bind(const py::object& x_obj, const fdl::PoolParams& p, const py::object& out) {
  FloatArray x = exact_array(x_obj, "x");
  FloatArray y = bound_output(out, output_shape(x, p));
  const fdl::PoolVariant* v = &fdl::pool_best();
  const std::size_t planes = static_cast<std::size_t>(x.shape(0) * x.shape(1));
  const float* xd = x.data();
  float* yd = y.mutable_data();
  return std::make_shared<BoundCall>([p, planes, xd, yd, v] {
    fdl::pool(p, planes, xd, yd, nullptr, v);
  }, double(x.size()), py::make_tuple(x, y));
}

// The shape [N, C, *spatial] of an array of planes like `like` ([N, C, ...]).
std::vector<py::ssize_t> planes_shape(const FloatArray& like, const Sizes& spatial) {
  std::vector<py::ssize_t> shape = {like.shape(0), like.shape(1)};
  for (std::size_t n : spatial) shape.push_back(static_cast<py::ssize_t>(n));
  return shape;
}

std::string shape_str(const std::vector<py::ssize_t>& shape) {
  std::ostringstream s;
  s << "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << (shape.size() == 1 ? ",)" : ")");
  return s.str();
}


// ValueError unless dy is [N, C, *spatial] with 1 to 3 spatial axes, as many as `spatial`.
void check_planes(const FloatArray& dy, const Sizes& spatial) {
  if (dy.ndim() < 3 || dy.ndim() > 5 || spatial.size() != static_cast<std::size_t>(dy.ndim() - 2))
    throw py::value_error("dy: expected [N, C, *spatial] with as many spatial axes as "
                          "input_spatial_shape (1 to 3), got shape " + shape_str(shape_of(dy)));
}

using IndexArray = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

FloatArray max_pool_backward(const FloatArray& dy, const IndexArray& indices,
                             const Sizes& spatial) {
  check_planes(dy, spatial);
  if (shape_of(indices) != shape_of(dy))
    throw py::value_error("indices: expected the shape of dy " + shape_str(shape_of(dy)) +
                          ", got " + shape_str(shape_of(indices)));
  FloatArray dx(planes_shape(dy, spatial));
  const std::size_t planes = static_cast<std::size_t>(dy.shape(0) * dy.shape(1));
  std::size_t in_plane = 1, out_plane = 1;
  for (std::size_t n : spatial) in_plane *= n;
  for (int a = 2; a < dy.ndim(); ++a) out_plane *= static_cast<std::size_t>(dy.shape(a));
  std::size_t skipped;
  {
    py::gil_scoped_release release;
    skipped = fdl::max_pool_backward(planes, in_plane, out_plane, dy.data(), indices.data(),
                                     dx.mutable_data());
  }
  if (skipped) {  // name the first one, as fastdl's other backends do
    const std::int64_t* i = indices.data();
    while (*i >= 0 && static_cast<std::size_t>(*i) < in_plane) ++i;
    const std::vector<py::ssize_t> plane(spatial.begin(), spatial.end());
    throw py::value_error("indices: expected flat positions in [0, " + std::to_string(in_plane) +
                          ") of an input plane " + shape_str(plane) + ", got " +
                          std::to_string(*i));
  }
  return dx;
}

}  // namespace

void bind_pooling(py::module_& m) {
  register_variants("pool", [] { return variants_dict(fdl::pool_variants()); });

  m.def("max_pool",
        [](const FloatArray& x, const Sizes& kernel_size, const Sizes& stride,
           const Sizes& padding, const Sizes& dilation, bool ceil_mode, bool return_indices,
           const py::object& out, const py::object& variant) {
          const auto p = geometry(fdl::PoolKind::kMax, x, kernel_size, stride, padding,
                                  dilation, ceil_mode);
          return run(x, p, return_indices, variant, out);
        },
        py::arg("x"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("ceil_mode"), py::arg("return_indices"),
        py::arg("out") = py::none(), py::arg("variant") = py::none(),
        "Max pooling of x [N, C, *spatial]: y, or (y, int64 flat indices into each plane).");
  m.def("avg_pool",
        [](const FloatArray& x, const Sizes& kernel_size, const Sizes& stride,
           const Sizes& padding, bool ceil_mode, bool count_include_pad,
           const py::object& divisor_override, const py::object& out,
           const py::object& variant) {
          return run(x, avg_geometry(x, kernel_size, stride, padding, ceil_mode,
                                     count_include_pad, divisor_override),
                     false, variant, out);
        },
        py::arg("x"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
        py::arg("ceil_mode"), py::arg("count_include_pad"), py::arg("divisor_override"),
        py::arg("out") = py::none(), py::arg("variant") = py::none(),
        "Average pooling of x [N, C, *spatial] (into `out` when given).");
  m.def("bind_max_pool",
        [](const py::object& x, const Sizes& kernel_size, const Sizes& stride,
           const Sizes& padding, const Sizes& dilation, bool ceil_mode, const py::object& out) {
          const auto p = geometry(fdl::PoolKind::kMax, exact_array(x, "x"), kernel_size, stride,
                                  padding, dilation, ceil_mode);
          return bind(x, p, out);
        },
        py::arg("x"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("ceil_mode"), py::arg("out"),
        "max_pool(x, ..., out=out) bound to x's and out's memory (BoundCall).");
  m.def("bind_avg_pool",
        [](const py::object& x, const Sizes& kernel_size, const Sizes& stride,
           const Sizes& padding, bool ceil_mode, bool count_include_pad,
           const py::object& divisor_override, const py::object& out) {
          return bind(x, avg_geometry(exact_array(x, "x"), kernel_size, stride, padding,
                                      ceil_mode, count_include_pad, divisor_override), out);
        },
        py::arg("x"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
        py::arg("ceil_mode"), py::arg("count_include_pad"), py::arg("divisor_override"),
        py::arg("out"), "avg_pool(x, ..., out=out) bound to x's and out's memory (BoundCall).");

  m.def("max_pool_input_backward",
        [](const FloatArray& x, const FloatArray& dy, const Sizes& kernel_size,
           const Sizes& stride, const Sizes& padding, const Sizes& dilation, bool ceil_mode,
           const py::object& variant) {
          const auto p = geometry(fdl::PoolKind::kMax, x, kernel_size, stride, padding,
                                  dilation, ceil_mode);
          std::vector<py::ssize_t> out = {x.shape(0), x.shape(1)};
          for (int a = 3 - (static_cast<int>(x.ndim()) - 2); a < 3; ++a)
            out.push_back(static_cast<py::ssize_t>(p.out_size(a)));
          if (shape_of(dy) != out)
            throw py::value_error("dy: expected the shape of max_pool's output " +
                                  shape_str(out) + ", got " + shape_str(shape_of(dy)));
          const fdl::PoolVariant& v = pick_pool(variant);
          FloatArray dx(shape_of(x));
          const std::size_t planes = static_cast<std::size_t>(x.shape(0) * x.shape(1));
          {
            py::gil_scoped_release release;
            fdl::max_pool_input_backward(p, planes, x.data(), dy.data(), dx.mutable_data(), &v);
          }
          return dx;
        },
        py::arg("x"), py::arg("dy"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"),
        py::arg("variant") = py::none(),
        "The gradient of max pooling from its input x [N, C, *spatial] (max_pool's geometry "
        "arguments): dx = dy at the taps max_pool's indices would name, 0 elsewhere.");
  m.def("max_pool_2x2_codes",
        [](const FloatArray& x, bool relu_gate, const py::object& variant) {
          if (x.ndim() != 4 || x.shape(2) % 2 || x.shape(3) % 2)
            throw py::value_error("x: expected [N, C, H, W] with even H and W, got shape " +
                                  shape_str(shape_of(x)));
          const auto p = geometry(fdl::PoolKind::kMax, x, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false);
          const fdl::PoolVariant& v = pick_pool(variant);
          const std::vector<py::ssize_t> out = {x.shape(0), x.shape(1), x.shape(2) / 2,
                                                x.shape(3) / 2};
          FloatArray y(out), codes(out);
          const std::size_t planes = static_cast<std::size_t>(x.shape(0) * x.shape(1));
          if (x.size() > 0) {
            py::gil_scoped_release release;
            fdl::max_pool_codes(p, planes, x.data(), y.mutable_data(), codes.mutable_data(),
                                relu_gate, &v);
          }
          return py::make_tuple(y, codes);
        },
        py::arg("x"), py::arg("relu_gate") = false, py::arg("variant") = py::none(),
        "Max pooling of x [N, C, H, W] (even H, W) over 2x2 windows at stride 2: (y, codes), "
        "codes the float tap code per window (fdl::MaxPoolCodesFn).");
  m.def("max_pool_2x2_codes_backward",
        [](const FloatArray& dy, const FloatArray& codes, const py::object& variant) {
          if (dy.ndim() != 4)
            throw py::value_error("dy: expected [N, C, OH, OW], got shape " +
                                  shape_str(shape_of(dy)));
          if (shape_of(codes) != shape_of(dy))
            throw py::value_error("codes: expected the shape of dy " + shape_str(shape_of(dy)) +
                                  ", got " + shape_str(shape_of(codes)));
          const fdl::PoolVariant& v = pick_pool(variant);
          FloatArray dx(std::vector<py::ssize_t>{dy.shape(0), dy.shape(1), 2 * dy.shape(2),
                                                 2 * dy.shape(3)});
          const auto p = geometry(fdl::PoolKind::kMax, dx, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false);
          const std::size_t planes = static_cast<std::size_t>(dy.shape(0) * dy.shape(1));
          if (dx.size() > 0) {
            py::gil_scoped_release release;
            fdl::max_pool_codes_backward(p, planes, codes.data(), dy.data(), dx.mutable_data(),
                                         &v);
          }
          return dx;
        },
        py::arg("dy"), py::arg("codes"), py::arg("variant") = py::none(),
        "The gradient of max_pool_2x2_codes: dx [N, C, 2 OH, 2 OW], each window's dy at the "
        "tap its code names, 0 elsewhere.");
  m.def("max_pool_backward", &max_pool_backward, py::arg("dy"), py::arg("indices"),
        py::arg("input_spatial_shape"),
        "The gradient of max pooling: dx [N, C, *input_spatial_shape] = 0, then dy added at "
        "max_pool's int64 indices (the shape of dy), plane by plane.");
  m.def("avg_pool_backward",
        [](const FloatArray& dy, const Sizes& input_spatial_shape, const Sizes& kernel_size,
           const Sizes& stride, const Sizes& padding, bool ceil_mode, bool count_include_pad,
           const py::object& divisor_override, const py::object& variant) {
          check_planes(dy, input_spatial_shape);
          const std::size_t dims = input_spatial_shape.size();
          if (kernel_size.size() != dims || stride.size() != dims || padding.size() != dims)
            throw py::value_error("kernel_size, stride, padding: expected one entry per "
                                  "spatial axis");
          const fdl::PoolVariant& v = pick_pool(variant);
          FloatArray dx(planes_shape(dy, input_spatial_shape));
          auto p = geometry(fdl::PoolKind::kAvg, dx, kernel_size, stride, padding,
                            Sizes(kernel_size.size(), 1), ceil_mode);
          p.count_include_pad = count_include_pad;
          if (!divisor_override.is_none())
            p.divisor_override = divisor_override.cast<std::int64_t>();
          std::vector<py::ssize_t> out = {dy.shape(0), dy.shape(1)};
          for (int a = 3 - static_cast<int>(input_spatial_shape.size()); a < 3; ++a)
            out.push_back(static_cast<py::ssize_t>(p.out_size(a)));
          if (out != shape_of(dy))
            throw py::value_error("dy: expected the pooling's output shape " + shape_str(out) +
                                  ", got " + shape_str(shape_of(dy)));
          {
            py::gil_scoped_release release;
            fdl::avg_pool_backward(p, static_cast<std::size_t>(dy.shape(0) * dy.shape(1)),
                                   dy.data(), dx.mutable_data(), &v);
          }
          return dx;
        },
        py::arg("dy"), py::arg("input_spatial_shape"), py::arg("kernel_size"),
        py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
        py::arg("count_include_pad"), py::arg("divisor_override"),
        py::arg("variant") = py::none(),
        "The gradient of average pooling: dy [N, C, *out] -> dx [N, C, *input_spatial_shape], "
        "each output's gradient over its divisor added to its window's input taps.");
}
