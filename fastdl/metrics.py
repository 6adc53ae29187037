"""fastdl.metrics: Keras 3's keras.metrics (names, arguments, defaults, results) for
model.compile(metrics=[...]), fit and evaluate.

    m = fastdl.metrics.SparseCategoricalAccuracy()
    m.update_state(y_true, y_pred, sample_weight=None)   # any number of batches
    m.result()                                           # a Python float
    m.reset_state()

A metric accumulates over update_state calls (in float64) until reset_state; result() is
the value so far, rounded to the metric's dtype (float32 unless dtype= says otherwise) and
returned as a Python float (Precision/Recall with several thresholds: a list of floats).

    Mean, MeanMetricWrapper(fn)        weighted mean of values / of fn(y_true, y_pred)
    Accuracy                           y_true == y_pred
    BinaryAccuracy(threshold=0.5)      y_true == (y_pred > threshold)
    CategoricalAccuracy                argmax(y_true) == argmax(y_pred)
    SparseCategoricalAccuracy          y_true == argmax(y_pred)
    TopKCategoricalAccuracy(k=5)       argmax(y_true) among the k largest y_pred
    SparseTopKCategoricalAccuracy(k=5) y_true among the k largest y_pred
    MeanSquaredError, MeanAbsoluteError
    Precision, Recall(thresholds=None, top_k=None, class_id=None)
    AUC(num_thresholds=200, curve='ROC', summation_method='interpolation', ...)

Keras semantics, reproduced from keras/src/metrics/ (3.x):
- The mean metrics reduce as Keras' Mean (reduce_to_samplewise_values): the per-sample
  values (e.g. one per sample of y_pred.shape[:-1]) times sample_weight broadcast to them,
  summed, over the sum of the weights (the number of samples without weights); 0.0 before
  any sample. A sample_weight whose rank differs by one, the longer ending in a size-1 axis,
  is squeezed or expanded first, as Keras does; values of higher rank than the weights are
  averaged down to the weights' rank.
- y_true and y_pred: any real dtype (converted to float32, as Keras casts to floatx); ranks
  differing by one with the longer ending in a size-1 axis are matched first
  (squeeze_or_expand_to_same_rank); then the shapes must agree.
- Sparse metrics take class indices of shape y_pred.shape[:-1] (or with a trailing size-1
  axis), as ints or floats holding whole numbers.
- Top-k follows in_top_k: a target is in the top k when its score is >= the k-th largest
  score, so classes tied at the boundary all count as in the top k.
- Precision/Recall/AUC count (weighted) true/false positives/negatives per threshold:
  positive labels are y_true != 0, positive predictions y_pred > threshold. Evenly spaced
  thresholds (AUC's default) use Keras' bucketed form (float32 bucket indices of y_pred
  clipped to [0, 1]), others compare with each threshold, so both agree with Keras at the
  thresholds themselves. AUC sums the curve as Keras does (Riemann sums; for PR with
  'interpolation', Davis & Goadrich's interpolation).

Deviations from Keras:
- Input Keras would quietly misread is refused with a ValueError/TypeError naming the
  argument: mismatched shapes (Keras may broadcast), class indices out of range or not
  whole numbers (Keras counts a miss), non-real dtypes. Thresholds of Precision/Recall/AUC
  must lie in [0, 1] (Keras checks this for Precision/Recall only); BinaryAccuracy takes
  any finite threshold, as Keras does (0.0 for logits).
- With k > the number of classes, every sample is in the top k (TensorFlow's in_top_k;
  Keras on torch raises there). Precision/Recall(top_k=...) keep the lowest class indices
  among scores tied at the k-th place (as tf.math.top_k; torch.topk's choice is
  unspecified, so Keras on torch may keep others).
- Default names are not made unique ('precision', not 'precision_1' for the second one).
- AUC(multi_label=True) raises NotImplementedError (label_weights work without it).

get(identifier) resolves what model.compile(metrics=[...]) takes, as Keras'
compile_utils.get_metric does (not keras.metrics.get): a string names the metric it makes
('mse' -> MeanSquaredError named 'mse'); 'accuracy' / 'acc' (any case) give an
AutoAccuracy marker that the training loop resolves against the data's shapes with
resolve_accuracy once it sees the first batch.
"""
import math
import re

import numpy as np

from fastdl import _validate as v
from fastdl import losses as _losses

