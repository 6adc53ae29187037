"""Reference embedding gradient (float64 inside), the contract of the backends:

embedding_backward(dy [n, dim] float32, indices [n] int64 in [0, num_embeddings),
                   num_embeddings, padding_idx, scale_grad_by_freq)
    -> dw [num_embeddings, dim] float32: each row of dy added into the row its index names
       (repeated indices sum); the row padding_idx (an int in [0, num_embeddings), or -1
       for none) zero; with scale_grad_by_freq each row divided by how often its index
       occurs in `indices` (torch.nn.functional.embedding's gradient).
"""
import numpy as np


def embedding_backward(dy, indices, num_embeddings, padding_idx, scale_grad_by_freq):
    dw = np.zeros((num_embeddings, dy.shape[1]), np.float64)
    np.add.at(dw, indices, dy.astype(np.float64))
    if scale_grad_by_freq:
        counts = np.bincount(indices, minlength=num_embeddings)
        dw /= np.maximum(counts, 1)[:, None]
    if padding_idx >= 0:
        dw[padding_idx] = 0.0
    return dw.astype(np.float32)
