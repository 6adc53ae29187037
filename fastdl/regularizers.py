"""Weight (and activity) penalties by their Keras names: L1, L2, L1L2 and l1, l2, l1_l2.

    layers.Dense(64, kernel_regularizer=regularizers.l2(1e-4), bias_regularizer="l1")

A regularizer called on an array gives its penalty (a float32 scalar); `gradient(x)` gives
d penalty / d x, which training adds to the weight's gradient (fastdl/models/training.py)
while the penalty joins the loss -- Keras adds sum(model.losses) to the compiled loss, in
fit's logged `loss` and in evaluate's alike.

    L1(l1=0.01)          l1 * sum(|x|)          gradient l1 * sign(x) (0 at 0, as torch's)
    L2(l2=0.01)          l2 * sum(x^2)          gradient 2 l2 x
    L1L2(l1=0.0, l2=0.0) both                   (Keras 3's class defaults)
    l1_l2(l1=0.01, l2=0.01)                     (the defaults Keras documents for 'l1_l2')

The penalty sums in float64 and returns float32. Your own regularizer subclasses
Regularizer with __call__ and gradient (a plain function has no gradient here).
"""
import math

import numpy as np

from fastdl import _validate as v

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "check", "get", "serialize"]


def _factor(value, name):
    """A penalty factor: a finite real >= 0, as Keras' validate_float_arg."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name}: expected a non-negative float, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a non-negative float, got {value}")
    return value


def _array(x):
    return v.float32_array(x, "x")


class Regularizer:
    """A penalty on an array: __call__(x) -> float32 scalar, gradient(x) -> float32 array
    of x's shape; get_config / from_config for saving."""

    def __call__(self, x):
        return np.float32(0.0)

    def gradient(self, x):
        raise NotImplementedError(f"{type(self).__name__}: training needs gradient(x), the "
                                  f"derivative of the penalty")

    def get_config(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement get_config()")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    """l1 * sum(|x|) + l2 * sum(x^2)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor(0.0 if l1 is None else l1, "l1")
        self.l2 = _factor(0.0 if l2 is None else l2, "l2")

    def __call__(self, x):
        x = _array(x)
        total = 0.0
        if self.l1:
            total += self.l1 * float(np.abs(x).sum(dtype=np.float64))
        if self.l2:
            total += self.l2 * float(np.square(x, dtype=np.float64).sum())
        return np.float32(total)

    def gradient(self, x):
        x = _array(x)
        grad = np.zeros(x.shape, np.float32)
        if self.l1:
            grad += np.float32(self.l1) * np.sign(x)
        if self.l2:
            grad += np.float32(2.0 * self.l2) * x
        return grad

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """l1 * sum(|x|)."""

    def __init__(self, l1=0.01):
        super().__init__(l1=0.01 if l1 is None else l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """l2 * sum(x^2)."""

    def __init__(self, l2=0.01):
        super().__init__(l2=0.01 if l2 is None else l2)

    def get_config(self):
        return {"l2": self.l2}


l1 = L1  # Keras exports the classes under these names too
l2 = L2


def l1_l2(l1=0.01, l2=0.01):
    """L1L2 with the defaults Keras documents for 'l1_l2' (0.01 each; Keras 3's own
    l1_l2 is the class, whose defaults are 0)."""
    return L1L2(l1=l1, l2=l2)


_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
_NAMES = {"l1": L1, "l2": L2, "l1l2": L1L2, "l1_l2": l1_l2, **_CLASSES}


def check(identifier, name):
    """The Regularizer (or None) `identifier` names -- None, a name ('l1', 'l2', 'l1_l2',
    'L1', ...: the default instance), a config dict ({'class_name': 'L2', 'config':
    {'l2': 0.01}}, as Keras saves it) or a Regularizer (as is) --, else a ValueError /
    TypeError naming the argument `name`."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        make = _NAMES.get(identifier)
        if make is None:
            raise ValueError(f"{name}: expected one of {sorted(_NAMES)} or a Regularizer, "
                             f"got {identifier!r}")
        return make()
    if isinstance(identifier, dict):
        cls = _CLASSES.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"{name}: unknown regularizer class "
                             f"{identifier.get('class_name')!r}; expected one of "
                             f"{sorted(_CLASSES)}")
        return cls.from_config(identifier.get("config") or {})
    if callable(identifier):
        raise TypeError(f"{name}: a plain function ({getattr(identifier, '__name__', '?')}) "
                        f"has no gradient in fastdl; subclass fastdl.regularizers.Regularizer "
                        f"with __call__ and gradient")
    raise TypeError(f"{name}: expected a name, a config dict or a Regularizer, got "
                    f"{type(identifier).__name__}")


def get(identifier):
    """keras.regularizers.get: see check."""
    return check(identifier, "regularizer")


def serialize(regularizer):
    """{'class_name': ..., 'config': ...} (None for None), which get() reads back."""
    if regularizer is None:
        return None
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}
