"""fastdl.regularizers and regularized training against Keras 3 (torch backend): penalty
values and gradients (autograd through Keras' regularizers), names, defaults and configs;
layers taking kernel_/bias_/activity_regularizer (Dense, Conv2D, the depthwise family's
own names); one SGD step of a regularized Dense and Conv2D model against Keras'
train_on_batch (loss and weights to 1e-5 relative), a fit with evaluate, model.losses, a
frozen layer, several outputs; .keras files keep their regularizers; bad arguments."""
from __future__ import annotations

import numpy as np
import pytest

from keras_oracle import keras  # skips this module without keras
import fastdl
from fastdl import layers, regularizers
from fastdl.io import load_keras

# These tests seed and draw: the modules after them see the global random state unmoved.
pytestmark = pytest.mark.usefixtures("isolated_random_state")

RNG = np.random.default_rng(0)


def rand(shape, seed, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def keras_penalty_and_grad(reg, x):
    import torch
    t = torch.tensor(x, requires_grad=True)
    value = reg(t)
    value.backward()
    return float(value.detach()), t.grad.numpy()


# ------------------------------------------------------------ the regularizers themselves

PAIRS = [
    (lambda R: R.L1(), "L1()"), (lambda R: R.L2(), "L2()"), (lambda R: R.L1(0.3), "L1(0.3)"),
    (lambda R: R.L2(1e-4), "L2(1e-4)"), (lambda R: R.L1L2(0.02, 0.05), "L1L2(0.02, 0.05)"),
    (lambda R: R.L1L2(l2=0.1), "L1L2(l2=0.1)"), (lambda R: R.l2(0.2), "l2(0.2)"),
]


@pytest.mark.parametrize("make,label", PAIRS, ids=[label for _, label in PAIRS])
@pytest.mark.parametrize("shape", [(7,), (5, 3), (3, 3, 4, 2), (0, 3)])
def test_penalties_and_gradients_match_keras(make, label, shape):
    x = rand(shape, 1, 2.0)
    if x.size:
        x.reshape(-1)[0] = 0.0  # |x| at 0: gradient 0, as torch's sign
    want, want_grad = keras_penalty_and_grad(make(keras.regularizers), x)
    mine = make(regularizers)
    got = mine(x)
    assert isinstance(got, np.float32)
    assert got == pytest.approx(want, rel=1e-6, abs=1e-7)
    grad = mine.gradient(x)
    assert grad.shape == x.shape and grad.dtype == np.float32
    np.testing.assert_allclose(grad, want_grad, rtol=1e-6, atol=1e-8)


def test_defaults_names_and_configs():
    assert regularizers.L1().get_config() == {"l1": 0.01}
    assert regularizers.L2().get_config() == {"l2": 0.01}
    assert regularizers.L1L2().get_config() == {"l1": 0.0, "l2": 0.0}  # Keras 3's class
    assert regularizers.l1_l2().get_config() == {"l1": 0.01, "l2": 0.01}  # Keras' docs
    assert regularizers.l1 is regularizers.L1 and regularizers.l2 is regularizers.L2
    for name, cls in (("l1", regularizers.L1), ("L1", regularizers.L1), ("l2", regularizers.L2),
                      ("L2", regularizers.L2), ("l1l2", regularizers.L1L2),
                      ("L1L2", regularizers.L1L2), ("l1_l2", regularizers.L1L2)):
        assert type(regularizers.get(name)) is cls, name
    for name in ("l1", "l2", "L1", "L2", "L1L2", "l1l2"):  # the names Keras 3 resolves
        assert (regularizers.get(name).get_config()
                == pytest.approx(keras.regularizers.get(name).get_config())), name
    assert regularizers.get(None) is None
    reg = regularizers.L1L2(0.5, 0.25)
    assert regularizers.get(reg) is reg
    again = regularizers.get(regularizers.serialize(reg))
    assert type(again) is regularizers.L1L2 and again.get_config() == reg.get_config()
    # Keras' own serialization (module, registered_name) reads too
    saved = keras.regularizers.serialize(keras.regularizers.L2(0.3))
    assert regularizers.get(saved).get_config() == {"l2": 0.3}


@pytest.mark.parametrize("call,error,match", [
    (lambda: regularizers.L2(-0.1), ValueError, "l2"),
    (lambda: regularizers.L1(float("nan")), ValueError, "l1"),
    (lambda: regularizers.L1L2(l1="big"), TypeError, "l1"),
    (lambda: regularizers.get("l3"), ValueError, "regularizer"),
    (lambda: regularizers.get({"class_name": "OrthogonalRegularizer"}), ValueError,
     "OrthogonalRegularizer"),
    (lambda: regularizers.get(lambda w: 0.0), TypeError, "no gradient"),
    (lambda: regularizers.get(3), TypeError, "regularizer"),
    (lambda: regularizers.Regularizer().gradient(np.ones(2)), NotImplementedError, "gradient"),
    (lambda: layers.Dense(2, kernel_regularizer="l3"), ValueError, "kernel_regularizer"),
    (lambda: layers.Conv2D(2, 3, bias_regularizer=4), TypeError, "bias_regularizer"),
    (lambda: layers.Dense(2, activity_regularizer="nope"), ValueError, "activity_regularizer"),
    (lambda: layers.DepthwiseConv2D(3, kernel_regularizer="l2"), TypeError,
     "depthwise_regularizer"),
    (lambda: layers.SeparableConv2D(4, 3, pointwise_regularizer="x"), ValueError,
     "pointwise_regularizer"),
])
def test_bad_arguments_raise_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ------------------------------------------------------------ layers

def test_layers_carry_their_regularizers_into_weights_losses_and_configs():
    dense = layers.Dense(3, kernel_regularizer="l2", bias_regularizer=regularizers.L1(0.5),
                         activity_regularizer="l1")
    x = rand((4, 5), 2)
    dense(x)
    k, b = dense.get_weights()
    want = [np.float32(0.01 * np.sum(k.astype(np.float64) ** 2)),
            np.float32(0.5 * np.abs(b).sum())]
    np.testing.assert_allclose(dense.losses, want, rtol=1e-6)  # no training pass yet
    config = dense.get_config()
    assert config["kernel_regularizer"] == {"class_name": "L2", "config": {"l2": 0.01}}
    assert config["activity_regularizer"] == {"class_name": "L1", "config": {"l1": 0.01}}
    again = layers.Dense.from_config(config)
    assert again.bias_regularizer.get_config() == {"l1": 0.5}
    assert layers.Dense(2).get_config()["kernel_regularizer"] is None
    depthwise = layers.DepthwiseConv2D(3, depthwise_regularizer="l1", bias_regularizer="l2")
    depthwise(rand((1, 5, 5, 2), 3))
    assert len(depthwise.losses) == 2
    assert "kernel_regularizer" not in depthwise.get_config()
    assert depthwise.get_config()["depthwise_regularizer"]["class_name"] == "L1"
    separable = layers.SeparableConv2D(4, 3, pointwise_regularizer="l2")
    separable(rand((1, 5, 5, 2), 4))
    assert separable.losses[0] == regularizers.L2()(separable.pointwise_kernel.value)
    frozen = layers.Dense(2, kernel_regularizer="l2", trainable=False)
    frozen(x)
    assert frozen.losses == []  # Keras: trainable weights only


# ------------------------------------------------------------ training against Keras

def both(build):
    """The same Sequential in Keras and fastdl with Keras' weights (biases shifted off 0)."""
    keras.utils.clear_session()
    fastdl.utils.clear_session()
    k = keras.Sequential(build(keras.layers, keras.regularizers, keras.Input))
    f = fastdl.models.Sequential(build(layers, regularizers, layers.Input))
    weights = [w + np.float32(0.1) if w.ndim == 1 else w for w in k.get_weights()]
    k.set_weights(weights)
    f.set_weights(weights)
    return k, f


def assert_same(f, k, rtol=1e-5):
    for a, b in zip(f.get_weights(), k.get_weights()):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, np.abs(b).max()))


