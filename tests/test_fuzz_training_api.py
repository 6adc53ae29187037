"""Bad input to the training API's public classes and functions, fuzzed: optimizers and
learning-rate schedules, losses, metrics, callbacks, initializers, regularizers,
activations, utils (set_random_seed, set_num_threads, plot_history) and the scikit-learn
wrappers. Each starts from a valid call that also puts the object to use (an optimizer
trains a small model two steps, a callback runs through a short fit, a metric updates and
gives its result, an initializer fills a shape, ...) and has one or two arguments spoiled
(tests/spoilers.py).

Each must work (float outputs float32; finite where the values were kept) or raise
ValueError / TypeError whose message begins by naming an argument (MemoryError for sizes no
machine holds) -- never another exception, a crash or a hang. An exception raised by a
user's own function (the "raises" spoiler of a schedule or a custom activation) is the
user's and may propagate as it is. FASTDL_FUZZ_EXAMPLES sets the examples per entry point
(CI: 25).
"""
import functools
import inspect
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fastdl
from fastdl import (activations, callbacks, initializers, layers, losses, metrics, models,
                    optimizers, regularizers)
from fastdl.optimizers import schedules

from spoilers import (Hang, UserFunctionError, check_outputs, guarded_call, judge,
                      names_an_argument, raised_by, spoil)

EXAMPLES = int(os.environ.get("FASTDL_FUZZ_EXAMPLES", "25"))

pytestmark = pytest.mark.fuzz

_RNG = np.random.default_rng(0)
N, FEATURES, CLASSES = 8, 4, 3
X = _RNG.standard_normal((N, FEATURES)).astype(np.float32)
LABELS = _RNG.integers(0, CLASSES, N)
ONE_HOT = np.eye(CLASSES, dtype=np.float32)[LABELS]
PROBS = (_RNG.random((N, CLASSES)) * 0.8 + 0.1).astype(np.float32)
BINARY = (_RNG.random((N, 1)) > 0.5).astype(np.float32)
SCORES = (_RNG.random((N, 1)) * 0.8 + 0.1).astype(np.float32)


def _model(**compile_kwargs):
    fastdl.utils.clear_session()
    model = models.Sequential([layers.Input((FEATURES,)), layers.Dense(5, activation="relu"),
                               layers.Dense(CLASSES, activation="softmax")])
    model.compile(**{"optimizer": "sgd", "loss": "sparse_categorical_crossentropy",
                     **compile_kwargs})
    return model


# ------------------------------------------------------------------ uses of each kind

def _optimizer(cls):
    def call(**kwargs):
        model = _model(optimizer=cls(**kwargs))
        for _ in range(2):
            model.train_on_batch(X, LABELS)
        return model.get_weights()
    call.constructor = cls
    return call


def _schedule(cls):
    def call(**kwargs):
        schedule = cls(**kwargs)
        rates = [schedule(step) for step in (0, 1, 5, 100)]
        model = _model(optimizer=optimizers.SGD(learning_rate=schedule))
        model.train_on_batch(X, LABELS)
        return rates
    call.constructor = cls
    return call


def _loss_object(cls):
    def call(y_true, y_pred, sample_weight=None, **kwargs):
        return cls(**kwargs)(y_true, y_pred, sample_weight=sample_weight)
    call.constructor = cls
    return call


def _metric_object(cls):
    def call(y_true, y_pred, sample_weight=None, **kwargs):
        metric = cls(**kwargs)
        metric.update_state(y_true, y_pred, sample_weight=sample_weight)
        metric.update_state(y_true, y_pred)
        return metric.result()
    call.constructor = cls
    return call


def _fit_with(callback_factory):
    def call(**kwargs):
        model = _model()
        model.fit(X, LABELS, epochs=3, batch_size=4, verbose=0,
                  validation_data=(X, LABELS), callbacks=[callback_factory(**kwargs)])
        return model.get_weights()
    call.constructor = callback_factory
    return call


def _initializer(cls):
    def call(shape, dtype=None, **kwargs):
        return cls(**kwargs)(shape, dtype=dtype)
    call.constructor = cls
    return call


