"""UnitNormalization (Keras 3's): each sample scaled to unit L2 norm over `axis` -- the
L2-normalized embeddings a triplet loss compares."""
import numpy as np

from fastdl.layers import layout as L
from fastdl.layers._axes import OverFeatureAxes, axis_arg
from fastdl.layers.base import Layer

_EPSILON = 1e-12  # Keras': the norm's lower bound (1 / norm is capped at 1 / epsilon)


class UnitNormalization(OverFeatureAxes, Layer):
    """x * min(1 / sqrt(sum(x^2 over axis)), 1 / 1e-12), as Keras 3; `axis` an int or a
    tuple of feature axes (never the batch axis 0). Computed in float64; it trains (an
    all-zero sample's gradient is dy * 1e12, where Keras' autograd gives NaN)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis_arg(axis)

    def _scale(self, x64):
        """1 / max(norm, epsilon) per sample, keeping the reduced axes (float64)."""
        squares = np.sum(x64 * x64, axis=self._axes(x64.ndim), keepdims=True)
        with np.errstate(divide="ignore"):
            return np.minimum(1.0 / np.sqrt(squares), 1.0 / _EPSILON)

    def _forward(self, x, layout):
        x64 = L.to_keras(x, layout).astype(np.float64)
        return np.asarray(x64 * self._scale(x64), np.float32), L.KERAS

    def _train_forward(self, x, training):
        x64 = x.astype(np.float64)
        scale = self._scale(x64)
        y = x64 * scale
        return np.asarray(y, np.float32), (y, scale)

    def _backward(self, dy, cache, grads):
        y, scale = cache
        dy64 = dy.astype(np.float64)
        dot = np.sum(dy64 * y, axis=self._axes(y.ndim), keepdims=True)
        # Where the norm is below epsilon the scale is a constant: dx = dy / epsilon.
        capped = scale >= 1.0 / _EPSILON
        dx = np.where(capped, dy64 * scale, scale * (dy64 - y * dot))
        return np.asarray(dx, np.float32)

    def get_config(self):
        return {**super().get_config(),
                "axis": self.axis[0] if len(self.axis) == 1 else list(self.axis)}
