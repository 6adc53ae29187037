"""Recurrent layers: LSTM, GRU (reset_after True and False), SimpleRNN (Keras 3's
arguments; weights kernel [in, k * units], recurrent_kernel [units, k * units], bias).

The configurations PyTorch's modules compute -- LSTM, and GRU with reset_after=True, with
tanh / sigmoid activations -- run on the native LSTMPlan / GRUPlan (gates reordered to
PyTorch's once, when the plan is made). Any other configuration (GRU with
reset_after=False, SimpleRNN, other activations) runs one batched input projection for
all time steps and then a loop over the steps, vectorized over the batch.

Training (_train_forward / _backward) runs the kernels' training pair for every layer here
(fastdl.ops.rnn_layer_train / rnn_layer_backward: the forward keeps the gates, the
backward runs through time), with the weights in PyTorch's order and the gradients given
back in Keras' layouts. It needs Keras' default activations (tanh, and sigmoid for the
gates; SimpleRNN: tanh or relu); anything else raises NotImplementedError naming the
layer. `dropout` drops input features as Keras 3 does when recurrent_dropout is 0: one mask
per sample and feature (kept ones scaled by 1 / (1 - rate)), the same at every step, drawn
from the layer's generator (fastdl's, so the masks are not Keras' draws). With
0 < recurrent_dropout < 1, as Keras 3 (its implementation 1), each gate has its own masks,
the same at every step: on the previous output h_{t-1} where the gate reads it (the GRU's
update z h_{t-1} keeps the whole state), and with `dropout` on the inputs; such a layer
trains in NumPy, float64 (fastdl.ops.rnn_layer_train's masks), not on the kernels.

Where fastdl differs from Keras: inputs are batch-first (N, steps, features) as Keras';
stateful=True, masking and initial states passed as call arguments are not supported.
"""
import numpy as np

from fastdl import _random
from fastdl import _validate as v
from fastdl import activations, initializers, ops
from fastdl.layers import layout as L
from fastdl.layers.base import Layer
from fastdl.layers.core import _initializer_name


