"""fastdl.losses: Keras 3 loss functions, each returning the per-sample loss (Keras
reduces over the last axis or the class axis and leaves the batch mean to the model).

    mean_squared_error(y_true, y_pred)        mean((y_true - y_pred)^2, axis=-1)
    mean_absolute_error(y_true, y_pred)       mean(|y_true - y_pred|, axis=-1)
    binary_crossentropy(y_true, y_pred, from_logits=False)
    categorical_crossentropy(y_true, y_pred, from_logits=False, axis=-1)
    sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, axis=-1)

Keras semantics: probabilities are clipped to [epsilon, 1 - epsilon] (epsilon = 1e-7, in
float32); categorical losses from probabilities first renormalise y_pred to sum 1 along
`axis`; from logits they use a stable log-softmax / softplus. Like Keras, when y_true and
y_pred differ in rank by one and the longer ends in a size-1 axis, the ranks are matched
first. Arguments come in the Keras order (y_true, y_pred); the result is float32.

These run on the same kernels as fastdl.ops' torch-style losses (fastdl.ops.losses).
"""
import numpy as np

from fastdl import _validate as v
from fastdl.ops import losses as _ops

__all__ = ["binary_crossentropy", "categorical_crossentropy", "mean_absolute_error",
           "mean_squared_error", "sparse_categorical_crossentropy", "EPSILON"]

EPSILON = 1e-7  # keras.backend.epsilon()
# No label is ignored: an ignore_index that no valid (or refused) label can equal.
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
        if t.ndim == 1:
            t = t[:, None]
        else:
            p = p[..., 0]
    return _ops.pair(p, t, "y_pred", "y_true")


def _mean_last(losses):
    """Mean over the last axis, accumulated in float64, as float32."""
    return losses.mean(axis=-1, dtype=np.float64).astype(np.float32)


def mean_squared_error(y_true, y_pred):
    """mean((y_true - y_pred)^2) over the last axis."""
    p, t = _same_rank(y_true, y_pred)
    return _mean_last(_ops.pointwise("mse", p, t))


def mean_absolute_error(y_true, y_pred):
    """mean(|y_true - y_pred|) over the last axis."""
    p, t = _same_rank(y_true, y_pred)
    return _mean_last(_ops.pointwise("l1", p, t))


def binary_crossentropy(y_true, y_pred, from_logits=False):
    """mean over the last axis of -(y log p + (1 - y) log(1 - p)), with p = y_pred clipped
    to [1e-7, 1 - 1e-7] (float32), or p = sigmoid(y_pred) in the stable softplus form if
    from_logits."""
    from_logits = v.flag(from_logits, "from_logits")
    p, t = _same_rank(y_true, y_pred)
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


def categorical_crossentropy(y_true, y_pred, from_logits=False, axis=-1):
    """-sum(y_true * log p) along `axis`, with p = softmax(y_pred) (from_logits; a stable
    log-softmax) or y_pred / sum(y_pred) clipped to [1e-7, 1 - 1e-7]. y_true: class
    probabilities (e.g. one-hot) of y_pred's shape."""
    from_logits = v.flag(from_logits, "from_logits")
    p, axis, sample_shape = _classes(y_pred, axis)
    p, t = _ops.pair(p, y_true, "y_pred", "y_true")
    return _ops.soft_target_loss(_ops.split_axis(p, axis), _ops.split_axis(t, axis), None,
                                 "logits" if from_logits else "probs", 0.0, "none",
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
    t = _ops.class_indices(t, sample_shape, p.shape[axis], _NO_IGNORE, "y_true")
    x3 = _ops.split_axis(p, axis)
    return _ops.class_loss(x3, t.reshape(x3.shape[0], x3.shape[2]), None, _NO_IGNORE,
                           "logits" if from_logits else "probs", 0.0, "none", sample_shape)
