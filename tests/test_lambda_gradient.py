"""Lambda(fn, gradient=...) trains (a fastdl extension: no autodiff differentiates a Python
function): an L2 normalization as a Lambda takes the step UnitNormalization takes (itself
checked against Keras), a two-input Lambda the step Multiply takes; saving names both
functions; a gradient that returns the wrong thing is refused by name."""
import numpy as np
import pytest

import fastdl
from fastdl import layers, models, optimizers

RNG = np.random.default_rng(61)


def _norm(x):
    return np.sqrt(np.maximum(np.sum(x * x, axis=-1, keepdims=True), 1e-24))


def l2_normalize(x):
    return x / _norm(x)


def l2_normalize_gradient(x, dy):
    n = _norm(x)
    y = x / n
    return (dy - y * np.sum(dy * y, axis=-1, keepdims=True)) / n


def product(xs):
    return xs[0] * xs[1]


def product_gradient(xs, dy):
    return [dy * xs[1], dy * xs[0]]


@pytest.fixture
def registered():
    objects = fastdl.utils.get_custom_objects()
    names = {"l2n": l2_normalize, "l2n_grad": l2_normalize_gradient}
    objects.update(names)
    yield
    for name in names:
        objects.pop(name, None)


def _step(model, x, y):
    model.compile(optimizer=optimizers.SGD(0.3), loss="mse")
    return model.train_on_batch(x, y)


def test_a_normalizing_lambda_steps_as_unit_normalization():
    def build(middle):
        return models.Sequential([layers.Input((6,)), layers.Dense(4), middle, layers.Dense(2)])

    lam = build(layers.Lambda(l2_normalize, gradient=l2_normalize_gradient))
    unit = build(layers.UnitNormalization())
    unit.set_weights(lam.get_weights())
    x, y = RNG.standard_normal((8, 6)).astype(np.float32), RNG.standard_normal((8, 2))
    assert _step(lam, x, y) == pytest.approx(_step(unit, x, y), rel=1e-6)
    for a, b in zip(lam.get_weights(), unit.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_two_input_lambda_steps_as_multiply():
    def build(merge):
        a, b = layers.Input((5,)), layers.Input((5,))
        h = merge([layers.Dense(5)(a), layers.Dense(5)(b)])
        return models.Model([a, b], layers.Dense(1)(h))

    lam = build(layers.Lambda(product, gradient=product_gradient))
    mul = build(layers.Multiply())
    mul.set_weights(lam.get_weights())
    xs = [RNG.standard_normal((6, 5)).astype(np.float32) for _ in range(2)]
    y = RNG.standard_normal((6, 1)).astype(np.float32)
    assert _step(lam, xs, y) == pytest.approx(_step(mul, xs, y), rel=1e-6)
    for a, b in zip(lam.get_weights(), mul.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_saving_names_the_gradient(registered, tmp_path):
    model = models.Sequential([layers.Input((6,)), layers.Dense(3),
                               layers.Lambda("l2n", gradient="l2n_grad")])
    model.save(tmp_path / "m.fastdl")
    loaded = models.load_model(tmp_path / "m.fastdl")
    assert loaded.layers[-1].gradient is l2_normalize_gradient
    x = RNG.standard_normal((4, 6)).astype(np.float32)
    _step(loaded, x, np.zeros((4, 3), np.float32))  # it trains after loading


def test_an_unregistered_gradient_cannot_be_saved(registered, tmp_path):
    model = models.Sequential([layers.Input((6,)), layers.Lambda(
        "l2n", gradient=lambda x, dy: dy)])
    with pytest.raises(ValueError, match="gradient"):
        model.save(tmp_path / "m.fastdl")


def test_without_a_gradient_training_names_the_layer_and_the_argument():
    model = models.Sequential([layers.Input((6,)), layers.Lambda(l2_normalize, name="norm"),
                               layers.Dense(2)])
    with pytest.raises(NotImplementedError, match="norm.*gradient"):
        _step(model, np.ones((2, 6), np.float32), np.zeros((2, 2), np.float32))


@pytest.mark.parametrize("gradient, words", [
    (lambda x, dy: dy[:, :3], "shape"),
    (lambda x, dy: [dy], "list"),
    (lambda x, dy: "no", "gradient|array"),
])
def test_a_wrong_gradient_is_refused_by_name(gradient, words):
    model = models.Sequential([layers.Input((6,)), layers.Lambda(
        l2_normalize, gradient=gradient, name="norm"), layers.Dense(2)])
    with pytest.raises((ValueError, TypeError), match=words):
        _step(model, np.ones((2, 6), np.float32), np.zeros((2, 2), np.float32))


def test_a_gradient_of_the_wrong_signature_is_refused():
    with pytest.raises(TypeError, match="gradient"):
        layers.Lambda(l2_normalize, gradient=lambda x: x)
