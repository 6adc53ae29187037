"""fastdl.ops.conv3d / Conv3dPlan against torch.nn.functional.conv3d: the public API on
the selected backend, and every implementation directly — the NumPy reference, the Numba
twin and each native GEMM variant with each algorithm ('im2col', 'auto' = Winograd for
3x3x3 stride-1 layers with >= 8 channels; variants this CPU cannot run are counted skips). Without torch (the ARM build's tests under
qemu) the NumPy reference is the oracle, itself checked against torch where it exists."""
import importlib
import math

import numpy as np
import pytest

import fastdl
from fastdl import _reference as reference
from fastdl import ops
from native_variants import runnable, unrunnable

try:
    import torch
    F = torch.nn.functional
except ImportError:
    torch = None


def _numba_backend():
    """fastdl._numba, or skip where numba is not installed (e.g. the ARM run under qemu)."""
    pytest.importorskip("numba")
    return importlib.import_module("fastdl._numba")


CASES = [  # (batch, cin, cout, (D, H, W), kernel, stride, padding, dilation, groups)
    (2, 3, 5, (5, 6, 7), (3, 3, 3), 1, 1, 1, 1),
    (1, 4, 6, (6, 5, 9), (2, 3, 1), (2, 1, 3), ((1, 0), (0, 2), (2, 1)), (1, 2, 1), 2),
    (2, 5, 7, (3, 4, 5), (1, 1, 1), 1, 0, 1, 1),                      # pointwise
    (1, 6, 6, (4, 7, 5), (3, 3, 3), (1, 2, 2), 1, 1, 6),              # depthwise, strided
    (1, 8, 9, (4, 7, 10), (3, 3, 3), 1, 1, 1, 1),                     # Winograd
    (2, 9, 8, (3, 9, 6), (3, 3, 3), 1, ((0, 2), (1, 1), (2, 0)), 1, 1),  # Winograd, asym.
    (1, 16, 8, (5, 12, 13), (3, 3, 3), 1, "same", 1, 1),              # Winograd F4
    (1, 3, 4, (7, 7, 7), (3, 2, 3), 1, "same", (2, 1, 3), 1),         # dilated 'same'
    (2, 2, 4, (4, 4, 4), (4, 4, 4), 1, "valid", 1, 2),
    (0, 3, 4, (4, 4, 4), (3, 3, 3), 1, 1, 1, 1),                      # empty batch
    (1, 1, 1, (1, 1, 1), (1, 1, 1), 1, 0, 1, 1),
]
ACTIVATIONS = [None, "relu", "leaky_relu", "sigmoid", "silu"]


