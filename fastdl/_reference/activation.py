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
