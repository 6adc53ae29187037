"""fastdl.losses: Keras 3 loss functions, each returning the per-sample loss (Keras
reduces over the last axis or the class axis and leaves the batch mean to the model).

    mean_squared_error(y_true, y_pred)        mean((y_true - y_pred)^2, axis=-1)
    mean_absolute_error(y_true, y_pred)       mean(|y_true - y_pred|, axis=-1)
    binary_crossentropy(y_true, y_pred, from_logits=False)
    categorical_crossentropy(y_true, y_pred, from_logits=False, axis=-1)
    sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, axis=-1)
    huber(y_true, y_pred, delta=1.0)          mean(0.5 e^2 or delta |e| - delta^2 / 2, axis=-1)
    hinge(y_true, y_pred)                     mean(max(1 - y_true y_pred, 0), axis=-1)
    squared_hinge(y_true, y_pred)             mean(max(1 - y_true y_pred, 0)^2, axis=-1)
    kl_divergence(y_true, y_pred)  (kld, KLD) sum(y_true log(y_true / y_pred), axis=-1)
    triplet_margin_loss(y_true, y_pred, margin=1.0, p=2, eps=1e-6, swap=False)
                                              (fastdl's; Keras has none: see its docstring)

Keras semantics: probabilities are clipped to [epsilon, 1 - epsilon] (epsilon = 1e-7, in
float32); categorical losses from probabilities first renormalise y_pred to sum 1 along
`axis`; from logits they use a stable log-softmax / softplus. Like Keras, when y_true and
y_pred differ in rank by one and the longer ends in a size-1 axis, the ranks are matched
first. Arguments come in the Keras order (y_true, y_pred); the result is float32.

These run on the same kernels as fastdl.ops' torch-style losses (fastdl.ops.losses).

The classes (MeanSquaredError, ..., as keras.losses names them) are what model.compile
takes: called, they reduce as Keras' default 'sum_over_batch_size' (the sample-weighted sum
of the per-sample losses over their number); `gradient` is their derivative, which training
uses, and for the cross-entropies on probabilities the fused form through the output's
softmax / sigmoid (see Loss.gradient).
"""
import numpy as np

from fastdl import _validate as v
from fastdl.ops import losses as _ops
from fastdl.ops import triplet as _triplet

__all__ = ["binary_crossentropy", "categorical_crossentropy", "mean_absolute_error",
           "mean_squared_error", "sparse_categorical_crossentropy", "huber", "hinge",
           "squared_hinge", "kl_divergence", "kld", "KLD", "triplet_margin_loss", "EPSILON",
           "Loss", "MeanSquaredError", "MeanAbsoluteError", "BinaryCrossentropy",
           "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "Huber", "Hinge",
           "SquaredHinge", "KLDivergence", "TripletMarginLoss", "get", "serialize"]

EPSILON = 1e-7  # keras.backend.epsilon()
# The kernels' ignore_index where no label is ignored: the labels are checked to lie in
# [0, classes) first (class_indices with None), so none equals it.
_NO_IGNORE = int(np.iinfo(np.int64).min)
_LO, _HI = np.float32(EPSILON), np.float32(1.0 - EPSILON)


def _same_rank(y_true, y_pred):
    """Keras' squeeze_or_expand_to_same_rank: ranks differing by one, the longer ending in
    a size-1 axis -> a rank-1 shorter one is expanded, else the longer one squeezed."""
    t, p = v.float32_array(y_true, "y_true"), v.float32_array(y_pred, "y_pred")
    if p.ndim == 0:
        raise ValueError("y_pred: expected at least 1 dimension, got a 0-d array")
    if t.ndim == p.ndim + 1 and t.shape[-1] == 1:
        if p.ndim == 1:
            p = p[:, None]
        else:
            t = t[..., 0]
    elif p.ndim == t.ndim + 1 and p.shape[-1] == 1:
        if t.ndim == 0:
            raise ValueError(f"y_true: expected targets of y_pred's shape {p.shape}, got a "
                             f"0-d array")
        if t.ndim == 1:
            t = t[:, None]
        else:
            p = p[..., 0]
    return _ops.pair(p, t, "y_pred", "y_true")


