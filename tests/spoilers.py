"""Spoiling valid arguments for the bad-input fuzz tests (tests/test_fuzz_*.py), and
running a spoiled call under guard: a 30 s alarm against hangs, 4 GiB of address space to
spare against runaway allocations.

An argument is spoiled by its type: arrays, numbers, strings, tuples (sizes, shapes), lists
of arrays (weights), functions of arrays (a Lambda's) and other objects (a layer given to a
wrapper); other values get a few generic spoilers, and a test adds its own with `extra`."""
import functools
import os
import re
import resource
import signal
import types
import warnings

import numpy as np
import pytest
from hypothesis import strategies as st

from results import leaves

HANG_S = 30
# Each call may map this much more address space: what would take more raises MemoryError
# instead of growing until the machine's OOM killer ends the run. (A spoiled call has no
# business allocating gigabytes; the valid ones take kilobytes.)
MEMORY_HEADROOM = 4 << 30

HUGE_INTS = [2**62, 2**63, -2**63, 2**31, 2**31 - 1 + 2**32]


def _array_spoilers(value):
    """(label, function of a hypothesis draw -> spoiled value) for an array argument."""
    integer = value.dtype.kind in "iu"
    out = [
        ("rank + 1", lambda d: value[None]),
        ("rank - 1", lambda d: value[0] if value.ndim and len(value) else value[None]),
        ("zero-size axis", lambda d: np.zeros(tuple(0 if i == d.draw(
            st.integers(0, max(0, value.ndim - 1))) else s for i, s in enumerate(value.shape)),
            value.dtype)),
        ("axis + 1", lambda d: np.concatenate([value, value.take([0], axis=(ax := d.draw(
            st.integers(0, max(0, value.ndim - 1)))))], axis=ax) if value.ndim else value),
        ("dtype", lambda d: value.astype(d.draw(st.sampled_from(
            [np.int32, np.int64, np.float64, np.complex64, np.bool_, np.float16, object])))),
        ("strided view", lambda d: np.repeat(value, 2, axis=-1)[..., ::2] if value.ndim
         else value),
        ("reversed view", lambda d: value[..., ::-1] if value.ndim else value),
        ("read-only", lambda d: _read_only(value)),
        ("list", lambda d: value.tolist()),
        ("scalar", lambda d: d.draw(st.sampled_from([1.0, 0, True]))),
        ("None", lambda d: None),
        ("string", lambda d: "abc"),
        ("2^59 elements", lambda d: np.broadcast_to(value.reshape(-1)[:1] if value.size
                                                    else np.zeros(1, value.dtype),
                                                    (2**29, 2**30))),
    ]
    if integer:
        out += [("index out of range", lambda d: _with(value, d, d.draw(st.sampled_from(
            [-1, -2, 10**6, 2**40, 2**62, -2**63]))))]
    else:
        out += [("NaN/Inf", lambda d: _with(value, d, d.draw(st.sampled_from(
            [np.nan, np.inf, -np.inf]))))]
    return out


def _read_only(value):
    v = value.copy()
    v.setflags(write=False)
    return v


def _with(value, d, x):
    if value.size == 0:
        return value
    v = value.astype(np.float64 if isinstance(x, float) else value.dtype, copy=True)
    if isinstance(x, int) and v.dtype.kind in "iu":
        info = np.iinfo(v.dtype)
        if not info.min <= x <= info.max:
            v = v.astype(object)
    v.flat[d.draw(st.integers(0, v.size - 1))] = x
    return v


