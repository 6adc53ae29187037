"""Losses on every floor: the kernels of each backend (Cython fastdl._losses, the Numba
twin) against the float64 NumPy reference; the torch-style fastdl.ops losses on every
backend against torch.nn.functional (every reduction, weights, pos_weight, ignore_index,
label smoothing, [N, C] / [N, C, d1, d2] / unbatched [C] inputs, class-index and
probability targets, logits of +-1e4, probabilities 0 and 1); the Keras-style
fastdl.losses against hand-written float64 formulas of Keras 3's semantics; bad arguments.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from fastdl import _reference as reference
from fastdl import losses as keras_losses
from fastdl import metrics
from fastdl import ops
from fastdl.ops import losses as ops_losses

F32 = np.float32


def rand(*shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(F32)


def uniform(*shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype(F32)


def labels(shape, classes, seed=0):
    return np.random.default_rng(seed).integers(0, classes, shape)


def _backends():
    out = {}
    try:
        out["native"] = importlib.import_module("fastdl._losses")
    except ImportError:
        pass
    try:
        out["numba"] = importlib.import_module("fastdl._numba")
    except ImportError:
        pass
    out["numpy"] = reference
    return out


BACKENDS = _backends()


@pytest.fixture(params=sorted(BACKENDS))
def backend(request, monkeypatch):
    """Runs the public functions on each backend's kernels."""
    monkeypatch.setattr(ops_losses, "kernels", BACKENDS[request.param])
    return request.param


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def close(actual, expected, rtol=2e-5, atol=2e-6, what=""):
    expected = np.asarray(expected, np.float64)
    actual_arr = np.asarray(actual)
    assert actual_arr.dtype == F32, what
    assert actual_arr.shape == expected.shape, (what, actual_arr.shape, expected.shape)
    np.testing.assert_allclose(actual_arr.astype(np.float64), expected, rtol=rtol, atol=atol,
                               err_msg=what)


# ---------------------------------------------------------------- kernels vs reference

def same_total(got, want, terms):
    """Sums of `terms` float32-rounded terms (the native kernels compute log-probabilities
    and softplus in float32, accumulate in float64): within 1e-6 per unit of magnitude."""
    got, want = np.atleast_1d(got), np.atleast_1d(want)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * (terms + 1))


POINTWISE = ["mse", "l1", "bce", "bce_logits"]
SIZES = [0, 1, 7, 8, 33, 1000]


def _pointwise_inputs(kind, n, seed):
    if kind == "bce":
        x = uniform(n, seed=seed)
        x[::5] = 0.0
        x[1::5] = 1.0
        return x, uniform(n, seed=seed + 1)
    x = rand(n, seed=seed, scale=3.0)
    if kind == "bce_logits" and n > 3:
        x[:4] = [1e4, -1e4, 88.0, -88.0]
    return x, uniform(n, seed=seed + 1)


@pytest.mark.parametrize("name", sorted(set(BACKENDS) - {"numpy"}))
@pytest.mark.parametrize("kind", POINTWISE)
@pytest.mark.parametrize("n", SIZES)
def test_pointwise_kernel_vs_reference(name, kind, n):
    module = BACKENDS[name]
    x, t = _pointwise_inputs(kind, n, n)
    w = uniform(n, seed=7) + F32(0.5)
    pw = uniform(n, seed=8) * F32(3.0)
    for weight, pos_weight in [(None, None), (w, None), (w, pw if kind == "bce_logits" else None)]:
        want = np.empty(n, F32)
        total_want = reference.pointwise_loss(x, t, weight, pos_weight, kind, want)
        got = np.empty(n, F32)
        total = module.pointwise_loss(x, t, weight, pos_weight, kind, got)
        close(got, want, rtol=1e-6, atol=1e-6, what=f"{name} {kind}")
        same_total(total, total_want, n)
        same_total(module.pointwise_loss(x, t, weight, pos_weight, kind, None), total_want, n)


# The last three span several of the native kernel's 16384-float blocks of log-probabilities
# (several rows per block, one row per block, a row larger than a block).
CLASS_SHAPES = [(1, 1, 1), (3, 1, 1), (5, 7, 1), (4, 10, 6), (2, 33, 3), (0, 4, 2), (64, 17, 1),
                (2000, 13, 1), (3, 50, 200), (2, 20000, 1)]


