"""Gradients of depthwise convolutions (groups == in_channels, any depth multiplier), which
the native backend computes on their own direct kernels (fastdl._C.variants(
"depthwise_backward")) instead of one GEMM per channel.

- Every depthwise-gradient variant, forced through fastdl._C.conv_backward with the GEMM of
  its ISA, against the NumPy reference: widths on and around the vector widths, stride 1, 2
  and 3, dilation, uneven and over-sized padding, multiplier 1 to 3, 1-D and 3-D inputs,
  Inf/NaN inputs, empty batches; the automatic choice takes them (not for the reference GEMM)
  and gives the forced kernels' bits.
- The public ops (conv1d/2d/3d_backward with groups == channels) on every backend against
  PyTorch autograd on MobileNet-like layers, and the reference against finite differences.
- The DepthwiseConv2D and SeparableConv2D layers' gradients against PyTorch autograd.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from fastdl import _reference as reference
from fastdl import ops
from native_variants import variant_params


def rand(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _gemm_of(isa):
    """The GEMM variant of an ISA: conv_backward runs its GEMM's ISA's depthwise kernels."""
    from fastdl import _C
    return next(n for n, i in _C.variants("gemm").items() if i and i["isa"] == isa)


def _case(channels, multiplier, spatial, kernel, stride, padding, dilation, batch=2, seed=0):
    """(dy, x, w, stride, flat padding, dilation): a depthwise layer's arrays."""
    x = rand((batch, channels) + tuple(spatial), seed)
    w = rand((channels * multiplier, 1) + tuple(kernel), seed + 1)
    y = reference.conv(x, w, None, stride, padding, dilation, channels, None, 0.0)
    return rand(y.shape, seed + 2), x, w


def _lanes(isa):
    return {"avx512": 16, "avx2": 8, "neon": 4}.get(isa, 4)


def _sweep(isa):
    """(spatial, kernel, stride, flat padding, dilation, multiplier) around the vector width
    of `isa`: the fixed 3x3/5x5 forms, the general one, 1-D and 3-D."""
    lanes = _lanes(isa)
    cases = []
    for ow in sorted({1, 2, lanes - 1, lanes, lanes + 1, 2 * lanes + 3}):
        for k, s, d in [(3, 1, 1), (3, 2, 1), (5, 1, 1), (5, 2, 1), (3, 1, 2), (2, 3, 1), (4, 2, 2)]:
            pad = (k // 2, k - 1 - k // 2 + (ow % 2), (ow % 3), k // 2)  # uneven, odd left
            # The input width giving ow outputs (at least 1 input).
            width = max(1, (ow - 1) * s + d * (k - 1) + 1 - pad[2] - pad[3])
            height = max(3 + (ow + k) % 7, d * (k - 1) + 1)
            cases.append(((height, width), (k, k), (s, s), pad, (d, d), 1 + ow % 3))
    cases.append(((1, 3 * lanes + 5), (1, 7), (1, 1), (0, 0, 6, 0), (1, 2), 2))   # 1-D, causal
    cases.append(((5, 9), (3, 3), (1, 1), (4, 4, 5, 5), (1, 1), 1))  # padding past the window
    return cases


@pytest.mark.parametrize("name", variant_params("depthwise_backward"))
def test_each_variant_matches_the_reference(name):
    _C = pytest.importorskip("fastdl._C")
    isa = _C.variants("depthwise_backward")[name]["isa"]
    for i, (spatial, kernel, stride, pad, dil, m) in enumerate(_sweep(isa)):
        dy, x, w = _case(3, m, spatial, kernel, stride, pad, dil, seed=3 * i)
        want = reference.conv_backward(dy, x, w, stride, pad, dil, 3, True, True)
        got = _C.conv_backward(dy, x, w, stride, pad, dil, 3, True, True,
                               variant=_gemm_of(isa), algorithm="depthwise")
        for g, r, what in zip(got, want, ("dx", "dw", "db")):
            np.testing.assert_allclose(g, r, rtol=1e-5, atol=2e-5,
                                       err_msg=f"{name} {what} {spatial} k{kernel} s{stride} "
                                               f"pad{pad} d{dil} m{m}")


@pytest.mark.parametrize("name", variant_params("depthwise_backward"))
def test_each_variant_on_3d_inputs_empty_batches_and_dw_alone(name):
    _C = pytest.importorskip("fastdl._C")
    kw = {"variant": _gemm_of(_C.variants("depthwise_backward")[name]["isa"]),
          "algorithm": "depthwise"}
    # A 1 x 3 x 3 window over a 3-D input: every depth slice is a depthwise plane.
    dy, x, w = _case(2, 2, (3, 6, 7), (1, 3, 3), (1, 1, 2), (0, 0, 1, 1, 0, 1), (1, 1, 1))
    want = reference.conv_backward(dy, x, w, (1, 1, 2), (0, 0, 1, 1, 0, 1), (1, 1, 1), 2, True,
                                   True)
    got = _C.conv_backward(dy, x, w, (1, 1, 2), (0, 0, 1, 1, 0, 1), (1, 1, 1), 2, True, True, **kw)
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=2e-5)
    dy, x, w = _case(4, 1, (9, 10), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))
    dx, dw, db = _C.conv_backward(dy, x, w, (1, 1), (1, 1, 1, 1), (1, 1), 4, False, False, **kw)
    assert dx is None and db is None
    want = reference.conv_backward(dy, x, w, (1, 1), (1, 1, 1, 1), (1, 1), 4, False, False)[1]
    np.testing.assert_allclose(dw, want, rtol=1e-5, atol=2e-5)
    dx, dw, db = _C.conv_backward(dy[:0], x[:0], w, (1, 1), (1, 1, 1, 1), (1, 1), 4, True, True,
                                  **kw)
    assert dx.shape == (0, 4, 9, 10) and not dw.any() and not db.any()