def _scalar_spoilers(value):
    ints = [0, -1, -7] + HUGE_INTS
    common = [("None", lambda d: None), ("string", lambda d: "abc"),
              ("list", lambda d: [value, value]), ("array", lambda d: np.array([1.5, 2.0]))]
    if isinstance(value, bool):
        return common + [("int", lambda d: d.draw(st.sampled_from([2, 0, -1]))),
                         ("float", lambda d: 1.0)]
    if isinstance(value, int):
        return common + [("bad int", lambda d: d.draw(st.sampled_from(ints))),
                         ("float", lambda d: d.draw(st.sampled_from([1.5, float("nan"),
                                                                     float("inf")]))),
                         ("bool", lambda d: True),
                         ("tuple", lambda d: tuple(d.draw(st.lists(
                             st.sampled_from([1, 2, 0, -1, 2**62]), max_size=5))))]
    if isinstance(value, float):
        return common + [("bad float", lambda d: d.draw(st.sampled_from(
            [float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 1e308, -1e308]))),
                         ("huge int", lambda d: d.draw(st.sampled_from(HUGE_INTS)))]
    if isinstance(value, str):
        return [("None", lambda d: None), ("unknown", lambda d: "nonsense"),
                ("int", lambda d: 3), ("bytes", lambda d: value.encode())]
    if isinstance(value, tuple):
        return common + [("entries", lambda d: tuple(d.draw(st.lists(
            st.sampled_from([0, -1, 1, 3, 2**62, 2**63, 1.5, "a"]), min_size=len(value),
            max_size=len(value))))),
                         ("length", lambda d: value + value[-1:] if value else (1,)),
                         ("short", lambda d: value[:-1])]
    return common


def _list_spoilers(value):
    """For a list of arrays (a layer's weights): entries missing, extra or swapped, one
    entry spoiled as an array (which one and how: the draws), or not a list at all."""
    def entry(d):
        i = d.draw(st.integers(0, len(value) - 1), label="entry")
        _, make = d.draw(st.sampled_from(_array_spoilers(value[i])), label="entry spoiler")
        return value[:i] + [make(d)] + value[i + 1:]
    return [("None", lambda d: None), ("string", lambda d: "abc"),
            ("array", lambda d: np.array([1.5, 2.0])), ("short", lambda d: value[:-1]),
            ("long", lambda d: value + value[:1]), ("reversed", lambda d: value[::-1]),
            ("tuple", lambda d: tuple(value)), ("nested", lambda d: [value]),
            ("entry", entry)]


class UserFunctionError(Exception):
    """What a spoiled user function (the "raises" spoiler) raises."""


def _raises(*args, **kwargs):
    raise UserFunctionError("the user's function failed")


def raised_by(error, functions):
    """Whether `error` came out of one of `functions` (the user's own code): a frame of
    theirs is in its traceback."""
    codes = {f.__code__ for f in functions if hasattr(f, "__code__")}
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code in codes:
            return True
        tb = tb.tb_next
    return False


def _function_spoilers(value):
    """For a function of arrays (a Lambda's): not a function, a function of the wrong
    arity, raising, or returning what is not an array of the right shape."""
    def returning(make):
        return lambda *a, **k: make(np.asarray(value(*a, **k)))
    return [
        ("None", lambda d: None), ("string", lambda d: "nonsense"), ("int", lambda d: 3),
        ("raises", lambda d: _raises),
        ("no arguments", lambda d: (lambda: 0)),
        ("builtin", lambda d: len),
        ("returns None", lambda d: (lambda *a, **k: None)),
        ("returns a string", lambda d: (lambda *a, **k: "abc")),
        ("returns a scalar", lambda d: returning(lambda r: np.float32(1.0))),
        ("returns rank + 1", lambda d: returning(lambda r: r[None])),
        ("returns rank - 1", lambda d: returning(lambda r: r[0] if r.ndim else r)),
        ("returns the first sample", lambda d: returning(lambda r: r[:1])),
        ("returns a list", lambda d: returning(lambda r: [r, r])),
        ("returns a ragged list", lambda d: returning(lambda r: [r, r[..., :1]])),
        ("returns complex", lambda d: returning(lambda r: r.astype(np.complex64))),
        ("returns objects", lambda d: returning(lambda r: r.astype(object))),
        ("returns NaN", lambda d: returning(lambda r: np.full(r.shape, np.nan))),
        ("returns 2^59 elements", lambda d: returning(lambda r: np.broadcast_to(
            np.float32(1.0), (2**29, 2**30)))),
    ]


