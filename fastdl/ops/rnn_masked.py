"""Recurrent layers under Keras' recurrent dropout, trained in NumPy (float64): the
kernels have no masked form. fastdl.ops.rnn_layer_train / rnn_layer_backward run these
when given masks = (input masks [G, B, I] or None, recurrent masks [G, B, H] or None):
gate k (torch's order) reads x * input_masks[k] and h_{t-1} * recurrent_masks[k], the
same masks at every step; the GRUs' update z h_{t-1} + (1 - z) n keeps the unmasked state,
as Keras' does. Kinds, weights and the saved layout are fastdl/_reference/rnn.py's, whose
recurrence this is with the masks added (tests: masks of ones give the oracle's results,
and other masks Keras' step).
"""
import numpy as np

SAVED = {"lstm": 6, "gru": 4, "gru_reset_before": 4, "rnn_tanh": 0, "rnn_relu": 0}


def _sigmoid(v):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-v))


def _f64(a):
    return None if a is None else np.asarray(a, np.float64)


def _steps(steps, reverse):
    """Time indices in processing order."""
    return range(steps - 1, -1, -1) if reverse else range(steps)


def _times(a, w, masks):
    """Gate k's rows of w [G*H, K] times a [..., K] (masked by masks[k], broadcast along
    a's leading axes): [..., G*H]."""
    if masks is None:
        return a @ w.T
    parts = np.split(w, len(masks), axis=0)
    return np.concatenate([(a * m) @ wk.T for m, wk in zip(masks, parts)], axis=-1)


def _back(d, w, masks):
    """The gradient of _times(a, w, masks) for a, from d [..., G*H]."""
    if masks is None:
        return d @ w
    gates = len(masks)
    return sum((dk @ wk) * m for dk, wk, m in zip(np.split(d, gates, axis=-1),
                                                  np.split(w, gates, axis=0), masks))


def _weight_gradient(d, a, masks):
    """The gradient of sum(_times(a, w, masks)) weighted by d [T, B, G*H] for w, a [T, B, K]."""
    rows, k = d.shape[0] * d.shape[1], a.shape[-1]
    if masks is None:
        return d.reshape(rows, d.shape[-1]).T @ a.reshape(rows, k)
    gates = len(masks)
    return np.concatenate([dk.reshape(rows, dk.shape[-1]).T @ (a * m).reshape(rows, k)
                           for dk, m in zip(np.split(d, gates, axis=-1), masks)], axis=0)


def _gates_and_hidden(w_hh):
    """(G, H) of a recurrent weight [G*H, H]."""
    return w_hh.shape[0] // w_hh.shape[1], w_hh.shape[1]


def _masks(masks):
    """(input masks, recurrent masks) in float64, each None where not given."""
    return tuple(_f64(m) for m in masks)


def _forward(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse, masks):
    """float64 (y [T, B, H], h_n, c_n or None, saved [T, B, S*H])."""
    gates, hidden = _gates_and_hidden(w_hh)
    w_ih, w_hh = _f64(w_ih), _f64(w_hh)
    in_masks, rec_masks = _masks(masks)
    xp = _times(_f64(x), w_ih, in_masks)  # [T, B, G*H]
    if b_ih is not None:
        xp += b_ih
    bh = np.zeros(gates * hidden) if b_hh is None else _f64(b_hh)
    h = _f64(h0)
    c = _f64(c0) if kind == "lstm" else None
    steps, batch = x.shape[0], x.shape[1]
    y = np.empty((steps, batch, hidden))
    saved = np.empty((steps, batch, SAVED[kind] * hidden))
    for t in _steps(steps, reverse):
        if kind == "lstm":
            i, f, g, o = np.split(xp[t] + _times(h, w_hh, rec_masks) + bh, 4, axis=1)
            i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
            c = f * c + i * g
            tc = np.tanh(c)
            h = o * tc
            parts = (i, f, g, o, c, tc)
        elif kind in ("gru", "gru_reset_before"):
            xr, xz, xn = np.split(xp[t], 3, axis=1)
            wn = w_hh[2 * hidden:]
            br, bz, bn = np.split(bh, 3)
            hr, hz = np.split(_times(h, w_hh[:2 * hidden], None if rec_masks is None
                                     else rec_masks[:2]), 2, axis=1)
            r = _sigmoid(xr + hr + br)
            z = _sigmoid(xz + hz + bz)
            hn = h if rec_masks is None else h * rec_masks[2]  # what W_hn reads
            if kind == "gru":
                last = hn @ wn.T + bn  # W_hn h + b_hn
                n = np.tanh(xn + r * last)
            else:
                last = r * hn
                n = np.tanh(xn + last @ wn.T + bn)
            h = (1 - z) * n + z * h
            parts = (r, z, n, last)
        else:
            pre = xp[t] + _times(h, w_hh, rec_masks) + bh
            h = np.tanh(pre) if kind == "rnn_tanh" else np.maximum(pre, 0.0)
            parts = ()
        y[t] = h
        if parts:
            saved[t] = np.concatenate(parts, axis=1)
    return y, h, c, saved


