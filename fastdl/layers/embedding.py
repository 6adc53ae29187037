"""Embedding: integer indices -> rows of a learned table (Keras 3's arguments)."""
import numpy as np

from fastdl import _validate as v
from fastdl import initializers, ops
from fastdl.layers import layout as L
from fastdl.layers.base import Layer
from fastdl.layers.core import _initializer_name


class Embedding(Layer):
    """(N, ...) integer indices in [0, input_dim) -> (N, ..., output_dim) rows of the
    `embeddings` weight [input_dim, output_dim]. Float inputs must hold whole numbers
    (give Input(..., dtype='int32') to keep indices as integers). Where fastdl differs:
    an index outside [0, input_dim) is a ValueError naming the layer (Keras' backends give
    zeros or garbage); mask_zero=True (masking of later layers) is not supported."""

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
                 weights=None, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = v.positive_int(input_dim, "input_dim")
        self.output_dim = v.positive_int(output_dim, "output_dim")
        if isinstance(embeddings_initializer, str) and embeddings_initializer.lower() == "uniform":
            embeddings_initializer = "random_uniform"  # Keras' alias
        self.embeddings_initializer = initializers.check(embeddings_initializer,
                                                         "embeddings_initializer")
        if embeddings_regularizer is not None or embeddings_constraint is not None:
            raise ValueError("embeddings_regularizer / embeddings_constraint: not supported "
                             "by fastdl (training arrives with fit)")
        if v.flag(mask_zero, "mask_zero"):
            raise ValueError("mask_zero: masking is not supported by fastdl; pad sequences "
                             "to a fixed length instead")
        self._initial = weights

    def _input_array(self, x, name):
        return v.index_array(x, name)

    def build(self, input_shape):
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer)
        if self._initial is not None:
            self.set_weights(self._initial)
            self._initial = None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def _train_forward(self, x, training):
        y, _ = self._forward(x, L.KERAS)
        return y, self._indices(x)

    def _backward(self, dy, indices, grads):
        """Each row of dy added to its index's row (fastdl.ops.embedding_backward, the
        threaded scatter-add kernel: repeated indices sum); the integer input has no
        gradient."""
        grads.add(self.embeddings, ops.embedding_backward(dy, indices, self.input_dim))
        return None

    def _forward(self, x, layout):
        x = self._indices(L.to_keras(x, layout))
        return np.take(self.embeddings.value, x, axis=0), L.KERAS

    def _indices(self, x):
        """x as checked integer indices (ValueError naming the layer outside the table)."""
        if x.dtype.kind != "i":
            x = v.index_array(x, f"{self.name} input")
        if x.size and (x.min() < 0 or x.max() >= self.input_dim):
            bad = x[(x < 0) | (x >= self.input_dim)].flat[0]
            raise ValueError(f"{self.name} (Embedding): index {bad} is outside [0, "
                             f"{self.input_dim})")
        return x

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer": _initializer_name(self.embeddings_initializer)}
