"""Convolution layers: Conv1D, Conv2D, Conv3D (Keras arguments and weights) over the
rank-generic convolution plans of fastdl.ops.

Weights keep Keras' layout, kernel [*kernel_size, in_channels / groups, filters]; the plans
get PyTorch's [filters, in_channels / groups, *kernel_size]. Maps are computed
channels-first: a channels_last input converts once (layout.py) and the output stays
channels-first for the next spatial layer.
"""
import numpy as np

from fastdl import _validate as v
from fastdl import activations, initializers, ops, regularizers
from fastdl.layers import layout as L
from fastdl.layers.base import Layer, TrainsOnMaps
from fastdl.ops._plan import adopt_weights
from fastdl.ops.conv_backward import conv_backward_checked
from fastdl.layers.core import (_initializer_name, apply_activation, data_format_arg,
                                elementwise, regularizer_config)

_PLANS = {1: ops.Conv1dPlan, 2: ops.Conv2dPlan, 3: ops.Conv3dPlan}
_BACKWARD = {1: ops.conv1d_backward, 2: ops.conv2d_backward, 3: ops.conv3d_backward}


def int_tuple(value, name, rank):
    """An int or `rank` ints (>= 1) as a tuple, as Keras' kernel_size / strides take."""
    return v.int_tuple(value, name, rank, 1)