def _mean_last(losses):
    """Mean over the last axis, accumulated in float64, as float32; an empty last axis
    (whose mean is NaN in Keras) is refused."""
    if losses.shape[-1] == 0:
        raise ValueError(f"y_pred: expected at least one value in the last axis, got shape "
                         f"{losses.shape}")
    return losses.mean(axis=-1, dtype=np.float64).astype(np.float32)


def mean_squared_error(y_true, y_pred):
    """mean((y_true - y_pred)^2) over the last axis."""
    p, t = _same_rank(y_true, y_pred)
    return _mean_last(_ops.pointwise("mse", p, t))


def mean_absolute_error(y_true, y_pred):
    """mean(|y_true - y_pred|) over the last axis."""
    p, t = _same_rank(y_true, y_pred)
    return _mean_last(_ops.pointwise("l1", p, t))


def _smoothing(label_smoothing):
    return v.real(label_smoothing, "label_smoothing", 0.0, 1.0)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """mean over the last axis of -(y log p + (1 - y) log(1 - p)), with p = y_pred clipped
    to [1e-7, 1 - 1e-7] (float32), or p = sigmoid(y_pred) in the stable softplus form if
    from_logits; label_smoothing moves y towards 1/2: y (1 - s) + s / 2."""
    from_logits = v.flag(from_logits, "from_logits")
    smoothing = _smoothing(label_smoothing)
    p, t = _same_rank(y_true, y_pred)
    if smoothing:
        t = (t * np.float32(1.0 - smoothing) + np.float32(0.5 * smoothing)).astype(np.float32)
    if from_logits:
        return _mean_last(_ops.pointwise("bce_logits", p, t))
    return _mean_last(_ops.pointwise("bce", np.clip(p, _LO, _HI), t))


def _classes(y_pred, axis):
    p = v.float32_array(y_pred, "y_pred")
    if p.ndim == 0:
        raise ValueError("y_pred: expected at least 1 dimension, got a 0-d array")
    axis = v.axis(axis, p.ndim)
    if p.shape[axis] == 0:
        raise ValueError(f"y_pred: expected at least one class on axis {axis}, got shape "
                         f"{p.shape}")
    return p, axis, p.shape[:axis] + p.shape[axis + 1:]


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0,
                             axis=-1):
    """-sum(y_true * log p) along `axis`, with p = softmax(y_pred) (from_logits; a stable
    log-softmax) or y_pred / sum(y_pred) clipped to [1e-7, 1 - 1e-7]. y_true: class
    probabilities (e.g. one-hot) of y_pred's shape; label_smoothing mixes them with the
    uniform distribution: y (1 - s) + s / C."""
    from_logits = v.flag(from_logits, "from_logits")
    smoothing = _smoothing(label_smoothing)
    p, axis, sample_shape = _classes(y_pred, axis)
    p, t = _ops.pair(p, y_true, "y_pred", "y_true")
    return _ops.soft_target_loss(_ops.split_axis(p, axis), _ops.split_axis(t, axis), None,
                                 "logits" if from_logits else "probs", smoothing, "none",
                                 sample_shape)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, axis=-1):
    """categorical_crossentropy with y_true the class indices (y_pred's shape without
    `axis`; a trailing size-1 axis is dropped, as Keras does). Indices may come as floats
    holding whole numbers (as Keras casts them); other values are refused, not
    truncated."""
    from_logits = v.flag(from_logits, "from_logits")
    p, axis, sample_shape = _classes(y_pred, axis)
    t = v.real_array(y_true, "y_true")
    if t.ndim == p.ndim and t.ndim and t.shape[-1] == 1:
        t = t[..., 0]
    if t.dtype.kind in "fb":
        if t.dtype.kind == "b" or not np.all(np.isfinite(t) & (t == np.round(t))):
            raise TypeError(f"y_true: expected integer class indices, got dtype {t.dtype} "
                            f"with values that are not whole numbers")
        t = t.astype(np.int64)
    t = _ops.class_indices(t, sample_shape, p.shape[axis], None, "y_true")
    x3 = _ops.split_axis(p, axis)
    return _ops.class_loss(x3, t.reshape(x3.shape[0], x3.shape[2]), None, _NO_IGNORE,
                           "logits" if from_logits else "probs", 0.0, "none", sample_shape)



def huber(y_true, y_pred, delta=1.0):
    """mean over the last axis of 0.5 e^2 where |e| <= delta, else delta |e| - 0.5 delta^2
    (e = y_pred - y_true): squared near 0, linear in the tails. delta >= 0."""
    delta = v.real(delta, "delta", 0.0)
    p, t = _same_rank(y_true, y_pred)
    return _mean_last(_ops.pointwise("huber", p, t, param=delta))


