"""layers.Rescaling (Keras 3's): x * scale + offset with numbers or broadcast arrays, after
channels-first maps too; refusals, config, gradient; a Keras file holding one."""
import os

import numpy as np
import pytest

import fastdl
from fastdl import layers
from fastdl.models import Model, Sequential, load_model

RNG = np.random.default_rng(5)


@pytest.mark.parametrize("scale,offset", [
    (1 / 255, 0.0), (2.0, -1.0), (np.float32([1, 2, 3]), 0.5),
    (1.0, np.float32([[0.1], [0.2], [0.3], [0.4]])), (np.ones((1, 4, 1), np.float32) * 3, 0)])
def test_scales_and_offsets_as_numpy_broadcasts(scale, offset):
    x = RNG.standard_normal((2, 4, 3)).astype(np.float32)
    model = Sequential([layers.Input((4, 3)), layers.Rescaling(scale, offset)])
    np.testing.assert_allclose(model.predict(x, verbose=0), x * scale + offset, rtol=1e-6)


def test_after_a_convolution_held_channels_first():
    x = RNG.standard_normal((2, 5, 5, 3)).astype(np.float32)
    inputs = layers.Input((5, 5, 3))
    h = layers.Conv2D(4, 3)(inputs)
    scale = np.float32([1, -2, 0.5, 3])  # per channel: the last axis in Keras' layout
    model = Model(inputs, layers.Rescaling(scale, 1.0)(h))
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               Model(inputs, h).predict(x, verbose=0) * scale + 1.0,
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(scale="x"), TypeError, "scale"), (dict(scale=np.nan), ValueError, "scale"),
    (dict(scale=1.0, offset=[np.inf]), ValueError, "offset"),
    (dict(scale=[]), ValueError, "scale"), (dict(scale=[1j]), TypeError, "scale")])
def test_bad_arguments_name_themselves(kwargs, error, match):
    with pytest.raises(error, match=match):
        layers.Rescaling(**kwargs)


@pytest.mark.parametrize("scale", [np.ones(5, np.float32), np.ones((2, 4, 3), np.float32),
                                   np.ones((1, 1, 4, 3), np.float32)])
def test_constants_that_would_change_the_shape_are_refused(scale):
    with pytest.raises(ValueError, match=r"scale"):
        Sequential([layers.Input((4, 3)), layers.Rescaling(scale)])


def test_config_round_trip(tmp_path):
    model = Sequential([layers.Input((3,)), layers.Rescaling(np.float32([1, 2, 3]), -0.5,
                                                             name="scaled")])
    model.save(tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_gradient_scales_dy():
    fastdl.utils.clear_session()
    model = Sequential([layers.Input((3,)), layers.Rescaling(np.float32([2, -1, 0.5]), 1.0),
                        layers.Dense(1, use_bias=False, kernel_initializer="ones")])
    model.compile(optimizer=fastdl.optimizers.SGD(0.1), loss="mse")
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    y = np.zeros((4, 1), np.float32)
    model.train_on_batch(x, y)
    h = x * np.float32([2, -1, 0.5]) + 1.0  # d(mean (h @ 1)^2)/dk = 2 mean((h @ 1) h)
    grad = 2 * ((h.sum(1, keepdims=True)) * h).mean(0)
    np.testing.assert_allclose(model.layers[1].get_weights()[0][:, 0], 1 - 0.1 * grad,
                               rtol=1e-5)


def test_keras_file_with_rescaling_loads(tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    pytest.importorskip("h5py")
    k = keras.Sequential([keras.Input((6,)), keras.layers.Rescaling(1 / 255.0, offset=-0.5),
                          keras.layers.Dense(3)])
    k.save(tmp_path / "k.keras")
    f = fastdl.io.load_keras(tmp_path / "k.keras")
    x = RNG.random((2, 6)).astype(np.float32) * 255
    np.testing.assert_allclose(f.predict(x, verbose=0), k.predict(x, verbose=0), rtol=1e-5,
                               atol=1e-5)
