"""Transposed convolution, 1-D/2-D/3-D (torch.nn.functional.conv_transpose{1,2,3}d
semantics): the adjoint of the forward convolution with the same geometry, + bias.

Computed without zero-stuffing the input: per image and group, cols = W^T X (one GEMM,
W^T packed once by the plan) then col2im scatters cols into the output.
"""
import numbers

from fastdl import _conv_geometry as geometry
from fastdl import _validate as v
from fastdl._backend import kernels
from fastdl._conv_geometry import AXES
from fastdl.ops._plan import WeightedPlan, conv_groups, conv_weight


class _ConvTransposePlan(WeightedPlan):
    """A transposed convolution with `dims` spatial axes (set by the subclasses), called as
    plan(x), plan(x, output_size) or with out=y."""

    dims = None
    _x_what = None

    def __init__(self, w, b=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1,
                 activation=None, *, negative_slope=0.01):
        flat = self._check_arguments(w, b, stride, padding, output_padding, dilation, groups,
                                     activation, negative_slope)
        self._impl = kernels.ConvTransposePlan(self._w, self._b, self.stride, flat,
                                               self.dilation, self.groups, self.activation,
                                               self.negative_slope)

    @classmethod
    def _unpacked(cls, w, stride, padding, output_padding, dilation, groups):
        """The plan's checked arguments and own weights without a backend plan (nothing
        packed): what the gradient functions validate their arguments with."""
        plan = cls.__new__(cls)
        plan._check_arguments(w, None, stride, padding, output_padding, dilation, groups, None,
                              0.01)
        return plan

    def _check_arguments(self, w, b, stride, padding, output_padding, dilation, groups,
                         activation, negative_slope):
        """Sets the checked arguments; returns the flat (before, after) padding."""
        dims = self.dims
        self._w = conv_weight(w, dims, "in_channels, out_channels/groups")
        in_channels, group_out = self._w.shape[:2]
        self.kernel_size = tuple(self._w.shape[2:])
        self.groups = conv_groups(groups, in_channels, "in_channels")
        self.in_channels, self.out_channels = in_channels, group_out * self.groups
        self._b = self._own_bias(b, self.out_channels)
        self.stride = v.int_tuple(stride, "stride", dims, 1)
        self.dilation = v.int_tuple(dilation, "dilation", dims, 1)
        if isinstance(padding, str):
            raise ValueError(f"padding: expected an int or {dims} ints (transposed "
                             f"convolutions take no 'same'/'valid'), got {padding!r}")
        # What the output loses at each end (torch's padding: the same at both); per-side
        # pairs, as the forward convolution takes, crop unevenly (Keras' 'same').
        flat = geometry.padding(padding, dims, self.kernel_size, self.dilation, self.stride,
                                allow_same=False)
        self._pads = tuple(zip(flat[0::2], flat[1::2]))
        symmetric = all(a == b for a, b in self._pads)
        self.padding = tuple(a for a, _ in self._pads) if symmetric else self._pads
        self.output_padding = v.int_tuple(output_padding, "output_padding", dims, 0)
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op >= max(s, d):
                raise ValueError(f"output_padding: expected values smaller than stride "
                                 f"{self.stride} or dilation {self.dilation} (as in PyTorch), "
                                 f"got {self.output_padding}")
        self.activation, self.negative_slope = v.activation(activation, negative_slope)
        return flat

    def _min_sizes(self, in_sizes):
        """Output extents without output_padding: (in-1)*s - 2p + d*(k-1) + 1 (with the
        two ends' padding where they differ)."""
        return tuple((i - 1) * s - a - b + d * (k - 1) + 1 for i, s, (a, b), d, k in
                     zip(in_sizes, self.stride, self._pads, self.dilation, self.kernel_size))

    def _requested_sizes(self, output_size, in_sizes, minimum):
        """output_size (spatial, or with N and C in front as torch accepts) checked against
        the range torch allows: [minimum, minimum + stride - 1] per axis."""
        dims = self.dims
        items = (output_size,) if isinstance(output_size, numbers.Integral) else output_size
        try:
            items = tuple(items)
        except TypeError:
            raise TypeError(f"output_size: expected {dims} ints, got {output_size!r}") from None
        items = tuple(v.integer(s, "output_size") for s in items)
        if len(items) == dims + 2:
            items = items[2:]
        if len(items) != dims:
            raise ValueError(f"output_size: expected {dims} values ({AXES[dims]}), got "
                             f"{output_size!r}")
        for size, low, s in zip(items, minimum, self.stride):
            if not low <= size <= low + s - 1:
                raise ValueError(
                    f"output_size: requested {items} for an input of spatial size {in_sizes}, "
                    f"but valid sizes range from {minimum} to "
                    f"{tuple(m + s - 1 for m, s in zip(minimum, self.stride))}")
        return items

    def output_shape(self, input_shape, output_size=None):
        """The output shape for an input of shape (N, C, spatial...)."""
        minimum = self._min_sizes(input_shape[2:])
        if output_size is None:
            sizes = tuple(m + op for m, op in zip(minimum, self.output_padding))
        else:
            sizes = self._requested_sizes(output_size, tuple(input_shape[2:]), minimum)
        return (input_shape[0], self.out_channels) + sizes

    def checked_output_shape(self, x, output_size=None):
        """The output shape for a batched input x [N, C, *spatial] (ValueError naming x if
        its channels do not match w or the output would be empty)."""
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected {self.in_channels} channels (w's in_channels), got "
                             f"shape {x.shape}")
        shape = self.output_shape(x.shape, output_size)
        if any(s < 1 for s in shape[2:]) or 0 in x.shape[2:]:
            raise ValueError(f"x: an input of spatial size {x.shape[2:]} gives the output size "
                             f"{shape[2:]}, which is too small")
        return v.output_size(shape, "x, stride, padding, output_padding, dilation")

    def __call__(self, x, output_size=None, out=None):
        """x [N, in_channels, *spatial] (or unbatched) -> float32 [N, out_channels, *out],
        the output extents from output_size (spatial, or with N and C in front) or from
        output_padding; written into `out` when given (float32, C-contiguous, that shape)."""
        dims = self.dims
        x = v.float32_array(x, "x", (dims + 1, dims + 2), self._x_what)
        if x.ndim == dims + 1:  # unbatched, as torch accepts
            if out is None:
                return self(x[None], output_size)[0]
            shape = self.output_shape((1,) + x.shape, output_size)[1:]
            self(x[None], output_size, v.output_buffer(out, shape)[None])
            return out
        shape = self.checked_output_shape(x, output_size)
        if out is not None:
            out = v.output_buffer(out, shape)
        return self._impl(x, shape[2:], out)

    def __repr__(self):
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, output_padding={self.output_padding}, "
                f"dilation={self.dilation}, groups={self.groups}, "
                f"activation={self.activation!r})")


