"""Bound traces (fastdl/models/bound_trace.py): once a model's buffers are placed, runs of
its steps on those buffers replay as one native CallSequence. Later calls must give
exactly what the first call (private buffers, every step in Python) gave, for every kind
of step that binds; weight changes and new input shapes must rebind; and the bound calls
themselves must refuse arrays they could not read or write in place."""
import numpy as np
import pytest

import fastdl
from fastdl import layers
from fastdl.models import Model, Sequential

_C = pytest.importorskip("fastdl._C")
if fastdl.backend() != "native":
    pytest.skip("bound calls are the native backend's", allow_module_level=True)

RNG = np.random.default_rng(23)


def _cifar_cnn():
    return Sequential([
        layers.Input((16, 16, 3)), layers.Conv2D(8, 2, padding="same", activation="relu"),
        layers.MaxPooling2D(2), layers.Conv2D(16, 2, padding="same", activation="relu"),
        layers.MaxPooling2D(2), layers.Dropout(0.3), layers.Flatten(),
        layers.Dense(20, activation="relu"), layers.Dense(5, activation="softmax")])


def _branches():
    """Add, Concatenate, average and global pooling, a Dense on a Flatten view."""
    x = layers.Input((9, 9, 4))
    a = layers.Conv2D(6, 3, padding="same", activation="relu")(x)
    b = layers.Conv2D(6, 1)(a)
    s = layers.Add()([a, b, layers.Conv2D(6, 1, activation="relu")(b)])
    c = layers.Concatenate()([s, layers.Conv2D(3, 3, padding="same")(s)])
    p = layers.AveragePooling2D(3, strides=2)(c)
    g = layers.GlobalMaxPooling2D()(c)
    d = layers.Dense(4)(layers.Flatten()(p))
    return Model(x, [layers.Concatenate()([d, g]), layers.GlobalAveragePooling2D(
        keepdims=True)(s)])


def _inverted_residuals():
    """MobileNetV2 blocks (chained where that pays), residual adds, a depthwise stride 2."""
    x = layers.Input((14, 14, 3))
    y = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    for stride, out in ((1, 8), (2, 16), (1, 16)):
        e = layers.ReLU(6.0)(layers.BatchNormalization()(layers.Conv2D(48, 1, use_bias=False)(y)))
        d = layers.ReLU(6.0)(layers.DepthwiseConv2D(3, stride, padding="same")(e))
        p = layers.BatchNormalization()(layers.Conv2D(out, 1, use_bias=False)(d))
        y = layers.Add()([y, p]) if stride == 1 and out == y.shape[-1] else p
    return Model(x, layers.Dense(3)(layers.GlobalAveragePooling2D()(y)))


BUILDERS = {"cifar_cnn": _cifar_cnn, "branches": _branches,
            "inverted_residuals": _inverted_residuals}


def _listed(y):
    return y if isinstance(y, list) else [y]


def _trace(model):
    traces = list(model._executor()._traces.values())
    assert len(traces) == 1
    return traces[0]


def _bound_runs(trace):
    return [op for op in trace.ops
            if getattr(op[0], "__qualname__", "").startswith("_run_op")]


def _randomized(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.3 + (
        1.0 if "variance" in name else 0.0) for w, name in zip(
        model.get_weights(), [w.name for w in model.weights])])


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("batch", [1, 3])
def test_bound_runs_give_what_the_steps_in_python_give(name, batch, monkeypatch):
    """Calls replaying bound runs equal the same trace with every step a Python call (bit
    for bit: the same kernels on the same memory) and the layers run one by one."""
    from fastdl.models import bound_trace
    fastdl.utils.clear_session()
    model = BUILDERS[name]()
    _randomized(model, 1)
    x = RNG.standard_normal((batch,) + model.input_shape[1:]).astype(np.float32)
    for _ in range(2):  # arena placed, then traced with bound runs
        model(x)
    bound = [_listed(model(x.copy())) for _ in range(2)]  # replayed
    trace = _trace(model)
    # One native call: channels_last inputs converted inside it, the small outputs (a
    # softmax Dense among them) written into buffers the runner copies out.
    assert len(trace.ops) == 1 and _bound_runs(trace) == trace.ops
    monkeypatch.setattr(bound_trace, "bound_calls", lambda *args: None)
    model._executor()._traces.clear()
    unbound = [_listed(model(x)) for _ in range(2)]
    assert not _bound_runs(_trace(model))
    for got in bound:
        for a, b in zip(got, unbound[-1], strict=True):
            np.testing.assert_array_equal(a, b)
    layout = fastdl.layers.layout
    ys, lays = model._executor().program.run([x], [layout.KERAS])  # layer by layer
    for a, y, lay in zip(bound[-1], ys, lays, strict=True):
        np.testing.assert_allclose(a, layout.to_keras(y, lay), rtol=1e-5, atol=1e-5)


