"""Facts about the machine and environment that belong in a benchmark report."""

from __future__ import annotations

import os
import platform
from typing import Dict, List, Optional


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> Optional[float]:
    """The 1-minute load average (None where unknown): other work skews timings."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def last_level_cache_bytes(default: int = 32 << 20) -> int:
    """Size of the largest CPU cache (from sysfs), or ``default`` if unknown."""
    root = "/sys/devices/system/cpu/cpu0/cache"
    sizes: List[int] = []
    try:
        entries = os.listdir(root)
    except OSError:
        return default
    for entry in entries:
        try:
            with open(os.path.join(root, entry, "size")) as f:
                text = f.read().strip().upper()
        except OSError:
            continue
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        scale = units.get(text[-1:], 1)
        digits = text[:-1] if text[-1:] in units else text
        if digits.isdigit():
            sizes.append(int(digits) * scale)
    return max(sizes, default=default)


def blas_environment() -> Dict[str, str]:
    """BLAS/OpenMP variables set in the environment (they change peers' timings)."""
    prefixes = ("OPENBLAS_", "OMP_", "MKL_", "GOTO", "BLIS_")
    return {key: value for key, value in sorted(os.environ.items())
            if key.startswith(prefixes)}


def numpy_blas() -> str:
    """The BLAS NumPy uses and its thread count, via threadpoolctl if installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    if not pools:
        return "unknown"
    return ", ".join(f"{p.get('internal_api')} {p.get('version')} "
                     f"({p.get('architecture') or '?'}, {p.get('num_threads')} threads)"
                     for p in pools)
