"""fastdl.callbacks: Keras 3's callbacks (keras.callbacks): names, constructor arguments,
defaults, printed messages and behaviour.

    Callback            the base class: every hook a no-op
    CallbackList        what fit/evaluate/predict drive: your callbacks, then a History and
                        a ProgbarLogger (added unless given), each with .model and .params
    History             .history {name: [value per epoch]}, .epoch, .params; fit returns it
    ProgbarLogger       Keras' progress bar on sys.stdout (verbose 1: one line updated in
                        place per batch; 2: one line per epoch)
    EarlyStopping       stops fit when the monitored value stops improving
    ModelCheckpoint     saves the model or its weights every epoch or every n batches
    ReduceLROnPlateau   multiplies the learning rate by `factor` on a plateau
    LearningRateScheduler  learning rate from schedule(epoch, lr) at each epoch's start
    CSVLogger           one CSV row per epoch
    TerminateOnNaN      stops fit on a NaN or infinite batch loss
    LambdaCallback      hooks from functions

The training loop's side of the contract (what these rely on, as Keras' trainer does):

- it builds CallbackList(callbacks, add_history=True, add_progbar=verbose != 0,
  verbose=verbose, epochs=epochs, steps=steps_per_epoch, model=model), calls
  on_train_begin, then per epoch on_epoch_begin(epoch), on_train_batch_begin(batch) and
  on_train_batch_end(batch, logs) per batch (logs: the running means so far),
  on_epoch_end(epoch, logs) with the 'val_' results added, checks model.stop_training
  after each epoch, and ends with on_train_end(logs); evaluate and predict drive the
  on_test_* / on_predict_* hooks the same way (epoch and batch indices count from 0);
- the model has `stop_training` (a bool), `optimizer.learning_rate` (a float to read and
  assign), get_weights() / set_weights(list), save(path) and save_weights(path);
- CallbackList hands every callback one dict per hook: keys sorted, nested dicts flattened,
  numbers as Python floats (Keras' pythonify_logs). A callback that adds to it (e.g.
  ReduceLROnPlateau's 'learning_rate') is seen by the callbacks after it: History and
  ProgbarLogger come last.

`mode='auto'` follows Keras 3: a monitored 'loss' (also 'val_loss', and here any name
ending in '_loss') is minimised; another name is looked up among the model's compiled
metrics, whose class says which way is better (accuracies, precision, recall, AUC: max;
errors and cross-entropies: min); a name that is not found but is a Keras metric's default
name ('accuracy', 'acc', 'auc', 'mse', ...) goes by that metric; anything else is a
ValueError at the first epoch end asking for mode='min' or 'max'.
"""
import csv
import inspect
import math
import numbers
import operator
import os
import sys
import time
import warnings

import numpy as np

from fastdl import _validate as v

__all__ = ["Callback", "CallbackList", "CSVLogger", "EarlyStopping", "History",
           "LambdaCallback", "LearningRateScheduler", "ModelCheckpoint", "ProgbarLogger",
           "ReduceLROnPlateau", "TerminateOnNaN"]


# ---------------------------------------------------------------- helpers

def _print(message, line_break=True):
    """Keras' io_utils.print_msg: to sys.stdout (looked up now, so redirection works),
    flushed; '━' becomes '=' where the stream's encoding has no such character."""
    message = f"{message}\n" if line_break else str(message)
    stream = sys.stdout
    try:
        stream.write(message)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "utf-8"
        stream.write(message.replace("━", "=").encode(encoding, "ignore").decode(encoding))
    stream.flush()


def _pythonify(logs):
    """Keras' pythonify_logs: a new dict, keys sorted, nested dicts flattened, numbers
    (NumPy scalars and 0-d arrays too) as Python floats; other values as they are."""
    out = {}
    for key, value in sorted((logs or {}).items()):
        if isinstance(value, dict):
            out.update(_pythonify(value))
            continue
        if isinstance(value, (numbers.Real, np.generic)) or (
                isinstance(value, np.ndarray) and value.ndim == 0):
            try:
                value = float(value)
            except (TypeError, ValueError):
                pass
        out[key] = value
    return out


