// The kernels' entry points the Cython modules (fastdl._im2col, fastdl._losses,
// fastdl._optimizers) call.
//
// Only fastdl._C links the kernel library; it exports this table as the capsule
// "fastdl._C._kernel_api", and the Cython modules call through it. So the process holds one
// copy of the kernels and of their state (the active ISA, the thread pool): capping the ISA
// or resizing the pool through fastdl._C changes what every module runs. (A module that
// called a kernel directly would fail to import with an undefined symbol: it links none.)
// Chosen over a shared kernel library because nothing changes for the loader, wheels or
// editable installs: no rpath, no extra .so to ship or find.
//
// Add an entry at the end when a Cython module needs another kernel, and bump kVersion.
#pragma once

#include <Python.h>

#include "fastdl/activation.h"
#include "fastdl/conv.h"
#include "fastdl/optimizer.h"

struct FastdlKernelApi {
  static constexpr int kVersion = 2;
  int version;
  // fastdl/isa.h: the ISA the kernels use now ("avx512", "avx2", "neon", "ref").
  const char* (*active_isa)();
  // fastdl/conv.h.
  fdl::Size3 (*conv_out_size)(const fdl::ConvGeometry& g, const fdl::Size3& in);
  void (*im2col)(const fdl::ConvGeometry& g, const float* x, const fdl::Size3& in, float* cols);
  void (*col2im)(const fdl::ConvGeometry& g, const float* cols, const fdl::Size3& out, float* y);
  // fastdl/activation.h: the active ISA's activation kernels.
  const fdl::ActivationVariant* (*activation_best)();
  // fastdl/optimizer.h: the active ISA's updates, split over the thread pool.
  void (*sgd_update)(std::size_t n, float* w, const float* g, float* velocity,
                     const fdl::OptimizerStep& s);
  void (*rmsprop_update)(std::size_t n, float* w, const float* g, float* rms, float* mom,
                         float* avg, const fdl::OptimizerStep& s);
  void (*adam_update)(std::size_t n, float* w, const float* g, float* m, float* v, float* vhat,
                      const fdl::OptimizerStep& s);
  void (*adagrad_update)(std::size_t n, float* w, const float* g, float* acc,
                         const fdl::OptimizerStep& s);
};

#define FASTDL_KERNEL_API_CAPSULE "fastdl._C._kernel_api"

// The table, imported from fastdl._C on first use; null with a Python exception set if it
// cannot be had (call with the GIL held, e.g. at module import).
static inline const FastdlKernelApi* fastdl_kernel_api() {
  static const FastdlKernelApi* api = nullptr;
  if (api) return api;
  const auto* table =
      static_cast<const FastdlKernelApi*>(PyCapsule_Import(FASTDL_KERNEL_API_CAPSULE, 0));
  if (!table) return nullptr;
  if (table->version != FastdlKernelApi::kVersion) {
    PyErr_SetString(PyExc_ImportError,
                    "fastdl._C and the Cython modules were built from different sources: "
                    "reinstall fastdl");
    return nullptr;
  }
  api = table;
  return api;
}
