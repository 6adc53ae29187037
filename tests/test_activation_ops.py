"""Activations: every native variant (fastdl._C.variants("activation")), the Numba twin and
the NumPy reference against the float64 reference and PyTorch; the public fastdl.ops
functions on every backend (shapes incl. empty, 0-d and non-contiguous, dtypes, NaN/Inf,
axes, temperature, softmax stability); dropout's statistics and seeding, its gradient with
the forward's mask or seed; elu and hard_swish fused into conv2d/linear; bad arguments.
(ONNX's backend node tests for these ops are in tests/test_onnx_nodes.py.)
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from fastdl import _reference as reference
from fastdl import ops
from fastdl._reference.activation import ACTIVATIONS as REFERENCE_TABLE
from fastdl.ops import activation as activation_module
from native_variants import backend_module, runnable, skipped, unrunnable

ELEMENTWISE = ["relu", "relu6", "leaky_relu", "elu", "sigmoid", "tanh", "silu", "hard_swish"]
ALPHA = 0.3  # leaky_relu slope / elu alpha: not a default, so passing it on is checked
SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 1e-8, -1e-8, 3.0, -3.0,
                     6.0, -6.0, 88.0, -88.0, 100.0, -100.0, 1e30, -1e30], np.float32)
# Sizes around every vector width (ref 1, NEON 4, AVX2 8, AVX-512 16) and the task grain.
SIZES = [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 100, 65536 + 17]


def random_array(shape, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return np.asarray(rng.standard_normal(shape) * scale, dtype=np.float32)


def assert_close(actual, expected, rtol=4e-7, atol=1e-6, what=""):
    """Values within rtol/atol (the documented kernel error is <= 2 * 2^-23 relative), NaN
    and Inf where expected has them; a new float32 C-contiguous array."""
    assert isinstance(actual, np.ndarray), what
    assert actual.dtype == np.float32 and actual.flags.c_contiguous, what
    assert actual.shape == expected.shape, what
    expected = np.asarray(expected, np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.abs(actual - expected) <= atol + rtol * np.abs(expected)
    ok |= (actual == expected) | (np.isnan(actual) & np.isnan(expected))  # Inf, NaN
    if not ok.all():
        i = tuple(np.argwhere(~ok)[0])
        raise AssertionError(f"{what}: {np.sum(~ok)} of {ok.size} differ; first at {i}: got "
                             f"{actual[i]!r}, want {expected[i]!r}")


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def torch_elementwise(torch, name, t, alpha=ALPHA):
    F = torch.nn.functional
    return {"relu": F.relu, "relu6": F.relu6, "leaky_relu": lambda t: F.leaky_relu(t, alpha),
            "elu": lambda t: F.elu(t, alpha), "sigmoid": torch.sigmoid, "tanh": torch.tanh,
            "silu": F.silu, "hard_swish": F.hardswish}[name](t)


def public_elementwise(name, x, alpha=ALPHA):
    if name == "leaky_relu":
        return ops.leaky_relu(x, negative_slope=alpha)
    if name == "elu":
        return ops.elu(x, alpha=alpha)
    return getattr(ops, name)(x)


# ---------------------------------------------------------------------------- backends

def _native_variants():
    return list(runnable("activation"))


class Backend:
    """activation(x, name, alpha) and softmax(x3d, scale, log) of one implementation."""

    def __init__(self, label, activation, softmax):
        self.label, self.activation, self.softmax = label, activation, softmax


def make_backend(label):
    if label == "numpy":
        return Backend(label, reference.activation, reference.softmax)
    if label == "numba":
        pytest.importorskip("numba")
        module = importlib.import_module("fastdl._numba")
        return Backend(label, module.activation, module.softmax)
    from fastdl import _C
    return Backend(label, lambda x, n, a: _C.activation(x, n, a, variant=label),
                   lambda x, s, log: _C.softmax(x, s, log, variant=label))


BACKENDS = _native_variants() + ["numba", "numpy"]
# The parameters: every backend, and a counted skip per variant this CPU cannot run.
BACKEND_PARAMS = BACKENDS + [skipped(name) for name in unrunnable("activation")]


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request):
    return make_backend(request.param)


@pytest.fixture(params=["native", "numba", "numpy"])
def public_backend(request, monkeypatch):
    """Runs the public ops on one backend (the others are selected as FASTDL_BACKEND would)."""
    monkeypatch.setattr(activation_module, "kernels", backend_module(request.param))
    return request.param


def reference_elementwise(name, x, alpha=ALPHA):
    with np.errstate(all="ignore"):
        return REFERENCE_TABLE[name](x.astype(np.float64), alpha)


def reference_softmax(x, scale, log):
    return reference.softmax(x, scale, log).astype(np.float64)


# ---------------------------------------------------------------------------- backends vs reference

@pytest.mark.parametrize("name", ELEMENTWISE)
def test_backend_elementwise_matches_reference(backend, name):
    for n in SIZES:
        x = random_array(n, n, scale=6.0)
        y = backend.activation(x, name, ALPHA)
        assert_close(y, reference_elementwise(name, x), what=f"{backend.label} {name} n={n}")
    y = backend.activation(SPECIALS, name, ALPHA)
    # Below the normal float range the kernels may flush (sigmoid(-100) = 0 vs 3.7e-44).
    assert_close(y, reference_elementwise(name, SPECIALS), atol=1e-35,
                 what=f"{backend.label} {name} specials")
    x = random_array((2, 3, 5), 1)
    assert backend.activation(x, name, ALPHA).shape == (2, 3, 5)
    assert backend.activation(np.zeros((), np.float32), name, ALPHA).shape == ()


def check_backend_softmax(backend, shape, magnitude, scale, log):
    x = random_array(shape, sum(shape), scale=magnitude)
    want = reference_softmax(x, scale, log)
    # (x - max) * scale rounds to 2^-24 of itself; exp makes that relative.
    z = np.abs(want) if log else magnitude * scale
    rtol = 2e-7 if log else 3e-6
    atol = 1e-6 + 2.5e-7 * z if log else 1e-7 + want * 1.2e-7 * z
    assert_close(backend.softmax(x, scale, log), want, rtol, atol,
                 f"{backend.label} {shape} magnitude={magnitude} scale={scale}")


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_backend_softmax_matches_reference(backend, log):
    for n in [1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 1000]:
        for magnitude in [1.0, 30.0, 1e4]:
            for scale in [1.0, 0.25, 3.0]:
                check_backend_softmax(backend, (3, n, 1), magnitude, scale, log)
    for inner in [2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 35]:  # along columns, around the widths
        for n in [1, 6, 33]:
            check_backend_softmax(backend, (2, n, inner), 30.0, 0.5, log)
    for shape in [(0, 5, 1), (4, 0, 1), (0, 0, 1), (2, 0, 3), (2, 3, 0)]:
        assert backend.softmax(np.zeros(shape, np.float32), 1.0, log).shape == shape


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("inner", [1, 5])
def test_backend_softmax_nan_inf_vectors(backend, log, inner):
    x = np.ones((5, 19, inner), np.float32)
    x[0, 18] = np.nan
    x[1, 2] = np.inf
    x[2] = -np.inf
    x[3, 18] = -np.inf
    y = backend.softmax(x, 1.0, log)
    assert np.isnan(y[:3]).all()
    assert (y[3, 18] == (-np.inf if log else 0.0)).all()
    assert np.isfinite(y[3, :18]).all() and np.isfinite(y[4]).all()


# ---------------------------------------------------------------------------- public ops vs torch

@pytest.mark.parametrize("name", ELEMENTWISE)
def test_public_elementwise_matches_torch(torch, public_backend, name):
    base = random_array((4, 6, 10), 2, scale=5.0)
    cases = {
        "3-D": base,
        "0-d": np.float32(-1.5),
        "empty": np.zeros((0, 3), np.float32),
        "transposed": base.transpose(2, 0, 1),
        "strided": base[:, ::2, 1::3],
        "specials": SPECIALS,
        "large": random_array(65536 + 9, 3, scale=20.0),
    }
    for label, x in cases.items():
        y = public_elementwise(name, x)
        expected = torch_elementwise(torch, name, torch.from_numpy(np.array(x, np.float32)))
        assert_close(y, expected.numpy(), rtol=1e-6, atol=1e-6, what=f"{name} {label}")


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_public_elementwise_converts_real_dtypes(torch, name):
    for x in [np.arange(-4, 5, dtype=np.int64), np.array([True, False]),
              np.linspace(-4, 4, 7, dtype=np.float64), [-1.0, 0.5, 2.0]]:
        y = public_elementwise(name, x)
        expected = torch_elementwise(torch, name, torch.tensor(np.asarray(x, np.float32)))
        assert_close(y, expected.numpy(), rtol=1e-6, what=f"{name} {np.asarray(x).dtype}")


def test_public_elementwise_defaults_are_torchs(torch):
    x = random_array(50, 4, scale=3.0)
    t = torch.from_numpy(x)
    assert_close(ops.leaky_relu(x), torch.nn.functional.leaky_relu(t).numpy())
    assert_close(ops.elu(x), torch.nn.functional.elu(t).numpy(), rtol=1e-6)
    assert ops.swish is ops.silu


def test_public_elementwise_nan_and_inf_like_torch():
    assert np.isnan(ops.relu(np.float32(np.nan)))
    assert np.isnan(ops.silu(np.float32(-np.inf))) and np.isnan(ops.hard_swish(-np.inf))
    assert ops.sigmoid(-np.inf) == 0.0 and ops.sigmoid(np.inf) == 1.0
    assert ops.elu(-np.inf, alpha=0.5) == -0.5


def test_elementwise_input_is_not_modified():
    x = random_array(40, 5)
    saved = x.copy()
    y = ops.tanh(x)
    assert y is not x and np.array_equal(x, saved)


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_public_softmax_matches_torch_on_every_axis(torch, public_backend, log):
    F = torch.nn.functional
    fn, tfn = (ops.log_softmax, F.log_softmax) if log else (ops.softmax, F.softmax)
    x = random_array((3, 4, 5, 6), 5, scale=4.0)
    for axis in range(-4, 4):
        for temperature in [1.0, 0.5, 4.0]:
            y = fn(x, axis=axis, temperature=temperature)
            expected = tfn(torch.from_numpy(x) / temperature, dim=axis).numpy()
            assert_close(y, expected, rtol=2e-6, atol=1e-6, what=f"axis={axis} T={temperature}")
    strided = x[:, ::2].transpose(3, 1, 0, 2)
    assert_close(fn(strided, 1), tfn(torch.from_numpy(np.ascontiguousarray(strided)), 1).numpy(),
                 rtol=2e-6, atol=1e-6, what="non-contiguous")
    assert_close(fn(np.arange(12).reshape(3, 4), 0),
                 tfn(torch.arange(12.0).reshape(3, 4), 0).numpy(), rtol=2e-6, atol=1e-6)
    assert fn(np.zeros((2, 0, 3)), 1).shape == (2, 0, 3)
    assert fn(np.zeros((2, 0, 3)), 2).shape == (2, 0, 3)
    y0 = fn(np.float64(7.0))
    assert y0.shape == () and y0 == (0.0 if log else 1.0) and y0.dtype == np.float32


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_public_softmax_is_stable_for_large_inputs(torch, public_backend, log):
    F = torch.nn.functional
    fn, tfn = (ops.log_softmax, F.log_softmax) if log else (ops.softmax, F.softmax)
    x = np.array([[1e4, 0.0, -1e4], [1e4, 1e4 - 1, 1e4 - 20], [-1e4, -1e4, -1e4 + 0.5],
                  [3e38, -3e38, 0.0]], np.float32)
    y = fn(x)
    assert np.isfinite(y[:3]).all() and (log or np.isfinite(y).all())  # log: -6e38 is -inf
    assert_close(y, tfn(torch.from_numpy(x), -1).numpy(), rtol=1e-6, atol=1e-6)
    special = np.array([[1.0, np.inf, 2.0], [1.0, -np.inf, 2.0], [-np.inf] * 3, [1.0, np.nan, 2.0]],
                       np.float32)
    assert_close(fn(special), tfn(torch.from_numpy(special), -1).numpy(), rtol=1e-6)


def test_softmax_rows_sum_to_one():
    x = random_array((7, 1000), 6, scale=10.0)
    np.testing.assert_allclose(ops.softmax(x, axis=1).sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.exp(ops.log_softmax(x, axis=0)).sum(axis=0), 1.0, rtol=1e-5)


# ---------------------------------------------------------------------------- dropout

def test_dropout_statistics():
    x = np.full((400, 500), 2.0, np.float32)
    for p in [0.1, 0.5, 0.9]:
        y = ops.dropout(x, p, seed=123)
        zeros = np.mean(y == 0)
        assert abs(zeros - p) < 0.01, (p, zeros)
        np.testing.assert_allclose(y[y != 0], 2.0 / (1 - p), rtol=1e-6)
        assert abs(y.mean() - 2.0) < 0.05 * 2.0 / (1 - p) ** 0.5, (p, y.mean())
        assert y.dtype == np.float32 and y.flags.c_contiguous


def test_dropout_seeding():
    x = random_array((50, 60), 7)
    a, b = ops.dropout(x, 0.5, seed=1), ops.dropout(x, 0.5, seed=1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, ops.dropout(x, 0.5, seed=2))
    rng = np.random.default_rng(5)
    first, second = ops.dropout(x, 0.5, seed=rng), ops.dropout(x, 0.5, seed=rng)
    assert not np.array_equal(first, second)  # a Generator is drawn from
    again = np.random.default_rng(5)
    assert np.array_equal(first, ops.dropout(x, 0.5, seed=again))
    assert np.array_equal(ops.dropout(x, 0.5, seed=np.int64(1)), a)
    unseeded = [ops.dropout(x, 0.5) for _ in range(2)]
    assert not np.array_equal(*unseeded)


def test_dropout_edge_cases(torch):
    x = random_array((3, 4), 8)
    assert np.array_equal(ops.dropout(x, 0.0, seed=0), x)
    assert np.array_equal(ops.dropout(x, 1.0), np.zeros_like(x))
    special = np.array([np.inf, np.nan, 1.0], np.float32)
    assert np.array_equal(ops.dropout(special, 1.0),
                          torch.nn.functional.dropout(torch.from_numpy(special), 1.0).numpy(),
                          equal_nan=True)
    y = ops.dropout(x, 0.5, training=False)
    assert np.array_equal(y, x) and y is not x and not np.shares_memory(x, y)
    assert ops.dropout(np.float64(3.0), 0.5, training=False).dtype == np.float32
    assert ops.dropout(np.zeros((0, 4)), 0.5, seed=0).shape == (0, 4)
    d0 = ops.dropout(np.float32(3.0), 0.5, seed=0)
    assert isinstance(d0, np.ndarray) and d0.shape == () and d0 in (0.0, 6.0)
    assert ops.dropout(np.arange(6).reshape(2, 3).T, 0.5, seed=0).flags.c_contiguous


def test_dropout_backward_uses_the_forwards_mask(torch):
    """dropout_backward with the forward's mask or its int seed: grad * keep / (1 - p), the
    same elements as the forward kept; finite differences of the forward (with the mask
    fixed) agree; torch's dropout gradient with the same mask."""
    x, dy = random_array((6, 7), 9).astype(np.float64), random_array((6, 7), 10)
    for p in (0.0, 0.3, 0.75, 1.0):
        y, keep = ops.dropout(x, p, seed=42, return_mask=True)
        np.testing.assert_array_equal(y, ops.dropout(x, p, seed=42))
        by_mask = ops.dropout_backward(dy, keep, p)
        by_seed = ops.dropout_backward(dy, p=p, seed=42)
        np.testing.assert_array_equal(by_mask, by_seed)
        assert by_mask.dtype == np.float32 and np.array_equal(by_mask != 0, keep & (dy != 0))
        # y is linear in x for a fixed mask: d(sum dy*y)/dx from differences of y itself
        h = 1e-3
        numeric = (ops.dropout(x + h, p, seed=42) - ops.dropout(x - h, p, seed=42)) / (2 * h) * dy
        np.testing.assert_allclose(by_mask, numeric, rtol=1e-3, atol=1e-4)
        tx = torch.tensor(x.astype(np.float32), requires_grad=True)
        scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
        (tx * torch.tensor(keep) * scale).backward(torch.tensor(dy))
        np.testing.assert_allclose(by_mask, tx.grad.numpy(), rtol=1e-6)
    # not training: the identity, its mask all True
    y, keep = ops.dropout(x, 0.5, training=False, return_mask=True)
    assert keep.all() and keep.shape == x.shape
    np.testing.assert_array_equal(ops.dropout_backward(dy, p=0.5, training=False), dy)
    # a Generator's mask travels as the mask
    rng = np.random.default_rng(3)
    y, keep = ops.dropout(x, 0.5, seed=rng, return_mask=True)
    np.testing.assert_array_equal(ops.dropout_backward(dy, keep, 0.5) != 0, keep & (dy != 0))
    special = np.array([np.inf, np.nan, 1.0], np.float32)
    got = ops.dropout_backward(special, np.array([False, False, True]), 0.5)
    assert np.isnan(got[:2]).all() and got[2] == 2.0  # grad * 0 as in PyTorch


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(), ValueError, "give the forward's mask"),
    (dict(mask=np.ones((2, 3), bool), seed=1), ValueError, "not both"),
    (dict(mask=np.ones((2, 3))), TypeError, "mask: expected the boolean keep mask"),
    (dict(mask=np.ones((3, 2), bool)), ValueError, r"mask: expected the shape of grad_output"),
    (dict(seed=np.random.default_rng(0)), TypeError, "Generator's draws cannot be repeated"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=1, p=1.5), ValueError, "p"),
    (dict(seed=1, training=1), TypeError, "training"),
])
def test_dropout_backward_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        ops.dropout_backward(np.ones((2, 3)), **kwargs)


