"""Training against Keras 3 (torch backend) as the oracle: the same model, weights, data
and optimizer in both; after train_on_batch and after fit (no shuffling) the weights, the
losses, the metrics and History agree. Dense-family models (Dense with every built-in
activation, Activation, Flatten, Reshape) with every compiled loss, several outputs, a
shared layer, a nested model, sample and class weights, validation data; the triplet loss
on stacked embeddings and on a shared embedding joined by Concatenate."""
from __future__ import annotations

import numpy as np
import pytest

from keras_oracle import keras, pair, pair_model  # skips this module without keras
import fastdl
from fastdl import optimizers

RNG = np.random.default_rng(0)


def data(n, features, classes=None, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + features).astype(np.float32)
    if classes is None:
        return x, None
    labels = rng.integers(0, classes, n)
    return x, labels


def assert_weights(f, k, rtol=2e-5, what=""):
    for a, b in zip(f.get_weights(), k.get_weights()):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, np.abs(b).max()),
                                   err_msg=what)


def mlp(activation, out_activation, outputs):
    def build(L, Input):
        return [Input((6,)), L.Dense(8, activation=activation), L.Dense(5),
                L.Activation(activation), L.Dense(outputs, activation=out_activation)]
    return build


# ('exponential' saturates this model's softmax, where Keras' clipped probabilities pass no
# gradient and fastdl's fused softmax cross-entropy does: its gradient is checked against
# central differences in test_training.py instead.)
ACTIVATIONS = ["relu", "tanh", "sigmoid", "elu", "selu", "gelu", "silu", "leaky_relu",
               "relu6", "softplus", "hard_sigmoid", "hard_silu", "linear"]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_one_sgd_step_matches_keras_for_every_activation(activation):
    k, f = pair(mlp(activation, "softmax", 4))
    x, labels = data(16, (6,), 4)
    y = np.eye(4, dtype=np.float32)[labels]
    for model, lib in ((k, keras), (f, fastdl)):
        model.compile(optimizer=lib.optimizers.SGD(0.1), loss="categorical_crossentropy")
    kl = k.train_on_batch(x, y)
    fl = f.train_on_batch(x, y)
    assert fl == pytest.approx(float(kl), rel=1e-5)
    assert_weights(f, k, what=activation)


LOSSES = [
    ("categorical_crossentropy", "softmax", "onehot"),
    ("sparse_categorical_crossentropy", "softmax", "sparse"),
    ("mean_squared_error", None, "regression"),
    ("mae", "tanh", "regression"),
    ("binary_crossentropy", "sigmoid", "binary"),
    (keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1), None,
     "onehot"),
    (keras.losses.SparseCategoricalCrossentropy(from_logits=True), None, "sparse"),
    (keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.2), None, "binary"),
    ("categorical_crossentropy", "sigmoid", "onehot"),  # no fusion: the chain rule
    ("huber", None, "regression"),
    (keras.losses.Huber(delta=0.3), "tanh", "regression"),
    ("hinge", "tanh", "binary"),  # 0/1 labels, converted to -1/1 as Keras does
    ("hinge", None, "signed"),
    ("squared_hinge", "tanh", "signed"),
    ("kl_divergence", "softmax", "probs"),  # the chain rule through the softmax
    ("kld", "softmax", "onehot"),
]


def targets(kind, labels, n, outputs):
    if kind == "onehot":
        return np.eye(outputs, dtype=np.float32)[labels]
    if kind == "sparse":
        return labels
    if kind == "binary":
        return (np.random.default_rng(3).random((n, outputs)) > 0.5).astype(np.float32)
    if kind == "signed":
        return np.random.default_rng(3).choice([-1.0, 1.0], (n, outputs)).astype(np.float32)
    if kind == "probs":
        return np.random.default_rng(3).dirichlet(np.ones(outputs), n).astype(np.float32)
    return np.random.default_rng(4).standard_normal((n, outputs)).astype(np.float32)


def fastdl_loss(loss):
    if isinstance(loss, str):
        return loss
    # (Keras' Huber leaves delta out of its config: it is in the wrapped function's kwargs.)
    config = {**loss.get_config(), **getattr(loss, "_fn_kwargs", {})}
    return fastdl.losses.get({"class_name": type(loss).__name__,
                              "config": {k: v for k, v in config.items()
                                         if k in ("from_logits", "label_smoothing", "delta")}})


