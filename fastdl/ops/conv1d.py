"""1-D convolution (torch.nn.functional.conv1d semantics, NCL), computed as a 2-D
convolution with a kernel one row high: the same plans, algorithms and kernels."""
import numbers

from fastdl import _validate as v
from fastdl.ops.conv import Conv2dPlan


def _padding1d(padding):
    """((0, 0), (left, right)) from an int, (p,), a (left, right) pair — e.g. (k - 1, 0)
    for a causal convolution — 'valid' or 'same'."""
    if isinstance(padding, str):
        return padding
    if isinstance(padding, numbers.Integral):
        padding = (padding,)
    try:
        items = tuple(padding)
    except TypeError:
        raise TypeError(f"padding: expected an int, (left, right), 'same' or 'valid', got "
                        f"{type(padding).__name__}") from None
    if len(items) == 1:
        items = items * 2
    return ((0, 0), v.int_tuple(items, "padding", 2, 0))


def _scalar(value, name):
    """An int or a 1-tuple (torch accepts both) as an int."""
    if not isinstance(value, numbers.Integral):
        try:
            (value,) = value
        except (TypeError, ValueError):
            raise TypeError(f"{name}: expected an int or a 1-tuple, got {value!r}") from None
    return v.int_tuple(value, name, 1, 1)[0]


class Conv1dPlan:
    """A 1-D convolution with its weights packed once, called as plan(x).

    w [out_channels, in_channels // groups, k], b [out_channels] or None; stride, dilation:
    int; padding: int, (left, right) — (dilation * (k - 1), 0) makes a causal, TCN-style
    convolution —, 'valid' or 'same' (stride 1). plan(x) takes x [N, in_channels, L] (or
    unbatched [in_channels, L]) and returns float32 [N, out_channels, L_out].
    """

    def __init__(self, w, b=None, stride=1, padding=0, dilation=1, groups=1, activation=None,
                 *, negative_slope=0.01):
        v.same_dtype([("w", w), ("b", b)])
        w = v.float32_array(w, "w", 3, "3-D array (out_channels, in_channels/groups, k)")
        stride, dilation = _scalar(stride, "stride"), _scalar(dilation, "dilation")
        self._plan = Conv2dPlan(w[:, :, None, :], b, (1, stride), _padding1d(padding),
                                (1, dilation), groups, activation,
                                negative_slope=negative_slope)
        self.weight, self.bias = w, self._plan.bias
        self.in_channels, self.out_channels = self._plan.in_channels, self._plan.out_channels
        self.kernel_size, self.stride, self.dilation = w.shape[2], stride, dilation
        self.padding = self._plan.padding[2:]
        self.groups, self.activation = self._plan.groups, self._plan.activation

    def __call__(self, x):
        x = v.float32_array(x, "x", (2, 3), "3-D array (N, C, L) or 2-D (C, L)")
        if x.ndim == 2:
            return self(x[None])[0]
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected {self.in_channels} channels, got shape {x.shape}")
        return self._plan(x[:, :, None, :])[:, :, 0, :]

    def __repr__(self):
        return (f"Conv1dPlan({self.in_channels}, {self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"activation={self.activation!r})")


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, activation=None, *,
           negative_slope=0.01):
    """torch.nn.functional.conv1d (NCL) followed by an optional fused activation.

    padding also takes (left, right), e.g. (dilation * (k - 1), 0) for causal convolution.
    """
    v.same_dtype([("x", x), ("w", w), ("b", b)])
    return Conv1dPlan(w, b, stride, padding, dilation, groups, activation,
                      negative_slope=negative_slope)(x)
