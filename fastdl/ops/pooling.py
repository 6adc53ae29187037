"""Pooling with torch.nn.functional semantics: max_pool1d/2d/3d, avg_pool1d/2d/3d on
[N, C, *spatial] (or unbatched [C, *spatial]) arrays, and global average / max pooling;
and their gradients (<op>_backward).

Geometry arguments are an int or a sequence of one int or one per spatial axis, as in
PyTorch; stride=None (or an empty sequence) means stride = kernel_size.
"""
import math
import numbers
import types

import numpy as np

from fastdl import _validate as v
from fastdl._backend import kernels
from fastdl._pool_geometry import output_size

_AXES = {1: "L", 2: "H, W", 3: "D, H, W"}


def _ints(value, name, dims, minimum):
    """An int or a sequence of 1 or `dims` ints, each in [minimum, MAX_AXIS], as a
    `dims`-tuple."""
    if type(value) is int or isinstance(value, (numbers.Integral, np.bool_)):
        items = (value,)
    else:
        try:
            items = tuple(value)
        except TypeError:
            raise TypeError(f"{name}: expected an int or {dims} ints, got "
                            f"{type(value).__name__}") from None
    if not all(type(item) is int for item in items):  # plain ints need no conversion
        items = tuple(v.integer(item, name) for item in items)
    if len(items) == 1:
        items *= dims
    if len(items) != dims:
        raise ValueError(f"{name}: expected an int or {dims} ints, got {value!r}")
    if min(items) < minimum:
        raise ValueError(f"{name}: expected values >= {minimum}, got {value!r}")
    if max(items) > v.MAX_AXIS:
        raise ValueError(f"{name}: expected values <= {v.MAX_AXIS}, got {value!r}")
    return items


def _input(x, dims):
    """(x as [N, C, *spatial] C-contiguous float32, whether it came batched)."""
    if not (type(x) is np.ndarray and x.dtype == np.float32 and x.flags.c_contiguous
            and dims + 1 <= x.ndim <= dims + 2):  # else convert, or say what is wrong
        x = v.float32_array(x, "x", (dims + 1, dims + 2),
                            f"{dims + 1}-D or {dims + 2}-D array ([N,] C, {_AXES[dims]})")
    batched = x.ndim == dims + 2
    if 0 in x.shape[int(batched):]:
        raise ValueError(f"x: expected non-zero channel and spatial sizes ({_AXES[dims]}), "
                         f"got shape {x.shape}")
    return (x if batched else x[None]), batched


