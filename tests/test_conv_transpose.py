"""fastdl.ops.conv_transpose{1,2,3}d / ConvTranspose{1,2,3}dPlan against torch's
conv_transpose{1,2,3}d: the public API on the selected backend, and every implementation
directly — the NumPy reference, the Numba twin and each native GEMM variant. Without torch
(the ARM build's tests under qemu) the NumPy reference is the oracle, itself checked
against torch where it exists."""
import importlib
import math

import numpy as np
import pytest

from fastdl import _reference as reference
from fastdl import ops
from native_variants import runnable, unrunnable

try:
    import torch
    F = torch.nn.functional
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def _numba_backend():
    """fastdl._numba, or skip where numba is not installed (e.g. the ARM run under qemu)."""
    pytest.importorskip("numba")
    return importlib.import_module("fastdl._numba")


CASES = [  # (batch, cin, cout, in size, kernel, stride, padding, output_padding, dilation, groups)
    (2, 3, 5, (9,), (3,), 1, 0, 0, 1, 1),
    (1, 4, 6, (11,), (4,), 3, 1, 2, 1, 2),
    (2, 2, 3, (7,), (3,), 2, 2, 1, 3, 1),                 # output_padding < dilation only
    (2, 3, 4, (6, 5), (3, 3), 1, 1, 0, 1, 1),
    (1, 8, 6, (7, 9), (4, 4), 2, 1, 0, 1, 1),             # the decoder shape
    (2, 4, 6, (5, 6), (3, 2), (2, 3), (1, 0), (1, 2), (1, 2), 2),
    (1, 6, 6, (5, 5), (3, 3), 2, 1, 1, 1, 6),             # depthwise
    (1, 3, 2, (6, 5), (3, 3), 1, 0, (1, 0), (2, 1), 1),   # output_padding >= stride
    (1, 5, 7, (4, 6), (1, 1), 1, 0, 0, 1, 1),             # pointwise
    (1, 3, 2, (1, 1), (5, 3), 2, 0, 1, 1, 1),             # one input pixel
    (0, 3, 4, (4, 4), (3, 3), 2, 1, 1, 1, 1),             # empty batch
    (2, 2, 3, (3, 4, 5), (3, 3, 3), 1, 1, 0, 1, 1),
    (1, 4, 4, (3, 3, 2), (2, 3, 4), (2, 1, 2), (0, 1, 1), (1, 0, 1), (1, 2, 1), 2),
    (1, 16, 8, (4, 6, 6), (4, 4, 4), 2, 1, 0, 1, 1),
]
ACTIVATIONS = [None, "relu", "leaky_relu", "tanh", "silu"]
PLANS = {1: ops.ConvTranspose1dPlan, 2: ops.ConvTranspose2dPlan, 3: ops.ConvTranspose3dPlan}
FUNCTIONS = {1: ops.conv_transpose1d, 2: ops.conv_transpose2d, 3: ops.conv_transpose3d}


