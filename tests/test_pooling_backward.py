"""Pooling gradients on every floor: max_pool_backward / avg_pool_backward.

- The NumPy reference against central finite differences in float64 of the forward
  (average pooling is linear; max pooling is, away from ties).
- Every native variant (fastdl._C.variants("pool")) and the Numba twin against the
  reference, on generated cases (1-D/2-D/3-D, stride != kernel, overlapping windows,
  padding, dilation, ceil_mode, count_include_pad, divisor_override, widths around the
  vector widths, ties, empty batches) and with several threads.
- The public fastdl.ops functions on every backend against PyTorch autograd (float32),
  batched and unbatched, global pooling, any dtype and strides; bad arguments (indices out
  of their plane included) raise naming the argument, never crash.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from fastdl import _reference as reference
from fastdl import ops
from fastdl._reference import pooling as reference_pooling
from native_variants import backend_module, runnable, skipped, unrunnable

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

F32 = np.float32
VECTOR_WIDTHS = [7, 8, 9, 15, 16, 17, 31, 32, 33]  # NEON 4, AVX2 8, AVX-512 16 lanes, +-1


def rand(shape, seed, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(F32)


def out_shape(shape, kernel, stride, padding, dilation, ceil_mode):
    from fastdl._pool_geometry import output_size
    return shape[:2] + tuple(output_size(*g, ceil_mode)
                             for g in zip(shape[2:], kernel, stride, padding, dilation))


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


# ------------------------------------------------------------ the reference vs calculus

def avg64(x, kernel, stride, padding, ceil_mode, include, divisor_override):
    """Average pooling in float64, from the reference's window gather and divisors."""
    taps, _ = reference_pooling._windows(x, 0.0, kernel, stride, padding, (1,) * len(kernel),
                                         ceil_mode)
    sums = taps.sum(axis=-1)
    if divisor_override is not None:
        return sums / divisor_override
    return sums / reference_pooling._divisors(x.shape[2:], sums.shape[2:], kernel, stride,
                                              padding, include)


def max64(x, kernel, stride, padding, dilation, ceil_mode):
    taps, _ = reference_pooling._windows(x, -np.inf, kernel, stride, padding, dilation,
                                         ceil_mode)
    return taps.max(axis=-1)


