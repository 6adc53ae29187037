"""Environment variables that select what runs (FASTDL_ISA, FASTDL_BACKEND,
FASTDL_NUM_THREADS), the fallback when the native backend cannot load, and fork().

Each case runs in a fresh interpreter (sys.executable -c ...): the variables are read once,
at import. The child scripts check their own results against the NumPy reference and print
one JSON line; the test checks that line and the exit code.
"""
import os
import textwrap

import pytest

from child_process import expect_ok, run_script
SELECTION_VARS = ("FASTDL_ISA", "FASTDL_BACKEND", "FASTDL_NUM_THREADS")

# Shared by the child scripts: runs conv2d (Winograd-shaped and im2col-shaped) and linear
# through fastdl.ops and compares them with the reference; defines `report(**fields)`.
PRELUDE = """
import json, os, sys, warnings
import numpy as np

def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)

def check_results():
    import fastdl
    from fastdl import _reference as ref
    worst = 0.0
    for cin, stride, groups in ((8, 1, 1), (3, 2, 1), (4, 1, 2)):
        x, w = _rand(2, cin, 11, 9, seed=1), _rand(8, cin // groups, 3, 3, seed=2)
        b = _rand(8, seed=3)
        y = fastdl.ops.conv2d(x, w, b, stride, 1, 1, groups, "relu")
        want = ref.conv(x, w, b, (stride, stride), (1, 1, 1, 1), (1, 1), groups, "relu", 0.01)
        assert y.dtype == np.float32 and y.shape == want.shape, (y.shape, want.shape)
        worst = max(worst, float(np.abs(y - want).max()))
    x, w, b = _rand(5, 3, 40, seed=4), _rand(17, 40, seed=5), _rand(17, seed=6)
    y = fastdl.ops.linear(x, w, b, "tanh")
    want = ref.linear(x.reshape(15, 40), w, b, "tanh", 0.01).reshape(5, 3, 17)
    worst = max(worst, float(np.abs(y - want).max()))
    assert worst < 1e-4, worst
    return worst

"""


def run_child(code, env=None, timeout=180):
    """PRELUDE + code with a clean selection environment plus `env`."""
    return run_script(PRELUDE + textwrap.dedent(code), env, SELECTION_VARS, timeout)


@pytest.fixture(scope="module")
def native():
    """What the native extension says about this CPU (skips without it)."""
    proc, result = run_child("""
        from fastdl import _C
        report(avx2=_C.cpu_supports("avx2"), avx512=_C.cpu_supports("avx512"),
               default_isa=_C.isa(), cap_error=_C.isa_cap_error(),
               variants=_C.variants("gemm"))
    """)
    if proc.returncode != 0:
        pytest.skip(f"the native extension does not load: {proc.stderr[-500:]}")
    return result


ISA_SCRIPT = """
    import fastdl
    from fastdl import _C
    worst = check_results()
    plan = _C.ConvPlan(_rand(8, 8, 3, 3), None, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, 0.0)
    lin = _C.LinearPlan(_rand(4, 3), None, None, 0.0)
    report(backend=fastdl.backend(), isa=fastdl.isa(), c_isa=_C.isa(),
           cap_error=_C.isa_cap_error(), conv_variant=plan.variant, linear_variant=lin.variant,
           conv_algorithm=plan.algorithm((16, 16)), worst=worst)
"""


def test_default_isa_is_the_best_the_cpu_has(native):
    result = expect_ok(*run_child(ISA_SCRIPT))
    best = "avx512" if native["avx512"] else "avx2" if native["avx2"] else None
    if best:  # x86-64
        assert result["isa"] == best
    assert result["cap_error"] is None
    assert result["backend"] == "native"


@pytest.mark.parametrize("value", ["ref", "scalar"])
def test_fastdl_isa_ref_selects_the_scalar_kernels(native, value):
    result = expect_ok(*run_child(ISA_SCRIPT, {"FASTDL_ISA": value}))
    assert result["isa"] == "ref" and result["c_isa"] == "ref"
    assert result["cap_error"] is None
    assert "ref" in result["conv_variant"] and "ref" in result["linear_variant"]
    assert result["conv_algorithm"] == "im2col"  # no Winograd transforms for ref
    assert result["worst"] < 1e-4


def test_fastdl_isa_avx2(native):
    if not native["avx2"]:
        pytest.skip("this CPU lacks AVX2")
    result = expect_ok(*run_child(ISA_SCRIPT, {"FASTDL_ISA": "avx2"}))
    assert result["isa"] == "avx2" and result["cap_error"] is None
    assert "avx2" in result["conv_variant"] and "avx2" in result["linear_variant"]
    assert result["conv_algorithm"].startswith("winograd")


def test_fastdl_isa_above_the_cpu_is_capped_to_what_it_has(native):
    """FASTDL_ISA is a cap: asking for avx512 on an AVX2-only CPU runs AVX2."""
    result = expect_ok(*run_child(ISA_SCRIPT, {"FASTDL_ISA": "avx512"}))
    want = "avx512" if native["avx512"] else "avx2" if native["avx2"] else "ref"
    if native["avx2"] or native["avx512"]:
        assert result["isa"] == want
    assert result["cap_error"] is None


