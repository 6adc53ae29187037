"""Gradients of batch normalisation (training and inference mode).

- The NumPy reference's batch_norm_backward against central finite differences in float64
  of the forward (batch statistics recomputed from the perturbed x in training mode).
- Every batch-norm variant of fastdl._C and the Numba twin against the reference: plane
  lengths and channel counts (the rows layout, spatial 1) around every vector width.
- The public fastdl.ops.batch_norm_backward on every backend against PyTorch autograd of
  torch.nn.functional.batch_norm: 2-D (N, C), 3-D, 4-D, 5-D inputs, batch 1, no weight, no
  bias, inference mode; and with bad arguments.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from fastdl import _reference as reference
from fastdl import ops
from native_variants import runnable, skipped, unrunnable


def rand(shape, seed, scale=1.0, shift=0.0):
    x = np.random.default_rng(seed).standard_normal(shape) * scale + shift
    return x.astype(np.float32)


def forward64(x, gamma, beta, training, mean=None, var=None, eps=1e-5):
    """batch norm over x [N, C, S] in float64; batch statistics when training."""
    if training:
        mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    xhat = (x - mean[:, None]) / np.sqrt(var[:, None] + eps)
    return xhat * gamma[:, None] + beta[:, None]


def inputs(n, c, s, seed, eps=1e-5, training=True):
    """(dy, x, mean, inv_std, gamma) float32 as the backends take them; the running
    statistics (inference) differ from the batch's."""
    x = rand((n, c, s), seed, 2.0, 0.5)
    dy, gamma = rand((n, c, s), seed + 1), rand(c, seed + 2)
    x64 = x.astype(np.float64)
    if training and x.size:
        mean, var = x64.mean(axis=(0, 2)), x64.var(axis=(0, 2))
    elif training:
        mean, var = np.zeros(c), np.zeros(c)  # what batch_norm_statistics gives
    else:
        mean = rand(c, seed + 3).astype(np.float64)
        var = np.random.default_rng(seed + 4).uniform(0.5, 2.0, c)
    inv_std = (1 / np.sqrt(var + eps)).astype(np.float32)
    return dy, x, mean.astype(np.float32), inv_std, gamma


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3, 5), (6, 2, 1), (1, 2, 7)])
def test_reference_gradients_are_finite_differences(shape, training):
    n, c, s = shape
    x = rand(shape, 1, 1.5, 0.3).astype(np.float64)
    gamma, beta = rand(c, 2).astype(np.float64), rand(c, 3).astype(np.float64)
    dy = rand(shape, 4).astype(np.float64)
    mean, var = rand(c, 5).astype(np.float64), np.linspace(0.5, 2.0, c)
    eps = 1e-5

    def loss(x_, g_, b_):
        return float(np.sum(forward64(x_, g_, b_, training, mean, var, eps) * dy))

    if training:
        m, v = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    else:
        m, v = mean, var
    dx, dg, db = reference.batch_norm_backward(
        dy.astype(np.float32), x.astype(np.float32), m, 1 / np.sqrt(v + eps),
        gamma.astype(np.float32), training, True, True)
    h, rng = 1e-6, np.random.default_rng(6)
    for grad, which, arr in ((dx, 0, x), (dg, 1, gamma), (db, 2, beta)):
        for flat in rng.choice(arr.size, min(arr.size, 10), replace=False):
            e = np.zeros(arr.size)
            e[flat] = h
            e = e.reshape(arr.shape)
            args = [x, gamma, beta]
            plus, minus = list(args), list(args)
            plus[which], minus[which] = arr + e, arr - e
            numeric = (loss(*plus) - loss(*minus)) / (2 * h)
            assert grad.flat[flat] == pytest.approx(numeric, rel=1e-4, abs=1e-5), which


def implementations():
    params = [pytest.param(name, id=name.split("__")[-1]) for name in runnable("batchnorm")]
    return params + [skipped(name) for name in unrunnable("batchnorm")] + ["numba"]


# Plane lengths (spatial) around the 4-, 8- and 16-float vectors and the 1024-float sum
# block; channel counts in the rows layout (spatial 1) around the same widths.
SHAPES = ([(3, 2, s) for s in (2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33)]
          + [(1, 3, 1023), (2, 2, 1025)]
          + [(5, c, 1) for c in (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33)]
          + [(700, 19, 1), (0, 3, 4)])


