"""Transposed convolutions: Conv1DTranspose, Conv2DTranspose, Conv3DTranspose (Keras 3's
arguments and kernel layout [*kernel_size, filters, in_channels]) on the transposed
convolution plans. A fastdl extension: `groups` (as PyTorch's ConvTranspose and ONNX's
group; Keras' transposed convolutions have none), the kernel then
[*kernel_size, filters / groups, in_channels].

Output sizes and crops follow Keras' definition (TensorFlow's: the transposed convolution
is the adjoint of a forward convolution with that padding), e.g. 'same' with kernel 3 and
stride 2 crops one row at the end only. Keras' torch backend converts this to PyTorch's
symmetric padding and agrees except where padding and output_padding are both needed
(Keras warns there); fastdl keeps the definition.
"""
import numpy as np

from fastdl import _validate as v
from fastdl import ops
from fastdl.layers import layout as L
from fastdl.layers.conv import _Conv
from fastdl.layers.core import apply_activation

_PLANS = {1: ops.ConvTranspose1dPlan, 2: ops.ConvTranspose2dPlan, 3: ops.ConvTranspose3dPlan}
_BACKWARD = {1: ops.conv_transpose1d_backward, 2: ops.conv_transpose2d_backward,
             3: ops.conv_transpose3d_backward}


class _ConvTranspose(_Conv):
    _folds_into_plan = False  # its plans take (x, output_size): not a compiled plan step

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, groups=1, **kwargs):
        if isinstance(padding, str) and padding.lower() == "causal":
            raise ValueError("padding: expected 'valid' or 'same', got 'causal'")
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate,
                         groups, activation, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, bias_regularizer, **kwargs)
        if output_padding is None:
            self.output_padding = None
        else:
            self.output_padding = v.int_tuple(output_padding, "output_padding", self.rank, 0)
            if any(op >= s for op, s in zip(self.output_padding, self.strides)):
                raise ValueError(f"output_padding: expected values below strides "
                                 f"{self.strides} (as Keras), got {output_padding!r}")

    def check_input(self, input_shape, first=False):
        channels = (input_shape[self._channel_axis()] if len(input_shape) == self.rank + 2
                    else None)
        if len(input_shape) != self.rank + 2 or channels is None:
            self._refuse(input_shape, f"a {self.rank + 2}-D shape with known channels")
        if first and channels % self.groups:
            raise ValueError(f"{self.name}: groups ({self.groups}) must divide the input "
                             f"channels ({channels})")
        if not first and channels != self.input_shape[self._channel_axis()]:
            self._refuse(input_shape, self.input_shape)

    def build(self, input_shape):
        channels = input_shape[self._channel_axis()]
        self.kernel = self.add_weight("kernel", self.kernel_size + (
                                      self.filters // self.groups, channels),
                                      self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.bias = (self.add_weight("bias", (self.filters,), self.bias_initializer,
                                     regularizer=self.bias_regularizer)
                     if self.use_bias else None)

    # Per axis: k_eff the dilated kernel, F = (n - 1) * s + k_eff the full output.
    def _axis_geometry(self, n, k, s, d, op):
        """(output size, crop at the start) of one axis for an input of size n."""
        k_eff = (k - 1) * d + 1
        if self.padding == "valid":
            op = max(k_eff, s) - k_eff if op is None else op
            return (n - 1) * s + k_eff + op, 0
        out = n * s if op is None else (n - 1) * s + k_eff % 2 + op
        return out, max((n - 1) * s + k_eff - out, 0) // 2

    def _geometry(self, spatial):
        ops_ = self.output_padding or (None,) * self.rank
        return [self._axis_geometry(n, k, s, d, op) for n, k, s, d, op in zip(
            spatial, self.kernel_size, self.strides, self.dilation_rate, ops_)]

    def compute_output_shape(self, input_shape):
        ops_ = self.output_padding or (None,) * self.rank
        sizes = tuple(None if n is None else self._axis_geometry(n, k, s, d, op)[0]
                      for n, k, s, d, op in zip(self._spatial(input_shape), self.kernel_size,
                                                self.strides, self.dilation_rate, ops_))
        if self.data_format == "channels_last":
            return (input_shape[0],) + sizes + (self.filters,)
        return (input_shape[0], self.filters) + sizes

    def _pads(self, spatial):
        """(start, end) crops of the full output, and the output sizes."""
        pads, sizes = [], []
        for n, (out, start), k, s, d in zip(spatial, self._geometry(spatial),
                                            self.kernel_size, self.strides,
                                            self.dilation_rate):
            full = (n - 1) * s + (k - 1) * d + 1
            pads.append((start, max(full - start - out, 0)))
            sizes.append(out)
        return tuple(pads), tuple(sizes)

    def _plan_key(self, spatial):
        return self._pads(spatial)[0]

    def _torch_weight(self):
        """Keras' kernel [*k, filters / groups, in] as PyTorch's [in, filters / groups, *k]."""
        r = self.rank
        return np.transpose(self.kernel.value, (r + 1, r) + tuple(range(r)))

    def _new_plan(self, spatial, weight, bias, activation):
        return _PLANS[self.rank](weight, bias, self.strides, self._pads(spatial)[0], 0,
                                 self.dilation_rate, self.groups, activation.fused,
                                 negative_slope=activation.alpha)

    def _forward(self, x, layout):
        x, out_layout = self._maps(x, layout)
        spatial = x.shape[2:]
        y = self._plan(spatial)(x, output_size=self._pads(spatial)[1])
        if self.activation.fused is None and self.activation.name != "linear":
            return apply_activation(self.activation, y, out_layout)
        return y, out_layout

    def _run(self, plan, xc):
        return plan(xc, output_size=self._pads(xc.shape[2:])[1])

    def _gradients(self, dz, xc, needs_input_grad):
        spatial = xc.shape[2:]
        pads, sizes = self._pads(spatial)
        # What the output has past the full extent minus the crops: PyTorch's
        # output_padding (below the stride, as Keras requires).
        extra = tuple(out - ((n - 1) * s + (k - 1) * d + 1 - a - b) for n, out, (a, b), k, s, d
                      in zip(spatial, sizes, pads, self.kernel_size, self.strides,
                             self.dilation_rate))
        return _BACKWARD[self.rank](dz, xc, self._torch_weight(), self.strides, pads, extra,
                                    self.groups, self.dilation_rate, bias=self.bias is not None,
                                    needs_input_grad=needs_input_grad)

    def get_config(self):
        config = super().get_config()
        if self.groups == 1:  # Keras' own config has no groups
            config.pop("groups")
        config["output_padding"] = self.output_padding
        return config


class Conv1DTranspose(_ConvTranspose):
    """1-D transposed convolution (N, steps, C) -> (N, steps', filters)."""
    rank = 1


class Conv2DTranspose(_ConvTranspose):
    """2-D transposed convolution, e.g. the upsampling half of a U-Net."""
    rank = 2


class Conv3DTranspose(_ConvTranspose):
    """3-D transposed convolution."""
    rank = 3
