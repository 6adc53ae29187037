"""The embedding lookup and its gradient (a scatter-add into the table's rows).

- The NumPy reference against finite differences of the lookup.
- Every native variant (fastdl._C.variants("embedding_backward")) and the Numba twin against
  the reference: row lengths on and around the vector widths, repeated indices, rows with
  more positions than one float block, padding_idx, scale_grad_by_freq; the native result
  does not depend on the thread count.
- fastdl.ops.embedding / embedding_backward on every backend against PyTorch autograd of
  torch.nn.functional.embedding, and with bad arguments.
- The Embedding layer's gradient is the op's.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

import fastdl
from fastdl import _reference as reference
from fastdl import ops
from native_variants import variant_params


def rand(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _indices(shape, rows, seed, skew=False):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, rows, size=shape)
    if skew:  # one row takes most positions (past the 256-row float blocks)
        idx[rng.random(shape) < 0.8] = rows // 2
    return idx


def test_reference_gradient_is_finite_differences():
    idx = _indices((4, 5), 7, 1)
    w = rand((7, 3), 2).astype(np.float64)
    dy = rand((4, 5, 3), 3).astype(np.float64)
    dw = reference.embedding_backward(dy.reshape(-1, 3).astype(np.float32), idx.reshape(-1),
                                      7, -1, False)
    h = 1e-6
    for flat in range(w.size):
        e = np.zeros(w.size)
        e[flat] = h
        e = e.reshape(w.shape)
        numeric = (np.sum(dy * (w + e)[idx]) - np.sum(dy * (w - e)[idx])) / (2 * h)
        assert dw.flat[flat] == pytest.approx(numeric, rel=1e-5, abs=1e-6)


def _cases():
    """(n, dim, rows, padding_idx, scale_grad_by_freq, skew) around every vector width."""
    cases = []
    for dim in list(range(1, 18)) + [31, 32, 33, 63, 64, 65, 127, 128, 129, 300]:
        cases.append((3 * dim + 11, dim, 13, dim % 13 if dim % 3 else -1, dim % 2 == 0, False))
    cases.append((2000, 40, 50, 25, False, True))   # a row with ~1600 positions
    cases.append((2000, 9, 3, -1, True, True))
    cases.append((100, 16, 100000, 0, False, False))  # most rows untouched
    return cases


def _check_against_reference(fn, n, dim, rows, pad, freq, skew, seed):
    idx = _indices(n, rows, seed, skew)
    dy = rand((n, dim), seed + 1)
    want = reference.embedding_backward(dy, idx, rows, pad, freq)
    got = fn(dy, idx, rows, pad, freq)
    assert got.dtype == np.float32 and got.shape == (rows, dim)
    # float32 sums: error up to a few ulps of the sum of magnitudes per row
    mag = reference.embedding_backward(np.abs(dy), idx, rows, pad, freq)
    np.testing.assert_array_less(np.abs(got - want), 1e-5 * mag + 1e-6)


@pytest.mark.parametrize("name", variant_params("embedding_backward"))
def test_each_native_variant_matches_the_reference(name):
    _C = pytest.importorskip("fastdl._C")
    for i, case in enumerate(_cases()):
        _check_against_reference(lambda *a: _C.embedding_backward(*a, variant=name), *case,
                                 seed=10 * i)


def test_numba_twin_matches_the_reference():
    pytest.importorskip("numba")
    module = importlib.import_module("fastdl._numba")
    for i, case in enumerate(_cases()):
        _check_against_reference(module.embedding_backward, *case, seed=10 * i)


def test_native_result_does_not_depend_on_the_thread_count():
    _C = pytest.importorskip("fastdl._C")
    idx = _indices(50000, 3000, 4, skew=True)
    dy = rand((50000, 24), 5)
    want = reference.embedding_backward(dy, idx, 3000, 7, True)
    start = _C.num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            _C.set_num_threads(threads)
            results.append(_C.embedding_backward(dy, idx, 3000, 7, True))
    finally:
        _C.set_num_threads(start)
    for r in results:
        np.testing.assert_array_equal(r, results[0])
    np.testing.assert_allclose(results[0], want, rtol=1e-5, atol=1e-5)


def test_native_binding_refuses_indices_out_of_range_itself():
    """A direct call that skipped fastdl.ops' checks raises instead of writing out of
    bounds."""
    _C = pytest.importorskip("fastdl._C")
    dy = rand((3, 4), 1)
    for bad in ([0, 5, 1], [0, -1, 1]):
        with pytest.raises(ValueError, match=r"outside \[0, 5\)"):
            _C.embedding_backward(dy, np.array(bad), 5, -1, False)
    with pytest.raises(ValueError, match="expected dy"):
        _C.embedding_backward(dy, np.array([0, 1]), 5, -1, False)


# ------------------------------------------------------------ the public ops vs torch

@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


TORCH_CASES = [  # indices shape, num_embeddings, dim, kwargs
    ((4, 7), 10, 8, dict()),
    ((3, 50), 20, 33, dict(padding_idx=0)),
    ((2, 3, 40), 9, 17, dict(padding_idx=-2, scale_grad_by_freq=True)),
    ((300,), 5000, 64, dict(scale_grad_by_freq=True)),
    ((), 6, 5, dict()),                     # one index
    ((0, 4), 6, 5, dict(padding_idx=3)),    # no index
]


@pytest.mark.parametrize("shape,rows,dim,kwargs", TORCH_CASES)
def test_embedding_and_its_gradient_match_torch(any_backend, torch, shape, rows, dim, kwargs):
    idx = _indices(shape, rows, 6)
    w = rand((rows, dim), 7)
    tw = torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.embedding(torch.tensor(idx), tw, **kwargs)
    y = ops.embedding(idx, w, padding_idx=kwargs.get("padding_idx"))
    np.testing.assert_array_equal(y, ty.detach().numpy())
    dy = rand(tuple(ty.shape), 8)
    ty.backward(torch.tensor(dy))
    dw = ops.embedding_backward(dy, idx, rows, **kwargs)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_any_integer_dtype_and_strides(any_backend):
    idx = np.array([[3, 1, 3], [0, 2, 3]], dtype=np.uint8)
    dy = rand((3, 2, 4), 9)  # a transposed (non-contiguous) view below
    got = ops.embedding_backward(dy.transpose(1, 0, 2), idx.astype(np.int32), 5)
    want = reference.embedding_backward(np.ascontiguousarray(dy.transpose(1, 0, 2)).reshape(-1, 4),
                                        idx.reshape(-1).astype(np.int64), 5, -1, False)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_array_equal(ops.embedding_backward(dy.transpose(1, 0, 2), idx, 5), got)
    np.testing.assert_array_equal(ops.embedding(idx, np.eye(5)), np.eye(5, dtype=np.float32)[idx])


@pytest.mark.parametrize("call,error,match", [
    (lambda: ops.embedding(np.array([1.0, 2.0]), np.ones((4, 2))), TypeError,
     "input: expected an integer array of indices, got dtype float64"),
    (lambda: ops.embedding(np.array([True]), np.ones((4, 2))), TypeError, "dtype bool"),
    (lambda: ops.embedding(np.array([1, 4]), np.ones((4, 2))), ValueError,
     r"input: index 4 is outside \[0, 4\)"),
    (lambda: ops.embedding(np.array([-1, 2]), np.ones((4, 2))), ValueError,
     r"input: index -1 is outside \[0, 4\)"),
    (lambda: ops.embedding(np.array([1]), np.ones(4)), ValueError,
     r"weight: expected a 2-D array \(num_embeddings, embedding_dim\)"),
    (lambda: ops.embedding(np.array([1]), np.ones((4, 2)), padding_idx=4), ValueError,
     r"padding_idx: expected an int in \[-4, 4\)"),
    (lambda: ops.embedding(None, np.ones((4, 2))), TypeError, "input: expected an integer"),
    (lambda: ops.embedding_backward(np.ones((2, 3)), np.array([0, 9]), 5), ValueError,
     r"indices: index 9 is outside \[0, 5\)"),
    (lambda: ops.embedding_backward(np.ones((2, 3)), np.array([0.0, 1.0]), 5), TypeError,
     "indices: expected an integer array"),
    (lambda: ops.embedding_backward(np.ones((3, 3)), np.array([0, 1]), 5), ValueError,
     r"grad_output: expected the shape of indices \(2,\) \+ \(embedding_dim,\), got \(3, 3\)"),
    (lambda: ops.embedding_backward(np.ones(2), np.array([0, 1]), 5), ValueError,
     "grad_output: expected the shape of indices"),
    (lambda: ops.embedding_backward(np.ones((2, 3)), np.array([0, 1]), -1), ValueError,
     "num_embeddings: expected an int >= 0"),
    (lambda: ops.embedding_backward(np.ones((2, 3)), np.array([0, 1]), 2.5), TypeError,
     "num_embeddings: expected an int"),
    (lambda: ops.embedding_backward(np.ones((2, 3)), np.array([0, 1]), 5, padding_idx=-6),
     ValueError, "padding_idx"),
    (lambda: ops.embedding_backward(np.ones((2, 3)), np.array([0, 1]), 5,
                                    scale_grad_by_freq=1), TypeError, "scale_grad_by_freq"),
    (lambda: ops.embedding_backward(np.ones((2, 3), complex), np.array([0, 1]), 5), TypeError,
     "grad_output"),
])
def test_bad_arguments_are_refused_by_name(any_backend, call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_empty_tables_and_rows(any_backend):
    assert ops.embedding_backward(np.ones((0, 3)), np.zeros(0, int), 0).shape == (0, 3)
    dw = ops.embedding_backward(np.ones((2, 0)), np.array([0, 1]), 4)
    assert dw.shape == (4, 0)


# ------------------------------------------------------------ the layer

def test_embedding_layer_gradient_is_the_ops_gradient(any_backend):
    import fastdl.layers as L
    from fastdl.models import Sequential
    rng = np.random.default_rng(11)
    x = rng.integers(0, 30, size=(8, 12))
    x[:, :3] = 4  # repeated indices
    layer = L.Embedding(30, 6)
    model = Sequential([L.Input((12,), dtype="int32"), layer])
    model.compile(optimizer=fastdl.optimizers.SGD(learning_rate=1.0), loss="mse")
    target = rng.standard_normal((8, 12, 6)).astype(np.float32)
    before = layer.get_weights()[0].copy()
    y = model.predict(x, verbose=0)
    model.train_on_batch(x, target)
    dy = 2.0 * (y - target) / y.size  # Keras' mse: the mean over every element
    want = ops.embedding_backward(dy, x, 30)
    np.testing.assert_allclose(before - layer.get_weights()[0], want, rtol=1e-4, atol=1e-7)
