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
from fastdl.layers.base import Layer, TrainsOnMaps


class _Merge(TrainsOnMaps, Layer):
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

    def _train_forward_maps(self, xs, layouts, training, logits=False):
        """In the inputs' layout when they share it and their shape (a residual Add of
        two maps stays channels-first); otherwise in Keras' (broadcasting is Keras')."""
        layout = layouts[0]
        if any(l != layout for l in layouts) or any(x.shape != xs[0].shape for x in xs):
            xs, layout = [L.to_keras(x, l) for x, l in zip(xs, layouts)], L.KERAS
        y = np.ascontiguousarray(self._merge(xs), dtype=np.float32)
        return y, layout, (xs, layout, layouts)

    def _backward_maps(self, dy, cache, grads, needs_input_grad=True):
        xs, layout, layouts = cache
        return [L.convert(_unbroadcast(g, x.shape), layout, l)
                for g, x, l in zip(self._input_gradients(dy, xs), xs, layouts)]

    def _input_gradients(self, dy, xs):
        """The gradient for each input, at the broadcast shape."""
        raise NotImplementedError


def _unbroadcast(g, shape):
    """g summed over the axes an input of `shape` was broadcast along."""
    if g.shape == shape:
        return g
    axes = tuple(i for i, (a, b) in enumerate(zip(shape, g.shape)) if a == 1 and b != 1)
    return np.ascontiguousarray(g.sum(axis=axes, keepdims=True), dtype=np.float32)


def _fold_extremum(dy, xs, better):
    """Gradients of a pairwise fold of maximum (better = np.greater) or minimum: each
    pairwise step sends the gradient to the input that won and splits it evenly on a tie
    (torch.maximum's and torch.minimum's rule, which Keras' torch backend runs)."""
    partial = [xs[0]]
    for x in xs[1:]:
        partial.append(np.where(better(partial[-1], x) | (partial[-1] == x), partial[-1], x))
    grads = [None] * len(xs)
    g = dy
    for i in range(len(xs) - 1, 0, -1):
        a, b = partial[i - 1], xs[i]
        tie = a == b
        to_a = np.where(tie, g * np.float32(0.5), np.where(better(a, b), g, 0.0))
        grads[i] = np.where(tie, g * np.float32(0.5), np.where(better(a, b), 0.0, g))
        g = to_a
    grads[0] = g
    return [np.asarray(d, np.float32) for d in grads]


def _layout_key(layout):
    return layout if isinstance(layout, (str, L.CfFlat)) else repr(layout)


def _reduce(op, xs, out=None):
    """The ufunc op folded over the inputs: into one new array, or into `out` (two or more
    inputs of its shape)."""
    if out is None:
        out = op(xs[0], xs[1]) if len(xs) > 1 else xs[0].copy()
    else:
        op(xs[0], xs[1], out=out)
    for a in xs[2:]:
        op(out, a, out=out)
    return out


class Add(_Merge):
    """The sum of the inputs."""

    ufunc = np.add  # folded over the inputs (a compiled model writes it into its buffer)

    def _merge(self, xs):
        return _reduce(self.ufunc, xs)

    def _input_gradients(self, dy, xs):
        return [dy] * len(xs)


class Subtract(_Merge):
    """inputs[0] - inputs[1] (exactly two inputs)."""
    min_inputs = max_inputs = 2
    ufunc = np.subtract

    def _merge(self, xs):
        return _reduce(self.ufunc, xs)

    def _input_gradients(self, dy, xs):
        return [dy, -dy]


class Multiply(_Merge):
    """The elementwise product of the inputs."""

    ufunc = np.multiply

    def _merge(self, xs):
        return _reduce(self.ufunc, xs)

    def _input_gradients(self, dy, xs):
        return [dy * _reduce(np.multiply, xs[:i] + xs[i + 1:]) if len(xs) > 1 else dy
                for i in range(len(xs))]


class Average(_Merge):
    """The elementwise mean of the inputs."""

    def _merge(self, xs):
        out = _reduce(np.add, xs)
        out *= np.float32(1.0 / len(xs))
        return out

    def _input_gradients(self, dy, xs):
        return [dy * np.float32(1.0 / len(xs))] * len(xs)


class Maximum(_Merge):
    """The elementwise maximum of the inputs."""

    ufunc = np.maximum

    def _merge(self, xs):
        return _reduce(self.ufunc, xs)

    def _input_gradients(self, dy, xs):
        return _fold_extremum(dy, xs, np.greater)


class Minimum(_Merge):
    """The elementwise minimum of the inputs."""

    ufunc = np.minimum

    def _merge(self, xs):
        return _reduce(self.ufunc, xs)

    def _input_gradients(self, dy, xs):
        return _fold_extremum(dy, xs, np.less)


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

    def _operands(self, x, layout):
        """(the arrays to concatenate, the axis to concatenate them on, their layout)."""
        rank = x[0].ndim
        axis = self._axis(rank)
        if all(l == L.CF for l in layout) and rank > 2:
            # Keras (N, *S, C) held as (N, C, *S): the channels are axis 1, S[i] is i + 2.
            return x, (1 if axis == rank - 1 else axis + 1), L.CF
        return [L.to_keras(a, l) for a, l in zip(x, layout)], axis, L.KERAS

    def _forward(self, x, layout):
        xs, axis, out_layout = self._operands(x, layout)
        return np.concatenate(xs, axis=axis), out_layout

    def _train_forward(self, xs, training):
        axis = self._axis(xs[0].ndim)
        return np.concatenate(xs, axis=axis), (axis, [x.shape[axis] for x in xs])

    def _backward(self, dy, cache, grads):
        axis, sizes = cache
        return [np.ascontiguousarray(g) for g in
                np.split(dy, np.cumsum(sizes)[:-1], axis=axis)]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