def _hinge_labels(t):
    """Keras' convert_binary_labels_to_hinge: labels that are all 0 or 1 become -1 / 1
    (2 y - 1); other labels (already -1 / 1) stay. Keras decides over the whole y_true it
    is given -- in fit, per batch."""
    if np.all((t == 0) | (t == 1)):
        return t * np.float32(2) - np.float32(1)
    return t


def hinge(y_true, y_pred):
    """mean over the last axis of max(1 - y_true y_pred, 0), y_true in {-1, 1} (0 / 1
    labels are converted, see _hinge_labels)."""
    p, t = _same_rank(y_true, y_pred)
    return _mean_last(_ops.pointwise("hinge", p, _hinge_labels(t)))


def squared_hinge(y_true, y_pred):
    """mean over the last axis of max(1 - y_true y_pred, 0)^2 (labels as hinge)."""
    p, t = _same_rank(y_true, y_pred)
    return _mean_last(_ops.pointwise("squared_hinge", p, _hinge_labels(t)))


def kl_divergence(y_true, y_pred):
    """sum over the last axis of y log(y / p), with y_true and y_pred clipped to
    [1e-7, 1] (float32), as Keras: probabilities in, 0 where they agree."""
    p, t = _same_rank(y_true, y_pred)
    return _ops.pointwise("kld", p, t).sum(axis=-1, dtype=np.float64).astype(np.float32)


kld = KLD = kl_divergence  # Keras' aliases


def _triplets(y_pred):
    """(anchor, positive, negative, stacked) from embeddings packed in y_pred: (batch, 3, D)
    stacked on axis 1, or (batch, 3 D) concatenated on the last axis."""
    e = v.float32_array(y_pred, "y_pred")
    if e.ndim == 3 and e.shape[1] == 3:
        return e[:, 0], e[:, 1], e[:, 2], True
    if e.ndim == 2 and e.shape[1] % 3 == 0:
        d = e.shape[1] // 3
        return e[:, :d], e[:, d:2 * d], e[:, 2 * d:], False
    raise ValueError(f"y_pred: expected triplets of embeddings, (batch, 3, D) stacked or "
                     f"(batch, 3 * D) concatenated [anchor | positive | negative], got shape "
                     f"{e.shape}")


def _check_ignored_target(y_true, batch):
    if y_true is not None and np.ndim(y_true) and np.shape(y_true)[0] != batch:
        raise ValueError(f"y_true: expected {batch} entries (y_pred's batch size; the values "
                         f"are ignored), got shape {np.shape(y_true)}")


def triplet_margin_loss(y_true, y_pred, margin=1.0, p=2, eps=1e-6, swap=False):
    """The triplet margin loss per sample (fastdl.ops.triplet_margin_loss's, torch's) of
    the embeddings in y_pred: (batch, 3, D) with anchor, positive and negative stacked on
    axis 1, or (batch, 3 D) concatenated [anchor | positive | negative] on the last axis
    (a Concatenate of three embeddings). Keras has no triplet loss: this is fastdl's
    convention. y_true carries nothing -- the triplet is the label -- and is ignored; fit
    still wants a y, so pass any array of batch length, e.g. np.zeros(len(x))."""
    a, pos, neg, _ = _triplets(y_pred)
    _check_ignored_target(y_true, a.shape[0])
    return _triplet.triplet_margin_loss(a, pos, neg, margin, p, eps, swap, "none")


# ---------------------------------------------------------------- loss objects

def _sparse_labels(y_true, sample_shape, classes):
    t = v.real_array(y_true, "y_true")
    if t.ndim == len(sample_shape) + 1 and t.ndim and t.shape[-1] == 1:
        t = t[..., 0]
    if t.dtype.kind in "fb":
        if t.dtype.kind == "b" or not np.all(np.isfinite(t) & (t == np.round(t))):
            raise TypeError(f"y_true: expected integer class indices, got dtype {t.dtype} "
                            f"with values that are not whole numbers")
        t = t.astype(np.int64)
    return _ops.class_indices(t, sample_shape, classes, None, "y_true")


