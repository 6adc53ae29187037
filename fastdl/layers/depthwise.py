"""Depthwise and separable convolutions: DepthwiseConv1D/2D (kernel [*k, in_channels,
depth_multiplier]) and SeparableConv1D/2D (depthwise_kernel, pointwise_kernel [1.., in *
depth_multiplier, filters], bias), Keras 3's arguments.

Depthwise layers are grouped convolutions with one group per input channel: the plans
run the kernels' direct depthwise path. A separable layer is a depthwise plan (no bias)
then a 1x1 plan (bias, activation).
"""
import numpy as np

from fastdl import _validate as v
from fastdl import activations, initializers, regularizers
from fastdl.layers import layout as L
from fastdl.layers.conv import _BACKWARD, _Conv, _PLANS
from fastdl.layers.core import _initializer_name, apply_activation, elementwise


def _no_kernel_regularizer(layer, kwargs, names):
    """Keras names these layers' kernel regularizers after their kernels and refuses
    kernel_regularizer: so does fastdl, naming the ones to use."""
    if "kernel_regularizer" in kwargs:
        raise TypeError(f"{type(layer).__name__}: unexpected argument kernel_regularizer "
                        f"(this layer takes {names})")


def _depthwise_torch_weight(kernel, rank):
    """Keras' [*k, in, multiplier] as PyTorch's grouped [in * multiplier, 1, *k] (output
    channel c * multiplier + m)."""
    k = kernel.reshape(kernel.shape[:rank] + (-1,))            # [*k, in * multiplier]
    return np.ascontiguousarray(np.moveaxis(k, -1, 0)[:, None])  # [in * mult, 1, *k]


def _depthwise_keras_kernel(w, shape):
    """The inverse of _depthwise_torch_weight: [in * multiplier, 1, *k] as Keras' `shape`
    [*k, in, multiplier]."""
    return np.ascontiguousarray(np.moveaxis(w[:, 0], 0, -1)).reshape(shape)


class _Depthwise(_Conv):
    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, **kwargs):
        _no_kernel_regularizer(self, kwargs, "depthwise_regularizer and bias_regularizer")
        depthwise_regularizer = regularizers.check(depthwise_regularizer,
                                                   "depthwise_regularizer")
        super().__init__(1, kernel_size, strides, padding, data_format, dilation_rate, 1,
                         activation, use_bias, depthwise_initializer, bias_initializer,
                         depthwise_regularizer, bias_regularizer, **kwargs)
        self.depth_multiplier = v.positive_int(depth_multiplier, "depth_multiplier")
        self.depthwise_initializer = self.kernel_initializer
        self.depthwise_regularizer = self.kernel_regularizer
        self.filters = None  # in_channels * depth_multiplier, known once built

    def build(self, input_shape):
        channels = input_shape[self._channel_axis()]
        self.groups = channels
        self.filters = channels * self.depth_multiplier
        self.kernel = self.add_weight("kernel", self.kernel_size + (channels,
                                                                    self.depth_multiplier),
                                      self.depthwise_initializer,
                                      regularizer=self.depthwise_regularizer)
        self.bias = (self.add_weight("bias", (self.filters,), self.bias_initializer,
                                     regularizer=self.bias_regularizer)
                     if self.use_bias else None)

    def _torch_weight(self):
        return _depthwise_torch_weight(self.kernel.value, self.rank)

    def _keras_kernel(self, w):
        return _depthwise_keras_kernel(w, self.kernel.shape)

    def get_config(self):
        config = super().get_config()
        for key in ("filters", "groups", "kernel_initializer", "kernel_regularizer"):
            config.pop(key)
        config["depth_multiplier"] = self.depth_multiplier
        config["depthwise_initializer"] = _initializer_name(self.depthwise_initializer)
        config["depthwise_regularizer"] = regularizers.serialize(self.depthwise_regularizer)
        return config


class DepthwiseConv1D(_Depthwise):
    """Each channel of (N, steps, C) convolved with its own depth_multiplier kernels."""
    rank = 1


class DepthwiseConv2D(_Depthwise):
    """Each channel of (N, H, W, C) convolved with its own depth_multiplier kernels
    (MobileNet's depthwise layer)."""
    rank = 2


