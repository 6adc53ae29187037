"""Reference max and average pooling and their gradients: PyTorch semantics over 1, 2 or
3 spatial axes, float64 inside.

x is [N, C, *spatial]; kernel_size, stride, padding and dilation are tuples with one entry
per spatial axis. Every window is gathered whole ([N, C, *out, taps], taps in PyTorch's
scan order) and reduced, so the rules read as they are stated; the gradients scatter back
through the same windows' tap indices (np.add.at).
"""
import itertools
import math

import numpy as np

from fastdl import _pool_geometry
from fastdl._pool_geometry import index_error, output_size

from .activation import to_float32


def _tap_slices(spatial, kernel_size, stride, padding, dilation, ceil_mode):
    """(widths, slices): the padding (before, after) per axis that every window fits in
    (`padding` before; after, as far as the last window reaches: ceil_mode may run past the
    padding), and per tap in PyTorch's scan order the slices of the padded input that tap
    reads across all windows."""
    out = tuple(output_size(*g, ceil_mode) for g in zip(spatial, kernel_size, stride, padding,
                                                          dilation))
    after = [max(0, (o - 1) * s + (k - 1) * d + 1 - n - p)
             for n, o, k, s, p, d in zip(spatial, out, kernel_size, stride, padding, dilation)]
    slices = [tuple(slice(t * d, t * d + s * (o - 1) + 1, s)
                    for t, d, s, o in zip(tap, dilation, stride, out))
              for tap in itertools.product(*(range(k) for k in kernel_size))]
    return list(zip(padding, after)), slices


def _window_index(spatial, kernel_size, stride, padding, dilation, ceil_mode):
    """index [*out, T]: the flat index in the input plane of every window's T taps (-1 in
    the padding)."""
    widths, slices = _tap_slices(spatial, kernel_size, stride, padding, dilation, ceil_mode)
    flat = np.pad(np.arange(math.prod(spatial)).reshape(spatial), widths, constant_values=-1)
    return np.stack([flat[window] for window in slices], axis=-1)


def _windows(x, fill, kernel_size, stride, padding, dilation, ceil_mode):
    """(taps, index): taps [N, C, *out, T] holds every window's T taps as float64 (`fill`
    outside the input), index [*out, T] the flat index of each tap in its input plane
    (-1 outside)."""
    geometry = (x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    widths, slices = _tap_slices(*geometry)
    padded = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + widths, constant_values=fill)
    taps = np.stack([padded[(Ellipsis,) + window] for window in slices], axis=-1)
    return taps, _window_index(*geometry)


def max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, out=None):
    """PyTorch max pooling: y [N, C, *out] (written into `out` when given: C-contiguous
    float32 of that shape), and with return_indices also int64 indices
    into each flattened input plane. NaN wins (the index of the last NaN); otherwise the
    index of the first largest tap; padding is -inf, so a window of -inf and padding only
    keeps PyTorch's starting index (_first_taps)."""
    taps, index = _windows(x, -np.inf, kernel_size, stride, padding, dilation, ceil_mode)
    nan = np.isnan(taps)
    has_nan = nan.any(axis=-1)
    masked = np.where(nan, -np.inf, taps)
    best = masked.max(axis=-1, initial=-np.inf)
    y = _into(to_float32(np.where(has_nan, np.nan, best)), out)
    if not return_indices:
        return y
    taps_index = np.broadcast_to(index, taps.shape)
    first_max = np.argmax((masked == best[..., None]) & (index >= 0), axis=-1)
    last_nan = taps.shape[-1] - 1 - np.argmax(nan[..., ::-1], axis=-1)
    chosen = np.take_along_axis(taps_index, np.where(has_nan, last_nan, first_max)[..., None],
                                axis=-1)[..., 0]
    start = _first_taps(x.shape[2:], best.shape[2:], stride, padding, dilation)
    indices = np.where(has_nan | (best > -np.inf), chosen, start)
    return y, np.ascontiguousarray(indices, dtype=np.int64)


