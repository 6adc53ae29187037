// Bindings for batch normalisation: the per-channel affine apply, batch statistics and
// variants("batchnorm").
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "bindings.h"
#include "fastdl/batchnorm.h"

using namespace fastdl_bindings;

namespace {

// y = act(x * scale[c] + shift[c]) for x [N, C, S], the per-channel vectors from
// fill(scale, shift) (called without the GIL).
template <class Fill>
FloatArray apply(const FloatArray& x, const py::object& act, float alpha,
                 const py::object& variant, Fill fill) {
  const std::size_t n = x.shape(0), c = x.shape(1), s = x.shape(2);
  const fdl::Activation a = parse_activation(act);
  const auto& table = fdl::batchnorm_variants();
  const fdl::BatchNormVariant& v = pick_variant(table, fdl::best_variant(table), variant,
                                                "batch norm");
  FloatArray y({n, c, s});
  {
    py::gil_scoped_release release;
    std::vector<float> scale(c), shift(c);
    fill(scale.data(), shift.data());
    fdl::batch_norm_apply(x.data(), n, c, s, scale.data(), shift.data(), a, alpha,
                          y.mutable_data(), &v);
  }
  return y;
}

}  // namespace

void bind_batchnorm(py::module_& m) {
  register_variants("batchnorm", [] { return variants_dict(fdl::batchnorm_variants()); });

  m.def("batch_norm_apply", [](const FloatArray& x, const FloatArray& scale,
                               const FloatArray& shift, const py::object& act, float alpha,
                               const py::object& variant) {
    return apply(x, act, alpha, variant, [&](float* sc, float* sh) {
      std::copy(scale.data(), scale.data() + scale.size(), sc);
      std::copy(shift.data(), shift.data() + shift.size(), sh);
    });
  }, py::arg("x"), py::arg("scale"), py::arg("shift"), py::arg("activation"), py::arg("alpha"),
     py::arg("variant") = py::none(), "x [N, C, S] -> act(x * scale[c] + shift[c]).");

  m.def("batch_norm_inference", [](const FloatArray& x, const FloatArray& mean,
                                   const FloatArray& var, const std::optional<FloatArray>& gamma,
                                   const std::optional<FloatArray>& beta, double eps,
                                   const py::object& act, float alpha,
                                   const py::object& variant) {
    return apply(x, act, alpha, variant, [&](float* scale, float* shift) {
      fdl::batch_norm_scale_shift(mean.data(), var.data(), gamma ? gamma->data() : nullptr,
                                  beta ? beta->data() : nullptr, eps, mean.size(), scale,
                                  shift);
    });
  }, py::arg("x"), py::arg("mean"), py::arg("var"), py::arg("gamma"), py::arg("beta"),
     py::arg("eps"), py::arg("activation"), py::arg("alpha"), py::arg("variant") = py::none(),
     "x [N, C, S] -> act((x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c]), the "
     "per-channel scale and shift computed in double.");

  m.def("batch_norm_statistics", [](const FloatArray& x) {
    const std::size_t n = x.shape(0), c = x.shape(1), s = x.shape(2);
    py::array_t<double> mean(c), variance(c);
    {
      py::gil_scoped_release release;
      fdl::batch_norm_statistics(x.data(), n, c, s, mean.mutable_data(),
                                 variance.mutable_data());
    }
    return py::make_tuple(mean, variance);
  }, py::arg("x"), "Per-channel mean and biased variance (float64) of x [N, C, S].");
}
