"""fastdl.callbacks against scripted training runs: a fake model (weights, optimizer,
save/save_weights writing marker files) and a tiny loop that calls the hooks as Keras'
trainer does; and, where keras is installed, against Keras' own callbacks driven by the
same scripted logs."""
import csv
import io
import os
import re
import sys

import numpy as np
import pytest

from fastdl import callbacks as cb
from fastdl import metrics as fmetrics


class FakeOptimizer:
    def __init__(self, learning_rate=0.1):
        self.learning_rate = learning_rate


class FakeModel:
    """What the callbacks see of a model: stop_training, optimizer.learning_rate,
    get/set_weights (copies), save/save_weights (a marker file, and a record)."""

    def __init__(self, learning_rate=0.1, metrics=None):
        self.stop_training = False
        self.optimizer = FakeOptimizer(learning_rate)
        self.weights = [np.zeros((2, 1), np.float32), np.zeros((1,), np.float32)]
        self.saved = []
        if metrics is not None:
            self.metrics = metrics

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w, np.float32) for w in weights]

    def save(self, path):
        with open(path, "w") as f:
            f.write("model")
        self.saved.append(("model", str(path)))

    def save_weights(self, path):
        with open(path, "w") as f:
            f.write("weights")
        self.saved.append(("weights", str(path)))


def epoch_weights(epoch):
    """The weights 'training' leaves after `epoch`: they name the epoch."""
    return [np.full((2, 1), epoch, np.float32), np.full((1,), -epoch, np.float32)]


def run(module, callbacks, epoch_logs, model, steps=2, verbose=0, add_progbar=None,
        batch_logs=None):
    """Keras' fit loop over scripted logs: epoch_logs[e] are epoch e's end logs; batch b's
    logs are batch_logs(e, b) (default: the epoch's training entries). Returns the
    CallbackList and the number of epochs run."""
    epochs = len(epoch_logs)
    cbs = module.CallbackList(callbacks, add_history=True,
                              add_progbar=verbose != 0 if add_progbar is None else add_progbar,
                              verbose=verbose, epochs=epochs, steps=steps, model=model)
    model.stop_training = False
    cbs.on_train_begin()
    ran, logs = 0, {}
    for epoch in range(epochs):
        cbs.on_epoch_begin(epoch)
        logs = dict(epoch_logs[epoch])
        for batch in range(steps or 3):
            cbs.on_train_batch_begin(batch)
            blogs = (batch_logs(epoch, batch) if batch_logs else
                     {k: val for k, val in logs.items() if not k.startswith("val_")})
            cbs.on_train_batch_end(batch, blogs)
            if model.stop_training:  # Keras' loop ends the epoch there
                break
        model.set_weights(epoch_weights(epoch))
        cbs.on_epoch_end(epoch, logs)
        ran += 1
        if model.stop_training:
            break
    cbs.on_train_end(logs)
    return cbs, ran


def losses(*values, key="val_loss"):
    return [{"loss": 1.0, key: float(x)} for x in values]


def strip_times(text):
    """Progress output without its timings (and ANSI codes, backspaces, padding), as the
    lines a reader sees at the end: what follows the last '\\r' of each line."""
    text = re.sub(r"\x1b\[\d+m", "", text).replace("\b", "")
    text = re.sub(r"\d+(ms|us|s)/step", "T/step", text)
    text = re.sub(r"(?<= )\d+(:\d\d)*s(?= )", "Ts", text)
    return [line.split("\r")[-1].rstrip() for line in text.split("\n")]


# ---------------------------------------------------------------- CallbackList, History

def test_history_records_every_epoch_and_the_params():
    model = FakeModel()
    logs = [{"loss": 0.5, "accuracy": 0.25, "val_loss": 0.75},
            {"loss": 0.25, "accuracy": 0.5, "val_loss": 0.5}]
    cbs, ran = run(cb, [], logs, model, steps=4)
    history = cbs.history
    assert isinstance(history, cb.History) and ran == 2
    assert history.history == {"accuracy": [0.25, 0.5], "loss": [0.5, 0.25],
                               "val_loss": [0.75, 0.5]}
    assert history.epoch == [0, 1]
    assert history.params == {"verbose": 0, "epochs": 2, "steps": 4}
    assert history.model is model and model.history is history


