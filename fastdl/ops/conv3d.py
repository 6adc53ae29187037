"""3-D convolution (torch.nn.functional.conv3d semantics, NCDHW)."""
from fastdl import _validate as v
from fastdl._backend import backend, kernels
from fastdl.ops._convnd import check_fits, output_sizes, padding_nd


class Conv3dPlan:
    """A 3-D convolution with its weights packed once, called as plan(x).

    w [out_channels, in_channels // groups, kD, kH, kW], b [out_channels] or None; stride,
    dilation: int or triple; padding: int, triple, ((front, back), (top, bottom), (left,
    right)), 'valid' or 'same'; activation fused into the output (None, 'relu', 'relu6',
    'leaky_relu', 'sigmoid', 'tanh', 'silu', 'elu', 'hard_swish'). plan(x) takes x [N,
    in_channels, D, H, W] (or unbatched [in_channels, D, H, W]) and returns float32 [N,
    out_channels, OD, OH, OW] (or unbatched). 3x3x3 stride-1 layers with >= 8 channels run
    a Winograd form on the native backend.
    """

    def __init__(self, w, b=None, stride=1, padding=0, dilation=1, groups=1, activation=None,
                 *, negative_slope=0.01):
        v.same_dtype([("w", w), ("b", b)])
        self.weight = v.float32_array(w, "w", 5, "5-D array (out_channels, in_channels/groups, "
                                      "kD, kH, kW)")
        out_channels, group_channels = self.weight.shape[:2]
        self.kernel_size = tuple(self.weight.shape[2:])
        self.groups = v.positive_int(groups, "groups")
        if out_channels % self.groups:
            raise ValueError(f"groups: expected a divisor of w's out_channels "
                             f"({out_channels}), got {self.groups}")
        if group_channels == 0 or 0 in self.kernel_size:
            raise ValueError(f"w: expected non-zero in_channels/groups and kernel size, got "
                             f"shape {self.weight.shape}")
        self.bias = None
        if b is not None:
            self.bias = v.float32_array(b, "b", 1, "1-D array (out_channels,)")
            if self.bias.shape[0] != out_channels:
                raise ValueError(f"b: expected shape ({out_channels},), got {self.bias.shape}")
        self.out_channels = out_channels
        self.in_channels = group_channels * self.groups
        self.stride = v.int_tuple(stride, "stride", 3, 1)
        self.dilation = v.int_tuple(dilation, "dilation", 3, 1)
        self.padding = padding_nd(padding, 3, self.kernel_size, self.dilation, self.stride)
        self.activation, self.negative_slope = v.activation(activation, negative_slope)
        self._native = None
        if backend() == "native":
            self._native = kernels.Conv3dPlan(self.weight, self.bias, self.stride, self.padding,
                                              self.dilation, self.groups, self.activation,
                                              self.negative_slope)

    def output_shape(self, input_shape):
        """The output shape for an input of shape (N, C, D, H, W)."""
        return (input_shape[0], self.out_channels) + output_sizes(
            input_shape[2:], self.kernel_size, self.dilation, self.padding, self.stride)

    def __call__(self, x):
        x = v.float32_array(x, "x", (4, 5), "5-D array (N, C, D, H, W) or 4-D (C, D, H, W)")
        if x.ndim == 4:  # unbatched, as torch accepts
            return self(x[None])[0]
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected {self.in_channels} channels (w has "
                             f"{self.in_channels // self.groups} per group x {self.groups} "
                             f"groups), got shape {x.shape}")
        check_fits(x.shape[2:], self.kernel_size, self.dilation, self.padding, "x")
        v.output_size(self.output_shape(x.shape), "conv3d")
        if self._native is not None:
            return self._native(x)
        return kernels.conv3d(x, self.weight, self.bias, self.stride, self.padding,
                              self.dilation, self.groups, self.activation, self.negative_slope)

    def __repr__(self):
        return (f"Conv3dPlan({self.in_channels}, {self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"activation={self.activation!r})")


def conv3d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, activation=None, *,
           negative_slope=0.01):
    """torch.nn.functional.conv3d (NCDHW) followed by an optional fused activation.

    padding also takes ((front, back), (top, bottom), (left, right)) for asymmetric padding.
    """
    v.same_dtype([("x", x), ("w", w), ("b", b)])
    return Conv3dPlan(w, b, stride, padding, dilation, groups, activation,
                      negative_slope=negative_slope)(x)
