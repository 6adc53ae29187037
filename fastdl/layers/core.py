"""Core layers: Input/InputLayer, Dense, Activation, Dropout, Flatten, Reshape."""
import math

import numpy as np

from fastdl import _validate as v
from fastdl import _random, activations, initializers, ops, regularizers
from fastdl.layers import layout as L
from fastdl.layers.base import Layer, TrainsOnMaps, _shape_arg
from fastdl.ops._plan import adopt_weights
from fastdl.layers.node import Node


class InputLayer(Layer):
    """The model's input: `shape` without the batch axis (None for any extent)."""

    def __init__(self, shape=None, batch_size=None, name=None, dtype=None, **kwargs):
        if shape is None:
            raise ValueError("shape: an InputLayer needs the input's shape (without the batch "
                             "axis)")
        super().__init__(name=name, **kwargs)
        self.shape = _shape_arg(shape)
        # Integer inputs (token indices for an Embedding) stay integers; anything else is
        # computed in float32.
        if dtype in (None, "float32", np.float32, "float16", "float64", "bfloat16"):
            self.dtype = "float32"
        elif str(np.dtype(dtype)) in ("int32", "int64", "uint8", "int16", "uint16", "uint32"):
            self.dtype = "int64"
        else:
            raise ValueError(f"dtype: expected a float or int dtype, got {dtype!r}")
        self.batch_size = None if batch_size is None else v.integer(batch_size, "batch_size", 1)
        self.built = True
        self.input_shape = self.output_shape = (self.batch_size,) + self.shape
        self.output = Node(self, None, self.output_shape).outputs

    def __setstate__(self, state):
        super().__setstate__(state)
        self.output = Node(self, None, self.output_shape).outputs  # its node 0 again

    def _forward(self, x, layout):
        return x, layout

    def _input_array(self, x, name):
        if self.dtype == "int64":
            return v.index_array(x, name)
        return super()._input_array(x, name)

    def get_config(self):
        config = {"name": self.name, "shape": self.shape, "batch_size": self.batch_size}
        if self.dtype != "float32":
            config["dtype"] = self.dtype
        return config


def Input(shape=None, batch_size=None, name=None, dtype=None):
    """A model input of `shape` (without the batch axis), as keras.Input: the
    SymbolicTensor a functional model starts from. dtype 'int32'/'int64' keeps integer
    inputs (token indices) as integers; any other is computed in float32."""
    return InputLayer(shape=shape, batch_size=batch_size, name=name, dtype=dtype).output


