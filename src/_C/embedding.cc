// Bindings for the embedding gradient (fastdl/embedding.h) and variants("embedding_backward").
#include <cstdint>

#include "bindings.h"
#include "fastdl/embedding.h"

using namespace fastdl_bindings;

namespace {

using IndexArray = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

// dw [num_embeddings, dim] from dy [n, dim] and indices [n] (padding_idx -1: none).
FloatArray embedding_backward(const FloatArray& dy, const IndexArray& indices,
                              std::size_t num_embeddings, std::int64_t padding_idx,
                              bool scale_grad_by_freq, const py::object& variant) {
  if (dy.ndim() != 2 || indices.ndim() != 1 || indices.shape(0) != dy.shape(0))
    throw py::value_error("embedding_backward: expected dy [n, dim] and indices [n]");
  const auto& table = fdl::embedding_variants();
  const fdl::EmbeddingVariant& v = pick_variant(table, fdl::best_variant(table), variant,
                                                "embedding");
  const std::size_t n = dy.shape(0), dim = dy.shape(1);
  FloatArray dw({static_cast<py::ssize_t>(num_embeddings), static_cast<py::ssize_t>(dim)});
  bool ok;
  {
    py::gil_scoped_release release;
    ok = fdl::embedding_backward(indices.data(), n, dy.data(), dim, num_embeddings, padding_idx,
                                 scale_grad_by_freq, dw.mutable_data(), &v);
  }
  if (!ok)
    throw py::value_error("embedding_backward: an index lies outside [0, " +
                          std::to_string(num_embeddings) + ")");
  return dw;
}

}  // namespace

void bind_embedding(py::module_& m) {
  register_variants("embedding_backward", [] { return variants_dict(fdl::embedding_variants()); });
  m.def("embedding_backward", &embedding_backward, py::arg("dy"), py::arg("indices"),
        py::arg("num_embeddings"), py::arg("padding_idx"), py::arg("scale_grad_by_freq"),
        py::arg("variant") = py::none(),
        "dw [num_embeddings, dim]: each row of dy [n, dim] added into the row its index names "
        "(indices [n]); the padding_idx row (-1: none) zero; rows divided by their index's "
        "count with scale_grad_by_freq.");
}
