"""Shared fixtures: ONNX's backend node test cases (tests/onnx_nodes.py), and a per-op
summary of the ONNX node tests at the end of the run."""
from __future__ import annotations

import collections
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/onnx_nodes.py

import onnx_nodes  # noqa: E402


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