def test_callbacklist_order_model_params_and_given_history():
    mine = cb.History()
    user = cb.TerminateOnNaN()
    cbs = cb.CallbackList([user, [mine]], add_history=True, add_progbar=True, verbose=1,
                          epochs=3, steps=5, model=FakeModel())
    # The given History is used (no second one); the ProgbarLogger comes last.
    assert [type(c) for c in cbs.callbacks] == [cb.TerminateOnNaN, cb.History,
                                               cb.ProgbarLogger]
    assert cbs.history is mine
    for c in cbs:
        assert c.params == {"verbose": 1, "epochs": 3, "steps": 5}
        assert isinstance(c.model, FakeModel)
    plain = cb.CallbackList(None)
    assert plain.callbacks == [] and plain.history is None and len(plain) == 0
    late = cb.History()
    cbs.append(late)
    assert cbs.callbacks[-1] is late and late.params == {"verbose": 1, "epochs": 3,
                                                         "steps": 5}
    with pytest.raises(TypeError, match="callbacks"):
        cbs.append("history")


def test_callbacklist_gives_sorted_python_floats_and_leaves_the_callers_logs_alone():
    seen = []
    lam = cb.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(logs))
    cbs = cb.CallbackList([lam], model=FakeModel())
    mine = {"val_loss": np.float32(0.5), "loss": np.float64(0.25), "acc": np.array(1.0),
            "extra": {"b": np.int64(3)}, "name": "x"}
    cbs.on_epoch_end(0, mine)
    logs = seen[0]
    assert list(logs) == ["acc", "b", "loss", "name", "val_loss"]
    assert all(type(logs[k]) is float for k in ("acc", "b", "loss", "val_loss"))
    assert logs["name"] == "x"
    logs["added"] = 1.0
    assert "added" not in mine


def test_batch_hooks_get_logs_by_keyword_and_call_the_legacy_names():
    calls = []

    class Legacy(cb.Callback):
        def on_batch_begin(self, batch, logs=None):
            calls.append(("begin", batch))

        def on_batch_end(self, batch, logs=None):
            calls.append(("end", batch, logs["loss"]))

    keyword_only = cb.LambdaCallback(
        on_train_batch_end=lambda batch, **kw: calls.append(("kw", batch, kw["logs"])))
    cbs = cb.CallbackList([Legacy(), keyword_only])
    cbs.on_train_batch_begin(0)
    cbs.on_train_batch_end(0, {"loss": 2.0})
    assert calls == [("begin", 0), ("end", 0, 2.0), ("kw", 0, {"loss": 2.0})]


@pytest.mark.parametrize("bad, err", [(object(), TypeError), ([cb.History, ], TypeError),
                                      ("early", TypeError), ([cb.History(), 3], TypeError)])
def test_callbacklist_refuses_what_is_not_a_callback(bad, err):
    with pytest.raises(err, match="callbacks"):
        cb.CallbackList(bad)


# ---------------------------------------------------------------- EarlyStopping

def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    model = FakeModel()
    es = cb.EarlyStopping(patience=2, restore_best_weights=True)
    _, ran = run(cb, [es], losses(1.0, 0.8, 0.9, 0.85, 0.7, 0.6), model)
    assert ran == 4 and es.stopped_epoch == 3
    assert es.best == 0.8 and es.best_epoch == 1
    np.testing.assert_array_equal(model.weights[0], epoch_weights(1)[0])
    np.testing.assert_array_equal(model.weights[1], epoch_weights(1)[1])


def test_early_stopping_patience_zero_min_delta_and_no_restore():
    model = FakeModel()
    es = cb.EarlyStopping(monitor="loss", patience=0, min_delta=0.1)
    logs = [{"loss": x} for x in (1.0, 0.95, 0.5)]
    _, ran = run(cb, [es], logs, model)
    assert ran == 2 and es.stopped_epoch == 1  # 0.05 better is no improvement
    np.testing.assert_array_equal(model.weights[0], epoch_weights(1)[0])  # the last ones


def test_early_stopping_auto_mode_maximises_accuracy_and_explicit_modes():
    logs = [{"loss": 1.0, "val_accuracy": a} for a in (0.5, 0.6, 0.55, 0.58, 0.9)]
    es = cb.EarlyStopping(monitor="val_accuracy", patience=2)
    _, ran = run(cb, [es], logs, FakeModel())
    assert ran == 4 and es.best == 0.6
    es = cb.EarlyStopping(monitor="val_accuracy", patience=2, mode="min")
    _, ran = run(cb, [es], logs, FakeModel())
    assert ran == 3 and es.best == 0.5


