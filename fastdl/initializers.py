"""Weight initializers by their Keras names (glorot_uniform, glorot_normal, he_uniform,
he_normal, lecun_uniform, lecun_normal, orthogonal, zeros, ones, random_uniform,
random_normal), drawing from one seeded generator (fastdl.utils.set_random_seed)."""
import math

import numpy as np

_rng = np.random.default_rng()


def seed(value):
    """Reseeds the generator every initializer draws from."""
    global _rng
    _rng = np.random.default_rng(value)


def _fans(shape):
    """Keras' (fan_in, fan_out): a kernel [..receptive.., in, out] counts its receptive
    field in both."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(shape, stddev):
    """Normal values redrawn until within 2 standard deviations (Keras' truncation)."""
    out = _rng.normal(0.0, stddev, size=shape)
    bad = np.abs(out) > 2 * stddev
    while bad.any():
        out[bad] = _rng.normal(0.0, stddev, size=int(bad.sum()))
        bad = np.abs(out) > 2 * stddev
    return out


def _variance_scaling(scale, mode, distribution):
    def init(shape):
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(1.0, n)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return _rng.uniform(-limit, limit, size=shape)
        # Keras divides by the standard deviation of a unit normal truncated at +-2.
        return _truncated_normal(shape, math.sqrt(variance) / 0.87962566103423978)
    return init


def _orthogonal(shape):
    rows, cols = math.prod(shape[:-1]), shape[-1]
    a = _rng.normal(size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return q[:rows, :cols].reshape(shape)


_INITIALIZERS = {
    "glorot_uniform": _variance_scaling(1.0, "fan_avg", "uniform"),
    "glorot_normal": _variance_scaling(1.0, "fan_avg", "normal"),
    "he_uniform": _variance_scaling(2.0, "fan_in", "uniform"),
    "he_normal": _variance_scaling(2.0, "fan_in", "normal"),
    "lecun_uniform": _variance_scaling(1.0, "fan_in", "uniform"),
    "lecun_normal": _variance_scaling(1.0, "fan_in", "normal"),
    "orthogonal": _orthogonal,
    "zeros": lambda shape: np.zeros(shape),
    "ones": lambda shape: np.ones(shape),
    "random_uniform": lambda shape: _rng.uniform(-0.05, 0.05, size=shape),
    "random_normal": lambda shape: _rng.normal(0.0, 0.05, size=shape),
}


def check(identifier, name):
    """`identifier` if it names an initializer or is a callable (shape -> array); else a
    ValueError/TypeError naming `name`."""
    if callable(identifier):
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(f"{name}: expected an initializer name or a callable, got "
                        f"{type(identifier).__name__}")
    if identifier.lower() not in _INITIALIZERS:
        raise ValueError(f"{name}: unknown initializer {identifier!r}; expected one of "
                         f"{', '.join(sorted(_INITIALIZERS))}")
    return identifier.lower()


def initialize(identifier, shape):
    """A float32 C-contiguous array of `shape` (its own, writable: optimizers update it in
    place) from a checked initializer."""
    fn = identifier if callable(identifier) else _INITIALIZERS[identifier]
    return np.array(fn(tuple(shape)), dtype=np.float32, order="C").reshape(shape)
