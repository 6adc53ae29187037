"""``--plot FILE``: a bench run's time ratios as a bar chart (matplotlib: the ``plot`` extra).

One panel per run (thread count and cache mode), one row per case, one bar per peer from 1
to its ratio (peer ms / fastdl ms) on a log scale: a bar to the right of the line at 1
means fastdl was faster. Each panel's title gives the geometric mean per peer. matplotlib
is imported only here, and only when --plot is given; the figure is drawn without pyplot
(no GUI backend, no global state).
"""

from __future__ import annotations

import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

from .peers.base import Library
from .report import RATIO_MEANING, fmt_ratio, summarize
from .suite import CaseResult, SuiteRun

INSTALL_HINT = 'pip install "fastdl[plot]"'
MIN_MATPLOTLIB = (3, 7)  # legends outside the axes under the constrained layout


def check_plot_path(path: str) -> str:
    """The image format matplotlib will write to `path` (from its suffix); raises
    ValueError saying why not when matplotlib is missing, too old, or has no such format."""
    try:
        import matplotlib
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise ValueError(f"needs matplotlib, which is not installed: {INSTALL_HINT}") from None
    version = tuple(int(part) for part in matplotlib.__version__.split(".")[:2]
                    if part.isdigit())
    if version < MIN_MATPLOTLIB:
        raise ValueError(f"needs matplotlib >= {'.'.join(map(str, MIN_MATPLOTLIB))}, found "
                         f"{matplotlib.__version__}: {INSTALL_HINT} --upgrade")
    suffix = os.path.splitext(path)[1][1:].lower()
    if suffix not in FigureCanvasBase.get_supported_filetypes():
        raise ValueError(f"expected an image file name ending in .png, .svg, .pdf or another "
                         f"suffix matplotlib writes, got {path!r}")
    return suffix


def write_plot(path: str, runs: Sequence[SuiteRun], subject: Library,
               peers: Sequence[Library], meta: Dict[str, object]) -> None:
    """Draws the ratio of every peer's time to `subject`'s per case, a panel per run, and
    writes it to `path` (checked by :func:`check_plot_path` before the run)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    panels = max(1, len(runs))
    cases = len(runs[0].cases) if runs else 0
    height = 2.0 + cases * (0.25 + 0.15 * max(1, len(peers)))
    figure = Figure(figsize=(1.5 + 5.5 * panels, height), layout="constrained")
    axes = figure.subplots(1, panels, sharey=True, squeeze=False)[0]
    for ax, run in zip(axes, runs):
        _draw_run(ax, run, subject, peers)
    if peers:
        figure.legend(handles=[Patch(color=_color(index), label=peer.label)
                               for index, peer in enumerate(peers)],
                      loc="outside lower center", ncols=len(peers), frameon=False)
    else:
        axes[0].text(0.5, 0.5, "no peer to compare with", ha="center", va="center",
                     transform=axes[0].transAxes, backgroundcolor="white")
    figure.suptitle(f"{' '.join([subject.label, *_version(meta)])} vs peers on "
                    f"{meta.get('cpu', 'an unknown CPU')}\n"
                    f"{RATIO_MEANING.replace('fastdl', subject.label)}")
    figure.savefig(path, format=check_plot_path(path))


def _version(meta: Dict[str, object]) -> List[str]:
    info = meta.get("fastdl") or {}
    return [str(info[key]) for key in ("version", "isa") if info.get(key)]


def _color(index: int) -> str:
    return f"C{index % 10}"  # matplotlib's default cycle: the same peer, the same colour


def _draw_run(ax, run: SuiteRun, subject: Library, peers: Sequence[Library]) -> None:
    """One run's panel: per case a bar per peer from 1 to its ratio, the value at its end;
    the geometric means in the title; a note under the axis if some bar is missing."""
    names = [case_result.case.name for case_result in run.cases]
    band = 0.8 / max(1, len(peers))
    drawn: List[float] = []
    missing = False
    for index, peer in enumerate(peers):
        offset = (index - (len(peers) - 1) / 2) * band
        bars = [(row + offset, ratio) for row, ratio in enumerate(_ratios(run.cases, peer))
                if ratio]
        missing |= len(bars) < len(names)
        ax.barh([y for y, _ in bars], [ratio - 1.0 for _, ratio in bars], left=1.0,
                height=band, color=_color(index))
        for y, ratio in bars:
            ax.text(ratio, y, f" {fmt_ratio(ratio)} ", va="center", fontsize="x-small",
                    ha="left" if ratio >= 1.0 else "right")
        drawn += [ratio for _, ratio in bars]
    ax.axvline(1.0, color="black", linewidth=0.8)
    _ratio_axis(ax, _limits(drawn))
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)  # the first case on top, as in the table
    ax.set_title(_panel_title(run, subject, peers), fontsize="medium")
    note = "\nno bar: not compared (see the table)" if missing else ""
    ax.set_xlabel(f"peer ms / {subject.label} ms (log scale; right of 1: {subject.label} "
                  f"faster){note}")


def _ratios(case_results: Sequence[CaseResult], peer: Library) -> List[Optional[float]]:
    """The peer's ratio per case, None where it was not compared."""
    results = [case_result.results.get(peer.name) for case_result in case_results]
    return [None if result is None else result.ratio for result in results]


def _panel_title(run: SuiteRun, subject: Library, peers: Sequence[Library]) -> str:
    threads = f"{run.threads} thread{'s' if run.threads != 1 else ''}"
    summaries = summarize(run, subject.name)
    means = [f"{peer.label} {fmt_ratio(summaries[peer.name].geomean_ratio)}"
             for peer in peers
             if peer.name in summaries and summaries[peer.name].geomean_ratio]
    title = f"{threads}, {run.cache} cache"
    return title + (f"\ngeometric mean: {', '.join(means)}" if means else "")


def _ratio_axis(ax, limits: Tuple[float, float]) -> None:
    """A log x axis over `limits` with ticks at 1, 2, 5 x powers of ten labelled '2x'."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax.set_xscale("log")
    ax.set_xlim(*limits)
    ticks = [m * 10.0 ** e for e in range(-4, 5) for m in (1, 2, 5)]
    ax.xaxis.set_major_locator(FixedLocator([t for t in ticks
                                             if limits[0] <= t <= limits[1]]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}x"))
    ax.xaxis.set_minor_locator(NullLocator())


def _limits(ratios: Sequence[float]) -> Tuple[float, float]:
    """x limits around 1 and every ratio, with room for the value labels."""
    low, high = min([1.0, *ratios]), max([1.0, *ratios])
    margin = 10 ** (0.25 * max(math.log10(high / low), 0.3))
    return low / margin, high * margin