def _verbosity(value, name="verbose"):
    """A verbosity level: an int >= 0 (a bool counts as 0 or 1, as Keras takes it)."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    return v.integer(value, name, 0)


def _finite(value, name, low=None, allow_none=False):
    """A finite float (>= low when given); None passes when allow_none."""
    if value is None and allow_none:
        return None
    x = v.real(value, name, low=low)
    if not math.isfinite(x):
        raise ValueError(f"{name}: expected a finite number, got {x}")
    return x


def _path(value, name):
    """A str or os.PathLike as a str."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name}: expected a non-empty path (str or os.PathLike), got "
                        f"{value!r}")
    return value


def _learning_rate(optimizer):
    return float(np.asarray(optimizer.learning_rate))


# ---------------------------------------------------------------- base classes

class Callback:
    """Base class of callbacks: every hook is a no-op to override. `model` and `params`
    are set by CallbackList (set_model / set_params) before training starts; params holds
    {'verbose', 'epochs', 'steps'} in fit.

    Hooks (Keras' names and signatures; logs is a dict of floats or None):
    on_train_begin/end(logs), on_epoch_begin/end(epoch, logs),
    on_train_batch_begin/end(batch, logs) (which call the legacy on_batch_begin/end),
    on_test_begin/end(logs), on_test_batch_begin/end(batch, logs),
    on_predict_begin/end(logs), on_predict_batch_begin/end(batch, logs)."""

    model = None
    params = None

    def __init__(self):
        self.params = None
        self.model = None

    def set_params(self, params):
        self.params = params

    def set_model(self, model):
        self.model = model

    def on_batch_begin(self, batch, logs=None):
        """The legacy name of on_train_batch_begin (called by it)."""

    def on_batch_end(self, batch, logs=None):
        """The legacy name of on_train_batch_end (called by it)."""

    def on_epoch_begin(self, epoch, logs=None):
        """At the start of an epoch of fit (epoch counts from 0)."""

    def on_epoch_end(self, epoch, logs=None):
        """At the end of an epoch of fit: logs has the epoch's training results and the
        validation ones ('val_' names) when validation ran."""

    def on_train_batch_begin(self, batch, logs=None):
        """Before a training batch (batch counts from 0 in each epoch)."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        """After a training batch: logs has the epoch's running results."""
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        """Before a batch of evaluate (or of fit's validation)."""

    def on_test_batch_end(self, batch, logs=None):
        """After a batch of evaluate (or of fit's validation): the running results."""

    def on_predict_batch_begin(self, batch, logs=None):
        """Before a batch of predict."""

    def on_predict_batch_end(self, batch, logs=None):
        """After a batch of predict."""

    def on_train_begin(self, logs=None):
        """At the start of fit."""

    def on_train_end(self, logs=None):
        """At the end of fit: logs are the last epoch's."""

    def on_test_begin(self, logs=None):
        """At the start of evaluate (or of fit's validation)."""

    def on_test_end(self, logs=None):
        """At the end of evaluate (or of fit's validation): the results."""

    def on_predict_begin(self, logs=None):
        """At the start of predict."""

    def on_predict_end(self, logs=None):
        """At the end of predict."""


_HOOKS = tuple(sorted(name for name in vars(Callback) if name.startswith("on_")))


