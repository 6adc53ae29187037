// Bindings for calls bound to their operands: BoundCall (made by the plans' and kernels'
// bind methods) and CallSequence, which runs a list of them in one call from Python with
// the GIL released once -- a model's trace without a Python call per step. Also the
// bound forms of the elementwise steps a model runs between kernels: an n-ary add and a
// strided copy.
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "bindings.h"
#include "fastdl/threadpool.h"

using namespace fastdl_bindings;

namespace {

class CallSequence {
 public:
  explicit CallSequence(std::vector<BoundCallPtr> calls) : calls_(std::move(calls)) {
    for (const BoundCallPtr& c : calls_) {
      if (!c) throw py::value_error("calls: expected BoundCall objects, got None");
      work_ += c->work();
    }
  }
  // Each call in order; Ctrl-C (run_interruptible) stops between calls and inside them.
  void run() const {
    run_interruptible(work_, [&] {
      for (const BoundCallPtr& c : calls_) {
        if (fdl::stop_requested()) return;
        c->run();
      }
    });
  }
  std::size_t size() const { return calls_.size(); }

 private:
  std::vector<BoundCallPtr> calls_;
  double work_ = 0;
};

std::vector<py::ssize_t> shape_of(const py::array& a) {
  return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

// out = inputs[0] + inputs[1] + ... (all of out's shape, C-contiguous float32).
BoundCallPtr bind_add(const std::vector<py::object>& inputs, const py::object& out) {
  if (inputs.size() < 2) throw py::value_error("inputs: expected at least two arrays");
  std::vector<FloatArray> arrays;
  for (const py::object& a : inputs) arrays.push_back(exact_array(a, "inputs"));
  const std::vector<py::ssize_t> shape = shape_of(arrays[0]);
  for (const FloatArray& a : arrays)
    if (shape_of(a) != shape) throw py::value_error("inputs: expected arrays of one shape");
  FloatArray y = bound_output(out, shape);
  std::vector<const float*> data;
  for (const FloatArray& a : arrays) data.push_back(a.data());
  float* yd = y.mutable_data();
  const std::size_t n = static_cast<std::size_t>(y.size());
  py::list keep;
  for (const FloatArray& a : arrays) keep.append(a);
  keep.append(y);
  // Blocks of 4096 floats over the thread pool (a residual add of 75K floats took 11 us on
  // one thread, a twentieth of a 2-thread MobileNetV2 block).
  constexpr std::size_t kBlock = 4096;
  return std::make_shared<BoundCall>([data, yd, n] {
    fdl::parallel_runs((n + kBlock - 1) / kBlock, n * data.size(),
                       [&](std::size_t first, std::size_t count) {
      const std::size_t i0 = first * kBlock, i1 = std::min(n, (first + count) * kBlock);
      const float* a = data[0];
      const float* b = data[1];
      for (std::size_t i = i0; i < i1; ++i) yd[i] = a[i] + b[i];
      for (std::size_t k = 2; k < data.size(); ++k) {
        const float* c = data[k];
        for (std::size_t i = i0; i < i1; ++i) yd[i] += c[i];
      }
    });
  }, 0.0, keep);
}

// dst[...] = src[...] for two arrays of one shape and any strides (views of the arrays the
// caller keeps): rows of the last axis where it is contiguous in both, else float by float.
BoundCallPtr bind_copy(const py::object& src, const py::object& dst) {
  if (!py::isinstance<py::array>(src) || !py::isinstance<py::array>(dst))
    throw py::value_error("src, dst: expected arrays");
  py::array s = py::reinterpret_borrow<py::array>(src);
  py::array d = py::reinterpret_borrow<py::array>(dst);
  const py::dtype f32 = py::dtype::of<float>();
  if (!s.dtype().is(f32) || !d.dtype().is(f32) || !d.writeable())
    throw py::value_error("src, dst: expected float32 arrays, dst writeable");
  if (shape_of(s) != shape_of(d)) throw py::value_error("src, dst: expected one shape");
  const std::size_t ndim = static_cast<std::size_t>(s.ndim());
  std::vector<std::size_t> shape(ndim);
  std::vector<std::ptrdiff_t> ss(ndim), ds(ndim);
  for (std::size_t a = 0; a < ndim; ++a) {
    shape[a] = static_cast<std::size_t>(s.shape(a));
    ss[a] = s.strides(a);
    ds[a] = d.strides(a);
  }
  const char* sp = static_cast<const char*>(s.data());
  char* dp = static_cast<char*>(d.mutable_data());
  if (s.size() == 0) return std::make_shared<BoundCall>([] {}, 0.0, py::make_tuple(s, d));
  return std::make_shared<BoundCall>([shape, ss, ds, sp, dp, ndim] {
    const std::size_t inner = ndim ? shape[ndim - 1] : 1;
    const bool rows = ndim && ss[ndim - 1] == sizeof(float) && ds[ndim - 1] == sizeof(float);
    std::vector<std::size_t> at(ndim ? ndim - 1 : 0, 0);  // index over the outer axes
    for (;;) {
      std::ptrdiff_t so = 0, dof = 0;
      for (std::size_t a = 0; a + 1 < ndim; ++a) {
        so += static_cast<std::ptrdiff_t>(at[a]) * ss[a];
        dof += static_cast<std::ptrdiff_t>(at[a]) * ds[a];
      }
      if (rows) {
        std::memcpy(dp + dof, sp + so, inner * sizeof(float));
      } else {
        const std::ptrdiff_t si = ndim ? ss[ndim - 1] : 0, di = ndim ? ds[ndim - 1] : 0;
        for (std::size_t i = 0; i < inner; ++i)
          std::memcpy(dp + dof + static_cast<std::ptrdiff_t>(i) * di,
                      sp + so + static_cast<std::ptrdiff_t>(i) * si, sizeof(float));
      }
      std::size_t a = at.size();
      while (a > 0 && ++at[a - 1] == shape[a - 1]) at[--a] = 0;
      if (a == 0) return;
    }
  }, 0.0, py::make_tuple(s, d));
}

}  // namespace

void bind_bound_calls(py::module_& m) {
  py::class_<BoundCall, BoundCallPtr>(m, "BoundCall",
      "A kernel call with its operands fixed (a plan's or kernel's bind()); run it with "
      "CallSequence.")
      .def_property_readonly("work", &BoundCall::work);
  py::class_<CallSequence>(m, "CallSequence",
      "Bound calls run in order by one call of run() (the GIL released once).")
      .def(py::init<std::vector<BoundCallPtr>>(), py::arg("calls"))
      .def("run", &CallSequence::run)
      .def("__len__", &CallSequence::size);
  m.def("bind_add", &bind_add, py::arg("inputs"), py::arg("out"),
        "A bound call writing the sum of `inputs` (float32, C-contiguous, one shape) into "
        "`out`.");
  m.def("bind_copy", &bind_copy, py::arg("src"), py::arg("dst"),
        "A bound call copying src into dst (float32 arrays of one shape, any strides).");
}