def test_early_stopping_baseline_start_from_epoch_and_reuse():
    # Never better than the baseline: stops after `patience` epochs, restores the best.
    model = FakeModel()
    es = cb.EarlyStopping(patience=2, baseline=0.5, restore_best_weights=True)
    _, ran = run(cb, [es], losses(0.9, 0.8, 0.85, 0.7), model)
    assert ran == 3 and es.best_epoch == 1  # improving epochs never stop it
    np.testing.assert_array_equal(model.weights[0], epoch_weights(1)[0])
    # Epochs before start_from_epoch are not watched.
    es = cb.EarlyStopping(patience=0, start_from_epoch=2)
    _, ran = run(cb, [es], losses(1.0, 2.0, 3.0, 4.0, 5.0), FakeModel())
    assert ran == 4 and es.stopped_epoch == 3
    # A second fit starts afresh.
    _, ran = run(cb, [es], losses(1.0, 0.5, 0.25), FakeModel())
    assert ran == 3 and es.stopped_epoch == 0


def test_early_stopping_warns_when_the_value_is_missing():
    es = cb.EarlyStopping(patience=0)
    with pytest.warns(UserWarning, match="val_loss.*not available.*loss"):
        _, ran = run(cb, [es], [{"loss": 1.0}] * 3, FakeModel())
    assert ran == 3


def test_early_stopping_verbose_messages(capsys):
    es = cb.EarlyStopping(patience=1, verbose=1, restore_best_weights=True)
    run(cb, [es], losses(1.0, 0.5, 0.7, 0.8), FakeModel())
    out = capsys.readouterr().out
    assert out == ("Epoch 3: early stopping\n"
                   "Restoring model weights from the end of the best epoch: 2.\n")


def test_auto_mode_reads_the_compiled_metrics_and_refuses_unknown_names():
    # A compiled metric answers by its class: an error is minimised, Recall maximised.
    model = FakeModel(metrics=[fmetrics.MeanSquaredError(name="err"),
                               fmetrics.Recall(name="hits")])
    es = cb.EarlyStopping(monitor="val_err", patience=0)
    _, ran = run(cb, [es], losses(1.0, 2.0, 0.1, key="val_err"), model)
    assert ran == 2
    es = cb.EarlyStopping(monitor="val_hits", patience=0)
    _, ran = run(cb, [es], losses(0.5, 0.6, 0.4, key="val_hits"), model)
    assert ran == 3
    # Per-output losses are minimised; an unknown name asks for a mode.
    es = cb.EarlyStopping(monitor="val_out_loss", patience=0)
    _, ran = run(cb, [es], losses(1.0, 2.0, key="val_out_loss"), FakeModel())
    assert ran == 2
    with pytest.raises(ValueError, match="^monitor: EarlyStopping monitors 'val_score'.*"
                                         "mode='max' or mode='min'"):
        run(cb, [cb.EarlyStopping(monitor="val_score")], losses(1.0, key="val_score"),
            FakeModel())


# ---------------------------------------------------------------- ModelCheckpoint

def test_model_checkpoint_names_files_from_epoch_and_logs(tmp_path):
    model = FakeModel()
    path = tmp_path / "sub" / "ckpt-{epoch:02d}-{val_loss:.2f}.fastdl"
    run(cb, [cb.ModelCheckpoint(path)], losses(0.5, 0.25, 0.125), model)
    names = sorted(os.listdir(tmp_path / "sub"))
    assert names == ["ckpt-01-0.50.fastdl", "ckpt-02-0.25.fastdl", "ckpt-03-0.12.fastdl"]
    assert (tmp_path / "sub" / names[0]).read_text() == "model"
    assert [kind for kind, _ in model.saved] == ["model"] * 3