def _arrays(case, bias=True, seed=0):
    n, cin, cout, size, k, *_, groups = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, cin) + size, dtype=np.float32)
    w = rng.standard_normal((cin, cout // groups) + k, dtype=np.float32)
    b = rng.standard_normal(cout, dtype=np.float32) if bias else None
    return x, w, b


def _tuple(value, dims):
    return (value,) * dims if isinstance(value, int) else tuple(value)


def torch_conv_transpose(x, w, b, stride, padding, output_padding, groups, dilation,
                         activation=None, alpha=0.1):
    """torch's conv_transpose (+ activation); the NumPy reference where torch is missing."""
    if torch is None:
        dims = x.ndim - 2
        s, p, op, d = (_tuple(v, dims) for v in (stride, padding, output_padding, dilation))
        size = tuple((i - 1) * si - 2 * pi + di * (k - 1) + 1 + o for i, si, pi, di, k, o in
                     zip(x.shape[2:], s, p, d, w.shape[2:], op))
        return reference.conv_transpose(x, w, b, s, p, size, d, groups, activation, alpha)
    fn = getattr(F, f"conv_transpose{x.ndim - 2}d")
    bt = None if b is None else torch.from_numpy(b)
    y = fn(torch.from_numpy(x), torch.from_numpy(w), bt, stride, padding, output_padding,
           groups, dilation)
    if activation == "leaky_relu":
        y = F.leaky_relu(y, alpha)
    elif activation is not None:
        y = getattr(F, activation)(y)
    return y.numpy()


def tolerance(x, w, b, stride, padding, output_padding, groups, dilation):
    """A fraction of the magnitude of the summed terms, sum |x| |w| (+ |b|)."""
    mag = torch_conv_transpose(np.abs(x), np.abs(w), None if b is None else np.abs(b), stride,
                               padding, output_padding, groups, dilation)
    return 1e-5 + 2e-5 * math.sqrt(w.shape[0] * math.prod(w.shape[2:])) * mag.astype(np.float64)


def assert_within(got, want, tol, what=""):
    assert got.dtype == np.float32 and got.flags.c_contiguous, what
    assert got.shape == want.shape, what
    err = np.abs(got.astype(np.float64) - want)
    assert np.all(err <= tol), f"{what}: max excess {np.max(err - tol)}"


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("bias", [False, True])
def test_public_conv_transpose_matches_torch(case, bias):
    x, w, b = _arrays(case, bias)
    *_, stride, padding, output_padding, dilation, groups = case
    dims = x.ndim - 2
    got = FUNCTIONS[dims](x, w, b, stride, padding, output_padding, groups, dilation)
    want = torch_conv_transpose(x, w, b, stride, padding, output_padding, groups, dilation)
    assert_within(got, want, tolerance(x, w, b, stride, padding, output_padding, groups,
                                       dilation))


def _implementations():
    """Every implementation; a native variant this CPU cannot run is a counted skip."""
    return ([("numpy", None), ("numba", None)] + [("native", name) for name in runnable("gemm")]
            + [pytest.param(("native", name), id=f"native-{name}-cpu-lacks-isa",
                            marks=pytest.mark.skip(reason=f"this CPU cannot run {name}"))
               for name in unrunnable("gemm")])


@pytest.mark.parametrize("impl", _implementations(), ids=lambda i: "-".join(filter(None, i)))
@pytest.mark.parametrize("case", CASES)
def test_each_implementation_matches_torch(impl, case):
    x, w, b = _arrays(case, seed=4)
    *_, stride, padding, output_padding, dilation, groups = case
    dims = x.ndim - 2
    act = ACTIVATIONS[sum(case[3]) % len(ACTIVATIONS)]
    want = torch_conv_transpose(x, w, b, stride, padding, output_padding, groups, dilation,
                                act, 0.1)
    args = (_tuple(stride, dims), _tuple(padding, dims))
    kind, variant = impl
    if kind == "native":
        from fastdl import _C
        flat = [q for p in args[1] for q in (p, p)]
        plan = _C.ConvTransposePlan(w, b, args[0], flat, _tuple(dilation, dims), groups, act,
                                    0.1, variant=variant)
        assert plan.variant == variant
        got = plan(x, list(want.shape[2:]))
    else:
        backend = reference if kind == "numpy" else _numba_backend()
        got = backend.conv_transpose(x, w, b, *args, want.shape[2:], _tuple(dilation, dims),
                                     groups, act, 0.1)
    assert_within(got, want, tolerance(x, w, b, stride, padding, output_padding, groups,
                                       dilation), str(impl))


def test_plan_with_output_size_unbatched_and_activation():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((4, 3, 3, 3), dtype=np.float32)
    b = rng.standard_normal(3, dtype=np.float32)
    plan = ops.ConvTranspose2dPlan(w, b, stride=2, padding=1, activation="relu")
    x = rng.standard_normal((4, 5, 6), dtype=np.float32)
    assert plan(x).shape == (3, 9, 11)
    for size, op in [((9, 11), (0, 0)), ((10, 12), (1, 1)), ((1, 3, 10, 11), (1, 0))]:
        want = np.maximum(torch_conv_transpose(x[None], w, b, 2, 1, op, 1, 1)[0], 0)
        got = plan(x, output_size=size)
        assert_within(got, want, tolerance(x[None], w, b, 2, 1, op, 1, 1)[0], str(size))
    if torch is not None:  # torch.nn.ConvTranspose2d accepts the same sizes
        module = torch.nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1)
        assert tuple(module(torch.zeros(1, 4, 5, 6), output_size=(10, 12)).shape[2:]) == (10, 12)
    with pytest.raises(ValueError, match="^output_size:"):
        plan(x, output_size=(11, 11))
    with pytest.raises(ValueError, match="^output_size:"):
        plan(x, output_size=(9,))
    with pytest.raises(TypeError, match="^output_size:"):
        plan(x, output_size=(9.0, 11))


def test_bench_shape_matches_torch():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 64, 28, 28), dtype=np.float32)
    w = rng.standard_normal((64, 32, 4, 4), dtype=np.float32)
    b = rng.standard_normal(32, dtype=np.float32)
    got = ops.ConvTranspose2dPlan(w, b, stride=2, padding=1)(x)
    want = torch_conv_transpose(x, w, b, 2, 1, 0, 1, 1)
    assert_within(got, want, tolerance(x, w, b, 2, 1, 0, 1, 1))