def numeric_gradient(f, x, dy, h):
    """d(sum(dy * f(x))) / dx by central differences, entry by entry."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        grad[i] = (np.sum(dy * f(x + e)) - np.sum(dy * f(x - e))) / (2 * h)
    return grad


AVG_FD_CASES = [  # (shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor)
    ((1, 2, 7), (3,), (2,), (1,), True, False, None),
    ((2, 1, 5, 6), (3, 2), (1, 2), (1, 1), False, True, None),   # overlapping rows
    ((1, 1, 6, 5), (4, 3), (3, 2), (2, 1), True, False, None),   # windows past the padding
    ((1, 2, 5, 5), (2, 3), (2, 1), (0, 1), False, True, -3),     # divisor_override
    ((1, 1, 3, 4, 5), (2, 2, 3), (1, 2, 2), (1, 1, 1), True, True, None),
]


@pytest.mark.parametrize("case", AVG_FD_CASES, ids=[str(c[0]) for c in AVG_FD_CASES])
def test_reference_avg_gradient_is_finite_differences(case):
    shape, kernel, stride, padding, ceil_mode, include, divisor = case
    x = np.random.default_rng(1).standard_normal(shape)
    f = lambda z: avg64(z, kernel, stride, padding, ceil_mode, include, divisor)  # noqa: E731
    dy = np.random.default_rng(2).standard_normal(f(x).shape)
    numeric = numeric_gradient(f, x, dy, 1e-6)
    got = reference.avg_pool_backward(dy.astype(F32), shape[2:], kernel, stride, padding,
                                      ceil_mode, include, divisor)
    np.testing.assert_allclose(got, numeric, rtol=1e-5, atol=1e-6)


def test_reference_max_gradient_is_finite_differences():
    # Distinct values (a permutation) so that a small step never changes a window's maximum.
    for shape, kernel, stride, padding, dilation, ceil_mode in [
            ((1, 2, 9), (3,), (2,), (1,), (2,), True),
            ((2, 1, 6, 7), (3, 3), (1, 2), (1, 0), (1, 2), False),
            ((1, 1, 3, 4, 5), (2, 2, 2), (1, 2, 2), (1, 1, 0), (1, 1, 2), True)]:
        size = int(np.prod(shape))
        x = np.random.default_rng(3).permutation(size).reshape(shape).astype(np.float64)
        f = lambda z: max64(z, kernel, stride, padding, dilation, ceil_mode)  # noqa: E731
        dy = np.random.default_rng(4).standard_normal(f(x).shape)
        numeric = numeric_gradient(f, x, dy, 1e-3)
        _, indices = reference.max_pool(x.astype(F32), kernel, stride, padding, dilation,
                                        ceil_mode, True)
        got = reference.max_pool_backward(dy.astype(F32), indices, shape[2:])
        np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------ every implementation

def _avg_implementations():
    params = [pytest.param(name, id=name.split("__")[-1]) for name in runnable("pool")]
    return params + [skipped(name) for name in unrunnable("pool")] + ["numba"]


def _module(label):
    """(module, keyword arguments) running implementation `label` of the backend contract."""
    if label == "numba":
        return backend_module("numba"), {}
    if label == "native":
        return importlib.import_module("fastdl._C"), {}
    return importlib.import_module("fastdl._C"), {"variant": label}


@st.composite
def avg_cases(draw):
    """(dy, input spatial shape, geometry tuple in the backend contract's order)."""
    dims = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    sizes = []
    for axis, (k, p) in enumerate(zip(kernel, padding)):
        smallest = max(1, k - 2 * p) if dims < 3 else k  # torch's avg_pool3d: size >= kernel
        widths = st.integers(smallest, smallest + (4 if dims == 3 else 9))
        if axis == dims - 1:  # the vectorised axis: also sizes around the vector widths
            widths = st.one_of(widths, st.sampled_from([w for w in VECTOR_WIDTHS
                                                        if w >= smallest]))
        sizes.append(draw(widths))
    ceil_mode = draw(st.booleans())
    geometry = (kernel, stride, padding, ceil_mode, draw(st.booleans()),
                draw(st.sampled_from([None, None, 3, -2])))
    shape = (draw(st.integers(0, 2)), draw(st.integers(1, 3)), *sizes)
    dy = rand(out_shape(shape, kernel, stride, padding, (1,) * dims, ceil_mode),
              draw(st.integers(0, 2**16)))
    return dy, tuple(sizes), geometry


@pytest.mark.parametrize("label", _avg_implementations())
@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_avg_backward_matches_reference(label, data):
    module, kw = _module(label)
    dy, spatial, geometry = data.draw(avg_cases())
    want = reference.avg_pool_backward(dy, spatial, *geometry)
    got = module.avg_pool_backward(dy, spatial, *geometry, **kw)
    assert got.dtype == F32 and got.shape == want.shape and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{label} {geometry}")


# Sweeps of the vectorised paths' edges: output widths around each vector width (the shares
# and the stride-1 column spread), input widths around it (the row adds), global windows.
AVG_SWEEP = ([((1, 2, 3, w), (3, 3), (1, 1), (1, 1)) for w in range(1, 36)] +
             [((1, 2, 4, w), (2, 2), (2, 2), (0, 0)) for w in range(2, 36)] +
             [((1, 2, 2, w), (2, w), (1, 1), (1, 0)) for w in (1, 8, 17, 33)] +
             [((2, 3, w), (w,), (1,), (0,)) for w in (1, 7, 8, 9, 16, 17, 33, 100)] +
             [((1, 2, 3, 4, 17), (3, 4, 17), (1, 1, 1), (0, 0, 0))])


@pytest.mark.parametrize("label", _avg_implementations())
def test_avg_backward_sweeps_the_vector_edges(label):
    module, kw = _module(label)
    for seed, (shape, kernel, stride, padding) in enumerate(AVG_SWEEP):
        for include, divisor in ((True, None), (False, None), (True, 5)):
            geometry = (kernel, stride, padding, True, include, divisor)
            dy = rand(out_shape(shape, kernel, stride, padding, (1,) * len(kernel), True), seed)
            want = reference.avg_pool_backward(dy, shape[2:], *geometry)
            got = module.avg_pool_backward(dy, shape[2:], *geometry, **kw)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6,
                                       err_msg=f"{label} {shape} {geometry}")