def test_model_checkpoint_save_best_only_and_threshold(tmp_path):
    model = FakeModel()
    mc = cb.ModelCheckpoint(str(tmp_path / "e{epoch}.weights.h5"), save_best_only=True,
                            save_weights_only=True)
    run(cb, [mc], losses(1.0, 1.2, 0.8, 0.8, 0.3), model)
    assert sorted(os.listdir(tmp_path)) == ["e1.weights.h5", "e3.weights.h5",
                                            "e5.weights.h5"]
    assert {kind for kind, _ in model.saved} == {"weights"}
    assert mc.best == 0.3
    # initial_value_threshold: the best to beat from the start.
    model = FakeModel()
    mc = cb.ModelCheckpoint(str(tmp_path / "t.npz"), save_best_only=True,
                            save_weights_only=True, initial_value_threshold=0.5)
    run(cb, [mc], losses(0.9, 0.6, 0.4), model)
    assert model.saved == [("weights", str(tmp_path / "t.npz"))]
    # monitor in max mode
    model = FakeModel()
    mc = cb.ModelCheckpoint(str(tmp_path / "m{epoch}.fastdl"), monitor="val_accuracy",
                            save_best_only=True)
    run(cb, [mc], losses(0.5, 0.4, 0.7, key="val_accuracy"), model)
    assert [os.path.basename(p) for _, p in model.saved] == ["m1.fastdl", "m3.fastdl"]


def test_model_checkpoint_every_n_batches(tmp_path):
    model = FakeModel()
    mc = cb.ModelCheckpoint(str(tmp_path / "e{epoch}-b{batch}.fastdl"), save_freq=3)
    run(cb, [mc], losses(0.5, 0.4, 0.3), model, steps=2)
    assert sorted(os.listdir(tmp_path)) == ["e2-b1.fastdl", "e3-b2.fastdl"]


def test_model_checkpoint_missing_value_verbose_and_bad_fields(tmp_path, capsys):
    model = FakeModel()
    mc = cb.ModelCheckpoint(str(tmp_path / "x.fastdl"), save_best_only=True, verbose=1)
    with pytest.warns(UserWarning, match="only with val_loss available"):
        run(cb, [mc], [{"loss": 1.0}], model)
    assert len(model.saved) == 1
    run(cb, [mc], losses(0.5, 0.7), model)
    path = str(tmp_path / "x.fastdl")
    assert capsys.readouterr().out == (
        f"\nEpoch 1: finished saving model to {path}\n"
        f"\nEpoch 1: val_loss improved from None to 0.50000, saving model to {path}\n"
        f"\nEpoch 1: finished saving model to {path}\n"
        f"\nEpoch 2: val_loss did not improve from 0.50000\n")
    with pytest.raises(KeyError, match="Failed to format.*val_acc"):
        run(cb, [cb.ModelCheckpoint(str(tmp_path / "{val_acc}.fastdl"))], losses(1.0),
            FakeModel())
    os.mkdir(tmp_path / "d.fastdl")
    with pytest.raises(IsADirectoryError, match="filepath"):
        run(cb, [cb.ModelCheckpoint(str(tmp_path / "d.fastdl"))], losses(1.0), FakeModel())


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(filepath="m.keras"), ValueError, "'.fastdl'.*save_weights_only=True"),
    (dict(filepath="m.h5"), ValueError, "'.fastdl'"),
    (dict(filepath="m.fastdl", save_weights_only=True), ValueError, "'.weights.h5'"),
    (dict(filepath=None), TypeError, "filepath"),
    (dict(filepath="m.fastdl", save_freq="batch"), ValueError, "save_freq"),
    (dict(filepath="m.fastdl", save_freq=0), ValueError, "save_freq"),
    (dict(filepath="m.fastdl", save_freq=True), TypeError, "save_freq"),
    (dict(filepath="m.fastdl", save_best_only=1), TypeError, "save_best_only"),
    (dict(filepath="m.fastdl", mode="bigger"), ValueError, "mode"),
    (dict(filepath="m.fastdl", monitor=3), TypeError, "monitor"),
    (dict(filepath="m.fastdl", initial_value_threshold="0.1"), TypeError,
     "initial_value_threshold"),
])
def test_model_checkpoint_bad_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        cb.ModelCheckpoint(**kwargs)


# ---------------------------------------------------------------- ReduceLROnPlateau

def test_reduce_lr_on_plateau_with_cooldown_and_min_lr():
    model = FakeModel(learning_rate=0.1)
    rl = cb.ReduceLROnPlateau(factor=0.5, patience=1, cooldown=1, min_lr=0.02)
    cbs, _ = run(cb, [rl], losses(*[1.0] * 6), model)
    # learning_rate is logged before the epoch's reduction; History sees it.
    assert cbs.history.history["learning_rate"] == pytest.approx(
        [0.1, 0.1, 0.05, 0.025, 0.02, 0.02])
    assert model.optimizer.learning_rate == pytest.approx(0.02)


