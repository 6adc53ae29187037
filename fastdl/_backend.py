"""Backend selection: which implementation of the kernels runs.

FASTDL_BACKEND=native|numba|numpy forces one (ImportError if it cannot load). Unset, the
order is native (the compiled fastdl._C) -> numba -> numpy, with one warning saying why
when the first choice is unavailable. Every backend module provides the contract of
fastdl._contract; fastdl.ops calls `kernels` without asking which one it is.
"""
import importlib
import os
import warnings

from fastdl import _contract

_MODULES = {"native": "fastdl._native", "numba": "fastdl._numba", "numpy": "fastdl._reference"}


def _load(name):
    module = importlib.import_module(_MODULES[name])
    lacking = _contract.missing(module)
    if lacking:  # a build or install that does not match this Python code
        raise ImportError(f"{_MODULES[name]} lacks {', '.join(lacking)} of the backend "
                          f"contract (fastdl/_contract.py): reinstall fastdl")
    return module


def _select():
    requested = os.environ.get("FASTDL_BACKEND", "").strip().lower()
    if requested:
        if requested not in _MODULES:
            raise ValueError(f"FASTDL_BACKEND: expected one of {', '.join(_MODULES)}, "
                             f"got {requested!r}")
        return requested, _load(requested)
    reasons = []
    for name in _MODULES:
        try:
            module = _load(name)
        except ImportError as exc:
            reasons.append(f"{name}: {exc}")
            continue
        if reasons:
            warnings.warn(f"fastdl is using the {name} backend because "
                          + "; ".join(reasons), RuntimeWarning, stacklevel=3)
        return name, module
    raise ImportError("fastdl: no backend could be loaded: " + "; ".join(reasons))


_NAME, kernels = _select()


def backend():
    """The backend in use: 'native', 'numba' or 'numpy'."""
    return _NAME


def isa():
    """The instruction set the native kernels use ('avx512', 'avx2', 'neon', 'ref'), or
    the backend's name when the native kernels are not in use."""
    return kernels.isa()
