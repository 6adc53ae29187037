"""fastdl.metrics: closed-form small examples (Keras' documented ones, hand counts, AUC
against the exact Mann-Whitney statistic), Mean's reduction rules, get / resolve_accuracy
naming, configs, bad arguments; then every metric against Keras 3 (keras.metrics on the
torch backend, skipped where keras is missing) over several update_state calls with sample
weights of several shapes, then reset_state.
"""
from __future__ import annotations

import os
import re

import numpy as np
import pytest

from fastdl import metrics

os.environ.setdefault("KERAS_BACKEND", "torch")  # before any import of keras

F32 = np.float32


def rng(seed):
    return np.random.default_rng(seed)


def one_hot(labels, classes):
    return np.eye(classes, dtype=F32)[labels]


def run(metric, batches):
    """Updates `metric` with each (y_true, y_pred, sample_weight) and returns the results
    after each update."""
    out = []
    for y_true, y_pred, sw in batches:
        metric.update_state(y_true, y_pred, sample_weight=sw)
        out.append(metric.result())
    return out


# ---------------------------------------------------------------- closed forms

CLOSED_FORMS = [
    # Keras' documented examples (keras/src/metrics/*.py docstrings).
    ("accuracy", lambda: metrics.Accuracy(),
     [[[1], [2], [3], [4]], [[0], [2], [3], [4]]], None, 0.75),
    ("accuracy_w", lambda: metrics.Accuracy(),
     [[[1], [2], [3], [4]], [[0], [2], [3], [4]]], [1, 1, 0, 0], 0.5),
    ("binary", lambda: metrics.BinaryAccuracy(),
     [[[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]]], None, 0.75),
    ("binary_w", lambda: metrics.BinaryAccuracy(),
     [[[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]]], [1, 0, 0, 1], 0.5),
    ("categorical", lambda: metrics.CategoricalAccuracy(),
     [[[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]]], None, 0.5),
    ("categorical_w", lambda: metrics.CategoricalAccuracy(),
     [[[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]]], [0.7, 0.3], 0.3),
    ("sparse", lambda: metrics.SparseCategoricalAccuracy(),
     [[[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]]], None, 0.5),
    ("sparse_w", lambda: metrics.SparseCategoricalAccuracy(),
     [[[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]]], [0.7, 0.3], 0.3),
    ("top_k", lambda: metrics.TopKCategoricalAccuracy(k=1),
     [[[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]]], [0.7, 0.3], 0.3),
    ("sparse_top_k", lambda: metrics.SparseTopKCategoricalAccuracy(k=1),
     [[2, 1], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]]], None, 0.5),
    ("sparse_top_k_ids", lambda: metrics.SparseTopKCategoricalAccuracy(
        k=1, from_sorted_ids=True), [[2, 1], [[1, 0, 3], [1, 2, 3]]], None, 0.5),
    ("mse", lambda: metrics.MeanSquaredError(),
     [[[0, 1], [0, 0]], [[1, 1], [0, 0]]], None, 0.25),
    ("mae_w", lambda: metrics.MeanAbsoluteError(),
     [[[0, 1], [0, 0]], [[1, 1], [0, 0]]], [1, 0], 0.5),
    ("precision", lambda: metrics.Precision(), [[0, 1, 1, 1], [1, 0, 1, 1]], None, 2 / 3),
    ("precision_w", lambda: metrics.Precision(),
     [[0, 1, 1, 1], [1, 0, 1, 1]], [0, 0, 1, 0], 1.0),
    ("precision_top2", lambda: metrics.Precision(top_k=2),
     [[0, 0, 1, 1], [1, 1, 1, 1]], None, 0.0),
    ("precision_top4", lambda: metrics.Precision(top_k=4),
     [[0, 0, 1, 1], [1, 1, 1, 1]], None, 0.5),
    ("recall", lambda: metrics.Recall(), [[0, 1, 1, 1], [1, 0, 1, 1]], None, 2 / 3),
    ("recall_w", lambda: metrics.Recall(), [[0, 1, 1, 1], [1, 0, 1, 1]], [0, 0, 1, 0], 1.0),
    ("auc", lambda: metrics.AUC(num_thresholds=3),
     [[0, 0, 1, 1], [0, 0.5, 0.3, 0.9]], None, 0.75),
    ("auc_w", lambda: metrics.AUC(num_thresholds=3),
     [[0, 0, 1, 1], [0, 0.5, 0.3, 0.9]], [1, 0, 0, 1], 1.0),
    # Hand counts.
    ("top_k_ties", lambda: metrics.TopKCategoricalAccuracy(k=1),  # tied at the top: in
     [[[0, 1, 0], [1, 0, 0]], [[0.5, 0.5, 0.0], [0.2, 0.4, 0.4]]], None, 0.5),
    ("sparse_top_k_ties", lambda: metrics.SparseTopKCategoricalAccuracy(k=2),
     [[3, 0], [[0.1, 0.3, 0.3, 0.3], [0.1, 0.3, 0.3, 0.3]]], None, 0.5),
    ("top_k_all", lambda: metrics.SparseTopKCategoricalAccuracy(),  # k=5 >= 3 classes
     [[0, 1], [[0.1, 0.5, 0.4], [0.9, 0.05, 0.05]]], None, 1.0),
    ("sparse_float_labels", lambda: metrics.SparseCategoricalAccuracy(),
     [np.array([2.0, 0.0]), [[0.1, 0.2, 0.7], [0.3, 0.6, 0.1]]], None, 0.5),
    ("binary_threshold", lambda: metrics.BinaryAccuracy(threshold=0.0),  # logits
     [[1, 0, 1, 0], [2.0, -1.0, -0.5, 0.0]], None, 0.75),
    ("recall_class_id", lambda: metrics.Recall(class_id=1),
     [[[0, 1], [0, 1], [1, 0]], [[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]]], None, 0.5),
    ("precision_thresholds", lambda: metrics.Precision(thresholds=[0.25, 0.75]),
     [[1, 0, 1, 0], [0.9, 0.8, 0.5, 0.1]], None, [2 / 3, 0.5]),
]


