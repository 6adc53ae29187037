"""The backend contract (fastdl/_contract.py) and the one copy of the kernels: every backend
provides all of the contract with the reference's signatures; fastdl.ops never asks which
backend runs; production code never imports the NumPy oracle; every op answers
fastdl._C.variants(op); the Cython modules run fastdl._C's kernels (capping the ISA at run
time changes what every module runs)."""
import importlib
import inspect
import pathlib
import re

import numpy as np
import pytest

import fastdl
from fastdl import _contract
from native_variants import variant_params

ROOT = pathlib.Path(fastdl.__file__).resolve().parent
MODULES = {"native": "fastdl._native", "numba": "fastdl._numba", "numpy": "fastdl._reference"}


def _load(name):
    try:
        return importlib.import_module(MODULES[name])
    except ImportError as exc:
        pytest.skip(f"the {name} backend does not load here: {exc}")


@pytest.mark.parametrize("name", MODULES)
def test_every_backend_provides_the_whole_contract(name):
    module = _load(name)
    assert _contract.missing(module) == []


@pytest.mark.parametrize("name", ["native", "numba"])
def test_python_functions_have_the_reference_signatures(name):
    module, reference = _load(name), _load("numpy")
    for fn in _contract.FUNCTIONS:
        mine, ref = getattr(module, fn), getattr(reference, fn)
        try:
            got = list(inspect.signature(mine).parameters)
        except (TypeError, ValueError):  # a compiled function: no Python signature
            continue
        assert got == list(inspect.signature(ref).parameters), f"{name}.{fn}"


def test_the_contract_names_exactly_what_ops_calls():
    """Every `kernels.<name>` used by fastdl.ops (and fastdl.optimizers) is in the contract,
    and every name in the contract is used somewhere (by them or fastdl._threads /
    _backend)."""
    used = set()
    users = list((ROOT / "ops").glob("*.py")) + list((ROOT / "optimizers").glob("*.py"))
    for path in users + [ROOT / "_threads.py", ROOT / "_backend.py"]:
        used |= set(re.findall(r"\bkernels\.(\w+)", path.read_text()))
    assert used <= set(_contract.NAMES), used - set(_contract.NAMES)
    assert set(_contract.NAMES) - used <= {"conv", "conv_transpose", "linear", "rnn_layer"}, (
        "functional kernels only the Python backends' plans call")


def test_ops_never_branch_on_the_backend_name_nor_import_the_oracle():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        text = path.read_text()
        if rel.parts[0] == "_reference":
            continue
        imports = re.findall(r"^\s*(?:from|import)\s+([\w.]+)(?:\s+import\s+([\w, ]+))?", text,
                             flags=re.M)
        for module, names in imports:
            oracle = "_reference" in module or "_reference" in names
            # The backend selection loads it as the numpy backend by name, never imports it.
            assert not oracle, f"{rel} imports the NumPy oracle fastdl._reference"
        if rel.parts[0] == "ops":
            assert "backend()" not in text and "hasattr(kernels" not in text, rel


def test_every_op_answers_variants_with_the_reference_last():
    _C = pytest.importorskip("fastdl._C")
    ops = set(_C.variant_ops())
    assert ops == {"activation", "batchnorm", "col2im", "conv", "depthwise",
                   "depthwise_backward", "embedding_backward", "gemm", "implicit_gemm",
                   "narrow", "optimizer", "peak", "pool", "rnn", "shifted_dots", "winograd"}
    for op in ops:
        table = _C.variants(op)
        names = list(table)
        assert names and all(n.startswith("fdl_f32_") for n in names), (op, names)
        assert table[names[-1]] == {"isa": "ref", **{k: v for k, v in table[names[-1]].items()
                                                     if k != "isa"}}, (op, names[-1])
    with pytest.raises(ValueError, match="^op: expected one of"):
        _C.variants("fft")


def test_capping_the_isa_at_run_time_changes_what_every_module_runs():
    """One copy of the kernels' state: the Cython modules call fastdl._C's kernels through
    its capsule, so a cap set through fastdl._C is the cap they run under; and their
    results follow it (the loss's log-softmax is the one fastdl._C runs)."""
    _C = pytest.importorskip("fastdl._C")
    from fastdl import _im2col, _losses
    from fastdl import ops
    start = _C.isa()
    logits = np.random.default_rng(0).standard_normal((64, 1000)).astype(np.float32) * 30
    target = np.arange(64) % 1000
    try:
        for isa in [start, "ref"] + [i for i in ("avx2", "neon") if _C.cpu_supports(i)]:
            _C.set_isa(isa)
            assert _C.isa() == _im2col.isa() == _losses.isa() == isa
            log_p = _C.softmax(logits[:, :, None], 1.0, True)[:, :, 0]
            loss = ops.cross_entropy(logits, target, reduction="none")
            np.testing.assert_array_equal(loss, -log_p[np.arange(64), target])
    finally:
        _C.set_isa(start)
    assert _im2col.isa() == _losses.isa() == start


