"""Reference triplet margin loss: plain NumPy in float64, the oracle of fastdl._triplet
(Cython) and fastdl._numba.triplet, with the same two functions and contract.

Inputs were validated by fastdl.ops.triplet: anchor, positive, negative float32
C-contiguous [N, D] of one shape, p > 0 finite, eps and margin real numbers.

Per row i, with torch's pairwise distance dist(x, y) = ||x - y + eps||_p (eps is added to
the difference, not to the norm):
    d_ap = dist(a, p),  d_an = dist(a, n),  swap: d_an <- min(d_an, dist(p, n))
    loss_i = max(margin + d_ap - d_an, 0)            (NaN stays NaN)
"""
import numpy as np


def _distance(x, y, p, eps):
    """(||u||_p per row, u) with u = x - y + eps, in float64."""
    u = np.asarray(x, np.float64) - np.asarray(y, np.float64) + eps
    with np.errstate(over="ignore"):
        if p == 2.0:
            return np.sqrt((u * u).sum(axis=1)), u
        if p == 1.0:
            return np.abs(u).sum(axis=1), u
        return (np.abs(u) ** p).sum(axis=1) ** (1.0 / p), u


def _distances(anchor, positive, negative, p, eps, swap):
    """(d_ap, d_neg, c_an, c_pn, pairs): the positive and negative distances per row, the
    weights of d_an and d_pn in d_neg, and (u, d) of each pair (None for pn without
    swap). With swap d_neg is the smaller of d_an and d_pn; a tie splits the gradient in
    halves, as torch.minimum's does."""
    d_ap, u_ap = _distance(anchor, positive, p, eps)
    d_an, u_an = _distance(anchor, negative, p, eps)
    c_an, c_pn, pn, d_neg = np.ones(d_ap.shape), np.zeros(d_ap.shape), None, d_an
    if swap:
        d_pn, u_pn = _distance(positive, negative, p, eps)
        c_pn = np.where(d_pn < d_an, 1.0, np.where(d_pn == d_an, 0.5, 0.0))
        c_an = 1.0 - c_pn
        d_neg = np.where(d_pn < d_an, d_pn, d_an)
        pn = (u_pn, d_pn)
    return d_ap, d_neg, c_an, c_pn, ((u_ap, d_ap), (u_an, d_an), pn)


def triplet_loss(anchor, positive, negative, margin, p, eps, swap, out):
    """max(margin + d_ap - d_an, 0) per row of anchor, positive, negative [N, D] (see the
    module docstring). Writes the losses into `out` ([N] float32) if it is not None;
    returns their sum as a Python float."""
    d_ap, d_neg, *_ = _distances(anchor, positive, negative, p, eps, swap)
    value = margin + d_ap - d_neg
    loss = np.where(value >= 0, value, np.where(np.isnan(value), np.nan, 0.0))
    if out is not None:
        out[...] = loss
    return float(loss.sum())


def _distance_grad(u, d, p):
    """d ||u||_p / d u per row: sign(u) |u|^(p-1) / d^(p-1); 0 where d == 0 (torch's norm
    gradient at 0)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if p == 2.0:
            g = u / d[:, None]
        elif p == 1.0:
            g = np.sign(u)
        else:
            g = np.sign(u) * np.abs(u) ** (p - 1.0) / (d ** (p - 1.0))[:, None]
    return np.where((d == 0)[:, None], 0.0, g)


def triplet_loss_backward(anchor, positive, negative, margin, p, eps, swap, scale,
                          sample_weight, out_anchor, out_positive, out_negative):
    """The gradients of sum_i g_i loss_i, g_i = scale * sample_weight[i] (1 where None;
    sample_weight float32 [N]), into out_anchor, out_positive, out_negative [N, D]. A row
    contributes where margin + d_ap - d_an >= 0 (torch's clamp_min passes the gradient at
    0): with G the distance gradients and c_an, c_pn the swap's weights,
        d anchor   = g (G_ap - c_an G_an)
        d positive = g (-G_ap - c_pn G_pn)
        d negative = g (c_an G_an + c_pn G_pn)."""
    d_ap, d_neg, c_an, c_pn, (ap, an, pn) = _distances(anchor, positive, negative, p, eps,
                                                        swap)
    g = np.full(d_ap.shape, float(scale))
    if sample_weight is not None:
        g = g * np.asarray(sample_weight, np.float64)
    g = g[:, None]
    active = (margin + d_ap - d_neg >= 0)[:, None]  # others: exact zeros
    g_ap = _distance_grad(*ap, p)
    g_an = _distance_grad(*an, p) * c_an[:, None]
    g_pn = 0.0 if pn is None else _distance_grad(*pn, p) * c_pn[:, None]
    out_anchor[...] = np.where(active, g * (g_ap - g_an), 0.0)
    out_positive[...] = np.where(active, g * (-g_ap - g_pn), 0.0)
    out_negative[...] = np.where(active, g * (g_an + g_pn), 0.0)
