// Bindings for LSTM/GRU: RnnPlan (a stack of layers, packed once) and variants("rnn").
// Arguments were validated by fastdl/ops/rnn.py.
#include <pybind11/stl.h>

#include <memory>
#include <vector>

#include "bindings.h"
#include "fastdl/rnn.h"

using namespace fastdl_bindings;

namespace {

// Views of one (w_ih, w_hh, b_ih or None, b_hh or None) per layer and direction; the
// arrays stay alive as long as this object.
class WeightViews {
 public:
  WeightViews(const py::list& weights, std::size_t expected) {
    if (weights.size() != expected)
      throw py::value_error("weights: expected " + std::to_string(expected) +
                            " (w_ih, w_hh, b_ih, b_hh) tuples, got " +
                            std::to_string(weights.size()));
    keep_.reserve(4 * weights.size());
    for (const auto& item : weights) {
      const py::tuple t = item.cast<py::tuple>();
      views_.push_back({ptr(t[0]), ptr(t[1]), ptr(t[2]), ptr(t[3])});
    }
  }
  const fdl::RnnWeights* data() const { return views_.data(); }

 private:
  const float* ptr(const py::handle& h) {
    if (h.is_none()) return nullptr;
    keep_.push_back(h.cast<FloatArray>());
    return keep_.back().data();
  }
  std::vector<FloatArray> keep_;
  std::vector<fdl::RnnWeights> views_;
};

class PyRnnPlan {
 public:
  // weights: one (w_ih, w_hh, b_ih or None, b_hh or None) per layer and direction, in
  // torch's parameter order (layer 0 forward, layer 0 reverse, layer 1 forward, ...).
  PyRnnPlan(const std::string& kind, const py::list& weights, std::size_t input,
            std::size_t hidden, std::size_t layers, bool bidirectional,
            const py::object& variant, const py::object& gemm_variant)
      : hidden_(hidden), layers_(layers), dirs_(bidirectional ? 2 : 1) {
    if (kind != "lstm" && kind != "gru")
      throw py::value_error("kind: expected 'lstm' or 'gru', got '" + kind + "'");
    kind_ = kind == "lstm" ? fdl::RnnKind::kLstm : fdl::RnnKind::kGru;
    const WeightViews views(weights, layers * dirs_);
    const fdl::RnnVariant& v = pick_variant(fdl::rnn_variants(), fdl::rnn_best(), variant, "RNN");
    plan_ = std::make_unique<fdl::RnnPlan>(kind_, input, hidden, layers, bidirectional,
                                           views.data(), &v, &pick_gemm(gemm_variant));
  }

  void set_weights(const py::list& weights) {
    const WeightViews views(weights, layers_ * dirs_);
    py::gil_scoped_release release;
    plan_->set_weights(views.data());
  }

  // x [T, B, input]; h0, c0 [layers * D, B, H] or None -> (y [T, B, D * H], h_n, c_n or None).
  // y goes into `out` when given.
  py::tuple call(const FloatArray& x, const py::object& h0, const py::object& c0,
                 const py::object& out) const {
    const std::size_t T = x.shape(0), B = x.shape(1);
    const bool lstm = kind_ == fdl::RnnKind::kLstm;
    FloatArray h0a, c0a;
    if (!h0.is_none()) h0a = h0.cast<FloatArray>();
    if (lstm && !c0.is_none()) c0a = c0.cast<FloatArray>();
    FloatArray y =
        output_array(out, {py::ssize_t(T), py::ssize_t(B), py::ssize_t(dirs_ * hidden_)});
    FloatArray hn({layers_ * dirs_, B, hidden_});
    FloatArray cn(lstm ? std::vector<std::size_t>{layers_ * dirs_, B, hidden_}
                       : std::vector<std::size_t>{0});
    {
      py::gil_scoped_release release;
      plan_->run(x.data(), T, B, h0.is_none() ? nullptr : h0a.data(),
                 lstm && !c0.is_none() ? c0a.data() : nullptr, y.mutable_data(),
                 hn.mutable_data(), lstm ? cn.mutable_data() : nullptr);
    }
    return py::make_tuple(y, hn, lstm ? py::object(cn) : py::object(py::none()));
  }

  std::string variant() const { return plan_->variant().name; }

 private:
  fdl::RnnKind kind_;
  std::size_t hidden_, layers_, dirs_;
  std::unique_ptr<fdl::RnnPlan> plan_;
};

}  // namespace

void bind_rnn(py::module_& m) {
  register_variants("rnn", [] {
    return variants_dict(fdl::rnn_variants(), [](const fdl::RnnVariant& v, py::dict& d) {
      d["unit_block"] = v.unit_block;
    });
  });

  py::class_<PyRnnPlan>(m, "RnnPlan")
      .def(py::init<const std::string&, const py::list&, std::size_t, std::size_t, std::size_t,
                    bool, const py::object&, const py::object&>(),
           py::arg("kind"), py::arg("weights"), py::arg("input_size"), py::arg("hidden_size"),
           py::arg("num_layers"), py::arg("bidirectional"), py::arg("variant") = py::none(),
           py::arg("gemm_variant") = py::none())
      .def("__call__", &PyRnnPlan::call, py::arg("x"), py::arg("h0") = py::none(),
           py::arg("c0") = py::none(), py::arg("out") = py::none())
      .def("set_weights", &PyRnnPlan::set_weights, py::arg("weights"),
           "Repacks new weights of the same shapes in place.")
      .def_property_readonly("variant", &PyRnnPlan::variant);
}