@pytest.mark.parametrize("make, data, sw, want",
                         [c[1:] for c in CLOSED_FORMS], ids=[c[0] for c in CLOSED_FORMS])
def test_closed_form(make, data, sw, want):
    m = make()
    got = run(m, [(data[0], data[1], sw)])[0]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    m.reset_state()
    assert m.result() == ([0.0] * len(want) if isinstance(want, list) else 0.0)


def test_results_are_python_floats_in_the_metric_dtype():
    m = metrics.Accuracy()
    m.update_state([1, 2, 3], [1, 2, 0])
    assert type(m.result()) is float and m.result() == float(F32(2 / 3))
    m64 = metrics.Accuracy(dtype="float64")
    m64.update_state([1, 2, 3], [1, 2, 0])
    assert m64.result() == 2 / 3 and m64.get_config()["dtype"] == "float64"
    assert metrics.Accuracy()([1, 2], [1, 0]) == 0.5  # __call__: update, then result


def test_mean_reduction_rules():
    """Keras' Mean: values averaged per sample, weights broadcast; each sample counts its
    weight; nothing (or zero weight) seen -> 0.0."""
    m = metrics.Mean()
    assert m.result() == 0.0
    m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    assert m.result() == 2.0
    m.update_state([[2, 4], [6, 8]])  # per-sample means 3 and 7, two samples
    np.testing.assert_allclose(m.result(), (1 + 3 + 3 + 7) / 4, rtol=1e-7)
    m.reset_state()
    m.update_state([[1, 2], [3, 4]], sample_weight=[[1, 0], [1, 1]])
    # per sample: mean(v * w) = 0.5, 3.5; weights mean(w) = 0.5, 1 -> 4 / 1.5
    np.testing.assert_allclose(m.result(), 4 / 1.5, rtol=1e-7)
    m.reset_state()
    m.update_state([1.0, 2.0, 6.0], sample_weight=2.0)  # a scalar weight
    np.testing.assert_allclose(m.result(), 3.0, rtol=1e-7)
    m.reset_state()
    m.update_state([1.0, 2.0], sample_weight=[0.0, 0.0])
    assert m.result() == 0.0
    m.update_state(np.zeros((0,), F32))  # an empty batch changes nothing
    assert m.result() == 0.0


def test_mean_metric_wrapper_of_a_function():
    def hits(y_true, y_pred):
        return (np.asarray(y_true) == np.asarray(y_pred)).astype(F32)
    m = metrics.get(hits)
    assert isinstance(m, metrics.MeanMetricWrapper) and m.name == "hits"
    m.update_state([[1, 2], [3, 4]], [[1, 0], [3, 4]], sample_weight=[1, 3])
    np.testing.assert_allclose(m.result(), (0.5 * 1 + 1.0 * 3) / 4, rtol=1e-7)
    assert metrics.get(lambda t, p: t).name == "lambda"
    assert metrics.MeanMetricWrapper(hits).name == "mean_metric_wrapper"


def test_mse_mae_per_sample_then_mean():
    t = np.array([[0, 1, 2], [1, 1, 1]], F32)
    p = np.array([[1, 1, 0], [1, 3, 1]], F32)
    mse, mae = metrics.MeanSquaredError(), metrics.MeanAbsoluteError()
    mse.update_state(t, p, sample_weight=[3, 1])
    mae.update_state(t, p, sample_weight=[3, 1])
    np.testing.assert_allclose(mse.result(), (3 * 5 / 3 + 4 / 3) / 4, rtol=1e-6)
    np.testing.assert_allclose(mae.result(), (3 * 1 + 2 / 3) / 4, rtol=1e-6)


def mann_whitney(y, s, w):
    """Exact weighted ROC AUC: pairs (positive, negative) ordered right, ties half."""
    pos, neg = y != 0, y == 0
    sp, sn, wp, wn = s[pos][:, None], s[neg][None, :], w[pos][:, None], w[neg][None, :]
    score = (sp > sn) + 0.5 * (sp == sn)
    return float((score * wp * wn).sum() / (wp.sum() * wn.sum()))


