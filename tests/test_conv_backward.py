"""Gradients of the convolutions, plain and transposed, 1-D/2-D/3-D.

- The NumPy reference's conv_backward against central finite differences in float64 of
  the forward reference.
- Every GEMM variant of fastdl._C and the Numba twin against the reference; every shifted
  dot product variant (a stride-1 layer's dw and db) forced on stride-1 geometries.
- The public fastdl.ops functions on every backend against PyTorch autograd (groups,
  depthwise, stride, dilation, uneven and 'same' padding, output_padding past the padding,
  unbatched inputs) and with bad arguments.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from fastdl import _reference as reference
from fastdl import ops
from native_variants import runnable, skipped, unrunnable, variant_params


def rand(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# (x shape, w shape, stride, flat padding, dilation, groups)
GEOMETRIES = [
    ((2, 3, 11), (4, 3, 3), (2,), (1, 0), (1,), 1),
    ((2, 4, 7, 6), (6, 2, 3, 2), (1, 2), (1, 2, 0, 1), (2, 1), 2),
    ((1, 3, 8, 8), (3, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 3),          # depthwise
    ((3, 8, 5, 4), (5, 8, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),          # pointwise
    ((1, 2, 4, 5, 4), (3, 2, 2, 3, 2), (2, 1, 1), (1, 0, 0, 1, 1, 1), (1, 1, 2), 1),
]


def forward64(x, w, stride, padding, dilation, groups):
    return reference.conv(x, w, None, stride, padding, dilation, groups, None, 0.0)


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", GEOMETRIES[:3])
def test_reference_gradients_are_finite_differences(xs, ws, stride, padding, dilation, groups):
    ref_conv = importlib.import_module("fastdl._reference.conv")
    x, w = rand(xs, 1).astype(np.float64), rand(ws, 2).astype(np.float64)
    y = forward64(x, w, stride, padding, dilation, groups)
    dy = rand(y.shape, 3).astype(np.float64)

    def loss(x_, w_):  # float64 through the reference's own float64 core
        patches = ref_conv._patches(x_, w_.shape[2:], dilation, padding, stride)
        n, o = x_.shape[0], w_.shape[0]
        cols = patches.reshape(n, groups, -1, int(np.prod(patches.shape[w_.ndim:])))
        out = (w_.reshape(groups, o // groups, -1) @ cols).reshape(y.shape)
        return float(np.sum(out * dy))

    dx, dw, db = reference.conv_backward(dy.astype(np.float32), x.astype(np.float32),
                                         w.astype(np.float32), stride, padding, dilation,
                                         groups, True, True)
    h, rng = 1e-6, np.random.default_rng(4)
    for grad, arr, which in ((dx, x, 0), (dw, w, 1)):
        for flat in rng.choice(arr.size, 12, replace=False):
            e = np.zeros(arr.size)
            e[flat] = h
            e = e.reshape(arr.shape)
            args_plus = (x + e, w) if which == 0 else (x, w + e)
            args_minus = (x - e, w) if which == 0 else (x, w - e)
            numeric = (loss(*args_plus) - loss(*args_minus)) / (2 * h)
            assert grad.flat[flat] == pytest.approx(numeric, rel=1e-4, abs=1e-4)
    np.testing.assert_allclose(db, dy.sum(axis=(0,) + tuple(range(2, dy.ndim))), rtol=1e-5)


def implementations():
    params = [pytest.param(name, id=name.split("__")[-1]) for name in runnable("gemm")]
    return params + [skipped(name) for name in unrunnable("gemm")] + ["numba"]


@pytest.mark.parametrize("label", implementations())
@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", GEOMETRIES)
def test_every_implementation_matches_the_reference(label, xs, ws, stride, padding, dilation,
                                                    groups):
    if label == "numba":
        pytest.importorskip("numba")
        module, kw = importlib.import_module("fastdl._numba"), {}
    else:
        module, kw = importlib.import_module("fastdl._C"), {"variant": label}
    x, w = rand(xs, 5), rand(ws, 6)
    y = forward64(x, w, stride, padding, dilation, groups)
    dy = rand(y.shape, 7)
    want = reference.conv_backward(dy, x, w, stride, padding, dilation, groups, True, True)
    got = module.conv_backward(dy, x, w, stride, padding, dilation, groups, True, True, **kw)
    for g, r, name in zip(got, want, ("dx", "dw", "db")):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5, err_msg=name)
    dx, dw, db = module.conv_backward(dy, x, w, stride, padding, dilation, groups, False,
                                      False, **kw)
    assert dx is None and db is None
    np.testing.assert_allclose(dw, want[1], rtol=1e-5, atol=1e-5)


# Stride-1 geometries: 1-D causal and dilated, 2-D 'same' with an even kernel, groups,
# depthwise, pointwise, 3-D dilated with uneven padding.
STRIDE_ONE = [
    ((3, 5, 20), (7, 5, 3), (1,), (4, 0), (2,), 1),
    ((4, 3, 9, 10), (11, 3, 2, 2), (1, 1), (0, 1, 0, 1), (1, 1), 1),
    ((2, 6, 7, 6), (9, 2, 3, 3), (1, 1), (1, 1, 2, 0), (1, 2), 3),
] + [g for g in GEOMETRIES if all(s == 1 for s in g[2])] + [
    ((2, 2, 4, 5, 6), (3, 2, 2, 3, 2), (1, 1, 1), (1, 0, 0, 2, 1, 1), (2, 1, 1), 1),
]


@pytest.mark.parametrize("name", variant_params("shifted_dots"))
def test_each_shifted_dots_variant_matches_the_reference(name):
    from fastdl import _C
    isa = _C.variants("shifted_dots")[name]["isa"]
    gemm = next(n for n, i in _C.variants("gemm").items() if i and i["isa"] == isa)
    for xs, ws, stride, padding, dilation, groups in STRIDE_ONE:
        x, w = rand(xs, 8), rand(ws, 9)
        dy = rand(forward64(x, w, stride, padding, dilation, groups).shape, 10)
        args = (dy, x, w, stride, padding, dilation, groups)
        want = reference.conv_backward(*args, True, True)
        got = _C.conv_backward(*args, True, True, variant=gemm, algorithm="shifted_dots")
        for g, r, what in zip(got, want, ("dx", "dw", "db")):
            np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5, err_msg=f"{what} {xs} {ws}")
        _, dw, db = _C.conv_backward(*args, False, False, variant=gemm, algorithm="shifted_dots")
        assert db is None
        np.testing.assert_allclose(dw, want[1], rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------ the public ops vs torch

@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


CONV_CASES = [  # dims, x shape, w shape, kwargs
    (1, (2, 3, 12), (5, 3, 3), dict(stride=2, padding=1)),
    (1, (2, 4, 10), (4, 2, 3), dict(padding="same", dilation=2, groups=2)),
    (1, (3, 9), (2, 3, 4), dict(padding=(3, 0))),                          # unbatched, causal
    (2, (2, 3, 9, 8), (4, 3, 3, 3), dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2))),
    (2, (2, 6, 7, 7), (6, 1, 3, 3), dict(padding=1, groups=6)),            # depthwise
    (2, (2, 4, 6, 6), (8, 4, 2, 2), dict(padding="same")),                 # uneven 'same'
    (2, (2, 16, 5, 5), (8, 16, 1, 1), dict()),                             # pointwise
    (3, (1, 2, 5, 6, 4), (3, 2, 3, 2, 3), dict(stride=(1, 2, 1), padding=1, dilation=(2, 1, 1))),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dims,xs,ws,kwargs", CONV_CASES)
def test_conv_backward_matches_torch_autograd(any_backend, torch, dims, xs, ws, kwargs, bias):
    x, w, b = rand(xs, 10), rand(ws, 11), rand(ws[0], 12)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    forward = getattr(torch.nn.functional, f"conv{dims}d")
    if isinstance(kwargs.get("padding"), tuple) and len(kwargs["padding"]) == 2 * dims:
        pad = kwargs["padding"]  # per-side padding: torch pads the input first
        flat = sum(((pad[2 * a], pad[2 * a + 1]) for a in reversed(range(dims))), ())
        ty = forward(torch.nn.functional.pad(tx, flat), tw, tb if bias else None,
                     **{k: v for k, v in kwargs.items() if k != "padding"})
    else:
        ty = forward(tx, tw, tb if bias else None, **kwargs)
    dy = rand(tuple(ty.shape), 13)
    ty.backward(torch.tensor(dy))
    backward = getattr(ops, f"conv{dims}d_backward")
    dx, dw, db = backward(dy, x, w, bias=bias, **kwargs)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-5, atol=1e-4)
    if bias:
        np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-5, atol=1e-4)
    else:
        assert db is None
    assert backward(dy, x, w, needs_input_grad=False, **kwargs)[0] is None


TRANSPOSE_CASES = [  # dims, x shape, w shape, kwargs
    (1, (2, 3, 7), (3, 4, 3), dict(stride=2, padding=1, output_padding=1)),
    (1, (2, 4, 6), (4, 1, 3), dict(stride=1, dilation=3, output_padding=2, groups=2)),
    (2, (2, 4, 5, 4), (4, 3, 3, 2), dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2))),
    (2, (3, 4, 5), (3, 2, 3, 3), dict(stride=2, dilation=2, padding=1)),     # unbatched
    (2, (2, 4, 3, 3), (4, 2, 3, 3), dict(stride=3, dilation=4, output_padding=3, groups=2)),
    (3, (1, 2, 3, 4, 3), (2, 3, 2, 3, 2), dict(stride=(2, 1, 2), padding=(0, 1, 1))),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dims,xs,ws,kwargs", TRANSPOSE_CASES)
def test_conv_transpose_backward_matches_torch_autograd(any_backend, torch, dims, xs, ws,
                                                        kwargs, bias):
    x, w = rand(xs, 20), rand(ws, 21)
    b = rand(ws[1] * kwargs.get("groups", 1), 22)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    forward = getattr(torch.nn.functional, f"conv_transpose{dims}d")
    ty = forward(tx, tw, tb if bias else None, **kwargs)
    dy = rand(tuple(ty.shape), 23)
    ty.backward(torch.tensor(dy))
    dx, dw, db = getattr(ops, f"conv_transpose{dims}d_backward")(dy, x, w, bias=bias, **kwargs)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-5, atol=1e-4)
    if bias:
        np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-5, atol=1e-4)
    else:
        assert db is None


@pytest.mark.parametrize("call,error,match", [
    (lambda: ops.conv2d_backward(np.ones((1, 2, 3, 3)), np.ones((1, 3, 5, 5)),
                                 np.ones((2, 3, 3, 3))), None, None),
    (lambda: ops.conv2d_backward(np.ones((1, 2, 4, 3)), np.ones((1, 3, 5, 5)),
                                 np.ones((2, 3, 3, 3))),
     ValueError, r"grad_output: expected the forward's output shape \(1, 2, 3, 3\)"),
    (lambda: ops.conv2d_backward(np.ones((1, 2, 3, 3)), np.ones((1, 4, 5, 5)),
                                 np.ones((2, 3, 3, 3))), ValueError, "x: expected 3 channels"),
    (lambda: ops.conv2d_backward(np.ones((1, 2, 3, 3)), np.ones((1, 3, 5)),
                                 np.ones((2, 3, 3, 3))), ValueError, "x: expected"),
    (lambda: ops.conv2d_backward(np.ones((1, 2, 3, 3)), np.ones((1, 3, 5, 5)),
                                 np.ones((2, 3, 3, 3)), bias="yes"), TypeError, "bias"),
    (lambda: ops.conv1d_backward(np.ones((1, 2, 3)), np.ones((1, 3, 5)), np.ones((2, 3, 3)),
                                 groups=2), ValueError, "groups"),
    (lambda: ops.conv_transpose2d_backward(np.ones((1, 2, 4, 5)), np.ones((1, 3, 3, 3)),
                                           np.ones((3, 2, 3, 3))),
     ValueError, r"grad_output: expected the forward's output shape \(1, 2, 5, 5\)"),
    (lambda: ops.conv_transpose1d_backward(np.ones((1, 2, 5)), np.ones((1, 3, 3)),
                                           np.ones((3, 2, 3)), output_padding=1),
     ValueError, "output_padding"),
    (lambda: ops.conv2d_backward(np.full((1, 2, 3, 3), np.nan), np.ones((1, 3, 5, 5)),
                                 np.ones((2, 3, 3, 3))), None, None),
])
def test_bad_arguments_are_refused_by_name(call, error, match):
    if error is None:  # well-formed (NaN flows through): runs
        dx, dw, db = call()
        assert dx.shape == (1, 3, 5, 5) and dw.shape == (2, 3, 3, 3) and db.shape == (2,)
        return
    with pytest.raises(error, match=match):
        call()
