"""Losses with torch.nn.functional semantics: mse_loss, l1_loss, huber_loss, smooth_l1_loss,
kl_div, binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, nll_loss,
and the gradient of each with respect to its input (<loss>_backward); triplet_margin_loss
is in fastdl/ops/triplet.py.

Inputs take any real dtype and strides (computed in float32, accumulated in float64);
reduction is 'none' (a float32 array of per-element / per-sample losses), 'mean' or 'sum'
(a numpy float32 scalar; kl_div also takes 'batchmean'). A mean over nothing is NaN, as in torch. Unlike torch, the
pointwise losses refuse a target whose shape differs from input's (torch broadcasts with
a warning that the result is likely wrong).

The kernels behind them (kernels.pointwise_loss / class_loss / soft_target_loss, see
fastdl/_reference/losses.py) also serve the Keras-flavoured fastdl.losses.
"""
import math

import numpy as np

from fastdl import _validate as v
from fastdl._backend import kernels

REDUCTIONS = ("none", "mean", "sum")


def _reduction(reduction):
    if not isinstance(reduction, str):
        raise TypeError(f"reduction: expected one of 'none', 'mean', 'sum', got "
                        f"{type(reduction).__name__}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of 'none', 'mean', 'sum', got {reduction!r}")
    return reduction


def _scalar(total, count, reduction):
    """The reduced loss as a float32 scalar: the sum, or the mean over `count` (NaN for 0)."""
    if reduction == "sum":
        return np.float32(total)
    return np.float32(total / count if count else math.nan)


def _broadcast(value, shape, name, what="input"):
    """`value` broadcast to `shape` as a flat float32 C-contiguous array."""
    arr = v.float32_array(value, name)
    try:
        arr = np.broadcast_to(arr, shape)
    except ValueError:
        raise ValueError(f"{name}: expected a shape that broadcasts to {what}'s {shape}, got "
                         f"{arr.shape}") from None
    return np.ascontiguousarray(arr).reshape(-1)


def pair(input, target, input_name="input", target_name="target"):
    """input and target as float32 C-contiguous arrays of one shape."""
    x = v.float32_array(input, input_name)
    t = v.float32_array(target, target_name)
    if t.shape != x.shape:
        raise ValueError(f"{target_name}: expected the shape of {input_name} {x.shape}, got "
                         f"{t.shape}")
    return x, t


def pointwise(kind, x, t, weight=None, pos_weight=None, param=1.0):
    """Per-element losses of `kind` of validated float32 x, t (one shape): a float32 array
    of that shape (param: huber's delta, smooth_l1's beta)."""
    out = np.empty(x.shape, np.float32)
    w = None if weight is None else _broadcast(weight, x.shape, "weight")
    pw = None if pos_weight is None else _broadcast(pos_weight, x.shape, "pos_weight")
    kernels.pointwise_loss(x.reshape(-1), t.reshape(-1), w, pw, kind, out.reshape(-1), param)
    return out


def pointwise_grad(kind, x, t, weight=None, pos_weight=None, scale=1.0, param=1.0):
    """scale * weight * d loss / d x for validated float32 x, t of one shape (weight and
    pos_weight broadcast to it): a float32 array of x's shape."""
    out = np.empty(x.shape, np.float32)
    w = None if weight is None else _broadcast(weight, x.shape, "weight")
    pw = None if pos_weight is None else _broadcast(pos_weight, x.shape, "pos_weight")
    kernels.pointwise_loss_backward(x.reshape(-1), t.reshape(-1), w, pw, kind, scale,
                                    out.reshape(-1), param)
    return out


def _positive(value, name):
    """A real number > 0 (finite or inf) as a float."""
    value = v.real(value, name)
    if not value > 0:
        raise ValueError(f"{name}: expected a number > 0, got {value}")
    return value


def _pointwise(kind, input, target, weight, pos_weight, reduction, param=1.0):
    reduction = _reduction(reduction)
    x, t = pair(input, target)
    if kind == "bce" and x.size and not (x.min() >= 0.0 and x.max() <= 1.0):  # NaN fails
        raise ValueError(f"input: expected probabilities in [0, 1] (use "
                         f"binary_cross_entropy_with_logits for logits), got values in "
                         f"[{x.min()}, {x.max()}]")
    if reduction == "none":
        return pointwise(kind, x, t, weight, pos_weight, param)
    w = None if weight is None else _broadcast(weight, x.shape, "weight")
    pw = None if pos_weight is None else _broadcast(pos_weight, x.shape, "pos_weight")
    total = kernels.pointwise_loss(x.reshape(-1), t.reshape(-1), w, pw, kind, None, param)
    return _scalar(total, x.size, reduction)


