"""Activations with torch.nn.functional semantics: the elementwise ones (relu, relu6,
leaky_relu, elu, sigmoid, tanh, silu/swish, hard_swish), softmax and log_softmax over any
axis with a temperature, and dropout; the gradient of each (<name>_backward).

Every function takes an array of any real dtype, shape (0-d and empty included) and
strides, and returns a new float32 C-contiguous array. NaN and Inf propagate as in PyTorch
(relu(NaN) is NaN; a softmax row holding NaN or +Inf is NaN).
"""
import math

import numpy as np

from fastdl import _validate as v
from fastdl._backend import kernels

# The normal float32 range: 1 / temperature must lie in it.
_F32_TINY, _F32_MAX = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max)


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
    return _elementwise(x, "leaky_relu", v.real(negative_slope, "negative_slope"))


def elu(x, alpha=1.0):
    """x where x > 0, alpha * (exp(x) - 1) elsewhere."""
    return _elementwise(x, "elu", v.real(alpha, "alpha"))


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


def _temperature(temperature):
    t = v.real(temperature, "temperature")
    if not (t > 0 and math.isfinite(t) and _F32_TINY <= 1.0 / t <= _F32_MAX):
        raise ValueError(f"temperature: expected a number > 0 whose reciprocal is a normal "
                         f"float32, got {temperature!r}")
    return t


def _softmax(x, axis, temperature, log):
    x = v.float32_array(x, "x")
    axis = v.axis(axis, x.ndim)
    t = _temperature(temperature)
    shape = x.shape or (1,)
    # [outer, n, inner] around the axis: no transpose, the kernels walk it in place.
    outer, inner = math.prod(shape[:axis]), math.prod(shape[axis + 1:])
    y = kernels.softmax(x.reshape(outer, shape[axis], inner), 1.0 / t, log)
    return y.reshape(x.shape)


def softmax(x, axis=-1, temperature=1.0):
    """softmax(x / temperature) along `axis`: exp(z - max z) / sum(exp(z - max z)), so
    large inputs do not overflow."""
    return _softmax(x, axis, temperature, log=False)


def log_softmax(x, axis=-1, temperature=1.0):
    """log(softmax(x / temperature)) along `axis`, computed as z - max z - log(sum(...))."""
    return _softmax(x, axis, temperature, log=True)


# ---------------------------------------------------------------- gradients
#
# Each <activation>_backward(grad_output, ...) returns grad_output * act'(x) as a new float32
# array of grad_output's shape. It reads the forward pass's output where the derivative is a
# function of it (relu, relu6, sigmoid, tanh: no need to keep the input) and its input
# otherwise. At the kinks the derivative is PyTorch's: relu'(0) = 0, relu6' = 0 at 0 and 6,
# leaky_relu'(0) = negative_slope, elu'(0) = alpha, hard_swish'(-3) = 0 and
# hard_swish'(3) = 1.


def _backward(grad_output, saved, saved_name, name, alpha=0.0):
    dy = v.float32_array(grad_output, "grad_output")
    t = v.same_shape(saved, saved_name, dy.shape, "grad_output's shape")
    return kernels.activation_backward(dy, t, name, alpha)


def relu_backward(grad_output, output):
    """The gradient of relu from its output: grad_output where output > 0, else 0."""
    return _backward(grad_output, output, "output", "relu")


def relu6_backward(grad_output, output):
    """The gradient of relu6 from its output: grad_output where 0 < output < 6, else 0."""
    return _backward(grad_output, output, "output", "relu6")


def sigmoid_backward(grad_output, output):
    """grad_output * y * (1 - y), y = sigmoid's output."""
    return _backward(grad_output, output, "output", "sigmoid")


def tanh_backward(grad_output, output):
    """grad_output * (1 - y^2), y = tanh's output."""
    return _backward(grad_output, output, "output", "tanh")


def leaky_relu_backward(grad_output, input, negative_slope=0.01):
    """grad_output where input > 0, negative_slope * grad_output elsewhere."""
    return _backward(grad_output, input, "input", "leaky_relu",
                     v.real(negative_slope, "negative_slope"))


def elu_backward(grad_output, input, alpha=1.0):
    """grad_output where input > 0, grad_output * alpha * exp(input) elsewhere."""
    return _backward(grad_output, input, "input", "elu", v.real(alpha, "alpha"))


def silu_backward(grad_output, input):
    """grad_output * s * (1 + x * (1 - s)), s = sigmoid(x), x = silu's input."""
    return _backward(grad_output, input, "input", "silu")


swish_backward = silu_backward


def hard_swish_backward(grad_output, input):
    """grad_output * (0 up to -3, x / 3 + 1/2 between -3 and 3, 1 from 3), x = the input."""
    return _backward(grad_output, input, "input", "hard_swish")