class Loss:
    """A Keras loss. loss(y_true, y_pred, sample_weight=None) -> the reduced loss (a
    float32 scalar: sum(w * losses) / number of losses); call(y_true, y_pred) -> the
    per-sample losses; gradient(y_true, y_pred, coef) -> d sum(coef * losses) / d y_pred
    (coef: float32 of the per-sample losses' shape).

    `fused_activation` names the output activation ('softmax', 'sigmoid') through which the
    gradient can be taken in the stable fused form: gradient(y_true, logits, coef,
    logits=True) is then d sum(coef * losses) / d logits with y_pred = act(logits) (for
    probabilities inside Keras' clip it equals the chain rule through the activation, and it
    stays exact where the clip would zero it)."""
    fused_activation = None

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        if reduction not in ("sum_over_batch_size", "sum", "none", "mean", None):
            raise ValueError(f"reduction: expected 'sum_over_batch_size', 'sum', 'mean' or "
                             f"'none', got {reduction!r}")
        self.name = name or _snake(type(self).__name__)
        self.reduction = reduction or "none"

    def call(self, y_true, y_pred):
        raise NotImplementedError

    def gradient(self, y_true, y_pred, coef, logits=False):
        raise NotImplementedError

    def check_targets(self, y_true, pred_shape):
        """Refuses (ValueError/TypeError naming y_true) targets no prediction of
        `pred_shape` makes valid: fit checks all of y with it before the first step. The
        base class checks nothing (each call checks its batch)."""

    def __call__(self, y_true, y_pred, sample_weight=None):
        losses = self.call(y_true, y_pred)
        if sample_weight is not None:
            w = v.float32_array(sample_weight, "sample_weight")
            losses = losses * _broadcast_weight(w, losses.shape)
        if self.reduction == "none":
            return losses.astype(np.float32)
        total = losses.sum(dtype=np.float64)
        if self.reduction == "sum":
            return np.float32(total)
        return np.float32(total / losses.size if losses.size else 0.0)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _snake(name):
    import re
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def _broadcast_weight(w, shape):
    """sample_weight (batch,) or of the losses' shape, broadcast to the losses."""
    if w.ndim < len(shape):
        w = w.reshape(w.shape + (1,) * (len(shape) - w.ndim))
    try:
        return np.broadcast_to(w, shape)
    except ValueError:
        raise ValueError(f"sample_weight: expected a shape that broadcasts to the losses' "
                         f"{shape}, got {w.shape}") from None


def _pointwise_gradient(kind, y_pred, p, t, coef, mean=True, param=1.0):
    """d sum(coef * losses) / d y_pred for a pointwise `kind` reduced over the last axis of
    p (y_pred with y_true's rank, t): by its mean (1 / k each) or its sum."""
    w = np.asarray(coef, np.float32)
    if mean:
        w = w / np.float32(p.shape[-1] if p.ndim else 1)
    return _ops.pointwise_grad(kind, p, t, w[..., None], param=param).reshape(np.shape(y_pred))


class MeanSquaredError(Loss):
    def call(self, y_true, y_pred):
        return mean_squared_error(y_true, y_pred)

    def gradient(self, y_true, y_pred, coef, logits=False):
        p, t = _same_rank(y_true, y_pred)
        return _pointwise_gradient("mse", y_pred, p, t, coef)


class MeanAbsoluteError(Loss):
    def call(self, y_true, y_pred):
        return mean_absolute_error(y_true, y_pred)

    def gradient(self, y_true, y_pred, coef, logits=False):
        p, t = _same_rank(y_true, y_pred)
        return _pointwise_gradient("l1", y_pred, p, t, coef)


class Huber(Loss):
    """huber(y_true, y_pred, delta) as a Loss; its gradient clip(e, -delta, delta) / k."""

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss",
                 dtype=None):
        super().__init__(name, reduction)
        self.delta = v.real(delta, "delta", 0.0)

    def call(self, y_true, y_pred):
        return huber(y_true, y_pred, self.delta)

    def gradient(self, y_true, y_pred, coef, logits=False):
        p, t = _same_rank(y_true, y_pred)
        return _pointwise_gradient("huber", y_pred, p, t, coef, param=self.delta)

    def get_config(self):
        return {**super().get_config(), "delta": self.delta}