def mse_loss(input, target, reduction="mean"):
    """(input - target)^2, reduced."""
    return _pointwise("mse", input, target, None, None, reduction)


def l1_loss(input, target, reduction="mean"):
    """|input - target|, reduced."""
    return _pointwise("l1", input, target, None, None, reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """0.5 (input - target)^2 where |input - target| <= delta, else
    delta (|input - target| - 0.5 delta); times weight (broadcast to input's shape; 'mean'
    still divides by the number of elements, as torch). delta > 0."""
    delta = _positive(delta, "delta")
    return _pointwise("huber", input, target, weight, None, reduction, delta)


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """0.5 (input - target)^2 / beta where |input - target| < beta, else
    |input - target| - 0.5 beta: huber_loss / beta; beta = 0 is l1_loss. beta >= 0."""
    beta = v.real(beta, "beta", 0.0)
    if beta == 0.0:
        return _pointwise("l1", input, target, None, None, reduction)
    return _pointwise("smooth_l1", input, target, None, None, reduction, beta)


KL_REDUCTIONS = ("none", "mean", "sum", "batchmean")


def _kl_reduction(reduction):
    if not isinstance(reduction, str) or reduction not in KL_REDUCTIONS:
        raise ValueError(f"reduction: expected one of 'none', 'mean', 'sum', 'batchmean', got "
                         f"{reduction!r}")
    return reduction


def _batch_count(x, reduction):
    """What 'mean' / 'batchmean' divide by: the number of elements / of rows (input.shape[0];
    1 for a 0-d input, as torch)."""
    if reduction == "batchmean":
        return x.shape[0] if x.ndim else 1
    return x.size


def kl_div(input, target, reduction="mean", log_target=False):
    """torch.nn.functional.kl_div: target (log target - input) pointwise, with `input` the
    log-probabilities and `target` probabilities (0 log 0 = 0), or log-probabilities if
    log_target (then exp(target) (target - input)). reduction: 'batchmean' (the sum over
    input.shape[0], the KL divergence's true mean), 'mean' (over every element, as torch's
    default -- which torch warns about), 'sum' or 'none'."""
    reduction = _kl_reduction(reduction)
    kind = "kl_div_log" if v.flag(log_target, "log_target") else "kl_div"
    x, t = pair(input, target)
    if reduction == "none":
        return pointwise(kind, x, t)
    total = kernels.pointwise_loss(x.reshape(-1), t.reshape(-1), None, None, kind, None)
    if reduction == "sum":
        return np.float32(total)
    count = _batch_count(x, reduction)
    return np.float32(total / count if count else math.nan)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """-weight * (target log(input) + (1 - target) log(1 - input)) on probabilities
    `input` in [0, 1]; each log is clamped at -100 as in torch, so 0 and 1 give finite
    losses. weight broadcasts to input's shape."""
    return _pointwise("bce", input, target, weight, None, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",
                                     pos_weight=None):
    """binary_cross_entropy(sigmoid(input), target) in the stable form
    weight * ((1 - target) input + (1 + (pos_weight - 1) target) softplus(-input)), which
    neither overflows nor loses the tail for |input| up to float32's range. weight and
    pos_weight broadcast to input's shape (pos_weight: one per class on the last axis)."""
    return _pointwise("bce_logits", input, target, weight, pos_weight, reduction)


# ---------------------------------------------------------------- classes along one axis

def split_axis(x, axis):
    """x as [outer, C, inner] around `axis` (a view of C-contiguous x: no transpose)."""
    shape = x.shape
    return x.reshape(math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:]))


def class_indices(target, expected_shape, classes, ignore_index, name="target"):
    """target as int64 C-contiguous class indices of `expected_shape`, each in
    [0, classes) or equal to ignore_index (None: no index is ignored)."""
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class indices, got dtype {t.dtype}")
    if t.shape != expected_shape:
        raise ValueError(f"{name}: expected class indices of shape {expected_shape}, got "
                         f"{t.shape}")
    t = np.ascontiguousarray(t, dtype=np.int64)
    if t.size:
        bad = (t < 0) | (t >= classes)
        if ignore_index is not None:
            bad &= t != ignore_index
        if bad.any():
            allowed = f"[0, {classes})"
            if ignore_index is not None:
                allowed += f" or ignore_index ({ignore_index})"
            raise ValueError(f"{name}: expected class indices in {allowed}, got {t[bad][0]}")
    return t


