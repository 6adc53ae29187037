"""UnitNormalization against Keras 3 (torch backend): values, one SGD step through it, a
.keras file read by load_keras; the gradient where the norm is capped against PyTorch's
autograd of Keras' formula; argument errors."""
import numpy as np
import pytest

from keras_oracle import keras, pair  # skips this module without keras
import fastdl
from fastdl import layers, models

RNG = np.random.default_rng(51)


@pytest.mark.parametrize("axis", [-1, 1, (1, 2)])
def test_values_and_one_sgd_step_match_keras(axis):
    def build(L, Input):
        return [Input((4, 6)), L.Dense(5), L.UnitNormalization(axis=axis), L.Flatten(),
                L.Dense(2)]

    k, f = pair(build)
    x = RNG.standard_normal((8, 4, 6)).astype(np.float32)
    y = RNG.standard_normal((8, 2)).astype(np.float32)
    np.testing.assert_allclose(f.predict(x, verbose=0), np.asarray(k.predict(x, verbose=0)),
                               rtol=1e-5, atol=1e-6)
    k.compile(optimizer=keras.optimizers.SGD(0.2), loss="mse")
    f.compile(optimizer=fastdl.optimizers.SGD(0.2), loss="mse")
    assert f.train_on_batch(x, y) == pytest.approx(float(k.train_on_batch(x, y)), rel=1e-5)
    for a, b in zip(f.get_weights(), k.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=2e-5, atol=2e-6)


def test_keras_file_loads(tmp_path):
    from fastdl.io import load_keras
    k = keras.Sequential([keras.Input((7,)), keras.layers.Dense(3),
                          keras.layers.UnitNormalization()])
    k.save(tmp_path / "m.keras")
    x = RNG.standard_normal((5, 7)).astype(np.float32)
    np.testing.assert_allclose(load_keras(tmp_path / "m.keras").predict(x, verbose=0),
                               np.asarray(k.predict(x, verbose=0)), rtol=1e-5, atol=1e-6)


def test_a_tiny_norm_is_capped_as_keras_and_its_gradient_follows():
    """Keras' formula differentiated: a norm below 1e-12 scales by 1e12, and so does its
    gradient. (At an all-zero sample autograd gives NaN, 0 * inf inside rsqrt's derivative;
    fastdl gives the same capped gradient dy * 1e12 there.)"""
    torch = pytest.importorskip("torch")
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1e-14, 0.0]], np.float32)
    layer = layers.UnitNormalization()
    y, cache = layer._train_forward(x, True)
    xt = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    inv = torch.minimum(torch.rsqrt((xt * xt).sum(1, keepdim=True)),
                        torch.tensor(1e12, dtype=torch.float64))
    want = xt * inv
    np.testing.assert_allclose(y, want.detach().numpy(), rtol=1e-6)
    g = np.array([[1.0, -2.0], [0.5, 0.25], [1e-12, 2e-12]], np.float32)
    want.backward(torch.from_numpy(g.astype(np.float64)))
    dx = layer._backward(g, cache, {})
    np.testing.assert_allclose(dx[[0, 2]], xt.grad.numpy()[[0, 2]], rtol=1e-6)
    np.testing.assert_allclose(dx[1], g[1] * 1e12, rtol=1e-6)


@pytest.mark.parametrize("axis, error", [((), ValueError), (1.5, TypeError), ("a", TypeError)])
def test_bad_axes_are_refused(axis, error):
    with pytest.raises(error, match="axis"):
        layers.UnitNormalization(axis=axis)


def test_the_batch_axis_is_refused():
    with pytest.raises(ValueError, match="axis"):
        models.Sequential([layers.Input((3,)), layers.UnitNormalization(axis=0)])
