"""The `axis` argument of layers over feature axes, never the batch axis 0: an int or a
tuple of ints (Softmax, Reduce, UnitNormalization), or one int (Slice, Gather)."""
from fastdl import _validate as v


def axis_arg(axis):
    """`axis` (an int or a list/tuple of ints) as a non-empty tuple of ints."""
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    axes = tuple(v.integer(a, "axis") for a in axes)
    if not axes:
        raise ValueError("axis: expected at least one axis")
    return axes


def one_axis_arg(axis):
    """`axis` (one int, not the batch axis 0; negative: from the end) as an int."""
    axis = v.integer(axis, "axis", -v.MAX_AXIS, v.MAX_AXIS)
    if axis == 0:
        raise ValueError("axis: expected an axis after the batch axis, got 0")
    return axis


def is_feature_axis(axis, rank):
    """Whether the int `axis` names an axis after the batch axis of a rank-`rank` input."""
    return 1 <= axis < rank or -rank < axis < 0


def feature_axes(layer, rank):
    """layer.axis as sorted non-negative axes of a rank-`rank` input; ValueError naming the
    layer where one is the batch axis or outside the input."""
    if any(not -rank <= a < rank for a in layer.axis) or 0 in {a % rank for a in layer.axis}:
        raise ValueError(f"{layer.name} ({layer.class_name}): axis {layer.axis} is not a "
                         f"feature axis of a rank-{rank} input")
    return tuple(sorted({a % rank for a in layer.axis}))


class OverFeatureAxes:
    """Mixin (before Layer) for a layer with an `axis` attribute over feature axes: _axes(rank)
    and the input check that refuses shapes without those axes."""

    def _axes(self, rank):
        return feature_axes(self, rank)

    def check_input(self, input_shape, first=False):
        try:
            self._axes(len(input_shape))
        except ValueError:
            self._refuse(input_shape, f"a shape whose feature axes include axis={self.axis}")
        super().check_input(input_shape, first)
