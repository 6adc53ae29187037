"""The functional API's graph: calling a layer on SymbolicTensors records a Node (that call:
the layer, its input tensors, its output tensors) and returns new SymbolicTensors; a Model
walks the Nodes back from its outputs to its inputs (fastdl/models/graph.py).

A tensor knows where it came from as Keras' `_keras_history` does: (layer, node_index,
tensor_index) -- the summary's "Connected to" column prints `name[node_index][tensor_index]`.
"""


class SymbolicTensor:
    """A placeholder of Keras shape `shape` (batch None): output `tensor_index` of call
    `node_index` of `layer`."""

    def __init__(self, shape, layer, node_index=0, tensor_index=0):
        self.shape = tuple(shape)
        self.layer, self.node_index, self.tensor_index = layer, node_index, tensor_index

    @property
    def node(self):
        return self.layer._inbound_nodes[self.node_index]

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return (f"<SymbolicTensor shape={self.shape} from {self.layer.name}"
                f"[{self.node_index}][{self.tensor_index}]>")


class Node:
    """One call of `layer`: on `inputs` (SymbolicTensors; a list for layers of several
    inputs, else a single tensor), giving SymbolicTensors of `output_shapes` (a tuple, or a
    list of tuples for layers of several outputs)."""

    def __init__(self, layer, inputs, output_shapes):
        self.layer = layer
        self.inputs = inputs
        self.index = len(layer._inbound_nodes)
        layer._inbound_nodes.append(self)
        if isinstance(output_shapes, list):
            self.outputs = [SymbolicTensor(s, layer, self.index, i)
                            for i, s in enumerate(output_shapes)]
        else:
            self.outputs = SymbolicTensor(output_shapes, layer, self.index, 0)

    @property
    def input_tensors(self):
        return flatten(self.inputs)

    @property
    def output_tensors(self):
        return flatten(self.outputs)

    @property
    def is_input(self):
        return self.inputs is None

    @property
    def parents(self):
        """The Nodes whose outputs this one takes."""
        return [t.node for t in self.input_tensors]


def flatten(structure):
    """A tensor or a (nested) list/tuple of them as a flat list; None as []."""
    if structure is None:
        return []
    if isinstance(structure, (list, tuple)):
        return [item for part in structure for item in flatten(part)]
    return [structure]


def is_symbolic(x):
    """True for a SymbolicTensor or a list/tuple holding one."""
    return any(isinstance(t, SymbolicTensor) for t in flatten(x)) if isinstance(
        x, (list, tuple)) else isinstance(x, SymbolicTensor)