@pytest.mark.parametrize("value", ["bogus", "avx3", "AVX 2"])
def test_fastdl_isa_bogus_falls_back_and_says_why(native, value):
    result = expect_ok(*run_child(ISA_SCRIPT, {"FASTDL_ISA": value}))
    assert result["isa"] == native["default_isa"]
    error = result["cap_error"]
    assert error and value in error, error
    for name in ("ref", "avx2", "avx512"):
        assert name in error, error
    assert result["worst"] < 1e-4


BACKEND_SCRIPT = """
    import fastdl
    worst = check_results()
    fastdl.set_num_threads(3)
    report(backend=fastdl.backend(), isa=fastdl.isa(), threads=fastdl.get_num_threads(),
           kernels=fastdl._backend.kernels.__name__, worst=worst)
"""


@pytest.mark.parametrize("name,module", [("numba", "fastdl._numba"),
                                         ("numpy", "fastdl._reference"),
                                         ("native", "fastdl._native")])
def test_fastdl_backend_selects_the_backend(name, module):
    if name == "numba":
        pytest.importorskip("numba")
    proc, result = run_child(BACKEND_SCRIPT, {"FASTDL_BACKEND": name})
    if name == "native" and proc.returncode != 0 and "fastdl._C" in proc.stderr:
        pytest.skip("the native extension is not built")
    result = expect_ok(proc, result)
    assert result["backend"] == name and result["kernels"] == module
    if name != "native":
        assert result["isa"] == name  # documented: the backend's name off the native path
    assert result["threads"] == 3
    assert result["worst"] < 1e-4


def test_fastdl_backend_is_case_and_space_insensitive():
    result = expect_ok(*run_child(BACKEND_SCRIPT, {"FASTDL_BACKEND": " NumPy "}))
    assert result["backend"] == "numpy"


def test_fastdl_backend_bogus_fails_with_a_clear_error():
    proc, result = run_child("import fastdl\nreport(backend=fastdl.backend())",
                             {"FASTDL_BACKEND": "bogus"})
    assert proc.returncode != 0 and result is None
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError: FASTDL_BACKEND"), proc.stderr[-2000:]
    for word in ("'bogus'", "native", "numba", "numpy"):
        assert word in last, last


# FASTDL_NUM_THREADS as the native pool reads it (strtol over the whole string, 1..1024);
# None: invalid, so the count is the CPUs this process may use.
NUM_THREADS_VALUES = [("1", 1), ("3", 3), (" +1", 1), ("0", None), ("-4", None), ("two", None),
                      ("3 ", None), ("1025", None)]


@pytest.mark.parametrize("value,expected", NUM_THREADS_VALUES)
def test_fastdl_num_threads(native, value, expected):
    proc, result = run_child("""
        import fastdl
        worst = check_results()
        report(threads=fastdl.get_num_threads(), cpus=len(os.sched_getaffinity(0)), worst=worst)
    """, {"FASTDL_NUM_THREADS": value})
    result = expect_ok(proc, result)
    # invalid values fall back to the CPUs this process may use
    assert result["threads"] == (expected if expected is not None else result["cpus"])


@pytest.mark.parametrize("backend,value,expected",
                         [("numpy", *case) for case in NUM_THREADS_VALUES]
                         + [("numba", "1", 1), ("numba", "abc", None)])
def test_fastdl_num_threads_on_the_python_backends(backend, value, expected):
    """The Numba and NumPy backends report FASTDL_NUM_THREADS as the native one does (the
    count is only recorded there), until set_num_threads changes it."""
    if backend == "numba":
        pytest.importorskip("numba")
    proc, result = run_child("""
        import fastdl
        first = fastdl.get_num_threads()
        fastdl.set_num_threads(5)
        report(backend=fastdl.backend(), threads=first, after=fastdl.get_num_threads(),
               cpus=len(os.sched_getaffinity(0)))
    """, {"FASTDL_BACKEND": backend, "FASTDL_NUM_THREADS": value})
    result = expect_ok(proc, result)
    assert result["backend"] == backend
    assert result["threads"] == (expected if expected is not None else result["cpus"])
    assert result["after"] == 5


def test_fastdl_losses_is_reachable_after_import_fastdl():
    proc, result = run_child("""
        import fastdl
        loss = fastdl.losses.mean_squared_error([[1.0, 2.0]], [[1.0, 4.0]])
        report(loss=loss.tolist(), listed="losses" in fastdl.__all__)
    """)
    assert expect_ok(proc, result) == {"loss": [2.0], "listed": True}