def test_large_model_outputs_stay_new_arrays_each_call():
    """An output above the copied-out size is the step's own new array each call: that
    step stays a Python call after the bound run, and what a call returned stays."""
    from fastdl.models import inference
    fastdl.utils.clear_session()
    x_in = layers.Input((40, 40, 3))
    h = layers.Conv2D(8, 3, padding="same", activation="relu")(x_in)
    model = Model(x_in, [layers.Conv2D(16, 1)(h), layers.Dense(3, activation="softmax")(
        layers.GlobalAveragePooling2D()(h))])
    x = RNG.standard_normal((1, 40, 40, 3)).astype(np.float32)
    assert 40 * 40 * 16 > inference._COPIED_OUTPUT_FLOATS
    for _ in range(3):
        first = model(x)
    trace = _trace(model)
    python_ops = [op for op in trace.ops if op not in _bound_runs(trace)]
    assert len(python_ops) == 1 and python_ops[0][2] in trace.output_slots
    kept = [a.copy() for a in first]
    second = model(RNG.standard_normal(x.shape).astype(np.float32))
    for a, b, c in zip(first, kept, second, strict=True):
        np.testing.assert_array_equal(a, b)
        assert not np.shares_memory(a, c)


@pytest.mark.parametrize("shape", [(3, 10, 1), (2, 7, 5)])
@pytest.mark.parametrize("log", [False, True])
def test_bound_softmax_computes_the_kernels_softmax_in_place(shape, log):
    x = RNG.standard_normal(shape).astype(np.float32) * 4
    want = fastdl._backend.kernels.softmax(x, 1.0, log)
    y = np.zeros_like(x)
    _C.CallSequence([_C.bind_softmax(x, y, 1.0, log)]).run()
    np.testing.assert_array_equal(y, want)
    _C.CallSequence([_C.bind_softmax(x, x, 1.0, log)]).run()  # in place
    np.testing.assert_array_equal(x, want)
    with pytest.raises(ValueError, match="3-D"):
        _C.bind_softmax(x[0], x[0], 1.0, log)
    with pytest.raises(ValueError, match="out"):
        _C.bind_softmax(x, np.zeros(x.size + 1, np.float32), 1.0, log)


def test_new_weights_and_new_shapes_rebind():
    fastdl.utils.clear_session()
    model = _cifar_cnn()
    x1 = RNG.standard_normal((1, 16, 16, 3)).astype(np.float32)
    x2 = RNG.standard_normal((2, 16, 16, 3)).astype(np.float32)
    for _ in range(3):
        model(x1), model(x2)
    _randomized(model, 5)  # repacks the plans; the traces bound to them are dropped
    twin = _cifar_cnn()
    twin.set_weights(model.get_weights())
    for x in (x1, x2, x1):
        np.testing.assert_array_equal(model(x), twin(x))
        np.testing.assert_array_equal(model(x), twin(x))
    assert len(model._executor()._traces) == 2
    for trace in model._executor()._traces.values():
        assert len(_bound_runs(trace)) == 1


def test_outputs_of_bound_runs_are_the_callers():
    """A model output inside a bound run (a view of a buffer) is copied out, so a later
    call does not change what an earlier one returned."""
    fastdl.utils.clear_session()
    model = _branches()
    x = RNG.standard_normal((1, 9, 9, 4)).astype(np.float32)
    for _ in range(3):
        held = model(x)
    kept = [y.copy() for y in held]
    model(RNG.standard_normal(x.shape).astype(np.float32))
    for a, b in zip(held, kept, strict=True):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ the bound calls