def _softmax_backward(grad_output, output, axis, temperature, log):
    dy = v.float32_array(grad_output, "grad_output")
    y = v.same_shape(output, "output", dy.shape, "grad_output's shape")
    axis = v.axis(axis, dy.ndim)
    t = _temperature(temperature)
    shape = dy.shape or (1,)
    outer, inner = math.prod(shape[:axis]), math.prod(shape[axis + 1:])
    three = (outer, shape[axis], inner)
    return kernels.softmax_backward(y.reshape(three), dy.reshape(three), 1.0 / t,
                                    log).reshape(dy.shape)


def softmax_backward(grad_output, output, axis=-1, temperature=1.0):
    """The gradient of softmax(x, axis, temperature) from its output y:
    (y * (grad_output - sum(grad_output * y, axis))) / temperature."""
    return _softmax_backward(grad_output, output, axis, temperature, log=False)


def log_softmax_backward(grad_output, output, axis=-1, temperature=1.0):
    """The gradient of log_softmax(x, axis, temperature) from its output y:
    (grad_output - exp(y) * sum(grad_output, axis)) / temperature."""
    return _softmax_backward(grad_output, output, axis, temperature, log=True)


def _generator(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    try:
        seed = v.integer(seed, "seed", minimum=0)
    except TypeError:
        raise TypeError(f"seed: expected None, an int or a numpy Generator, got "
                        f"{type(seed).__name__}") from None
    return np.random.default_rng(seed)


def dropout(x, p=0.5, training=True, seed=None, return_mask=False):
    """torch.nn.functional.dropout: while training, zeroes each element with probability
    `p` and scales the others by 1 / (1 - p) (p = 1 zeroes everything); otherwise returns
    x unchanged (as a float32 copy).

    `seed`: None (fresh entropy), an int (the same int gives the same mask) or a numpy
    Generator (drawn from, so successive calls differ). The mask is drawn with NumPy, so
    every backend gives the same result for the same seed. With return_mask, returns
    (y, keep): keep the boolean mask of the elements kept (all True when not training), as
    dropout_backward takes it.
    """
    x = v.float32_array(x, "x")
    p = v.real(p, "p", 0.0, 1.0)
    training = v.flag(training, "training")
    return_mask = v.flag(return_mask, "return_mask")
    rng = _generator(seed)
    if not training:
        return (x.copy(), np.ones(x.shape, bool)) if return_mask else x.copy()
    keep = _keep_mask(rng, x.shape, p)
    # As in PyTorch, x * 0 for a dropped element: Inf and NaN become NaN there.
    y = _scaled(x, keep, p)
    return (y, keep) if return_mask else y


def _keep_mask(rng, shape, p):
    """The forward's draw: True where an element is kept (p = 1 draws nothing)."""
    if p == 1.0:
        return np.zeros(shape, bool)
    return rng.random(shape, dtype=np.float32) >= p


def _scaled(a, keep, p):
    """a * keep / (1 - p) in float32, the factor computed as the forward computes it."""
    factor = keep * np.float32(0.0 if p == 1.0 else 1.0 / (1.0 - p))
    with np.errstate(invalid="ignore"):
        return np.multiply(a, factor, out=np.empty(a.shape, np.float32))


def dropout_backward(grad_output, mask=None, p=0.5, training=True, seed=None):
    """The gradient of dropout(x, p, training, seed): grad_output * keep / (1 - p), with
    the forward's mask given either as `mask` (the boolean keep mask dropout(...,
    return_mask=True) returns) or as the int `seed` the forward was called with (the mask
    is drawn again, identically). Not training: grad_output unchanged (a float32 copy).

    A numpy Generator cannot serve as `seed` here (its draws moved on): keep the mask. As
    in PyTorch, a dropped element's gradient is grad_output * 0 (NaN where that is Inf or
    NaN). Computed with NumPy on every backend, as the forward is.
    """
    dy = v.float32_array(grad_output, "grad_output")
    p = v.real(p, "p", 0.0, 1.0)
    training = v.flag(training, "training")
    if not training:
        return dy.copy()
    if mask is not None and seed is not None:
        raise ValueError("mask, seed: give the forward's mask or its seed, not both")
    if mask is not None:
        keep = np.asarray(mask)
        if keep.dtype != np.bool_:
            raise TypeError(f"mask: expected the boolean keep mask of dropout(..., "
                            f"return_mask=True), got dtype {keep.dtype}")
        if keep.shape != dy.shape:
            raise ValueError(f"mask: expected the shape of grad_output {dy.shape}, got "
                             f"{keep.shape}")
    elif seed is None:
        raise ValueError("mask, seed: give the forward's mask (dropout(..., "
                         "return_mask=True)) or the int seed it was called with")
    else:
        if isinstance(seed, np.random.Generator):
            raise TypeError("seed: a numpy Generator's draws cannot be repeated; give the "
                            "forward's mask (dropout(..., return_mask=True)) instead")
        keep = _keep_mask(_generator(seed), dy.shape, p)
    return _scaled(dy, keep, p)