__all__ = ["Metric", "Mean", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy",
           "CategoricalAccuracy", "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
           "SparseTopKCategoricalAccuracy", "MeanSquaredError", "MeanAbsoluteError",
           "Precision", "Recall", "AUC", "AutoAccuracy", "accuracy", "binary_accuracy",
           "categorical_accuracy", "sparse_categorical_accuracy",
           "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
           "get", "resolve_accuracy", "serialize", "deserialize"]

EPSILON = 1e-7   # keras.backend.epsilon(): AUC's end thresholds are -eps and 1 + eps
NEG_INF = -1e10  # Keras' metrics_utils.NEG_INF: scores dropped by top_k, and its threshold

F32 = np.float32


# ---------------------------------------------------------------- helpers

def _snake(name):
    """keras.src.utils.naming.to_snake_case."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _dtype(dtype):
    """The metric's result dtype as a name ('float32' for None)."""
    if dtype is None:
        return "float32"
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected a float dtype such as 'float32', got "
                        f"{dtype!r}") from None
    if dt.kind != "f":
        raise ValueError(f"dtype: expected a float dtype such as 'float32', got {dt}")
    return dt.name


def _same_rank(x1, x2, expand_rank_1=True):
    """Keras' squeeze_or_expand_to_same_rank: ranks differing by one, the longer ending in
    a size-1 axis -> the shorter is expanded if it is 1-D (and expand_rank_1), else the
    longer squeezed."""
    if x1.ndim == x2.ndim + 1 and x1.shape[-1] == 1:
        if x2.ndim == 1 and expand_rank_1:
            x2 = x2[:, None]
        else:
            x1 = x1[..., 0]
    elif x2.ndim == x1.ndim + 1 and x2.shape[-1] == 1:
        if x1.ndim == 1 and expand_rank_1:
            x1 = x1[:, None]
        else:
            x2 = x2[..., 0]
    return x1, x2


def _pair(y_true, y_pred):
    """y_true, y_pred as float32 arrays of one shape, after Keras' rank matching."""
    t = v.float32_array(y_true, "y_true")
    p = v.float32_array(y_pred, "y_pred")
    t2, p2 = _same_rank(t, p)
    if t2.shape != p2.shape:
        raise ValueError(f"y_true: expected the shape of y_pred {p.shape} (a trailing "
                         f"size-1 axis aside), got {t.shape}")
    return t2, p2


def _scores(y_pred):
    """y_pred as float32 with at least one axis and one class on the last."""
    p = v.float32_array(y_pred, "y_pred")
    if p.ndim == 0 or p.shape[-1] == 0:
        raise ValueError(f"y_pred: expected scores with at least one class on the last "
                         f"axis, got shape {p.shape}")
    return p


def _class_indices(y_true, sample_shape, classes):
    """y_true as int64 class indices of sample_shape (a trailing size-1 axis dropped),
    each in [0, classes) (any whole number when classes is None)."""
    t = v.real_array(y_true, "y_true")
    if t.dtype.kind == "b":
        raise TypeError("y_true: expected integer class indices, got dtype bool")
    if t.ndim == len(sample_shape) + 1 and t.shape[-1] == 1:
        t = t[..., 0]
    if t.shape != tuple(sample_shape):
        raise ValueError(f"y_true: expected class indices of shape {tuple(sample_shape)} "
                         f"(y_pred's without its last axis, or with a trailing size-1 "
                         f"axis), got {np.shape(y_true)}")
    if t.dtype.kind == "f":
        bad = ~np.isfinite(t) | (t != np.round(t))
        if bad.any():
            raise ValueError(f"y_true: expected whole-number class indices, got "
                             f"{t[bad].flat[0]}")
    t = t.astype(np.int64)
    if classes is not None and t.size:
        bad = (t < 0) | (t >= classes)
        if bad.any():
            raise ValueError(f"y_true: expected class indices in [0, {classes}), got "
                             f"{t[bad].flat[0]}")
    return t


def _top_k(k):
    return v.positive_int(k, "k")


def _in_top_k(targets, scores, k):
    """in_top_k: scores[..., target] >= the k-th largest score (ties at the boundary are
    in; k >= classes: all in), as float32."""
    classes = scores.shape[-1]
    k = min(k, classes)
    kth = np.partition(scores, classes - k, axis=-1)[..., classes - k]
    target = np.take_along_axis(scores, targets[..., None], axis=-1)[..., 0]
    return (target >= kth).astype(F32)


