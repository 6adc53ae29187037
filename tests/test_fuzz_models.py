"""Bad input to a model's own methods, fuzzed: compile, fit, evaluate, predict,
train_on_batch, test_on_batch, set_weights, get_layer and summary are called on a small
compiled model from a valid call with one or two arguments spoiled (tests/spoilers.py).
Each must work (float outputs float32; finite where the values were kept) or raise
ValueError / TypeError whose message begins by naming an argument (MemoryError for sizes no
machine holds) -- never another exception, a crash or a hang; a call that raised leaves
the weights as they were, and the model trains and predicts finite numbers after it.
FASTDL_FUZZ_EXAMPLES sets the examples per method (CI: 25).
"""
import io
import os
from contextlib import redirect_stdout

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fastdl
from fastdl import callbacks, layers, models

from results import leaves
from spoilers import (SAME_VALUES, Hang, check_outputs, guarded_call, judge,
                      names_an_argument, spoil)

EXAMPLES = int(os.environ.get("FASTDL_FUZZ_EXAMPLES", "25"))

pytestmark = pytest.mark.fuzz

N, FEATURES, CLASSES = 12, 6, 3


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, FEATURES)).astype(np.float32)
    y = rng.integers(0, CLASSES, N)
    return x, y


def _model(compiled=True):
    fastdl.utils.clear_session()
    model = models.Sequential([layers.Input((FEATURES,)), layers.Dense(8, activation="relu"),
                               layers.BatchNormalization(),
                               layers.Dense(CLASSES, activation="softmax")])
    if compiled:
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class _StopAfter(callbacks.Callback):
    """Ends fit after a few batches: `epochs` may legally be 2^62."""

    def __init__(self, batches=6):
        super().__init__()
        self.left = batches

    def on_train_batch_end(self, batch, logs=None):
        self.left -= 1
        if self.left <= 0:
            self.model.stop_training = True


def _compile(model, optimizer, loss, loss_weights, metrics, weighted_metrics):
    model.compile(optimizer, loss, loss_weights=loss_weights, metrics=metrics,
                  weighted_metrics=weighted_metrics)
    x, y = _data()
    return model.train_on_batch(x, y, return_dict=True)


def _method(name):
    def call(model, **kwargs):
        return getattr(model, name)(**kwargs)
    return call


def _set_weights(model, **weights):
    model.set_weights([weights[f"w{i}"] for i in range(len(weights))])
    return model.predict(_data()[0], verbose=0)


def _summary(model, **kwargs):
    with redirect_stdout(io.StringIO()):
        model.summary(**kwargs)


def _valid(name):
    """(call of (model, **kwargs), valid keyword arguments) of one method."""
    x, y = _data()
    sw = np.linspace(0.5, 1.5, N).astype(np.float32)
    if name == "compile":
        return _compile, dict(optimizer="adam", loss="sparse_categorical_crossentropy",
                              loss_weights=1.0, metrics=["accuracy"],
                              weighted_metrics=["accuracy"])
    if name == "fit":
        return _method("fit"), dict(
            x=x, y=y, batch_size=4, epochs=2, verbose=0, callbacks=[_StopAfter()],
            validation_split=0.25, validation_data=(x[:4], y[:4]), shuffle=True,
            class_weight={0: 1.0, 1: 2.0, 2: 0.5}, sample_weight=sw, initial_epoch=0,
            steps_per_epoch=2, validation_steps=1, validation_batch_size=2,
            validation_freq=1)
    if name == "evaluate":
        return _method("evaluate"), dict(x=x, y=y, batch_size=5, verbose=0,
                                         sample_weight=sw, steps=2, return_dict=True)
    if name == "predict":
        return _method("predict"), dict(x=x, batch_size=5, verbose=0)
    if name == "train_on_batch":
        return _method("train_on_batch"), dict(x=x, y=y, sample_weight=sw,
                                               class_weight={0: 1.0, 1: 2.0, 2: 0.5},
                                               return_dict=True)
    if name == "test_on_batch":
        return _method("test_on_batch"), dict(x=x, y=y, sample_weight=sw, return_dict=False)
    if name == "set_weights":
        return _set_weights, {f"w{i}": w for i, w in enumerate(_model().get_weights())}
    if name == "get_layer":
        return _method("get_layer"), dict(name=None, index=1)
    if name == "summary":
        return _summary, dict(line_length=90, positions=[0.4, 0.7, 1.0])
    raise KeyError(name)


METHODS = ["compile", "fit", "evaluate", "predict", "train_on_batch", "test_on_batch",
           "set_weights", "get_layer", "summary"]


def _still_usable(model, what):
    """A valid train_on_batch and predict after the call give finite numbers."""
    x, y = _data()
    if getattr(model, "_compiled", None) is None:
        model.compile("adam", "sparse_categorical_crossentropy")
    logs = model.train_on_batch(x, y)
    assert np.isfinite(_numbers(logs)).all(), f"{what}: non-finite training logs after it"
    assert np.isfinite(model.predict(x, verbose=0)).all(), f"{what}: non-finite predict"


@pytest.mark.parametrize("name", METHODS)
@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 50,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_spoiled_model_method_arguments(name, data):
    call, kwargs = _valid(name)
    spoiled = spoil(data, kwargs)
    if "epochs" in spoiled and "callbacks" in spoiled:
        kwargs["callbacks"] = [_StopAfter()]  # a spoiled epochs needs the stop
        del spoiled["callbacks"]
    what = f"{name} with {spoiled}"
    model = _model(compiled=name != "compile")
    before = model.get_weights()
    try:
        result, error = guarded_call(call, model, **kwargs)
    except Hang as exc:
        pytest.fail(f"{what}: {exc}")
    # y_true: the losses' and metrics' name for the targets y, which they check.
    judge(error, what, lambda m: names_an_argument(m, set(kwargs) | {"weights", "y_true"}))
    if error is None:
        check_outputs(result, spoiled, what)
        if set(spoiled.values()) <= SAME_VALUES:
            assert all(np.isfinite(_numbers(result))), f"{what}: non-finite result {result}"
    if error is not None:
        for got, want in zip(model.get_weights(), before):
            np.testing.assert_array_equal(got, want, err_msg=f"{what}: a refused call "
                                                             f"changed the weights")
    if error is not None or set(spoiled.values()) <= SAME_VALUES:
        _still_usable(model, what)  # (legal NaN weights or data make NaN weights)


def _numbers(result):
    """The Python numbers in a result (a loss, a list or dict of logs, a History)."""
    return [n for n in leaves(result) if isinstance(n, (float, int))]
