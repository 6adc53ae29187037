"""Numba convolutions with 1, 2 or 3 spatial axes (PyTorch semantics): conv, transposed
convolution and im2col/col2im — the twins of kernels/src/conv.

As in the native kernels, everything runs on three spatial axes: 1-D and 2-D problems get
leading axes of size 1. conv is im2col + one matmul_accumulate per image and group;
conv_transpose is cols = W_g^T @ X_g per image and group, then a col2im scatter into y
(which starts as the bias).
"""
from collections import namedtuple

import numba
import numpy as np

from fastdl._conv_geometry import output_sizes

from .activation import activate
from .gemm import column_sums, matmul_accumulate

# Per axis (depth, height, width): kernel k*, dilation d*, stride s*, padding before p*.
Geometry = namedtuple("Geometry", "kd kh kw dd dh dw sd sh sw pd ph pw")


def _widen(values, fill):
    values = tuple(int(v) for v in values)
    return (fill,) * (3 - len(values)) + values


def _geometry(kernel_size, dilation, padding, stride):
    before = tuple(padding[0::2])
    return Geometry(*_widen(kernel_size, 1), *_widen(dilation, 1), *_widen(stride, 1),
                    *_widen(before, 0))


def _as_3d(a):
    """[N, C, spatial...] -> [N, C, D, H, W] view with leading unit axes."""
    return a.reshape(a.shape[:2] + (1,) * (5 - a.ndim) + a.shape[2:])


@numba.njit(cache=True, nogil=True)
def _image_to_columns(image, g, grid, cols):
    """cols [C*taps, L] = im2col of image [C, D, H, W] on output grid (GD, GH, GW)."""
    channels, depth, height, width = image.shape
    gd, gh, gw = grid
    row = 0
    for c in range(channels):
        for kz in range(g.kd):
            for ky in range(g.kh):
                for kx in range(g.kw):
                    col = 0
                    for oz in range(gd):
                        iz = oz * g.sd + kz * g.dd - g.pd
                        for oy in range(gh):
                            iy = oy * g.sh + ky * g.dh - g.ph
                            inside = 0 <= iz < depth and 0 <= iy < height
                            for ox in range(gw):
                                ix = ox * g.sw + kx * g.dw - g.pw
                                if inside and 0 <= ix < width:
                                    cols[row, col] = image[c, iz, iy, ix]
                                else:
                                    cols[row, col] = 0.0
                                col += 1
                    row += 1


@numba.njit(cache=True, nogil=True)
def _columns_to_image(cols, g, grid, image):
    """Add cols [C*taps, L] (L = positions of grid) into image [C, D, H, W]: the adjoint of
    _image_to_columns; contributions outside the image are dropped."""
    channels, depth, height, width = image.shape
    gd, gh, gw = grid
    row = 0
    for c in range(channels):
        for kz in range(g.kd):
            for ky in range(g.kh):
                for kx in range(g.kw):
                    col = 0
                    for oz in range(gd):
                        iz = oz * g.sd + kz * g.dd - g.pd
                        for oy in range(gh):
                            iy = oy * g.sh + ky * g.dh - g.ph
                            inside = 0 <= iz < depth and 0 <= iy < height
                            for ox in range(gw):
                                ix = ox * g.sw + kx * g.dw - g.pw
                                if inside and 0 <= ix < width:
                                    image[c, iz, iy, ix] += cols[row, col]
                                col += 1
                    row += 1


@numba.njit(cache=True, nogil=True)
def _im2col_batch(x, g, grid, cols):
    for n in range(x.shape[0]):
        _image_to_columns(x[n], g, grid, cols[n])


@numba.njit(cache=True, nogil=True)
def _col2im_batch(cols, g, grid, y):
    for n in range(cols.shape[0]):
        _columns_to_image(cols[n], g, grid, y[n])


@numba.njit(cache=True, nogil=True)
def _conv_batch(x, weights, groups, g, grid, y):
    """y[n] += weights @ im2col(x[n]) group by group: x [N, C, D, H, W],
    weights [O, C/groups*taps], y [N, O, L]."""
    out_per_group, taps = weights.shape[0] // groups, weights.shape[1]
    cols = np.empty((x.shape[1] * g.kd * g.kh * g.kw, grid[0] * grid[1] * grid[2]),
                    dtype=np.float32)
    for n in range(x.shape[0]):
        _image_to_columns(x[n], g, grid, cols)
        for group in range(groups):
            o0 = group * out_per_group
            matmul_accumulate(weights[o0:o0 + out_per_group],
                              cols[group * taps:(group + 1) * taps],
                              y[n, o0:o0 + out_per_group])


@numba.njit(cache=True, nogil=True)
def _conv_transpose_batch(x, weights_t, groups, g, grid, y):
    """y[n, group] += col2im(weights_t[group] @ x[n, group]): x [N, Cin, L], weights_t
    [groups, Cout/groups*taps, Cin/groups], y [N, Cout, D, H, W]."""
    cin_g, rows = x.shape[1] // groups, weights_t.shape[1]
    cout_g = y.shape[1] // groups
    cols = np.empty((rows, x.shape[2]), dtype=np.float32)
    for n in range(x.shape[0]):
        for group in range(groups):
            cols[:] = 0.0
            matmul_accumulate(weights_t[group], x[n, group * cin_g:(group + 1) * cin_g], cols)
            _columns_to_image(cols, g, grid, y[n, group * cout_g:(group + 1) * cout_g])


