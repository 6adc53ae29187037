"""Convolution layers training against Keras 3 (torch backend): the same model, weights,
data and optimizer in both; after one SGD step and after a short Adam fit the weights and
losses agree. Conv1D (causal, dilated, grouped), Conv2D ('same' with strides, uneven
kernels, channels_first, a per-pixel softmax output whose gradient fuses with the loss),
Conv3D, the transposed convolutions ('same'/'valid', output_padding, dilation),
DepthwiseConv1D/2D (depth_multiplier) and SeparableConv1D/2D."""
from __future__ import annotations

import numpy as np
import pytest

from keras_oracle import keras, pair  # skips this module without keras
import fastdl


def assert_weights(f, k, rtol, what=""):
    for a, b in zip(f.get_weights(), k.get_weights()):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, np.abs(b).max()),
                                   err_msg=what)


def conv1d(L, Input):
    return [Input((12, 4)),
            L.Conv1D(6, 3, padding="causal", dilation_rate=2, activation="relu"),
            L.Conv1D(4, 2, strides=2, groups=2, activation="tanh"),
            L.Flatten(), L.Dense(3, activation="softmax")]


def conv2d(L, Input):
    return [Input((7, 6, 2)),
            L.Conv2D(4, 3, padding="same", activation="relu"),
            L.Conv2D(5, (2, 3), strides=2, padding="same", activation="elu"),
            L.Conv2D(4, 1, use_bias=False, activation="sigmoid"),
            L.Flatten(), L.Dense(3, activation="softmax")]


def conv2d_channels_first(L, Input):
    return [Input((2, 6, 5)),
            L.Conv2D(3, 3, data_format="channels_first", activation="silu"),
            L.Conv2D(4, 2, strides=2, padding="same", data_format="channels_first"),
            L.Flatten(), L.Dense(3, activation="softmax")]


def conv3d(L, Input):
    return [Input((4, 5, 4, 2)),
            L.Conv3D(3, (2, 3, 2), padding="same", activation="relu"),
            L.Conv3D(2, 2, strides=(1, 2, 2), activation="tanh"),
            L.Flatten(), L.Dense(3, activation="softmax")]


def transposed(L, Input):
    return [Input((5, 4, 3)),
            L.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu"),
            L.Conv2DTranspose(3, (2, 3), strides=(1, 2), output_padding=(0, 1)),
            L.Conv2DTranspose(2, 3, dilation_rate=2, activation="tanh"),
            L.Flatten(), L.Dense(3, activation="softmax")]


def transposed_1d_3d(L, Input):
    return [Input((6, 3)),
            L.Conv1DTranspose(4, 3, strides=3, padding="same", activation="elu"),
            L.Reshape((6, 3, 4, 1)),
            L.Conv3DTranspose(2, 2, strides=(1, 2, 1), activation="relu"),
            L.Flatten(), L.Dense(3, activation="softmax")]


def depthwise(L, Input):
    return [Input((7, 6, 3)),
            L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu"),
            L.DepthwiseConv2D(3, strides=2, use_bias=False),
            L.SeparableConv2D(4, 3, padding="same", depth_multiplier=2, activation="tanh"),
            L.Flatten(), L.Dense(3, activation="softmax")]


def depthwise_1d(L, Input):
    return [Input((10, 4)),
            L.DepthwiseConv1D(3, depth_multiplier=3, dilation_rate=2, activation="relu"),
            L.SeparableConv1D(5, 2, strides=2, padding="same"),
            L.Flatten(), L.Dense(3, activation="softmax")]


MODELS = [conv1d, conv2d, conv2d_channels_first, conv3d, transposed, transposed_1d_3d,
          depthwise, depthwise_1d]


def batch(model_fn, n=12, seed=0):
    rng = np.random.default_rng(seed)
    shape = {conv1d: (12, 4), conv2d: (7, 6, 2), conv2d_channels_first: (2, 6, 5),
             conv3d: (4, 5, 4, 2), transposed: (5, 4, 3), transposed_1d_3d: (6, 3),
             depthwise: (7, 6, 3), depthwise_1d: (10, 4)}[model_fn]
    return rng.standard_normal((n,) + shape).astype(np.float32), rng.integers(0, 3, n)


@pytest.mark.parametrize("build", MODELS, ids=lambda b: b.__name__)
def test_one_sgd_step_matches_keras(build):
    k, f = pair(build)
    x, y = batch(build)
    for model, lib in ((k, keras), (f, fastdl)):
        model.compile(optimizer=lib.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    kl, fl = k.train_on_batch(x, y), f.train_on_batch(x, y)
    assert fl == pytest.approx(float(kl), rel=1e-5)
    assert_weights(f, k, 2e-5, build.__name__)


@pytest.mark.parametrize("build", MODELS, ids=lambda b: b.__name__)
def test_fit_matches_keras(build):
    k, f = pair(build)
    x, y = batch(build, 40, seed=1)
    for model, lib in ((k, keras), (f, fastdl)):
        model.compile(optimizer=lib.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    kh = k.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    fh = f.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    for key in kh.history:
        np.testing.assert_allclose(fh.history[key], kh.history[key], rtol=1e-4, atol=1e-6,
                                   err_msg=key)
    assert_weights(f, k, 1e-4, build.__name__)


def test_a_per_pixel_softmax_output_trains_as_keras():
    def segmenter(L, Input):
        return [Input((6, 5, 3)), L.Conv2D(4, 3, padding="same", activation="relu"),
                L.Conv2D(3, 1, activation="softmax")]

    k, f = pair(segmenter)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 6, 5, 3)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, (8, 6, 5))]
    for model, lib in ((k, keras), (f, fastdl)):
        model.compile(optimizer=lib.optimizers.SGD(0.5), loss="categorical_crossentropy")
    for _ in range(3):
        kl, fl = k.train_on_batch(x, y), f.train_on_batch(x, y)
        assert fl == pytest.approx(float(kl), rel=1e-5)
    assert_weights(f, k, 5e-5)
