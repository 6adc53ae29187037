"""Thread count of the native kernels' pool (FASTDL_NUM_THREADS sets the initial value).

The Numba and NumPy backends run on the calling thread; for them the count is only
recorded, so that code written for the native backend runs unchanged.
"""
import os

from fastdl import _backend
from fastdl._validate import positive_int

_recorded = None


def set_num_threads(n):
    """Use `n` threads (>= 1) in the kernels from now on."""
    global _recorded
    n = positive_int(n, "n")
    if _backend.backend() == "native":
        _backend.kernels.set_num_threads(n)
    else:
        _recorded = n


def get_num_threads():
    """The number of threads the kernels use."""
    if _backend.backend() == "native":
        return _backend.kernels.num_threads()
    return _recorded or len(os.sched_getaffinity(0))
