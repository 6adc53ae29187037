"""Numba embedding gradient; contract in fastdl/_reference/embedding.py. The rows of dy go
into their index's row in position order, in float32 (the native kernel's order)."""
import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _scatter_add(dy, indices, padding_idx, scale_grad_by_freq, dw):
    counts = np.zeros(dw.shape[0], np.int64)
    for p in range(indices.shape[0]):
        counts[indices[p]] += 1
    for p in range(indices.shape[0]):
        r = indices[p]
        if r == padding_idx:
            continue
        for d in range(dy.shape[1]):
            dw[r, d] += dy[p, d]
    if scale_grad_by_freq:
        for r in range(dw.shape[0]):
            if counts[r] > 1:
                s = np.float32(1.0) / np.float32(counts[r])
                for d in range(dw.shape[1]):
                    dw[r, d] *= s


def embedding_backward(dy, indices, num_embeddings, padding_idx, scale_grad_by_freq):
    dw = np.zeros((num_embeddings, dy.shape[1]), np.float32)
    _scatter_add(dy, indices, padding_idx, scale_grad_by_freq, dw)
    return dw
