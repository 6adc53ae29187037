"""ONNX models as fastdl models: load_onnx(model).

The graph becomes a functional fastdl Model in ONNX's own layout (channels_first maps,
shapes as the graph declares them, the batch axis free), its input layers named as the
graph's inputs and the layers giving its outputs as the graph's outputs. Initializers
become the layers' weights; at predict time the model's inference runner folds
BatchNormalization into the convolution or Dense before it, fuses activations and padding
into them (fastdl/models/inference.py), so the graph's Conv -> BatchNormalization -> Relu
runs as one plan. Subgraphs of constants (exported shape arithmetic: Shape -> Gather ->
Unsqueeze -> Concat -> Reshape) are evaluated once here, at load.

What fastdl cannot run raises before anything runs: NotImplementedError listing every
unsupported node (op type, node name, why); a file that is no ONNX model, or a graph with a
shape fastdl cannot resolve (an axis other than the batch left symbolic), a ValueError
naming `model`. The operators are in fastdl/io/onnx_ops.py.

onnx is only imported here, when called (`pip install onnx`).
"""
import os

import numpy as np

from fastdl.io.onnx_ops import (ATTRIBUTES, BATCH, CONVERTERS, FOLDERS, TAKE_PERMUTED, Permuted,
                                Unsupported)

# The opsets whose operators fastdl reads (the attribute forms of Softmax, Split, Squeeze,
# Clip... changed along the way; each form is read; versions after 21 added types).
MIN_OPSET, MAX_OPSET = 11, 25


def load_onnx(model, input_shapes=None, name=None):
    """The fastdl Model computing the ONNX model `model`: a path to an .onnx file, its
    bytes, or an onnx.ModelProto. `input_shapes` ({input name: shape without the batch
    axis}) fixes axes the graph leaves symbolic; `name` names the model (default: the
    graph's name)."""
    onnx = _onnx()
    proto = _read(model, onnx)
    opset = _opset(proto)
    graph = _checked_graph(proto, onnx)
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"name: expected a non-empty str or None, got {name!r}"[:200])
    return _Builder(graph, opset, onnx, input_shapes).model(name or graph.name or None)


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("load_onnx needs the onnx package: pip install onnx") from None
    return onnx


def _read(model, onnx):
    """model (path, bytes or ModelProto) as a ModelProto."""
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray)):
        data, where = bytes(model), "the bytes given"
    elif isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"model: no ONNX file at {path}")
        with open(path, "rb") as f:
            data, where = f.read(), path
    else:
        raise TypeError(f"model: expected a path, bytes or an onnx.ModelProto, got "
                        f"{type(model).__name__}")
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError, or its runtime's own for damage
        raise ValueError(f"model: {where} is not an ONNX model ({type(exc).__name__}: "
                         f"{exc})") from None
    if not proto.HasField("graph"):
        raise ValueError(f"model: {where} is not an ONNX model (it holds no graph)")
    return proto


def _opset(proto):
    versions = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise ValueError("model: the model imports no ONNX opset (its opset_import lacks "
                         "the default domain)")
    if not MIN_OPSET <= versions[0] <= MAX_OPSET:
        raise ValueError(f"model: opset {versions[0]}; fastdl reads opsets {MIN_OPSET} to "
                         f"{MAX_OPSET} (onnx.version_converter converts between them)")
    return versions[0]


def _checked_graph(proto, onnx):
    """The graph, checked by onnx's checker (fastdl's layers infer the shapes)."""
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:  # ValidationError, and protobuf's for damage
        raise ValueError(f"model: not a valid ONNX model ({type(exc).__name__}: "
                         f"{str(exc).strip()[:2000]})") from None
    return proto.graph


