"""Sequential: a stack of layers, each feeding the next (Keras 3's names and behaviour).

A model runs its layers on internal arrays (fastdl/layers/layout.py): feature maps stay
channels-first from one spatial layer to the next and convert to Keras' layout only where
a layer needs it and at the output.
"""
import sys
import time

import numpy as np

from fastdl import _validate as v
from fastdl.layers import layout as L
from fastdl.layers.base import Layer, snake_case, unique_name
from fastdl.layers.core import InputLayer, SymbolicTensor
from fastdl.models import summary as _summary


class Sequential:
    """Sequential(layers=None, name=None): layers in order; the input shape comes from an
    Input(...) first, from input_shape= on the first layer, or from the first call."""

    def __init__(self, layers=None, name=None, trainable=True):
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"name: expected a non-empty str, got {name!r}")
        self.name = name or unique_name(snake_case(type(self).__name__))
        self.trainable = v.flag(trainable, "trainable")
        self._input = None   # the InputLayer, once the input shape is known
        self._layers = []
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------------ structure

    def add(self, layer):
        """Appends a layer (or sets the input, given Input(...) or an InputLayer)."""
        if isinstance(layer, SymbolicTensor):
            layer = layer.layer
        if isinstance(layer, InputLayer):
            if self._layers or self._input is not None:
                raise ValueError("layer: an Input can only come first in a Sequential model")
            self._input = layer
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"layer: expected a fastdl layer, got {type(layer).__name__}")
        if any(layer is other for other in self._layers):
            raise ValueError(f"layer: {layer.name} is already in the model")
        if not self._layers and self._input is None and layer._input_shape_arg is not None:
            self._input = InputLayer(shape=layer._input_shape_arg)
        self._layers.append(layer)
        if self._input is not None:
            self._build_layers()

    def pop(self):
        """Removes and returns the last layer."""
        if not self._layers:
            raise IndexError("pop: the model has no layers")
        return self._layers.pop()

    @property
    def layers(self):
        """The layers in order (not the input)."""
        return list(self._layers)

    def get_layer(self, name=None, index=None):
        if (name is None) == (index is None):
            raise ValueError("get_layer: give exactly one of name and index")
        if index is not None:
            index = v.integer(index, "index")
            if not -len(self._layers) <= index < len(self._layers):
                raise ValueError(f"index: expected an index below {len(self._layers)}, got "
                                 f"{index}")
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(f"name: no layer named {name!r}; the layers are "
                         f"{', '.join(l.name for l in self._layers)}")

    @property
    def built(self):
        return self._input is not None and all(layer.built for layer in self._layers)

    @property
    def input_shape(self):
        return None if self._input is None else self._input.output_shape

    @property
    def output_shape(self):
        return self._layers[-1].output_shape if self._layers and self.built else None

    def build(self, input_shape=None):
        """Builds every layer for inputs of `input_shape` (with the batch axis, None for any
        batch), or for the input the model already knows."""
        if input_shape is not None:
            shape = tuple(input_shape)
            self._input = InputLayer(shape=shape[1:], batch_size=shape[0])
        if self._input is None:
            raise ValueError(f"{self.name}: the input shape is unknown: start with "
                             f"Input(shape), give input_shape= to the first layer, or call "
                             f"build(input_shape)")
        self._build_layers()

    def _build_layers(self):
        shape = self._input.output_shape
        for layer in self._layers:
            shape = layer._build_for(shape)
        return shape

    # ------------------------------------------------------------------ weights

    @property
    def weights(self):
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable_weights(self):
        return [w for w in self.weights if self.trainable and
                any(w is t for layer in self._layers for t in layer.trainable_weights)]

    @property
    def non_trainable_weights(self):
        trainable = self.trainable_weights
        return [w for w in self.weights if not any(w is t for t in trainable)]

    def get_weights(self):
        return [a for layer in self._layers for a in layer.get_weights()]

    def set_weights(self, weights):
        """Every layer's weights, in Keras order; checked whole before any is taken."""
        weights = list(weights)
        want = sum(len(layer.weights) for layer in self._layers)
        if len(weights) != want:
            raise ValueError(f"weights: {self.name} has {want} weight arrays, got "
                             f"{len(weights)}")
        checked, i = [], 0
        for layer in self._layers:
            n = len(layer.weights)
            checked.append((layer, layer._checked_weights(weights[i:i + n])))
            i += n
        for layer, arrays in checked:
            for w, a in zip(layer.weights, arrays):
                w.value = a
            layer._weights_changed()

    def count_params(self):
        return sum(layer.count_params() for layer in self._layers)

    # ------------------------------------------------------------------ running

    def _run(self, x):
        x, layout = x, L.KERAS
        for layer in self._layers:
            x, layout = layer._forward(x, layout)
        return L.to_keras(x, layout)

    def _prepare(self, x):
        x = v.float32_array(x, "x")
        if x.ndim == 0:
            raise ValueError(f"x: expected a batch of inputs, got a scalar")
        if self._input is None:
            self.build((None,) + x.shape[1:])
        first = self._layers[0] if self._layers else self._input
        expected = self._input.output_shape
        if len(x.shape) != len(expected) or any(
                e is not None and e != s for e, s in zip(expected[1:], x.shape[1:])):
            raise ValueError(f"{first.name} ({type(first).__name__}): expected input shape "
                             f"{expected}, got {x.shape}")
        self._build_layers()
        return x

    def __call__(self, x, training=False):
        """The model on one batch x (any real dtype, converted to float32)."""
        return self._run(self._prepare(x))

    def predict(self, x, batch_size=32, verbose="auto"):
        """Outputs for x, computed `batch_size` samples at a time; verbose 1 (or 'auto')
        shows a progress bar, 2 one line at the end, 0 nothing."""
        x = self._prepare(x)
        batch_size = v.integer(batch_size, "batch_size", 1)
        if verbose not in (0, 1, 2, "auto"):
            raise ValueError(f"verbose: expected 0, 1, 2 or 'auto', got {verbose!r}")
        n = x.shape[0]
        steps = max(1, -(-n // batch_size))
        bar = _ProgressBar(steps, verbose)
        outputs = []
        for step in range(steps):
            outputs.append(self._run(x[step * batch_size:(step + 1) * batch_size]))
            bar.update(step + 1)
        if n == 0:
            return self._run(x)
        return np.concatenate(outputs) if len(outputs) > 1 else outputs[0]

    # ------------------------------------------------------------------ describing

    def summary(self, line_length=None, positions=None, print_fn=None):
        """Prints the Keras 3 summary table (to print_fn, a function of one string, if
        given)."""
        rows = []
        for layer in self._layers:
            shape = "?" if not layer.built else _format_shape(layer.output_shape)
            params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
            rows.append([f"{layer.name} ({type(layer).__name__})", shape, params])
        counts = (sum(w.value.size for w in self.trainable_weights),
                  sum(w.value.size for w in self.non_trainable_weights))
        text = _summary.render(self.name, ["Layer (type)", "Output Shape", "Param #"], rows,
                               {2}, counts, line_length, positions)
        (print_fn or print)(text)

    def get_config(self):
        layers = [{"class_name": type(l).__name__, "config": l.get_config()}
                  for l in ([self._input] if self._input is not None else []) + self._layers]
        return {"name": self.name, "trainable": self.trainable, "layers": layers}

    @classmethod
    def from_config(cls, config):
        from fastdl import layers as layer_module
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for entry in config["layers"]:
            model.add(layer_module.get(entry["class_name"]).from_config(entry["config"]))
        return model

    def __repr__(self):
        return f"<Sequential name={self.name}, {len(self._layers)} layers>"


def _format_shape(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")"


class _ProgressBar:
    """Keras' one-line progress bar: 'step/steps ━━━━━━━━━━━━━━━━━━━━ 0s 2ms/step'."""

    def __init__(self, steps, verbose):
        self.steps, self.verbose, self.start = steps, verbose, time.monotonic()

    def update(self, step):
        if self.verbose == 0 or (self.verbose == 2 and step < self.steps):
            return
        elapsed = time.monotonic() - self.start
        width = 20
        done = width * step // self.steps
        bar = "━" * done + ("━" if done < width else "") + " " * max(0, width - done - 1)
        per_step = elapsed / step
        line = (f"{step}/{self.steps} {bar[:width]} {elapsed:.0f}s "
                f"{per_step * 1000:.0f}ms/step")
        end = "\n" if step == self.steps else ""
        sys.stdout.write(("\r" if self.verbose != 2 else "") + line + end)
        sys.stdout.flush()
