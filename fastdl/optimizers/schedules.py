"""Learning-rate schedules (keras.optimizers.schedules): callables from the optimizer's
step (its number of updates so far, from 0) to a learning rate, with Keras' formulas and
configs.
"""
import math

import numpy as np

from fastdl import _validate as v


class LearningRateSchedule:
    """Base: schedule(step) -> learning rate (a float)."""

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _positive(value, name):
    value = _finite(value, name)
    if not value > 0:
        raise ValueError(f"{name}: expected a number > 0, got {value!r}")
    return value


def _finite(value, name, low=None):
    """A finite real number (>= low if given); TypeError / ValueError naming it."""
    value = v.real(value, name, low)
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    return value


def _power(base, exponent):
    """base ** exponent, inf where it overflows (the optimizer refuses that rate)."""
    try:
        return base ** exponent
    except OverflowError:
        return math.inf


class ExponentialDecay(LearningRateSchedule):
    """initial_learning_rate * decay_rate ^ (step / decay_steps) (the exponent floored
    with staircase)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        self.initial_learning_rate = _finite(initial_learning_rate, "initial_learning_rate",
                                             0.0)
        self.decay_steps = _positive(decay_steps, "decay_steps")
        self.decay_rate = _positive(decay_rate, "decay_rate")
        self.staircase = v.flag(staircase, "staircase")
        self.name = name

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * _power(self.decay_rate, p)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class InverseTimeDecay(LearningRateSchedule):
    """initial_learning_rate / (1 + decay_rate * step / decay_steps) (floored with
    staircase)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        self.initial_learning_rate = _finite(initial_learning_rate, "initial_learning_rate",
                                             0.0)
        self.decay_steps = _positive(decay_steps, "decay_steps")
        self.decay_rate = _finite(decay_rate, "decay_rate", 0.0)
        self.staircase = v.flag(staircase, "staircase")
        self.name = name

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate / (1.0 + self.decay_rate * p)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """values[0] up to and including boundaries[0], values[1] up to boundaries[1], ...,
    values[-1] after the last boundary."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        self.boundaries = [_finite(b, "boundaries") for b in _sequence(boundaries, "boundaries")]
        self.values = [_finite(x, "values", 0.0) for x in _sequence(values, "values")]
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(f"values: expected one more value than boundaries "
                             f"({len(self.boundaries) + 1}), got {len(self.values)}")
        if any(b >= c for b, c in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError(f"boundaries: expected increasing numbers, got {self.boundaries}")
        self.name = name

    def __call__(self, step):
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return value
        return self.values[-1]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Cosine decay from initial_learning_rate (after an optional linear warmup to
    warmup_target over warmup_steps) to alpha times it over decay_steps, then constant."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        self.initial_learning_rate = _finite(initial_learning_rate, "initial_learning_rate",
                                             0.0)
        self.decay_steps = v.integer(decay_steps, "decay_steps", 1)
        self.alpha = _finite(alpha, "alpha", 0.0)  # the final rate's fraction of the first
        if self.alpha > 1.0:
            raise ValueError(f"alpha: expected a fraction in [0, 1], got {self.alpha}")
        self.warmup_target = None if warmup_target is None else _finite(warmup_target,
                                                                        "warmup_target")
        self.warmup_steps = v.integer(warmup_steps, "warmup_steps", 0)
        self.name = name

    def __call__(self, step):
        start = self.initial_learning_rate
        if self.warmup_target is not None and step < self.warmup_steps:
            return start + (self.warmup_target - start) * step / self.warmup_steps
        if self.warmup_target is not None:
            start = self.warmup_target
        done = min(step - self.warmup_steps, self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * done))
        return start * ((1.0 - self.alpha) * cosine + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


SCHEDULES = {cls.__name__: cls for cls in (ExponentialDecay, InverseTimeDecay,
                                           PiecewiseConstantDecay, CosineDecay)}


def serialize(schedule):
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config):
    try:
        cls = SCHEDULES[config["class_name"]]
    except (KeyError, TypeError):
        raise ValueError(f"learning_rate: unknown schedule {config!r}") from None
    return cls.from_config(config["config"])


def _sequence(value, name):
    """`value` as a list, if it is a list, tuple or 1-D array; TypeError naming it else."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return list(value)
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name}: expected a list of numbers, got {type(value).__name__}")
    return list(value)