class CallbackList(Callback):
    """Callbacks driven as one: each hook is forwarded to every callback in order, with one
    pythonified copy of the logs (see the module docstring).

    callbacks: a Callback, a list or tuple of them (nested ones are flattened), or None.
    add_history / add_progbar: append a History / ProgbarLogger unless the list has one
    (History first, then ProgbarLogger, after your callbacks, as Keras does).
    model: set on every callback (and model.history becomes the History); params (the
    other keyword arguments, e.g. verbose, epochs, steps): given to every callback."""

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None,
                 **params):
        super().__init__()
        self.callbacks = _flatten_callbacks(callbacks)
        add_history = v.flag(add_history, "add_history")
        add_progbar = v.flag(add_progbar, "add_progbar")
        self._history = next((c for c in self.callbacks if isinstance(c, History)), None)
        self._progbar = next((c for c in self.callbacks if isinstance(c, ProgbarLogger)),
                             None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)
        self.set_model(model)
        self.set_params(params)

    @property
    def history(self):
        """The History among the callbacks (None if there is none)."""
        return self._history

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)

    def append(self, callback):
        """Adds a callback at the end (given this list's model and params)."""
        callback = _flatten_callbacks([callback])[0]
        if self.model is not None:
            callback.set_model(self.model)
        if self.params:
            callback.set_params(self.params)
        self.callbacks.append(callback)

    def set_params(self, params):
        self.params = params
        if params:
            for callback in self.callbacks:
                callback.set_params(params)

    def set_model(self, model):
        if model is None:
            return
        self.model = model
        if self._history is not None:
            model.history = self._history
        for callback in self.callbacks:
            callback.set_model(model)

    def _call(self, hook, *args, logs=None):
        """hook(*args, logs) on every callback; batch hooks get logs by keyword, as Keras
        calls them (LambdaCallback functions may rely on either)."""
        logs = _pythonify(logs)
        by_keyword = "batch" in hook
        for callback in self.callbacks:
            if by_keyword:
                getattr(callback, hook)(*args, logs=logs)
            else:
                getattr(callback, hook)(*args, logs)

    def on_batch_begin(self, batch, logs=None):
        self._call("on_batch_begin", batch, logs=logs)

    def on_batch_end(self, batch, logs=None):
        self._call("on_batch_end", batch, logs=logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs=logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, logs=logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, logs=logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call("on_predict_batch_begin", batch, logs=logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call("on_predict_batch_end", batch, logs=logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs=logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs=logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs=logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs=logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs=logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs=logs)


def _flatten_callbacks(callbacks):
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        return [callbacks]
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks: expected a list of Callback instances, got "
                        f"{type(callbacks).__name__}")
    out = []
    for i, item in enumerate(callbacks):
        if isinstance(item, (list, tuple)):
            out += _flatten_callbacks(item)
        elif isinstance(item, Callback):
            out.append(item)
        else:
            kind = "the class" if isinstance(item, type) else "a"
            raise TypeError(f"callbacks: expected Callback instances (fastdl.callbacks), "
                            f"got {kind} {getattr(item, '__name__', type(item).__name__)} "
                            f"at index {i}")
    return out


class History(Callback):
    """Records every epoch's logs: history[name] is the list of per-epoch values, epoch
    the list of epoch indices. fit adds one and returns it (also as model.history)."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self


# ---------------------------------------------------------------- progress bar

class Progbar:
    """Keras' progress bar (keras.utils.Progbar, as ProgbarLogger uses it: values shown as
    given, not averaged).

    target: the number of steps, or None if unknown. verbose 1: one line rewritten in
    place ('\\r'), at most every `interval` seconds and at the end; 2: one line at the end.
    Colours (ANSI) only where stdout is a terminal or a notebook."""

    def __init__(self, target, width=20, verbose=1, interval=0.05, unit_name="step"):
        self.target, self.width, self.verbose = target, width, verbose
        self.interval, self.unit_name = interval, unit_name
        self._values = {}
        self._start = time.monotonic()
        self._last_update = None
        self._time_after_first_step = None
        self._prev_width = 0

    @staticmethod
    def _terminal():
        return ((hasattr(sys.stdout, "isatty") and sys.stdout.isatty())
                or "ipykernel" in sys.modules)

    def update(self, current, values=None, finalize=None):
        """Shows step `current` with values [(name, value), ...] (kept across calls, in the
        order first seen). finalize: the last update (default: current >= target)."""
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        for key, value in values or []:
            self._values[key] = value
        now = time.monotonic()
        per_step = self._step_duration(current, now)
        if self.verbose == 1:
            if (not finalize and self._last_update is not None
                    and now - self._last_update < self.interval):
                return
            self._line(current, now, per_step, finalize)
        elif self.verbose == 2 and finalize and self.target:
            digits = int(math.log10(self.target)) + 1
            line = (f"%{digits}d/%d" % (current, self.target)
                    + f" - {now - self._start:.0f}s -{self._time(per_step)}")
            for key, value in self._values.items():
                line += f" - {key}:{_value_text(value, signed=False)}"
            _print(line)
        self._last_update = now

    def _line(self, current, now, per_step, finalize):
        color = self._terminal()

        def styled(text, code):
            return f"\x1b[{code}m{text}\x1b[0m" if color and text else text

        if self.target:
            digits = int(math.log10(self.target)) + 1
            count = f"%{digits}d/%d" % (current, self.target)
            done = max(0, min(self.width, int(self.width * current / self.target)))
            bar_text = f"{count} {'━' * self.width}"
            bar = (styled(count, 1) + " " + styled("━" * done, 32)
                   + styled("━" * (self.width - done), 37))
        else:
            bar = bar_text = "%7d/Unknown" % current
        if self.target and not finalize:
            eta = per_step * (self.target - current)
            if eta > 3600:
                clock = "%d:%02d:%02d" % (eta // 3600, (eta % 3600) // 60, eta % 60)
            elif eta > 60:
                clock = "%d:%02d" % (eta // 60, eta % 60)
            else:
                clock = "%ds" % eta
        else:
            clock = f"{now - self._start:.0f}s"
        rest = self._time(per_step) + "".join(
            f" - {key}:{_value_text(value, signed=True)}"
            for key, value in self._values.items())
        width = len(bar_text) + 1 + len(clock) + len(rest)
        line = ("\r" if _dynamic_display() else "\n") + bar + " " + styled(clock, 1) + rest
        if self._prev_width > width:
            line += " " * (self._prev_width - width)
        if finalize:
            line += "\n"
        _print(line, line_break=False)
        self._prev_width = width

    def _time(self, per_step):
        if per_step >= 1 or per_step == 0:
            return f" {per_step:.0f}s/{self.unit_name}"
        if per_step >= 1e-3:
            return f" {per_step * 1e3:.0f}ms/{self.unit_name}"
        return f" {per_step * 1e6:.0f}us/{self.unit_name}"

    def _step_duration(self, current, now):
        """Keras' estimate: the mean step time, leaving out the first step once there are
        more (it includes warm-up)."""
        if not current:
            return 0
        if self._time_after_first_step is not None and current > 1:
            per_step = (now - self._time_after_first_step) / (current - 1)
        else:
            per_step = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per_step


def _dynamic_display():
    """Keras' condition for rewriting the line in place ('\\r') rather than starting a new
    one: a terminal, a notebook, any POSIX system, or PyCharm."""
    return ((hasattr(sys.stdout, "isatty") and sys.stdout.isatty())
            or "ipykernel" in sys.modules or os.name == "posix"
            or "PYCHARM_HOSTED" in os.environ)


def _value_text(value, signed):
    """' %.4f', or ' %.4e' for small values, as Keras prints a metric; verbose 1 looks at
    |value| (signed=True), verbose 2 at the value itself (as Keras does)."""
    if isinstance(value, (numbers.Real, np.generic, np.ndarray)) and not isinstance(
            value, (bool, np.bool_)):
        x = float(np.mean(value))
        return f" {x:.4f}" if (abs(x) if signed else x) > 1e-3 else f" {x:.4e}"
    return f" {value}"


class ProgbarLogger(Callback):
    """Prints Keras' progress output to sys.stdout (verbose, epochs and steps from params).

    fit, verbose 1: 'Epoch 1/3' (when epochs > 1), then one line updated in place,
    '12/32 ━━━━━━━━━━━━━━━━━━━━ 0s 3ms/step - accuracy: 0.5000 - loss: 0.6931', ending
    with the epoch's logs (val_ ones included). verbose 2: one line per epoch,
    '32/32 - 0s - 3ms/step - accuracy: ... - loss: ...'. Unknown steps (None): the first
    epoch shows '      12/Unknown' and the count it reached is the target afterwards.
    evaluate shows its own bar unless it runs inside fit (validation is silent); predict
    shows a bar without values."""

    def __init__(self):
        super().__init__()
        self.seen = 0
        self.progbar = None
        self.target = None
        self.verbose = 1
        self.epochs = 1
        self._called_in_fit = False

    def set_params(self, params):
        super().set_params(params)
        if not isinstance(params, dict) or not {"verbose", "epochs", "steps"} <= set(params):
            raise ValueError(f"params: ProgbarLogger needs a dict with 'verbose', 'epochs' "
                             f"and 'steps', got {params!r}")
        self.verbose = v.verbosity(params["verbose"])
        self.epochs = v.integer(params["epochs"], "epochs", 0)
        steps = params["steps"]
        self.target = None if steps is None else v.integer(steps, "steps", 0)

    def on_train_begin(self, logs=None):
        self._called_in_fit = True

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._reset_progbar()
            self._maybe_init_progbar()

    def on_predict_begin(self, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()

    def on_epoch_begin(self, epoch, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()
        if self.verbose and self.epochs > 1:
            _print(f"Epoch {epoch + 1}/{self.epochs}")

    def on_train_batch_end(self, batch, logs=None):
        self._update_progbar(batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._update_progbar(batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._update_progbar(batch, None)  # predictions are not values to show

    def on_epoch_end(self, epoch, logs=None):
        self._finalize_progbar(logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finalize_progbar(logs)

    def on_predict_end(self, logs=None):
        self._finalize_progbar(logs)

    def _reset_progbar(self):
        self.seen = 0
        self.progbar = None

    def _maybe_init_progbar(self):
        if self.progbar is None:
            self.progbar = Progbar(target=self.target, verbose=self.verbose,
                                   unit_name="step")

    def _update_progbar(self, batch, logs):
        self._maybe_init_progbar()
        self.seen = batch + 1
        if self.verbose == 1:
            self.progbar.update(self.seen, list((logs or {}).items()), finalize=False)

    def _finalize_progbar(self, logs):
        self._maybe_init_progbar()
        if self.target is None:
            self.target = self.seen
            self.progbar.target = self.target
        self.progbar.update(self.target, list((logs or {}).items()), finalize=True)


# ---------------------------------------------------------------- monitoring

# Which way Keras 3's metric classes improve (their `_direction`), by class name: a
# compiled metric is matched on its class or a base class.
_UP_CLASSES = frozenset({
    "Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "Precision", "Recall",
    "AUC", "SensitivitySpecificityBase", "FBetaScore", "F1Score", "IoU", "MeanIoU",
    "OneHotIoU", "OneHotMeanIoU", "BinaryIoU", "R2Score", "CosineSimilarity",
    "PearsonCorrelation", "ConcordanceCorrelation", "AutoAccuracy"})
_DOWN_CLASSES = frozenset({
    "MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError", "RootMeanSquaredError", "LogCoshError", "Hinge",
    "SquaredHinge", "CategoricalHinge", "BinaryCrossentropy", "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy", "KLDivergence", "Poisson"})
# The same by the default names (and aliases) of those metrics, for names no compiled
# metric answers to.
_UP_NAMES = frozenset({
    "accuracy", "acc", "binary_accuracy", "categorical_accuracy",
    "sparse_categorical_accuracy", "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy", "precision", "recall", "auc", "f1_score",
    "fbeta_score", "iou", "mean_iou", "binary_iou", "r2_score", "cosine_similarity",
    "pearson_correlation", "concordance_correlation"})
_DOWN_NAMES = frozenset({
    "mse", "mae", "mape", "msle", "mean_squared_error", "mean_absolute_error",
    "mean_absolute_percentage_error", "mean_squared_logarithmic_error",
    "root_mean_squared_error", "logcosh", "log_cosh_error", "hinge", "squared_hinge",
    "categorical_hinge", "binary_crossentropy", "categorical_crossentropy",
    "sparse_categorical_crossentropy", "kl_divergence", "poisson"})


def _class_direction(metric):
    direction = getattr(metric, "_direction", None)
    if direction in ("up", "down"):
        return direction
    for cls in type(metric).__mro__:
        if cls.__name__ in _UP_CLASSES:
            return "up"
        if cls.__name__ in _DOWN_CLASSES:
            return "down"
    return None


def _compiled_metrics(model):
    """{log name: metric object} of the model's compiled metrics: Keras' model.metrics
    (containers flattened) and fastdl's compiled metrics (named as in the logs)."""
    found = {}
    items = getattr(model, "metrics", None)
    if isinstance(items, (list, tuple)):
        for m in items:
            inner = getattr(m, "metrics", None)
            for metric in (inner if isinstance(inner, (list, tuple)) else [m]):
                name = getattr(metric, "name", None)
                if isinstance(name, str):
                    found[name] = metric
    compiled = getattr(model, "_compiled", None)
    per_output = getattr(compiled, "metrics", None)
    if per_output and hasattr(compiled, "metric_names"):
        flat = [m for ms in per_output for m in ms]
        found.update(zip(compiled.metric_names(), flat))
    return found


