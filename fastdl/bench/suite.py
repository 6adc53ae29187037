"""Running the suite: prepare every library on a case, check outputs, time them.

fastdl's output is checked for shape and finiteness; every peer's output is then
compared with fastdl's before anything is timed. A peer that disagrees is not
timed (a benchmark of a wrong result is worthless) and the run is marked failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .cases import Case, CaseData, gflops, make_data
from .peers.base import Library, Runner, Unsupported
from .timing import CacheFlusher, TimingSettings, measure_interleaved

RTOL = 1e-3
ATOL = 1e-3


class Mismatch(Exception):
    """A library's output disagrees with the reference (message has the details)."""


@dataclass
class LibraryResult:
    """One library on one case. ``error`` is None when it was timed."""

    ms: Optional[float] = None
    gflops: Optional[float] = None
    pct_peak: Optional[float] = None
    ratio: Optional[float] = None  # this library's time / fastdl's time (>1: fastdl faster)
    error: Optional[str] = None
    unsupported: bool = False  # not installed, or no such operation: not a failure
    mismatch: bool = False
    max_abs_diff: Optional[float] = None  # vs fastdl's output (peers only)
    samples: int = 0
    calls_per_sample: int = 0
    note: Optional[str] = None
    steps_ms: Optional[float] = None  # whole models: the sum of the steps' own times


@dataclass
class CaseResult:
    case: Case
    results: Dict[str, LibraryResult]  # by library name, fastdl first


@dataclass
class SuiteRun:
    """All cases at one thread count and cache mode."""

    threads: int
    cache: str  # 'warm' or 'cold'
    peak_gflops: Optional[float]
    peak_error: Optional[str]
    cases: List[CaseResult] = field(default_factory=list)


def check_output(expected_shape: Tuple[int, ...], reference: Optional[np.ndarray],
                 output: np.ndarray, rtol: float = RTOL, atol: float = ATOL) -> Optional[float]:
    """Raise :class:`Mismatch` unless ``output`` is a finite array of the expected shape
    that matches ``reference`` (if given); return the max absolute difference then.

    ``atol`` is scaled by the reference's largest magnitude (when above 1), since
    rounding errors grow with the values being accumulated.
    """
    if tuple(output.shape) != tuple(expected_shape):
        raise Mismatch(f"output shape {tuple(output.shape)}, expected {tuple(expected_shape)}")
    if not np.all(np.isfinite(output)):
        raise Mismatch("output has NaN or infinite values")
    if reference is None:
        return None
    scale = max(1.0, float(np.max(np.abs(reference), initial=0.0)))
    diff = np.abs(output.astype(np.float64) - reference)
    max_diff = float(np.max(diff, initial=0.0))
    allowed = atol * scale + rtol * np.abs(reference)
    if np.any(diff > allowed):
        worst = np.unravel_index(int(np.argmax(diff - allowed)), diff.shape)
        raise Mismatch(f"max |diff| {max_diff:.3g} exceeds rtol={rtol:g}, "
                       f"atol={atol * scale:.3g}; e.g. at {tuple(map(int, worst))}: "
                       f"{float(output[worst]):.6g} vs fastdl {float(reference[worst]):.6g}")
    return max_diff


def prepare_checked(library: Library, case: Case, data: CaseData, threads: int,
                    reference: Optional[np.ndarray]) -> Tuple[Runner, np.ndarray, Optional[float]]:
    """Prepare ``library`` on ``case``, run it once and check its output.

    Returns (runner, output as NumPy, max abs diff vs ``reference`` or None).
    Raises ImportError/:class:`Unsupported` (cannot run), :class:`Mismatch`, or
    whatever the library raised.
    """
    runner = library.prepare(case, data, threads)
    output = np.asarray(runner.to_numpy(runner.call()))
    return runner, output, check_output(case.output_shape, reference, output)


