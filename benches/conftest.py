"""pytest-benchmark setup for benches/: options, fixtures, and the collection guard.

The benchmarks are collected only when benches/ (or something inside it) is named
on the command line, so that a bare ``pytest`` or ``pytest tests`` never runs them:

    pytest benches --bench-threads 1 --benchmark-group-by=group
"""

from pathlib import Path
from typing import Callable, Dict

import numpy as np
import pytest

from fastdl.bench.cases import Case, make_data
from fastdl.bench.subject import Fastdl
from fastdl.bench.suite import prepare_checked

HERE = Path(__file__).resolve().parent


def pytest_addoption(parser):
    parser.addoption("--bench-threads", type=int, default=1,
                     help="threads for fastdl and every peer in benches/ (default: 1)")


def _benches_named_explicitly(config) -> bool:
    for arg in config.args:
        path = Path(str(arg).split("::")[0])
        if not path.is_absolute():
            path = Path(config.invocation_params.dir) / path
        path = path.resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    if not _benches_named_explicitly(config):
        return True
    return None


@pytest.fixture(scope="session")
def bench_threads(pytestconfig) -> int:
    threads = pytestconfig.getoption("--bench-threads")
    if threads < 1:
        raise pytest.UsageError(f"--bench-threads must be >= 1, got {threads}")
    return threads


@pytest.fixture(scope="session")
def fastdl_reference(bench_threads) -> Callable[[Case], np.ndarray]:
    """fastdl's output on a case's default inputs (computed once per case), which
    every peer's output must match before it is timed."""
    outputs: Dict[str, np.ndarray] = {}

    def reference(case: Case) -> np.ndarray:
        if case.name not in outputs:
            _, output, _ = prepare_checked(Fastdl(), case, make_data(case), bench_threads, None)
            outputs[case.name] = output.astype(np.float64)
        return outputs[case.name]

    return reference
