"""Training passes over a model's Program (graph.py): forward with each layer's training
forward (on Keras-layout arrays, or on the internal layouts for TrainsOnMaps layers),
recording what the backward pass needs (a Tape), and the
backward pass in reverse order, summing the gradients of arrays used more than once
(branches, shared layers) and collecting the weights' gradients in a Gradients.

A layer with an activity_regularizer gets Keras' penalty on its output(s), reg(y) / batch
size, recorded in layer._activity_losses by the forward pass (model.losses lists them, the
training loop adds them to the loss), and its gradient reg.gradient(y) / batch size added
to the output's gradient by the backward pass."""
import numpy as np

from fastdl.layers import layout as L
from fastdl.layers.base import TrainsOnMaps


class Tape:
    """One training forward pass: its program, each step's cache and output shapes, the
    layout each slot was held in, and the Keras-layout outputs of the steps whose layer
    regularizes its activity (None for the others)."""

    def __init__(self, program, caches, out_shapes, layouts, activity=None):
        self.program, self.caches, self.out_shapes = program, caches, out_shapes
        self.layouts = layouts
        self.activity = activity or [None] * len(caches)


def _on_maps(layer):
    return isinstance(layer, TrainsOnMaps)


def _activity_regularizer(layer):
    return getattr(layer, "activity_regularizer", None)


def _per_batch(value, y):
    """Keras divides an activity penalty (and so its gradient) by the batch size, the
    output's first axis (0 for an empty batch: divide_no_nan)."""
    batch = y.shape[0] if y.ndim else 1
    return value / np.float32(batch) if batch else value * np.float32(0)


def relu_handovers(program):
    """{step: kwargs} for the pairs of steps where a layer's ReLU gradient is handed to the
    one layer that reads its output (TrainsOnMaps: `_hands_over_relu`, then
    `_takes_relu_gate`): the first gets relu_gated=True, the second relu_gate=True (Conv ->
    MaxPooling: the pooling's gradient is gated where its maximum is 0, and no ReLU gradient
    pass runs over the full-size maps). Computed once per program."""
    if program._relu_handovers is not None:
        return program._relu_handovers
    readers = {}
    for j, step in enumerate(program.steps):
        for s in (step.inputs if isinstance(step.inputs, list) else [step.inputs]):
            readers.setdefault(s, []).append(j)
    outputs = set(program.output_slots)
    found = {}
    for i, step in enumerate(program.steps):
        if (isinstance(step.outputs, list) or step.outputs in outputs
                or not _on_maps(step.layer) or not step.layer._hands_over_relu()):
            continue
        reads = readers.get(step.outputs, [])
        if len(reads) != 1:
            continue
        reader = program.steps[reads[0]]
        if (reader.inputs == step.outputs and _on_maps(reader.layer)
                and reader.layer._takes_relu_gate):
            found[i] = {"relu_gated": True}
            found[reads[0]] = {"relu_gate": True}
    program._relu_handovers = found
    return found


def forward(program, xs, training, logits_steps=()):
    """(outputs, tape): the program on Keras-layout inputs `xs`, outputs in Keras' layout.
    Layers that train on the internal layouts (TrainsOnMaps) keep feature maps
    channels-first from one to the next; the others get and give Keras-layout arrays.
    The steps numbered in `logits_steps` run their layer with logits=True (their gradient
    then arrives for their pre-activation output, see fastdl.losses.Loss.fused_activation)."""
    values = [None] * program.n_slots
    layouts = [L.KERAS] * program.n_slots
    for s, x in zip(program.input_slots, xs):
        values[s] = x
    for step in program.steps:  # this pass's penalties replace the last one's
        if _activity_regularizer(step.layer) is not None:
            step.layer._activity_losses = []
    caches, out_shapes, activity = [], [], []
    handovers = relu_handovers(program)
    for i, step in enumerate(program.steps):
        several = isinstance(step.inputs, list)
        reads = step.inputs if several else [step.inputs]
        kwargs = {"logits": True} if i in logits_steps else handovers.get(i, {})
        if _on_maps(step.layer):
            ins = [values[s] for s in reads]
            lays = [layouts[s] for s in reads]
            y, y_layout, cache = step.layer._train_forward_maps(
                ins if several else ins[0], lays if several else lays[0], training, **kwargs)
        else:
            ins = [L.to_keras(values[s], layouts[s]) for s in reads]
            y, cache = step.layer._train_forward(ins if several else ins[0], training,
                                                 **kwargs)
            y_layout = L.KERAS
        if isinstance(step.outputs, list):
            for s, a in zip(step.outputs, y):
                values[s], layouts[s] = a, L.KERAS
            out_shapes.append([a.shape for a in y])
        else:
            values[step.outputs], layouts[step.outputs] = y, y_layout
            out_shapes.append(y.shape)
        caches.append(cache)
        reg = _activity_regularizer(step.layer)
        if reg is None:
            activity.append(None)
        else:  # penalties and their gradients are taken in Keras' layout
            keras_y = (y if isinstance(y, list)
                       else L.to_keras(y, layouts[step.outputs]))
            activity.append(keras_y)
            step.layer._activity_losses += [
                np.float32(_per_batch(reg(a), a))
                for a in (keras_y if isinstance(keras_y, list) else [keras_y])]
    outputs = [L.to_keras(values[s], layouts[s]) for s in program.output_slots]
    return outputs, Tape(program, caches, out_shapes, layouts, activity)


