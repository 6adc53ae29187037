"""2-D convolution and linear: the native kernels (fastdl._C), every GEMM variant (the
ones this CPU cannot run are counted skips), against the NumPy reference on generated edge
cases; and the public fastdl.ops functions against PyTorch.

Variant tests go through fastdl._C.{ConvPlan,LinearPlan,matmul}(..., variant=name), so
they never depend on what the host would pick. The shapes are generated around each
variant's register tile (MR/NR +-1) and K block (256 +-1). Every convolution runs with
each algorithm a plan accepts, and the test checks which one the plan reports it runs:
with 'auto', 3x3 stride-1 convolutions with >= 8 channels take Winograd F(2,3)/F(4,3) and
groups == channels the direct depthwise kernel where the variant's ISA has SIMD kernels;
forced, they run everywhere (the reference variants on the ref ISA).
"""
from __future__ import annotations

import dataclasses
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

_C = pytest.importorskip("fastdl._C", reason="the native extension is not built")

import fastdl  # noqa: E402
from native_variants import skipped, unrunnable, variant_params  # noqa: E402
from fastdl import _reference as reference  # noqa: E402
from fastdl import ops  # noqa: E402

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

ACTIVATIONS = [None, "relu", "relu6", "leaky_relu", "sigmoid", "tanh", "silu"]
ALPHA = 0.1  # leaky_relu slope; not the default, so that passing it on is checked
KC = 256     # the GEMM's K block for every variant (src/gemm/variants.inc)
ALGORITHMS = ["auto", "im2col", "winograd", "winograd_f2", "winograd_f4", "depthwise",
              "narrow", "direct"]
REPO_ROOT = Path(__file__).resolve().parents[1]

VARIANTS = {name: info for name, info in _C.variants("gemm").items() if info is not None}
VARIANT_NAMES = sorted(VARIANTS)  # the runnable ones; VARIANT_PARAMS adds counted skips
VARIANT_PARAMS = variant_params("gemm")


# ---------------------------------------------------------------------------- helpers

def random_array(shape, seed=0):
    return np.asarray(np.random.default_rng(seed).standard_normal(shape, dtype=np.float32))


def conv_tolerance(x, w, b, stride, padding, dilation, groups, factor=5e-6):
    """Per-output tolerance: float32 rounding (and Winograd's transforms) lose a fraction
    of the *magnitude* of the summed terms, sum |x| * |w|, not of their sum. Against
    PyTorch (float32 too, its own algorithms) use a larger `factor`: both sides err."""
    mag = reference.conv(np.abs(x), np.abs(w), None if b is None else np.abs(b), stride,
                         padding, dilation, groups, None, 0.0).astype(np.float64)
    k = w.shape[1] * w.shape[2] * w.shape[3]
    return 1e-5 + factor * math.sqrt(k) * mag


def gemm_tolerance(a_abs, b_abs, k):
    return 1e-5 + 5e-6 * math.sqrt(max(k, 1)) * (a_abs.astype(np.float64) @ b_abs)


def assert_within(actual, expected, tol, what=""):
    assert actual.dtype == np.float32, what
    assert actual.shape == expected.shape, what
    assert actual.flags.c_contiguous, what
    expected = expected.astype(np.float64)
    bad = ~(np.abs(actual - expected) <= tol)  # NaN counts as bad unless both are NaN
    bad &= ~(np.isnan(actual) & np.isnan(expected))
    if bad.any():
        idx = tuple(np.argwhere(bad)[0])
        raise AssertionError(f"{what}: {bad.sum()} of {bad.size} outputs differ; first at {idx}: "
                             f"got {actual[idx]!r}, want {expected[idx]!r} "
                             f"(tol {np.broadcast_to(tol, bad.shape)[idx]:.3g})")