class _RNN(Layer):
    gates = None   # 4 (LSTM), 3 (GRU), 1 (SimpleRNN)
    state_count = 1

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, **kwargs):
        super().__init__(**kwargs)
        self.units = v.positive_int(units, "units")
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation,
                                                    "recurrent_activation")
        self.use_bias = v.flag(use_bias, "use_bias")
        self.kernel_initializer = initializers.check(kernel_initializer, "kernel_initializer")
        self.recurrent_initializer = initializers.check(recurrent_initializer,
                                                        "recurrent_initializer")
        self.bias_initializer = initializers.check(bias_initializer, "bias_initializer")
        for name, value in (("kernel_regularizer", kernel_regularizer),
                            ("recurrent_regularizer", recurrent_regularizer),
                            ("bias_regularizer", bias_regularizer),
                            ("activity_regularizer", activity_regularizer),
                            ("kernel_constraint", kernel_constraint),
                            ("recurrent_constraint", recurrent_constraint),
                            ("bias_constraint", bias_constraint)):
            if value is not None:
                raise ValueError(f"{name}: not supported by fastdl (training arrives with "
                                 f"fit)")
        self.dropout = v.real(dropout, "dropout", 0.0, 1.0)
        self.recurrent_dropout = v.real(recurrent_dropout, "recurrent_dropout", 0.0, 1.0)
        self.seed = seed
        self.return_sequences = v.flag(return_sequences, "return_sequences")
        self.return_state = v.flag(return_state, "return_state")
        self.go_backwards = v.flag(go_backwards, "go_backwards")
        if v.flag(stateful, "stateful"):
            raise ValueError("stateful: stateful recurrent layers are not supported by "
                             "fastdl (each call starts from zero states)")
        self.unroll = v.flag(unroll, "unroll")

    # ------------------------------------------------------------------ shapes, weights

    def check_input(self, input_shape, first=False):
        if isinstance(input_shape, list):
            raise ValueError(f"{self.name} ({self.class_name}): initial states as inputs are "
                             f"not supported by fastdl; got {len(input_shape)} inputs")
        if len(input_shape) != 3 or input_shape[2] is None:
            self._refuse(input_shape, "a 3-D shape (None, steps, features)")
        if not first and input_shape[2] != self.input_shape[2]:
            self._refuse(input_shape, self.input_shape)

    def _bias_shape(self):
        return (self.gates * self.units,)

    def build(self, input_shape):
        features, width = input_shape[2], self.gates * self.units
        self.kernel = self.add_weight("kernel", (features, width), self.kernel_initializer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, width),
                                                self.recurrent_initializer)
        self.bias = (self.add_weight("bias", self._bias_shape(), self._bias_init())
                     if self.use_bias else None)

    def _bias_init(self):
        return self.bias_initializer

    def _keras_weight_paths(self):
        return [f"cell/{path}" for path in super()._keras_weight_paths()]

    def compute_output_shape(self, input_shape):
        n, steps = input_shape[0], input_shape[1]
        out = (n, steps, self.units) if self.return_sequences else (n, self.units)
        if not self.return_state:
            return out
        return [out] + [(n, self.units)] * self.state_count

    # ------------------------------------------------------------------ running

    def _forward(self, x, layout):
        x = L.to_keras(x, layout)
        if self.go_backwards:
            x = x[:, ::-1]
        x = np.ascontiguousarray(x)
        if x.shape[1] == 0:
            raise ValueError(f"{self.name} ({self.class_name}): expected at least one step, "
                             f"got shape {x.shape}")
        ys, states = self._sequence(x)  # ys (N, T, units), states [(N, units), ...]
        out = ys if self.return_sequences else np.ascontiguousarray(ys[:, -1])
        if self.return_state:
            return [out] + states, [L.KERAS] * (1 + len(states))
        return out, L.KERAS

    def _standard(self):
        """True where PyTorch's module computes this layer (the native plans)."""
        return self.activation.name == "tanh" and self.recurrent_activation.name == "sigmoid"

    def _sequence(self, x):
        if self._standard():
            plan = self._plans.get(None)
            if plan is None:
                plan = self._plans[None] = self._new_plan()
            y, state = plan(x)  # batch_first: y (N, T, units)
            states = list(state) if isinstance(state, tuple) else [state]
            return y, [s[0] for s in states]
        return self._loop(x)

    def _update_plan(self, key, plan):
        plan.set_weights(*self._torch_weights())

    def _new_plan(self):
        raise NotImplementedError

    def _loop(self, x):
        raise NotImplementedError

    def _projection(self, x):
        """x @ kernel (+ bias) for every step at once: (N, T, gates * units)."""
        n, steps, features = x.shape
        bias = self._input_bias()
        y = ops.linear(x.reshape(n * steps, features), self.kernel.value.T, bias)
        return y.reshape(n, steps, -1)

    def _input_bias(self):
        return None if self.bias is None else self.bias.value

    # ------------------------------------------------------------------ training

    def _train_kind(self):
        """The kernels' kind this layer trains as (fastdl.ops.rnn_layer_train)."""
        raise NotImplementedError

    def _train_weights(self):
        """(w_ih, w_hh, b_ih, b_hh) in PyTorch's layout and gate order for _train_kind."""
        raise NotImplementedError

    def _keras_gradients(self, dw_ih, dw_hh, db_ih, db_hh):
        """[(weight, gradient)] in Keras' layouts from those of _train_weights."""
        raise NotImplementedError

    def _refuse_training(self, what):
        raise NotImplementedError(f"{self.name} ({self.class_name}): training with {what} is "
                                  f"not supported yet")

    def _check_trainable_config(self, training):
        if self.recurrent_activation.name != "sigmoid" or self.activation.name != "tanh":
            self._refuse_training(f"activation={self.activation.name!r}, recurrent_activation="
                                  f"{self.recurrent_activation.name!r} (tanh and sigmoid train)")

    def _train_forward(self, x, training):
        """Keras-layout x (N, T, F) -> the outputs _forward gives; the sequence runs
        time-major through the kernels' training forward (go_backwards: on the reversed
        steps, as Keras)."""
        self._check_trainable_config(training)
        kind = self._train_kind()
        masks = self._gate_dropout_masks(x) if training else None
        keep = self._input_dropout_mask(x) if training and masks is None else None
        if keep is not None:
            x = x * keep
        go_back = self.go_backwards
        if go_back:
            x = x[:, ::-1]
        xt = np.ascontiguousarray(np.swapaxes(x, 0, 1))
        if xt.shape[0] == 0:
            raise ValueError(f"{self.name} ({self.class_name}): expected at least one step, "
                             f"got shape {x.shape[:1] + xt.shape[:1] + x.shape[2:]}")
        weights = self._train_weights()
        y, h_n, c_n, saved = ops.rnn_layer_train(kind, xt, None, None, *weights, masks=masks)
        out = np.ascontiguousarray(np.swapaxes(y, 0, 1)) if self.return_sequences else h_n
        cache = (kind, xt, y, saved, weights, go_back, keep, masks)
        if not self.return_state:
            return out, cache
        states = [h_n.copy() if out is h_n else h_n] + ([] if c_n is None else [c_n])
        return [out] + states, cache

    def _input_dropout_mask(self, x):
        """(N, 1, F): the input features kept, scaled by 1 / (1 - dropout), or None."""
        if not self.dropout:
            return None
        shape = (x.shape[0], 1, x.shape[2])
        if self.dropout >= 1.0:
            return np.zeros(shape, np.float32)
        return _random.dropout_mask(self, shape, self.dropout)

    def _gate_dropout_masks(self, x):
        """Keras' masks under recurrent dropout (0 < recurrent_dropout < 1): (input masks
        [G, N, F] or None without dropout, recurrent masks [G, N, units]), torch's gate
        order, kept values scaled by 1 / (1 - rate); None without recurrent dropout."""
        if not 0.0 < self.recurrent_dropout < 1.0:
            return None
        def draw(rate, features):
            return _random.dropout_mask(self, (self.gates, x.shape[0], features), rate)
        inputs = draw(self.dropout, x.shape[2]) if 0.0 < self.dropout < 1.0 else None
        return inputs, draw(self.recurrent_dropout, self.units)

    def _backward(self, dy, cache, grads):
        kind, xt, y, saved, weights, go_back, keep, masks = cache
        d_states = [None, None]
        if self.return_state:
            dy, d_states = dy[0], list(dy[1:]) + [None]
        grad_y = (np.ascontiguousarray(np.swapaxes(dy, 0, 1)) if self.return_sequences
                  else None)
        grad_h_n = d_states[0]
        if not self.return_sequences:  # the output is h_n
            grad_h_n = dy if grad_h_n is None else dy + grad_h_n
        grad_c_n = d_states[1] if kind == "lstm" else None
        w_ih, w_hh = weights[:2]
        dx, _, _, dw_ih, dw_hh, db_ih, db_hh = ops.rnn_layer_backward(
            kind, grad_y, grad_h_n, grad_c_n, xt, y, saved, None, None, w_ih, w_hh,
            masks=masks)
        for weight, g in self._keras_gradients(dw_ih, dw_hh, db_ih, db_hh):
            grads.add(weight, g)
        dx = np.swapaxes(dx, 0, 1)
        dx = dx[:, ::-1] if go_back else dx
        return np.ascontiguousarray(dx if keep is None else dx * keep)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": self.activation.name,
                "recurrent_activation": self.recurrent_activation.name,
                "use_bias": self.use_bias,
                "kernel_initializer": _initializer_name(self.kernel_initializer),
                "recurrent_initializer": _initializer_name(self.recurrent_initializer),
                "bias_initializer": _initializer_name(self.bias_initializer),
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards}