def _clipped_window(n, k, s, p, d):
    """(k, s) of one axis; a window longer than its padded input n + 2p (legal with
    ceil_mode: one output, which covers the whole padded input) cut to the taps that reach
    it, the stride to the padded length (still one output): the same result, but the
    kernels' buffers and loops no longer span the whole window."""
    if d * (k - 1) + 1 <= n + 2 * p:
        return k, s
    return -(-(n + 2 * p) // d), n + 2 * p


def _clip_long_windows(sizes, kernel_size, stride, padding, dilation):
    """(kernel_size, stride) with _clipped_window on each axis."""
    ks, ss = zip(*(_clipped_window(*axis)
                   for axis in zip(sizes, kernel_size, stride, padding, dilation)))
    return ks, ss


def _geometry(x, dims, kernel_size, stride, padding, dilation, ceil_mode, name="x",
              clip=True):
    """The validated (kernel_size, stride, padding, dilation, ceil_mode) for x (anything with
    x's .shape, called `name` in the errors)."""
    if 0 in x.shape[2:]:  # torch refuses these too: a window of padding alone has no maximum
        raise ValueError(f"{name}: expected spatial sizes >= 1, got shape {tuple(x.shape)}")
    kernel_size = _ints(kernel_size, "kernel_size", dims, 1)
    if stride is None or (type(stride) in (tuple, list) and not stride):
        stride = kernel_size
    else:
        stride = _ints(stride, "stride", dims, 1)
    padding = _ints(padding, "padding", dims, 0)
    dilation = _ints(dilation, "dilation", dims, 1)
    ceil_mode = v.flag(ceil_mode, "ceil_mode")
    out, clipped_k, clipped_s = [], [], []
    for size, k, s, p, d in zip(x.shape[2:], kernel_size, stride, padding, dilation):
        if 2 * p > k:
            raise ValueError(f"padding: expected at most half of kernel_size {kernel_size} "
                             f"(as PyTorch), got {padding}")
        out.append(output_size(size, k, s, p, d, ceil_mode))
        k, s = _clipped_window(size, k, s, p, d)
        clipped_k.append(k)
        clipped_s.append(s)
    if min(out) < 1:
        raise ValueError(f"{name}: spatial size {x.shape[2:]} is too small for kernel_size "
                         f"{kernel_size} (padding {padding}, dilation {dilation}): the output "
                         f"would be {tuple(out)}")
    v.output_size(x.shape[:2] + tuple(out), name)
    if clip:
        kernel_size, stride = tuple(clipped_k), tuple(clipped_s)
    return kernel_size, stride, padding, dilation, ceil_mode


def _max_pool(dims, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x, batched = _input(x, dims)
    geometry = _geometry(x, dims, kernel_size, stride, padding, dilation, ceil_mode)
    return_indices = v.flag(return_indices, "return_indices")
    out = kernels.max_pool(x, *geometry, return_indices)
    if batched:
        return out
    return tuple(a[0] for a in out) if return_indices else out[0]


def _avg_geometry(x, dims, kernel_size, stride, padding, ceil_mode, count_include_pad,
                  divisor_override, name="x"):
    """The validated (kernel_size, stride, padding, ceil_mode, count_include_pad,
    divisor_override) of average pooling for x (as _geometry)."""
    kernel_size, stride, padding, _, ceil_mode = _geometry(x, dims, kernel_size, stride, padding,
                                                           1, ceil_mode, name, clip=False)
    if dims == 3 and any(n < k for n, k in zip(x.shape[2:], kernel_size)):
        raise ValueError(f"{name}: spatial size {x.shape[2:]} is smaller than kernel_size "
                         f"{kernel_size} (PyTorch's avg_pool3d refuses that whatever the "
                         f"padding)")
    kernel_size, stride = _clip_long_windows(x.shape[2:], kernel_size, stride, padding,
                                             (1,) * dims)
    count_include_pad = v.flag(count_include_pad, "count_include_pad")
    if divisor_override is not None:
        divisor_override = v.integer(divisor_override, "divisor_override")
        if divisor_override == 0:
            raise ValueError("divisor_override: expected a non-zero int, got 0")
    return kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override


def _avg_pool(dims, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    x, batched = _input(x, dims)
    y = kernels.avg_pool(x, *_avg_geometry(x, dims, kernel_size, stride, padding, ceil_mode,
                                           count_include_pad, divisor_override))
    return y if batched else y[0]


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """torch.nn.functional.max_pool1d: x [N, C, L] or [C, L] -> float32 [N, C, OL] (and
    with return_indices int64 indices into each input row). NaN propagates; padding is
    -inf; padding must be at most kernel_size // 2."""
    return _max_pool(1, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """torch.nn.functional.max_pool2d: x [N, C, H, W] or [C, H, W] -> float32
    [N, C, OH, OW] (and with return_indices int64 flat indices h * W + w into each input
    plane)."""
    return _max_pool(2, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """torch.nn.functional.max_pool3d: x [N, C, D, H, W] or [C, D, H, W] -> float32
    [N, C, OD, OH, OW] (and with return_indices int64 flat indices (d * H + h) * W + w)."""
    return _max_pool(3, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """torch.nn.functional.avg_pool1d: x [N, C, L] or [C, L] -> float32 [N, C, OL].
    (torch's avg_pool1d has no divisor_override; it is accepted here as in 2-D and 3-D.)"""
    return _avg_pool(1, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """torch.nn.functional.avg_pool2d: x [N, C, H, W] or [C, H, W] -> float32
    [N, C, OH, OW]. Each window's sum is divided by divisor_override if given, else by its
    number of taps inside the padded input (count_include_pad) or inside the input."""
    return _avg_pool(2, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool3d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """torch.nn.functional.avg_pool3d: x [N, C, D, H, W] or [C, D, H, W] -> float32
    [N, C, OD, OH, OW]."""
    return _avg_pool(3, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def _global_input(x):
    """x [N, C, *spatial] as rows [N, C, L] (L = the plane's size: a global window is one
    contiguous run) and the output shape [N, C, 1, ...]."""
    if not (type(x) is np.ndarray and x.dtype == np.float32 and x.flags.c_contiguous
            and 3 <= x.ndim <= 5):  # else convert, or say what is wrong
        x = v.float32_array(x, "x", (3, 4, 5), "3-D to 5-D array (N, C, *spatial)")
    if 0 in x.shape[2:]:
        raise ValueError(f"x: expected non-zero spatial sizes, got shape {x.shape}")
    return x.reshape(x.shape[:2] + (math.prod(x.shape[2:]),)), x.shape[:2] + (1,) * (x.ndim - 2)


def global_avg_pool(x):
    """The mean over all spatial axes of x [N, C, *spatial] (1 to 3 of them), keeping
    them as size 1 like torch's adaptive_avg_pool to 1: float32 [N, C, 1, ...]."""
    rows, shape = _global_input(x)
    return kernels.avg_pool(rows, rows.shape[2:], (1,), (0,), False, True, None).reshape(shape)


def global_max_pool(x, return_indices=False):
    """The max over all spatial axes of x [N, C, *spatial] (NaN propagates), keeping them
    as size 1 like torch's adaptive_max_pool to 1: float32 [N, C, 1, ...]; with
    return_indices also int64 indices [N, C, 1, ...], the flat position of each plane's
    first maximum (its last NaN) as max_pool*d gives it (for global_max_pool_backward)."""
    rows, shape = _global_input(x)
    return_indices = v.flag(return_indices, "return_indices")
    out = kernels.max_pool(rows, rows.shape[2:], (1,), (0,), (1,), False, return_indices)
    if return_indices:
        return out[0].reshape(shape), out[1].reshape(shape)
    return out.reshape(shape)


# ---------------------------------------------------------------- gradients
#
# Each <op>_backward(grad_output, ...) returns the gradient for the forward's input, a new
# float32 array of input_shape (the forward input's shape, batched or unbatched as
# grad_output is), as PyTorch's autograd computes it: max pooling sends each output's
# gradient to the input its index names (the first maximum of its window: ties are not
# shared), average pooling spreads it over its window's input taps divided as the forward
# divided the sum.


def _gradient(grad_output, dims):
    """(grad_output as [N, C, *out] C-contiguous float32, whether it came batched)."""
    dy = v.float32_array(grad_output, "grad_output", (dims + 1, dims + 2),
                         f"{dims + 1}-D or {dims + 2}-D array ([N,] C, {_AXES[dims]}), the "
                         f"gradient of the pooling's output")
    batched = dy.ndim == dims + 2
    return (dy if batched else dy[None]), batched


def _input_shape(input_shape, dy, batched, dims):
    """The forward input's shape (as given: batched like grad_output) as a batched tuple,
    its batch and channel sizes those of dy [N, C, *out]."""
    want = f"the pooling input's shape ([N,] C, {_AXES[dims]}) with grad_output's [N,] C"
    try:
        items = tuple(input_shape)
    except TypeError:
        raise TypeError(f"input_shape: expected {want}, got {input_shape!r}") from None
    shape = tuple(v.integer(n, "input_shape", 0) for n in items)
    if not batched:
        shape = (1,) + shape
    if len(shape) != dims + 2 or shape[:2] != dy.shape[:2] or 0 in shape[1:]:
        raise ValueError(f"input_shape: expected {want} {dy.shape[int(not batched):2]}, got "
                         f"{tuple(items)}")
    return v.output_size(shape, "input_shape")


def _indices(indices, shape):
    """Max pooling's indices (an integer array of `shape`, grad_output's as given) as a
    C-contiguous int64 array."""
    arr = None if indices is None else np.asarray(indices)
    if arr is None or arr.dtype.kind not in "iu":
        got = "None" if arr is None else f"dtype {arr.dtype}"
        raise TypeError(f"indices: expected an integer array (the indices the forward "
                        f"returned), got {got}")
    if arr.shape != tuple(shape):
        raise ValueError(f"indices: expected grad_output's shape {tuple(shape)}, got "
                         f"{arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _max_pool_backward(dims, grad_output, indices, input_shape):
    dy, batched = _gradient(grad_output, dims)
    indices = _indices(indices, dy.shape if batched else dy.shape[1:]).reshape(dy.shape)
    shape = _input_shape(input_shape, dy, batched, dims)
    dx = kernels.max_pool_backward(dy, indices, shape[2:])
    return dx if batched else dx[0]


def _max_pool_input_backward(dims, grad_output, x, kernel_size, stride, padding, dilation,
                             ceil_mode):
    dy, dy_batched = _gradient(grad_output, dims)
    x, batched = _input(x, dims)
    geometry = _geometry(x, dims, kernel_size, stride, padding, dilation, ceil_mode)
    kernel_size, stride, padding, dilation, ceil_mode = geometry
    out = x.shape[:2] + tuple(output_size(n, k, s, p, d, ceil_mode) for n, k, s, p, d in
                              zip(x.shape[2:], kernel_size, stride, padding, dilation))
    if dy.shape != out or dy_batched != batched:
        lead = 0 if batched else 1
        raise ValueError(f"grad_output: expected shape {out[lead:]} (the output of "
                         f"max_pool{dims}d on x), got {np.shape(grad_output)}")
    dx = kernels.max_pool_input_backward(x, dy, *geometry)
    return dx if batched else dx[0]


def _avg_pool_backward(dims, grad_output, input_shape, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, divisor_override):
    dy, batched = _gradient(grad_output, dims)
    shape = _input_shape(input_shape, dy, batched, dims)
    geometry = _avg_geometry(types.SimpleNamespace(shape=shape), dims, kernel_size, stride,
                             padding, ceil_mode, count_include_pad, divisor_override,
                             "input_shape")
    kernel_size, stride, padding, ceil_mode = geometry[:4]
    out = shape[:2] + tuple(output_size(n, k, s, p, 1, ceil_mode)
                            for n, k, s, p in zip(shape[2:], kernel_size, stride, padding))
    if dy.shape != out:
        lead = 0 if batched else 1
        raise ValueError(f"grad_output: expected shape {out[lead:]} (the output of "
                         f"avg_pool{dims}d on input_shape {shape[lead:]}), got "
                         f"{dy.shape[lead:]}")
    dx = kernels.avg_pool_backward(dy, shape[2:], *geometry)
    return dx if batched else dx[0]


def max_pool1d_backward(grad_output, indices, input_shape):
    """The gradient of max_pool1d for its input: grad_output [N, C, OL] (or [C, OL]), the
    int64 indices max_pool1d(..., return_indices=True) returned (same shape), input_shape
    the forward input's shape -> float32 of input_shape: zero but at the indices, which get
    the sum of the gradients sent there. An index outside its row raises ValueError."""
    return _max_pool_backward(1, grad_output, indices, input_shape)


def max_pool2d_backward(grad_output, indices, input_shape):
    """The gradient of max_pool2d for its input (as max_pool1d_backward): grad_output
    [N, C, OH, OW] or [C, OH, OW], its indices, input_shape [N, C, H, W] or [C, H, W]."""
    return _max_pool_backward(2, grad_output, indices, input_shape)


def max_pool3d_backward(grad_output, indices, input_shape):
    """The gradient of max_pool3d for its input (as max_pool1d_backward): grad_output
    [N, C, OD, OH, OW] or [C, OD, OH, OW], its indices, input_shape [N, C, D, H, W] or
    [C, D, H, W]."""
    return _max_pool_backward(3, grad_output, indices, input_shape)


def max_pool1d_input_backward(grad_output, x, kernel_size, stride=None, padding=0, dilation=1,
                              ceil_mode=False):
    """The gradient of max_pool1d for its input, from the input x itself ([N, C, L] or
    [C, L], with max_pool1d's geometry arguments) instead of the forward's indices: the
    same dx as max_pool1d_backward with them, the winners found again (2x2/2 pooling in 2-D
    does it in the same pass that writes dx: no indices stored, no scatter)."""
    return _max_pool_input_backward(1, grad_output, x, kernel_size, stride, padding, dilation,
                                    ceil_mode)


def max_pool2d_input_backward(grad_output, x, kernel_size, stride=None, padding=0, dilation=1,
                              ceil_mode=False):
    """The gradient of max_pool2d from its input x [N, C, H, W] or [C, H, W] (as
    max_pool1d_input_backward)."""
    return _max_pool_input_backward(2, grad_output, x, kernel_size, stride, padding, dilation,
                                    ceil_mode)


def max_pool3d_input_backward(grad_output, x, kernel_size, stride=None, padding=0, dilation=1,
                              ceil_mode=False):
    """The gradient of max_pool3d from its input x [N, C, D, H, W] or [C, D, H, W] (as
    max_pool1d_input_backward)."""
    return _max_pool_input_backward(3, grad_output, x, kernel_size, stride, padding, dilation,
                                    ceil_mode)


def max_pool2d_codes(x, relu_gate=False):
    """Max pooling over 2x2 windows at stride 2 of x [N, C, H, W] or [C, H, W] (even H and
    W; max_pool2d(x, 2)'s maxima) that keeps per window a float32 code of its winning tap
    instead of an int64 index: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right (the
    tap max_pool2d's index names: the first largest, or the last NaN). With relu_gate, 4
    (no tap) where the maximum is not > 0 or is NaN: if x is the output of a ReLU, the codes'
    gradient is then also the gradient through that ReLU (relu(max) = max(relu)), and no
    ReLU gradient pass is needed. Returns (y, codes), both [N, C, H/2, W/2]. Training's
    Conv -> ReLU -> MaxPooling2D(2) runs on it: codes cost half the bytes of int64 indices
    and their gradient writes each dx element once, with no zero fill and no scatter."""
    x, batched = _input(x, 2)
    if x.shape[2] % 2 or x.shape[3] % 2:
        raise ValueError(f"x: expected even H and W (2x2 windows at stride 2 with none "
                         f"left over), got shape {x.shape if batched else x.shape[1:]}")
    y, codes = kernels.max_pool_2x2_codes(x, v.flag(relu_gate, "relu_gate"))
    return (y, codes) if batched else (y[0], codes[0])


def max_pool2d_codes_backward(grad_output, codes):
    """The gradient of max_pool2d_codes for its input: grad_output and codes [N, C, OH, OW]
    (or [C, OH, OW]) -> dx [N, C, 2 OH, 2 OW]: each window's gradient at the tap its code
    names, 0 at the others (tap k for the first k with code < k + 0.5; no tap for codes >=
    3.5 or NaN)."""
    dy, batched = _gradient(grad_output, 2)
    c = v.float32_array(codes, "codes", (3, 4), "the codes max_pool2d_codes returned")
    if c.shape != (dy.shape if batched else dy.shape[1:]):
        raise ValueError(f"codes: expected grad_output's shape "
                         f"{dy.shape if batched else dy.shape[1:]}, got {c.shape}")
    dx = kernels.max_pool_2x2_codes_backward(dy, c if batched else c[None])
    return dx if batched else dx[0]


def avg_pool1d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    """The gradient of avg_pool1d (the same geometry arguments) for its input: grad_output
    [N, C, OL] or [C, OL] -> float32 of input_shape ([N, C, L] or [C, L]): each window's
    gradient divided as the forward divided its sum, added to each of its input taps."""
    return _avg_pool_backward(1, grad_output, input_shape, kernel_size, stride, padding,
                              ceil_mode, count_include_pad, divisor_override)


def avg_pool2d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    """The gradient of avg_pool2d for its input (as avg_pool1d_backward): grad_output
    [N, C, OH, OW] or [C, OH, OW], input_shape [N, C, H, W] or [C, H, W]."""
    return _avg_pool_backward(2, grad_output, input_shape, kernel_size, stride, padding,
                              ceil_mode, count_include_pad, divisor_override)


def avg_pool3d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    """The gradient of avg_pool3d for its input (as avg_pool1d_backward): grad_output
    [N, C, OD, OH, OW] or [C, OD, OH, OW], input_shape [N, C, D, H, W] or [C, D, H, W]."""
    return _avg_pool_backward(3, grad_output, input_shape, kernel_size, stride, padding,
                              ceil_mode, count_include_pad, divisor_override)


def _global_gradient(grad_output, input_shape):
    """(grad_output as rows [N, C, 1], the input shape as a tuple): grad_output is the
    global pool's output [N, C, 1, ...] for an input of input_shape [N, C, *spatial]."""
    dy = v.float32_array(grad_output, "grad_output", (3, 4, 5),
                         "3-D to 5-D array (N, C, 1, ...), the global pool's output gradient")
    dims = dy.ndim - 2
    shape = _input_shape(input_shape, dy, True, dims)
    if dy.shape[2:] != (1,) * dims:
        raise ValueError(f"grad_output: expected shape {shape[:2] + (1,) * dims} (the global "
                         f"pool's output for input_shape {shape}), got {dy.shape}")
    return dy.reshape(dy.shape[:2] + (1,)), shape


def global_avg_pool_backward(grad_output, input_shape):
    """The gradient of global_avg_pool for its input: grad_output [N, C, 1, ...] -> float32
    of input_shape [N, C, *spatial], each plane filled with its gradient over its size."""
    rows, shape = _global_gradient(grad_output, input_shape)
    plane = math.prod(shape[2:])
    return kernels.avg_pool_backward(rows, (plane,), (plane,), (1,), (0,), False, True,
                                     None).reshape(shape)


def global_max_pool_backward(grad_output, indices, input_shape):
    """The gradient of global_max_pool for its input: grad_output [N, C, 1, ...], the indices
    global_max_pool(..., return_indices=True) returned -> float32 of input_shape, each
    plane's gradient at its maximum (the first one: ties are not shared) and zero elsewhere."""
    rows, shape = _global_gradient(grad_output, input_shape)
    ones = shape[:2] + (1,) * (len(shape) - 2)  # the output's shape: a window per plane
    return kernels.max_pool_backward(rows.reshape(ones), _indices(indices, ones), shape[2:])


class PoolPlan:
    """Max or average pooling (kind 'max' / 'avg') over inputs of one shape [N, C,
    *spatial], its geometry checked once: plan(x) then costs the kernel call alone (a
    model's pooling layers keep one per input shape). Arguments as max_pool*d /
    avg_pool*d (dilation: max pooling only); an input of another shape or layout takes the
    checked path."""

    def __init__(self, kind, input_shape, kernel_size, stride=None, padding=0,
                 count_include_pad=True, dilation=1):
        if kind not in ("max", "avg"):
            raise ValueError(f"kind: expected 'max' or 'avg', got {kind!r}")
        if kind == "avg" and dilation != 1:
            raise ValueError(f"dilation: average pooling takes none, got {dilation!r}")
        self.kind, self.shape = kind, tuple(input_shape)
        dims = len(self.shape) - 2
        if dims not in (1, 2, 3):
            raise ValueError(f"input_shape: expected [N, C, *spatial] with 1 to 3 spatial "
                             f"axes, got {input_shape!r}")
        self._dims = dims
        holder = type("Shape", (), {"shape": self.shape})  # _geometry reads x.shape only
        geometry = _geometry(holder, dims, kernel_size, stride, padding, dilation, False)
        self._args = (kernel_size, stride, padding)
        self._dilation = dilation
        self.count_include_pad = v.flag(count_include_pad, "count_include_pad")
        k, s, p, d, ceil = geometry
        self._kernel_args = ((k, s, p, d, ceil, False) if kind == "max" else
                             (k, s, p, ceil, self.count_include_pad, None))
        self.output_shape = self.shape[:2] + tuple(
            output_size(*axis, ceil) for axis in zip(self.shape[2:], k, s, p, d))

    def __call__(self, x, out=None):
        """The pooling of x, written into `out` when given (float32, C-contiguous, exactly
        the output's shape)."""
        if out is not None:
            out = v.output_buffer(out, self.output_shape)
        if self._takes_as_is(x):
            if self.kind == "max":
                return kernels.max_pool(x, *self._kernel_args, out)
            return kernels.avg_pool(x, *self._kernel_args, out)
        if self.kind == "max":
            y = _max_pool(self._dims, x, *self._args, self._dilation, False, False)
        else:
            y = _avg_pool(self._dims, x, *self._args, False, self.count_include_pad, None)
        if out is None:
            return y
        np.copyto(out, y)
        return out

    def _takes_as_is(self, x):
        """Whether x goes to the kernel as it is: the shape this plan was made for,
        float32, C-contiguous."""
        return (type(x) is np.ndarray and x.shape == self.shape and x.dtype == np.float32
                and x.flags.c_contiguous)

    def into(self, out):
        """plan(x, out) as a call x -> out, `out` checked here once (a buffer its caller
        reuses); an input of another shape or layout takes the checked path into a new
        array."""
        out = v.output_buffer(out, self.output_shape)
        kernel = kernels.max_pool if self.kind == "max" else kernels.avg_pool
        args, takes_as_is = self._kernel_args, self._takes_as_is

        def call(x):
            return kernel(x, *args, out) if takes_as_is(x) else self(x)
        return call

    def bind(self, x, out):
        """plan(x, out) bound to x's and out's memory (a BoundCall), or None where the
        backend has no bound calls or x is not an input this plan takes as it is."""
        binder = getattr(kernels, "bind_max_pool" if self.kind == "max" else "bind_avg_pool",
                         None)
        if binder is None or not self._takes_as_is(x):
            return None
        args = self._kernel_args[:-1] if self.kind == "max" else self._kernel_args
        return binder(x, *args, v.output_buffer(out, self.output_shape))
