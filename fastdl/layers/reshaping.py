"""Reshaping layers: ZeroPadding1D/2D/3D, Cropping1D/2D/3D, UpSampling1D/2D/3D, Permute,
RepeatVector (Keras 3's arguments); Slice (a fastdl extension).

The spatial ones work on the model's channels-first maps (layout.maps): a chain of
convolutions, paddings and upsamplings never transposes. Where fastdl differs from Keras:
UpSampling2D's 'bilinear' follows Keras' (half-pixel centres, no antialiasing); the other
interpolations Keras lists are not offered.
"""
import numpy as np

from fastdl import _validate as v
from fastdl.layers import layout as L
from fastdl.layers._axes import is_feature_axis, one_axis_arg
from fastdl.layers._resample import axis_taps, resize_axis, resize_axis_backward, source_coordinates
from fastdl.layers.base import Layer
from fastdl.layers.core import data_format_arg


def _pairs(value, name, rank, default_pair=True):
    """Keras' padding / cropping argument as ((before, after), ...) per spatial axis: an
    int (every side), `rank` ints (per axis, both sides) or `rank` pairs; 1-D also takes
    one pair."""
    def count(n):
        return v.integer(n, name, 0, v.MAX_AXIS)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return ((count(value),) * 2,) * rank
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{name}: expected an int or a tuple, got {value!r}") from None
    if rank == 1 and len(items) == 2 and all(not isinstance(i, (tuple, list)) for i in items):
        return ((count(items[0]), count(items[1])),)
    if len(items) != rank:
        raise ValueError(f"{name}: expected an int, {rank} ints or {rank} (before, after) "
                         f"pairs, got {value!r}")
    out = []
    for item in items:
        if isinstance(item, (tuple, list)):
            if len(item) != 2:
                raise ValueError(f"{name}: expected (before, after) pairs, got {value!r}")
            out.append((count(item[0]), count(item[1])))
        else:
            out.append((count(item),) * 2)
    return tuple(out)


class _Spatial(Layer):
    """A layer over the spatial axes of (N, *S, C) (channels_last) or (N, C, *S) maps."""
    rank = None

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format_arg(data_format)

    def _spatial(self, shape):
        return tuple(shape[1:-1] if self.data_format == "channels_last" else shape[2:])

    def _with_spatial(self, shape, spatial):
        if self.data_format == "channels_last":
            return (shape[0],) + tuple(spatial) + (shape[-1],)
        return tuple(shape[:2]) + tuple(spatial)

    def check_input(self, input_shape, first=False):
        if len(input_shape) != self.rank + 2:
            self._refuse(input_shape, f"a {self.rank + 2}-D shape")
        super().check_input(input_shape, first)

    def compute_output_shape(self, input_shape):
        return self._with_spatial(input_shape, [
            None if s is None else self._out_size(i, s)
            for i, s in enumerate(self._spatial(input_shape))])

    def _forward(self, x, layout):
        x, out_layout = L.maps(x, layout, self.data_format)
        return self._apply(x), out_layout

    def _train_forward(self, x, training):
        xc, layout = L.maps(x, L.KERAS, self.data_format)
        return L.to_keras(self._apply(xc), layout), (xc.shape, layout)

    def _backward(self, dy, cache, grads):
        shape, layout = cache
        dyc = L.to_cf(dy, L.KERAS) if layout == L.CF else dy
        return L.to_keras(np.ascontiguousarray(self._apply_backward(dyc, shape)), layout)

    def _apply_backward(self, dy, shape):
        """The gradient for the (N, C, *S) input of `shape` from that of _apply's output."""
        raise NotImplementedError

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class _ZeroPadding(_Spatial):
    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(data_format, **kwargs)
        self.padding = _pairs(padding, "padding", self.rank)

    def _out_size(self, axis, size):
        return size + sum(self.padding[axis])

    def _apply(self, x):  # x: (N, C, *S)
        out = np.zeros(x.shape[:2] + tuple(s + a + b for s, (a, b) in zip(
            x.shape[2:], self.padding)), np.float32)
        out[(slice(None), slice(None)) + tuple(
            slice(a, a + s) for s, (a, _) in zip(x.shape[2:], self.padding))] = x
        return out

    def _apply_backward(self, dy, shape):
        return dy[(slice(None), slice(None)) + tuple(
            slice(a, a + s) for s, (a, _) in zip(shape[2:], self.padding))]

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


