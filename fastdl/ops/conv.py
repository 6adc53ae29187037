"""2-D convolution (torch.nn.functional.conv2d semantics, NCHW) and im2col/col2im
(torch.nn.functional.unfold/fold)."""
from fastdl import _validate as v
from fastdl._backend import backend, kernels
from fastdl.ops import _convnd


def _padding(padding, kernel_size, dilation, stride):
    """(top, bottom, left, right) from an int, a pair, a pair of (before, after) pairs,
    'valid' or 'same' (stride 1 only; an odd total puts the extra row/column after,
    as PyTorch does)."""
    return _convnd.padding_nd(padding, 2, kernel_size, dilation, stride)


class Conv2dPlan:
    """A 2-D convolution with its weights packed once, called as plan(x).

    w [out_channels, in_channels // groups, kH, kW], b [out_channels] or None; stride,
    dilation: int or pair; padding: int, pair, ((top, bottom), (left, right)), 'valid' or
    'same'; activation fused into the output (None, 'relu', 'relu6', 'leaky_relu',
    'sigmoid', 'tanh', 'silu'). plan(x) takes x [N, in_channels, H, W] (or unbatched
    [in_channels, H, W]) and returns float32 [N, out_channels, OH, OW] (or unbatched).
    """

    def __init__(self, w, b=None, stride=1, padding=0, dilation=1, groups=1, activation=None,
                 *, negative_slope=0.01):
        v.same_dtype([("w", w), ("b", b)])
        self.weight = v.float32_array(w, "w", 4, "4-D array (out_channels, in_channels/groups, "
                                      "kH, kW)")
        out_channels, group_channels, kh, kw = self.weight.shape
        self.groups = v.positive_int(groups, "groups")
        if out_channels % self.groups:
            raise ValueError(f"groups: expected a divisor of w's out_channels "
                             f"({out_channels}), got {self.groups}")
        if group_channels == 0 or kh == 0 or kw == 0:
            raise ValueError(f"w: expected non-zero in_channels/groups and kernel size, got "
                             f"shape {self.weight.shape}")
        self.bias = None
        if b is not None:
            self.bias = v.float32_array(b, "b", 1, "1-D array (out_channels,)")
            if self.bias.shape[0] != out_channels:
                raise ValueError(f"b: expected shape ({out_channels},), got {self.bias.shape}")
        self.kernel_size = (kh, kw)
        self.out_channels = out_channels
        self.in_channels = group_channels * self.groups
        self.stride = v.int_tuple(stride, "stride", 2, 1)
        self.dilation = v.int_tuple(dilation, "dilation", 2, 1)
        self.padding = _padding(padding, self.kernel_size, self.dilation, self.stride)
        self.activation, self.negative_slope = v.activation(activation, negative_slope)
        self._native = None
        if backend() == "native":
            self._native = kernels.Conv2dPlan(self.weight, self.bias, self.stride, self.padding,
                                              self.dilation, self.groups, self.activation,
                                              self.negative_slope)

    def output_shape(self, input_shape):
        """The output shape for an input of shape (N, C, H, W)."""
        n, _, h, w = input_shape
        return (n, self.out_channels) + _convnd.output_sizes(
            (h, w), self.kernel_size, self.dilation, self.padding, self.stride)

    def __call__(self, x):
        x = v.float32_array(x, "x", (3, 4), "4-D array (N, C, H, W) or 3-D (C, H, W)")
        if x.ndim == 3:  # unbatched, as torch accepts
            return self(x[None])[0]
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected {self.in_channels} channels (w has "
                             f"{self.in_channels // self.groups} per group x {self.groups} "
                             f"groups), got shape {x.shape}")
        _convnd.check_fits(x.shape[2:], self.kernel_size, self.dilation, self.padding, "x")
        v.output_size(self.output_shape(x.shape), "conv2d")
        if self._native is not None:
            return self._native(x)
        return kernels.conv2d(x, self.weight, self.bias, self.stride, self.padding,
                              self.dilation, self.groups, self.activation, self.negative_slope)

    def __repr__(self):
        return (f"Conv2dPlan({self.in_channels}, {self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"activation={self.activation!r})")


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, activation=None, *,
           negative_slope=0.01):
    """torch.nn.functional.conv2d (NCHW) followed by an optional fused activation.

    padding also takes ((top, bottom), (left, right)) for asymmetric padding.
    """
    v.same_dtype([("x", x), ("w", w), ("b", b)])
    plan = Conv2dPlan(w, b, stride, padding, dilation, groups, activation,
                      negative_slope=negative_slope)
    return plan(x)


