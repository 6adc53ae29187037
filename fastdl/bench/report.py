"""Presenting results: the text header, tables, legends and summaries, and the --json
document.

Table rows have fixed column widths so that each row can be printed as soon as its
case is done. fastdl's throughput is its effective GFLOP/s (the FLOPs of the direct
algorithm, see :func:`fastdl.bench.cases.flops`, over the time) and % of the FMA peak, or
for a memory-bound case its GB/s. Every placeholder or marker a table prints is explained
once, in a legend line after the first table that printed it (:data:`LEGEND`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Set, Tuple

from .cases import Case, flops, gbytes_per_s, is_memory_bound
from .peers.base import Library
from .suite import CaseResult, LibraryResult, SuiteRun

JSON_SCHEMA = "fastdl.bench/1"
BUSY_PEAK_FRACTION = 0.8  # a peak below this share of linear scaling means busy cores
RATIO_MEANING = "ratio = peer ms / fastdl ms, > 1: fastdl faster"

# What each placeholder or marker in a result table means, in the order the legend gives them.
LEGEND = {
    "-": "-: the library does not run this case (not installed, or no such operation; "
         "--json says why)",
    "error": "error: the library failed on this case; the reason is printed below the table",
    "MISMATCH": "MISMATCH: wrong output (shape, NaN, or disagreeing with fastdl's), so not "
                "timed; the details are printed below the table",
    "n/a": "n/a: no %peak, the FMA peak could not be measured (see the title line)",
    "GB/s": "GB/s: memory-bound case (pooling, batch norm): bytes of input, output and "
            "parameters moved per second; no %peak",
    "*": "*: %peak above 100%: Winograd does fewer multiplications than the direct "
         "convolution counted here",
}


def fmt_ms(ms: Optional[float]) -> str:
    """Milliseconds: 3 decimals below 100 ms, 1 above ('-' for None)."""
    if ms is None:
        return "-"
    return f"{ms:.3f}" if ms < 100 else f"{ms:.1f}"


def fmt_gflops(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1f}"


def fmt_gbps(value: float) -> str:
    """A memory-bound case's throughput, with its unit (it shares the GFLOP/s column)."""
    return f"{value:.1f} GB/s"


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
    """Fixed-width text table: fastdl's ms, effective GFLOP/s (or GB/s) and % of peak, then
    per peer its ms and ratio (peer time / fastdl time; > 1 means fastdl is faster).

    The table remembers the placeholders and markers its rows used, for
    :meth:`legend_lines`.
    """

    MS, SPEED, PCT, PEER_MS, RATIO = 9, 18, 8, 9, 6

    def __init__(self, case_names: Sequence[str], subject: Library,
                 peers: Sequence[Library]) -> None:
        self.name_width = max([len("case"), *map(len, case_names)])
        self.subject = subject
        self.peers = list(peers)
        self._used: Set[str] = set()
        self._explained: Set[str] = set()

    def header(self) -> str:
        cells = [f"{'case':<{self.name_width}}", f"{self.subject.label + ' ms':>{self.MS}}",
                 f"{'effective GFLOP/s':>{self.SPEED}}", f"{'%peak':>{self.PCT - 1}} "]
        for peer in self.peers:
            cells.append(f"| {peer.label + ' ms':>{self.PEER_MS}} {'ratio':>{self.RATIO}}")
        return " ".join(cells)

    def row(self, case_result: CaseResult) -> str:
        mine = case_result.results[self.subject.name]
        status = _status(mine)
        cells = [f"{case_result.case.name:<{self.name_width}}"]
        if status is None:
            speed, pct = self._speed_cells(case_result.case, mine)
            cells += [f"{fmt_ms(mine.ms):>{self.MS}}", f"{speed:>{self.SPEED}}",
                      f"{pct:>{self.PCT}}"]
        else:
            cells += [self._cell(status, self.MS), " " * self.SPEED, " " * self.PCT]
        for peer in self.peers:
            theirs = case_result.results.get(peer.name)
            status = "-" if theirs is None else _status(theirs)
            if status is None:
                cells.append(f"| {fmt_ms(theirs.ms):>{self.PEER_MS}} "
                             f"{fmt_ratio(theirs.ratio):>{self.RATIO}}")
            else:
                cells.append(f"| {self._cell(status, self.PEER_MS)} {'':>{self.RATIO}}")
        return " ".join(cells)

    def legend_lines(self) -> List[str]:
        """Lines explaining the placeholders and markers printed in rows since the last
        call that no earlier call explained: each is explained once, under the first
        table that printed it."""
        fresh = [key for key in LEGEND if key in self._used - self._explained]
        self._explained.update(fresh)
        return [f"  {LEGEND[key]}" for key in fresh]

    def _cell(self, text: str, width: int) -> str:
        """`text` right-aligned in `width`, remembered if the legend explains it."""
        if text in LEGEND:
            self._used.add(text)
        return f"{text:>{width}}"

    def _speed_cells(self, case: Case, result: LibraryResult) -> Tuple[str, str]:
        """fastdl's throughput and %peak cells (%peak ends in a marker slot, '*' above
        100%); a memory-bound case has GB/s and no %peak."""
        if is_memory_bound(case):
            self._used.add("GB/s")
            return fmt_gbps(gbytes_per_s(case, result.ms / 1e3)), ""
        if result.pct_peak is None:
            self._used.add("n/a")
            return fmt_gflops(result.gflops), fmt_pct(None) + " "
        over = result.pct_peak > 100.0
        if over:
            self._used.add("*")
        return fmt_gflops(result.gflops), fmt_pct(result.pct_peak) + ("*" if over else " ")