def _regularizer(cls):
    def call(x, **kwargs):
        return cls(**kwargs)(x)
    call.constructor = cls
    return call


def _register_and_use(name, fn):
    activations.register(name, fn)
    try:
        model = models.Sequential([layers.Input((FEATURES,)), layers.Dense(3, activation=name)])
        return model.predict(X, verbose=0)
    finally:
        fastdl.utils.get_custom_objects().pop(name, None)


def _set_num_threads(n):
    before = fastdl.get_num_threads()
    try:
        fastdl.set_num_threads(n)
        return _model().predict(X, verbose=0)
    finally:
        fastdl.set_num_threads(before)


def _plot_history(history, path, metrics=None):
    pytest.importorskip("matplotlib")
    fastdl.plot_history(history, path, metrics=metrics)


def _sklearn(cls):
    def call(epochs, batch_size, warm_start, X, y):
        pytest.importorskip("sklearn")

        def build(**_):  # the wrapper passes X and y
            return _model()
        estimator = cls(build, warm_start=warm_start,
                        fit_kwargs={"epochs": epochs, "batch_size": batch_size, "verbose": 0})
        estimator.fit(X, y)
        return estimator.predict(X)
    call.constructor = cls
    return call


@functools.lru_cache(maxsize=None)
def _history():
    model = _model(metrics=["accuracy"])
    return model.fit(X, LABELS, epochs=2, verbose=0)


def _float_schedule(epoch, lr):
    return lr * 0.5


# ------------------------------------------------------------------ valid calls

