// Bindings for LSTM/GRU: RnnPlan (a stack of layers, packed once), variants("rnn"), and the
// training pair rnn_layer_train / rnn_layer_backward (one layer and direction; contracts:
// fastdl/_reference/rnn.py). Arguments were validated by fastdl/ops.
#include <pybind11/stl.h>

#include <memory>
#include <vector>

#include "bindings.h"
#include "fastdl/rnn.h"
#include "fastdl/rnn_train.h"

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
    // Multiply-adds of the first layer, times the layers and directions: a bound's worth.
    const double work = double(T) * B * (x.shape(2) + hidden_) * 4 * hidden_ * layers_ * dirs_;
    run_interruptible(work, [&] {
      plan_->run(x.data(), T, B, h0.is_none() ? nullptr : h0a.data(),
                 lstm && !c0.is_none() ? c0a.data() : nullptr, y.mutable_data(),
                 hn.mutable_data(), lstm ? cn.mutable_data() : nullptr);
    });
    return py::make_tuple(y, hn, lstm ? py::object(cn) : py::object(py::none()));
  }

  std::string variant() const { return plan_->variant().name; }

 private:
  fdl::RnnKind kind_;
  std::size_t hidden_, layers_, dirs_;
  std::unique_ptr<fdl::RnnPlan> plan_;
};

fdl::RnnKind parse_kind(const std::string& kind) {
  if (kind == "lstm") return fdl::RnnKind::kLstm;
  if (kind == "gru") return fdl::RnnKind::kGru;
  if (kind == "gru_reset_before") return fdl::RnnKind::kGruResetBefore;
  if (kind == "rnn_tanh") return fdl::RnnKind::kRnnTanh;
  if (kind == "rnn_relu") return fdl::RnnKind::kRnnRelu;
  throw py::value_error("kind: expected 'lstm', 'gru', 'gru_reset_before', 'rnn_tanh' or "
                        "'rnn_relu', got '" + kind + "'");
}

fdl::RnnTrainShape train_shape(fdl::RnnKind kind, const FloatArray& x, const FloatArray& w_ih,
                               const FloatArray& w_hh, bool reverse) {
  const std::size_t G = fdl::rnn_gates(kind), H = w_hh.ndim() == 2 ? w_hh.shape(1) : 0;
  if (x.ndim() != 3 || w_ih.ndim() != 2 || w_hh.ndim() != 2 ||
      std::size_t(w_hh.shape(0)) != G * H || std::size_t(w_ih.shape(0)) != G * H ||
      w_ih.shape(1) != x.shape(2))
    throw py::value_error("rnn: x [T, B, I], w_ih [G*H, I] and w_hh [G*H, H] do not match");
  return {kind, std::size_t(x.shape(0)), std::size_t(x.shape(1)), std::size_t(x.shape(2)), H,
          reverse};
}

// A [rows, cols] state argument (or None) checked against the problem.
const float* state(const py::object& value, FloatArray& keep, const fdl::RnnTrainShape& p,
                   const char* name) {
  const float* data = optional_data(value, keep);
  if (data && (keep.ndim() != 2 || std::size_t(keep.shape(0)) != p.batch ||
               std::size_t(keep.shape(1)) != p.hidden))
    throw py::value_error(std::string(name) + ": expected shape [B, H]");
  return data;
}

// (y, h_n, c_n or None, saved): see fastdl/_reference/rnn.py. saved [T, B, S * hs].
py::tuple rnn_layer_train(const std::string& kind_name, const FloatArray& x,
                          const py::object& h0, const py::object& c0, const FloatArray& w_ih,
                          const FloatArray& w_hh, const py::object& b_ih,
                          const py::object& b_hh, bool reverse, const py::object& variant,
                          const py::object& gemm_variant) {
  const fdl::RnnKind kind = parse_kind(kind_name);
  const fdl::RnnTrainShape p = train_shape(kind, x, w_ih, w_hh, reverse);
  const bool lstm = kind == fdl::RnnKind::kLstm;
  const std::size_t GH = fdl::rnn_gates(kind) * p.hidden;
  FloatArray h0a, c0a, bia, bha;
  const float* h0p = state(h0, h0a, p, "h0");
  const float* c0p = lstm ? state(c0, c0a, p, "c0") : nullptr;
  const float* bi = optional_data(b_ih, bia);
  const float* bh = optional_data(b_hh, bha);
  if ((bi && bia.size() != py::ssize_t(GH)) || (bh && bha.size() != py::ssize_t(GH)))
    throw py::value_error("b_ih, b_hh: expected G*H entries");
  const fdl::RnnVariant& v = pick_variant(fdl::rnn_variants(), fdl::rnn_best(), variant, "RNN");
  const fdl::GemmUkernel& uk = pick_gemm(gemm_variant);
  const std::size_t hs = fdl::rnn_saved_hidden(kind, p.hidden, v);
  const py::ssize_t T = p.steps, B = p.batch, H = p.hidden;
  FloatArray y({T, B, H}), hn({B, H});
  FloatArray cn(lstm ? std::vector<py::ssize_t>{B, H} : std::vector<py::ssize_t>{0});
  FloatArray saved({T, B, py::ssize_t(fdl::rnn_saved_blocks(kind) * hs)});
  run_interruptible(double(T) * B * (p.input + H) * GH, [&] {
    fdl::rnn_train_forward(v, uk, p, x.data(), h0p, c0p,
                           fdl::RnnWeights{w_ih.data(), w_hh.data(), bi, bh}, y.mutable_data(),
                           hn.mutable_data(), lstm ? cn.mutable_data() : nullptr,
                           saved.mutable_data());
  });
  return py::make_tuple(y, hn, lstm ? py::object(cn) : py::object(py::none()), saved);
}

