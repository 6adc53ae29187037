"""Numba LSTM/GRU/RNN layer: the input projection of every step as one matmul_accumulate,
then one jitted loop over the steps (float32, like the native kernels); and the training
pair rnn_layer_train / rnn_layer_backward (contracts: fastdl._reference.rnn), the backward
step loop jitted and the weight gradients as one product over all steps."""
import math

import numba
import numpy as np

from .gemm import column_sums, matmul_accumulate

# Kind codes of the jitted loops, and gates / saved values per unit (fastdl._reference.rnn).
_CODE = {"lstm": 0, "gru": 1, "gru_reset_before": 2, "rnn_tanh": 3, "rnn_relu": 4}
_GATES = (4, 3, 3, 1, 1)
_SAVED = (6, 4, 4, 0, 0)


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


def _projection(x, w_ih, b_ih):
    """x [T, B, I] @ w_ih.T + b_ih as [T, B, G*H] float32."""
    steps, batch, inputs = x.shape
    width = w_ih.shape[0]
    xp = np.zeros((steps * batch, width), dtype=np.float32)
    if b_ih is not None:
        xp[:] = b_ih
    matmul_accumulate(x.reshape(steps * batch, inputs), np.ascontiguousarray(w_ih.T), xp)
    return xp.reshape(steps, batch, width)


def rnn_layer(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse):
    """Same contract as fastdl._reference.rnn_layer."""
    lstm = kind == "lstm"
    steps, batch, _ = x.shape
    hidden = w_hh.shape[1]
    width = w_hh.shape[0]
    xp = _projection(x, w_ih, b_ih)
    h = np.array(h0, dtype=np.float32, order="C")
    c = np.array(c0, dtype=np.float32, order="C") if lstm else np.zeros((0, 0), np.float32)
    bh = np.zeros(width, np.float32) if b_hh is None else b_hh
    y = np.empty((steps, batch, hidden), dtype=np.float32)
    _recurrence(lstm, xp, h, c, np.ascontiguousarray(w_hh.T), bh, reverse, y)
    return y, h, c if lstm else None


@numba.njit(cache=True, nogil=True)
def _train_recurrence(code, xp, h, c, w_hh_t, b_hh, reverse, y, saved):
    """rnn_layer_train's step loop: h / c [B, H] updated in place, y [T, B, H] and saved
    [T, B, S*H] written (layout: fastdl._reference.rnn)."""
    steps, batch = xp.shape[0], xp.shape[1]
    H = h.shape[1]
    # The GRU before its reset multiplies W_hn by r * h: only r, z's columns come first.
    cols = 2 * H if code == 2 else w_hh_t.shape[1]
    hh = np.empty((batch, cols), dtype=np.float32)
    rh = np.empty((batch, H), dtype=np.float32)
    hn = np.empty((batch, H), dtype=np.float32)
    for s in range(steps):
        t = steps - 1 - s if reverse else s
        for b in range(batch):
            hh[b, :] = b_hh[:cols]
        matmul_accumulate(h, w_hh_t[:, :cols], hh)
        if code == 2:
            for b in range(batch):
                for j in range(H):
                    r = _sigmoid(xp[t, b, j] + hh[b, j])
                    rh[b, j] = r * h[b, j]
                    hn[b, j] = b_hh[2 * H + j]
            matmul_accumulate(rh, w_hh_t[:, 2 * H:], hn)
        for b in range(batch):
            for j in range(H):
                if code == 0:
                    i = _sigmoid(xp[t, b, j] + hh[b, j])
                    f = _sigmoid(xp[t, b, H + j] + hh[b, H + j])
                    g = math.tanh(xp[t, b, 2 * H + j] + hh[b, 2 * H + j])
                    o = _sigmoid(xp[t, b, 3 * H + j] + hh[b, 3 * H + j])
                    cn = f * c[b, j] + i * g
                    tc = math.tanh(cn)
                    c[b, j] = cn
                    h[b, j] = o * tc
                    saved[t, b, j] = i
                    saved[t, b, H + j] = f
                    saved[t, b, 2 * H + j] = g
                    saved[t, b, 3 * H + j] = o
                    saved[t, b, 4 * H + j] = cn
                    saved[t, b, 5 * H + j] = tc
                elif code <= 2:
                    r = _sigmoid(xp[t, b, j] + hh[b, j])
                    z = _sigmoid(xp[t, b, H + j] + hh[b, H + j])
                    if code == 1:
                        last = hh[b, 2 * H + j]
                        n = math.tanh(xp[t, b, 2 * H + j] + r * last)
                    else:
                        last = rh[b, j]
                        n = math.tanh(xp[t, b, 2 * H + j] + hn[b, j])
                    h[b, j] = (1.0 - z) * n + z * h[b, j]
                    saved[t, b, j] = r
                    saved[t, b, H + j] = z
                    saved[t, b, 2 * H + j] = n
                    saved[t, b, 3 * H + j] = last
                else:
                    pre = xp[t, b, j] + hh[b, j]
                    h[b, j] = math.tanh(pre) if code == 3 else max(pre, np.float32(0.0))
                y[t, b, j] = h[b, j]


