"""The losses added for training (huber / smooth_l1, hinge / squared_hinge, Keras'
kl_divergence and torch's kl_div, the triplet margin loss) on every floor: the NumPy
reference's gradients against central finite differences in float64; the Cython kernels
and the Numba twin against the reference (sizes around the 4-way unrolled loop, the kinks,
the clips, NaN); fastdl.ops on every backend against torch.nn.functional and autograd
(every reduction, an upstream gradient); fastdl.losses against Keras 3's functions and
classes (torch backend), values and gradients; losses.get; bad arguments.
"""
from __future__ import annotations

import importlib
import math
import os

import numpy as np
import pytest

import fastdl
from fastdl import _reference as reference
from fastdl import losses as keras_losses
from fastdl import ops

# These tests seed and draw: the modules after them see the global random state unmoved.
pytestmark = pytest.mark.usefixtures("isolated_random_state")

H = 1e-6
NEW_KINDS = ["huber", "smooth_l1", "hinge", "squared_hinge", "kld", "kl_div", "kl_div_log"]
REDUCTIONS = ["mean", "sum", "none"]


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


def kernels_of(label):
    name = {"native": "fastdl._native", "numba": "fastdl._numba"}[label]
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.skip(f"{label} backend unavailable: {exc}")


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    k = pytest.importorskip("keras")
    if k.backend.backend() != "torch":
        pytest.skip("keras runs on another backend than torch")
    return k


# ------------------------------------------------------------ the reference's gradients

