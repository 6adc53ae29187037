"""Training through the pooling layers: MaxPooling1D/2D/3D, AveragePooling1D/2D/3D,
GlobalAveragePooling1D/2D/3D and GlobalMaxPooling1D/2D/3D.

- Against Keras 3 (torch backend): `Input -> Dense -> pooling -> Flatten -> Dense`, one SGD
  train_on_batch step, the same loss and weights. The Dense before the pooling makes its
  kernel's update depend on the pooling's gradient. 'valid' and 'same' padding,
  channels_last and channels_first, keepdims. (Keras' torch backend pads an asymmetric
  'same' average pooling by replicating the edge, where fastdl follows TensorFlow's rule and
  counts the input values only: those cases are checked against PyTorch autograd of
  TensorFlow's formula instead, below.)
- Each layer's _backward against PyTorch autograd of the same pooling (explicit padding,
  count_include_pad, asymmetric 'same').
"""
from __future__ import annotations

import numpy as np
import pytest

from keras_oracle import keras, pair  # skips this module without keras
import fastdl
from fastdl import layers, models
from fastdl.layers.base import Gradients

torch = pytest.importorskip("torch")


def data(n, shape, classes, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + shape).astype(np.float32)
    return x, np.eye(classes, dtype=np.float32)[rng.integers(0, classes, n)]


def assert_weights(f, k, rtol=1e-4, what=""):
    for a, b in zip(f.get_weights(), k.get_weights()):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, np.abs(b).max()),
                                   err_msg=what)


# (input shape without the batch axis, layer class name, keyword arguments)
LAYERS = [
    ((9, 3), "MaxPooling1D", dict(pool_size=2)),
    ((9, 3), "MaxPooling1D", dict(pool_size=3, strides=2, padding="same")),  # asymmetric
    ((9, 3), "AveragePooling1D", dict(pool_size=2, strides=1)),
    ((9, 3), "AveragePooling1D", dict(pool_size=3, strides=1, padding="same")),
    ((3, 9), "AveragePooling1D", dict(pool_size=2, data_format="channels_first")),
    ((7, 8, 2), "MaxPooling2D", dict(pool_size=2)),
    ((7, 8, 2), "MaxPooling2D", dict(pool_size=3, strides=2, padding="same")),  # asymmetric
    ((7, 8, 2), "MaxPooling2D", dict(pool_size=(3, 2), strides=1)),  # overlapping windows
    ((2, 7, 8), "MaxPooling2D", dict(pool_size=2, data_format="channels_first")),
    ((7, 8, 2), "AveragePooling2D", dict(pool_size=2)),
    ((13, 11, 2), "AveragePooling2D", dict(pool_size=3, strides=2, padding="same")),
    ((2, 7, 9), "AveragePooling2D", dict(pool_size=3, strides=1, padding="same",
                                         data_format="channels_first")),
    ((5, 4, 6, 2), "MaxPooling3D", dict(pool_size=2)),
    ((5, 4, 6, 2), "MaxPooling3D", dict(pool_size=(2, 3, 3), strides=(1, 2, 2),
                                        padding="same")),
    ((5, 4, 6, 2), "AveragePooling3D", dict(pool_size=(2, 2, 3), strides=1)),
    ((5, 5, 5, 2), "AveragePooling3D", dict(pool_size=3, strides=1, padding="same")),
    ((2, 5, 4, 6), "AveragePooling3D", dict(pool_size=2, data_format="channels_first")),
    ((9, 3), "GlobalAveragePooling1D", {}),
    ((7, 8, 2), "GlobalAveragePooling2D", dict(keepdims=True)),
    ((2, 7, 8), "GlobalAveragePooling2D", dict(data_format="channels_first")),
    ((5, 4, 6, 2), "GlobalAveragePooling3D", {}),
    ((9, 3), "GlobalMaxPooling1D", dict(keepdims=True)),
    ((3, 9), "GlobalMaxPooling1D", dict(data_format="channels_first")),
    ((7, 8, 2), "GlobalMaxPooling2D", {}),
    ((2, 5, 4, 6), "GlobalMaxPooling3D", dict(data_format="channels_first", keepdims=True)),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for _, name, kw in LAYERS]


