"""The suite of ``python -m fastdl.bench`` as pytest-benchmark benchmarks.

One benchmark per (case, library); ``benchmark.group`` is the case name, so fastdl
and its peers appear side by side. Peers are checked against fastdl's output first.
"""

import pytest

from fastdl.bench.cases import DEFAULT_SUITE, flops, make_data
from fastdl.bench.peers import ALL_PEERS, Unsupported
from fastdl.bench.subject import Fastdl
from fastdl.bench.suite import Mismatch, prepare_checked

SUBJECT = Fastdl()
LIBRARIES = (SUBJECT, *ALL_PEERS)


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda library: library.name)
@pytest.mark.parametrize("case", DEFAULT_SUITE, ids=lambda case: case.name)
def test_kernel(benchmark, case, library, bench_threads, fastdl_reference):
    benchmark.group = case.name
    reference = None if library is SUBJECT else fastdl_reference(case)
    try:
        runner, _, _ = prepare_checked(library, case, make_data(case), bench_threads, reference)
    except (ImportError, Unsupported) as exc:
        pytest.skip(f"{library.name} cannot run {case.name}: {exc}")
    except Mismatch as exc:
        pytest.fail(f"{library.name} disagrees with fastdl on {case.name}: {exc}")
    benchmark.extra_info.update(library=library.name, threads=bench_threads,
                                flops=flops(case), note=runner.note)
    benchmark(runner.call)
    median_s = benchmark.stats.stats.median
    benchmark.extra_info["gflops"] = flops(case) / median_s / 1e9 if median_s else None
