"""BatchNormalization training against Keras 3 (torch backend): the same model, weights,
data and optimizer in both; after one SGD step and after a 3-epoch Adam fit every weight
(moving statistics included) agrees, and so does predict() after fit -- through the
compiled model, whose convolution or Dense layer has the BN folded into its plan.
Dense->BN, Conv2D->BN->relu, BN on axis 1 (channels_first maps, a middle axis), center /
scale off, a frozen BN (inference mode while training), a BN on the model's input.

A layer feeding a training-mode BN has no bias here: the BN cancels it, so its gradient is
rounding noise of order 1e-9, which Adam's normalised step turns into moves of up to the
learning rate, in whichever direction each library's noise points (Keras recommends
use_bias=False there); for the same reason a BN's beta reaches the next BN through an
activation. The frozen BN's Dense keeps its bias: its gradient is real."""
from __future__ import annotations

import numpy as np
import pytest

from keras_oracle import keras, pair  # skips this module without keras
import fastdl


def assert_weights(f, k, rtol=1e-4, what=""):
    fw, kw = f.get_weights(), k.get_weights()
    assert len(fw) == len(kw)
    for i, (a, b) in enumerate(zip(fw, kw)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, np.abs(b).max()),
                                   err_msg=f"{what} weight {i}")


def dense_bn(L, Input):
    return [Input((6,)), L.Dense(8, use_bias=False), L.BatchNormalization(momentum=0.8),
            L.Activation("relu"), L.Dense(3, activation="softmax")]


def conv_bn(L, Input):
    return [Input((7, 6, 2)), L.Conv2D(4, 3, padding="same", use_bias=False),
            L.BatchNormalization(momentum=0.7, epsilon=1e-4), L.Activation("relu"),
            L.Flatten(), L.Dense(3, activation="softmax")]


def conv_bn_channels_first(L, Input):
    return [Input((2, 6, 5)), L.Conv2D(3, 3, data_format="channels_first", use_bias=False),
            L.BatchNormalization(axis=1, momentum=0.8), L.Activation("tanh"),
            L.Flatten(), L.Dense(3, activation="softmax")]


def middle_axis(L, Input):  # features on axis 1 of (batch, 5, 4): a middle axis
    return [Input((5, 4)), L.BatchNormalization(axis=1, momentum=0.6),
            L.Dense(3, use_bias=False), L.BatchNormalization(axis=-1, momentum=0.9), L.Flatten(),
            L.Dense(3, activation="softmax")]


def no_center_no_scale(L, Input):
    return [Input((6,)), L.Dense(8, use_bias=False),
            L.BatchNormalization(center=False, momentum=0.8), L.Activation("elu"),
            L.Dense(5, use_bias=False), L.BatchNormalization(scale=False, momentum=0.8),
            L.Activation("tanh"), L.Dense(4, use_bias=False),
            L.BatchNormalization(center=False, scale=False, momentum=0.5),
            L.Dense(3, activation="softmax")]


def frozen(L, Input):
    return [Input((6,)), L.Dense(8), L.BatchNormalization(trainable=False, momentum=0.5),
            L.Activation("relu"), L.Dense(5, use_bias=False),
            L.BatchNormalization(momentum=0.5),
            L.Dense(3, activation="softmax")]


def conv3d_bn(L, Input):
    return [Input((4, 5, 4, 2)), L.Conv3D(3, 2, padding="same", use_bias=False),
            L.BatchNormalization(momentum=0.8), L.Activation("relu"), L.Flatten(),
            L.Dense(3, activation="softmax")]


MODELS = [dense_bn, conv_bn, conv_bn_channels_first, middle_axis, no_center_no_scale, frozen,
          conv3d_bn]
FOLDED = {dense_bn, conv_bn, conv_bn_channels_first, conv3d_bn}  # BN folded at inference
SHAPES = {dense_bn: (6,), conv_bn: (7, 6, 2), conv_bn_channels_first: (2, 6, 5),
          middle_axis: (5, 4), no_center_no_scale: (6,), frozen: (6,), conv3d_bn: (4, 5, 4, 2)}


def data(build, n, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n,) + SHAPES[build]) * 1.5 + 0.5).astype(np.float32)
    return x, np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]


@pytest.mark.parametrize("build", MODELS, ids=lambda b: b.__name__)
def test_one_sgd_step_matches_keras(build):
    k, f = pair(build)
    x, y = data(build, 12)
    for model, lib in ((k, keras), (f, fastdl)):
        model.compile(optimizer=lib.optimizers.SGD(0.1), loss="categorical_crossentropy")
    kl = k.train_on_batch(x, y)
    fl = f.train_on_batch(x, y)
    assert fl == pytest.approx(float(kl), rel=1e-5)
    assert_weights(f, k, rtol=2e-5, what=build.__name__)