@pytest.mark.parametrize("name", sorted(set(BACKENDS) - {"numpy"}))
@pytest.mark.parametrize("shape", CLASS_SHAPES)
@pytest.mark.parametrize("mode", ["logits", "log_probs", "probs"])
def test_class_kernel_vs_reference(name, shape, mode):
    module = BACKENDS[name]
    outer, c, inner = shape
    x = uniform(*shape, seed=1) + F32(0.01) if mode == "probs" else rand(*shape, seed=1, scale=4)
    t = labels((outer, inner), c, seed=2)
    if t.size > 2:
        t.flat[1] = -100
    w = uniform(c, seed=3) + F32(0.2)
    for weight in (None, w):
        for smoothing in (0.0, 0.3):
            want = np.empty((outer, inner), F32)
            totals = reference.class_loss(x, t, weight, -100, mode, smoothing, want)
            got = np.empty((outer, inner), F32)
            result = module.class_loss(x, t, weight, -100, mode, smoothing, got)
            close(got, want, rtol=1e-6, atol=1e-6, what=f"{name} {mode}")
            same_total(result, totals, x.size)
            same_total(module.class_loss(x, t, weight, -100, mode, smoothing, None), totals,
                       x.size)


@pytest.mark.parametrize("name", sorted(set(BACKENDS) - {"numpy"}))
@pytest.mark.parametrize("shape", CLASS_SHAPES)
@pytest.mark.parametrize("mode", ["logits", "probs"])
def test_soft_target_kernel_vs_reference(name, shape, mode):
    module = BACKENDS[name]
    x = uniform(*shape, seed=1) + F32(0.01) if mode == "probs" else rand(*shape, seed=1, scale=4)
    t = uniform(*shape, seed=2)
    w = uniform(shape[1], seed=3) + F32(0.2)
    for weight in (None, w):
        for smoothing in (0.0, 0.25):
            want = np.empty((shape[0], shape[2]), F32)
            total = reference.soft_target_loss(x, t, weight, mode, smoothing, want)
            got = np.empty((shape[0], shape[2]), F32)
            same_total(module.soft_target_loss(x, t, weight, mode, smoothing, got), total,
                       x.size)
            close(got, want, rtol=1e-6, atol=1e-6, what=f"{name} {mode}")


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_class_kernel_extreme_logits(name):
    """Logits of +-1e4 (exp would overflow without the max shift) stay finite and exact."""
    x = np.array([[[1e4], [-1e4], [0.0]], [[-1e4], [-1e4], [1e4]]], F32)
    t = np.array([[1], [2]])
    out = np.empty((2, 1), F32)
    BACKENDS[name].class_loss(x, t, None, -100, "logits", 0.0, out)
    np.testing.assert_allclose(out[:, 0], [2e4, 0.0], rtol=1e-7)


# ---------------------------------------------------------------- public ops vs torch

REDUCTIONS = ["none", "mean", "sum"]


def _t(torch, a):
    return torch.from_numpy(np.ascontiguousarray(a))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(7,), (4, 5), (2, 3, 4, 5), (0, 3)])
def test_mse_l1_vs_torch(torch, backend, reduction, shape):
    x, t = rand(*shape, seed=1), rand(*shape, seed=2)
    F = torch.nn.functional
    close(ops.mse_loss(x, t, reduction), F.mse_loss(_t(torch, x), _t(torch, t),
                                                   reduction=reduction), what="mse")
    close(ops.l1_loss(x, t, reduction), F.l1_loss(_t(torch, x), _t(torch, t),
                                                 reduction=reduction), what="l1")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(9,), (6, 5), (2, 3, 4, 5)])
def test_binary_cross_entropy_vs_torch(torch, backend, reduction, shape):
    p, y = uniform(*shape, seed=1), uniform(*shape, seed=2)
    p.flat[:4] = [0.0, 1.0, 0.0, 1.0]  # log clamped at -100, as torch
    y.flat[:4] = [0.0, 1.0, 1.0, 0.0]
    F = torch.nn.functional
    for weight in (None, uniform(shape[-1], seed=3), uniform(*shape, seed=4)):
        tw = None if weight is None else _t(torch, weight)
        close(ops.binary_cross_entropy(p, y, weight, reduction),
              F.binary_cross_entropy(_t(torch, p), _t(torch, y), tw, reduction=reduction),
              what=f"bce weight={weight is not None}")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(9,), (6, 5), (2, 3, 4, 5)])
