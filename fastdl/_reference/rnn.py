"""Reference recurrent layers (one layer, one direction), in float64: the inference forward
rnn_layer (torch.nn.LSTM / torch.nn.GRU), and the training pair rnn_layer_train /
rnn_layer_backward (backpropagation through time) for every kind below.

Kinds (weights in torch's layout: w_ih [G*H, I], w_hh [G*H, H], b_ih / b_hh [G*H]):
  'lstm'              G = 4, gates i, f, g, o   (torch.nn.LSTM)
                        c' = f c + i g,  h' = o tanh(c')
  'gru'               G = 3, gates r, z, n      (torch.nn.GRU; Keras GRU reset_after=True)
                        n = tanh(W_in x + b_in + r (W_hn h + b_hn)),  h' = (1 - z) n + z h
  'gru_reset_before'  G = 3, gates r, z, n      (Keras GRU reset_after=False)
                        n = tanh(W_in x + b_in + W_hn (r h) + b_hn),  h' = (1 - z) n + z h
  'rnn_tanh'          G = 1                     (torch.nn.RNN; Keras SimpleRNN)
  'rnn_relu'          G = 1                       h' = act(W_ih x + b_ih + W_hh h + b_hh)
with i, f, o, r, z = sigmoid(W_i* x + b_i* + W_h* h + b_h*), g = tanh(same).

`saved` (from rnn_layer_train, for rnn_layer_backward of the same backend only; its
layout is the backend's own): here [T, B, S*H], per time step
  'lstm'              i, f, g, o (activated), c_t, tanh(c_t)            S = 6
  'gru'               r, z, n, W_hn h_{t-1} + b_hn                        S = 4
  'gru_reset_before'  r, z, n, r * h_{t-1}                                S = 4
  'rnn_*'             nothing (the output y is all the backward needs)    S = 0
"""
import numpy as np

GATES = {"lstm": 4, "gru": 3, "gru_reset_before": 3, "rnn_tanh": 1, "rnn_relu": 1}
SAVED = {"lstm": 6, "gru": 4, "gru_reset_before": 4, "rnn_tanh": 0, "rnn_relu": 0}


def _sigmoid(v):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-v))


def _f64(a):
    return None if a is None else np.asarray(a, np.float64)


def _steps(steps, reverse):
    """Time indices in processing order."""
    return range(steps - 1, -1, -1) if reverse else range(steps)


def _forward(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse):
    """float64 (y [T, B, H], h_n, c_n or None, saved [T, B, S*H])."""
    gates, hidden = GATES[kind], w_hh.shape[1]
    w_ih, w_hh = _f64(w_ih), _f64(w_hh)
    xp = _f64(x) @ w_ih.T  # [T, B, G*H]
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
            i, f, g, o = np.split(xp[t] + h @ w_hh.T + bh, 4, axis=1)
            i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
            c = f * c + i * g
            tc = np.tanh(c)
            h = o * tc
            parts = (i, f, g, o, c, tc)
        elif kind in ("gru", "gru_reset_before"):
            xr, xz, xn = np.split(xp[t], 3, axis=1)
            wr, wz, wn = np.split(w_hh, 3, axis=0)
            br, bz, bn = np.split(bh, 3)
            r = _sigmoid(xr + h @ wr.T + br)
            z = _sigmoid(xz + h @ wz.T + bz)
            if kind == "gru":
                last = h @ wn.T + bn  # W_hn h + b_hn
                n = np.tanh(xn + r * last)
            else:
                last = r * h
                n = np.tanh(xn + last @ wn.T + bn)
            h = (1 - z) * n + z * h
            parts = (r, z, n, last)
        else:
            pre = xp[t] + h @ w_hh.T + bh
            h = np.tanh(pre) if kind == "rnn_tanh" else np.maximum(pre, 0.0)
            parts = ()
        y[t] = h
        if parts:
            saved[t] = np.concatenate(parts, axis=1)
    return y, h, c, saved


def _f32(a):
    return None if a is None else np.ascontiguousarray(a, dtype=np.float32)


def rnn_layer(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse):
    """One layer, one direction (kind 'lstm' or 'gru'). x [T, B, I]; h0 [B, H]; c0 [B, H]
    (kind 'lstm') or None ('gru'); w_ih [G*H, I], w_hh [G*H, H], b_ih / b_hh [G*H] or None
    (zeros); G = 4 (gates i, f, g, o) or 3 (r, z, n). reverse: run from the last step to
    the first.

    Returns (y [T, B, H], h_n [B, H], c_n [B, H] or None), float32."""
    y, h, c, _ = _forward(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse)
    return _f32(y), _f32(h), _f32(c)