def pointwise_case(kind, n=12, seed=0):
    """x, t away from the kinks and clips (finite differences need smooth points)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n) * 2
    t = rng.standard_normal(n)
    if kind in ("hinge", "squared_hinge"):
        t = rng.choice([-1.0, 1.0], n)
        x[np.abs(1 - t * x) < 1e-2] += 0.05
    elif kind == "kld":
        x, t = rng.uniform(0.05, 0.95, n), rng.uniform(0.0, 1.0, n)
    elif kind == "kl_div":
        x, t = np.log(rng.uniform(0.05, 1.0, n)), rng.uniform(0.0, 1.0, n)
    elif kind in ("huber", "smooth_l1"):
        d = x - t
        x[np.abs(np.abs(d) - 0.7) < 1e-2] += 0.05
    return x, t, rng.uniform(0.5, 2, n)


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_reference_pointwise_gradients_are_finite_differences(kind):
    x, t, w = pointwise_case(kind)

    def loss(z):
        return reference.pointwise_loss(z, t, w, None, kind, None, 0.7)

    out = np.empty(x.shape)
    reference.pointwise_loss_backward(x, t, w, None, kind, 0.3, out, 0.7)
    np.testing.assert_allclose(out, 0.3 * numeric_gradient(loss, x), rtol=1e-5, atol=1e-6)


def triplet_case(n=4, d=5, seed=0):
    return [np.random.default_rng(seed + i).standard_normal((n, d)) for i in range(3)]


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 1.5])
@pytest.mark.parametrize("swap", [False, True])
def test_reference_triplet_gradients_are_finite_differences(p, swap):
    a, pos, neg = triplet_case(seed=3)
    sw = np.random.default_rng(9).uniform(0.5, 2, 4)
    arrays = [a, pos, neg]

    def loss_of(which):
        def f(z):
            args = list(arrays)
            args[which] = z
            out = np.empty(4)
            reference.triplet_loss(*args, 2.5, p, 1e-6, swap, out)
            return float(np.sum(0.5 * sw * out))
        return f

    outs = [np.empty((4, 5)) for _ in range(3)]
    reference.triplet_loss_backward(a, pos, neg, 2.5, p, 1e-6, swap, 0.5, sw, *outs)
    assert np.any(outs[0] != 0)  # a margin of 2.5 keeps some triplets active
    for which in range(3):
        np.testing.assert_allclose(outs[which], numeric_gradient(loss_of(which), arrays[which]),
                                   rtol=1e-5, atol=1e-6)


def test_reference_triplet_swap_takes_the_closer_negative():
    a = np.array([[0.0, 0.0]])
    pos = np.array([[1.0, 0.0]])
    neg = np.array([[1.5, 0.0]])  # d_an = 1.5, d_pn = 0.5: the swap uses 0.5
    got = [reference.triplet_loss(a, pos, neg, 1.0, 2.0, 0.0, swap, None) for swap in
           (False, True)]
    np.testing.assert_allclose(got, [0.5, 1.5])


# ------------------------------------------------------------ native and Numba kernels

def edge_case(kind, n, seed):
    """Random values with the kinks, clips and a NaN planted in them (n >= 8)."""
    x, t, w = (a.astype(np.float32) for a in pointwise_case(kind, n, seed))
    if n >= 8:
        if kind in ("hinge", "squared_hinge"):
            x[0], t[0] = 1.0, 1.0       # 1 - t x = 0: the tie
            t[1] = 0.5                  # labels are taken as given by the kernel
        if kind in ("huber", "smooth_l1"):
            x[0], t[0] = 0.7, 0.0       # |d| = param
        if kind == "kld":
            x[:4] = [0.0, 1.0, 1.5, np.float32(1e-7)]  # clipped below, at 1, above, at epsilon
            t[4] = 0.0
        if kind == "kl_div":
            t[0], t[1] = 0.0, -0.5      # 0 log 0 = 0; log of a negative target: NaN
        x[-1] = np.nan
    return x, t, w


@pytest.mark.parametrize("label", ["native", "numba"])
@pytest.mark.parametrize("kind", NEW_KINDS)
@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 17])
@pytest.mark.parametrize("weighted", [False, True])
def test_pointwise_kernels_match_reference(label, kind, n, weighted):
    k = kernels_of(label)
    x, t, w = edge_case(kind, n, n)
    w = w if weighted else None
    for fn_out in (True, False):
        want_o, got_o = np.empty(n, np.float32), np.empty(n, np.float32)
        want = reference.pointwise_loss(x, t, w, None, kind, want_o if fn_out else None, 0.7)
        got = k.pointwise_loss(x, t, w, None, kind, got_o if fn_out else None, 0.7)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * (n + 1))
        if fn_out:
            np.testing.assert_allclose(got_o, want_o, rtol=1e-6, atol=1e-6)
    want_g, got_g = np.empty(n, np.float32), np.empty(n, np.float32)
    reference.pointwise_loss_backward(x, t, w, None, kind, 0.25, want_g, 0.7)
    k.pointwise_loss_backward(x, t, w, None, kind, 0.25, got_g, 0.7)
    np.testing.assert_allclose(got_g, want_g, rtol=2e-6, atol=1e-7)


def test_the_edges_are_what_keras_and_torch_do():
    x, t, _ = edge_case("hinge", 8, 0)
    g = np.empty(8, np.float32)
    reference.pointwise_loss_backward(x, t, None, None, "hinge", 1.0, g)
    assert g[0] == -0.5 and np.isnan(g[-1])  # torch.maximum's tie; NaN stays NaN
    x, t, _ = edge_case("kld", 8, 0)
    reference.pointwise_loss_backward(x, t, None, None, "kld", 1.0, g)
    assert g[0] == 0 and g[2] == 0 and g[1] != 0 and g[3] != 0  # torch.clip's inclusive pass
    x, t, _ = edge_case("kl_div", 8, 0)
    out = np.empty(8, np.float32)
    reference.pointwise_loss(x, t, None, None, "kl_div", out)
    assert out[0] == -0.0 and np.isnan(out[1])


@pytest.mark.parametrize("label", ["native", "numba"])
@pytest.mark.parametrize("shape", [(0, 4), (1, 1), (5, 3), (33, 17), (4, 0)])
@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 0.5])
@pytest.mark.parametrize("swap", [False, True])
def test_triplet_kernels_match_reference(label, shape, p, swap):
    k = kernels_of(label)
    rng = np.random.default_rng(sum(shape))
    a, pos, neg = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
    if shape[0] >= 5:
        pos[0] = a[0]           # d_ap = eps-distance only
        neg[1] = pos[1]         # swap: d_pn tiny
        neg[2] = a[2]           # d_an tiny: a loss above the margin
        a[3, 0] = np.nan        # a NaN row
    sw = rng.uniform(0.5, 2, shape[0]).astype(np.float32)
    want_o, got_o = np.empty(shape[0], np.float32), np.empty(shape[0], np.float32)
    want = reference.triplet_loss(a, pos, neg, 1.0, p, 1e-6, swap, want_o)
    got = k.triplet_loss(a, pos, neg, 1.0, p, 1e-6, swap, got_o)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(got_o, want_o, rtol=1e-6, atol=1e-6)
    for weight in (None, sw):
        want_g = [np.empty(shape, np.float32) for _ in range(3)]
        got_g = [np.empty(shape, np.float32) for _ in range(3)]
        reference.triplet_loss_backward(a, pos, neg, 1.0, p, 1e-6, swap, 0.3, weight, *want_g)
        k.triplet_loss_backward(a, pos, neg, 1.0, p, 1e-6, swap, 0.3, weight, *got_g)
        for g, w in zip(got_g, want_g):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------ fastdl.ops vs PyTorch

def torch_grads(torch, f, arrays, reduction, upstream):
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    loss = f(*tensors)
    if reduction == "none":
        loss.backward(torch.tensor(upstream))
    else:
        (loss * upstream).backward()
    return loss.detach().numpy(), [t.grad.numpy() for t in tensors]


def upstream_for(reduction, shape):
    return rand(shape, 99) if reduction == "none" else 0.75


def assert_loss(got, want, rtol=1e-5, atol=1e-6):
    got = np.asarray(got)
    assert got.dtype == np.float32 and got.shape == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 5), (7,)])
def test_huber_and_smooth_l1_match_torch(any_backend, torch, reduction, shape):
    F = torch.nn.functional
    x, t = rand(shape, 1, 2.0), rand(shape, 2)
    w = np.abs(rand(shape, 3)) + 0.5  # torch wants input's shape; fastdl broadcasts too
    g = upstream_for(reduction, shape)
    for delta in (1.0, 0.3, 2.5):
        want, (grad,) = torch_grads(torch, lambda a: F.huber_loss(
            a, torch.tensor(t), reduction=reduction, delta=delta), [x], reduction, g)
        assert_loss(ops.huber_loss(x, t, reduction, delta), want)
        assert_loss(ops.huber_loss_backward(x, t, reduction, delta, grad_output=g), grad)
        want, (grad,) = torch_grads(torch, lambda a: F.huber_loss(
            a, torch.tensor(t), reduction=reduction, delta=delta, weight=torch.tensor(w)),
            [x], reduction, g)
        assert_loss(ops.huber_loss(x, t, reduction, delta, w), want)
        assert_loss(ops.huber_loss_backward(x, t, reduction, delta, w, g), grad)
        row = w.reshape(-1, shape[-1])[:1].reshape(shape[-1:])
        assert_loss(ops.huber_loss(x, t, reduction, delta, row),
                    ops.huber_loss(x, t, reduction, delta, np.broadcast_to(row, shape)))
    for beta in (1.0, 0.4, 0.0):
        want, (grad,) = torch_grads(torch, lambda a: F.smooth_l1_loss(
            a, torch.tensor(t), reduction=reduction, beta=beta), [x], reduction, g)
        assert_loss(ops.smooth_l1_loss(x, t, reduction, beta), want)
        assert_loss(ops.smooth_l1_loss_backward(x, t, reduction, beta, g), grad)


@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(any_backend, torch, reduction, log_target):
    F = torch.nn.functional
    rng = np.random.default_rng(4)
    logp = np.log(rng.dirichlet(np.ones(5), (3, 2))).astype(np.float32)
    target = rng.dirichlet(np.ones(5), (3, 2)).astype(np.float32)
    target[0, 0, :2] = 0.0  # 0 log 0 = 0
    if log_target:
        target = np.log(target + 0.01).astype(np.float32)
    g = upstream_for(reduction if reduction != "batchmean" else "sum", logp.shape)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about reduction='mean'
        want, (grad,) = torch_grads(torch, lambda a: F.kl_div(
            a, torch.tensor(target), reduction=reduction, log_target=log_target), [logp],
            reduction, g)
    assert_loss(ops.kl_div(logp, target, reduction, log_target), want)
    assert_loss(ops.kl_div_backward(logp, target, reduction, log_target, g), grad)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(6, 5), (5,), (2, 3, 4), (0, 3)])
@pytest.mark.parametrize("p,swap", [(2, False), (2, True), (1, False), (3, True), (1.5, False)])
def test_triplet_margin_loss_matches_torch(any_backend, torch, reduction, shape, p, swap):
    F = torch.nn.functional
    arrays = [rand(shape, 10 + i) for i in range(3)]
    g = upstream_for(reduction, shape[:-1])
    for margin in (1.0, 0.2):
        want, grads = torch_grads(torch, lambda a, b, c: F.triplet_margin_loss(
            a, b, c, margin=margin, p=p, swap=swap, reduction=reduction), arrays, reduction, g)
        got = ops.triplet_margin_loss(*arrays, margin=margin, p=p, swap=swap,
                                      reduction=reduction)
        if math.prod(shape) == 0 and reduction == "mean":
            assert np.isnan(got) and np.isnan(want)  # a mean over nothing, as torch
            continue
        assert_loss(got, want)
        got_grads = ops.triplet_margin_loss_backward(*arrays, margin=margin, p=p, swap=swap,
                                                     reduction=reduction, grad_output=g)
        for mine, theirs in zip(got_grads, grads):
            assert mine.shape == shape and mine.dtype == np.float32
            np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("call,match", [
    (lambda: ops.huber_loss(np.ones(3), np.ones(3), delta=0.0), "delta"),
    (lambda: ops.huber_loss(np.ones(3), np.ones(3), delta="1"), "delta"),
    (lambda: ops.huber_loss(np.ones(3), np.ones(4)), "target: expected the shape"),
    (lambda: ops.huber_loss(np.ones(3), np.ones(3), weight=np.ones(2)), "weight"),
    (lambda: ops.huber_loss_backward(np.ones(3), np.ones(3), "avg"), "reduction"),
    (lambda: ops.smooth_l1_loss(np.ones(3), np.ones(3), beta=-1.0), "beta"),
    (lambda: ops.smooth_l1_loss_backward(np.ones(3), np.ones(3), "none", 1.0, np.ones(4)),
     "grad_output"),
    (lambda: ops.kl_div(np.ones(3), np.ones(3), "batch"), "reduction"),
    (lambda: ops.kl_div(np.ones(3), np.ones(3), log_target=1), "log_target"),
    (lambda: ops.kl_div(np.ones(3) + 1j, np.ones(3)), "input"),
    (lambda: ops.triplet_margin_loss(np.ones(3), np.ones(3), np.ones(4)), "negative"),
    (lambda: ops.triplet_margin_loss(np.ones((2, 3)), np.ones((3, 3)), np.ones((2, 3))),
     "positive"),
    (lambda: ops.triplet_margin_loss(np.float32(1), np.float32(1), np.float32(1)), "anchor"),
    (lambda: ops.triplet_margin_loss(np.ones(3), np.ones(3), np.ones(3), margin=0), "margin"),
    (lambda: ops.triplet_margin_loss(np.ones(3), np.ones(3), np.ones(3), p=0), "p"),
    (lambda: ops.triplet_margin_loss(np.ones(3), np.ones(3), np.ones(3), p=math.inf), "p"),
    (lambda: ops.triplet_margin_loss(np.ones(3), np.ones(3), np.ones(3), swap="yes"), "swap"),
    (lambda: ops.triplet_margin_loss_backward(np.ones((2, 3)), np.ones((2, 3)),
                                              np.ones((2, 3)), reduction="none",
                                              grad_output=np.ones(3)), "grad_output"),
])
def test_bad_arguments_raise_naming_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# ------------------------------------------------------------ fastdl.losses vs Keras 3

def keras_grad(keras_loss, y_true, y_pred, sample_weight=None):
    """(Keras' reduced loss, its gradient for y_pred) by torch autograd through Keras."""
    import torch
    p = torch.tensor(y_pred, requires_grad=True)
    sw = None if sample_weight is None else torch.tensor(sample_weight)
    loss = keras_loss(torch.tensor(y_true), p, sample_weight=sw)
    loss.backward()
    return float(loss.detach()), p.grad.numpy()


def fastdl_grad(loss, y_true, y_pred, sample_weight=None):
    """(fastdl's reduced loss, d loss / d y_pred) through Loss.gradient with Keras'
    sum_over_batch_size coefficients."""
    values = loss.call(y_true, y_pred)
    coef = np.full(values.shape, 1.0 / values.size, np.float32)
    if sample_weight is not None:
        coef = coef * keras_losses._broadcast_weight(sample_weight, values.shape)
    return float(loss(y_true, y_pred, sample_weight)), loss.gradient(y_true, y_pred, coef)


def regression_pair(shape=(6, 4)):
    return rand(shape, 20), rand(shape, 21, 2.0)


def hinge_pair(labels):
    rng = np.random.default_rng(22)
    if labels == "binary":
        t = (rng.random((6, 4)) > 0.5).astype(np.float32)
    elif labels == "signed":
        t = rng.choice([-1.0, 1.0], (6, 4)).astype(np.float32)
    else:  # not all 0/1: Keras leaves them as they are
        t = rng.choice([0.0, 1.0, 2.0], (6, 4)).astype(np.float32)
    return t, rand((6, 4), 23, 1.5)


def probability_pair():
    rng = np.random.default_rng(24)
    t = rng.dirichlet(np.ones(4), 6).astype(np.float32)
    p = rng.dirichlet(np.ones(4), 6).astype(np.float32)
    t[0, 0] = 0.0
    p[1, 1] = 0.0  # clipped to epsilon: no gradient there
    p[2, 2] = 1.5  # clipped to 1
    return t, p


CASES = [
    ("huber", {}, regression_pair),
    ("huber", {"delta": 0.4}, regression_pair),
    ("hinge", {}, lambda: hinge_pair("binary")),
    ("hinge", {}, lambda: hinge_pair("signed")),
    ("hinge", {}, lambda: hinge_pair("other")),
    ("squared_hinge", {}, lambda: hinge_pair("binary")),
    ("squared_hinge", {}, lambda: hinge_pair("signed")),
    ("kl_divergence", {}, probability_pair),
]
CLASSES = {"huber": "Huber", "hinge": "Hinge", "squared_hinge": "SquaredHinge",
           "kl_divergence": "KLDivergence"}


@pytest.mark.parametrize("name,kwargs,make", CASES,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(CASES)])
def test_keras_functions_match_keras(any_backend, keras, name, kwargs, make):
    y_true, y_pred = make()
    want = getattr(keras.losses, name)(y_true, y_pred, **kwargs)
    got = getattr(keras_losses, name)(y_true, y_pred, **kwargs)
    assert_loss(got, np.asarray(want), rtol=2e-6)


