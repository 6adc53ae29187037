"""Convolution with 1, 2 or 3 spatial axes (torch.nn.functional.conv1d/2d/3d semantics,
NC[D][H]W): one plan class for every rank, with thin 1-D/2-D/3-D faces."""
from fastdl import _validate as v
from fastdl import _conv_geometry as geometry
from fastdl._backend import kernels
from fastdl.ops._plan import WeightedPlan, conv_groups, conv_weight

_X_WHAT = {1: "3-D array (N, C, L) or 2-D (C, L)",
           2: "4-D array (N, C, H, W) or 3-D (C, H, W)",
           3: "5-D array (N, C, D, H, W) or 4-D (C, D, H, W)"}


class _ConvPlan(WeightedPlan):
    """A convolution with `dims` spatial axes (set by the subclasses) and its weights packed
    once, called as plan(x) or plan(x, out=y)."""

    dims = None

    def __init__(self, w, b=None, stride=1, padding=0, dilation=1, groups=1, activation=None,
                 *, negative_slope=0.01):
        self._check_arguments(w, b, stride, padding, dilation, groups, activation,
                              negative_slope)
        self._impl = kernels.ConvPlan(self._w, self._b, self.stride, self.padding,
                                      self.dilation, self.groups, self.activation,
                                      self.negative_slope)

    @classmethod
    def _unpacked(cls, w, stride, padding, dilation, groups):
        """The plan's checked arguments and own weights without a backend plan (nothing
        packed): what the gradient functions validate their arguments with."""
        plan = cls.__new__(cls)
        plan._check_arguments(w, None, stride, padding, dilation, groups, None, 0.01)
        return plan

    def _check_arguments(self, w, b, stride, padding, dilation, groups, activation,
                         negative_slope):
        dims = self.dims
        self._w = conv_weight(w, dims, "out_channels, in_channels/groups", "out_channels")
        out_channels, group_channels = self._w.shape[:2]
        self.kernel_size = tuple(self._w.shape[2:])
        self.groups = conv_groups(groups, out_channels, "out_channels")
        self._b = self._own_bias(b, out_channels)
        self.out_channels = out_channels
        self.in_channels = group_channels * self.groups
        self.stride = v.int_tuple(stride, "stride", dims, 1)
        self.dilation = v.int_tuple(dilation, "dilation", dims, 1)
        self.padding = geometry.padding(padding, dims, self.kernel_size, self.dilation,
                                        self.stride)
        self.activation, self.negative_slope = v.activation(activation, negative_slope)

    def output_shape(self, input_shape):
        """The output shape for an input of shape (N, C, *spatial)."""
        return (input_shape[0], self.out_channels) + geometry.output_sizes(
            input_shape[2:], self.kernel_size, self.dilation, self.padding, self.stride)

    def checked_output_shape(self, x):
        """The output shape for a batched input x [N, C, *spatial] (ValueError naming x if
        its channels do not match w or the kernel does not fit it)."""
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected {self.in_channels} channels (w has "
                             f"{self.in_channels // self.groups} per group x {self.groups} "
                             f"groups), got shape {x.shape}")
        geometry.check_fits(x.shape[2:], self.kernel_size, self.dilation, self.padding, "x")
        return v.output_size(self.output_shape(x.shape), "x, stride, padding, dilation")

    def __call__(self, x, out=None):
        """x [N, in_channels, *spatial] (or unbatched [in_channels, *spatial]), any real
        dtype and strides -> float32 [N, out_channels, *out] (or unbatched), written into
        `out` when given (float32, C-contiguous, exactly that shape)."""
        dims = self.dims
        x = v.float32_array(x, "x", (dims + 1, dims + 2), _X_WHAT[dims])
        if x.ndim == dims + 1:  # unbatched, as torch accepts
            if out is None:
                return self(x[None])[0]
            self(x[None], v.output_buffer(out, self.output_shape((1,) + x.shape)[1:])[None])
            return out
        shape = self.checked_output_shape(x)
        if out is not None:
            out = v.output_buffer(out, shape)
        return self._impl(x, out)

    def __repr__(self):
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"activation={self.activation!r})")


class Conv1dPlan(_ConvPlan):
    """A 1-D convolution packed once. w [out_channels, in_channels // groups, k], b
    [out_channels] or None; stride, dilation: int; padding: int, (left, right) —
    (dilation * (k - 1), 0) makes a causal, TCN-style convolution —, 'valid' or 'same'
    (stride 1); activation fused into the output (None, 'relu', 'relu6', 'leaky_relu',
    'sigmoid', 'tanh', 'silu', 'elu', 'hard_swish'). plan(x) takes x [N, in_channels, L]
    (or unbatched [in_channels, L]) and returns float32 [N, out_channels, L_out]."""

    dims = 1


class Conv2dPlan(_ConvPlan):
    """A 2-D convolution packed once. w [out_channels, in_channels // groups, kH, kW], b
    [out_channels] or None; stride, dilation: int or pair; padding: int, pair, ((top,
    bottom), (left, right)), 'valid' or 'same'; activation fused as in Conv1dPlan.
    plan(x) takes x [N, in_channels, H, W] (or unbatched) and returns float32 [N,
    out_channels, OH, OW]. 3x3 stride-1 layers with >= 8 channels run Winograd, depthwise
    layers a direct kernel, other stride-1 layers an implicit GEMM that reads x in place
    (x86), on the native backend."""

    dims = 2


class Conv3dPlan(_ConvPlan):
    """A 3-D convolution packed once. w [out_channels, in_channels // groups, kD, kH, kW];
    stride, dilation: int or triple; padding: int, triple, ((front, back), (top, bottom),
    (left, right)), 'valid' or 'same'. plan(x) takes x [N, in_channels, D, H, W] (or
    unbatched) and returns float32 [N, out_channels, OD, OH, OW]. 3x3x3 stride-1 layers
    with >= 8 channels run a Winograd form on the native backend."""

    dims = 3


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, activation=None, *,
           negative_slope=0.01):
    """torch.nn.functional.conv1d (NCL) followed by an optional fused activation. padding
    also takes (left, right), e.g. (dilation * (k - 1), 0) for a causal convolution."""
    x = v.float32_array(x, "x")  # the arguments in order: x is checked first
    return Conv1dPlan(w, b, stride, padding, dilation, groups, activation,
                      negative_slope=negative_slope)(x)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, activation=None, *,
           negative_slope=0.01):
    """torch.nn.functional.conv2d (NCHW) followed by an optional fused activation. padding
    also takes ((top, bottom), (left, right)) for asymmetric padding."""
    x = v.float32_array(x, "x")  # the arguments in order: x is checked first
    return Conv2dPlan(w, b, stride, padding, dilation, groups, activation,
                      negative_slope=negative_slope)(x)


def conv3d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, activation=None, *,
           negative_slope=0.01):
    """torch.nn.functional.conv3d (NCDHW) followed by an optional fused activation. padding
    also takes ((front, back), (top, bottom), (left, right)) for asymmetric padding."""
    x = v.float32_array(x, "x")  # the arguments in order: x is checked first
    return Conv3dPlan(w, b, stride, padding, dilation, groups, activation,
                      negative_slope=negative_slope)(x)
