# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""fastdl._optimizers: the optimizers' updates over float32 buffers, in place (contract:
fastdl/_reference/optimizers.py, the NumPy oracle).

The updates are the SIMD kernels of kernels/src/optimizer (fastdl/optimizer.h: one pass over
the weight and its slots, float32 arithmetic as Keras', split over the thread pool for
large weights), called through fastdl._C's kernel API with the GIL released; the gradient
norms and clipping are typed loops here. Arguments were validated by fastdl.optimizers:
every array float32, C-contiguous, of one size.
"""
from libc.math cimport sqrt

from kernel_api cimport FastdlKernelApi, OptimizerStep, fastdl_kernel_api

cdef const FastdlKernelApi* api = fastdl_kernel_api()


cdef OptimizerStep _step(double lr):
    cdef OptimizerStep s
    s.lr = <float>lr
    return s


cdef float* _slot(object array) except? NULL:
    """The data of an optional state array (None -> NULL)."""
    cdef float[::1] view
    if array is None:
        return NULL
    view = array
    return &view[0] if view.shape[0] else NULL


def sgd_update(float[::1] w, const float[::1] g, velocity, double lr, double momentum,
               bint nesterov):
    """w -= lr g; with momentum: v = momentum v - lr g, w += v (nesterov: w += momentum v -
    lr g). velocity: float32 like w, or None without momentum."""
    cdef Py_ssize_t n = w.shape[0]
    cdef OptimizerStep s = _step(lr)
    cdef float* v = _slot(velocity)
    s.momentum, s.nesterov = <float>momentum, nesterov
    if n == 0:
        return
    with nogil:
        api.sgd_update(n, &w[0], &g[0], v, s)


def rmsprop_update(float[::1] w, const float[::1] g, float[::1] rms, momentum_slot,
                   average_slot, double lr, double rho, double momentum, double epsilon):
    """rms = rho rms + (1 - rho) g^2; centered (average_slot given): a = rho a + (1 - rho) g,
    d = rms - a^2 + eps, else d = rms + eps; step = lr g / sqrt(d); with momentum
    (momentum_slot given): m = momentum m + step, w -= m; else w -= step."""
    cdef Py_ssize_t n = w.shape[0]
    cdef OptimizerStep s = _step(lr)
    cdef float* m = _slot(momentum_slot)
    cdef float* a = _slot(average_slot)
    s.rho, s.momentum, s.epsilon = <float>rho, <float>momentum, <float>epsilon
    if n == 0:
        return
    with nogil:
        api.rmsprop_update(n, &w[0], &g[0], &rms[0], m, a, s)


def adam_update(float[::1] w, const float[::1] g, float[::1] m, float[::1] v, vhat_slot,
                double lr, double beta_1, double beta_2, double epsilon, long long step,
                double weight_decay):
    """Keras' Adam at 1-based `step`: m += (g - m)(1 - b1), v += (g^2 - v)(1 - b2),
    amsgrad (vhat_slot given): vhat = max(vhat, v) used for v; w -= alpha m / (sqrt(v) +
    eps) with alpha = lr sqrt(1 - b2^step) / (1 - b1^step). weight_decay > 0 (AdamW):
    first w -= lr weight_decay w."""
    cdef Py_ssize_t n = w.shape[0]
    cdef OptimizerStep s = _step(lr * sqrt(1.0 - beta_2 ** step) / (1.0 - beta_1 ** step))
    cdef float* vh = _slot(vhat_slot)
    s.beta_1, s.beta_2, s.epsilon = <float>beta_1, <float>beta_2, <float>epsilon
    s.decay = <float>(lr * weight_decay)
    if n == 0:
        return
    with nogil:
        api.adam_update(n, &w[0], &g[0], &m[0], &v[0], vh, s)


def adagrad_update(float[::1] w, const float[::1] g, float[::1] acc, double lr,
                   double epsilon):
    """acc += g^2; w -= lr g / sqrt(acc + eps)."""
    cdef Py_ssize_t n = w.shape[0]
    cdef OptimizerStep s = _step(lr)
    s.epsilon = <float>epsilon
    if n == 0:
        return
    with nogil:
        api.adagrad_update(n, &w[0], &g[0], &acc[0], s)


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