def _cases(tmp):
    """{name: (call, valid keyword arguments)}; tmp: a folder for files callbacks write."""
    path = os.path.join
    cases = {
        "SGD": (_optimizer(optimizers.SGD), dict(learning_rate=0.05, momentum=0.9,
                                                 nesterov=True, clipnorm=1.0, clipvalue=0.5,
                                                 weight_decay=0.01)),
        "Adam": (_optimizer(optimizers.Adam), dict(learning_rate=0.01, beta_1=0.8,
                                                   beta_2=0.99, epsilon=1e-6, amsgrad=True,
                                                   global_clipnorm=2.0)),
        "AdamW": (_optimizer(optimizers.AdamW), dict(learning_rate=0.01, weight_decay=0.01,
                                                     beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                                                     amsgrad=False)),
        "RMSprop": (_optimizer(optimizers.RMSprop), dict(learning_rate=0.01, rho=0.8,
                                                         momentum=0.5, epsilon=1e-6,
                                                         centered=True)),
        "Adagrad": (_optimizer(optimizers.Adagrad), dict(learning_rate=0.05,
                                                         initial_accumulator_value=0.2,
                                                         epsilon=1e-6)),
        "optimizers.get": (optimizers.get, dict(identifier="adam")),
        "ExponentialDecay": (_schedule(schedules.ExponentialDecay),
                             dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.9,
                                  staircase=True)),
        "PiecewiseConstantDecay": (_schedule(schedules.PiecewiseConstantDecay),
                                   dict(boundaries=[2, 5], values=[0.1, 0.05, 0.01])),
        "CosineDecay": (_schedule(schedules.CosineDecay),
                        dict(initial_learning_rate=0.1, decay_steps=20, alpha=0.1,
                             warmup_target=0.2, warmup_steps=3)),
        "InverseTimeDecay": (_schedule(schedules.InverseTimeDecay),
                             dict(initial_learning_rate=0.1, decay_steps=5, decay_rate=0.5,
                                  staircase=False)),
        "losses.get": (losses.get, dict(identifier="huber")),
        "CategoricalCrossentropy": (
            _loss_object(losses.CategoricalCrossentropy),
            dict(y_true=ONE_HOT, y_pred=PROBS, sample_weight=np.ones(N, np.float32),
                 from_logits=False, label_smoothing=0.1, axis=-1, reduction="sum")),
        "SparseCategoricalCrossentropy": (
            _loss_object(losses.SparseCategoricalCrossentropy),
            dict(y_true=LABELS, y_pred=PROBS, from_logits=True,
                 reduction="sum_over_batch_size")),
        "BinaryCrossentropy": (
            _loss_object(losses.BinaryCrossentropy),
            dict(y_true=BINARY, y_pred=SCORES, from_logits=False, label_smoothing=0.2)),
        "Huber": (_loss_object(losses.Huber),
                  dict(y_true=ONE_HOT, y_pred=PROBS, delta=0.5, reduction="none")),
        "TripletMarginLoss": (
            _loss_object(losses.TripletMarginLoss),
            dict(y_true=np.zeros(N, np.float32),
                 y_pred=_RNG.standard_normal((N, 3, 5)).astype(np.float32), margin=0.5,
                 p=2, eps=1e-6, swap=True)),
        "kl_divergence": (losses.kl_divergence, dict(y_true=ONE_HOT, y_pred=PROBS)),
        "hinge": (losses.hinge, dict(y_true=BINARY, y_pred=SCORES)),
        "metrics.get": (metrics.get, dict(identifier="top_k_categorical_accuracy")),
        "Precision": (_metric_object(metrics.Precision),
                      dict(y_true=BINARY, y_pred=SCORES, thresholds=0.4)),
        "Recall": (_metric_object(metrics.Recall),
                   dict(y_true=ONE_HOT, y_pred=PROBS, top_k=2, class_id=1)),
        "AUC": (_metric_object(metrics.AUC),
                dict(y_true=BINARY, y_pred=SCORES, sample_weight=np.ones(N, np.float32),
                     num_thresholds=50, curve="PR", summation_method="minoring",
                     from_logits=False)),
        "TopKCategoricalAccuracy": (_metric_object(metrics.TopKCategoricalAccuracy),
                                    dict(y_true=ONE_HOT, y_pred=PROBS, k=2)),
        "SparseTopKCategoricalAccuracy": (
            _metric_object(metrics.SparseTopKCategoricalAccuracy),
            dict(y_true=LABELS, y_pred=PROBS, k=2)),
        "BinaryAccuracy": (_metric_object(metrics.BinaryAccuracy),
                           dict(y_true=BINARY, y_pred=SCORES, threshold=0.3)),
        "sparse_categorical_accuracy": (metrics.sparse_categorical_accuracy,
                                        dict(y_true=LABELS, y_pred=PROBS)),
        "EarlyStopping": (_fit_with(callbacks.EarlyStopping),
                          dict(monitor="val_loss", min_delta=0.01, patience=1, verbose=0,
                               mode="min", baseline=5.0, restore_best_weights=True,
                               start_from_epoch=1)),
        "ModelCheckpoint": (_fit_with(callbacks.ModelCheckpoint),
                            dict(filepath=path(tmp, "best.keras"), monitor="val_loss",
                                 verbose=0, save_best_only=True, save_weights_only=False,
                                 mode="auto", save_freq="epoch",
                                 initial_value_threshold=10.0)),
        "ReduceLROnPlateau": (_fit_with(callbacks.ReduceLROnPlateau),
                              dict(monitor="loss", factor=0.5, patience=1, verbose=0,
                                   mode="auto", min_delta=1e-4, cooldown=1, min_lr=1e-4)),
        "LearningRateScheduler": (_fit_with(callbacks.LearningRateScheduler),
                                  dict(schedule=_float_schedule, verbose=0)),
        "CSVLogger": (_fit_with(callbacks.CSVLogger),
                      dict(filename=path(tmp, "log.csv"), separator=";", append=True)),
        "VarianceScaling": (_initializer(initializers.VarianceScaling),
                            dict(shape=(4, 6), dtype="float32", scale=2.0, mode="fan_avg",
                                 distribution="uniform", seed=3)),
        "Orthogonal": (_initializer(initializers.Orthogonal),
                       dict(shape=(6, 4), gain=1.5, seed=1)),
        "TruncatedNormal": (_initializer(initializers.TruncatedNormal),
                            dict(shape=(3, 3, 2), mean=0.5, stddev=0.2, seed=2)),
        "Constant": (_initializer(initializers.Constant), dict(shape=(5,), value=0.3)),
        "Identity": (_initializer(initializers.Identity), dict(shape=(3, 3), gain=2.0)),
        "initializers.get": (initializers.get, dict(identifier="he_normal")),
        "L1L2": (_regularizer(regularizers.L1L2),
                 dict(x=_RNG.standard_normal((4, 3)).astype(np.float32), l1=0.01, l2=0.02)),
        "regularizers.get": (regularizers.get, dict(identifier="l2")),
        "activations.get": (activations.get, dict(identifier="gelu")),
        "activations.register": (_register_and_use,
                                 dict(name="fuzzed_swish", fn=lambda x: x / (1 + np.exp(-x)))),
        "set_random_seed": (fastdl.utils.set_random_seed, dict(seed=7)),
        "set_num_threads": (_set_num_threads, dict(n=2)),
        "plot_history": (_plot_history, dict(history=_history(), path=path(tmp, "h.png"),
                                             metrics=["loss", "accuracy"])),
    }
    try:
        from fastdl import wrappers
        cases["SKLearnClassifier"] = (_sklearn(wrappers.SKLearnClassifier),
                                      dict(epochs=2, batch_size=4, warm_start=False, X=X,
                                           y=LABELS))
    except ImportError:
        pass
    return cases