def rnn_layer_train(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse):
    """The forward of rnn_layer for training, any kind of the module docstring: arguments
    as rnn_layer's (c0 [B, H] for 'lstm', None otherwise).

    Returns (y [T, B, H], h_n [B, H], c_n [B, H] or None, saved), float32; `saved` is what
    rnn_layer_backward needs besides the forward's arguments and y (layout: the backend's
    own)."""
    y, h, c, saved = _forward(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse)
    return _f32(y), _f32(h), _f32(c), _f32(saved)


def rnn_layer_backward(kind, dy, dh_n, dc_n, x, y, saved, h0, c0, w_ih, w_hh, reverse):
    """Backpropagation through time of rnn_layer_train (the same kind, inputs, weights and
    direction; y and saved as it returned them). dy [T, B, H] (the gradient of y), dh_n
    [B, H], dc_n [B, H] ('lstm'): each None for zeros.

    Returns (dx [T, B, I], dh0 [B, H], dc0 [B, H] or None (not 'lstm'), dw_ih [G*H, I],
    dw_hh [G*H, H], db_ih [G*H], db_hh [G*H]), float32; the bias gradients are returned
    whether or not the forward had biases. Computed in float64:
      the step loop runs backward in time: from dh_t (dy_t + what step t+1 sent back) and
      dc_t it forms the gradients of the pre-activation gates, on the input side dG_t and on
      the recurrent side dGh_t (they differ for 'gru': its n row is dG_n * r there), and
      sends dh_{t-1} = dGh_t W_hh (+ dh_t z for the GRUs, + d(r h) r before the reset);
      then dW_ih = dG^T X, dW_hh = dGh^T H_prev (the n rows: dG_n^T (r H_prev) for
      'gru_reset_before'), db_ih / db_hh the column sums, dx = dG W_ih."""
    steps, batch = x.shape[0], x.shape[1]
    gates, hidden = GATES[kind], w_hh.shape[1]
    H = hidden
    w_ih64, w_hh64 = _f64(w_ih), _f64(w_hh)
    y64, sv = _f64(y), _f64(saved)
    dh = np.zeros((batch, H)) if dh_n is None else _f64(dh_n).copy()
    dc = None
    if kind == "lstm":
        dc = np.zeros((batch, H)) if dc_n is None else _f64(dc_n).copy()
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
            dh = d @ w_hh64
        elif kind in ("gru", "gru_reset_before"):
            r, z, n, last = np.split(sv[t], 4, axis=1)
            dz = dht * (h_prev - n) * z * (1 - z)
            dn = dht * (1 - z) * (1 - n * n)
            if kind == "gru":
                dr = dn * last * r * (1 - r)
                dg[t] = np.concatenate([dr, dz, dn], axis=1)
                dgh[t] = np.concatenate([dr, dz, dn * r], axis=1)
                dh = dgh[t] @ w_hh64 + dht * z
            else:
                drh = dn @ w_hh64[2 * H:]
                dr = drh * h_prev * r * (1 - r)
                dg[t] = dgh[t] = np.concatenate([dr, dz, dn], axis=1)
                dh = dg[t][:, :2 * H] @ w_hh64[:2 * H] + drh * r + dht * z
        else:
            ht = y64[t]
            d = dht * (1 - ht * ht) if kind == "rnn_tanh" else dht * (ht > 0)
            dg[t] = dgh[t] = d
            dh = d @ w_hh64
    rows = steps * batch
    dg2, dgh2 = dg.reshape(rows, gates * H), dgh.reshape(rows, gates * H)
    dx = dg2 @ w_ih64
    dw_ih = dg2.T @ _f64(x).reshape(rows, x.shape[2])
    dw_hh = dgh2.T @ h_prev_all.reshape(rows, H)
    if kind == "gru_reset_before":  # W_hn multiplied r * h_{t-1} (saved)
        dw_hh[2 * H:] = dgh2[:, 2 * H:].T @ sv.reshape(rows, 4 * H)[:, 3 * H:]
    return (_f32(dx.reshape(x.shape)), _f32(dh), _f32(dc), _f32(dw_ih), _f32(dw_hh),
            _f32(dg2.sum(axis=0)), _f32(dgh2.sum(axis=0)))