@pytest.mark.parametrize("num_thresholds", [11, 200])
def test_auc_roc_is_exact_when_thresholds_separate_the_scores(num_thresholds):
    """Scores midway between thresholds: the trapezoids over the ROC points are the exact
    Mann-Whitney statistic (ties count half), with sample weights too."""
    g = rng(3)
    n = 300
    levels = (np.arange(num_thresholds - 1) + 0.5) / (num_thresholds - 1)
    s = levels[g.integers(0, len(levels), n)].astype(F32)
    y = (g.random(n) < 0.3 + 0.5 * s).astype(F32)
    w = g.uniform(0.2, 2.0, n).astype(F32)
    m = metrics.AUC(num_thresholds=num_thresholds)
    m.update_state(y[:100], s[:100], sample_weight=w[:100])
    m.update_state(y[100:], s[100:], sample_weight=w[100:])
    np.testing.assert_allclose(m.result(), mann_whitney(y, s, w), rtol=1e-5)


def test_auc_separable_and_reversed():
    y = np.array([0, 0, 1, 1], F32)
    s = np.array([0.1, 0.2, 0.8, 0.9], F32)
    for curve in ("ROC", "PR"):
        m = metrics.AUC(curve=curve)
        m.update_state(y, s)
        np.testing.assert_allclose(m.result(), 1.0, atol=1e-6)
    m = metrics.AUC()
    m.update_state(y, 1 - s)
    np.testing.assert_allclose(m.result(), 0.0, atol=1e-6)
    assert metrics.AUC().result() == 0.0


# ---------------------------------------------------------------- names

@pytest.mark.parametrize("identifier, cls, name", [
    ("mse", metrics.MeanSquaredError, "mse"),
    ("MSE", metrics.MeanSquaredError, "MSE"),
    ("mean_squared_error", metrics.MeanSquaredError, "mean_squared_error"),
    ("MeanSquaredError", metrics.MeanSquaredError, "MeanSquaredError"),
    ("mae", metrics.MeanAbsoluteError, "mae"),
    ("mean_absolute_error", metrics.MeanAbsoluteError, "mean_absolute_error"),
    ("binary_accuracy", metrics.BinaryAccuracy, "binary_accuracy"),
    ("categorical_accuracy", metrics.CategoricalAccuracy, "categorical_accuracy"),
    ("sparse_categorical_accuracy", metrics.SparseCategoricalAccuracy,
     "sparse_categorical_accuracy"),
    ("top_k_categorical_accuracy", metrics.TopKCategoricalAccuracy,
     "top_k_categorical_accuracy"),
    ("sparse_top_k_categorical_accuracy", metrics.SparseTopKCategoricalAccuracy,
     "sparse_top_k_categorical_accuracy"),
    ("precision", metrics.Precision, "precision"),
    ("recall", metrics.Recall, "recall"),
    ("auc", metrics.AUC, "auc"),
    ("AUC", metrics.AUC, "AUC"),
])
def test_get_by_name(identifier, cls, name):
    m = metrics.get(identifier)
    assert type(m) is cls and m.name == name


@pytest.mark.parametrize("identifier", ["accuracy", "acc", "Accuracy", "ACC"])
def test_get_accuracy_is_resolved_later_and_keeps_its_spelling(identifier):
    marker = metrics.get(identifier)
    assert isinstance(marker, metrics.AutoAccuracy)
    assert not isinstance(marker, metrics.Metric)
    assert marker.name == str(marker) == identifier
    m = marker.resolve((8, 1), (8, 1))
    assert type(m) is metrics.BinaryAccuracy and m.name == identifier


def test_get_objects():
    m = metrics.Precision(thresholds=0.3, name="p")
    assert metrics.get(m) is m
    assert type(metrics.get(metrics.Recall)) is metrics.Recall
    assert metrics.get(metrics.Recall).name == "recall"
    back = metrics.get(metrics.serialize(m))
    assert type(back) is metrics.Precision and back.get_config() == m.get_config()
    marker = metrics.get("acc")
    assert metrics.get(marker) is marker


@pytest.mark.parametrize("y_true, y_pred, cls", [
    ((8, 1), (8, 1), metrics.BinaryAccuracy),
    ((8,), (8, 1), metrics.BinaryAccuracy),
    ((8, 3), (8, 1), metrics.BinaryAccuracy),  # last dim 1 wins
    ((8,), (8, 4), metrics.SparseCategoricalAccuracy),
    ((8, 1), (8, 4), metrics.SparseCategoricalAccuracy),
    ((8, 5), (8, 5, 4), metrics.SparseCategoricalAccuracy),
    ((8, 4), (8, 4), metrics.CategoricalAccuracy),
    ((8, 5, 4), (8, 5, 4), metrics.CategoricalAccuracy),
])
def test_resolve_accuracy_by_shapes(y_true, y_pred, cls):
    for loss in (None, "binary_crossentropy", "categorical_crossentropy",
                 "sparse_categorical_crossentropy", "mse"):
        assert metrics.resolve_accuracy(loss, y_true, y_pred) is cls  # Keras 3: shapes only


