// variants("optimizer"): the optimizer update kernels, which fastdl._optimizers (Cython)
// calls through the kernel-API capsule (kernel_api.cc).
#include "bindings.h"
#include "fastdl/optimizer.h"

using namespace fastdl_bindings;

void bind_optimizer(py::module_& m) {
  register_variants("optimizer", [] {
    return variants_dict(fdl::optimizer_variants(),
                         [](const fdl::OptimizerVariant& v, py::dict& d) { d["width"] = v.width; });
  });
}
