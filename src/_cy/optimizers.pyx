# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""fastdl._optimizers: the optimizers' update loops as typed loops over float32 buffers
(contract: fastdl/_reference/optimizers.py, the NumPy oracle).

Cython because an update is a typed loop over buffers (DESIGN.md section 1): one pass over
the weight and its slots, in place, without NumPy temporaries, with the GIL released. The
arithmetic is Keras 3's per element, in float32 operands with double intermediates.
Arguments were validated by fastdl.optimizers: every array float32, C-contiguous, of one
size.
"""
from libc.math cimport sqrt


def sgd_update(float[::1] w, const float[::1] g, velocity, double lr, double momentum,
               bint nesterov):
    """w -= lr g; with momentum: v = momentum v - lr g, w += v (nesterov: w += momentum v -
    lr g). velocity: float32 like w, or None without momentum."""
    cdef Py_ssize_t n = w.shape[0], i
    cdef float[::1] v
    cdef double vi
    if n == 0:
        return
    if velocity is None:
        with nogil:
            for i in range(n):
                w[i] = <float>(w[i] - lr * g[i])
        return
    v = velocity
    with nogil:
        for i in range(n):
            vi = momentum * v[i] - lr * g[i]
            v[i] = <float>vi
            if nesterov:
                w[i] = <float>(w[i] + (momentum * vi - lr * g[i]))
            else:
                w[i] = <float>(w[i] + vi)


def rmsprop_update(float[::1] w, const float[::1] g, float[::1] rms, momentum_slot,
                   average_slot, double lr, double rho, double momentum, double epsilon):
    """rms = rho rms + (1 - rho) g^2; centered (average_slot given): a = rho a + (1 - rho) g,
    d = rms - a^2 + eps, else d = rms + eps; step = lr g / sqrt(d); with momentum
    (momentum_slot given): m = momentum m + step, w -= m; else w -= step."""
    cdef Py_ssize_t n = w.shape[0], i
    cdef float[::1] m, a
    cdef bint has_m = momentum_slot is not None, centered = average_slot is not None
    cdef double r, d, step, gi, ai
    if n == 0:
        return
    if has_m:
        m = momentum_slot
    if centered:
        a = average_slot
    with nogil:
        for i in range(n):
            gi = g[i]
            r = rho * rms[i] + (1.0 - rho) * gi * gi
            rms[i] = <float>r
            if centered:
                ai = rho * a[i] + (1.0 - rho) * gi
                a[i] = <float>ai
                d = r - ai * ai + epsilon
            else:
                d = r + epsilon
            step = lr * gi / sqrt(d)
            if has_m:
                step = momentum * m[i] + step
                m[i] = <float>step
            w[i] = <float>(w[i] - step)


def adam_update(float[::1] w, const float[::1] g, float[::1] m, float[::1] v, vhat_slot,
                double lr, double beta_1, double beta_2, double epsilon, long long step,
                double weight_decay):
    """Keras' Adam at 1-based `step`: m += (g - m)(1 - b1), v += (g^2 - v)(1 - b2),
    amsgrad (vhat_slot given): vhat = max(vhat, v) used for v; w -= alpha m / (sqrt(v) +
    eps) with alpha = lr sqrt(1 - b2^step) / (1 - b1^step). weight_decay > 0 (AdamW):
    first w -= lr weight_decay w."""
    cdef Py_ssize_t n = w.shape[0], i
    cdef float[::1] vh
    cdef bint ams = vhat_slot is not None
    cdef double alpha = lr * sqrt(1.0 - beta_2 ** step) / (1.0 - beta_1 ** step)
    cdef double decay = lr * weight_decay, gi, mi, vi, wi
    if n == 0:
        return
    if ams:
        vh = vhat_slot
    with nogil:
        for i in range(n):
            gi = g[i]
            wi = w[i]
            if decay != 0.0:
                wi = <float>(wi - wi * decay)
            mi = m[i] + (gi - m[i]) * (1.0 - beta_1)
            vi = v[i] + (gi * gi - v[i]) * (1.0 - beta_2)
            m[i] = <float>mi
            v[i] = <float>vi
            if ams:
                if vh[i] > vi:
                    vi = vh[i]
                vh[i] = <float>vi
            w[i] = <float>(wi - alpha * mi / (sqrt(vi) + epsilon))


def adagrad_update(float[::1] w, const float[::1] g, float[::1] acc, double lr,
                   double epsilon):
    """acc += g^2; w -= lr g / sqrt(acc + eps)."""
    cdef Py_ssize_t n = w.shape[0], i
    cdef double a, gi
    if n == 0:
        return
    with nogil:
        for i in range(n):
            gi = g[i]
            a = acc[i] + gi * gi
            acc[i] = <float>a
            w[i] = <float>(w[i] - lr * gi / sqrt(a + epsilon))


def squared_norm(const float[::1] g):
    """sum g^2 in double, four partial sums."""
    cdef Py_ssize_t n = g.shape[0], i = 0
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    with nogil:
        while i + 4 <= n:
            s0 += <double>g[i] * g[i]
            s1 += <double>g[i + 1] * g[i + 1]
            s2 += <double>g[i + 2] * g[i + 2]
            s3 += <double>g[i + 3] * g[i + 3]
            i += 4
        while i < n:
            s0 += <double>g[i] * g[i]
            i += 1
    return (s0 + s1) + (s2 + s3)


def scale_clip(float[::1] g, double scale, double clip):
    """In place: g = clip(g * scale, -clip, clip) (clip <= 0: no clipping)."""
    cdef Py_ssize_t n = g.shape[0], i
    cdef double x
    with nogil:
        for i in range(n):
            x = g[i] * scale
            if clip > 0.0:
                if x > clip:
                    x = clip
                elif x < -clip:
                    x = -clip
            g[i] = <float>x
