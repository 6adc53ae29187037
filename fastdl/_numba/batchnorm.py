"""Numba batch normalisation pieces; contract in fastdl/_reference/batchnorm.py."""
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