def _describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def run_case(case: Case, subject: Library, peers: Sequence[Library], threads: int,
             settings: TimingSettings, peak_gflops: Optional[float],
             flush: Optional[Callable[[], None]] = None, seed: int = 0) -> CaseResult:
    """Check and time ``subject`` (fastdl) and ``peers`` on ``case``; never raises for a
    library's failure (it is recorded in that library's result instead)."""
    data = make_data(case, seed)
    results: Dict[str, LibraryResult] = {}
    runners: Dict[str, Runner] = {}
    reference: Optional[np.ndarray] = None
    for library in [subject, *peers]:
        result = results[library.name] = LibraryResult()
        if library is not subject and reference is None:
            result.error = "not run: fastdl failed on this case"
            continue
        try:
            runner, output, result.max_abs_diff = prepare_checked(
                library, case, data, threads, reference)
        except (ImportError, Unsupported) as exc:
            result.error, result.unsupported = _describe_error(exc), True
            continue
        except Mismatch as exc:
            result.error, result.mismatch = f"output mismatch: {exc}", True
            continue
        except Exception as exc:  # a failing library must not end the whole run
            result.error = _describe_error(exc)
            continue
        result.note = runner.note
        runners[library.name] = runner
        if library is subject:
            reference = output.astype(np.float64)
    if runners:
        _time_runners(case, runners, results, settings, peak_gflops, flush)
    _fill_ratios(subject.name, results)
    return CaseResult(case, results)


def _time_runners(case: Case, runners: Dict[str, Runner], results: Dict[str, LibraryResult],
                  settings: TimingSettings, peak_gflops: Optional[float],
                  flush: Optional[Callable[[], None]]) -> None:
    try:
        timings = measure_interleaved({name: r.call for name, r in runners.items()},
                                      settings, flush,
                                      {name: r.settle_s for name, r in runners.items()})
    except Exception as exc:  # a callable failed while being timed
        for name in runners:
            results[name].error = f"timing failed: {_describe_error(exc)}"
        return
    for name, runner in runners.items():
        if runner.steps_ms is not None:
            try:
                results[name].steps_ms = runner.steps_ms()
            except Exception as exc:  # a report, not the timing: keep the timing
                results[name].note = f"steps not timed: {_describe_error(exc)}"
    for name, timing in timings.items():
        result = results[name]
        result.ms = timing.median_ms
        result.gflops = gflops(case, result.ms / 1e3)
        result.samples, result.calls_per_sample = timing.samples, timing.calls_per_sample
        if peak_gflops:
            result.pct_peak = 100.0 * result.gflops / peak_gflops


def _fill_ratios(subject_name: str, results: Dict[str, LibraryResult]) -> None:
    base = results[subject_name].ms
    for result in results.values():
        if base and result.ms is not None:
            result.ratio = result.ms / base


def run_suite(cases: Sequence[Case], subject: Library, peers: Sequence[Library],
              thread_counts: Sequence[int], cache_modes: Sequence[str],
              settings: TimingSettings,
              peak: Callable[[int], Tuple[Optional[float], Optional[str]]],
              on_run_start: Callable[[SuiteRun], None] = lambda run: None,
              on_case: Callable[[SuiteRun, CaseResult], None] = lambda run, result: None,
              on_run_end: Callable[[SuiteRun], None] = lambda run: None,
              seed: int = 0) -> List[SuiteRun]:
    """Every case at every thread count and cache mode ('warm'/'cold').

    ``peak(threads)`` gives (FMA peak GFLOP/s or None, reason); the ``on_*``
    callbacks report progress (e.g. print table rows as cases finish).
    """
    runs: List[SuiteRun] = []
    flusher = CacheFlusher() if "cold" in cache_modes else None
    for threads in thread_counts:
        peak_gflops, peak_error = peak(threads)
        for cache in cache_modes:
            run = SuiteRun(threads, cache, peak_gflops, peak_error)
            mode = replace(settings, cold=cache == "cold")
            on_run_start(run)
            for case in cases:
                result = run_case(case, subject, peers, threads, mode, peak_gflops,
                                  flusher if cache == "cold" else None, seed)
                run.cases.append(result)
                on_case(run, result)
            on_run_end(run)
            runs.append(run)
    return runs


def problems(runs: Sequence[SuiteRun], subject_name: str) -> List[str]:
    """Failures that make the run unsuccessful: fastdl errors and any mismatch."""
    found = []
    for run in runs:
        for case_result in run.cases:
            for name, result in case_result.results.items():
                if result.error and (name == subject_name or result.mismatch):
                    found.append(f"[{run.threads}T {run.cache}] {case_result.case.name}: "
                                 f"{name}: {result.error}")
    return found