def _divide_no_nan(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    safe = np.where(y == 0, 1.0, y)
    return np.where(y == 0, 0.0, x / safe)


# ---------------------------------------------------------------- per-sample functions

def accuracy(y_true, y_pred):
    """1.0 where y_true == y_pred (both as float32), else 0.0."""
    t, p = _pair(y_true, y_pred)
    return (t == p).astype(F32)


def _threshold(threshold):
    """BinaryAccuracy's threshold: any finite real (Keras takes logit thresholds too)."""
    t = v.real(threshold, "threshold")
    if not math.isfinite(t):
        raise ValueError(f"threshold: expected a finite number, got {t}")
    return t


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """1.0 where y_true == (y_pred > threshold), else 0.0 (y_true 0/1; a soft label never
    matches, as in Keras)."""
    threshold = _threshold(threshold)
    t, p = _pair(y_true, y_pred)
    return (t == (p > F32(threshold)).astype(F32)).astype(F32)


def categorical_accuracy(y_true, y_pred):
    """1.0 where argmax(y_true) == argmax(y_pred) over the last axis (first index among
    ties), else 0.0: one value per sample of y_pred.shape[:-1]."""
    p = _scores(y_pred)
    t = v.real_array(y_true, "y_true")
    if t.shape != p.shape:
        raise ValueError(f"y_true: expected one-hot targets of y_pred's shape {p.shape}, "
                         f"got {t.shape}")
    return (np.argmax(t, axis=-1) == np.argmax(p, axis=-1)).astype(F32)


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where the class index y_true == argmax(y_pred) over the last axis, else 0.0."""
    p = _scores(y_pred)
    t = _class_indices(y_true, p.shape[:-1], p.shape[-1])
    matches = (t == np.argmax(p, axis=-1)).astype(F32)
    if matches.ndim > 1 and matches.shape[-1] == 1:
        matches = matches[..., 0]
    return matches


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where argmax(y_true) is in the top k of y_pred (in_top_k), else 0.0."""
    k = _top_k(k)
    p = _scores(y_pred)
    t = v.real_array(y_true, "y_true")
    if t.shape != p.shape:
        raise ValueError(f"y_true: expected one-hot targets of y_pred's shape {p.shape}, "
                         f"got {t.shape}")
    return _in_top_k(np.argmax(t, axis=-1), p, k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5, from_sorted_ids=False):
    """1.0 where the class index y_true is in the top k of y_pred (in_top_k), else 0.0.
    from_sorted_ids: y_pred holds class ids sorted by score; y_true matches when among
    its first k."""
    k = _top_k(k)
    from_sorted_ids = v.flag(from_sorted_ids, "from_sorted_ids")
    p = _scores(y_pred)
    t = _class_indices(y_true, p.shape[:-1], None if from_sorted_ids else p.shape[-1])
    if from_sorted_ids:
        matches = np.any(t[..., None] == p[..., :k], axis=-1).astype(F32)
    else:
        matches = _in_top_k(t, p, k)
    return matches.reshape(np.shape(y_true))  # Keras keeps y_true's trailing size-1 axis


# ---------------------------------------------------------------- base classes

class Metric:
    """A Keras metric: update_state(y_true, y_pred, sample_weight=None) accumulates,
    result() -> the value so far (a Python float), reset_state() starts again; calling the
    metric updates it and returns the result. get_config() / from_config(config) round-trip
    the constructor arguments."""

    def __init__(self, name=None, dtype=None):
        if name is None:
            name = _snake(type(self).__name__)
        if not isinstance(name, str):
            raise TypeError(f"name: expected a string, got {type(name).__name__}")
        self.name = name
        self.dtype = _dtype(dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def reset_state(self):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        self.update_state(*args, **kwargs)
        return self.result()

    def _value(self, x):
        """x (float64) rounded to the metric's dtype, as a Python float."""
        return float(np.asarray(x, np.float64).astype(self.dtype))

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


class Mean(Metric):
    """The (weighted) mean of the values given to update_state(values, sample_weight=None):
    sum(w * values) / sum(w) with w broadcast to the values (Keras' Mean); 0.0 when nothing
    (or only zero weight) was seen."""

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.reset_state()

    def reset_state(self):
        self.total = 0.0
        self.count = 0.0

    def update_state(self, values, sample_weight=None):
        self._add(v.float32_array(values, "values"), sample_weight)

    def _add(self, values, sample_weight):
        """Keras' reduce_to_samplewise_values followed by Mean's sums: the values are
        averaged over their axes after the first (after the weights' axes, when weighted)
        and each sample counts its weight (averaged the same way)."""
        values = values.astype(np.float64)
        if sample_weight is not None:
            w = v.float32_array(sample_weight, "sample_weight").astype(np.float64)
            values, w = _same_rank(values, w)
            if values.ndim > w.ndim:
                values = values.mean(axis=tuple(range(w.ndim, values.ndim)))
            weight_ndim = w.ndim
            try:
                w = np.broadcast_to(w, values.shape)
            except ValueError:
                raise ValueError(f"sample_weight: expected a shape that broadcasts to the "
                                 f"per-sample values' {values.shape}, got "
                                 f"{np.shape(sample_weight)}") from None
            values = values * w
            if weight_ndim > 1:
                w = w.mean(axis=tuple(range(1, weight_ndim)))
            count = float(w.sum())
        else:
            count = float(values.shape[0] if values.ndim else 1)
        if values.ndim > 1:
            values = values.mean(axis=tuple(range(1, values.ndim)))
        self.total += float(values.sum())
        self.count += count

    def result(self):
        return self._value(self.total / self.count if self.count else 0.0)


class MeanMetricWrapper(Mean):
    """The mean of fn(y_true, y_pred, **kwargs), a function returning per-sample values
    (Keras' MeanMetricWrapper)."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        if not callable(fn):
            raise TypeError(f"fn: expected a function fn(y_true, y_pred), got "
                            f"{type(fn).__name__}")
        super().__init__(name=name, dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        self._add(v.float32_array(values, f"{self.name}'s values"), sample_weight)

    def get_config(self):
        return {**super().get_config(), "fn": self._fn, **self._fn_kwargs}


# ---------------------------------------------------------------- accuracies, errors

class Accuracy(MeanMetricWrapper):
    """How often y_pred equals y_true exactly."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)

    def get_config(self):
        return Metric.get_config(self)


class BinaryAccuracy(MeanMetricWrapper):
    """How often y_true == (y_pred > threshold)."""

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        threshold = _threshold(threshold)
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold

    def get_config(self):
        return {**Metric.get_config(self), "threshold": self.threshold}


class CategoricalAccuracy(MeanMetricWrapper):
    """How often argmax(y_pred) == argmax(y_true) (one-hot targets)."""

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)

    def get_config(self):
        return Metric.get_config(self)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often argmax(y_pred) equals the class index y_true."""

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)

    def get_config(self):
        return Metric.get_config(self)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often argmax(y_true) is among the k largest y_pred (in_top_k)."""

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        k = _top_k(k)
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k

    def get_config(self):
        return {**Metric.get_config(self), "k": self.k}


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the class index y_true is among the k largest y_pred (in_top_k)."""

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None,
                 from_sorted_ids=False):
        k = _top_k(k)
        from_sorted_ids = v.flag(from_sorted_ids, "from_sorted_ids")
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k,
                         from_sorted_ids=from_sorted_ids)
        self.k = k
        self.from_sorted_ids = from_sorted_ids

    def get_config(self):
        config = {**Metric.get_config(self), "k": self.k}
        if self.from_sorted_ids:
            config["from_sorted_ids"] = True
        return config


class MeanSquaredError(MeanMetricWrapper):
    """The mean of fastdl.losses.mean_squared_error (mean over the last axis)."""

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(_losses.mean_squared_error, name=name, dtype=dtype)

    def get_config(self):
        return Metric.get_config(self)


class MeanAbsoluteError(MeanMetricWrapper):
    """The mean of fastdl.losses.mean_absolute_error (mean over the last axis)."""

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(_losses.mean_absolute_error, name=name, dtype=dtype)

    def get_config(self):
        return Metric.get_config(self)


# ---------------------------------------------------------------- confusion counts

def _unit_thresholds(thresholds, name):
    """A list of reals in [0, 1] from one number or a sequence of them."""
    items = thresholds if isinstance(thresholds, (list, tuple, np.ndarray)) else [thresholds]
    out = [v.real(t, name, 0.0, 1.0) for t in items]
    if not out:
        raise ValueError(f"{name}: expected at least one threshold, got {thresholds!r}")
    return out


def _evenly_spaced(thresholds):
    """Keras' is_evenly_distributed_thresholds: >= 3 values, i / (n - 1) to 1e-7."""
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=F32) / (n - 1)
    return bool(np.allclose(thresholds, even, atol=EPSILON))