NAMES = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "optimizers.get", "ExponentialDecay",
         "PiecewiseConstantDecay", "CosineDecay", "InverseTimeDecay", "losses.get",
         "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "BinaryCrossentropy",
         "Huber", "TripletMarginLoss", "kl_divergence", "hinge", "metrics.get", "Precision",
         "Recall", "AUC", "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy",
         "BinaryAccuracy", "sparse_categorical_accuracy", "EarlyStopping", "ModelCheckpoint",
         "ReduceLROnPlateau", "LearningRateScheduler", "CSVLogger", "VarianceScaling",
         "Orthogonal", "TruncatedNormal", "Constant", "Identity", "initializers.get", "L1L2",
         "regularizers.get", "activations.get", "activations.register", "set_random_seed",
         "set_num_threads", "plot_history", "SKLearnClassifier"]


# The get() functions resolve what compile(optimizer=, loss=, metrics=) and the layers'
# activation=, kernel_initializer=, kernel_regularizer= are given: their messages name that
# argument, the one a user writes.
_ROLES = {"optimizers.get": "optimizer", "losses.get": "loss", "metrics.get": "metrics",
          "activations.get": "activation", "initializers.get": "initializer",
          "regularizers.get": "regularizer",
          # a registered function is then used as Dense(activation=name)
          "activations.register": "activation",
          # a schedule's rates are checked where the optimizer takes them
          "ExponentialDecay": "learning_rate", "PiecewiseConstantDecay": "learning_rate",
          "CosineDecay": "learning_rate", "InverseTimeDecay": "learning_rate"}


def _names(name, fn, kwargs):
    """The argument names a message may start with: the call's and its constructor's."""
    names = set(kwargs) | {_ROLES.get(name)}
    for f in (fn, getattr(fn, "constructor", None)):
        if f is not None:
            try:
                names |= set(inspect.signature(f).parameters)
            except (TypeError, ValueError):
                pass
    # y_true, y_pred: the losses' and metrics' targets and predictions; x: the model's input
    # (the scikit-learn wrappers' X).
    return names | {"y_true", "y_pred", "x"}


def _users_own(error, kwargs, spoiled):
    """Whether a user's function given as an argument (a schedule, an activation) raised
    `error` itself: a frame of it in the traceback, or a builtin given as the function
    (len(epoch)) raising as the builtin does."""
    if error is None:
        return False
    functions = [f for f in kwargs.values() if callable(f) and not isinstance(f, type)]
    return (isinstance(error, UserFunctionError) or raised_by(error, functions) or
            "builtin" in spoiled.values())


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return str(tmp_path_factory.mktemp("training_api"))


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 50,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_spoiled_training_api_arguments(folder, name, data):
    cases = _cases(folder)
    if name not in cases:
        pytest.skip(f"{name}: its optional dependency is not installed")
    fn, kwargs = cases[name]
    spoiled = spoil(data, kwargs)
    what = f"{name} with {spoiled}"
    cwd = os.getcwd()
    os.chdir(folder)  # a spoiled path ("nonsense") is written here, not in the checkout
    try:
        result, error = guarded_call(fn, **kwargs)
    except Hang as exc:
        pytest.fail(f"{what}: {exc}")
    finally:
        os.chdir(cwd)
    if _users_own(error, kwargs, spoiled):
        return  # the user's own function raised: theirs to see, as it is
    judge(error, what, lambda m: names_an_argument(m, _names(name, fn, kwargs)))
    if error is None:
        check_outputs(result, spoiled, what)


