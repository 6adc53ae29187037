"""Activation layers with parameters: ReLU (max_value, negative_slope, threshold),
LeakyReLU, PReLU, ELU, Softmax (Keras 3's arguments and defaults).

Elementwise ones take any internal layout as it is. Those the kernels compute (ReLU as
plain relu or relu6, LeakyReLU, ELU with alpha 1) say so through `fusible_activation()`,
and a compiled model fuses them into the convolution or Dense before them.
"""
import numpy as np

from fastdl import _validate as v
from fastdl import activations, initializers, ops
from fastdl.layers import layout as L
from fastdl.layers._axes import axis_arg, feature_axes
from fastdl.layers.base import Layer, TrainsOnMaps
from fastdl.layers.core import _initializer_name


class _Elementwise(TrainsOnMaps, Layer):
    def fusible_activation(self):
        """The activations.Activation a kernel's write-back computes, or None."""
        return None

    def _forward(self, x, layout):
        return np.asarray(self._apply(x), dtype=np.float32), layout

    def _train_forward_maps(self, x, layout, training, logits=False):
        return np.asarray(self._apply(x), dtype=np.float32), layout, x  # any layout

    def _backward_maps(self, dy, x, grads, needs_input_grad=True):
        return np.asarray(dy * self._derivative(x), dtype=np.float32)

    def _derivative(self, x):
        """The derivative at x (PyTorch's values at the kinks: the lower side's)."""
        raise NotImplementedError


def _non_negative(value, name, allow_none=False):
    if value is None and allow_none:
        return None
    value = v.real(value, name)
    if value < 0:
        raise ValueError(f"{name}: expected a value >= 0, got {value!r}")
    return value


