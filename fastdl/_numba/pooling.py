"""Numba max and average pooling (PyTorch semantics) over 1, 2 or 3 spatial axes, and
their gradients.

Same contract as fastdl._reference.pooling. Every plane is pooled as a 3-D one (leading
axes of size 1), window by window in PyTorch's scan order, like the C++ reference kernel;
the gradients go back through the same windows.
"""
import math

import numba
import numpy as np

from fastdl import _pool_geometry
from fastdl._pool_geometry import index_error, output_size


def _geometry_3d(spatial, kernel_size, stride, padding, dilation, ceil_mode):
    """The geometry as 3-tuples (the leading axes: kernel 1, stride 1, no padding, dilation
    1): kernel, stride, padding, dilation, the input's and the output's spatial shapes."""
    lead = 3 - len(kernel_size)

    def three(values, fill):
        return (fill,) * lead + tuple(int(v) for v in values)

    out = tuple(output_size(*g, ceil_mode) for g in zip(spatial, kernel_size, stride, padding,
                                                          dilation))
    return (three(kernel_size, 1), three(stride, 1), three(padding, 0), three(dilation, 1),
            three(spatial, 1), three(out, 1))


def _as_3d(x, kernel_size, stride, padding, dilation, ceil_mode):
    """x as planes [N*C, D, H, W]; the geometry as 3-tuples (_geometry_3d) but the input's
    shape."""
    kernel, stride3, padding3, dilation3, in3, out3 = _geometry_3d(
        x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    planes = x.reshape((x.shape[0] * x.shape[1],) + in3)
    return planes, kernel, stride3, padding3, dilation3, out3


@numba.njit(cache=True, nogil=True)
def _past_padding(start, dilation):
    """The first tap position >= 0 of a window starting at `start`."""
    while start < 0:
        start += dilation
    return start


@numba.njit(cache=True, nogil=True)
def _max_pool_planes(x, kernel, stride, padding, dilation, y, indices):
    """y[p, od, oh, ow]: the max of each window (NaN wins), indices the flat input index
    of the first largest tap or the last NaN (PyTorch's rule)."""
    planes, depth, height, width = x.shape
    for p in range(planes):
        for od in range(y.shape[1]):
            for oh in range(y.shape[2]):
                for ow in range(y.shape[3]):
                    start = (od * stride[0] - padding[0], oh * stride[1] - padding[1],
                             ow * stride[2] - padding[2])
                    # PyTorch's starting index: the first tap past the left padding
                    best = -np.inf
                    best_index = ((_past_padding(start[0], dilation[0]) * height
                                   + _past_padding(start[1], dilation[1])) * width
                                  + _past_padding(start[2], dilation[2]))
                    for kd in range(kernel[0]):
                        d = start[0] + kd * dilation[0]
                        if d < 0 or d >= depth:
                            continue
                        for kh in range(kernel[1]):
                            h = start[1] + kh * dilation[1]
                            if h < 0 or h >= height:
                                continue
                            for kw in range(kernel[2]):
                                w = start[2] + kw * dilation[2]
                                if w < 0 or w >= width:
                                    continue
                                value = x[p, d, h, w]
                                if value > best or math.isnan(value):
                                    best = value
                                    best_index = (d * height + h) * width + w
                    y[p, od, oh, ow] = best
                    indices[p, od, oh, ow] = best_index


@numba.njit(cache=True, nogil=True)
def _axis_divisors(size, out, kernel, stride, padding, count_include_pad):
    """Per output position along one axis: the taps the average divides by."""
    counts = np.empty(out)
    lo, hi = (-padding, size + padding) if count_include_pad else (0, size)
    for o in range(out):
        start = o * stride - padding
        counts[o] = min(start + kernel, hi) - max(start, lo)
    return counts


@numba.njit(cache=True, nogil=True)
def _avg_pool_planes(x, kernel, stride, padding, count_include_pad, divisor_override, y):
    """y[p, od, oh, ow]: the sum of each window's input taps over its divisor."""
    planes, depth, height, width = x.shape
    div_d = _axis_divisors(depth, y.shape[1], kernel[0], stride[0], padding[0], count_include_pad)
    div_h = _axis_divisors(height, y.shape[2], kernel[1], stride[1], padding[1], count_include_pad)
    div_w = _axis_divisors(width, y.shape[3], kernel[2], stride[2], padding[2], count_include_pad)
    for p in range(planes):
        for od in range(y.shape[1]):
            for oh in range(y.shape[2]):
                for ow in range(y.shape[3]):
                    total = 0.0
                    for kd in range(kernel[0]):
                        d = od * stride[0] - padding[0] + kd
                        if d < 0 or d >= depth:
                            continue
                        for kh in range(kernel[1]):
                            h = oh * stride[1] - padding[1] + kh
                            if h < 0 or h >= height:
                                continue
                            for kw in range(kernel[2]):
                                w = ow * stride[2] - padding[2] + kw
                                if 0 <= w < width:
                                    total += x[p, d, h, w]
                    divisor = divisor_override
                    if divisor == 0:
                        divisor = div_d[od] * div_h[oh] * div_w[ow]
                    y[p, od, oh, ow] = total / divisor


def _planes_out(out, shape):
    """The array of output planes: a new one, or a view of the caller's C-contiguous `out`."""
    return np.empty(shape, dtype=np.float32) if out is None else out.reshape(shape)


def max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, out=None):
    """PyTorch max pooling: y [N, C, *out] (into `out` when given; and int64 indices into
    each input plane)."""
    planes, kernel, stride3, padding3, dilation3, out3 = _as_3d(x, kernel_size, stride, padding,
                                                                dilation, ceil_mode)
    y = _planes_out(out, (planes.shape[0],) + out3)
    indices = np.empty(y.shape, dtype=np.int64)
    _max_pool_planes(planes, kernel, stride3, padding3, dilation3, y, indices)
    shape = x.shape[:2] + out3[3 - len(kernel_size):]
    y = y.reshape(shape) if out is None else out
    return (y, indices.reshape(shape)) if return_indices else y


def avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
             out=None):
    """PyTorch average pooling: y [N, C, *out] (into `out` when given)."""
    ones = (1,) * len(kernel_size)
    planes, kernel, stride3, padding3, _, out3 = _as_3d(x, kernel_size, stride, padding, ones,
                                                        ceil_mode)
    y = _planes_out(out, (planes.shape[0],) + out3)
    _avg_pool_planes(planes, kernel, stride3, padding3, bool(count_include_pad),
                     float(divisor_override or 0), y)
    return y.reshape(x.shape[:2] + out3[3 - len(kernel_size):]) if out is None else out


@numba.njit(cache=True, nogil=True)
def _max_pool_backward_planes(dy, indices, dx):
    """dx [P, plane] += dy [P, O] at indices [P, O]; returns -1, or the flat position in
    indices of the first index outside the plane (dx then holds a partial sum)."""
    plane = dx.shape[1]
    for p in range(dy.shape[0]):
        for o in range(dy.shape[1]):
            i = indices[p, o]
            if i < 0 or i >= plane:
                return p * dy.shape[1] + o
            dx[p, i] += dy[p, o]
    return -1


@numba.njit(cache=True, nogil=True)
def _avg_pool_backward_planes(dy, kernel, stride, padding, count_include_pad, divisor_override,
                              dx):
    """dx[p, d, h, w]: the sum over the windows reading input (d, h, w) of their gradient
    dy over their divisor (dx zeroed first)."""
    planes, depth, height, width = dx.shape
    div_d = _axis_divisors(depth, dy.shape[1], kernel[0], stride[0], padding[0],
                           count_include_pad)
    div_h = _axis_divisors(height, dy.shape[2], kernel[1], stride[1], padding[1],
                           count_include_pad)
    div_w = _axis_divisors(width, dy.shape[3], kernel[2], stride[2], padding[2],
                           count_include_pad)
    dx[:] = 0.0
    for p in range(planes):
        for od in range(dy.shape[1]):
            for oh in range(dy.shape[2]):
                for ow in range(dy.shape[3]):
                    divisor = divisor_override
                    if divisor == 0:
                        divisor = div_d[od] * div_h[oh] * div_w[ow]
                    share = dy[p, od, oh, ow] / divisor
                    for kd in range(kernel[0]):
                        d = od * stride[0] - padding[0] + kd
                        if d < 0 or d >= depth:
                            continue
                        for kh in range(kernel[1]):
                            h = oh * stride[1] - padding[1] + kh
                            if h < 0 or h >= height:
                                continue
                            for kw in range(kernel[2]):
                                w = ow * stride[2] - padding[2] + kw
                                if 0 <= w < width:
                                    dx[p, d, h, w] += share


def max_pool_backward(dy, indices, input_spatial_shape):
    """The gradient of max pooling: dx [N, C, *input_spatial_shape] (see the reference)."""
    spatial = tuple(int(n) for n in input_spatial_shape)
    rows, out = dy.shape[0] * dy.shape[1], math.prod(dy.shape[2:])
    dx = np.zeros((rows, math.prod(spatial)), dtype=np.float32)
    flat_indices = indices.reshape(rows, out)
    bad = _max_pool_backward_planes(dy.reshape(rows, out), flat_indices, dx)
    if bad >= 0:
        raise index_error(flat_indices.reshape(-1)[bad], spatial)
    return dx.reshape(dy.shape[:2] + spatial)


def max_pool_input_backward(x, dy, kernel_size, stride, padding, dilation, ceil_mode):
    """The contract of fastdl._reference.max_pool_input_backward: the indices recomputed
    with this backend's max_pool, then its scatter."""
    return _pool_geometry.max_pool_input_backward(max_pool, max_pool_backward, x, dy,
                                                  kernel_size, stride, padding, dilation,
                                                  ceil_mode)


def avg_pool_backward(dy, input_spatial_shape, kernel_size, stride, padding, ceil_mode,
                      count_include_pad, divisor_override):
    """The gradient of avg_pool: dx [N, C, *input_spatial_shape] (see the reference)."""
    ones = (1,) * len(kernel_size)
    kernel, stride3, padding3, _, in3, out3 = _geometry_3d(
        tuple(input_spatial_shape), kernel_size, stride, padding, ones, ceil_mode)
    rows = dy.shape[0] * dy.shape[1]
    dx = np.empty((rows,) + in3, dtype=np.float32)
    _avg_pool_backward_planes(dy.reshape((rows,) + out3), kernel, stride3, padding3,
                              bool(count_include_pad), float(divisor_override or 0), dx)
    return dx.reshape(dy.shape[:2] + tuple(int(n) for n in input_spatial_shape))


def max_pool_2x2_codes(x, relu_gate):
    """The contract of fastdl._reference.max_pool_2x2_codes, on this backend's max_pool."""
    return _pool_geometry.max_pool_2x2_codes(max_pool, x, relu_gate)


def max_pool_2x2_codes_backward(dy, codes):
    """The contract of fastdl._reference.max_pool_2x2_codes_backward, on this backend's
    scatter."""
    return _pool_geometry.max_pool_2x2_codes_backward(max_pool_backward, dy, codes)
