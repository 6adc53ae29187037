"""Activations with torch.nn.functional semantics: the elementwise ones (relu, relu6,
leaky_relu, elu, sigmoid, tanh, silu/swish, hard_swish), softmax and log_softmax over any
axis with a temperature, and dropout.

Every function takes an array of any real dtype, shape (0-d and empty included) and
strides, and returns a new float32 C-contiguous array. NaN and Inf propagate as in PyTorch
(relu(NaN) is NaN; a softmax row holding NaN or +Inf is NaN).
"""
import math
import numbers
import operator

import numpy as np

from fastdl import _validate as v
from fastdl._backend import kernels

# The normal float32 range: 1 / temperature must lie in it.
_F32_TINY, _F32_MAX = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max)


def _real(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    return float(value)


def _elementwise(x, name, alpha=0.0):
    return kernels.activation(v.float32_array(x, "x"), name, alpha)


def relu(x):
    """max(x, 0)."""
    return _elementwise(x, "relu")


def relu6(x):
    """min(max(x, 0), 6)."""
    return _elementwise(x, "relu6")


def leaky_relu(x, negative_slope=0.01):
    """x where x >= 0, negative_slope * x elsewhere."""
    return _elementwise(x, "leaky_relu", _real(negative_slope, "negative_slope"))


def elu(x, alpha=1.0):
    """x where x > 0, alpha * (exp(x) - 1) elsewhere."""
    return _elementwise(x, "elu", _real(alpha, "alpha"))


def sigmoid(x):
    """1 / (1 + exp(-x))."""
    return _elementwise(x, "sigmoid")


def tanh(x):
    return _elementwise(x, "tanh")


def silu(x):
    """x * sigmoid(x), also called swish."""
    return _elementwise(x, "silu")


swish = silu


def hard_swish(x):
    """x * relu6(x + 3) / 6 (torch.nn.functional.hardswish)."""
    return _elementwise(x, "hard_swish")


def _axis(axis, ndim):
    """`axis` in [0, ndim) from [-ndim, ndim); a 0-d array takes 0 or -1, as in PyTorch."""
    try:
        a = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis: expected an int, got {type(axis).__name__}") from None
    bound = max(ndim, 1)
    if not -bound <= a < bound:
        raise ValueError(f"axis: expected an int in [{-bound}, {bound - 1}] for a {ndim}-D "
                         f"array, got {a}")
    return a % bound


def _softmax(x, axis, temperature, log):
    x = v.float32_array(x, "x")
    axis = _axis(axis, x.ndim)
    t = _real(temperature, "temperature")
    if not (t > 0 and math.isfinite(t) and _F32_TINY <= 1.0 / t <= _F32_MAX):
        raise ValueError(f"temperature: expected a number > 0 whose reciprocal is a normal "
                         f"float32, got {temperature!r}")
    shape = x.shape or (1,)
    # [outer, n, inner] around the axis: no transpose, the kernels walk it in place.
    outer, inner = int(np.prod(shape[:axis])), int(np.prod(shape[axis + 1:]))
    y = kernels.softmax(x.reshape(outer, shape[axis], inner), 1.0 / t, log)
    return y.reshape(x.shape)


def softmax(x, axis=-1, temperature=1.0):
    """softmax(x / temperature) along `axis`: exp(z - max z) / sum(exp(z - max z)), so
    large inputs do not overflow."""
    return _softmax(x, axis, temperature, log=False)


def log_softmax(x, axis=-1, temperature=1.0):
    """log(softmax(x / temperature)) along `axis`, computed as z - max z - log(sum(...))."""
    return _softmax(x, axis, temperature, log=True)


def _generator(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError("seed: expected None, an int or a numpy Generator, got bool")
    try:
        value = operator.index(seed)
    except TypeError:
        raise TypeError(f"seed: expected None, an int or a numpy Generator, got "
                        f"{type(seed).__name__}") from None
    if value < 0:
        raise ValueError(f"seed: expected an int >= 0, got {value}")
    return np.random.default_rng(value)


def dropout(x, p=0.5, training=True, seed=None):
    """torch.nn.functional.dropout: while training, zeroes each element with probability
    `p` and scales the others by 1 / (1 - p) (p = 1 zeroes everything); otherwise returns
    x unchanged (as a float32 copy).

    `seed`: None (fresh entropy), an int (the same int gives the same mask) or a numpy
    Generator (drawn from, so successive calls differ). The mask is drawn with NumPy, so
    every backend gives the same result for the same seed.
    """
    x = v.float32_array(x, "x")
    p = _real(p, "p")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p: expected a probability in [0, 1], got {p}")
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training: expected a bool, got {type(training).__name__}")
    rng = _generator(seed)
    if not training:
        return x.copy()
    if p == 1.0:
        factor = np.zeros(x.shape, np.float32)
    else:
        keep = rng.random(x.shape, dtype=np.float32) >= p
        factor = keep * np.float32(1.0 / (1.0 - p))
    # As in PyTorch, x * 0 for a dropped element: Inf and NaN become NaN there.
    with np.errstate(invalid="ignore"):
        return np.multiply(x, factor, out=np.empty_like(x))