@st.composite
def max_cases(draw):
    """(x, geometry as max_pool takes it): ties, overlapping and dilated windows."""
    dims = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    # Inputs large enough that no dilated window lies wholly in the padding (its index
    # would name no input: PyTorch's own backward writes out of bounds there).
    sizes = tuple(draw(st.integers(d * (k - 1) + 1, d * (k - 1) + 8))
                  for k, d in zip(kernel, dilation))
    x = rand((draw(st.integers(0, 2)), draw(st.integers(1, 3))) + sizes,
             draw(st.integers(0, 2**16)))
    if draw(st.booleans()):
        x = np.round(x)  # many ties: the first maximum takes the gradient
    return x, (kernel, stride, padding, dilation, draw(st.booleans()))


@pytest.mark.parametrize("label", ["native", "numba"])
@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_max_backward_matches_reference(label, data):
    if label == "native":
        pytest.importorskip("fastdl._C")
    module, kw = _module(label)
    x, geometry = data.draw(max_cases())
    _, indices = reference.max_pool(x, *geometry, True)
    dy = rand(indices.shape, 7)
    want = reference.max_pool_backward(dy, indices, x.shape[2:])
    got = module.max_pool_backward(dy, indices, x.shape[2:])
    assert got.dtype == F32 and got.shape == x.shape and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=str(geometry))


@pytest.fixture
def restore_threads():
    _C = pytest.importorskip("fastdl._C")
    saved = _C.num_threads()
    yield
    _C.set_num_threads(saved)


@pytest.mark.parametrize("label", [pytest.param(n, id=n.split("__")[-1])
                                   for n in runnable("pool")] +
                         [skipped(n) for n in unrunnable("pool")])
