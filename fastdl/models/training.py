"""Training a model the way Keras 3 does: compile (optimizer, losses, loss weights,
metrics), train and test steps, and the fit / evaluate loops over arrays or batch sources
(Python generators, Sequence-like objects), with callbacks (fastdl.callbacks).

A train step runs the model's Program forward on Keras-layout arrays (backprop.forward),
takes each output's loss and its gradient (the stable fused form through an output softmax
or sigmoid when the loss allows it, see fastdl.losses.Loss.fused_activation), runs the
Program backward and gives the optimizer the gradients of the trainable weights, whose
layers then repack their plans in place.

Regularization, as Keras: the total loss (fit's and evaluate's `loss`) is the compiled
losses plus sum(model.losses) -- the penalties of the regularized trainable weights and the
layers' activity penalties of this pass (backprop.py) --; each weight penalty's gradient
joins its weight's gradient (_add_penalty_gradients).
"""
import math
import signal
import threading

import numpy as np

from fastdl import _random
from fastdl import _validate as v
from fastdl import callbacks as callbacks_module
from fastdl import losses as losses_module
from fastdl import metrics as metrics_module
from fastdl import optimizers
from fastdl.layers.base import Gradients
from fastdl.models import backprop


class Compiled:
    """What compile() fixed: the optimizer, one loss (or None) and loss weight per output,
    the metrics per output, and the output steps whose activation fuses with their loss."""

    def __init__(self, model, optimizer, loss, loss_weights, metrics, weighted_metrics=None):
        self.optimizer = optimizers.get(optimizer)
        names = model._output_names()
        self.output_names = names
        self.losses = _per_output(loss, names, "loss", losses_module.get)
        if all(l is None for l in self.losses):
            raise ValueError("loss: compile needs a loss to train (a Keras name or a "
                             "fastdl.losses.Loss)")
        weights = _per_output(loss_weights, names, "loss_weights",
                              lambda w: v.real(w, "loss_weights"))
        self.loss_weights = [1.0 if w is None else w for w in weights]
        # Checked now; 'accuracy' is resolved on the first batch (it depends on shapes).
        # Per output: (metric, weighted) pairs, compile's metrics (unweighted, as in Keras)
        # then weighted_metrics (fed fit's sample weights).
        self.metric_specs = [
            [(metrics_module.get(spec), False) for spec in plain] +
            [(metrics_module.get(spec), True) for spec in weighted]
            for plain, weighted in zip(_metric_specs(metrics, names, "metrics"),
                                       _metric_specs(weighted_metrics, names,
                                                     "weighted_metrics"))]
        self.metrics = None   # per output: the metric objects, once resolved
        self.weighted = None  # per output: whether each takes the sample weights
        self._fused = (None, None)

    def fused_steps(self, model):
        """{step: output} of the output steps fused with their loss, for the model's
        current program (a Sequential changed after compile gets its own)."""
        program = model._current_program()
        if self._fused[0] is not program:
            self._fused = (program, _fusable_steps(model, self.losses))
        return self._fused[1]

    def check_targets(self, model, ys):
        """Each output's loss checks all of its targets (class indices in range, ...) at
        once: a bad label found before training, not at the batch that holds it."""
        for loss, y, shape in zip(self.losses, ys, model._output_shapes()):
            known = isinstance(shape, tuple) and all(isinstance(s, int) for s in shape[1:])
            if loss is not None and known:
                loss.check_targets(y, (len(y),) + tuple(shape[1:]))

    def resolve_metrics(self, ys, y_preds):
        if self.metrics is not None:
            return
        self.metrics, self.weighted = [], []
        for specs, loss, y, p in zip(self.metric_specs, self.losses, ys, y_preds):
            out = []
            for m, _ in specs:
                if isinstance(m, metrics_module.AutoAccuracy):  # by shapes, as Keras 3
                    m = m.resolve(np.shape(y), np.shape(p), getattr(loss, "name", None))
                out.append(m)
            self.metrics.append(out)
            self.weighted.append([weighted for _, weighted in specs])

    def metric_names(self):
        """Log names of the metrics, Keras' way: bare for one output, else prefixed by the
        output's name; a weighted metric named as an unweighted one of its output gets
        'weighted_' in front."""
        several = len(self.output_names) > 1
        names = []
        for out_name, ms, flags in zip(self.output_names, self.metrics or [],
                                       self.weighted or []):
            plain = {m.name for m, w in zip(ms, flags) if not w}
            for m, w in zip(ms, flags):
                name = f"weighted_{m.name}" if w and m.name in plain else m.name
                names.append(f"{out_name}_{name}" if several else name)
        return names

    def reset_metrics(self):
        for ms in self.metrics or []:
            for m in ms:
                m.reset_state()