class ZeroPadding1D(_ZeroPadding):
    """Zeros before and after the steps of (N, steps, C): padding an int or (left, right)."""
    rank = 1


class ZeroPadding2D(_ZeroPadding):
    """Zero rows and columns around (N, H, W, C) maps: padding an int, (rows, columns) or
    ((top, bottom), (left, right))."""
    rank = 2

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class ZeroPadding3D(_ZeroPadding):
    """Zero padding of the three spatial axes of (N, D, H, W, C) maps."""
    rank = 3

    def __init__(self, padding=(1, 1, 1), data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class _Cropping(_Spatial):
    def __init__(self, cropping, data_format=None, **kwargs):
        super().__init__(data_format, **kwargs)
        self.cropping = _pairs(cropping, "cropping", self.rank)

    def check_input(self, input_shape, first=False):
        super().check_input(input_shape, first)
        for s, (a, b) in zip(self._spatial(input_shape), self.cropping):
            if s is not None and s <= a + b:
                self._refuse(input_shape, f"spatial sizes above the cropping "
                                          f"{self.cropping}")

    def _out_size(self, axis, size):
        return size - sum(self.cropping[axis])

    def _apply(self, x):
        index = (slice(None), slice(None)) + tuple(
            slice(a, s - b) for s, (a, b) in zip(x.shape[2:], self.cropping))
        return np.ascontiguousarray(x[index])

    def _apply_backward(self, dy, shape):
        dx = np.zeros(shape, np.float32)
        dx[(slice(None), slice(None)) + tuple(
            slice(a, s - b) for s, (a, b) in zip(shape[2:], self.cropping))] = dy
        return dx

    def get_config(self):
        return {**super().get_config(), "cropping": self.cropping}


class Cropping1D(_Cropping):
    """Removes steps at the start and end of (N, steps, C): cropping an int or (start,
    end). (Keras' Cropping1D has no data_format; fastdl accepts one.)"""
    rank = 1

    def __init__(self, cropping=(1, 1), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)


class Cropping2D(_Cropping):
    """Removes rows and columns at the edges: cropping an int, (rows, columns) or ((top,
    bottom), (left, right))."""
    rank = 2

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)


class Cropping3D(_Cropping):
    """Cropping of the three spatial axes of (N, D, H, W, C) maps."""
    rank = 3

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)


class _UpSampling(_Spatial):
    def __init__(self, size, data_format=None, interpolation="nearest", **kwargs):
        super().__init__(data_format, **kwargs)
        self.size = v.int_tuple(size, "size", self.rank, 1)
        if not isinstance(interpolation, str) or interpolation.lower() not in (
                "nearest", "bilinear") or (self.rank != 2 and interpolation != "nearest"):
            allowed = "'nearest' or 'bilinear'" if self.rank == 2 else "'nearest'"
            raise ValueError(f"interpolation: expected {allowed}, got {interpolation!r}")
        self.interpolation = interpolation.lower()

    def _out_size(self, axis, size):
        return size * self.size[axis]

    def _apply(self, x):
        if self.interpolation == "bilinear":
            return _bilinear(x, self.size)
        n, c = x.shape[:2]
        spatial = x.shape[2:]
        # Each axis repeated in place by a broadcast view, then one copy.
        shape, expanded = (n, c), (n, c)
        for s, f in zip(spatial, self.size):
            shape += (s, 1)
            expanded += (s, f)
        out = np.broadcast_to(x.reshape(shape), expanded)
        return np.ascontiguousarray(out).reshape((n, c) + tuple(
            s * f for s, f in zip(spatial, self.size)))

    def _apply_backward(self, dy, shape):
        if self.interpolation == "bilinear":
            return _bilinear_backward(dy, shape, self.size)
        blocks = shape[:2]  # each input position's block of copies, summed
        for s, f in zip(shape[2:], self.size):
            blocks += (s, f)
        return dy.reshape(blocks).sum(axis=tuple(range(3, len(blocks), 2)), dtype=np.float32)

    def get_config(self):
        config = {**super().get_config(), "size": self.size}
        if self.rank == 2:
            config["interpolation"] = self.interpolation
        return config