class ReLU(_Elementwise):
    """x above threshold (clipped to max_value), negative_slope * (x - threshold) below."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = _non_negative(max_value, "max_value", allow_none=True)
        self.negative_slope = _non_negative(negative_slope, "negative_slope")
        self.threshold = _non_negative(threshold, "threshold")

    def fusible_activation(self):
        if self.threshold == 0 and self.negative_slope == 0:
            if self.max_value is None:
                return activations.get("relu")
            if self.max_value == 6:
                return activations.get("relu6")
        if self.threshold == 0 and self.max_value is None:
            return activations.Activation("leaky_relu", _leaky(self.negative_slope),
                                          "leaky_relu", self.negative_slope)
        return None

    def _apply(self, x):
        fused = self.fusible_activation()
        if fused is not None:
            return fused(x)
        t = np.float32(self.threshold)
        y = np.where(x > t, x, np.float32(0))
        if self.max_value is not None:
            y = np.minimum(y, np.float32(self.max_value))
        if self.negative_slope:
            y = y + np.float32(self.negative_slope) * np.minimum(x - t, np.float32(0))
        return y

    def _derivative(self, x):
        d = np.where(x > np.float32(self.threshold), np.float32(1),
                     np.float32(self.negative_slope))
        if self.max_value is not None:
            d = np.where(x >= np.float32(self.max_value), np.float32(0), d)
        return d

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


def _leaky(slope):
    return lambda x: ops.leaky_relu(x, slope)


class LeakyReLU(_Elementwise):
    """x for x >= 0, negative_slope * x below (Keras 3's default slope 0.3)."""

    def __init__(self, negative_slope=0.3, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = _non_negative(negative_slope, "negative_slope")

    def fusible_activation(self):
        return activations.Activation("leaky_relu", _leaky(self.negative_slope), "leaky_relu",
                                      self.negative_slope)

    def _apply(self, x):
        return ops.leaky_relu(x, self.negative_slope)

    def _derivative(self, x):
        return np.where(x > 0, np.float32(1), np.float32(self.negative_slope))

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(_Elementwise):
    """x for x > 0, alpha * (exp(x) - 1) below."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = v.real(alpha, "alpha")

    def fusible_activation(self):
        return activations.get("elu") if self.alpha == 1.0 else None

    def _apply(self, x):
        if self.alpha == 1.0:
            return ops.elu(x)
        x64 = x.astype(np.float64)
        return np.where(x64 > 0, x64, self.alpha * np.expm1(np.minimum(x64, 0)))

    def _derivative(self, x):
        return np.where(x > 0, 1.0, self.alpha * np.exp(np.minimum(x, 0).astype(np.float64)))

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class PReLU(Layer):
    """max(x, 0) + alpha * min(x, 0) with a learned alpha per input position (shape of the
    input without the batch; axes in shared_axes share one)."""

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None,
                 alpha_constraint=None, shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.check(
            alpha_initializer.lower() if isinstance(alpha_initializer, str)
            else alpha_initializer, "alpha_initializer")
        if alpha_regularizer is not None or alpha_constraint is not None:
            raise ValueError("alpha_regularizer / alpha_constraint: not supported by fastdl "
                             "(training arrives with fit)")
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = shared_axes if isinstance(shared_axes, (list, tuple)) else [shared_axes]
            self.shared_axes = tuple(v.integer(a, "shared_axes", 1) for a in axes)

    def check_input(self, input_shape, first=False):
        if self.shared_axes and max(self.shared_axes) >= len(input_shape):
            self._refuse(input_shape, f"a shape with the axes {self.shared_axes}")
        rest = [s for i, s in enumerate(input_shape[1:], start=1)
                if not self.shared_axes or i not in self.shared_axes]
        if None in rest:
            self._refuse(input_shape, "known sizes on every axis that is not shared")
        if not first:
            want = self.input_shape
            if len(input_shape) != len(want) or any(
                    a != b for i, (a, b) in enumerate(zip(input_shape, want))
                    if i and (not self.shared_axes or i not in self.shared_axes)):
                self._refuse(input_shape, want)

    def build(self, input_shape):
        shape = [1 if self.shared_axes and i in self.shared_axes else s
                 for i, s in enumerate(input_shape[1:], start=1)]
        self.alpha = self.add_weight("alpha", tuple(shape), self.alpha_initializer)

    def _forward(self, x, layout):
        alpha = self.alpha.value
        if layout == L.CF and x.ndim > 2:  # alpha (*S, C) held as (C, *S)
            alpha = np.moveaxis(alpha, -1, 0)
        else:
            x, layout = L.to_keras(x, layout), L.KERAS
        return np.asarray(np.maximum(x, 0) + alpha * np.minimum(x, 0), np.float32), layout

    def _train_forward(self, x, training):
        alpha = self.alpha.value
        return np.asarray(np.maximum(x, 0) + alpha * np.minimum(x, 0), np.float32), x

    def _backward(self, dy, x, grads):
        alpha = self.alpha.value
        shared = tuple(i for i, s in enumerate(alpha.shape, start=1) if s == 1 and x.shape[i] != 1)
        grads.add(self.alpha, (dy * np.minimum(x, 0)).sum(axis=(0,) + shared, dtype=np.float64
                                                          ).reshape(alpha.shape))
        return np.asarray(dy * np.where(x > 0, np.float32(1), alpha), np.float32)

    def get_config(self):
        return {**super().get_config(),
                "alpha_initializer": _initializer_name(self.alpha_initializer),
                "shared_axes": self.shared_axes}


class Softmax(Layer):
    """exp(x) / sum(exp(x)) along `axis` (an int or a tuple of ints)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis_arg(axis)

    def _axes(self, rank):
        return list(feature_axes(self, rank))

    def check_input(self, input_shape, first=False):
        try:
            self._axes(len(input_shape))
        except ValueError:
            self._refuse(input_shape, f"a shape with the feature axes {self.axis}")

    def _forward(self, x, layout):
        rank = x.ndim
        axes = self._axes(rank)
        if layout == L.CF and rank > 2:  # Keras axis a of (N, *S, C) held as (N, C, *S)
            axes = sorted(1 if a == rank - 1 else a + 1 for a in axes)
        else:
            x, layout = L.to_keras(x, layout), L.KERAS
        if len(axes) == 1:
            return ops.softmax(x, axis=axes[0]), layout
        x64 = x.astype(np.float64)
        e = np.exp(x64 - x64.max(axis=tuple(axes), keepdims=True))
        return (e / e.sum(axis=tuple(axes), keepdims=True)).astype(np.float32), layout

    def _train_forward(self, x, training):
        y = self._forward(x, L.KERAS)[0]
        return y, y

    def _backward(self, dy, y, grads):
        axes = tuple(self._axes(y.ndim))
        dot = (dy * y).sum(axis=axes, keepdims=True, dtype=np.float64)
        return np.asarray(y * (dy - dot), np.float32)

    def get_config(self):
        return {**super().get_config(),
                "axis": self.axis[0] if len(self.axis) == 1 else self.axis}
