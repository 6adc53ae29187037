"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum (elementwise over a list
of inputs, size-1 axes broadcast as in Keras) and Concatenate(axis).

They take the inputs in whatever layout they arrive when all share it (an elementwise op
does not care about the axis order; Concatenate maps its axis), so a residual Add between
two convolutions keeps the maps channels-first. Where fastdl differs from Keras: inputs
must have the same rank (Keras inserts axes into the lower-rank ones).
"""
import numpy as np

from fastdl import _validate as v
from fastdl.layers import layout as L
from fastdl.layers.base import Layer


class _Merge(Layer):
    min_inputs = 1
    max_inputs = None

    def check_input(self, input_shape, first=False):
        if not isinstance(input_shape, list):
            raise ValueError(f"{self.name} ({self.class_name}): expected a list of "
                             f"inputs, got one of shape {tuple(input_shape)}")
        n = len(input_shape)
        if n < self.min_inputs or (self.max_inputs is not None and n > self.max_inputs):
            want = (f"exactly {self.min_inputs}" if self.min_inputs == self.max_inputs
                    else f"at least {self.min_inputs}")
            raise ValueError(f"{self.name} ({self.class_name}): expected {want} inputs, "
                             f"got {n}")
        if len({len(s) for s in input_shape}) > 1:
            self._refuse(input_shape, "inputs of one rank")
        self._combined(input_shape)

    def _combined(self, shapes):
        """The broadcast shape, as Keras computes it: None where any input has None, a
        size-1 axis takes the other's size, other sizes must agree."""
        out = list(shapes[0])
        for shape in shapes[1:]:
            for i, (a, b) in enumerate(zip(out, shape)):
                if a is None or b is None:
                    out[i] = None
                elif a == 1:
                    out[i] = b
                elif b != 1 and a != b:
                    self._refuse(shapes, f"shapes that broadcast together (axis {i}: "
                                         f"{a} vs {b})")
        return tuple(out)

    def compute_output_shape(self, input_shape):
        return self._combined(input_shape)

    def _forward(self, x, layout):
        kinds = {_layout_key(l) for l in layout}
        if len(kinds) > 1:
            if kinds == {L.KERAS, L.CF} and x[0].ndim > 2:  # keep maps channels-first
                x, lay = [L.to_cf(a, l) for a, l in zip(x, layout)], L.CF
            else:
                x, lay = [L.to_keras(a, l) for a, l in zip(x, layout)], L.KERAS
        else:
            lay = layout[0]
        return np.ascontiguousarray(self._merge(x), dtype=np.float32), lay

    def _merge(self, xs):
        raise NotImplementedError


def _layout_key(layout):
    return layout if isinstance(layout, (str, L.CfFlat)) else repr(layout)


def _reduce(op, xs):
    """op folded over the inputs into one new array."""
    out = op(xs[0], xs[1]) if len(xs) > 1 else xs[0].copy()
    for a in xs[2:]:
        out = op(out, a)
    return out


class Add(_Merge):
    """The sum of the inputs."""

    def _merge(self, xs):
        return _reduce(np.add, xs)


class Subtract(_Merge):
    """inputs[0] - inputs[1] (exactly two inputs)."""
    min_inputs = max_inputs = 2

    def _merge(self, xs):
        return np.subtract(xs[0], xs[1])


class Multiply(_Merge):
    """The elementwise product of the inputs."""

    def _merge(self, xs):
        return _reduce(np.multiply, xs)


class Average(_Merge):
    """The elementwise mean of the inputs."""

    def _merge(self, xs):
        out = _reduce(np.add, xs)
        out *= np.float32(1.0 / len(xs))
        return out


class Maximum(_Merge):
    """The elementwise maximum of the inputs."""

    def _merge(self, xs):
        return _reduce(np.maximum, xs)


class Minimum(_Merge):
    """The elementwise minimum of the inputs."""

    def _merge(self, xs):
        return _reduce(np.minimum, xs)


class Concatenate(Layer):
    """The inputs joined along `axis` (Keras' axis: -1, the channels, by default); the
    other axes must match."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = v.integer(axis, "axis")

    def _axis(self, rank):
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 0 < axis < rank:
            raise ValueError(f"{self.name} (Concatenate): axis {self.axis} is not a feature "
                             f"axis of a rank-{rank} input")
        return axis

    def check_input(self, input_shape, first=False):
        if not isinstance(input_shape, list) or not input_shape:
            raise ValueError(f"{self.name} (Concatenate): expected a list of inputs, got "
                             f"{input_shape!r}")
        ranks = {len(s) for s in input_shape}
        if len(ranks) > 1:
            self._refuse(input_shape, "inputs of one rank")
        axis = self._axis(ranks.pop())
        for i in range(len(input_shape[0])):
            sizes = {s[i] for s in input_shape if s[i] is not None}
            if i not in (0, axis) and len(sizes) > 1:
                self._refuse(input_shape, f"the same sizes except along axis {self.axis}")

    def compute_output_shape(self, input_shape):
        axis = self._axis(len(input_shape[0]))
        out = []
        for i in range(len(input_shape[0])):
            sizes = [s[i] for s in input_shape]
            if i == axis:
                out.append(None if None in sizes else sum(sizes))
            else:
                out.append(next((s for s in sizes if s is not None), None))
        return tuple(out)

    def _forward(self, x, layout):
        rank = x[0].ndim
        axis = self._axis(rank)
        if all(l == L.CF for l in layout) and rank > 2:
            # Keras (N, *S, C) held as (N, C, *S): the channels are axis 1, S[i] is i + 2.
            cf_axis = 1 if axis == rank - 1 else axis + 1
            return np.concatenate(x, axis=cf_axis), L.CF
        x = [L.to_keras(a, l) for a, l in zip(x, layout)]
        return np.concatenate(x, axis=axis), L.KERAS

    # Training (Keras-layout arrays): the gradient is dy cut back into the inputs' parts.
    def _train_forward(self, x, training):
        axis = self._axis(x[0].ndim)
        return np.concatenate(x, axis=axis), (axis, [a.shape[axis] for a in x])

    def _backward(self, dy, cache, grads):
        axis, sizes = cache
        return [np.ascontiguousarray(part)
                for part in np.split(dy, np.cumsum(sizes)[:-1], axis=axis)]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