def test_configs_round_trip():
    made = [metrics.Accuracy(name="a"), metrics.BinaryAccuracy(threshold=0.3),
            metrics.CategoricalAccuracy(), metrics.SparseCategoricalAccuracy(dtype="float64"),
            metrics.TopKCategoricalAccuracy(k=3), metrics.SparseTopKCategoricalAccuracy(k=2),
            metrics.SparseTopKCategoricalAccuracy(from_sorted_ids=True),
            metrics.MeanSquaredError(), metrics.MeanAbsoluteError(), metrics.Mean(),
            metrics.Precision(thresholds=[0.2, 0.6], class_id=1),
            metrics.Recall(top_k=2), metrics.AUC(num_thresholds=50, curve="pr"),
            metrics.AUC(thresholds=[0.7, 0.2], summation_method="Minoring",
                        label_weights=[1, 2], from_logits=True)]
    for m in made:
        config = m.get_config()
        again = type(m).from_config(config)
        assert again.get_config() == config and again.name == m.name
    assert made[1].get_config() == {"name": "binary_accuracy", "dtype": "float32",
                                    "threshold": 0.3}
    assert made[4].get_config() == {"name": "top_k_categorical_accuracy",
                                    "dtype": "float32", "k": 3}
    auc = made[-1].get_config()
    assert auc["thresholds"] == [0.2, 0.7] and auc["curve"] == "ROC"
    assert auc["summation_method"] == "minoring" and auc["num_thresholds"] == 4
    assert made[-1].thresholds == [-1e-7, 0.2, 0.7, 1 + 1e-7]


# ---------------------------------------------------------------- bad arguments

def _update(metric, y_true, y_pred, **kw):
    return lambda: metric.update_state(y_true, y_pred, **kw)


P3 = np.full((4, 3), 1 / 3, F32)
BAD = [
    ("shapes", _update(metrics.Accuracy(), np.zeros((4, 3)), np.zeros((4, 2))),
     ValueError, "y_true"),
    ("complex_pred", _update(metrics.MeanSquaredError(), np.zeros(3), np.zeros(3, complex)),
     TypeError, "y_pred"),
    ("string_true", _update(metrics.BinaryAccuracy(), np.array(["a", "b"]), [0.1, 0.2]),
     TypeError, "y_true"),
    ("onehot_shape", _update(metrics.CategoricalAccuracy(), np.zeros((4, 2)), P3),
     ValueError, "y_true"),
    ("no_classes", _update(metrics.CategoricalAccuracy(), np.zeros((4, 0)),
                           np.zeros((4, 0))), ValueError, "y_pred"),
    ("scalar_pred", _update(metrics.SparseCategoricalAccuracy(), 1, 0.5),
     ValueError, "y_pred"),
    ("label_fraction", _update(metrics.SparseCategoricalAccuracy(), [0, 1.5, 2, 0], P3),
     ValueError, "y_true"),
    ("label_nan", _update(metrics.SparseCategoricalAccuracy(), [0, np.nan, 2, 0], P3),
     ValueError, "y_true"),
    ("label_range", _update(metrics.SparseCategoricalAccuracy(), [0, 3, 2, 0], P3),
     ValueError, "y_true"),
    ("label_negative", _update(metrics.SparseTopKCategoricalAccuracy(k=2), [0, -1, 2, 0],
                               P3), ValueError, "y_true"),
    ("label_bool", _update(metrics.SparseCategoricalAccuracy(), [True, False, True, True],
                           P3), TypeError, "y_true"),
    ("label_shape", _update(metrics.SparseCategoricalAccuracy(), [0, 1, 2], P3),
     ValueError, "y_true"),
    ("sample_weight_shape", _update(metrics.Accuracy(), [1, 2, 3], [1, 2, 3],
                                    sample_weight=[1, 2]), ValueError, "sample_weight"),
    ("sample_weight_dtype", _update(metrics.Accuracy(), [1, 2], [1, 2],
                                    sample_weight=["a", "b"]), TypeError, "sample_weight"),
    ("confusion_weight", _update(metrics.Precision(), [1, 0, 1], [0.2, 0.6, 0.9],
                                 sample_weight=[1, 2]), ValueError, "sample_weight"),
    ("confusion_shapes", _update(metrics.Recall(), np.zeros((4, 2)), P3),
     ValueError, "y_true"),
    ("class_id_range", _update(metrics.Precision(class_id=3), np.zeros((4, 3)), P3),
     ValueError, "class_id"),
    ("class_id_1d", _update(metrics.Precision(class_id=0), [1, 0], [0.3, 0.6]),
     ValueError, "y_pred"),
    ("k_zero", lambda: metrics.TopKCategoricalAccuracy(k=0), ValueError, "k"),
    ("k_float", lambda: metrics.SparseTopKCategoricalAccuracy(k=1.5), TypeError, "k"),
    ("k_bool", lambda: metrics.top_k_categorical_accuracy(P3, P3, k=True), TypeError, "k"),
    ("threshold_nan", lambda: metrics.BinaryAccuracy(threshold=float("nan")),
     ValueError, "threshold"),
    ("threshold_str", lambda: metrics.BinaryAccuracy(threshold="0.5"), TypeError,
     "threshold"),
    ("thresholds_high", lambda: metrics.Precision(thresholds=1.5), ValueError, "thresholds"),
    ("thresholds_low", lambda: metrics.Recall(thresholds=[0.2, -0.1]), ValueError,
     "thresholds"),
    ("thresholds_empty", lambda: metrics.Recall(thresholds=[]), ValueError, "thresholds"),
    ("auc_thresholds", lambda: metrics.AUC(thresholds=[0.5, 1.2]), ValueError,
     "thresholds"),
    ("top_k_zero", lambda: metrics.Precision(top_k=0), ValueError, "top_k"),
    ("class_id_negative", lambda: metrics.Recall(class_id=-1), ValueError, "class_id"),
    ("num_thresholds", lambda: metrics.AUC(num_thresholds=1), ValueError, "num_thresholds"),
    ("curve", lambda: metrics.AUC(curve="XY"), ValueError, "curve"),
    ("summation", lambda: metrics.AUC(summation_method="trapezoid"), ValueError,
     "summation_method"),
    ("multi_label", lambda: metrics.AUC(multi_label=True), NotImplementedError,
     "multi_label"),
    ("num_labels", lambda: metrics.AUC(num_labels=3), ValueError, "num_labels"),
    ("label_weights", lambda: metrics.AUC(label_weights=[[1, 2]]), ValueError,
     "label_weights"),
    ("from_logits", lambda: metrics.AUC(from_logits=1), TypeError, "from_logits"),
    ("name", lambda: metrics.Accuracy(name=3), TypeError, "name"),
    ("dtype", lambda: metrics.Accuracy(dtype="int32"), ValueError, "dtype"),
    ("fn", lambda: metrics.MeanMetricWrapper(3), TypeError, "fn"),
    ("get_unknown", lambda: metrics.get("f1"), ValueError, "metrics"),
    ("get_none", lambda: metrics.get(None), ValueError, "metrics"),
    ("get_int", lambda: metrics.get(3), TypeError, "metrics"),
    ("get_class", lambda: metrics.get(dict), TypeError, "metrics"),
    ("get_config", lambda: metrics.get({"class_name": "F1Score"}), ValueError, "metrics"),
    ("resolve_loss", lambda: metrics.resolve_accuracy(3, (4,), (4, 3)), TypeError,
     "loss_name"),
    ("resolve_rank0", lambda: metrics.resolve_accuracy(None, (), (4, 3)), ValueError,
     "y_true_shape"),
    ("resolve_shape", lambda: metrics.resolve_accuracy(None, (4,), "ab"), TypeError,
     "y_pred_shape"),
    ("marker_name", lambda: metrics.AutoAccuracy("mse"), ValueError, "name"),
]


