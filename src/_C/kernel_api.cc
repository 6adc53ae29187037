// fastdl._C._kernel_api: the capsule through which the Cython modules call the kernels
// linked into this module (see src/kernel_api.h).
#include "../kernel_api.h"

#include "bindings.h"
#include "fastdl/isa.h"

namespace {

const FastdlKernelApi kApi = {
    FastdlKernelApi::kVersion,
    [] { return fdl::isa_name(fdl::active_isa()); },
    [](const fdl::ConvGeometry& g, const fdl::Size3& in) { return g.out_size(in); },
    [](const fdl::ConvGeometry& g, const float* x, const fdl::Size3& in, float* cols) {
      fdl::im2col(g, x, in, cols);
    },
    [](const fdl::ConvGeometry& g, const float* cols, const fdl::Size3& out, float* y) {
      fdl::col2im(g, cols, out, y);
    },
    [] { return &fdl::activation_best(); },
    [](std::size_t n, float* w, const float* g, float* velocity, const fdl::OptimizerStep& s) {
      fdl::sgd_update(fdl::optimizer_best(), n, w, g, velocity, s);
    },
    [](std::size_t n, float* w, const float* g, float* rms, float* mom, float* avg,
       const fdl::OptimizerStep& s) {
      fdl::rmsprop_update(fdl::optimizer_best(), n, w, g, rms, mom, avg, s);
    },
    [](std::size_t n, float* w, const float* g, float* m, float* v, float* vhat,
       const fdl::OptimizerStep& s) {
      fdl::adam_update(fdl::optimizer_best(), n, w, g, m, v, vhat, s);
    },
    [](std::size_t n, float* w, const float* g, float* acc, const fdl::OptimizerStep& s) {
      fdl::adagrad_update(fdl::optimizer_best(), n, w, g, acc, s);
    },
};

}  // namespace

void bind_kernel_api(pybind11::module_& m) {
  namespace py = pybind11;
  m.add_object("_kernel_api",
               py::capsule(static_cast<const void*>(&kApi), FASTDL_KERNEL_API_CAPSULE));
}
