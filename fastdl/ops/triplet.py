"""The triplet margin loss with torch.nn.functional semantics: triplet_margin_loss and its
gradient with respect to the three embeddings (triplet_margin_loss_backward).

Per triplet, with dist(x, y) = ||x - y + eps||_p over the last axis (torch's
pairwise_distance: eps is added to the difference):
    loss = max(margin + dist(anchor, positive) - dist(anchor, negative), 0)
and with swap=True the negative distance is min(dist(anchor, negative),
dist(positive, negative)) (the distance swap of Balntas et al., 2016).

The embeddings are [..., D] arrays of one shape (an unbatched [D] gives one triplet);
reduction 'none' returns the per-triplet losses of shape [...], 'mean' and 'sum' a float32
scalar (a mean over no triplets is NaN, as in torch). The kernels are
kernels.triplet_loss / triplet_loss_backward (fastdl/_reference/triplet.py).
"""
import math

import numpy as np

from fastdl import _validate as v
from fastdl._backend import kernels
from fastdl.ops.losses import _reduction, _scalar, _upstream

_NAMES = ("anchor", "positive", "negative")


def _embeddings(anchor, positive, negative):
    """The three as float32 C-contiguous [N, D] arrays, and the per-triplet shape."""
    arrays = [v.float32_array(a, name) for a, name in zip((anchor, positive, negative),
                                                          _NAMES)]
    a = arrays[0]
    if a.ndim == 0:
        raise ValueError("anchor: expected embeddings [..., D] (or one [D]), got a 0-d array")
    for arr, name in zip(arrays[1:], _NAMES[1:]):
        if arr.shape != a.shape:
            raise ValueError(f"{name}: expected anchor's shape {a.shape}, got {arr.shape}")
    n = math.prod(a.shape[:-1])
    rows = [np.ascontiguousarray(arr.reshape(n, a.shape[-1])) for arr in arrays]
    return rows, a.shape[:-1]


def _parameters(margin, p, eps, swap):
    margin = v.real(margin, "margin")
    if not margin > 0:
        raise ValueError(f"margin: expected a number > 0, got {margin}")
    p = v.real(p, "p")
    if not (p > 0 and math.isfinite(p)):
        raise ValueError(f"p: expected a finite norm degree > 0 (inf is not supported), got "
                         f"{p}")
    return margin, p, v.real(eps, "eps"), v.flag(swap, "swap")


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        reduction="mean"):
    """torch.nn.functional.triplet_margin_loss: max(margin + d(a, p) - d(a, n), 0) per
    triplet of embeddings (see the module docstring), reduced."""
    margin, p, eps, swap = _parameters(margin, p, eps, swap)
    reduction = _reduction(reduction)
    (a, pos, neg), shape = _embeddings(anchor, positive, negative)
    out = np.empty(a.shape[0], np.float32) if reduction == "none" else None
    total = kernels.triplet_loss(a, pos, neg, margin, p, eps, swap, out)
    if reduction == "none":
        return out.reshape(shape)
    return _scalar(total, a.shape[0], reduction)


def triplet_margin_loss_backward(anchor, positive, negative, margin=1.0, p=2, eps=1e-6,
                                 swap=False, reduction="mean", grad_output=1.0):
    """The gradients of grad_output * triplet_margin_loss(...) with respect to anchor,
    positive and negative: a tuple of three float32 arrays of their shape. grad_output is
    a real number for 'mean' and 'sum', an array of the per-triplet losses' shape for
    'none'. A triplet whose margin is not reached (loss 0) gives zeros; at exactly 0 the
    gradient passes, as torch's clamp_min's."""
    margin, p, eps, swap = _parameters(margin, p, eps, swap)
    reduction = _reduction(reduction)
    (a, pos, neg), shape = _embeddings(anchor, positive, negative)
    scale, per = _upstream(grad_output, reduction, shape)
    if reduction == "mean":
        scale = scale / a.shape[0] if a.shape[0] else math.nan
    outs = [np.empty(a.shape, np.float32) for _ in range(3)]
    kernels.triplet_loss_backward(a, pos, neg, margin, p, eps, swap, scale,
                                  None if per is None else per.reshape(-1), *outs)
    return tuple(o.reshape(shape + (a.shape[1],)) for o in outs)
