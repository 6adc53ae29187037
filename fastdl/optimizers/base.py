"""The Optimizer base class: Keras 3's learning rate (a number or a schedule), gradient
clipping (clipnorm, global_clipnorm, clipvalue), per-weight slots and update count, over
the compiled update loops of the backend (fastdl._optimizers: typed Cython loops, in
place, no NumPy temporaries)."""
import math

import numpy as np

from fastdl import _validate as v
from fastdl._backend import kernels
from fastdl.optimizers import schedules


def _optional_positive(value, name):
    if value is None:
        return None
    value = v.real(value, name)
    if not value > 0:
        raise ValueError(f"{name}: expected a number > 0 or None, got {value!r}")
    return value


class Optimizer:
    """Base of the optimizers. apply_gradients(zip(grads, weights)) updates each weight in
    place (a fastdl layer Weight, or any object with a float32 C-contiguous `.value`) and
    counts one step (`iterations`).

    learning_rate: a number, a schedule (fastdl.optimizers.schedules) or a callable from
    the step to a number; `optimizer.learning_rate` reads the current value and takes a new
    number (callbacks such as ReduceLROnPlateau set it)."""

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        self.learning_rate = learning_rate
        self.weight_decay = None if weight_decay is None else v.real(weight_decay,
                                                                     "weight_decay")
        self.clipnorm = _optional_positive(clipnorm, "clipnorm")
        self.clipvalue = _optional_positive(clipvalue, "clipvalue")
        self.global_clipnorm = _optional_positive(global_clipnorm, "global_clipnorm")
        if self.clipnorm is not None and self.global_clipnorm is not None:
            raise ValueError("clipnorm, global_clipnorm: only one of them can be set")
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self._slots = {}  # id(weight) -> (weight, [slot arrays])

    # ------------------------------------------------------------ learning rate

    @property
    def learning_rate(self):
        """The learning rate of the next update (the schedule's value at `iterations`)."""
        lr = self._learning_rate
        if not callable(lr):
            return lr
        value = lr(self.iterations)
        try:
            return _rate(value, "learning_rate")
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"learning_rate: the schedule gave {value!r} at step "
                            f"{self.iterations} ({exc})"[:400]) from None

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, schedules.LearningRateSchedule) or (
                callable(value) and not isinstance(value, (int, float, np.number))):
            self._learning_rate = value
            return
        try:
            self._learning_rate = _rate(value, "learning_rate")
        except TypeError:
            raise TypeError(f"learning_rate: expected a number or a schedule, got "
                            f"{type(value).__name__}") from None

    # ------------------------------------------------------------ updates

    def apply_gradients(self, grads_and_vars):
        """One update of every (gradient, weight) pair; the gradients are not modified."""
        pairs = list(grads_and_vars)
        grads = [self._gradient(g, w) for g, w in pairs]
        weights = [w for _, w in pairs]
        grads = self._clipped(grads)
        lr = self.learning_rate
        self.iterations += 1
        for g, w in zip(grads, weights):
            entry = self._slots.get(id(w))
            if entry is None or entry[0] is not w:
                entry = self._slots[id(w)] = (w, self._new_slots(w.value))
            flat = w.value.reshape(-1)
            if self.weight_decay and self._decays_apart:  # decoupled: w -= lr wd w
                kernels.scale_clip(flat, 1.0 - lr * self.weight_decay, 0.0)
            self._update(flat, g.reshape(-1), [s.reshape(-1) for s in entry[1]], lr)

    def apply(self, grads, weights):
        """apply_gradients(zip(grads, weights))."""
        self.apply_gradients(zip(grads, weights))

    @staticmethod
    def _gradient(g, w):
        value = getattr(w, "value", None)
        if not (isinstance(value, np.ndarray) and value.dtype == np.float32 and
                value.flags.c_contiguous and value.flags.writeable):
            raise TypeError(f"weights: expected objects whose .value is a writable float32 "
                            f"C-contiguous array, got {type(w).__name__}")
        g = v.float32_array(g, "grads")
        if g.shape != value.shape:
            raise ValueError(f"grads: expected the shape of weight {getattr(w, 'name', '')} "
                             f"{value.shape}, got {g.shape}")
        return g

    def _clipped(self, grads):
        """Keras' order: clipnorm per gradient, else global_clipnorm, else clipvalue; the
        clipped ones are copies."""
        if self.clipnorm is not None:
            out = []
            for g in grads:
                norm = math.sqrt(kernels.squared_norm(g.reshape(-1)))
                if norm > self.clipnorm:
                    g = g.copy()
                    kernels.scale_clip(g.reshape(-1), self.clipnorm / norm, 0.0)
                out.append(g)
            return out
        if self.global_clipnorm is not None:
            norm = math.sqrt(sum(kernels.squared_norm(g.reshape(-1)) for g in grads))
            if norm > self.global_clipnorm:
                grads = [g.copy() for g in grads]
                for g in grads:
                    kernels.scale_clip(g.reshape(-1), self.global_clipnorm / norm, 0.0)
            return grads
        if self.clipvalue is not None:
            grads = [g.copy() for g in grads]
            for g in grads:
                kernels.scale_clip(g.reshape(-1), 1.0, self.clipvalue)
        return grads

    # Whether weight_decay is applied here, before _update (False: _update applies it).
    _decays_apart = True

    def _new_slots(self, value):
        """The optimizer's state arrays for a weight of this value (subclasses)."""
        return []

    def _update(self, w, g, slots, lr):
        """One in-place update of flat w with gradient g (subclasses)."""
        raise NotImplementedError

    def variables(self):
        """[iterations] followed by every weight's slots, in the order weights first
        appeared."""
        return [np.array(self.iterations)] + [s.copy() for _, slots in self._slots.values()
                                              for s in slots]

    # ------------------------------------------------------------ configs

    def get_config(self):
        lr = self._learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            lr = schedules.serialize(lr)
        elif callable(lr):
            raise ValueError("learning_rate: a plain callable cannot be serialised; use a "
                             "fastdl.optimizers.schedules class")
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
                "clipvalue": self.clipvalue}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} learning_rate={self.learning_rate}>"


def _rate(value, name):
    """A learning rate: a finite real number >= 0, as a float."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    value = v.real(value, name, 0.0)
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value}")
    return value