def test_binary_cross_entropy_with_logits_vs_torch(torch, backend, reduction, shape):
    x, y = rand(*shape, seed=1, scale=5.0), uniform(*shape, seed=2)
    x.flat[:6] = [1e4, -1e4, 1e4, -1e4, 100.0, -100.0]
    y.flat[:6] = [1.0, 0.0, 0.0, 1.0, 0.5, 0.5]
    F = torch.nn.functional
    for weight, pos_weight in [(None, None), (uniform(*shape, seed=3), None),
                               (None, uniform(shape[-1], seed=4) * F32(4)),
                               (uniform(shape[-1], seed=5), uniform(shape[-1], seed=6))]:
        tw = None if weight is None else _t(torch, weight)
        tpw = None if pos_weight is None else _t(torch, pos_weight)
        close(ops.binary_cross_entropy_with_logits(x, y, weight, reduction, pos_weight),
              F.binary_cross_entropy_with_logits(_t(torch, x), _t(torch, y), tw,
                                                 reduction=reduction, pos_weight=tpw),
              rtol=2e-5, atol=1e-5, what="bce_with_logits")


CE_SHAPES = [(6, 5), (3, 4, 2, 3), (5, 1), (4,), (0, 3), (2, 3, 0)]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", CE_SHAPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_class_targets_vs_torch(torch, backend, reduction, shape, weighted,
                                              smoothing):
    axis = 0 if len(shape) == 1 else 1
    c = shape[axis]
    x = rand(*shape, seed=1, scale=3.0)
    t = labels(shape[:axis] + shape[axis + 1:], c, seed=2)
    if t.size > 3:
        t.flat[2] = -100  # ignore_index
    w = uniform(c, seed=3) + F32(0.3) if weighted else None
    F = torch.nn.functional
    # torch 2.13 fails on unbatched input with label smoothing and reduction 'none' (a
    # shape bug): unbatched input is compared with torch on the batch of one.
    tx, tt = (x[None], t[None]) if axis == 0 else (x, t)
    want = F.cross_entropy(_t(torch, tx), _t(torch, tt), None if w is None else _t(torch, w),
                           reduction=reduction, label_smoothing=smoothing)
    if axis == 0 and reduction == "none":
        want = want[0]
    close(ops.cross_entropy(x, t, w, reduction, smoothing), want, what="cross_entropy")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 2, 3), (4,)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_probability_targets_vs_torch(torch, backend, reduction, shape, weighted,
                                                    smoothing):
    axis = 0 if len(shape) == 1 else 1
    x = rand(*shape, seed=1, scale=3.0)
    t = uniform(*shape, seed=2)
    t /= t.sum(axis=axis, keepdims=True)
    w = uniform(shape[axis], seed=3) + F32(0.3) if weighted else None
    F = torch.nn.functional
    want = F.cross_entropy(_t(torch, x), _t(torch, t), None if w is None else _t(torch, w),
                           reduction=reduction, label_smoothing=smoothing)
    close(ops.cross_entropy(x, t, w, reduction, smoothing), want, what="cross_entropy probs")


def test_cross_entropy_extreme_logits_vs_torch(torch, backend):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4]], F32)
    t = np.array([1, 2, 0])
    F = torch.nn.functional
    for reduction in REDUCTIONS:
        close(ops.cross_entropy(x, t, reduction=reduction, label_smoothing=0.1),
              F.cross_entropy(_t(torch, x), _t(torch, t), reduction=reduction,
                              label_smoothing=0.1), rtol=1e-6, what=reduction)


def test_cross_entropy_nan_and_inf_propagate_as_torch(torch, backend):
    x = rand(4, 5)
    x[1, 2], x[2, 0] = np.nan, np.inf
    t = np.array([0, 1, 2, 3])
    F = torch.nn.functional
    got = ops.cross_entropy(x, t, reduction="none")
    want = F.cross_entropy(_t(torch, x), _t(torch, t), reduction="none").numpy()
    assert np.array_equal(np.isnan(got), np.isnan(want)) and np.isnan(got[1:3]).all()
    close(got[[0, 3]], want[[0, 3]])