@pytest.mark.parametrize("name,kwargs,make", CASES,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(CASES)])
@pytest.mark.parametrize("weighted", [False, True])
def test_keras_classes_and_gradients_match_keras(any_backend, keras, name, kwargs, make,
                                                 weighted):
    y_true, y_pred = make()
    sw = np.random.default_rng(25).uniform(0.2, 2, 6).astype(np.float32) if weighted else None
    cls = CLASSES[name]
    want, want_grad = keras_grad(getattr(keras.losses, cls)(**kwargs), y_true, y_pred, sw)
    got, got_grad = fastdl_grad(getattr(keras_losses, cls)(**kwargs), y_true, y_pred, sw)
    assert got == pytest.approx(want, rel=2e-6)
    assert got_grad.shape == y_pred.shape and got_grad.dtype == np.float32
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-5, atol=1e-7)


def test_keras_huber_and_kld_on_rank_mismatched_targets(keras):
    y_true, y_pred = rand((5,), 30), rand((5, 1), 31)  # Keras squeezes the size-1 axis
    assert_loss(keras_losses.huber(y_true, y_pred),
                np.asarray(keras.losses.Huber(reduction=None)(y_true, y_pred)))
    loss = keras_losses.Huber()
    grad = loss.gradient(y_true, y_pred, np.full(5, 0.2, np.float32))
    assert grad.shape == (5, 1)