class _Builder:
    """Walks the graph's nodes (in their topological order) once: each value is a NumPy
    array (a constant) or a SymbolicTensor of the model under construction."""

    def __init__(self, graph, opset, onnx, input_shapes):
        from fastdl import layers
        self.graph, self.opset, self.onnx, self.layers = graph, opset, onnx, layers
        self.values = {}
        self.unsupported = []
        self.batch = None  # the batch size the graph declares, where it declares one
        self.output_names = [o.name for o in graph.output]
        self._names = set()
        self.consumers = {}  # value name -> the nodes reading it
        for node in graph.node:
            for n in node.input:
                self.consumers.setdefault(n, []).append(node)
        self._absorbed = {}  # an Add's output -> the MatMul's output whose Dense took its bias
        self._absorbed_by = {}  # the reverse: the MatMul's output -> the Add's
        for init in graph.initializer:
            self.values[init.name] = self._array(init, f"initializer {init.name!r}")
        names = [i.name for i in graph.input if i.name not in self.values]
        if input_shapes is not None and not isinstance(input_shapes, dict):
            raise TypeError(f"input_shapes: expected a dict {{input name: shape}} or None, "
                            f"got {type(input_shapes).__name__}")
        unknown = set(input_shapes or {}) - set(names)
        if unknown:
            raise ValueError(f"input_shapes: names no input of the graph: "
                             f"{sorted(unknown, key=str)} (its inputs: {names})")
        self.inputs = [self._input(i, input_shapes) for i in graph.input if i.name in names]
        if not self.inputs:
            raise ValueError("model: the graph has no input that is not a constant")

    def _array(self, tensor, what):
        try:
            return self.onnx.numpy_helper.to_array(tensor)
        except Exception as exc:  # a damaged tensor: raw_data of the wrong length, ...
            raise ValueError(f"model: {what} is damaged ({type(exc).__name__}: {exc})") \
                from None

    def _input(self, value_info, input_shapes):
        """The Input layer of the graph input `value_info`."""
        tensor_type = value_info.type.tensor_type
        if tensor_type.elem_type != self.onnx.TensorProto.FLOAT:
            dtype = self.onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type) \
                if tensor_type.elem_type else "unknown"
            raise ValueError(f"model: input {value_info.name!r} is {dtype}; fastdl's "
                             f"imported models take float32 inputs")
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                for d in tensor_type.shape.dim]
        if not dims:
            raise ValueError(f"model: input {value_info.name!r} has no batch axis (a "
                             f"scalar input)")
        self.batch = self.batch or dims[0]
        given = (input_shapes or {}).get(value_info.name)
        if given is not None:
            from fastdl import _validate as v
            if not isinstance(given, (tuple, list)) or len(given) != len(dims) - 1:
                raise ValueError(f"input_shapes: {value_info.name!r} expected a shape of "
                                 f"{len(dims) - 1} axes (without the batch), got {given!r}")
            dims[1:] = [v.integer(s, "input_shapes", minimum=1, maximum=v.MAX_AXIS)
                        for s in given]
        if None in dims[1:]:
            axes = [i for i, d in enumerate(dims) if d is None and i > 0]
            raise ValueError(f"model: input {value_info.name!r} leaves axes {axes} of "
                             f"{len(dims)} symbolic: a dynamic shape fastdl cannot resolve "
                             f"(give input_shapes={{{value_info.name!r}: (...)}})")
        tensor = self.layers.Input(tuple(dims[1:]), name=self.layer_name(value_info.name))
        self.values[value_info.name] = tensor
        return tensor

    def layer_name(self, base):
        """A layer name from an ONNX name, unique in the model."""
        name = base.strip("/").replace("/", "_") or "node"
        unique, i = name, 1
        while unique in self._names:
            unique, i = f"{name}_{i}", i + 1
        self._names.add(unique)
        return unique

    def model(self, name):
        for node in self.graph.node:
            self._node(node)
        if self.unsupported:
            listed = "\n".join(f"  {u}" for u in self.unsupported)
            raise NotImplementedError(f"model: {len(self.unsupported)} node(s) fastdl does "
                                      f"not support:\n{listed}")
        outputs = []
        for out in self.output_names:
            value = self.values.get(out)
            if isinstance(value, np.ndarray) or value is None:
                raise NotImplementedError(f"model: output {out!r} is a constant (it "
                                          f"depends on no input's values); fastdl models "
                                          f"compute from their inputs")
            if isinstance(value, Permuted):
                raise NotImplementedError(f"model: output {out!r} is time-major (its batch "
                                          f"axis is not first); fastdl's outputs are "
                                          f"batch-first")
            outputs.append(value)
        from fastdl.models import Model
        return Model(self.inputs if len(self.inputs) > 1 else self.inputs[0],
                     outputs if len(outputs) > 1 else outputs[0], name=name)

    def _node(self, node):
        where = f"{node.op_type} node {node.name!r}" if node.name else f"{node.op_type} node"
        if node.domain not in ("", "ai.onnx"):
            self.unsupported.append(f"{where}: operator domain {node.domain!r}")
            return
        if node.output and node.output[0] in self._absorbed:
            self.values[node.output[0]] = self.values[self._absorbed[node.output[0]]]
            return
        inputs = [self.values.get(n) if n else None for n in node.input]
        if any(n and n not in self.values for n in node.input):
            return  # fed by an unsupported node (listed already)
        attrs = {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}
        for k, v in attrs.items():
            if isinstance(v, self.onnx.TensorProto):
                attrs[k] = self._array(v, f"{where}'s attribute {k}")
        constant = all(x is None or isinstance(x, np.ndarray) for x in inputs)
        try:
            unknown = sorted(set(attrs) - ATTRIBUTES.get(node.op_type, set()))
            if unknown:
                raise Unsupported(f"attribute(s) {unknown} (of a later opset, or a form "
                                  f"fastdl does not compute)")
            if constant and node.op_type in FOLDERS:
                outputs = [np.asarray(o) for o in FOLDERS[node.op_type](attrs, inputs,
                                                                        self.opset)]
            elif constant and node.op_type in CONVERTERS:
                raise Unsupported("every input is a constant (fastdl folds shape arithmetic"
                                  ", not this operator)")
            elif any(isinstance(x, Permuted) for x in inputs) and \
                    node.op_type not in TAKE_PERMUTED:
                raise Unsupported("it reads a time-major sequence (batch axis second) "
                                  "other than by transposing or reshaping it")
            elif node.op_type in CONVERTERS:
                outputs = CONVERTERS[node.op_type](self, node, attrs, inputs)
            else:
                raise Unsupported("no fastdl equivalent")
        except Unsupported as exc:
            self.unsupported.append(f"{where}: {exc}")
            return
        except (ValueError, TypeError) as exc:  # a layer refusing the configuration
            self.unsupported.append(f"{where}: fastdl's layer refuses it ({exc})")
            return
        for out_name, value in zip(node.output, outputs):
            if out_name:
                self.values[out_name] = value

    # ------------------------------------------------------------- for the converters

    def apply(self, node, layer_cls, x, weights=None, suffix="", **kwargs):
        """layer_cls(**kwargs) named after `node` (and after the graph output it gives, if
        it gives one), called on x, `weights` set."""
        output = node.output[0] if node.output else ""
        # (an Add whose bias the Dense took gives the output the Dense computes)
        output = self._absorbed_by.get(output, output)
        base = output if output in self.output_names and not suffix else (
            (node.name or node.op_type.lower()) + suffix)
        layer = layer_cls(name=self.layer_name(base), **kwargs)
        y = layer(x)
        if weights is not None:
            layer.set_weights([np.asarray(w, np.float32) for w in weights])
        return y

    def is_read(self, name):
        """Whether a node or the graph's outputs read the value `name`."""
        return name in self.output_names or bool(self.consumers.get(name))

    def absorbed_bias(self, node, units):
        """The bias of `node` (a MatMul giving `units` features) from the Add of a constant
        that is its only reader (PyTorch exports Linear on 3-D inputs so), which then
        gives the MatMul's output; None if there is no such Add."""
        out = node.output[0]
        readers = self.consumers.get(out, [])
        if len(readers) != 1 or readers[0].op_type != "Add" or out in self.output_names:
            return None
        others = [n for n in readers[0].input if n != out]
        c = self.values.get(others[0]) if len(others) == 1 else None
        if not isinstance(c, np.ndarray) or c.size not in (1, units) or (
                c.ndim > 1 and c.shape[-1] != c.size):
            return None
        self._absorbed[readers[0].output[0]] = out
        self._absorbed_by[out] = readers[0].output[0]
        return np.broadcast_to(c.reshape(-1), (units,)).astype(np.float32)

    def static_batch(self, size):
        """Whether `size` (a reshape's first axis) is the graph's declared batch size."""
        return size == BATCH or (self.batch is not None and size == self.batch)