def test_threaded_gradients_match_the_reference(label, restore_threads):
    """Problems large enough for the thread pool: every thread count gives the reference."""
    _C, kw = _module(label)
    x = rand((4, 24, 33, 35), 11)
    geometry = ((3, 3), (2, 2), (1, 1), True, False, None)
    dy = rand(out_shape(x.shape, *geometry[:3], (1, 1), True), 12)
    want_avg = reference.avg_pool_backward(dy, x.shape[2:], *geometry)
    _, indices = reference.max_pool(x, (3, 3), (2, 2), (1, 1), (1, 1), True, True)
    want_max = reference.max_pool_backward(dy, indices, x.shape[2:])
    for threads in (1, 2, 4):
        _C.set_num_threads(threads)
        np.testing.assert_allclose(_C.avg_pool_backward(dy, x.shape[2:], *geometry, **kw),
                                   want_avg, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(_C.max_pool_backward(dy, indices, x.shape[2:]), want_max,
                                   rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------ the public ops vs PyTorch

CASES = [
    # (shape, kernel, stride, padding, dilation, ceil_mode): what each one is about
    ((2, 3, 12, 12), (2, 2), (2, 2), (0, 0), (1, 1), False),     # kernel = stride
    ((2, 3, 11, 13), (3, 3), (1, 1), (1, 1), (1, 1), False),     # overlapping windows
    ((1, 2, 9, 17), (3, 3), (2, 2), (1, 1), (1, 1), True),       # partial last windows
    ((1, 2, 6, 6), (3, 3), (2, 2), (1, 1), (1, 1), True),        # ceil window starts in pad
    ((1, 1, 2, 2), (4, 4), (3, 3), (0, 0), (1, 1), True),        # kernel larger than input
    ((1, 3, 5, 33), (1, 5), (1, 3), (0, 2), (1, 1), True),       # odd stride, wide kernel
    ((1, 2, 11, 40), (3, 3), (1, 1), (1, 1), (3, 2), False),     # dilation (max only)
    ((2, 2, 7, 7), (7, 7), (1, 1), (0, 0), (1, 1), False),       # a global window
    ((3, 2, 100), (4,), (3,), (2,), (1,), True),                 # 1-D
    ((2, 3, 17), (3,), (1,), (1,), (2,), False),                 # 1-D dilated
    ((1, 2, 4, 5, 17), (2, 3, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1), True),  # 3-D
    ((2, 1, 5, 6, 7), (3, 3, 3), (1, 2, 1), (1, 1, 1), (1, 1, 2), False),  # 3-D overlapping
    ((0, 2, 8, 9), (3, 3), (2, 2), (1, 1), (1, 1), False),       # an empty batch
]
CASE_IDS = [f"{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}-d{c[4]}{'-ceil' if c[5] else ''}" for c in CASES]


def torch_avg(torch, t, kernel, stride, padding, ceil_mode, include, divisor):
    """torch's average pooling; 1-D (no divisor_override in torch) as 2-D over [N, C, 1, L]."""
    F = torch.nn.functional
    if len(kernel) == 1:
        return F.avg_pool2d(t[:, :, None], (1,) + kernel, (1,) + stride, (0,) + padding,
                            ceil_mode, include, divisor)[:, :, 0]
    fn = F.avg_pool2d if len(kernel) == 2 else F.avg_pool3d
    return fn(t, kernel, stride, padding, ceil_mode, include, divisor)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_public_max_backward_matches_torch_autograd(any_backend, torch, case, ties):
    shape, kernel, stride, padding, dilation, ceil_mode = case
    dims = len(kernel)
    x = rand(shape, 1, 2.0)
    if ties:
        x = np.round(x)
    t = torch.tensor(x, requires_grad=True)
    ty = getattr(torch.nn.functional, f"max_pool{dims}d")(t, kernel, stride, padding, dilation,
                                                          ceil_mode)
    dy = rand(ty.shape, 2)
    ty.backward(torch.tensor(dy))
    y, indices = getattr(ops, f"max_pool{dims}d")(x, kernel, stride, padding, dilation,
                                                  ceil_mode, return_indices=True)
    got = getattr(ops, f"max_pool{dims}d_backward")(dy, indices, x.shape)
    assert got.dtype == F32 and got.shape == x.shape
    np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-5, atol=1e-6)
    if shape[0]:  # unbatched: [C, *spatial]
        got0 = getattr(ops, f"max_pool{dims}d_backward")(dy[0], indices[0], x.shape[1:])
        np.testing.assert_allclose(got0, got[0], rtol=0, atol=0)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_public_max_input_backward_is_the_indices_gradient(any_backend, case, ties):
    """max_pool{1,2,3}d_input_backward (the winners found again from x) gives exactly
    what max_pool{1,2,3}d_backward gives with the forward's indices, batched or not."""
    shape, kernel, stride, padding, dilation, ceil_mode = case
    dims = len(kernel)
    x = rand(shape, 3, 2.0)
    if ties:
        x = np.round(x)
    _, indices = getattr(ops, f"max_pool{dims}d")(x, kernel, stride, padding, dilation,
                                                  ceil_mode, return_indices=True)
    dy = rand(indices.shape, 4)
    want = getattr(ops, f"max_pool{dims}d_backward")(dy, indices, x.shape)
    backward = getattr(ops, f"max_pool{dims}d_input_backward")
    got = backward(dy, x, kernel, stride, padding, dilation, ceil_mode)
    assert got.dtype == F32 and got.shape == x.shape
    np.testing.assert_array_equal(got, want)
    if shape[0]:
        np.testing.assert_array_equal(
            backward(dy[0], x[0], kernel, stride, padding, dilation, ceil_mode), want[0])


@pytest.mark.parametrize("label", _avg_implementations())
def test_max_input_backward_2x2_sweeps_widths_nan_and_ties(label):
    """The fused 2x2/2 path of every variant (and the Numba twin) on even sizes around
    the vector widths, with NaN, -inf and ties: the reference's indices gradient, bit for
    bit."""
    module, kw = _module(label)
    for width in range(2, 72, 2):
        x = np.round(rand((2, 3, 6, width), width, 2.0))
        x.flat[::7] = np.nan
        x.flat[3::11] = -np.inf
        _, indices = reference.max_pool(x, (2, 2), (2, 2), (0, 0), (1, 1), False, True)
        dy = rand(indices.shape, width + 1)
        want = reference.max_pool_backward(dy, indices, x.shape[2:])
        got = module.max_pool_input_backward(x, dy, (2, 2), (2, 2), (0, 0), (1, 1), False,
                                             **kw)
        np.testing.assert_array_equal(got, want, err_msg=f"{label} width {width}")


def _codes_input(width, pattern):
    """x [2, 3, 6, width] for the codes sweeps: ties, then NaN and -inf (pattern 1) or ReLU
    outputs with whole windows of 0 (pattern 2)."""
    x = np.round(rand((2, 3, 6, width), width + pattern, 2.0))
    if pattern == 1:
        x.flat[::7] = np.nan
        x.flat[3::11] = -np.inf
    if pattern == 2:
        x = np.maximum(x - 1, 0).astype(F32)
    return x


@pytest.mark.parametrize("label", _avg_implementations())
def test_max_pool_codes_sweep_widths_nan_ties_and_the_relu_gate(label):
    """max_pool_2x2_codes of every variant (and the Numba twin): the reference's maxima and
    the taps of its indices (4 where gated and the maximum is not > 0), and the codes'
    gradient the scatter of the (gated) dy to the indices, bit for bit."""
    module, kw = _module(label)
    for width in range(2, 72, 2):
        for pattern in range(3):
            x = _codes_input(width, pattern)
            want_y, indices = reference.max_pool(x, (2, 2), (2, 2), (0, 0), (1, 1), False, True)
            taps = (2 * ((indices // width) % 2) + indices % 2).astype(F32)
            dy = rand(indices.shape, width + 1)
            for gate in (False, True):
                y, codes = module.max_pool_2x2_codes(x, gate, **kw)
                off = gate & ~(want_y > 0)
                where = f"{label} width {width} pattern {pattern} gate {gate}"
                np.testing.assert_array_equal(y, want_y, err_msg=where)
                np.testing.assert_array_equal(codes, np.where(off, F32(4), taps), err_msg=where)
                want = reference.max_pool_backward(np.where(off, F32(0), dy).astype(F32),
                                                   indices, x.shape[2:])
                got = module.max_pool_2x2_codes_backward(dy, codes, **kw)
                np.testing.assert_array_equal(got, want, err_msg=where)


@pytest.mark.parametrize("label", _avg_implementations() + ["reference"])
def test_max_pool_codes_backward_thresholds(label):
    """Codes between and beyond the taps' (the contract: tap k for the first k with code <
    k + 0.5, none from 3.5 and for NaN) give the same dx on every implementation."""
    module, kw = (reference, {}) if label == "reference" else _module(label)
    values = np.array([-3, 0, 0.49, 0.5, 1.2, 1.5, 2.49, 2.5, 3.49, 3.5, 4, 9, np.nan], F32)
    codes = np.resize(values, (1, 2, 1, 20)).astype(F32)
    dy = (np.arange(40, dtype=F32) + 1).reshape(1, 2, 1, 20)
    got = module.max_pool_2x2_codes_backward(dy, codes, **kw)
    for c in range(2):
        for t in range(20):
            code = codes[0, c, 0, t]
            tap = next((k for k in range(4) if code < k + 0.5), None)
            window = got[0, c, :, 2 * t:2 * t + 2].reshape(-1)
            want = np.zeros(4, F32)
            if tap is not None:
                want[tap] = dy[0, c, 0, t]
            np.testing.assert_array_equal(window, want, err_msg=f"{label} code {code}")


def test_public_max_pool_codes_matches_max_pool2d(any_backend):
    """ops.max_pool2d_codes: max_pool2d's maxima, batched or not, and its backward the
    indices' gradient; bad arguments named."""
    x = rand((3, 4, 8, 10), 5, 2.0)
    want_y, indices = ops.max_pool2d(x, 2, return_indices=True)
    y, codes = ops.max_pool2d_codes(x)
    np.testing.assert_array_equal(y, want_y)
    dy = rand(y.shape, 6)
    np.testing.assert_array_equal(ops.max_pool2d_codes_backward(dy, codes),
                                  ops.max_pool2d_backward(dy, indices, x.shape))
    y0, codes0 = ops.max_pool2d_codes(x[0], relu_gate=True)
    np.testing.assert_array_equal(y0, y[0])
    np.testing.assert_array_equal(codes0, np.where(y[0] > 0, codes[0], F32(4)))
    np.testing.assert_array_equal(ops.max_pool2d_codes_backward(dy[0], codes0),
                                  ops.max_pool2d_codes_backward(dy, np.where(
                                      y > 0, codes, F32(4)).astype(F32))[0])
    with pytest.raises(ValueError, match="x: expected even H and W"):
        ops.max_pool2d_codes(np.zeros((1, 2, 4, 5), F32))
    with pytest.raises(ValueError, match="x: expected"):
        ops.max_pool2d_codes(np.zeros((4, 4), F32))
    with pytest.raises(TypeError, match="relu_gate"):
        ops.max_pool2d_codes(x, relu_gate=1)
    with pytest.raises(ValueError, match="codes: expected grad_output's shape"):
        ops.max_pool2d_codes_backward(dy, codes[:, :2])


@pytest.mark.parametrize("call,match", [
    (lambda: ops.max_pool2d_input_backward(np.zeros((1, 2, 4, 4)), np.zeros((1, 2, 6, 6)), 2),
     r"grad_output: expected shape \(1, 2, 3, 3\)"),
    (lambda: ops.max_pool2d_input_backward(np.zeros((2, 3, 3)), np.zeros((1, 2, 6, 6)), 2),
     "grad_output: expected shape"),
    (lambda: ops.max_pool2d_input_backward(np.zeros((1, 2, 3, 3)), np.zeros((2, 6)), 2),
     "x: expected"),
    (lambda: ops.max_pool1d_input_backward(np.zeros((1, 2, 3)), np.zeros((1, 2, 6)), 0),
     "kernel_size"),
])
def test_max_input_backward_refuses_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


AVG_OPTIONS = [(True, None), (False, None), (True, 4), (False, -3)]


@pytest.mark.parametrize("include,divisor", AVG_OPTIONS,
                         ids=["include_pad", "exclude_pad", "divisor4", "divisor-3"])
@pytest.mark.parametrize("case", [c for c in CASES if set(c[4]) == {1}],
                         ids=[i for i, c in zip(CASE_IDS, CASES) if set(c[4]) == {1}])
def test_public_avg_backward_matches_torch_autograd(any_backend, torch, case, include, divisor):
    shape, kernel, stride, padding, _, ceil_mode = case
    dims = len(kernel)
    if dims == 3 and any(n < k for n, k in zip(shape[2:], kernel)):
        pytest.skip("avg_pool3d refuses inputs smaller than the kernel")
    x = rand(shape, 3)
    t = torch.tensor(x, requires_grad=True)
    ty = torch_avg(torch, t, kernel, stride, padding, ceil_mode, include, divisor)
    dy = rand(ty.shape, 4)
    ty.backward(torch.tensor(dy))
    backward = getattr(ops, f"avg_pool{dims}d_backward")
    got = backward(dy, x.shape, kernel, stride, padding, ceil_mode, include, divisor)
    assert got.dtype == F32 and got.shape == x.shape
    np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-5, atol=1e-6)
    if shape[0]:
        got0 = backward(dy[0], x.shape[1:], kernel, stride, padding, ceil_mode, include,
                        divisor)
        np.testing.assert_allclose(got0, got[0], rtol=0, atol=0)


def test_public_backward_defaults_are_the_forwards(torch):
    x = rand((2, 3, 8, 10), 5)
    t = torch.tensor(x, requires_grad=True)
    torch.nn.functional.avg_pool2d(t, 2).backward(torch.ones(2, 3, 4, 5))
    np.testing.assert_allclose(ops.avg_pool2d_backward(np.ones((2, 3, 4, 5)), x.shape, 2),
                               t.grad.numpy())


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_global_pooling_backward_matches_torch_autograd(any_backend, torch, dims):
    F = torch.nn.functional
    shape = (2, 3) + (5, 6, 7)[3 - dims:]
    x = rand(shape, dims)
    axes = tuple(range(2, 2 + dims))
    dy = rand(shape[:2] + (1,) * dims, 10 + dims)
    t = torch.tensor(x, requires_grad=True)
    t.mean(dim=axes, keepdim=True).backward(torch.tensor(dy))
    got = ops.global_avg_pool_backward(dy, shape)
    np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-6, atol=1e-7)
    t = torch.tensor(x, requires_grad=True)
    ty, ti = getattr(F, f"adaptive_max_pool{dims}d")(t, 1, return_indices=True)
    ty.backward(torch.tensor(dy))
    y, indices = ops.global_max_pool(x, return_indices=True)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(indices, ti.numpy())
    got = ops.global_max_pool_backward(dy, indices, shape)
    np.testing.assert_array_equal(got, t.grad.numpy())


def test_gradients_take_any_real_dtype_and_strides(torch):
    x = rand((2, 3, 10, 12), 6)
    y, indices = ops.max_pool2d(x, 2, return_indices=True)
    dy = rand(y.shape, 7)
    want = ops.max_pool2d_backward(dy, indices, x.shape)
    strided = np.ascontiguousarray(np.swapaxes(dy, 2, 3)).swapaxes(2, 3)  # not C-contiguous
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(ops.max_pool2d_backward(strided, indices.astype(np.int32),
                                                          list(x.shape)), want)
    ones = np.ones(y.shape, np.int64)
    np.testing.assert_allclose(ops.avg_pool2d_backward(ones, np.array(x.shape), 2),
                               np.full(x.shape, 0.25, F32))


# ------------------------------------------------------------ bad arguments

G = np.ones((2, 3, 4, 5), F32)        # the gradient of a 2x2 pool of an (8, 10) map
I = np.zeros((2, 3, 4, 5), np.int64)  # its indices
BAD = [
    (lambda: ops.max_pool2d_backward(G, I, (2, 3, 8)), ValueError, "input_shape: expected"),
    (lambda: ops.max_pool2d_backward(G, I, (2, 4, 8, 10)), ValueError, "input_shape: expected"),
    (lambda: ops.max_pool2d_backward(G, I, (2, 3, 8, 0)), ValueError, "input_shape"),
    (lambda: ops.max_pool2d_backward(G, I, (2, 3, 8, -1)), ValueError, "input_shape"),
    (lambda: ops.max_pool2d_backward(G, I, 5), TypeError, "input_shape"),
    (lambda: ops.max_pool2d_backward(G, I, (2, 3, 8.5, 10)), TypeError, "input_shape"),
    (lambda: ops.max_pool2d_backward(G, I.astype(F32), (2, 3, 8, 10)), TypeError, "indices"),
    (lambda: ops.max_pool2d_backward(G, None, (2, 3, 8, 10)), TypeError, "indices"),
    (lambda: ops.max_pool2d_backward(G, I[:, :, :3], (2, 3, 8, 10)), ValueError,
     r"indices: expected grad_output's shape \(2, 3, 4, 5\)"),
    (lambda: ops.max_pool2d_backward(G, I + 80, (2, 3, 8, 10)), ValueError,
     r"indices: expected flat positions in \[0, 80\) .* got 80"),
    (lambda: ops.max_pool2d_backward(G, I - 1, (2, 3, 8, 10)), ValueError, "got -1"),
    (lambda: ops.max_pool2d_backward(G[0, 0], I[0, 0], (8, 10)), ValueError, "grad_output"),
    # (a list of the batched shape against an unbatched x: AttributeError, found by the
    # long fuzz run)
    (lambda: ops.max_pool2d_input_backward(G.tolist(), np.ones((3, 8, 10), F32), 2),
     ValueError, r"grad_output: expected shape \(3, 4, 5\) .* got \(2, 3, 4, 5\)"),
    (lambda: ops.max_pool3d_backward(G[0], I[0], (3, 8, 10)), ValueError, "grad_output"),
    (lambda: ops.max_pool1d_backward(np.ones(3, complex), np.zeros(3, int), (3, 3)),
     TypeError, "grad_output"),
    (lambda: ops.avg_pool2d_backward(G, (2, 3, 8, 10), 3), ValueError,
     r"grad_output: expected shape \(2, 3, 2, 3\)"),
    (lambda: ops.avg_pool2d_backward(G[0], (3, 8, 10), 3), ValueError,
     r"grad_output: expected shape \(3, 2, 3\)"),
    (lambda: ops.avg_pool2d_backward(G, (2, 3, 8, 10), 0), ValueError, "kernel_size"),
    (lambda: ops.avg_pool2d_backward(G, (2, 3, 8, 10), 2, padding=2), ValueError, "padding"),
    (lambda: ops.avg_pool2d_backward(G, (2, 3, 1, 1), 2), ValueError, "input_shape: spatial"),
    (lambda: ops.avg_pool2d_backward(G, (2, 3, 8, 10), 2, divisor_override=0), ValueError,
     "divisor_override"),
    (lambda: ops.avg_pool2d_backward(G, (2, 3, 8, 10), 2, ceil_mode=1), TypeError, "ceil_mode"),
    (lambda: ops.avg_pool2d_backward(G, (2, 3, 8, 10), 2, count_include_pad="no"), TypeError,
     "count_include_pad"),
    (lambda: ops.avg_pool3d_backward(np.ones((1, 1, 1, 1, 1)), (1, 1, 1, 1, 1), 2, padding=1),
     ValueError, "smaller than kernel_size"),
    (lambda: ops.global_avg_pool_backward(G, (2, 3, 8, 10)), ValueError,
     r"grad_output: expected shape \(2, 3, 1, 1\)"),
    (lambda: ops.global_avg_pool_backward(np.ones((2, 3)), (2, 3, 8, 10)), ValueError,
     "grad_output"),
    (lambda: ops.global_max_pool_backward(np.ones((2, 3, 1, 1)), np.full((2, 3, 1, 1), 80),
                                          (2, 3, 8, 10)), ValueError,
     r"\[0, 80\) of an input plane \(8, 10\)"),
    (lambda: ops.global_max_pool_backward(np.ones((2, 3, 1, 1)), np.zeros((2, 3)),
                                          (2, 3, 8, 10)), TypeError, "indices"),
    (lambda: ops.global_max_pool(np.ones((1, 1, 2)), return_indices=1), TypeError,
     "return_indices"),
]


@pytest.mark.parametrize("call,error,match", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_arguments_raise_naming_the_argument(any_backend, call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("label", ["native", "numba", "numpy"])
def test_backends_refuse_indices_outside_the_plane(label):
    """The backend functions themselves (not only fastdl.ops) refuse an index outside its
    plane, naming it, instead of writing out of bounds."""
    module = (reference if label == "numpy" else _module(label)[0])
    dy = np.ones((2, 2, 3), F32)
    for bad in (6, -1, 2**40):
        indices = np.zeros((2, 2, 3), np.int64)
        indices[1, 0, 2] = bad
        with pytest.raises(ValueError, match=rf"indices: .*\[0, 6\) .*\(6,\), got {bad}"):
            module.max_pool_backward(dy, indices, (6,))


def test_native_binding_guards_direct_calls():
    _C = pytest.importorskip("fastdl._C")
    dy = np.ones((1, 1, 3, 3), F32)
    with pytest.raises(ValueError, match="dy: expected the pooling's output shape"):
        _C.avg_pool_backward(dy, (8, 8), (2, 2), (2, 2), (0, 0), False, True, None)
    with pytest.raises(ValueError, match="indices: expected the shape of dy"):
        _C.max_pool_backward(dy, np.zeros((1, 1, 3), np.int64), (6, 6))
    with pytest.raises(ValueError, match="dy: expected"):
        _C.max_pool_backward(dy, np.zeros((1, 1, 3, 3), np.int64), (36,))