def test_bound_add_and_copy_compute_what_numpy_does():
    a, b, c = (RNG.standard_normal((2, 3, 5)).astype(np.float32) for _ in range(3))
    out = np.zeros_like(a)
    seq = _C.CallSequence([_C.bind_add([a, b, c], out)])
    seq.run()
    np.testing.assert_array_equal(out, (a + b) + c)
    a += 1  # bound to the memory: the next run reads the new values
    seq.run()
    np.testing.assert_array_equal(out, (a + b) + c)
    big = np.zeros((4, 6, 5), np.float32)
    for src, dst in ((a, big[::2, 1:4]), (a[:, ::-1, 1:4], big[1::2, 3:, ::2][:, :, :3]),
                     (a.transpose(0, 2, 1), big[:2, :5, :3]), (a[::-1, ::2], big[2:, :2])):
        _C.CallSequence([_C.bind_copy(src, dst)]).run()
        np.testing.assert_array_equal(dst, src)
    assert len(seq) == 1
    for src in (np.array(2.5, np.float32), np.zeros((3, 0, 2), np.float32)):
        dst = np.full(src.shape, -1.0, np.float32)  # a 0-d array, an empty one
        _C.CallSequence([_C.bind_copy(src, dst)]).run()
        np.testing.assert_array_equal(dst, src)


@pytest.mark.parametrize("n", [8 * 4096, 8 * 4096 + 3, 12 * 4096 - 1])
@pytest.mark.parametrize("count", [2, 3])
def test_bound_adds_split_over_the_threads_sum_every_block(n, count):
    """Adds big enough to split over the threads (blocks of 4096 floats, the last one
    partial or not) sum every element, in the order of NumPy's fold."""
    previous = fastdl.get_num_threads()
    fastdl.set_num_threads(2)
    try:
        arrays = [RNG.standard_normal(n).astype(np.float32) for _ in range(count)]
        out = np.full(n, np.nan, np.float32)
        _C.CallSequence([_C.bind_add(arrays, out)]).run()
        want = arrays[0] + arrays[1]
        for a in arrays[2:]:
            want = want + a
        np.testing.assert_array_equal(out, want)
    finally:
        fastdl.set_num_threads(previous)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(3, 7, 9, 2), (2, 64, 96, 3), (1, 70, 60, 4),
                                   (1, 131, 67, 3), (5, 4, 3, 5),
                                   # pieces of 4096 pixels: exactly one, two; one +- a pixel
                                   (1, 64, 64, 3), (2, 64, 128, 2), (1, 1, 4097, 3),
                                   (1, 1, 4095, 4)])
def test_bound_layout_copies_of_any_size_copy_every_element(shape, threads):
    """NHWC -> NCHW copies (a Keras model's input): 2-4 channels read side by side, rows
    split into pieces of 4096 pixels (whole, and a partial last one) over the threads;
    5 channels the strided way. Also into a strided destination."""
    previous = fastdl.get_num_threads()
    fastdl.set_num_threads(threads)
    try:
        n, h, w, c = shape
        x = RNG.standard_normal(shape).astype(np.float32)
        staging = np.full((n, c, h, w), np.nan, np.float32)
        seq = _C.CallSequence([_C.bind_input_copy(0, staging.transpose(0, 2, 3, 1))])
        seq.run([x])
        np.testing.assert_array_equal(staging, x.transpose(0, 3, 1, 2))
        wide = np.full((n, c, h, w + 3), np.nan, np.float32)
        _C.CallSequence([_C.bind_copy(x, wide[..., 2:w + 2].transpose(0, 2, 3, 1))]).run()
        np.testing.assert_array_equal(wide[..., 2:w + 2], x.transpose(0, 3, 1, 2))
        assert np.isnan(wide[..., :2]).all() and np.isnan(wide[..., w + 2:]).all()
    finally:
        fastdl.set_num_threads(previous)


