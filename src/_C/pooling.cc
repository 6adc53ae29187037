// Bindings for pooling (fdl::pool): max_pool / avg_pool over 1, 2 or 3 spatial axes, and
// variants("pool"). Arguments were validated by fastdl/ops/pooling.py.
#include <pybind11/stl.h>

#include <cstdint>
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

// Runs the pool on every (n, c) plane of x; returns y, or (y, indices).
py::object run(const FloatArray& x, const fdl::PoolParams& p, bool return_indices,
               const py::object& variant) {
  const fdl::PoolVariant& v = pick_pool(variant);
  std::vector<py::ssize_t> shape = {x.shape(0), x.shape(1)};
  for (int a = 3 - (static_cast<int>(x.ndim()) - 2); a < 3; ++a)
    shape.push_back(static_cast<py::ssize_t>(p.out_size(a)));
  FloatArray y(shape);
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

}  // namespace

void bind_pooling(py::module_& m) {
  register_variants("pool", [] { return variants_dict(fdl::pool_variants()); });

  m.def("max_pool",
        [](const FloatArray& x, const Sizes& kernel_size, const Sizes& stride,
           const Sizes& padding, const Sizes& dilation, bool ceil_mode, bool return_indices,
           const py::object& variant) {
          const auto p = geometry(fdl::PoolKind::kMax, x, kernel_size, stride, padding,
                                  dilation, ceil_mode);
          return run(x, p, return_indices, variant);
        },
        py::arg("x"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("ceil_mode"), py::arg("return_indices"),
        py::arg("variant") = py::none(),
        "Max pooling of x [N, C, *spatial]: y, or (y, int64 flat indices into each plane).");
  m.def("avg_pool",
        [](const FloatArray& x, const Sizes& kernel_size, const Sizes& stride,
           const Sizes& padding, bool ceil_mode, bool count_include_pad,
           const py::object& divisor_override, const py::object& variant) {
          auto p = geometry(fdl::PoolKind::kAvg, x, kernel_size, stride, padding,
                            Sizes(kernel_size.size(), 1), ceil_mode);
          p.count_include_pad = count_include_pad;
          if (!divisor_override.is_none())
            p.divisor_override = divisor_override.cast<std::int64_t>();
          return run(x, p, false, variant);
        },
        py::arg("x"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
        py::arg("ceil_mode"), py::arg("count_include_pad"), py::arg("divisor_override"),
        py::arg("variant") = py::none(), "Average pooling of x [N, C, *spatial].");
}