class MonitorCallback(Callback):
    """Base of the callbacks that watch one logged quantity (Keras' MonitorCallback):
    monitor, mode ('auto', 'min', 'max'), baseline (the initial best, or None) and
    min_delta (an improvement must beat the best by more than |min_delta|)."""

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"monitor: expected the name of a logged quantity (a non-empty "
                            f"string), got {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode: expected 'auto', 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.mode = mode
        self.best = _finite(baseline, "baseline", allow_none=True)
        self.min_delta = abs(_finite(min_delta, "min_delta"))
        self.monitor_op = None

    def _set_monitor_op(self):
        """Picks `<` or `>` (see the module docstring for mode='auto'); min_delta turns
        negative when lower is better, as in Keras."""
        if self.mode == "min":
            op = operator.lt
        elif self.mode == "max":
            op = operator.gt
        else:
            op = self._auto_op()
        self.monitor_op = op
        if op is operator.lt:
            self.min_delta *= -1

    def _auto_op(self):
        name = self.monitor.removeprefix("val_")
        if name == "loss" or name.endswith("_loss"):
            return operator.lt
        direction = None
        metric = _compiled_metrics(self.model).get(name)
        if metric is not None:
            direction = _class_direction(metric)
        if direction is None:
            direction = ("up" if name in _UP_NAMES else
                         "down" if name in _DOWN_NAMES else None)
        if direction is None:
            raise ValueError(f"monitor: {type(self).__name__} monitors {self.monitor!r} with "
                             f"mode='auto', but it is not known whether that metric should "
                             f"be maximized or minimized; pass mode='max' or mode='min'")
        return operator.gt if direction == "up" else operator.lt

    def _is_improvement(self, monitor_value, reference_value):
        if self.monitor_op is None:
            self._set_monitor_op()
        if reference_value is None:
            return True
        return bool(self.monitor_op(monitor_value - self.min_delta, reference_value))