def test_every_keras_name_resolves(keras):
    """Each name Keras' get resolves gives the Loss computing the same: Keras' class, or
    the class of Keras' function (then named after the function)."""
    of_function = {**CLASSES, "mean_squared_error": "MeanSquaredError",
                   "mean_absolute_error": "MeanAbsoluteError",
                   "binary_crossentropy": "BinaryCrossentropy"}
    for name in ("huber", "Huber", "hinge", "Hinge", "squared_hinge", "SquaredHinge",
                 "kl_divergence", "KLDivergence", "kld", "KLD", "mse", "MSE", "mae", "MAE",
                 "bce", "BCE", "MeanSquaredError", "CategoricalCrossentropy"):
        theirs, mine = keras.losses.get(name), keras_losses.get(name)
        if isinstance(theirs, keras.losses.Loss):
            assert type(mine).__name__ == type(theirs).__name__, name
            assert mine.name == theirs.name, name
        else:
            assert type(mine).__name__ == of_function[theirs.__name__], name
            assert mine.name == theirs.__name__, name
    assert keras_losses.get("kullback_leibler_divergence").name == "kl_divergence"
    assert keras_losses.kld is keras_losses.KLD is keras_losses.kl_divergence


@pytest.mark.parametrize("loss", [
    keras_losses.Huber(delta=0.3, reduction="sum"), keras_losses.Hinge(),
    keras_losses.SquaredHinge(name="sq"), keras_losses.KLDivergence(),
    keras_losses.TripletMarginLoss(margin=0.5, p=1, swap=True)])