@pytest.mark.parametrize("build", MODELS, ids=lambda b: b.__name__)
def test_adam_fit_then_predict_matches_keras(build):
    k, f = pair(build)
    x, y = data(build, 40, seed=1)
    for model, lib in ((k, keras), (f, fastdl)):
        model.compile(optimizer=lib.optimizers.Adam(0.01), loss="categorical_crossentropy",
                      metrics=["accuracy"])
    # predict before fit: the compiled model (BN folded) is built on the old statistics
    # and must follow the new ones afterwards.
    np.testing.assert_allclose(f.predict(x, verbose=0), k.predict(x, verbose=0), rtol=1e-4,
                               atol=1e-5)
    if build in FOLDED:
        assert any(getattr(step.layer, "bn", None) is not None
                   for step in f._executor().compiled.steps), "BN not folded"
    kh = k.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    fh = f.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    assert_weights(f, k, rtol=1e-4, what=build.__name__)
    for key in kh.history:
        np.testing.assert_allclose(fh.history[key], kh.history[key], rtol=1e-4, atol=1e-6,
                                   err_msg=key)
    np.testing.assert_allclose(f.predict(x, verbose=0), k.predict(x, verbose=0), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(f.evaluate(x, y, verbose=0), k.evaluate(x, y, verbose=0),
                               rtol=1e-4)


def test_moving_statistics_follow_keras_rule_and_frozen_layer_keeps_them():
    k, f = pair(frozen)
    x, y = data(frozen, 12, seed=2)
    frozen_bn, live_bn = f.layers[1], f.layers[4]
    before = [w.copy() for w in frozen_bn.get_weights()]
    live_before = [w.copy() for w in live_bn.get_weights()]
    h = f.layers[3](f.layers[2](frozen_bn(f.layers[0](x))))  # the live BN's input (inference)
    f.compile(optimizer=fastdl.optimizers.SGD(0.0), loss="categorical_crossentropy")
    f.train_on_batch(x, y)
    for a, b in zip(frozen_bn.get_weights(), before):  # frozen: nothing moves
        np.testing.assert_array_equal(a, b)
    gamma, beta, mean, var = live_bn.get_weights()
    np.testing.assert_allclose(mean, 0.5 * live_before[2] + 0.5 * h.mean(axis=0), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(var, 0.5 * live_before[3] + 0.5 * h.var(axis=0), rtol=1e-4)
    assert [w.name for w in f.non_trainable_weights][-2:] == [
        f"{live_bn.name}/moving_mean", f"{live_bn.name}/moving_variance"]


def test_state_only_step_updates_and_reaches_predict():
    """A model whose only trainable weights are frozen still moves a BN's statistics (no
    gradients to apply): predict (compiled, BN folded into the Dense) sees them."""
    _, f = pair(dense_bn)
    f.layers[0].trainable = False
    f.layers[3].trainable = False
    x, y = data(dense_bn, 16, seed=3)
    bn = f.layers[1]
    bn.gamma.trainable = bn.beta.trainable = False
    f.compile(optimizer="sgd", loss="categorical_crossentropy")
    before = f.predict(x, verbose=0)
    f.train_on_batch(x, y)
    after = f.predict(x, verbose=0)
    mean, var = bn.moving_mean.value, bn.moving_variance.value
    h = f.layers[0](x)
    want = f.layers[3](np.maximum(
        (h - mean) / np.sqrt(var + bn.epsilon) * bn.gamma.value + bn.beta.value, 0))
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, want, rtol=1e-5, atol=1e-6)


def test_shared_bn_and_nested_model_match_keras():
    """A BN shared by two branches (its statistics move once per use, one after the other,
    as Keras' assigns do) and a BN inside a nested model."""
    from keras_oracle import pair_model

    def build(ns):
        L = ns.layers
        inner_in = ns.Input((5,))
        h = L.Dense(5, use_bias=False, name="inner_dense")(inner_in)
        h = L.BatchNormalization(momentum=0.7, name="inner_bn")(h)
        inner = ns.Model(inner_in, L.Activation("tanh", name="inner_tanh")(h), name="inner")
        a, b = ns.Input((5,), name="a"), ns.Input((5,), name="b")
        shared = L.BatchNormalization(momentum=0.6, name="shared_bn")
        ha = L.Activation("tanh")(shared(inner(a)))
        hb = L.Activation("relu")(shared(b))
        return ns.Model([a, b], [L.Dense(3, activation="softmax", name="out_a")(ha),
                                 L.Dense(3, activation="softmax", name="out_b")(hb)])

    k, f = pair_model(build)
    rng = np.random.default_rng(7)
    xa, xb = (rng.standard_normal((24, 5)).astype(np.float32) + 0.3 for _ in range(2))
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 24)]
    for model, lib in ((k, keras), (f, fastdl)):
        model.compile(optimizer=lib.optimizers.Adam(0.01), loss="categorical_crossentropy")
    k.fit([xa, xb], [y, y[::-1]], batch_size=8, epochs=2, shuffle=False, verbose=0)
    f.fit([xa, xb], [y, y[::-1]], batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert_weights(f, k, rtol=1e-4, what="shared/nested")
    for got, want in zip(f.predict([xa, xb], verbose=0), k.predict([xa, xb], verbose=0)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_frozen_base_model_runs_its_bn_in_inference_mode_as_keras():
    """model.trainable = False freezes every layer inside (Keras 3): the base's BN keeps its
    statistics and normalises with them while the head trains (transfer learning)."""
    from keras_oracle import pair_model

    def build(ns):
        L = ns.layers
        base_in = ns.Input((6,))
        h = L.Dense(5, name="base_dense")(base_in)
        base = ns.Model(base_in, L.Activation("relu")(L.BatchNormalization(
            momentum=0.5, name="base_bn")(h)), name="base")
        x = ns.Input((6,))
        return ns.Model(x, L.Dense(3, activation="softmax", name="head")(base(x)))

    k, f = pair_model(build)
    for model in (k, f):
        model.get_layer("base").trainable = False
    x, y = data(dense_bn, 24, seed=8)
    before = f.get_layer("base").get_weights()
    for model, lib in ((k, keras), (f, fastdl)):
        model.compile(optimizer=lib.optimizers.Adam(0.01), loss="categorical_crossentropy")
    k.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    f.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert_weights(f, k, rtol=1e-4, what="frozen base")
    for a, b in zip(f.get_layer("base").get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert all(not layer.trainable for layer in f.get_layer("base").layers)
    f.get_layer("base").trainable = True  # unfreezing unfreezes every layer inside
    assert all(layer.trainable for layer in f.get_layer("base").layers)
