// Bindings for calls bound to their operands: BoundCall (made by the plans' and kernels'
// bind methods) and CallSequence, which runs a list of them in one call from Python with
// the GIL released once -- a model's trace without a Python call per step. Also the
// bound forms of the elementwise steps a model runs between kernels: an n-ary add and a
// strided copy.
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bindings.h"
#include "fastdl/threadpool.h"

using namespace fastdl_bindings;

namespace {

// Whether `a` holds float32, by dtype equivalence: an array unpickled (multiprocessing,
// Dask's transfers) carries its own float32 descriptor object, not numpy's canonical one.
bool holds_float32(const py::array& a) { return py::array_t<float>::check_(a); }

// `strides` = those of `a` in floats, reusing the vector's storage (float32: ValueError
// for strides that are not whole floats, which numpy allows for views of byte buffers).
void read_strides(const py::array& a, std::vector<std::ptrdiff_t>& strides) {
  strides.clear();
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (a.strides(i) % static_cast<py::ssize_t>(sizeof(float)))
      throw py::value_error("src, dst: expected strides of whole floats");
    strides.push_back(a.strides(i) / static_cast<py::ssize_t>(sizeof(float)));
  }
}

std::vector<std::ptrdiff_t> strides_of(const py::array& a) {
  std::vector<std::ptrdiff_t> strides;
  read_strides(a, strides);
  return strides;
}

class CallSequence {
 public:
  explicit CallSequence(std::vector<BoundCallPtr> calls) : calls_(std::move(calls)) {
    for (const BoundCallPtr& c : calls_) {
      if (!c) throw py::value_error("calls: expected BoundCall objects, got None");
      work_ += c->work();
      if (c->input()) {
        slots_.push_back(c->input());
        inputs_ = std::max(inputs_, c->input()->index + 1);
      }
    }
  }
  // Each call in order, the calls bound to input slots reading `inputs`; Ctrl-C
  // (run_interruptible) stops between calls and inside them.
  void run(const std::vector<py::array>& inputs) const {
    if (inputs.size() < inputs_)
      throw py::value_error("inputs: expected at least " + std::to_string(inputs_) +
                            " arrays, got " + std::to_string(inputs.size()));
    for (const std::shared_ptr<InputSlot>& slot : slots_) {
      const py::array& a = inputs[slot->index];
      if (!holds_float32(a) || shape_of(a) != slot->shape)
        throw py::value_error("inputs: array " + std::to_string(slot->index) +
                              " is not float32 of the shape its calls were bound to");
      slot->data = static_cast<const float*>(a.data());
      read_strides(a, slot->strides);  // no allocation after the first run
    }
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
  std::vector<std::shared_ptr<InputSlot>> slots_;
  std::size_t inputs_ = 0;
  double work_ = 0;
};

// dst[...] = src[...] over `shape`, both with strides in floats. The axes run in the order
// of dst's strides, largest outside, so that the inner loop writes consecutive floats
// (NHWC -> NCHW: along W, reading every C-th float); adjacent axes that step alike on both
// sides merge (a channel's H x W plane: one run); a run contiguous on both sides is one
// memcpy.
struct StridedCopy {
  static constexpr std::size_t kMaxAxes = 64;  // numpy's limit (NPY_MAXDIMS)
  // Over the thread pool in pieces of at most kPiece inner floats (a batch of 32 CIFAR
  // images, NHWC -> NCHW: 25 us on one thread, a twentieth of the model's call at 2
  // threads; one 224x224 image: one unit of the outer index, so pieces of its rows).
  static constexpr std::size_t kPiece = 4096;
  std::vector<std::size_t> n;
  std::vector<std::ptrdiff_t> src_strides, dst_strides;
  bool empty = false;
  // What one unit copies: the inner run, or (channels = K, 2 to 4) the K channels side by
  // side that an NHWC -> NCHW copy reads (the inner axis steps K floats through src, the
  // axis outside it 1): each pixel's K floats read once, in order, instead of K strided
  // passes over the rows. Units: every index of the outer axes; pieces: of the inner axis.
  std::size_t channels = 0, outer_axes = 0, units = 1, pieces = 1;

