"""Parametrizing tests over the backends and over the native kernels' variants
(fastdl._C.variants(op)).

Every compiled variant becomes a test parameter. One this CPU cannot run (AVX-512 on an
AVX2 machine) is a visibly skipped parameter, counted in pytest's summary, never a silently
shorter list.
"""
import importlib

import pytest

BACKEND_MODULES = {"native": "fastdl._native", "numba": "fastdl._numba",
                   "numpy": "fastdl._reference"}


def backend_module(name):
    """The backend module called `name` (as FASTDL_BACKEND names it), or skip the test where
    it does not load (no compiled extension, no numba)."""
    try:
        return importlib.import_module(BACKEND_MODULES[name])
    except ImportError as exc:
        pytest.skip(f"{name} backend unavailable: {exc}")

try:
    from fastdl import _C
except ImportError:  # no native extension: nothing to parametrize over
    _C = None


def runnable(op):
    """{name: info} of the variants of `op` this CPU runs (info: fastdl._C.variants)."""
    if _C is None:
        return {}
    return {name: info for name, info in _C.variants(op).items() if info is not None}


def unrunnable(op):
    """Names of the compiled variants of `op` this CPU cannot run."""
    if _C is None:
        return []
    return [name for name, info in _C.variants(op).items() if info is None]


def skipped(name, *values):
    """The parameter of a variant this CPU cannot run: visible as one skipped test."""
    return pytest.param(name, *values, id=name.split("__")[-1] + "-cpu-lacks-isa",
                        marks=pytest.mark.skip(reason=f"this CPU cannot run {name}"))


def variant_params(op, cases=None, fill=0):
    """Parameters over every compiled variant of `op`: (name,) or, with `cases(name, info)`
    returning a list of tuples (or pytest.params), (name, *case) per runnable variant; one
    skipped (name, None * fill) per variant this CPU cannot run."""
    params = []
    for name, info in runnable(op).items():
        if cases is None:
            params.append(pytest.param(name, id=name.split("__")[-1]))
        else:
            params += [c if isinstance(c, type(pytest.param())) else
                       pytest.param(name, *c) for c in cases(name, info)]
    params += [skipped(name, *([None] * fill)) for name in unrunnable(op)]
    return params