class EarlyStopping(MonitorCallback):
    """Stops fit (model.stop_training = True) when `monitor` has not improved for
    `patience` epochs (Keras' EarlyStopping, argument for argument).

    min_delta: a change of |min_delta| or less is no improvement. baseline: the wait is
    only reset by epochs that also beat it. restore_best_weights: at the end of training
    the weights of the best epoch come back (when monitoring ran at all). start_from_epoch:
    epochs before it are not watched. Training never stops after the first epoch (epoch
    0). A missing monitored value warns and leaves the epoch out."""

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = v.integer(patience, "patience", 0)
        self.verbose = _verbosity(verbose)
        self.baseline = _finite(baseline, "baseline", allow_none=True)
        self.restore_best_weights = v.flag(restore_best_weights, "restore_best_weights")
        self.start_from_epoch = v.integer(start_from_epoch, "start_from_epoch", 0)
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            _print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                _print(f"Restoring model weights from the end of the best epoch: "
                       f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        """logs[monitor], or None with a warning naming the logged quantities."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is "
                          f"not available. Available metrics are: {','.join(logs)}",
                          stacklevel=2)
        return value


class ModelCheckpoint(MonitorCallback):
    """Saves the model (model.save) or its weights (model.save_weights) at the end of every
    epoch, or every `save_freq` batches (an int).

    filepath may hold str.format fields filled from the epoch (counted from 1), the batch
    (from 1, when saving by batches) and the logs: 'ckpt-{epoch:02d}-{val_loss:.2f}.fastdl'.
    Its suffix says the format, as fastdl's save and save_weights write: '.fastdl' for the
    whole model; '.weights.h5' (Keras' layout) or '.npz' with save_weights_only=True.
    Missing directories are made. save_best_only: only when `monitor` improves on the best
    so far (which starts at initial_value_threshold); a missing monitored value warns and
    saves."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        initial_value_threshold = _finite(initial_value_threshold, "initial_value_threshold",
                                          allow_none=True)
        super().__init__(monitor, mode, initial_value_threshold)
        self.verbose = _verbosity(verbose)
        self.filepath = _path(filepath, "filepath")
        self.save_best_only = v.flag(save_best_only, "save_best_only")
        self.save_weights_only = v.flag(save_weights_only, "save_weights_only")
        if save_freq != "epoch":
            if isinstance(save_freq, str):
                raise ValueError(f"save_freq: expected 'epoch' or a number of batches, "
                                 f"got {save_freq!r}")
            save_freq = v.positive_int(save_freq, "save_freq")
        self.save_freq = save_freq
        if self.save_weights_only:
            if not self.filepath.endswith((".weights.h5", ".npz")):
                raise ValueError(f"filepath: with save_weights_only=True it must end in "
                                 f"'.weights.h5' (Keras' weights layout) or '.npz', got "
                                 f"{self.filepath!r}")
        elif not self.filepath.endswith(".fastdl"):
            hint = (" (fastdl saves whole models in its own archive; for a file Keras "
                    "reads, use save_weights_only=True and '.weights.h5')"
                    if self.filepath.endswith((".keras", ".h5")) else "")
            raise ValueError(f"filepath: a whole-model checkpoint must end in '.fastdl', got "
                             f"{self.filepath!r}{hint}")
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = None
        self._current_epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs)

    def _should_save_on_batch(self, batch):
        if self.save_freq == "epoch":
            return False
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            added = batch + 1  # a new epoch: batches count from 0
        else:
            added = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += added
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _should_save_model(self, epoch, logs, filepath):
        if not self.save_best_only:
            if self.verbose > 0:
                _print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.",
                          stacklevel=3)
            return True
        if isinstance(current, np.ndarray) and current.ndim > 0:
            warnings.warn(f"Can save best model only when `monitor` is a scalar value. "
                          f"Received: {current}. Falling back to `save_best_only=False`.",
                          stacklevel=3)
            return True
        best = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                _print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to "
                       f"{current:.5f}, saving model to {filepath}")
            self.best = current
            return True
        if self.verbose > 0:
            _print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False

    def _save_model(self, epoch, batch, logs):
        logs = logs or {}
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, logs, filepath):
            return
        if os.path.isdir(filepath):
            raise IsADirectoryError(f"filepath: ModelCheckpoint needs a file path, not the "
                                    f"existing directory {filepath!r}")
        directory = os.path.dirname(filepath)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)
        if self.verbose > 0:
            _print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")

    def _get_file_path(self, epoch, batch, logs):
        """filepath formatted with epoch + 1 (and batch + 1 when saving by batches, unless
        the logs have a 'batch') and the logs."""
        fields = dict(logs)
        fields["epoch"] = epoch + 1
        if batch is not None and "batch" not in logs:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except (KeyError, IndexError) as exc:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". '
                           f"Reason: {exc!r} is not an epoch, batch or logged quantity "
                           f"(logs: {sorted(logs)})") from None


