"""The training face of models (Keras 3's): compile, fit, evaluate, train_on_batch,
test_on_batch. The steps and loops themselves are in training.py."""
import numpy as np

from fastdl import _validate as v
from fastdl.layers.base import Gradients
from fastdl.models import backprop, training


class TrainingMixin:
    """Mixed into Model (a model is also a layer: _train_forward/_backward let it train
    inside another model)."""

    optimizer = None
    stop_training = False

    # ------------------------------------------------------------ compile

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True):
        """Sets the optimizer (a name or an Optimizer), the loss (a Keras name or a Loss;
        a list or dict by output name for several outputs), loss_weights, metrics (a
        list, or per output; unweighted) and weighted_metrics (the same forms; fed fit's
        sample and class weights). run_eagerly, steps_per_execution, jit_compile and
        auto_scale_loss are accepted for Keras compatibility and change nothing."""
        self._compiled = training.Compiled(self, optimizer, loss, loss_weights, metrics,
                                           weighted_metrics)
        self.optimizer = self._compiled.optimizer
        self.loss = loss

    def _output_names(self):
        return [t.layer.name for t in self.outputs]

    def _output_shapes(self):
        return [t.shape for t in self.outputs]

    def _require_compiled(self, what):
        compiled = getattr(self, "_compiled", None)
        if compiled is None:
            raise RuntimeError(f"{self.name}: call compile(optimizer, loss) before {what}")
        return compiled

    @property
    def metrics_names(self):
        compiled = getattr(self, "_compiled", None)
        if compiled is None:
            return []
        return ["loss"] + compiled.metric_names()

    # ------------------------------------------------------------ arrays

    def _targets(self, y, n, what="y"):
        """One array per output from y (an array, a list, or a dict by output name)."""
        names = self._output_names()
        if isinstance(y, dict):
            missing = [name for name in names if name not in y]
            if missing or set(y) - set(names):
                raise ValueError(f"{what}: expected a dict with the output names {names}, "
                                 f"got keys {sorted(y)}")
            ys = [y[name] for name in names]
        elif isinstance(y, (list, tuple)) and len(names) > 1:
            ys = list(y)
        else:
            ys = [y]
        if len(ys) != len(names):
            raise ValueError(f"{what}: {self.name} has {len(names)} outputs ({names}), got "
                             f"{len(ys)} target array(s)")
        out = []
        for i, t in enumerate(ys):
            t = v.real_array(t, what if len(ys) == 1 else f"{what}[{i}]")
            if t.ndim == 0 or t.shape[0] != n:
                raise ValueError(f"{what}: expected {n} samples (x's batch size), got shape "
                                 f"{t.shape}")
            out.append(t)
        return out

    def _weights_arg(self, sample_weight, n, outputs, what="sample_weight"):
        if sample_weight is None:
            return [None] * outputs
        items = sample_weight if isinstance(sample_weight, (list, tuple)) and outputs > 1 \
            else [sample_weight] * outputs
        out = []
        for w in items:
            w = None if w is None else v.float32_array(w, what)
            if w is not None and (w.ndim == 0 or w.shape[0] != n):
                raise ValueError(f"{what}: expected {n} entries (x's batch size), got shape "
                                 f"{w.shape}")
            out.append(w)
        return out

    def _batch_arrays(self, item):
        """(xs, ys, sws) of one batch from a batch source's (x, y[, sample_weight])."""
        x, y, sw = training.split_batch(item)
        xs = self._prepare(x)
        n = xs[0].shape[0]
        ys = self._targets(y, n)
        return xs, ys, self._weights_arg(sw, n, len(ys))

    # ------------------------------------------------------------ one batch

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict=False):
        """One update on one batch; the loss (and metrics) of that batch."""
        compiled = self._require_compiled("train_on_batch")
        return_dict = v.flag(return_dict, "return_dict")
        xs, ys, sws = self._batch_arrays((x, y, sample_weight))
        if class_weight is not None:
            sws = [training.class_sample_weights(class_weight, ys[0], xs[0].shape[0])]
        tracker = training.Tracker(compiled)
        total, parts, y_preds = training.train_step(self, compiled, xs, ys, sws)
        tracker.update(xs[0].shape[0], total, parts, ys, y_preds, sws)
        return _result(tracker.logs(), return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The loss (and metrics) of one batch, without updating anything."""
        compiled = self._require_compiled("test_on_batch")
        return_dict = v.flag(return_dict, "return_dict")
        xs, ys, sws = self._batch_arrays((x, y, sample_weight))
        tracker = training.Tracker(compiled)
        total, parts, y_preds = training.test_step(self, compiled, xs, ys, sws)
        tracker.update(xs[0].shape[0], total, parts, ys, y_preds, sws)
        return _result(tracker.logs(), return_dict)

    # ------------------------------------------------------------ loops

    def _batches(self, x, y, sample_weight, class_weight, batch_size, shuffle, steps,
                 what="x"):
        if y is None and not isinstance(x, (np.ndarray, list, tuple, dict)):
            if sample_weight is not None or class_weight is not None:
                raise ValueError("sample_weight, class_weight: a batch source gives its "
                                 "own sample weights")
            return training.SourceBatches(self, x, steps, what)
        if y is None:
            raise ValueError(f"y: fit/evaluate on arrays needs targets y")
        xs = self._prepare(x)
        n = xs[0].shape[0]
        ys = self._targets(y, n)
        self._compiled.check_targets(self, ys)
        sws = self._weights_arg(sample_weight, n, len(ys))
        if class_weight is not None:
            if len(ys) > 1:
                raise ValueError("class_weight: only for models of one output")
            sws = [training.class_sample_weights(class_weight, ys[0], n)]
        return training.ArrayBatches(xs, ys, sws, batch_size, shuffle)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Trains for `epochs` epochs (from initial_epoch) on arrays x, y (or a batch source
        x: a generator of (x, y[, sample_weight]) with steps_per_epoch, or a Sequence-like
        object); returns the History. Keras' arguments and behaviour: validation_split
        takes the last fraction of the arrays before shuffling; shuffle permutes the
        training samples every epoch; verbose 0/1/2/'auto'."""
        compiled = self._require_compiled("fit")
        batch_size = 32 if batch_size is None else v.integer(batch_size, "batch_size", 1)
        epochs = v.integer(epochs, "epochs", 0)
        initial_epoch = v.integer(initial_epoch, "initial_epoch", 0)
        verbose = v.verbosity(verbose)
        split = v.real(validation_split, "validation_split", 0.0, 1.0)
        if steps_per_epoch is not None:
            steps_per_epoch = v.integer(steps_per_epoch, "steps_per_epoch", 1)
        if validation_steps is not None:
            validation_steps = v.integer(validation_steps, "validation_steps", 1)
        if validation_batch_size is not None:
            validation_batch_size = v.integer(validation_batch_size, "validation_batch_size",
                                              1)
        validation_freq = v.integer(validation_freq, "validation_freq", 1)
        if validation_data is not None and split:
            split = 0.0  # Keras: validation_data wins
        if split:
            if not isinstance(x, (np.ndarray, list, tuple, dict)) or y is None:
                raise ValueError("validation_split: only for arrays x and y")
            x, y, sample_weight, validation_data = _split(self, x, y, sample_weight, split)
        train = self._batches(x, y, sample_weight, class_weight, batch_size,
                              v.flag(shuffle, "shuffle"), steps_per_epoch)
        val = None
        if validation_data is not None:
            val = self._validation(validation_data, validation_batch_size or batch_size,
                                   validation_steps)
        steps = len(train) if steps_per_epoch is None else min(steps_per_epoch, len(train))
        cbs = training.make_callbacks(self, callbacks, verbose, epochs, steps)
        self.stop_training = False
        tracker = training.Tracker(compiled)
        cbs.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            tracker.reset()
            cbs.on_epoch_begin(epoch)
            for batch, (xs, ys, sws) in enumerate(train.epoch()):
                if batch >= steps:
                    break
                cbs.on_train_batch_begin(batch)
                total, parts, y_preds = training.train_step(self, compiled, xs, ys, sws)
                tracker.update(xs[0].shape[0], total, parts, ys, y_preds, sws)
                cbs.on_train_batch_end(batch, tracker.logs())
                if self.stop_training:  # Keras: a callback stops within the epoch
                    break
            logs = tracker.logs()
            if val is not None and (epoch + 1) % validation_freq == 0:
                logs.update(self._evaluate_batches(val, compiled, cbs, prefix="val_"))
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end(logs if epochs > initial_epoch else {})
        return cbs.history

    def _validation(self, data, batch_size, steps):
        """The validation batches; what is wrong with their arrays is named as
        validation_data's (before any training step)."""
        if isinstance(data, tuple) and len(data) in (2, 3):
            x, y = data[0], data[1]
            sw = data[2] if len(data) == 3 else None
            try:
                return self._batches(x, y, sw, None, batch_size, False, steps,
                                     "validation_data")
            except (ValueError, TypeError) as exc:
                raise type(exc)(f"validation_data: {exc}") from None
        if isinstance(data, (np.ndarray, list, tuple, dict)):
            raise TypeError(f"validation_data: expected a tuple (x, y) or (x, y, "
                            f"sample_weight), or a batch source, got "
                            f"{type(data).__name__}" + (f" of {len(data)}"
                                                        if isinstance(data, tuple) else ""))
        return self._batches(data, None, None, None, batch_size, False, steps,
                             "validation_data")

    def _evaluate_batches(self, batches, compiled, cbs, prefix=""):
        tracker = training.Tracker(compiled)
        if cbs:
            cbs.on_test_begin()
        for batch, (xs, ys, sws) in enumerate(batches.epoch()):
            if cbs:
                cbs.on_test_batch_begin(batch)
            total, parts, y_preds = training.test_step(self, compiled, xs, ys, sws)
            tracker.update(xs[0].shape[0], total, parts, ys, y_preds, sws)
            if cbs:
                cbs.on_test_batch_end(batch, tracker.logs())
        logs = tracker.logs()
        if cbs:
            cbs.on_test_end(logs)
        return {prefix + key: value for key, value in logs.items()}

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """The loss and metrics over x, y (or a batch source): a number (the loss alone),
        a list [loss, metrics...] or with return_dict a dict of Keras' log names."""
        compiled = self._require_compiled("evaluate")
        return_dict = v.flag(return_dict, "return_dict")
        batch_size = 32 if batch_size is None else v.integer(batch_size, "batch_size", 1)
        if steps is not None:
            steps = v.integer(steps, "steps", 1)
        batches = self._batches(x, y, sample_weight, None, batch_size, False, steps)
        cbs = training.make_callbacks(self, callbacks, v.verbosity(verbose), 1,
                                       len(batches))
        logs = self._evaluate_batches(batches, compiled, cbs)
        return _result(logs, return_dict)

    # ------------------------------------------------------------ as a layer

    def _train_forward(self, x, training_flag):
        xs = x if isinstance(x, list) else [x]
        outs, tape = backprop.forward(self._current_program(), xs, training_flag)
        return self._structure(outs, self._several_outputs), tape

    def _backward(self, dy, tape, grads):
        douts = dy if isinstance(dy, list) else [dy]
        dxs = backprop.backward(tape, douts, grads)
        return dxs if self._several_inputs else dxs[0]

    def _update_state(self, tape):
        return backprop.update_state(tape)


def _result(logs, return_dict):
    if return_dict:
        return logs
    values = [logs["loss"]] + [value for key, value in logs.items() if key != "loss"]
    return values[0] if len(values) == 1 else values


def _split(model, x, y, sample_weight, split):
    """(x, y, sample_weight) of the first 1 - split of the samples and the validation data
    (the rest), as Keras splits (before any shuffling)."""
    xs = model._prepare(x)
    n = xs[0].shape[0]
    ys = model._targets(y, n)
    cut = int(n * (1.0 - split))
    if cut == 0 or cut == n:
        raise ValueError(f"validation_split: {split} of {n} samples leaves no "
                         f"{'training' if cut == 0 else 'validation'} samples")

    def take(arrays, part):
        out = [a[part] for a in arrays]
        return out if len(out) > 1 else out[0]

    sws = model._weights_arg(sample_weight, n, len(ys))

    def take_weights(part):
        out = [None if w is None else w[part] for w in sws]
        return out if len(out) > 1 else out[0]

    train = (take(xs, slice(0, cut)), take(ys, slice(0, cut)),
             None if sample_weight is None else take_weights(slice(0, cut)))
    val = (take(xs, slice(cut, None)), take(ys, slice(cut, None)))
    if sample_weight is not None:
        val = val + (take_weights(slice(cut, None)),)
    return train[0], train[1], train[2], val
