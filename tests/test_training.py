"""Training without an oracle library: a real dataset learnt (scikit-learn's digits),
seeded runs bit-identical at one thread, dropout while training only, generators and
Sequence-like batch sources, the model-level gradient against central differences in
float64 of the loss, and bad arguments / unsupported layers refused by name."""
from __future__ import annotations

import numpy as np
import pytest

import fastdl
from fastdl import layers, losses, models, optimizers
from fastdl.layers.base import Gradients
from fastdl.models import backprop


def mlp(classes=10, features=64, dropout=0.0, activation="relu"):
    return models.Sequential([layers.Input((features,)), layers.Dense(32, activation=activation),
                              layers.Dropout(dropout), layers.Dense(classes,
                                                                    activation="softmax")])


def digits():
    sklearn = pytest.importorskip("sklearn.datasets")
    d = sklearn.load_digits()
    return (d.data / 16.0).astype(np.float32), d.target


def test_learns_the_digits():
    x, y = digits()
    order = np.random.default_rng(0).permutation(len(x))  # sklearn's files are by writer
    x, y = x[order], y[order]
    fastdl.utils.set_random_seed(0)
    model = mlp(dropout=0.1)
    model.compile(optimizer=optimizers.Adam(0.005), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x[:1400], y[:1400], batch_size=32, epochs=10, verbose=0,
                        validation_data=(x[1400:], y[1400:]))
    assert history.history["loss"][-1] < history.history["loss"][0] / 4
    assert history.history["val_accuracy"][-1] > 0.95
    loss, accuracy = model.evaluate(x[1400:], y[1400:], verbose=0)
    assert accuracy == pytest.approx(history.history["val_accuracy"][-1], abs=1e-6)
    predicted = model.predict(x[1400:], verbose=0).argmax(axis=1)
    assert np.mean(predicted == y[1400:]) == pytest.approx(accuracy, abs=1e-6)


def test_a_cnn_learns_the_digits_images():
    sklearn = pytest.importorskip("sklearn.datasets")
    from sklearn.model_selection import train_test_split
    d = sklearn.load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    x_train, x_test, y_train, y_test = train_test_split(x, d.target, test_size=0.2,
                                                        random_state=0, stratify=d.target)
    fastdl.utils.set_random_seed(0)
    model = models.Sequential([
        layers.Input((8, 8, 1)),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
        layers.Flatten(), layers.Dense(64, activation="relu"), layers.Dropout(0.5),
        layers.Dense(10, activation="softmax")])
    model.compile(optimizer=optimizers.Adam(0.002), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=40, verbose=0)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    # Native, 2 threads, seeds 0-17: 0.969-0.986 (mean 0.978); the exact figure moves with
    # the last bits of any gradient kernel (seed 0 went 0.983 -> 0.969 when the first
    # layer's weight gradient moved to the depthwise kernels), so the bar sits below them.
    assert accuracy >= 0.965


def test_seeded_runs_are_bit_identical_at_one_thread():
    x, y = digits()
    old = fastdl.get_num_threads()
    fastdl.set_num_threads(1)
    try:
        runs = []
        for _ in range(2):
            fastdl.utils.set_random_seed(42)
            model = mlp(dropout=0.3)
            model.compile(optimizer=optimizers.SGD(0.1, momentum=0.9),
                          loss="sparse_categorical_crossentropy")
            model.fit(x[:300], y[:300], batch_size=16, epochs=2, verbose=0)  # shuffled
            runs.append(model.get_weights())
    finally:
        fastdl.set_num_threads(old)
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_dropout_drops_while_training_only():
    fastdl.utils.set_random_seed(3)
    layer = layers.Dropout(0.5)
    x = np.ones((200, 50), np.float32)
    y, mask = layer._train_forward(x, True)
    assert set(np.unique(y)) == {0.0, 2.0}
    assert 0.4 < np.mean(y == 0) < 0.6
    np.testing.assert_array_equal(layer._backward(np.ones_like(x), mask, Gradients()), y)
    np.testing.assert_array_equal(layer._train_forward(x, False)[0], x)
    spatial = layers.SpatialDropout2D(0.5)
    y, _ = spatial._train_forward(np.ones((4, 3, 3, 8), np.float32), True)
    assert np.all(y == y[:, :1, :1, :])  # whole feature maps


