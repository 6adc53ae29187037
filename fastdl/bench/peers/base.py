"""The contract between the benchmark suite and one library (fastdl or a peer).

A :class:`Library` turns a case (see :mod:`fastdl.bench.cases`) plus its input arrays
into a :class:`Runner`: a zero-argument callable that performs exactly the work
being timed, with everything that a real application would do only once (weight
packing, session or network creation, converting NumPy arrays to the library's
tensor type) already done in :meth:`Library.prepare`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Optional

import numpy as np

from ..cases import Case, CaseData


class Unsupported(Exception):
    """The library cannot run this case; the message says why (shown in --json)."""


# How long a library's idle pool threads may keep spinning after a multi-threaded call
# (OpenBLAS: about 0.1 s; OpenMP's spin-wait in PyTorch, TensorFlow's Eigen pool): the
# timer's pause before another library, which would otherwise share the cores with them
# (measured: a fastdl training step at 2 threads ran 2x slower right after PyTorch's and
# TensorFlow's; fastdl's MobileNetV2 at 2 threads right after ONNX Runtime's ran at its
# 1-thread speed).
IDLE_SPIN_S = 0.2


@dataclass
class Runner:
    """One prepared kernel call.

    ``call()`` runs the kernel once and returns the library's native output;
    ``to_numpy(output)`` converts such an output to a NumPy array of the case's
    output shape (used once, for checking, never timed). ``note`` is an optional
    remark on how the measurement was made (e.g. a thread count not controlled).
    ``settle_s``: how long the library's idle worker threads may keep spinning on
    the cores after a call; the timer pauses that long before timing another
    library (see :mod:`fastdl.bench.timing`). ``steps_ms``: for a whole model, a
    function giving the sum of its steps' (kernels') times, when the library reports
    them; called once the model has been timed.
    """

    call: Callable[[], object]
    to_numpy: Callable[[object], np.ndarray] = np.asarray
    note: Optional[str] = None
    settle_s: float = 0.0
    # Whole models: the sum of the steps' own times, measured after the timing (when the
    # machine is in the state the timing left it), if the library reports it.
    steps_ms: Optional[Callable[[], float]] = None


class Library:
    """Base class of the library adapters.

    Subclasses set ``name`` (the key in --json), ``label`` (a short column title)
    and ``module`` (the import name probed for availability), and implement one
    ``prepare_<kind>(case, data, threads)`` method per case kind they support
    (``conv2d``, ``gemm``, ``dense``).
    """

    name: str = ""
    label: str = ""
    module: str = ""
    # Its pool's idle workers spin a while after a multi-threaded call (OpenMP, Eigen,
    # ONNX Runtime's and ncnn's pools): its multi-threaded runners then settle IDLE_SPIN_S
    # unless they set settle_s themselves.
    spins_when_idle: bool = False

    def load(self) -> ModuleType:
        """The library's top-level module; raises ImportError if not installed."""
        return importlib.import_module(self.module)

    def version(self) -> str:
        """The installed version; raises ImportError if not installed."""
        return str(getattr(self.load(), "__version__", "unknown"))

    def supports(self, kind: str) -> bool:
        """Whether this adapter has an operation for cases of `kind`."""
        return callable(getattr(self, f"prepare_{kind}", None))

    def prepare(self, case: Case, data: CaseData, threads: int) -> Runner:
        """A runner computing ``case`` on ``data`` with ``threads`` threads.

        Library-wide thread settings (torch, BLAS, fastdl) are applied here and stay
        in effect afterwards. Raises :class:`Unsupported` if the library cannot run
        the case and ImportError if it is not installed.
        """
        method = getattr(self, f"prepare_{case.kind}", None)
        if method is None:
            raise Unsupported(f"{self.name} has no {case.kind} operation in this suite")
        runner = method(case, data, threads)
        if self.spins_when_idle and threads > 1 and not runner.settle_s:
            runner.settle_s = IDLE_SPIN_S
        return runner