@pytest.mark.parametrize("name", variant_params("depthwise_backward"))
def test_each_variant_lets_inf_and_nan_flow_as_the_products_do(name):
    """An Inf in an input column no output reads leaves dw finite (the lanes past a row's
    end are masked, not multiplied by zero); a NaN that is read reaches its taps."""
    _C = pytest.importorskip("fastdl._C")
    kw = {"variant": _gemm_of(_C.variants("depthwise_backward")[name]["isa"]),
          "algorithm": "depthwise"}
    dy, x, w = _case(2, 1, (6, 20), (3, 3), (2, 2), (0, 0, 0, 0), (1, 1))
    x[:, :, :, -1] = np.inf  # width 20, stride 2, 3 taps: column 19 is never read
    want = reference.conv_backward(dy, x, w, (2, 2), (0, 0, 0, 0), (1, 1), 2, True, True)
    got = _C.conv_backward(dy, x, w, (2, 2), (0, 0, 0, 0), (1, 1), 2, True, True, **kw)
    assert np.isfinite(got[1]).all()
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=2e-5)
    x[0, 1, 2, 4] = np.nan
    got = _C.conv_backward(dy, x, w, (2, 2), (0, 0, 0, 0), (1, 1), 2, True, True, **kw)
    assert np.isnan(got[1][1]).any() and np.isfinite(got[1][0]).all()


def test_the_automatic_choice_takes_the_depthwise_kernels_of_simd_gemms():
    """'auto' gives the forced depthwise kernels' bits on a SIMD GEMM, the GEMM path's on
    the reference GEMM; both agree with the reference."""
    _C = pytest.importorskip("fastdl._C")
    dy, x, w = _case(8, 2, (13, 17), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), batch=3)
    args = (dy, x, w, (2, 2), (1, 1, 1, 1), (1, 1), 8, True, True)
    want = reference.conv_backward(*args)
    for name, info in _C.variants("gemm").items():
        if info is None:
            continue
        auto = _C.conv_backward(*args, variant=name)
        forced = _C.conv_backward(*args, variant=name,
                                  algorithm="gemm" if info["isa"] == "ref" else "depthwise")
        for a, f, r in zip(auto, forced, want):
            np.testing.assert_array_equal(a, f)
            np.testing.assert_allclose(a, r, rtol=1e-5, atol=2e-5)
    with pytest.raises(ValueError, match="algorithm: expected 'auto', 'gemm', 'depthwise' or 'shifted_dots'"):
        _C.conv_backward(*args, algorithm="winograd")


def test_grouped_layers_that_are_not_depthwise_stay_on_the_gemms():
    _C = pytest.importorskip("fastdl._C")
    dy, x, w = rand((2, 6, 5, 5), 1), rand((2, 4, 5, 5), 2), rand((6, 2, 3, 3), 3)
    args = (dy, x, w, (1, 1), (1, 1, 1, 1), (1, 1), 2, True, True)
    forced = _C.conv_backward(*args, algorithm="depthwise")  # not depthwise: the GEMMs
    for a, b in zip(forced, _C.conv_backward(*args, algorithm="gemm")):
        np.testing.assert_array_equal(a, b)


def test_reference_gradients_of_a_strided_multiplier_layer_are_finite_differences():
    ref_conv = importlib.import_module("fastdl._reference.conv")
    stride, pad, dil, groups = (2, 1), (1, 0, 2, 1), (1, 2), 3
    x = rand((2, 3, 7, 8), 1).astype(np.float64)
    w = rand((6, 1, 3, 2), 2).astype(np.float64)
    y = reference.conv(x, w, None, stride, pad, dil, groups, None, 0.0)
    dy = rand(y.shape, 3).astype(np.float64)

    def loss(x_, w_):
        patches = ref_conv._patches(x_, w_.shape[2:], dil, pad, stride)
        cols = patches.reshape(2, groups, -1, int(np.prod(patches.shape[w_.ndim:])))
        out = (w_.reshape(groups, 2, -1) @ cols).reshape(y.shape)
        return float(np.sum(out * dy))

    dx, dw, _ = reference.conv_backward(dy.astype(np.float32), x.astype(np.float32),
                                        w.astype(np.float32), stride, pad, dil, groups, True, True)
    h = 1e-6
    for grad, arr, which in ((dx, x, 0), (dw, w, 1)):
        for flat in np.random.default_rng(4).choice(arr.size, 15, replace=False):
            e = np.zeros(arr.size)
            e[flat] = h
            e = e.reshape(arr.shape)
            plus = loss(x + e, w) if which == 0 else loss(x, w + e)
            minus = loss(x - e, w) if which == 0 else loss(x, w - e)
            assert grad.flat[flat] == pytest.approx((plus - minus) / (2 * h), rel=1e-4, abs=1e-4)


