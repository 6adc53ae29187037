"""Resampling along one axis by ONNX Resize's rules (the Resize layer; UpSampling2D's
bilinear, which is its half_pixel linear case): each output's source coordinate, the input
positions and weights it reads, and the resampling and its adjoint."""
import numpy as np

COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
                    "align_corners", "asymmetric")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def source_coordinates(mode, n_in, n_out, scale):
    """The input coordinate each of n_out outputs maps to along an axis of n_in, resized by
    `scale` (float64; ONNX: the float extent scale * n_in enters align_corners,
    pytorch_half_pixel and half_pixel_symmetric)."""
    y = np.arange(n_out, dtype=np.float64)
    extent = scale * n_in
    if mode == "align_corners":
        return np.zeros(n_out) if extent == 1 else y * (n_in - 1) / (extent - 1)
    if mode == "asymmetric":
        return y / scale
    if mode == "pytorch_half_pixel":
        return np.full(n_out, -0.5) if extent == 1 else (y + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out / extent)
        return offset + (y + 0.5) / scale - 0.5
    return (y + 0.5) / scale - 0.5  # half_pixel


def axis_taps(x_src, n_in, interpolation, nearest_mode="round_prefer_floor"):
    """(lo, hi, w) along an axis of n_in for source coordinates x_src: output i is
    in[lo[i]] (nearest: hi is lo, w zero) or in[lo[i]] * (1 - w[i]) + in[hi[i]] * w[i]."""
    floor = np.floor(x_src)
    frac = x_src - floor
    lo = floor.astype(np.int64)
    if interpolation == "nearest":
        up = {"round_prefer_floor": frac > 0.5, "round_prefer_ceil": frac >= 0.5,
              "floor": np.zeros(frac.shape, bool), "ceil": frac > 0}[nearest_mode]
        lo = np.clip(lo + up, 0, n_in - 1)
        return lo, lo, np.zeros(lo.shape, np.float32)
    hi = np.clip(lo + 1, 0, n_in - 1)
    return np.clip(lo, 0, n_in - 1), hi, frac.astype(np.float32)


def resize_axis(x, axis, taps):
    """x resized along `axis` by axis_taps' (lo, hi, w)."""
    lo, hi, w = taps
    a = np.take(x, lo, axis=axis)
    if not w.any():
        return a
    shape = [1] * x.ndim
    shape[axis] = -1
    w = w.reshape(shape)
    return a * (1 - w) + np.take(x, hi, axis=axis) * w


def resize_axis_backward(g, axis, n_in, taps):
    """The adjoint of resize_axis for an axis of n_in: each output's gradient added back to
    the positions it read."""
    lo, hi, w = taps
    shape = list(g.shape)
    shape[axis] = n_in
    dx = np.zeros(shape, np.float32)
    view = np.moveaxis(dx, axis, 0)
    moved = np.moveaxis(g, axis, 0)
    if not w.any():
        np.add.at(view, lo, moved)
        return dx
    w = w.reshape((-1,) + (1,) * (g.ndim - 1))
    np.add.at(view, lo, moved * (1 - w))
    np.add.at(view, hi, moved * w)
    return dx