def penalties(model):
    return [float(np.asarray(keras.ops.convert_to_numpy(v))) for v in model.losses]


def dense_model(L, R, Input):
    return [Input((6,)),
            L.Dense(8, activation="tanh", kernel_regularizer=R.L2(0.05)),
            L.Dense(3, activation="softmax", kernel_regularizer=R.l2(0.02),
                    bias_regularizer=R.L1(0.03))]


def conv_model(L, R, Input):
    return [Input((7, 7, 2)),
            L.Conv2D(4, 3, activation="relu", kernel_regularizer=R.L2(0.05),
                     bias_regularizer=R.L1L2(0.01, 0.01)),
            L.Conv2D(3, 3, strides=2, padding="same", kernel_regularizer=R.L1(0.01)),
            L.Flatten(), L.Dense(3, activation="softmax", kernel_regularizer=R.L2(0.01))]


def activity_model(L, R, Input):
    return [Input((6,)),
            L.Dense(8, activation="relu", kernel_regularizer=R.L2(0.05),
                    activity_regularizer=R.L2(0.01)),
            L.Dense(3, activation="softmax", activity_regularizer=R.L1(0.02))]


MODELS = {"dense": (dense_model, (6,)), "conv": (conv_model, (7, 7, 2)),
          "activity": (activity_model, (6,))}