def _add(dvals, slot, d):
    if d is None:
        return
    dvals[slot] = d if dvals[slot] is None else dvals[slot] + d


def backward(tape, douts, grads, input_grads=True):
    """The gradients for the program's inputs (None for an input nothing differentiable
    depends on) from those of its outputs (`douts`, None for an output without one), all
    in Keras' layout; the weights' gradients are added to `grads`. Each slot's gradient is
    held in the layout its value was. input_grads=False: the program's inputs need none
    (a training step of the whole model), so layers reading only them and declaring
    `_input_grad_optional` skip computing theirs."""
    program, layouts = tape.program, tape.layouts
    inputs = set(program.input_slots)
    dvals = [None] * program.n_slots
    for s, d in zip(program.output_slots, douts):
        _add(dvals, s, None if d is None else L.convert(d, L.KERAS, layouts[s]))
    for step, cache, shapes, y in zip(reversed(program.steps), reversed(tape.caches),
                                      reversed(tape.out_shapes), reversed(tape.activity)):
        reg = None if y is None else _activity_regularizer(step.layer)
        if isinstance(step.outputs, list):
            dys = [dvals[s] for s in step.outputs]
            if all(d is None for d in dys) and reg is None:
                continue
            dy = [np.zeros(shape, np.float32) if d is None else d
                  for d, shape in zip(dys, shapes)]
            for s in step.outputs:
                dvals[s] = None
            if reg is not None:
                dy = [d + _per_batch(reg.gradient(a), a) for d, a in zip(dy, y)]
        else:
            dy = dvals[step.outputs]
            if dy is None and reg is None:
                continue  # nothing the loss depends on
            dvals[step.outputs] = None
            if reg is not None:
                penalty = L.convert(_per_batch(reg.gradient(y), y), L.KERAS,
                                    layouts[step.outputs])
                dy = penalty if dy is None else dy + penalty
        several = isinstance(step.inputs, list)
        reads = step.inputs if several else [step.inputs]
        kwargs = {}
        if (not input_grads and getattr(step.layer, "_input_grad_optional", False)
                and all(s in inputs for s in reads)):
            kwargs["needs_input_grad"] = False
        if _on_maps(step.layer):
            dx = step.layer._backward_maps(dy, cache, grads, **kwargs)
            dxs = dx if several else [dx]
        else:
            if not isinstance(step.outputs, list):
                dy = L.to_keras(dy, layouts[step.outputs])
            dx = step.layer._backward(dy, cache, grads, **kwargs)
            dxs = [None if d is None else L.convert(d, L.KERAS, layouts[s])
                   for d, s in zip(dx if several else [dx], reads)]
        for s, d in zip(reads, dxs):
            _add(dvals, s, d)
    return [None if dvals[s] is None else L.to_keras(dvals[s], layouts[s])
            for s in program.input_slots]


def update_state(tape):
    """Each step's layer applies the state its training forward computed (in step order,
    so a shared layer's uses apply one after another); True if any weight changed."""
    changed = False
    for step, cache in zip(tape.program.steps, tape.caches):
        changed = step.layer._update_state(cache) or changed
    return changed
