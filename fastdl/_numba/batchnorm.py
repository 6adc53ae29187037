"""Numba batch normalisation pieces and the gradient; contract in
fastdl/_reference/batchnorm.py."""
import numba
import numpy as np

from fastdl._numerics import inference_scale_shift

from .activation import activate


@numba.njit(cache=True, nogil=True)
def _affine(x, scale, shift, y):
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            s, t = scale[c], shift[c]
            for i in range(x.shape[2]):
                y[n, c, i] = x[n, c, i] * s + t


@numba.njit(cache=True, nogil=True)
def _statistics(x, mean, variance):
    count = x.shape[0] * x.shape[2]
    if count == 0:
        return
    for c in range(x.shape[1]):
        total = 0.0
        for n in range(x.shape[0]):
            for i in range(x.shape[2]):
                total += x[n, c, i]
        m = total / count
        sq = 0.0
        for n in range(x.shape[0]):
            for i in range(x.shape[2]):
                d = x[n, c, i] - m
                sq += d * d
        mean[c] = m
        variance[c] = sq / count


@numba.njit(cache=True, nogil=True)
def _backward_sums(dy, x, mean, inv_std, dgamma, dbeta):
    """dbeta[c] = sum dy, dgamma[c] = sum dy * xhat, accumulated in float64."""
    count = x.shape[0] * x.shape[2]
    for c in range(x.shape[1]):
        m, s = np.float64(mean[c]), np.float64(inv_std[c])
        sdy = 0.0
        sdyx = 0.0
        for n in range(x.shape[0]):
            for i in range(x.shape[2]):
                d = np.float64(dy[n, c, i])
                sdy += d
                sdyx += d * (x[n, c, i] - m)
        dbeta[c] = sdy
        dgamma[c] = sdyx * s if count > 0 else 0.0  # an empty sum, whatever inv_std is


@numba.njit(cache=True, nogil=True)
def _backward_dx(dy, x, mean, a, p, q, dx):
    """dx = a[c] * dy + p[c] * (x - mean[c]) + q[c]."""
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            m, ac, pc, qc = np.float64(mean[c]), a[c], p[c], q[c]
            for i in range(x.shape[2]):
                dx[n, c, i] = ac * dy[n, c, i] + pc * (x[n, c, i] - m) + qc


def batch_norm_backward(dy, x, mean, inv_std, gamma, training, needs_dx, needs_params):
    channels, m = x.shape[1], x.shape[0] * x.shape[2]
    dgamma, dbeta = np.zeros(channels), np.zeros(channels)
    if training or needs_params:
        _backward_sums(dy, x, mean, inv_std, dgamma, dbeta)
    dx = None
    if needs_dx:
        s = inv_std.astype(np.float64)
        k = s if gamma is None else gamma * s
        if training and m:
            p, q = -k * s * dgamma / m, -k * dbeta / m
        else:
            p, q = np.zeros(channels), np.zeros(channels)
        dx = np.empty_like(x)
        _backward_dx(dy, x, mean, k, p, q, dx)
    if not needs_params:
        return dx, None, None
    return dx, dgamma.astype(np.float32), dbeta.astype(np.float32)


def batch_norm_apply(x, scale, shift, activation, alpha):
    y = np.empty_like(x)
    _affine(x, scale.astype(np.float32), shift.astype(np.float32), y)
    return activate(y, activation, alpha)


def batch_norm_inference(x, mean, var, gamma, beta, eps, activation, alpha):
    scale, shift = inference_scale_shift(mean, var, gamma, beta, eps)
    return batch_norm_apply(x, scale, shift, activation, alpha)


def batch_norm_statistics(x):
    mean, variance = np.zeros(x.shape[1]), np.zeros(x.shape[1])
    _statistics(x, mean, variance)
    return mean, variance