@pytest.mark.parametrize("call, error, argument", [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_bad_arguments(call, error, argument):
    with pytest.raises(error, match=f"^{argument}"):
        call()


def test_refused_update_leaves_the_state_alone():
    m = metrics.SparseCategoricalAccuracy()
    m.update_state([0, 1], [[0.9, 0.1], [0.8, 0.2]])
    with pytest.raises(ValueError):
        m.update_state([0, 5], [[0.9, 0.1], [0.8, 0.2]])
    assert m.result() == 0.5


# ---------------------------------------------------------------- against Keras 3

@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def keras_result(metric):
    """A Keras metric's result as a float (or a list of them)."""
    import keras
    return np.asarray(keras.ops.convert_to_numpy(metric.result()), np.float64).tolist()


def binary_batches(seed, shape=(48, 1), quantized=False, logits=False, per_element=True):
    """Three weighted (y_true, y_pred, sample_weight) batches of 0/1 labels and scores:
    no weights, per-sample weights, then per-sample weights with a trailing axis (or
    per-element ones for several labels); one more for after reset_state."""
    g = rng(seed)

    def batch(weight):
        y = g.integers(0, 2, shape).astype(F32)
        if logits:
            s = g.normal(0, 2, shape)
        elif quantized:  # scores on threshold boundaries
            s = g.integers(0, 5, shape) / 4
        else:
            s = np.clip(0.35 * y + 0.65 * g.random(shape), 0, 1)
        n = shape[0]
        w = {None: None, "n": g.uniform(0.1, 2, n), "n1": g.uniform(0.1, 2, (n, 1)),
             "full": g.uniform(0.1, 2, shape)}[weight]
        return y, s.astype(F32), None if w is None else w.astype(F32)
    last = "full" if per_element and len(shape) > 1 and shape[-1] > 1 else "n1"
    return [batch(None), batch("n"), batch(last), batch("n")]


def class_batches(seed, classes=5, n=48, sparse=False, extra=(), ties=False,
                  label_axis=False, float_labels=False):
    """Batches of labels (one-hot, or class indices) and scores of shape
    (n, *extra, classes); ties: scores from {0, 1, 2} so many are tied."""
    g = rng(seed)

    def batch(weight):
        shape = (n, *extra)
        labels = g.integers(0, classes, shape)
        s = (g.integers(0, 3, shape + (classes,)) if ties
             else g.random(shape + (classes,)) + 0.8 * one_hot(labels, classes))
        y = labels[..., None] if label_axis else labels
        y = y.astype(F32) if float_labels else y
        if not sparse:
            y = one_hot(labels, classes)
        w = None if weight is None else g.uniform(0.1, 2, shape[:weight]).astype(F32)
        return y, s.astype(F32), w
    last = len(extra) + 1
    return [batch(None), batch(1), batch(last), batch(1)]


def regression_batches(seed, shape=(32, 4), squeeze_true=False):
    """Targets, predictions near them; squeeze_true: y_true without y_pred's size-1 last
    axis."""
    g = rng(seed)

    def batch(weight):
        y = g.normal(size=shape).astype(F32)
        p = (y + g.normal(0, 0.5, shape)).astype(F32)
        y = y[..., 0] if squeeze_true else y
        w = None if weight is None else g.uniform(0.1, 2, shape[:weight]).astype(F32)
        return y, p, w
    return [batch(None), batch(1), batch(len(shape) - 1), batch(1)]


def exact_batches(seed):
    g = rng(seed)

    def batch(weight):
        y = g.integers(0, 3, (40, 1)).astype(F32)
        p = g.integers(0, 3, (40, 1)).astype(F32)
        w = None if weight is None else g.uniform(0.1, 2, 40).astype(F32)
        return y, p, w
    return [batch(None), batch(1), batch(1), batch(None)]


def sorted_id_batches(seed, classes=6, n=40):
    """Labels and class ids sorted by score (for from_sorted_ids=True)."""
    g = rng(seed)

    def batch(weight):
        y = g.integers(0, classes, n)
        ids = np.argsort(-g.random((n, classes)), axis=-1).astype(F32)
        w = None if weight is None else g.uniform(0.1, 2, n).astype(F32)
        return y, ids, w
    return [batch(None), batch(1), batch(1), batch(None)]


# (id, fastdl metric, keras metric, batches): compared after every update and after
# reset_state + one more update.
KERAS_CASES = [
    ("accuracy", lambda M: M.Accuracy(), exact_batches(1)),
    ("binary_accuracy", lambda M: M.BinaryAccuracy(), binary_batches(2)),
    ("binary_accuracy_rank1", lambda M: M.BinaryAccuracy(), binary_batches(3, shape=(48,))),
    ("binary_accuracy_multilabel", lambda M: M.BinaryAccuracy(threshold=0.7),
     binary_batches(4, shape=(48, 3))),
    ("binary_accuracy_boundary", lambda M: M.BinaryAccuracy(threshold=0.5),
     binary_batches(5, quantized=True)),
    ("binary_accuracy_logits", lambda M: M.BinaryAccuracy(threshold=0.0),
     binary_batches(6, logits=True)),
    ("categorical", lambda M: M.CategoricalAccuracy(), class_batches(7)),
    ("categorical_ties", lambda M: M.CategoricalAccuracy(), class_batches(8, ties=True)),
    ("categorical_seq", lambda M: M.CategoricalAccuracy(), class_batches(9, extra=(6,))),
    ("sparse", lambda M: M.SparseCategoricalAccuracy(), class_batches(10, sparse=True)),
    ("sparse_label_axis", lambda M: M.SparseCategoricalAccuracy(),
     class_batches(11, sparse=True, label_axis=True, float_labels=True)),
    ("sparse_seq", lambda M: M.SparseCategoricalAccuracy(),
     class_batches(12, sparse=True, extra=(6,))),
    ("sparse_ties", lambda M: M.SparseCategoricalAccuracy(),
     class_batches(13, sparse=True, ties=True)),
    *[(f"top_{k}", lambda M, k=k: M.TopKCategoricalAccuracy(k=k),
       class_batches(14 + k, ties=True)) for k in (1, 2, 3, 5)],
    ("top_k_seq", lambda M: M.TopKCategoricalAccuracy(k=2), class_batches(19, extra=(3,))),
    *[(f"sparse_top_{k}", lambda M, k=k: M.SparseTopKCategoricalAccuracy(k=k),
       class_batches(20 + k, sparse=True, ties=True)) for k in (1, 2, 4)],
    ("sparse_top_k_label_axis", lambda M: M.SparseTopKCategoricalAccuracy(k=2),
     class_batches(25, sparse=True, label_axis=True)),
    ("sparse_top_k_seq", lambda M: M.SparseTopKCategoricalAccuracy(k=3),
     class_batches(26, sparse=True, extra=(4,))),
    ("sparse_top_k_sorted_ids",
     lambda M: M.SparseTopKCategoricalAccuracy(k=2, from_sorted_ids=True),
     sorted_id_batches(58)),
    ("mse", lambda M: M.MeanSquaredError(), regression_batches(27)),
    ("mse_seq", lambda M: M.MeanSquaredError(), regression_batches(28, (16, 5, 3))),
    ("mae", lambda M: M.MeanAbsoluteError(), regression_batches(29)),
    ("mae_label_axis", lambda M: M.MeanAbsoluteError(),
     regression_batches(30, (32, 1), squeeze_true=True)),
    ("precision", lambda M: M.Precision(), binary_batches(31)),
    ("precision_boundary", lambda M: M.Precision(), binary_batches(32, quantized=True)),
    ("precision_multilabel", lambda M: M.Precision(thresholds=0.3),
     binary_batches(33, shape=(48, 4))),
    ("precision_thresholds", lambda M: M.Precision(thresholds=[0.2, 0.5, 0.8]),
     binary_batches(34, quantized=True)),
    ("precision_even_thresholds",
     lambda M: M.Precision(thresholds=[0.0, 0.25, 0.5, 0.75, 1.0]),
     binary_batches(35, quantized=True)),
    ("precision_top_k", lambda M: M.Precision(top_k=2), binary_batches(36, shape=(48, 5))),
    ("precision_class_id", lambda M: M.Precision(class_id=2),
     binary_batches(37, shape=(48, 4), per_element=False)),
    ("precision_top_k_class_id", lambda M: M.Precision(top_k=2, class_id=1),
     binary_batches(38, shape=(48, 4), per_element=False)),
    ("recall", lambda M: M.Recall(), binary_batches(39)),
    ("recall_boundary", lambda M: M.Recall(thresholds=0.75), binary_batches(40,
                                                                            quantized=True)),
    ("recall_thresholds", lambda M: M.Recall(thresholds=[0.1, 0.5, 0.9, 0.95]),
     binary_batches(41, shape=(48, 3))),
    ("recall_top_k_class_id", lambda M: M.Recall(top_k=3, class_id=0),
     binary_batches(42, shape=(48, 5), per_element=False)),
    ("auc", lambda M: M.AUC(), binary_batches(43)),
    ("auc_boundary", lambda M: M.AUC(), binary_batches(44, quantized=True)),
    ("auc_multilabel", lambda M: M.AUC(), binary_batches(45, shape=(48, 3))),
    ("auc_pr", lambda M: M.AUC(curve="PR"), binary_batches(46)),
    ("auc_pr_boundary", lambda M: M.AUC(curve="PR", num_thresholds=9),
     binary_batches(47, quantized=True)),
    ("auc_roc_minoring", lambda M: M.AUC(summation_method="minoring"), binary_batches(48)),
    ("auc_roc_majoring", lambda M: M.AUC(num_thresholds=50, summation_method="majoring"),
     binary_batches(49)),
    ("auc_pr_majoring", lambda M: M.AUC(curve="PR", summation_method="majoring"),
     binary_batches(50)),
    ("auc_prgain", lambda M: M.AUC(curve="PRGAIN"), binary_batches(51)),
    ("auc_3", lambda M: M.AUC(num_thresholds=3), binary_batches(52)),
    ("auc_thresholds", lambda M: M.AUC(thresholds=[0.8, 0.1, 0.4]), binary_batches(53)),
    ("auc_pr_thresholds", lambda M: M.AUC(curve="PR", thresholds=[0.1, 0.4, 0.8]),
     binary_batches(54, quantized=True)),
    ("auc_even_thresholds", lambda M: M.AUC(thresholds=[0.25, 0.5, 0.75]),
     binary_batches(55, quantized=True)),
    ("auc_logits", lambda M: M.AUC(from_logits=True), binary_batches(56, logits=True)),
    ("auc_label_weights", lambda M: M.AUC(label_weights=[1.0, 2.0, 0.5]),
     binary_batches(57, shape=(48, 3))),
]


@pytest.mark.parametrize("make, batches", [c[1:] for c in KERAS_CASES],
                         ids=[c[0] for c in KERAS_CASES])
def test_against_keras(keras, make, batches):
    ours, theirs = make(metrics), make(keras.metrics)
    *before, after = batches
    for y_true, y_pred, sw in before:
        ours.update_state(y_true, y_pred, sample_weight=sw)
        theirs.update_state(y_true, y_pred, sample_weight=sw)
        np.testing.assert_allclose(ours.result(), keras_result(theirs), rtol=1e-5,
                                   atol=1e-6)
    ours.reset_state()
    theirs.reset_state()
    assert np.all(np.asarray(ours.result()) == 0.0)
    y_true, y_pred, sw = after
    ours.update_state(y_true, y_pred, sample_weight=sw)
    theirs.update_state(y_true, y_pred, sample_weight=sw)
    np.testing.assert_allclose(ours.result(), keras_result(theirs), rtol=1e-5, atol=1e-6)
    assert ours.name == re.sub(r"_\d+$", "", theirs.name)  # Keras numbers repeats


@pytest.mark.parametrize("values, weights", [
    (np.arange(12.0).reshape(4, 3), None),
    (np.arange(12.0).reshape(4, 3), np.array([1.0, 0.5, 0.0, 2.0])),
    (np.arange(12.0).reshape(4, 3), np.arange(12.0).reshape(4, 3) % 3),
    (np.arange(24.0).reshape(2, 3, 4), np.array([[1.0, 0.0, 2.0], [1.0, 1.0, 0.5]])),
    (np.arange(4.0), np.array(3.0)),
    (np.arange(4.0).reshape(4, 1), np.array([1.0, 2.0, 3.0, 4.0])),
    (np.arange(4.0), np.array([[1.0], [2.0], [3.0], [4.0]])),
])
def test_mean_against_keras(keras, values, weights):
    ours, theirs = metrics.Mean(), keras.metrics.Mean()
    for scale in (1.0, -0.5):
        ours.update_state(values * scale, sample_weight=weights)
        theirs.update_state(values * scale, sample_weight=weights)
        np.testing.assert_allclose(ours.result(), keras_result(theirs), rtol=1e-6)


FUNCTIONS = [
    ("binary_accuracy", {}, binary_batches(60, shape=(16, 3))[0]),
    ("binary_accuracy", {"threshold": 0.75}, binary_batches(61, quantized=True)[0]),
    ("categorical_accuracy", {}, class_batches(62, extra=(3,), ties=True)[0]),
    ("sparse_categorical_accuracy", {}, class_batches(63, sparse=True, label_axis=True)[0]),
    ("sparse_categorical_accuracy", {}, class_batches(64, sparse=True, extra=(2,))[0]),
    ("top_k_categorical_accuracy", {"k": 2}, class_batches(65, ties=True)[0]),
    ("sparse_top_k_categorical_accuracy", {"k": 3},
     class_batches(66, sparse=True, ties=True, label_axis=True)[0]),
    ("sparse_top_k_categorical_accuracy", {"k": 1, "from_sorted_ids": True},
     sorted_id_batches(67)[0]),
]


@pytest.mark.parametrize("name, kwargs, batch", FUNCTIONS,
                         ids=[f"{f[0]}{i}" for i, f in enumerate(FUNCTIONS)])
def test_per_sample_functions_as_keras(keras, name, kwargs, batch):
    y_true, y_pred, _ = batch
    ours = getattr(metrics, name)(y_true, y_pred, **kwargs)
    theirs = keras.ops.convert_to_numpy(getattr(keras.metrics, name)(y_true, y_pred,
                                                                     **kwargs))
    assert ours.dtype == F32 and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


IDENTIFIERS = ["accuracy", "acc", "Accuracy", "mse", "MSE", "mae", "mean_squared_error",
               "MeanAbsoluteError", "binary_accuracy", "categorical_accuracy",
               "sparse_categorical_accuracy", "top_k_categorical_accuracy",
               "sparse_top_k_categorical_accuracy", "precision", "recall", "auc", "AUC"]
SHAPES = [((8, 1), (8, 1)), ((8,), (8, 1)), ((8,), (8, 4)), ((8, 1), (8, 4)),
          ((8, 4), (8, 4)), ((8, 3), (8, 3, 4)), ((8, 3, 4), (8, 3, 4))]


@pytest.mark.parametrize("identifier", IDENTIFIERS)
def test_names_and_resolution_as_keras_compile(keras, identifier):
    """get (+ resolve for accuracy) gives the class and the log name that Keras 3's
    compile_utils.get_metric gives."""
    from keras.src.trainers.compile_utils import get_metric
    for t_shape, p_shape in SHAPES:
        theirs = get_metric(identifier, np.zeros(t_shape, F32), np.zeros(p_shape, F32))
        ours = metrics.get(identifier)
        if isinstance(ours, metrics.AutoAccuracy):
            ours = ours.resolve(t_shape, p_shape)
        assert type(ours).__name__ == type(theirs).__name__, (t_shape, p_shape)
        assert ours.name == theirs.name


def test_function_names_as_keras_compile(keras):
    from keras.src.trainers.compile_utils import get_metric

    def myCustomMetric(y_true, y_pred):
        return np.abs(np.asarray(y_true) - np.asarray(y_pred)).astype(F32)
    for fn in (myCustomMetric, lambda t, p: t):
        theirs = get_metric(fn, np.zeros(4), np.zeros(4))
        assert metrics.get(fn).name == theirs.name
    m = keras.metrics.Precision(name="p")
    assert get_metric(m, np.zeros(4), np.zeros(4)).name == metrics.get(
        metrics.Precision(name="p")).name


@pytest.mark.parametrize("make", [
    lambda M: M.BinaryAccuracy(threshold=0.3), lambda M: M.TopKCategoricalAccuracy(k=3),
    lambda M: M.SparseTopKCategoricalAccuracy(k=2), lambda M: M.Accuracy(),
    lambda M: M.MeanSquaredError(), lambda M: M.Precision(thresholds=0.4, class_id=1),
    lambda M: M.Recall(top_k=2), lambda M: M.AUC(num_thresholds=20, curve="PR"),
    lambda M: M.AUC(thresholds=[0.3, 0.6], summation_method="majoring"),
])
def test_configs_as_keras(keras, make):
    ours, theirs = make(metrics).get_config(), make(keras.metrics).get_config()
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        if key == "dtype":
            assert ours[key] == "float32"
        elif key == "name":
            assert ours[key] == re.sub(r"_\d+$", "", value)
        else:
            np.testing.assert_equal(ours[key], value, err_msg=key)