# ---------------------------------------------------------------------------- fused epilogues

FUSED = ["elu", "hard_swish", "hardswish"]


def torch_fused(torch, name, t):
    return torch_elementwise(torch, {"hardswish": "hard_swish"}.get(name, name), t, alpha=1.0)


@pytest.mark.parametrize("name", FUSED)
def test_fused_linear_matches_torch(torch, name):
    x, w, b = random_array((5, 37), 1), random_array((19, 37), 2), random_array(19, 3)
    expected = torch_fused(torch, name, torch.nn.functional.linear(
        *map(torch.from_numpy, (x, w, b)))).numpy()
    assert_close(ops.linear(x, w, b, name), expected, rtol=1e-5, atol=2e-5, what=name)
    assert_close(ops.LinearPlan(w, b, name)(x), expected, rtol=1e-5, atol=2e-5, what=name)


@pytest.mark.parametrize("name", FUSED)
@pytest.mark.parametrize("case", ["im2col", "winograd", "depthwise"])
def test_fused_conv2d_matches_torch(torch, name, case):
    channels = {"im2col": (3, 5), "winograd": (8, 8), "depthwise": (8, 8)}[case]
    groups = 8 if case == "depthwise" else 1
    x = random_array((2, channels[0], 9, 10), 4, scale=2.0)
    w = random_array((channels[1], channels[0] // groups, 3, 3), 5)
    b = random_array(channels[1], 6)
    y = ops.conv2d(x, w, b, padding=1, groups=groups, activation=name)
    expected = torch.nn.functional.conv2d(*map(torch.from_numpy, (x, w, b)), padding=1,
                                          groups=groups)
    assert_close(y, torch_fused(torch, name, expected).numpy(), rtol=1e-5, atol=5e-5,
                 what=f"{name} {case}")


@pytest.mark.parametrize("name", ["elu", "hard_swish"])
def test_fused_epilogue_every_backend_and_gemm_variant(name):
    x, w, b = random_array((6, 300), 1), random_array((33, 300), 2) * 0.1, random_array(33, 3)
    want = reference.linear(x, w, b, name, 1.0)
    pytest.importorskip("numba")
    numba = importlib.import_module("fastdl._numba")
    assert_close(numba.linear(x, w, b, name, 1.0), want, rtol=1e-5, atol=1e-5, what="numba")
    xc, wc = random_array((1, 3, 6, 7), 4), random_array((4, 3, 3, 3), 5)
    assert_close(numba.conv(xc, wc, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, name, 1.0),
                 reference.conv(xc, wc, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, name, 1.0),
                 rtol=1e-5, atol=1e-5, what="numba conv")
    try:
        from fastdl import _C
    except ImportError:
        return
    for variant, info in _C.variants("gemm").items():
        if info is not None:
            plan = _C.LinearPlan(w, b, name, 1.0, variant=variant)
            assert_close(plan(x), want, rtol=1e-5, atol=1e-5, what=variant)


# ---------------------------------------------------------------------------- bad arguments

def raises(exc, name, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert str(info.value).startswith(f"{name}:"), str(info.value)


@pytest.mark.parametrize("fn", [ops.relu, ops.sigmoid, ops.hard_swish, ops.softmax,
                                ops.log_softmax, ops.dropout])
def test_bad_x(fn):
    raises(TypeError, "x", fn, np.ones(3, np.complex64))
    raises(TypeError, "x", fn, np.array(["a"]))
    raises(TypeError, "x", fn, np.array([object()]))


def test_bad_parameters():
    x = np.ones((2, 3), np.float32)
    raises(TypeError, "negative_slope", ops.leaky_relu, x, "0.1")
    raises(TypeError, "negative_slope", ops.leaky_relu, x, None)
    raises(TypeError, "alpha", ops.elu, x, alpha=[1.0])
    for fn in (ops.softmax, ops.log_softmax):
        raises(ValueError, "axis", fn, x, 2)
        raises(ValueError, "axis", fn, x, -3)
        raises(ValueError, "axis", fn, np.float32(1), 1)
        raises(TypeError, "axis", fn, x, 1.0)
        raises(TypeError, "axis", fn, x, None)
        for t in (0, -1.0, np.nan, np.inf, 1e-40):
            raises(ValueError, "temperature", fn, x, temperature=t)
        raises(TypeError, "temperature", fn, x, temperature="1")
        raises(TypeError, "temperature", fn, x, temperature=True)
    raises(ValueError, "p", ops.dropout, x, -0.1)
    raises(ValueError, "p", ops.dropout, x, 1.5)
    raises(ValueError, "p", ops.dropout, x, np.nan)
    raises(TypeError, "p", ops.dropout, x, "0.5")
    raises(TypeError, "training", ops.dropout, x, 0.5, training=1)
    raises(TypeError, "seed", ops.dropout, x, 0.5, seed=1.5)
    raises(TypeError, "seed", ops.dropout, x, 0.5, seed=True)
    raises(ValueError, "seed", ops.dropout, x, 0.5, seed=-1)


def test_native_variant_argument():
    _C = pytest.importorskip("fastdl._C")
    x = np.ones(4, np.float32)
    raises(ValueError, "variant", _C.activation, x, "relu", 0.0, variant="nope")
    raises(ValueError, "variant", _C.softmax, x.reshape(1, 2, 2), 1.0, False, variant="nope")
    for name, info in _C.variants("activation").items():
        if info is None:
            raises(ValueError, "variant", _C.activation, x, "relu", 0.0, variant=name)
    raises(ValueError, "op", _C.variants, "nope")
    raises(ValueError, "x", _C.softmax, x, 1.0, False)


def test_native_threaded_path_matches_one_thread():
    pytest.importorskip("fastdl._C")
    import fastdl
    x = random_array((300, 700), 9, scale=4.0)
    saved = fastdl.get_num_threads()
    try:
        fastdl.set_num_threads(1)
        one = [ops.silu(x), ops.softmax(x), ops.log_softmax(x, axis=0)]
        fastdl.set_num_threads(2)
        two = [ops.silu(x), ops.softmax(x), ops.log_softmax(x, axis=0)]
    finally:
        fastdl.set_num_threads(saved)
    for a, b in zip(one, two):
        assert np.array_equal(a, b)