def test_reduce_lr_on_plateau_patience_and_improvements():
    model = FakeModel(learning_rate=1.0)
    rl = cb.ReduceLROnPlateau(monitor="loss", factor=0.1, patience=2, cooldown=2)
    logs = [{"loss": x} for x in (5, 4, 4, 4, 4, 4, 4, 3.99995, 4, 4, 4)]
    cbs, _ = run(cb, [rl], logs, model)
    # Reductions at the end of epochs 3 (after 2 flat epochs), 6 and 9: the cooldown's
    # last epoch already counts (as in Keras), and 3.99995 is within min_delta=1e-4 of 4.
    assert cbs.history.history["learning_rate"] == pytest.approx(
        [1.0] * 4 + [0.1] * 3 + [0.01] * 3 + [0.001])


def test_reduce_lr_on_plateau_warns_and_verbose(capsys):
    model = FakeModel(learning_rate=0.5)
    with pytest.warns(UserWarning, match="val_loss.*not available.*learning_rate"):
        run(cb, [cb.ReduceLROnPlateau(patience=0)], [{"loss": 1.0}] * 2, model)
    assert model.optimizer.learning_rate == 0.5
    run(cb, [cb.ReduceLROnPlateau(patience=0, verbose=1, factor=0.5)], losses(1.0, 1.0),
        model)
    assert capsys.readouterr().out == (
        "\nEpoch 2: ReduceLROnPlateau reducing learning rate to 0.25.\n")


@pytest.mark.parametrize("kwargs, err", [
    (dict(factor=1.0), ValueError), (dict(factor=-0.5), ValueError),
    (dict(factor="half"), TypeError), (dict(patience=-1), ValueError),
    (dict(patience=1.5), TypeError), (dict(cooldown=-1), ValueError),
    (dict(min_lr=-1e-3), ValueError), (dict(min_delta=float("nan")), ValueError),
    (dict(mode="up"), ValueError), (dict(verbose=-1), ValueError),
])
def test_reduce_lr_on_plateau_bad_arguments(kwargs, err):
    name = next(iter(kwargs))
    with pytest.raises(err, match=name):
        cb.ReduceLROnPlateau(**kwargs)


# ---------------------------------------------------------------- LearningRateScheduler

def test_learning_rate_scheduler_two_and_one_argument_schedules(capsys):
    model = FakeModel(learning_rate=1.0)
    sched = cb.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr)
    cbs, _ = run(cb, [sched], losses(1, 1, 1), model)
    assert cbs.history.history["learning_rate"] == [1.0, 0.5, 0.25]
    assert model.optimizer.learning_rate == 0.25
    model = FakeModel()
    sched = cb.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1), verbose=1)
    cbs, _ = run(cb, [sched], losses(1, 1), model)
    assert cbs.history.history["learning_rate"] == pytest.approx([0.1, 0.05])
    assert capsys.readouterr().out == (
        "\nEpoch 1: LearningRateScheduler setting learning rate to 0.1.\n"
        "\nEpoch 2: LearningRateScheduler setting learning rate to 0.05.\n")


def test_learning_rate_scheduler_errors():
    with pytest.raises(TypeError, match="schedule"):
        cb.LearningRateScheduler(0.1)
    with pytest.raises(TypeError, match="schedule"):
        cb.LearningRateScheduler(lambda: 0.1)
    with pytest.raises(ValueError, match="should be a float"):
        run(cb, [cb.LearningRateScheduler(lambda epoch: 1)], losses(1), FakeModel())

    def buggy(epoch, lr):  # its own TypeError is not mistaken for a one-argument schedule
        return lr + "x"

    with pytest.raises(TypeError, match="unsupported operand"):
        run(cb, [cb.LearningRateScheduler(buggy)], losses(1), FakeModel())


# ---------------------------------------------------------------- CSVLogger

def read_csv(path, sep=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=sep))


