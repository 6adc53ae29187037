"""Numba optimizer updates: the jitted twin of fastdl._optimizers (Cython), same functions
and contract as fastdl/_reference/optimizers.py. In place, float64 intermediates."""
import math

import numba
import numpy as np

_EMPTY = np.zeros(0, np.float32)


@numba.njit(cache=True, nogil=True)
def _sgd(w, g, v, has_v, lr, momentum, nesterov):
    for i in range(w.size):
        gi = np.float64(g[i])
        if not has_v:
            w[i] = w[i] - lr * gi
            continue
        vi = momentum * np.float64(v[i]) - lr * gi
        v[i] = vi
        w[i] = w[i] + (momentum * vi - lr * gi if nesterov else vi)


def sgd_update(w, g, velocity, lr, momentum, nesterov):
    _sgd(w, g, _EMPTY if velocity is None else velocity, velocity is not None, float(lr),
         float(momentum), bool(nesterov))


@numba.njit(cache=True, nogil=True)
def _rmsprop(w, g, rms, m, has_m, a, centered, lr, rho, momentum, epsilon):
    for i in range(w.size):
        gi = np.float64(g[i])
        r = rho * np.float64(rms[i]) + (1.0 - rho) * gi * gi
        rms[i] = r
        if centered:
            ai = rho * np.float64(a[i]) + (1.0 - rho) * gi
            a[i] = ai
            d = r - ai * ai + epsilon
        else:
            d = r + epsilon
        step = lr * gi / math.sqrt(d)
        if has_m:
            step = momentum * np.float64(m[i]) + step
            m[i] = step
        w[i] = w[i] - step


def rmsprop_update(w, g, rms, momentum_slot, average_slot, lr, rho, momentum, epsilon):
    _rmsprop(w, g, rms, _EMPTY if momentum_slot is None else momentum_slot,
             momentum_slot is not None, _EMPTY if average_slot is None else average_slot,
             average_slot is not None, float(lr), float(rho), float(momentum), float(epsilon))


@numba.njit(cache=True, nogil=True)
def _adam(w, g, m, v, vh, ams, alpha, beta_1, beta_2, epsilon, decay):
    for i in range(w.size):
        gi = np.float64(g[i])
        wi = np.float64(w[i])
        if decay != 0.0:
            wi = np.float64(np.float32(wi - wi * decay))
        mi = m[i] + (gi - m[i]) * (1.0 - beta_1)
        vi = v[i] + (gi * gi - v[i]) * (1.0 - beta_2)
        m[i] = mi
        v[i] = vi
        if ams:
            vi = max(np.float64(vh[i]), np.float64(np.float32(vi)))
            vh[i] = vi
        w[i] = wi - alpha * mi / (math.sqrt(vi) + epsilon)


def adam_update(w, g, m, v, vhat_slot, lr, beta_1, beta_2, epsilon, step, weight_decay):
    alpha = lr * math.sqrt(1.0 - beta_2 ** step) / (1.0 - beta_1 ** step)
    _adam(w, g, m, v, _EMPTY if vhat_slot is None else vhat_slot, vhat_slot is not None,
          float(alpha), float(beta_1), float(beta_2), float(epsilon), float(lr * weight_decay))


@numba.njit(cache=True, nogil=True)
def _adagrad(w, g, acc, lr, epsilon):
    for i in range(w.size):
        gi = np.float64(g[i])
        a = np.float64(acc[i]) + gi * gi
        acc[i] = a
        w[i] = w[i] - lr * gi / math.sqrt(a + epsilon)


def adagrad_update(w, g, acc, lr, epsilon):
    _adagrad(w, g, acc, float(lr), float(epsilon))


@numba.njit(cache=True, nogil=True)
def _squared_norm(g):
    s = 0.0
    for i in range(g.size):
        s += np.float64(g[i]) * np.float64(g[i])
    return s


def squared_norm(g):
    return float(_squared_norm(g))


@numba.njit(cache=True, nogil=True)
def _scale_clip(g, scale, clip):
    for i in range(g.size):
        x = np.float64(g[i]) * scale
        if clip > 0.0:
            x = min(max(x, -clip), clip)
        g[i] = x


def scale_clip(g, scale, clip):
    _scale_clip(g, float(scale), float(clip))