  StridedCopy(const std::vector<py::ssize_t>& shape, const std::vector<std::ptrdiff_t>& ss,
              const std::vector<std::ptrdiff_t>& ds) {
    const std::size_t ndim = shape.size();
    if (ndim > kMaxAxes) throw py::value_error("src, dst: more than 64 axes");
    std::vector<std::size_t> order(ndim);
    for (std::size_t a = 0; a < ndim; ++a) {
      order[a] = a;
      empty = empty || shape[a] == 0;
    }
    std::stable_sort(order.begin(), order.end(), [&](std::size_t p, std::size_t q) {
      return std::abs(ds[p]) > std::abs(ds[q]);
    });
    for (std::size_t k : order) {
      const auto extent = static_cast<std::ptrdiff_t>(shape[k]);
      if (!n.empty() && src_strides.back() == ss[k] * extent &&
          dst_strides.back() == ds[k] * extent) {
        n.back() *= static_cast<std::size_t>(extent);
        src_strides.back() = ss[k];
        dst_strides.back() = ds[k];
        continue;
      }
      n.push_back(static_cast<std::size_t>(extent));
      src_strides.push_back(ss[k]);
      dst_strides.push_back(ds[k]);
    }
    if (n.empty()) {  // a 0-d array: one float
      n.push_back(1);
      src_strides.push_back(1);
      dst_strides.push_back(1);
    }
    const std::size_t axes = n.size();
    if (axes >= 2 && dst_strides[axes - 1] == 1 && src_strides[axes - 2] == 1 &&
        n[axes - 2] >= 2 && n[axes - 2] <= 4 &&
        src_strides[axes - 1] == static_cast<std::ptrdiff_t>(n[axes - 2]))
      channels = n[axes - 2];
    outer_axes = axes - (channels ? 2 : 1);
    for (std::size_t a = 0; a < outer_axes; ++a) units *= n[a];
    pieces = (n[axes - 1] + kPiece - 1) / kPiece;
  }

  void run(const float* src, float* dst) const {
    if (empty) return;
    const std::size_t inner = n.back();
    const std::size_t per_piece = channels ? channels * kPiece : kPiece;
    fdl::parallel_runs(units * pieces, units * pieces * per_piece,
                       [&](std::size_t first, std::size_t count) {
      std::size_t at[kMaxAxes];  // the outer index of the first unit (no allocation per call)
      const float* s = src;
      float* d = dst;
      for (std::size_t a = outer_axes, rest = first / pieces; a-- > 0;) {
        at[a] = rest % n[a];
        rest /= n[a];
        s += src_strides[a] * static_cast<std::ptrdiff_t>(at[a]);
        d += dst_strides[a] * static_cast<std::ptrdiff_t>(at[a]);
      }
      for (std::size_t p = first % pieces, left = count; left > 0; --left) {
        const std::size_t i0 = p * kPiece, i1 = std::min(inner, i0 + kPiece);
        if (channels) {
          switch (channels) {
            case 2: copy_channels<2>(s, d, i0, i1); break;
            case 3: copy_channels<3>(s, d, i0, i1); break;
            default: copy_channels<4>(s, d, i0, i1); break;
          }
        } else {
          copy_run(s, d, i0, i1);
        }
        if (++p < pieces) continue;
        p = 0;
        for (std::size_t a = outer_axes; a > 0; --a) {  // step the innermost outer axis
          s += src_strides[a - 1];
          d += dst_strides[a - 1];
          if (++at[a - 1] < n[a - 1]) break;
          s -= src_strides[a - 1] * static_cast<std::ptrdiff_t>(n[a - 1]);
          d -= dst_strides[a - 1] * static_cast<std::ptrdiff_t>(n[a - 1]);
          at[a - 1] = 0;
        }
      }
    });
  }

