"""Weight initializers with Keras 3's names, arguments and formulas.

    Zeros, Ones, Constant(value), Identity(gain)
    RandomNormal(mean=0, stddev=0.05), RandomUniform(minval=-0.05, maxval=0.05),
    TruncatedNormal(mean=0, stddev=0.05)         (redrawn outside mean +- 2 stddev)
    VarianceScaling(scale=1, mode='fan_in', distribution='truncated_normal')
    GlorotUniform (the layers' default kernel initializer), GlorotNormal   fan_avg, scale 1
    HeUniform, HeNormal                                                     fan_in, scale 2
    LecunUniform, LecunNormal                                               fan_in, scale 1
    Orthogonal(gain=1)                      (the default recurrent_initializer of LSTM/GRU)

A layer takes one as an instance, its class name ('GlorotUniform'), its snake-case name
('glorot_uniform'; also Keras' aliases 'normal', 'uniform', 'zero', 'one'), a config dict
({'class_name': ..., 'config': ...}) or any callable shape -> array.

Fans follow Keras' compute_fans: a kernel [..receptive field.., in, out] counts its
receptive field in both (fan_in = in * prod(receptive), fan_out = out * prod(receptive));
a vector has fan_in = fan_out = its length. Variance scaling draws with
variance scale / max(1, fan): uniform in +-sqrt(3 variance), or a normal truncated at 2
standard deviations whose standard deviation is sqrt(variance) after the truncation (its
parameter is divided by 0.87962566103423978, as Keras does).

Randomness: an unseeded initializer draws from one generator that
fastdl.utils.set_random_seed reseeds (a seeded run repeats exactly); one given seed=...
draws the same values on every call, as Keras' integer-seeded initializers do. The values
differ from Keras' (another generator): the distributions are the same.
"""
import math

import numpy as np

from fastdl import _validate as v

__all__ = ["Initializer", "Zeros", "Ones", "Constant", "Identity", "RandomNormal",
           "RandomUniform", "TruncatedNormal", "VarianceScaling", "GlorotUniform",
           "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform", "LecunNormal",
           "Orthogonal", "get", "serialize", "check", "initialize"]

_rng = np.random.default_rng()
# The standard deviation of a unit normal truncated at +-2 (Keras' correction).
_TRUNCATED_STD = 0.87962566103423978


def seed(value):
    """Reseeds the generator every unseeded initializer draws from."""
    global _rng
    _rng = np.random.default_rng(value)


def compute_fans(shape):
    """Keras' (fan_in, fan_out) of a weight shape."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _real(value, name, minimum=None):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected a number >= {minimum}, got {value}")
    return value


class Initializer:
    """initializer(shape, dtype=None) -> a float32 array of `shape`; get_config /
    from_config for saving."""

    def __call__(self, shape, dtype=None):
        shape = v.shape(shape, "shape")
        if dtype is not None and dtype not in ("float32", np.float32) and not (
                isinstance(dtype, np.dtype) and dtype == np.float32):
            raise ValueError(f"dtype: fastdl's weights are float32, got {dtype!r}")
        return np.asarray(self._values(shape), np.float32)

    def _values(self, shape):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    def _values(self, shape):
        return np.zeros(shape)


class Ones(Initializer):
    def _values(self, shape):
        return np.ones(shape)


class Constant(Initializer):
    """Every entry `value`."""

    def __init__(self, value=0.0):
        self.value = _real(value, "value")

    def _values(self, shape):
        return np.full(shape, self.value)

    def get_config(self):
        return {"value": self.value}


class Identity(Initializer):
    """gain times the identity matrix (2-D shapes only, as Keras)."""

    def __init__(self, gain=1.0):
        self.gain = _real(gain, "gain")

    def _values(self, shape):
        if len(shape) != 2:
            raise ValueError(f"shape: Identity initializes 2-D weights only, got {shape}")
        return self.gain * np.eye(*shape)

    def get_config(self):
        return {"gain": self.gain}


class _Random(Initializer):
    """Draws from the shared generator, or from its own seed (the same values each call)."""

    def __init__(self, seed=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f"seed: expected None or an int >= 0, got {seed!r}")
        self.seed = None if seed is None else int(seed)

    def _generator(self):
        return _rng if self.seed is None else np.random.default_rng(self.seed)

    def get_config(self):
        return {"seed": self.seed}


def _truncated(rng, shape, mean, stddev):
    """Normal(mean, stddev) values redrawn until within mean +- 2 stddev."""
    out = rng.normal(0.0, stddev, size=shape)
    bad = np.abs(out) > 2 * stddev
    while bad.any():
        out[bad] = rng.normal(0.0, stddev, size=int(bad.sum()))
        bad = np.abs(out) > 2 * stddev
    return out + mean


class RandomNormal(_Random):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = _real(mean, "mean"), _real(stddev, "stddev", 0.0)

    def _values(self, shape):
        return self._generator().normal(self.mean, self.stddev, size=shape)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class TruncatedNormal(RandomNormal):
    """RandomNormal without the tails beyond 2 standard deviations (redrawn)."""

    def _values(self, shape):
        return _truncated(self._generator(), shape, self.mean, self.stddev)


class RandomUniform(_Random):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = _real(minval, "minval"), _real(maxval, "maxval")

    def _values(self, shape):
        return self._generator().uniform(self.minval, self.maxval, size=shape)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")


class VarianceScaling(_Random):
    """Draws with variance scale / max(1, fan) (see the module docstring)."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        self.scale = _real(scale, "scale")
        if not self.scale > 0:
            raise ValueError(f"scale: expected a positive number, got {scale!r}")
        if mode not in _MODES:
            raise ValueError(f"mode: expected one of {', '.join(_MODES)}, got {mode!r}")
        if isinstance(distribution, str) and distribution.lower() == "normal":
            distribution = "truncated_normal"  # Keras' alias
        if not isinstance(distribution, str) or distribution.lower() not in _DISTRIBUTIONS:
            raise ValueError(f"distribution: expected one of {', '.join(_DISTRIBUTIONS)}, got "
                             f"{distribution!r}")
        self.mode, self.distribution = mode, distribution.lower()

    def _values(self, shape):
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}
        variance = self.scale / max(1.0, fan[self.mode])
        rng = self._generator()
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, size=shape)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, math.sqrt(variance), size=shape)
        return _truncated(rng, shape, 0.0, math.sqrt(variance) / _TRUNCATED_STD)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                **super().get_config()}


