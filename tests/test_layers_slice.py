"""layers.Slice (a fastdl extension: ONNX's Slice / Split / Gather): what it keeps, after
channels-first maps too, its refusals and config, and its gradient (SGD against torch)."""
import numpy as np
import pytest

import fastdl
from fastdl import layers
from fastdl.models import Model, Sequential, load_model

RNG = np.random.default_rng(3)


@pytest.mark.parametrize("axis,start,stop,step", [
    (1, 1, 3, 1), (2, None, None, 2), (-1, -3, None, 1), (3, 0, 5, 3), (1, -2, -1, 1),
    (2, None, None, -1), (3, 3, 0, -2)])
def test_keeps_what_numpy_keeps(axis, start, stop, step):
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    model = Sequential([layers.Input((3, 4, 5)), layers.Slice(axis, start, stop, step)])
    want = x[(slice(None),) * (axis % 4) + (slice(start, stop, step),)]
    assert model.output_shape == (None,) + want.shape[1:]
    np.testing.assert_array_equal(model.predict(x, verbose=0), want)


def test_after_channels_first_and_channels_last_maps():
    x = RNG.standard_normal((2, 6, 6, 4)).astype(np.float32)
    inputs = layers.Input((6, 6, 4))
    conv = layers.Conv2D(4, 3, padding="same")  # its output is held channels-first inside
    h = conv(inputs)
    model = Model(inputs, [layers.Slice(3, 1, 3)(h), layers.Slice(1, 2, None)(h)])
    full = Model(inputs, h).predict(x, verbose=0)
    a, b = model.predict(x, verbose=0)
    np.testing.assert_array_equal(a, full[..., 1:3])
    np.testing.assert_array_equal(b, full[:, 2:])


@pytest.mark.parametrize("kwargs,match", [
    (dict(axis=0), r"axis: expected an axis after the batch axis"),
    (dict(axis=1, step=0), r"step"), (dict(axis=1, step=2**40), r"step"),
    (dict(axis="1"), r"axis"), (dict(axis=1, start=1.5), r"start")])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        layers.Slice(**kwargs)


@pytest.mark.parametrize("layer,match", [
    (layers.Slice(3), r"an axis 3 after the batch axis"),
    (layers.Slice(-3), r"an axis -3 after the batch axis"),
    (layers.Slice(1, 5, None), r"elements in \[5:None:1\]")])
def test_shapes_it_cannot_slice_are_refused(layer, match):
    with pytest.raises(ValueError, match=match):
        Sequential([layers.Input((4, 2)), layer])


def test_config_round_trip(tmp_path):
    model = Sequential([layers.Input((5, 3)), layers.Slice(1, 1, None, 2, name="every_other")])
    model.save(tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    assert again.get_layer("every_other").get_config() == model.get_layer(
        "every_other").get_config()
    x = RNG.standard_normal((2, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(again.predict(x, verbose=0), x[:, 1::2])


def test_sgd_step_matches_torch():
    torch = pytest.importorskip("torch")
    fastdl.utils.clear_session()
    model = Sequential([layers.Input((6,)), layers.Dense(8), layers.Slice(1, 6, 0, -2),
                        layers.Dense(2)])
    model.compile(optimizer=fastdl.optimizers.SGD(0.1), loss="mse")
    first, second = torch.nn.Linear(6, 8), torch.nn.Linear(3, 2)
    with torch.no_grad():
        for t, layer in ((first, model.layers[0]), (second, model.layers[2])):
            kernel, bias = layer.get_weights()
            t.weight.copy_(torch.from_numpy(kernel.T.copy()))
            t.bias.copy_(torch.from_numpy(bias))
    x = RNG.standard_normal((4, 6)).astype(np.float32)
    y = RNG.standard_normal((4, 2)).astype(np.float32)
    model.train_on_batch(x, y)
    kept = first(torch.from_numpy(x))[:, [6, 4, 2]]  # [6:0:-2]
    loss = ((second(kept) - torch.from_numpy(y)) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        for t, layer in ((first, model.layers[0]), (second, model.layers[2])):
            kernel, bias = layer.get_weights()
            np.testing.assert_allclose(kernel.T, (t.weight - 0.1 * t.weight.grad).numpy(),
                                       rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(bias, (t.bias - 0.1 * t.bias.grad).numpy(),
                                       rtol=1e-5, atol=1e-6)