def same_padding(kernel, dilation):
    """PyTorch's padding='same': total d*(k-1), the odd extra one after."""
    out = []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        out += [total // 2, total - total // 2]
    return tuple(out)


def run_python(code, **env):
    """Runs `code` in a fresh interpreter (a crash there fails one test, not the run)."""
    full_env = dict(os.environ, **env)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                           full_env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def torch_activation(torch, t, name, slope=ALPHA):
    F = torch.nn.functional
    return {None: lambda t: t, "linear": lambda t: t, "relu": F.relu, "relu6": F.relu6,
            "leaky_relu": lambda t: F.leaky_relu(t, slope), "sigmoid": torch.sigmoid,
            "tanh": torch.tanh, "silu": F.silu, "swish": F.silu}[name](t)


# ---------------------------------------------------------------------------- conv cases

@dataclasses.dataclass(frozen=True)
class ConvCase:
    batch: int = 2
    in_channels: int = 3
    size: tuple = (9, 8)
    out_channels: int = 4
    kernel: tuple = (3, 3)
    stride: tuple = (1, 1)
    padding: tuple = (1, 1, 1, 1)  # top, bottom, left, right
    dilation: tuple = (1, 1)
    groups: int = 1
    activation: str | None = None
    bias: bool = True

    def inputs(self, seed=1):
        x = random_array((self.batch, self.in_channels, *self.size), seed=seed)
        w = random_array((self.out_channels, self.in_channels // self.groups, *self.kernel),
                         seed=seed + 1)
        b = random_array(self.out_channels, seed=seed + 2) if self.bias else None
        return x, w, b

    def label(self):
        d = dataclasses.asdict(self)
        default = dataclasses.asdict(ConvCase())
        parts = [f"{k}={v}" for k, v in d.items() if v != default[k]]
        return (",".join(parts) or "default").replace(" ", "")


def generated_conv_cases():
    rng = np.random.default_rng(7)
    cases = []
    channels = (1, 3, 8, 16)
    # Every kernel size x stride, channel counts cycling, random sizes and asymmetric pads.
    for ki, k in enumerate((1, 2, 3, 4, 5, 7)):
        for s in (1, 2, 3):
            cin, cout = channels[(ki + s) % 4], channels[(ki + 2 * s + 1) % 4]
            while True:
                pads = tuple(int(p) for p in rng.integers(0, k // 2 + 2, 4))
                size = tuple(int(v) for v in rng.integers(1, 16, 2))
                if size[0] + pads[0] + pads[1] >= k and size[1] + pads[2] + pads[3] >= k:
                    break
            cases.append(ConvCase(in_channels=cin, out_channels=cout, kernel=(k, k),
                                  stride=(s, s), padding=pads, size=size,
                                  activation=ACTIVATIONS[(ki + s) % 7]))
    # Depthwise (groups == in == out channels: the direct kernel): every kernel size,
    # stride and dilation, random sizes and asymmetric pads, every activation.
    i = 0
    for k in (1, 2, 3, 4, 5, 7):
        for s in (1, 2, 3):
            for d in (1, 2):
                c = (1, 3, 8, 16, 17)[i % 5]
                kernel = (k, k + 1 if k in (2, 4) else k)
                dilation = (d, 1 + (d + i) % 2)
                while True:
                    pads = tuple(int(p) for p in rng.integers(0, k // 2 + 2, 4))
                    size = tuple(int(v) for v in rng.integers(1, 21, 2))
                    span = [dd * (kk - 1) + 1 for kk, dd in zip(kernel, dilation)]
                    if (size[0] + pads[0] + pads[1] >= span[0]
                            and size[1] + pads[2] + pads[3] >= span[1]):
                        break
                cases.append(ConvCase(in_channels=c, out_channels=c, groups=c, kernel=kernel,
                                      stride=(s, 1 + (s + i) % 3), dilation=dilation,
                                      padding=pads, size=size, batch=1 + i % 2,
                                      activation=ACTIVATIONS[i % 7], bias=i % 3 != 0))
                i += 1
    cases.append(ConvCase(in_channels=4, out_channels=4, groups=4, size=(5, 77)))
    # The specialised 3x3 / 5x5, stride 1 / 2 depthwise kernels: widths around the vector
    # blocks, padding 0, k/2 and asymmetric, dilation 2.
    for k in (3, 5):
        for s in (1, 2):
            for w in (1, 7, 8, 9, 16, 17, 23, 33):
                c = 17 if w % 3 == 0 else 8
                pads = {1: (0, k - 1, k - 1, 0), 3: (1, 0, 0, 1)}.get(w % 4, (k // 2,) * 4)
                dilation = (2, 2) if w == 23 else (1, 1)
                if w == 23:
                    pads = (k - 1,) * 4
                case = ConvCase(in_channels=c, out_channels=c, groups=c, kernel=(k, k),
                                stride=(s, s), dilation=dilation, padding=pads,
                                size=(3 + w % 5, w), batch=1 + w % 2,
                                activation=ACTIVATIONS[w % 7])
                span = dilation[0] * (k - 1) + 1
                if (case.size[0] + pads[0] + pads[1] >= span
                        and case.size[1] + pads[2] + pads[3] >= span):
                    cases.append(case)
    # Taller planes: the padded kernels work in strips of 8 output rows, in blocks of 4
    # plus a 1-3 row remainder; heights cross those boundaries, with every padding kind.
    for k in (3, 5):
        for s in (1, 2):
            for h, pads in ((9, (k // 2,) * 4), (17, (0, k - 1, 1, 0)), (35, (1, 0, 0, 1)),
                            (20, (0, 0, 0, 0))):
                cases.append(ConvCase(in_channels=3, out_channels=3, groups=3, kernel=(k, k),
                                      stride=(s, s), padding=pads, size=(h, 14), batch=1,
                                      activation=ACTIVATIONS[h % 7]))
    # Winograd: 3x3 stride 1, 8/16 channels, output sizes 1..13 (every residue mod 2, 4, 6).
    for n in range(1, 14):
        cases.append(ConvCase(in_channels=(8, 16)[n % 2], out_channels=(16, 8, 9)[n % 3],
                              size=(n, 14 - n), activation=ACTIVATIONS[n % 7],
                              bias=n % 4 != 0))
    cases += [
        ConvCase(in_channels=8, out_channels=8, size=(5, 7), padding=(0, 0, 0, 0)),
        ConvCase(in_channels=16, out_channels=16, size=(6, 6), padding=(0, 2, 2, 1)),
        ConvCase(in_channels=8, out_channels=12, size=(33, 35), batch=1),
        ConvCase(in_channels=29, out_channels=10, size=(7, 6)),  # K = 261 > the K block
        # Dilation 2 (square, per-axis, with an even kernel).
        ConvCase(dilation=(2, 2), padding=(2, 2, 2, 2)),
        ConvCase(in_channels=8, out_channels=8, dilation=(2, 2), padding=(2, 2, 2, 2)),
        ConvCase(dilation=(2, 1), kernel=(3, 2), stride=(2, 1), padding=(0, 1, 1, 0)),
        ConvCase(kernel=(4, 4), dilation=(2, 2), padding=same_padding((4, 4), (2, 2)),
                 size=(10, 9)),
        # Groups: 2 groups, depthwise (multiplier 1 and 2), grouped pointwise.
        ConvCase(in_channels=4, out_channels=6, groups=2),
        ConvCase(in_channels=16, out_channels=16, groups=2, activation="relu"),
        ConvCase(in_channels=3, out_channels=3, groups=3),
        ConvCase(in_channels=16, out_channels=16, groups=16, stride=(2, 2), size=(11, 12)),
        ConvCase(in_channels=8, out_channels=16, groups=8, kernel=(5, 5), padding=(2, 2, 2, 2)),
        ConvCase(in_channels=8, out_channels=8, groups=2, kernel=(1, 1), padding=(0, 0, 0, 0)),
        # Channel count 1, a kernel as large as the padded input (1x1 output), 'same' with
        # even kernels (the extra row/column after, as PyTorch).
        ConvCase(in_channels=1, out_channels=1),
        ConvCase(in_channels=1, out_channels=16, kernel=(7, 7), padding=(0, 0, 0, 0), size=(7, 7)),
        ConvCase(kernel=(2, 2), padding=same_padding((2, 2), (1, 1))),
        ConvCase(in_channels=8, out_channels=8, kernel=(4, 4),
                 padding=same_padding((4, 4), (1, 1))),
        ConvCase(kernel=(2, 4), padding=same_padding((2, 4), (1, 1)), size=(5, 11)),
        # Pointwise (X read as the B matrix) with K = 255, 256, 257 around the K block.
        *[ConvCase(in_channels=c, out_channels=5, kernel=(1, 1), padding=(0, 0, 0, 0),
                   size=(4, 5)) for c in (KC - 1, KC, KC + 1)],
        ConvCase(in_channels=16, out_channels=3, kernel=(4, 4), padding=(1, 2, 1, 2)),  # K=256
        # Zero batch, no bias, every activation (Winograd and not).
        ConvCase(batch=0),
        ConvCase(batch=0, in_channels=8, out_channels=8),
        ConvCase(bias=False, stride=(2, 2)),
        *[ConvCase(activation=a, stride=(2, 1)) for a in ACTIVATIONS[1:]],
        *[ConvCase(activation=a, in_channels=8, out_channels=8, bias=i % 2 == 0)
          for i, a in enumerate(ACTIVATIONS[1:])],
    ]
    return cases


def tile_conv_cases(info):
    """Shapes around one variant's tile: out_channels (M) at MR +- 1 (and > 8 for
    Winograd), output pixels (N) at NR +- 1."""
    mr, nr = info["mr"], info["nr"]
    cases = []
    for m in (mr - 1, mr, mr + 1, 2 * mr + 1):
        for n in (nr - 1, nr, nr + 1):
            cases.append(ConvCase(in_channels=8, out_channels=m, size=(1, n), batch=1,
                                  activation="relu" if m % 2 else None))
            cases.append(ConvCase(in_channels=3, out_channels=m, size=(n, 1), kernel=(1, 1),
                                  padding=(0, 0, 0, 0), batch=1))
    return [c for c in cases if c.out_channels > 0 and c.size[0] > 0 and c.size[1] > 0]


CONV_CASES = generated_conv_cases()
VARIANT_CONV_PARAMS = variant_params("gemm", lambda name, info: [
    pytest.param(name, case, id=f"{name.split('__')[-1]}-{case.label()}")
    for case in CONV_CASES + tile_conv_cases(info)], fill=1)


def expected_algorithm(case, variant, algorithm):
    """What a plan with `algorithm` should run: kAuto only where the variant's ISA has SIMD
    kernels (not ref), forced ones everywhere: the direct depthwise kernel when groups == in
    == out channels (auto, depthwise); Winograd for 3x3 stride-1 dilation-1 ungrouped
    layers with >= 8 channels (auto, winograd, winograd_f2/f4); the narrow kernel for
    <= 4 input channels, groups 1, dilation 1, the same stride 1 or 2 both ways (narrow;
    auto where the window is at most 7x7); the direct specification when asked; else, and
    whenever forced elsewhere, im2col + GEMM."""
    if algorithm == "direct":
        return "direct"
    pick = algorithm == "auto" and VARIANTS[variant]["isa"] != "ref"
    depthwise = case.groups == case.in_channels == case.out_channels
    narrow = (case.in_channels <= 4 and case.groups == 1 and case.dilation == (1, 1)
              and case.stride[0] == case.stride[1] and case.stride[0] in (1, 2))
    winograd = (case.kernel == (3, 3) and case.stride == (1, 1) and case.dilation == (1, 1)
                and case.groups == 1 and case.in_channels >= 8 and case.out_channels >= 8)
    if depthwise and (pick or algorithm == "depthwise"):
        return "depthwise"
    if narrow and (algorithm == "narrow" or (pick and max(case.kernel) <= 7)):
        return "narrow"
    if winograd and not depthwise and (pick or algorithm.startswith("winograd")):
        return algorithm if algorithm in ("winograd_f2", "winograd_f4") else "winograd"
    return "im2col"


def run_native_conv(case, x, w, b, variant, algorithm="auto"):
    plan = _C.ConvPlan(w, b, case.stride, case.padding, case.dilation, case.groups,
                       case.activation, ALPHA, variant=variant, algorithm=algorithm)
    assert plan.variant == variant
    used = plan.algorithm(x.shape[2:])
    want = expected_algorithm(case, variant, algorithm)
    if want == "winograd":
        assert used in ("winograd_f2", "winograd_f4"), (variant, algorithm, case, used)
    else:
        assert used == want, (variant, algorithm, case, used)
    return plan(x)


def run_reference_conv(case, x, w, b):
    return reference.conv(x, w, b, case.stride, case.padding, case.dilation, case.groups,
                          case.activation, ALPHA)


def check_native_conv(case, variant, seed=1, algorithms=ALGORITHMS):
    x, w, b = case.inputs(seed)
    expected = run_reference_conv(case, x, w, b)
    tol = conv_tolerance(x, w, b, case.stride, case.padding, case.dilation, case.groups)
    for algorithm in algorithms:
        assert_within(run_native_conv(case, x, w, b, variant, algorithm), expected, tol,
                      f"{variant} {algorithm} {case}")


# ---------------------------------------------------------------------------- variants

def test_some_variant_runs():
    assert VARIANT_NAMES, "no GEMM variant can run on this CPU"
    assert set(VARIANTS) | set(unrunnable("gemm")) == set(_C.variants("gemm"))
    assert any(info["isa"] == "ref" for info in VARIANTS.values())
    best = [n for n, i in VARIANTS.items() if i["isa"] == fastdl.isa()]
    if fastdl.backend() == "native":
        assert best, f"no variant for the active ISA {fastdl.isa()}"


@pytest.mark.parametrize("variant,case", VARIANT_CONV_PARAMS)
def test_variant_conv2d_matches_reference(variant, case):
    check_native_conv(case, variant)


@pytest.mark.parametrize("variant", VARIANT_PARAMS)
def test_variant_conv2d_cases_reach_every_algorithm(variant):
    """The generated cases cover im2col and, where the ISA has them, Winograd F(2,3) and
    F(4,3), the depthwise and the narrow kernels."""
    seen = set()
    for case in CONV_CASES:
        x, w, b = case.inputs()
        plan = _C.ConvPlan(w, b, case.stride, case.padding, case.dilation, case.groups,
                           case.activation, ALPHA, variant=variant)
        seen.add(plan.algorithm(case.size))
    want = {"im2col"}
    if VARIANTS[variant]["isa"] != "ref":
        want |= {"winograd_f2", "winograd_f4", "depthwise", "narrow"}
    assert seen == want


def test_unknown_algorithm_is_refused():
    with pytest.raises(ValueError, match="algorithm"):
        _C.ConvPlan(random_array((8, 8, 3, 3)), None, (1, 1), (1, 1, 1, 1), (1, 1), 1, None,
                      0.0, algorithm="fft")


@pytest.mark.parametrize("variant", VARIANT_PARAMS)
def test_variant_conv2d_plan_reused_on_several_sizes(variant):
    for cin in (3, 8):
        case = ConvCase(in_channels=cin, out_channels=10, activation="leaky_relu")
        _, w, b = case.inputs()
        for algorithm in ALGORITHMS:
            plan = _C.ConvPlan(w, b, case.stride, case.padding, case.dilation, case.groups,
                                 case.activation, ALPHA, variant=variant, algorithm=algorithm)
            for i, size in enumerate([(5, 5), (1, 1), (17, 3), (9, 12), (2, 2), (30, 31),
                                      (5, 5)]):
                sized = dataclasses.replace(case, size=size, batch=1 + i % 2)
                x = sized.inputs(seed=10 + i)[0]
                assert_within(plan(x), run_reference_conv(sized, x, w, b),
                              conv_tolerance(x, w, b, case.stride, case.padding, case.dilation,
                                             1), f"{variant} {algorithm} cin={cin} size={size}")


def gemm_shapes(info):
    mr, nr = info["mr"], info["nr"]
    shapes = {(1, 1, 1), (0, nr, 5), (mr, 0, 5), (mr, nr, 0), (0, 0, 0)}
    for m in (mr - 1, mr, mr + 1):
        for n in (nr - 1, nr, nr + 1):
            shapes.add((m, n, 7))
    for k in (KC - 1, KC, KC + 1, 2 * KC + 1):
        shapes.add((mr + 1, nr - 1, k))
    shapes.add((3 * mr + 2, 5 * nr + 3, 40))
    shapes.add((150, 2 * nr + 1, 33))  # more rows than the 144-row M block
    return sorted(s for s in shapes if min(s) >= 0)


GEMM_PARAMS = variant_params("gemm", lambda name, info: [
    pytest.param(name, m, n, k, id=f"{name.split('__')[-1]}-M{m}-N{n}-K{k}")
    for m, n, k in gemm_shapes(info)], fill=3)


@pytest.mark.parametrize("variant,m,n,k", GEMM_PARAMS)
def test_variant_matmul_matches_reference(variant, m, n, k):
    a, b = random_array((m, k), 1), random_array((k, n), 2)
    y = _C.matmul(a, b, variant=variant)
    assert_within(y, reference.matmul(a, b), gemm_tolerance(np.abs(a), np.abs(b), k),
                  f"{variant} matmul {m}x{n}x{k}")


@pytest.mark.parametrize("variant,m,n,k", [p for p in GEMM_PARAMS if p.marks or p.values[3] > 0])
def test_variant_linear_matches_reference(variant, m, n, k):
    x, w, b = random_array((m, k), 1), random_array((n, k), 2), random_array(n, 3)
    plan = _C.LinearPlan(w, b, None, ALPHA, variant=variant)
    assert plan.variant == variant
    tol = gemm_tolerance(np.abs(x), np.abs(w).T, k) + np.abs(b)
    assert_within(plan(x), reference.linear(x, w, b, None, ALPHA), tol,
                  f"{variant} linear {m}x{n}x{k}")


def test_linear_with_zero_in_features_gives_the_bias():
    """K = 0: y = act(b), as torch.nn.functional.linear. Run in a subprocess: LinearPlan
    with in_features 0 has crashed the interpreter (null B operand in the GEMM)."""
    proc = run_python("""
        import numpy as np
        from fastdl import _C, ops
        b = np.arange(16, dtype=np.float32) - 8
        for name, info in _C.variants("gemm").items():
            if info is None:
                continue
            y = _C.LinearPlan(np.zeros((16, 0), np.float32), b, "relu", 0.0, variant=name)(
                np.zeros((6, 0), np.float32))
            assert y.shape == (6, 16) and (y == np.maximum(b, 0)).all(), (name, y)
            y = _C.LinearPlan(np.zeros((16, 0), np.float32), None, None, 0.0, variant=name)(
                np.zeros((6, 0), np.float32))
            assert y.shape == (6, 16) and (y == 0).all(), (name, y)
        y = ops.linear(np.zeros((2, 3, 0), np.float32), np.zeros((16, 0), np.float32), b)
        assert y.shape == (2, 3, 16) and (y == b).all(), y
        y = ops.LinearPlan(np.zeros((4, 0), np.float32))(np.zeros((0,), np.float32))
        assert y.shape == (4,) and (y == 0).all(), y
        print("ok")
    """)
    how = (f"killed by {signal.Signals(-proc.returncode).name}" if proc.returncode < 0
           else f"exit {proc.returncode}")
    assert proc.returncode == 0 and "ok" in proc.stdout, (
        f"child {how}\n{proc.stdout}\n{proc.stderr[-3000:]}")


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("variant", VARIANT_PARAMS)
def test_variant_linear_activations(variant, activation):
    info = VARIANTS[variant]
    m, n, k = info["mr"] + 1, info["nr"] + 3, 17
    x, w = random_array((m, k), 1), random_array((n, k), 2)
    for b in (random_array(n, 3), None):
        plan = _C.LinearPlan(w, b, activation, ALPHA, variant=variant)
        tol = gemm_tolerance(np.abs(x), np.abs(w).T, k)
        assert_within(plan(x), reference.linear(x, w, b, activation, ALPHA), tol,
                      f"{variant} {activation} bias={b is not None}")
        # a plan is reusable with another row count
        x2 = random_array((2 * m + 3, k), 4)
        assert_within(plan(x2), reference.linear(x2, w, b, activation, ALPHA),
                      gemm_tolerance(np.abs(x2), np.abs(w).T, k), f"{variant} reuse")


def test_unknown_or_unsupported_variant_is_refused():
    w = random_array((4, 3, 3, 3))
    with pytest.raises(ValueError, match="variant"):
        _C.ConvPlan(w, None, (1, 1), (0, 0, 0, 0), (1, 1), 1, None, 0.0, variant="nope")
    with pytest.raises(ValueError, match="variant"):
        _C.matmul(random_array((2, 2)), random_array((2, 2)), variant="nope")
    for name, info in _C.variants("gemm").items():
        if info is None:
            with pytest.raises(ValueError, match="variant"):
                _C.LinearPlan(random_array((2, 2)), None, None, 0.0, variant=name)


# ---------------------------------------------------------------------------- threads

THREAD_CASES = [
    ConvCase(in_channels=16, out_channels=32, size=(30, 31), batch=1),          # Winograd
    ConvCase(in_channels=3, out_channels=24, size=(41, 40), stride=(2, 2)),     # im2col
    ConvCase(in_channels=32, out_channels=32, groups=32, size=(20, 21)),        # depthwise
    ConvCase(in_channels=64, out_channels=40, kernel=(1, 1), padding=(0, 0, 0, 0),
             size=(25, 23), batch=1),                                           # pointwise
]


@pytest.mark.parametrize("case", THREAD_CASES, ids=lambda c: c.label())
def test_one_and_two_threads_give_identical_conv2d(threads, case):
    """Bit-identical across thread counts, and right (a bug that is wrong the same way on
    every thread count would pass the first check alone)."""
    x, w, b = case.inputs()
    expected = run_reference_conv(case, x, w, b)
    tol = conv_tolerance(x, w, b, case.stride, case.padding, case.dilation, case.groups)
    results = {}
    for variant in VARIANT_NAMES:
        for n in (1, 2, 1):
            threads(n)
            assert fastdl.get_num_threads() == n
            for algorithm in ALGORITHMS:
                y = run_native_conv(case, x, w, b, variant, algorithm)
                if (variant, algorithm) not in results:
                    assert_within(y, expected, tol, f"{variant} {algorithm} {n} threads")
                first = results.setdefault((variant, algorithm), y)
                np.testing.assert_array_equal(y, first,
                                              err_msg=f"{variant} {algorithm}: {n} threads")
        threads(2)
        public = ops.conv2d(x, w, b, case.stride, ((case.padding[0], case.padding[1]),
                                                    (case.padding[2], case.padding[3])),
                            case.dilation, case.groups)
        threads(1)
        np.testing.assert_array_equal(
            public, ops.conv2d(x, w, b, case.stride, ((case.padding[0], case.padding[1]),
                                                      (case.padding[2], case.padding[3])),
                               case.dilation, case.groups))


def test_one_and_two_threads_give_identical_linear_and_matmul(threads):
    x, w, b = random_array((70, 300), 1), random_array((130, 300), 2), random_array(130, 3)
    a2 = random_array((300, 90), 4)
    for variant in VARIANT_NAMES:
        plan = _C.LinearPlan(w, b, "silu", ALPHA, variant=variant)
        out = {}
        for n in (1, 2):
            threads(n)
            out[n] = (plan(x), _C.matmul(x, a2, variant=variant))
        np.testing.assert_array_equal(out[1][0], out[2][0], err_msg=variant)
        np.testing.assert_array_equal(out[1][1], out[2][1], err_msg=variant)
        assert_within(out[1][0], reference.linear(x, w, b, "silu", ALPHA),
                      gemm_tolerance(np.abs(x), np.abs(w).T, 300), variant)
        assert_within(out[1][1], reference.matmul(x, a2),
                      gemm_tolerance(np.abs(x), np.abs(a2), 300), variant)


def test_plans_can_be_shared_between_python_threads(threads):
    """The GIL is released inside the kernels: several Python threads calling one plan
    (and the pool) at once get the serial results (Winograd forms are built lazily, once)."""
    import threading
    threads(2)
    plans = [_C.ConvPlan(random_array((16, 16, 3, 3), 1), None, (1, 1), (1, 1, 1, 1), (1, 1),
                           1, "relu", ALPHA),
             _C.ConvPlan(random_array((16, 1, 3, 3), 2), None, (2, 2), (1, 1, 1, 1), (1, 1),
                           16, None, ALPHA),
             _C.ConvPlan(random_array((24, 16, 5, 5), 3), None, (2, 2), (2, 2, 2, 2), (1, 1),
                           1, None, ALPHA)]
    linear = _C.LinearPlan(random_array((40, 300), 4), None, None, ALPHA)
    xs = [random_array((2, 16, 20 + i, 23 + i), 10 + i) for i in range(6)]
    # Expected values from fresh plans, so that the shared ones build their state under load.
    fresh = [_C.ConvPlan(random_array((16, 16, 3, 3), 1), None, (1, 1), (1, 1, 1, 1), (1, 1),
                           1, "relu", ALPHA),
             _C.ConvPlan(random_array((16, 1, 3, 3), 2), None, (2, 2), (1, 1, 1, 1), (1, 1),
                           16, None, ALPHA),
             _C.ConvPlan(random_array((24, 16, 5, 5), 3), None, (2, 2), (2, 2, 2, 2), (1, 1),
                           1, None, ALPHA)]
    want = [[p(x) for x in xs] for p in fresh]
    rows = [random_array((50 + i, 300), 20 + i) for i in range(len(xs))]
    want_linear = [linear(r) for r in rows]
    errors = []

    def worker(k):
        try:
            for rep in range(12):
                i = (k + rep) % len(xs)
                for p, expected in zip(plans, want):
                    if not np.array_equal(p(xs[i]), expected[i]):
                        errors.append(("conv", k, rep, i))
                if not np.array_equal(linear(rows[i]), want_linear[i]):
                    errors.append(("linear", k, rep, i))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    workers = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in workers), "deadlock"
    assert errors == []


# ---------------------------------------------------------------------------- property

@st.composite
def conv_shapes(draw):
    groups_kind = draw(st.sampled_from(["one", "two", "depthwise"]))
    per_group_in = draw(st.integers(1, 5))
    per_group_out = draw(st.integers(1, 5))
    groups = {"one": 1, "two": 2, "depthwise": draw(st.integers(1, 6))}[groups_kind]
    if groups_kind == "depthwise":
        per_group_in = 1
    if draw(st.booleans()):  # sometimes enough channels for Winograd
        per_group_in, per_group_out, groups = draw(st.integers(8, 12)), draw(st.integers(8, 12)), 1
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple(draw(st.integers(0, 3)) for _ in range(4))
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    h = draw(st.integers(max(1, span[0] - padding[0] - padding[1]), 14))
    w = draw(st.integers(max(1, span[1] - padding[2] - padding[3]), 14))
    return ConvCase(batch=draw(st.integers(0, 2)), in_channels=per_group_in * groups,
                    out_channels=per_group_out * groups, size=(h, w), kernel=kernel,
                    stride=stride, padding=padding, dilation=dilation, groups=groups,
                    activation=draw(st.sampled_from(ACTIVATIONS)), bias=draw(st.booleans()))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(case=conv_shapes(), variant=st.sampled_from(VARIANT_NAMES), seed=st.integers(0, 1000))
def test_property_random_conv_matches_reference(case, variant, seed):
    check_native_conv(case, variant, seed)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(case=conv_shapes())
def test_property_public_conv2d_matches_reference(case):
    x, w, b = case.inputs()
    top, bottom, left, right = case.padding
    y = ops.conv2d(x, w, b, case.stride, ((top, bottom), (left, right)), case.dilation,
                   case.groups, case.activation, negative_slope=ALPHA)
    assert_within(y, run_reference_conv(case, x, w, b),
                  conv_tolerance(x, w, b, case.stride, case.padding, case.dilation, case.groups),
                  str(case))


# ---------------------------------------------------------------------------- vs PyTorch

TORCH_FACTOR = 3e-5  # tolerance factor against PyTorch (see conv_tolerance)

def torch_conv(torch, x, w, b, stride, padding, dilation, groups, activation=None,
               slope=ALPHA):
    """padding: an int/pair/'same'/'valid' passed to torch, or (top, bottom, left, right)."""
    t = torch.from_numpy(x)
    if isinstance(padding, tuple) and len(padding) == 4:
        top, bottom, left, right = padding
        t = torch.nn.functional.pad(t, (left, right, top, bottom))
        padding = 0
    y = torch.nn.functional.conv2d(t, torch.from_numpy(w),
                                   None if b is None else torch.from_numpy(b), stride, padding,
                                   dilation, groups)
    return torch_activation(torch, y, activation, slope).numpy()


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("kernel,dilation", [((2, 2), 1), ((4, 4), 1), ((2, 3), 1), ((4, 1), 1),
                                             ((3, 3), 1), ((2, 2), 2), ((4, 3), (1, 2))])
@pytest.mark.parametrize("channels", [3, 8])
def test_same_padding_matches_torch(torch, kernel, dilation, channels):
    x = random_array((2, channels, 9, 10), 1)
    w = random_array((channels, channels, *kernel), 2)
    b = random_array(channels, 3)
    y = ops.conv2d(x, w, b, padding="same", dilation=dilation)
    expected = torch_conv(torch, x, w, b, 1, "same", dilation, 1)
    assert y.shape == x.shape
    d2 = dilation if isinstance(dilation, tuple) else (dilation, dilation)
    tol = conv_tolerance(x, w, b, (1, 1), same_padding(kernel, d2), d2, 1, factor=TORCH_FACTOR)
    assert_within(y, expected, tol, f"same {kernel} {dilation}")
    plan = ops.Conv2dPlan(w, b, padding="SAME", dilation=dilation)
    np.testing.assert_array_equal(plan(x), y)


@pytest.mark.parametrize("padding", [((0, 1), (1, 0)), ((2, 0), (0, 3)), ((1, 1), (0, 2)),
                                     ((3, 3), (3, 3)), ((0, 0), (2, 1))])
@pytest.mark.parametrize("stride,channels", [(1, 3), (2, 3), (1, 8)])
def test_asymmetric_padding_matches_torch(torch, padding, stride, channels):
    x = random_array((2, channels, 8, 9), 1)
    w = random_array((5 if channels == 3 else 8, channels, 3, 3), 2)
    b = random_array(w.shape[0], 3)
    quad = padding[0] + padding[1]
    y = ops.conv2d(x, w, b, stride, padding, activation="tanh")
    expected = torch_conv(torch, x, w, b, stride, quad, 1, 1, "tanh")
    tol = conv_tolerance(x, w, b, (stride,) * 2, quad, (1, 1), 1, factor=TORCH_FACTOR)
    assert_within(y, expected, tol, str(padding))


@pytest.mark.parametrize("kwargs", [
    dict(stride=1, padding=1), dict(stride=2, padding=0), dict(stride=3, padding=(1, 2)),
    dict(stride=(1, 2), padding=(2, 0), dilation=2), dict(groups=3, padding=1),
    dict(groups=2, stride=2, padding="valid"), dict(padding=3, dilation=(2, 3)),
], ids=str)
@pytest.mark.parametrize("kernel", [1, 3, 5, 7])
def test_public_conv2d_matches_torch(torch, kernel, kwargs):
    groups = kwargs.get("groups", 1)
    cin, cout = 6, 6 if groups == 3 else 8
    x = random_array((2, cin, 13, 12), 1)
    w = random_array((cout, cin // groups, kernel, kernel), 2)
    b = random_array(cout, 3)
    try:
        expected = torch_conv(torch, x, w, b, kwargs.get("stride", 1), kwargs.get("padding", 0),
                              kwargs.get("dilation", 1), groups)
    except RuntimeError:  # the kernel does not fit: fastdl must refuse too
        with pytest.raises(ValueError):
            ops.conv2d(x, w, b, **kwargs)
        return
    y = ops.conv2d(x, w, b, **kwargs)
    assert_within(y, expected, 1e-5 + 1e-5 * kernel * kernel * cin * 3, str(kwargs))


@pytest.mark.parametrize("activation", ACTIVATIONS + ["linear", "swish", "ReLU", "SiLU"])
def test_public_conv2d_activations_match_torch(torch, activation):
    x = random_array((1, 8, 7, 6), 1) * 3  # wide range: sigmoid/tanh saturate, relu6 clips
    w = random_array((9, 8, 3, 3), 2)
    b = random_array(9, 3)
    slope = 0.3
    y = ops.conv2d(x, w, b, padding=1, activation=activation, negative_slope=slope)
    expected = torch_conv(torch, x, w, b, 1, 1, 1, 1, activation and activation.lower(), slope)
    tol = conv_tolerance(x, w, b, (1, 1), (1,) * 4, (1, 1), 1, factor=TORCH_FACTOR)
    assert_within(y, expected, tol, activation)


def test_public_conv2d_default_leaky_relu_slope_is_torchs(torch):
    x, w = random_array((1, 2, 5, 5), 1), random_array((3, 2, 3, 3), 2)
    y = ops.conv2d(x, w, activation="leaky_relu")
    expected = torch_conv(torch, x, w, None, 1, 0, 1, 1, "leaky_relu", 0.01)
    assert (expected < 0).any()
    assert_within(y, expected,
                  conv_tolerance(x, w, None, (1, 1), (0,) * 4, (1, 1), 1, factor=TORCH_FACTOR))


def test_public_conv2d_plan_reused_on_several_sizes(torch):
    w, b = random_array((8, 8, 3, 3), 1), random_array(8, 2)
    plan = ops.Conv2dPlan(w, b, padding=1, activation="relu")
    for i, (n, h, wd) in enumerate([(1, 5, 5), (2, 12, 7), (0, 4, 4), (3, 1, 1), (1, 16, 16)]):
        x = random_array((n, 8, h, wd), 10 + i)
        y = plan(x)
        assert y.shape == plan.output_shape(x.shape) == (n, 8, h, wd)
        tol = conv_tolerance(x, w, b, (1, 1), (1,) * 4, (1, 1), 1, factor=TORCH_FACTOR)
        assert_within(y, torch_conv(torch, x, w, b, 1, 1, 1, 1, "relu"), tol, f"size {(n, h, wd)}")


@pytest.mark.parametrize("kernel,dilation,padding,stride", [
    ((3, 3), 1, 1, 1), ((2, 3), (1, 2), (0, 1), (2, 1)), ((1, 1), 1, 0, 1),
    ((3, 2), 2, 2, 3), ((5, 5), 1, 0, 1), ((4, 4), 1, (1, 2), 2),
])
@pytest.mark.parametrize("batched", [True, False])
def test_im2col_col2im_match_torch_unfold_fold(torch, kernel, dilation, padding, stride, batched):
    F = torch.nn.functional
    x = random_array((2, 3, 9, 8), 1)
    cols = ops.im2col(x if batched else x[0], kernel, dilation, padding, stride)
    expected = F.unfold(torch.from_numpy(x), kernel, dilation, padding, stride).numpy()
    np.testing.assert_array_equal(cols, expected if batched else expected[0])
    c = random_array(expected.shape, 2)
    y = ops.col2im(c if batched else c[0], (9, 8), kernel, dilation, padding, stride)
    folded = F.fold(torch.from_numpy(c), (9, 8), kernel, dilation, padding, stride).numpy()
    assert_within(y, folded if batched else folded[0], 1e-5 * np.prod(kernel), "fold")


def test_im2col_col2im_asymmetric_padding_matches_padded_torch(torch):
    F = torch.nn.functional
    x = random_array((1, 2, 6, 7), 1)
    padding = ((0, 2), (1, 0))
    cols = ops.im2col(x, (3, 3), 1, padding, 1)
    expected = F.unfold(F.pad(torch.from_numpy(x), (1, 0, 0, 2)), (3, 3)).numpy()
    np.testing.assert_array_equal(cols, expected)
    c = random_array(expected.shape, 2)
    y = ops.col2im(c, (6, 7), (3, 3), 1, padding, 1)
    folded = F.fold(torch.from_numpy(c), (8, 8), (3, 3)).numpy()[:, :, 0:6, 1:8]
    assert_within(y, folded, 1e-4, "fold asymmetric")


@pytest.mark.parametrize("shape", [(7,), (5, 7), (2, 3, 7), (0, 7), (2, 0, 7)], ids=str)
@pytest.mark.parametrize("activation", ACTIVATIONS + ["linear", "swish"])
def test_public_linear_matches_torch(torch, shape, activation):
    x, w, b = random_array(shape, 1) * 2, random_array((17, 7), 2), random_array(17, 3)
    y = ops.linear(x, w, b, activation, negative_slope=0.2)
    expected = torch_activation(torch, torch.nn.functional.linear(
        *map(torch.from_numpy, (x, w, b))), activation, 0.2).numpy()
    assert y.shape == shape[:-1] + (17,)
    assert_within(y, expected, 1e-5 * 7 * 4, f"{shape} {activation}")
    plan = ops.LinearPlan(w, None, activation, negative_slope=0.2)
    expected = torch_activation(torch, torch.nn.functional.linear(
        torch.from_numpy(x), torch.from_numpy(w)), activation, 0.2).numpy()
    assert_within(plan(x), expected, 1e-5 * 7 * 4, f"plan {shape} {activation}")


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (5, 17, 7), (7, 33, 257), (0, 3, 4), (3, 4, 0),
                                   (64, 65, 255)])
def test_public_matmul_matches_torch(torch, m, n, k):
    a, b = random_array((m, k), 1), random_array((k, n), 2)
    expected = torch.from_numpy(a).matmul(torch.from_numpy(b)).numpy()
    assert_within(ops.matmul(a, b), expected, gemm_tolerance(np.abs(a), np.abs(b), k))


def test_conv2d_accepts_unbatched_input_like_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 9, 8), dtype=np.float32)
    w = rng.standard_normal((5, 3, 3, 3), dtype=np.float32)
    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1)
    got = ops.conv2d(x, w, padding=1)
    assert got.shape == (5, 9, 8)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)
