"""Pooling layers: MaxPooling1D/2D/3D, AveragePooling1D/2D/3D (padding 'valid' or 'same'),
GlobalAveragePooling1D/2D/3D, GlobalMaxPooling1D/2D/3D (keepdims). Computed channels-first
on fastdl.ops' pooling kernels; they train (no weights: the gradient passes to the input
through fastdl.ops' pooling gradients, with the forward's padding rules).

Keras' 'same' may pad one more after than before (TensorFlow's rule), which PyTorch-style
symmetric pooling cannot express: such inputs are padded explicitly (-inf for max) and
average pooling divides each window's sum by the number of input values it covers, as
Keras does. (Keras' torch backend instead replicates the edge there and counts it.)

fastdl extensions, for models imported from PyTorch and ONNX: `padding` may also give
explicit amounts per axis (an int, or (before, after)), padded with -inf for max pooling;
average pooling takes `count_include_pad` (PyTorch's meaning; default False, as Keras), and
both `dilation_rate` (taps that far apart, as PyTorch's dilation for max pooling and ONNX's
dilations for both; a dilated average sums its windows in NumPy, float64).
"""
import itertools
import math

import numpy as np

from fastdl import _validate as v
from fastdl import ops
from fastdl.layers import layout as L
from fastdl.layers.base import Layer, TrainsOnMaps
from fastdl.layers.conv import int_tuple, same_padding
from fastdl.layers.core import data_format_arg

_MAX = {1: ops.max_pool1d, 2: ops.max_pool2d, 3: ops.max_pool3d}
_AVG = {1: ops.avg_pool1d, 2: ops.avg_pool2d, 3: ops.avg_pool3d}
_MAX_BACKWARD = {1: ops.max_pool1d_backward, 2: ops.max_pool2d_backward,
                 3: ops.max_pool3d_backward}
_AVG_BACKWARD = {1: ops.avg_pool1d_backward, 2: ops.avg_pool2d_backward,
                 3: ops.avg_pool3d_backward}


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


