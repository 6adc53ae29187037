"""Reduce: the mean, maximum, minimum or sum over feature axes -- ONNX's ReduceMean/Max/
Min/Sum over any axes but the batch's. A fastdl extension (Keras reduces in ops, not
layers); fastdl.io.load_onnx builds it for reductions the global pooling layers cannot
express (over the channels, over some of the spatial axes, of sequences).
"""
import numpy as np

from fastdl import _validate as v
from fastdl.layers import layout as L
from fastdl.layers._axes import OverFeatureAxes, axis_arg
from fastdl.layers.base import Layer

KINDS = ("mean", "max", "min", "sum")


class Reduce(OverFeatureAxes, Layer):
    """Reduces `axis` (an int or a tuple of ints, never the batch axis 0) of the input by
    `kind` ('mean', 'max', 'min' or 'sum'), keeping them as size 1 with keepdims. It sums
    in float64. It trains: a mean or sum spreads the gradient over the reduced values, a
    maximum or minimum shares it among the values equal to it (as torch.amax)."""

    def __init__(self, kind="mean", axis=-1, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        if kind not in KINDS:
            raise ValueError(f"kind: expected one of {', '.join(map(repr, KINDS))}, got "
                             f"{kind!r}")
        self.kind = kind
        self.axis = axis_arg(axis)
        self.keepdims = v.flag(keepdims, "keepdims")

    def compute_output_shape(self, input_shape):
        axes = self._axes(len(input_shape))
        if self.keepdims:
            return tuple(1 if i in axes else s for i, s in enumerate(input_shape))
        return tuple(s for i, s in enumerate(input_shape) if i not in axes)

    def _apply(self, x):
        axes = self._axes(x.ndim)
        if self.kind in ("max", "min"):
            if any(x.shape[a] == 0 for a in axes):
                raise ValueError(f"{self.name} (Reduce): the {self.kind} of an empty axis "
                                 f"(input shape {x.shape})")
            fn = np.max if self.kind == "max" else np.min
            return np.ascontiguousarray(fn(x, axis=axes, keepdims=self.keepdims))
        fn = np.mean if self.kind == "mean" else np.sum
        return np.asarray(fn(x, axis=axes, dtype=np.float64, keepdims=self.keepdims),
                          np.float32)

    def _forward(self, x, layout):
        return self._apply(L.to_keras(x, layout)), L.KERAS

    def _train_forward(self, x, training):
        y = self._apply(x)
        # The cache: the input's shape, and for a maximum or minimum (x, y) to find ties.
        return y, (x.shape, (x, y) if self.kind in ("max", "min") else None)

    def _backward(self, dy, cache, grads):
        shape, extremes = cache
        axes = self._axes(len(shape))
        kept = tuple(1 if i in axes else s for i, s in enumerate(shape))
        dy = dy.reshape(kept)
        if extremes is not None:
            x, y = extremes
            hit = x == y.reshape(kept)
            share = dy / hit.sum(axis=axes, keepdims=True)
            return np.ascontiguousarray(np.where(hit, share, 0.0), np.float32)
        count = np.prod([shape[a] for a in axes]) if self.kind == "mean" else 1
        return np.ascontiguousarray(np.broadcast_to(dy / np.float32(count), shape),
                                    np.float32)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind,
                "axis": self.axis[0] if len(self.axis) == 1 else self.axis,
                "keepdims": self.keepdims}