def test_csv_logger_rows_and_append(tmp_path):
    path = tmp_path / "log.csv"
    logs = [{"loss": 0.5, "accuracy": 0.25, "val_loss": 0.75, "val_accuracy": 0.5},
            {"loss": 0.25, "accuracy": 0.5, "val_loss": 0.5, "val_accuracy": 0.75}]
    run(cb, [cb.CSVLogger(path)], logs, FakeModel())
    assert read_csv(path) == [["epoch", "accuracy", "loss", "val_accuracy", "val_loss"],
                              ["0", "0.25", "0.5", "0.5", "0.75"],
                              ["1", "0.5", "0.25", "0.75", "0.5"]]
    assert path.read_bytes().count(b"\r\n") == 3  # csv.excel's line ends, as Keras
    run(cb, [cb.CSVLogger(str(path), append=True)], logs[:1], FakeModel())
    rows = read_csv(path)
    assert len(rows) == 4 and rows[-1] == ["0", "0.25", "0.5", "0.5", "0.75"]
    run(cb, [cb.CSVLogger(str(path))], logs[:1], FakeModel())  # overwrite
    assert len(read_csv(path)) == 2


def test_csv_logger_without_validation_and_separator(tmp_path):
    path = tmp_path / "log.tsv"
    run(cb, [cb.CSVLogger(path, separator="\t")], [{"loss": 1.0}, {"loss": 0.5}],
        FakeModel())
    assert read_csv(path, "\t") == [["epoch", "loss", "val_loss"], ["0", "1.0", "NA"],
                                    ["1", "0.5", "NA"]]


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(filename=None), TypeError, "filename"),
    (dict(filename="x.csv", separator=";;"), ValueError, "separator"),
    (dict(filename="x.csv", separator=1), ValueError, "separator"),
    (dict(filename="x.csv", append="yes"), TypeError, "append"),
])
def test_csv_logger_bad_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        cb.CSVLogger(**kwargs)


# ---------------------------------------------------------------- TerminateOnNaN, Lambda

def test_terminate_on_nan_sets_stop_training(capsys):
    def batch_logs(epoch, batch):
        return {"loss": float("nan") if (epoch, batch) == (1, 1) else 1.0}

    _, ran = run(cb, [cb.TerminateOnNaN()], losses(1, 1, 1, 1), FakeModel(),
                 batch_logs=batch_logs)
    assert ran == 2
    assert capsys.readouterr().out == "Batch 1: Invalid loss, terminating training\n"
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 0"):
        run(cb, [cb.TerminateOnNaN(raise_error=True)], losses(1), FakeModel(),
            batch_logs=lambda e, b: {"loss": float("inf")})
    with pytest.raises(TypeError, match="raise_error"):
        cb.TerminateOnNaN(raise_error="yes")


def test_lambda_callback_hooks_and_errors():
    calls = []
    lam = cb.LambdaCallback(on_train_begin=lambda logs: calls.append("train_begin"),
                            on_epoch_end=lambda epoch, logs: calls.append(("epoch", epoch)),
                            on_train_batch_end=lambda batch, logs: calls.append(batch),
                            on_train_end=lambda logs: calls.append("train_end"),
                            on_test_end=lambda logs: calls.append("test_end"))
    run(cb, [lam], losses(1), FakeModel(), steps=2)
    assert calls == ["train_begin", 0, 1, ("epoch", 0), "train_end"]
    lam.on_test_end({})
    assert calls[-1] == "test_end"
    with pytest.raises(TypeError, match="unknown hook.*on_epoch_ends"):
        cb.LambdaCallback(on_epoch_ends=print)
    with pytest.raises(TypeError, match="on_epoch_end"):
        cb.LambdaCallback(on_epoch_end=3)


@pytest.mark.parametrize("kwargs, err", [
    (dict(patience=-1), ValueError), (dict(patience=None), TypeError),
    (dict(min_delta="0"), TypeError), (dict(mode="maximum"), ValueError),
    (dict(monitor=""), TypeError), (dict(baseline=float("inf")), ValueError),
    (dict(restore_best_weights=1), TypeError), (dict(start_from_epoch=-1), ValueError),
    (dict(verbose="loud"), TypeError),
])
def test_early_stopping_bad_arguments(kwargs, err):
    name = next(iter(kwargs))
    with pytest.raises(err, match=name):
        cb.EarlyStopping(**kwargs)


# ---------------------------------------------------------------- ProgbarLogger

BAR = "━" * 20
LOGS2 = [{"loss": 0.5, "accuracy": 0.25, "val_loss": 0.75, "val_accuracy": 0.0001},
         {"loss": 0.25, "accuracy": 0.5, "val_loss": -0.5, "val_accuracy": 0.5}]


