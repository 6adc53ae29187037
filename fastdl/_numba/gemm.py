"""Numba dense products built on one cache-blocked kernel, matmul_accumulate."""
import numba
import numpy as np

from .activation import activate

# A BLOCK_K x BLOCK_N panel of b (128 KiB) stays in L2 while every row of a streams by.
BLOCK_K = 128
BLOCK_N = 256


@numba.njit(cache=True, nogil=True)
def matmul_accumulate(a, b, c):
    """c += a @ b for float32 a [M, K], b [K, N], c [M, N] (any of them may be empty).

    The innermost loop runs along a row segment of b and of c: it reads contiguous memory
    and vectorises without reordering any sum."""
    m, k = a.shape
    n = b.shape[1]
    for n0 in range(0, n, BLOCK_N):
        n1 = min(n0 + BLOCK_N, n)
        for k0 in range(0, k, BLOCK_K):
            k1 = min(k0 + BLOCK_K, k)
            for i in range(m):
                c_segment = c[i, n0:n1]
                for p in range(k0, k1):
                    a_ip = a[i, p]
                    b_segment = b[p, n0:n1]
                    for j in range(c_segment.shape[0]):
                        c_segment[j] += a_ip * b_segment[j]


def linear(x, w, b, activation, alpha):
    """act(x @ w.T + b): x [M, K], w [N, K], b [N] or None -> y [M, N]."""
    y = np.zeros((x.shape[0], w.shape[0]), dtype=np.float32)
    if b is not None:
        y[:] = b
    matmul_accumulate(x, np.ascontiguousarray(w.T), y)
    return activate(y, activation, alpha)


def matmul(a, b):
    """a [M, K] @ b [K, N] -> [M, N]."""
    c = np.zeros((a.shape[0], b.shape[1]), dtype=np.float32)
    matmul_accumulate(a, b, c)
    return c


def linear_backward(dy, x, w, has_bias, needs_dx, kn=False):
    """(dx or None, dw, db or None) of y = x @ w.T + b from dy (w and dw [K, N] with kn;
    contract: fastdl._reference.linear_backward), on matmul_accumulate."""
    dx = None
    if needs_dx:
        dx = np.zeros(x.shape, dtype=np.float32)
        matmul_accumulate(dy, np.ascontiguousarray(w.T) if kn else w, dx)
    dw = np.zeros(w.shape, dtype=np.float32)
    if kn:
        matmul_accumulate(np.ascontiguousarray(x.T), dy, dw)
    else:
        matmul_accumulate(np.ascontiguousarray(dy.T), x, dw)
    db = column_sums(dy) if has_bias else None
    return dx, dw, db


@numba.njit(cache=True, nogil=True)
def column_sums(a):
    """Sums of a's columns in float32, in blocks of 256 rows (the native kernels' scheme)."""
    total = np.zeros(a.shape[1], dtype=np.float32)
    partial = np.empty(a.shape[1], dtype=np.float32)
    for r0 in range(0, a.shape[0], 256):
        partial[:] = 0.0
        for r in range(r0, min(r0 + 256, a.shape[0])):
            for j in range(a.shape[1]):
                partial[j] += a[r, j]
        total += partial
    return total
