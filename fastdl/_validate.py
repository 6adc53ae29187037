"""Argument checks at the public boundary. Every error names the argument and says what
was expected and what came; everything below this layer trusts its inputs.
"""
import numbers
import operator

import numpy as np

ACTIVATIONS = ("relu", "relu6", "leaky_relu", "sigmoid", "tanh", "silu", "elu", "hard_swish")
_ACTIVATION_ALIASES = {"linear": None, "swish": "silu", "hardswish": "hard_swish"}
# Largest element count an output may have: its byte size must fit a signed 64-bit index.
_MAX_ELEMENTS = np.iinfo(np.intp).max // 8


def real_array(value, name):
    """`value` as an ndarray of a real dtype (bool, int or float); TypeError otherwise."""
    if value is None:
        raise TypeError(f"{name}: expected an array of real numbers, got None")
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected an array of real numbers, got dtype {arr.dtype}")
    return arr


def float32_array(value, name, ndim=None, what=None):
    """A C-contiguous float32 copy-or-view of `value` (any strides, any real dtype)."""
    ready = (type(value) is np.ndarray and value.dtype == np.float32
             and value.flags.c_contiguous)  # the common case, on every call of a plan
    arr = value if ready else real_array(value, name)
    if ndim is not None and arr.ndim not in (ndim if isinstance(ndim, tuple) else (ndim,)):
        raise ValueError(f"{name}: expected a {what or f'{ndim}-D array'}, "
                         f"got shape {arr.shape}")
    if ready:
        return arr
    # np.asarray keeps 0-d arrays 0-d (np.ascontiguousarray would make them 1-d).
    return np.asarray(arr, dtype=np.float32, order="C")


def index_array(value, name):
    """A C-contiguous int64 array of indices from integers, or floats holding whole
    numbers (what float inputs carry to an Embedding); ValueError for other values."""
    # Contiguous before any pass over it (a huge zero-stride view fails here, at once).
    arr = np.asarray(real_array(value, name), order="C")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.floor(arr)):
            raise ValueError(f"{name}: expected integer indices, got non-integer values")
        if arr.size and np.abs(arr).max() >= 2 ** 53:
            raise ValueError(f"{name}: indices beyond 2**53 cannot be exact in floats")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


def flag(value, name):
    """`value` (a Python or NumPy bool) as a bool; TypeError for anything else, 0 and 1
    included."""
    if value is True or value is False:  # the common case, on every call of an op
        return value
    if not isinstance(value, np.bool_):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    return bool(value)


def verbosity(value, name="verbose"):
    """Keras' verbose (0, 1, 2 or 'auto', which is 1) as an int; ValueError for anything
    else (bools included: True is not a verbosity)."""
    if isinstance(value, str) and value == "auto":
        return 1
    if _is_bool(value) or not isinstance(value, (int, np.integer)) or value not in (0, 1, 2):
        raise ValueError(f"{name}: expected 0, 1, 2 or 'auto', got {value!r}")
    return int(value)


def _index(value):
    """operator.index(value), refusing bools (they are not ints here)."""
    if _is_bool(value):
        raise TypeError("a bool is not an int")
    return operator.index(value)


def integer(value, name, minimum=None, maximum=None):
    """`value` (anything with __index__ but a bool) as an int; TypeError otherwise,
    ValueError below `minimum` or above `maximum`."""
    try:
        v = _index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}") from None
    if minimum is not None and v < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name}: expected an int <= {maximum}, got {v}")
    return v


def positive_int(value, name):
    """`value` as a size: an int in [1, MAX_AXIS] (see integer)."""
    return integer(value, name, minimum=1, maximum=MAX_AXIS)


# The largest size, stride, dilation or padding along one axis: beyond it no product of
# geometry overflows 64 bits, and no array axis of a machine's memory comes close.
MAX_AXIS = 2**31 - 1