def test_bound_input_copies_read_the_arrays_each_run_is_given():
    """bind_input_copy: each run copies its inputs[index] (any strides, the shape bound)
    into the bound array; the calls after it read that copy."""
    staging = np.zeros((2, 3, 4, 5), np.float32)  # channels-first, held for the calls
    out = np.zeros_like(staging)
    seq = _C.CallSequence([_C.bind_input_copy(1, staging.transpose(0, 2, 3, 1)),
                           _C.bind_add([staging, staging], out)])
    for _ in range(2):
        x = RNG.standard_normal((2, 4, 5, 3)).astype(np.float32)  # channels-last
        seq.run([np.zeros(1, np.float32), x])
        np.testing.assert_array_equal(staging, x.transpose(0, 3, 1, 2))
        np.testing.assert_array_equal(out, 2 * staging)
    strided = RNG.standard_normal((2, 8, 5, 6)).astype(np.float32)[:, ::2, :, ::2]
    seq.run([strided, strided])
    np.testing.assert_array_equal(staging, strided.transpose(0, 3, 1, 2))
    with pytest.raises(ValueError, match="inputs"):
        seq.run([x])  # too few
    with pytest.raises(ValueError, match="inputs"):
        seq.run([x, x[:1]])  # another shape
    with pytest.raises(ValueError, match="inputs"):
        seq.run([x, x.astype(np.float64)])


def _unpickled(a):
    """a through pickle, as multiprocessing and Dask's transfers hand arrays over: float32
    all the same, but with its own dtype object, not numpy's canonical one."""
    import pickle
    b = pickle.loads(pickle.dumps(a, protocol=5))
    if b.dtype is a.dtype:
        pytest.skip("this numpy unpickles float32 with its canonical dtype object")
    return b


def test_unpickled_float32_inputs_run_the_bound_trace():
    """A model's bound trace (its third call on) and the bound copies take float32 arrays
    whatever dtype object they carry (a Dask worker's chunks failed 'not float32')."""
    fastdl.utils.set_random_seed(0)
    model = Sequential([layers.Input((8, 8, 3)), layers.Conv2D(4, 3, activation="relu"),
                        layers.Flatten(), layers.Dense(3)])
    x = RNG.random((32, 8, 8, 3), dtype=np.float32)
    want = model.predict(x, verbose=0)
    for _ in range(4):
        np.testing.assert_array_equal(model.predict(_unpickled(x), verbose=0), want)
    src, dst = _unpickled(x), np.zeros_like(x)
    _C.CallSequence([_C.bind_copy(src, dst)]).run()
    np.testing.assert_array_equal(dst, x)
    staging = _unpickled(np.zeros((32, 3, 8, 8), np.float32))
    _C.CallSequence([_C.bind_input_copy(0, staging.transpose(0, 2, 3, 1))]).run([src])
    np.testing.assert_array_equal(staging, x.transpose(0, 3, 1, 2))


def test_bound_calls_refuse_what_they_cannot_use_in_place():
    from fastdl import ops
    plan = ops.Conv2dPlan(RNG.standard_normal((4, 3, 3, 3)).astype(np.float32))
    x = RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)
    out = np.zeros((1, 4, 6, 6), np.float32)
    with pytest.raises(ValueError, match="x: expected a C-contiguous float32"):
        plan._impl.bind(np.asfortranarray(x), out)
    with pytest.raises(ValueError, match="x: expected a C-contiguous float32"):
        plan._impl.bind(x.astype(np.float64), out)
    with pytest.raises(ValueError, match="out"):
        plan._impl.bind(x, None)
    with pytest.raises(ValueError, match="out"):
        plan._impl.bind(x, np.zeros((1, 4, 5, 5), np.float32))
    with pytest.raises(ValueError, match="x: expected"):
        plan._impl.bind(x[:, :2].copy(), out)
    linear = ops.LinearPlan(RNG.standard_normal((5, 7)).astype(np.float32))
    with pytest.raises(ValueError, match="x: expected"):
        linear._impl.bind(np.zeros((2, 6), np.float32), np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="inputs"):
        _C.bind_add([x, x[:, :2].copy()], np.zeros_like(x))
    with pytest.raises(ValueError, match="src, dst"):
        _C.bind_copy(x, np.zeros((1, 3, 8, 7), np.float32))
    with pytest.raises(ValueError, match="calls"):
        _C.CallSequence([None])
    call = plan._impl.bind(x, out)
    _C.CallSequence([call]).run()
    np.testing.assert_array_equal(out, plan(x))
