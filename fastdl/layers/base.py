"""The Layer base class: Keras 3's names, arguments, weights and configs over fastdl's plans.

A layer has two faces. The Keras face: `layer(x)` on NumPy arrays of Keras shapes
(channels_last by default), `build(input_shape)`, `compute_output_shape`, `weights` /
`get_weights` / `set_weights` in Keras order and shapes, `get_config` / `from_config`. The
model face: `_forward(x, layout)` on the model's internal arrays (fastdl/layers/layout.py):
spatial layers compute channels-first on the kernels' NC[D][H]W plans, so a model converts
layouts only where a layer needs the Keras one (and at its outputs).

Layers keep their plans (packed weights) in `self._plans`, built on first use for a given
input layout and size; `set_weights` gives every plan the new weights (repacked in place).
"""
import collections
import re

import numpy as np

from fastdl import _validate as v
from fastdl import initializers, regularizers
from fastdl.layers import layout as L
from fastdl.layers.node import Node, SymbolicTensor, flatten, is_symbolic

_name_counts = collections.Counter()

# How many times any layer's weights changed in this process (Layer._weights_changed): a
# model's traced calls (models/inference.py) stay valid while it stands still.
weights_epoch = 0


def reset_names():
    """Automatic names start again (fastdl.utils.clear_session)."""
    _name_counts.clear()


def unique_name(prefix):
    """'dense', then 'dense_1', 'dense_2', ... as Keras names layers and models."""
    count = _name_counts[prefix]
    _name_counts[prefix] += 1
    return prefix if count == 0 else f"{prefix}_{count}"