@pytest.mark.parametrize("loss,out_activation,kind", LOSSES,
                         ids=[f"{l if isinstance(l, str) else type(l).__name__}-{a}"
                              for l, a, _ in LOSSES])
def test_fit_matches_keras_for_every_loss(loss, out_activation, kind):
    k, f = pair(mlp("relu", out_activation, 3))
    x, labels = data(40, (6,), 3)
    y = targets(kind, labels, 40, 3)
    metrics = ["accuracy"] if kind not in ("regression", "signed") else ["mae"]
    k.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss, metrics=metrics)
    f.compile(optimizer=optimizers.Adam(0.01), loss=fastdl_loss(loss), metrics=metrics)
    kh = k.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    fh = f.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    assert_weights(f, k, rtol=1e-4)
    assert sorted(fh.history) == sorted(kh.history)
    for key in kh.history:
        np.testing.assert_allclose(fh.history[key], kh.history[key], rtol=1e-4, atol=1e-6,
                                   err_msg=key)
    assert fh.epoch == kh.epoch == [0, 1, 2]
    np.testing.assert_allclose(f.evaluate(x, y, verbose=0), k.evaluate(x, y, verbose=0),
                               rtol=1e-4)


def test_sample_weight_class_weight_and_validation_match_keras():
    k, f = pair(mlp("tanh", "softmax", 3))
    x, labels = data(50, (6,), 3, seed=5)
    y = np.eye(3, dtype=np.float32)[labels]
    sw = np.random.default_rng(6).uniform(0.2, 2.0, 50).astype(np.float32)
    for model, lib in ((k, keras), (f, fastdl)):
        model.compile(optimizer=lib.optimizers.RMSprop(0.01), loss="categorical_crossentropy",
                      metrics=["accuracy"])
    args = dict(batch_size=8, epochs=2, shuffle=False, verbose=0, validation_split=0.2)
    kh = k.fit(x, y, sample_weight=sw, **args)
    fh = f.fit(x, y, sample_weight=sw, **args)
    assert_weights(f, k, rtol=1e-4)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(fh.history[key], kh.history[key], rtol=1e-4, err_msg=key)
    kh = k.fit(x, y, class_weight={0: 1.0, 1: 3.0, 2: 0.5},
               **{**args, "validation_split": 0.0, "validation_data": (x[:10], y[:10])})
    fh = f.fit(x, y, class_weight={0: 1.0, 1: 3.0, 2: 0.5},
               **{**args, "validation_split": 0.0, "validation_data": (x[:10], y[:10])})
    assert_weights(f, k, rtol=1e-4)
    np.testing.assert_allclose(fh.history["val_loss"], kh.history["val_loss"], rtol=1e-4)


def test_functional_two_outputs_shared_layer_and_nested_model_match_keras():
    def build(ns):
        L = ns.layers
        inner_in = ns.Input((5,))
        inner = ns.Model(inner_in, L.Dense(5, activation="tanh", name="inner_dense")(inner_in),
                         name="inner")
        a, b = ns.Input((5,), name="a"), ns.Input((5,), name="b")
        shared = L.Dense(4, activation="relu", name="shared")
        ha, hb = shared(inner(a)), shared(b)
        merged = L.Reshape((4,), name="reshape")(ha)
        out1 = L.Dense(3, activation="softmax", name="cls")(merged)
        out2 = L.Dense(1, name="reg")(L.Flatten(name="flat")(hb))
        return ns.Model([a, b], [out1, out2])

    k, f = pair_model(build)
    xa, labels = data(24, (5,), 3, seed=7)
    xb, _ = data(24, (5,), seed=8)
    y1 = labels
    y2 = np.random.default_rng(9).standard_normal((24, 1)).astype(np.float32)
    for model, lib in ((k, keras), (f, fastdl)):
        model.compile(optimizer=lib.optimizers.SGD(0.05, momentum=0.9),
                      loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                      loss_weights={"cls": 1.0, "reg": 0.5})
    kh = k.fit([xa, xb], {"cls": y1, "reg": y2}, batch_size=8, epochs=2, shuffle=False,
               verbose=0)
    fh = f.fit([xa, xb], {"cls": y1, "reg": y2}, batch_size=8, epochs=2, shuffle=False,
               verbose=0)
    assert_weights(f, k, rtol=1e-4)
    assert sorted(fh.history) == sorted(kh.history)
    for key in kh.history:
        np.testing.assert_allclose(fh.history[key], kh.history[key], rtol=1e-4, err_msg=key)