def test_cython_modules_link_no_kernels():
    """Only fastdl._C holds the kernels: the Cython modules define none of fdl's functions
    (they would be a second copy of the ISA state and thread pool)."""
    pytest.importorskip("fastdl._C")
    from fastdl import _im2col, _losses
    for module in (_im2col, _losses):
        data = pathlib.Path(module.__file__).read_bytes()
        # fdl::active_isa() (mangled) and the GEMM microkernels: defined in fastdl._C only.
        assert b"_ZN3fdl10active_isaEv" not in data, module.__name__
        assert b"fdl_f32_gemm__" not in data, module.__name__


@pytest.mark.parametrize("name", variant_params("batchnorm"))
def test_batchnorm_variants_match_the_reference(name):
    """Every batch-norm variant through the binding's variant argument, on lengths 1 to 3x
    the widest vector and a long one (the vector loop and the tail meet)."""
    _C = pytest.importorskip("fastdl._C")
    from fastdl import _reference as reference
    rng = np.random.default_rng(1)
    for spatial in list(range(1, 50)) + [1000]:
        x = rng.standard_normal((2, 3, spatial)).astype(np.float32)
        scale, shift = (rng.standard_normal(3).astype(np.float32) for _ in range(2))
        got = _C.batch_norm_apply(x, scale, shift, "silu", 0.0, variant=name)
        want = reference.batch_norm_apply(x, scale, shift, "silu", 0.0)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=name)


def _gemm_of(isa):
    """The GEMM variant of an ISA: a convolution plan runs its GEMM's ISA's kernels."""
    from fastdl import _C
    return next(n for n, i in _C.variants("gemm").items() if i and i["isa"] == isa)


