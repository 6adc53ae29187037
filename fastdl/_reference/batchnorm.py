"""Reference batch normalisation pieces (float64 inside), the contract of the backends:

batch_norm_apply(x [N, C, S], scale [C], shift [C], activation, alpha)
    -> act(x * scale[c] + shift[c]) as float32 [N, C, S]
batch_norm_inference(x [N, C, S], mean [C], var [C], gamma [C] or None, beta [C] or None,
                     eps, activation, alpha)
    -> batch_norm_apply with scale = gamma / sqrt(var + eps), shift = beta - mean * scale
       (1 and 0 for a missing gamma / beta), computed in float64
batch_norm_statistics(x [N, C, S]) -> (mean [C], biased variance [C]) as float64
batch_norm_backward(dy [N, C, S], x [N, C, S], mean [C], inv_std [C], gamma [C] or None,
                    training, needs_dx, needs_params)
    -> (dx [N, C, S] or None, dgamma [C] or None, dbeta [C] or None), float32: the gradients
       of y = xhat * gamma + beta, xhat = (x - mean[c]) * inv_std[c] (gamma None: 1), with
       m = N * S, dbeta = sum(dy), dgamma = sum(dy * xhat) per channel and
         training (mean, inv_std the batch's own, biased variance):
             dx = gamma * inv_std / m * (m * dy - dbeta - xhat * dgamma)
         inference (mean, inv_std fixed):  dx = dy * gamma * inv_std
       dx is None unless needs_dx, dgamma and dbeta are None unless needs_params.
"""
import numpy as np

from fastdl._numerics import inference_scale_shift

from .activation import activate


def batch_norm_apply(x, scale, shift, activation, alpha):
    y = x.astype(np.float64) * scale[:, None] + shift[:, None]
    return activate(y, activation, alpha)


def batch_norm_inference(x, mean, var, gamma, beta, eps, activation, alpha):
    scale, shift = inference_scale_shift(mean, var, gamma, beta, eps)
    return batch_norm_apply(x, scale, shift, activation, alpha)


def batch_norm_statistics(x):
    x64 = x.astype(np.float64)
    if x64.shape[0] * x64.shape[2] == 0:
        return np.zeros(x.shape[1]), np.zeros(x.shape[1])
    return x64.mean(axis=(0, 2)), x64.var(axis=(0, 2))


def batch_norm_backward(dy, x, mean, inv_std, gamma, training, needs_dx, needs_params):
    dy64, x64 = dy.astype(np.float64), x.astype(np.float64)
    s = inv_std.astype(np.float64)[:, None]
    xhat = (x64 - mean.astype(np.float64)[:, None]) * s
    dbeta, dgamma = dy64.sum(axis=(0, 2)), (dy64 * xhat).sum(axis=(0, 2))
    dx = None
    if needs_dx:
        k = s if gamma is None else gamma.astype(np.float64)[:, None] * s
        m = x.shape[0] * x.shape[2]
        if training and m:
            dx = k / m * (m * dy64 - dbeta[:, None] - xhat * dgamma[:, None])
        else:
            dx = dy64 * k
        dx = dx.astype(np.float32)
    if not needs_params:
        return dx, None, None
    return dx, dgamma.astype(np.float32), dbeta.astype(np.float32)
