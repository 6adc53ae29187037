"""Thread count of the kernels (FASTDL_NUM_THREADS sets the initial value), and, on
big.LITTLE CPUs, keeping the kernels on the big cores.

The native backend has a pool; the Numba and NumPy backends run on the calling thread and
only record the count (starting from FASTDL_NUM_THREADS, read as the native pool reads it),
so that code written for the native backend runs unchanged.
"""
import os

from fastdl import _backend
from fastdl import _validate as v

_affinity_before = None  # the CPUs allowed before big_cores_only restricted them


def big_cores(sysfs="/sys/devices/system/cpu"):
    """The CPUs (of those this process may use) with the highest capacity: the big cores
    of a big.LITTLE system (e.g. CPUs 4-7 of a Kirin 970), all of them elsewhere.

    Linux reports a core's relative capacity in cpuN/cpu_capacity (arm64); where that is
    missing, its maximum frequency in cpuN/cpufreq/cpuinfo_max_freq is used.
    """
    allowed = sorted(os.sched_getaffinity(0))

    def rating(cpu):
        for name in ("cpu_capacity", "cpufreq/cpuinfo_max_freq"):
            try:
                with open(os.path.join(sysfs, f"cpu{cpu}", name)) as f:
                    return int(f.read().strip())
            except (OSError, ValueError):
                continue
        return 0

    ratings = {cpu: rating(cpu) for cpu in allowed}
    best = max(ratings.values(), default=0)
    return [cpu for cpu in allowed if ratings[cpu] == best]


def set_num_threads(n, big_cores_only=False):
    """Use `n` threads (>= 1) in the kernels from now on. With big_cores_only=True the
    kernels' threads and the calling thread run only on the big cores (see big_cores());
    False lifts that restriction again."""
    global _affinity_before
    n = v.positive_int(n, "n")
    big_cores_only = v.flag(big_cores_only, "big_cores_only")
    kernels = _backend.kernels
    if big_cores_only:
        if _affinity_before is None:
            _affinity_before = sorted(os.sched_getaffinity(0))
        if not kernels.set_thread_affinity(big_cores()):
            raise OSError("big_cores_only: the OS refused to set the thread affinity")
    elif _affinity_before is not None:
        kernels.set_thread_affinity(_affinity_before)
        _affinity_before = None
    kernels.set_num_threads(n)


def get_num_threads():
    """The number of threads the kernels use."""
    return _backend.kernels.num_threads()
