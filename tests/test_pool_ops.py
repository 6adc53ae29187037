"""Pooling on every floor: each native variant (fastdl._C.max_pool/avg_pool(...,
variant=name)), the Numba twin and the NumPy reference against PyTorch and against the
reference, on generated cases (1-D/2-D/3-D, kernel/stride/padding/dilation, ceil_mode,
count_include_pad, divisor_override, widths around the vector widths, empty batches,
NaN/-inf), with PyTorch's indices; then the public fastdl.ops functions (unbatched input,
non-contiguous input, other dtypes, global pooling) and their argument checks.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from fastdl import _reference as reference
from fastdl import ops
from native_variants import runnable, skipped, unrunnable

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

F32 = np.float32
VECTOR_WIDTHS = [7, 8, 9, 15, 16, 17, 31, 32, 33]  # NEON 4, AVX2 8, AVX-512 16 lanes, +-1


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(F32)


# ---------------------------------------------------------------------------- backends

def _native_backends():
    try:
        _C = importlib.import_module("fastdl._C")
    except ImportError:
        return {}
    out = {}
    for name in runnable("pool"):
        out[name] = (lambda *a, _n=name: _C.max_pool(*a, variant=_n),
                     lambda *a, _n=name: _C.avg_pool(*a, variant=_n))
    return out


def _numba_backend():
    try:
        module = importlib.import_module("fastdl._numba")
    except ImportError:
        return {}
    return {"numba": (module.max_pool, module.avg_pool)}


# name -> (max_pool, avg_pool) with the backend contract of fastdl/_reference/pooling.py
BACKENDS = {**_native_backends(), **_numba_backend(),
            "numpy": (reference.max_pool, reference.avg_pool)}
# The parameters: every backend, and a counted skip per variant this CPU cannot run.
BACKEND_PARAMS = sorted(BACKENDS) + [skipped(name) for name in unrunnable("pool")]


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


# ---------------------------------------------------------------------------- cases

@st.composite
def pool_cases(draw, kind):
    """A valid pooling problem: (x [N, C, *spatial], geometry dict for the backends)."""
    dims = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = (1,) * dims if kind == "avg" else tuple(draw(st.integers(1, 3))
                                                       for _ in range(dims))
    sizes = []
    for axis, (k, p, d) in enumerate(zip(kernel, padding, dilation)):
        smallest = max(1, d * (k - 1) + 1 - 2 * p)  # one window fits
        if kind == "avg" and dims == 3:
            smallest = max(smallest, k)  # torch's avg_pool3d refuses inputs below the kernel
        widths = st.integers(smallest, smallest + (4 if dims == 3 else 9))
        if axis == dims - 1:  # the vectorised axis: also sizes around the vector widths
            widths = st.one_of(widths, st.sampled_from([w for w in VECTOR_WIDTHS
                                                        if w >= smallest]))
        sizes.append(draw(widths))
    shape = (draw(st.integers(0, 2)), draw(st.integers(1, 3)), *sizes)
    x = rand(*shape, seed=draw(st.integers(0, 2**16)))
    special = draw(st.sampled_from(["none", "nan", "-inf", "ties"]))
    flat = x.reshape(-1)
    if special == "nan":
        flat[::7] = np.nan
    elif special == "-inf":
        flat[::3] = -np.inf
    elif special == "ties":
        x = np.round(x)  # many equal values: the first maximum must win
    geometry = dict(kernel_size=kernel, stride=stride, padding=padding,
                    ceil_mode=draw(st.booleans()))
    if kind == "max":
        geometry.update(dilation=dilation, return_indices=draw(st.booleans()))
    else:
        geometry.update(count_include_pad=draw(st.booleans()),
                        divisor_override=draw(st.sampled_from([None, None, 3, -2])))
    return np.ascontiguousarray(x, dtype=F32), geometry


def run_backend(fn, x, g):
    """The backend function on case (x, g), positional as in the backend contract."""
    if "dilation" in g:
        return fn(x, g["kernel_size"], g["stride"], g["padding"], g["dilation"], g["ceil_mode"],
                  g["return_indices"])
    return fn(x, g["kernel_size"], g["stride"], g["padding"], g["ceil_mode"],
              g["count_include_pad"], g["divisor_override"])


def run_torch(torch, x, g):
    """torch.nn.functional's pooling on (x, g); avg_pool1d (no divisor_override in torch)
    runs as avg_pool2d over [N, C, 1, L]."""
    F = torch.nn.functional
    dims = x.ndim - 2
    t = torch.from_numpy(x)
    if "dilation" in g:
        fn = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[dims - 1]
        out = fn(t, g["kernel_size"], g["stride"], g["padding"], g["dilation"], g["ceil_mode"],
                 g["return_indices"])
        return tuple(o.numpy() for o in out) if g["return_indices"] else out.numpy()
    args = (g["ceil_mode"], g["count_include_pad"], g["divisor_override"])
    if dims == 1:
        y = F.avg_pool2d(t[:, :, None], (1,) + g["kernel_size"], (1,) + g["stride"],
                         (0,) + g["padding"], *args)
        return y[:, :, 0].numpy()
    fn = F.avg_pool2d if dims == 2 else F.avg_pool3d
    return fn(t, g["kernel_size"], g["stride"], g["padding"], *args).numpy()


def assert_same(got, want, exact, what):
    """Equal shapes and dtypes (float32, int64 indices) and values: exact for max and
    indices, within float32 rounding of the window sum for avg; NaN where NaN."""
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want), what
    for g, w, dtype in zip(got, want, (F32, np.int64)):
        assert g.dtype == dtype and g.shape == w.shape and g.flags.c_contiguous, \
            f"{what}: {g.dtype} {g.shape} vs {w.shape}"
        if exact:
            np.testing.assert_array_equal(g, w, err_msg=what)
        else:
            np.testing.assert_allclose(g, w, rtol=2e-6, atol=2e-6, err_msg=what)


# ---------------------------------------------------------------------------- variants

@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("kind", ["max", "avg"])
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_backend_matches_torch_and_reference(backend, kind, data, torch):
    x, g = data.draw(pool_cases(kind))
    fn = BACKENDS[backend][kind == "avg"]
    got = run_backend(fn, x, g)
    ref = run_backend(reference.max_pool if kind == "max" else reference.avg_pool, x, g)
    assert_same(got, run_torch(torch, x, g), kind == "max", f"{backend} vs torch {g}")
    assert_same(got, ref, kind == "max", f"{backend} vs reference {g}")


EDGE_CASES = [
    # (shape, kernel, stride, padding, dilation, ceil_mode): what each one is about
    ((1, 64, 112, 112), (3, 3), (2, 2), (1, 1), (1, 1), False),  # the bench case
    ((2, 3, 12, 12), (2, 2), (2, 2), (0, 0), (1, 1), False),     # kernel = stride
    ((1, 2, 9, 17), (3, 3), (2, 2), (1, 1), (1, 1), True),       # partial last windows
    ((1, 2, 6, 6), (3, 3), (2, 2), (1, 1), (1, 1), True),        # ceil window starts in pad
    ((1, 1, 2, 2), (4, 4), (3, 3), (0, 0), (1, 1), True),        # kernel larger than input
    ((1, 2, 11, 40), (3, 3), (1, 1), (1, 1), (3, 2), False),     # dilation
    ((2, 2, 7, 7), (7, 7), (1, 1), (0, 0), (1, 1), False),       # a global window
    ((1, 3, 5, 33), (1, 5), (1, 3), (0, 2), (1, 1), True),       # odd stride, wide kernel
    ((1, 1, 4, 5, 17), (2, 3, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1), True),  # 3-D
    ((3, 2, 100), (4,), (3,), (2,), (1,), True),                 # 1-D
    ((1, 2, 2, 3, 9), (2, 1, 1), (1, 1, 1), (1, 0, 0), (3, 1, 1), False),  # padding only
    ((2, 2, 90), (40,), (30,), (20,), (1,), True),               # wide windows
]


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("case", EDGE_CASES, ids=[str(c[0]) for c in EDGE_CASES])
def test_edge_cases_match_torch(backend, case, torch):
    shape, kernel, stride, padding, dilation, ceil_mode = case
    x = rand(*shape, seed=len(shape))
    max_pool, avg_pool = BACKENDS[backend]
    g = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
             ceil_mode=ceil_mode, return_indices=True)
    assert_same(run_backend(max_pool, x, g), run_torch(torch, x, g), True, f"max {case}")
    for include in (True, False):
        g = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                 count_include_pad=include, divisor_override=None)
        if dilation == (1,) * len(kernel):
            assert_same(run_backend(avg_pool, x, g), run_torch(torch, x, g), False,
                        f"avg {case} include_pad={include}")


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_nan_wins_with_the_last_nan_index_and_minus_inf_windows(backend, torch):
    x = np.array([[[1, np.nan, 2, np.nan, 3, -np.inf, -np.inf, -np.inf, 5, 0]]], F32)
    max_pool, avg_pool = BACKENDS[backend]
    for k, s, p in [(5, 5, 0), (3, 1, 1), (2, 2, 1), (10, 1, 5)]:
        g = dict(kernel_size=(k,), stride=(s,), padding=(p,), dilation=(1,), ceil_mode=True,
                 return_indices=True)
        assert_same(run_backend(max_pool, x, g), run_torch(torch, x, g), True, f"{k} {s} {p}")
    y, index = run_backend(max_pool, x, dict(g, kernel_size=(5,), stride=(5,), padding=(0,)))
    assert np.isnan(y[0, 0, 0]) and index[0, 0, 0] == 3 and y[0, 0, 1] == 5
    g = dict(kernel_size=(3,), stride=(3,), padding=(0,), ceil_mode=False,
             count_include_pad=True, divisor_override=None)
    y = run_backend(avg_pool, x, g)
    assert np.isnan(y[0, 0, 0]) and y[0, 0, 2] == -np.inf  # [-inf, -inf, 5]


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_empty_batch(backend):
    max_pool, avg_pool = BACKENDS[backend]
    x = np.zeros((0, 3, 8, 9), F32)
    y, index = max_pool(x, (3, 3), (2, 2), (1, 1), (1, 1), False, True)
    assert y.shape == index.shape == (0, 3, 4, 5) and index.dtype == np.int64
    assert avg_pool(x, (2, 2), (2, 2), (0, 0), True, True, None).shape == (0, 3, 4, 5)


# ---------------------------------------------------------------------------- fastdl.ops

def test_ops_match_torch_batched_and_unbatched(torch):
    F = torch.nn.functional
    for dims in (1, 2, 3):
        shape = (2, 3) + (9, 10, 11)[3 - dims:]
        x = rand(*shape, seed=dims)
        max_op = getattr(ops, f"max_pool{dims}d")
        avg_op = getattr(ops, f"avg_pool{dims}d")
        t = torch.from_numpy(x)
        y, index = max_op(x, 3, 2, 1, ceil_mode=True, return_indices=True)
        ty, ti = getattr(F, f"max_pool{dims}d")(t, 3, 2, 1, ceil_mode=True, return_indices=True)
        np.testing.assert_array_equal(y, ty.numpy())
        np.testing.assert_array_equal(index, ti.numpy())
        y0, i0 = max_op(x[0], 3, 2, 1, ceil_mode=True, return_indices=True)  # unbatched
        np.testing.assert_array_equal(y0, ty[0].numpy())
        np.testing.assert_array_equal(i0, ti[0].numpy())
        ta = getattr(F, f"avg_pool{dims}d")(t, 2, count_include_pad=False)
        np.testing.assert_allclose(avg_op(x, 2, count_include_pad=False), ta.numpy(),
                                   rtol=2e-6, atol=2e-6)
        np.testing.assert_allclose(avg_op(x[0], 2, count_include_pad=False), ta[0].numpy(),
                                   rtol=2e-6, atol=2e-6)


def test_ops_accept_any_strides_and_real_dtypes(torch):
    base = rand(2, 3, 12, 14, seed=5)
    strided = base[:, ::-1, ::2, 1::2]  # negative and non-unit strides
    assert not strided.flags.c_contiguous
    want = torch.nn.functional.max_pool2d(torch.from_numpy(strided.copy()), 2).numpy()
    np.testing.assert_array_equal(ops.max_pool2d(strided, 2), want)
    transposed = base.transpose(0, 1, 3, 2)
    np.testing.assert_array_equal(ops.max_pool2d(transposed, 3, 1),
                                  ops.max_pool2d(transposed.copy(), 3, 1))
    ints = np.arange(2 * 3 * 6 * 6).reshape(2, 3, 6, 6)
    y = ops.avg_pool2d(ints, 2)
    assert y.dtype == F32
    np.testing.assert_allclose(y, ints.reshape(2, 3, 3, 2, 3, 2).mean(axis=(3, 5)))
    assert ops.max_pool1d(base[0, 0].astype(np.float64), 2).dtype == F32
    assert ops.max_pool2d(np.zeros((0, 3, 4, 4)), 2).shape == (0, 3, 2, 2)


def test_sequence_arguments_as_torch_accepts_them():
    x = rand(1, 2, 9, 9)
    want = ops.max_pool2d(x, (3, 3), (2, 2), (1, 1), (1, 1))
    for args in [(3, 2, 1, 1), ([3], [2], [1], [1]), ((3,), (2, 2), [1, 1], 1),
                 (np.int64(3), np.array([2, 2]), 1, 1)]:
        np.testing.assert_array_equal(ops.max_pool2d(x, *args), want)
    np.testing.assert_array_equal(ops.max_pool2d(x, 3, stride=()), ops.max_pool2d(x, 3, 3))
    np.testing.assert_array_equal(ops.max_pool2d(x, 3, None), ops.max_pool2d(x, 3, 3))


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_global_pooling_matches_torch_adaptive_pooling(dims, torch):
    F = torch.nn.functional
    x = rand(2, 3, *(5, 6, 17)[3 - dims:], seed=dims)
    x[1, 2].reshape(-1)[3] = np.nan
    t = torch.from_numpy(x)
    y = ops.global_avg_pool(x)
    assert y.shape == (2, 3) + (1,) * dims and y.dtype == F32
    np.testing.assert_allclose(y, getattr(F, f"adaptive_avg_pool{dims}d")(t, 1).numpy(),
                               rtol=2e-6, atol=1e-7)
    np.testing.assert_array_equal(ops.global_max_pool(x),
                                  getattr(F, f"adaptive_max_pool{dims}d")(t, 1).numpy())
    assert np.isnan(ops.global_max_pool(x)[1, 2]).all()
    assert ops.global_avg_pool(np.zeros((0, 4, 3, 3))).shape == (0, 4, 1, 1)
    assert ops.global_max_pool(np.zeros((2, 0, 3))).shape == (2, 0, 1)


# ---------------------------------------------------------------------------- bad input

def raises(exc, name, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert str(info.value).startswith(f"{name}:"), f"does not name {name!r}: {info.value}"
    return str(info.value)


X = rand(2, 3, 8, 8)

VALUE_ERRORS = [
    # (argument named, function, x, args, kwargs)
    ("x", ops.max_pool2d, X[0, 0], (2,), {}),                       # 2-D input
    ("x", ops.max_pool2d, X[None], (2,), {}),                       # 5-D input
    ("x", ops.max_pool1d, X, (2,), {}),
    ("x", ops.avg_pool3d, X[0], (2,), {}),
    ("x", ops.max_pool2d, np.zeros((2, 0, 8, 8), F32), (2,), {}),    # no channels
    ("x", ops.max_pool2d, np.zeros((2, 3, 0, 8), F32), (2,), {}),    # empty plane
    ("x", ops.max_pool2d, np.zeros((0, 8, 8), F32), (2,), {}),       # unbatched, 0 channels
    ("x", ops.max_pool2d, X, (9,), {}),                             # kernel > input
    ("x", ops.max_pool2d, X, (3,), dict(dilation=4)),               # dilated span 9 > 8
    ("x", ops.avg_pool1d, rand(1, 2, 2), (4, 3), {}),               # no window without ceil
    ("x", ops.avg_pool3d, rand(1, 1, 3, 3, 2), ((1, 1, 3), 1, (0, 0, 1)), {}),  # torch's rule
    ("kernel_size", ops.max_pool2d, X, (0,), {}),
    ("kernel_size", ops.max_pool2d, X, ((2, 2, 2),), {}),
    ("kernel_size", ops.max_pool3d, X[None], ((2, 2),), {}),
    ("kernel_size", ops.max_pool2d, X, ((),), {}),
    ("stride", ops.max_pool2d, X, (2,), dict(stride=0)),
    ("stride", ops.avg_pool2d, X, (2,), dict(stride=(1, -1))),
    ("padding", ops.max_pool2d, X, (2,), dict(padding=-1)),
    ("padding", ops.max_pool2d, X, (2,), dict(padding=2)),          # > kernel / 2
    ("padding", ops.avg_pool2d, X, (3,), dict(padding=(1, 2))),
    ("padding", ops.max_pool1d, X[0], (3,), dict(padding=2, dilation=3)),  # kernel, not span
    ("dilation", ops.max_pool2d, X, (2,), dict(dilation=0)),
    ("divisor_override", ops.avg_pool2d, X, (2,), dict(divisor_override=0)),
]


@pytest.mark.parametrize("name,fn,x,args,kwargs", VALUE_ERRORS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(VALUE_ERRORS)])
def test_value_errors_name_the_argument(name, fn, x, args, kwargs):
    raises(ValueError, name, fn, x, *args, **kwargs)


TYPE_ERRORS = [
    ("kernel_size", dict(kernel_size=2.0)),
    ("kernel_size", dict(kernel_size=True)),
    ("kernel_size", dict(kernel_size="2")),
    ("kernel_size", dict(kernel_size=None)),
    ("stride", dict(kernel_size=2, stride=(1, 1.5))),
    ("padding", dict(kernel_size=2, padding=0.5)),
    ("ceil_mode", dict(kernel_size=2, ceil_mode=1)),
    ("ceil_mode", dict(kernel_size=2, ceil_mode="yes")),
]


@pytest.mark.parametrize("name,kwargs", TYPE_ERRORS, ids=[c[0] for c in TYPE_ERRORS])
def test_type_errors_name_the_argument(name, kwargs):
    raises(TypeError, name, ops.max_pool2d, X, **kwargs)
    raises(TypeError, name, ops.avg_pool2d, X, **kwargs)


def test_flag_and_divisor_type_errors():
    raises(TypeError, "return_indices", ops.max_pool2d, X, 2, return_indices=1)
    raises(TypeError, "dilation", ops.max_pool2d, X, 2, dilation=1.0)
    raises(TypeError, "count_include_pad", ops.avg_pool2d, X, 2, count_include_pad=None)
    raises(TypeError, "divisor_override", ops.avg_pool2d, X, 2, divisor_override=2.5)
    raises(TypeError, "divisor_override", ops.avg_pool2d, X, 2, divisor_override=True)
    raises(TypeError, "x", ops.max_pool2d, X.astype(np.complex64), 2)
    raises(TypeError, "x", ops.global_avg_pool, X.astype(object))
    raises(ValueError, "x", ops.global_avg_pool, X[0, 0])
    raises(ValueError, "x", ops.global_max_pool, np.zeros((1, 2, 0, 3), F32))


def test_error_messages_say_what_was_expected_and_what_came():
    msg = raises(ValueError, "padding", ops.max_pool2d, X, 3, padding=2)
    assert "(3, 3)" in msg and "(2, 2)" in msg
    msg = raises(ValueError, "x", ops.max_pool2d, X, 9)
    assert "(8, 8)" in msg and "(9, 9)" in msg
    msg = raises(ValueError, "x", ops.max_pool2d, X[0, 0], 2)
    assert "(8, 8)" in msg and "3-D or 4-D" in msg


def test_pool_variants_are_listed_like_gemm_ones():
    import fastdl

    if fastdl.backend() != "native":
        pytest.skip("variants are a native-backend notion")
    listed = fastdl._C.variants("pool")
    assert "fdl_f32_pool__ref" in listed and listed["fdl_f32_pool__ref"] is not None
    with pytest.raises(ValueError, match="op:"):
        fastdl._C.variants("nope")


@pytest.mark.parametrize("kind, shape, k, s, p, include", [
    ("max", (2, 3, 9, 8), 3, 2, 1, True), ("avg", (2, 3, 9, 8), 3, 2, 1, True),
    ("avg", (1, 4, 7, 7), 2, 1, 1, False), ("max", (3, 2, 11), 4, 3, 2, True),
    ("avg", (1, 2, 5, 6, 7), 2, None, 0, True)])
def test_pool_plan_equals_the_functions(kind, shape, k, s, p, include):
    """PoolPlan (geometry checked once, then the kernel alone) computes what max_pool*d /
    avg_pool*d do, on the shape it was made for and (through the checked path) others."""
    from fastdl import ops
    dims = len(shape) - 2
    fn = getattr(ops, f"{kind}_pool{dims}d")
    extra = {"count_include_pad": include} if kind == "avg" else {}
    plan = ops.PoolPlan(kind, shape, k, s, p, include)
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_array_equal(plan(x), fn(x, k, s, p, **extra))
    other = rng.standard_normal((1,) + shape[1:-1] + (shape[-1] + 2,))
    np.testing.assert_array_equal(plan(other), fn(other, k, s, p, **extra))
    with pytest.raises(ValueError, match="padding"):
        ops.PoolPlan(kind, shape, 2, 1, 2)
    with pytest.raises(ValueError, match="kind"):
        ops.PoolPlan("min", shape, 2)


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_pooling_writes_into_out(backend):
    """Every backend's max_pool / avg_pool with `out` write the result there and return
    it: the same values as without."""
    max_pool, avg_pool = BACKENDS[backend]
    x = rand(2, 3, 9, 8)
    geometry = ((3, 3), (2, 2), (1, 1))
    for pool, args in ((max_pool, geometry + ((1, 1), False, False)),
                       (avg_pool, geometry + (False, True, None))):
        want = pool(x, *args)
        out = np.full(want.shape, np.nan, F32)
        got = pool(x, *args, out)
        assert got is out
        np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_plan_into_and_bound_calls_write_the_plans_result(kind):
    """PoolPlan(x, out), its into(out) call and, with the native backend, its bound call
    write plan(x) into out; an input of another shape takes the checked path (into) or
    binds nothing; a wrong `out` raises."""
    from fastdl import ops
    from fastdl._backend import kernels
    shape = (2, 3, 9, 8)
    plan = ops.PoolPlan(kind, shape, 3, 2, 1)
    x = rand(*shape, seed=3)
    want = plan(x)
    out = np.zeros(plan.output_shape, F32)
    assert plan(x, out) is out
    np.testing.assert_array_equal(out, want)
    call = plan.into(out)
    out[...] = 0
    assert call(x) is out
    np.testing.assert_array_equal(out, want)
    other = rand(1, 3, 9, 10, seed=4)
    np.testing.assert_array_equal(call(other), plan(other))
    with pytest.raises(ValueError, match="out"):
        plan(x, np.zeros((2, 3, 5, 5), F32))
    bound = plan.bind(x, out)
    if not hasattr(kernels, "CallSequence"):
        assert bound is None
        return
    assert plan.bind(other, out) is None
    out[...] = 0
    kernels.CallSequence([bound]).run()
    np.testing.assert_array_equal(out, want)
    x += 1  # the bound call reads x's memory as it is now
    kernels.CallSequence([bound]).run()
    np.testing.assert_array_equal(out, plan(x))


# Windows longer than their padded input (PyTorch takes them with ceil_mode: one output over
# the whole padded input) are cut to the taps that reach it: the same values and gradients
# as PyTorch, without buffers or loops the length of the window (2**20 here).
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("k,s,p,d,count_pad", [
    (6, 5, 1, 1, True), (6, 5, 1, 1, False), (7, 9, 2, 1, True), (6, 2, 1, 2, False),
    (2**20, 2**20, 3, 1, True), (2**20, 2**20, 3, 1, False), (12, 20, 4, 3, False)])
def test_windows_longer_than_the_input_match_torch(torch, dims, k, s, p, d, count_pad):
    F = torch.nn.functional
    x = rand(2, 3, *(8,) * dims, seed=k % 97 + s)
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(F, f"max_pool{dims}d")(tx, k, s, p, d, ceil_mode=True)
    g = rand(*ty.shape, seed=1)
    ty.backward(torch.tensor(g))
    np.testing.assert_array_equal(getattr(ops, f"max_pool{dims}d")(x, k, s, p, d, True),
                                  ty.detach().numpy())
    np.testing.assert_array_equal(
        getattr(ops, f"max_pool{dims}d_input_backward")(g, x, k, s, p, d, True),
        tx.grad.numpy())
    if d == 1:
        tx.grad = None
        ta = getattr(F, f"avg_pool{dims}d")(tx, k, s, p, ceil_mode=True,
                                            count_include_pad=count_pad)
        ta.backward(torch.tensor(g))
        np.testing.assert_allclose(
            getattr(ops, f"avg_pool{dims}d")(x, k, s, p, True, count_pad),
            ta.detach().numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(
            getattr(ops, f"avg_pool{dims}d_backward")(g, x.shape, k, s, p, True, count_pad),
            tx.grad.numpy(), rtol=1e-6, atol=1e-6)
