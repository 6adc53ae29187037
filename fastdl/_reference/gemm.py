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


def linear_backward(dy, x, w, has_bias, needs_dx, kn=False):
    """The gradients of y = x @ w.T + b from dy: dy [M, N], x [M, K], w [N, K] ->
    (dx [M, K] or None when not needs_dx, dw [N, K], db [N] or None when not has_bias),
    float32 computed in float64. With kn, w is [K, N] (y = x @ w + b) and so is dw."""
    dy64 = dy.astype(np.float64)
    w64 = w.astype(np.float64).T if kn else w.astype(np.float64)
    dx = (dy64 @ w64).astype(np.float32) if needs_dx else None
    dw = (dy64.T @ x.astype(np.float64)).astype(np.float32)
    if kn:
        dw = np.ascontiguousarray(dw.T)
    db = dy64.sum(axis=0).astype(np.float32) if has_bias else None
    return dx, dw, db
