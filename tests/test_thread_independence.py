"""Every op's result is the same, bit for bit, at 1, 2 and 3 threads (random shapes per op
family), and so is a model after fit.

The kernels split work by thread count, but never a sum: GEMMs split rows or columns and
block K by the whole problem's shape, weight gradients sum fixed chunks in a fixed order,
the embedding gradient sums each row on one thread, the RNNs split the batch. A test here
fails when a change lets the thread count into an order of summation.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

import fastdl
from fastdl import layers, models, ops

from results import leaves

COUNTS = (1, 2, 3)
# `threads` restores the count after the test: sharing it between examples is fine.
EXAMPLES = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_same_at_every_count(threads, compute):
    results = []
    for n in COUNTS:
        threads(n)
        results.append([np.asarray(a) for a in leaves(compute())])
    for n, got in zip(COUNTS[1:], results[1:]):
        assert len(got) == len(results[0])
        for k, (a, b) in enumerate(zip(results[0], got)):
            assert np.array_equal(a, b, equal_nan=True), f"output {k} differs at {n} threads"


def _rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


@st.composite
def conv_problems(draw):
    dims = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 1, 2, "depthwise"]))
    cin = draw(st.integers(1, 12)) * (2 if groups == 2 else 1)
    if groups == "depthwise":
        groups = cin
    cout = groups * draw(st.integers(1, 3)) if groups > 1 else draw(st.integers(1, 24))
    size = {1: (8, 300), 2: (4, 28), 3: (3, 10)}[dims]
    spatial = tuple(draw(st.integers(*size)) for _ in range(dims))
    kernel = tuple(draw(st.integers(1, min(3, s))) for s in spatial)
    stride = draw(st.integers(1, 2))
    padding = draw(st.integers(0, min(kernel) - 1))
    batch = draw(st.integers(1, 5))
    return dims, batch, cin, cout, groups, spatial, kernel, stride, padding, draw(st.integers())


@EXAMPLES
@given(conv_problems())
# One image of many column blocks: the transposed conv splits its channels by thread count.
@example((3, 1, 8, 16, 1, (8, 9, 7), (3, 3, 3), 2, 0, 0))
def test_convolutions_forward_and_backward(threads, problem):
    dims, batch, cin, cout, groups, spatial, kernel, stride, padding, seed = problem
    rng = np.random.default_rng(seed % 2**32)
    x, w, b = _rand(rng, batch, cin, *spatial), _rand(rng, cout, cin // groups, *kernel), \
        _rand(rng, cout)
    conv = getattr(ops, f"conv{dims}d")
    backward = getattr(ops, f"conv{dims}d_backward")
    transpose = getattr(ops, f"conv_transpose{dims}d")
    y = conv(x, w, b, stride, padding, 1, groups, "relu")
    dy = _rand(rng, *y.shape)
    w_t = _rand(rng, cin, cout // groups, *kernel)
    assert_same_at_every_count(threads, lambda: (
        conv(x, w, b, stride, padding, 1, groups, "relu"),
        backward(dy, x, w, stride, padding, 1, groups),
        transpose(x, w_t, None, stride, padding, 0, groups)))


@EXAMPLES
@given(st.integers(1, 300), st.integers(1, 300), st.integers(1, 600), st.integers())
@example(42, 85, 269, 0)  # split by rows at 2 threads: one row panel per task
@example(17, 3, 300, 0)   # a lone last row at 2 threads
def test_linear_and_matmul_forward_and_backward(threads, m, n, k, seed):
    rng = np.random.default_rng(seed % 2**32)
    x, w, b, dy = _rand(rng, m, k), _rand(rng, n, k), _rand(rng, n), _rand(rng, m, n)
    assert_same_at_every_count(threads, lambda: (
        ops.linear(x, w, b, "tanh"), ops.matmul(x, w.T.copy()), ops.linear_backward(dy, x, w)))


@EXAMPLES
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 40), st.integers(2, 3),
       st.integers())
def test_pooling_and_batch_norm_forward_and_backward(threads, dims, batch, channels, k, seed):
    rng = np.random.default_rng(seed % 2**32)
    size = {1: 200, 2: 24, 3: 10}[dims]
    x = _rand(rng, batch, channels, *(size,) * dims)
    ones, zeros = np.ones(channels, np.float32), np.zeros(channels, np.float32)
    max_pool, avg_pool = getattr(ops, f"max_pool{dims}d"), getattr(ops, f"avg_pool{dims}d")
    max_back = getattr(ops, f"max_pool{dims}d_backward")
    avg_back = getattr(ops, f"avg_pool{dims}d_backward")
    y, idx = max_pool(x, k, return_indices=True)
    dy = _rand(rng, *y.shape)
    dy_avg = _rand(rng, *avg_pool(x, k, 1, 1).shape)
    assert_same_at_every_count(threads, lambda: (
        max_pool(x, k, return_indices=True), max_back(dy, idx, x.shape),
        avg_pool(x, k, 1, 1), avg_back(dy_avg, x.shape, k, 1, 1),
        ops.global_avg_pool(x), ops.global_max_pool(x),
        ops.batch_norm(x, zeros.copy(), ones.copy(), ones, zeros, training=True),
        ops.batch_norm_backward(x * 0.5 + 1, x, weight=ones)))


@EXAMPLES
@given(st.sampled_from(["lstm", "gru"]), st.integers(1, 30), st.integers(1, 24),
       st.integers(1, 40), st.integers(1, 70), st.integers())
def test_recurrent_forward_and_backward(threads, kind, steps, batch, inputs, hidden, seed):
    rng = np.random.default_rng(seed % 2**32)
    gates = 4 if kind == "lstm" else 3
    x = _rand(rng, steps, batch, inputs)
    w_ih, w_hh = _rand(rng, gates * hidden, inputs) * 0.3, _rand(rng, gates * hidden, hidden) * 0.3
    b = _rand(rng, gates * hidden)
    dy = _rand(rng, steps, batch, hidden)
    if kind == "lstm":
        assert_same_at_every_count(threads, lambda: (
            ops.lstm(x, None, None, w_ih, w_hh, b, b),
            ops.lstm_backward(dy, None, None, x, None, None, w_ih, w_hh, b, b)))
    else:
        assert_same_at_every_count(threads, lambda: (
            ops.gru(x, None, w_ih, w_hh, b, b),
            ops.gru_backward(dy, None, x, None, w_ih, w_hh, b, b)))


@EXAMPLES
@given(st.integers(1, 2000), st.integers(1, 200), st.integers(1, 70), st.integers())
def test_embedding_activations_and_losses(threads, rows, classes, dim, seed):
    rng = np.random.default_rng(seed % 2**32)
    indices = rng.integers(0, classes, (rows,))
    grad = _rand(rng, rows, dim)
    logits = _rand(rng, rows, classes)
    assert_same_at_every_count(threads, lambda: (
        ops.embedding_backward(grad, indices, classes),
        ops.softmax(logits), ops.silu(logits), ops.log_softmax(logits),
        ops.cross_entropy(logits, indices), ops.cross_entropy_backward(logits, indices)))


def _trained_weights(threads, n, build, x):
    threads(n)
    fastdl.utils.set_random_seed(5)
    model = build()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, np.arange(len(x)) % 10, batch_size=32, epochs=2, verbose=0)
    return model.get_weights()


@pytest.mark.parametrize("kind", ["cnn", "recurrent"])
def test_fit_gives_the_same_weights_at_every_thread_count(threads, kind):
    rng = np.random.default_rng(0)
    if kind == "cnn":
        x = _rand(rng, 96, 16, 16, 3)
        build = lambda: models.Sequential([  # noqa: E731
            layers.Input((16, 16, 3)), layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.BatchNormalization(), layers.MaxPooling2D(), layers.DepthwiseConv2D(3),
            layers.Conv2D(32, 1), layers.GlobalAveragePooling2D(), layers.Dropout(0.2),
            layers.Dense(10, activation="softmax")])
    else:
        x = _rand(rng, 96, 30, 8)
        build = lambda: models.Sequential([  # noqa: E731
            layers.Input((30, 8)), layers.Conv1D(16, 3, activation="relu"),
            layers.LSTM(32, return_sequences=True), layers.GRU(16),
            layers.Dense(10, activation="softmax")])
    first = _trained_weights(threads, 1, build, x)
    for n in COUNTS[1:]:
        for a, b in zip(first, _trained_weights(threads, n, build, x)):
            np.testing.assert_array_equal(a, b, err_msg=f"{n} threads")