class _Separable(_Conv):
    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, **kwargs):
        _no_kernel_regularizer(self, kwargs, "depthwise_regularizer, pointwise_regularizer "
                                             "and bias_regularizer")
        depthwise_regularizer = regularizers.check(depthwise_regularizer,
                                                   "depthwise_regularizer")
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, 1,
                         activation, use_bias, depthwise_initializer, bias_initializer,
                         depthwise_regularizer, bias_regularizer, **kwargs)
        self.depth_multiplier = v.positive_int(depth_multiplier, "depth_multiplier")
        self.depthwise_initializer = self.kernel_initializer
        self.depthwise_regularizer = self.kernel_regularizer
        self.pointwise_initializer = initializers.check(pointwise_initializer,
                                                        "pointwise_initializer")
        self.pointwise_regularizer = regularizers.check(pointwise_regularizer,
                                                        "pointwise_regularizer")

    _folds_into_plan = False  # two plans per call

    def build(self, input_shape):
        channels = input_shape[self._channel_axis()]
        self._in_channels = channels
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel", self.kernel_size + (channels, self.depth_multiplier),
            self.depthwise_initializer, regularizer=self.depthwise_regularizer)
        self.pointwise_kernel = self.add_weight(
            "pointwise_kernel", (1,) * self.rank + (channels * self.depth_multiplier,
                                                    self.filters),
            self.pointwise_initializer, regularizer=self.pointwise_regularizer)
        self.bias = (self.add_weight("bias", (self.filters,), self.bias_initializer,
                                     regularizer=self.bias_regularizer)
                     if self.use_bias else None)

    def _pointwise_weight(self):
        r = self.rank
        return np.transpose(self.pointwise_kernel.value, (r + 1, r) + tuple(range(r)))

    def _plan(self, spatial, pre_activation=False):
        """(depthwise plan, pointwise plan): with the activation fused into the pointwise
        one, or (pre_activation, training) without it."""
        key = self._plan_key(spatial)
        key = ("pre-activation", key) if pre_activation else key
        plans = self._plans.get(key)
        if plans is None:
            channels = self._in_channels
            depthwise = _PLANS[self.rank](
                _depthwise_torch_weight(self.depthwise_kernel.value, self.rank), None,
                self.strides, self._pads(spatial), self.dilation_rate, channels)
            act = activations.get(None) if pre_activation else self.activation
            pointwise = _PLANS[self.rank](self._pointwise_weight(), self._bias(), 1, 0, 1, 1,
                                          act.fused, negative_slope=act.alpha)
            plans = self._plans[key] = (depthwise, pointwise)
        return plans

    def _update_plan(self, key, plans):
        depthwise, pointwise = plans
        depthwise.set_weights(_depthwise_torch_weight(self.depthwise_kernel.value, self.rank))
        pointwise.set_weights(self._pointwise_weight(), self._bias())

    def _forward(self, x, layout):
        x, out_layout = self._maps(x, layout)
        depthwise, pointwise = self._plan(x.shape[2:])
        y = pointwise(depthwise(x))
        if self.activation.fused is None and self.activation.name != "linear":
            return apply_activation(self.activation, y, out_layout)
        return y, out_layout

    def _train_forward_maps(self, x, layout, training, logits=False, relu_gated=False):
        """As _Conv's, through the depthwise plan (its output kept) then the pointwise
        one."""
        xc, maps = self._maps(x, layout)
        act = self.activation
        fused = act.fused is not None and not act.gradient_reads_input and not logits
        depthwise, pointwise = self._plan(xc.shape[2:], pre_activation=not fused)
        d = depthwise(xc)
        if fused:
            z, y, y_layout = None, pointwise(d), maps
        else:
            z = pointwise(d)
            y_layout = maps if not logits and elementwise(act) else L.KERAS
            z = L.to_keras(z, maps) if y_layout == L.KERAS else z
            y = act(z) if act.name != "linear" else z
        return y, y_layout, (xc, z, y, maps, y_layout, logits or relu_gated, layout, d)

    def _backward_maps(self, dy, cache, grads, needs_input_grad=True):
        xc, z, y, maps, y_layout, pre_activation, layout, d = cache
        dz = L.convert(dy if pre_activation else self.activation.gradient(dy, z, y), y_layout,
                       maps)
        backward = _BACKWARD[self.rank]
        dd, dpw, db = backward(dz, d, self._pointwise_weight(), bias=self.bias is not None)
        dx, ddw, _ = backward(dd, xc, _depthwise_torch_weight(self.depthwise_kernel.value,
                                                              self.rank),
                              self.strides, self._pads(xc.shape[2:]), self.dilation_rate,
                              self._in_channels, bias=False,
                              needs_input_grad=needs_input_grad)
        grads.add(self.depthwise_kernel,
                  _depthwise_keras_kernel(ddw, self.depthwise_kernel.shape))
        grads.add(self.pointwise_kernel, self._keras_kernel(dpw))
        if self.bias is not None:
            grads.add(self.bias, db)
        return None if dx is None else L.convert(dx, maps, layout)

    def get_config(self):
        config = super().get_config()
        for key in ("groups", "kernel_initializer", "kernel_regularizer"):
            config.pop(key)
        config.update(depth_multiplier=self.depth_multiplier,
                      depthwise_initializer=_initializer_name(self.depthwise_initializer),
                      pointwise_initializer=_initializer_name(self.pointwise_initializer),
                      depthwise_regularizer=regularizers.serialize(self.depthwise_regularizer),
                      pointwise_regularizer=regularizers.serialize(self.pointwise_regularizer))
        return config


class SeparableConv1D(_Separable):
    """Depthwise 1-D convolution, then a pointwise one to `filters` channels."""
    rank = 1


class SeparableConv2D(_Separable):
    """Depthwise 2-D convolution, then a 1x1 one to `filters` channels."""
    rank = 2
