"""Training passes over a model's Program (graph.py): forward on Keras-layout arrays with
each layer's _train_forward, recording what the backward pass needs (a Tape), and the
backward pass in reverse order, summing the gradients of arrays used more than once
(branches, shared layers) and collecting the weights' gradients in a Gradients.

A layer with an activity_regularizer gets Keras' penalty on its output(s), reg(y) / batch
size, recorded in layer._activity_losses by the forward pass (model.losses lists them, the
training loop adds them to the loss), and its gradient reg.gradient(y) / batch size added
to the output's gradient by the backward pass."""
import numpy as np


class Tape:
    """One training forward pass: its program, each step's cache and output shapes, and
    the outputs of the steps whose layer regularizes its activity (None for the others)."""

    def __init__(self, program, caches, out_shapes, activity=None):
        self.program, self.caches, self.out_shapes = program, caches, out_shapes
        self.activity = activity or [None] * len(caches)


def _activity_regularizer(layer):
    return getattr(layer, "activity_regularizer", None)


def _per_batch(value, y):
    """Keras divides an activity penalty (and so its gradient) by the batch size, the
    output's first axis (0 for an empty batch: divide_no_nan)."""
    batch = y.shape[0] if y.ndim else 1
    return value / np.float32(batch) if batch else value * np.float32(0)


def forward(program, xs, training, logits_steps=()):
    """(outputs, tape): the program on Keras-layout inputs `xs`; the steps numbered in
    `logits_steps` run their layer with logits=True (their gradient then arrives for their
    pre-activation output, see fastdl.losses.Loss.fused_activation)."""
    values = [None] * program.n_slots
    for s, x in zip(program.input_slots, xs):
        values[s] = x
    for step in program.steps:  # this pass's penalties replace the last one's
        if _activity_regularizer(step.layer) is not None:
            step.layer._activity_losses = []
    caches, out_shapes, activity = [], [], []
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
        reg = _activity_regularizer(step.layer)
        activity.append(None if reg is None else y)
        if reg is not None:
            step.layer._activity_losses += [np.float32(_per_batch(reg(a), a))
                                            for a in (y if isinstance(y, list) else [y])]
    return [values[s] for s in program.output_slots], Tape(program, caches, out_shapes,
                                                            activity)


def _add(dvals, slot, d):
    if d is None:
        return
    dvals[slot] = d if dvals[slot] is None else dvals[slot] + d


def backward(tape, douts, grads):
    """The gradients for the program's inputs (None for an input nothing differentiable
    depends on) from those of its outputs (`douts`, None for an output without one); the
    weights' gradients are added to `grads`."""
    program = tape.program
    dvals = [None] * program.n_slots
    for s, d in zip(program.output_slots, douts):
        _add(dvals, s, d)
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
                dy = _per_batch(reg.gradient(y), y) + (0 if dy is None else dy)
        dx = step.layer._backward(dy, cache, grads)
        if isinstance(step.inputs, list):
            for s, d in zip(step.inputs, dx):
                _add(dvals, s, d)
        else:
            _add(dvals, step.inputs, dx)
    return [dvals[s] for s in program.input_slots]