def test_weighted_metrics_match_keras():
    k, f = pair(mlp("tanh", "softmax", 3))
    x, labels = data(30, (6,), 3, seed=11)
    sw = np.random.default_rng(12).uniform(0.1, 2.0, 30).astype(np.float32)
    for model, lib in ((k, keras), (f, fastdl)):
        model.compile(optimizer=lib.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], weighted_metrics=["accuracy"])
    kw = dict(batch_size=8, epochs=2, shuffle=False, verbose=0,
              validation_data=(x[:12], labels[:12], sw[:12]))
    kh = k.fit(x, labels, sample_weight=sw, **kw)
    fh = f.fit(x, labels, sample_weight=sw, **kw)
    assert sorted(fh.history) == sorted(kh.history)
    assert "weighted_accuracy" in fh.history and "val_weighted_accuracy" in fh.history
    for key in kh.history:
        np.testing.assert_allclose(fh.history[key], kh.history[key], rtol=1e-4, err_msg=key)


def keras_triplet(split):
    """The triplet margin loss (margin 1, p = 2, eps 1e-6) written with keras.ops, as a Keras
    user would: the oracle of fastdl.losses.TripletMarginLoss."""
    K = keras.ops

    def loss(y_true, y_pred):
        a, p, n = split(y_pred)
        d_ap = K.sqrt(K.sum(K.square(a - p + 1e-6), axis=-1))
        d_an = K.sqrt(K.sum(K.square(a - n + 1e-6), axis=-1))
        return K.maximum(1.0 + d_ap - d_an, 0.0)
    return loss


def test_fit_matches_keras_for_the_triplet_loss_on_stacked_embeddings():
    """(batch, 3, features) triplets through shared Dense layers -> (batch, 3, D); y is a
    dummy of batch length (the loss ignores it)."""
    k, f = pair(lambda L, Input: [Input((3, 6)), L.Dense(8, activation="tanh"), L.Dense(4)])
    x, _ = data(40, (3, 6), seed=11)
    y = np.zeros(40, np.float32)
    k.compile(optimizer=keras.optimizers.SGD(0.1),
              loss=keras_triplet(lambda e: (e[:, 0], e[:, 1], e[:, 2])))
    f.compile(optimizer=optimizers.SGD(0.1), loss=fastdl.losses.TripletMarginLoss())
    kh = k.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    fh = f.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    assert_weights(f, k, rtol=1e-4)
    np.testing.assert_allclose(fh.history["loss"], kh.history["loss"], rtol=1e-4)
    assert fh.history["loss"][-1] < fh.history["loss"][0]


def test_fit_matches_keras_for_the_triplet_loss_on_concatenated_embeddings():
    """Three inputs through one shared embedding layer, joined by Concatenate ->
    (batch, 3 D): the functional way of a triplet network."""
    def build(ns):
        L = ns.layers
        embed = L.Dense(4, activation="tanh", name="embed")
        inputs = [ns.Input((6,), name=name) for name in ("anchor", "positive", "negative")]
        return ns.Model(inputs, L.Concatenate(name="triplet")([embed(i) for i in inputs]))

    k, f = pair_model(build)
    x, _ = data(40, (3, 6), seed=12)
    xs = [x[:, i] for i in range(3)]
    y = np.zeros(40, np.float32)
    k.compile(optimizer=keras.optimizers.Adam(0.01),
              loss=keras_triplet(lambda e: (e[:, :4], e[:, 4:8], e[:, 8:])))
    f.compile(optimizer=optimizers.Adam(0.01), loss="triplet_margin_loss")
    kh = k.fit(xs, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    fh = f.fit(xs, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    assert_weights(f, k, rtol=1e-4)
    np.testing.assert_allclose(fh.history["loss"], kh.history["loss"], rtol=1e-4)
    np.testing.assert_allclose(f.evaluate(xs, y, verbose=0), k.evaluate(xs, y, verbose=0),
                               rtol=1e-4)
