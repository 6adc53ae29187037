"""Reference dense products, computed in float64 and returned as float32."""
import numpy as np

from .activation import activate


def linear(x, w, b, activation, alpha):
    """act(x @ w.T + b): x [M, K], w [N, K], b [N] or None -> y [M, N]."""
    y = x.astype(np.float64) @ w.astype(np.float64).T
    if b is not None:
        y += b
    return activate(y, activation, alpha)


def matmul(a, b):
    """a [M, K] @ b [K, N] -> [M, N]: linear with w = b.T and no bias or activation."""
    return linear(a, b.T, None, None, 0.0)