class ConvTranspose1dPlan(_ConvTransposePlan):
    """A 1-D transposed convolution with W^T packed once, called as plan(x) or
    plan(x, output_size=...). w [in_channels, out_channels // groups, k]; x [N,
    in_channels, L] (or unbatched [in_channels, L]) -> float32 [N, out_channels, L_out]."""

    dims = 1
    _x_what = "3-D array (N, C, L) or 2-D (C, L)"


class ConvTranspose2dPlan(_ConvTransposePlan):
    """A 2-D transposed convolution with W^T packed once, called as plan(x) or
    plan(x, output_size=...). w [in_channels, out_channels // groups, kH, kW]; stride,
    padding, output_padding, dilation: int or pair; x [N, in_channels, H, W] (or unbatched)
    -> float32 [N, out_channels, OH, OW]; optional fused activation as in Conv2dPlan."""

    dims = 2
    _x_what = "4-D array (N, C, H, W) or 3-D (C, H, W)"


class ConvTranspose3dPlan(_ConvTransposePlan):
    """A 3-D transposed convolution with W^T packed once, called as plan(x) or
    plan(x, output_size=...). w [in_channels, out_channels // groups, kD, kH, kW]; x [N,
    in_channels, D, H, W] (or unbatched) -> float32 [N, out_channels, OD, OH, OW]."""

    dims = 3
    _x_what = "5-D array (N, C, D, H, W) or 4-D (C, D, H, W)"


def _functional(plan_class, x, w, b, stride, padding, output_padding, groups, dilation,
                activation, negative_slope):
    x = v.float32_array(x, "x")  # the arguments in order: x is checked first
    return plan_class(w, b, stride, padding, output_padding, dilation, groups, activation,
                      negative_slope=negative_slope)(x)


def conv_transpose1d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                     activation=None, *, negative_slope=0.01):
    """torch.nn.functional.conv_transpose1d (NCL, same argument order), then an optional
    fused activation."""
    return _functional(ConvTranspose1dPlan, x, w, b, stride, padding, output_padding, groups,
                       dilation, activation, negative_slope)


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                     activation=None, *, negative_slope=0.01):
    """torch.nn.functional.conv_transpose2d (NCHW, same argument order), then an optional
    fused activation."""
    return _functional(ConvTranspose2dPlan, x, w, b, stride, padding, output_padding, groups,
                       dilation, activation, negative_slope)


def conv_transpose3d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                     activation=None, *, negative_slope=0.01):
    """torch.nn.functional.conv_transpose3d (NCDHW, same argument order), then an optional
    fused activation."""
    return _functional(ConvTranspose3dPlan, x, w, b, stride, padding, output_padding, groups,
                       dilation, activation, negative_slope)
