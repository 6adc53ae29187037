"""Model: the functional API (Keras 3's `keras.Model(inputs, outputs)`) and what every
model shares -- Sequential is a Model whose graph is a chain.

A model is a Layer: it can be called on SymbolicTensors inside another model, wrapped in
TimeDistributed, or put in a Sequential. It runs as a Program (graph.py): its layers' steps
over model-internal arrays (fastdl/layers/layout.py), feature maps channels-first from one
spatial layer to the next, converted to Keras' layout only at the outputs.
"""
import numpy as np

from fastdl import _validate as v
from fastdl.layers import layout as L
from fastdl.layers.base import Layer, unique_name
from fastdl.layers.node import flatten, is_symbolic
from fastdl.models import summary as _summary
from fastdl.models.fitting import TrainingMixin
from fastdl.models.graph import Graph
from fastdl.models.inference import InferenceRunner
from fastdl.models.progress import ProgressBar


class Model(TrainingMixin, Layer):
    """Model(inputs, outputs, name=None, trainable=True): the layers between `inputs`
    (tensors from Input(...): one, or a list) and `outputs` (one tensor or a list; predict
    returns the same structure)."""

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True):
        if inputs is None or outputs is None:
            raise TypeError("Model: give inputs= and outputs= (fastdl builds functional "
                            "models; subclassing Model with call() is not supported)")
        super().__init__(name=name or unique_name("functional"), trainable=trainable)
        self._several_inputs = isinstance(inputs, (list, tuple))
        self._several_outputs = isinstance(outputs, (list, tuple))
        self._graph = Graph(inputs, outputs)
        self.inputs, self.outputs = list(self._graph.inputs), list(self._graph.outputs)
        self._program = self._graph.program()
        self.built = True
        self.input_shape = self._structure([t.shape for t in self.inputs], self._several_inputs)
        self.output_shape = self._structure([t.shape for t in self.outputs],
                                            self._several_outputs)

    @staticmethod
    def _structure(items, several):
        return list(items) if several else items[0]

    # ------------------------------------------------------------------ structure

    @property
    def layers(self):
        """The layers in Keras' order (functional models: the InputLayers too)."""
        return list(self._graph.layers)

    def get_layer(self, name=None, index=None):
        layers = self.layers
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name: expected a layer name (str), got {type(name).__name__}")
        if (name is None) == (index is None):
            raise ValueError(f"name, index: give exactly one of them, got name={name!r}, "
                             f"index={index!r}")
        if index is not None:
            index = v.integer(index, "index")
            if not -len(layers) <= index < len(layers):
                raise ValueError(f"index: expected an index below {len(layers)}, got {index}")
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"name: no layer named {name!r}; the layers are "
                         f"{', '.join(l.name for l in layers)}")

    def _input_names(self):
        """Per input, the name a shape error gives: the layer the input feeds."""
        return [f"{t.layer.name} ({type(t.layer).__name__})" for t in self.inputs]

    def _input_shapes(self):
        return [t.shape for t in self.inputs]

    def _input_layers(self):
        """The InputLayers, which convert what predict is given (float32, or integers)."""
        return [t.layer for t in self.inputs]

    # ------------------------------------------------------------------ weights

    @property
    def trainable(self):
        return self.__dict__.get("_trainable", True)

    @trainable.setter
    def trainable(self, value):
        """Setting it sets every layer's, as Keras 3 does: a frozen model's
        BatchNormalization layers then run in inference mode while an outer model trains,
        and unfreezing it unfreezes them all. (The constructor's value is the model's own.)"""
        self._trainable = v.flag(value, "trainable")
        if "_graph" in self.__dict__ or "_layers" in self.__dict__:
            for layer in self.layers:
                layer.trainable = self._trainable

    @property
    def weights(self):
        """Every weight, layer by layer in the order of `layers` (a shared one once)."""
        seen, out = set(), []
        for layer in self.layers:
            for w in layer.weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        trainable = {id(w) for layer in self.layers for w in layer.trainable_weights}
        return [w for w in self.weights if id(w) in trainable]

    @property
    def non_trainable_weights(self):
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    def _activity_penalties(self):
        """Every layer's activity penalties of the last pass, in the order of `layers`."""
        return [p for layer in self.layers for p in layer._activity_penalties()]

    def _checked_weights(self, weights):
        """Checks every layer's share of `weights` (Keras order) before any is taken."""
        weights = self._weight_list(weights)
        want = len(self.weights)
        if len(weights) != want:
            raise ValueError(f"weights: {self.name} expected {want} weight arrays, got "
                             f"{len(weights)}")
        checked, i, seen = [], 0, set()
        for layer in self.layers:
            fresh = [w for w in layer.weights if id(w) not in seen]
            if not fresh:
                continue
            if len(fresh) != len(layer.weights):
                raise ValueError(f"{self.name}: {layer.name} shares only some of its "
                                 f"weights with other layers; set them layer by layer")
            seen.update(id(w) for w in fresh)
            checked += layer._checked_weights(weights[i:i + len(fresh)])
            i += len(fresh)
        return checked

    def _weights_changed(self):
        for layer in self.layers:
            if layer.weights:
                layer._weights_changed()

    def _keras_weight_paths(self):
        """Keras' layout: each layer's group is layers/<its class in snake_case>, numbered
        _1, _2, ... among layers of one class (not the layer's name); a layer met again
        (shared) is stored once."""
        from fastdl.layers.base import snake_case
        used, seen, paths = {}, set(), []
        for layer in self.layers:
            key = snake_case(layer.class_name)
            used[key] = used.get(key, -1) + 1
            group = f"layers/{key}" + (f"_{used[key]}" if used[key] else "")
            for w, path in zip(layer.weights, layer._keras_weight_paths()):
                if id(w) not in seen:
                    seen.add(id(w))
                    paths.append(f"{group}/{path}")
        return paths

    def count_params(self):
        if not self.built:
            raise ValueError(f"{self.name}: count_params needs a built model (give it an "
                             f"input shape or call it first)")
        return int(sum(w.value.size for w in self.weights))

    # ------------------------------------------------------------------ as a layer

    def check_input(self, input_shape, first=False):
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        if len(shapes) != len(self.inputs):
            raise ValueError(f"{self.name} ({self.class_name}): expected "
                             f"{len(self.inputs)} input(s), got {len(shapes)}")
        for name, want, got in zip(self._input_names(), self._input_shapes(), shapes):
            if not _compatible(want, got):
                raise ValueError(f"{name}: expected input shape {want}, got {tuple(got)}")

    def compute_output_shape(self, input_shape):
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        return self._structure(self._program.output_shapes(shapes), self._several_outputs)

    def _current_program(self):
        return self._program

    def _executor(self):
        """The InferenceRunner of the current program (fastdl/models/inference.py), made
        on first use and again whenever the program changes."""
        program = self._current_program()
        runner = getattr(self, "_inference", None)
        if runner is None or runner.program is not program:
            runner = self._inference = InferenceRunner(program)
        return runner

    def _forward(self, x, layout):
        xs, lays = (x, layout) if isinstance(x, list) else ([x], [layout])
        ys, y_lays = self._executor().run(xs, lays)
        if self._several_outputs:
            return ys, y_lays
        return ys[0], y_lays[0]

    # ------------------------------------------------------------------ running

    def _prepare(self, x):
        """The inputs as a list of float32 arrays, one per model input, checked against
        the input shapes (ValueError naming the layer and both shapes)."""
        if type(x) is np.ndarray:  # one array of a size the layers took before: no checks
            input_layers = self._input_layers()
            if len(input_layers) == 1:
                a = input_layers[0]._input_array(x, "x")
                if a.ndim and (a.shape[1:],) in self._executor().checked_sizes:
                    return [a]
        if isinstance(x, dict):
            names = [t.layer.name for t in self.inputs]
            unknown = sorted(set(x) - set(names))
            missing = [n for n in names if n not in x]
            if unknown or missing:
                raise ValueError(f"x: expected a dict with the input names {names}, got "
                                 f"keys {sorted(x)}")
            xs = [x[n] for n in names]
        elif isinstance(x, (list, tuple)) and self._several_inputs:
            xs = list(x)
        else:
            xs = [x]
        if len(xs) != len(self.inputs):
            names = [t.layer.name for t in self.inputs]
            raise ValueError(f"x: {self.name} has {len(self.inputs)} inputs ({names}), got "
                             f"{len(xs)} array(s)")
        arrays = []
        for i, (item, want, layer) in enumerate(zip(xs, self._input_shapes(),
                                                     self._input_layers())):
            a = layer._input_array(item, "x" if len(xs) == 1 else f"x[{i}]")
            if a.ndim == 0:
                raise ValueError(f"x: expected a batch of inputs, got a scalar")
            if not _compatible(want, a.shape):
                arg = "x" if len(xs) == 1 else f"x[{i}]"
                raise ValueError(f"{arg}: {self._input_names()[i]} expected input shape "
                                 f"{want}, got {a.shape}")
            arrays.append(a)
        if len({a.shape[0] for a in arrays}) > 1:
            raise ValueError(f"x: the inputs have different batch sizes "
                             f"{[a.shape[0] for a in arrays]}")
        # Each layer checks inputs of a new size once (a ValueError naming the layer).
        sizes = tuple(a.shape[1:] for a in arrays)
        checked = self._executor().checked_sizes
        if sizes not in checked:
            self._current_program().output_shapes([(None,) + s for s in sizes])
            if len(checked) > 64:
                checked.clear()
            checked.add(sizes)
        return arrays

    def _run(self, xs):
        ys, lays = self._executor().run(xs, [L.KERAS] * len(xs))
        return [L.to_keras(y, lay) for y, lay in zip(ys, lays)]

    def __call__(self, x, training=False):
        """The model on one batch x (an array, or a list / dict by input name for several
        inputs; any real dtype, converted to float32); on SymbolicTensors, a call in
        another model's graph."""
        if is_symbolic(x):
            return self._call_symbolic(x)
        return self._structure(self._run(self._prepare(x)), self._several_outputs)

    def profile(self, x, repeat=5):
        """[(step, median ms)]: each step of the compiled model (fused layers count as one)
        timed inside `repeat` runs on x. Their sum is the time in kernels; a call of the
        model takes that plus the model's own overhead."""
        xs = self._prepare(x)
        return self._executor().profile(xs, [L.KERAS] * len(xs), v.integer(repeat, "repeat",
                                                                            1))

    def predict(self, x, batch_size=32, verbose="auto"):
        """Outputs for x, computed `batch_size` samples at a time; verbose 1 (or 'auto')
        shows a progress bar, 2 one line at the end, 0 nothing."""
        xs = self._prepare(x)
        batch_size = v.integer(batch_size, "batch_size", 1)
        verbose = v.verbosity(verbose)
        n = xs[0].shape[0]
        if n == 0:
            return self._structure(self._run(xs), self._several_outputs)
        steps = -(-n // batch_size)
        bar = ProgressBar(steps, verbose)
        parts = []
        for step in range(steps):
            batch = slice(step * batch_size, (step + 1) * batch_size)
            parts.append(self._run([a[batch] for a in xs]))
            bar.update(step + 1)
        outputs = [p[0] if len(parts) == 1 else np.concatenate(p) for p in zip(*parts)]
        return self._structure(outputs, self._several_outputs)

    # ------------------------------------------------------------------ describing

    def _summary_rows(self):
        """(header, rows, right-aligned columns) of the summary table."""
        sequential_like = self._graph.is_sequential_like()
        members = set(self._graph.nodes)
        rows = []
        for layer in self.layers:
            row = [f"{layer.name} ({layer.class_name})", layer_shape_text(layer),
                   params_text(layer)]
            if not sequential_like:
                links = [f"{t.layer.name}[{t.node_index}][{t.tensor_index}]"
                         for node in layer._inbound_nodes if node in members
                         for t in node.input_tensors]
                row.append(", ".join(links) or "-")
            rows.append(row)
        header = ["Layer (type)", "Output Shape", "Param #"]
        return header + ([] if sequential_like else ["Connected to"]), rows

    def summary(self, line_length=None, positions=None, print_fn=None):
        """Prints the Keras 3 summary table (to print_fn, a function of one string, if
        given)."""
        if print_fn is not None and not callable(print_fn):
            raise TypeError(f"print_fn: expected a function of one string, got "
                            f"{type(print_fn).__name__}")
        header, rows = self._summary_rows()
        counts = (sum(w.value.size for w in self.trainable_weights),
                  sum(w.value.size for w in self.non_trainable_weights))
        text = _summary.render(self.name, header, rows, {2}, counts, line_length, positions)
        (print_fn or print)(text)

    def _graph_spec(self):
        """The graph as data: [(layer, its calls)], input refs, output refs -- a call
        being its input ref (a list of refs for several inputs), a ref [layer name, node
        index, tensor index] with node indices re-numbered within this model."""
        members = set(self._graph.nodes)
        index, counts = {}, {}
        for layer in self.layers:
            for node in layer._inbound_nodes:
                if node in members:
                    index[node] = counts[id(layer)] = counts.get(id(layer), -1) + 1

        def ref(t):
            return [t.layer.name, index[t.node], t.tensor_index]

        def call(node):
            return [ref(t) for t in node.inputs] if isinstance(node.inputs, list) else ref(
                node.inputs)

        entries = [(layer, [call(n) for n in layer._inbound_nodes
                            if n in members and not n.is_input]) for layer in self.layers]
        return (entries,
                self._structure([ref(t) for t in self.inputs], self._several_inputs),
                self._structure([ref(t) for t in self.outputs], self._several_outputs))

    def get_config(self):
        """Each layer's config and its calls (see _graph_spec), the input and output refs."""
        entries, inputs, outputs = self._graph_spec()
        layers = [{"class_name": layer.class_name, "name": layer.name,
                   "config": layer.get_config(), "inbound_nodes": calls}
                  for layer, calls in entries]
        return {"name": self.name, "trainable": self.trainable, "layers": layers,
                "input_layers": inputs, "output_layers": outputs}

    @classmethod
    def from_config(cls, config):
        entries = config_layers(config, graph=True)
        try:
            inputs, outputs = connect(entries, config["input_layers"],
                                      config["output_layers"])
        except (KeyError, IndexError, TypeError) as exc:
            raise ValueError(f"config: its input_layers, output_layers or inbound_nodes "
                             f"name no layer call ({type(exc).__name__}: {exc})") from None
        return cls(inputs, outputs, name=config.get("name"),
                   trainable=config.get("trainable", True))

    # ------------------------------------------------------------------ saving

    def save(self, path):
        """The whole model (config and weights) to one archive; see fastdl/models/saving.py
        and fastdl.models.load_model."""
        from fastdl.models import saving
        saving.save_model(self, path)

    def save_weights(self, path):
        """The weights to `path`: Keras' layout for `*.weights.h5` (needs h5py), else .npz."""
        from fastdl.models import saving
        saving.save_weights(self, path)

    def load_weights(self, path):
        """Weights saved by save_weights, or a Keras `.weights.h5` of a model with the same
        layers; checked whole first (a mismatch names the layer, nothing is taken)."""
        from fastdl.models import saving
        saving.load_weights(self, path)

    # ------------------------------------------------------------------ pickling

    def __getstate__(self):
        """The layers (without their graph records and plans: Layer.__getstate__) and the
        graph as data; __setstate__ calls the layers again to rebuild the graph."""
        state = super().__getstate__()
        for key in ("_graph", "_program", "_inference", "inputs", "outputs"):
            state.pop(key, None)
        state["_spec"] = self._graph_spec()
        return state

    def __setstate__(self, state):
        entries, input_refs, output_refs = state.pop("_spec")
        super().__setstate__(state)
        inputs, outputs = connect(entries, input_refs, output_refs)
        self._graph = Graph(inputs, outputs)
        self.inputs, self.outputs = list(self._graph.inputs), list(self._graph.outputs)
        self._program = self._graph.program()

    @property
    def class_name(self):
        """'Functional', as Keras names the class of Model(inputs, outputs)."""
        return "Functional" if type(self) is Model else type(self).__name__

    def __repr__(self):
        return f"<{self.class_name} name={self.name}, {len(self.layers)} layers>"


def config_layers(config, graph=False):
    """[(layer, its calls)] built from a model config's 'layers' (each {class_name, config,
    and for a graph inbound_nodes}); ValueError/TypeError naming `config` for what is not
    such a config."""
    from fastdl import layers as layer_module
    if not isinstance(config, dict):
        raise TypeError(f"config: expected a dict, got {type(config).__name__}")
    needed = ("layers", "input_layers", "output_layers") if graph else ("layers",)
    missing = [key for key in needed if key not in config]
    if missing:
        raise ValueError(f"config: expected the keys {list(needed)}, missing {missing}")
    if not isinstance(config["layers"], (list, tuple)):
        raise TypeError(f"config: 'layers' must be a list, got "
                        f"{type(config['layers']).__name__}")
    entries = []
    for i, entry in enumerate(config["layers"]):
        keys = ("class_name", "config") + (("inbound_nodes",) if graph else ())
        if not isinstance(entry, dict) or any(key not in entry for key in keys):
            raise ValueError(f"config: layers[{i}] is not a dict with the keys {list(keys)}")
        if not isinstance(entry["config"], dict):
            raise TypeError(f"config: layers[{i}]['config'] must be a dict, got "
                            f"{type(entry['config']).__name__}")
        cls = layer_module.get(entry["class_name"])
        entries.append((cls.from_config(entry["config"]), entry.get("inbound_nodes")))
    return entries


def connect(entries, input_refs, output_refs):
    """Rebuilds a graph from data (Model._graph_spec): calls each layer of `entries`
    [(layer without calls, its calls)] on the tensors its calls name, in an order that
    has every input ready; returns the (inputs, outputs) structures the refs name."""
    produced = {}
    for layer, _ in entries:
        for node in layer._inbound_nodes:  # InputLayers: their node 0
            produced[(layer.name, node.index)] = node.outputs

    def tensor(ref):
        name, node, index = ref
        out = produced[(name, node)]
        return out[index] if isinstance(out, list) else out

    def refs_of(call):
        return call if isinstance(call[0], list) else [call]

    pending = [(layer, list(calls)) for layer, calls in entries if calls]
    while pending:
        progressed = False
        for layer, calls in pending:
            while calls and all((r[0], r[1]) in produced for r in refs_of(calls[0])):
                call = calls.pop(0)
                args = [tensor(r) for r in call] if isinstance(call[0], list) else tensor(call)
                index = len(layer._inbound_nodes)
                produced[(layer.name, index)] = layer(args)
                progressed = True
        pending = [(layer, calls) for layer, calls in pending if calls]
        if pending and not progressed:
            raise ValueError(f"config: cannot connect {', '.join(l.name for l, _ in pending)}"
                             f": their inputs are never produced")

    def resolve(refs):
        return [tensor(r) for r in refs] if isinstance(refs[0], list) else tensor(refs)

    return resolve(input_refs), resolve(output_refs)


def _compatible(want, got):
    """`got` (a shape with its batch axis) fits `want` (None: any extent)."""
    got = tuple(got)
    return len(got) == len(want) and all(w is None or w == g for w, g in zip(want[1:],
                                                                            got[1:]))


def format_shape(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")"


def layer_shape_text(layer):
    """The Output Shape cell as Keras prints it: the shape of the layer's last call, a
    list of shapes for several outputs, '?' before it is built."""
    if layer._inbound_nodes:
        shapes = [t.shape for t in layer._inbound_nodes[-1].output_tensors]
        several = isinstance(layer._inbound_nodes[-1].outputs, list)
    elif layer.built and layer.output_shape is not None:
        several = isinstance(layer.output_shape, list)
        shapes = layer.output_shape if several else [layer.output_shape]
    else:
        return "?"
    texts = [format_shape(s) for s in shapes]
    return "[" + ", ".join(texts) + "]" if several and len(texts) > 1 else texts[0]


def params_text(layer):
    return f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