def loss_of(model, loss, x, y):
    out, _ = backprop.forward(model._current_program(), [x], False)
    return float(loss(y, out[0]))


def test_model_gradient_matches_central_differences():
    """d loss / d weight through Dense (every activation kind), Activation, Reshape,
    Flatten, against central differences of the loss in float64-accumulated float32."""
    fastdl.utils.set_random_seed(1)
    model = models.Sequential([
        layers.Input((3, 4)), layers.Flatten(), layers.Dense(6, activation="silu"),
        layers.Reshape((2, 3)), layers.Dense(5, activation="tanh"),
        layers.Activation("gelu"), layers.Activation("exponential"), layers.Flatten(),
        layers.Dense(4, activation="softmax")])
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 3, 4)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 5)]
    loss = losses.CategoricalCrossentropy()
    out, tape = backprop.forward(model._current_program(), [x], True)
    coef = np.full(5, 1 / 5, np.float32)
    grads = Gradients()
    backprop.backward(tape, [loss.gradient(y, out[0], coef)], grads)
    for w in model.trainable_weights:
        g = grads.get(w)
        flat, base = w.value.reshape(-1), w.value.copy()
        for i in rng.choice(flat.size, size=min(6, flat.size), replace=False):
            h = 1e-2
            flat[i] = base.reshape(-1)[i] + h
            model._weights_changed()
            plus = loss_of(model, loss, x, y)
            flat[i] = base.reshape(-1)[i] - h
            model._weights_changed()
            minus = loss_of(model, loss, x, y)
            flat[i] = base.reshape(-1)[i]
            model._weights_changed()
            assert g.reshape(-1)[i] == pytest.approx((plus - minus) / (2 * h), rel=2e-2,
                                                    abs=2e-4), w.name


class Batches:
    """A Sequence-like batch source: len() and [i]."""

    def __init__(self, x, y, size):
        self.x, self.y, self.size = x, y, size
        self.epochs_ended = 0

    def __len__(self):
        return -(-len(self.x) // self.size)

    def __getitem__(self, i):
        s = slice(i * self.size, (i + 1) * self.size)
        return self.x[s], self.y[s]

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_generators_and_sequences_train_like_arrays():
    x, y = digits()
    x, y = x[:96], y[:96]
    results = []
    for source in ("arrays", "sequence", "generator"):
        fastdl.utils.set_random_seed(5)
        model = mlp()
        model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        if source == "arrays":
            h = model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
        elif source == "sequence":
            seq = Batches(x, y, 32)
            h = model.fit(seq, epochs=2, verbose=0)
            assert seq.epochs_ended == 2
        else:
            def gen():
                while True:
                    for i in range(3):
                        yield x[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32]
            h = model.fit(gen(), steps_per_epoch=3, epochs=2, verbose=0)
        results.append((h.history["loss"], model.get_weights()))
    for loss, weights in results[1:]:
        np.testing.assert_allclose(loss, results[0][0], rtol=1e-6)
        for a, b in zip(weights, results[0][1]):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_trainable_false_freezes_a_layer_and_shared_weights_sum_their_gradients():
    x, y = digits()
    model = mlp()
    model.layers[0].trainable = False
    frozen = model.layers[0].get_weights()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x[:64], y[:64], verbose=0)
    for a, b in zip(model.layers[0].get_weights(), frozen):
        np.testing.assert_array_equal(a, b)
    g = Gradients()
    w = model.layers[2].kernel
    g.add(w, np.ones(w.shape))
    g.add(w, np.ones(w.shape))
    np.testing.assert_array_equal(g.get(w), 2.0)


