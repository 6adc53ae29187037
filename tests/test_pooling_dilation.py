"""Pooling's dilation_rate (a fastdl extension: PyTorch's and ONNX's dilation), in the
layers and through from_torch: values and gradients against PyTorch (a dilated average
against a depthwise convolution of ones divided by the values each window covers)."""
import numpy as np
import pytest
from layer_gradients import layer_gradient, torch_value_and_gradient

import fastdl
from fastdl import layers
from fastdl.models import Sequential, load_model

torch = pytest.importorskip("torch")
RNG = np.random.default_rng(11)
_POOL = {1: (layers.MaxPooling1D, torch.nn.functional.max_pool1d),
         2: (layers.MaxPooling2D, torch.nn.functional.max_pool2d),
         3: (layers.MaxPooling3D, torch.nn.functional.max_pool3d)}


@pytest.mark.parametrize("rank,pool,stride,padding,dilation", [
    (1, 3, 1, 0, 2), (1, 2, 2, 1, 3), (2, 3, 2, 1, (2, 1)), (2, 2, 1, 0, 3),
    (2, 3, 1, 1, 2), (3, 2, 1, 0, 2)])
def test_values_match_torch(rank, pool, stride, padding, dilation):
    shape = (2, 3) + (9, 11, 7)[:rank]
    x = RNG.standard_normal(shape).astype(np.float32)
    cls, fn = _POOL[rank]
    model = Sequential([layers.Input(shape[1:]), cls(
        pool, stride, padding=padding or "valid", data_format="channels_first",
        dilation_rate=dilation)])
    want = fn(torch.from_numpy(x), pool, stride, padding, dilation).numpy()
    np.testing.assert_array_equal(model.predict(x, verbose=0), want)


def test_same_padding_keeps_the_size():
    model = Sequential([layers.Input((10, 9, 2)), layers.MaxPooling2D(
        3, 1, padding="same", dilation_rate=2)])
    assert model.output_shape == (None, 10, 9, 2)
    x = RNG.standard_normal((1, 10, 9, 2)).astype(np.float32)
    assert model.predict(x, verbose=0).shape == (1, 10, 9, 2)


def test_gradient_matches_torch():
    fastdl.utils.clear_session()
    model = Sequential([layers.Input((2, 9, 9)),
                        layers.Conv2D(3, 2, data_format="channels_first"),
                        layers.MaxPooling2D(3, 2, data_format="channels_first",
                                            dilation_rate=2),
                        layers.Flatten(), layers.Dense(1)])
    model.compile(optimizer=fastdl.optimizers.SGD(0.1), loss="mse")
    conv, dense = torch.nn.Conv2d(2, 3, 2), torch.nn.Linear(12, 1)
    kernel, bias = model.layers[0].get_weights()
    w, c = model.layers[3].get_weights()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
        conv.bias.copy_(torch.from_numpy(bias))
        dense.weight.copy_(torch.from_numpy(w.T.copy()))
        dense.bias.copy_(torch.from_numpy(c))
    x = RNG.standard_normal((4, 2, 9, 9)).astype(np.float32)
    y = RNG.standard_normal((4, 1)).astype(np.float32)
    model.train_on_batch(x, y)
    h = torch.nn.functional.max_pool2d(conv(torch.from_numpy(x)), 3, 2, dilation=2)
    ((dense(h.flatten(1)) - torch.from_numpy(y)) ** 2).mean().backward()
    with torch.no_grad():
        want = (conv.weight - 0.1 * conv.weight.grad).numpy().transpose(2, 3, 1, 0)
    np.testing.assert_allclose(model.layers[0].get_weights()[0], want, rtol=1e-5, atol=1e-6)


def test_config_and_refusals(tmp_path):
    model = Sequential([layers.Input((8, 8, 1)), layers.MaxPooling2D(2, dilation_rate=2,
                                                                     name="p")])
    assert model.get_layer("p").get_config()["dilation_rate"] == (2, 2)
    model.save(tmp_path / "m.keras")
    x = RNG.standard_normal((1, 8, 8, 1)).astype(np.float32)
    np.testing.assert_array_equal(load_model(tmp_path / "m.keras").predict(x, verbose=0),
                                  model.predict(x, verbose=0))
    with pytest.raises(ValueError, match="dilation_rate"):
        layers.MaxPooling2D(2, dilation_rate=0)
    with pytest.raises(ValueError, match=r"window \(5, 5\)"):
        Sequential([layers.Input((4, 4, 1)), layers.MaxPooling2D(3, dilation_rate=2)])


def test_from_torch_takes_dilated_max_pooling():
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.MaxPool2d(3, 1, 1, 2))
    model = fastdl.io.from_torch(module.eval(), (3, 12, 12))
    x = RNG.standard_normal((2, 3, 12, 12)).astype(np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-5, atol=1e-5)


def _torch_dilated_average(x, pool, stride, padding, dilation, count_include_pad):
    """Dilated average pooling in PyTorch's ops: window sums as a depthwise convolution of
    ones over the zero-padded input, divided by the taps on input values (or all taps)."""
    rank = x.dim() - 2
    conv = getattr(torch.nn.functional, f"conv{rank}d")
    ones = torch.ones((x.shape[1], 1) + (pool,) * rank, dtype=x.dtype)
    sums = conv(x, ones, None, stride, padding, dilation, groups=x.shape[1])
    if count_include_pad:
        return sums / pool ** rank
    plane = torch.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype)
    return sums / conv(plane, ones[:1], None, stride, padding, dilation)


@pytest.mark.parametrize("rank,pool,stride,padding,dilation,include", [
    (1, 3, 1, 0, 2, False), (1, 2, 2, 1, 3, True), (2, 3, 2, 1, 2, False),
    (2, 2, 1, 1, 3, True), (2, 3, 1, 2, 2, False), (3, 2, 1, 1, 2, False)])
def test_dilated_average_values_and_gradient_match_torch(rank, pool, stride, padding,
                                                         dilation, include):
    shape = (2, 3) + (9, 11, 7)[:rank]
    x = RNG.standard_normal(shape).astype(np.float32)
    cls = getattr(layers, f"AveragePooling{rank}D")
    layer = cls(pool, stride, padding=padding or "valid", data_format="channels_first",
                dilation_rate=dilation, count_include_pad=include)
    model = Sequential([layers.Input(shape[1:]), layer])
    want, g, want_dx = torch_value_and_gradient(
        torch, lambda t: _torch_dilated_average(t, pool, stride, padding, dilation, include),
        x, RNG, double=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer_gradient(layer, x, g), want_dx, rtol=1e-5, atol=1e-6)


def test_dilated_average_with_same_padding_keeps_the_size():
    model = Sequential([layers.Input((10, 9, 2)), layers.AveragePooling2D(
        3, 1, padding="same", dilation_rate=2)])
    x = RNG.standard_normal((1, 10, 9, 2)).astype(np.float32)
    y = model.predict(x, verbose=0)
    assert y.shape == (1, 10, 9, 2)
    # The centre of the map sees its whole window: the mean of 9 taps 2 apart.
    np.testing.assert_allclose(y[0, 5, 4], x[0, 3:8:2, 2:7:2].mean(axis=(0, 1)), rtol=1e-5)