class LSTM(_RNN):
    """Long short-term memory: gates i, f, c, o (Keras' order, PyTorch's too)."""
    gates, state_count = 4, 2

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = v.flag(unit_forget_bias, "unit_forget_bias")

    def _bias_init(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        units, base = self.units, self.bias_initializer

        def init(shape):
            b = np.asarray(initializers.initialize(base, shape))
            b[units:2 * units] = 1.0  # the forget gate starts open, as Keras does
            return b
        return init

    def _torch_weights(self):
        bias = None if self.bias is None else self.bias.value
        return (self.kernel.value.T, self.recurrent_kernel.value.T, bias, None)

    def _new_plan(self):
        return ops.LSTMPlan(*self._torch_weights(), batch_first=True)

    def _train_kind(self):
        return "lstm"

    def _train_weights(self):
        return self._torch_weights()

    def _keras_gradients(self, dw_ih, dw_hh, db_ih, db_hh):
        out = [(self.kernel, dw_ih.T), (self.recurrent_kernel, dw_hh.T)]
        return out + ([] if self.bias is None else [(self.bias, db_ih)])

    def _loop(self, x):
        n, steps, _ = x.shape
        u = self.units
        xp = self._projection(x)
        h = np.zeros((n, u), np.float32)
        c = np.zeros((n, u), np.float32)
        ys = np.empty((n, steps, u), np.float32)
        rk = self.recurrent_kernel.value
        act, rec = self.activation, self.recurrent_activation
        for t in range(steps):
            z = xp[:, t] + h @ rk
            i, f = rec(z[:, :u]), rec(z[:, u:2 * u])
            g, o = act(z[:, 2 * u:3 * u]), rec(z[:, 3 * u:])
            c = f * c + i * g
            h = (o * act(c)).astype(np.float32)
            ys[:, t] = h
        return ys, [h, c.astype(np.float32)]

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


class GRU(_RNN):
    """Gated recurrent unit: gates z, r, h (Keras' order). reset_after=True (Keras 3's
    default, PyTorch's form) applies the reset gate after the recurrent product and keeps
    two biases (bias [2, 3 * units]: input, recurrent)."""
    gates = 3

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = v.flag(reset_after, "reset_after")

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _standard(self):
        return self.reset_after and super()._standard()

    def _torch_weights(self):
        """Keras' z, r, h as PyTorch's r, z, n."""
        def reorder(a):
            z, r, h = np.split(a, 3, axis=0)
            return np.concatenate([r, z, h], axis=0)
        b = self.bias.value if self.bias is not None else None
        return (reorder(self.kernel.value.T), reorder(self.recurrent_kernel.value.T),
                None if b is None else reorder(b[0]), None if b is None else reorder(b[1]))

    def _new_plan(self):
        return ops.GRUPlan(*self._torch_weights(), batch_first=True)

    @staticmethod
    def _swap_zr(a):
        """Keras' gate blocks z, r, h <-> PyTorch's r, z, n along axis 0 (its own inverse)."""
        z, r, h = np.split(a, 3, axis=0)
        return np.concatenate([r, z, h], axis=0)

    def _train_kind(self):
        return "gru" if self.reset_after else "gru_reset_before"

    def _train_weights(self):
        if self.reset_after:
            return self._torch_weights()
        b = None if self.bias is None else self._swap_zr(self.bias.value)
        return (self._swap_zr(self.kernel.value.T), self._swap_zr(self.recurrent_kernel.value.T),
                b, None)

    def _keras_gradients(self, dw_ih, dw_hh, db_ih, db_hh):
        swap = self._swap_zr
        out = [(self.kernel, swap(dw_ih).T), (self.recurrent_kernel, swap(dw_hh).T)]
        if self.bias is None:
            return out
        if self.reset_after:  # bias [2, 3 * units]: input, recurrent
            return out + [(self.bias, np.stack([swap(db_ih), swap(db_hh)]))]
        return out + [(self.bias, swap(db_ih))]

    def _input_bias(self):
        if self.bias is None:
            return None
        return self.bias.value[0] if self.reset_after else self.bias.value

    def _loop(self, x):
        n, steps, _ = x.shape
        u = self.units
        xp = self._projection(x)
        h = np.zeros((n, u), np.float32)
        ys = np.empty((n, steps, u), np.float32)
        rk = self.recurrent_kernel.value
        rec_bias = (self.bias.value[1] if self.reset_after and self.bias is not None
                    else np.zeros(3 * u, np.float32))
        act, rec = self.activation, self.recurrent_activation
        for t in range(steps):
            xz, xr, xh = xp[:, t, :u], xp[:, t, u:2 * u], xp[:, t, 2 * u:]
            if self.reset_after:
                hr = h @ rk + rec_bias
                z, r = rec(xz + hr[:, :u]), rec(xr + hr[:, u:2 * u])
                hh = act(xh + r * hr[:, 2 * u:])
            else:
                z = rec(xz + h @ rk[:, :u])
                r = rec(xr + h @ rk[:, u:2 * u])
                hh = act(xh + (r * h) @ rk[:, 2 * u:])
            h = (z * h + (1 - z) * hh).astype(np.float32)
            ys[:, t] = h
        return ys, [h]

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}


