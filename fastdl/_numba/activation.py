"""Numba activations: one scalar function, selected by an integer code, applied in place;
softmax / log_softmax over rows.

NaN propagates through every activation; sigmoid/silu use a form that cannot overflow.
`alpha` is the activation's parameter: leaky_relu's slope, elu's alpha.
"""
import math

import numba
import numpy as np

# The codes of fdl::Activation (kernels/include/fastdl/common.h).
NONE, RELU, RELU6, LEAKY_RELU, SIGMOID, TANH, SILU, ELU, HARD_SWISH = range(9)

ACTIVATION_CODES = {
    None: NONE,
    "relu": RELU,
    "relu6": RELU6,
    "leaky_relu": LEAKY_RELU,
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "silu": SILU,
    "elu": ELU,
    "hard_swish": HARD_SWISH,
}


@numba.njit(cache=True, nogil=True)
def _sigmoid(v):
    # exp(-|v|) lies in [0, 1]: 1/(1+e^-v) for v >= 0, e^v/(1+e^v) otherwise (and NaN).
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


@numba.njit(cache=True, nogil=True)
def _activate_one(v, code, alpha):
    # Comparisons are written so that NaN falls through to a branch that returns it.
    if code == RELU:
        return 0.0 if v < 0 else v
    if code == RELU6:
        return 0.0 if v < 0 else (6.0 if v > 6 else v)
    if code == LEAKY_RELU:
        return alpha * v if v < 0 else v
    if code == SIGMOID:
        return _sigmoid(v)
    if code == TANH:
        return math.tanh(v)
    if code == SILU:
        return v * _sigmoid(v)
    if code == ELU:
        return v if v > 0 else alpha * math.expm1(v)
    if code == HARD_SWISH:
        t = v + 3.0
        t = 0.0 if t < 0 else (6.0 if t > 6 else t)
        return v * t / 6.0
    return v


@numba.njit(cache=True, nogil=True)
def _activate_flat(flat, code, alpha):
    for i in range(flat.size):
        flat[i] = _activate_one(flat[i], code, alpha)


def activate(y, name, alpha):
    """Apply activation `name` (leaky_relu slope `alpha`) in place to the float32
    C-contiguous array `y`; return `y`."""
    if name is not None:
        _activate_flat(y.reshape(-1), ACTIVATION_CODES[name], float(alpha))
    return y


def activation(x, name, alpha):
    """Elementwise activation of float32 array `x` (any shape) -> new float32 array."""
    return activate(np.array(x, dtype=np.float32, order="C"), name, alpha)


@numba.njit(cache=True, nogil=True)
def _softmax(x, y, scale, log):
    outer, n, inner = x.shape
    for o in range(outer):
        for c in range(inner):
            m = -math.inf
            for k in range(n):  # NaN wins, so a NaN vector stays NaN
                v = x[o, k, c]
                if v > m or v != v:
                    m = v
            total = 0.0
            for k in range(n):
                total += math.exp((x[o, k, c] - m) * scale)
            lse = math.log(total)
            for k in range(n):
                z = (x[o, k, c] - m) * scale
                y[o, k, c] = z - lse if log else math.exp(z) / total


def softmax(x, scale, log):
    """softmax(x * scale) along axis 1 of the 3-D float32 array `x` [outer, n, inner]
    (log_softmax if `log`) -> new float32 array."""
    y = np.empty(x.shape, dtype=np.float32)
    if y.size:
        _softmax(x, y, float(scale), bool(log))
    return y


# ---------------------------------------------------------------- gradients


@numba.njit(cache=True, nogil=True)
def _derivative_one(t, code, alpha):
    """act'(x) from t: the output for none/relu/relu6/sigmoid/tanh, else the input (the
    contract of fastdl._reference.activation_backward, PyTorch's values at the kinks)."""
    if code == RELU:
        return 1.0 if t > 0 else 0.0
    if code == RELU6:
        return 1.0 if 0 < t < 6 else 0.0
    if code == SIGMOID:
        return t * (1.0 - t)
    if code == TANH:
        return 1.0 - t * t
    if code == LEAKY_RELU:
        return 1.0 if t > 0 else alpha
    if code == ELU:
        return 1.0 if t > 0 else alpha * math.exp(t)
    if code == SILU:
        s = _sigmoid(t)
        return s * (1.0 + t * (1.0 - s))
    if code == HARD_SWISH:
        return 0.0 if t <= -3 else (1.0 if t >= 3 else t / 3.0 + 0.5)
    return 1.0


@numba.njit(cache=True, nogil=True)
def _backward_flat(dy, t, dx, code, alpha):
    for i in range(dx.size):
        dx[i] = dy[i] * _derivative_one(t[i], code, alpha)


def activation_backward(dy, t, name, alpha):
    """dy * act'(x) (contract: fastdl._reference.activation_backward) -> new float32 array."""
    dx = np.empty(dy.shape, np.float32)
    _backward_flat(dy.reshape(-1), t.reshape(-1), dx.reshape(-1), ACTIVATION_CODES[name],
                   float(alpha))
    return dx


@numba.njit(cache=True, nogil=True)
def _softmax_backward(y, dy, dx, scale, log):
    outer, n, inner = y.shape
    for o in range(outer):
        for c in range(inner):
            total = 0.0
            for k in range(n):
                total += dy[o, k, c] if log else dy[o, k, c] * y[o, k, c]
            for k in range(n):
                if log:
                    dx[o, k, c] = scale * (dy[o, k, c] - math.exp(y[o, k, c]) * total)
                else:
                    dx[o, k, c] = scale * y[o, k, c] * (dy[o, k, c] - total)


def softmax_backward(y, dy, scale, log):
    """The softmax (log_softmax) gradient along axis 1 of [outer, n, inner] from its output
    (contract: fastdl._reference.softmax_backward) -> new float32 array."""
    dx = np.empty(y.shape, dtype=np.float32)
    if dx.size:
        _softmax_backward(y, dy, dx, float(scale), bool(log))
    return dx