def test_refusals_the_fuzzing_found(tmp_path):
    """What this fuzzing found, each named now (was NumPy's, Python's or matplotlib's own
    error, an overflow mid-training, or a NaN learning rate taken)."""
    cases = [
        (TypeError, "^boundaries:", lambda: schedules.PiecewiseConstantDecay(None, [0.1])),
        (ValueError, "^decay_rate:", lambda: schedules.ExponentialDecay(0.1, 5, -1.0)),
        (ValueError, "^decay_rate:", lambda: schedules.InverseTimeDecay(0.1, 5, -1.0)),
        (ValueError, "^learning_rate:", lambda: optimizers.SGD(learning_rate=float("nan"))),
        (ValueError, "^shape:", lambda: initializers.Orthogonal()((3, -1))),
        (TypeError, "^shape:", lambda: initializers.Constant()(None)),
        (ValueError, "^dtype:", lambda: initializers.Constant()((2,), dtype="int8")),
        (ValueError, "^stddev:", lambda: initializers.TruncatedNormal(stddev=-1.0)),
        (ValueError, "^alpha:", lambda: schedules.CosineDecay(0.1, 5, alpha=-1e308)),
        (ValueError, "^y_true:", lambda: losses.hinge(1.0, np.ones(1, np.float32))),
        (ValueError, "^y_pred:", lambda: losses.hinge(np.ones((2, 0)), np.ones((2, 0)))),
        (ValueError, "^seed:", lambda: fastdl.utils.set_random_seed(2**40)),
        (TypeError, "^x:", lambda: regularizers.L1L2(0.1)("abc")),
        (TypeError, "^fn:", lambda: activations.register("fuzz_no_args", lambda: 0)),
    ]
    try:
        import matplotlib  # noqa: F401  (plot_history needs it before it reads arguments)
        cases += [
            (TypeError, "^path:", lambda: fastdl.plot_history({"loss": [1.0]}, None)),
            (TypeError, "^metrics:", lambda: fastdl.plot_history({"loss": [1.0]}, "h.png",
                                                                  metrics=[["loss"]])),
        ]
    except ImportError:
        pass
    for error, message, call in cases:
        with pytest.raises(error, match=message):
            call()
    # A schedule whose rate overflows stops training with the step it reached, weights kept.
    model = _model(optimizer=optimizers.SGD(schedules.ExponentialDecay(0.1, 1e-300, 2.0)))
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"^learning_rate: the schedule gave inf at step 1"):
        for _ in range(2):
            model.train_on_batch(X, LABELS)
    assert not any(np.array_equal(a, b) for a, b in zip(model.get_weights()[:1], before[:1]))
    # A custom activation returning another shape is named, not passed on.
    activations.register("fuzz_sum", lambda x: x.sum())
    try:
        model = models.Sequential([layers.Input((FEATURES,)),
                                   layers.Dense(3, activation="fuzz_sum")])
        with pytest.raises(ValueError, match=r"^activation: 'fuzz_sum' returned shape \(\)"):
            model.predict(X, verbose=0)
    finally:
        fastdl.utils.get_custom_objects().pop("fuzz_sum", None)


def test_wrappers_import_without_scikit_learn():
    """Found by the ARM run (no scikit-learn there): the stand-in bases made the module
    fail to import with a TypeError (no consistent MRO); the wrappers refuse at build."""
    import subprocess
    import sys
    script = ("import sys; sys.modules['sklearn'] = None\n"
              "from fastdl import wrappers\n"
              "try:\n    wrappers.SKLearnClassifier(lambda **k: None)\n"
              "except ImportError as e:\n    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "refused: SKLearnClassifier needs scikit-learn" in out.stdout