def _first_taps(spatial, out, stride, padding, dilation):
    """[*out]: where PyTorch starts each window's search, the flat index of its first tap
    outside the left padding on every axis (which may lie past the input's end)."""
    flat = np.zeros((), dtype=np.int64)
    for n, o, s, p, d in zip(spatial, out, stride, padding, dilation):
        start = np.arange(o) * s - p
        first = start + d * (np.maximum(0, d - 1 - start) // d)  # skip the left padding
        flat = np.add.outer(flat * n, first)
    return flat


def _divisors(spatial, out, kernel_size, stride, padding, count_include_pad):
    """[*out] float64: per window, the product over axes of its taps inside the padded
    input (count_include_pad) or inside the input; windows that ceil_mode lets run past
    the padding count only the part inside it (PyTorch's rule)."""
    divisor = np.ones(())
    for n, o, k, s, p in zip(spatial, out, kernel_size, stride, padding):
        start = np.arange(o) * s - p
        lo, hi = (-p, n + p) if count_include_pad else (0, n)
        count = np.minimum(start + k, hi) - np.maximum(start, lo)
        divisor = np.multiply.outer(divisor, count)
    return divisor


def avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
             out=None):
    """PyTorch average pooling: y [N, C, *out] (written into `out` when given), the sum of
    each window's input taps divided by divisor_override if given, else by its tap count
    (see _divisors)."""
    ones = (1,) * len(kernel_size)
    taps, _ = _windows(x, 0.0, kernel_size, stride, padding, ones, ceil_mode)
    sums = taps.sum(axis=-1)
    if divisor_override is not None:
        return _into(to_float32(sums / divisor_override), out)
    return _into(to_float32(sums / _divisors(x.shape[2:], sums.shape[2:], kernel_size, stride,
                                             padding, count_include_pad)), out)


def _into(y, out):
    """y, or y copied into the caller's `out` (returned)."""
    if out is None:
        return y
    np.copyto(out, y)
    return out


def max_pool_backward(dy, indices, input_spatial_shape):
    """The gradient of max pooling: dx [N, C, *input_spatial_shape], zero but where
    max_pool's indices (int64, the shape of dy [N, C, *out]) point, which gets the sum of
    the gradients of the windows whose maximum it is. ValueError naming `indices` if one
    lies outside its input plane."""
    spatial = tuple(input_spatial_shape)
    plane = math.prod(spatial)
    outside = (indices < 0) | (indices >= plane)
    if outside.any():
        raise index_error(indices[outside][0], spatial)
    rows, out = dy.shape[0] * dy.shape[1], math.prod(dy.shape[2:])
    dx = np.zeros((rows, plane))
    np.add.at(dx, (np.arange(rows)[:, None], indices.reshape(rows, out)),
              dy.reshape(rows, out).astype(np.float64))
    return to_float32(dx.reshape(dy.shape[:2] + spatial))


def max_pool_input_backward(x, dy, kernel_size, stride, padding, dilation, ceil_mode):
    """The gradient of max pooling from its input x [N, C, *spatial] and dy (the shape of
    max_pool's output for that geometry): max_pool_backward with the indices max_pool
    returns for x, which are recomputed rather than kept."""
    return _pool_geometry.max_pool_input_backward(max_pool, max_pool_backward, x, dy,
                                                  kernel_size, stride, padding, dilation,
                                                  ceil_mode)


def avg_pool_backward(dy, input_spatial_shape, kernel_size, stride, padding, ceil_mode,
                      count_include_pad, divisor_override):
    """The gradient of avg_pool (same geometry arguments) from dy [N, C, *out]: dx [N, C,
    *input_spatial_shape], where each window's gradient, divided as avg_pool divides its
    sum, is added to each of its input taps."""
    spatial = tuple(input_spatial_shape)
    index = _window_index(spatial, kernel_size, stride, padding, (1,) * len(spatial),
                          ceil_mode)
    if divisor_override is not None:
        divisor = divisor_override
    else:
        divisor = _divisors(spatial, index.shape[:-1], kernel_size, stride, padding,
                            count_include_pad)
    share = dy.astype(np.float64) / divisor
    taps = np.broadcast_to(share[..., None], share.shape + index.shape[-1:])
    inside = index >= 0
    dx = np.zeros(dy.shape[:2] + (math.prod(spatial),))
    np.add.at(dx, (slice(None), slice(None), index[inside]), taps[..., inside])
    return to_float32(dx.reshape(dy.shape[:2] + spatial))


def max_pool_2x2_codes(x, relu_gate):
    """Max pooling of x [N, C, H, W] (even H and W) over 2x2 windows at stride 2 that keeps
    per window, instead of an index, a float32 code of its winning tap: 0 top-left, 1
    top-right, 2 bottom-left, 3 bottom-right (the tap max_pool's index names); with
    relu_gate, 4 (no tap) where the maximum is not > 0 or is NaN: then the codes' gradient
    is also the gradient through the ReLU that made x. Returns (y, codes), both
    [N, C, H/2, W/2]."""
    return _pool_geometry.max_pool_2x2_codes(max_pool, x, relu_gate)


def max_pool_2x2_codes_backward(dy, codes):
    """The gradient of max_pool_2x2_codes: dx [N, C, 2 OH, 2 OW] from dy and codes (both
    [N, C, OH, OW]); each window's gradient goes to the tap its code names (tap k for the
    first k with code < k + 0.5; none for codes >= 3.5 or NaN), 0 to the others."""
    return _pool_geometry.max_pool_2x2_codes_backward(max_pool_backward, dy, codes)