def _arrays(case, bias=True, seed=0):
    n, cin, cout, size, k, *_, groups = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, cin) + size, dtype=np.float32)
    w = rng.standard_normal((cout, cin // groups) + k, dtype=np.float32)
    b = rng.standard_normal(cout, dtype=np.float32) if bias else None
    return x, w, b


def _flat_padding(padding, k, dilation):
    """The flat (before, after) per axis that fastdl.ops resolves `padding` to."""
    return fastdl._conv_geometry.padding(padding, 3, k, dilation, (1, 1, 1))


def torch_conv3d(x, w, b, stride, padding, dilation, groups, activation=None, alpha=0.1):
    """torch's conv3d (+ activation); the NumPy reference where torch is missing."""
    if torch is None:
        d = fastdl._validate.int_tuple(dilation, "d", 3, 1)
        return reference.conv(x, w, b, fastdl._validate.int_tuple(stride, "s", 3, 1),
                                _flat_padding(padding, w.shape[2:], d), d, groups, activation,
                                alpha)
    xt = torch.from_numpy(x)
    if not isinstance(padding, (int, str)):  # per-side pairs: pad explicitly
        flat = [q for pair in reversed(padding) for q in pair]
        xt, padding = F.pad(xt, flat), 0
    bt = None if b is None else torch.from_numpy(b)
    y = F.conv3d(xt, torch.from_numpy(w), bt, stride, padding, dilation, groups)
    if activation == "leaky_relu":
        y = F.leaky_relu(y, alpha)
    elif activation is not None:
        y = getattr(F, activation)(y)
    return y.numpy()


def tolerance(x, w, b, stride, padding, dilation, groups):
    """float32 rounding (and Winograd's transforms) lose a fraction of the magnitude of the
    summed terms, sum |x| |w|, not of their sum."""
    flat = _flat_padding(padding, w.shape[2:], fastdl._validate.int_tuple(dilation, "d", 3, 1))
    mag = reference.conv(np.abs(x), np.abs(w), None if b is None else np.abs(b),
                           fastdl._validate.int_tuple(stride, "s", 3, 1), flat,
                           fastdl._validate.int_tuple(dilation, "d", 3, 1), groups, None, 0.0)
    return 1e-5 + 2e-5 * math.sqrt(math.prod(w.shape[1:])) * mag.astype(np.float64)


def assert_within(got, want, tol, what=""):
    assert got.dtype == np.float32 and got.flags.c_contiguous, what
    assert got.shape == want.shape, what
    err = np.abs(got.astype(np.float64) - want)
    assert np.all(err <= tol), f"{what}: max excess {np.max(err - tol)}"


@pytest.mark.filterwarnings("ignore:Using padding=.same.:UserWarning")
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("bias", [False, True])
def test_public_conv3d_matches_torch(case, bias):
    x, w, b = _arrays(case, bias)
    _, _, _, _, _, stride, padding, dilation, groups = case
    got = ops.conv3d(x, w, b, stride, padding, dilation, groups)
    want = torch_conv3d(x, w, b, stride, padding, dilation, groups)
    assert_within(got, want, tolerance(x, w, b, stride, padding, dilation, groups))


def _implementations():
    out = [("numpy", None, None), ("numba", None, None)]
    for name in runnable("gemm"):
        out += [("native", name, "im2col"), ("native", name, "auto")]
    return out


IMPLEMENTATIONS = _implementations()
IMPLEMENTATION_PARAMS = IMPLEMENTATIONS + [
    pytest.param(("native", name, "any"), id=f"native-{name}-cpu-lacks-isa",
                 marks=pytest.mark.skip(reason=f"this CPU cannot run {name}"))
    for name in unrunnable("gemm")]


def run_implementation(impl, x, w, b, stride, padding, dilation, groups, activation, alpha):
    kind, variant, algorithm = impl
    args = (fastdl._validate.int_tuple(stride, "s", 3, 1),
            _flat_padding(padding, w.shape[2:], fastdl._validate.int_tuple(dilation, "d", 3, 1)),
            fastdl._validate.int_tuple(dilation, "d", 3, 1), groups, activation, alpha)
    if kind == "numpy":
        return reference.conv(x, w, b, *args)
    if kind == "numba":
        numba_backend = _numba_backend()
        return numba_backend.conv(x, w, b, *args)
    from fastdl import _C
    plan = _C.ConvPlan(w, b, *args[:4], activation, alpha, variant=variant,
                       algorithm=algorithm)
    assert plan.variant == variant
    used = plan.algorithm(x.shape[2:])
    winograd = (w.shape[2:] == (3, 3, 3) and args[0] == (1, 1, 1) and args[2] == (1, 1, 1)
                and groups == 1 and w.shape[0] >= 8 and w.shape[1] >= 8
                and algorithm == "auto" and "ref" not in variant)
    assert used.startswith("winograd") == winograd, (variant, algorithm, used)
    return plan(x)


@pytest.mark.filterwarnings("ignore:Using padding=.same.:UserWarning")
@pytest.mark.parametrize("impl", IMPLEMENTATION_PARAMS, ids=lambda i: "-".join(filter(None, i)))
@pytest.mark.parametrize("case", CASES)
def test_each_implementation_matches_torch(impl, case):
    x, w, b = _arrays(case, seed=3)
    _, _, _, _, _, stride, padding, dilation, groups = case
    act = ACTIVATIONS[len(case[3]) * sum(case[3]) % len(ACTIVATIONS)]
    got = run_implementation(impl, x, w, b, stride, padding, dilation, groups, act, 0.1)
    want = torch_conv3d(x, w, b, stride, padding, dilation, groups, act, 0.1)
    assert_within(got, want, tolerance(x, w, b, stride, padding, dilation, groups), str(impl))


def test_plan_reused_unbatched_and_with_activation():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((8, 8, 3, 3, 3), dtype=np.float32)
    plan = ops.Conv3dPlan(w, padding=1, activation="relu")
    for size in ((1, 1, 1), (3, 5, 4), (4, 9, 9)):
        x = rng.standard_normal((8,) + size, dtype=np.float32)
        want = torch_conv3d(x[None], w, None, 1, 1, 1, 1, "relu")[0]
        assert_within(plan(x), want, tolerance(x[None], w, None, 1, 1, 1, 1)[0])
    assert plan.padding == (1,) * 6 and plan.kernel_size == (3, 3, 3)


def test_nan_stays_inside_its_receptive_field():
    w = np.ones((8, 8, 3, 3, 3), np.float32)
    x = np.zeros((1, 8, 4, 8, 8), np.float32)
    x[0, 0, 0, 0, 0] = np.nan
    y = ops.conv3d(x, w, padding=1)
    assert np.isnan(y[0, :, :2, :2, :2]).all()
    assert not np.isnan(y[0, :, 2:]).any() and not np.isnan(y[0, :, :, 2:]).any()


@pytest.mark.parametrize("kwargs,error,name", [
    (dict(stride=0), ValueError, "stride"),
    (dict(stride=(1, 1)), ValueError, "stride"),
    (dict(dilation=1.5), TypeError, "dilation"),
    (dict(padding=(1, 2)), ValueError, "padding"),
    (dict(padding=-1), ValueError, "padding"),
    (dict(padding=((1, 0), (0, -1), (0, 0))), ValueError, "padding"),
    (dict(padding="full"), ValueError, "padding"),
    (dict(padding="same", stride=2), ValueError, "padding"),
    (dict(groups=3), ValueError, "groups"),
    (dict(groups=0), ValueError, "groups"),
    (dict(activation="gelu"), ValueError, "activation"),
])
def test_bad_arguments_name_themselves(kwargs, error, name):
    x = np.ones((1, 4, 5, 5, 5), np.float32)
    w = np.ones((4, 4, 3, 3, 3), np.float32)
    with pytest.raises(error, match=f"^{name}:"):
        ops.conv3d(x, w, **kwargs)


def test_bad_shapes_name_the_argument():
    w = np.ones((4, 4, 3, 3, 3), np.float32)
    for x, name in [(np.ones((1, 4, 5, 5), np.float32)[None, None], "x"),  # 6-D
                    (np.ones((4, 5, 5), np.float32), "x"),                 # 3-D
                    (np.ones((1, 3, 5, 5, 5), np.float32), "x"),           # channels
                    (np.ones((1, 4, 2, 5, 5), np.float32), "x")]:          # kernel > input
        with pytest.raises(ValueError, match=f"^{name}:"):
            ops.conv3d(x, w)
    with pytest.raises(ValueError, match="^w:"):
        ops.conv3d(np.ones((1, 4, 5, 5, 5), np.float32), w[0])
    with pytest.raises(ValueError, match="^b:"):
        ops.conv3d(np.ones((1, 4, 5, 5, 5), np.float32), w, np.ones(3, np.float32))
    with pytest.raises(TypeError, match="^x:"):
        ops.conv3d(np.ones((1, 4, 5, 5, 5), np.complex64), w.astype(np.complex64))


def test_generated_geometries_match_torch():
    """Property: any valid 3-D geometry (kernel, stride, per-side padding, dilation,
    groups) gives torch's values, on the selected backend and each native variant."""
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    impls = [i for i in IMPLEMENTATIONS if i[0] == "native"] or [("numpy", None, None)]

    @st.composite
    def geometries(draw):
        groups = draw(st.integers(1, 2))
        cin, cout = groups * draw(st.integers(1, 5)), groups * draw(st.integers(1, 5))
        axes = []
        for _ in range(3):
            k, s, d = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
            span = d * (k - 1) + 1
            before, after = draw(st.integers(0, 2)), draw(st.integers(0, 2))
            size = draw(st.integers(max(1, span - before - after), 7))
            axes.append((k, s, d, (before, after), size))
        return draw(st.integers(0, 2)), cin, cout, groups, axes, draw(st.sampled_from(impls))

    @hypothesis.settings(max_examples=50, deadline=None, derandomize=True)
    @hypothesis.given(geometries())
    def check(geometry):
        n, cin, cout, groups, axes, impl = geometry
        k, s, d, pad, size = (tuple(a[i] for a in axes) for i in range(5))
        rng = np.random.default_rng(sum(size))
        x = rng.standard_normal((n, cin) + size, dtype=np.float32)
        w = rng.standard_normal((cout, cin // groups) + k, dtype=np.float32)
        b = rng.standard_normal(cout, dtype=np.float32)
        want = torch_conv3d(x, w, b, s, pad, d, groups)
        tol = tolerance(x, w, b, s, pad, d, groups)
        assert_within(ops.conv3d(x, w, b, s, pad, d, groups), want, tol, str(geometry))
        got = run_implementation(impl, x, w, b, s, pad, d, groups, None, 0.0)
        assert_within(got, want, tol, str(geometry))

    check()