// (dx, dh0, dc0 or None, dw_ih, dw_hh, db_ih, db_hh): see fastdl/_reference/rnn.py.
py::tuple rnn_layer_backward(const std::string& kind_name, const py::object& dy,
                             const py::object& dh_n, const py::object& dc_n,
                             const FloatArray& x, const FloatArray& y, const FloatArray& saved,
                             const py::object& h0, const py::object& c0,
                             const FloatArray& w_ih, const FloatArray& w_hh, bool reverse,
                             const py::object& gemm_variant) {
  const fdl::RnnKind kind = parse_kind(kind_name);
  const fdl::RnnTrainShape p = train_shape(kind, x, w_ih, w_hh, reverse);
  const bool lstm = kind == fdl::RnnKind::kLstm;
  const std::size_t S = fdl::rnn_saved_blocks(kind);
  const py::ssize_t T = p.steps, B = p.batch, H = p.hidden;
  auto sequence = [&](const FloatArray& a) {
    return a.ndim() == 3 && a.shape(0) == T && a.shape(1) == B;
  };
  const std::size_t hs = S && saved.ndim() == 3 ? saved.shape(2) / S : p.hidden;
  if (!sequence(y) || y.shape(2) != H || !sequence(saved) ||
      std::size_t(saved.shape(2)) != S * hs || hs < p.hidden)
    throw py::value_error("y, saved: not what rnn_layer_train returned for these shapes");
  FloatArray dya, dhna, dcna, h0a, c0a;
  const float* dyp = optional_data(dy, dya);
  if (dyp && !(sequence(dya) && dya.shape(2) == H))
    throw py::value_error("dy: expected shape [T, B, H]");
  const float* dhnp = state(dh_n, dhna, p, "dh_n");
  const float* dcnp = lstm ? state(dc_n, dcna, p, "dc_n") : nullptr;
  const float* h0p = state(h0, h0a, p, "h0");
  const float* c0p = lstm ? state(c0, c0a, p, "c0") : nullptr;
  const fdl::GemmUkernel& uk = pick_gemm(gemm_variant);
  const py::ssize_t GH = fdl::rnn_gates(kind) * H, I = p.input;
  FloatArray dx({T, B, I}), dh0({B, H}), dw_ih({GH, I}), dw_hh({GH, H}), db_ih({GH}),
      db_hh({GH});
  FloatArray dc0(lstm ? std::vector<py::ssize_t>{B, H} : std::vector<py::ssize_t>{0});
  run_interruptible(2.0 * T * B * (I + H) * GH, [&] {
    fdl::rnn_train_backward(uk, p, hs, dyp, dhnp, dcnp, x.data(), y.data(), saved.data(), h0p,
                            c0p, w_ih.data(), w_hh.data(), dx.mutable_data(),
                            dh0.mutable_data(), lstm ? dc0.mutable_data() : nullptr,
                            dw_ih.mutable_data(), dw_hh.mutable_data(), db_ih.mutable_data(),
                            db_hh.mutable_data());
  });
  return py::make_tuple(dx, dh0, lstm ? py::object(dc0) : py::object(py::none()), dw_ih, dw_hh,
                        db_ih, db_hh);
}

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
  m.def("rnn_layer_train", &rnn_layer_train, py::arg("kind"), py::arg("x"), py::arg("h0"),
        py::arg("c0"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"),
        py::arg("reverse"), py::arg("variant") = py::none(), py::arg("gemm_variant") = py::none(),
        "(y, h_n, c_n or None, saved): one recurrent layer and direction, keeping what "
        "rnn_layer_backward needs (contract: fastdl._reference.rnn_layer_train).");
  m.def("rnn_layer_backward", &rnn_layer_backward, py::arg("kind"), py::arg("dy"),
        py::arg("dh_n"), py::arg("dc_n"), py::arg("x"), py::arg("y"), py::arg("saved"),
        py::arg("h0"), py::arg("c0"), py::arg("w_ih"), py::arg("w_hh"), py::arg("reverse"),
        py::arg("gemm_variant") = py::none(),
        "(dx, dh0, dc0 or None, dw_ih, dw_hh, db_ih, db_hh): backpropagation through time "
        "of rnn_layer_train (contract: fastdl._reference.rnn_layer_backward).");
}