def im2col(x, kernel_size, dilation, padding, stride):
    """torch unfold: x [N, C, spatial...] -> cols [N, C*prod(k), prod(out)]."""
    g = _geometry(kernel_size, dilation, padding, stride)
    grid = _widen(output_sizes(x.shape[2:], kernel_size, dilation, padding, stride), 1)
    n, c = x.shape[:2]
    cols = np.empty((n, c * g.kd * g.kh * g.kw, int(np.prod(grid))), dtype=np.float32)
    _im2col_batch(_as_3d(x), g, grid, cols)
    return cols


def col2im(cols, output_size, kernel_size, dilation, padding, stride):
    """torch fold: cols [N, C*prod(k), L] -> [N, C, output_size...], summed."""
    g = _geometry(kernel_size, dilation, padding, stride)
    grid = _widen(output_sizes(output_size, kernel_size, dilation, padding, stride), 1)
    channels = cols.shape[1] // (g.kd * g.kh * g.kw)
    y = np.zeros((cols.shape[0], channels) + tuple(output_size), dtype=np.float32)
    _col2im_batch(cols, g, grid, _as_3d(y))
    return y


def conv(x, w, b, stride, padding, dilation, groups, activation, alpha):
    """PyTorch conv1d/2d/3d then bias then activation: x [N, C, spatial...], w [O,
    C//groups, k...], b [O] or None -> y [N, O, out...]."""
    out_channels = w.shape[0]
    out = output_sizes(x.shape[2:], w.shape[2:], dilation, padding, stride)
    g = _geometry(w.shape[2:], dilation, padding, stride)
    y = np.zeros((x.shape[0], out_channels, int(np.prod(out))), dtype=np.float32)
    if b is not None:
        y[:] = b[:, None]
    weights = w.reshape(out_channels, int(np.prod(w.shape[1:])))
    _conv_batch(_as_3d(x), weights, int(groups), g, _widen(out, 1), y)
    return activate(y, activation, alpha).reshape((x.shape[0], out_channels) + out)


def conv_transpose(x, w, b, stride, padding, output_size, dilation, groups, activation, alpha):
    """PyTorch conv_transpose{1,2,3}d then activation: x [N, Cin, in...], w [Cin,
    Cout//groups, k...], padding one (symmetric) entry per axis, output_size the output's
    spatial extents -> y [N, Cout, output_size...]."""
    n, cin = x.shape[:2]
    cout_g, kernel_size = w.shape[1], w.shape[2:]
    taps = int(np.prod(kernel_size))
    flat_padding = tuple(v for p in padding for v in (p, p))
    g = _geometry(kernel_size, dilation, flat_padding, stride)
    # W_g^T [Cout/g * taps, Cin/g] per group, rows (co, tap).
    weights_t = np.ascontiguousarray(
        w.reshape(groups, cin // groups, cout_g * taps).transpose(0, 2, 1))
    y = np.zeros((n, groups * cout_g) + tuple(output_size), dtype=np.float32)
    if b is not None:
        y[:] = b.reshape((-1,) + (1,) * len(output_size))
    _conv_transpose_batch(x.reshape(n, cin, int(np.prod(x.shape[2:]))), weights_t, int(groups), g,
                          _widen(x.shape[2:], 1), _as_3d(y))
    return activate(y, activation, alpha)


@numba.njit(cache=True, nogil=True)
def _conv_weight_gradient(x, dy, groups, g, grid, dw):
    """dw [O, C/groups*taps] += dy[n] @ im2col(x[n])^T group by group, over every image:
    x [N, C, D, H, W], dy [N, O, L]."""
    out_per_group, taps = dw.shape[0] // groups, dw.shape[1]
    cols = np.empty((x.shape[1] * g.kd * g.kh * g.kw, grid[0] * grid[1] * grid[2]),
                    dtype=np.float32)
    for n in range(x.shape[0]):
        _image_to_columns(x[n], g, grid, cols)
        for group in range(groups):
            o0 = group * out_per_group
            matmul_accumulate(dy[n, o0:o0 + out_per_group],
                              np.ascontiguousarray(cols[group * taps:(group + 1) * taps].T),
                              dw[o0:o0 + out_per_group])


def conv_backward(dy, x, w, stride, padding, dilation, groups, has_bias, needs_dx):
    """(dx or None, dw, db or None) of y = conv(x, w) + b from dy (contract:
    fastdl._reference.conv_backward): dw by im2col and matmul_accumulate, dx by the
    transposed convolution with the padding before each axis."""
    n, out_channels = dy.shape[:2]
    g = _geometry(w.shape[2:], dilation, padding, stride)
    dw = np.zeros((out_channels, int(np.prod(w.shape[1:]))), dtype=np.float32)
    flat_dy = dy.reshape(n, out_channels, -1)
    _conv_weight_gradient(_as_3d(x), flat_dy, int(groups), g, _widen(dy.shape[2:], 1), dw)
    db = None
    if has_bias:
        db = column_sums(np.ascontiguousarray(flat_dy.transpose(0, 2, 1)).reshape(
            -1, out_channels))
    dx = None
    if needs_dx:
        dx = conv_transpose(dy, w, None, stride, tuple(padding[0::2]), x.shape[2:], dilation,
                            groups, None, 0.0)
    return dx, dw.reshape(w.shape), db