 private:
  // Elements [i0, i1) of the inner axis.
  void copy_run(const float* src, float* dst, std::size_t i0, std::size_t i1) const {
    const std::size_t ndim = n.size();
    const std::ptrdiff_t si = src_strides[ndim - 1], di = dst_strides[ndim - 1];
    if (si == 1 && di == 1) {
      std::memcpy(dst + i0, src + i0, (i1 - i0) * sizeof(float));
      return;
    }
    for (std::size_t i = i0; i < i1; ++i)
      dst[static_cast<std::ptrdiff_t>(i) * di] = src[static_cast<std::ptrdiff_t>(i) * si];
  }
  // Elements [i0, i1) of the two inner axes of K interleaved channels:
  // dst[c][i] = src[i * K + c].
  template <std::size_t K>
  void copy_channels(const float* src, float* dst, std::size_t i0, std::size_t i1) const {
    deinterleave<K>(src + i0 * K, dst + i0, dst_strides[n.size() - 2], i1 - i0);
  }
  // Written for the vectorizer: restrict pointers, the channel loop innermost and fixed.
  // Not inlined: inlined into run(), the restrict went and the loop ran scalar (CIFAR batch
  // 32, 1 thread: 16.3 us against 12.4).
  template <std::size_t K>
  [[gnu::noinline]] static void deinterleave(const float* __restrict src,
                                             float* __restrict dst, std::ptrdiff_t dc,
                                             std::size_t count) {
    for (std::size_t i = 0; i < count; ++i)
      for (std::size_t c = 0; c < K; ++c)
        dst[static_cast<std::ptrdiff_t>(c) * dc + static_cast<std::ptrdiff_t>(i)] =
            src[i * K + c];
  }
};


py::array writeable_float32(const py::object& obj, const char* name) {
  if (!py::isinstance<py::array>(obj))
    throw py::value_error(std::string(name) + ": expected an array");
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (!holds_float32(a) || !a.writeable())
    throw py::value_error(std::string(name) + ": expected a writeable float32 array");
  return a;
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
// caller keeps).
BoundCallPtr bind_copy(const py::object& src, const py::object& dst) {
  if (!py::isinstance<py::array>(src)) throw py::value_error("src, dst: expected arrays");
  py::array s = py::reinterpret_borrow<py::array>(src);
  py::array d = writeable_float32(dst, "src, dst");
  if (!holds_float32(s)) throw py::value_error("src, dst: expected float32");
  if (shape_of(s) != shape_of(d)) throw py::value_error("src, dst: expected one shape");
  const float* sp = static_cast<const float*>(s.data());
  float* dp = static_cast<float*>(d.mutable_data());
  const StridedCopy copy(shape_of(s), strides_of(s), strides_of(d));
  return std::make_shared<BoundCall>([copy, sp, dp] { copy.run(sp, dp); }, 0.0,
                                     py::make_tuple(s, d));
}

// dst[...] = the index-th array CallSequence::run is given (of dst's shape, any strides):
// a model input copied (and converted, through a permuted view dst) into a buffer.
BoundCallPtr bind_input_copy(std::size_t index, const py::object& dst) {
  py::array d = writeable_float32(dst, "dst");
  auto slot = std::make_shared<InputSlot>();
  slot->index = index;
  slot->shape = shape_of(d);
  const std::vector<std::ptrdiff_t> ds = strides_of(d);
  float* dp = static_cast<float*>(d.mutable_data());
  const InputSlot* in = slot.get();
  // Planned again only when the input's strides change (a model's input: every run alike).
  auto plan = std::make_shared<std::unique_ptr<StridedCopy>>();
  auto planned_for = std::make_shared<std::vector<std::ptrdiff_t>>();
  return std::make_shared<BoundCall>([ds, dp, in, plan, planned_for] {
    if (!*plan || *planned_for != in->strides) {
      *plan = std::make_unique<StridedCopy>(in->shape, in->strides, ds);
      *planned_for = in->strides;
    }
    (*plan)->run(in->data, dp);
  }, 0.0, d, slot);
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
      .def("run", &CallSequence::run, py::arg("inputs") = std::vector<py::array>{},
           "Runs the calls; `inputs`: the arrays the calls bound with bind_input_copy read.")
      .def("__len__", &CallSequence::size);
  m.def("bind_add", &bind_add, py::arg("inputs"), py::arg("out"),
        "A bound call writing the sum of `inputs` (float32, C-contiguous, one shape) into "
        "`out`.");
  m.def("bind_copy", &bind_copy, py::arg("src"), py::arg("dst"),
        "A bound call copying src into dst (float32 arrays of one shape, any strides).");
  m.def("bind_input_copy", &bind_input_copy, py::arg("index"), py::arg("dst"),
        "A bound call copying the index-th array of CallSequence.run's inputs (dst's "
        "shape, float32, any strides) into dst.");
}