def test_configs_round_trip(loss):
    again = keras_losses.get(keras_losses.serialize(loss))
    assert type(again) is type(loss) and again.get_config() == loss.get_config()


# ------------------------------------------------------------ the Keras-style triplet loss

@pytest.mark.parametrize("layout", ["stacked", "concatenated"])
@pytest.mark.parametrize("swap", [False, True])
def test_keras_style_triplet_loss_is_the_ops_one(any_backend, layout, swap):
    a, pos, neg = (rand((7, 4), 40 + i) for i in range(3))
    if layout == "stacked":
        y_pred = np.stack([a, pos, neg], axis=1)
    else:
        y_pred = np.concatenate([a, pos, neg], axis=-1)
    y_true = np.zeros(7)
    loss = keras_losses.TripletMarginLoss(margin=1.5, swap=swap)
    want = ops.triplet_margin_loss(a, pos, neg, margin=1.5, swap=swap, reduction="none")
    assert_loss(loss.call(y_true, y_pred), want)
    assert_loss(keras_losses.triplet_margin_loss(None, y_pred, 1.5, swap=swap), want)
    assert loss(y_true, y_pred) == pytest.approx(float(want.mean()), rel=1e-6)
    coef = np.random.default_rng(5).uniform(0.1, 1, 7).astype(np.float32)
    grads = ops.triplet_margin_loss_backward(a, pos, neg, margin=1.5, swap=swap,
                                             reduction="none", grad_output=coef)
    got = loss.gradient(y_true, y_pred, coef)
    want_grad = (np.stack(grads, axis=1) if layout == "stacked"
                 else np.concatenate(grads, axis=-1))
    assert got.shape == y_pred.shape
    np.testing.assert_allclose(got, want_grad, rtol=1e-6)