class Dense(Layer):
    """activation(x @ kernel + bias) over the last axis; kernel [in, units] (Keras)."""

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.units = v.positive_int(units, "units")
        self.activation = activations.get(activation)
        self.use_bias = v.flag(use_bias, "use_bias")
        self.kernel_initializer = initializers.check(kernel_initializer, "kernel_initializer")
        self.bias_initializer = initializers.check(bias_initializer, "bias_initializer")
        self.kernel_regularizer = regularizers.check(kernel_regularizer, "kernel_regularizer")
        self.bias_regularizer = regularizers.check(bias_regularizer, "bias_regularizer")

    def check_input(self, input_shape, first=False):
        if len(input_shape) < 2 or input_shape[-1] is None:
            self._refuse(input_shape, "(..., features) with a known number of features")
        if not first and input_shape[-1] != self.input_shape[-1]:
            self._refuse(input_shape, self.input_shape)

    def build(self, input_shape):
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units),
                                      self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.bias = (self.add_weight("bias", (self.units,), self.bias_initializer,
                                     regularizer=self.bias_regularizer)
                     if self.use_bias else None)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def _kernel_for(self, key):
        """The kernel [in, units] with its rows in the order the input arrives: a CfFlat
        input has its features in (channel, position) order, Keras' Flatten in (position,
        channel) order."""
        kernel = self.kernel.value
        if isinstance(key, L.CfFlat):
            s = math.prod(key.spatial)
            kernel = kernel.reshape(s, kernel.shape[0] // s, self.units).transpose(1, 0, 2)
            kernel = kernel.reshape(-1, self.units)
        return kernel

    def _plan(self, key):
        """The plan for inputs of layout `key`; "pre-activation" (training): Keras' layout,
        without the activation."""
        plan = self._plans.get(key)
        if plan is None:
            act = activations.get(None) if key == "pre-activation" else self.activation
            plan = self._plans[key] = self._new_plan(self._kernel_for(key), self._bias(), act)
        return plan

    @staticmethod
    def _new_plan(kernel, bias, activation):
        """A plan computing activation(x @ kernel + bias), kernel [in, units] (packed from
        that layout: a training step's new kernel is repacked without a transposed copy)."""
        return ops.LinearPlan(kernel, bias, activation.fused, negative_slope=activation.alpha,
                              transposed=True)

    def _rows(self, x, layout):
        """(x as the plan takes it, the plan key): a CfFlat input as it is, anything else
        in Keras' layout."""
        if isinstance(layout, L.CfFlat):
            return x, layout
        return L.to_keras(x, layout), L.KERAS

    def _bias(self):
        return None if self.bias is None else self.bias.value

    def _update_plan(self, key, plan):
        adopt_weights(plan, self._kernel_for(key), self._bias())

    def _forward(self, x, layout):
        x, key = self._rows(x, layout)
        y = self._plan(key)(x)
        if self.activation.fused is None and self.activation.name != "linear":
            y = self.activation(y)
        return y, L.KERAS

    def _train_forward(self, x, training, logits=False):
        """logits=True: keep the pre-activation output (_logits) and take the gradient
        for it in _backward (a loss fused with the activation)."""
        rows = x.reshape(-1, x.shape[-1])
        act = self.activation
        if act.fused is not None and not act.gradient_reads_input and not logits:
            z, y = None, self._plan(L.KERAS)(rows)  # the activation fused, its output kept
        else:
            z = self._plan("pre-activation")(rows)
            y = act(z) if act.name != "linear" else z
        shape = x.shape[:-1] + (self.units,)
        return y.reshape(shape), (rows, z, y, logits, x.shape)

    @staticmethod
    def _logits(cache):
        return cache[1]

    _input_grad_optional = True  # _backward takes needs_input_grad (backprop.py)

    def _backward(self, dy, cache, grads, needs_input_grad=True):
        rows, z, y, logits, x_shape = cache
        dy = dy.reshape(y.shape)
        dz = dy if logits else self.activation.gradient(dy, z, y)
        kernel = self.kernel.value
        dx, dk, db = ops.linear_backward(dz, rows, kernel, bias=self.bias is not None,
                                         needs_input_grad=needs_input_grad, transposed=True)
        grads.add(self.kernel, dk)
        if self.bias is not None:
            grads.add(self.bias, db)
        return None if dx is None else dx.reshape(x_shape)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": self.activation.name, "use_bias": self.use_bias,
                "kernel_initializer": _initializer_name(self.kernel_initializer),
                "bias_initializer": _initializer_name(self.bias_initializer),
                **regularizer_config(self)}


# Activations computed along an axis (the Keras last one), not element by element.
_AXIS_ACTIVATIONS = {"softmax", "log_softmax"}


def elementwise(activation):
    """Whether `activation` acts element by element, so any layout may hold its input
    (custom functions, whose nature is unknown, do not count)."""
    return (activation.name in activations.BUILTIN
            and activation.name not in _AXIS_ACTIVATIONS)


def apply_activation(activation, x, layout):
    """An activation on an internal array: element by element in any layout, softmax-like
    ones (and custom functions) on the Keras layout."""
    if elementwise(activation):
        return activation(x), layout
    return activation(L.to_keras(x, layout)), L.KERAS


