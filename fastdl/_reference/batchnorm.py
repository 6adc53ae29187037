"""Reference batch normalisation pieces (float64 inside), the contract of the backends:

batch_norm_apply(x [N, C, S], scale [C], shift [C], activation, alpha)
    -> act(x * scale[c] + shift[c]) as float32 [N, C, S]
batch_norm_inference(x [N, C, S], mean [C], var [C], gamma [C] or None, beta [C] or None,
                     eps, activation, alpha)
    -> batch_norm_apply with scale = gamma / sqrt(var + eps), shift = beta - mean * scale
       (1 and 0 for a missing gamma / beta), computed in float64
batch_norm_statistics(x [N, C, S]) -> (mean [C], biased variance [C]) as float64
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