@pytest.mark.parametrize("name", MODELS)
def test_one_sgd_step_matches_keras_train_on_batch(name):
    build, shape = MODELS[name]
    k, f = both(build)
    x = rand((12,) + shape, 5)
    y = np.eye(3, dtype=np.float32)[np.random.default_rng(6).integers(0, 3, 12)]
    for model, lib in ((k, keras), (f, fastdl)):
        model.compile(optimizer=lib.optimizers.SGD(0.1), loss="categorical_crossentropy")
    kl, fl = k.train_on_batch(x, y), f.train_on_batch(x, y)
    assert fl == pytest.approx(float(kl), rel=1e-5)
    assert_same(f, k)
    # model.losses: the penalties of the step (activity) and of the updated weights
    np.testing.assert_allclose(f.losses, penalties(k), rtol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_fit_and_evaluate_match_keras(name):
    build, shape = MODELS[name]
    k, f = both(build)
    x = rand((30,) + shape, 7)
    y = np.eye(3, dtype=np.float32)[np.random.default_rng(8).integers(0, 3, 30)]
    for model, lib in ((k, keras), (f, fastdl)):
        model.compile(optimizer=lib.optimizers.Adam(0.01), loss="categorical_crossentropy",
                      metrics=["accuracy"])
    args = dict(batch_size=8, epochs=3, shuffle=False, verbose=0, validation_split=0.2)
    kh, fh = k.fit(x, y, **args), f.fit(x, y, **args)
    assert_same(f, k, rtol=1e-4)
    for key in ("loss", "val_loss", "accuracy"):
        np.testing.assert_allclose(fh.history[key], kh.history[key], rtol=1e-4, err_msg=key)
    np.testing.assert_allclose(f.evaluate(x, y, verbose=0), k.evaluate(x, y, verbose=0),
                               rtol=1e-5)


def test_the_penalty_is_what_the_loss_gains():
    """A model with and without its regularizers: the logged loss differs by exactly
    sum(model.losses) before the step, and the step moves the kernel by lr * 2 * l2 * w."""
    def build(reg):
        return lambda L, R, Input: [Input((4,)), L.Dense(
            2, kernel_regularizer=R.L2(0.5) if reg else None)]
    _, plain = both(build(False))
    _, regular = both(build(True))
    regular.set_weights(plain.get_weights())
    x, y = rand((5, 4), 9), rand((5, 2), 10)
    for m in (plain, regular):
        m.compile(optimizer=fastdl.optimizers.SGD(0.1), loss="mse")
    penalty = float(regular.losses[0])
    kernel = plain.get_weights()[0]
    lp, lr = plain.train_on_batch(x, y), regular.train_on_batch(x, y)
    assert lr == pytest.approx(lp + penalty, rel=1e-6)
    np.testing.assert_allclose(regular.get_weights()[0],
                               plain.get_weights()[0] - 0.1 * 2 * 0.5 * kernel, rtol=1e-5,
                               atol=1e-7)


def test_frozen_layers_and_several_outputs_match_keras():
    def build(ns, R):
        L = ns.layers
        inp = ns.Input((5,))
        h = L.Dense(6, activation="relu", kernel_regularizer=R.L2(0.1), name="h")(inp)
        frozen = L.Dense(4, kernel_regularizer=R.L1(0.1), name="frozen", trainable=False)(h)
        out1 = L.Dense(3, activation="softmax", name="cls",
                       activity_regularizer=R.L2(0.05))(frozen)
        out2 = L.Dense(1, name="reg", bias_regularizer=R.L2(0.2))(h)
        return ns.Model(inp, [out1, out2])

    from keras_oracle import namespace
    keras.utils.clear_session()
    fastdl.utils.clear_session()
    k = build(namespace("keras"), keras.regularizers)
    f = build(namespace("fastdl"), regularizers)
    f.set_weights(k.get_weights())
    x = rand((10, 5), 11)
    ys = {"cls": np.random.default_rng(12).integers(0, 3, 10),
          "reg": rand((10, 1), 13)}
    for model, lib in ((k, keras), (f, fastdl)):
        model.compile(optimizer=lib.optimizers.SGD(0.05),
                      loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"})
    kh = k.fit(x, ys, batch_size=4, epochs=2, shuffle=False, verbose=0)
    fh = f.fit(x, ys, batch_size=4, epochs=2, shuffle=False, verbose=0)
    assert_same(f, k, rtol=1e-4)
    assert sorted(fh.history) == sorted(kh.history)
    for key in kh.history:  # 'loss' with the penalties, '<output>_loss' without, as Keras
        np.testing.assert_allclose(fh.history[key], kh.history[key], rtol=1e-4, err_msg=key)
    np.testing.assert_allclose(f.losses, penalties(k), rtol=1e-5)


def test_keras_files_keep_their_regularizers(tmp_path):
    pytest.importorskip("h5py")
    keras.utils.clear_session()
    k = keras.Sequential([keras.Input((4,)),
                          keras.layers.Dense(3, kernel_regularizer=keras.regularizers.L2(0.3),
                                             activity_regularizer="l1"),
                          keras.layers.Dense(2, bias_regularizer="l1")])
    k.save(tmp_path / "reg.keras")
    f = load_keras(tmp_path / "reg.keras")
    first, second = f.layers[0], f.layers[1]
    assert first.kernel_regularizer.get_config() == {"l2": 0.3}
    assert first.activity_regularizer.get_config() == pytest.approx({"l1": 0.01})
    assert second.kernel_regularizer is None
    assert second.bias_regularizer.get_config() == pytest.approx({"l1": 0.01})
