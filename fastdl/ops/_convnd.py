"""Argument handling shared by the N-d convolutions (conv3d, conv_transpose1d/2d/3d and
the N-d im2col/col2im): per-axis tuples, padding forms, output extents."""
import numbers

from fastdl import _validate as v
from fastdl._backend import kernels

AXES = {1: "length", 2: "height, width", 3: "depth, height, width"}


def padding_nd(padding, dims, kernel_size, dilation, stride, allow_same=True):
    """Flat (before, after) per axis from an int, `dims` ints, `dims` (before, after)
    pairs, 'valid' or 'same' (stride 1 only; an odd total puts the extra one after, as
    PyTorch does)."""
    if isinstance(padding, str):
        mode = padding.lower()
        if allow_same and mode == "valid":
            return (0,) * (2 * dims)
        if not allow_same or mode != "same":
            what = "'valid', 'same', an int or pairs" if allow_same else "an int or pairs"
            raise ValueError(f"padding: expected {what}, got {padding!r}")
        if any(s != 1 for s in stride):
            raise ValueError(f"padding: 'same' needs stride 1 (as in PyTorch), got stride "
                             f"{stride}")
        out = []
        for k, d in zip(kernel_size, dilation):
            total = d * (k - 1)
            out += [total // 2, total - total // 2]
        return tuple(out)
    if isinstance(padding, numbers.Integral):
        return v.int_tuple(padding, "padding", 2 * dims, 0)
    try:
        items = list(padding)
    except TypeError:
        raise TypeError(f"padding: expected an int, {dims} ints or (before, after) pairs, got "
                        f"{type(padding).__name__}") from None
    if len(items) != dims:
        raise ValueError(f"padding: expected {dims} entries ({AXES[dims]}), got {padding!r}")
    out = []
    for item in items:
        out += v.int_tuple(item, "padding", 2, 0)
    return tuple(out)


def output_sizes(in_sizes, kernel_size, dilation, padding, stride):
    """Output extent per axis of a forward convolution (padding flat (before, after))."""
    return tuple((size + padding[2 * a] + padding[2 * a + 1] - dilation[a] * (k - 1) - 1)
                 // stride[a] + 1
                 for a, (size, k) in enumerate(zip(in_sizes, kernel_size)))


def check_fits(in_sizes, kernel_size, dilation, padding, name):
    """ValueError naming `name` unless the dilated kernel fits the padded input."""
    padded = tuple(size + padding[2 * a] + padding[2 * a + 1] for a, size in enumerate(in_sizes))
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel_size, dilation))
    if any(p < s for p, s in zip(padded, span)):
        raise ValueError(f"{name}: the dilated kernel {span} is larger than the padded input "
                         f"{padded}")


def spatial_dims(kernel_size):
    """How many spatial axes an im2col/col2im call has: len(kernel_size) (1, 2 or 3); an
    int kernel_size means 2 (torch.nn.functional.unfold's form)."""
    if isinstance(kernel_size, numbers.Integral):
        return 2
    try:
        dims = len(kernel_size)
    except TypeError:
        raise TypeError(f"kernel_size: expected an int or 1 to 3 ints, got "
                        f"{kernel_size!r}") from None
    if dims not in AXES:
        raise ValueError(f"kernel_size: expected 1 to 3 values (one per spatial axis), got "
                         f"{kernel_size!r}")
    return dims


def _unfold_geometry(dims, kernel_size, dilation, padding, stride):
    kernel_size = v.int_tuple(kernel_size, "kernel_size", dims, 1)
    dilation = v.int_tuple(dilation, "dilation", dims, 1)
    stride = v.int_tuple(stride, "stride", dims, 1)
    if isinstance(padding, str):
        raise TypeError(f"padding: expected an int or pairs, got {padding!r}")
    padding = padding_nd(padding, dims, kernel_size, dilation, stride, allow_same=False)
    return kernel_size, dilation, padding, stride


def im2col_nd(x, dims, kernel_size, dilation, padding, stride):
    """fastdl.ops.im2col for `dims` spatial axes (see there)."""
    x = v.float32_array(x, "x", (dims + 1, dims + 2),
                        f"{dims + 1}-D or {dims + 2}-D array ([N,] C, {AXES[dims]})")
    kernel_size, dilation, padding, stride = _unfold_geometry(dims, kernel_size, dilation,
                                                              padding, stride)
    batched = x if x.ndim == dims + 2 else x[None]
    check_fits(batched.shape[2:], kernel_size, dilation, padding, "x")
    out = output_sizes(batched.shape[2:], kernel_size, dilation, padding, stride)
    taps = 1
    for k in kernel_size:
        taps *= k
    length = 1
    for o in out:
        length *= o
    v.output_size((batched.shape[0], batched.shape[1] * taps, length), "im2col")
    cols = kernels.im2col_nd(batched, kernel_size, dilation, padding, stride)
    return cols if x.ndim == dims + 2 else cols[0]


def col2im_nd(cols, dims, output_size, kernel_size, dilation, padding, stride):
    """fastdl.ops.col2im for `dims` spatial axes (see there)."""
    cols = v.float32_array(cols, "cols", (2, 3), "2-D or 3-D array ([N,] C*prod(kernel), L)")
    output_size = v.int_tuple(output_size, "output_size", dims, 1)
    kernel_size, dilation, padding, stride = _unfold_geometry(dims, kernel_size, dilation,
                                                              padding, stride)
    batched = cols if cols.ndim == 3 else cols[None]
    taps = 1
    for k in kernel_size:
        taps *= k
    if batched.shape[1] % taps:
        raise ValueError(f"cols: expected a multiple of prod(kernel_size) = {taps} rows, got "
                         f"shape {cols.shape}")
    check_fits(output_size, kernel_size, dilation, padding, "output_size")
    out = output_sizes(output_size, kernel_size, dilation, padding, stride)
    length = 1
    for o in out:
        length *= o
    if batched.shape[2] != length:
        raise ValueError(f"cols: expected {length} columns (blocks of output_size "
                         f"{output_size}), got shape {cols.shape}")
    v.output_size((batched.shape[0], batched.shape[1] // taps) + output_size, "col2im")
    y = kernels.col2im_nd(batched, output_size, kernel_size, dilation, padding, stride)
    return y if cols.ndim == 3 else y[0]
