"""Reference loss kernels: plain NumPy in float64, the oracle of fastdl._losses (Cython)
and fastdl._numba.losses, with the same three functions and contract.

Inputs were validated by fastdl.ops.losses: float32 C-contiguous arrays of matching
shapes, class indices in [0, C) or equal to ignore_index, known kinds and modes.
"""
import numpy as np

from fastdl._numerics import KERAS_HI, KERAS_LO


def _softplus_neg(x):
    """log(1 + exp(-x)) without overflow."""
    return np.maximum(-x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def pointwise_loss(x, t, weight, pos_weight, kind, out, param=1.0):
    """Per-element loss of `kind` over flat float32 x and t of one size (d = x - t):
      mse        d^2
      l1         |d|
      bce        -(t log x + (1 - t) log(1 - x)), each log clamped at -100 (torch)
      bce_logits (1 - t) x + (1 + (pw - 1) t) softplus(-x)
      huber      0.5 d^2 where |d| <= param (delta), else param (|d| - 0.5 param)
      smooth_l1  0.5 d^2 / param where |d| < param (beta > 0), else |d| - 0.5 param
      hinge      max(1 - t x, 0)
      squared_hinge  max(1 - t x, 0)^2
      kld        t' log(t' / x') with t', x' clipped to [KERAS_LO, 1] (Keras)
      kl_div     xlogy(t, t) - t x (torch, x log-probabilities: 0 where t == 0, NaN where
                 t < 0)
      kl_div_log exp(t) (t - x) (torch's log_target=True)
    times weight[i] where given. `param` is the kind's parameter (huber's delta,
    smooth_l1's beta; ignored by the others). Writes the losses into `out` (float32, same
    size) if it is not None; returns their sum as a Python float."""
    x = np.asarray(x, np.float64)
    t = np.asarray(t, np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d = x - t
        if kind == "mse":
            loss = d ** 2
        elif kind == "l1":
            loss = np.abs(d)
        elif kind == "bce":
            loss = -(t * np.maximum(np.log(x), -100.0)
                     + (1.0 - t) * np.maximum(np.log1p(-x), -100.0))
        elif kind == "bce_logits":
            pw = 1.0 if pos_weight is None else np.asarray(pos_weight, np.float64)
            loss = (1.0 - t) * x + (1.0 + (pw - 1.0) * t) * _softplus_neg(x)
        elif kind == "huber":
            a = np.abs(d)
            loss = np.where(a <= param, 0.5 * d * d, param * (a - 0.5 * param))
        elif kind == "smooth_l1":
            a = np.abs(d)
            loss = np.where(a < param, 0.5 * d * d / param, a - 0.5 * param)
        elif kind in ("hinge", "squared_hinge"):
            loss = np.maximum(1.0 - t * x, 0.0)  # NaN stays NaN
            if kind == "squared_hinge":
                loss = loss * loss
        elif kind == "kld":
            tc, xc = np.clip(t, KERAS_LO, 1.0), np.clip(x, KERAS_LO, 1.0)
            loss = tc * (np.log(tc) - np.log(xc))
        elif kind == "kl_div":
            xlogy = np.where(t == 0, 0.0, t * np.log(t))
            loss = xlogy - t * x
        elif kind == "kl_div_log":
            loss = np.exp(t) * (t - x)
        else:
            raise ValueError(f"kind: unknown pointwise loss {kind!r}")
        if weight is not None:
            loss = loss * np.asarray(weight, np.float64)
    if out is not None:
        out[...] = loss
    return float(loss.sum())


def log_probs(x, mode):
    """log p over axis 1 of float64 x [outer, C, inner] for `mode`: logits (log-softmax,
    stable: x - max - log(sum(exp(x - max)))), log_probs (x itself), probs (Keras: x
    renormalised to sum 1, clipped to [KERAS_LO, KERAS_HI], log)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if mode == "logits":
            m = x.max(axis=1, keepdims=True)
            return x - (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))
        if mode == "log_probs":
            return x
        if mode == "probs":
            # An infinite total makes some ratio inf / inf = NaN, which Keras' one-hot sum
            # carries into the loss even times a zero target: NaN for the whole sample.
            total = x.sum(axis=1, keepdims=True)
            logp = np.log(np.clip(x / total, KERAS_LO, KERAS_HI))
            return np.where(np.isfinite(total), logp, np.nan)
    raise ValueError(f"mode: unknown mode {mode!r}")


def class_loss(x, target, weight, ignore_index, mode, smoothing, out):
    """Cross-entropy / NLL with class-index targets: x float32 [outer, C, inner], target
    int64 [outer, inner], weight None or float32 [C]. Per sample s (0 where target ==
    ignore_index): nll_s = -w[t] log p[t] and smooth_s = -sum_k w_k log p_k (log p from
    `mode`, see log_probs; probs: a NaN or an infinite total gives NaN). Writes (1 - smoothing) nll_s + smoothing / C smooth_s into
    `out` [outer, inner] float32 if it is not None. Returns (sum nll_s, sum smooth_s,
    sum of w[t] over the samples not ignored), each a Python float."""
    outer, c, inner = x.shape
    if outer * inner * c == 0:
        if out is not None:
            out[...] = 0
        return 0.0, 0.0, 0.0
    logp = log_probs(np.asarray(x, np.float64), mode)
    w = np.ones(c) if weight is None else np.asarray(weight, np.float64)
    keep = target != ignore_index
    safe = np.where(keep, target, 0)
    picked = np.take_along_axis(logp, safe[:, None, :], axis=1)[:, 0, :]
    wt = np.where(keep, w[safe], 0.0)
    with np.errstate(invalid="ignore"):
        nll = np.where(keep, -wt * picked, 0.0)
        smooth = np.zeros_like(nll)
        if smoothing > 0:
            smooth = np.where(keep, -(logp * w[None, :, None]).sum(axis=1), 0.0)
        if out is not None:
            out[...] = (1.0 - smoothing) * nll + smoothing / c * smooth
    return float(nll.sum()), float(smooth.sum()), float(wt.sum())


def soft_target_loss(x, target, weight, mode, smoothing, out):
    """Cross-entropy with probability targets: x, target float32 [outer, C, inner]. Per
    sample -sum_k w_k t'_k log p_k, t' = t (1 - smoothing) + smoothing / C, log p from
    `mode` (logits or probs). Writes it into `out` [outer, inner] float32 if it is not
    None; returns the sum as a Python float."""
    outer, c, inner = x.shape
    if outer * inner * c == 0:
        if out is not None:
            out[...] = 0
        return 0.0
    logp = log_probs(np.asarray(x, np.float64), mode)
    w = np.ones(c) if weight is None else np.asarray(weight, np.float64)
    t = np.asarray(target, np.float64) * (1.0 - smoothing) + smoothing / c
    with np.errstate(invalid="ignore"):
        loss = -(w[None, :, None] * t * logp).sum(axis=1)
    if out is not None:
        out[...] = loss
    return float(loss.sum())


# ---------------------------------------------------------------- gradients
#
# Each returns d(sum_s g_s loss_s) / dx as float32 of x's shape, g_s = scale * (the
# sample's entry of sample_weight where given); the losses over classes are
# -sum_k a_k log p_k per sample with coefficients a_k (see _coefficient_grad).


def pointwise_loss_backward(x, t, weight, pos_weight, kind, scale, out, param=1.0):
    """out[...] = scale * weight * d loss / d x for pointwise_loss's kinds (d = x - t):
      mse 2 d;  l1 sign(d);  bce (x - t) / max(x (1 - x), 1e-12) (torch);
      bce_logits (1 - t) - (1 + (pw - 1) t) sigmoid(-x);
      huber clip(d, -param, param);  smooth_l1 clip(d / param, -1, 1);
      hinge -t where 1 - t x > 0, -t / 2 where it is 0 (torch.maximum splits a tie), else 0;
      squared_hinge -2 t max(1 - t x, 0);
      kld -t' / x where KERAS_LO <= x <= 1 (the clip passes the gradient), else 0;
      kl_div -t;  kl_div_log -exp(t)."""
    x = np.asarray(x, np.float64)
    t = np.asarray(t, np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d = x - t
        if kind == "mse":
            grad = 2.0 * d
        elif kind == "l1":
            grad = np.sign(d)
        elif kind == "bce":
            grad = (x - t) / np.maximum(x * (1.0 - x), 1e-12)
        elif kind == "bce_logits":
            pw = 1.0 if pos_weight is None else np.asarray(pos_weight, np.float64)
            e = np.exp(-np.abs(x))
            sig_neg = np.where(x >= 0, e / (1.0 + e), 1.0 / (1.0 + e))
            grad = (1.0 - t) - (1.0 + (pw - 1.0) * t) * sig_neg
        elif kind == "huber":
            grad = np.clip(d, -param, param)
        elif kind == "smooth_l1":
            grad = np.clip(d / param, -1.0, 1.0)
        elif kind == "hinge":
            margin = 1.0 - t * x
            grad = np.where(margin > 0, -t, np.where(margin == 0, -0.5 * t, 0.0))
            grad = np.where(np.isnan(margin), np.nan, grad)
        elif kind == "squared_hinge":
            grad = -2.0 * t * np.maximum(1.0 - t * x, 0.0)
        elif kind == "kld":
            inside = (x >= KERAS_LO) & (x <= 1.0)
            grad = np.where(inside, -np.clip(t, KERAS_LO, 1.0) / np.where(inside, x, 1.0), 0.0)
            grad = np.where(np.isnan(x), np.nan, grad)
        elif kind == "kl_div":
            grad = -t
        elif kind == "kl_div_log":
            grad = -np.exp(t)
        else:
            raise ValueError(f"kind: unknown pointwise loss {kind!r}")
        if weight is not None:
            grad = grad * np.asarray(weight, np.float64)
        out[...] = scale * grad


def _coefficient_grad(x, a, mode, g, out):
    """The gradient of -sum_k a_k log p_k (axis 1 of [outer, C, inner]) times g
    [outer, inner]: logits g (softmax(x) A - a) with A = sum a (the stable fused form),
    log_probs -g a, probs (Keras: q = x / S clipped to [KERAS_LO, KERAS_HI]; the clip passes
    the gradient where lo <= q <= hi) g (G + B) / S with G = -a / q inside the clip (0
    outside) and B = the sum of a inside."""
    x = np.asarray(x, np.float64)
    g = g[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if mode == "logits":
            e = np.exp(x - x.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
            grad = p * a.sum(axis=1, keepdims=True) - a
        elif mode == "log_probs":
            grad = -a
        else:
            total = x.sum(axis=1, keepdims=True)
            q = x / total
            inside = (q >= KERAS_LO) & (q <= KERAS_HI)
            big_g = np.where(inside, -a / np.where(inside, q, 1.0), 0.0)
            grad = (big_g + np.where(inside, a, 0.0).sum(axis=1, keepdims=True)) / total
            grad = np.where(np.isfinite(total), grad, np.nan)
        out[...] = g * grad


def _sample_scale(shape, scale, sample_weight):
    g = np.full(shape, float(scale))
    return g if sample_weight is None else g * np.asarray(sample_weight, np.float64)


def class_loss_backward(x, target, weight, ignore_index, mode, smoothing, scale,
                        sample_weight, out):
    """The gradient of class_loss's per-sample losses summed with g_s (0 for ignored
    samples) into out [outer, C, inner]; a_k = (1 - smoothing) w_t [k == t] +
    smoothing / C w_k."""
    outer, c, inner = x.shape
    if outer * c * inner == 0:
        return
    w = np.ones(c) if weight is None else np.asarray(weight, np.float64)
    keep = target != ignore_index
    safe = np.where(keep, target, 0)
    a = np.broadcast_to((smoothing / c) * w[None, :, None], x.shape).copy()
    onehot = np.arange(c)[None, :, None] == safe[:, None, :]
    a += (1.0 - smoothing) * onehot * w[None, :, None]
    g = np.where(keep, _sample_scale(target.shape, scale, sample_weight), 0.0)
    _coefficient_grad(x, a, mode, g, out)


def soft_target_loss_backward(x, target, weight, mode, smoothing, scale, sample_weight, out):
    """The gradient of soft_target_loss's per-sample losses summed with g_s into out
    [outer, C, inner]; a_k = w_k t'_k."""
    outer, c, inner = x.shape
    if outer * c * inner == 0:
        return
    w = np.ones(c) if weight is None else np.asarray(weight, np.float64)
    a = w[None, :, None] * (np.asarray(target, np.float64) * (1.0 - smoothing) + smoothing / c)
    _coefficient_grad(x, a, mode, _sample_scale((outer, inner), scale, sample_weight), out)