def _object_spoilers(value):
    """For an object argument (a layer given to a wrapper): not one, or its class."""
    return [("None", lambda d: None), ("string", lambda d: "abc"), ("int", lambda d: 3),
            ("class", lambda d: type(value)), ("object", lambda d: object()),
            ("function", lambda d: (lambda *a, **k: None)),
            ("dict", lambda d: d.draw(st.sampled_from([{}, {"class_name": 3}])))]


_FUNCTIONS = (types.FunctionType, types.BuiltinFunctionType, types.MethodType,
              functools.partial)


def _spoilers(value):
    if isinstance(value, np.ndarray):
        return _array_spoilers(value)
    if isinstance(value, list) and value and all(isinstance(a, np.ndarray) for a in value):
        return _list_spoilers(value)
    if isinstance(value, _FUNCTIONS):
        return _function_spoilers(value)
    if value is None or isinstance(value, (bool, int, float, str, tuple, list, dict,
                                           np.generic)):
        return _scalar_spoilers(value)
    return _object_spoilers(value)


def names_an_argument(message, names):
    """Whether the message's head (before the first colon) names one of `names`."""
    head = re.split(r"[:;]", message, maxsplit=1)[0]
    words = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", head))
    return bool(words & names)


def _address_space():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"no answer within {HANG_S} s")


# Spoilers that keep the values (finite, as the valid call's): a result that works must then
# be finite too (the valid calls' are).
SAME_VALUES = {"rank + 1", "rank - 1", "zero-size axis", "axis + 1", "strided view",
               "reversed view", "read-only", "list"}


def spoil(data, kwargs, max_args=2, extra=None):
    """Spoils 1 (usually) to max_args distinct arguments of kwargs in place; returns
    {argument: spoiler label}. extra: {argument: [(label, function of a draw -> value)]},
    spoilers of that argument beyond the general ones for its type (say, other layers for
    a layer-valued argument)."""
    args = sorted(kwargs)
    count = min(len(args), data.draw(st.sampled_from([1, 1, 1, max_args]),
                                     label="arguments spoiled"))
    spoiled = {}
    for arg in data.draw(st.lists(st.sampled_from(args), min_size=count, max_size=count,
                                  unique=True), label="arguments"):
        choices = _spoilers(kwargs[arg]) + list((extra or {}).get(arg, ()))
        label, make = data.draw(st.sampled_from(choices), label=f"{arg} spoiler")
        kwargs[arg] = make(data)
        spoiled[arg] = label
    return spoiled


def guarded_call(fn, /, *args, **kwargs):
    """fn(*args, **kwargs) under the alarm and the address-space limit, warnings off:
    (result, None) or (None, the exception); a hang raises Hang."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_S)
    limit = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_address_space() + MEMORY_HEADROOM, limit[1]))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs), None
    except Hang:
        raise
    except Exception as exc:  # judged by the caller
        return None, exc
    finally:
        resource.setrlimit(resource.RLIMIT_AS, limit)
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def judge(error, what, names_one, detail=""):
    """The verdict on a spoiled call's exception (None: it worked): a ValueError/TypeError
    whose message satisfies names_one(message) (it names an argument), or a MemoryError;
    anything else fails the test. `detail` is added to the failure's message."""
    if isinstance(error, (ValueError, TypeError)):
        assert names_one(str(error)), (
            f"{what}: the message names no argument: {error!r}{detail}"[:3000])
    elif error is not None and not isinstance(error, MemoryError):
        pytest.fail(f"{what}: {type(error).__name__}, not ValueError/TypeError: "
                    f"{error!r}{detail}"[:3000])


def check_outputs(result, spoiled, what):
    """A call that worked: float outputs are float32, and finite when the spoilers kept
    the (finite) values."""
    same_values = set(spoiled.values()) <= SAME_VALUES
    for out in (a for a in leaves(result) if isinstance(a, np.ndarray)):
        if out.dtype.kind == "f":
            assert out.dtype == np.float32, f"{what} with {spoiled}: output {out.dtype}"
            if same_values:
                assert np.isfinite(out).all(), f"{what} with {spoiled}: non-finite output"