@pytest.mark.parametrize("label", implementations())
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_every_implementation_matches_the_reference(label, shape):
    if label == "numba":
        pytest.importorskip("numba")
        module, kw = importlib.import_module("fastdl._numba"), {}
    else:
        module, kw = importlib.import_module("fastdl._C"), {"variant": label}
    for training in (True, False):
        dy, x, mean, inv_std, gamma = inputs(*shape, seed=sum(shape), training=training)
        for g in (gamma, None):
            want = reference.batch_norm_backward(dy, x, mean, inv_std, g, training, True, True)
            got = module.batch_norm_backward(dy, x, mean, inv_std, g, training, True, True,
                                             **kw)
            for a, r, name in zip(got, want, ("dx", "dgamma", "dbeta")):
                assert a.dtype == np.float32 and a.shape == r.shape, name
                scale = max(1.0, float(np.abs(r).max()) if r.size else 1.0)
                np.testing.assert_allclose(a, r, rtol=2e-5, atol=2e-5 * scale,
                                           err_msg=f"{name} training={training}")
        dx, dg, db = module.batch_norm_backward(dy, x, mean, inv_std, gamma, training, False,
                                                False, **kw)
        assert dx is None and dg is None and db is None
        dx, dg, db = module.batch_norm_backward(dy, x, mean, inv_std, gamma, training, True,
                                                False, **kw)
        want = reference.batch_norm_backward(dy, x, mean, inv_std, gamma, training, True, False)
        np.testing.assert_allclose(dx, want[0], rtol=2e-5, atol=2e-5)
        assert dg is None and db is None


# ------------------------------------------------------------ the public op vs torch

@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


TORCH_SHAPES = [(16, 17), (9, 8), (4, 33), (3, 4, 7), (2, 3, 5, 7), (1, 8, 4, 4),
                (1, 3, 17), (2, 2, 3, 4, 5), (3, 16, 2, 2)]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", TORCH_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_batch_norm_backward_matches_torch_autograd(any_backend, torch, shape, affine,
                                                    training):
    c = shape[1]
    x = rand(shape, 10, 3.0, -1.0)
    w, b = rand(c, 11), rand(c, 12)
    rm, rv = rand(c, 13), np.random.default_rng(14).uniform(0.3, 3.0, c).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    tw, tb = (torch.tensor(a, requires_grad=True) for a in (w, b))
    ty = torch.nn.functional.batch_norm(tx, torch.tensor(rm), torch.tensor(rv),
                                        tw if affine else None, tb if affine else None,
                                        training=training, eps=1e-3)
    dy = rand(shape, 15)
    ty.backward(torch.tensor(dy))
    dx, dw, db = ops.batch_norm_backward(dy, x, rm, rv, w if affine else None,
                                         b if affine else False, training=training, eps=1e-3)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-5, atol=2e-5)
    if affine:
        np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-5, atol=1e-4)
    else:
        assert dw is None and db is None
    # The forward's own output normalised the same way (the pair is consistent).
    y = ops.batch_norm(x, rm.copy(), rv.copy(), w if affine else None, b if affine else None,
                       training=training, eps=1e-3)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert ops.batch_norm_backward(dy, x, rm, rv, training=training, eps=1e-3,
                                   needs_input_grad=False)[0] is None


