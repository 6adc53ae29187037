"""Bad input at the public boundary of fastdl.ops, fuzzed: every public function and plan
(tests/fuzz_calls.py holds one valid call of each) is called with one or two of its
arguments spoiled -- wrong rank, a zero-size axis, a size off by one (mismatched weights),
NaN/Inf, another dtype (int, float64, complex, object, bool, float16), a strided or
reversed view, a read-only array, a list, a scalar, None, a zero-stride view of 2^59
elements, out-of-range indices; negative, zero, huge (2^62, 2^63, -2^63) and non-integer
sizes; unknown strings.

Each call must either work (a legal value: the outputs are then float32 where they are
floats, finite where the inputs were) or raise ValueError / TypeError whose message starts
by naming an argument (MemoryError for sizes no machine holds; the calls run with 4 GiB of
address space to spare). Anything else -- another exception, a crash, a hang (30 s
alarm) -- fails.

FASTDL_FUZZ_EXAMPLES sets the examples per function (CI: 25; the long run, `-m fuzz` with
FASTDL_FUZZ_EXAMPLES=2000, is the figure in docs/reliability.md).
"""
import inspect
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fuzz_calls import VALID
from spoilers import Hang, check_outputs, guarded_call, judge, names_an_argument, spoil

EXAMPLES = int(os.environ.get("FASTDL_FUZZ_EXAMPLES", "25"))

pytestmark = pytest.mark.fuzz


def _names(fn):
    """The argument names a message may start with: the call's and its plan's."""
    names = set(inspect.signature(fn).parameters)
    plan = getattr(fn, "plan_class", None)
    if plan is not None:
        names |= set(inspect.signature(plan).parameters) | {"x", "input_shape"}
    return names - {"kwargs"}



@pytest.mark.parametrize("name", sorted(VALID))
@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 50,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_bad_input_raises_a_clear_error_or_works(name, data):
    fn, kwargs = VALID[name]()
    spoiled = spoil(data, kwargs)
    try:
        result, error = guarded_call(fn, **kwargs)
    except Hang as exc:
        pytest.fail(f"{name} with {spoiled}: {exc}")
    judge(error, f"{name} with {spoiled}", lambda m: names_an_argument(m, _names(fn)))
    if error is None:
        check_outputs(result, spoiled, name)
