# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""fastdl._losses: loss kernels as typed loops over buffers (the contract is the one of
fastdl/_reference/losses.py, the NumPy oracle).

Cython because a loss is a typed loop over buffers (DESIGN.md section 1). Every loop runs
without the GIL, reads float32, computes and accumulates in double (a float32 running sum
over 10^6 terms loses ~3 digits). Arguments were validated by fastdl.ops.losses: shapes,
class indices (in [0, C) or == ignore_index) and modes are trusted here.
"""
import numpy as np

from libc.math cimport exp, fabs, log, log1p, fmax, fmin, INFINITY

# Keras clips probabilities to [epsilon, 1 - epsilon] in float32 (keras.backend.epsilon()
# = 1e-7): the bounds are those float32 values, widened to double.
cdef double KERAS_LO = <double><float>1e-7
cdef double KERAS_HI = <double><float>(1.0 - 1e-7)

# Pointwise kinds (see POINTWISE_KINDS) and class-loss modes (see MODES).
cdef enum:
    MSE = 0
    L1 = 1
    BCE = 2
    BCE_LOGITS = 3
    LOGITS = 0
    LOG_PROBS = 1
    PROBS = 2

POINTWISE_KINDS = {"mse": MSE, "l1": L1, "bce": BCE, "bce_logits": BCE_LOGITS}
MODES = {"logits": LOGITS, "log_probs": LOG_PROBS, "probs": PROBS}


cdef inline double softplus_neg(double x) noexcept nogil:
    """log(1 + exp(-x)) without overflow: max(-x, 0) + log1p(exp(-|x|))."""
    return fmax(-x, 0.0) + log1p(exp(-fabs(x)))


cdef inline double pointwise_one(int kind, double x, double t, double pw) noexcept nogil:
    cdef double d
    if kind == MSE:
        d = x - t
        return d * d
    if kind == L1:
        return fabs(x - t)
    if kind == BCE:
        # torch clamps each log at -100, so p = 0 or 1 gives a finite loss.
        return -(t * fmax(log(x), -100.0) + (1.0 - t) * fmax(log1p(-x), -100.0))
    # BCE with logits, torch's stable form: (1 - t) x + (1 + (pw - 1) t) softplus(-x).
    return (1.0 - t) * x + (1.0 + (pw - 1.0) * t) * softplus_neg(x)


def pointwise_loss(const float[::1] x, const float[::1] t, weight, pos_weight, str kind,
                   out):
    """Per-element loss of `kind` (mse, l1, bce, bce_logits) over flat float32 x and t of
    one size, times weight[i] if given; pos_weight[i] (bce_logits) if given. Writes the
    losses into `out` (float32, same size) if it is not None; returns their sum (double)."""
    cdef Py_ssize_t n = x.shape[0], i
    cdef int k = POINTWISE_KINDS[kind]
    cdef const float* w = NULL
    cdef const float* pw = NULL
    cdef float* o = NULL
    cdef const float[::1] wv, pwv
    cdef float[::1] ov
    if weight is not None:
        wv = weight
        w = &wv[0] if n else NULL
    if pos_weight is not None:
        pwv = pos_weight
        pw = &pwv[0] if n else NULL
    if out is not None:
        ov = out
        o = &ov[0] if n else NULL
    cdef double total = 0.0, value
    with nogil:
        for i in range(n):
            value = pointwise_one(k, x[i], t[i], pw[i] if pw != NULL else 1.0)
            if w != NULL:
                value = value * w[i]
            if o != NULL:
                o[i] = <float>value
            total += value
    return total


cdef inline double log_normaliser(int mode, const float* x, Py_ssize_t c, Py_ssize_t stride,
                                  const float* w, double* weighted_sum,
                                  double* weight_sum) noexcept nogil:
    """For one sample (c values at stride `stride`): the value L with log p_k = f(x_k) - L,
    where f is the identity (logits, log_probs) or log(clip(.)) after renormalising (probs:
    L = 0 and the caller applies keras_log). Also sum_k w_k f(x_k) and sum_k w_k, which the
    label-smoothing term needs."""
    cdef Py_ssize_t k
    cdef double m = -INFINITY, total = 0.0, v, wk, ws = 0.0, wsum = 0.0
    if mode == LOGITS:
        for k in range(c):  # NaN wins, so a sample holding NaN gives NaN
            v = x[k * stride]
            if v > m or v != v:
                m = v
        for k in range(c):
            v = x[k * stride]
            total += exp(v - m)
            wk = w[k] if w != NULL else 1.0
            ws += wk * v
            wsum += wk
        weighted_sum[0] = ws
        weight_sum[0] = wsum
        return m + log(total)  # NaN where a logit is NaN or +inf, as in torch
    if mode == PROBS:
        for k in range(c):
            total += x[k * stride]
        for k in range(c):
            wk = w[k] if w != NULL else 1.0
            ws += wk * keras_log(x[k * stride], total)
            wsum += wk
        weighted_sum[0] = ws
        weight_sum[0] = wsum
        return 0.0
    for k in range(c):  # LOG_PROBS
        wk = w[k] if w != NULL else 1.0
        ws += wk * x[k * stride]
        wsum += wk
    weighted_sum[0] = ws
    weight_sum[0] = wsum
    return 0.0


cdef inline double keras_log(double p, double total) noexcept nogil:
    """log of p / total clipped to Keras' [epsilon, 1 - epsilon]."""
    return log(fmin(fmax(p / total, KERAS_LO), KERAS_HI))


