"""A functional model's graph: the Nodes between its inputs and outputs (node.py), put in
Keras' order, and the program that runs them.

Order (as Keras 3's map_graph, so that `model.layers`, the summary rows and the weights come
in Keras' order): a depth-first walk back from the outputs lists the nodes inputs-first;
a node's depth is the longest path from it to an output; layers sort by decreasing depth
(their deepest node), ties by when the walk first met them.
"""
import collections

from fastdl.layers.node import SymbolicTensor, flatten


class GraphError(ValueError):
    pass


class Graph:
    """inputs / outputs: the model's SymbolicTensors (a tensor or a list of them)."""

    def __init__(self, inputs, outputs):
        self.inputs, self.outputs = flatten(inputs), flatten(outputs)
        for role, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            if not tensors:
                raise GraphError(f"{role}: a model needs at least one")
            for t in tensors:
                if not isinstance(t, SymbolicTensor):
                    raise TypeError(f"{role}: expected tensors from Input(...) and layer "
                                    f"calls, got {type(t).__name__}")
        for t in self.inputs:
            if not t.node.is_input:
                raise GraphError(f"inputs: {t!r} is not an Input(...): a model's inputs "
                                 f"must come from Input")
        ordered, first_seen = self._walk()
        self.node_depth, self.layer_depth = self._depths(ordered)
        by_depth = collections.defaultdict(list)
        for node, depth in self.node_depth.items():
            by_depth[depth].append(node)
        self.nodes_by_depth = dict(sorted(by_depth.items(), reverse=True))
        self.layers = sorted(self.layer_depth, key=lambda l: (-self.layer_depth[l],
                                                               first_seen[l]))
        self.nodes = [n for depth in self.nodes_by_depth for n in self.nodes_by_depth[depth]]
        self._check_connected()
        names = collections.Counter(layer.name for layer in self.layers)
        repeated = [name for name, count in names.items() if count > 1]
        if repeated:
            raise GraphError(f"layer names must be unique in a model; used more than once: "
                             f"{', '.join(repeated)}")

    def _walk(self):
        """Nodes from inputs to outputs (depth-first from each output) and, per layer, the
        position at which the walk first met it."""
        done, active, ordered, first_seen = set(), set(), [], {}
        inputs = {id(t) for t in self.inputs}

        def visit(tensor):
            node = tensor.node
            if node in done:
                return
            if node in active:
                raise GraphError(f"{tensor!r} is part of a cycle")
            first_seen.setdefault(node.layer, len(first_seen))
            active.add(node)
            if not node.is_input and id(tensor) not in inputs:
                for t in node.input_tensors:
                    visit(t)
            active.discard(node)
            done.add(node)
            ordered.append(node)

        for t in self.outputs:
            visit(t)
        for t in self.inputs:  # inputs no output depends on still belong to the model
            if t.node not in done:
                first_seen.setdefault(t.layer, len(first_seen))
                done.add(t.node)
                ordered.append(t.node)
        return ordered, first_seen

    @staticmethod
    def _depths(ordered):
        node_depth, layer_depth = {}, {}
        members = set(ordered)
        for node in reversed(ordered):
            depth = max(node_depth.setdefault(node, 0), layer_depth.get(node.layer, 0))
            layer_depth[node.layer] = node_depth[node] = depth
            if node.is_input:
                continue
            for parent in node.parents:
                if parent in members:
                    node_depth[parent] = max(depth + 1, node_depth.get(parent, 0))
        return node_depth, layer_depth

    def _check_connected(self):
        known = {id(t) for t in self.inputs}
        for node in self.nodes:
            if node.is_input:
                if not any(t is node.outputs for t in self.inputs):
                    raise GraphError(f"graph disconnected: {node.layer.name} is an Input "
                                     f"that is not among the model's inputs")
                continue
            for t in node.input_tensors:
                if id(t) not in known:
                    raise GraphError(f"graph disconnected: {node.layer.name} needs {t!r}, "
                                     f"which the model's inputs do not produce")
            known.update(id(t) for t in node.output_tensors)

    def is_sequential_like(self):
        """True where the summary needs no "Connected to" column (as Keras decides): one
        node per depth, each with at most one input, and no layer called twice."""
        for nodes in self.nodes_by_depth.values():
            if len(nodes) > 1 or len(nodes[0].input_tensors) > 1:
                return False
        members = set(self.nodes)
        return all(sum(n in members for n in layer._inbound_nodes) <= 1
                   for layer in self.layers)

    def program(self):
        """The steps that compute the outputs: (layer, input slots, output slots) in
        execution order, a slot being an index into the list of live arrays (a list of
        slots for a layer of several inputs or outputs), with the slots of the inputs and
        outputs. `last_use[slot]` is the step after which the slot's array can be freed."""
        slot_of, steps = {}, []
        for i, t in enumerate(self.inputs):
            slot_of[id(t)] = i
        n_slots = len(self.inputs)
        for node in self.nodes:
            if node.is_input:
                continue
            ins = ([slot_of[id(t)] for t in node.inputs] if isinstance(node.inputs, list)
                   else slot_of[id(node.inputs)])
            outs = []
            for t in node.output_tensors:
                slot_of[id(t)] = n_slots
                outs.append(n_slots)
                n_slots += 1
            steps.append(Step(node.layer, ins, outs if isinstance(node.outputs, list)
                              else outs[0]))
        return Program(steps, list(range(len(self.inputs))),
                       [slot_of[id(t)] for t in self.outputs], n_slots)


