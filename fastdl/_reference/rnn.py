"""Reference LSTM/GRU layer (torch.nn.LSTM / torch.nn.GRU semantics), in float64."""
import numpy as np


def _sigmoid(v):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-v))


def rnn_layer(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse):
    """One layer, one direction. x [T, B, I]; h0 [B, H]; c0 [B, H] (kind 'lstm') or None
    ('gru'); w_ih [G*H, I], w_hh [G*H, H], b_ih / b_hh [G*H] or None (zeros); G = 4 (gates
    i, f, g, o) or 3 (r, z, n). reverse: run from the last step to the first.

    Returns (y [T, B, H], h_n [B, H], c_n [B, H] or None), float32."""
    lstm = kind == "lstm"
    hidden = w_hh.shape[1]
    gates = 4 if lstm else 3
    xp = x.astype(np.float64) @ w_ih.astype(np.float64).T  # [T, B, G*H]
    if b_ih is not None:
        xp += b_ih
    bh = np.zeros(gates * hidden) if b_hh is None else b_hh.astype(np.float64)
    wh = w_hh.astype(np.float64)
    h = h0.astype(np.float64)
    c = c0.astype(np.float64) if lstm else None
    y = np.empty((x.shape[0], x.shape[1], hidden))
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    for t in steps:
        hh = h @ wh.T + bh
        if lstm:
            i, f, g, o = np.split(xp[t] + hh, 4, axis=1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
        else:
            xr, xz, xn = np.split(xp[t], 3, axis=1)
            hr, hz, hn = np.split(hh, 3, axis=1)
            r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
            n = np.tanh(xn + r * hn)
            h = (1 - z) * n + z * h
        y[t] = h
    f32 = np.float32
    return y.astype(f32), h.astype(f32), None if c is None else c.astype(f32)
