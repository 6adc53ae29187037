"""Gradients of the dense family: every activation's backward, softmax/log_softmax backward
and linear_backward.

- The NumPy reference against central finite differences in float64 of the forward
  reference (away from the kinks, where the derivative is PyTorch's by definition).
- Every native variant (fastdl._C.variants("activation"), ("gemm")) and the Numba twin
  against the reference.
- The public fastdl.ops functions on every backend against PyTorch autograd (shapes with
  leading axes, the kinks, axes and temperature) and with bad arguments.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from fastdl import _reference as reference
from fastdl import ops
from fastdl._reference.activation import ACTIVATIONS, DERIVATIVES, FROM_OUTPUT
from native_variants import backend_module, runnable, skipped, unrunnable

ALPHA = 0.3
ACTS = [None, "relu", "relu6", "leaky_relu", "elu", "sigmoid", "tanh", "silu", "hard_swish"]
KINKS = np.array([0.0, -0.0, 6.0, -3.0, 3.0], np.float32)


def rand(shape, seed, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def saved_operand(name, x):
    """What the gradient reads: the forward output (FROM_OUTPUT) or the input."""
    if name in FROM_OUTPUT:
        return reference.activation(x, name, ALPHA)
    return x


# ------------------------------------------------------------ the reference vs calculus

@pytest.mark.parametrize("name", ACTS)
def test_reference_derivatives_are_finite_differences(name):
    x = rand(4000, 1, 5.0).astype(np.float64)
    x = x[np.min(np.abs(x[:, None] - np.array([0.0, 6.0, -3.0, 3.0])), axis=1) > 1e-3]
    h = 1e-6
    f = ACTIVATIONS[name]
    numeric = (f(x + h, ALPHA) - f(x - h, ALPHA)) / (2 * h)
    t = f(x, ALPHA) if name in FROM_OUTPUT else x
    np.testing.assert_allclose(DERIVATIVES[name](t, ALPHA), numeric, rtol=1e-6, atol=1e-8)


def test_reference_softmax_and_linear_gradients_are_finite_differences():
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal((2, 7, 3)), rng.standard_normal((2, 7, 3))
    scale, h = 0.7, 1e-6

    def softmax64(z, log):
        z = (z - z.max(axis=1, keepdims=True)) * scale
        lse = np.log(np.exp(z).sum(axis=1, keepdims=True))
        return z - lse if log else np.exp(z - lse)

    for log in (False, True):
        numeric = np.zeros_like(x)
        for i in np.ndindex(x.shape):  # d(sum(dy * f(x))) / dx_i
            e = np.zeros_like(x)
            e[i] = h
            numeric[i] = (np.sum(dy * softmax64(x + e, log)) -
                          np.sum(dy * softmax64(x - e, log))) / (2 * h)
        y = softmax64(x, log)
        got = reference.softmax_backward(y, dy, scale, log)
        np.testing.assert_allclose(got, numeric, rtol=1e-5, atol=1e-6)
    # linear: the loss sum(dy * (x @ w.T + b)) is linear in each argument.
    x, w, b, dy = (rng.standard_normal(s) for s in ((5, 4), (3, 4), (3,), (5, 3)))
    dx, dw, db = reference.linear_backward(dy.astype(np.float32), x.astype(np.float32),
                                           w.astype(np.float32), True, True)
    loss = lambda x, w, b: np.sum(dy * (x @ w.T + b))  # noqa: E731
    for arg, grad in ((0, dx), (1, dw), (2, db)):
        args = [x, w, b]
        numeric = np.zeros_like(args[arg])
        for i in np.ndindex(numeric.shape):
            plus, minus = [a.copy() for a in args], [a.copy() for a in args]
            plus[arg][i] += h
            minus[arg][i] -= h
            numeric[i] = (loss(*plus) - loss(*minus)) / (2 * h)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------ every implementation

def implementations(op):
    """(label, module-like) per native variant of `op`, Numba; skips for missing ISAs."""
    params = [pytest.param(name, id=name.split("__")[-1]) for name in runnable(op)]
    params += [skipped(name) for name in unrunnable(op)]
    return params + ["numba"]


def _kernels(label):
    if label == "numba":
        pytest.importorskip("numba")
        return importlib.import_module("fastdl._numba"), {}
    return importlib.import_module("fastdl._C"), {"variant": label}


# Sizes around every vector width (1, 4, 8, 16) and past the threaded grain (2 x 32768).
SIZES = [1, 3, 4, 5, 8, 9, 15, 16, 17, 33, 2 * 32768 + 5]


@pytest.mark.parametrize("label", implementations("activation"))
def test_activation_backward_matches_reference(label):
    module, kw = _kernels(label)
    for name in ACTS:
        for n in SIZES:
            x = rand(n, n, 4.0)
            x[:min(n, KINKS.size)] = KINKS[:min(n, KINKS.size)]
            t, dy = saved_operand(name, x), rand(n, n + 1)
            want = reference.activation_backward(dy, t, name, ALPHA)
            got = module.activation_backward(dy, t, name, ALPHA, **kw)
            np.testing.assert_allclose(got, want, rtol=3e-6, atol=5e-7,
                                       err_msg=f"{label} {name} n={n}")  # 1 - y*y in float32 near |y| = 1


@pytest.mark.parametrize("label", implementations("activation"))
@pytest.mark.parametrize("shape", [(3, 1, 1), (3, 17, 1), (2, 40, 1), (2, 9, 5), (1, 3, 17),
                                   (0, 4, 1)])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_backward_matches_reference(label, shape, log):
    module, kw = _kernels(label)
    x, dy = rand(shape, 3, 3.0), rand(shape, 4)
    y = reference.softmax(x, 0.5, log)
    want = reference.softmax_backward(y, dy, 0.5, log)
    np.testing.assert_allclose(module.softmax_backward(y, dy, 0.5, log, **kw), want,
                               rtol=1e-5, atol=2e-6)


def _gemm_cases(name, info):
    mr, nr = info["mr"], info["nr"]
    return [(name, m, k, n) for m, k, n in ((1, 1, 1), (mr + 1, nr - 1, nr + 1),
                                            (3 * mr, 37, 2 * nr + 3), (700, 20, 9),
                                            (0, 5, 3))]


@pytest.mark.parametrize("label,m,k,n", [pytest.param(*c, id=f"{c[0].split('__')[-1]}-{c[1]}x{c[2]}x{c[3]}")
                                         for name, info in runnable("gemm").items()
                                         for c in _gemm_cases(name, info)] +
                         [skipped(name, 0, 0, 0) for name in unrunnable("gemm")] +
                         [("numba", m, k, n) for m, k, n in ((7, 5, 3), (700, 20, 9), (0, 5, 3))])
def test_linear_backward_matches_reference(label, m, k, n):
    module, kw = _kernels(label)
    x, w, dy = rand((m, k), 5), rand((n, k), 6), rand((m, n), 7)
    want = reference.linear_backward(dy, x, w, True, True)
    got = module.linear_backward(dy, x, w, True, True, **kw)
    for g, e, what in zip(got, want, ("dx", "dw", "db")):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5 * (1 + m), err_msg=what)
    dx, dw, db = module.linear_backward(dy, x, w, False, False, **kw)
    assert dx is None and db is None
    np.testing.assert_allclose(dw, want[1], rtol=1e-5, atol=1e-5 * (1 + m))
    # w as Keras' kernel [K, N]: the same gradients, dw in that layout
    dx, dw, db = module.linear_backward(dy, x, np.ascontiguousarray(w.T), True, True, True,
                                        **kw)
    np.testing.assert_allclose(dx, want[0], rtol=1e-5, atol=1e-5 * (1 + m))
    np.testing.assert_allclose(dw, want[1].T, rtol=1e-5, atol=1e-5 * (1 + m))


# ------------------------------------------------------------ the public ops vs PyTorch

@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def torch_forward(torch, name, t):
    F = torch.nn.functional
    return {None: lambda t: t, "relu": F.relu, "relu6": F.relu6,
            "leaky_relu": lambda t: F.leaky_relu(t, ALPHA), "elu": lambda t: F.elu(t, ALPHA),
            "sigmoid": torch.sigmoid, "tanh": torch.tanh, "silu": F.silu,
            "hard_swish": F.hardswish}[name](t)


def public_backward(name, dy, x):
    """fastdl.ops.<name>_backward with what it reads (output or input)."""
    if name == "leaky_relu":
        return ops.leaky_relu_backward(dy, x, negative_slope=ALPHA)
    if name == "elu":
        return ops.elu_backward(dy, x, alpha=ALPHA)
    if name in ("silu", "hard_swish"):
        return getattr(ops, f"{name}_backward")(dy, x)
    return getattr(ops, f"{name}_backward")(dy, getattr(ops, name)(x))


@pytest.mark.parametrize("name", ACTS[1:])
def test_public_activation_backward_matches_torch_autograd(any_backend, torch, name):
    x = rand((3, 5, 7), 8, 4.0)
    x.reshape(-1)[:KINKS.size] = KINKS
    dy = rand(x.shape, 9)
    t = torch.tensor(x, requires_grad=True)
    torch_forward(torch, name, t).backward(torch.tensor(dy))
    got = public_backward(name, dy, x)
    assert got.shape == x.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, t.grad.numpy(), rtol=2e-6, atol=1e-6)


def test_swish_backward_is_silu_backward():
    assert ops.swish_backward is ops.silu_backward


@pytest.mark.parametrize("axis,temperature", [(-1, 1.0), (0, 1.0), (1, 2.5)])
@pytest.mark.parametrize("log", [False, True])
def test_public_softmax_backward_matches_torch_autograd(any_backend, torch, axis, temperature,
                                                        log):
    x, dy = rand((4, 6, 5), 10, 3.0), rand((4, 6, 5), 11)
    t = torch.tensor(x, requires_grad=True)
    f = torch.log_softmax if log else torch.softmax
    f(t / temperature, dim=axis).backward(torch.tensor(dy))
    forward = ops.log_softmax if log else ops.softmax
    backward = ops.log_softmax_backward if log else ops.softmax_backward
    y = forward(x, axis=axis, temperature=temperature)
    got = backward(dy, y, axis=axis, temperature=temperature)
    np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("bias", [True, False])
def test_public_linear_backward_matches_torch_autograd(any_backend, torch, bias):
    x, w, b = rand((2, 3, 10), 12), rand((6, 10), 13), rand(6, 14)
    dy = rand((2, 3, 6), 15)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    torch.nn.functional.linear(tx, tw, tb if bias else None).backward(torch.tensor(dy))
    dx, dw, db = ops.linear_backward(dy, x, w, bias=bias)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-5, atol=1e-5)
    if bias:
        np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-5, atol=1e-5)
    else:
        assert db is None
    assert ops.linear_backward(dy, x, w, needs_input_grad=False)[0] is None
    kx, kw, kb = ops.linear_backward(dy, x, w.T, bias=bias, transposed=True)
    np.testing.assert_allclose(kx, tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(kw, tw.grad.numpy().T, rtol=1e-5, atol=1e-5)


def test_gradients_take_any_real_dtype_and_strides():
    x = np.arange(24, dtype=np.float64).reshape(4, 6)[:, ::2] - 5
    dy = np.ones((4, 3), np.int32)
    got = ops.relu_backward(dy, ops.relu(x))
    np.testing.assert_array_equal(got, (x > 0).astype(np.float32))
    dx, dw, db = ops.linear_backward(dy[:, :2], x, np.ones((2, 3)))
    np.testing.assert_allclose(dw, np.ones((2, 4)) @ x)


@pytest.mark.parametrize("call,match", [
    (lambda: ops.relu_backward(np.ones(3), np.ones(4)), "output: expected shape"),
    (lambda: ops.silu_backward(np.ones(3), None), "input"),
    (lambda: ops.tanh_backward(np.ones(3, complex), np.ones(3)), "grad_output"),
    (lambda: ops.leaky_relu_backward(np.ones(3), np.ones(3), "a"), "negative_slope"),
    (lambda: ops.softmax_backward(np.ones((2, 3)), np.ones((2, 3)), axis=2), "axis"),
    (lambda: ops.softmax_backward(np.ones((2, 3)), np.ones((3, 2))), "output: expected shape"),
    (lambda: ops.log_softmax_backward(np.ones(3), np.ones(3), temperature=0), "temperature"),
    (lambda: ops.linear_backward(np.ones((2, 3)), np.ones((2, 4)), np.ones((3, 5))), "x: expected"),
    (lambda: ops.linear_backward(np.ones((2, 4)), np.ones((2, 5)), np.ones((3, 5))),
     "grad_output: expected shape"),
    (lambda: ops.linear_backward(np.ones((2, 3)), np.ones((2, 5)), np.ones(5)), "w: expected"),
    (lambda: ops.linear_backward(np.ones((2, 3)), np.ones((2, 5)), np.ones((3, 5)), bias=2),
     "bias"),
])
def test_bad_arguments_raise_naming_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
