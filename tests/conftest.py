"""Shared fixtures: the thread count, the backend, ONNX's backend node test cases
(tests/onnx_nodes.py), and a per-op summary of the ONNX node tests at the end of the run."""
from __future__ import annotations

import collections
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/onnx_nodes.py

import onnx_nodes  # noqa: E402


@pytest.fixture
def threads():
    """Lets a test change the thread count (the fixture is fastdl.set_num_threads);
    restores it afterwards."""
    import fastdl
    saved = fastdl.get_num_threads()
    yield fastdl.set_num_threads
    fastdl.set_num_threads(saved)


@pytest.fixture(params=["native", "numba", "numpy"])
def any_backend(request, monkeypatch):
    """Runs everything built inside the test (ops, plans, layers, models) on one backend,
    as FASTDL_BACKEND would select it; skips where that backend does not load."""
    from native_variants import backend_module
    import fastdl.ops  # noqa: F401 -- loads every fastdl.ops module
    module = backend_module(request.param)
    for name, sub in list(sys.modules.items()):
        if name.startswith("fastdl.ops.") and hasattr(sub, "kernels"):
            monkeypatch.setattr(sub, "kernels", module)
    return request.param


@pytest.fixture(scope="module")
def isolated_random_state():
    """Puts back, after the module, every global random state its tests move (Python's and
    NumPy's, which fastdl.utils.set_random_seed reseeds and Keras draws its default seeds
    from; torch's; fastdl's initializer and training generators), so the modules after it
    see the state they would see without it."""
    import random

    import numpy as np

    from fastdl import _random, initializers
    saved = (random.getstate(), np.random.get_state(), initializers._rng, _random._generator)
    torch = sys.modules.get("torch")
    torch_state = None if torch is None else torch.get_rng_state()
    yield
    random.setstate(saved[0])
    np.random.set_state(saved[1])
    initializers._rng, _random._generator = saved[2], saved[3]
    if torch_state is not None:
        torch.set_rng_state(torch_state)


@pytest.fixture(scope="session")
def onnx_node_cases():
    """{op_type: [onnx_nodes.NodeCase, ...]}: ONNX's node test cases, generated once."""
    if not onnx_nodes.onnx_available():
        pytest.skip("onnx is not installed (pip install onnx)")
    return onnx_nodes.cases_by_op()


_ONNX_ID = re.compile(r"test_onnx_nodes\.py::test_onnx_node\[([A-Za-z]+)-")


def pytest_terminal_summary(terminalreporter):
    """One line per ONNX op: how many of its node test cases passed, were skipped (with
    why) or failed."""
    counts = collections.defaultdict(collections.Counter)
    for outcome in ("passed", "skipped", "failed", "xfailed"):
        for report in terminalreporter.stats.get(outcome, []):
            match = _ONNX_ID.search(getattr(report, "nodeid", ""))
            if match and report.when in ("call", "setup"):
                counts[match.group(1)][outcome] += 1
    if not counts:
        return
    terminalreporter.section("ONNX node tests per op")
    for op in sorted(counts):
        c = counts[op]
        terminalreporter.write_line(
            f"{op:20s} passed {c['passed']:3d}  skipped {c['skipped']:3d}  "
            f"failed {c['failed']:3d}" + (f"  xfailed {c['xfailed']}" if c["xfailed"] else ""))