class Activation(TrainsOnMaps, Layer):
    """Applies an activation (a Keras name, a registered name or a callable)."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def _forward(self, x, layout):
        return apply_activation(self.activation, x, layout)

    def _train_forward_maps(self, x, layout, training, logits=False):
        """Element by element in the layout x comes in; softmax-like activations (and
        logits=True: the loss reads the input) in Keras'."""
        if logits or not elementwise(self.activation):
            x, y_layout = L.to_keras(x, layout), L.KERAS
        else:
            y_layout = layout
        y = self.activation(x)
        keep = x if self.activation.gradient_reads_input or logits else None
        return y, y_layout, (keep, y, logits, y_layout, layout)

    @staticmethod
    def _logits(cache):
        return cache[0]

    def _backward_maps(self, dy, cache, grads, needs_input_grad=True):
        x, y, logits, y_layout, layout = cache
        return L.convert(dy if logits else self.activation.gradient(dy, x, y), y_layout,
                         layout)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation.name}


class Dropout(TrainsOnMaps, Layer):
    """Zeroes a fraction `rate` of the inputs while training; the identity at inference."""
    _identity_at_inference = True  # a compiled model drops the step
    _elementwise_mask = True  # one draw per element (the spatial dropouts: per map)

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = v.real(rate, "rate", 0.0, 1.0)
        self.noise_shape = noise_shape
        self.seed = seed

    def _forward(self, x, layout):
        return x, layout

    def _mask_shape(self, shape):
        """The shape of the drawn mask (broadcast over the input): noise_shape, its None
        entries taken from the input."""
        if self.noise_shape is None:
            return shape
        return tuple(s if n is None else n for n, s in zip(self.noise_shape, shape))

    def _train_forward_maps(self, x, layout, training, logits=False):
        """Drops in the layout x comes in when the mask is drawn element by element; a
        noise_shape (and the spatial dropouts') names Keras' axes: then in Keras'."""
        y_layout = layout
        if self.noise_shape is not None or not self._elementwise_mask:
            x, y_layout = L.to_keras(x, layout), L.KERAS
        if not training or self.rate == 0.0:
            return x, y_layout, (None, y_layout, layout)
        factor = _random.dropout_mask(self, self._mask_shape(x.shape), self.rate)
        return x * factor, y_layout, (factor, y_layout, layout)

    def _backward_maps(self, dy, cache, grads, needs_input_grad=True):
        factor, y_layout, layout = cache
        return L.convert(dy if factor is None else dy * factor, y_layout, layout)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape,
                "seed": self.seed}


class _SpatialDropout(Dropout):
    """Drops whole feature maps while training; the identity at inference."""
    rank = None
    _elementwise_mask = False

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)
        self.data_format = data_format_arg(data_format)

    def check_input(self, input_shape, first=False):
        if len(input_shape) != self.rank + 2:
            self._refuse(input_shape, f"a {self.rank + 2}-D shape")

    def _mask_shape(self, shape):
        """One draw per sample and channel, shared over the spatial axes."""
        if self.data_format == "channels_first":
            return shape[:2] + (1,) * self.rank
        return (shape[0],) + (1,) * self.rank + (shape[-1],)

    def get_config(self):
        config = {**super().get_config(), "data_format": self.data_format}
        config.pop("noise_shape", None)
        return config


class SpatialDropout1D(_SpatialDropout):
    """Dropout of whole channels of (N, steps, C) while training; the identity here."""
    rank = 1

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("data_format")
        return config


class SpatialDropout2D(_SpatialDropout):
    """Dropout of whole feature maps of (N, H, W, C) while training; the identity here."""
    rank = 2


class SpatialDropout3D(_SpatialDropout):
    """Dropout of whole feature maps of (N, D, H, W, C) while training; the identity here."""
    rank = 3