def _per_output(value, names, what, convert):
    """A value per output from one value (every output), a list or a dict by name."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f"{what}: unknown output name(s) {unknown}; the outputs are "
                             f"{names}")
        return [None if value.get(n) is None else convert(value[n]) for n in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(f"{what}: expected {len(names)} entries (one per output "
                             f"{names}), got {len(value)}")
        return [None if item is None else convert(item) for item in value]
    if value is None:
        return [None] * len(names)
    return [convert(value)] * len(names)


def _metric_specs(metrics, names, what):
    if metrics is None:
        return [[] for _ in names]
    if isinstance(metrics, dict):
        unknown = sorted(set(metrics) - set(names))
        if unknown:
            raise ValueError(f"{what}: unknown output name(s) {unknown}; the outputs are "
                             f"{names}")
        return [_listed(metrics.get(n)) for n in names]
    if not isinstance(metrics, (list, tuple)):
        raise TypeError(f"{what}: expected a list (or a dict by output name), got "
                        f"{type(metrics).__name__}")
    if len(names) > 1 and metrics and all(isinstance(m, (list, tuple)) for m in metrics):
        if len(metrics) != len(names):
            raise ValueError(f"{what}: expected one list per output ({len(names)}), got "
                             f"{len(metrics)}")
        return [list(m) for m in metrics]
    return [list(metrics) for _ in names]


def _listed(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _fusable_steps(model, losses):
    """{step index: output index} of output steps whose layer applies the activation its
    loss fuses with (softmax + categorical cross-entropies, sigmoid + binary), whose output
    feeds nothing else."""
    program = model._current_program()
    consumers = {}
    for step in program.steps:
        for s in (step.inputs if isinstance(step.inputs, list) else [step.inputs]):
            consumers[s] = consumers.get(s, 0) + 1
    fused = {}
    for out_index, (slot, loss) in enumerate(zip(program.output_slots, losses)):
        want = getattr(loss, "fused_activation", None)
        if want is None or getattr(loss, "from_logits", False) or consumers.get(slot):
            continue
        if list(program.output_slots).count(slot) > 1:
            continue
        for i, step in enumerate(program.steps):
            act = getattr(step.layer, "activation", None)
            if (step.outputs == slot and hasattr(step.layer, "_logits") and act is not None
                    and act.name == want
                    # an activity penalty's gradient is for the output, not the logits
                    and getattr(step.layer, "activity_regularizer", None) is None):
                fused[i] = out_index
    return fused


# ---------------------------------------------------------------- regularization

def _penalty(model):
    """sum(model.losses): what Keras adds to the compiled losses."""
    return float(np.sum(model.losses, dtype=np.float64))


def _add_penalty_gradients(trainable, grads):
    """Each regularized weight of `trainable` (a model's trainable weights): its penalty's
    gradient added to its gradient."""
    for w in trainable:
        if getattr(w, "regularizer", None) is not None:
            grads.add(w, w.regularizer.gradient(w.value))


def _regularizes_activity(layer):
    """Whether `layer` or a layer inside it (a nested model, a wrapper's) has an
    activity_regularizer."""
    if getattr(layer, "activity_regularizer", None) is not None:
        return True
    inner = list(getattr(layer, "layers", [])) if hasattr(layer, "_current_program") else []
    inner += [sub for _, sub in layer._sublayers()]
    return any(_regularizes_activity(l) for l in inner if l is not layer)


# ---------------------------------------------------------------- steps

def _coefficients(losses, sample_weight, loss_weight):
    """d(total loss) / d(per-sample loss): loss_weight * w / number of losses (Keras'
    sum_over_batch_size), w the sample weights broadcast to the losses."""
    n = losses.size
    if n == 0:
        return np.zeros(losses.shape, np.float32)
    if sample_weight is None:
        return np.full(losses.shape, loss_weight / n, np.float32)
    w = losses_module._broadcast_weight(sample_weight, losses.shape)
    return (w * np.float32(loss_weight / n)).astype(np.float32)


def _loss_values(compiled, ys, y_preds, sws):
    """(total, [per-output reduced loss], [per-sample losses])."""
    total, parts, per_sample = 0.0, [], []
    for loss, weight, y, p, sw in zip(compiled.losses, compiled.loss_weights, ys, y_preds,
                                      sws):
        if loss is None:
            parts.append(None)
            per_sample.append(None)
            continue
        values = loss.call(y, p)
        if sw is not None:
            reduced = float(np.sum(values * losses_module._broadcast_weight(sw, values.shape),
                                   dtype=np.float64))
        else:
            reduced = float(np.sum(values, dtype=np.float64))
        reduced = reduced / values.size if values.size else 0.0
        total += weight * reduced
        parts.append(reduced)
        per_sample.append(values)
    return total, parts, per_sample


def train_step(model, compiled, xs, ys, sws):
    """One update on a batch; returns (total loss, per-output losses, outputs)."""
    program = model._current_program()
    fused = compiled.fused_steps(model)
    y_preds, tape = backprop.forward(program, xs, True, set(fused))
    total, parts, per_sample = _loss_values(compiled, ys, y_preds, sws)
    total += _penalty(model)  # before the update, as Keras computes it
    douts = [None] * len(y_preds)
    fused_by_output = {o: i for i, o in fused.items()}
    for o, (loss, weight, y, p, sw, values) in enumerate(zip(
            compiled.losses, compiled.loss_weights, ys, y_preds, sws, per_sample)):
        if loss is None:
            continue
        coef = _coefficients(values, sw, weight)
        step = fused_by_output.get(o)
        if step is not None:
            layer = program.steps[step].layer
            logits = layer._logits(tape.caches[step]).reshape(p.shape)
            douts[o] = loss.gradient(y, logits, coef, logits=True)
        else:
            douts[o] = loss.gradient(y, p, coef)
    grads = Gradients()
    backprop.backward(tape, douts, grads, input_grads=False)
    trainable = model.trainable_weights
    _add_penalty_gradients(trainable, grads)
    pairs = [(g, w) for g, w in ((grads.get(w), w) for w in trainable) if g is not None]
    with _interrupts_deferred():  # Ctrl-C: after the whole update, never half of it
        if pairs:
            compiled.optimizer.apply_gradients(pairs)
        # Then the state the forward computed (BatchNormalization's moving statistics).
        if backprop.update_state(tape) or pairs:
            model._weights_changed()  # every layer repacks its plans
    return total, parts, y_preds


class _interrupts_deferred:
    """Holds back SIGINT (KeyboardInterrupt) inside the block and raises it at its end, so
    an interrupted fit leaves the weights of the last finished step. A no-op outside the
    main thread (where Python delivers no signals)."""

    def __enter__(self):
        self.caught, self.previous = False, None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.getsignal(signal.SIGINT)
            if self.previous is signal.default_int_handler:
                signal.signal(signal.SIGINT, self._hold)
            else:
                self.previous = None  # someone else's handler: leave it alone
        return self

    def _hold(self, signum, frame):
        self.caught = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if self.caught:
            raise KeyboardInterrupt
        return False


def test_step(model, compiled, xs, ys, sws):
    """(total loss, per-output losses, outputs) of a batch at inference (the layers' pass
    when some regularize their activity, whose penalties join the loss; else the compiled
    inference)."""
    if _regularizes_activity(model):
        y_preds, _ = backprop.forward(model._current_program(), xs, False)
    else:
        y_preds = model._run(xs)
    total, parts, _ = _loss_values(compiled, ys, y_preds, sws)
    return total + _penalty(model), parts, y_preds


class Tracker:
    """Epoch means of the losses (weighted by batch size, as Keras' loss tracker) and the
    metrics' states, turned into Keras' logs."""

    def __init__(self, compiled):
        self.compiled = compiled
        self.reset()

    def reset(self):
        self.count, self.total = 0, 0.0
        self.parts = [0.0] * len(self.compiled.losses)
        self.compiled.reset_metrics()

    def update(self, batch, total, parts, ys, y_preds, sws):
        self.count += batch
        self.total += total * batch
        for i, p in enumerate(parts):
            if p is not None:
                self.parts[i] += p * batch
        self.compiled.resolve_metrics(ys, y_preds)
        for ms, flags, y, p, sw in zip(self.compiled.metrics, self.compiled.weighted, ys,
                                       y_preds, sws):
            for m, weighted in zip(ms, flags):
                m.update_state(y, p, sample_weight=sw if weighted else None)

    def logs(self, prefix=""):
        c = self.compiled
        logs = {}
        flat = [m for ms in c.metrics or [] for m in ms]
        for name, m in zip(c.metric_names(), flat):
            result = np.asarray(m.result())  # a list for Precision(thresholds=[...])
            logs[prefix + name] = float(result) if result.ndim == 0 else result
        several = len(c.output_names) > 1
        logs[prefix + "loss"] = self.total / self.count if self.count else 0.0
        if several:
            for name, part, loss in zip(c.output_names, self.parts, c.losses):
                if loss is not None:
                    logs[prefix + f"{name}_loss"] = part / self.count if self.count else 0.0
        return logs


# ---------------------------------------------------------------- data

class ArrayBatches:
    """Batches of in-memory arrays: (xs, ys, sws) slices, shuffled per epoch if asked."""

    def __init__(self, xs, ys, sws, batch_size, shuffle):
        self.xs, self.ys, self.sws = xs, ys, sws
        self.n = xs[0].shape[0]
        self.batch_size, self.shuffle = batch_size, shuffle

    def __len__(self):
        return -(-self.n // self.batch_size)

    def epoch(self):
        order = None
        if self.shuffle:
            order = _random.generator().permutation(self.n)
        for start in range(0, self.n, self.batch_size):
            idx = (slice(start, start + self.batch_size) if order is None
                   else order[start:start + self.batch_size])
            yield ([a[idx] for a in self.xs], [a[idx] for a in self.ys],
                   [None if w is None else w[idx] for w in self.sws])


class SourceBatches:
    """Batches from a Python generator / iterator of (x, y) or (x, y, sample_weight), or a
    Sequence-like object (len() and [i]); `steps` batches per epoch (all of a Sequence
    by default)."""

    def __init__(self, model, source, steps, what="x"):
        self.model, self.source = model, source
        self.sequence = hasattr(source, "__getitem__") and hasattr(source, "__len__")
        if isinstance(source, (str, bytes)) or not (self.sequence or
                                                    hasattr(source, "__iter__")):
            raise TypeError(f"{what}: expected arrays, a generator or a Sequence of batches, "
                            f"got {type(source).__name__}")
        if steps is None and not self.sequence:
            raise ValueError("steps_per_epoch: a generator needs steps_per_epoch (fastdl "
                             "cannot tell where an epoch of a generator ends)")
        self.steps = steps if steps is not None else len(source)
        self._iter = None if self.sequence else iter(source)

    def __len__(self):
        return self.steps

    def epoch(self):
        for i in range(self.steps):
            if self.sequence:
                item = self.source[i % len(self.source)]
            else:
                try:
                    item = next(self._iter)
                except StopIteration:
                    return
            yield self.model._batch_arrays(item)
        if self.sequence and hasattr(self.source, "on_epoch_end"):
            self.source.on_epoch_end()


def split_batch(item):
    """(x, y, sample_weight) from a batch source's item."""
    if not isinstance(item, tuple) or len(item) not in (2, 3):
        raise ValueError(f"x: a batch source must give (x, y) or (x, y, sample_weight) "
                         f"tuples, got {type(item).__name__}")
    return item if len(item) == 3 else (item[0], item[1], None)


def class_sample_weights(class_weight, y, n):
    """Per-sample weights from {class: weight} and the targets (class indices, or one-hot
    rows whose argmax is the class), as Keras does."""
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight: expected a dict {{class index: weight}}, got "
                        f"{type(class_weight).__name__}")
    y = np.asarray(y)
    if y.ndim >= 2 and y.shape[-1] > 1:
        classes = np.argmax(y, axis=-1).reshape(n, -1)[:, 0]
    else:
        classes = y.reshape(n, -1)[:, 0].astype(np.int64)
    weights = np.ones(n, np.float32)
    for c, w in class_weight.items():
        weights[classes == int(c)] = v.real(w, "class_weight")
    return weights


def num_batches(n, batch_size):
    return max(1, math.ceil(n / batch_size)) if n else 0


def make_callbacks(model, callbacks, verbose, epochs, steps):
    return callbacks_module.CallbackList(callbacks, add_history=True,
                                         add_progbar=verbose != 0, verbose=verbose,
                                         epochs=epochs, steps=steps, model=model)
