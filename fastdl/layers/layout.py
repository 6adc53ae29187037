"""The layouts of a model's internal arrays.

Keras shapes are channels_last: a 2-D feature map is (N, H, W, C). The kernels compute
channels-first (N, C, H, W). Inside a model an array travels with its layout, so the
conversion happens once where a layer needs the other one, not around every layer:

- KERAS: the array has its Keras shape.
- CF: a channels_last feature map held channels-first: Keras (N, *S, C) as (N, C, *S).
- CfFlat(spatial): Flatten of a CF map: (N, C * prod(S)) in (c, s) order, where Keras'
  Flatten order is (s, c). A Dense layer takes it as it is by permuting its kernel's rows
  once; anything else converts it (to_keras).
"""
import math

import numpy as np

KERAS = "keras"
CF = "cf"


class CfFlat:
    """Flattened channels-first features of a map with spatial shape `spatial`."""

    def __init__(self, spatial):
        self.spatial = tuple(spatial)

    def __eq__(self, other):
        return isinstance(other, CfFlat) and other.spatial == self.spatial

    def __hash__(self):
        return hash(("cf_flat", self.spatial))

    def __repr__(self):
        return f"CfFlat{self.spatial}"


def to_keras(x, layout):
    """x in the Keras shape (a C-contiguous float32 array)."""
    if layout == KERAS:
        return x
    if layout == CF:
        dims = x.ndim - 2
        return np.ascontiguousarray(x.transpose(_TO_KERAS[dims])) if dims > 0 else x
    if isinstance(layout, CfFlat):
        n, features = x.shape
        s = math.prod(layout.spatial)
        return np.ascontiguousarray(x.reshape(n, features // s, s).transpose(0, 2, 1)
                                    ).reshape(n, features)
    raise ValueError(f"unknown layout {layout!r}")


def to_cf(x, layout):
    """A channels_last feature map channels-first (N, C, *S)."""
    if layout == CF:
        return x
    x = to_keras(x, layout)
    return np.ascontiguousarray(x.transpose(_TO_CF[x.ndim - 2]))


# The axis orders of the two conversions by spatial rank (np.moveaxis costs microseconds
# of argument handling per call: a batch-1 model converts its input on every call).
_TO_KERAS = {d: (0,) + tuple(range(2, d + 2)) + (1,) for d in range(0, 4)}
_TO_CF = {d: (0, d + 1) + tuple(range(1, d + 1)) for d in range(0, 4)}


def cf_shape(shape):
    """The channels-first shape of a map of Keras `shape` (to_cf's result)."""
    return tuple(shape[a] for a in _TO_CF[len(shape) - 2])


def keras_view(cf):
    """The channels-first array `cf` seen in Keras' shape (channels last), no copy."""
    return cf.transpose(_TO_KERAS[cf.ndim - 2])


def maps(x, layout, data_format):
    """(x channels-first, the layout of a map computed from it) for a spatial layer of
    this data_format: a channels_last map is held CF; a channels_first one already has
    the channels on axis 1 in Keras' own shape."""
    if data_format == "channels_last":
        return to_cf(x, layout), CF
    return to_keras(x, layout), KERAS


def convert(x, from_layout, to_layout):
    """x (held in from_layout) in to_layout: KERAS or CF."""
    if from_layout == to_layout:
        return x
    if to_layout == KERAS:
        return to_keras(x, from_layout)
    if to_layout == CF:
        return to_cf(x, from_layout)
    raise ValueError(f"unknown layout {to_layout!r}")

