"""Reference 2-D convolution and im2col/col2im: PyTorch semantics, NCHW, float64 inside.

Geometry arguments are pairs (kernel_size (kh, kw), dilation (dh, dw), stride (sh, sw))
except padding, which is (top, bottom, left, right).
"""
import numpy as np

from .activation import activate, to_float32


def _output_length(size, pad_before, pad_after, kernel, dilation, stride):
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def output_hw(in_hw, kernel_size, dilation, padding, stride):
    """(OH, OW): the number of output positions along each spatial axis."""
    top, bottom, left, right = padding
    return (_output_length(in_hw[0], top, bottom, kernel_size[0], dilation[0], stride[0]),
            _output_length(in_hw[1], left, right, kernel_size[1], dilation[1], stride[1]))


def _tap_windows(kernel_size, dilation, stride, out_hw):
    """Yield (ky, kx, window) for every kernel tap: `window` indexes, in the padded
    input [..., Hp, Wp], the [..., OH, OW] pixels that the tap meets at each output."""
    (kh, kw), (dh, dw), (sh, sw), (oh, ow) = kernel_size, dilation, stride, out_hw
    for ky in range(kh):
        for kx in range(kw):
            row_slice = slice(ky * dh, ky * dh + sh * (oh - 1) + 1, sh)
            column_slice = slice(kx * dw, kx * dw + sw * (ow - 1) + 1, sw)
            yield ky, kx, (Ellipsis, row_slice, column_slice)


def _patches(x, kernel_size, dilation, padding, stride):
    """x [N, C, H, W] -> float64 patches [N, C, kh, kw, OH, OW]."""
    top, bottom, left, right = padding
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
    out_hw = output_hw(x.shape[2:], kernel_size, dilation, padding, stride)
    patches = np.empty(x.shape[:2] + tuple(kernel_size) + out_hw)
    for ky, kx, window in _tap_windows(kernel_size, dilation, stride, out_hw):
        patches[:, :, ky, kx] = padded[window]
    return patches


def im2col(x, kernel_size, dilation, padding, stride):
    """torch unfold: x [N, C, H, W] -> cols [N, C*kh*kw, OH*OW], row (c*kh + ky)*kw + kx,
    column oh*OW + ow."""
    patches = _patches(x, kernel_size, dilation, padding, stride)
    n, c, kh, kw, oh, ow = patches.shape
    return to_float32(patches.reshape(n, c * kh * kw, oh * ow))


def col2im(cols, output_size, kernel_size, dilation, padding, stride):
    """torch fold, the adjoint of im2col: cols [N, C*kh*kw, OH*OW] -> [N, C, H, W] with
    (H, W) = output_size; entries that land on the same pixel are summed."""
    (h, w), (kh, kw), (top, bottom, left, right) = output_size, kernel_size, padding
    n, c = cols.shape[0], cols.shape[1] // (kh * kw)
    out_hw = output_hw(output_size, kernel_size, dilation, padding, stride)
    patches = cols.astype(np.float64).reshape((n, c, kh, kw) + out_hw)
    padded = np.zeros((n, c, h + top + bottom, w + left + right))
    for ky, kx, window in _tap_windows(kernel_size, dilation, stride, out_hw):
        padded[window] += patches[:, :, ky, kx]
    return to_float32(padded[:, :, top:top + h, left:left + w])


def conv2d(x, w, b, stride, padding, dilation, groups, activation, alpha):
    """PyTorch conv2d then bias then activation: x [N, C, H, W], w [O, C//groups, KH, KW],
    b [O] or None -> y [N, O, OH, OW]."""
    n = x.shape[0]
    o, group_channels, kh, kw = w.shape
    patches = _patches(x, (kh, kw), dilation, padding, stride)
    oh, ow = patches.shape[-2:]
    taps = group_channels * kh * kw
    cols = patches.reshape(n, groups, taps, oh * ow)
    group_weights = w.astype(np.float64).reshape(groups, o // groups, taps)
    y = (group_weights @ cols).reshape(n, o, oh, ow)
    if b is not None:
        y += b[:, None, None]
    return activate(y, activation, alpha)