Step = collections.namedtuple("Step", "layer inputs outputs")


class Program:
    """Steps over numbered slots; run() executes them on model-internal arrays, freeing
    each array after its last use."""

    def __init__(self, steps, input_slots, output_slots, n_slots):
        self.steps, self.input_slots, self.output_slots = steps, input_slots, output_slots
        self.n_slots = n_slots
        last = {}
        for i, step in enumerate(steps):
            for s in _slots(step.inputs):
                last[s] = i
        keep = set(output_slots)
        self.free_after = [[s for s, i in last.items() if i == k and s not in keep]
                           for k in range(len(steps))]
        self._tuples = None
        self._relu_handovers = None  # backprop.relu_handovers, found once

    def run(self, xs, layouts, on_step=None):
        """(arrays, layouts) of the outputs from the inputs' (arrays, layouts); on_step(i,
        x, layout, y), if given, after step i ran on x and gave y."""
        values = [None] * self.n_slots
        lays = [None] * self.n_slots
        for s, x, lay in zip(self.input_slots, xs, layouts):
            values[s], lays[s] = x, lay
        for i, (forward, ins, outs, several_in, several_out, free) in enumerate(self._plan()):
            if several_in:
                x, lay = [values[s] for s in ins], [lays[s] for s in ins]
            else:
                x, lay = values[ins], lays[ins]
            y, y_lay = forward(x, lay)
            if on_step is not None:
                on_step(i, x, lay, y)
            if several_out:
                for s, a, al in zip(outs, y, y_lay):
                    values[s], lays[s] = a, al
            else:
                values[outs], lays[outs] = y, y_lay
            for s in free:
                values[s] = None
        return [values[s] for s in self.output_slots], [lays[s] for s in self.output_slots]

    def _plan(self):
        """The steps as tuples for run()'s loop (built once)."""
        if self._tuples is None:
            self._tuples = [(step.layer._forward, step.inputs, step.outputs,
                             isinstance(step.inputs, list), isinstance(step.outputs, list),
                             tuple(free)) for step, free in zip(self.steps, self.free_after)]
        return self._tuples

    def output_shapes(self, input_shapes):
        """The outputs' Keras shapes for inputs of these shapes: each layer checks its
        input (ValueError naming it) and gives its output shape."""
        shapes = [None] * self.n_slots
        for s, shape in zip(self.input_slots, input_shapes):
            shapes[s] = tuple(shape)
        for step in self.steps:
            ins = ([shapes[s] for s in step.inputs] if isinstance(step.inputs, list)
                   else shapes[step.inputs])
            out = step.layer._build_for(ins)
            if isinstance(step.outputs, list):
                for s, shape in zip(step.outputs, out):
                    shapes[s] = tuple(shape)
            else:
                shapes[step.outputs] = tuple(out)
        return [shapes[s] for s in self.output_slots]


def _slots(slots):
    return slots if isinstance(slots, list) else [slots]
