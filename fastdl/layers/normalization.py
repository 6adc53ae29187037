"""BatchNormalization (Keras arguments and weights; inference: the moving statistics;
training: the batch's statistics, the moving ones updated after the step)."""
import numpy as np

from fastdl import _validate as v
from fastdl import initializers, ops
from fastdl._backend import kernels
from fastdl.layers import layout as L
from fastdl.layers.base import Layer
from fastdl.layers.core import _initializer_name


class BatchNormalization(Layer):
    """(x - moving_mean) / sqrt(moving_variance + epsilon) * gamma + beta along `axis`.
    Weights in Keras order: gamma (if scale), beta (if center), moving_mean,
    moving_variance.

    Training (Keras 3): a trainable layer normalises with the batch's mean and biased
    variance and, once the step's weights are updated, moves its statistics towards them:
    moving = moving * momentum + batch * (1 - momentum) (the biased variance, as Keras).
    A frozen layer (trainable=False) runs in inference mode: the moving statistics
    normalise, nothing updates, and its gradient is dy * gamma / sqrt(moving_variance + eps).
    """

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

    # ------------------------------------------------------------------ training

    def _channels_view(self, x):
        """x (Keras layout) as [outer, channels, inner] around the feature axis: a view,
        [rows, channels, 1] for the last axis (the kernels' rows layout)."""
        axis = self.axis % x.ndim
        outer = int(np.prod(x.shape[:axis]))
        return np.ascontiguousarray(x, dtype=np.float32).reshape(
            outer, x.shape[axis], int(np.prod(x.shape[axis + 1:])))

    def _train_forward(self, x, training):
        x3 = self._channels_view(x)
        batch_mode = bool(training) and self.trainable
        if batch_mode:
            mean, var = kernels.batch_norm_statistics(x3)
        else:
            mean, var = self.moving_mean.value, self.moving_variance.value
        gamma = None if self.gamma is None else self.gamma.value
        beta = None if self.beta is None else self.beta.value
        if x3.shape[2] == 1:  # channels last: per-channel vectors broadcast along rows
            scale = 1.0 / np.sqrt(var.astype(np.float64) + self.epsilon)
            if gamma is not None:
                scale = scale * gamma
            shift = -mean * scale + (0.0 if beta is None else beta)
            y = x3 * scale.astype(np.float32)[:, None] + shift.astype(np.float32)[:, None]
        else:  # the kernels' normalisation with these statistics
            y = ops.batch_norm(x3, mean, var, gamma, beta, eps=self.epsilon)
        return y.reshape(x.shape).astype(np.float32, copy=False), (x3, batch_mode, mean, var)

    def _backward(self, dy, cache, grads):
        x3, batch_mode, mean, var = cache
        gamma = None if self.gamma is None else self.gamma.value
        train_params = self.trainable
        if batch_mode:
            dx, dg, db = ops.batch_norm_backward(
                dy.reshape(x3.shape), x3, weight=gamma, bias=self.beta is not None,
                eps=self.epsilon, batch_mean=mean, batch_var=var)
        else:
            dx, dg, db = ops.batch_norm_backward(
                dy.reshape(x3.shape), x3, mean, var, gamma,
                bias=train_params and self.beta is not None, training=False,
                eps=self.epsilon)
        if train_params and dg is not None:
            grads.add(self.gamma, dg)
        if train_params and db is not None:
            grads.add(self.beta, db)
        return dx.reshape(dy.shape)

    def _update_state(self, cache):
        """After the step's weight update: the moving statistics move towards the batch's
        (Keras' rule, in float64). A shared layer's uses apply one after another."""
        _, batch_mode, mean, var = cache
        if not batch_mode:
            return False
        m = self.momentum
        for weight, batch in ((self.moving_mean, mean), (self.moving_variance, var)):
            moved = weight.value.astype(np.float64) * m + batch * (1.0 - m)
            weight.value = moved.astype(np.float32)
        return True

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                **{k: _initializer_name(i) for k, i in self.initializers.items()}}