def same_padding(size, kernel, stride, dilation):
    """Keras' (TensorFlow's) 'same' padding along one axis: the output has ceil(size /
    stride) positions, the odd one of the total goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def output_length(size, kernel, stride, dilation, padding):
    """Keras' output extent along one axis (None stays None)."""
    if size is None:
        return None
    if padding == "valid":
        return max(0, (size - dilation * (kernel - 1) - 1) // stride + 1)
    return -(-size // stride)  # 'same' and 'causal'


class _Conv(TrainsOnMaps, Layer):
    rank = None
    _folds_into_plan = True  # a compiled model may run it as a fused plan step

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        rank = self.rank
        self.filters = v.positive_int(filters, "filters")
        self.kernel_size = int_tuple(kernel_size, "kernel_size", rank)
        self.strides = int_tuple(strides, "strides", rank)
        self.dilation_rate = int_tuple(dilation_rate, "dilation_rate", rank)
        paddings = ("valid", "same", "causal") if rank == 1 else ("valid", "same")
        if not isinstance(padding, str) or padding.lower() not in paddings:
            raise ValueError(f"padding: expected one of {', '.join(map(repr, paddings))}, got "
                             f"{padding!r}")
        self.padding = padding.lower()
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"strides: strides > 1 with dilation_rate > 1 is not supported "
                             f"(as in Keras), got strides {self.strides} and dilation_rate "
                             f"{self.dilation_rate}")
        self.data_format = data_format_arg(data_format)
        self.groups = v.positive_int(groups, "groups")
        if self.filters % self.groups:
            raise ValueError(f"groups: expected a divisor of filters ({self.filters}), got "
                             f"{self.groups}")
        self.activation = activations.get(activation)
        self.use_bias = v.flag(use_bias, "use_bias")
        self.kernel_initializer = initializers.check(kernel_initializer, "kernel_initializer")
        self.bias_initializer = initializers.check(bias_initializer, "bias_initializer")
        self.kernel_regularizer = regularizers.check(kernel_regularizer, "kernel_regularizer")
        self.bias_regularizer = regularizers.check(bias_regularizer, "bias_regularizer")

    # Keras shapes: channels_last (N, *S, C), channels_first (N, C, *S).
    def _channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1

    def _spatial(self, shape):
        return tuple(shape[1:-1] if self.data_format == "channels_last" else shape[2:])

    def check_input(self, input_shape, first=False):
        channels = input_shape[self._channel_axis()] if len(input_shape) == self.rank + 2 else None
        want = (f"(None, {', '.join(['...'] * self.rank)}, channels)"
                if self.data_format == "channels_last" else
                f"(None, channels, {', '.join(['...'] * self.rank)})")
        if len(input_shape) != self.rank + 2 or channels is None:
            self._refuse(input_shape, f"a {self.rank + 2}-D shape {want}")
        if first and channels % self.groups:
            raise ValueError(f"{self.name}: groups ({self.groups}) must divide the input "
                             f"channels ({channels})")
        if not first and channels != self.input_shape[self._channel_axis()]:
            self._refuse(input_shape, self.input_shape)
        span = tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation_rate))
        if self.padding == "valid" and any(
                s is not None and s < k for s, k in zip(self._spatial(input_shape), span)):
            self._refuse(input_shape, f"spatial sizes of at least the dilated kernel {span}")

    def build(self, input_shape):
        channels = input_shape[self._channel_axis()]
        self.kernel = self.add_weight(
            "kernel", self.kernel_size + (channels // self.groups, self.filters),
            self.kernel_initializer, regularizer=self.kernel_regularizer)
        self.bias = (self.add_weight("bias", (self.filters,), self.bias_initializer,
                                     regularizer=self.bias_regularizer)
                     if self.use_bias else None)

    def compute_output_shape(self, input_shape):
        spatial = tuple(output_length(s, k, st, d, self.padding) for s, k, st, d in zip(
            self._spatial(input_shape), self.kernel_size, self.strides, self.dilation_rate))
        if self.data_format == "channels_last":
            return (input_shape[0],) + spatial + (self.filters,)
        return (input_shape[0], self.filters) + spatial

    def _pads(self, spatial):
        """(before, after) per axis for inputs of these spatial sizes."""
        if self.padding == "valid":
            return tuple((0, 0) for _ in spatial)
        if self.padding == "causal":
            return ((self.dilation_rate[0] * (self.kernel_size[0] - 1), 0),)
        return tuple(same_padding(s, k, st, d) for s, k, st, d in zip(
            spatial, self.kernel_size, self.strides, self.dilation_rate))

    def _plan_key(self, spatial):
        """Plans depend on the input size only where 'same' padding does (strides > 1)."""
        if self.padding == "same" and max(self.strides) > 1:
            return spatial
        return None

    def _torch_weight(self):
        """Keras' kernel [*k, in/groups, filters] as PyTorch's [filters, in/groups, *k]."""
        r = self.rank
        return np.transpose(self.kernel.value, (r + 1, r) + tuple(range(r)))

    def _bias(self):
        return None if self.bias is None else self.bias.value

    def _plan(self, spatial):
        key = self._plan_key(spatial)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._new_plan(spatial, self._torch_weight(),
                                                     self._bias(), self.activation)
        return plan

    def _new_plan(self, spatial, weight, bias, activation, pads=None):
        """A plan for inputs of these spatial sizes computing activation(conv + bias) with
        weight [filters, in/groups, *k] (PyTorch's layout), padded by `pads` ((before,
        after) per axis) instead of the layer's own padding if given."""
        return _PLANS[self.rank](weight, bias, self.strides,
                                 self._pads(spatial) if pads is None else pads,
                                 self.dilation_rate, self.groups, activation.fused,
                                 negative_slope=activation.alpha)

    def _update_plan(self, key, plan):
        adopt_weights(plan, np.ascontiguousarray(self._torch_weight()), self._bias())

    def _maps(self, x, layout):
        """(x as the plans take it, channels-first, and the layout of the output)."""
        return L.maps(x, layout, self.data_format)

    def _forward(self, x, layout):
        x, out_layout = self._maps(x, layout)
        y = self._plan(x.shape[2:])(x)
        if self.activation.fused is None and self.activation.name != "linear":
            return apply_activation(self.activation, y, out_layout)
        return y, out_layout

    # ------------------------------------------------------------------ training

    def _hands_over_relu(self):
        return (self.activation.name == "relu" and self.activation.fused is not None
                and getattr(self, "activity_regularizer", None) is None)

    def _train_forward_maps(self, x, layout, training, logits=False, relu_gated=False):
        """The maps computed channels-first as at inference and left so when the
        activation is elementwise; otherwise (softmax along Keras' last axis, or
        logits=True: the gradient will arrive for the pre-activation output, which the
        loss reads) the output is in Keras' layout. relu_gated: the layer reading the
        output applies ReLU's gradient (TrainsOnMaps), dy arrives for the pre-activation."""
        xc, maps = self._maps(x, layout)
        spatial = xc.shape[2:]
        act = self.activation
        if act.fused is not None and not act.gradient_reads_input and not logits:
            z, y, y_layout = None, self._run(self._plan(spatial), xc), maps  # fused
        else:
            z = self._run(self._pre_activation_plan(spatial), xc)
            y_layout = maps if not logits and elementwise(act) else L.KERAS
            z = L.to_keras(z, maps) if y_layout == L.KERAS else z
            y = act(z) if act.name != "linear" else z
        return y, y_layout, (xc, z, y, maps, y_layout, logits or relu_gated, layout)

    def _pre_activation_plan(self, spatial):
        key = ("pre-activation", self._plan_key(spatial))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._new_plan(spatial, self._torch_weight(),
                                                     self._bias(), activations.get(None))
        return plan

    @staticmethod
    def _logits(cache):
        return cache[1]

    _input_grad_optional = True  # _backward takes needs_input_grad (backprop.py)

    def _backward_maps(self, dy, cache, grads, needs_input_grad=True):
        xc, z, y, maps, y_layout, pre_activation, layout = cache
        dz = dy if pre_activation else self.activation.gradient(dy, z, y)
        dx, dw, db = self._gradients(L.convert(dz, y_layout, maps), xc, needs_input_grad)
        grads.add(self.kernel, self._keras_kernel(dw))
        if self.bias is not None:
            grads.add(self.bias, db)
        return None if dx is None else L.convert(dx, maps, layout)

    def _run(self, plan, xc):
        """The plan on channels-first maps."""
        return plan(xc)

    def _gradients(self, dz, xc, needs_input_grad):
        """(dx or None, dw in PyTorch's layout, db) from the pre-activation gradient dz,
        with the geometry checked once per input size (_gradient_geometry)."""
        w = np.ascontiguousarray(self._torch_weight())
        return conv_backward_checked(self._gradient_geometry(xc.shape[2:], w),
                                     np.ascontiguousarray(dz, np.float32),
                                     np.ascontiguousarray(xc, np.float32), w,
                                     self.bias is not None, needs_input_grad)

    def _gradient_geometry(self, spatial, w):
        """The plan's checked (stride, flat padding, dilation, groups) for inputs of these
        spatial sizes, kept per plan key (ValueError from the plan's checks the first
        time)."""
        cache = self.__dict__.setdefault("_gradient_geometries", {})
        key = self._plan_key(spatial)
        found = cache.get(key)
        if found is None:
            plan = _PLANS[self.rank]._unpacked(w, self.strides, self._pads(spatial),
                                                      self.dilation_rate, self.groups)
            found = cache[key] = (plan.stride, plan.padding, plan.dilation, plan.groups)
        return found

    def _keras_kernel(self, w):
        """The inverse of _torch_weight: PyTorch's [filters, in/groups, *k] as Keras'
        [*k, in/groups, filters]."""
        return np.transpose(w, tuple(range(2, self.rank + 2)) + (1, 0))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": self.dilation_rate, "groups": self.groups,
                "activation": self.activation.name, "use_bias": self.use_bias,
                "kernel_initializer": _initializer_name(self.kernel_initializer),
                "bias_initializer": _initializer_name(self.bias_initializer),
                **regularizer_config(self)}


class Conv1D(_Conv):
    """1-D convolution over (N, steps, channels); padding 'valid', 'same' or 'causal'."""
    rank = 1


class Conv2D(_Conv):
    """2-D convolution over (N, H, W, channels) (or channels_first)."""
    rank = 2


class Conv3D(_Conv):
    """3-D convolution over (N, D, H, W, channels) (or channels_first)."""
    rank = 3

