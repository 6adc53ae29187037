"""The Resize layer (ONNX Resize's nearest and linear rules) against ONNX's reference
evaluator through load_onnx, its gradient against its own forward (the adjoint identity),
saving, and its argument errors."""
import numpy as np
import pytest
from roundtrip import assert_saves_loads_and_pickles

from fastdl import layers, models
from fastdl.layers._resample import COORDINATE_MODES, NEAREST_MODES

onnx = pytest.importorskip("onnx")
from onnx import helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402


def _resize_model(shape, mode, coordinate_mode, nearest_mode, scales=None, sizes=None,
                  axes=None, policy=None):
    attrs = dict(mode=mode, coordinate_transformation_mode=coordinate_mode,
                 nearest_mode=nearest_mode)
    if axes is not None:
        attrs["axes"] = axes
    if policy is not None:
        attrs["keep_aspect_ratio_policy"] = policy
    inits = [numpy_helper.from_array(np.zeros(0, np.float32), "roi")]
    if scales is not None:
        inits.append(numpy_helper.from_array(np.float32(scales), "scales"))
        ins = ["x", "roi", "scales"]
    else:
        inits.append(numpy_helper.from_array(np.int64(sizes), "sizes"))
        ins = ["x", "roi", "", "sizes"]
    node = helper.make_node("Resize", ins, ["y"], **attrs)
    graph = helper.make_graph(
        [node], "resize", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT,
                                                         ["n"] + list(shape[1:]))],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT,
                                       [f"d{i}" for i in range(len(shape))])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])


def _check_against_reference(model, x):
    from fastdl.io import load_onnx
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    loaded = load_onnx(model)
    got = loaded.predict(x, verbose=0)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    return loaded


CASES = [((2, 3, 7), [1, 1, 0.6]), ((1, 2, 5, 4), [1, 1, 1.7, 0.5]),
         ((2, 1, 3, 4, 5), [1, 1, 0.5, 2.5, 1.3]), ((1, 2, 6, 6), [1, 1, 3.0, 2.0])]


@pytest.mark.parametrize("coordinate_mode", COORDINATE_MODES)
@pytest.mark.parametrize("nearest_mode", NEAREST_MODES)
def test_nearest_by_scales_matches_the_reference(coordinate_mode, nearest_mode):
    rng = np.random.default_rng(3)
    for shape, scales in CASES:
        x = rng.standard_normal(shape).astype(np.float32)
        _check_against_reference(_resize_model(shape, "nearest", coordinate_mode,
                                               nearest_mode, scales=scales), x)


@pytest.mark.parametrize("coordinate_mode", COORDINATE_MODES)
def test_linear_by_scales_and_sizes_matches_the_reference(coordinate_mode):
    rng = np.random.default_rng(4)
    for shape, scales in CASES:
        x = rng.standard_normal(shape).astype(np.float32)
        _check_against_reference(_resize_model(shape, "linear", coordinate_mode,
                                               "round_prefer_floor", scales=scales), x)
        sizes = list(shape[:2]) + [max(1, int(s * f + 1)) for s, f in zip(shape[2:],
                                                                           scales[2:])]
        _check_against_reference(_resize_model(shape, "linear", coordinate_mode,
                                               "round_prefer_floor", sizes=sizes), x)


@pytest.mark.parametrize("policy", ["not_larger", "not_smaller"])
def test_aspect_ratio_policies_and_axes_match_the_reference(policy):
    x = np.random.default_rng(5).standard_normal((1, 2, 6, 9)).astype(np.float32)
    model = _resize_model(x.shape, "nearest", "half_pixel", "round_prefer_floor",
                          sizes=[8, 4], axes=[3, 2], policy=policy)
    loaded = _check_against_reference(model, x)
    assert any(type(layer).__name__ == "Resize" for layer in loaded.layers)


def test_whole_factors_still_run_as_upsampling():
    x = np.random.default_rng(6).standard_normal((1, 2, 3, 4)).astype(np.float32)
    loaded = _check_against_reference(
        _resize_model(x.shape, "nearest", "asymmetric", "floor", scales=[1, 1, 2, 3]), x)
    assert [type(layer).__name__ for layer in loaded.layers][-1] == "UpSampling2D"


@pytest.mark.parametrize("interpolation", ["nearest", "linear"])
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_gradient_is_the_adjoint_of_the_forward(interpolation, data_format):
    rng = np.random.default_rng(7)
    for scale in [(0.6, 2.3), (1.5, 0.5)]:
        layer = layers.Resize(scale=scale, interpolation=interpolation,
                              coordinate_mode="half_pixel", data_format=data_format)
        x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
        y, cache = layer._train_forward(x, True)
        g = rng.standard_normal(y.shape).astype(np.float32)
        dx = layer._backward(g, cache, {})
        assert dx.shape == x.shape
        np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, dx), rtol=1e-4)


def test_model_with_resize_saves_loads_and_pickles(tmp_path):
    model = models.Sequential([layers.Input((6, 5, 2)),
                               layers.Resize(size=(4, 9), interpolation="linear",
                                             coordinate_mode="align_corners")])
    x = np.random.default_rng(8).standard_normal((3, 6, 5, 2)).astype(np.float32)
    want = assert_saves_loads_and_pickles(model, x, tmp_path)
    assert want.shape == (3, 4, 9, 2)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(), ValueError, "got neither"),
    (dict(size=(2, 0)), ValueError, "size"),
    (dict(scale=(1.0, -2.0)), ValueError, "scale"),
    (dict(size=(2, 2), scale=(1.0,)), ValueError, "scale"),
    (dict(size=(1, 2, 3, 4)), ValueError, "1 to 3"),
    (dict(size=3), TypeError, "size"),
    (dict(size=(2, 2), interpolation="cubic"), ValueError, "interpolation"),
    (dict(size=(2, 2), coordinate_mode="tf_crop_and_resize"), ValueError, "coordinate_mode"),
    (dict(size=(2, 2), nearest_mode="round"), ValueError, "nearest_mode"),
])
def test_bad_arguments_are_refused(kwargs, error, words):
    with pytest.raises(error, match=words):
        layers.Resize(**kwargs)


def test_cubic_and_crop_nodes_are_refused_by_name():
    from fastdl.io import load_onnx
    for mode, coordinate_mode in [("cubic", "half_pixel"), ("linear", "tf_crop_and_resize")]:
        model = _resize_model((1, 1, 4, 4), mode, coordinate_mode, "round_prefer_floor",
                              scales=[1, 1, 0.5, 0.5])
        with pytest.raises(NotImplementedError, match=coordinate_mode):
            load_onnx(model)