class SimpleRNN(_RNN):
    """h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)."""
    gates = 1

    def __init__(self, units, activation="tanh", **kwargs):
        if "recurrent_activation" in kwargs:
            raise TypeError("SimpleRNN: unexpected argument recurrent_activation")
        super().__init__(units, activation=activation, **kwargs)

    def _standard(self):
        return False

    def _check_trainable_config(self, training):
        if self.activation.name not in ("tanh", "relu"):
            self._refuse_training(f"activation={self.activation.name!r} (tanh and relu "
                                  f"train)")

    def _train_kind(self):
        return "rnn_" + self.activation.name

    def _train_weights(self):
        bias = None if self.bias is None else self.bias.value
        return (self.kernel.value.T, self.recurrent_kernel.value.T, bias, None)

    def _keras_gradients(self, dw_ih, dw_hh, db_ih, db_hh):
        out = [(self.kernel, dw_ih.T), (self.recurrent_kernel, dw_hh.T)]
        return out + ([] if self.bias is None else [(self.bias, db_ih)])

    def _loop(self, x):
        n, steps, _ = x.shape
        xp = self._projection(x)
        h = np.zeros((n, self.units), np.float32)
        ys = np.empty((n, steps, self.units), np.float32)
        rk = self.recurrent_kernel.value
        for t in range(steps):
            h = self.activation(xp[:, t] + h @ rk)
            ys[:, t] = h
        return ys, [h]

    def get_config(self):
        config = super().get_config()
        config.pop("recurrent_activation")
        return config
