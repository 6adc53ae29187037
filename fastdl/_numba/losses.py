"""Numba loss kernels: the jitted twin of fastdl._losses (Cython), same functions and
contract as fastdl/_reference/losses.py. Loops read float32 and accumulate in float64.
"""
import math

import numba
import numpy as np

from fastdl._numerics import KERAS_HI, KERAS_LO

POINTWISE_KINDS = {"mse": 0, "l1": 1, "bce": 2, "bce_logits": 3, "huber": 4, "smooth_l1": 5,
                   "hinge": 6, "squared_hinge": 7, "kld": 8, "kl_div": 9, "kl_div_log": 10}
MODES = {"logits": 0, "log_probs": 1, "probs": 2}
_EMPTY = np.zeros(0, np.float32)


@numba.njit(cache=True, nogil=True)
def _keras_clip(v):
    """v clipped to Keras' [KERAS_LO, 1] (NaN stays NaN)."""
    if v < KERAS_LO:
        return KERAS_LO
    return 1.0 if v > 1.0 else v


@numba.njit(cache=True, nogil=True)
def _pointwise_one(kind, xi, ti, p, param):
    """One element's loss (contract: fastdl._reference.losses.pointwise_loss)."""
    d = xi - ti
    if kind == 0:
        return d * d
    if kind == 1:
        return abs(d)
    if kind == 2:  # torch clamps each log at -100
        lx = math.log(xi) if xi > 0 else -math.inf
        l1x = math.log1p(-xi) if xi < 1 else -math.inf
        return -(ti * max(lx, -100.0) + (1.0 - ti) * max(l1x, -100.0))
    if kind == 3:  # (1 - t) x + (1 + (pw - 1) t) softplus(-x), stable
        sp = max(-xi, 0.0) + math.log1p(math.exp(-abs(xi)))
        return (1.0 - ti) * xi + (1.0 + (p - 1.0) * ti) * sp
    if kind == 4:
        a = abs(d)
        return 0.5 * d * d if a <= param else param * (a - 0.5 * param)
    if kind == 5:
        a = abs(d)
        return 0.5 * d * d / param if a < param else a - 0.5 * param
    if kind == 6 or kind == 7:
        m = 1.0 - ti * xi
        if m != m:
            return m
        m = max(m, 0.0)
        return m if kind == 6 else m * m
    if kind == 8:
        tc = _keras_clip(ti)
        return tc * (math.log(tc) - math.log(_keras_clip(xi)))
    if kind == 9:  # xlogy(t, t) - t x
        if ti == 0.0:
            return -ti * xi
        return (ti * math.log(ti) if ti > 0 else math.nan) - ti * xi
    return math.exp(ti) * (ti - xi)


@numba.njit(cache=True, nogil=True)
def _pointwise(x, t, w, pw, kind, out, has_w, has_pw, has_out, param):
    total = 0.0
    for i in range(x.size):
        p = np.float64(pw[i]) if has_pw else 1.0
        v = _pointwise_one(kind, np.float64(x[i]), np.float64(t[i]), p, param)
        if has_w:
            v *= np.float64(w[i])
        if has_out:
            out[i] = v
        total += v
    return total


def pointwise_loss(x, t, weight, pos_weight, kind, out, param=1.0):
    """See fastdl._reference.losses.pointwise_loss."""
    return float(_pointwise(x, t, _EMPTY if weight is None else weight,
                            _EMPTY if pos_weight is None else pos_weight,
                            POINTWISE_KINDS[kind], _EMPTY if out is None else out,
                            weight is not None, pos_weight is not None, out is not None,
                            float(param)))


@numba.njit(cache=True, nogil=True)
def _logsumexp(x, i, j):
    m = -math.inf
    for k in range(x.shape[1]):  # NaN wins
        v = np.float64(x[i, k, j])
        if v > m or v != v:
            m = v
    total = 0.0
    for k in range(x.shape[1]):
        total += math.exp(np.float64(x[i, k, j]) - m)
    return m + math.log(total)


@numba.njit(cache=True, nogil=True)
def _normaliser(x, i, j, mode):
    """(L, sum_k x_k) for sample (i, j): log p_k = x_k - L (logits, log_probs); the sum is
    what probs renormalises by."""
    if mode == 0:
        return _logsumexp(x, i, j), 0.0
    total = 0.0
    if mode == 2:
        for k in range(x.shape[1]):
            total += np.float64(x[i, k, j])
    return 0.0, total