def rnn_layer_train(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse):
    """Same contract as fastdl._reference.rnn_layer_train (and its saved layout)."""
    code = _CODE[kind]
    steps, batch, _ = x.shape
    hidden, width = w_hh.shape[1], w_hh.shape[0]
    xp = _projection(x, w_ih, b_ih)
    h = np.array(h0, dtype=np.float32, order="C")
    c = np.array(c0, dtype=np.float32, order="C") if code == 0 else np.zeros((0, 0), np.float32)
    bh = np.zeros(width, np.float32) if b_hh is None else b_hh
    y = np.empty((steps, batch, hidden), dtype=np.float32)
    saved = np.empty((steps, batch, _SAVED[code] * hidden), dtype=np.float32)
    _train_recurrence(code, xp, h, c, np.ascontiguousarray(w_hh.T), bh, reverse, y, saved)
    return y, h, c if code == 0 else None, saved


@numba.njit(cache=True, nogil=True)
def _backward_recurrence(code, dy, has_dy, dh, dc, y, saved, h0, c0, w_hh, reverse, dg, dgh,
                         h_prev_all):
    """The backward step loop: dh / dc [B, H] (dh_n / dc_n in, dh0 / dc0 out) updated in
    place; writes dg, dgh [T, B, G*H] (the pre-activation gates' gradients, input and
    recurrent side) and h_prev_all [T, B, H] (h_{t-1} of each step)."""
    steps, batch = y.shape[0], y.shape[1]
    H = dh.shape[1]
    dht = np.empty((batch, H), dtype=np.float32)
    drh = np.empty((batch, H), dtype=np.float32)
    for s in range(steps - 1, -1, -1):
        t = steps - 1 - s if reverse else s
        tp = t + 1 if reverse else t - 1  # the previous step's time index
        for b in range(batch):
            for j in range(H):
                hp = h0[b, j] if s == 0 else y[tp, b, j]
                h_prev_all[t, b, j] = hp
                dht[b, j] = dh[b, j] + (dy[t, b, j] if has_dy else np.float32(0.0))
        if code == 2:  # d(r h) = dn_pre W_hn first: dr needs it
            for b in range(batch):
                for j in range(H):
                    z, n = saved[t, b, H + j], saved[t, b, 2 * H + j]
                    dg[t, b, 2 * H + j] = dht[b, j] * (1 - z) * (1 - n * n)
                    drh[b, j] = 0.0
            matmul_accumulate(dg[t, :, 2 * H:], w_hh[2 * H:], drh)
        for b in range(batch):
            for j in range(H):
                hp = h_prev_all[t, b, j]
                if code == 0:
                    i, f = saved[t, b, j], saved[t, b, H + j]
                    g, o = saved[t, b, 2 * H + j], saved[t, b, 3 * H + j]
                    tc = saved[t, b, 5 * H + j]
                    cp = c0[b, j] if s == 0 else saved[tp, b, 4 * H + j]
                    dct = dc[b, j] + dht[b, j] * o * (1 - tc * tc)
                    dg[t, b, j] = dct * g * i * (1 - i)
                    dg[t, b, H + j] = dct * cp * f * (1 - f)
                    dg[t, b, 2 * H + j] = dct * i * (1 - g * g)
                    dg[t, b, 3 * H + j] = dht[b, j] * tc * o * (1 - o)
                    dc[b, j] = dct * f
                    dh[b, j] = 0.0
                elif code <= 2:
                    r, z = saved[t, b, j], saved[t, b, H + j]
                    n, last = saved[t, b, 2 * H + j], saved[t, b, 3 * H + j]
                    dg[t, b, H + j] = dht[b, j] * (hp - n) * z * (1 - z)
                    if code == 1:
                        dn = dht[b, j] * (1 - z) * (1 - n * n)
                        dg[t, b, j] = dn * last * r * (1 - r)
                        dg[t, b, 2 * H + j] = dn
                        dh[b, j] = dht[b, j] * z
                    else:
                        dg[t, b, j] = drh[b, j] * hp * r * (1 - r)
                        dh[b, j] = dht[b, j] * z + drh[b, j] * r
                else:
                    ht = y[t, b, j]
                    if code == 3:
                        dg[t, b, j] = dht[b, j] * (1 - ht * ht)
                    else:
                        dg[t, b, j] = dht[b, j] if ht > 0 else np.float32(0.0)
                    dh[b, j] = 0.0
        dgh[t] = dg[t]
        if code == 1:
            for b in range(batch):
                for j in range(H):
                    dgh[t, b, 2 * H + j] = dg[t, b, 2 * H + j] * saved[t, b, j]
        if code == 2:
            matmul_accumulate(dgh[t, :, :2 * H], w_hh[:2 * H], dh)
        else:
            matmul_accumulate(dgh[t], w_hh, dh)