def test_cross_entropy_all_ignored_is_nan_as_torch(torch, backend):
    x, t = rand(3, 4), np.full(3, -100)
    F = torch.nn.functional
    assert np.isnan(ops.cross_entropy(x, t)) and F.cross_entropy(_t(torch, x),
                                                                  _t(torch, t)).isnan()
    assert ops.cross_entropy(x, t, reduction="sum") == 0.0
    assert np.isnan(ops.mse_loss(np.zeros(0), np.zeros(0)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 2, 3), (4,), (0, 2)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 1])
def test_nll_loss_vs_torch(torch, backend, reduction, shape, weighted, ignore_index):
    axis = 0 if len(shape) == 1 else 1
    c = shape[axis]
    x = rand(*shape, seed=1, scale=3.0)
    t = labels(shape[:axis] + shape[axis + 1:], c, seed=2)
    w = uniform(c, seed=3) + F32(0.3) if weighted else None
    F = torch.nn.functional
    want = F.nll_loss(_t(torch, x), _t(torch, t), None if w is None else _t(torch, w),
                      reduction=reduction, ignore_index=ignore_index)
    close(ops.nll_loss(x, t, w, reduction, ignore_index), want, what="nll_loss")


def test_public_ops_accept_other_dtypes_and_strides(torch):
    x = rand(8, 6).astype(np.float64)[:, ::2]
    t = labels(8, 3, seed=4).astype(np.int32)
    F = torch.nn.functional
    close(ops.cross_entropy(x, t), F.cross_entropy(_t(torch, x), _t(torch, t).long()),
          rtol=1e-5)
    y = rand(8, 3, seed=5)
    close(ops.mse_loss(x, y.T.copy().T), F.mse_loss(_t(torch, x).float(), _t(torch, y)))


# ---------------------------------------------------------------- Keras semantics

# Keras 3 (keras/src/losses/losses.py and backend/*/nn.py), written out in float64:
#   mse/mae:  mean over the last axis of (t - p)^2 / |t - p|
#   bce:      p = clip(y_pred, eps, 1 - eps) in float32 (eps = 1e-7, so the upper bound is
#             float32(1 - 1e-7) = 0.99999988); mean over the last axis of
#             -(t log p + (1 - t) log(1 - p)); from logits: mean of
#             max(x, 0) - x t + log(1 + exp(-|x|))  (tf.nn.sigmoid_cross_entropy_with_logits)
#   cce:      from probabilities: p = y_pred / sum(y_pred, axis), clipped to [eps, 1 - eps],
#             loss = -sum(t log p, axis); from logits: -sum(t log_softmax(y_pred), axis)
#   sparse:   cce with t = one_hot(y_true) on `axis`
EPS_LO, EPS_HI = float(F32(1e-7)), float(F32(1 - 1e-7))


def keras_bce(t, p, from_logits):
    t, p = np.float64(t), np.float64(p)
    if from_logits:
        return (np.maximum(p, 0) - p * t + np.log1p(np.exp(-np.abs(p)))).mean(axis=-1)
    p = np.clip(p, EPS_LO, EPS_HI)
    return (-(t * np.log(p) + (1 - t) * np.log(1 - p))).mean(axis=-1)


def keras_cce(t, p, from_logits, axis):
    t, p = np.float64(t), np.float64(p)
    if from_logits:
        m = p.max(axis=axis, keepdims=True)
        logp = p - m - np.log(np.exp(p - m).sum(axis=axis, keepdims=True))
    else:
        logp = np.log(np.clip(p / p.sum(axis=axis, keepdims=True), EPS_LO, EPS_HI))
    return -(t * logp).sum(axis=axis)


def one_hot(t, classes, axis):
    return np.moveaxis(np.eye(classes)[t], -1, axis)


@pytest.mark.parametrize("shape", [(5,), (4, 6), (2, 3, 7)])
def test_keras_mse_mae(backend, shape):
    t, p = rand(*shape, seed=1), rand(*shape, seed=2)
    close(keras_losses.mean_squared_error(t, p),
          ((np.float64(t) - p) ** 2).mean(axis=-1), rtol=1e-6)
    close(keras_losses.mean_absolute_error(t, p), np.abs(np.float64(t) - p).mean(axis=-1),
          rtol=1e-6)


