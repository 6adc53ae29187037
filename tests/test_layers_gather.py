"""The Gather layer (np.take along an axis after the batch; ONNX's Gather of several
indices): values against NumPy, the gradient against PyTorch (repeated indices summed),
saving, and its argument and input errors."""
import numpy as np
import pytest
from layer_gradients import layer_gradient, torch_value_and_gradient
from roundtrip import assert_saves_loads_and_pickles

from fastdl import layers, models

torch = pytest.importorskip("torch")
RNG = np.random.default_rng(41)


@pytest.mark.parametrize("indices, axis", [([2, 0, 2], 1), ([[1, -1]], 2), ([3, 3, 0], -1),
                                           (np.array([[0], [1]]), 3)])
def test_values_and_gradient_match(indices, axis):
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    layer = layers.Gather(indices, axis)
    model = models.Sequential([layers.Input(x.shape[1:]), layer])
    want = np.take(x, np.asarray(indices), axis=axis)
    np.testing.assert_array_equal(model.predict(x, verbose=0), want)
    assert model.output_shape == (None,) + want.shape[1:]
    flat = torch.from_numpy(np.asarray(indices).reshape(-1) % x.shape[axis])
    _, g, want_dx = torch_value_and_gradient(
        torch, lambda t: torch.index_select(t, axis % 4, flat).reshape(want.shape), x, RNG)
    np.testing.assert_allclose(layer_gradient(layer, x, g), want_dx, rtol=1e-6, atol=1e-6)


def test_model_with_gather_saves_loads_and_pickles(tmp_path):
    model = models.Sequential([layers.Input((6, 5)), layers.Gather([4, 0, 4], axis=-1)])
    x = RNG.standard_normal((3, 6, 5)).astype(np.float32)
    assert_saves_loads_and_pickles(model, x, tmp_path)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(indices=[1], axis=0), ValueError, "axis"),
    (dict(indices=[], axis=1), ValueError, "indices"),
    (dict(indices=[0.5], axis=1), ValueError, "indices"),
    (dict(indices=["a"], axis=1), TypeError, "indices"),
    (dict(indices=[1], axis="1"), TypeError, "axis"),
])
def test_bad_arguments_are_refused(kwargs, error, words):
    with pytest.raises(error, match=words):
        layers.Gather(**kwargs)


@pytest.mark.parametrize("indices, axis, words", [([5], 1, "indices"), ([-6], 1, "indices"),
                                                  ([0], 3, "axis")])
def test_indices_outside_the_input_are_refused(indices, axis, words):
    with pytest.raises(ValueError, match=words):
        models.Sequential([layers.Input((5, 2)), layers.Gather(indices, axis)])
