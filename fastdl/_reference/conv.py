"""Reference convolutions with 1, 2 or 3 spatial axes (PyTorch semantics, NC[D][H]W, float64
inside): conv, transposed convolution, im2col / col2im.

Geometry arguments hold one entry per spatial axis (kernel_size, dilation, stride), except
padding, which is flat (before, after) per axis: (top, bottom, left, right) in 2-D.
"""
import itertools
import math

import numpy as np

from fastdl._conv_geometry import output_sizes

from .activation import activate, to_float32


def _tap_windows(kernel_size, dilation, stride, counts):
    """Yield (tap, window) for every kernel tap (a tuple of per-axis offsets): `window`
    indexes, in a padded array [..., spatial...], the `counts` positions the tap meets."""
    for tap in itertools.product(*(range(k) for k in kernel_size)):
        window = tuple(slice(t * d, t * d + s * (n - 1) + 1, s)
                       for t, d, s, n in zip(tap, dilation, stride, counts))
        yield tap, (Ellipsis,) + window


def _patches(x, kernel_size, dilation, padding, stride):
    """x [N, C, spatial...] -> float64 patches [N, C, k..., out...]."""
    dims = len(kernel_size)
    pads = ((0, 0), (0, 0)) + tuple((padding[2 * a], padding[2 * a + 1]) for a in range(dims))
    padded = np.pad(x.astype(np.float64), pads)
    out = output_sizes(x.shape[2:], kernel_size, dilation, padding, stride)
    patches = np.empty(x.shape[:2] + tuple(kernel_size) + out)
    for tap, window in _tap_windows(kernel_size, dilation, stride, out):
        patches[(slice(None), slice(None)) + tap] = padded[window]
    return patches


def im2col(x, kernel_size, dilation, padding, stride):
    """torch unfold: x [N, C, spatial...] -> cols [N, C*prod(k), prod(out)], row
    c*prod(k) + (flat tap index), column = flat output position."""
    patches = _patches(x, kernel_size, dilation, padding, stride)
    n, c = x.shape[:2]
    length = math.prod(patches.shape[2 + len(kernel_size):])
    return to_float32(patches.reshape(n, c * math.prod(kernel_size), length))


def col2im(cols, output_size, kernel_size, dilation, padding, stride):
    """torch fold, the adjoint of im2col: cols [N, C*prod(k), L] -> [N, C, output_size...];
    entries that land on the same pixel are summed."""
    dims = len(kernel_size)
    n, c = cols.shape[0], cols.shape[1] // math.prod(kernel_size)
    out = output_sizes(output_size, kernel_size, dilation, padding, stride)
    patches = cols.astype(np.float64).reshape((n, c) + tuple(kernel_size) + out)
    padded = np.zeros((n, c) + tuple(size + padding[2 * a] + padding[2 * a + 1]
                                     for a, size in enumerate(output_size)))
    for tap, window in _tap_windows(kernel_size, dilation, stride, out):
        padded[window] += patches[(slice(None), slice(None)) + tap]
    crop = tuple(slice(padding[2 * a], padding[2 * a] + output_size[a]) for a in range(dims))
    return to_float32(padded[(Ellipsis,) + crop])


def conv(x, w, b, stride, padding, dilation, groups, activation, alpha):
    """PyTorch conv1d/2d/3d then bias then activation: x [N, C, spatial...], w [O,
    C//groups, k...], b [O] or None -> y [N, O, out...]."""
    n, o = x.shape[0], w.shape[0]
    patches = _patches(x, w.shape[2:], dilation, padding, stride)
    out = patches.shape[w.ndim:]
    taps = math.prod(w.shape[1:])
    cols = patches.reshape(n, groups, taps, math.prod(out))
    y = (w.astype(np.float64).reshape(groups, o // groups, taps) @ cols).reshape((n, o) + out)
    if b is not None:
        y += b.reshape((o,) + (1,) * len(out))
    return activate(y, activation, alpha)


def conv_transpose(x, w, b, stride, padding, output_size, dilation, groups, activation, alpha):
    """PyTorch conv_transpose{1,2,3}d then activation: x [N, Cin, in...], w [Cin,
    Cout//groups, k...], padding one (symmetric) entry per axis, output_size the output's
    spatial extents (which carry output_padding) -> y [N, Cout, output_size...].

    Every input position i scatters x[i] * w[tap] to output position i*s - p + tap*d."""
    n, cin = x.shape[:2]
    cout_g, kernel_size = w.shape[1], w.shape[2:]
    in_sizes = x.shape[2:]
    # y in padded coordinates (output position + p), long enough for every tap and for
    # the requested output.
    extent = tuple(max(d * (k - 1) + s * (i - 1) + 1, p + o) for k, d, s, i, p, o in
                   zip(kernel_size, dilation, stride, in_sizes, padding, output_size))
    padded = np.zeros((n, groups, cout_g) + extent)
    xg = x.astype(np.float64).reshape((n, groups, cin // groups) + in_sizes)
    wg = w.astype(np.float64).reshape((groups, cin // groups, cout_g) + kernel_size)
    for tap, window in _tap_windows(kernel_size, dilation, stride, in_sizes):
        w_tap = wg[(Ellipsis,) + tap]  # [groups, cin_g, cout_g]
        padded[window] += np.einsum("ngc...,gco->ngo...", xg, w_tap)
    crop = tuple(slice(p, p + o) for p, o in zip(padding, output_size))
    y = padded[(Ellipsis,) + crop].reshape((n, groups * cout_g) + tuple(output_size))
    if b is not None:
        y = y + b.reshape((-1,) + (1,) * len(output_size))
    return activate(y, activation, alpha)


def conv_backward(dy, x, w, stride, padding, dilation, groups, has_bias, needs_dx):
    """The gradients of y = conv(x, w) + b from dy [N, O, out...]: (dx [N, C, spatial...]
    or None when not needs_dx, dw [O, C//groups, k...], db [O] or None when not has_bias),
    float32 computed in float64. dx sends each dy back along the taps that made it (the
    transposed convolution), dropping the taps that read padding."""
    n, o = dy.shape[:2]
    kernel_size = w.shape[2:]
    patches = _patches(x, kernel_size, dilation, padding, stride)  # [N, C, k..., out...]
    taps = math.prod(w.shape[1:])
    cols = patches.reshape(n, groups, taps, -1)
    dyg = dy.astype(np.float64).reshape(n, groups, o // groups, -1)
    dw = np.einsum("ngol,ngtl->got", dyg, cols).reshape(w.shape)
    db = dy.astype(np.float64).sum(axis=(0,) + tuple(range(2, dy.ndim))) if has_bias else None
    dx = None
    if needs_dx:
        wg = w.astype(np.float64).reshape(groups, o // groups, taps)
        dcols = np.einsum("ngol,got->ngtl", dyg, wg).reshape(patches.shape)
        dims = len(kernel_size)
        pads = tuple((padding[2 * a], padding[2 * a + 1]) for a in range(dims))
        padded = np.zeros(x.shape[:2] + tuple(s + a + b for s, (a, b) in zip(x.shape[2:], pads)))
        for tap, window in _tap_windows(kernel_size, dilation, stride, patches.shape[2 + dims:]):
            padded[window] += dcols[(slice(None), slice(None)) + tap]
        crop = tuple(slice(a, a + s) for s, (a, _) in zip(x.shape[2:], pads))
        dx = to_float32(padded[(Ellipsis,) + crop])
    return dx, to_float32(dw), None if db is None else to_float32(db)
