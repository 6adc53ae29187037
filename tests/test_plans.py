"""What every plan of fastdl.ops promises, on every backend: it owns its weights (a caller
changing its array afterwards changes nothing; the weights it shows are read-only), takes
new ones with set_weights (the result is that of a plan built with them, and right), and
writes into a caller's `out` array (checked; on the native backend without allocating)."""
import tracemalloc

import numpy as np
import pytest

from fastdl import ops
from fastdl import _reference as reference
from fastdl.ops import conv, conv_transpose, gemm, rnn
from native_variants import backend_module

RNG = np.random.default_rng(3)


def rand(*shape):
    return RNG.standard_normal(shape, dtype=np.float32)


@pytest.fixture(params=["native", "numba", "numpy"])
def backend(request, monkeypatch):
    """Runs the plans on one backend (as FASTDL_BACKEND would select it)."""
    module = backend_module(request.param)
    for ops_module in (conv, conv_transpose, gemm, rnn):
        monkeypatch.setattr(ops_module, "kernels", module)
    return request.param


# (label, make(w, b) -> plan, weight shapes (w, b), x shape). Shapes reach each algorithm of
# the native convolution: Winograd 2-D and 3-D, depthwise, im2col, pointwise.
CONV_PLANS = [
    ("conv2d-winograd", lambda w, b: ops.Conv2dPlan(w, b, padding=1), (8, 8, 3, 3), (1, 8, 12, 10)),
    ("conv2d-depthwise", lambda w, b: ops.Conv2dPlan(w, b, padding=1, groups=16),
     (16, 1, 3, 3), (2, 16, 9, 11)),
    ("conv2d-strided", lambda w, b: ops.Conv2dPlan(w, b, stride=2, padding=1, activation="relu"),
     (5, 3, 3, 3), (2, 3, 11, 9)),
    ("conv2d-pointwise", lambda w, b: ops.Conv2dPlan(w, b), (7, 17, 1, 1), (1, 17, 5, 6)),
    ("conv1d-causal", lambda w, b: ops.Conv1dPlan(w, b, padding=(4, 0), dilation=2),
     (6, 4, 3), (2, 4, 20)),
    ("conv3d-winograd", lambda w, b: ops.Conv3dPlan(w, b, padding=1), (8, 8, 3, 3, 3),
     (1, 8, 3, 5, 6)),
    ("conv_transpose2d", lambda w, b: ops.ConvTranspose2dPlan(w, b, stride=2, padding=1),
     (4, 3, 4, 4), (2, 4, 5, 6)),
    ("conv_transpose1d", lambda w, b: ops.ConvTranspose1dPlan(w, b, stride=3, groups=2),
     (4, 2, 5), (1, 4, 7)),
    ("linear", lambda w, b: ops.LinearPlan(w, b, activation="tanh"), (9, 13), (4, 13)),
    ("linear-transposed", lambda w, b: ops.LinearPlan(w, b, activation="relu", transposed=True),
     (13, 9), (4, 13)),
]
BIAS_SIZE = {"conv_transpose2d": 3, "conv_transpose1d": 4, "linear-transposed": 9}


def test_transposed_linear_plan_packs_the_same_panels(backend):
    """A [in, out] kernel through transposed=True gives bit for bit what its [out, in]
    transpose gives, after set_weights too; shapes and repr say which layout it takes."""
    w, w2, b = rand(70, 33), rand(70, 33), rand(33)
    x = rand(5, 70)
    plan = ops.LinearPlan(w, b, "relu", transposed=True)
    assert (plan.in_features, plan.out_features, plan.weight.shape) == (70, 33, (70, 33))
    assert "transposed=True" in repr(plan)
    np.testing.assert_array_equal(plan(x), ops.LinearPlan(w.T, b, "relu")(x))
    plan.set_weights(w2, b)
    np.testing.assert_array_equal(plan(x), ops.LinearPlan(w2.T, b, "relu")(x))
    with pytest.raises(ValueError, match="w"):
        plan.set_weights(w2.T, b)
    with pytest.raises(ValueError, match="x"):
        plan(rand(5, 33))


def _weights(label, w_shape):
    w = rand(*w_shape)
    b = rand(BIAS_SIZE.get(label, w_shape[0]))
    return w, b


def _reference_plan(make, w, b, monkeypatch_free=True):
    """The same plan on the NumPy reference (the oracle)."""
    saved = [m.kernels for m in (conv, conv_transpose, gemm)]
    try:
        for m in (conv, conv_transpose, gemm):
            m.kernels = reference
        return make(w, b)
    finally:
        for m, k in zip((conv, conv_transpose, gemm), saved):
            m.kernels = k