def rnn_layer_backward(kind, dy, dh_n, dc_n, x, y, saved, h0, c0, w_ih, w_hh, reverse):
    """Same contract as fastdl._reference.rnn_layer_backward."""
    code = _CODE[kind]
    steps, batch, inputs = x.shape
    hidden, width = w_hh.shape[1], w_hh.shape[0]
    dh = np.zeros((batch, hidden), np.float32) if dh_n is None else np.array(dh_n, np.float32)
    lstm = code == 0
    dc = (np.zeros((batch, hidden), np.float32) if dc_n is None else
          np.array(dc_n, np.float32)) if lstm else np.zeros((0, 0), np.float32)
    c0 = c0 if lstm else np.zeros((0, 0), np.float32)
    dg = np.zeros((steps, batch, width), np.float32)
    dgh = np.empty((steps, batch, width), np.float32)
    h_prev_all = np.empty((steps, batch, hidden), np.float32)
    has_dy = dy is not None
    _backward_recurrence(code, dy if has_dy else y, has_dy, dh, dc, y, saved, h0, c0, w_hh,
                         reverse, dg, dgh, h_prev_all)
    rows = steps * batch
    dg2, dgh2 = dg.reshape(rows, width), dgh.reshape(rows, width)
    dx = np.zeros((rows, inputs), np.float32)
    matmul_accumulate(dg2, w_ih, dx)
    dw_ih = np.zeros(w_ih.shape, np.float32)
    matmul_accumulate(np.ascontiguousarray(dg2.T), x.reshape(rows, inputs), dw_ih)
    dw_hh = np.zeros(w_hh.shape, np.float32)
    dgh_t = np.ascontiguousarray(dgh2.T)
    matmul_accumulate(dgh_t, h_prev_all.reshape(rows, hidden), dw_hh)
    if code == 2:  # W_hn multiplied r * h_{t-1} (saved)
        dw_hh[2 * hidden:] = 0.0
        rh = np.ascontiguousarray(saved.reshape(rows, 4 * hidden)[:, 3 * hidden:])
        matmul_accumulate(dgh_t[2 * hidden:], rh, dw_hh[2 * hidden:])
    return (dx.reshape(x.shape), dh, dc if lstm else None, dw_ih, dw_hh, column_sums(dg2),
            column_sums(dgh2))
