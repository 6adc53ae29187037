"""Interleaved timing of several callables: warm up, then alternate rounds.

Measuring every library in the same rounds (in rotating order) spreads frequency
changes, noisy neighbours and thermal drift evenly over them, so ratios stay
meaningful on a busy machine. Within a round each library runs a block of
consecutive samples (about budget / rounds long), after one untimed call: thread
pools of the library that ran before may still be spinning on the cores, and
switching library on every call would charge that to the next one. A library
whose idle workers keep spinning for long (OpenBLAS: about 0.1 s) can ask for a
pause after its block (``settle_s``) so the next library gets the cores to itself.

Each sample is the mean time of a small batch of calls (a batch lasts about
``sample_target_s``, so microsecond-scale calls are not dominated by the clock);
the reported figure is the median over samples. In cache-cold mode every sample is
a single call made right after the CPU caches were flushed by streaming through a
buffer twice the size of the last-level cache.
"""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional

import numpy as np

from .machine import last_level_cache_bytes

Clock = Callable[[], int]


@dataclass(frozen=True)
class TimingSettings:
    """How long and how often to measure each library on each case.

    ``budget_s``: time per library per case, spread over ``rounds`` blocks (ignored
    when ``repeat`` is given); ``repeat``: exact number of samples per library, one
    per round; ``warmup_s``: untimed calls first; ``min_samples``: at least this
    many samples even if a call exceeds the budget; ``sample_target_s``: batch calls
    so that one sample lasts about this long (warm cache only); ``cold``: flush the
    caches before every sample.
    """

    budget_s: float = 0.5
    repeat: Optional[int] = None
    rounds: int = 5
    warmup_s: float = 0.1
    min_samples: int = 3
    sample_target_s: float = 1e-3
    cold: bool = False

    def __post_init__(self) -> None:
        if self.budget_s <= 0:
            raise ValueError(f"budget_s must be > 0, got {self.budget_s}")
        if self.repeat is not None and self.repeat < 1:
            raise ValueError(f"repeat must be >= 1, got {self.repeat}")
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")


@dataclass
class Timing:
    """Samples of one library on one case: nanoseconds per call, one per sample."""

    per_call_ns: List[float] = field(default_factory=list)
    calls_per_sample: int = 1

    @property
    def median_ms(self) -> float:
        return statistics.median(self.per_call_ns) / 1e6

    @property
    def samples(self) -> int:
        return len(self.per_call_ns)


class CacheFlusher:
    """Evicts the CPU caches by writing a buffer twice the last-level cache size."""

    def __init__(self, nbytes: Optional[int] = None) -> None:
        self._buffer = np.zeros(nbytes or 2 * last_level_cache_bytes(), dtype=np.uint8)

    def __call__(self) -> None:
        self._buffer += 1


def _warm_up(call: Callable[[], object], seconds: float, clock: Clock) -> float:
    """Call repeatedly for about ``seconds`` (at least twice); best ns per call."""
    durations = []
    deadline = clock() + int(seconds * 1e9)
    while len(durations) < 2 or clock() < deadline:
        start = clock()
        call()
        durations.append(clock() - start)
    return max(1.0, float(min(durations[1:])))


def measure_interleaved(calls: Mapping[str, Callable[[], object]], settings: TimingSettings,
                        flush: Optional[Callable[[], None]] = None,
                        settle_s: Optional[Mapping[str, float]] = None,
                        clock: Clock = time.perf_counter_ns,
                        sleep: Callable[[float], None] = time.sleep) -> Dict[str, Timing]:
    """Time every callable in ``calls``, alternating between them, per ``settings``.

    ``flush`` (required when ``settings.cold``) is called, untimed, before each
    cold sample; its time, like the untimed call at the start of each block, still
    counts against the budget. ``settle_s[name]`` is a pause after each of that
    callable's blocks when others are measured too. Returns one :class:`Timing`
    per name. Exceptions from a callable propagate.
    """
    if settings.cold and flush is None:
        raise ValueError("cold timing needs a flush callable")
    names = list(calls)
    timings: Dict[str, Timing] = {}
    for name in names:
        best_ns = _warm_up(calls[name], settings.warmup_s, clock)
        batch = 1 if settings.cold else max(1, int(settings.sample_target_s * 1e9 // best_ns))
        timings[name] = Timing(calls_per_sample=batch)
    spent_ns = dict.fromkeys(names, 0)
    budget_ns = settings.budget_s * 1e9

    def sample(name: str) -> None:
        call, timing = calls[name], timings[name]
        begin = clock()
        if settings.cold:
            flush()
        start = clock()
        for _ in range(timing.calls_per_sample):
            call()
        end = clock()
        timing.per_call_ns.append((end - start) / timing.calls_per_sample)
        spent_ns[name] += end - begin

    def finished(name: str) -> bool:
        count = timings[name].samples
        if settings.repeat is not None:
            return count >= settings.repeat
        return count >= settings.min_samples and spent_ns[name] >= budget_ns

    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        active, round_index = names, 0
        while active:
            block_end_ns = budget_ns * min(1.0, (round_index + 1) / settings.rounds)
            shift = round_index % len(active)
            for name in active[shift:] + active[:shift]:
                if len(names) > 1:  # let the previous library's threads go idle
                    start = clock()
                    calls[name]()
                    spent_ns[name] += clock() - start
                sample(name)
                while settings.repeat is None and spent_ns[name] < block_end_ns:
                    sample(name)
                if len(names) > 1 and settle_s and settle_s.get(name):
                    sleep(settle_s[name])
            round_index += 1
            active = [name for name in active if not finished(name)]
    finally:
        if gc_was_enabled:
            gc.enable()
    return timings
