"""Resize: maps resized along their spatial axes to any size by ONNX Resize's rules --
nearest or linear, every coordinate transformation mode but tf_crop_and_resize. A fastdl
extension (Keras' Resizing takes images, a target size and half-pixel centres only):
fastdl.io.load_onnx builds it for Resize nodes the UpSampling layers cannot express
(fractional or shrinking factors, target sizes, align_corners, ...).

Separable, one spatial axis at a time: along an axis, output i reads input position lo[i]
(nearest) or lo[i] * (1 - w[i]) + hi[i] * w[i] (linear), positions clamped into the axis
(ONNX's edge padding). The positions follow from each output's source coordinate, computed
in float64 by ONNX's formulas, so they are ONNX's own.
"""
import numpy as np

from fastdl import _validate as v
from fastdl.layers._resample import (COORDINATE_MODES, NEAREST_MODES, axis_taps,
                                     resize_axis, resize_axis_backward, source_coordinates)
from fastdl.layers.reshaping import _Spatial

class Resize(_Spatial):
    """Resizes the `rank` spatial axes of (N, *S, C) (channels_last) or (N, C, *S) maps.

    size: the output extents (an int per axis), or None: floor(extent * scale).
    scale: the factors that map output to input coordinates (a positive number per axis),
      or None: size / extent. Both given: size fixes the extents, scale the mapping (ONNX's
      keep_aspect_ratio_policy).
    interpolation: 'nearest' or 'linear' (bilinear, trilinear along every axis).
    coordinate_mode: ONNX's coordinate_transformation_mode (half_pixel, the default,
      half_pixel_symmetric, pytorch_half_pixel, align_corners, asymmetric).
    nearest_mode: ONNX's (round_prefer_floor, the default, round_prefer_ceil, floor, ceil).
    It trains: the gradient goes back to the positions each output read."""

    def __init__(self, size=None, scale=None, interpolation="nearest",
                 coordinate_mode="half_pixel", nearest_mode="round_prefer_floor",
                 data_format=None, **kwargs):
        super().__init__(data_format, **kwargs)
        if size is None and scale is None:
            raise ValueError("size, scale: expected either (or both), got neither")
        given = size if size is not None else scale
        try:
            self.rank = len(given)
        except TypeError:
            raise TypeError(f"{'size' if size is not None else 'scale'}: expected a tuple "
                            f"per spatial axis, got {given!r}") from None
        if not 1 <= self.rank <= 3:
            raise ValueError(f"size, scale: expected 1 to 3 spatial axes, got {given!r}")
        self.size = None if size is None else v.int_tuple(size, "size", self.rank, 1)
        self.scale = None if scale is None else tuple(
            v.real(s, "scale", 1e-6, 1e6) for s in scale)
        if self.scale is not None and len(self.scale) != self.rank:
            raise ValueError(f"scale: expected {self.rank} values (as size), got {scale!r}")
        self.interpolation = _choice(interpolation, "interpolation", ("nearest", "linear"))
        self.coordinate_mode = _choice(coordinate_mode, "coordinate_mode", COORDINATE_MODES)
        self.nearest_mode = _choice(nearest_mode, "nearest_mode", NEAREST_MODES)

    def _out_size(self, axis, size):
        if self.size is not None:
            return self.size[axis]
        return int(self.scale[axis] * size)

    def _taps(self, axis, n_in):
        """axis_taps for an input extent n_in along spatial `axis` (None: the identity),
        computed once per extent: every call and its gradient reuse them."""
        cache = self.__dict__.setdefault("_taps_cache", {})
        key = (axis, n_in)
        if key not in cache:
            cache[key] = self._new_taps(axis, n_in)
        return cache[key]

    def _new_taps(self, axis, n_in):
        n_out = self._out_size(axis, n_in)
        scale = self.scale[axis] if self.scale is not None else n_out / n_in
        x_src = source_coordinates(self.coordinate_mode, n_in, n_out, scale)
        if n_out == n_in and np.array_equal(x_src, np.arange(n_in)):
            return None  # the identity along this axis
        return axis_taps(x_src, n_in, self.interpolation, self.nearest_mode)

    def _apply(self, x):  # (N, C, *S)
        y = x
        for axis in range(self.rank):
            if y.shape[2 + axis] == 0:
                raise ValueError(f"{self.name}: an empty spatial axis cannot be resized "
                                 f"(input shape {x.shape})")
            taps = self._taps(axis, y.shape[2 + axis])
            if taps is not None:
                y = resize_axis(y, 2 + axis, taps)
        return np.ascontiguousarray(y, dtype=np.float32)

    def _apply_backward(self, dy, shape):
        g = dy.astype(np.float32)
        for axis in reversed(range(self.rank)):
            taps = self._taps(axis, shape[2 + axis])
            if taps is not None:
                g = resize_axis_backward(g, 2 + axis, shape[2 + axis], taps)
        return g

    def get_config(self):
        return {**super().get_config(), "size": self.size, "scale": self.scale,
                "interpolation": self.interpolation, "coordinate_mode": self.coordinate_mode,
                "nearest_mode": self.nearest_mode}


def _choice(value, name, allowed):
    if value not in allowed:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, allowed))}, got "
                         f"{value!r}")
    return value
