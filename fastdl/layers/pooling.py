"""Pooling layers: MaxPooling1D/2D/3D, AveragePooling1D/2D/3D (padding 'valid' or 'same'),
GlobalAveragePooling1D/2D/3D, GlobalMaxPooling1D/2D/3D (keepdims). Computed channels-first
on fastdl.ops' pooling kernels.

Keras' 'same' may pad one more after than before (TensorFlow's rule), which PyTorch-style
symmetric pooling cannot express: such inputs are padded explicitly (-inf for max) and
average pooling divides each window's sum by the number of input values it covers, as
Keras does. (Keras' torch backend instead replicates the edge there and counts it.)

fastdl extensions, for models imported from PyTorch: `padding` may also give explicit
amounts per axis (an int, or (before, after)), padded with -inf for max pooling; average
pooling takes `count_include_pad` (PyTorch's meaning; default False, as Keras).
"""
import math

import numpy as np

from fastdl import _validate as v
from fastdl import ops
from fastdl.layers import layout as L
from fastdl.layers.base import Layer
from fastdl.layers.conv import int_tuple, same_padding
from fastdl.layers.core import data_format_arg

_MAX = {1: ops.max_pool1d, 2: ops.max_pool2d, 3: ops.max_pool3d}
_AVG = {1: ops.avg_pool1d, 2: ops.avg_pool2d, 3: ops.avg_pool3d}


def _padding_arg(padding, rank):
    """'valid', 'same', or explicit ((before, after), ...) per axis."""
    if isinstance(padding, str):
        if padding.lower() not in ("valid", "same"):
            raise ValueError(f"padding: expected 'valid', 'same' or amounts per axis, got "
                             f"{padding!r}")
        return padding.lower()
    items = padding if isinstance(padding, (list, tuple)) else [padding] * rank
    if len(items) != rank:
        raise ValueError(f"padding: expected {rank} per-axis amounts, got {padding!r}")
    pairs = []
    for item in items:
        pair = tuple(item) if isinstance(item, (list, tuple)) else (item, item)
        if len(pair) != 2:
            raise ValueError(f"padding: expected an int or (before, after) per axis, got "
                             f"{padding!r}")
        pairs.append(tuple(v.integer(p, "padding", 0) for p in pair))
    return tuple(pairs)


class _Pooling(Layer):
    rank = None
    kind = None  # 'max' or 'avg'

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None,
                 count_include_pad=False, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int_tuple(pool_size, "pool_size", self.rank)
        self.strides = self.pool_size if strides is None else int_tuple(strides, "strides",
                                                                         self.rank)
        self.padding = _padding_arg(padding, self.rank)
        self.data_format = data_format_arg(data_format)
        self.count_include_pad = v.flag(count_include_pad, "count_include_pad")
        if self.count_include_pad and self.kind != "avg":
            raise ValueError("count_include_pad: only average pooling takes it")

    def _spatial(self, shape):
        return tuple(shape[1:-1] if self.data_format == "channels_last" else shape[2:])

    def _pads(self, spatial):
        if self.padding == "valid":
            return tuple((0, 0) for _ in spatial)
        if self.padding == "same":
            return tuple(same_padding(s, k, st, 1) for s, k, st in zip(
                spatial, self.pool_size, self.strides))
        return self.padding

    def check_input(self, input_shape, first=False):
        if len(input_shape) != self.rank + 2:
            self._refuse(input_shape, f"a {self.rank + 2}-D shape")
        if self.padding == "same":
            return
        spatial = self._spatial(input_shape)
        pads = self._pads(spatial)
        if any(s is not None and s + sum(p) < k
               for s, p, k in zip(spatial, pads, self.pool_size)):
            self._refuse(input_shape, f"spatial sizes (with padding) of at least pool_size "
                                      f"{self.pool_size}")

    def compute_output_shape(self, input_shape):
        spatial = self._spatial(input_shape)
        pads = self._pads(tuple(s or 0 for s in spatial))
        out = tuple(None if s is None else (-(-s // st) if self.padding == "same" else
                                            (s + sum(p) - k) // st + 1)
                    for s, p, k, st in zip(spatial, pads, self.pool_size, self.strides))
        if self.data_format == "channels_last":
            return (input_shape[0],) + out + (input_shape[-1],)
        return tuple(input_shape[:2]) + out

    def _forward(self, x, layout):
        x, out_layout = L.maps(x, layout, self.data_format)
        plan = self._plans.get(x.shape)
        if plan is None:
            plan = self._plans[x.shape] = self._new_plan(x.shape)
        if plan is not False:
            return plan(x), out_layout
        pads = self._pads(x.shape[2:])
        k, st = self.pool_size, self.strides
        if self.kind == "max":
            x = np.pad(x, [(0, 0), (0, 0)] + list(pads), constant_values=-np.inf)
            return _MAX[self.rank](x, k, st), out_layout
        # Window sums over the zero-padded input, divided by the taps each counts.
        padded = [(0, 0), (0, 0)] + list(pads)
        sums = _AVG[self.rank](np.pad(x, padded), k, st, divisor_override=1)
        if self.count_include_pad:
            return np.ascontiguousarray(sums / math.prod(k), np.float32), out_layout
        ones = np.pad(np.ones((1, 1) + x.shape[2:], np.float32), padded)
        counts = _AVG[self.rank](ones, k, st, divisor_override=1)
        return np.ascontiguousarray(sums / counts, dtype=np.float32), out_layout

    def _new_plan(self, shape):
        """A PoolPlan for channels-first inputs of `shape` where the kernels can pad (the
        same amount on both sides, at most half the window; -inf for max, as Keras and
        PyTorch), else False (padded here instead)."""
        pads = self._pads(shape[2:])
        if not all(a == b and a <= k // 2 for (a, b), k in zip(pads, self.pool_size)):
            return False
        return ops.PoolPlan(self.kind, shape, self.pool_size, self.strides,
                            tuple(a for a, _ in pads), self.count_include_pad)

    def get_config(self):
        config = {**super().get_config(), "pool_size": self.pool_size,
                  "strides": self.strides, "padding": self.padding,
                  "data_format": self.data_format}
        if self.count_include_pad:
            config["count_include_pad"] = True
        return config


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
        x, map_layout = L.maps(x, layout, self.data_format)
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