def _keep_top_k(scores, k):
    """The k largest scores per row kept, the others set to NEG_INF (Keras' _filter_top_k;
    among ties at the k-th place the lowest class indices are kept)."""
    k = min(k, scores.shape[-1])
    order = np.argsort(-scores, axis=-1, kind="stable")[..., :k]
    mask = np.zeros(scores.shape, bool)
    np.put_along_axis(mask, order, True, axis=-1)
    return np.where(mask, scores, F32(NEG_INF)).astype(F32)


def _confusion(y_true, y_pred, sample_weight, thresholds, evenly, top_k=None,
               class_id=None, label_weights=None):
    """(tp, fp, tn, fn), float64 arrays with one entry per threshold: Keras'
    update_confusion_matrix_variables for multi_label=False."""
    p = v.float32_array(y_pred, "y_pred")
    t = v.float32_array(y_true, "y_true")
    p, t = _same_rank(p, t)
    if t.shape != p.shape:
        raise ValueError(f"y_true: expected the shape of y_pred {np.shape(y_pred)} (a "
                         f"trailing size-1 axis aside), got {np.shape(y_true)}")
    w = None
    if sample_weight is not None:
        w = v.float32_array(sample_weight, "sample_weight")[..., None]
        _, w = _same_rank(t, w, expand_rank_1=False)
    if top_k is not None:
        if p.ndim == 0:
            raise ValueError("y_pred: top_k needs scores with a class axis, got a 0-d array")
        p = _keep_top_k(p, top_k)
    if class_id is not None:
        if p.ndim < 2:
            raise ValueError(f"y_pred: class_id needs shape (samples, classes), got shape "
                             f"{p.shape}")
        if class_id >= p.shape[-1]:
            raise ValueError(f"class_id: expected an index below the {p.shape[-1]} classes "
                             f"of y_pred, got {class_id}")
        t, p = t[..., class_id, None], p[..., class_id, None]
    weights = np.ones(p.shape, np.float64)
    if w is not None:
        try:
            weights = weights * np.broadcast_to(w, p.shape)
        except ValueError:
            raise ValueError(f"sample_weight: expected a shape that broadcasts to y_pred's "
                             f"{p.shape}, got {np.shape(sample_weight)}") from None
    if label_weights is not None:
        try:
            weights = weights * np.broadcast_to(label_weights, p.shape)
        except ValueError:
            raise ValueError(f"label_weights: expected one weight per label, "
                             f"{p.shape[-1:]}, got {label_weights.shape}") from None
    positive = (t != 0).reshape(-1)
    weights = weights.reshape(-1)
    p = p.reshape(-1)
    true_w = np.where(positive, weights, 0.0)
    false_w = np.where(positive, 0.0, weights)
    n = len(thresholds)
    if evenly:
        # Keras' _update_confusion_matrix_variables_optimized, bucket indices in float32.
        with_eps = thresholds[0] < 0.0 or thresholds[-1] > 1.0
        bucket = np.ceil(np.clip(p, F32(0), F32(1)) * F32(n - 1)) - F32(1)
        if with_eps:
            bucket = np.maximum(bucket, F32(0))
        bucket = bucket.astype(np.int64)
        keep = (bucket >= 0) & (bucket < n)
        tp = np.bincount(bucket[keep], true_w[keep], minlength=n)[::-1].cumsum()[::-1]
        fp = np.bincount(bucket[keep], false_w[keep], minlength=n)[::-1].cumsum()[::-1]
    else:
        above = p[None, :] > np.asarray(thresholds, F32)[:, None]
        tp = (above * true_w).sum(axis=1)
        fp = (above * false_w).sum(axis=1)
    fn = true_w.sum() - tp
    tn = false_w.sum() - fp
    return tp, fp, tn, fn


