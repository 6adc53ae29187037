"""Training passes over a model's Program (graph.py): forward on Keras-layout arrays with
each layer's _train_forward, recording what the backward pass needs (a Tape), and the
backward pass in reverse order, summing the gradients of arrays used more than once
(branches, shared layers) and collecting the weights' gradients in a Gradients."""
import numpy as np


class Tape:
    """One training forward pass: its program, each step's cache and output shapes, and
    (when asked for) the logits of one output step."""

    def __init__(self, program, caches, out_shapes):
        self.program, self.caches, self.out_shapes = program, caches, out_shapes


def forward(program, xs, training, logits_steps=()):
    """(outputs, tape): the program on Keras-layout inputs `xs`; the steps numbered in
    `logits_steps` run their layer with logits=True (their gradient then arrives for their
    pre-activation output, see fastdl.losses.Loss.fused_activation)."""
    values = [None] * program.n_slots
    for s, x in zip(program.input_slots, xs):
        values[s] = x
    caches, out_shapes = [], []
    for i, step in enumerate(program.steps):
        ins = ([values[s] for s in step.inputs] if isinstance(step.inputs, list)
               else values[step.inputs])
        if i in logits_steps:
            y, cache = step.layer._train_forward(ins, training, logits=True)
        else:
            y, cache = step.layer._train_forward(ins, training)
        if isinstance(step.outputs, list):
            for s, a in zip(step.outputs, y):
                values[s] = a
            out_shapes.append([a.shape for a in y])
        else:
            values[step.outputs] = y
            out_shapes.append(y.shape)
        caches.append(cache)
    return [values[s] for s in program.output_slots], Tape(program, caches, out_shapes)


def _add(dvals, slot, d):
    if d is None:
        return
    dvals[slot] = d if dvals[slot] is None else dvals[slot] + d


def backward(tape, douts, grads, input_grads=True):
    """The gradients for the program's inputs (None for an input nothing differentiable
    depends on) from those of its outputs (`douts`, None for an output without one); the
    weights' gradients are added to `grads`. input_grads=False: the program's inputs need
    none (a training step of the whole model), so layers reading only them and declaring
    `_input_grad_optional` skip computing theirs."""
    program = tape.program
    inputs = set(program.input_slots)
    dvals = [None] * program.n_slots
    for s, d in zip(program.output_slots, douts):
        _add(dvals, s, d)
    for step, cache, shapes in zip(reversed(program.steps), reversed(tape.caches),
                                   reversed(tape.out_shapes)):
        if isinstance(step.outputs, list):
            dys = [dvals[s] for s in step.outputs]
            if all(d is None for d in dys):
                continue
            dy = [np.zeros(shape, np.float32) if d is None else d
                  for d, shape in zip(dys, shapes)]
            for s in step.outputs:
                dvals[s] = None
        else:
            dy = dvals[step.outputs]
            if dy is None:
                continue  # nothing the loss depends on
            dvals[step.outputs] = None
        reads = step.inputs if isinstance(step.inputs, list) else [step.inputs]
        if (not input_grads and getattr(step.layer, "_input_grad_optional", False)
                and all(s in inputs for s in reads)):
            dx = step.layer._backward(dy, cache, grads, needs_input_grad=False)
        else:
            dx = step.layer._backward(dy, cache, grads)
        if isinstance(step.inputs, list):
            for s, d in zip(step.inputs, dx):
                _add(dvals, s, d)
        else:
            _add(dvals, step.inputs, dx)
    return [dvals[s] for s in program.input_slots]


def update_state(tape):
    """Each step's layer applies the state its training forward computed (in step order,
    so a shared layer's uses apply one after another); True if any weight changed."""
    changed = False
    for step, cache in zip(tape.program.steps, tape.caches):
        changed = step.layer._update_state(cache) or changed
    return changed