def _bilinear_taps(n, factor):
    """Keras' bilinear upsampling along an axis of n: ONNX's half_pixel linear resize."""
    x_src = source_coordinates("half_pixel", n, n * factor, float(factor))
    return axis_taps(x_src, n, "linear")


def _bilinear(x, size):
    """(N, C, H, W) resized by integer factors with half-pixel centres (as Keras' and
    TensorFlow's resize, no antialiasing): separable, one axis at a time."""
    y = x.astype(np.float32)
    for axis, factor in ((2, size[0]), (3, size[1])):
        y = resize_axis(y, axis, _bilinear_taps(y.shape[axis], factor))
    return np.ascontiguousarray(y, dtype=np.float32)


def _bilinear_backward(dy, shape, size):
    """The adjoint of _bilinear for an input of `shape`: the axes in reverse order."""
    g = dy.astype(np.float32)
    for axis, factor in ((3, size[1]), (2, size[0])):
        g = resize_axis_backward(g, axis, shape[axis], _bilinear_taps(shape[axis], factor))
    return g


class UpSampling1D(_UpSampling):
    """Repeats each step `size` times: (N, steps, C) -> (N, steps * size, C). (Keras'
    UpSampling1D has no data_format; fastdl accepts one.)"""
    rank = 1

    def __init__(self, size=2, data_format=None, **kwargs):
        super().__init__(size, data_format, **kwargs)


class UpSampling2D(_UpSampling):
    """Repeats rows and columns (interpolation 'nearest') or interpolates ('bilinear')."""
    rank = 2

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(size, data_format, interpolation, **kwargs)


class UpSampling3D(_UpSampling):
    """Repeats along the three spatial axes."""
    rank = 3

    def __init__(self, size=(2, 2, 2), data_format=None, **kwargs):
        super().__init__(size, data_format, **kwargs)