def test_unsupported_layers_refuse_training_by_name():
    model = models.Sequential([layers.Input((8,)), layers.Lambda(lambda t: t * 2, name="double"),
                               layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(NotImplementedError, match="double"):
        model.fit(np.zeros((4, 8)), np.zeros(4), verbose=0)
    custom = models.Sequential([layers.Input((3,)), layers.Dense(2, activation=np.tanh)])
    custom.compile(optimizer="sgd", loss="mse")
    with pytest.raises(NotImplementedError, match="custom function"):
        custom.fit(np.zeros((2, 3)), np.zeros((2, 2)), verbose=0)


@pytest.mark.parametrize("call,error,match", [
    (lambda m: m.fit(np.zeros((4, 64)), np.zeros(4)), RuntimeError, "compile"),
    (lambda m: m.compile(optimizer="adam"), ValueError, "loss"),
    (lambda m: m.compile(optimizer="adamax2", loss="mse"), ValueError, "optimizer"),
    (lambda m: m.compile(optimizer="adam", loss="hinge2"), ValueError, "loss"),
    (lambda m: m.compile(optimizer="adam", loss=lambda a, b: a), TypeError, "gradient"),
    (lambda m: m.compile(optimizer="adam", loss="mse", metrics="accuracy"), TypeError,
     "metrics"),
])
def test_bad_compile_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call(mlp())


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(y=np.zeros(5)), ValueError, "samples"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(epochs=-1), ValueError, "epochs"),
    (dict(verbose=3), ValueError, "verbose"),
    (dict(validation_split=1.5), ValueError, "validation_split"),
    (dict(sample_weight=np.ones(3)), ValueError, "sample_weight"),
    (dict(class_weight=[1, 2]), TypeError, "class_weight"),
    (dict(y=None), ValueError, "y"),
])
def test_bad_fit_arguments(kwargs, error, match):
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    args = dict(x=np.zeros((4, 64), np.float32), y=np.zeros(4), verbose=0)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        model.fit(**args)


def test_generator_without_steps_is_refused():
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="steps_per_epoch"):
        model.fit(iter([]), verbose=0)