@numba.njit(cache=True, nogil=True)
def _log_prob(v, mode, lse, total):
    if mode == 2:
        q = v / total
        if q != q or not math.isfinite(total):  # as Keras' clip: NaN stays NaN
            return math.nan
        return math.log(min(max(q, KERAS_LO), KERAS_HI))
    return v - lse


@numba.njit(cache=True, nogil=True)
def _class(x, target, w, has_w, ignore_index, mode, smoothing, out, has_out):
    outer, c, inner = x.shape
    nll_total = 0.0
    smooth_total = 0.0
    weight_total = 0.0
    for i in range(outer):
        for j in range(inner):
            label = target[i, j]
            if label == ignore_index:
                if has_out:
                    out[i, j] = 0.0
                continue
            lse, total = _normaliser(x, i, j, mode)
            wt = np.float64(w[label]) if has_w else 1.0
            nll = -wt * _log_prob(np.float64(x[i, label, j]), mode, lse, total)
            sm = 0.0
            if smoothing > 0:
                for k in range(c):
                    wk = np.float64(w[k]) if has_w else 1.0
                    sm -= wk * _log_prob(np.float64(x[i, k, j]), mode, lse, total)
            nll_total += nll
            smooth_total += sm
            weight_total += wt
            if has_out:
                out[i, j] = (1.0 - smoothing) * nll + smoothing / c * sm
    return nll_total, smooth_total, weight_total


def class_loss(x, target, weight, ignore_index, mode, smoothing, out):
    """See fastdl._reference.losses.class_loss."""
    if x.size == 0 or target.size == 0:
        if out is not None:
            out[...] = 0
        return 0.0, 0.0, 0.0
    result = _class(x, target, _EMPTY if weight is None else weight, weight is not None,
                    int(ignore_index), MODES[mode], float(smoothing),
                    _EMPTY.reshape(0, 0) if out is None else out, out is not None)
    return tuple(float(r) for r in result)


@numba.njit(cache=True, nogil=True)
def _soft(x, target, w, has_w, mode, smoothing, out, has_out):
    outer, c, inner = x.shape
    keep = 1.0 - smoothing
    spread = smoothing / c
    grand = 0.0
    for i in range(outer):
        for j in range(inner):
            lse, total = _normaliser(x, i, j, mode)
            s = 0.0
            for k in range(c):
                tk = np.float64(target[i, k, j]) * keep + spread
                wk = np.float64(w[k]) if has_w else 1.0
                s -= wk * tk * _log_prob(np.float64(x[i, k, j]), mode, lse, total)
            if has_out:
                out[i, j] = s
            grand += s
    return grand


def soft_target_loss(x, target, weight, mode, smoothing, out):
    """See fastdl._reference.losses.soft_target_loss."""
    if x.size == 0:
        if out is not None:
            out[...] = 0
        return 0.0
    return float(_soft(x, target, _EMPTY if weight is None else weight, weight is not None,
                       MODES[mode], float(smoothing),
                       _EMPTY.reshape(0, 0) if out is None else out, out is not None))


# ---------------------------------------------------------------- gradients
# (contracts: the *_backward functions of fastdl/_reference/losses.py)


@numba.njit(cache=True, nogil=True)
def _pointwise_grad_one(kind, xi, ti, p, param):
    """d loss / d x of one element (contract: fastdl._reference.losses.
    pointwise_loss_backward)."""
    d = xi - ti
    if kind == 0:
        return 2.0 * d
    if kind == 1:
        return 1.0 if d > 0 else (-1.0 if d < 0 else d)
    if kind == 2:
        return d / max(xi * (1.0 - xi), 1e-12)
    if kind == 3:
        e = math.exp(-abs(xi))
        s = e / (1.0 + e) if xi >= 0 else 1.0 / (1.0 + e)
        return (1.0 - ti) - (1.0 + (p - 1.0) * ti) * s
    if kind == 4:
        return param if d > param else (-param if d < -param else d)
    if kind == 5:
        q = d / param
        return 1.0 if q > 1.0 else (-1.0 if q < -1.0 else q)
    if kind == 6:
        m = 1.0 - ti * xi
        if m != m:
            return m
        return -ti if m > 0 else (-0.5 * ti if m == 0 else 0.0)
    if kind == 7:
        m = 1.0 - ti * xi
        return -2.0 * ti * (m if m != m or m > 0 else 0.0)
    if kind == 8:
        if xi != xi:
            return xi
        return -_keras_clip(ti) / xi if KERAS_LO <= xi <= 1.0 else 0.0
    if kind == 9:
        return -ti
    return -math.exp(ti)


