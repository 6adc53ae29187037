"""Pooling layers: MaxPooling1D/2D/3D, AveragePooling1D/2D/3D (padding 'valid' or 'same'),
GlobalAveragePooling1D/2D/3D, GlobalMaxPooling1D/2D/3D (keepdims). Computed channels-first
on fastdl.ops' pooling kernels.

Keras' 'same' may pad one more after than before (TensorFlow's rule), which PyTorch-style
symmetric pooling cannot express: such inputs are padded explicitly (-inf for max) and
average pooling divides each window's sum by the number of input values it covers, as
Keras does.
"""
import numpy as np

from fastdl import _validate as v
from fastdl import ops
from fastdl.layers import layout as L
from fastdl.layers.base import Layer
from fastdl.layers.conv import int_tuple, output_length, same_padding
from fastdl.layers.core import data_format_arg

_MAX = {1: ops.max_pool1d, 2: ops.max_pool2d, 3: ops.max_pool3d}
_AVG = {1: ops.avg_pool1d, 2: ops.avg_pool2d, 3: ops.avg_pool3d}


class _Pooling(Layer):
    rank = None
    kind = None  # 'max' or 'avg'

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int_tuple(pool_size, "pool_size", self.rank)
        self.strides = self.pool_size if strides is None else int_tuple(strides, "strides",
                                                                         self.rank)
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"padding: expected 'valid' or 'same', got {padding!r}")
        self.padding = padding.lower()
        self.data_format = data_format_arg(data_format)

    def _spatial(self, shape):
        return tuple(shape[1:-1] if self.data_format == "channels_last" else shape[2:])

    def check_input(self, input_shape, first=False):
        if len(input_shape) != self.rank + 2:
            self._refuse(input_shape, f"a {self.rank + 2}-D shape")
        if self.padding == "valid" and any(
                s is not None and s < k for s, k in zip(self._spatial(input_shape),
                                                        self.pool_size)):
            self._refuse(input_shape, f"spatial sizes of at least pool_size {self.pool_size}")

    def compute_output_shape(self, input_shape):
        spatial = tuple(output_length(s, k, st, 1, self.padding) for s, k, st in zip(
            self._spatial(input_shape), self.pool_size, self.strides))
        if self.data_format == "channels_last":
            return (input_shape[0],) + spatial + (input_shape[-1],)
        return tuple(input_shape[:2]) + spatial

    def _forward(self, x, layout):
        if self.data_format == "channels_last":
            x, out_layout = L.to_cf(x, layout), L.CF
        else:
            x, out_layout = L.to_keras(x, layout), L.KERAS
        pads = [((0, 0) if self.padding == "valid" else same_padding(s, k, st, 1))
                for s, k, st in zip(x.shape[2:], self.pool_size, self.strides)]
        if self.kind == "max":
            if any(p != (0, 0) for p in pads):
                x = np.pad(x, [(0, 0), (0, 0)] + pads, constant_values=-np.inf)
            return _MAX[self.rank](x, self.pool_size, self.strides), out_layout
        if all(p == (0, 0) for p in pads):
            return _AVG[self.rank](x, self.pool_size, self.strides), out_layout
        # Window sums over the zero-padded input, divided by the input values each covers.
        sums = _AVG[self.rank](np.pad(x, [(0, 0), (0, 0)] + pads), self.pool_size,
                               self.strides, divisor_override=1)
        ones = np.pad(np.ones((1, 1) + x.shape[2:], np.float32), [(0, 0), (0, 0)] + pads)
        counts = _AVG[self.rank](ones, self.pool_size, self.strides, divisor_override=1)
        return np.ascontiguousarray(sums / counts, dtype=np.float32), out_layout

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding, "data_format": self.data_format}


class _Global(Layer):
    rank = None
    kind = None

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format_arg(data_format)
        self.keepdims = v.flag(keepdims, "keepdims")

    def check_input(self, input_shape, first=False):
        if len(input_shape) != self.rank + 2:
            self._refuse(input_shape, f"a {self.rank + 2}-D shape")

    def compute_output_shape(self, input_shape):
        last = self.data_format == "channels_last"
        channels = input_shape[-1] if last else input_shape[1]
        if not self.keepdims:
            return (input_shape[0], channels)
        ones = (1,) * self.rank
        if last:
            return (input_shape[0],) + ones + (channels,)
        return (input_shape[0], channels) + ones

    def _forward(self, x, layout):
        if self.data_format == "channels_last":
            x, map_layout = L.to_cf(x, layout), L.CF
        else:
            x, map_layout = L.to_keras(x, layout), L.KERAS
        y = (ops.global_avg_pool if self.kind == "avg" else ops.global_max_pool)(x)
        if self.keepdims:
            return y, map_layout
        return y.reshape(y.shape[:2]), L.KERAS

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format,
                "keepdims": self.keepdims}


def _pool(name, rank, kind, base):
    doc = {"max": "the maximum", "avg": "the average"}[kind]
    cls = type(name, (base,), {"rank": rank, "kind": kind, "__module__": __name__})
    cls.__doc__ = (f"{rank}-D pooling: {doc} of each window (Keras' {name})." if base is _Pooling
                   else f"{doc.capitalize()} over every position of a {rank}-D map (Keras' "
                        f"{name}).")
    return cls


MaxPooling1D = _pool("MaxPooling1D", 1, "max", _Pooling)
MaxPooling2D = _pool("MaxPooling2D", 2, "max", _Pooling)
MaxPooling3D = _pool("MaxPooling3D", 3, "max", _Pooling)
AveragePooling1D = _pool("AveragePooling1D", 1, "avg", _Pooling)
AveragePooling2D = _pool("AveragePooling2D", 2, "avg", _Pooling)
AveragePooling3D = _pool("AveragePooling3D", 3, "avg", _Pooling)
GlobalAveragePooling1D = _pool("GlobalAveragePooling1D", 1, "avg", _Global)
GlobalAveragePooling2D = _pool("GlobalAveragePooling2D", 2, "avg", _Global)
GlobalAveragePooling3D = _pool("GlobalAveragePooling3D", 3, "avg", _Global)
GlobalMaxPooling1D = _pool("GlobalMaxPooling1D", 1, "max", _Global)
GlobalMaxPooling2D = _pool("GlobalMaxPooling2D", 2, "max", _Global)
GlobalMaxPooling3D = _pool("GlobalMaxPooling3D", 3, "max", _Global)
