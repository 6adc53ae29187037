"""Gradients of the losses: the NumPy reference against central finite differences in
float64 of the reference forward; the Cython kernels (fastdl._losses) and the Numba twin
against the reference; the public fastdl.ops.<loss>_backward on every backend against
PyTorch autograd (every reduction, weights, pos_weight, label smoothing, ignore_index,
extra axes); bad arguments.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from fastdl import _reference as reference
from fastdl import ops

H = 1e-6


def rand(shape, seed, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def numeric_gradient(f, x):
    """d f / d x by central differences in float64."""
    x = np.asarray(x, np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[i] += H
        minus[i] -= H
        grad[i] = (f(plus) - f(minus)) / (2 * H)
    return grad


def pointwise_case(kind, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "bce":
        x = rng.uniform(0.05, 0.95, 12)
    else:
        x = rng.standard_normal(12) * 2
    t = rng.uniform(0, 1, 12) if kind.startswith("bce") else rng.standard_normal(12)
    if kind == "l1":
        x[np.abs(x - t) < 1e-3] += 0.01  # away from the kink
    return x, t, rng.uniform(0.5, 2, 12), rng.uniform(0.5, 3, 12)


@pytest.mark.parametrize("kind", ["mse", "l1", "bce", "bce_logits"])
def test_reference_pointwise_gradients_are_finite_differences(kind):
    x, t, w, pw = pointwise_case(kind)
    pw = pw if kind == "bce_logits" else None

    def loss(z):
        return reference.pointwise_loss(z, t, w, pw, kind, None)

    out = np.empty(12)
    reference.pointwise_loss_backward(x, t, w, pw, kind, 0.7, out)
    np.testing.assert_allclose(out, 0.7 * numeric_gradient(loss, x), rtol=1e-5, atol=1e-6)


def class_case(mode, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 5, 2))
    if mode == "probs":
        x = rng.uniform(0.05, 1.0, (3, 5, 2))
    if mode == "log_probs":
        x = -rng.uniform(0.1, 3, (3, 5, 2))
    target = np.array([[0, 4], [2, -1], [3, 1]])
    return x, target, rng.uniform(0.5, 2, 5).astype(np.float32), rng.uniform(0.5, 2, (3, 2))


@pytest.mark.parametrize("mode", ["logits", "log_probs", "probs"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_reference_class_gradients_are_finite_differences(mode, smoothing):
    x, target, w, sw = class_case(mode)

    def loss(z):
        out = np.empty(target.shape)
        reference.class_loss(z, target, w, -1, mode, smoothing, out)
        return float(np.sum(0.5 * sw * out))

    out = np.empty(x.shape)
    reference.class_loss_backward(x, target, w, -1, mode, smoothing, 0.5, sw, out)
    np.testing.assert_allclose(out, numeric_gradient(loss, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["logits", "probs"])
def test_reference_soft_target_gradients_are_finite_differences(mode):
    x, _, w, sw = class_case(mode)
    t = np.random.default_rng(3).dirichlet(np.ones(5), (3, 2)).transpose(0, 2, 1)

    def loss(z):
        out = np.empty((3, 2))
        reference.soft_target_loss(z, t, w, mode, 0.1, out)
        return float(np.sum(2.0 * sw * out))

    out = np.empty(x.shape)
    reference.soft_target_loss_backward(x, t, w, mode, 0.1, 2.0, sw, out)
    np.testing.assert_allclose(out, numeric_gradient(loss, x), rtol=1e-5, atol=1e-6)


def test_reference_probs_gradient_is_zero_where_keras_clips():
    out = np.empty((1, 3, 1))
    # -log(x_0 / S): class 1 (q = 0) is clipped but still moves S.
    x = np.array([[[0.5], [0.0], [0.5]]])
    reference.class_loss_backward(x, np.array([[0]]), None, -1, "probs", 0.0, 1.0, None, out)
    np.testing.assert_allclose(out[0, :, 0], [-1.0, 1.0, 1.0])
    # q_0 = 1 - 1e-12 > 1 - epsilon: the loss is the constant -log(1 - epsilon).
    x = np.array([[[1.0], [0.0], [1e-12]]])
    reference.class_loss_backward(x, np.array([[0]]), None, -1, "probs", 0.0, 1.0, None, out)
    np.testing.assert_array_equal(out, 0.0)


# ------------------------------------------------------------ native and Numba kernels

def backends():
    return ["native", "numba"]


def kernels_of(label):
    name = {"native": "fastdl._native", "numba": "fastdl._numba"}[label]
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.skip(f"{label} backend unavailable: {exc}")


@pytest.mark.parametrize("label", backends())
@pytest.mark.parametrize("kind", ["mse", "l1", "bce", "bce_logits"])
@pytest.mark.parametrize("weighted", [False, True])
def test_pointwise_kernels_match_reference(label, kind, weighted):
    k = kernels_of(label)
    x, t, w, pw = (a.astype(np.float32) for a in pointwise_case(kind, 5))
    w = w if weighted else None
    pw = pw if weighted and kind == "bce_logits" else None
    want, got = np.empty(12, np.float32), np.empty(12, np.float32)
    reference.pointwise_loss_backward(x, t, w, pw, kind, 0.25, want)
    k.pointwise_loss_backward(x, t, w, pw, kind, 0.25, got)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("label", backends())
@pytest.mark.parametrize("mode", ["logits", "log_probs", "probs"])
@pytest.mark.parametrize("shape", [(3, 5, 2), (300, 10, 1), (2, 3, 700), (0, 4, 1)])
def test_class_kernels_match_reference(label, mode, shape):
    k = kernels_of(label)
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape).astype(np.float32) * 3
    if mode == "probs":
        x = np.abs(x)
        x[:, 0] = 0.0  # some probabilities at 0: clipped
    target = rng.integers(0, shape[1], (shape[0], shape[2]))
    target[..., ::3] = -1  # ignored
    w, sw = rng.uniform(0.5, 2, shape[1]).astype(np.float32), rng.uniform(
        0.5, 2, (shape[0], shape[2])).astype(np.float32)
    for weight, sample_weight, smoothing in ((None, None, 0.0), (w, sw, 0.1)):
        want, got = np.empty(shape, np.float32), np.empty(shape, np.float32)
        reference.class_loss_backward(x, target, weight, -1, mode, smoothing, 0.3,
                                      sample_weight, want)
        k.class_loss_backward(x, target, weight, -1, mode, smoothing, 0.3, sample_weight, got)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        t = rng.dirichlet(np.ones(shape[1]), (shape[0], shape[2])).transpose(0, 2, 1)
        t = np.ascontiguousarray(t, dtype=np.float32)
        if mode != "log_probs":
            reference.soft_target_loss_backward(x, t, weight, mode, smoothing, 0.3,
                                                sample_weight, want)
            k.soft_target_loss_backward(x, t, weight, mode, smoothing, 0.3, sample_weight, got)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------ the public ops vs PyTorch

@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def torch_grad(torch, f, x, reduction, upstream):
    tx = torch.tensor(x, requires_grad=True)
    loss = f(tx)
    if reduction == "none":
        loss.backward(torch.tensor(upstream))
    else:
        (loss * upstream).backward()
    return tx.grad.numpy()


def upstream_for(reduction, shape):
    return rand(shape, 99) if reduction == "none" else 0.75


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_pointwise_backward_matches_torch(any_backend, torch, reduction):
    F = torch.nn.functional
    x, t = rand((4, 6), 1), rand((4, 6), 2)
    p, pt = 1 / (1 + np.exp(-x)), (t > 0).astype(np.float32)
    w, pw = np.abs(rand(6, 3)) + 0.5, np.abs(rand(6, 4)) + 0.5
    g = upstream_for(reduction, x.shape)
    cases = [
        (ops.mse_loss_backward(x, t, reduction, g),
         torch_grad(torch, lambda a: F.mse_loss(a, torch.tensor(t), reduction=reduction), x,
                    reduction, g)),
        (ops.l1_loss_backward(x, t, reduction, g),
         torch_grad(torch, lambda a: F.l1_loss(a, torch.tensor(t), reduction=reduction), x,
                    reduction, g)),
        (ops.binary_cross_entropy_backward(p, pt, w, reduction, g),
         torch_grad(torch, lambda a: F.binary_cross_entropy(
             a, torch.tensor(pt), torch.tensor(w), reduction=reduction), p, reduction, g)),
        (ops.binary_cross_entropy_with_logits_backward(x, pt, w, reduction, pw, g),
         torch_grad(torch, lambda a: F.binary_cross_entropy_with_logits(
             a, torch.tensor(pt), torch.tensor(w), reduction=reduction,
             pos_weight=torch.tensor(pw)), x, reduction, g)),
    ]
    for got, want in cases:
        assert got.dtype == np.float32 and got.shape == x.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("extra", [(), (3,)])
def test_cross_entropy_and_nll_backward_match_torch(any_backend, torch, reduction, extra):
    F = torch.nn.functional
    x = rand((5, 4) + extra, 5, 3.0)
    t = np.random.default_rng(6).integers(0, 4, (5,) + extra)
    t.reshape(-1)[1] = -100
    w = np.abs(rand(4, 7)) + 0.5
    g = upstream_for(reduction, t.shape)
    for smoothing in (0.0, 0.15):
        got = ops.cross_entropy_backward(x, t, w, reduction, smoothing, grad_output=g)
        want = torch_grad(torch, lambda a: F.cross_entropy(
            a, torch.tensor(t), torch.tensor(w), reduction=reduction,
            label_smoothing=smoothing), x, reduction, g)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    probs = np.random.default_rng(8).dirichlet(np.ones(4), (5,) + extra)
    probs = np.moveaxis(probs, -1, 1).astype(np.float32)
    got = ops.cross_entropy_backward(x, probs, w, reduction, 0.1, grad_output=g)
    want = torch_grad(torch, lambda a: F.cross_entropy(
        a, torch.tensor(probs), torch.tensor(w), reduction=reduction, label_smoothing=0.1),
        x, reduction, g)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    logp = ops.log_softmax(x, axis=1)
    got = ops.nll_loss_backward(logp, t, w, reduction, grad_output=g)
    want = torch_grad(torch, lambda a: F.nll_loss(a, torch.tensor(t), torch.tensor(w),
                                                  reduction=reduction), logp, reduction, g)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_gradients_over_nothing_are_zeros_like_torch():
    got = ops.cross_entropy_backward(np.zeros((2, 3), np.float32), np.array([-100, -100]))
    assert got.shape == (2, 3) and np.all(got == 0)  # every sample ignored (the loss is NaN)
    assert ops.mse_loss_backward(np.zeros(0), np.zeros(0)).shape == (0,)


@pytest.mark.parametrize("call,match", [
    (lambda: ops.mse_loss_backward(np.ones(3), np.ones(4)), "target: expected the shape"),
    (lambda: ops.mse_loss_backward(np.ones(3), np.ones(3), "avg"), "reduction"),
    (lambda: ops.mse_loss_backward(np.ones(3), np.ones(3), grad_output="x"), "grad_output"),
    (lambda: ops.l1_loss_backward(np.ones(3), np.ones(3), "none", np.ones(4)), "grad_output"),
    (lambda: ops.cross_entropy_backward(np.ones((2, 3)), np.array([0, 3])), "target"),
    (lambda: ops.cross_entropy_backward(np.ones((2, 3)), np.array([0, 1]), np.ones(2)),
     "weight"),
    (lambda: ops.nll_loss_backward(np.ones((2, 3)), np.array([0.5, 1])), "target"),
])
def test_bad_arguments_raise_naming_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
