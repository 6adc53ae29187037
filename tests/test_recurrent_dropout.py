"""recurrent_dropout trains as Keras 3 does (its implementation 1): each gate its own masks
on h_{t-1} and, with dropout, on the inputs, the same at every step. Keras' cells are given
the masks fastdl's layer draws (its seed's generator: inputs [G, N, F] then recurrent
[G, N, units], torch's gate order), and one SGD step must then match; fastdl.ops'
masks argument is checked."""
import numpy as np
import pytest

from keras_oracle import keras, pair  # skips this module without keras
import fastdl

STEPS, FEATURES, UNITS, N, SEED = 6, 3, 5, 8, 7
# fastdl's (torch's) gate order -> Keras': LSTM i, f, g, o both; GRU r, z, n -> z, r, h.
_KERAS_ORDER = {"LSTM": [0, 1, 2, 3], "GRU": [1, 0, 2], "SimpleRNN": [0]}


def _fastdl_masks(name, dropout, recurrent_dropout):
    gates = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[name]
    rng = np.random.default_rng(SEED)

    def draw(rate, features):
        kept = rng.random((gates, N, features), dtype=np.float32) >= rate
        return kept * np.float32(1.0 / (1.0 - rate))
    inputs = draw(dropout, FEATURES) if dropout else None
    return inputs, draw(recurrent_dropout, UNITS)


def _give_keras_the_masks(cell, name, masks):
    inputs, recurrent = masks
    order = _KERAS_ORDER[name]

    def as_keras(m):
        if m is None:
            return None
        tensors = [keras.ops.convert_to_tensor(m[g]) for g in order]
        return tensors[0] if name == "SimpleRNN" else tensors
    cell.get_dropout_mask = lambda _: as_keras(inputs)
    cell.get_recurrent_dropout_mask = lambda _: as_keras(recurrent)


@pytest.mark.parametrize("name, extra", [("LSTM", {}), ("GRU", {}),
                                         ("GRU", {"reset_after": False}), ("SimpleRNN", {})])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_one_sgd_step_matches_keras_with_the_same_masks(name, extra, dropout, go_backwards):
    rate = 0.4

    def build(L, Input):
        args = dict(dropout=dropout, recurrent_dropout=rate, go_backwards=go_backwards,
                    return_sequences=True, **extra)
        if L is fastdl.layers:
            args["seed"] = SEED
        return [Input((STEPS, FEATURES)), getattr(L, name)(UNITS, **args), L.Flatten(),
                L.Dense(2)]

    k, f = pair(build)
    masks = _fastdl_masks(name, dropout, rate)
    _give_keras_the_masks(k.layers[0].cell, name, masks)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, STEPS, FEATURES)).astype(np.float32)
    y = rng.standard_normal((N, 2)).astype(np.float32)
    np.testing.assert_allclose(f.predict(x, verbose=0), np.asarray(k.predict(x, verbose=0)),
                               rtol=1e-5, atol=1e-6)  # no dropout at inference
    k.compile(optimizer=keras.optimizers.SGD(0.3), loss="mse")
    f.compile(optimizer=fastdl.optimizers.SGD(0.3), loss="mse")
    kl, fl = float(k.train_on_batch(x, y)), f.train_on_batch(x, y)
    assert fl == pytest.approx(kl, rel=1e-5)
    for a, b in zip(f.get_weights(), k.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=2e-5, atol=2e-6)


def test_dropped_units_change_the_step_and_each_step_draws_anew():
    from fastdl import layers, models, optimizers
    rng = np.random.default_rng(2)
    x = rng.standard_normal((N, STEPS, FEATURES)).astype(np.float32)
    y = rng.standard_normal((N, 2)).astype(np.float32)

    def build(rate):
        model = models.Sequential([layers.Input((STEPS, FEATURES)),
                                   layers.LSTM(UNITS, recurrent_dropout=rate, seed=SEED),
                                   layers.Dense(2)])
        model.compile(optimizer=optimizers.SGD(0.1), loss="mse")
        return model

    dropped, plain = build(0.5), build(0.0)
    plain.set_weights(dropped.get_weights())
    first = dropped.train_on_batch(x, y)
    assert first != pytest.approx(plain.train_on_batch(x, y), rel=1e-6)
    plain.set_weights(dropped.get_weights())
    assert dropped.train_on_batch(x, y) != pytest.approx(dropped.evaluate(x, y, verbose=0),
                                                         rel=1e-6)


@pytest.mark.parametrize("masks, error, words", [
    ((None,), TypeError, "masks"),
    ("ab", TypeError, "masks"),
    ((None, np.ones((4, 2, 6), np.float32)), ValueError, "masks\\[1\\]"),
    ((np.ones((3, 2, 3), np.float32), None), ValueError, "masks\\[0\\]"),
])
def test_ops_masks_are_checked(masks, error, words):
    x = np.zeros((4, 2, 3), np.float32)
    w_ih, w_hh = np.zeros((20, 3), np.float32), np.zeros((20, 5), np.float32)
    with pytest.raises(error, match=words):
        fastdl.ops.rnn_layer_train("lstm", x, None, None, w_ih, w_hh, masks=masks)


@pytest.mark.parametrize("kind", ["lstm", "gru", "gru_reset_before", "rnn_tanh", "rnn_relu"])
def test_masks_of_ones_give_the_oracles_training_pair(kind):
    """fastdl/ops/rnn_masked.py is the oracle's recurrence with masks: all-ones masks must
    give fastdl._reference's forward and gradients."""
    from fastdl._reference import rnn as oracle
    gates = {"lstm": 4, "gru": 3, "gru_reset_before": 3}.get(kind, 1)
    rng = np.random.default_rng(4)
    T, B, I, H = 5, 3, 4, 6
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    h0 = rng.standard_normal((B, H)).astype(np.float32)
    c0 = rng.standard_normal((B, H)).astype(np.float32) if kind == "lstm" else None
    w_ih = rng.standard_normal((gates * H, I)).astype(np.float32) * 0.4
    w_hh = rng.standard_normal((gates * H, H)).astype(np.float32) * 0.4
    b_ih, b_hh = (rng.standard_normal(gates * H).astype(np.float32) for _ in range(2))
    ones = (np.ones((gates, B, I), np.float32), np.ones((gates, B, H), np.float32))
    for reverse in (False, True):
        got = fastdl.ops.rnn_layer_train(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse,
                                         masks=ones)
        want = oracle.rnn_layer_train(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse)
        for g, w in zip(got, want):
            if w is not None:
                np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)
        dy = rng.standard_normal((T, B, H)).astype(np.float32)
        dh = rng.standard_normal((B, H)).astype(np.float32)
        dc = rng.standard_normal((B, H)).astype(np.float32) if kind == "lstm" else None
        got = fastdl.ops.rnn_layer_backward(kind, dy, dh, dc, x, got[0], got[3], h0, c0,
                                            w_ih, w_hh, reverse, masks=ones)
        want = oracle.rnn_layer_backward(kind, dy, dh, dc, x, want[0], want[3], h0, c0,
                                         w_ih, w_hh, reverse)
        for g, w in zip(got, want):
            if w is not None:
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