class _PrecisionRecall(Metric):
    """Shared by Precision and Recall: thresholds, top_k, class_id as Keras has them."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.top_k = None if top_k is None else v.positive_int(top_k, "top_k")
        self.class_id = None if class_id is None else v.integer(class_id, "class_id", 0)
        if thresholds is None:
            self.thresholds = [0.5 if self.top_k is None else NEG_INF]
        else:
            self.thresholds = _unit_thresholds(thresholds, "thresholds")
        self._evenly = _evenly_spaced(self.thresholds)
        self.reset_state()

    def reset_state(self):
        n = len(self.thresholds)
        self.true_positives = np.zeros(n)
        self.false_positives = np.zeros(n)
        self.false_negatives = np.zeros(n)

    def update_state(self, y_true, y_pred, sample_weight=None):
        tp, fp, _, fn = _confusion(y_true, y_pred, sample_weight, self.thresholds,
                                   self._evenly, self.top_k, self.class_id)
        self.true_positives += tp
        self.false_positives += fp
        self.false_negatives += fn

    def _values(self, ratio):
        if len(self.thresholds) == 1:
            return self._value(ratio[0])
        return [self._value(r) for r in ratio]

    def get_config(self):
        return {**super().get_config(), "thresholds": self.init_thresholds,
                "top_k": self.top_k, "class_id": self.class_id}


class Precision(_PrecisionRecall):
    """tp / (tp + fp), weighted: of the predictions above the threshold (default 0.5;
    with top_k, the top_k scores of each sample; with class_id, that class only), the part
    whose label is positive (y_true != 0). One float, or a list for several thresholds."""

    def result(self):
        return self._values(_divide_no_nan(self.true_positives,
                                           self.true_positives + self.false_positives))


class Recall(_PrecisionRecall):
    """tp / (tp + fn), weighted: of the positive labels (y_true != 0), the part predicted
    above the threshold (see Precision). One float, or a list for several thresholds."""

    def result(self):
        return self._values(_divide_no_nan(self.true_positives,
                                           self.true_positives + self.false_negatives))


_CURVES = {"ROC": "ROC", "roc": "ROC", "PR": "PR", "pr": "PR", "PRGAIN": "PRGAIN",
           "prgain": "PRGAIN"}
_SUMMATIONS = {"interpolation": "interpolation", "Interpolation": "interpolation",
               "majoring": "majoring", "Majoring": "majoring",
               "minoring": "minoring", "Minoring": "minoring"}


def _choice(value, table, name):
    if not isinstance(value, str) or value not in table:
        raise ValueError(f"{name}: expected one of {sorted(set(table.values()))}, got "
                         f"{value!r}")
    return table[value]


class AUC(Metric):
    """The area under the ROC curve (curve='ROC': recall against the false-positive rate)
    or the precision-recall curve ('PR'; also 'PRGAIN'), from weighted confusion counts at
    num_thresholds thresholds: -1e-7, num_thresholds - 2 evenly spaced in (0, 1), 1 + 1e-7
    (or the sorted `thresholds` given, between the same two ends). summation_method:
    'interpolation' (trapezoids; for PR, Davis & Goadrich's interpolation), 'minoring' or
    'majoring'. y_true != 0 is a positive label; y_pred are probabilities (from_logits: a
    sigmoid is applied first); all entries of y_pred are pooled as one binary problem, each
    label column weighted by label_weights when given."""

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, dtype=None, thresholds=None, multi_label=False,
                 num_labels=None, label_weights=None, from_logits=False):
        super().__init__(name=name, dtype=dtype)
        self.curve = _choice(curve, _CURVES, "curve")
        self.summation_method = _choice(summation_method, _SUMMATIONS, "summation_method")
        self.multi_label = v.flag(multi_label, "multi_label")
        if self.multi_label:
            raise NotImplementedError("multi_label: AUC(multi_label=True) is not supported "
                                      "by fastdl yet; use multi_label=False")
        if num_labels is not None:
            raise ValueError(f"num_labels: needed only when multi_label is True, got "
                             f"{num_labels!r}")
        self.num_labels = None
        self._from_logits = v.flag(from_logits, "from_logits")
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(_unit_thresholds(thresholds, "thresholds"))
            self.num_thresholds = len(inner) + 2
            self._evenly = _evenly_spaced([0.0] + inner + [1.0])
        else:
            self.num_thresholds = v.integer(num_thresholds, "num_thresholds")
            if self.num_thresholds <= 1:
                raise ValueError(f"num_thresholds: expected an int > 1, got "
                                 f"{self.num_thresholds}")
            inner = [(i + 1) * 1.0 / (self.num_thresholds - 1)
                     for i in range(self.num_thresholds - 2)]
            self._evenly = True
        self._thresholds = np.array([0.0 - EPSILON] + inner + [1.0 + EPSILON])
        if label_weights is None:
            self.label_weights = None
        else:
            lw = v.float32_array(label_weights, "label_weights")
            if lw.ndim != 1:
                raise ValueError(f"label_weights: expected a 1-D array (one weight per "
                                 f"label), got shape {lw.shape}")
            self.label_weights = lw
        self.reset_state()

    @property
    def thresholds(self):
        """The thresholds, the two ends -1e-7 and 1 + 1e-7 included."""
        return list(self._thresholds)

    def reset_state(self):
        n = self.num_thresholds
        self.true_positives = np.zeros(n)
        self.false_positives = np.zeros(n)
        self.true_negatives = np.zeros(n)
        self.false_negatives = np.zeros(n)

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self._from_logits:
            x = v.float32_array(y_pred, "y_pred").astype(np.float64)
            y_pred = (0.5 * (1.0 + np.tanh(0.5 * x))).astype(F32)  # sigmoid, no overflow
        tp, fp, tn, fn = _confusion(y_true, y_pred, sample_weight, self._thresholds,
                                    self._evenly, label_weights=self.label_weights)
        self.true_positives += tp
        self.false_positives += fp
        self.true_negatives += tn
        self.false_negatives += fn

    def _interpolate_pr_auc(self):
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        prec_slope = _divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - prec_slope * p[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            safe_p_ratio = np.where((p[:-1] > 0) & (p[1:] > 0),
                                    _divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
            increment = _divide_no_nan(prec_slope * (dtp + intercept * np.log(safe_p_ratio)),
                                       np.maximum(tp[1:] + fn[1:], 0))
        return increment.sum()

    def result(self):
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._value(self._interpolate_pr_auc())
        tp, fp = self.true_positives, self.false_positives
        tn, fn = self.true_negatives, self.false_negatives
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, _divide_no_nan(tp, tp + fp)
        else:  # PRGAIN, as Keras computes it
            scale = _divide_no_nan(tp + fn, tn + fp)
            recall_gain = 1.0 - scale * _divide_no_nan(fn, tp)
            precision_gain = 1.0 - scale * _divide_no_nan(fp, tp)
            recall_gain = np.maximum(np.where(tp == 0, 0.0, recall_gain), 0.0)
            precision_gain = np.where(tp == 0, 1.0, precision_gain)
            x, y = recall_gain, precision_gain
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return self._value(((x[:-1] - x[1:]) * heights).sum())

    def get_config(self):
        config = {**super().get_config(), "num_thresholds": self.num_thresholds,
                  "curve": self.curve, "summation_method": self.summation_method,
                  "multi_label": self.multi_label, "num_labels": self.num_labels,
                  "label_weights": (None if self.label_weights is None
                                    else self.label_weights.tolist()),
                  "from_logits": self._from_logits}
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config


# ---------------------------------------------------------------- resolution by name

class AutoAccuracy:
    """What get('accuracy') / get('acc') return: Keras' compile picks Binary-, Sparse- or
    CategoricalAccuracy from the data's shapes, so the training loop resolves this marker
    on its first batch: resolve(y_true_shape, y_pred_shape) -> the metric, named as the
    user wrote it ('accuracy' or 'acc'). Not a Metric: it has no state."""

    def __init__(self, name="accuracy"):
        if not isinstance(name, str) or name.lower() not in ("accuracy", "acc"):
            raise ValueError(f"name: expected 'accuracy' or 'acc' (any case), got {name!r}")
        self.name = name

    def resolve(self, y_true_shape, y_pred_shape, loss_name=None):
        return resolve_accuracy(loss_name, y_true_shape, y_pred_shape)(name=self.name)

    def __str__(self):
        return self.name

    def __repr__(self):
        return f"<AutoAccuracy name={self.name}>"


def _shape(shape, name):
    try:
        dims = tuple(v.integer(d, name, 0) for d in shape)
    except TypeError:
        raise TypeError(f"{name}: expected a shape (a tuple of ints), got {shape!r}") from None
    if not dims:
        raise ValueError(f"{name}: expected at least one dimension, got {dims}")
    return dims


def resolve_accuracy(loss_name, y_true_shape, y_pred_shape):
    """The accuracy class that Keras 3's compile gives 'accuracy' / 'acc'
    (keras/src/trainers/compile_utils.py, get_metric): BinaryAccuracy when y_pred's last
    axis has size 1; else SparseCategoricalAccuracy when y_true has a lower rank than
    y_pred, or its last axis has size 1; else CategoricalAccuracy.

    Keras 3 decides from the shapes alone; loss_name (the compiled loss's name, or None)
    is accepted for the training loop's sake and does not change the answer (tf.keras 2
    looked at the loss; Keras 3 does not, e.g. binary_crossentropy on 3 labels gives
    CategoricalAccuracy)."""
    if loss_name is not None and not isinstance(loss_name, str):
        raise TypeError(f"loss_name: expected a string or None, got "
                        f"{type(loss_name).__name__}")
    t = _shape(y_true_shape, "y_true_shape")
    p = _shape(y_pred_shape, "y_pred_shape")
    if p[-1] == 1:
        return BinaryAccuracy
    if len(t) < len(p) or t[-1] == 1:
        return SparseCategoricalAccuracy
    return CategoricalAccuracy


_CLASSES = (Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
            TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanSquaredError,
            MeanAbsoluteError, Precision, Recall, AUC)
# Keras' ALL_OBJECTS_DICT for these: class names, their snake_case, and the aliases.
_BY_NAME = {**{c.__name__: c for c in _CLASSES}, **{_snake(c.__name__): c for c in _CLASSES},
            "mse": MeanSquaredError, "MSE": MeanSquaredError,
            "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError}
_DESERIALIZABLE = {c.__name__: c for c in _CLASSES + (Mean,)}


def _object_name(obj):
    """keras.src.utils.naming.get_object_name."""
    if hasattr(obj, "name"):
        return obj.name
    if hasattr(obj, "__name__"):
        return _snake(obj.__name__)
    return _snake(type(obj).__name__)


def get(identifier):
    """What model.compile(metrics=[...]) makes of one entry, as Keras 3's compile does:

    - 'accuracy' / 'acc' (any case): an AutoAccuracy marker (see resolve_accuracy);
    - a name ('mse', 'mean_squared_error', 'MeanSquaredError', 'binary_accuracy',
      'sparse_top_k_categorical_accuracy', 'precision', 'recall', 'auc', ...): that metric
      with default arguments, named by the string ('mse' logs as 'mse');
    - a Metric (returned as is), a Metric subclass (instantiated), a config dict
      ({'class_name': ..., 'config': ...});
    - a function fn(y_true, y_pred) -> per-sample values: a MeanMetricWrapper named
      snake_case(fn.__name__)."""
    if identifier is None:
        raise ValueError("metrics: expected a metric, got None")
    if isinstance(identifier, (Metric, AutoAccuracy)):
        return identifier
    if isinstance(identifier, str):
        if identifier.lower() in ("accuracy", "acc"):
            return AutoAccuracy(identifier)
        cls = _BY_NAME.get(identifier)
        if cls is None:
            names = sorted({"accuracy", "acc", "mse", "mae"} | {_snake(c.__name__)
                                                              for c in _CLASSES})
            raise ValueError(f"metrics: expected one of {names} (or a class name), a "
                             f"Metric or a function, got {identifier!r}")
        return cls(name=identifier)
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type):
        if issubclass(identifier, Metric):
            return identifier()
        raise TypeError(f"metrics: expected a Metric subclass, got the class "
                        f"{identifier.__name__}")
    if callable(identifier):
        return MeanMetricWrapper(identifier, name=_object_name(identifier))
    raise TypeError(f"metrics: expected a name, a Metric, a config dict or a function, got "
                    f"{type(identifier).__name__}")


def serialize(metric):
    """{'class_name': ..., 'config': ...} of a Metric."""
    if not isinstance(metric, Metric):
        raise TypeError(f"metric: expected a Metric, got {type(metric).__name__}")
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config):
    """The Metric a serialize() dict describes."""
    name = config.get("class_name") if isinstance(config, dict) else None
    cls = _DESERIALIZABLE.get(name)
    if cls is None:
        raise ValueError(f"metrics: expected a config dict whose class_name is one of "
                         f"{sorted(_DESERIALIZABLE)}, got {config!r}")
    return cls.from_config(dict(config.get("config") or {}))
