"""``python -m fastdl.bench``: the kernel suite, timed against the installed peers.

Under each run's table: a legend of the placeholders it printed, failures, and a summary
per peer (cases won / lost / not compared, geometric mean of the ratio); ``--plot FILE``
draws the ratios (:mod:`fastdl.bench.plot`, needs matplotlib).

Exit status: 0 on success; 1 if fastdl failed on a case or any library's output
disagreed with fastdl's; 2 for bad command-line arguments (every option is checked before
anything runs, --list included; the message names the option). Values that would run for
days are refused: at most MAX_THREADS threads, MAX_REPEAT samples (--repeat) or
MAX_BUDGET_S seconds (--budget) per library per case.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from typing import Dict, List, Optional, Sequence

from . import subject
from .cases import DEFAULT_SUITE, MODEL_SUITE, TRAINING_SUITE, flops, select_cases
from .onnx_case import onnx_file_case
from .machine import (blas_environment, cpu_model, last_level_cache_bytes, load_average,
                      numpy_blas)
from .peers import ALL_PEERS, Library, select_peers
from .report import (ResultTable, header_lines, overhead_lines, run_footnotes, run_title,
                     scaling_table, summary_lines, to_json)
from .suite import problems, run_suite
from .timing import TimingSettings

CACHE_MODES = {"warm": ["warm"], "cold": ["cold"], "both": ["warm", "cold"]}
# Bounds on what one run asks for: beyond them a typo (an extra digit or three) would keep
# the machine busy for hours or spawn a thread per core thousands of times over.
MAX_THREADS = 1024
MAX_REPEAT = 10_000
MAX_BUDGET_S = 600.0


def parse_threads(text: str) -> List[int]:
    """'1' or '1,2,4' -> [1] or [1, 2, 4]; raises ValueError for anything else."""
    try:
        counts = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise ValueError(f"--threads expects positive integers like 1 or 1,2; got {text!r}")
    if not counts or any(n < 1 for n in counts):
        raise ValueError(f"--threads expects positive integers like 1 or 1,2; got {text!r}")
    if any(n > MAX_THREADS for n in counts):
        raise ValueError(f"--threads expects at most {MAX_THREADS} threads; got {text!r}")
    return list(dict.fromkeys(counts))


def _bounded(convert, noun, low, high=None, *, above_low=False):
    """An argparse type: convert(text) in [low, high] ((low, high] with above_low; no upper
    bound with high=None), else an ArgumentTypeError saying what was expected."""
    span = (f"in {'(' if above_low else '['}{low:g}, {high:g}]" if high is not None
            else f">= {low:g}")

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}")
        in_range = (value > low if above_low else value >= low) and (
            high is None or value <= high)
        if not in_range:  # NaN too
            raise argparse.ArgumentTypeError(f"expected {noun} {span}, got {text!r}")
        return value
    return parse


_repeat = _bounded(int, "a whole number of samples per library per case", 1, MAX_REPEAT)
_budget = _bounded(float, "seconds per library per case", 0, MAX_BUDGET_S, above_low=True)
# (NumPy's generators take no negative seeds)
_seed = _bounded(int, "a whole number", 0)


def _check_writable(path: str, option: str = "--json") -> None:
    """Raises ValueError naming `option` unless a file can be written at `path` (before the
    run, not after it); leaves nothing behind."""
    existed = os.path.lexists(path)
    try:
        with open(path, "a"):
            pass
    except (OSError, ValueError) as exc:
        raise ValueError(f"{option}: cannot write {path!r}: {exc}") from None
    if not existed:
        os.remove(path)


def _check_plot(path: str) -> None:
    """Raises ValueError naming --plot unless the file can be written and matplotlib can
    draw an image of the format its suffix names (imports matplotlib)."""
    from .plot import check_plot_path
    _check_writable(path, "--plot")
    try:
        check_plot_path(path)
    except ValueError as exc:
        raise ValueError(f"--plot: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    # argparse %-formats the options' help, not the description or the epilog: a literal %
    # is written %% in the former and % in the latter.
    parser = argparse.ArgumentParser(
        prog="python -m fastdl.bench",
        description="Time fastdl's kernels (ms; effective GFLOP/s and % of the measured "
                    "FMA peak, or GB/s for memory-bound ops) side by side with PyTorch, ONNX "
                    "Runtime, OpenVINO, ncnn and NumPy, and sum up per peer: cases won and lost, "
                    "geometric mean of the ratio peer ms / fastdl ms (> 1: fastdl faster).",
        epilog="Exit status: 0 on success, 1 if fastdl failed or a library's output "
               "disagreed with fastdl's, 2 for bad arguments.")
    parser.add_argument("--threads", default="1",
                        help="thread count, or a comma-separated list to show scaling "
                             "(default: 1)")
    parser.add_argument("--cases", default=None,
                        help="comma-separated case names or substrings (default: all)")
    parser.add_argument("--peers", default="all",
                        help="comma-separated peers to compare with, 'all' or 'none' "
                             f"(known: {', '.join(p.name for p in ALL_PEERS)})")
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument("--repeat", type=_repeat, default=None,
                        help="exact number of timed samples per library per case "
                             f"(1 to {MAX_REPEAT})")
    amount.add_argument("--budget", type=_budget, default=0.5,
                        help="seconds of timing per library per case (default: 0.5, at "
                             f"most {MAX_BUDGET_S:g})")
    parser.add_argument("--cache", choices=sorted(CACHE_MODES), default="warm",
                        help="time with warm caches, cold (flushed before each call) "
                             "or both (default: warm)")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="also write machine-readable results to FILE")
    parser.add_argument("--plot", metavar="FILE", default=None,
                        help="also draw each peer's ratio per case as a bar chart in FILE "
                             "(.png, .svg, .pdf; needs matplotlib: "
                             'pip install "fastdl[plot]")')
    parser.add_argument("--seed", type=_seed, default=0,
                        help="seed of the input data (an int >= 0)")
    parser.add_argument("--models", action="store_true",
                        help="time whole models (CIFAR CNN, ResNet-18, MobileNetV1 built "
                             "with fastdl.layers) against PyTorch eager and ONNX Runtime "
                             "running the same model, instead of the kernel suite")
    parser.add_argument("--training", action="store_true",
                        help="time one training step (forward, backward, Adam) of whole "
                             "models against PyTorch eager, instead of the kernel suite")
    parser.add_argument("--onnx", metavar="FILE", default=None,
                        help="time your own ONNX model (fastdl.io.load_onnx) against ONNX "
                             "Runtime on the same file, batch 1, instead of the kernel suite")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    return parser


def list_cases(out, suite=DEFAULT_SUITE) -> None:
    width = max(len(case.name) for case in suite)
    for case in suite:
        print(f"{case.name:<{width}}  {flops(case) / 1e9:8.3f} GFLOP  {case.description}",
              file=out)


def peer_versions(peers: Sequence[Library]) -> Dict[str, Dict[str, Optional[str]]]:
    """{peer name: {'version': str or None, 'error': why unavailable or None}}."""
    found = {}
    for peer in peers:
        try:
            found[peer.name] = {"version": peer.version(), "error": None}
        except Exception as exc:  # ImportError, or a broken install
            found[peer.name] = {"version": None, "error": f"{type(exc).__name__}: {exc}"}
    return found


def collect_meta(args: argparse.Namespace, threads: List[int],
                 peers: Sequence[Library]) -> Dict[str, object]:
    """Everything the header and the --json 'meta' report about this run."""
    return {"fastdl": subject.describe(), "threads": threads, "cpu": cpu_model(),
            "cpu_count": os.cpu_count(), "llc_bytes": last_level_cache_bytes(),
            "load_average": load_average(),
            "python": platform.python_version(), "numpy_blas": numpy_blas(),
            "peers": peer_versions(peers), "env": blas_environment(),
            "timing": {"budget_s": args.budget, "repeat": args.repeat,
                       "cache": CACHE_MODES[args.cache], "seed": args.seed,
                       "statistic": "median"}}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = sys.stdout
    if sum(map(bool, (args.models, args.training, args.onnx))) > 1:
        parser.error("--models, --training and --onnx choose different suites: give one")
    suite = MODEL_SUITE if args.models else TRAINING_SUITE if args.training else DEFAULT_SUITE
    # Every option is checked (each message names it) before anything runs or is listed.
    try:
        if args.onnx is not None:
            try:
                suite = [onnx_file_case(args.onnx)]
            except ValueError as exc:
                raise ValueError(f"--onnx: {exc}") from None
        threads = parse_threads(args.threads)
        try:
            cases = select_cases(args.cases, suite) if args.cases is not None else list(suite)
        except ValueError as exc:
            raise ValueError(f"--cases: {exc}") from None
        try:
            peers = select_peers(args.peers)
        except ValueError as exc:
            raise ValueError(f"--peers: {exc}") from None
        if [p.strip().lower() for p in args.peers.split(",") if p.strip()] == ["all"]:
            # no column for a library with nothing to run here
            peers = [p for p in peers if any(p.supports(case.kind) for case in cases)]
        settings = TimingSettings(budget_s=args.budget, repeat=args.repeat)
        if args.json is not None:
            _check_writable(args.json)
        if args.plot is not None:
            _check_plot(args.plot)
    except ValueError as exc:
        parser.error(str(exc))
    if args.list:
        list_cases(out, cases)
        return 0
    fastdl = subject.Fastdl()
    try:
        meta = collect_meta(args, threads, peers)
    except Exception as exc:  # fastdl itself cannot be imported or queried
        print(f"fastdl.bench: cannot use fastdl: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for line in header_lines(meta):
        print(line, file=out)

    table = ResultTable([case.name for case in cases], fastdl, peers)

    def on_run_start(run) -> None:
        print(f"\n{run_title(run)}\n{table.header()}", file=out, flush=True)

    def on_case(run, case_result) -> None:
        print(table.row(case_result), file=out, flush=True)

    def on_run_end(run) -> None:
        for line in (table.legend_lines() + run_footnotes(run)
                     + summary_lines(run, fastdl, peers) + overhead_lines(run, fastdl.name)):
            print(line, file=out)

    runs = run_suite(cases, fastdl, peers, threads, CACHE_MODES[args.cache], settings,
                     subject.fma_peak_gflops, on_run_start=on_run_start, on_case=on_case,
                     on_run_end=on_run_end, seed=args.seed)
    for cache in CACHE_MODES[args.cache]:
        lines = scaling_table(runs, fastdl.name, cache)
        if lines:
            print("\n" + "\n".join(lines), file=out)

    found = problems(runs, fastdl.name)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(to_json(meta, runs, found, fastdl.name), f, indent=2)
    if args.plot:
        from .plot import write_plot
        write_plot(args.plot, runs, fastdl, peers, meta)
        print(f"\nplot written to {args.plot}", file=out)
    if found:
        print("\nFAILED: fastdl failed or disagreed with a peer:", file=sys.stderr)
        for line in found:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0