def class_weight(weight, classes):
    if weight is None:
        return None
    w = v.float32_array(weight, "weight")
    if w.shape != (classes,):
        raise ValueError(f"weight: expected one weight per class, shape ({classes},), got "
                         f"{w.shape}")
    return w


def class_loss(x3, t2, weight, ignore_index, mode, smoothing, reduction, sample_shape):
    """Class-index cross-entropy / NLL over x3 [outer, C, inner] and t2 [outer, inner],
    reduced as torch does (the mean divides by the summed weights w[target] of the samples
    not ignored)."""
    classes = x3.shape[1]
    out = np.empty(t2.shape, np.float32) if reduction == "none" else None
    nll, smooth, weights = kernels.class_loss(x3, t2, weight, ignore_index, mode, smoothing,
                                              out)
    if reduction == "none":
        return out.reshape(sample_shape)
    keep, spread = 1.0 - smoothing, smoothing / classes
    total = keep * nll + spread * smooth
    if reduction == "sum":
        return np.float32(total)
    # Both parts divide by the summed weights of the samples not ignored (their count
    # without weights); all ignored gives NaN, as in torch.
    return np.float32(total / weights if weights else math.nan)


def class_grad(x3, t2, weight, ignore_index, mode, smoothing, sample_weight):
    """The gradient of sum_s sample_weight_s * loss_s of class_loss's per-sample losses
    over x3 [outer, C, inner], t2 [outer, inner] (sample_weight float32 [outer, inner] or
    None for 1): float32 of x3's shape."""
    out = np.empty(x3.shape, np.float32)
    kernels.class_loss_backward(x3, t2, weight, ignore_index, mode, smoothing, 1.0,
                                sample_weight, out)
    return out


def soft_target_grad(x3, t3, weight, mode, smoothing, sample_weight):
    """The same for soft_target_loss's per-sample losses (t3 of x3's shape)."""
    out = np.empty(x3.shape, np.float32)
    kernels.soft_target_loss_backward(x3, t3, weight, mode, smoothing, 1.0, sample_weight,
                                      out)
    return out


def soft_target_loss(x3, t3, weight, mode, smoothing, reduction, sample_shape):
    """Cross-entropy with probability targets, reduced as torch does (the mean divides by
    the number of samples, whatever the weights)."""
    out = np.empty((x3.shape[0], x3.shape[2]), np.float32) if reduction == "none" else None
    total = kernels.soft_target_loss(x3, t3, weight, mode, smoothing, out)
    if reduction == "none":
        return out.reshape(sample_shape)
    return _scalar(total, x3.shape[0] * x3.shape[2], reduction)


def _classes_input(input):
    """input [N, C, d...] or unbatched [C] as float32, with its class axis."""
    x = v.float32_array(input, "input")
    if x.ndim == 0:
        raise ValueError("input: expected [N, C, d...] or [C], got a 0-d array")
    axis = 0 if x.ndim == 1 else 1
    if x.shape[axis] == 0:
        raise ValueError(f"input: expected at least one class on axis {axis}, got shape "
                         f"{x.shape}")
    return x, axis


def cross_entropy(input, target, weight=None, reduction="mean", label_smoothing=0.0,
                  ignore_index=-100):
    """torch.nn.functional.cross_entropy on logits input [N, C, d...] (or [C]).

    target: class indices (integer dtype, shape [N, d...] or [] for [C]) or class
    probabilities (floating dtype, input's shape). Log-probabilities come from a stable
    log-sum-exp, so logits of any size are safe. weight [C] rescales each class;
    label_smoothing mixes the target with the uniform distribution; ignore_index (class
    indices only) drops those samples from the loss and from the mean's divisor.
    """
    reduction = _reduction(reduction)
    smoothing = v.real(label_smoothing, "label_smoothing", 0.0, 1.0)
    ignore_index = v.integer(ignore_index, "ignore_index", -2**63, 2**63 - 1)
    x, axis = _classes_input(input)
    classes = x.shape[axis]
    w = class_weight(weight, classes)
    sample_shape = x.shape[:axis] + x.shape[axis + 1:]
    t = np.asarray(target)
    if t.shape == x.shape:  # probabilities, as torch decides: by shape
        if t.dtype.kind != "f":
            raise TypeError(f"target: expected a floating dtype for class probabilities "
                            f"(input's shape {x.shape}), got {t.dtype}")
        if ignore_index != -100:
            raise ValueError(f"ignore_index: not supported with class probabilities, got "
                             f"{ignore_index}")
        t3 = split_axis(np.ascontiguousarray(t, dtype=np.float32), axis)
        return soft_target_loss(split_axis(x, axis), t3, w, "logits", smoothing, reduction,
                                sample_shape)
    t = class_indices(t, sample_shape, classes, ignore_index)
    x3 = split_axis(x, axis)
    return class_loss(x3, t.reshape(x3.shape[0], x3.shape[2]), w, ignore_index, "logits",
                      smoothing, reduction, sample_shape)


