"""Wrappers: Bidirectional (a recurrent layer run forwards and backwards) and
TimeDistributed (any layer -- a Conv2D, a whole model -- applied to every time step).
Their inner layers' weights are theirs, in Keras' order and weights-file paths."""
import numpy as np

from fastdl.layers import layout as L
from fastdl.layers.base import Layer


def _layer_arg(layer, name):
    """A layer, or a {'class_name', 'config'} dict (a config) made into one; TypeError or
    ValueError naming the argument for anything else or a config that makes no layer."""
    if isinstance(layer, dict):
        from fastdl import layers as layer_module
        class_name, config = layer.get("class_name"), layer.get("config")
        if not isinstance(class_name, str) or not isinstance(config, dict):
            raise TypeError(f"{name}: expected a layer config {{'class_name': str, "
                            f"'config': dict}}, got {layer!r}"[:500])
        try:
            layer = layer_module.get(class_name).from_config(config)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            # (a damaged config may miss a key: that is a ValueError about this argument)
            raise (TypeError if isinstance(exc, TypeError) else ValueError)(
                f"{name}: the {class_name} config makes no layer: {exc!s}"[:1000]) from None
    if not isinstance(layer, Layer):
        raise TypeError(f"{name}: expected a fastdl layer, got {type(layer).__name__}")
    if type(layer) is Layer:
        raise TypeError(f"{name}: expected a layer that computes something, got the base "
                        f"class Layer")
    return layer


def _nested_config(layer):
    return {"class_name": layer.class_name, "config": layer.get_config()}


class Bidirectional(Layer):
    """`layer` (LSTM, GRU, SimpleRNN) forwards and a copy (or backward_layer) backwards;
    the outputs merged by merge_mode 'concat' (default), 'sum', 'mul', 'ave' or None (a
    list of both). The backward sequence is put back in time order before merging."""

    _MODES = ("concat", "sum", "mul", "ave", None)

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None,
                 **kwargs):
        from fastdl.layers.recurrent import _RNN
        layer = _layer_arg(layer, "layer")
        if not isinstance(layer, _RNN):
            raise TypeError(f"layer: expected a recurrent layer (LSTM, GRU, SimpleRNN), got "
                            f"{layer.class_name}")
        if not (merge_mode is None or isinstance(merge_mode, str)) or \
                merge_mode not in self._MODES:
            raise ValueError(f"merge_mode: expected one of {self._MODES}, got {merge_mode!r}")
        super().__init__(**kwargs)
        config = layer.get_config()
        config["name"] = f"forward_{layer.name}"
        self.forward_layer = type(layer).from_config(config)
        if backward_layer is None:
            config = layer.get_config()
            config.update(name=f"backward_{layer.name}", go_backwards=not layer.go_backwards)
            self.backward_layer = type(layer).from_config(config)
        else:
            self.backward_layer = _layer_arg(backward_layer, "backward_layer")
            if not isinstance(self.backward_layer, _RNN):
                raise TypeError(f"backward_layer: expected a recurrent layer (LSTM, GRU, "
                                f"SimpleRNN), got {self.backward_layer.class_name}")
            if self.backward_layer.go_backwards == self.forward_layer.go_backwards:
                raise ValueError("backward_layer: its go_backwards must be the opposite of "
                                 "layer's")
            for attr in ("return_sequences", "return_state"):
                if getattr(self.backward_layer, attr) != getattr(self.forward_layer, attr):
                    raise ValueError(f"backward_layer: its {attr} must match layer's")
            if merge_mode not in ("concat", None) and \
                    self.backward_layer.units != self.forward_layer.units:
                raise ValueError(f"backward_layer: merge_mode {merge_mode!r} needs its units "
                                 f"({self.backward_layer.units}) to match layer's "
                                 f"({self.forward_layer.units})")
        self.merge_mode = merge_mode
        self._initial = weights

    def _sublayers(self):
        return [("forward_layer", self.forward_layer),
                ("backward_layer", self.backward_layer)]

    def check_input(self, input_shape, first=False):
        try:
            self.forward_layer.check_input(input_shape, first)
        except ValueError as exc:  # named after this layer: the user never named the copy
            raise ValueError(f"{self.name} (Bidirectional): {exc}") from None

    def build(self, input_shape):
        self.forward_layer._build_for(input_shape)
        self.backward_layer._build_for(input_shape)
        if self._initial is not None:
            self.set_weights(self._initial)
            self._initial = None

    def compute_output_shape(self, input_shape):
        fw = self.forward_layer.compute_output_shape(input_shape)
        bw = self.backward_layer.compute_output_shape(input_shape)
        out_f, out_b = (fw[0], bw[0]) if isinstance(fw, list) else (fw, bw)
        if self.merge_mode == "concat":
            out = [tuple(out_f[:-1]) + (out_f[-1] + out_b[-1],)]
        elif self.merge_mode is None:
            out = [tuple(out_f), tuple(out_b)]
        else:
            out = [tuple(out_f)]
        if isinstance(fw, list):
            return out + list(fw[1:]) + list(bw[1:])
        return out if len(out) > 1 else out[0]

    def _forward(self, x, layout):
        x = L.to_keras(x, layout)
        fw, _ = self.forward_layer._forward(x, L.KERAS)
        bw, _ = self.backward_layer._forward(x, L.KERAS)
        out = self._merge(fw, bw)
        if len(out) == 1:
            return out[0], L.KERAS
        return out, [L.KERAS] * len(out)

    def _merge(self, fw, bw):
        """The outputs (a list) from both layers' outputs: the backward sequence put back
        in time order, merged by merge_mode, then the states."""
        states = []
        if isinstance(fw, list):
            fw, bw, states = fw[0], bw[0], fw[1:] + bw[1:]
        if self.forward_layer.return_sequences:
            bw = np.ascontiguousarray(bw[:, ::-1])
        if self.merge_mode == "concat":
            out = [np.concatenate([fw, bw], axis=-1)]
        elif self.merge_mode == "sum":
            out = [fw + bw]
        elif self.merge_mode == "mul":
            out = [fw * bw]
        elif self.merge_mode == "ave":
            out = [(fw + bw) * np.float32(0.5)]
        else:
            out = [fw, bw]
        return out + states

    def _train_forward(self, x, training):
        fw, f_cache = self.forward_layer._train_forward(x, training)
        bw, b_cache = self.backward_layer._train_forward(x, training)
        out = self._merge(fw, bw)
        f_out, b_out = (fw[0], bw[0]) if isinstance(fw, list) else (fw, bw)
        if self.forward_layer.return_sequences:
            b_out = b_out[:, ::-1]
        f_states = len(fw) - 1 if isinstance(fw, list) else 0
        cache = (f_cache, b_cache, f_out, b_out, f_states)
        return (out[0] if len(out) == 1 else out), cache

    def _backward(self, dy, cache, grads):
        f_cache, b_cache, f_out, b_out, f_states = cache
        dys = dy if isinstance(dy, list) else [dy]
        if self.merge_mode is None:
            d_fw, d_bw, rest = dys[0], dys[1], dys[2:]
        else:
            d, rest = dys[0], dys[1:]
            if self.merge_mode == "concat":
                split = f_out.shape[-1]
                d_fw, d_bw = d[..., :split], d[..., split:]
            elif self.merge_mode == "sum":
                d_fw = d_bw = d
            elif self.merge_mode == "ave":
                d_fw = d_bw = d * np.float32(0.5)
            else:  # mul
                d_fw, d_bw = d * b_out, d * f_out
        if self.forward_layer.return_sequences:
            d_bw = d_bw[:, ::-1]
        d_fw, d_bw = np.ascontiguousarray(d_fw), np.ascontiguousarray(d_bw)
        if f_states:
            d_fw, d_bw = [d_fw] + list(rest[:f_states]), [d_bw] + list(rest[f_states:])
        dx = self.forward_layer._backward(d_fw, f_cache, grads)
        return dx + self.backward_layer._backward(d_bw, b_cache, grads)

    def get_config(self):
        config = {**super().get_config(), "layer": _nested_config(self.forward_layer),
                  "merge_mode": self.merge_mode,
                  "backward_layer": _nested_config(self.backward_layer)}
        config["layer"]["config"]["name"] = self.forward_layer.name[len("forward_"):] \
            if self.forward_layer.name.startswith("forward_") else self.forward_layer.name
        return config


