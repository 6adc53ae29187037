"""Reference batch normalisation pieces (float64 inside), the contract of the backends:

batch_norm_apply(x [N, C, S], scale [C], shift [C], activation, alpha)
    -> act(x * scale[c] + shift[c]) as float32 [N, C, S]
batch_norm_statistics(x [N, C, S]) -> (mean [C], biased variance [C]) as float64
"""
import numpy as np

from .activation import activate


def batch_norm_apply(x, scale, shift, activation, alpha):
    y = x.astype(np.float64) * scale[:, None] + shift[:, None]
    return activate(y, activation, alpha)


def batch_norm_statistics(x):
    x64 = x.astype(np.float64)
    if x64.shape[0] * x64.shape[2] == 0:
        return np.zeros(x.shape[1]), np.zeros(x.shape[1])
    return x64.mean(axis=(0, 2)), x64.var(axis=(0, 2))