def test_defaults_and_forms(any_backend):
    x, dy = rand((4, 3, 6), 20), rand((4, 3, 6), 21)
    dx, dw, db = ops.batch_norm_backward(dy, x)  # training, no weight, a bias
    assert dx.shape == x.shape and dw is None and db.shape == (3,)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 2)), rtol=1e-5)
    # Any real dtype and strides; the forward's bias array counts as a bias.
    dx64, _, db2 = ops.batch_norm_backward(dy.astype(np.float64)[:, :, ::-1][:, :, ::-1],
                                           x.astype(np.float64), bias=np.zeros(3))
    np.testing.assert_allclose(dx64, dx, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db2, db)
    # Training's dx sums to zero per channel (the mean's path) and is orthogonal to xhat.
    xhat = (x - x.mean(axis=(0, 2), keepdims=True)) / x.std(axis=(0, 2), keepdims=True)
    assert np.abs(dx.sum(axis=(0, 2))).max() < 1e-5
    assert np.abs((dx * xhat).sum(axis=(0, 2))).max() < 1e-4
    # The forward's batch statistics given: the same gradients without a pass over x; a
    # single value per channel is then allowed (xhat = 0: dx = 0, as Keras has it).
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis=(0, 2)), x64.var(axis=(0, 2))
    dx2, _, db2 = ops.batch_norm_backward(dy, x, batch_mean=mean, batch_var=var)
    np.testing.assert_allclose(dx2, dx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(db2, db)
    one = rand((1, 3), 22)
    dx1, dw1, db1 = ops.batch_norm_backward(rand((1, 3), 23), one, weight=np.ones(3),
                                            batch_mean=one[0], batch_var=np.zeros(3))
    assert np.abs(dx1).max() < 1e-4 and np.all(dw1 == 0)  # (1 / sqrt(eps) * dy cancels)
    # Inference: a zero-size batch gives empty dx and zero sums.
    dx, dw, db = ops.batch_norm_backward(np.ones((0, 3, 2)), np.ones((0, 3, 2)),
                                         np.zeros(3), np.ones(3), np.ones(3), training=False)
    assert dx.shape == (0, 3, 2) and np.all(dw == 0) and np.all(db == 0)


def _ones(*shape):
    return np.ones(shape, np.float32)


@pytest.mark.parametrize("call,error,match", [
    (lambda: ops.batch_norm_backward(_ones(2, 3, 4), _ones(2, 3, 5)), ValueError,
     r"grad_output: expected x's shape \(2, 3, 5\), got \(2, 3, 4\)"),
    (lambda: ops.batch_norm_backward(_ones(3), _ones(3)), ValueError,
     "x: expected an array .N, C, .... of at least 2 dimensions"),
    (lambda: ops.batch_norm_backward(_ones(2, 3), _ones(2, 3), weight=_ones(4)), ValueError,
     r"weight: expected shape \(3,\), got \(4,\)"),
    (lambda: ops.batch_norm_backward(_ones(2, 3), _ones(2, 3), bias=_ones(2)), ValueError,
     r"bias: expected shape \(3,\)"),
    (lambda: ops.batch_norm_backward(_ones(1, 3), _ones(1, 3)), ValueError,
     "x: training needs more than 1 value per channel"),
    (lambda: ops.batch_norm_backward(_ones(2, 3), _ones(2, 3), training=False), ValueError,
     "running_mean: inference .training=False. needs running_mean and running_var"),
    (lambda: ops.batch_norm_backward(_ones(2, 3), _ones(2, 3), _ones(3), _ones(2),
                                     training=False), ValueError,
     r"running_var: expected shape \(3,\)"),
    (lambda: ops.batch_norm_backward(_ones(2, 3), _ones(2, 3), eps=0), ValueError,
     "eps: expected a positive number"),
    (lambda: ops.batch_norm_backward(_ones(2, 3), _ones(2, 3), training=1), TypeError,
     "training"),
    (lambda: ops.batch_norm_backward(_ones(2, 3), _ones(2, 3), needs_input_grad="no"),
     TypeError, "needs_input_grad"),
    (lambda: ops.batch_norm_backward(_ones(2, 3), np.ones((2, 3), complex)), TypeError,
     "x: expected an array of real numbers"),
    (lambda: ops.batch_norm_backward(None, _ones(2, 3)), TypeError, "grad_output"),
    (lambda: ops.batch_norm_backward(_ones(2, 3), _ones(2, 3), batch_mean=_ones(3)),
     ValueError, "batch_mean: give batch_mean and batch_var together"),
    (lambda: ops.batch_norm_backward(_ones(2, 3), _ones(2, 3), _ones(3), _ones(3),
                                     training=False, batch_mean=_ones(3), batch_var=_ones(3)),
     ValueError, "batch_mean: the batch statistics are for training=True"),
    (lambda: ops.batch_norm_backward(_ones(2, 3), _ones(2, 3), batch_mean=_ones(3),
                                     batch_var=_ones(4)), ValueError,
     r"batch_var: expected shape \(3,\)"),
])
def test_bad_arguments_are_refused_by_name(call, error, match):
    with pytest.raises(error, match=match):
        call()
