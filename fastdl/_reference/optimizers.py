"""Reference optimizer updates: plain NumPy in float64, the oracle of fastdl._optimizers
(Cython) and fastdl._numba.optimizers, with the same functions and contract.

Every update works in place on flat float32 arrays of one size (the weight w, its
gradient g and the optimizer's slots), computing in float64 and storing float32; the
formulas are Keras 3's.
"""
import numpy as np


def _store(dst, value):
    dst[...] = value.astype(np.float32)


def sgd_update(w, g, velocity, lr, momentum, nesterov):
    """w -= lr g; with momentum (velocity given): v = momentum v - lr g, then w += v
    (nesterov: w += momentum v - lr g)."""
    g64 = g.astype(np.float64)
    if velocity is None:
        _store(w, w - lr * g64)
        return
    v = momentum * velocity.astype(np.float64) - lr * g64
    _store(velocity, v)
    _store(w, w + (momentum * v - lr * g64 if nesterov else v))


def rmsprop_update(w, g, rms, momentum_slot, average_slot, lr, rho, momentum, epsilon):
    """rms = rho rms + (1 - rho) g^2; centered (average_slot given): a = rho a +
    (1 - rho) g and d = rms - a^2 + eps, else d = rms + eps; step = lr g / sqrt(d); with
    momentum (momentum_slot given): m = momentum m + step, w -= m; else w -= step."""
    g64 = g.astype(np.float64)
    r = rho * rms + (1.0 - rho) * g64 * g64
    _store(rms, r)
    if average_slot is not None:
        a = rho * average_slot + (1.0 - rho) * g64
        _store(average_slot, a)
        d = r - a * a + epsilon
    else:
        d = r + epsilon
    step = lr * g64 / np.sqrt(d)
    if momentum_slot is not None:
        step = momentum * momentum_slot + step
        _store(momentum_slot, step)
    _store(w, w - step)


def adam_update(w, g, m, v, vhat_slot, lr, beta_1, beta_2, epsilon, step, weight_decay):
    """Keras' Adam at 1-based `step`: m += (g - m)(1 - b1), v += (g^2 - v)(1 - b2);
    amsgrad (vhat_slot given): vhat = max(vhat, v), used for v; w -= alpha m / (sqrt(v) +
    eps), alpha = lr sqrt(1 - b2^step) / (1 - b1^step). weight_decay (AdamW) first:
    w -= lr weight_decay w (rounded to float32, as Keras assigns it)."""
    g64 = g.astype(np.float64)
    alpha = lr * np.sqrt(1.0 - beta_2 ** step) / (1.0 - beta_1 ** step)
    w64 = w.astype(np.float64)
    if weight_decay:
        w64 = (w64 - w64 * (lr * weight_decay)).astype(np.float32).astype(np.float64)
    m64 = m + (g64 - m) * (1.0 - beta_1)
    v64 = v + (g64 * g64 - v) * (1.0 - beta_2)
    _store(m, m64)
    _store(v, v64)
    if vhat_slot is not None:
        v64 = np.maximum(vhat_slot, v64.astype(np.float32)).astype(np.float64)
        _store(vhat_slot, v64)
    _store(w, w64 - alpha * m64 / (np.sqrt(v64) + epsilon))


def adagrad_update(w, g, acc, lr, epsilon):
    """acc += g^2; w -= lr g / sqrt(acc + eps)."""
    g64 = g.astype(np.float64)
    a = acc + g64 * g64
    _store(acc, a)
    _store(w, w - lr * g64 / np.sqrt(a + epsilon))


def squared_norm(g):
    """sum g^2 (a Python float)."""
    g64 = g.astype(np.float64)
    return float(np.dot(g64, g64))


def scale_clip(g, scale, clip):
    """In place: g = clip(g * scale, -clip, clip) (clip <= 0: no clipping)."""
    x = g.astype(np.float64) * scale
    if clip > 0:
        x = np.clip(x, -clip, clip)
    _store(g, x)