def nll_loss(input, target, weight=None, reduction="mean", ignore_index=-100):
    """torch.nn.functional.nll_loss: -weight[target] * input[target] on log-probabilities
    input [N, C, d...] (or [C]) with integer class indices target [N, d...] (or [])."""
    reduction = _reduction(reduction)
    ignore_index = v.integer(ignore_index, "ignore_index", -2**63, 2**63 - 1)
    x, axis = _classes_input(input)
    classes = x.shape[axis]
    w = class_weight(weight, classes)
    sample_shape = x.shape[:axis] + x.shape[axis + 1:]
    t = class_indices(target, sample_shape, classes, ignore_index)
    x3 = split_axis(x, axis)
    return class_loss(x3, t.reshape(x3.shape[0], x3.shape[2]), w, ignore_index, "log_probs",
                      0.0, reduction, sample_shape)


# ---------------------------------------------------------------- gradients
#
# <loss>_backward(input, target, ..., reduction, grad_output=1.0) returns
# d(grad_output * loss) / d input as float32 of input's shape: for 'mean' and 'sum'
# grad_output is a real number (the upstream gradient of the scalar loss), for 'none' an
# array of the loss's shape (per element or per sample). The losses over classes take
# their gradient in the stable fused form: softmax(input) - target for logits.


def _upstream(grad_output, reduction, loss_shape):
    """(scale, per-loss array or None) from grad_output for `reduction`."""
    if reduction == "none":
        g = v.float32_array(grad_output, "grad_output")
        try:
            g = np.broadcast_to(g, loss_shape)
        except ValueError:
            raise ValueError(f"grad_output: expected the shape of the unreduced loss "
                             f"{loss_shape}, got {g.shape}") from None
        return 1.0, np.ascontiguousarray(g, dtype=np.float32)
    return v.real(grad_output, "grad_output"), None


def _pointwise_backward(kind, input, target, weight, pos_weight, reduction, grad_output,
                        param=1.0, check_reduction=_reduction):
    reduction = check_reduction(reduction)
    x, t = pair(input, target)
    scale, per = _upstream(grad_output, reduction, x.shape)
    if reduction in ("mean", "batchmean"):
        count = _batch_count(x, reduction)
        scale = scale / count if count else math.nan
    w = None if weight is None else _broadcast(weight, x.shape, "weight")
    if per is not None:
        w = per.reshape(-1) if w is None else w * per.reshape(-1)
    pw = None if pos_weight is None else _broadcast(pos_weight, x.shape, "pos_weight")
    out = np.empty(x.shape, np.float32)
    kernels.pointwise_loss_backward(x.reshape(-1), t.reshape(-1), w, pw, kind, scale,
                                    out.reshape(-1), param)
    return out


def mse_loss_backward(input, target, reduction="mean", grad_output=1.0):
    """The gradient of mse_loss: 2 (input - target), times grad_output (/ size for 'mean')."""
    return _pointwise_backward("mse", input, target, None, None, reduction, grad_output)


def l1_loss_backward(input, target, reduction="mean", grad_output=1.0):
    """The gradient of l1_loss: sign(input - target) (0 where equal), times grad_output."""
    return _pointwise_backward("l1", input, target, None, None, reduction, grad_output)


def huber_loss_backward(input, target, reduction="mean", delta=1.0, weight=None,
                        grad_output=1.0):
    """The gradient of huber_loss: weight clip(input - target, -delta, delta)."""
    delta = _positive(delta, "delta")
    return _pointwise_backward("huber", input, target, weight, None, reduction, grad_output,
                               delta)


def smooth_l1_loss_backward(input, target, reduction="mean", beta=1.0, grad_output=1.0):
    """The gradient of smooth_l1_loss: clip((input - target) / beta, -1, 1) (sign for
    beta = 0)."""
    beta = v.real(beta, "beta", 0.0)
    if beta == 0.0:
        return _pointwise_backward("l1", input, target, None, None, reduction, grad_output)
    return _pointwise_backward("smooth_l1", input, target, None, None, reduction, grad_output,
                               beta)


def kl_div_backward(input, target, reduction="mean", log_target=False, grad_output=1.0):
    """The gradient of kl_div with respect to its input: -target (-exp(target) if
    log_target), times grad_output (divided as the reduction divides)."""
    kind = "kl_div_log" if v.flag(log_target, "log_target") else "kl_div"
    return _pointwise_backward(kind, input, target, None, None, reduction, grad_output,
                               check_reduction=_kl_reduction)