def test_an_interrupt_during_an_update_leaves_the_whole_step():
    import os
    import signal

    class Interrupting(optimizers.SGD):
        fired = False

        def _update(self, w, g, slots, lr):
            super()._update(w, g, slots, lr)
            if not self.fired:  # Ctrl-C after the first weight of the step
                self.fired = True
                os.kill(os.getpid(), signal.SIGINT)

    x, y = digits()
    models_ = []
    for opt in (Interrupting(0.1), optimizers.SGD(0.1)):
        fastdl.utils.set_random_seed(9)
        model = mlp()
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
        models_.append(model)
    with pytest.raises(KeyboardInterrupt):
        models_[0].fit(x[:64], y[:64], batch_size=64, epochs=3, shuffle=False, verbose=0)
    models_[1].fit(x[:64], y[:64], batch_size=64, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(models_[0].get_weights(), models_[1].get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(models_[0].predict(x[:5], verbose=0),
                                  models_[1].predict(x[:5], verbose=0))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_callbacks_stop_within_an_epoch_and_see_validation():
    x, y = digits()
    fastdl.utils.set_random_seed(3)
    model = mlp()
    model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    seen = []

    def stop_at_two(batch, logs):
        seen.append(("train", batch))
        if batch == 2:
            model.stop_training = True

    hooks = fastdl.callbacks.LambdaCallback(
        on_train_batch_end=stop_at_two,
        on_test_batch_end=lambda batch, logs: seen.append(("test", batch)),
        on_test_end=lambda logs: seen.append(("test_end", sorted(logs))))
    history = model.fit(x[:320], y[:320], batch_size=32, epochs=5, verbose=0,
                        validation_data=(x[320:384], y[320:384]), callbacks=[hooks])
    assert seen == [("train", 0), ("train", 1), ("train", 2), ("test", 0), ("test", 1),
                    ("test_end", ["loss"])]
    assert len(history.history["loss"]) == 1

    fastdl.utils.set_random_seed(3)
    model = mlp()
    model.compile(optimizer=optimizers.SGD(1e30), loss="sparse_categorical_crossentropy")
    with np.errstate(all="ignore"):
        history = model.fit(x[:320], y[:320], batch_size=32, epochs=3, verbose=0,
                            callbacks=[fastdl.callbacks.TerminateOnNaN()])
    assert len(history.history["loss"]) == 1 and not np.isfinite(history.history["loss"][0])


def test_sklearn_wrapper_cross_validates():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.preprocessing import StandardScaler
    from fastdl.wrappers import SKLearnClassifier

    def pima_style(X, y):  # inputs-12-8-1, sigmoid: one output column
        model = models.Sequential([layers.Input((X.shape[1],)),
                                   layers.Dense(12, activation="relu"),
                                   layers.Dense(8, activation="relu"),
                                   layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        return model

    data = load_breast_cancer()
    X = StandardScaler().fit_transform(data.data).astype(np.float32)
    fastdl.utils.set_random_seed(0)
    clf = SKLearnClassifier(pima_style, fit_kwargs={"epochs": 20, "batch_size": 16})
    scores = cross_val_score(clf, X, data.target, cv=StratifiedKFold(10, shuffle=True,
                                                                      random_state=0))
    print(f"10-fold accuracy {scores.mean():.4f} +- {scores.std():.4f}")  # shown with -s
    assert scores.mean() > 0.95
    clf.fit(X, data.target)
    proba = clf.predict_proba(X[:4])
    assert proba.shape == (4, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert set(clf.predict(X)) <= set(data.target)


def test_plot_history_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    x, y = digits()
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x[:200], y[:200], epochs=2, validation_split=0.25, verbose=0)
    path = fastdl.plot_history(history, tmp_path / "history.png")
    assert (tmp_path / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path == tmp_path / "history.png"
    with pytest.raises(ValueError, match="metrics"):
        fastdl.plot_history(history, tmp_path / "x.png", metrics=["auc"])


def test_early_stopping_restores_and_a_checkpoint_reloads_to_the_same_predictions(tmp_path):
    x, y = digits()
    order = np.random.default_rng(1).permutation(len(x))
    x, y = x[order], y[order]
    fastdl.utils.set_random_seed(5)
    model = mlp()
    model.compile(optimizer=optimizers.Adam(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    path = tmp_path / "best.fastdl"
    stopper = fastdl.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    saver = fastdl.callbacks.ModelCheckpoint(str(path), save_best_only=True)
    history = model.fit(x[:600], y[:600], batch_size=32, epochs=40, verbose=0,
                        validation_data=(x[1000:1300], y[1000:1300]),
                        callbacks=[stopper, saver])
    losses = history.history["val_loss"]
    assert len(losses) < 40 and stopper.stopped_epoch == len(losses) - 1
    best = int(np.argmin(losses))
    assert len(losses) - 1 - best == 2  # stopped `patience` epochs after the best
    assert model.evaluate(x[1000:1300], y[1000:1300], verbose=0)[0] == pytest.approx(
        losses[best], rel=1e-5)
    reloaded = models.load_model(str(path))
    np.testing.assert_array_equal(reloaded.predict(x[:50], verbose=0),
                                  model.predict(x[:50], verbose=0))


def test_a_metric_of_several_thresholds_logs_an_array():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)[:, None]
    model = models.Sequential([layers.Input((4,)), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy",
                  metrics=[fastdl.metrics.Precision(thresholds=[0.3, 0.7])])
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)
    expected = [np.sum((p > t) & (y > 0.5)) / max(np.sum(p > t), 1) for t in (0.3, 0.7)]
    np.testing.assert_allclose(logs["precision"], expected, rtol=1e-6)
