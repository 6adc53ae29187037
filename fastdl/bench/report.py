"""Presenting results: the text header and tables, and the --json document.

Table rows have fixed column widths so that each row can be printed as soon as its
case is done. Cells: a number, '-' (library not installed or cannot run the case;
the reason is in --json), 'error' (it failed; reason printed below the table) or
'MISMATCH' (its output disagreed with fastdl's; not timed).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from .cases import Case, flops
from .peers.base import Library
from .suite import CaseResult, LibraryResult, SuiteRun

JSON_SCHEMA = "fastdl.bench/1"
BUSY_PEAK_FRACTION = 0.8  # a peak below this share of linear scaling means busy cores


def fmt_ms(ms: Optional[float]) -> str:
    """Milliseconds: 3 decimals below 100 ms, 1 above ('-' for None)."""
    if ms is None:
        return "-"
    return f"{ms:.3f}" if ms < 100 else f"{ms:.1f}"


def fmt_gflops(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1f}"


def fmt_pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def fmt_ratio(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.2f}x"


def _status(result: LibraryResult) -> Optional[str]:
    """The cell text replacing a time when there is none."""
    if result.mismatch:
        return "MISMATCH"
    if result.unsupported:
        return "-"
    if result.error:
        return "error"
    return None


class ResultTable:
    """Fixed-width text table: fastdl's ms, GFLOP/s and % of peak, then per peer
    its ms and ratio (peer time / fastdl time; > 1 means fastdl is faster)."""

    MS, GF, PCT, PEER_MS, RATIO = 9, 8, 7, 9, 6

    def __init__(self, case_names: Sequence[str], subject: Library,
                 peers: Sequence[Library]) -> None:
        self.name_width = max([len("case"), *map(len, case_names)])
        self.subject = subject
        self.peers = list(peers)

    def header(self) -> str:
        cells = [f"{'case':<{self.name_width}}", f"{self.subject.label + ' ms':>{self.MS}}",
                 f"{'GFLOP/s':>{self.GF}}", f"{'%peak':>{self.PCT}}"]
        for peer in self.peers:
            cells.append(f"| {peer.label + ' ms':>{self.PEER_MS}} {'ratio':>{self.RATIO}}")
        return " ".join(cells)

    def row(self, case_result: CaseResult) -> str:
        mine = case_result.results[self.subject.name]
        status = _status(mine)
        cells = [f"{case_result.case.name:<{self.name_width}}"]
        if status is None:
            cells += [f"{fmt_ms(mine.ms):>{self.MS}}", f"{fmt_gflops(mine.gflops):>{self.GF}}",
                      f"{fmt_pct(mine.pct_peak):>{self.PCT}}"]
        else:
            cells += [f"{status:>{self.MS}}", f"{'':>{self.GF}}", f"{'':>{self.PCT}}"]
        for peer in self.peers:
            theirs = case_result.results.get(peer.name)
            status = "-" if theirs is None else _status(theirs)
            if status is None:
                cells.append(f"| {fmt_ms(theirs.ms):>{self.PEER_MS}} "
                             f"{fmt_ratio(theirs.ratio):>{self.RATIO}}")
            else:
                cells.append(f"| {status:>{self.PEER_MS}} {'':>{self.RATIO}}")
        return " ".join(cells)


def run_title(run: SuiteRun) -> str:
    threads = f"{run.threads} thread{'s' if run.threads != 1 else ''}"
    peak = (f"FMA peak {run.peak_gflops:.1f} GFLOP/s" if run.peak_gflops
            else f"FMA peak n/a ({run.peak_error})")
    return f"== {threads}, {run.cache} cache, {peak} =="


def run_footnotes(run: SuiteRun) -> List[str]:
    """Failures (other than 'cannot run') and measurement notes of one run."""
    lines, notes = [], {}
    for case_result in run.cases:
        for name, result in case_result.results.items():
            if result.error and not result.unsupported:
                lines.append(f"  {case_result.case.name}: {name}: {result.error}")
            if result.note:
                notes.setdefault(f"  note: {name}: {result.note}", None)
    return lines + list(notes)


def overhead_lines(run: SuiteRun, subject_name: str) -> List[str]:
    """For whole-model cases: fastdl's model time, the sum of its steps' times (timed
    inside runs: the kernels' time) and the difference, the model's own overhead, as a
    share of the model time."""
    rows = [(cr.case.name, cr.results[subject_name]) for cr in run.cases
            if cr.results.get(subject_name) and cr.results[subject_name].steps_ms
            and cr.results[subject_name].ms]
    if not rows:
        return []
    width = max([len("case"), *(len(name) for name, _ in rows)])
    lines = [f"  model overhead of {subject_name} (model ms - sum of its steps' ms, the "
             f"steps timed inside runs):",
             f"  {'case':<{width}} {'model ms':>9} {'steps ms':>9} {'overhead':>9}"]
    for name, result in rows:
        over = result.ms - result.steps_ms
        lines.append(f"  {name:<{width}} {fmt_ms(result.ms):>9} {fmt_ms(result.steps_ms):>9} "
                     f"{100.0 * over / result.ms:>8.1f}%")
    return lines


def scaling_table(runs: Sequence[SuiteRun], subject_name: str, cache: str) -> List[str]:
    """fastdl's ms per thread count and speedup over the first thread count."""
    chosen = [run for run in runs if run.cache == cache]
    if len(chosen) < 2:
        return []
    names = [cr.case.name for cr in chosen[0].cases]
    width = max([len("case"), *map(len, names)])
    base_threads = chosen[0].threads
    head = [f"{'case':<{width}}"]
    for run in chosen:
        head.append(f"{f'{run.threads}T ms':>9}")
        if run is not chosen[0]:
            head.append(f"{f'x{run.threads}T':>7}")
    lines = [f"== thread scaling of {subject_name} ({cache} cache), "
             f"speedup vs {base_threads} thread(s) ==", " ".join(head)]
    for index, name in enumerate(names):
        base = chosen[0].cases[index].results[subject_name].ms
        cells = [f"{name:<{width}}"]
        for run in chosen:
            ms = run.cases[index].results[subject_name].ms
            cells.append(f"{fmt_ms(ms):>9}")
            if run is not chosen[0]:
                speedup = base / ms if base and ms else None
                cells.append(f"{fmt_ratio(speedup) or '-':>7}")
        lines.append(" ".join(cells))
    return lines + _busy_cores_warnings(chosen)


def _busy_cores_warnings(runs: Sequence[SuiteRun]) -> List[str]:
    """Warnings where the FMA peak did not grow with the thread count: other
    processes were using the cores, so those multi-thread timings are unreliable."""
    base = runs[0]
    if not base.peak_gflops:
        return []
    warnings = []
    for run in runs[1:]:
        expected = base.peak_gflops * run.threads / base.threads
        if run.peak_gflops and run.peak_gflops < BUSY_PEAK_FRACTION * expected:
            warnings.append(f"WARNING: FMA peak at {run.threads} threads is "
                            f"{run.peak_gflops:.1f} GFLOP/s, expected about {expected:.1f}: "
                            f"cores were busy, {run.threads}-thread timings are unreliable")
    return warnings


def header_lines(meta: Dict[str, object]) -> List[str]:
    """The report header from :func:`fastdl.bench.cli.collect_meta`'s dict."""
    fdl = meta["fastdl"]
    lines = [f"fastdl {fdl['version']}  backend {fdl['backend']}  isa {fdl['isa']}  "
             f"threads {','.join(map(str, meta['threads']))}",
             f"CPU: {meta['cpu']} ({meta['cpu_count']} logical CPUs), "
             f"last-level cache {meta['llc_bytes'] // (1 << 20)} MiB, "
             f"load average {meta['load_average']}",
             f"python {meta['python']}, numpy BLAS: {meta['numpy_blas']}"]
    peers = meta["peers"]
    installed = [f"{name} {info['version']}" for name, info in peers.items() if info["version"]]
    missing = [f"{name} ({info['error']})" for name, info in peers.items() if not info["version"]]
    lines.append(f"peers: {', '.join(installed) or 'none'}")
    if missing:
        lines.append(f"peers not available: {'; '.join(missing)}")
    if meta["env"]:
        lines.append("environment: " + " ".join(f"{k}={v}" for k, v in meta["env"].items())
                     + "  (affects peers' BLAS; unset it when comparing with NumPy)")
    timing = meta["timing"]
    amount = (f"{timing['repeat']} samples" if timing["repeat"]
              else f"{timing['budget_s']:g} s")
    lines.append(f"timing: median over samples, {amount} per library per case, "
                 f"libraries interleaved; ratio = peer ms / fastdl ms (>1: fastdl faster)")
    return lines


def _case_json(case: Case, results: Dict[str, LibraryResult]) -> Dict[str, object]:
    return {"name": case.name, "description": case.description, "kind": case.kind,
            "flops": flops(case), "output_shape": list(case.output_shape),
            "results": {name: dict(vars(result)) for name, result in results.items()}}


def to_json(meta: Dict[str, object], runs: Sequence[SuiteRun],
            found_problems: Sequence[str]) -> Dict[str, object]:
    """The --json document: meta, then per run (threads, cache) per case per library
    ms, gflops, pct_peak, ratio, error, ...; ``ok`` is False if there were problems."""
    return {
        "schema": JSON_SCHEMA,
        "ok": not found_problems,
        "problems": list(found_problems),
        "meta": meta,
        "runs": [{"threads": run.threads, "cache": run.cache, "peak_gflops": run.peak_gflops,
                  "peak_error": run.peak_error,
                  "cases": [_case_json(cr.case, cr.results) for cr in run.cases]}
                 for run in runs],
    }