def binary_cross_entropy_backward(input, target, weight=None, reduction="mean",
                                  grad_output=1.0):
    """The gradient of binary_cross_entropy: weight (input - target) /
    max(input (1 - input), 1e-12), as torch computes it."""
    return _pointwise_backward("bce", input, target, weight, None, reduction, grad_output)


def binary_cross_entropy_with_logits_backward(input, target, weight=None, reduction="mean",
                                              pos_weight=None, grad_output=1.0):
    """The gradient of binary_cross_entropy_with_logits: weight ((1 - target) - (1 +
    (pos_weight - 1) target) sigmoid(-input)), i.e. sigmoid(input) - target without
    pos_weight."""
    return _pointwise_backward("bce_logits", input, target, weight, pos_weight, reduction,
                               grad_output)


def _class_backward(x, axis, t, w, ignore_index, mode, smoothing, reduction, grad_output,
                    sample_shape):
    """The gradient over x (classes on `axis`) of class-index targets t (validated)."""
    x3 = split_axis(x, axis)
    t2 = t.reshape(x3.shape[0], x3.shape[2])
    scale, per = _upstream(grad_output, reduction, sample_shape)
    if reduction == "mean":  # torch's divisor: the summed w[target] of the samples kept
        keep = t2 != ignore_index
        divisor = float(keep.sum() if w is None else w[t2[keep]].sum(dtype=np.float64))
        scale = scale / divisor if divisor else math.nan
    out = np.empty(x3.shape, np.float32)
    kernels.class_loss_backward(x3, t2, w, ignore_index, mode, smoothing, scale,
                                None if per is None else per.reshape(t2.shape), out)
    return out.reshape(x.shape)


def cross_entropy_backward(input, target, weight=None, reduction="mean", label_smoothing=0.0,
                           ignore_index=-100, grad_output=1.0):
    """The gradient of cross_entropy with respect to its logits, in the stable fused form:
    per sample g (softmax(input) * sum_k a_k - a), a = the (smoothed, weighted) target;
    0 for ignored samples. Same arguments as cross_entropy."""
    reduction = _reduction(reduction)
    smoothing = v.real(label_smoothing, "label_smoothing", 0.0, 1.0)
    ignore_index = v.integer(ignore_index, "ignore_index", -2**63, 2**63 - 1)
    x, axis = _classes_input(input)
    classes = x.shape[axis]
    w = class_weight(weight, classes)
    sample_shape = x.shape[:axis] + x.shape[axis + 1:]
    t = np.asarray(target)
    if t.shape == x.shape:
        if t.dtype.kind != "f":
            raise TypeError(f"target: expected a floating dtype for class probabilities "
                            f"(input's shape {x.shape}), got {t.dtype}")
        if ignore_index != -100:
            raise ValueError(f"ignore_index: not supported with class probabilities, got "
                             f"{ignore_index}")
        x3 = split_axis(x, axis)
        t3 = split_axis(np.ascontiguousarray(t, dtype=np.float32), axis)
        scale, per = _upstream(grad_output, reduction, sample_shape)
        if reduction == "mean":
            count = x3.shape[0] * x3.shape[2]
            scale = scale / count if count else math.nan
        out = np.empty(x3.shape, np.float32)
        kernels.soft_target_loss_backward(x3, t3, w, "logits", smoothing, scale,
                                          None if per is None else
                                          per.reshape(x3.shape[0], x3.shape[2]), out)
        return out.reshape(x.shape)
    t = class_indices(t, sample_shape, classes, ignore_index)
    return _class_backward(x, axis, t, w, ignore_index, "logits", smoothing, reduction,
                           grad_output, sample_shape)


def nll_loss_backward(input, target, weight=None, reduction="mean", ignore_index=-100,
                      grad_output=1.0):
    """The gradient of nll_loss: -g weight[target] at the target class, 0 elsewhere."""
    reduction = _reduction(reduction)
    ignore_index = v.integer(ignore_index, "ignore_index", -2**63, 2**63 - 1)
    x, axis = _classes_input(input)
    classes = x.shape[axis]
    w = class_weight(weight, classes)
    sample_shape = x.shape[:axis] + x.shape[axis + 1:]
    t = class_indices(target, sample_shape, classes, ignore_index)
    return _class_backward(x, axis, t, w, ignore_index, "log_probs", 0.0, reduction,
                           grad_output, sample_shape)
