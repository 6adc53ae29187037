"""The update rules: SGD, RMSprop, Adam, AdamW, Adagrad, with Keras 3's arguments, defaults
and formulas (see each kernel's contract in fastdl/_reference/optimizers.py)."""
import numpy as np

from fastdl import _validate as v
from fastdl._backend import kernels
from fastdl.optimizers.base import Optimizer


def _unit(value, name, closed=True):
    value = v.real(value, name)
    if not (0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0):
        raise ValueError(f"{name}: expected a number in [0, 1{']' if closed else ')'}, got "
                         f"{value!r}")
    return value


def _epsilon(value):
    value = v.real(value, "epsilon")
    if not value >= 0:
        raise ValueError(f"epsilon: expected a number >= 0, got {value!r}")
    return value


class SGD(Optimizer):
    """w -= lr g; with momentum: v = momentum v - lr g, w += v; nesterov: w += momentum v -
    lr g."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name="SGD"):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name)
        self.momentum = _unit(momentum, "momentum")
        self.nesterov = v.flag(nesterov, "nesterov")

    def _new_slots(self, value):
        return [np.zeros_like(value)] if self.momentum else []

    def _update(self, w, g, slots, lr):
        kernels.sgd_update(w, g, slots[0] if slots else None, lr, self.momentum,
                           self.nesterov)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """rms = rho rms + (1 - rho) g^2, w -= lr g / sqrt(rms + eps) (centered: rms minus the
    squared running mean of g); with momentum, the steps accumulate as in SGD."""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name="rmsprop"):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name)
        self.rho = _unit(rho, "rho")
        self.momentum = _unit(momentum, "momentum")
        self.epsilon = _epsilon(epsilon)
        self.centered = v.flag(centered, "centered")

    def _new_slots(self, value):
        slots = [np.zeros_like(value)]
        if self.momentum:
            slots.append(np.zeros_like(value))
        if self.centered:
            slots.append(np.zeros_like(value))
        return slots

    def _update(self, w, g, slots, lr):
        momentum = slots[1] if self.momentum else None
        average = slots[-1] if self.centered else None
        kernels.rmsprop_update(w, g, slots[0], momentum, average, lr, self.rho,
                               self.momentum, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adam(Optimizer):
    """Keras' Adam: bias-corrected first and second moments, w -= alpha m / (sqrt(v) +
    eps); amsgrad keeps the running maximum of v."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name="adam"):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name)
        self.beta_1 = _unit(beta_1, "beta_1", closed=False)
        self.beta_2 = _unit(beta_2, "beta_2", closed=False)
        self.epsilon = _epsilon(epsilon)
        self.amsgrad = v.flag(amsgrad, "amsgrad")

    _decays_apart = False  # the Adam kernel applies the decoupled decay in its pass

    def _new_slots(self, value):
        return [np.zeros_like(value) for _ in range(3 if self.amsgrad else 2)]

    def _update(self, w, g, slots, lr):
        kernels.adam_update(w, g, slots[0], slots[1], slots[2] if self.amsgrad else None, lr,
                            self.beta_1, self.beta_2, self.epsilon, self.iterations,
                            self.weight_decay or 0.0)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (w -= lr weight_decay w before each update)."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name="adamw"):
        if weight_decay is None:
            raise ValueError("weight_decay: AdamW needs a number, got None")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay,
                         clipnorm, clipvalue, global_clipnorm, name)


class Adagrad(Optimizer):
    """acc += g^2, w -= lr g / sqrt(acc + eps); acc starts at initial_accumulator_value."""

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name="adagrad"):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name)
        self.initial_accumulator_value = v.real(initial_accumulator_value,
                                                "initial_accumulator_value")
        if not self.initial_accumulator_value >= 0:
            raise ValueError(f"initial_accumulator_value: expected a number >= 0, got "
                             f"{initial_accumulator_value!r}")
        self.epsilon = _epsilon(epsilon)

    def _new_slots(self, value):
        return [np.full_like(value, self.initial_accumulator_value)]

    def _update(self, w, g, slots, lr):
        kernels.adagrad_update(w, g, slots[0], lr, self.epsilon)

    def get_config(self):
        return {**super().get_config(),
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}