class _Preset(VarianceScaling):
    """A VarianceScaling with fixed (scale, mode, distribution): Keras' named ones take a
    seed only."""
    preset = None

    def __init__(self, seed=None):
        super().__init__(*self.preset, seed=seed)

    def get_config(self):
        return {"seed": self.seed}


class GlorotUniform(_Preset):
    """Uniform in +-sqrt(6 / (fan_in + fan_out)) (Xavier)."""
    preset = (1.0, "fan_avg", "uniform")


class GlorotNormal(_Preset):
    """Truncated normal of standard deviation sqrt(2 / (fan_in + fan_out))."""
    preset = (1.0, "fan_avg", "truncated_normal")


class HeUniform(_Preset):
    """Uniform in +-sqrt(6 / fan_in)."""
    preset = (2.0, "fan_in", "uniform")


class HeNormal(_Preset):
    """Truncated normal of standard deviation sqrt(2 / fan_in)."""
    preset = (2.0, "fan_in", "truncated_normal")


class LecunUniform(_Preset):
    """Uniform in +-sqrt(3 / fan_in)."""
    preset = (1.0, "fan_in", "uniform")


class LecunNormal(_Preset):
    """Truncated normal of standard deviation sqrt(1 / fan_in)."""
    preset = (1.0, "fan_in", "truncated_normal")


class Orthogonal(_Random):
    """gain times a random orthogonal matrix (QR of a normal one, signs fixed by R's
    diagonal): orthonormal columns when rows >= cols, else rows; a kernel of rank > 2 is
    flattened to (prod(shape[:-1]), shape[-1]) first."""

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = _real(gain, "gain")

    def _values(self, shape):
        if len(shape) < 2:
            raise ValueError(f"shape: Orthogonal initializes weights of rank >= 2, got {shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = self._generator().normal(size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)

    def get_config(self):
        return {"gain": self.gain, **super().get_config()}


def _snake(name):
    import re
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


_CLASSES = {cls.__name__: cls for cls in (
    Zeros, Ones, Constant, Identity, RandomNormal, RandomUniform, TruncatedNormal,
    VarianceScaling, GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform,
    LecunNormal, Orthogonal)}
# The snake-case names layers keep as their initializer (and Keras' aliases).
_BY_NAME = {_snake(name): cls for name, cls in _CLASSES.items()}
_ALIASES = {"normal": "random_normal", "uniform": "random_uniform", "zero": "zeros",
            "one": "ones"}


def _canonical(name):
    """The snake-case name of a Keras initializer name, or None."""
    if name in _CLASSES:
        return _snake(name)
    name = _ALIASES.get(name, name)
    return name if name in _BY_NAME else None


def check(identifier, name):
    """`identifier` as a layer keeps it: a name as its snake-case form ('GlorotUniform' ->
    'glorot_uniform'), a config dict as an Initializer (by its name if it has the default
    arguments), an Initializer or any callable as it is; else a ValueError / TypeError
    naming the argument `name`."""
    if isinstance(identifier, dict):
        cls = _CLASSES.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"{name}: unknown initializer class "
                             f"{identifier.get('class_name')!r}; expected one of "
                             f"{', '.join(sorted(_CLASSES))}")
        config = dict(identifier.get("config") or {})
        if isinstance(config.get("seed"), dict):  # a Keras SeedGenerator: draw unseeded
            config["seed"] = None
        for axes in ("input_axes", "output_axes"):  # Keras 3.12+'s fan axes
            if config.pop(axes, None) is not None:
                raise ValueError(f"{name}: {axes} is not supported by fastdl (fans come from "
                                 f"the shape, as compute_fans)")
        try:
            made = cls.from_config(config)
        except TypeError as exc:
            raise TypeError(f"{name}: {exc}") from None
        # A default one is kept by its name, as a layer keeps 'glorot_uniform'.
        return _snake(cls.__name__) if made.get_config() == cls().get_config() else made
    if callable(identifier):
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(f"{name}: expected an initializer name or a callable, got "
                        f"{type(identifier).__name__}")
    canonical = _canonical(identifier) or _canonical(identifier.lower())
    if canonical is None:
        raise ValueError(f"{name}: unknown initializer {identifier!r}; expected one of "
                         f"{', '.join(sorted(_BY_NAME))} (or a class name)")
    return canonical


def get(identifier):
    """keras.initializers.get: an Initializer from a name, a config dict or an instance
    (None for None; other callables as they are)."""
    if identifier is None:
        return None
    checked = check(identifier, "initializer")
    return _BY_NAME[checked]() if isinstance(checked, str) else checked


def serialize(initializer):
    """{'class_name': ..., 'config': ...}, which get() reads back."""
    initializer = get(initializer)
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}


def initialize(identifier, shape):
    """A float32 C-contiguous array of `shape` (its own, writable: optimizers update it in
    place) from a checked initializer."""
    fn = _BY_NAME[identifier]() if isinstance(identifier, str) else identifier
    return np.array(fn(tuple(shape)), dtype=np.float32, order="C").reshape(shape)
