"""fastdl.ops.conv1d / Conv1dPlan against torch.nn.functional.conv1d."""
import itertools

import numpy as np
import pytest

import fastdl

torch = pytest.importorskip("torch")
F = torch.nn.functional

RNG = np.random.default_rng(7)


def _torch_conv1d(x, w, b, stride, padding, dilation, groups):
    xt = torch.from_numpy(x)
    if isinstance(padding, tuple) and len(padding) == 2:  # (left, right): pad explicitly
        xt, padding = F.pad(xt, padding), 0
    bt = None if b is None else torch.from_numpy(b)
    return F.conv1d(xt, torch.from_numpy(w), bt, stride, padding, dilation, groups).numpy()


CASES = [  # (batch, cin, cout, length, k, stride, padding, dilation, groups)
    (2, 3, 5, 17, 3, 1, 1, 1, 1),
    (1, 64, 64, 100, 3, 1, "same", 1, 1),
    (2, 8, 8, 50, 3, 1, "same", 4, 1),       # dilated 'same' (TCN)
    (2, 8, 16, 40, 3, 1, (8, 0), 4, 1),      # causal: (dilation * (k - 1), 0)
    (1, 6, 6, 33, 5, 2, 2, 1, 6),            # depthwise, strided
    (3, 4, 6, 20, 4, 3, (1, 2), 2, 2),       # even kernel, asymmetric, grouped
    (2, 1, 3, 9, 9, 1, "valid", 1, 1),
    (0, 4, 4, 12, 3, 1, 1, 1, 1),            # empty batch
    (2, 8, 8, 12, 4, 1, "same", 1, 1),       # 'same' with an even kernel
    # depthwise, 'same', the padding far wider than the row: the direct plane kernel wrote
    # past the output row (segfault; found by tests/test_fuzz_io.py through from_torch)
    (2, 3, 3, 5, 3, 1, "same", 2**31 - 1, 3),
    (2, 2, 2, 2, 2, 1, "same", 2**31 - 1, 2),
]


@pytest.mark.filterwarnings("ignore:Using padding=.same.:UserWarning")
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("bias", [False, True])
def test_conv1d_matches_torch(case, bias):
    n, cin, cout, length, k, stride, padding, dilation, groups = case
    x = RNG.standard_normal((n, cin, length), dtype=np.float32)
    w = RNG.standard_normal((cout, cin // groups, k), dtype=np.float32)
    b = RNG.standard_normal(cout, dtype=np.float32) if bias else None
    got = fastdl.ops.conv1d(x, w, b, stride, padding, dilation, groups)
    want = _torch_conv1d(x, w, b, stride, padding, dilation, groups)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(cin * k))


def test_plan_reused_unbatched_and_with_activation():
    w = RNG.standard_normal((4, 2, 3), dtype=np.float32)
    plan = fastdl.ops.Conv1dPlan(w, padding=(2, 0), activation="relu")
    for length in (1, 7, 64):
        x = RNG.standard_normal((2, length), dtype=np.float32)
        want = np.maximum(_torch_conv1d(x[None], w, None, 1, (2, 0), 1, 1)[0], 0)
        np.testing.assert_allclose(plan(x), want, rtol=1e-5, atol=1e-5)
    # One plan class for every rank: sizes are 1-tuples, as torch.nn.Conv1d's kernel_size.
    assert plan.padding == (2, 0) and plan.kernel_size == (3,) and plan.stride == (1,)


@pytest.mark.parametrize("kwargs,error,name", [
    (dict(stride=0), ValueError, "stride"),
    (dict(dilation=(1, 2)), ValueError, "dilation"),  # 2 values for 1 axis (as in 2-D/3-D)
    (dict(padding=(1, 2, 3)), ValueError, "padding"),
    (dict(padding=-1), ValueError, "padding"),
    (dict(padding="same", stride=2), ValueError, "padding"),
    (dict(groups=3), ValueError, "groups"),
])
def test_bad_arguments_name_themselves(kwargs, error, name):
    x = np.ones((1, 4, 10), np.float32)
    w = np.ones((4, 4, 3), np.float32)
    with pytest.raises(error, match=name):
        fastdl.ops.conv1d(x, w, **kwargs)


def test_bad_shapes():
    with pytest.raises(ValueError, match="w:"):
        fastdl.ops.conv1d(np.ones((1, 4, 10), np.float32), np.ones((4, 4, 3, 3), np.float32))
    with pytest.raises(ValueError, match="x:"):
        fastdl.ops.conv1d(np.ones((1, 3, 10), np.float32), np.ones((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="x:"):
        fastdl.ops.conv1d(np.ones((1, 4, 2), np.float32), np.ones((4, 4, 3), np.float32))
