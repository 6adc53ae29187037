"""Numba 2-D convolution (PyTorch semantics, NCHW) and im2col/col2im.

conv2d runs, per image, im2col into one workspace and then one matmul_accumulate per group.
"""
import math
from collections import namedtuple

import numba
import numpy as np

from .._reference.conv import output_hw
from .activation import activate
from .gemm import matmul_accumulate

# Everything the jitted loops need to map an output position and a kernel tap to an
# input pixel: kernel (kh, kw), dilation (dh, dw), stride (sh, sw), the padding before
# each axis (top, left) and the output size (oh, ow).
Geometry = namedtuple("Geometry", "kh kw dh dw sh sw top left oh ow")


def _geometry(in_hw, kernel_size, dilation, padding, stride):
    top, _, left, _ = padding
    out_hw = output_hw(in_hw, kernel_size, dilation, padding, stride)
    return Geometry(*(int(v) for v in (*kernel_size, *dilation, *stride, top, left, *out_hw)))


@numba.njit(cache=True, nogil=True)
def _input_index(out_index, tap, stride, dilation, pad_before):
    """Input coordinate that kernel tap `tap` reads at output position `out_index`."""
    return out_index * stride + tap * dilation - pad_before


@numba.njit(cache=True, nogil=True)
def _image_to_columns(image, g, cols):
    """Fill cols [C*kh*kw, oh*ow] with the im2col matrix of image [C, H, W]."""
    channels, height, width = image.shape
    for c in range(channels):
        for ky in range(g.kh):
            for kx in range(g.kw):
                row = cols[(c * g.kh + ky) * g.kw + kx]
                for oy in range(g.oh):
                    iy = _input_index(oy, ky, g.sh, g.dh, g.top)
                    for ox in range(g.ow):
                        ix = _input_index(ox, kx, g.sw, g.dw, g.left)
                        inside = 0 <= iy < height and 0 <= ix < width
                        row[oy * g.ow + ox] = image[c, iy, ix] if inside else 0.0


@numba.njit(cache=True, nogil=True)
def _columns_to_image(cols, g, image):
    """Add cols [C*kh*kw, oh*ow] into image [C, H, W]: the adjoint of _image_to_columns."""
    channels, height, width = image.shape
    for c in range(channels):
        for ky in range(g.kh):
            for kx in range(g.kw):
                row = cols[(c * g.kh + ky) * g.kw + kx]
                for oy in range(g.oh):
                    iy = _input_index(oy, ky, g.sh, g.dh, g.top)
                    for ox in range(g.ow):
                        ix = _input_index(ox, kx, g.sw, g.dw, g.left)
                        if 0 <= iy < height and 0 <= ix < width:
                            image[c, iy, ix] += row[oy * g.ow + ox]


@numba.njit(cache=True, nogil=True)
def _im2col_batch(x, g, cols):
    for n in range(x.shape[0]):
        _image_to_columns(x[n], g, cols[n])


@numba.njit(cache=True, nogil=True)
def _col2im_batch(cols, g, y):
    for n in range(cols.shape[0]):
        _columns_to_image(cols[n], g, y[n])


@numba.njit(cache=True, nogil=True)
def _conv2d_batch(x, weights, groups, g, y):
    """y[n] += weights @ im2col(x[n]) group by group: x [N, C, H, W],
    weights [O, C/groups*kh*kw], y [N, O, oh*ow]."""
    out_per_group, taps = weights.shape[0] // groups, weights.shape[1]
    cols = np.empty((x.shape[1] * g.kh * g.kw, g.oh * g.ow), dtype=np.float32)
    for n in range(x.shape[0]):
        _image_to_columns(x[n], g, cols)
        for group in range(groups):
            o0 = group * out_per_group
            matmul_accumulate(weights[o0:o0 + out_per_group],
                              cols[group * taps:(group + 1) * taps],
                              y[n, o0:o0 + out_per_group])


def im2col(x, kernel_size, dilation, padding, stride):
    """torch unfold: x [N, C, H, W] -> cols [N, C*kh*kw, OH*OW], row (c*kh + ky)*kw + kx,
    column oh*OW + ow."""
    g = _geometry(x.shape[2:], kernel_size, dilation, padding, stride)
    n, c = x.shape[:2]
    cols = np.empty((n, c * g.kh * g.kw, g.oh * g.ow), dtype=np.float32)
    _im2col_batch(x, g, cols)
    return cols


def col2im(cols, output_size, kernel_size, dilation, padding, stride):
    """torch fold, the adjoint of im2col: cols [N, C*kh*kw, OH*OW] -> [N, C, H, W] with
    (H, W) = output_size; entries that land on the same pixel are summed."""
    g = _geometry(output_size, kernel_size, dilation, padding, stride)
    channels = cols.shape[1] // (g.kh * g.kw)
    y = np.zeros((cols.shape[0], channels, *output_size), dtype=np.float32)
    _col2im_batch(cols, g, y)
    return y


def conv2d(x, w, b, stride, padding, dilation, groups, activation, alpha):
    """PyTorch conv2d then bias then activation: x [N, C, H, W], w [O, C//groups, KH, KW],
    b [O] or None -> y [N, O, OH, OW]."""
    out_channels = w.shape[0]
    g = _geometry(x.shape[2:], w.shape[2:], dilation, padding, stride)
    y = np.zeros((x.shape[0], out_channels, g.oh * g.ow), dtype=np.float32)
    if b is not None:
        y[:] = b[:, None]
    _conv2d_batch(x, w.reshape(out_channels, math.prod(w.shape[1:])), int(groups), g, y)
    return activate(y, activation, alpha).reshape(x.shape[0], out_channels, g.oh, g.ow)