class Flatten(Layer):
    """(N, ...) -> (N, prod(...)) in Keras' order: channels last. (With data_format=
    'channels_first' the input is (N, C, *S) and Keras moves C last before flattening.)
    Channels-first features are not transposed: they leave as CfFlat, which a following
    Dense takes by permuting its kernel once."""
    _view_at_inference = True  # its output, where not a copy, is a view of its input

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format_arg(data_format)

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        return (input_shape[0], None if None in rest else math.prod(rest))

    def _forward(self, x, layout):
        n = x.shape[0]
        if self.data_format == "channels_last" and layout == L.CF and x.ndim > 2:
            return x.reshape(n, math.prod(x.shape[1:])), L.CfFlat(x.shape[2:])
        x = L.to_keras(x, layout)
        if self.data_format == "channels_first" and x.ndim > 2:  # (N, C, *S) in Keras
            return x.reshape(n, math.prod(x.shape[1:])), L.CfFlat(x.shape[2:])
        return x.reshape(n, math.prod(x.shape[1:])), L.KERAS

    def _train_forward(self, x, training):
        if self.data_format == "channels_first" and x.ndim > 2:  # Keras moves C last
            x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
            return x.reshape(x.shape[0], -1), x.shape
        return x.reshape(x.shape[0], -1), x.shape

    def _backward(self, dy, cache, grads):
        dx = dy.reshape(cache)
        if self.data_format == "channels_first" and dx.ndim > 2:
            dx = np.ascontiguousarray(np.moveaxis(dx, -1, 1))
        return dx

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """(N, ...) -> (N, *target_shape); one entry may be -1."""
    _view_at_inference = True  # its output, where not a copy, is a view of its input

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        try:
            items = tuple(target_shape)
        except TypeError:
            raise TypeError(f"target_shape: expected a tuple of ints, got "
                            f"{target_shape!r}") from None
        self.target_shape = tuple(v.integer(i, "target_shape") for i in items)
        if sum(i == -1 for i in self.target_shape) > 1 or any(
                i < -1 or i == 0 for i in self.target_shape):
            raise ValueError(f"target_shape: expected positive sizes and at most one -1, got "
                             f"{self.target_shape}")

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        shape = list(self.target_shape)
        if -1 in shape:
            known = math.prod(s for s in shape if s != -1)
            total = None if None in rest else math.prod(rest)
            shape[shape.index(-1)] = None if total is None else total // known
        return (input_shape[0],) + tuple(shape)

    def check_input(self, input_shape, first=False):
        rest = input_shape[1:]
        if None not in rest:
            total, known = math.prod(rest), math.prod(s for s in self.target_shape if s != -1)
            ok = total % known == 0 if -1 in self.target_shape else total == known
            if not ok:
                self._refuse(input_shape, f"(None, ...) with {known} values per sample "
                             f"(target_shape {self.target_shape})")
        super().check_input(input_shape, first)

    def _forward(self, x, layout):
        x = L.to_keras(x, layout)
        shape = self.compute_output_shape((None,) + x.shape[1:])[1:]  # -1 resolved: N may be 0
        return x.reshape((x.shape[0],) + shape), L.KERAS

    def _train_forward(self, x, training):
        return self._forward(x, L.KERAS)[0], x.shape

    def _backward(self, dy, cache, grads):
        return dy.reshape(cache)

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}


def data_format_arg(data_format):
    """'channels_last' (the default, None) or 'channels_first'."""
    if data_format is None:
        return "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format: expected 'channels_last' or 'channels_first', got "
                         f"{data_format!r}")
    return data_format


def regularizer_config(layer):
    """The kernel_regularizer / bias_regularizer entries of a layer's config."""
    return {"kernel_regularizer": regularizers.serialize(layer.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(layer.bias_regularizer)}


def _initializer_name(initializer):
    """An initializer as a layer's config gives it: its name, an Initializer's config dict,
    a function's name."""
    if isinstance(initializer, initializers.Initializer):
        return initializers.serialize(initializer)
    return initializer if isinstance(initializer, str) else getattr(
        initializer, "__name__", repr(initializer))
