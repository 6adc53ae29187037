"""BatchNormalization (Keras arguments and weights; inference: the moving statistics)."""
import numpy as np

from fastdl import _validate as v
from fastdl import initializers, ops
from fastdl.layers import layout as L
from fastdl.layers.base import Layer
from fastdl.layers.core import _initializer_name


class BatchNormalization(Layer):
    """(x - moving_mean) / sqrt(moving_variance + epsilon) * gamma + beta along `axis`.
    Weights in Keras order: gamma (if scale), beta (if center), moving_mean,
    moving_variance. (Training updates, with momentum, come with fit.)"""

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 **kwargs):
        super().__init__(**kwargs)
        self.axis = v.integer(axis, "axis")
        self.momentum = v.real(momentum, "momentum", 0.0, 1.0)
        self.epsilon = v.real(epsilon, "epsilon")
        if not self.epsilon > 0:
            raise ValueError(f"epsilon: expected a positive number, got {epsilon!r}")
        self.center, self.scale = v.flag(center, "center"), v.flag(scale, "scale")
        self.initializers = {name: initializers.check(init, name) for name, init in (
            ("gamma_initializer", gamma_initializer), ("beta_initializer", beta_initializer),
            ("moving_mean_initializer", moving_mean_initializer),
            ("moving_variance_initializer", moving_variance_initializer))}
        self._affine = None  # (scale, shift) float32 per channel, from the weights

    def check_input(self, input_shape, first=False):
        rank = len(input_shape)
        if not -rank <= self.axis < rank or self.axis % rank == 0:
            self._refuse(input_shape, f"a shape with a feature axis {self.axis}")
        if input_shape[self.axis] is None:
            self._refuse(input_shape, f"a known size along axis {self.axis}")
        if not first and input_shape[self.axis] != self.input_shape[self.axis]:
            self._refuse(input_shape, self.input_shape)

    def build(self, input_shape):
        n = input_shape[self.axis]
        init = self.initializers
        self.gamma = (self.add_weight("gamma", (n,), init["gamma_initializer"])
                      if self.scale else None)
        self.beta = (self.add_weight("beta", (n,), init["beta_initializer"])
                     if self.center else None)
        self.moving_mean = self.add_weight("moving_mean", (n,),
                                           init["moving_mean_initializer"], trainable=False)
        self.moving_variance = self.add_weight("moving_variance", (n,),
                                               init["moving_variance_initializer"],
                                               trainable=False)

    def _weights_changed(self):
        self._affine = None
        super()._weights_changed()

    def affine(self):
        """(scale, shift) with y = x * scale + shift per channel, computed in float64 once
        per set of weights (a model folds them into the preceding layer)."""
        if self._affine is None:
            scale = 1.0 / np.sqrt(self.moving_variance.value.astype(np.float64) + self.epsilon)
            if self.gamma is not None:
                scale = scale * self.gamma.value
            shift = -self.moving_mean.value * scale
            if self.beta is not None:
                shift = shift + self.beta.value
            self._affine = (scale.astype(np.float32), shift.astype(np.float32))
        return self._affine

    def _forward(self, x, layout):
        rank = len(self.input_shape)
        axis = self.axis % rank
        if layout == L.CF and axis == rank - 1:  # the channels, held on axis 1
            axis = 1
        else:
            x, layout = L.to_keras(x, layout), L.KERAS
        if axis == 1:  # the kernels' batch norm: channels on axis 1
            value = (lambda w: None if w is None else w.value)
            return ops.batch_norm(x, self.moving_mean.value, self.moving_variance.value,
                                  value(self.gamma), value(self.beta),
                                  eps=self.epsilon), layout
        scale, shift = self.affine()
        shape = tuple(-1 if a == axis else 1 for a in range(x.ndim))
        y = x * scale.reshape(shape) + shift.reshape(shape)
        return np.ascontiguousarray(y, dtype=np.float32), layout

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                **{k: _initializer_name(i) for k, i in self.initializers.items()}}