def _unfold_geometry(kernel_size, dilation, padding, stride):
    kernel_size = v.int_tuple(kernel_size, "kernel_size", 2, 1)
    dilation = v.int_tuple(dilation, "dilation", 2, 1)
    stride = v.int_tuple(stride, "stride", 2, 1)
    if isinstance(padding, str):
        raise TypeError(f"padding: expected an int or pairs, got {padding!r}")
    return kernel_size, dilation, _padding(padding, kernel_size, dilation, stride), stride


def im2col(x, kernel_size, dilation=1, padding=0, stride=1):
    """torch.nn.functional.unfold: x [N, C, H, W] (or [C, H, W]) -> [N, C*kH*kW, L]
    (or [C*kH*kW, L]), L = OH*OW. padding may also be ((top, bottom), (left, right)).

    1-D and 3-D too: the number of spatial axes is len(kernel_size) (an int means 2-D, as
    in torch), x is [N, C, L] / [N, C, D, H, W] (or unbatched), rows are c*prod(kernel) +
    the flat tap index, columns the flat output position; padding per axis as above."""
    dims = _convnd.spatial_dims(kernel_size)
    if dims != 2:
        return _convnd.im2col_nd(x, dims, kernel_size, dilation, padding, stride)
    x = v.float32_array(x, "x", (3, 4), "3-D or 4-D array ([N,] C, H, W)")
    kernel_size, dilation, padding, stride = _unfold_geometry(kernel_size, dilation, padding,
                                                              stride)
    batched = x if x.ndim == 4 else x[None]
    _convnd.check_fits(batched.shape[2:], kernel_size, dilation, padding, "x")
    oh, ow = _convnd.output_sizes(batched.shape[2:], kernel_size, dilation, padding, stride)
    v.output_size((batched.shape[0], batched.shape[1] * kernel_size[0] * kernel_size[1],
                   oh * ow), "im2col")
    cols = kernels.im2col(batched, kernel_size, dilation, padding, stride)
    return cols if x.ndim == 4 else cols[0]


def col2im(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """torch.nn.functional.fold, the adjoint of im2col: cols [N, C*kH*kW, L] (or
    [C*kH*kW, L]) -> [N, C, H, W] (or [C, H, W]), overlapping entries summed. 1-D and 3-D
    as in im2col (len(kernel_size) spatial axes; output_size has one entry per axis)."""
    dims = _convnd.spatial_dims(kernel_size)
    if dims != 2:
        return _convnd.col2im_nd(cols, dims, output_size, kernel_size, dilation, padding,
                                 stride)
    cols = v.float32_array(cols, "cols", (2, 3), "2-D or 3-D array ([N,] C*kH*kW, L)")
    output_size = v.int_tuple(output_size, "output_size", 2, 1)
    kernel_size, dilation, padding, stride = _unfold_geometry(kernel_size, dilation, padding,
                                                              stride)
    batched = cols if cols.ndim == 3 else cols[None]
    taps = kernel_size[0] * kernel_size[1]
    if batched.shape[1] % taps:
        raise ValueError(f"cols: expected a multiple of kH*kW = {taps} rows, got shape "
                         f"{cols.shape}")
    _convnd.check_fits(output_size, kernel_size, dilation, padding, "output_size")
    oh, ow = _convnd.output_sizes(output_size, kernel_size, dilation, padding, stride)
    if batched.shape[2] != oh * ow:
        raise ValueError(f"cols: expected {oh * ow} columns (blocks of output_size "
                         f"{output_size}), got shape {cols.shape}")
    v.output_size((batched.shape[0], batched.shape[1] // taps) + output_size, "col2im")
    y = kernels.col2im(batched, output_size, kernel_size, dilation, padding, stride)
    return y if cols.ndim == 3 else y[0]
