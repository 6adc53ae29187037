"""'gelu_tanh' (GELU's tanh approximation, a fastdl name: PyTorch's approximate='tanh',
Keras' gelu(approximate=True), ONNX Gelu approximate='tanh'): values and gradient against
PyTorch, and from_torch / load_onnx building it."""
import numpy as np
import pytest

from fastdl import layers, models

torch = pytest.importorskip("torch")
X = np.random.default_rng(5).standard_normal((4, 7)).astype(np.float32) * 3


def test_values_and_gradient_match_torch():
    layer = layers.Activation("gelu_tanh")
    xt = torch.from_numpy(X).requires_grad_()
    want = torch.nn.functional.gelu(xt, approximate="tanh")
    y, cache = layer._train_forward(X, True)
    np.testing.assert_allclose(y, want.detach().numpy(), rtol=1e-6, atol=1e-6)
    g = np.random.default_rng(6).standard_normal(X.shape).astype(np.float32)
    want.backward(torch.from_numpy(g))
    np.testing.assert_allclose(layer._backward(g, cache, {}), xt.grad.numpy(), rtol=1e-5,
                               atol=1e-6)


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