@pytest.mark.parametrize("kwargs,error,name", [
    (dict(stride=0), ValueError, "stride"),
    (dict(stride=(1, 2, 1)), ValueError, "stride"),
    (dict(padding=-1), ValueError, "padding"),
    (dict(padding="same"), ValueError, "padding"),
    (dict(padding=1.0), TypeError, "padding"),
    (dict(output_padding=2, stride=2), ValueError, "output_padding"),   # >= stride, dilation
    (dict(output_padding=(0, 1)), ValueError, "output_padding"),        # stride 1
    (dict(output_padding=-1), ValueError, "output_padding"),
    (dict(dilation=0), ValueError, "dilation"),
    (dict(groups=3), ValueError, "groups"),                            # 3 does not divide 4
    (dict(groups=1.0), TypeError, "groups"),
    (dict(activation="gelu"), ValueError, "activation"),
])
def test_bad_arguments_name_themselves(kwargs, error, name):
    x = np.ones((1, 4, 5, 5), np.float32)
    w = np.ones((4, 2, 3, 3), np.float32)
    with pytest.raises(error, match=f"^{name}:"):
        ops.conv_transpose2d(x, w, **kwargs)


def test_bad_shapes_name_the_argument():
    w = np.ones((4, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="^x:"):
        ops.conv_transpose2d(np.ones((1, 3, 5, 5), np.float32), w)        # channels
    with pytest.raises(ValueError, match="^x:"):
        ops.conv_transpose2d(np.ones((5, 5), np.float32), w)              # 2-D
    with pytest.raises(ValueError, match="^x:"):                          # output too small
        ops.conv_transpose2d(np.ones((1, 4, 1, 1), np.float32), w, padding=2)
    with pytest.raises(ValueError, match="^w:"):
        ops.conv_transpose2d(np.ones((1, 4, 5, 5), np.float32), w[0])
    with pytest.raises(ValueError, match="^w:"):
        ops.conv_transpose1d(np.ones((1, 4, 5), np.float32), w)
    with pytest.raises(ValueError, match="^b:"):
        ops.conv_transpose2d(np.ones((1, 4, 5, 5), np.float32), w, np.ones(4, np.float32))
    # Real dtypes are converted (DESIGN.md 5), mixed ones too: a float64 bias is no error.
    mixed = ops.conv_transpose3d(np.ones((1, 4, 3, 3, 3), np.float32),
                                 np.ones((4, 2, 1, 1, 1), np.float32), np.ones(2, np.float64))
    assert mixed.dtype == np.float32 and np.all(mixed == 5.0)
    with pytest.raises(TypeError, match="^b:"):
        ops.conv_transpose3d(np.ones((1, 4, 3, 3, 3), np.float32),
                             np.ones((4, 2, 1, 1, 1), np.float32), np.ones(2, np.complex64))


@needs_torch
def test_torch_refuses_what_we_refuse():
    """The output_padding rule is torch's: smaller than stride or dilation."""
    x, w = torch.ones(1, 2, 5), torch.ones(2, 2, 3)
    F.conv_transpose1d(x, w, stride=1, output_padding=1, dilation=2)  # allowed: < dilation
    ops.conv_transpose1d(x.numpy(), w.numpy(), stride=1, output_padding=1, dilation=2)
    with pytest.raises(RuntimeError):
        F.conv_transpose1d(x, w, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="^output_padding:"):
        ops.conv_transpose1d(x.numpy(), w.numpy(), stride=2, output_padding=2)


@pytest.fixture(scope="module")
def st():
    return pytest.importorskip("hypothesis.strategies")


def test_generated_geometries_match_torch(st):
    """Property: any valid geometry (1-3 axes, stride, padding, dilation, output_padding,
    groups) gives torch's values, through the plan and output_size."""
    from hypothesis import given, settings

    @st.composite
    def geometries(draw):
        dims = draw(st.integers(1, 3))
        groups = draw(st.integers(1, 3))
        cin, cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
        axes = []
        for _ in range(dims):
            k, s, d = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
            size = draw(st.integers(1, 6 if dims == 3 else 9))
            op = draw(st.integers(0, max(s, d) - 1))
            full = (size - 1) * s + d * (k - 1) + 1
            p = draw(st.integers(0, max(0, (full + op - 1) // 2)))
            axes.append((k, s, d, size, op, p))
        return draw(st.integers(0, 2)), cin, cout, groups, axes

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(geometries())
    def check(geometry):
        n, cin, cout, groups, axes = geometry
        k, s, d, size, op, p = (tuple(a[i] for a in axes) for i in range(6))
        rng = np.random.default_rng(sum(size))
        x = rng.standard_normal((n, cin) + size, dtype=np.float32)
        w = rng.standard_normal((cin, cout // groups) + k, dtype=np.float32)
        b = rng.standard_normal(cout, dtype=np.float32)
        want = torch_conv_transpose(x, w, b, s, p, op, groups, d)
        plan = PLANS[len(axes)](w, b, s, p, 0, d, groups)
        got = plan(x, output_size=want.shape[2:]) if all(o < st_ for o, st_ in zip(op, s)) \
            else FUNCTIONS[len(axes)](x, w, b, s, p, op, groups, d)
        assert_within(got, want, tolerance(x, w, b, s, p, op, groups, d), str(geometry))

    check()


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_per_side_padding_crops_unevenly(any_backend, dims):
    """padding as (before, after) pairs (Keras' 'same' needs uneven crops): the full
    transposed convolution (padding 0) with `before` removed at the start and `after` at
    the end of each axis, on every backend."""
    from fastdl import ops
    rng = np.random.default_rng(dims)
    spatial = (5, 6, 4)[:dims]
    x = rng.standard_normal((2, 3) + spatial).astype(np.float32)
    w = rng.standard_normal((3, 4) + (3, 4, 2)[:dims]).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    pads = ((0, 1), (2, 1), (1, 0))[:dims]
    plan_cls = getattr(ops, f"ConvTranspose{dims}dPlan")
    full = plan_cls(w, b, stride=2)(x)
    index = (slice(None), slice(None)) + tuple(slice(a, n - c) for (a, c), n in
                                               zip(pads, full.shape[2:]))
    got = plan_cls(w, b, stride=2, padding=pads)(x)
    np.testing.assert_allclose(got, full[index], rtol=1e-5, atol=1e-5)
    # With the extra output_size extent at the end (zeros + bias beyond the full output).
    size = tuple(n + 1 for n in got.shape[2:])
    longer = plan_cls(w, b, stride=2, padding=pads)(x, output_size=size)
    np.testing.assert_allclose(longer[(slice(None), slice(None)) + tuple(
        slice(0, n) for n in got.shape[2:])], got, rtol=1e-5, atol=1e-5)