def _close(got, want, what):
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4, err_msg=what)


@pytest.mark.parametrize("label,make,w_shape,x_shape", CONV_PLANS, ids=[p[0] for p in CONV_PLANS])
def test_plan_owns_its_weights(backend, label, make, w_shape, x_shape):
    w, b = _weights(label, w_shape)
    x = rand(*x_shape)
    plan = make(w, b)
    want = _reference_plan(make, w.copy(), b.copy())(x)
    w += 1.0  # the caller changes its arrays: the plan computes with its own copy
    b[:] = 0.0
    _close(plan(x), want, label)
    assert not plan.weight.flags.writeable and not plan.bias.flags.writeable
    with pytest.raises(ValueError):
        plan.weight[...] = 0.0


@pytest.mark.parametrize("label,make,w_shape,x_shape", CONV_PLANS, ids=[p[0] for p in CONV_PLANS])
def test_set_weights_gives_what_a_plan_built_with_them_gives(backend, label, make, w_shape,
                                                             x_shape):
    w1, b1 = _weights(label, w_shape)
    w2, b2 = _weights(label, w_shape)
    x = rand(*x_shape)
    plan = make(w1, b1)
    _close(plan(x), _reference_plan(make, w1, b1)(x), label)  # builds any lazy state
    for w, b in ((w2, b2), (w1, b1), (w2.astype(np.float64), b2)):
        plan.set_weights(w, b)
        want = _reference_plan(make, np.asarray(w, np.float32), b)(x)
        _close(plan(x), want, label)
        np.testing.assert_array_equal(plan(x), make(w, b)(x))
        np.testing.assert_array_equal(plan.weight, np.asarray(w, np.float32))


@pytest.mark.parametrize("label,make,w_shape,x_shape", CONV_PLANS, ids=[p[0] for p in CONV_PLANS])
def test_adopted_weights_are_the_plans_own(backend, label, make, w_shape, x_shape):
    """adopt_weights (layers' repack after a step): float32 C-contiguous arrays of the plan's
    shapes become its weights uncopied; others (float64, a transposed view) are copied as
    set_weights copies them; either way the plan computes as one built with them."""
    from fastdl.ops._plan import adopt_weights
    w1, b1 = _weights(label, w_shape)
    w2, b2 = _weights(label, w_shape)
    x = rand(*x_shape)
    plan = make(w1, b1)
    adopt_weights(plan, w2, b2)
    assert plan._w is w2 and plan._b is b2
    np.testing.assert_array_equal(plan(x), make(w2, b2)(x))
    w3, kept = w1.astype(np.float64), w2.copy()
    adopt_weights(plan, w3, b1)
    assert plan._w is not w3 and plan._w is not w2
    np.testing.assert_array_equal(w2, kept)  # the array adopted before is left alone
    np.testing.assert_array_equal(plan(x), make(w1, b1)(x))


@pytest.mark.parametrize("label,make,w_shape,x_shape", CONV_PLANS, ids=[p[0] for p in CONV_PLANS])
def test_set_weights_refuses_other_shapes(label, make, w_shape, x_shape):
    w, b = _weights(label, w_shape)
    plan = make(w, b)
    with pytest.raises(ValueError, match="^w: expected shape"):
        plan.set_weights(w[:1], b)
    with pytest.raises(ValueError, match="^b: expected shape"):
        plan.set_weights(w, b[:-1])
    with pytest.raises(ValueError, match="^b: expected a bias"):
        plan.set_weights(w)
    with pytest.raises(ValueError, match="^b: expected None"):
        make(w, None).set_weights(w, b)
    with pytest.raises(TypeError, match="^w:"):
        plan.set_weights(w.astype(complex), b)
    x = rand(*x_shape)
    np.testing.assert_array_equal(plan(x), make(w, b)(x))  # a refused call changed nothing


@pytest.mark.parametrize("label,make,w_shape,x_shape", CONV_PLANS, ids=[p[0] for p in CONV_PLANS])
def test_out_receives_the_result(backend, label, make, w_shape, x_shape):
    w, b = _weights(label, w_shape)
    x = rand(*x_shape)
    plan = make(w, b)
    want = plan(x)
    out = np.full(want.shape, np.nan, np.float32)
    assert plan(x, out=out) is out
    np.testing.assert_array_equal(out, want)
    if not label.startswith("linear"):  # unbatched: out has the unbatched shape
        single = np.empty(want.shape[1:], np.float32)
        assert plan(x[0], out=single) is single
        np.testing.assert_array_equal(single, want[0])
    for bad, error, match in [(out.astype(np.float64), TypeError, "dtype float32"),
                              (out[..., :-1], ValueError, "shape"),
                              (np.empty(want.shape[::-1], np.float32).T, ValueError,
                               "C-contiguous"),
                              (list(out), TypeError, "numpy array")]:
        with pytest.raises(error, match=f"^out: expected .*{match}"):
            plan(x, out=bad)
    frozen = np.empty_like(want)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="^out: expected a writeable"):
        plan(x, out=frozen)


