"""The Reduce layer (mean, max, min, sum over feature axes; ONNX's ReduceMean/Max/Min/Sum):
values against NumPy, gradients against PyTorch (ties shared as torch.amax), after a
channels_last convolution (whose maps fastdl holds channels-first), ONNX nodes through
load_onnx, saving, and its argument errors."""
import numpy as np
import pytest
from layer_gradients import layer_gradient, torch_value_and_gradient
from roundtrip import assert_saves_loads_and_pickles

from fastdl import layers, models

torch = pytest.importorskip("torch")
RNG = np.random.default_rng(31)
_NUMPY = {"mean": np.mean, "max": np.max, "min": np.min, "sum": np.sum}
_TORCH = {"mean": torch.mean, "max": torch.amax, "min": torch.amin, "sum": torch.sum}


@pytest.mark.parametrize("kind", ["mean", "max", "min", "sum"])
@pytest.mark.parametrize("axis, keepdims", [(1, False), (-1, True), ((1, 3), False),
                                           ((2, 3), True)])
def test_values_and_gradients_match_torch(kind, axis, keepdims):
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    x[0, 1, 2, :2] = 7.0  # a tie for max and min along the last axis
    x[1, :2, 0, 0] = -7.0
    layer = layers.Reduce(kind, axis, keepdims)
    model = models.Sequential([layers.Input(x.shape[1:]), layer])
    want = _NUMPY[kind](x.astype(np.float64), axis=axis, keepdims=keepdims)
    got = model.predict(x, verbose=0)
    assert model.output_shape == (None,) + want.shape[1:]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    _, g, want_dx = torch_value_and_gradient(
        torch, lambda t: _TORCH[kind](t, dim=axis, keepdim=keepdims), x, RNG)
    np.testing.assert_allclose(layer_gradient(layer, x, g), want_dx, rtol=1e-6, atol=1e-7)


def test_channel_reduction_after_a_channels_last_convolution():
    x = RNG.standard_normal((2, 6, 5, 3)).astype(np.float32)
    conv = layers.Conv2D(4, 3, padding="same")
    model = models.Sequential([layers.Input((6, 5, 3)), conv,
                               layers.Reduce("max", axis=-1, keepdims=True)])
    features = models.Sequential([layers.Input((6, 5, 3)), conv]).predict(x, verbose=0)
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               features.max(axis=-1, keepdims=True), rtol=1e-6)


def test_model_with_reduce_saves_loads_and_pickles(tmp_path):
    model = models.Sequential([layers.Input((6, 5, 2)), layers.Reduce("sum", (1, 2))])
    x = RNG.standard_normal((3, 6, 5, 2)).astype(np.float32)
    want = assert_saves_loads_and_pickles(model, x, tmp_path)
    assert want.shape == (3, 2)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(kind="median"), ValueError, "kind"),
    (dict(axis=()), ValueError, "axis"),
    (dict(axis=1.5), TypeError, "axis"),
    (dict(keepdims="yes"), TypeError, "keepdims"),
])
def test_bad_arguments_are_refused(kwargs, error, words):
    with pytest.raises(error, match=words):
        layers.Reduce(**kwargs)


@pytest.mark.parametrize("axis", [0, 3, -4])
def test_the_batch_axis_and_missing_axes_are_refused(axis):
    with pytest.raises(ValueError, match="axis"):
        models.Sequential([layers.Input((4, 3)), layers.Reduce("mean", axis)])


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum"])
@pytest.mark.parametrize("axes, keepdims", [([1], 1), ([1, 3], 0), ([2, 3], 1), ([-1], 0)])
def test_reduce_nodes_match_the_onnx_reference(op, axes, keepdims):
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator
    from fastdl.io import load_onnx
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    rank = 4 if keepdims else 4 - len(axes)
    graph = helper.make_graph(
        [helper.make_node(op, ["x", "axes"], ["y"], keepdims=keepdims)], "reduce",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", 3, 4, 5])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT,
                                       [f"d{i}" for i in range(rank)])],
        [numpy_helper.from_array(np.int64(axes), "axes")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    loaded = load_onnx(model)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    pooled = op in ("ReduceMean", "ReduceMax") and axes == [2, 3]
    assert (type(loaded.layers[-1]).__name__ == "Reduce") != pooled
