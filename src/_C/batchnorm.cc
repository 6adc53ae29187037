// Bindings for batch normalisation: the per-channel affine apply, batch statistics, the
// gradient and variants("batchnorm").
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

// (dx or None, dgamma or None, dbeta or None): fdl::batch_norm_backward on x, dy [N, C, S].
py::tuple backward(const FloatArray& dy, const FloatArray& x, const FloatArray& mean,
                   const FloatArray& inv_std, const std::optional<FloatArray>& gamma,
                   bool training, bool needs_dx, bool needs_params, const py::object& variant) {
  if (x.ndim() != 3 || dy.ndim() != 3 || !std::equal(x.shape(), x.shape() + 3, dy.shape()))
    throw py::value_error("batch_norm_backward: dy and x must be [N, C, S] of one shape");
  const std::size_t n = x.shape(0), c = x.shape(1), s = x.shape(2);
  for (const FloatArray* v : {&mean, &inv_std, gamma ? &*gamma : &mean})
    if (v->ndim() != 1 || std::size_t(v->shape(0)) != c)
      throw py::value_error("batch_norm_backward: mean, inv_std and gamma must be [C]");
  const auto& table = fdl::batchnorm_variants();
  const fdl::BatchNormVariant& v = pick_variant(table, fdl::best_variant(table), variant,
                                                "batch norm");
  py::object dx = py::none(), dgamma = py::none(), dbeta = py::none();
  float *dx_p = nullptr, *dg_p = nullptr, *db_p = nullptr;
  if (needs_dx) {
    FloatArray a({n, c, s});
    dx_p = a.mutable_data();
    dx = a;
  }
  if (needs_params) {
    FloatArray g(c), b(c);
    dg_p = g.mutable_data();
    db_p = b.mutable_data();
    dgamma = g;
    dbeta = b;
  }
  {
    py::gil_scoped_release release;
    fdl::batch_norm_backward(x.data(), dy.data(), n, c, s, mean.data(), inv_std.data(),
                             gamma ? gamma->data() : nullptr, training, dx_p, dg_p, db_p, &v);
  }
  return py::make_tuple(dx, dgamma, dbeta);
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

  m.def("batch_norm_backward", &backward, py::arg("dy"), py::arg("x"), py::arg("mean"),
        py::arg("inv_std"), py::arg("gamma"), py::arg("training"), py::arg("needs_dx"),
        py::arg("needs_params"), py::arg("variant") = py::none(),
        "The gradients (dx or None, dgamma or None, dbeta or None) of batch norm over "
        "x [N, C, S] from dy, normalised with mean [C] and inv_std [C] (the batch's own "
        "when training: dx then includes the paths through them), gamma [C] or None (1).");
}