@pytest.mark.parametrize("name", variant_params("depthwise"))
def test_each_depthwise_variant_matches_the_reference(name):
    _C = pytest.importorskip("fastdl._C")
    from fastdl import _reference as reference
    isa = _C.variants("depthwise")[name]["isa"]
    rng = np.random.default_rng(2)
    for k, stride, width in [(3, 1, 1), (3, 1, 17), (3, 2, 33), (5, 1, 16), (5, 2, 9),
                             (4, 1, 40), (3, 3, 23)]:
        x = rng.standard_normal((2, 6, 7, width)).astype(np.float32)
        w = rng.standard_normal((6, 1, k, k)).astype(np.float32)
        pad = (k // 2, k // 2, 1, k // 2)  # odd left padding on the narrow ones
        plan = _C.ConvPlan(w, None, (stride, stride), pad, (1, 1), 6, "relu6", 0.0,
                           variant=_gemm_of(isa), algorithm="depthwise")
        assert plan.kernels["depthwise"] == name
        want = reference.conv(x, w, None, (stride, stride), pad, (1, 1), 6, "relu6", 0.0)
        np.testing.assert_allclose(plan(x), want, rtol=1e-5, atol=1e-5, err_msg=f"{name} {k}")


@pytest.mark.parametrize("name", variant_params("narrow"))
def test_each_narrow_variant_matches_the_reference(name):
    """Every narrow-convolution variant: widths around its vector steps, stride 1 and 2,
    asymmetric padding, output channels that fill a block and ones that do not."""
    _C = pytest.importorskip("fastdl._C")
    from fastdl import _reference as reference
    isa = _C.variants("narrow")[name]["isa"]
    rng = np.random.default_rng(4)
    # Output widths on and around every variant's row step (8 and 32): 7-9, 31-33, 63-65.
    for cin, cout, k, stride, width in [(3, 16, 2, 1, 32), (1, 5, 3, 2, 47), (4, 9, 7, 2, 33),
                                        (3, 8, 3, 1, 1), (2, 17, 5, 1, 96), (3, 32, 3, 2, 224),
                                        (3, 8, 3, 1, 7), (3, 8, 3, 1, 9), (2, 8, 3, 1, 31),
                                        (2, 8, 3, 1, 33), (3, 16, 3, 2, 125),
                                        (3, 16, 3, 2, 127), (3, 16, 3, 2, 129)]:
        x = rng.standard_normal((2, cin, 5, width)).astype(np.float32)
        w = rng.standard_normal((cout, cin, k, k)).astype(np.float32)
        b = rng.standard_normal(cout).astype(np.float32)
        pad = (k // 2, (k - 1) // 2, (k - 1) // 2, k // 2)
        plan = _C.ConvPlan(w, b, (stride, stride), pad, (1, 1), 1, "relu6", 0.0,
                           variant=_gemm_of(isa), algorithm="narrow")
        assert plan.kernels["narrow"] == name and plan.algorithm(x.shape[2:]) == "narrow"
        want = reference.conv(x, w, b, (stride, stride), pad, (1, 1), 1, "relu6", 0.0)
        np.testing.assert_allclose(plan(x), want, rtol=1e-5, atol=1e-5,
                                   err_msg=f"{name} {cin}->{cout} k{k} s{stride} w{width}")


@pytest.mark.parametrize("name", variant_params("implicit_gemm"))
def test_each_implicit_gemm_variant_matches_the_reference(name):
    """A plan on an x86 GEMM runs its ISA's implicit GEMM for stride-1 layers whose output
    rows are 3/4 to all of the input's width: k2 'same' (the seed CIFAR CNN), 1-D dilated,
    'valid' ones, rows narrower than a vector, output channels around the A panels,
    groups. The reference variant is the C++ tests' specification: the reference GEMM's
    plans never run it."""
    _C = pytest.importorskip("fastdl._C")
    from fastdl import _reference as reference
    isa = _C.variants("implicit_gemm")[name]["isa"]
    rng = np.random.default_rng(5)
    for cin, cout, size, k, dilation, pad, groups in [
            (16, 32, (16, 16), (2, 2), (1, 1), (0, 1, 0, 1), 1),
            (32, 64, (8, 8), (2, 2), (1, 1), (0, 1, 0, 1), 1),
            (6, 13, (1, 70), (1, 3), (1, 4), (0, 0, 4, 4), 1),
            (4, 7, (9, 3), (3, 3), (2, 1), (2, 2, 1, 1), 1),
            (6, 21, (5, 21), (2, 5), (1, 1), (1, 0, 2, 2), 3),
            (32, 64, (1, 62), (1, 3), (1, 1), (0, 0, 0, 0), 1),
            (5, 9, (11, 14), (3, 3), (1, 1), (0, 0, 0, 0), 1)]:
        x = rng.standard_normal((3, cin) + size).astype(np.float32)
        w = rng.standard_normal((cout, cin // groups) + k).astype(np.float32)
        b = rng.standard_normal(cout).astype(np.float32)
        plan = _C.ConvPlan(w, b, (1, 1), pad, dilation, groups, "relu", 0.0,
                           variant=_gemm_of(isa), algorithm="im2col")
        assert plan.kernels["implicit_gemm"] == (None if isa == "ref" else name)
        want = reference.conv(x, w, b, (1, 1), pad, dilation, groups, "relu", 0.0)
        np.testing.assert_allclose(plan(x), want, rtol=1e-4, atol=1e-4,
                                   err_msg=f"{name} {cin}->{cout} {size} k{k} d{dilation}")


@pytest.mark.parametrize("name", variant_params("winograd"))
def test_each_winograd_variant_matches_the_reference(name):
    _C = pytest.importorskip("fastdl._C")
    from fastdl import _reference as reference
    isa = _C.variants("winograd")[name]["isa"]
    rng = np.random.default_rng(3)
    for size in [(16, 16), (40, 40), (13, 64)]:
        x = rng.standard_normal((1, 8) + size).astype(np.float32)
        w = rng.standard_normal((12, 8, 3, 3)).astype(np.float32)
        want = reference.conv(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, 0.0)
        for algorithm in ("winograd_f2", "winograd_f4"):
            plan = _C.ConvPlan(w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, 0.0,
                               variant=_gemm_of(isa), algorithm=algorithm)
            assert plan.kernels["winograd"] == name and plan.algorithm(size) == algorithm
            np.testing.assert_allclose(plan(x), want, rtol=1e-4, atol=1e-4,
                                       err_msg=f"{name} {algorithm} {size}")


@pytest.mark.parametrize("name", variant_params("peak"))
def test_each_peak_variant_measures_a_positive_rate(name):
    _C = pytest.importorskip("fastdl._C")
    assert _C.fma_peak_gflops(0.01, variant=name) > 0.0
    with pytest.raises(ValueError, match="^variant:"):
        _C.fma_peak_gflops(0.01, variant="fdl_f32_peak__nope")