def int_tuple(value, name, length, minimum, maximum=MAX_AXIS):
    """An int or a sequence of `length` ints (no bools), each in [minimum, maximum], as a
    tuple."""
    items = (value,) * length if isinstance(value, (numbers.Integral, np.bool_)) else value
    try:
        items = tuple(_index(v) for v in items)
    except TypeError:
        raise TypeError(f"{name}: expected an int or {length} ints, got {value!r}") from None
    if len(items) != length:
        raise ValueError(f"{name}: expected {length} values, got {len(items)} in {value!r}")
    if any(v < minimum for v in items):
        raise ValueError(f"{name}: expected values >= {minimum}, got {value!r}")
    if any(v > maximum for v in items):
        raise ValueError(f"{name}: expected values <= {maximum}, got {value!r}")
    return items


def shape(value, name):
    """An array shape: an int or a sequence of ints in [0, MAX_AXIS], as a tuple."""
    if isinstance(value, (numbers.Integral, np.bool_)):
        value = (value,)
    elif isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise TypeError(f"{name}: expected a shape (a tuple of ints), got "
                        f"{type(value).__name__}")
    return int_tuple(value, name, len(value), 0)


def real(value, name, low=None, high=None):
    """`value` (a real number but not a bool) as a float; TypeError otherwise, ValueError
    outside [low, high] (either bound may be None; NaN is outside any bound)."""
    if type(value) is not float and type(value) is not int:  # else: no ABC check needed
        if _is_bool(value) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    value = float(value)
    if (low is not None and not value >= low) or (high is not None and not value <= high):
        lo, hi = "-inf" if low is None else low, "inf" if high is None else high
        raise ValueError(f"{name}: expected a number in [{lo}, {hi}], got {value}")
    return value


def axis(axis, ndim):
    """`axis` (an int in [-ndim, ndim)) as an index in [0, ndim); a 0-d array takes 0 or
    -1, as in PyTorch."""
    a = integer(axis, "axis")
    bound = max(ndim, 1)
    if not -bound <= a < bound:
        raise ValueError(f"axis: expected an int in [{-bound}, {bound - 1}] for a {ndim}-D "
                         f"array, got {a}")
    return a % bound


def activation(name, negative_slope):
    """Canonical activation name (or None) and its float parameter: the slope for
    leaky_relu; 1.0 for a fused 'elu' (its alpha, as Keras' and PyTorch's default)."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"activation: expected a name or None, got {type(name).__name__}")
    if name is not None:
        name = name.lower()
        name = _ACTIVATION_ALIASES.get(name, name)
    if name is not None and name not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of None, 'linear', "
                         f"{', '.join(map(repr, ACTIVATIONS))}, 'swish'; got {name!r}")
    negative_slope = real(negative_slope, "negative_slope")
    return name, 1.0 if name == "elu" else negative_slope


def output_size(shape, name):
    """Refuses outputs whose size would overflow an index; `name`: the argument(s) that
    make the output that large (the message starts with it)."""
    total = 1
    for d in shape:
        total *= d
    if total > _MAX_ELEMENTS:
        raise ValueError(f"{name}: the output of shape {tuple(shape)} is too large "
                         f"({total} elements)")
    return tuple(shape)


def owned_float32(value, name, ndim, what):
    """A new C-contiguous float32 copy of `value` that nobody else holds (plans own their
    weights: a caller changing its array afterwards changes nothing)."""
    arr = float32_array(value, name, ndim, what)
    return np.array(arr, dtype=np.float32, order="C", copy=True)


def read_only(arr):
    """A read-only view of `arr` (None stays None): how plans expose the weights they own."""
    if arr is None:
        return None
    view = arr.view()
    view.flags.writeable = False
    return view


def output_buffer(out, shape, name="out"):
    """`out` if it can take a result of `shape` as it is (a float32, C-contiguous, writeable
    ndarray of exactly that shape: the kernels write into it without a copy), else a
    TypeError/ValueError saying what is wrong."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(out).__name__}")
    if out.dtype != np.float32:
        raise TypeError(f"{name}: expected dtype float32, got {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array, got strides {out.strides}")
    if not out.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array, got a read-only one")
    return out


def same_shape(value, name, shape, what):
    """A float32 C-contiguous view or copy of `value`, which must have `shape` (new weights
    for a plan built for that shape)."""
    arr = float32_array(value, name)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)} ({what}), got {arr.shape}")
    return arr
