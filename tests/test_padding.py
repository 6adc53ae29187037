"""The Padding layer (ONNX Pad's and PyTorch's modes: constant with a value, reflect, edge,
wrap): values and gradients against PyTorch, Pad nodes through load_onnx against ONNX's
reference evaluator, saving, and its argument errors."""
import numpy as np
import pytest
from layer_gradients import layer_gradient, torch_value_and_gradient
from roundtrip import assert_saves_loads_and_pickles

from fastdl import layers, models

torch = pytest.importorskip("torch")
F = torch.nn.functional
RNG = np.random.default_rng(21)
# fastdl's mode -> PyTorch's
_TORCH_MODE = {"constant": "constant", "reflect": "reflect", "edge": "replicate",
               "wrap": "circular"}


def _torch_pad(padding):
    """F.pad's flat pads (last axis first) for per-axis (before, after) pairs."""
    return [p for pair in reversed(padding) for p in pair]


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("padding", [((2, 1),), ((1, 0), (2, 3)), ((1, 1), (0, 2), (2, 1))])
def test_values_and_gradients_match_torch(mode, padding):
    rank = len(padding)
    shape = (2, 3) + (5, 4, 3)[:rank]
    x = RNG.standard_normal(shape).astype(np.float32)
    value = 1.25 if mode == "constant" else 0.0
    layer = layers.Padding(padding, mode=mode, value=value, data_format="channels_first")
    model = models.Sequential([layers.Input(shape[1:]), layer])
    want, g, want_dx = torch_value_and_gradient(
        torch, lambda t: F.pad(t, _torch_pad(padding), mode=_TORCH_MODE[mode],
                               **({"value": value} if mode == "constant" else {})), x, RNG)
    got = model.predict(x, verbose=0)
    assert model.output_shape == (None,) + tuple(want.shape[1:])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(layer_gradient(layer, x, g), want_dx, rtol=1e-6, atol=1e-6)


def test_a_zero_constant_pads_as_zero_padding_does():
    """value 0 takes ZeroPadding's path (and its gradient, the crop)."""
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    layer = layers.Padding(((1, 2), (0, 3)), data_format="channels_first")
    want = np.pad(x, [(0, 0), (0, 0), (1, 2), (0, 3)])
    np.testing.assert_array_equal(layer._forward(x, "keras")[0], want)
    g = RNG.standard_normal(want.shape).astype(np.float32)
    np.testing.assert_array_equal(layer_gradient(layer, x, g), g[:, :, 1:5, 0:5])


def test_channels_last_pads_the_spatial_axes():
    x = RNG.standard_normal((2, 4, 5, 3)).astype(np.float32)
    model = models.Sequential([layers.Input((4, 5, 3)),
                               layers.Padding(((1, 2), (3, 0)), mode="edge")])
    want = np.pad(x, [(0, 0), (1, 2), (3, 0), (0, 0)], mode="edge")
    np.testing.assert_array_equal(model.predict(x, verbose=0), want)


def test_model_with_padding_saves_loads_and_pickles(tmp_path):
    model = models.Sequential([layers.Input((6, 5, 2)),
                               layers.Padding(((1, 1), (2, 0)), value=-3.0),
                               layers.Padding(((2, 2), (1, 1)), mode="wrap")])
    x = RNG.standard_normal((3, 6, 5, 2)).astype(np.float32)
    want = assert_saves_loads_and_pickles(model, x, tmp_path)
    assert want.shape == (3, 12, 9, 2)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(padding=1), ValueError, "padding"),
    (dict(padding=((1, 1),) * 4), ValueError, "padding"),
    (dict(padding=((1, -1),)), ValueError, "padding"),
    (dict(padding=((1, 1),), mode="symmetric"), ValueError, "mode"),
    (dict(padding=((1, 1),), mode="reflect", value=2.0), ValueError, "value"),
    (dict(padding=((1, 1),), value="x"), TypeError, "value"),
])
def test_bad_arguments_are_refused(kwargs, error, words):
    with pytest.raises(error, match=words):
        layers.Padding(**kwargs)


def test_reflecting_a_single_value_is_refused_by_name():
    with pytest.raises(ValueError, match="reflect"):
        models.Sequential([layers.Input((1, 3)), layers.Padding(((1, 1),), mode="reflect")])


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_nodes_match_the_onnx_reference(mode):
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator
    from fastdl.io import load_onnx
    x = RNG.standard_normal((2, 3, 5, 6)).astype(np.float32)
    inits = [numpy_helper.from_array(np.int64([0, 0, 2, 1, 0, 0, 1, 3]), "pads"),
             numpy_helper.from_array(np.float32(0.5 if mode == "constant" else 0), "value")]
    graph = helper.make_graph(
        [helper.make_node("Pad", ["x", "pads", "value"], ["y"], mode=mode)], "pad",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", 3, 5, 6])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["n", 3, 8, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    np.testing.assert_array_equal(load_onnx(model).predict(x, verbose=0), want)