# ------------------------------------------------------------ the public ops vs torch

@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


TORCH_CASES = [  # dims, x shape, multiplier, kernel, kwargs
    (2, (2, 32, 28, 28), 1, 3, dict(padding=1)),                        # MobileNet 3x3
    (2, (3, 16, 15, 15), 1, 3, dict(stride=2, padding=1)),              # strided
    (2, (2, 24, 14, 14), 1, 5, dict(padding=2)),                        # 5x5
    (2, (2, 8, 17, 16), 2, 5, dict(stride=2, padding=(2, 1))),          # multiplier 2
    (2, (1, 4, 9, 33), 3, 3, dict(dilation=(2, 3), padding=(2, 3))),    # dilated
    (1, (2, 6, 50), 2, 5, dict(padding=4, dilation=2)),                 # 1-D
    (1, (3, 40), 1, 3, dict(stride=2)),                                 # 1-D, unbatched
    (3, (1, 2, 3, 8, 8), 2, (1, 3, 3), dict(padding=(0, 1, 1))),        # 3-D, flat window
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dims,xs,m,k,kwargs", TORCH_CASES)
def test_depthwise_backward_matches_torch_autograd(any_backend, torch, dims, xs, m, k, kwargs,
                                                   bias):
    channels = xs[-dims - 1]
    kernel = k if isinstance(k, tuple) else (k,) * dims
    x, w, b = rand(xs, 10), rand((channels * m, 1) + kernel, 11), rand(channels * m, 12)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    forward = getattr(torch.nn.functional, f"conv{dims}d")
    ty = forward(tx, tw, tb if bias else None, groups=channels, **kwargs)
    dy = rand(tuple(ty.shape), 13)
    ty.backward(torch.tensor(dy))
    backward = getattr(ops, f"conv{dims}d_backward")
    dx, dw, db = backward(dy, x, w, groups=channels, bias=bias, **kwargs)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-5, atol=1e-4)
    if bias:
        np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-5, atol=1e-4)
    else:
        assert db is None


@pytest.mark.parametrize("layer", ["depthwise", "separable"])
def test_depthwise_and_separable_layers_train_with_torch_gradients(any_backend, torch, layer):
    """The layers' kernel gradients (channels_last, Keras' kernel layout) against torch
    autograd of the same convolutions."""
    import fastdl.layers as L
    from fastdl.models import Sequential
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 12, 12, 6)).astype(np.float32)
    if layer == "depthwise":
        lay = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2,
                                input_shape=(12, 12, 6))
    else:
        lay = L.SeparableConv2D(5, 3, padding="same", depth_multiplier=2, input_shape=(12, 12, 6))
    model = Sequential([lay])
    model.compile(optimizer="sgd", loss="mse")
    y = model.predict(x, verbose=0)
    target = rng.standard_normal(y.shape).astype(np.float32)
    weights = [v.copy() for v in lay.get_weights()]
    # torch: the same layer from Keras' kernels ([kh, kw, C, m] depthwise, [1, 1, C*m, F]
    # pointwise), channels first.
    dk = torch.tensor(np.transpose(weights[0], (2, 3, 0, 1)).reshape(12, 1, 3, 3),
                      requires_grad=True)
    tx = torch.tensor(np.transpose(x, (0, 3, 1, 2)))
    if layer == "depthwise":
        pad = (0, 1, 0, 1)  # TF 'same' with stride 2 on 12: 0 before, 1 after
        ty = torch.nn.functional.conv2d(torch.nn.functional.pad(tx, pad), dk,
                                        torch.tensor(weights[1]), stride=2, groups=6)
        params = [dk]
    else:
        pk = torch.tensor(np.transpose(weights[1], (3, 2, 0, 1)), requires_grad=True)
        mid = torch.nn.functional.conv2d(tx, dk, None, padding=1, groups=6)
        ty = torch.nn.functional.conv2d(mid, pk, torch.tensor(weights[2]))
        params = [dk, pk]
    loss = ((ty - torch.tensor(np.transpose(target, (0, 3, 1, 2)))) ** 2).mean()
    loss.backward()
    lr = 0.1
    model.compile(optimizer=__import__("fastdl").optimizers.SGD(learning_rate=lr), loss="mse")
    model.train_on_batch(x, target)
    after = lay.get_weights()
    want = np.transpose(dk.grad.numpy().reshape(6, 2, 3, 3), (2, 3, 0, 1))
    np.testing.assert_allclose((weights[0] - after[0]) / lr, want, rtol=1e-4, atol=1e-5)
    if layer == "separable":
        want = np.transpose(params[1].grad.numpy(), (2, 3, 1, 0))
        np.testing.assert_allclose((weights[1] - after[1]) / lr, want, rtol=1e-4, atol=1e-5)
