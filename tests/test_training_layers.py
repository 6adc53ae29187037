"""Merging, reshaping, activation and embedding layers training against Keras 3 (torch
backend): the same functional model, weights, data and optimizer in both; after SGD steps
the losses and every weight agree. Add/Subtract/Multiply/Average/Maximum/Minimum (with a
broadcast input and ties), Concatenate, ZeroPadding/Cropping/UpSampling (nearest and
bilinear), Permute, RepeatVector, ReLU variants, LeakyReLU, ELU, PReLU (shared axes),
Softmax over two axes, Embedding (repeated indices)."""
from __future__ import annotations

import numpy as np
import pytest

from keras_oracle import keras, pair_model  # skips this module without keras
import fastdl


def assert_weights(f, k, rtol=3e-5):
    for a, b in zip(f.get_weights(), k.get_weights()):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, np.abs(b).max()))


def merges(ns):
    L = ns.layers
    a, b = ns.Input((4, 6)), ns.Input((1, 6))  # b broadcasts along the steps
    ha = L.Dense(6, activation="tanh")(a)
    hb = L.Dense(6, activation="tanh")(b)
    rounded = L.Dense(6, activation="relu")(a)  # zeros: ties in Maximum / Minimum
    parts = [L.Add()([ha, hb]), L.Subtract()([ha, hb]), L.Multiply()([ha, hb, ha]),
             L.Average()([ha, hb]), L.Maximum()([ha, rounded, hb]),
             L.Minimum()([rounded, ha])]
    joined = L.Concatenate(axis=1)([L.Concatenate()(parts[:3]), L.Concatenate()(parts[3:])])
    out = L.Dense(3, activation="softmax")(L.Flatten()(joined))
    return ns.Model([a, b], out)


def reshapes(ns):
    L = ns.layers
    x = ns.Input((5, 4, 2))
    h = L.Conv2D(3, 2, padding="same", activation="tanh")(x)
    h = L.ZeroPadding2D(((1, 0), (2, 1)))(h)
    h = L.Cropping2D(((0, 1), (1, 2)))(h)
    near = L.UpSampling2D((2, 1))(h)
    bil = L.UpSampling2D(2, interpolation="bilinear")(h)
    h = L.Concatenate()([L.Flatten()(near), L.Flatten()(bil)])
    h = L.Dense(6, activation="relu")(h)
    h = L.RepeatVector(3)(h)                    # (3, 6)
    h = L.Permute((2, 1))(h)                    # (6, 3)
    h = L.UpSampling1D(2)(h)                    # (12, 3)
    h = L.ZeroPadding1D((1, 2))(h)
    h = L.Cropping1D((2, 1))(h)
    out = L.Dense(3, activation="softmax")(L.Flatten()(h))
    return ns.Model(x, out)


def activations(ns):
    L = ns.layers
    x = ns.Input((3, 4))
    h = L.Dense(8)(x)
    h = L.Concatenate()([L.ReLU()(h), L.ReLU(max_value=0.5, negative_slope=0.1,
                                            threshold=0.2)(h),
                         L.LeakyReLU(0.2)(h), L.ELU(0.5)(h),
                         L.PReLU(alpha_initializer="random_uniform", shared_axes=[1])(h)])
    h = L.Dense(4)(h)
    h = L.Softmax(axis=(1, 2))(h)
    out = L.Dense(3, activation="softmax")(L.Flatten()(h))
    return ns.Model(x, out)


def embedding(ns):
    L = ns.layers
    x = ns.Input((5,))
    h = L.Embedding(7, 4)(x)
    h = L.Conv1D(3, 2, activation="relu")(h)
    out = L.Dense(3, activation="softmax")(L.Flatten()(h))
    return ns.Model(x, out)


def inputs(name, n, rng):
    if name == "merges":
        return [rng.standard_normal((n, 4, 6)).astype(np.float32),
                rng.standard_normal((n, 1, 6)).astype(np.float32)]
    if name == "reshapes":
        return rng.standard_normal((n, 5, 4, 2)).astype(np.float32)
    if name == "activations":
        return rng.standard_normal((n, 3, 4)).astype(np.float32)
    return rng.integers(0, 7, (n, 5)).astype(np.float32)  # indices repeat within a batch


@pytest.mark.parametrize("build", [merges, reshapes, activations, embedding],
                         ids=lambda b: b.__name__)
def test_sgd_steps_match_keras(build):
    k, f = pair_model(build)
    rng = np.random.default_rng(1)
    x, y = inputs(build.__name__, 10, rng), rng.integers(0, 3, 10)
    for model, lib in ((k, keras), (f, fastdl)):
        model.compile(optimizer=lib.optimizers.SGD(0.2, momentum=0.5),
                      loss="sparse_categorical_crossentropy")
    for _ in range(3):
        kl, fl = k.train_on_batch(x, y), f.train_on_batch(x, y)
        assert fl == pytest.approx(float(kl), rel=2e-5)
    assert_weights(f, k)


def time_distributed(ns):
    L = ns.layers
    x = ns.Input((4, 6, 5, 2))
    h = L.TimeDistributed(L.Conv2D(3, 3, activation="relu"))(x)
    h = L.TimeDistributed(L.Flatten())(h)
    h = L.TimeDistributed(L.Dense(5, activation="tanh"))(h)
    inner = ns.Sequential([ns.Input((5,)), L.Dense(4, activation="elu")])
    h = L.TimeDistributed(inner)(h)
    out = L.Dense(3, activation="softmax")(L.Flatten()(h))
    return ns.Model(x, out)


def test_time_distributed_trains_as_keras():
    k, f = pair_model(time_distributed)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((6, 4, 6, 5, 2)).astype(np.float32), rng.integers(0, 3, 6)
    for model, lib in ((k, keras), (f, fastdl)):
        model.compile(optimizer=lib.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    for _ in range(3):
        kl, fl = k.train_on_batch(x, y), f.train_on_batch(x, y)
        assert fl == pytest.approx(float(kl), rel=2e-5)
    assert_weights(f, k, 1e-4)