def test_progbar_verbose_1(capsys):
    run(cb, [], LOGS2, FakeModel(), steps=2, verbose=1)
    out = capsys.readouterr().out
    assert "\x1b[" not in out  # no colours when stdout is not a terminal
    assert out.startswith("Epoch 1/2\n\r1/2 " + BAR + " ")
    assert strip_times(out) == [
        "Epoch 1/2",
        f"2/2 {BAR} Ts T/step - accuracy: 0.2500 - loss: 0.5000 - val_accuracy: "
        f"1.0000e-04 - val_loss: 0.7500",
        "Epoch 2/2",
        f"2/2 {BAR} Ts T/step - accuracy: 0.5000 - loss: 0.2500 - val_accuracy: 0.5000 "
        f"- val_loss: -0.5000",
        ""]
    # A batch line: the ETA, the time per step and the running values.
    first = out.split("\r")[1]
    assert re.fullmatch(rf"1/2 {BAR} \d+s \d+(us|ms|s)/step - accuracy: 0.2500 - "
                        r"loss: 0.5000", first.rstrip()), first


def test_progbar_verbose_2_and_unknown_steps(capsys):
    run(cb, [], LOGS2, FakeModel(), steps=2, verbose=2)
    out = capsys.readouterr().out
    lines = out.split("\n")
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and lines[4] == ""
    # verbose 2 looks at the value, not its size: negative values print as 1e-form
    assert re.fullmatch(r"2/2 - \d+s - \d+(us|ms|s)/step - accuracy: 0.5000 - loss: "
                        r"0.2500 - val_accuracy: 0.5000 - val_loss: -5.0000e-01",
                        lines[3]), lines[3]
    run(cb, [], LOGS2[:1], FakeModel(), steps=None, verbose=1)  # one epoch: no header
    out = capsys.readouterr().out
    assert out.startswith("\r      1/Unknown ")
    assert strip_times(out)[0] == (f"3/3 {BAR} Ts T/step - accuracy: 0.2500 - loss: 0.5000"
                                   f" - val_accuracy: 1.0000e-04 - val_loss: 0.7500")


def test_progbar_evaluate_and_predict(capsys):
    cbs = cb.CallbackList([], add_progbar=True, verbose=1, epochs=1, steps=2,
                          model=FakeModel())
    cbs.on_test_begin()
    for b in range(2):
        cbs.on_test_batch_begin(b)
        cbs.on_test_batch_end(b, {"loss": 0.5})
    cbs.on_test_end({"loss": 0.5, "mae": 0.125})
    cbs.on_predict_begin()
    for b in range(2):
        cbs.on_predict_batch_begin(b)
        cbs.on_predict_batch_end(b, {"outputs": np.zeros(3)})
    cbs.on_predict_end()
    assert strip_times(capsys.readouterr().out) == [
        f"2/2 {BAR} Ts T/step - loss: 0.5000 - mae: 0.1250", f"2/2 {BAR} Ts T/step", ""]
    # Validation inside fit is silent.
    cbs.on_train_begin()
    cbs.on_test_begin()
    cbs.on_test_batch_end(0, {"loss": 0.5})
    cbs.on_test_end({"loss": 0.5})
    assert capsys.readouterr().out == ""


def test_progbar_colours_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    tty = Terminal()
    monkeypatch.setattr(sys, "stdout", tty)
    run(cb, [], LOGS2[:1], FakeModel(), steps=4, verbose=1)
    out = tty.getvalue()
    # Keras' bold count, green done part and grey rest; the same text without them.
    assert "\x1b[1m4/4\x1b[0m \x1b[32m" + BAR + "\x1b[0m" in out
    assert "\x1b[1m1/4\x1b[0m \x1b[32m" + "━" * 5 + "\x1b[0m\x1b[37m" + "━" * 15 in out
    assert strip_times(out)[0] == (f"4/4 {BAR} Ts T/step - accuracy: 0.2500 - loss: 0.5000"
                                   f" - val_accuracy: 1.0000e-04 - val_loss: 0.7500")


def test_progbar_params_are_checked():
    with pytest.raises(ValueError, match="verbose"):
        cb.CallbackList([], add_progbar=True, verbose=3, epochs=1, steps=2)
    with pytest.raises(ValueError, match="steps"):
        cb.CallbackList([], add_progbar=True, verbose=1, epochs=1, steps=-1)


# ---------------------------------------------------------------- against Keras

@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("keras runs on another backend than torch")
    return keras


def keras_model(keras, learning_rate=0.1):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate), loss="mse")
    return model