class Permute(Layer):
    """Reorders the axes after the batch: dims a permutation of 1..rank."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        try:
            self.dims = tuple(v.integer(d, "dims") for d in dims)
        except TypeError:
            raise TypeError(f"dims: expected a tuple of ints, got {dims!r}") from None
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(f"dims: expected a permutation of 1..{len(self.dims)}, got "
                             f"{dims!r}")

    def check_input(self, input_shape, first=False):
        if len(input_shape) != len(self.dims) + 1:
            self._refuse(input_shape, f"a {len(self.dims) + 1}-D shape (dims {self.dims})")

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def _forward(self, x, layout):
        x = L.to_keras(x, layout)
        return np.ascontiguousarray(x.transpose((0,) + self.dims)), L.KERAS

    def _train_forward(self, x, training):
        return np.ascontiguousarray(x.transpose((0,) + self.dims)), None

    def _backward(self, dy, cache, grads):
        return np.ascontiguousarray(dy.transpose(np.argsort((0,) + self.dims)))

    def get_config(self):
        return {**super().get_config(), "dims": self.dims}


class Slice(Layer):
    """x[..., start:stop:step, ...] along `axis` (an axis after the batch; a negative one
    counts from the end): start, stop and step as Python's slices (None for the ends; a
    negative step walks backwards, -1 reverses). A fastdl extension (Keras has no slicing layer): ONNX's Slice, Split and the
    chunks of exported PyTorch models (fastdl.io.load_onnx). It trains: the gradient
    reaches the kept elements, zeros the others."""
    _view_at_inference = True  # its output, where not a copy, is a view of its input

    def __init__(self, axis, start=None, stop=None, step=1, **kwargs):
        super().__init__(**kwargs)
        self.axis = one_axis_arg(axis)
        self.start = None if start is None else v.integer(start, "start", -v.MAX_AXIS,
                                                          v.MAX_AXIS)
        self.stop = None if stop is None else v.integer(stop, "stop", -v.MAX_AXIS,
                                                        v.MAX_AXIS)
        self.step = v.integer(step, "step", -v.MAX_AXIS, v.MAX_AXIS)
        if self.step == 0:
            raise ValueError("step: expected a nonzero int (negative: backwards), got 0")

    def _index(self, ndim):
        index = [slice(None)] * ndim
        index[self.axis % ndim] = slice(self.start, self.stop, self.step)
        return tuple(index)

    def check_input(self, input_shape, first=False):
        ndim = len(input_shape)
        if not is_feature_axis(self.axis, ndim):
            self._refuse(input_shape, f"an axis {self.axis} after the batch axis")
        size = input_shape[self.axis % ndim]
        if size is not None and not len(range(size)[self._index(ndim)[self.axis % ndim]]):
            self._refuse(input_shape, f"elements in [{self.start}:{self.stop}:{self.step}] "
                                      f"along axis {self.axis}")

    def compute_output_shape(self, input_shape):
        ndim = len(input_shape)
        axis = self.axis % ndim
        size = input_shape[axis]
        kept = None if size is None else len(range(size)[self._index(ndim)[axis]])
        return tuple(input_shape[:axis]) + (kept,) + tuple(input_shape[axis + 1:])

    def _forward(self, x, layout):
        x = L.to_keras(x, layout)
        return np.ascontiguousarray(x[self._index(x.ndim)]), L.KERAS

    def _train_forward(self, x, training):
        return np.ascontiguousarray(x[self._index(x.ndim)]), x.shape

    def _backward(self, dy, shape, grads):
        dx = np.zeros(shape, np.float32)
        dx[self._index(len(shape))] = dy
        return dx

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "start": self.start,
                "stop": self.stop, "step": self.step}


class Gather(Layer):
    """np.take(x, indices, axis): the elements at `indices` (ints of any shape, a negative
    one counting from the end) along `axis` (an axis after the batch), which the indices'
    axes replace. A fastdl extension (ONNX's Gather of several indices). It trains: each
    element's gradient is the sum of those of its copies."""

    def __init__(self, indices, axis, **kwargs):
        super().__init__(**kwargs)
        self.axis = one_axis_arg(axis)
        indices = v.index_array(indices, "indices")
        if indices.size == 0:
            raise ValueError("indices: expected at least one index")
        self.indices = indices.astype(np.int64)

    def check_input(self, input_shape, first=False):
        ndim = len(input_shape)
        if not is_feature_axis(self.axis, ndim):
            self._refuse(input_shape, f"an axis {self.axis} after the batch axis")
        size = input_shape[self.axis % ndim]
        if size is None:
            self._refuse(input_shape, f"a known size along axis {self.axis}")
        if self.indices.min() < -size or self.indices.max() >= size:
            self._refuse(input_shape, f"indices in [{-size}, {size}) along axis {self.axis}")

    def compute_output_shape(self, input_shape):
        axis = self.axis % len(input_shape)
        return tuple(input_shape[:axis]) + self.indices.shape + tuple(input_shape[axis + 1:])

    def _take(self, x):
        return np.ascontiguousarray(np.take(x, self.indices, axis=self.axis % x.ndim))

    def _forward(self, x, layout):
        return self._take(L.to_keras(x, layout)), L.KERAS

    def _train_forward(self, x, training):
        return self._take(x), x.shape

    def _backward(self, dy, shape, grads):
        axis = self.axis % len(shape)
        dx = np.zeros(shape, np.float32)
        rows = dy.reshape(shape[:axis] + (self.indices.size,) + shape[axis + 1:])
        np.add.at(np.moveaxis(dx, axis, 0), self.indices.reshape(-1) % shape[axis],
                  np.moveaxis(rows, axis, 0))
        return dx

    def get_config(self):
        return {**super().get_config(), "indices": self.indices.tolist(), "axis": self.axis}


class RepeatVector(Layer):
    """(N, features) -> (N, n, features): the input repeated n times."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = v.positive_int(n, "n")

    def check_input(self, input_shape, first=False):
        if len(input_shape) != 2:
            self._refuse(input_shape, "a 2-D shape (None, features)")
        super().check_input(input_shape, first)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def _forward(self, x, layout):
        x = L.to_keras(x, layout)
        return np.ascontiguousarray(np.broadcast_to(x[:, None, :], (x.shape[0], self.n,
                                                                    x.shape[1]))), L.KERAS

    def _train_forward(self, x, training):
        return self._forward(x, L.KERAS)[0], None

    def _backward(self, dy, cache, grads):
        return dy.sum(axis=1, dtype=np.float32)

    def get_config(self):
        return {**super().get_config(), "n": self.n}