@pytest.mark.parametrize("shape,name,kwargs", LAYERS, ids=IDS)
def test_one_sgd_step_matches_keras(shape, name, kwargs):
    def build(L, Input):
        return [Input(shape), L.Dense(4), getattr(L, name)(**kwargs), L.Flatten(),
                L.Dense(3, activation="softmax")]

    k, f = pair(build)
    x, y = data(6, shape, 3)
    for model, lib in ((k, keras), (f, fastdl)):
        model.compile(optimizer=lib.optimizers.SGD(0.5), loss="categorical_crossentropy")
    before = f.get_weights()[0].copy()
    kl = k.train_on_batch(x, y)
    fl = f.train_on_batch(x, y)
    assert fl == pytest.approx(float(kl), rel=1e-5)
    assert_weights(f, k, what=name)
    assert not np.allclose(f.get_weights()[0], before)  # the gradient went through


def test_pooling_layers_train_with_fit():
    model = models.Sequential([layers.Input((8, 8, 1)), layers.Dense(4, activation="relu"),
                               layers.MaxPooling2D(2), layers.AveragePooling2D(2),
                               layers.GlobalMaxPooling2D(), layers.Dense(2,
                                                                         activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((16, 8, 8, 1)).astype(np.float32)
    labels = (x.mean(axis=(1, 2, 3)) > 0).astype(np.int64)
    history = model.fit(x, labels, epochs=3, batch_size=8, verbose=0)
    assert len(history.history["loss"]) == 3 and np.isfinite(history.history["loss"]).all()


# ------------------------------------------------------------ each layer vs PyTorch autograd

def torch_pool(kind, t, rank, pool, strides, pads, include_pad):
    """The pooling as TensorFlow defines it, on channels-first t: explicit padding (-inf for
    max, zeros for avg), average sums divided by the input values each window covers (every
    tap with include_pad)."""
    F = torch.nn.functional
    flat = [p for pair_ in reversed(pads) for p in pair_]  # F.pad: last axis first
    if kind == "max":
        padded = F.pad(t, flat, value=-float("inf"))
        return getattr(F, f"max_pool{rank}d")(padded, pool, strides)
    avg = getattr(F, f"avg_pool{rank}d")
    sums = avg(F.pad(t, flat), pool, strides) * float(np.prod(pool))
    if include_pad:
        return sums / float(np.prod(pool))
    ones = F.pad(torch.ones((1, 1) + tuple(t.shape[2:])), flat)
    return sums / (avg(ones, pool, strides) * float(np.prod(pool)))


LAYER_CASES = [
    # (layer, channels_last input shape, explicit (before, after) per axis, include_pad)
    (layers.AveragePooling1D(2, padding="same"), (2, 7, 3), [(0, 1)], False),
    (layers.AveragePooling2D(2, padding="same"), (2, 5, 7, 3), [(0, 1), (0, 1)], False),
    (layers.AveragePooling2D(3, strides=2, padding="same"), (2, 6, 8, 2), [(0, 1), (0, 1)],
     False),
    (layers.AveragePooling3D(2, padding="same"), (1, 3, 5, 4, 2), [(0, 1), (0, 1), (0, 0)],
     False),
    (layers.AveragePooling2D(2, padding=((1, 2), (0, 1)), count_include_pad=True), (2, 5, 6, 2),
     [(1, 2), (0, 1)], True),
    (layers.AveragePooling1D(4, strides=3, padding=((1, 2),)), (2, 8, 2), [(1, 2)], False),
    (layers.MaxPooling2D(3, strides=2, padding="same"), (2, 6, 8, 2), [(0, 1), (0, 1)], False),
    (layers.MaxPooling1D(2, padding=((0, 1),)), (2, 6, 3), [(0, 1)], False),
    (layers.MaxPooling3D(2, padding="same"), (1, 3, 5, 4, 2), [(0, 1), (0, 1), (0, 0)],
     False),
]


@pytest.mark.parametrize("layer,shape,pads,include", LAYER_CASES,
                         ids=[f"{c[0].class_name}-{c[1]}-{c[2]}" for c in LAYER_CASES])
def test_layer_gradient_matches_torch_autograd(layer, shape, pads, include):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    layer(x)  # built
    y, cache = layer._train_forward(x, True)
    np.testing.assert_allclose(y, layer(x), rtol=1e-6, atol=1e-6)  # inference's values
    dy = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
    grads = Gradients()
    dx = layer._backward(dy, cache, grads)
    rank = x.ndim - 2
    t = torch.tensor(x, requires_grad=True)
    tc = t.permute(0, rank + 1, *range(1, rank + 1))
    ty = torch_pool("max" if "Max" in layer.class_name else "avg", tc, rank, layer.pool_size,
                    layer.strides, pads, include)
    ty = ty.permute(0, *range(2, rank + 2), 1)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    ty.backward(torch.tensor(dy))
    assert dx.shape == x.shape and dx.dtype == np.float32
    np.testing.assert_allclose(dx, t.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert grads._sums == {}  # no weights


# Conv2D(relu) -> MaxPooling2D: the ReLU's gradient is applied by the pooling (its window
# codes gated where the maximum is 0, or its indices' dy gated on other geometries). A small
# learning rate: after a large step Keras' clipped probabilities stop its gradient where
# fastdl's fused softmax cross-entropy keeps the exact one.
RELU_POOL = [
    ((9, 11, 3), {}, dict(pool_size=2)),                                # 8x10: codes
    ((8, 10, 3), {}, dict(pool_size=2)),                                # 7x9: indices
    ((8, 8, 3), dict(padding="same"), dict(pool_size=3, strides=2)),    # indices
    ((3, 9, 7), dict(data_format="channels_first"),
     dict(pool_size=2, data_format="channels_first")),                  # 8x6: codes
]


@pytest.mark.parametrize("shape,conv,pool", RELU_POOL,
                         ids=["codes", "odd-indices", "overlapping", "channels_first"])
def test_relu_handed_to_max_pooling_matches_keras(shape, conv, pool):
    def build(L, Input):
        return [Input(shape), L.Conv2D(4, 2, activation="relu", **conv),
                L.MaxPooling2D(**pool), L.Flatten(), L.Dense(3, activation="softmax")]

    k, f = pair(build)
    from fastdl.models import backprop
    assert backprop.relu_handovers(f._current_program()) == {
        0: {"relu_gated": True}, 1: {"relu_gate": True}}
    x, y = data(6, shape, 3, seed=1)
    for model, lib in ((k, keras), (f, fastdl)):
        model.compile(optimizer=lib.optimizers.SGD(0.05), loss="categorical_crossentropy")
    for _ in range(2):
        kl = k.train_on_batch(x, y)
        fl = f.train_on_batch(x, y)
        assert fl == pytest.approx(float(kl), rel=1e-5)
        assert_weights(f, k, what=str(shape))


def test_relu_output_read_twice_keeps_its_own_gradient():
    """A ReLU output read by the pooling and by another layer: no hand-over (the other
    reader's gradient needs the ReLU's own), and the gradients still match Keras'."""
    def build(ns):
        inp = ns.Input((8, 8, 2))
        h = ns.layers.Conv2D(3, 2, activation="relu", padding="same")(inp)
        a = ns.layers.Flatten()(ns.layers.MaxPooling2D(2)(h))
        b = ns.layers.Flatten()(h)
        out = ns.layers.Dense(2, activation="softmax")(ns.layers.Concatenate()([a, b]))
        return ns.Model(inp, out)

    from keras_oracle import pair_model
    from fastdl.models import backprop
    k, f = pair_model(build)
    assert backprop.relu_handovers(f._current_program()) == {}
    x, y = data(5, (8, 8, 2), 2, seed=2)
    for model, lib in ((k, keras), (f, fastdl)):
        model.compile(optimizer=lib.optimizers.SGD(0.5), loss="categorical_crossentropy")
    kl = k.train_on_batch(x, y)
    fl = f.train_on_batch(x, y)
    assert fl == pytest.approx(float(kl), rel=1e-5)
    assert_weights(f, k)