EARLY_CASES = [
    (dict(patience=2, restore_best_weights=True), losses(1.0, 0.8, 0.9, 0.85, 0.7, 0.6)),
    (dict(patience=0), losses(1.0, 1.0, 0.5)),
    (dict(patience=1, min_delta=0.1), losses(1.0, 0.95, 0.91, 0.8, 0.5)),
    (dict(patience=2, baseline=0.5, restore_best_weights=True), losses(0.9, 0.8, 0.85, 0.7)),
    (dict(patience=1, baseline=0.5), losses(0.9, 0.4, 0.45, 0.3, 0.35, 0.36)),
    (dict(patience=0, start_from_epoch=2), losses(1.0, 2.0, 3.0, 4.0, 5.0)),
    (dict(monitor="val_accuracy", mode="max", patience=1, restore_best_weights=True),
     losses(0.5, 0.6, 0.55, 0.58, 0.9, key="val_accuracy")),
    (dict(monitor="loss", patience=3, restore_best_weights=True),
     [{"loss": x} for x in (3, 2, 2.5, 2.2, 1.0, 1.5, 1.6, 1.7, 0.1)]),
]


@pytest.mark.parametrize("kwargs, logs", EARLY_CASES)
def test_early_stopping_matches_keras(keras, kwargs, logs):
    mine, theirs = FakeModel(), keras_model(keras)
    es = cb.EarlyStopping(**kwargs)
    kes = keras.callbacks.EarlyStopping(**kwargs)
    _, ran = run(cb, [es], logs, mine)
    _, kran = run(keras.callbacks, [kes], logs, theirs)
    assert (ran, es.stopped_epoch, es.best_epoch, es.best, es.wait) == \
        (kran, kes.stopped_epoch, kes.best_epoch, kes.best, kes.wait)
    for a, b in zip(mine.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(a, b)


REDUCE_CASES = [
    (dict(factor=0.5, patience=1, cooldown=1, min_lr=0.02), losses(*[1.0] * 7)),
    (dict(monitor="loss", factor=0.1, patience=2, cooldown=2),
     [{"loss": x} for x in (5, 4, 4, 4, 4, 4, 4, 3.99995, 4, 4, 4)]),
    (dict(factor=0.2, patience=0, min_delta=0.05), losses(1.0, 0.97, 0.9, 0.88, 0.5, 0.6)),
    (dict(monitor="val_accuracy", mode="max", factor=0.5, patience=1),
     losses(0.5, 0.5, 0.6, 0.55, 0.55, 0.7, key="val_accuracy")),
]


@pytest.mark.parametrize("kwargs, logs", REDUCE_CASES)
def test_reduce_lr_on_plateau_matches_keras(keras, kwargs, logs):
    mine, theirs = FakeModel(learning_rate=0.1), keras_model(keras, 0.1)
    history, khistory = cb.History(), keras.callbacks.History()
    run(cb, [cb.ReduceLROnPlateau(**kwargs), history], logs, mine)
    run(keras.callbacks, [keras.callbacks.ReduceLROnPlateau(**kwargs), khistory], logs,
        theirs)
    # Keras keeps the rate in float32: equal up to that rounding.
    assert len(history.history["learning_rate"]) == len(logs)
    np.testing.assert_allclose(history.history["learning_rate"],
                               khistory.history["learning_rate"], rtol=1e-6)
    np.testing.assert_allclose(mine.optimizer.learning_rate,
                               float(theirs.optimizer.learning_rate), rtol=1e-6)


@pytest.mark.parametrize("verbose, steps, epochs", [(1, 4, 2), (1, None, 2), (2, 4, 3),
                                                    (1, 3, 1)])
def test_progbar_matches_keras(keras, capsys, verbose, steps, epochs):
    def batch_logs(epoch, batch):
        return {"loss": 0.5 - 0.1 * batch, "accuracy": 1e-4 * batch}

    logs = [{"loss": 0.3, "accuracy": 0.75, "val_loss": -0.25, "val_accuracy": 2e-4}] * epochs
    run(cb, [], logs, FakeModel(), steps=steps, verbose=verbose, batch_logs=batch_logs)
    mine = capsys.readouterr().out
    run(keras.callbacks, [], logs, keras_model(keras), steps=steps, verbose=verbose,
        batch_logs=batch_logs)
    theirs = capsys.readouterr().out
    assert strip_times(mine) == strip_times(theirs)
