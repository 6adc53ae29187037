"""Reference activations: the table of elementwise functions every reference op uses, and
softmax / log_softmax over rows.

Every table entry maps (float64 array x, parameter alpha: leaky_relu's slope, elu's alpha)
to a float64 array. NaN propagates through all of them; sigmoid/silu cannot overflow for
large |x|.
"""
import numpy as np


def _identity(x, alpha):
    return x


def _relu(x, alpha):
    return np.maximum(x, 0.0)


def _relu6(x, alpha):
    return np.minimum(np.maximum(x, 0.0), 6.0)


def _leaky_relu(x, alpha):
    return np.where(x >= 0, x, alpha * x)


def _sigmoid(x, alpha):
    # exp(-|x|) lies in [0, 1]: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) otherwise.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _tanh(x, alpha):
    return np.tanh(x)


def _silu(x, alpha):
    # silu(-inf) is NaN (-inf * 0), as in PyTorch and the C++ kernels.
    with np.errstate(invalid="ignore"):
        return x * _sigmoid(x, alpha)


def _elu(x, alpha):
    # expm1 of min(x, 0): no overflow warning from the branch that is not taken.
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def _hard_swish(x, alpha):
    # hard_swish(-inf) is NaN (-inf * 0), as in PyTorch.
    with np.errstate(invalid="ignore"):
        return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


ACTIVATIONS = {
    None: _identity,
    "relu": _relu,
    "relu6": _relu6,
    "leaky_relu": _leaky_relu,
    "sigmoid": _sigmoid,
    "tanh": _tanh,
    "silu": _silu,
    "elu": _elu,
    "hard_swish": _hard_swish,
}


def to_float32(y):
    """A new float32 C-contiguous copy of `y`."""
    return np.array(y, dtype=np.float32, order="C")


def activate(y, name, alpha):
    """Apply activation `name` (with leaky_relu slope `alpha`) to float64 array `y`;
    return the result as a new float32 C-contiguous array."""
    return to_float32(ACTIVATIONS[name](y, alpha))


def activation(x, name, alpha):
    """Elementwise activation of float32 array `x` (any shape) -> new float32 array."""
    return activate(np.asarray(x, dtype=np.float64), name, alpha)


def softmax(x, scale, log):
    """softmax(x * scale) along axis 1 of the 3-D float32 array `x` [outer, n, inner]
    (log_softmax if `log`) -> new float32 array. As in PyTorch, a vector holding NaN or
    +Inf, or only -Inf, gives NaN."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return to_float32(x)
    with np.errstate(invalid="ignore"):  # inf - inf: the NaN vectors above
        z = (x - x.max(axis=1, keepdims=True)) * scale
    total = np.exp(z).sum(axis=1, keepdims=True)
    with np.errstate(over="ignore"):  # log_softmax below float32's range is -inf
        return to_float32(z - np.log(total) if log else np.exp(z) / total)


# ---------------------------------------------------------------- gradients

# The activations whose derivative is read from their output y; the others' from their
# input x (the argument `t` of activation_backward below).
FROM_OUTPUT = (None, "relu", "relu6", "sigmoid", "tanh")


def _d_hard_swish(x, alpha):
    return np.where(x <= -3.0, 0.0, np.where(x >= 3.0, 1.0, x / 3.0 + 0.5))


def _d_silu(x, alpha):
    s = _sigmoid(x, alpha)
    return s * (1.0 + x * (1.0 - s))


# act'(x) as a function of t (the output for FROM_OUTPUT, else the input), float64; at the
# kinks PyTorch's values: relu'(0) = 0, relu6' = 0 at 0 and 6, leaky_relu'(0) = alpha,
# elu'(0) = alpha, hard_swish'(-3) = 0, hard_swish'(3) = 1.
DERIVATIVES = {
    None: lambda y, alpha: np.ones_like(y),
    "relu": lambda y, alpha: (y > 0).astype(np.float64),
    "relu6": lambda y, alpha: ((y > 0) & (y < 6)).astype(np.float64),
    "sigmoid": lambda y, alpha: y * (1.0 - y),
    "tanh": lambda y, alpha: 1.0 - y * y,
    "leaky_relu": lambda x, alpha: np.where(x > 0, 1.0, alpha),
    "elu": lambda x, alpha: np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0))),
    "silu": _d_silu,
    "hard_swish": _d_hard_swish,
}


def activation_backward(dy, t, name, alpha):
    """dy * act'(x) for float32 arrays dy and t of one shape -> new float32 array; t is the
    activation's output y for the names in FROM_OUTPUT and its input x for the others."""
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        return to_float32(np.asarray(dy, np.float64) * DERIVATIVES[name](t, alpha))


def softmax_backward(y, dy, scale, log):
    """The gradient of softmax(x * scale) along axis 1 of 3-D arrays [outer, n, inner], from
    its output y (log_softmax's if `log`) and dy -> new float32 array:
        softmax: scale * y * (dy - sum(dy * y));  log_softmax: scale * (dy - exp(y) * sum(dy))
    """
    y, dy = np.asarray(y, np.float64), np.asarray(dy, np.float64)
    if log:
        return to_float32(scale * (dy - np.exp(y) * dy.sum(axis=1, keepdims=True)))
    return to_float32(scale * y * (dy - (dy * y).sum(axis=1, keepdims=True)))
