"""Embedding lookup and its gradient, torch.nn.functional.embedding semantics.

embedding(input, weight) picks rows of the table weight [num_embeddings, embedding_dim] by
the integer indices `input` (any shape): output input.shape + (embedding_dim,). Its
gradient with respect to the table, embedding_backward, adds every row of grad_output into
the row its index names (repeated indices sum): a scatter-add, which the native backend
runs on the thread pool without races (positions bucketed by row, each row summed by one
thread in position order: the result does not depend on the thread count). The indices
themselves have no gradient.
"""
import numpy as np

from fastdl import _validate as v
from fastdl._backend import kernels


def _indices(value, num_embeddings, name="input"):
    """value as int64 indices in [0, num_embeddings): TypeError for other dtypes, ValueError
    naming the first index out of range."""
    if value is None:
        raise TypeError(f"{name}: expected an integer array, got None")
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer array of indices, got dtype {arr.dtype}")
    # Contiguous before any pass over it: a zero-stride view of 2**59 indices fails here
    # (MemoryError), not in a min() that would run for hours.
    arr = np.asarray(arr, order="C")
    if arr.size:
        low, high = arr.min(), arr.max()
        if low < 0 or high >= num_embeddings:
            bad = low if low < 0 else high
            raise ValueError(f"{name}: index {int(bad)} is outside [0, {num_embeddings}) "
                             f"(num_embeddings {num_embeddings})")
    # np.asarray keeps 0-d indices 0-d (np.ascontiguousarray would make them 1-d).
    return np.asarray(arr, dtype=np.int64, order="C")


def _padding_idx(padding_idx, num_embeddings):
    """padding_idx as an index in [0, num_embeddings) (negative ones count from the end, as
    in PyTorch), or -1 for None."""
    if padding_idx is None:
        return -1
    p = v.integer(padding_idx, "padding_idx")
    if not -num_embeddings <= p < num_embeddings:
        raise ValueError(f"padding_idx: expected an int in [{-num_embeddings}, "
                         f"{num_embeddings}) (num_embeddings {num_embeddings}), got {p}")
    return p % num_embeddings


def embedding(input, weight, padding_idx=None):
    """torch.nn.functional.embedding: the rows weight[input] as float32 of shape
    input.shape + (embedding_dim,). `input`: integer indices in [0, num_embeddings) of any
    shape; `weight`: [num_embeddings, embedding_dim]. padding_idx (checked here, as PyTorch
    does) only matters for the gradient: its row gets none (embedding_backward). max_norm is
    not supported (PyTorch renormalises the table in place)."""
    weight = v.float32_array(weight, "weight", 2, "2-D array (num_embeddings, embedding_dim)")
    idx = _indices(input, weight.shape[0])
    _padding_idx(padding_idx, weight.shape[0])
    return np.take(weight, idx, axis=0)


def embedding_backward(grad_output, indices, num_embeddings, padding_idx=None,
                       scale_grad_by_freq=False):
    """The gradient of embedding(indices, weight, padding_idx) with respect to weight:
    [num_embeddings, embedding_dim] float32, every row of grad_output (shape indices.shape
    + (embedding_dim,)) added into the row its index names; the padding_idx row zero; with
    scale_grad_by_freq each row divided by how often its index occurs in `indices` (as
    torch.nn.functional.embedding(..., scale_grad_by_freq=True) does).

    Sums are float32 (vector blocks of 256 rows, added in double past that), in the order of
    the positions."""
    num_embeddings = v.integer(num_embeddings, "num_embeddings", 0)
    idx = _indices(indices, num_embeddings, "indices")
    pad = _padding_idx(padding_idx, num_embeddings) if num_embeddings else -1
    if padding_idx is not None and not num_embeddings:
        raise ValueError("padding_idx: there is no row to pad with num_embeddings 0")
    scale = v.flag(scale_grad_by_freq, "scale_grad_by_freq")
    dy = v.float32_array(grad_output, "grad_output")
    if dy.ndim != idx.ndim + 1 or dy.shape[:-1] != idx.shape:
        raise ValueError(f"grad_output: expected the shape of indices {idx.shape} + "
                         f"(embedding_dim,), got {dy.shape}")
    dim = dy.shape[-1]
    v.output_size((num_embeddings, dim), "num_embeddings")
    return kernels.embedding_backward(dy.reshape(idx.size, dim), idx.reshape(-1),
                                      num_embeddings, pad, scale)
