"""Sequential: a stack of layers, each feeding the next (Keras 3's names and behaviour) --
a Model (model.py) whose graph is a chain, so it runs, saves and nests like one.
"""
from fastdl import _validate as v
from fastdl.layers import layout as L
from fastdl.layers.base import Layer, unique_name
from fastdl.layers.core import InputLayer
from fastdl.layers.node import SymbolicTensor
from fastdl.models.graph import Program, Step
from fastdl.models.model import Model, config_layers, layer_shape_text, params_text


class Sequential(Model):
    """Sequential(layers=None, name=None): layers in order; the input shape comes from an
    Input(...) first, from input_shape= on the first layer, or from the first call."""

    def __init__(self, layers=None, name=None, trainable=True):
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"name: expected a non-empty str, got {name!r}")
        Layer.__init__(self, name=name or unique_name("sequential"), trainable=trainable)
        self._several_inputs = self._several_outputs = False
        self._input = None   # the InputLayer, once the input shape is known
        self._layers = []
        self._program = None
        for layer in layers or []:
            self.add(layer, rebuild=False)
        self._rebuilt()

    def _rebuilt(self):
        """Keras builds a Sequential that knows its input as an inner functional model
        each time its layers change, which takes the next automatic 'functional' name:
        taken here too, so automatic names come out as Keras gives them."""
        if self._input is not None and self._layers:
            unique_name("functional")

    # ------------------------------------------------------------------ structure

    def add(self, layer, rebuild=True):
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
        if layer is self or any(layer is other for other in self._layers):
            raise ValueError(f"layer: {layer.name} is already in the model")
        if not self._layers and self._input is None and layer._input_shape_arg is not None:
            self._input = InputLayer(shape=layer._input_shape_arg)
        self._layers.append(layer)
        self._program = None
        if self._input is not None:
            self._build_layers()
        if rebuild:
            self._rebuilt()

    def pop(self):
        """Removes and returns the last layer."""
        if not self._layers:
            raise IndexError("pop: the model has no layers")
        self._program = None
        layer = self._layers.pop()
        self._rebuilt()
        return layer

    @property
    def layers(self):
        """The layers in order (not the input)."""
        return list(self._layers)

    def _input_names(self):
        first = self._layers[0] if self._layers else self._input
        return [f"{first.name} ({first.class_name})"]

    def _input_shapes(self):
        return [self._input.output_shape]

    def _input_layers(self):
        return [self._input]

    @property
    def inputs(self):
        return [] if self._input is None else [self._input.output]

    def _output_names(self):
        return [self._layers[-1].name if self._layers else self.name]

    def _output_shapes(self):
        return [self.output_shape]

    @property
    def built(self):
        return self._input is not None and all(layer.built for layer in self._layers)

    @built.setter
    def built(self, value):  # Layer.__init__ and _build_for set it; derived here
        pass

    @property
    def input_shape(self):
        return None if self._input is None else self._input.output_shape

    @input_shape.setter
    def input_shape(self, value):
        pass

    @property
    def output_shape(self):
        return self._layers[-1].output_shape if self._layers and self.built else None

    @output_shape.setter
    def output_shape(self, value):
        pass

    def build(self, input_shape=None):
        """Builds every layer for inputs of `input_shape` (with the batch axis, None for any
        batch), or for the input the model already knows."""
        if input_shape is not None:
            shape = tuple(input_shape)
            self._input = InputLayer(shape=shape[1:], batch_size=shape[0])
            self._rebuilt()
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

    def _chain(self):
        """The Program of the chain: slot i feeds layer i."""
        if self._program is None:
            steps = [Step(layer, i, i + 1) for i, layer in enumerate(self._layers)]
            self._program = Program(steps, [0], [len(steps)], len(steps) + 1)
        return self._program

    # ------------------------------------------------------------------ running

    def check_input(self, input_shape, first=False):
        if isinstance(input_shape, list):
            raise ValueError(f"{self.name} (Sequential): expected one input, got "
                             f"{len(input_shape)}")
        if self._input is not None:  # else build(input_shape) comes next (Layer._build_for)
            super().check_input(input_shape, first)

    def compute_output_shape(self, input_shape):
        self._build_layers()
        return self._chain().output_shapes([input_shape])[0]

    def _current_program(self):
        return self._chain()

    def _forward(self, x, layout):
        ys, lays = self._executor().run([x], [layout])
        return ys[0], lays[0]

    def _prepare(self, x):
        if self._input is None:
            a = self._first_array(x)
            self.build((None,) + a.shape[1:])
        elif not self.built:
            self._build_layers()
        return super()._prepare(x)

    def _first_array(self, x):
        first = self._layers[0] if self._layers else None
        a = first._input_array(x, "x") if first is not None else v.float32_array(x, "x")
        if a.ndim == 0:
            raise ValueError("x: expected a batch of inputs, got a scalar")
        return a

    def _run(self, xs):
        ys, lays = self._executor().run(xs, [L.KERAS])
        return [L.to_keras(ys[0], lays[0])]

    def __getstate__(self):
        state = Layer.__getstate__(self)
        state["_program"] = state["_inference"] = None
        return state

    def __setstate__(self, state):
        Layer.__setstate__(self, state)

    # ------------------------------------------------------------------ describing

    def _summary_rows(self):
        rows = [[f"{layer.name} ({layer.class_name})",
                 layer_shape_text(layer) if layer.built else "?", params_text(layer)]
                for layer in self._layers]
        return ["Layer (type)", "Output Shape", "Param #"], rows

    def get_config(self):
        layers = [{"class_name": l.class_name, "config": l.get_config()}
                  for l in ([self._input] if self._input is not None else []) + self._layers]
        return {"name": self.name, "trainable": self.trainable, "layers": layers}

    @classmethod
    def from_config(cls, config):
        entries = config_layers(config)
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for layer, _ in entries:
            model.add(layer)
        return model