FORK_SCRIPT = """
    import signal
    import fastdl
    from fastdl import ops
    fastdl.set_num_threads(2)
    x, w, b = _rand(2, 16, 40, 41, seed=1), _rand(32, 16, 3, 3, seed=2), _rand(32, seed=3)
    x3, w3 = _rand(2, 3, 60, 50, seed=4), _rand(24, 3, 5, 5, seed=5)
    xl, wl = _rand(300, 200, seed=6), _rand(150, 200, seed=7)
    def run():
        return (ops.conv2d(x, w, b, padding=1, activation="relu"),   # Winograd
                ops.conv2d(x3, w3, None, stride=2, padding=2),         # im2col
                ops.linear(xl, wl))
    parent = run()
    check_results()
    # The parent's results are right (the child's are compared with them, bit for bit).
    from fastdl import _reference as ref
    want = (ref.conv(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1, "relu", 0.0),
            ref.conv(x3, w3, None, (2, 2), (2, 2, 2, 2), (1, 1), 1, None, 0.0),
            ref.linear(xl, wl, None, None, 0.0))
    for got, ref_y in zip(parent, want):
        assert np.abs(got - ref_y).max() <= 1e-4 * (1 + np.abs(ref_y).max()), "parent result"
    pid = os.fork()
    if pid == 0:
        signal.alarm(60)  # a deadlocked pool ends the child instead of hanging the test
        code = 0
        try:
            child = run()
            if not all(np.array_equal(p, c) for p, c in zip(parent, child)):
                code = 3
            check_results()
            fastdl.set_num_threads(3)
            if fastdl.get_num_threads() != 3:
                code = 4
            if not all(np.array_equal(p, c) for p, c in zip(parent, run())):
                code = 5
        except BaseException as exc:
            print("child failed:", repr(exc), file=sys.stderr)
            code = 6
        sys.stdout.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    again = run()  # the parent's pool still works after the fork
    report(child_exit=os.waitstatus_to_exitcode(status), backend=fastdl.backend(),
           parent_same=all(np.array_equal(p, a) for p, a in zip(parent, again)))
"""


@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_fastdl_works_in_a_forked_child(native, backend):
    result = expect_ok(*run_child(FORK_SCRIPT, {"FASTDL_BACKEND": backend}))
    assert result["backend"] == backend
    assert result["child_exit"] == 0, ("3: different result in the child, 4: set_num_threads, "
                                       "5: second run, 6: exception, -14: SIGALRM (deadlock)")
    assert result["parent_same"]


# A meta-path finder that makes the listed modules unimportable, as a missing or broken
# build would (ImportError from inside the import machinery).
BLOCKER = """
import importlib.abc
class _Block(importlib.abc.MetaPathFinder):
    def __init__(self, names):
        self.names = names
    def find_spec(self, name, path=None, target=None):
        if name in self.names:
            raise ImportError(f"{{name}} is blocked for this test")
        return None
sys.meta_path.insert(0, _Block({blocked!r}))
"""

FALLBACK_SCRIPT = textwrap.dedent("""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import fastdl
    worst = check_results()
    runtime = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    report(backend=fastdl.backend(), isa=fastdl.isa(), warnings=[str(w.message) for w in runtime],
           all_warnings=[f"{w.category.__name__}: {w.message}" for w in caught], worst=worst)
""")


def test_native_load_failure_falls_back_to_numba_with_one_warning():
    pytest.importorskip("numba")
    code = BLOCKER.format(blocked={"fastdl._native"}) + FALLBACK_SCRIPT
    result = expect_ok(*run_child(code))
    assert result["backend"] == "numba" and result["isa"] == "numba"
    assert len(result["warnings"]) == 1, result["all_warnings"]
    message = result["warnings"][0]
    assert "numba" in message and "native" in message and "blocked" in message, message
    assert result["worst"] < 1e-4


def test_native_and_numba_load_failure_falls_back_to_numpy_with_one_warning():
    code = BLOCKER.format(blocked={"fastdl._native", "numba"}) + FALLBACK_SCRIPT
    result = expect_ok(*run_child(code))
    assert result["backend"] == "numpy"
    assert len(result["warnings"]) == 1, result["all_warnings"]
    message = result["warnings"][0]
    assert "numpy" in message and "native" in message and "numba" in message, message


def test_missing_compiled_module_falls_back_too():
    """fastdl._C itself unimportable (e.g. built for another Python): same fallback."""
    pytest.importorskip("numba")
    code = BLOCKER.format(blocked={"fastdl._C"}) + FALLBACK_SCRIPT
    result = expect_ok(*run_child(code))
    assert result["backend"] == "numba"
    assert len(result["warnings"]) == 1, result["all_warnings"]


def test_forced_native_backend_that_cannot_load_raises_import_error():
    code = BLOCKER.format(blocked={"fastdl._native"}) + "import fastdl\nreport(ok=True)"
    proc, result = run_child(code, {"FASTDL_BACKEND": "native"})
    assert proc.returncode != 0 and result is None
    assert "ImportError" in proc.stderr and "blocked" in proc.stderr, proc.stderr[-2000:]


def test_no_warning_when_the_native_backend_loads(native):
    result = expect_ok(*run_child(FALLBACK_SCRIPT))
    assert result["backend"] == "native"
    assert result["warnings"] == [], result["all_warnings"]