def _rnn_weights(gates, inputs, hidden, layers, dirs):
    w_ih, w_hh, b_ih, b_hh = [], [], [], []
    for layer in range(layers):
        for _ in range(dirs):
            w_ih.append(rand(gates * hidden, inputs if layer == 0 else dirs * hidden))
            w_hh.append(rand(gates * hidden, hidden))
            b_ih.append(rand(gates * hidden))
            b_hh.append(rand(gates * hidden))
    return w_ih, w_hh, b_ih, b_hh


@pytest.mark.parametrize("cls,gates", [(ops.LSTMPlan, 4), (ops.GRUPlan, 3)])
@pytest.mark.parametrize("batch_first", [False, True])
def test_rnn_plans_own_take_new_weights_and_fill_out(backend, cls, gates, batch_first):
    first = _rnn_weights(gates, 5, 6, 2, 2)
    second = _rnn_weights(gates, 5, 6, 2, 2)
    x = rand(3, 4, 5)  # [T, B, I], or [B, T, I] with batch_first
    plan = cls(*first, bidirectional=True, batch_first=batch_first)
    y_first = plan(x)[0]
    first[0][0] += 1.0  # the caller's array: no effect on the plan
    np.testing.assert_array_equal(plan(x)[0], y_first)
    assert not plan.weights[0][0].flags.writeable
    plan.set_weights(*second)
    fresh = cls(*second, bidirectional=True, batch_first=batch_first)
    np.testing.assert_array_equal(plan(x)[0], fresh(x)[0])
    saved = rnn.kernels
    rnn.kernels = reference
    try:
        want = cls(*second, bidirectional=True, batch_first=batch_first)(x)[0]
    finally:
        rnn.kernels = saved
    _close(plan(x)[0], want, cls.__name__)
    out = np.empty_like(want)
    y, _ = plan(x, out=out)
    assert y is out
    np.testing.assert_array_equal(out, fresh(x)[0])
    unbatched = np.empty_like(want[:, 0] if not batch_first else want[0])
    y, _ = plan(x[:, 0] if not batch_first else x[0], out=unbatched)
    assert y is unbatched
    with pytest.raises(ValueError, match="^out: expected shape"):
        plan(x, out=np.empty((1,) + want.shape, np.float32))
    with pytest.raises(ValueError, match=r"^w_hh\[1\]: expected shape"):
        plan.set_weights(second[0], [second[1][0], second[1][1][:-1]] + second[1][2:],
                         *second[2:])
    with pytest.raises(ValueError, match=r"^b_ih: expected a bias"):
        plan.set_weights(second[0], second[1], None, second[3])
    np.testing.assert_array_equal(plan(x)[0], fresh(x)[0])  # refused calls changed nothing


def _allocated_while(call, times=10):
    """Peak bytes Python and NumPy allocate during `times` calls of `call` (warmed up)."""
    call()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(times):
            call()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_out_path_allocates_nothing_on_the_native_backend():
    """plan(x, out=y) on the native backend: no array is allocated on the hot path (only
    small Python objects: the argument checks' tuples)."""
    pytest.importorskip("fastdl._C")
    cases = [(ops.Conv2dPlan(rand(16, 16, 3, 3), rand(16), padding=1), rand(1, 16, 32, 32)),
             (ops.Conv1dPlan(rand(16, 16, 3), None, padding=1), rand(2, 16, 500)),
             (ops.ConvTranspose2dPlan(rand(16, 8, 4, 4), None, stride=2), rand(1, 16, 20, 20)),
             (ops.LinearPlan(rand(256, 64)), rand(64, 64))]
    for plan, x in cases:
        out = np.empty_like(plan(x))
        grown = _allocated_while(lambda: plan(x, out=out))
        assert grown < 4096 < out.nbytes, (type(plan).__name__, grown)
    lstm = ops.LSTMPlan(rand(256, 32), rand(256, 64))
    x = rand(20, 8, 32)
    out = np.empty_like(lstm(x)[0])
    # h_n and c_n are small new arrays (2 x 8 x 64 floats); y is not allocated.
    grown = _allocated_while(lambda: lstm(x, out=out))
    assert grown < out.nbytes // 2, grown