class _Pooling(TrainsOnMaps, Layer):
    rank = None
    kind = None  # 'max' or 'avg'

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None,
                 count_include_pad=False, dilation_rate=1, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int_tuple(pool_size, "pool_size", self.rank)
        self.strides = self.pool_size if strides is None else int_tuple(strides, "strides",
                                                                         self.rank)
        self.padding = _padding_arg(padding, self.rank)
        self.data_format = data_format_arg(data_format)
        self.count_include_pad = v.flag(count_include_pad, "count_include_pad")
        if self.count_include_pad and self.kind != "avg":
            raise ValueError("count_include_pad: only average pooling takes it")
        self.dilation_rate = int_tuple(dilation_rate, "dilation_rate", self.rank)
        self._dilated = any(d != 1 for d in self.dilation_rate)
        # The window's reach along each axis: (pool - 1) * dilation + 1 taps apart.
        self._span = tuple((k - 1) * d + 1 for k, d in zip(self.pool_size,
                                                           self.dilation_rate))

    def _spatial(self, shape):
        return tuple(shape[1:-1] if self.data_format == "channels_last" else shape[2:])

    def _pads(self, spatial):
        if self.padding == "valid":
            return tuple((0, 0) for _ in spatial)
        if self.padding == "same":
            return tuple(same_padding(s, k, st, d) for s, k, st, d in zip(
                spatial, self.pool_size, self.strides, self.dilation_rate))
        return self.padding

    def check_input(self, input_shape, first=False):
        if len(input_shape) != self.rank + 2:
            self._refuse(input_shape, f"a {self.rank + 2}-D shape")
        if self.padding == "same":
            return
        spatial = self._spatial(input_shape)
        pads = self._pads(spatial)
        if any(s is not None and s + sum(p) < k
               for s, p, k in zip(spatial, pads, self._span)):
            self._refuse(input_shape, f"spatial sizes (with padding) of at least the window "
                                      f"{self._span} (pool_size {self.pool_size}"
                                      + (f", dilation_rate {self.dilation_rate})"
                                         if self._span != self.pool_size else ")"))

    def compute_output_shape(self, input_shape):
        spatial = self._spatial(input_shape)
        pads = self._pads(tuple(s or 0 for s in spatial))
        out = tuple(None if s is None else (-(-s // st) if self.padding == "same" else
                                            (s + sum(p) - k) // st + 1)
                    for s, p, k, st in zip(spatial, pads, self._span, self.strides))
        if self.data_format == "channels_last":
            return (input_shape[0],) + out + (input_shape[-1],)
        return tuple(input_shape[:2]) + out

    def _plan_for(self, shape):
        """The PoolPlan for channels-first inputs of `shape` (kept per shape), or False
        where this layer pads them itself."""
        plan = self._plans.get(shape)
        if plan is None:
            plan = self._plans[shape] = self._new_plan(shape)
        return plan

    def _forward(self, x, layout):
        x, out_layout = L.maps(x, layout, self.data_format)
        plan = self._plan_for(x.shape)
        if plan is not False:
            return plan(x), out_layout
        pads = self._pads(x.shape[2:])
        k, st = self.pool_size, self.strides
        if self.kind == "max":
            return _MAX[self.rank](self._padded(x, pads), k, st,
                                   dilation=self.dilation_rate), out_layout
        sums = self._window_sums(self._padded(x, pads))
        return np.ascontiguousarray(sums / self._counts(x.shape, pads), np.float32), out_layout

    def _fast_forward(self, x, layout):
        """The layer as a plain call for inputs like x (a model's traced calls,
        models/inference.py), or None: its pooling plan, which checks its input."""
        taken, _ = L.maps(x, layout, self.data_format)
        plan = self._plans.get(taken.shape)
        if not plan:
            return None
        if taken is x:
            return plan
        data_format = self.data_format
        return lambda a: plan(L.maps(a, layout, data_format)[0])

    def _kernel_padding(self, pads):
        """The padding the kernels apply themselves (the same amount on both sides, at most
        half the window; -inf for max, as Keras and PyTorch) for `pads` ((before, after) per
        axis), or None: the input is padded here instead (_padded), as for a dilated
        average (its kernels have no dilation)."""
        if self.kind != "max" and self._dilated:
            return None
        if not all(a == b and a <= k // 2 for (a, b), k in zip(pads, self.pool_size)):
            return None
        return tuple(a for a, _ in pads)

    def _padded(self, x, pads):
        """Channels-first x padded explicitly: -inf for max, zeros for the window sums of
        average pooling (divided by _counts)."""
        fill = -np.inf if self.kind == "max" else 0.0
        return np.pad(x, [(0, 0), (0, 0)] + list(pads), constant_values=fill)

    def _counts(self, shape, pads):
        """Average pooling's divisor per window of an explicitly padded input of `shape`:
        the input values it covers (Keras), or every tap with count_include_pad."""
        k, st = self.pool_size, self.strides
        if self.count_include_pad:
            return np.float32(math.prod(k))
        ones = np.pad(np.ones((1, 1) + tuple(shape[2:]), np.float32),
                      [(0, 0), (0, 0)] + list(pads))
        return self._window_sums(ones)

    def _window_sums(self, x):
        """Each window's sum over channels-first x, padded already (average pooling)."""
        if not self._dilated:
            return _AVG[self.rank](x, self.pool_size, self.strides, divisor_override=1)
        sums = np.zeros(x.shape[:2] + self._window_counts(x.shape), np.float64)
        for window in self._tap_slices(x.shape):
            sums += x[window]
        return sums.astype(np.float32)

    def _window_sums_backward(self, dy, shape):
        """The gradient of _window_sums for its input of `shape` from that of its output."""
        if not self._dilated:
            return _AVG_BACKWARD[self.rank](dy, shape, self.pool_size, self.strides,
                                            divisor_override=1)
        dx = np.zeros(shape, np.float64)
        for window in self._tap_slices(shape):
            dx[window] += dy
        return dx.astype(np.float32)

    def _window_counts(self, shape):
        return tuple((n - span) // s + 1 for n, span, s in zip(shape[2:], self._span,
                                                                self.strides))

    def _tap_slices(self, shape):
        """Per tap of the window, the slice of a padded (N, C, *S) input it reads for every
        output."""
        outs = self._window_counts(shape)
        for taps in itertools.product(*(range(k) for k in self.pool_size)):
            yield (slice(None), slice(None)) + tuple(
                slice(t * d, t * d + (o - 1) * s + 1, s)
                for t, d, o, s in zip(taps, self.dilation_rate, outs, self.strides))

    def _new_plan(self, shape):
        """A PoolPlan for channels-first inputs of `shape` where the kernels can pad, else
        False (padded here instead)."""
        padding = self._kernel_padding(self._pads(shape[2:]))
        if padding is None:
            return False
        return self._kernel_plan(shape, padding)

    def _kernel_plan(self, shape, padding):
        """The PoolPlan of this layer's window for channels-first inputs of `shape`, its
        kernels padding by `padding` per axis (both sides; -inf for max)."""
        if self.kind == "max":
            return ops.PoolPlan("max", shape, self.pool_size, self.strides, padding,
                                dilation=self.dilation_rate)
        return ops.PoolPlan(self.kind, shape, self.pool_size, self.strides, padding,
                            self.count_include_pad)

    # ------------------------------------------------------------------ training
    #
    # On the maps channels-first (the layout they arrive in converted as at inference),
    # with the padding rules of _forward (2x2/2 max pooling of even maps on window codes).
    # The cache: (the max's codes, or indices and with relu_gate its maxima, or the explicit
    # average's divisors, the shape pooled, the kernels' padding, the explicit padding to
    # crop off the gradient or None, the maps' layout, the input's layout).

    @property
    def _takes_relu_gate(self):
        return self.kind == "max"

    def _codes_apply(self, shape, padding):
        """Whether max pooling of channels-first `shape` with the kernels' `padding` (None:
        padded here) runs on window codes (ops.max_pool2d_codes): 2x2 windows at stride 2
        tiling even, unpadded planes."""
        return (self.rank == 2 and self.pool_size == (2, 2) and self.strides == (2, 2)
                and not self._dilated and padding is not None and not any(padding)
                and shape[2] % 2 == 0
                and shape[3] % 2 == 0)

    def _train_forward_maps(self, x, layout, training, logits=False, relu_gate=False):
        pooled, maps = L.maps(x, layout, self.data_format)
        unpadded = pooled.shape
        pads = self._pads(unpadded[2:])
        padding = self._kernel_padding(pads)
        crop = None if padding is not None else pads  # padded here, pooled without padding
        if crop is not None:
            pooled = self._padded(pooled, pads)
        k, st = self.pool_size, self.strides
        if self.kind == "max" and self._codes_apply(pooled.shape, padding):
            y, codes = ops.max_pool2d_codes(pooled, relu_gate=relu_gate)
            extra = ("codes", codes)
        elif self.kind == "max":
            y, indices = _MAX[self.rank](pooled, k, st, padding or 0,
                                         dilation=self.dilation_rate, return_indices=True)
            extra = ("indices", indices, y if relu_gate else None)
        elif crop is None:
            y = _AVG[self.rank](pooled, k, st, padding, count_include_pad=self.count_include_pad)
            extra = None
        else:
            extra = self._counts(unpadded, pads)
            y = np.ascontiguousarray(self._window_sums(pooled) / extra,
                                     np.float32)
        return y, maps, (extra, pooled.shape, padding or 0, crop, maps, layout)

    def _backward_maps(self, dy, cache, grads, needs_input_grad=True):
        extra, shape, padding, crop, maps, layout = cache
        k, st = self.pool_size, self.strides
        if self.kind == "max" and extra[0] == "codes":
            dx = ops.max_pool2d_codes_backward(dy, extra[1])
        elif self.kind == "max":
            _, indices, gate = extra
            if gate is not None:  # the ReLU before: no gradient where the maximum is 0
                dy = ops.relu_backward(dy, gate)
            dx = _MAX_BACKWARD[self.rank](dy, indices, shape)
        elif crop is None:
            dx = _AVG_BACKWARD[self.rank](dy, shape, k, st, padding,
                                          count_include_pad=self.count_include_pad)
        else:
            dx = self._window_sums_backward(dy / extra, shape)
        if crop is not None:  # the explicit padding's gradient goes nowhere
            dx = dx[(Ellipsis,) + tuple(slice(a, n - b) for (a, b), n in zip(crop, shape[2:]))]
        return L.convert(np.ascontiguousarray(dx), maps, layout)

    def get_config(self):
        config = {**super().get_config(), "pool_size": self.pool_size,
                  "strides": self.strides, "padding": self.padding,
                  "data_format": self.data_format}
        if self.count_include_pad:
            config["count_include_pad"] = True
        if self._dilated:
            config["dilation_rate"] = self.dilation_rate
        return config


class _Global(TrainsOnMaps, Layer):
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

    # Training on the maps channels-first; the cache: (the max's indices or None, the
    # maps' shape, their layout, the input's). The maximum of a plane takes its whole
    # gradient (the first one: fastdl.ops and PyTorch's max pooling; Keras' torch backend
    # shares it among ties).

    def _train_forward_maps(self, x, layout, training, logits=False):
        maps, maps_layout = L.maps(x, layout, self.data_format)
        if self.kind == "avg":
            y, indices = ops.global_avg_pool(maps), None
        else:
            y, indices = ops.global_max_pool(maps, return_indices=True)
        cache = (indices, maps.shape, maps_layout, layout)
        if self.keepdims:
            return y, maps_layout, cache
        return y.reshape(y.shape[:2]), L.KERAS, cache

    def _backward_maps(self, dy, cache, grads, needs_input_grad=True):
        indices, shape, maps_layout, layout = cache
        dy = dy.reshape(shape[:2] + (1,) * self.rank)  # (N, C) or (N, C, 1..): no copy
        if self.kind == "avg":
            dx = ops.global_avg_pool_backward(dy, shape)
        else:
            dx = ops.global_max_pool_backward(dy, indices, shape)
        return L.convert(dx, maps_layout, layout)

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