def snake_case(name):
    """'MaxPooling2D' -> 'max_pooling2d', as Keras derives default names."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


class Weight:
    """One weight of a layer: a float32 array with a name, whether training updates it and
    its regularizer (None, or a fastdl.regularizers.Regularizer whose penalty joins the
    training loss)."""

    def __init__(self, name, value, trainable, regularizer=None):
        self.name, self.value, self.trainable = name, value, trainable
        self.regularizer = regularizer

    @property
    def shape(self):
        return self.value.shape

    def numpy(self):
        return self.value.copy()

    def __repr__(self):
        return f"<Weight {self.name} shape={self.shape} trainable={self.trainable}>"


class Gradients:
    """Weight gradients of one training step, summed over every use of a weight (a shared
    layer): add(weight, g), get(weight) (None if it got none)."""

    def __init__(self):
        self._sums = {}

    def add(self, weight, g):
        entry = self._sums.get(id(weight))
        g = np.asarray(g, np.float32)
        self._sums[id(weight)] = (weight, g if entry is None else entry[1] + g)

    def get(self, weight):
        entry = self._sums.get(id(weight))
        return None if entry is None else entry[1]


class TrainsOnMaps:
    """Mixed into layers whose training passes take the model's internal layouts
    (layout.py), so that backprop.py keeps feature maps channels-first between them:

        _train_forward_maps(x, layout, training, logits=False) -> (y, y_layout, cache)
        _backward_maps(dy, cache, grads, needs_input_grad=True) -> dx

    dy arrives in y_layout and dx leaves in the layout x came in (lists of both for
    several inputs). _train_forward / _backward here are the Keras-layout faces other
    callers (TimeDistributed) use.

    The ReLU hand-over (backprop.relu_handovers): a layer whose output is relu(z) and that
    says so with `_hands_over_relu()` takes relu_gated=True in _train_forward_maps, and its
    dy is then the gradient for z already; the one layer reading that output, if
    `_takes_relu_gate` (max pooling), takes relu_gate=True and applies ReLU's gradient
    within its own (relu(max) = max(relu): the gate is where the pooled maximum is > 0)."""

    _takes_relu_gate = False

    def _hands_over_relu(self):
        return False

    def _train_forward(self, x, training, logits=False):
        y, y_layout, cache = self._train_forward_maps(x, _keras_layouts(x), training,
                                                      logits=logits)
        return L.to_keras(y, y_layout), (cache, y_layout)

    def _backward(self, dy, cache, grads, needs_input_grad=True):
        inner, y_layout = cache
        return self._backward_maps(L.convert(dy, L.KERAS, y_layout), inner, grads,
                                   needs_input_grad=needs_input_grad)


def _keras_layouts(x):
    return [L.KERAS] * len(x) if isinstance(x, list) else L.KERAS


class Layer:
    """Base of every fastdl layer. Subclasses define `build`, `compute_output_shape`,
    `_forward` and `get_config` (its constructor arguments)."""

    def __init__(self, name=None, trainable=True, dtype=None, input_shape=None,
                 activity_regularizer=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected argument(s) "
                            f"{', '.join(sorted(kwargs))}")
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"name: expected a non-empty str, got {name!r}")
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"dtype: fastdl computes in float32, got {dtype!r}")
        self.name = name or unique_name(snake_case(type(self).__name__))
        self.trainable = v.flag(trainable, "trainable")
        # Keras: a penalty on the layer's output, divided by the batch size, added to the
        # loss while training and evaluating (fastdl/models/backprop.py).
        self.activity_regularizer = regularizers.check(activity_regularizer,
                                                       "activity_regularizer")
        self._activity_losses = []
        self.built = False
        self._weights = []
        self._plans = {}
        self._inbound_nodes = []  # this layer's calls in functional graphs (node.py)
        self._input_shape_arg = None if input_shape is None else _shape_arg(input_shape)
        self.input_shape = None   # the Keras shape it was built for (batch None)
        self.output_shape = None

    # ------------------------------------------------------------------ weights

    def add_weight(self, name, shape, initializer, trainable=True, regularizer=None):
        value = initializers.initialize(initializer, shape)
        weight = Weight(f"{self.name}/{name}", value, trainable, regularizer)
        self._weights.append(weight)
        return weight

    @property
    def losses(self):
        """Keras' layer.losses: the activity penalties of the last training or evaluation
        pass, then the current penalties of the regularized trainable weights (float32
        scalars). fit adds their sum to the compiled loss."""
        return self._activity_penalties() + [w.regularizer(w.value) for w in
                                             self.trainable_weights
                                             if getattr(w, "regularizer", None) is not None]

    def _activity_penalties(self):
        """This layer's activity penalties (a model: its layers')."""
        return list(getattr(self, "_activity_losses", ()))

    def _sublayers(self):
        """[(attribute name, layer)] of the layers this one holds (a wrapper's inner
        layers), whose weights follow its own; the name is Keras' path in weights files."""
        return []

    @property
    def weights(self):
        """Every weight, in Keras order (the order of get_weights): its own, then its
        sublayers'."""
        return list(self._weights) + [w for _, sub in self._sublayers() for w in sub.weights]

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        return [w for w in self._weights if w.trainable] + [
            w for _, sub in self._sublayers() for w in sub.trainable_weights]

    @property
    def non_trainable_weights(self):
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    def get_weights(self):
        """Copies of the weights as NumPy arrays, in Keras order and shapes."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights):
        """New values for every weight, in Keras order and shapes; all are checked before
        any is taken (a refused call changes nothing)."""
        arrays = self._checked_weights(weights)
        for w, a in zip(self.weights, arrays):
            w.value = a
        self._weights_changed()

    def _weight_list(self, weights):
        """`weights` as a list (TypeError naming the layer if it is not a sequence)."""
        try:
            return list(weights)
        except TypeError:
            raise TypeError(f"weights: {self.name} expected a list of arrays, got "
                            f"{type(weights).__name__}") from None

    def _checked_weights(self, weights):
        weights = self._weight_list(weights)
        every = self.weights
        if len(weights) != len(every):
            raise ValueError(f"weights: {self.name} expected {len(every)} weight arrays "
                             f"({', '.join(w.name for w in every) or 'none'}), got "
                             f"{len(weights)}")
        out = []
        for w, a in zip(self._weights, weights):
            a = v.owned_float32(a, f"weights: {w.name}", None, None)
            if a.shape != w.shape:
                raise ValueError(f"weights: {self.name} weight {w.name} expected shape "
                                 f"{w.shape}, "
                                 f"got {a.shape}")
            out.append(a)
        i = len(self._weights)
        for _, sub in self._sublayers():
            n = len(sub.weights)
            out += sub._checked_weights(weights[i:i + n])
            i += n
        return out

    def _weights_changed(self):
        """Gives the plans built so far the new weights (each repacks in place) and counts
        the change (`_version`: what a model's fused steps compare against); the same for
        the sublayers."""
        global weights_epoch
        weights_epoch += 1
        self._version = getattr(self, "_version", 0) + 1
        for _, sub in self._sublayers():
            sub._weights_changed()
        for key, plan in self._plans.items():
            self._update_plan(key, plan)

    def _update_plan(self, key, plan):
        """Subclasses with plans: plan.set_weights(...) from the current weights."""
        raise NotImplementedError

    def _keras_weight_paths(self):
        """Where Keras' weights files keep each weight of `weights` (same order), relative
        to the layer's group: its own variables under 'vars/<i>', numbered trainable first
        as Keras creates them, then each sublayer's under its attribute name."""
        own = ([w for w in self._weights if w.trainable] +
               [w for w in self._weights if not w.trainable])
        number = {id(w): i for i, w in enumerate(own)}
        return [f"vars/{number[id(w)]}" for w in self._weights] + [
            f"{attr}/{path}" for attr, sub in self._sublayers()
            for path in sub._keras_weight_paths()]

    def count_params(self):
        if not self.built:
            raise ValueError(f"{self.name}: count_params needs a built layer (call it on an "
                             f"input or build it first)")
        return int(sum(w.value.size for w in self.weights))

    # ------------------------------------------------------------------ building

    def build(self, input_shape):
        """Creates the weights for inputs of `input_shape` (Keras shape, batch None)."""
        self.built = True

    def _build_for(self, input_shape):
        """Builds once for `input_shape` (a tuple, or a list of tuples for several inputs);
        later calls check theirs (check_input) and return the output shape for it."""
        input_shape = ([tuple(s) for s in input_shape] if isinstance(input_shape, list)
                       else tuple(input_shape))
        if not self.built:
            self.check_input(input_shape, first=True)
            self.build(input_shape)
            self.built = True
            self.input_shape = input_shape
            self.output_shape = self.compute_output_shape(input_shape)
        else:
            self.check_input(input_shape)
        return self.compute_output_shape(input_shape)

    def check_input(self, input_shape, first=False):
        """ValueError naming the layer and both shapes unless it can take `input_shape`:
        by default the rank it was built for (subclasses: the axes their weights fix)."""
        if not first and len(input_shape) != len(self.input_shape):
            self._refuse(input_shape)

    def _refuse(self, input_shape, expected=None):
        raise ValueError(f"{self.name} ({self.class_name}): expected input shape "
                         f"{expected or self.input_shape}, got {tuple(input_shape)}")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    # ------------------------------------------------------------------ running

    def __call__(self, x, training=False):
        """The layer on a NumPy array of its Keras input shape (with the batch axis), or on
        a list of them for a layer of several inputs; any real dtype is converted to
        float32. A layer of several outputs returns a list.

        On SymbolicTensors (the functional API) it records the call in the graph and
        returns the output SymbolicTensor(s)."""
        if is_symbolic(x):
            return self._call_symbolic(x)
        if isinstance(x, (list, tuple)):
            x = [self._input_array(item, f"x[{i}]") for i, item in enumerate(x)]
            self._build_for([(None,) + item.shape[1:] for item in x])
            y, y_layout = self._forward(x, [L.KERAS] * len(x))
        else:
            x = self._input_array(x, "x")
            self._build_for((None,) + x.shape[1:])
            y, y_layout = self._forward(x, L.KERAS)
        if isinstance(y, list):
            return [L.to_keras(item, lay) for item, lay in zip(y, y_layout)]
        return L.to_keras(y, y_layout)

    def _input_array(self, x, name):
        """An input given to __call__ as the array _forward takes: float32 (layers taking
        integers override it)."""
        return v.float32_array(x, name)

    def _call_symbolic(self, x):
        if isinstance(x, (list, tuple)):
            if not all(isinstance(t, SymbolicTensor) for t in flatten(x)):
                raise TypeError(f"{self.name}: inputs mix SymbolicTensors with other "
                                f"values; call a layer on tensors from Input(...) and "
                                f"layer calls only")
            inputs = list(x)
            shapes = [t.shape for t in inputs]
        else:
            inputs, shapes = x, x.shape
        return Node(self, inputs, self._build_for(shapes)).outputs

    def _forward(self, x, layout):
        """(y, y_layout) from the model-internal array x in `layout` (layout.py).

        Several inputs (merge layers; shapes given as a list to build): x and layout are
        lists. Several outputs (compute_output_shape returns a list of shapes): y and
        y_layout are lists."""
        raise NotImplementedError

    # ------------------------------------------------------------------ training
    #
    # A layer trains on Keras-layout arrays: _train_forward(x, training) -> (y, cache)
    # computes its output and keeps what its gradient needs; _backward(dy, cache, grads)
    # -> dx returns the gradient for its input(s) and adds each weight's gradient to
    # `grads` (a Gradients). Layers without them refuse training, naming themselves.
    # _update_state(cache) runs after the step's weight update, inside the same
    # uninterruptible block: a layer with state that training moves (BatchNormalization's
    # moving statistics) applies it there from its cache.

    def _train_forward(self, x, training):
        raise NotImplementedError(f"{self.name} ({self.class_name}): training through "
                                  f"{self.class_name} layers is not supported yet")

    def _backward(self, dy, cache, grads):
        raise NotImplementedError(f"{self.name} ({self.class_name}): training through "
                                  f"{self.class_name} layers is not supported yet")

    def _update_state(self, cache):
        """Applies the non-trainable state one training forward computed (its `cache`);
        True if any weight changed (the caller then calls _weights_changed)."""
        return False

    # ------------------------------------------------------------------ configs

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        if self._input_shape_arg is not None:
            config["input_shape"] = self._input_shape_arg
        if getattr(self, "activity_regularizer", None) is not None:
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # ------------------------------------------------------------------ pickling

    def __getstate__(self):
        """Everything but the plans (rebuilt on first use) and the functional-graph records
        (a model pickles its graph as data and rebuilds it)."""
        state = dict(self.__dict__)
        state["_plans"] = {}
        state["_inbound_nodes"] = []
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    @property
    def class_name(self):
        """The class name configs and summaries give (Keras')."""
        return type(self).__name__

    def __repr__(self):
        return f"<{self.class_name} name={self.name}>"


def _shape_arg(shape):
    """input_shape=... as a tuple of ints or None (Keras: without the batch axis)."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        items = tuple(shape)
    except TypeError:
        raise TypeError(f"input_shape: expected a tuple of ints, got {shape!r}") from None
    out = []
    for item in items:
        if item is None:
            out.append(None)
        else:
            out.append(v.integer(item, "input_shape", minimum=1))
    return tuple(out)