class TimeDistributed(Layer):
    """`layer` applied to every step of (N, steps, ...): one call on (N * steps, ...)."""

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        self.layer = _layer_arg(layer, "layer")

    def _sublayers(self):
        return [("layer", self.layer)]

    def check_input(self, input_shape, first=False):
        if isinstance(input_shape, list) or len(input_shape) < 3:
            self._refuse(input_shape, "a shape (None, steps, ...) of at least 3 axes")
        if not first:  # any number of steps; each step as the inner layer takes it
            self.layer.check_input((None,) + tuple(input_shape[2:]))

    def build(self, input_shape):
        self.layer._build_for((None,) + tuple(input_shape[2:]))

    def compute_output_shape(self, input_shape):
        inner = self.layer._build_for((None,) + tuple(input_shape[2:]))
        if isinstance(inner, list):
            raise ValueError(f"{self.name} (TimeDistributed): {self.layer.name} has several "
                             f"outputs")
        return (input_shape[0], input_shape[1]) + tuple(inner[1:])

    def _forward(self, x, layout):
        x = L.to_keras(x, layout)
        n, steps = x.shape[:2]
        y, y_layout = self.layer._forward(np.ascontiguousarray(
            x.reshape((n * steps,) + x.shape[2:])), L.KERAS)
        y = L.to_keras(y, y_layout)
        return y.reshape((n, steps) + y.shape[1:]), L.KERAS

    def _train_forward(self, x, training):
        n, steps = x.shape[:2]
        y, cache = self.layer._train_forward(
            np.ascontiguousarray(x.reshape((n * steps,) + x.shape[2:])), training)
        return y.reshape((n, steps) + y.shape[1:]), (cache, x.shape, y.shape)

    def _backward(self, dy, cache, grads):
        inner, x_shape, y_shape = cache
        dx = self.layer._backward(np.ascontiguousarray(dy).reshape(y_shape), inner, grads)
        return None if dx is None else dx.reshape(x_shape)

    def get_config(self):
        return {**super().get_config(), "layer": _nested_config(self.layer)}