class ReduceLROnPlateau(MonitorCallback):
    """Multiplies the optimizer's learning rate by `factor` (never below min_lr) when
    `monitor` has not improved by more than min_delta for `patience` epochs, then waits
    `cooldown` epochs before counting again (Keras' ReduceLROnPlateau). Adds the current
    learning rate to the epoch's logs as 'learning_rate' (before any reduction), so History
    and the progress bar show it."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__(monitor, mode, min_delta=min_delta)
        factor = _finite(factor, "factor")
        if not 0.0 <= factor < 1.0:
            raise ValueError(f"factor: ReduceLROnPlateau needs a factor in [0, 1) (new_lr = "
                             f"lr * factor), got {factor}")
        self.factor = factor
        self.min_lr = _finite(min_lr, "min_lr", low=0.0)
        self.patience = v.integer(patience, "patience", 0)
        self.verbose = _verbosity(verbose)
        self.cooldown = v.integer(cooldown, "cooldown", 0)
        self.cooldown_counter = 0
        self.wait = 0

    def _reset(self):
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        optimizer = _optimizer_of(self)
        logs["learning_rate"] = _learning_rate(optimizer)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric "
                          f"`{self.monitor}` which is not available. Available metrics "
                          f"are: {','.join(logs)}.", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce_lr(optimizer, epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0

    def _reduce_lr(self, optimizer, epoch):
        old_lr = _learning_rate(optimizer)
        if not old_lr > np.float32(self.min_lr):  # Keras compares with float32 min_lr
            return False
        new_lr = max(old_lr * self.factor, self.min_lr)
        optimizer.learning_rate = new_lr
        if self.verbose > 0:
            _print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                   f"{new_lr}.")
        return True


def _optimizer_of(callback):
    optimizer = getattr(callback.model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise RuntimeError(f"{type(callback).__name__}: the model has no optimizer with a "
                           f"learning_rate (compile the model first)")
    return optimizer


class LearningRateScheduler(Callback):
    """Sets the optimizer's learning rate at the start of every epoch to schedule(epoch,
    lr) -- epoch counted from 0, lr the current rate -- or schedule(epoch) for a function
    of one argument; the result must be a float. Adds 'learning_rate' to the epoch's
    logs."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule: expected a function schedule(epoch, lr) or "
                            f"schedule(epoch), got {type(schedule).__name__}")
        self.schedule = schedule
        self.verbose = _verbosity(verbose)
        self._with_lr = _takes_two_arguments(schedule)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = _optimizer_of(self)
        if self._with_lr is None:  # signature unknown: Keras' way, try two then one
            try:
                lr = self.schedule(epoch, _learning_rate(optimizer))
            except TypeError:
                lr = self.schedule(epoch)
        elif self._with_lr:
            lr = self.schedule(epoch, _learning_rate(optimizer))
        else:
            lr = self.schedule(epoch)
        if not isinstance(lr, (float, np.float32, np.float64)):
            raise ValueError(f"schedule: the output of the `schedule` function should be a "
                             f"float. Got: {lr!r} for epoch {epoch}")
        optimizer.learning_rate = float(lr)
        if self.verbose > 0:
            _print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                   f"{lr}.")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = _learning_rate(_optimizer_of(self))


