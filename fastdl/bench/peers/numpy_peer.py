"""NumPy peer (GEMM and dense only): ``@`` on the BLAS NumPy was built with.

NumPy's BLAS thread count is set through threadpoolctl when it is installed;
otherwise the BLAS keeps its own default and the runner's note says so. OpenBLAS'
idle workers busy-wait for about 2**28 cycles (~0.1 s) after a multi-threaded call,
so the timer pauses that long before timing another library.
"""

from __future__ import annotations

import numpy as np

from ..cases import CaseData, DenseCase, GemmCase
from .base import IDLE_SPIN_S, Library, Runner


class NumpyPeer(Library):
    name = "numpy"
    label = "numpy"
    module = "numpy"
    spins_when_idle = True

    def __init__(self) -> None:
        self._limits = None  # keeps the threadpoolctl limits in effect

    def _runner(self, call, threads: int) -> Runner:
        """A runner for ``call`` with the BLAS limited to ``threads`` threads if possible."""
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return Runner(call, settle_s=IDLE_SPIN_S,
                          note="BLAS thread count not controlled (threadpoolctl is not installed)")
        self._limits = threadpool_limits(limits=threads, user_api="blas")
        return Runner(call)

    def prepare_gemm(self, case: GemmCase, data: CaseData, threads: int) -> Runner:
        a, b = data["a"], data["b"]
        return self._runner(lambda: a @ b, threads)

    def prepare_dense(self, case: DenseCase, data: CaseData, threads: int) -> Runner:
        x, w_t, b = data["x"], data["w"].T, data["b"]

        def dense() -> np.ndarray:
            y = x @ w_t
            y += b
            return y

        return self._runner(dense, threads)