@pytest.mark.parametrize("call,match", [
    (lambda: keras_losses.triplet_margin_loss(np.zeros(4), np.ones((4, 5))), "y_pred"),
    (lambda: keras_losses.triplet_margin_loss(np.zeros(4), np.ones((4, 2, 5))), "y_pred"),
    (lambda: keras_losses.triplet_margin_loss(np.zeros(3), np.ones((4, 6))), "y_true"),
    (lambda: keras_losses.TripletMarginLoss(margin=-1), "margin"),
    (lambda: keras_losses.Huber(delta=-1), "delta"),
    (lambda: keras_losses.huber(np.ones(3), np.ones(4)), "y_true"),
    (lambda: keras_losses.kl_divergence(np.ones((2, 3)), np.ones((2, 4))), "y_true"),
    (lambda: keras_losses.get("hinge_loss"), "loss"),
    (lambda: keras_losses.get({"class_name": "Nope"}), "loss"),
])
def test_keras_style_bad_arguments_raise_naming_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_compile_takes_every_new_name():
    model = fastdl.models.Sequential([fastdl.layers.Input((3,)), fastdl.layers.Dense(2)])
    for name in ("huber", "Huber", "hinge", "squared_hinge", "kld", "KLD", "kl_divergence",
                 "KLDivergence", "triplet_margin_loss"):
        model.compile(optimizer="sgd", loss=name)