def _f32(a):
    return None if a is None else np.ascontiguousarray(a, dtype=np.float32)


def layer_train(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse, masks):
    """rnn_layer_train's contract with masks: (y, h_n, c_n or None, saved), float32."""
    y, h, c, saved = _forward(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse, masks)
    return _f32(y), _f32(h), _f32(c), _f32(saved)


def layer_backward(kind, dy, dh_n, dc_n, x, y, saved, h0, c0, w_ih, w_hh, reverse, masks):
    """BPTT of layer_train (rnn_layer_backward's contract, with its masks)."""
    steps, batch = x.shape[0], x.shape[1]
    gates, hidden = _gates_and_hidden(w_hh)
    H = hidden
    w_ih64, w_hh64 = _f64(w_ih), _f64(w_hh)
    y64, sv = _f64(y), _f64(saved)
    dh = np.zeros((batch, H)) if dh_n is None else _f64(dh_n).copy()
    dc = None
    if kind == "lstm":
        dc = np.zeros((batch, H)) if dc_n is None else _f64(dc_n).copy()
    in_masks, rec_masks = _masks(masks)
    dg = np.zeros((steps, batch, gates * H))   # input side
    dgh = np.zeros((steps, batch, gates * H))  # recurrent side
    h_prev_all = np.empty((steps, batch, H))   # what W_hh multiplied (n rows: see below)
    order = list(_steps(steps, reverse))
    for s in range(steps - 1, -1, -1):
        t = order[s]
        h_prev = _f64(h0) if s == 0 else y64[order[s - 1]]
        h_prev_all[t] = h_prev
        dht = dh + (0.0 if dy is None else _f64(dy[t]))
        if kind == "lstm":
            i, f, g, o, c, tc = np.split(sv[t], 6, axis=1)
            c_prev = _f64(c0) if s == 0 else np.split(sv[order[s - 1]], 6, axis=1)[4]
            dct = dc + dht * o * (1 - tc * tc)
            d = np.concatenate([dct * g * i * (1 - i), dct * c_prev * f * (1 - f),
                                dct * i * (1 - g * g), dht * tc * o * (1 - o)], axis=1)
            dg[t] = dgh[t] = d
            dc = dct * f
            dh = _back(d, w_hh64, rec_masks)
        elif kind in ("gru", "gru_reset_before"):
            r, z, n, last = np.split(sv[t], 4, axis=1)
            dz = dht * (h_prev - n) * z * (1 - z)
            dn = dht * (1 - z) * (1 - n * n)
            if kind == "gru":
                dr = dn * last * r * (1 - r)
                dg[t] = np.concatenate([dr, dz, dn], axis=1)
                dgh[t] = np.concatenate([dr, dz, dn * r], axis=1)
                dh = _back(dgh[t], w_hh64, rec_masks) + dht * z
            else:
                mask_n = 1.0 if rec_masks is None else rec_masks[2]
                drh = dn @ w_hh64[2 * H:]
                dr = drh * h_prev * mask_n * r * (1 - r)
                dg[t] = dgh[t] = np.concatenate([dr, dz, dn], axis=1)
                dh = (_back(dg[t][:, :2 * H], w_hh64[:2 * H],
                            None if rec_masks is None else rec_masks[:2])
                      + drh * r * mask_n + dht * z)
        else:
            ht = y64[t]
            d = dht * (1 - ht * ht) if kind == "rnn_tanh" else dht * (ht > 0)
            dg[t] = dgh[t] = d
            dh = _back(d, w_hh64, rec_masks)
    rows = steps * batch
    dg2, dgh2 = dg.reshape(rows, gates * H), dgh.reshape(rows, gates * H)
    dx = _back(dg, w_ih64, in_masks)
    dw_ih = _weight_gradient(dg, _f64(x), in_masks)
    dw_hh = _weight_gradient(dgh, h_prev_all, rec_masks)
    if kind == "gru_reset_before":  # W_hn multiplied r * h_{t-1} (saved)
        dw_hh[2 * H:] = dgh2[:, 2 * H:].T @ sv.reshape(rows, 4 * H)[:, 3 * H:]
    return (_f32(dx), _f32(dh), _f32(dc), _f32(dw_ih), _f32(dw_hh),
            _f32(dg2.sum(axis=0)), _f32(dgh2.sum(axis=0)))