cdef inline double log_prob(int mode, double v, double lse, double total) noexcept nogil:
    if mode == PROBS:
        return keras_log(v, total)
    return v - lse


def class_loss(const float[:, :, ::1] x, const long long[:, ::1] target, weight,
               long long ignore_index, str mode, double smoothing, out):
    """Cross-entropy / NLL with class-index targets over x [outer, C, inner] (classes on
    axis 1) and target [outer, inner]. Per sample s (0 where target == ignore_index):
    nll_s = -w[t] log p[t], smooth_s = -sum_k w_k log p_k (only if smoothing > 0), with
    log p from `mode`: logits (log-softmax), log_probs (x itself), probs (Keras: x / sum,
    clipped, log). Writes (1 - smoothing) nll_s + smoothing / C smooth_s into `out`
    [outer, inner] float32 if it is not None. Returns (sum nll_s, sum smooth_s,
    sum of w[t] over the samples not ignored)."""
    cdef Py_ssize_t outer = x.shape[0], c = x.shape[1], inner = x.shape[2]
    cdef int m = MODES[mode]
    cdef const float* w = NULL
    cdef const float[::1] wv
    cdef float[:, ::1] ov
    cdef float* o = NULL
    if weight is not None:
        wv = weight
        w = &wv[0]
    if out is not None and outer * inner:
        ov = out
        o = &ov[0, 0]
    cdef bint smooth = smoothing > 0.0
    cdef double nll_total = 0.0, smooth_total = 0.0, weight_total = 0.0
    cdef double lse, ws, wsum, total, nll, sm, wt
    cdef Py_ssize_t i, j, k
    cdef long long label
    cdef const float* row
    if outer * inner * c == 0:
        if out is not None:
            out[...] = 0
        return 0.0, 0.0, 0.0
    with nogil:
        for i in range(outer):
            for j in range(inner):
                label = target[i, j]
                if label == ignore_index:
                    if o != NULL:
                        o[i * inner + j] = 0.0
                    continue
                row = &x[i, 0, j]
                wt = w[label] if w != NULL else 1.0
                total = 0.0
                if m == PROBS:
                    for k in range(c):
                        total += row[k * inner]
                if smooth:
                    lse = log_normaliser(m, row, c, inner, w, &ws, &wsum)
                    # sum_k w_k log p_k = sum_k w_k f(x_k) - L sum_k w_k
                    sm = -(ws - lse * wsum)
                elif m == LOGITS:
                    lse = logsumexp(row, c, inner)
                    sm = 0.0
                else:
                    lse = 0.0
                    sm = 0.0
                nll = -wt * log_prob(m, row[label * inner], lse, total)
                nll_total += nll
                smooth_total += sm
                weight_total += wt
                if o != NULL:
                    o[i * inner + j] = <float>((1.0 - smoothing) * nll + smoothing / c * sm)
    return nll_total, smooth_total, weight_total


cdef inline double logsumexp(const float* x, Py_ssize_t c, Py_ssize_t stride) noexcept nogil:
    """log(sum_k exp(x_k)) as m + log(sum exp(x_k - m)), m = max (NaN if any x_k is NaN or
    +inf, as torch; -inf if every x_k is -inf... which gives NaN log-probs, as torch)."""
    cdef Py_ssize_t k
    cdef double m = -INFINITY, total = 0.0, v
    for k in range(c):
        v = x[k * stride]
        if v > m or v != v:
            m = v
    for k in range(c):
        total += exp(x[k * stride] - m)
    return m + log(total)


def soft_target_loss(const float[:, :, ::1] x, const float[:, :, ::1] target, weight,
                     str mode, double smoothing, out):
    """Cross-entropy with probability targets over x and target [outer, C, inner]: per
    sample -sum_k w_k t'_k log p_k with t' = t (1 - smoothing) + smoothing / C and log p
    from `mode` (logits or probs, as class_loss). Writes it into `out` [outer, inner]
    float32 if it is not None; returns the sum."""
    cdef Py_ssize_t outer = x.shape[0], c = x.shape[1], inner = x.shape[2]
    cdef int m = MODES[mode]
    cdef const float* w = NULL
    cdef const float[::1] wv
    cdef float[:, ::1] ov
    cdef float* o = NULL
    if weight is not None:
        wv = weight
        w = &wv[0]
    if out is not None and outer * inner:
        ov = out
        o = &ov[0, 0]
    if outer * inner * c == 0:
        if out is not None:
            out[...] = 0
        return 0.0
    cdef double grand = 0.0, lse, total, s, tk, wk
    cdef double keep = 1.0 - smoothing, spread = smoothing / c
    cdef Py_ssize_t i, j, k
    cdef const float* row
    cdef const float* trow
    with nogil:
        for i in range(outer):
            for j in range(inner):
                row = &x[i, 0, j]
                trow = &target[i, 0, j]
                total = 0.0
                lse = 0.0
                if m == PROBS:
                    for k in range(c):
                        total += row[k * inner]
                else:
                    lse = logsumexp(row, c, inner)
                s = 0.0
                for k in range(c):
                    tk = trow[k * inner] * keep + spread
                    wk = w[k] if w != NULL else 1.0
                    s -= wk * tk * log_prob(m, row[k * inner], lse, total)
                if o != NULL:
                    o[i * inner + j] = <float>s
                grand += s
    return grand