class Hinge(Loss):
    """hinge(y_true, y_pred) as a Loss; at the kink (y_true y_pred = 1) the gradient is half
    of -y_true, as Keras' (torch backend) maximum gives it."""
    kind = "hinge"

    def __init__(self, reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(name or self.kind, reduction)

    def call(self, y_true, y_pred):
        return (hinge if self.kind == "hinge" else squared_hinge)(y_true, y_pred)

    def gradient(self, y_true, y_pred, coef, logits=False):
        p, t = _same_rank(y_true, y_pred)
        return _pointwise_gradient(self.kind, y_pred, p, _hinge_labels(t), coef)


class SquaredHinge(Hinge):
    """squared_hinge(y_true, y_pred) as a Loss."""
    kind = "squared_hinge"


class KLDivergence(Loss):
    """kl_divergence(y_true, y_pred) as a Loss; the gradient -y' / y_pred where Keras' clip
    [1e-7, 1] passes it, else 0 (taken through an output softmax by the chain rule)."""

    def __init__(self, reduction="sum_over_batch_size", name="kl_divergence", dtype=None):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        return kl_divergence(y_true, y_pred)

    def gradient(self, y_true, y_pred, coef, logits=False):
        p, t = _same_rank(y_true, y_pred)
        return _pointwise_gradient("kld", y_pred, p, t, coef, mean=False)


class TripletMarginLoss(Loss):
    """triplet_margin_loss(y_true, y_pred, margin, p, eps, swap) as a Loss (see the function
    for the layout of the embeddings in y_pred; y_true is ignored). The gradient flows to
    all three embeddings: give the model one embedding network shared by the three inputs
    (e.g. Dense layers on (batch, 3, features), or a shared sub-model whose three outputs
    a Concatenate joins)."""

    def __init__(self, margin=1.0, p=2, eps=1e-6, swap=False,
                 reduction="sum_over_batch_size", name="triplet_margin_loss", dtype=None):
        super().__init__(name, reduction)
        self.margin, self.p, self.eps, self.swap = _triplet._parameters(margin, p, eps, swap)

    def call(self, y_true, y_pred):
        return triplet_margin_loss(y_true, y_pred, self.margin, self.p, self.eps, self.swap)

    def gradient(self, y_true, y_pred, coef, logits=False):
        a, pos, neg, stacked = _triplets(y_pred)
        _check_ignored_target(y_true, a.shape[0])
        grads = _triplet.triplet_margin_loss_backward(a, pos, neg, self.margin, self.p,
                                                      self.eps, self.swap, "none", coef)
        return np.stack(grads, axis=1) if stacked else np.concatenate(grads, axis=-1)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "p": self.p, "eps": self.eps,
                "swap": self.swap}


class BinaryCrossentropy(Loss):
    fused_activation = "sigmoid"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="binary_crossentropy", dtype=None):
        super().__init__(name, reduction)
        self.from_logits = v.flag(from_logits, "from_logits")
        self.label_smoothing = _smoothing(label_smoothing)
        if axis != -1:
            raise ValueError(f"axis: fastdl reduces binary_crossentropy over the last axis, "
                             f"got {axis!r}")

    def call(self, y_true, y_pred):
        return binary_crossentropy(y_true, y_pred, self.from_logits, self.label_smoothing)

    def gradient(self, y_true, y_pred, coef, logits=False):
        p, t = _same_rank(y_true, y_pred)
        s = self.label_smoothing
        if s:
            t = (t * np.float32(1.0 - s) + np.float32(0.5 * s)).astype(np.float32)
        k = p.shape[-1] if p.ndim else 1
        w = (np.asarray(coef, np.float32) / np.float32(k))[..., None]
        if self.from_logits or logits:
            return _ops.pointwise_grad("bce_logits", p, t, w).reshape(np.shape(y_pred))
        clipped = np.clip(p, _LO, _HI)
        grad = _ops.pointwise_grad("bce", clipped, t, w)
        grad[(p < _LO) | (p > _HI)] = 0.0  # the clip passes no gradient there
        return grad.reshape(np.shape(y_pred))

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing}