def test_keras_rank_matching():
    t, p = rand(6, seed=1), rand(6, 1, seed=2)
    want = (np.float64(t) - p[:, 0]) ** 2
    close(keras_losses.mean_squared_error(t, p), want, rtol=1e-6)  # [6] vs [6, 1]
    close(keras_losses.mean_squared_error(p, t), want, rtol=1e-6)
    t3, p2 = rand(2, 5, 1, seed=3), rand(2, 5, seed=4)  # [2, 5, 1] vs [2, 5]: squeezed
    close(keras_losses.mean_absolute_error(t3, p2),
          np.abs(np.float64(t3[..., 0]) - p2).mean(axis=-1), rtol=1e-6)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("shape", [(7,), (5, 4), (2, 3, 6)])
def test_keras_binary_crossentropy(backend, from_logits, shape):
    t = uniform(*shape, seed=1)
    p = rand(*shape, seed=2, scale=4) if from_logits else uniform(*shape, seed=2)
    t.flat[:4] = [0, 1, 1, 0]
    p.flat[:4] = [1e4, -1e4, 0.0, 0.0] if from_logits else [1.0, 0.0, 1.0, 0.0]
    close(keras_losses.binary_crossentropy(t, p, from_logits=from_logits),
          keras_bce(t, p, from_logits), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("shape,axis", [((6,), -1), ((5, 4), -1), ((5, 4), 0), ((2, 3, 6), 1)])
def test_keras_categorical_crossentropy(backend, from_logits, shape, axis):
    t = uniform(*shape, seed=1)
    t /= t.sum(axis=axis, keepdims=True)
    p = rand(*shape, seed=2, scale=3) if from_logits else uniform(*shape, seed=2) * F32(3)
    if not from_logits:
        p.flat[0] = 0.0  # clipped to eps after renormalising
    close(keras_losses.categorical_crossentropy(t, p, from_logits, axis=axis),
          keras_cce(t, p, from_logits, axis), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("shape,axis", [((6,), -1), ((5, 4), -1), ((5, 4), 0), ((2, 3, 6), 1)])
def test_keras_sparse_categorical_crossentropy(backend, from_logits, shape, axis):
    p = rand(*shape, seed=2, scale=3) if from_logits else uniform(*shape, seed=2)
    c = shape[axis]
    t = labels(shape[:axis % len(shape)] + shape[axis % len(shape) + 1:], c, seed=3)
    want = keras_cce(one_hot(t, c, axis % len(shape)), p, from_logits, axis)
    close(keras_losses.sparse_categorical_crossentropy(t, p, from_logits, axis), want,
          rtol=2e-6, atol=1e-6)
    if axis == -1 and len(shape) == 2:  # [N, 1] labels and float labels, as Keras takes them
        close(keras_losses.sparse_categorical_crossentropy(t[:, None], p, from_logits), want,
              rtol=2e-6, atol=1e-6)
        close(keras_losses.sparse_categorical_crossentropy(t.astype(F32), p, from_logits), want,
              rtol=2e-6, atol=1e-6)


def test_keras_nan_and_inf_probabilities_give_nan(backend):
    p = uniform(4, 3)
    p[1, 0], p[2, 2] = np.nan, np.inf
    t = np.array([1, 1, 0, 2])
    for got in (keras_losses.categorical_crossentropy(np.eye(3, dtype=F32)[t], p),
                keras_losses.sparse_categorical_crossentropy(t, p)):
        assert np.isnan(got[1:3]).all() and np.isfinite(got[[0, 3]]).all()


def test_keras_perfect_prediction_is_clipped_not_zero():
    """A one-hot y_pred equal to y_true gives Keras' -log(1 - 1e-7) ~ 1.19e-7, not 0, and a
    zero probability on the true class gives -log(1e-7) ~ 16.1, not inf."""
    t = np.eye(3, dtype=F32)
    close(keras_losses.categorical_crossentropy(t, t), np.full(3, -np.log(EPS_HI)), rtol=1e-6)
    close(keras_losses.categorical_crossentropy(t, t[::-1].copy())[[0, 2]],
          np.full(2, -np.log(EPS_LO)), rtol=1e-6)


# ---------------------------------------------------------------- bad arguments

def raises(exc, name, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert str(info.value).startswith(f"{name}:"), str(info.value)


def test_bad_reduction_and_shapes():
    x, t = rand(3, 4), rand(3, 4, seed=1)
    for fn in (ops.mse_loss, ops.l1_loss, ops.binary_cross_entropy_with_logits):
        raises(ValueError, "reduction", fn, x, t, reduction="avg")
        raises(TypeError, "reduction", fn, x, t, reduction=None)
        raises(ValueError, "target", fn, x, t[:, :3])
        raises(TypeError, "input", fn, np.ones(3, np.complex64), np.ones(3))
    raises(ValueError, "weight", ops.binary_cross_entropy, uniform(3, 4), t, weight=np.ones(5))
    raises(ValueError, "pos_weight", ops.binary_cross_entropy_with_logits, x, t,
           pos_weight=np.ones(3))
    raises(ValueError, "input", ops.binary_cross_entropy, x, t)  # not probabilities
    raises(ValueError, "input", ops.binary_cross_entropy, np.array([np.nan], F32), np.ones(1))


def test_bad_class_targets():
    x = rand(4, 3)
    for fn in (ops.cross_entropy, ops.nll_loss):
        raises(ValueError, "target", fn, x, np.array([0, 1, 3, 2]))  # out of range
        raises(ValueError, "target", fn, x, np.array([0, 1, -1, 2]))  # negative, not ignored
        raises(TypeError, "target", fn, x, np.array([0.0, 1.0, 2.0, 1.0]))  # float indices
        raises(TypeError, "target", fn, x, np.array([True, False, True, False]))
        raises(ValueError, "target", fn, x, np.array([0, 1, 2]))  # wrong shape
        raises(ValueError, "weight", fn, x, np.array([0, 1, 2, 1]), weight=np.ones(4))
        raises(ValueError, "reduction", fn, x, np.array([0, 1, 2, 1]), reduction="mean ")
        raises(TypeError, "ignore_index", fn, x, np.array([0, 1, 2, 1]), ignore_index=1.5)
        raises(ValueError, "input", fn, np.float32(1.0), np.array(0))
        raises(ValueError, "input", fn, np.zeros((2, 0)), np.array([0, 0]))
    raises(TypeError, "target", ops.cross_entropy, x, np.zeros((4, 3), np.int64))
    raises(ValueError, "ignore_index", ops.cross_entropy, x, uniform(4, 3), ignore_index=0)
    raises(ValueError, "label_smoothing", ops.cross_entropy, x, np.zeros(4, int),
           label_smoothing=1.5)
    raises(TypeError, "label_smoothing", ops.cross_entropy, x, np.zeros(4, int),
           label_smoothing="0.1")
    # Keras' losses and metrics ignore no label: not even int64's minimum (the kernels'
    # "none ignored" value) passes as an ignored sample.
    int_min = np.array([0, 1, np.iinfo(np.int64).min, 2])
    raises(ValueError, "y_true", keras_losses.sparse_categorical_crossentropy, int_min, x)
    raises(ValueError, "y_true", metrics.sparse_categorical_accuracy, int_min, x)


def test_bad_keras_arguments():
    p = uniform(4, 3)
    raises(ValueError, "y_true", keras_losses.mean_squared_error, np.ones((4, 2)), p)
    raises(ValueError, "y_pred", keras_losses.mean_squared_error, 1.0, np.float32(1.0))
    raises(TypeError, "from_logits", keras_losses.binary_crossentropy, p, p, from_logits=1)
    raises(ValueError, "y_true", keras_losses.categorical_crossentropy, np.ones((4, 2)), p)
    raises(ValueError, "axis", keras_losses.categorical_crossentropy, p, p, axis=2)
    raises(TypeError, "axis", keras_losses.categorical_crossentropy, p, p, axis=None)
    raises(ValueError, "y_true", keras_losses.sparse_categorical_crossentropy, [0, 1, 3, 2], p)
    raises(ValueError, "y_true", keras_losses.sparse_categorical_crossentropy, [0, 1, -1, 2], p)
    raises(ValueError, "y_true", keras_losses.sparse_categorical_crossentropy, [0, 1, -100, 2], p)
    raises(TypeError, "y_true", keras_losses.sparse_categorical_crossentropy,
           [0.0, 1.5, 2.0, 1.0], p)
    raises(ValueError, "y_true", keras_losses.sparse_categorical_crossentropy, [0, 1], p)