@numba.njit(cache=True, nogil=True)
def _pointwise_grad(x, t, w, pw, kind, scale, out, has_w, has_pw, param):
    for i in range(x.size):
        p = np.float64(pw[i]) if has_pw else 1.0
        v = _pointwise_grad_one(kind, np.float64(x[i]), np.float64(t[i]), p, param)
        if has_w:
            v *= np.float64(w[i])
        out[i] = scale * v


def pointwise_loss_backward(x, t, weight, pos_weight, kind, scale, out, param=1.0):
    _pointwise_grad(x, t, _EMPTY if weight is None else weight,
                    _EMPTY if pos_weight is None else pos_weight, POINTWISE_KINDS[kind],
                    float(scale), out, weight is not None, pos_weight is not None,
                    float(param))


@numba.njit(cache=True, nogil=True)
def _coefficient_grad(x, i, j, a, mode, g, out):
    """One sample's gradient of -sum_k a_k log p_k times g, into out[i, :, j]."""
    c = x.shape[1]
    if mode == 0:  # logits: g (softmax(x) A - a)
        m = -math.inf
        for k in range(c):
            m = max(m, np.float64(x[i, k, j]))
        s = 0.0
        for k in range(c):
            s += math.exp(x[i, k, j] - m)
        total_a = 0.0
        for k in range(c):
            total_a += a[k]
        for k in range(c):
            out[i, k, j] = g * (math.exp(x[i, k, j] - m) / s * total_a - a[k])
    elif mode == 1:
        for k in range(c):
            out[i, k, j] = -g * a[k]
    else:  # Keras probabilities, clipped
        total = 0.0
        for k in range(c):
            total += x[i, k, j]
        if not math.isfinite(total):
            for k in range(c):
                out[i, k, j] = math.nan
            return
        inside = 0.0
        for k in range(c):
            q = x[i, k, j] / total
            if KERAS_LO <= q <= KERAS_HI:
                inside += a[k]
        for k in range(c):
            q = x[i, k, j] / total
            gk = -a[k] / q if KERAS_LO <= q <= KERAS_HI else 0.0
            out[i, k, j] = g * (gk + inside) / total


@numba.njit(cache=True, nogil=True)
def _class_grad(x, target, w, has_w, ignore_index, mode, smoothing, scale, sw, has_sw, out):
    outer, c, inner = x.shape
    a = np.empty(c)
    for i in range(outer):
        for j in range(inner):
            label = target[i, j]
            if label == ignore_index:
                out[i, :, j] = 0.0
                continue
            for k in range(c):
                a[k] = smoothing / c * (np.float64(w[k]) if has_w else 1.0)
            a[label] += (1.0 - smoothing) * (np.float64(w[label]) if has_w else 1.0)
            g = scale * (np.float64(sw[i, j]) if has_sw else 1.0)
            _coefficient_grad(x, i, j, a, mode, g, out)


def class_loss_backward(x, target, weight, ignore_index, mode, smoothing, scale,
                        sample_weight, out):
    if x.size == 0:
        return
    _class_grad(x, target, _EMPTY if weight is None else weight, weight is not None,
                ignore_index, MODES[mode], float(smoothing), float(scale),
                _EMPTY_2D if sample_weight is None else sample_weight,
                sample_weight is not None, out)


@numba.njit(cache=True, nogil=True)
def _soft_grad(x, target, w, has_w, mode, smoothing, scale, sw, has_sw, out):
    outer, c, inner = x.shape
    a = np.empty(c)
    for i in range(outer):
        for j in range(inner):
            for k in range(c):
                a[k] = ((np.float64(w[k]) if has_w else 1.0) *
                        (target[i, k, j] * (1.0 - smoothing) + smoothing / c))
            g = scale * (np.float64(sw[i, j]) if has_sw else 1.0)
            _coefficient_grad(x, i, j, a, mode, g, out)


def soft_target_loss_backward(x, target, weight, mode, smoothing, scale, sample_weight, out):
    if x.size == 0:
        return
    _soft_grad(x, target, _EMPTY if weight is None else weight, weight is not None,
               MODES[mode], float(smoothing), float(scale),
               _EMPTY_2D if sample_weight is None else sample_weight,
               sample_weight is not None, out)


_EMPTY_2D = np.zeros((0, 0), np.float32)