def _takes_two_arguments(fn):
    """True if fn(epoch, lr) binds, False if only fn(epoch) does, None if unknown."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    for args in ((0, 0.0), (0,)):
        try:
            signature.bind(*args)
            return len(args) == 2
        except TypeError:
            continue
    raise TypeError("schedule: expected a function schedule(epoch, lr) or schedule(epoch), "
                    f"got one with the signature {signature}")


class CSVLogger(Callback):
    """Writes one row per epoch to the CSV file `filename`: 'epoch' (from 0), then the
    logged quantities in sorted order; without validation results, empty 'val_' columns
    ('NA') are added, as Keras does. separator: one character. append: continue an
    existing file (its header is kept; written only if the file is empty)."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = _path(filename, "filename")
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator: expected one character, got {separator!r}")
        self.sep = separator
        self.append = v.flag(append, "append")
        self.writer = None
        self.keys = None
        self.append_header = True
        self.csv_file = None

    def on_train_begin(self, logs=None):
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename) as f:
                    self.append_header = not f.readline()
            mode = "a"
        else:
            mode = "w"
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, mode, newline="")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys += [f"val_{k}" for k in self.keys]
        if self.writer is None:
            dialect = type("CSVLoggerDialect", (csv.excel,), {"delimiter": self.sep})
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys,
                                         dialect=dialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((k, _csv_value(logs.get(k, "NA"))) for k in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


def _csv_value(value):
    """Strings and numbers as they are; other iterables (e.g. 1-D arrays) as
    '"[a, b, ...]"', as Keras writes them."""
    if isinstance(value, str) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value
    if hasattr(value, "__iter__"):
        return f'"[{", ".join(map(str, value))}]"'
    return value


class TerminateOnNaN(Callback):
    """Stops fit when a batch's loss is NaN or infinite: model.stop_training = True (fit
    ends after that batch and on_train_end runs), or with raise_error=True a RuntimeError
    at once."""

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = v.flag(raise_error, "raise_error")

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or not (np.isnan(loss) or np.isinf(loss)):
            return
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: "
                               f"{loss}. Terminating training immediately.")
        _print(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback from functions: on_epoch_begin(epoch, logs), on_epoch_end(epoch, logs),
    on_train_begin(logs), on_train_end(logs), on_train_batch_begin(batch, logs),
    on_train_batch_end(batch, logs), and any other hook by its name as a keyword
    (on_test_end=..., on_predict_batch_end=...). Hooks not given do nothing."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs):
        super().__init__()
        unknown = sorted(set(kwargs) - set(_HOOKS))
        if unknown:
            raise TypeError(f"LambdaCallback: unknown hook(s) {unknown}; expected some of "
                            f"{list(_HOOKS)}")
        hooks = dict(kwargs, on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end)
        for name, fn in hooks.items():
            if fn is None:
                continue
            if not callable(fn):
                raise TypeError(f"{name}: expected a function or None, got "
                                f"{type(fn).__name__}")
            setattr(self, name, fn)
