"""'gelu_tanh' (GELU's tanh approximation, a fastdl name: PyTorch's approximate='tanh',
Keras' gelu(approximate=True), ONNX Gelu approximate='tanh'): values and gradient against
PyTorch, and from_torch / load_onnx building it."""
import numpy as np
import pytest
from layer_gradients import layer_gradient, torch_value_and_gradient

from fastdl import layers, models

torch = pytest.importorskip("torch")
X = np.random.default_rng(5).standard_normal((4, 7)).astype(np.float32) * 3


def test_values_and_gradient_match_torch():
    layer = layers.Activation("gelu_tanh")
    want, g, want_dx = torch_value_and_gradient(
        torch, lambda t: torch.nn.functional.gelu(t, approximate="tanh"), X,
        np.random.default_rng(6))
    y, _ = layer._train_forward(X, True)
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(layer_gradient(layer, X, g), want_dx, rtol=1e-5, atol=1e-6)


def test_from_torch_keeps_the_approximation():
    from fastdl.io import from_torch
    module = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.GELU(approximate="tanh"))
    model = from_torch(module, (7,))
    assert "gelu_tanh" in str(model.get_config())
    with torch.no_grad():
        want = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(model.predict(X, verbose=0), want, rtol=1e-5, atol=1e-6)


def test_saved_models_keep_the_name(tmp_path):
    model = models.Sequential([layers.Input((7,)), layers.Dense(3, activation="gelu_tanh")])
    path = tmp_path / "m.fastdl"
    model.save(path)
    np.testing.assert_array_equal(models.load_model(path).predict(X, verbose=0),
                                  model.predict(X, verbose=0))
