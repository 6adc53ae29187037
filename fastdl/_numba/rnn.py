"""Numba LSTM/GRU layer: the input projection of every step as one matmul_accumulate, then
one jitted loop over the steps (float32, like the native kernels)."""
import math

import numba
import numpy as np

from .gemm import matmul_accumulate


@numba.njit(cache=True, nogil=True)
def _sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))


@numba.njit(cache=True, nogil=True)
def _recurrence(lstm, xp, h, c, w_hh_t, b_hh, reverse, y):
    """xp [T, B, G*H] (input projection + b_ih), h / c [B, H] updated in place, w_hh_t
    [H, G*H], b_hh [G*H]; writes y [T, B, H]."""
    steps, batch = xp.shape[0], xp.shape[1]
    hidden = h.shape[1]
    hh = np.empty((batch, w_hh_t.shape[1]), dtype=np.float32)
    for s in range(steps):
        t = steps - 1 - s if reverse else s
        hh[:] = b_hh
        matmul_accumulate(h, w_hh_t, hh)
        for b in range(batch):
            for j in range(hidden):
                if lstm:
                    i = _sigmoid(xp[t, b, j] + hh[b, j])
                    f = _sigmoid(xp[t, b, hidden + j] + hh[b, hidden + j])
                    g = math.tanh(xp[t, b, 2 * hidden + j] + hh[b, 2 * hidden + j])
                    o = _sigmoid(xp[t, b, 3 * hidden + j] + hh[b, 3 * hidden + j])
                    c[b, j] = f * c[b, j] + i * g
                    h[b, j] = o * math.tanh(c[b, j])
                else:
                    r = _sigmoid(xp[t, b, j] + hh[b, j])
                    z = _sigmoid(xp[t, b, hidden + j] + hh[b, hidden + j])
                    n = math.tanh(xp[t, b, 2 * hidden + j] + r * hh[b, 2 * hidden + j])
                    h[b, j] = (1.0 - z) * n + z * h[b, j]
                y[t, b, j] = h[b, j]


def rnn_layer(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse):
    """Same contract as fastdl._reference.rnn_layer."""
    lstm = kind == "lstm"
    steps, batch, inputs = x.shape
    hidden = w_hh.shape[1]
    width = w_hh.shape[0]
    xp = np.zeros((steps * batch, width), dtype=np.float32)
    if b_ih is not None:
        xp[:] = b_ih
    matmul_accumulate(x.reshape(steps * batch, inputs), np.ascontiguousarray(w_ih.T), xp)
    h = np.array(h0, dtype=np.float32, order="C")
    c = np.array(c0, dtype=np.float32, order="C") if lstm else np.zeros((0, 0), np.float32)
    bh = np.zeros(width, np.float32) if b_hh is None else b_hh
    y = np.empty((steps, batch, hidden), dtype=np.float32)
    _recurrence(lstm, xp.reshape(steps, batch, width), h, c, np.ascontiguousarray(w_hh.T), bh,
                reverse, y)
    return y, h, c if lstm else None