@dataclass
class PeerSummary:
    """fastdl against one peer over one run's cases (ratio = peer ms / fastdl ms)."""

    won: int = 0  # cases where fastdl was faster (ratio > 1)
    lost: int = 0  # cases where it was slower (ratio < 1)
    tied: int = 0
    not_compared: int = 0  # one of the two has no time: did not run, failed, mismatched
    geomean_ratio: Optional[float] = None  # over the cases both ran; None if there are none


def summarize(run: SuiteRun, subject_name: str) -> Dict[str, PeerSummary]:
    """{peer name: its :class:`PeerSummary`} for every library in the run's results
    other than `subject_name`, in the order they appear."""
    names = dict.fromkeys(name for case_result in run.cases for name in case_result.results
                          if name != subject_name)
    return {name: _peer_summary([_ratio(case_result, name) for case_result in run.cases])
            for name in names}


def _ratio(case_result: CaseResult, name: str) -> Optional[float]:
    result = case_result.results.get(name)
    return None if result is None else result.ratio


def _peer_summary(ratios: Sequence[Optional[float]]) -> PeerSummary:
    """The summary of one peer's ratios, None where the case was not compared (a ratio is
    set only when both libraries were timed)."""
    compared = [r for r in ratios if r]
    return PeerSummary(
        won=sum(r > 1.0 for r in compared), lost=sum(r < 1.0 for r in compared),
        tied=sum(r == 1.0 for r in compared), not_compared=len(ratios) - len(compared),
        geomean_ratio=(math.exp(math.fsum(map(math.log, compared)) / len(compared))
                       if compared else None))


def _verdict(subject_label: str, geomean: float) -> str:
    if geomean == 1.0:
        return "even"
    return f"{subject_label} {'faster' if geomean > 1.0 else 'slower'}"


def summary_lines(run: SuiteRun, subject: Library, peers: Sequence[Library]) -> List[str]:
    """The summary under a run's table: per peer, the cases fastdl won, lost and could not
    compare, and the geometric mean of the ratio over the cases both ran."""
    summaries = summarize(run, subject.name)
    if not summaries:
        return []
    labels = {peer.name: peer.label for peer in peers}
    width = max(len(labels.get(name, name)) for name in summaries)
    lines = [f"summary ({RATIO_MEANING.replace('fastdl', subject.label)}):"]
    for name, summary in summaries.items():
        counts = f"{subject.label} won {summary.won}, lost {summary.lost}"
        if summary.tied:
            counts += f", tied {summary.tied}"
        counts += f", could not compare {summary.not_compared}"
        compared = len(run.cases) - summary.not_compared
        if summary.geomean_ratio is None:
            mean = "no geometric mean (no case both ran)"
        else:
            mean = (f"geometric mean ratio {fmt_ratio(summary.geomean_ratio)} over "
                    f"{compared} case{'s' if compared != 1 else ''} "
                    f"({_verdict(subject.label, summary.geomean_ratio)})")
        lines.append(f"  vs {labels.get(name, name):<{width}}  {counts}; {mean}")
    return lines


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
    untimed = False
    for index, name in enumerate(names):
        base = chosen[0].cases[index].results[subject_name].ms
        cells = [f"{name:<{width}}"]
        for run in chosen:
            ms = run.cases[index].results[subject_name].ms
            untimed = untimed or ms is None
            cells.append(f"{fmt_ms(ms):>9}")
            if run is not chosen[0]:
                speedup = base / ms if base and ms else None
                cells.append(f"{fmt_ratio(speedup) or '-':>7}")
        lines.append(" ".join(cells))
    if untimed:
        lines.append(f"  -: {subject_name} has no time at that thread count (it failed or "
                     f"does not run the case; see the tables above)")
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
    memory_bound = is_memory_bound(case)
    return {"name": case.name, "description": case.description, "kind": case.kind,
            "flops": flops(case), "output_shape": list(case.output_shape),
            "memory_bound": memory_bound, "bytes": case.bytes_moved if memory_bound else None,
            "results": {name: _result_json(case, result) for name, result in results.items()}}


def _result_json(case: Case, result: LibraryResult) -> Dict[str, object]:
    """The result's fields, plus its GB/s for a memory-bound case (else None)."""
    timed = result.ms is not None and is_memory_bound(case)
    return {**vars(result),
            "gbytes_per_s": gbytes_per_s(case, result.ms / 1e3) if timed else None}


def to_json(meta: Dict[str, object], runs: Sequence[SuiteRun],
            found_problems: Sequence[str], subject_name: str = "fastdl") -> Dict[str, object]:
    """The --json document: meta, then per run (threads, cache) per case per library
    ms, gflops, pct_peak, ratio, error, ... (and gbytes_per_s for a memory-bound case),
    and per run a ``summary``: per peer the cases `subject_name` won, lost, tied, could not
    compare, and the geometric mean of the ratio; ``ok`` is False if there were problems."""
    return {
        "schema": JSON_SCHEMA,
        "ok": not found_problems,
        "problems": list(found_problems),
        "meta": meta,
        "runs": [{"threads": run.threads, "cache": run.cache, "peak_gflops": run.peak_gflops,
                  "peak_error": run.peak_error,
                  "cases": [_case_json(cr.case, cr.results) for cr in run.cases],
                  "summary": {name: asdict(summary)
                              for name, summary in summarize(run, subject_name).items()}}
                 for run in runs],
    }

