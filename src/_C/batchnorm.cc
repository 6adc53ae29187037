// Bindings for batch normalisation: the per-channel affine apply and batch statistics.
#include <pybind11/stl.h>

#include <optional>
#include <vector>

#include "bindings.h"
#include "fastdl/batchnorm.h"

using namespace fastdl_bindings;

void bind_batchnorm(py::module_& m) {
  m.def("batch_norm_apply", [](const FloatArray& x, const FloatArray& scale,
                               const FloatArray& shift, const py::object& act, float alpha) {
    const std::size_t n = x.shape(0), c = x.shape(1), s = x.shape(2);
    const fdl::Activation a = parse_activation(act);
    FloatArray y({n, c, s});
    {
      py::gil_scoped_release release;
      fdl::batch_norm_apply(x.data(), n, c, s, scale.data(), shift.data(), a, alpha,
                            y.mutable_data());
    }
    return y;
  }, py::arg("x"), py::arg("scale"), py::arg("shift"), py::arg("activation"), py::arg("alpha"),
     "x [N, C, S] -> act(x * scale[c] + shift[c]).");

  m.def("batch_norm_inference", [](const FloatArray& x, const FloatArray& mean,
                                   const FloatArray& var, const std::optional<FloatArray>& gamma,
                                   const std::optional<FloatArray>& beta, double eps,
                                   const py::object& act, float alpha) {
    const std::size_t n = x.shape(0), c = x.shape(1), s = x.shape(2);
    const fdl::Activation a = parse_activation(act);
    FloatArray y({n, c, s});
    {
      py::gil_scoped_release release;
      std::vector<float> scale(c), shift(c);
      fdl::batch_norm_scale_shift(mean.data(), var.data(), gamma ? gamma->data() : nullptr,
                                  beta ? beta->data() : nullptr, eps, c, scale.data(),
                                  shift.data());
      fdl::batch_norm_apply(x.data(), n, c, s, scale.data(), shift.data(), a, alpha,
                            y.mutable_data());
    }
    return y;
  }, py::arg("x"), py::arg("mean"), py::arg("var"), py::arg("gamma"), py::arg("beta"),
     py::arg("eps"), py::arg("activation"), py::arg("alpha"),
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
