"""Numba triplet margin loss: the jitted twin of fastdl._triplet (Cython), same functions
and contract as fastdl/_reference/triplet.py. Rows read float32 and accumulate in
float64."""
import math

import numba
import numpy as np

_EMPTY = np.zeros(0, np.float32)


@numba.njit(cache=True, nogil=True)
def _dist(x, y, i, p, eps):
    """||x[i] - y[i] + eps||_p in float64."""
    s = 0.0
    for j in range(x.shape[1]):
        u = np.float64(x[i, j]) - np.float64(y[i, j]) + eps
        if p == 2.0:
            s += u * u
        elif p == 1.0:
            s += abs(u)
        else:
            s += abs(u) ** p
    if p == 2.0:
        return math.sqrt(s)
    return s if p == 1.0 else s ** (1.0 / p)


@numba.njit(cache=True, nogil=True)
def _row(a, pos, neg, i, p, eps, swap):
    """(d_ap, d_an, d_pn, c_an, c_pn) of row i (d_pn 0 without swap)."""
    d_ap = _dist(a, pos, i, p, eps)
    d_an = _dist(a, neg, i, p, eps)
    d_pn, c_an, c_pn = 0.0, 1.0, 0.0
    if swap:
        d_pn = _dist(pos, neg, i, p, eps)
        if d_pn < d_an:
            c_an, c_pn = 0.0, 1.0
        elif d_pn == d_an:
            c_an, c_pn = 0.5, 0.5
    return d_ap, d_an, d_pn, c_an, c_pn


@numba.njit(cache=True, nogil=True)
def _loss(a, pos, neg, margin, p, eps, swap, out, has_out):
    total = 0.0
    for i in range(a.shape[0]):
        d_ap, d_an, d_pn, c_an, c_pn = _row(a, pos, neg, i, p, eps, swap)
        value = margin + d_ap - (d_pn if c_pn == 1.0 else d_an)
        if not (value >= 0 or value != value):
            value = 0.0
        if has_out:
            out[i] = value
        total += value
    return total


def triplet_loss(anchor, positive, negative, margin, p, eps, swap, out):
    """See fastdl._reference.triplet.triplet_loss."""
    return float(_loss(anchor, positive, negative, float(margin), float(p), float(eps),
                       bool(swap), _EMPTY if out is None else out, out is not None))


@numba.njit(cache=True, nogil=True)
def _grad_coef(u, d, p):
    """d ||u||_p / d u_j for one coordinate u of a row whose norm is d."""
    if d == 0.0:
        return 0.0
    if p == 2.0:
        return u / d
    sign = 1.0 if u > 0 else (-1.0 if u < 0 else 0.0)
    if p == 1.0:
        return sign
    return sign * abs(u) ** (p - 1.0) / d ** (p - 1.0)


@numba.njit(cache=True, nogil=True)
def _backward(a, pos, neg, margin, p, eps, swap, scale, sw, has_sw, da, dp, dn):
    for i in range(a.shape[0]):
        d_ap, d_an, d_pn, c_an, c_pn = _row(a, pos, neg, i, p, eps, swap)
        value = margin + d_ap - (d_pn if c_pn == 1.0 else d_an)
        if not value >= 0:
            for j in range(a.shape[1]):
                da[i, j] = 0.0
                dp[i, j] = 0.0
                dn[i, j] = 0.0
            continue
        g = scale * (np.float64(sw[i]) if has_sw else 1.0)
        for j in range(a.shape[1]):
            aj, pj, nj = np.float64(a[i, j]), np.float64(pos[i, j]), np.float64(neg[i, j])
            g_ap = _grad_coef(aj - pj + eps, d_ap, p)
            g_an = c_an * _grad_coef(aj - nj + eps, d_an, p)
            g_pn = c_pn * _grad_coef(pj - nj + eps, d_pn, p) if c_pn != 0.0 else 0.0
            da[i, j] = g * (g_ap - g_an)
            dp[i, j] = g * (-g_ap - g_pn)
            dn[i, j] = g * (g_an + g_pn)


def triplet_loss_backward(anchor, positive, negative, margin, p, eps, swap, scale,
                          sample_weight, out_anchor, out_positive, out_negative):
    """See fastdl._reference.triplet.triplet_loss_backward."""
    _backward(anchor, positive, negative, float(margin), float(p), float(eps), bool(swap),
              float(scale), _EMPTY if sample_weight is None else sample_weight,
              sample_weight is not None, out_anchor, out_positive, out_negative)
