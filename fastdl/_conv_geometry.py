"""Convolution geometry shared by every floor above the kernels (neutral: used by fastdl.ops
and by the Numba and NumPy backends): the output-size formula, the padding forms, the fit
check. Sizes are tuples with one entry per spatial axis; padding is flat (before, after)
per axis."""
import numbers

from fastdl import _validate as v

AXES = {1: "length", 2: "height, width", 3: "depth, height, width"}


def output_sizes(in_sizes, kernel_size, dilation, padding, stride):
    """THE output extent per axis of a forward convolution (the C++ copy is
    fdl::ConvGeometry::out_size)."""
    return tuple((size + padding[2 * a] + padding[2 * a + 1] - dilation[a] * (k - 1) - 1)
                 // stride[a] + 1
                 for a, (size, k) in enumerate(zip(in_sizes, kernel_size)))


def padding(value, dims, kernel_size, dilation, stride, allow_same=True):
    """Flat (before, after) per axis from: an int; `dims` ints; `dims` (before, after)
    pairs; for one axis also a (left, right) pair of ints (e.g. (dilation * (k - 1), 0), a
    causal convolution); 'valid'; or 'same' (stride 1 only; an odd total puts the extra one
    after, as PyTorch does)."""
    if isinstance(value, str):
        mode = value.lower()
        if allow_same and mode == "valid":
            return (0,) * (2 * dims)
        if not allow_same or mode != "same":
            what = "'valid', 'same', an int or pairs" if allow_same else "an int or pairs"
            raise ValueError(f"padding: expected {what}, got {value!r}")
        if any(s != 1 for s in stride):
            raise ValueError(f"padding: 'same' needs stride 1 (as in PyTorch), got stride "
                             f"{stride}")
        out = []
        for k, d in zip(kernel_size, dilation):
            total = d * (k - 1)
            out += [total // 2, total - total // 2]
        return tuple(out)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return v.int_tuple(value, "padding", 2 * dims, 0)
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"padding: expected an int, {dims} ints or (before, after) pairs, got "
                        f"{type(value).__name__}") from None
    if dims == 1 and len(items) == 2 and all(isinstance(i, numbers.Integral) for i in items):
        return v.int_tuple(items, "padding", 2, 0)  # (left, right)
    if len(items) != dims:
        raise ValueError(f"padding: expected {dims} entries ({AXES[dims]}), got {value!r}")
    out = []
    for item in items:
        out += v.int_tuple(item, "padding", 2, 0)
    return tuple(out)


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
    if isinstance(kernel_size, numbers.Integral) and not isinstance(kernel_size, bool):
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
