"""Rescaling (Keras 3's): x * scale + offset. Also what fastdl.io.load_onnx makes of an
Add, Sub, Mul or Div of a model tensor and a constant (x / 255, (x - mean) * inv_std,
a per-channel bias)."""
import numpy as np

from fastdl import _validate as v
from fastdl.layers import layout as L
from fastdl.layers.base import Layer


def _constant(value, name):
    """A finite float (kept a float for the config) or a float32 array of finite values."""
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = v.float32_array(value, name)
        if arr.size == 0:
            raise ValueError(f"{name}: expected a number or a non-empty array, got shape "
                             f"{arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name}: expected finite values, got NaN or infinity")
        return arr
    return v.real(value, name, -np.finfo(np.float32).max, np.finfo(np.float32).max)


class Rescaling(Layer):
    """x * scale + offset. scale and offset are numbers or arrays that broadcast (NumPy's
    rules) against the input, batch axis included -- shape (C,) scales the last axis, (C,
    1, 1) the channels of (N, C, H, W) maps -- without changing its shape. fastdl computes
    in float32 (Keras: the layer's dtype)."""

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = _constant(scale, "scale")
        self.offset = _constant(offset, "offset")

    def check_input(self, input_shape, first=False):
        known = tuple(1 if s is None else s for s in input_shape)
        for name, value in (("scale", self.scale), ("offset", self.offset)):
            shape = np.shape(value)
            try:
                grown = np.broadcast_shapes(known, shape) != known
            except ValueError:
                grown = True
            if grown or len(shape) > len(known):
                self._refuse(input_shape, f"a shape {name} {shape} broadcasts against "
                                          f"without changing it")

    def _apply(self, x):
        return np.asarray(x * self.scale + self.offset, np.float32)

    def _forward(self, x, layout):
        return self._apply(L.to_keras(x, layout)), L.KERAS

    def _train_forward(self, x, training):
        return self._apply(x), None

    def _backward(self, dy, cache, grads):
        return np.asarray(dy * self.scale, np.float32)

    def get_config(self):
        def jsonable(value):
            return value.tolist() if isinstance(value, np.ndarray) else value
        return {**super().get_config(), "scale": jsonable(self.scale),
                "offset": jsonable(self.offset)}