class CategoricalCrossentropy(Loss):
    fused_activation = "softmax"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_crossentropy",
                 dtype=None):
        super().__init__(name, reduction)
        self.from_logits = v.flag(from_logits, "from_logits")
        self.label_smoothing = _smoothing(label_smoothing)
        self.axis = axis

    def call(self, y_true, y_pred):
        return categorical_crossentropy(y_true, y_pred, self.from_logits,
                                        self.label_smoothing, self.axis)

    def gradient(self, y_true, y_pred, coef, logits=False):
        p, axis, sample_shape = _classes(y_pred, self.axis)
        p, t = _ops.pair(p, y_true, "y_pred", "y_true")
        x3, t3 = _ops.split_axis(p, axis), _ops.split_axis(t, axis)
        coef = np.ascontiguousarray(np.broadcast_to(coef, sample_shape), np.float32)
        mode = "logits" if self.from_logits or logits else "probs"
        return _ops.soft_target_grad(x3, t3, None, mode, self.label_smoothing,
                                     coef.reshape(x3.shape[0], x3.shape[2])).reshape(p.shape)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


class SparseCategoricalCrossentropy(Loss):
    fused_activation = "softmax"

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(name, reduction)
        self.from_logits = v.flag(from_logits, "from_logits")
        if ignore_class is not None:
            raise NotImplementedError("ignore_class: not supported by fastdl yet")
        self.ignore_class = None

    def call(self, y_true, y_pred):
        return sparse_categorical_crossentropy(y_true, y_pred, self.from_logits)

    def check_targets(self, y_true, pred_shape):
        _sparse_labels(y_true, tuple(pred_shape[:-1]), pred_shape[-1])

    def gradient(self, y_true, y_pred, coef, logits=False):
        p, axis, sample_shape = _classes(y_pred, -1)
        t = _sparse_labels(y_true, sample_shape, p.shape[axis])
        x3 = _ops.split_axis(p, axis)
        coef = np.ascontiguousarray(np.broadcast_to(coef, sample_shape), np.float32)
        mode = "logits" if self.from_logits or logits else "probs"
        return _ops.class_grad(x3, t.reshape(x3.shape[0], x3.shape[2]), None, _NO_IGNORE,
                               mode, 0.0, coef.reshape(x3.shape[0], x3.shape[2])
                               ).reshape(p.shape)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits,
                "ignore_class": self.ignore_class}


_CLASSES = {cls.__name__: cls for cls in (
    MeanSquaredError, MeanAbsoluteError, BinaryCrossentropy, CategoricalCrossentropy,
    SparseCategoricalCrossentropy, Huber, Hinge, SquaredHinge, KLDivergence,
    TripletMarginLoss)}
# Keras' function names and aliases (keras.losses.get) -> (class, the function's name).
_FUNCTIONS = {
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "MSE": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
    "BCE": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "huber": Huber, "hinge": Hinge, "squared_hinge": SquaredHinge,
    "kl_divergence": KLDivergence, "kld": KLDivergence, "KLD": KLDivergence,
    "kullback_leibler_divergence": KLDivergence,  # Keras 2's name (keras._legacy in 3)
    "triplet_margin_loss": TripletMarginLoss,  # fastdl's
}
_CANONICAL = {MeanSquaredError: "mean_squared_error", MeanAbsoluteError: "mean_absolute_error",
              BinaryCrossentropy: "binary_crossentropy", KLDivergence: "kl_divergence"}


def get(identifier):
    """A Loss from a Keras name -- a function's ('mse', 'huber', 'kld', ...: the Loss
    computing it, named after the function) or a class's ('Huber', ...: its default
    instance) --, a config dict ({'class_name': ..., 'config': ...}) or a Loss (returned as
    is). Plain functions have no gradient here: pass a Loss."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
        cls = _FUNCTIONS.get(identifier)
        if cls is None:
            raise ValueError(f"loss: expected one of {sorted(_FUNCTIONS) + sorted(_CLASSES)} "
                             f"or a Loss, got {identifier!r}")
        loss = cls()
        loss.name = _CANONICAL.get(cls, identifier)
        return loss
    if isinstance(identifier, dict):
        cls = _CLASSES.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"loss: unknown class {identifier.get('class_name')!r}; "
                             f"expected one of {sorted(_CLASSES)}")
        return cls.from_config(identifier.get("config", {}))
    if callable(identifier):
        raise TypeError(f"loss: a plain function ({getattr(identifier, '__name__', '?')}) "
                        f"has no gradient in fastdl; pass a fastdl.losses.Loss or a Keras "
                        f"loss name")
    raise TypeError(f"loss: expected a name, a config dict or a Loss, got "
                    f"{type(identifier).__name__}")


def serialize(loss):
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
