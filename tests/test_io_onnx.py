"""fastdl.io.load_onnx: exported models against ONNX Runtime (torchvision-layout
architectures written out in tests/onnx_models.py), what load_onnx refuses and how."""
import numpy as np
import pytest

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import onnx_models as om  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

import fastdl  # noqa: E402
from fastdl.io import load_onnx  # noqa: E402

RNG = np.random.default_rng(7)
# (architecture, input shape without the batch, exporter options)
MODELS = {
    "resnet18": (om.ResNet18, (3, 64, 64), {}),
    # BatchNormalization nodes kept (the exporter folds them into Conv by default)
    "resnet18_bn_nodes": (om.ResNet18, (3, 48, 48), {"do_constant_folding": False}),
    "mobilenet_v2": (om.MobileNetV2, (3, 64, 64), {}),
    "squeezenet1_1": (om.SqueezeNet11, (3, 64, 64), {}),
    "shufflenet_v2": (om.ShuffleNetV2, (3, 64, 64), {}),
    "tiny_unet": (om.TinyUNet, (3, 32, 24), {}),
    "normalized_cnn": (om.NormalizedCNN, (3, 16, 16), {}),
    "conv1d_lstm": (om.Conv1dLSTM, (3, 40), {}),
    "gru": (om.GRUModel, (12, 16), {}),
}


def _ort(data, x):
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _assert_close(got, want, rtol=1e-4):
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


@pytest.fixture(scope="module")
def exported():
    """{name: ONNX bytes}, exported once per module."""
    return {name: om.exported(om.randomized(build(), seed=len(name)), (1,) + shape, **options)
            for name, (build, shape, options) in MODELS.items()}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_exported_model_matches_onnx_runtime(name, exported):
    fastdl.utils.clear_session()
    model = load_onnx(exported[name])
    shape = MODELS[name][1]
    assert model.input_shape == (None,) + shape
    assert [layer.name for layer in model.layers][0] == "x"
    assert model.layers[-1].name == "y"  # the graph's own output name
    for batch in (1, 3):  # the exported batch (1) and another
        x = RNG.standard_normal((batch,) + shape).astype(np.float32)
        _assert_close(model.predict(x, verbose=0), _ort(exported[name], x))


@pytest.mark.parametrize("name", ["shufflenet_v2", "squeezenet1_1", "mobilenet_v2",
                                  "resnet18", "tiny_unet"])
def test_repeated_calls_replay_bound_runs_exactly(name, exported, monkeypatch):
    """From the third call on, a loaded model replays its steps on its buffers as bound
    runs (channel shuffles, concatenated convolutions, chains, residual adds, pooling):
    exactly what the same calls give with every step a Python call."""
    from fastdl.models import bound_trace
    fastdl.utils.clear_session()
    model = load_onnx(exported[name])
    x = RNG.standard_normal((1,) + MODELS[name][1]).astype(np.float32)
    got = [model(x) for _ in range(4)][2:]
    runs = [op for trace in model._executor()._traces.values() for op in trace.ops
            if getattr(op[0], "__qualname__", "").startswith("_run_op")]
    assert runs or fastdl.backend() != "native"
    monkeypatch.setattr(bound_trace, "bound_calls", lambda *args: None)
    model._executor()._traces.clear()
    want = [model(x) for _ in range(2)][1]
    for y in got:
        np.testing.assert_array_equal(y, want)
    _assert_close(got[-1], _ort(exported[name], x))


def test_path_bytes_and_model_proto_load_alike(exported, tmp_path):
    data = exported["squeezenet1_1"]
    (tmp_path / "m.onnx").write_bytes(data)
    x = RNG.standard_normal((2, 3, 64, 64)).astype(np.float32)
    results = [load_onnx(source).predict(x, verbose=0) for source in (
        data, str(tmp_path / "m.onnx"), tmp_path / "m.onnx", onnx.load_from_string(data))]
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    assert load_onnx(data, name="squeeze").name == "squeeze"


# ------------------------------------------------------------------ graphs built by hand

def _graph_model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _value(name, shape=("n",)):
    """A float tensor's value info (outputs: a shape fastdl does not read)."""
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _init(name, array):
    return onnx.numpy_helper.from_array(np.asarray(array), name)


def test_every_unsupported_node_is_listed_before_anything_runs():
    w = _init("w", RNG.standard_normal((4, 3, 3, 3)).astype(np.float32))
    nodes = [helper.make_node("Erf", ["x"], ["e"], name="erf1"),
             helper.make_node("Conv", ["x", "w"], ["c"], name="conv1"),
             helper.make_node("Mul", ["c", "c"], ["m"], name="square"),
             helper.make_node("Custom", ["m"], ["k"], name="mine", domain="my.ops"),
             helper.make_node("Resize", ["m", "", "scales"], ["y"], name="resize",
                              mode="cubic")]
    scales = _init("scales", np.array([1, 1, 2, 2], np.float32))
    model = _graph_model(nodes, [_value("x", ["n", 3, 8, 8])],
                         [_value("y"), _value("e"), _value("k")],
                         [w, scales])
    model.opset_import.append(helper.make_opsetid("my.ops", 1))
    with pytest.raises(NotImplementedError) as info:
        load_onnx(model)
    message = str(info.value)
    assert "3 node(s)" in message
    assert "Erf node 'erf1': no fastdl equivalent" in message
    assert "Custom node 'mine': operator domain 'my.ops'" in message
    assert "Resize node 'resize'" in message
    assert "conv1" not in message and "square" not in message  # supported


def test_bias_of_a_matmul_then_add_is_taken_by_the_dense():
    w, c = RNG.standard_normal((6, 4)).astype(np.float32), RNG.standard_normal(4).astype(
        np.float32)
    model = _graph_model([helper.make_node("MatMul", ["x", "w"], ["h"]),
                          helper.make_node("Add", ["h", "c"], ["y"])],
                         [_value("x", ["n", 5, 6])], [_value("y")],
                         [_init("w", w), _init("c", c)])
    loaded = load_onnx(model)
    assert [type(layer).__name__ for layer in loaded.layers] == ["InputLayer", "Dense"]
    x = RNG.standard_normal((2, 5, 6)).astype(np.float32)
    _assert_close(loaded.predict(x, verbose=0), x @ w + c)


def test_symbolic_axes_need_input_shapes():
    model = _graph_model([helper.make_node("Relu", ["x"], ["y"])],
                         [_value("x", ["n", 3, "h", "w"])], [_value("y")])
    with pytest.raises(ValueError, match=r"input 'x' leaves axes \[2, 3\].*input_shapes"):
        load_onnx(model)
    loaded = load_onnx(model, input_shapes={"x": (3, 5, 7)})
    assert loaded.input_shape == (None, 3, 5, 7)
    with pytest.raises(ValueError, match=r"input_shapes: names no input.*'z'"):
        load_onnx(model, input_shapes={"z": (3, 5, 7)})
    with pytest.raises(ValueError, match=r"input_shapes: 'x' expected a shape of 3 axes"):
        load_onnx(model, input_shapes={"x": (5, 7)})
    with pytest.raises(TypeError, match=r"input_shapes: expected a dict"):
        load_onnx(model, input_shapes=[(3, 5, 7)])


def test_reshape_across_the_batch_axis_is_refused():
    shape = _init("s", np.array([-1, 4], np.int64))  # (n, 2, 4) -> (2n, 4)
    model = _graph_model([helper.make_node("Reshape", ["x", "s"], ["y"], name="r")],
                         [_value("x", ["n", 2, 4])], [_value("y")], [shape])
    with pytest.raises(NotImplementedError, match=r"Reshape node 'r': a reshape of"):
        load_onnx(model)


@pytest.mark.parametrize("source,error,match", [
    (b"", ValueError, r"model: the bytes given is not an ONNX model"),
    (b"\x08\x07garbage that is no protobuf\xff\xff", ValueError, r"^model: "),
    (12, TypeError, r"model: expected a path, bytes or an onnx.ModelProto, got int"),
    ("/nonexistent/m.onnx", FileNotFoundError, r"model: no ONNX file at"),
])
def test_bad_sources_raise_naming_model(source, error, match):
    with pytest.raises(error, match=match):
        load_onnx(source)


def test_damaged_files_raise_a_value_error(exported):
    data = exported["squeezenet1_1"]
    for cut in (10, len(data) // 3, len(data) - 7):
        with pytest.raises(ValueError, match=r"^model: "):
            load_onnx(data[:cut])


def test_opsets_outside_the_range_are_refused():
    model = _graph_model([helper.make_node("Relu", ["x"], ["y"])],
                         [_value("x", ["n", 3])], [_value("y")], opset=9)
    with pytest.raises(ValueError, match=r"model: opset 9; fastdl reads opsets 11 to"):
        load_onnx(model)


def test_inputs_other_than_float32_are_refused():
    model = _graph_model([helper.make_node("Relu", ["x"], ["y"])],
                         [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["n", 3])],
                         [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["n"])])
    with pytest.raises(ValueError, match=r"model: input 'x' is float64"):
        load_onnx(model)


def test_loaded_models_save_and_load(exported, tmp_path):
    model = load_onnx(exported["shufflenet_v2"])
    model.save(tmp_path / "m.keras")
    again = fastdl.models.load_model(tmp_path / "m.keras")
    x = RNG.standard_normal((2, 3, 64, 64)).astype(np.float32)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("kind,direction,linear_before_reset", [
    ("GRU", "forward", 0), ("GRU", "bidirectional", 0), ("GRU", "bidirectional", 1),
    ("LSTM", "bidirectional", 0), ("LSTM", "forward", 0)])
def test_recurrent_nodes_match_onnx_runtime(kind, direction, linear_before_reset):
    """A recurrent node between the transposes of a batch-first model, its Y as (N, T,
    directions * H); ONNX's own gate orders and bias layout, both GRU forms."""
    steps, features, units = 7, 5, 6
    dirs = 2 if direction == "bidirectional" else 1
    gates = 4 if kind == "LSTM" else 3
    w = RNG.standard_normal((dirs, gates * units, features)).astype(np.float32) * 0.4
    r = RNG.standard_normal((dirs, gates * units, units)).astype(np.float32) * 0.4
    bias = RNG.standard_normal((dirs, 2 * gates * units)).astype(np.float32) * 0.3
    extra = {"linear_before_reset": linear_before_reset} if kind == "GRU" else {}
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node(kind, ["xt", "w", "r", "b"], ["y4"], hidden_size=units,
                              direction=direction, **extra),
             helper.make_node("Transpose", ["y4"], ["yt"], perm=[2, 0, 1, 3]),
             helper.make_node("Reshape", ["yt", "shape"], ["y"])]
    model = _graph_model(nodes, [_value("x", ["n", steps, features])], [_value("y")],
                         [_init("w", w), _init("r", r), _init("b", bias),
                          _init("shape", np.array([0, 0, -1], np.int64))])
    loaded = load_onnx(model)
    x = RNG.standard_normal((3, steps, features)).astype(np.float32)
    _assert_close(loaded.predict(x, verbose=0), _ort(model.SerializeToString(), x))
    assert loaded.output_shape == (None, steps, dirs * units)


@pytest.mark.parametrize("kind,direction,state", [
    ("GRU", "forward", "Y_h"), ("GRU", "bidirectional", "Y_h"), ("GRU", "reverse", "Y_h"),
    ("LSTM", "forward", "Y_c"), ("LSTM", "bidirectional", "Y_h")])
def test_recurrent_last_states_match_onnx_runtime(kind, direction, state):
    """PyTorch's `_, h = rnn(x); fc(h[-1])` pattern: a last state (directions, N, H)
    gathered at its last direction."""
    steps, features, units = 6, 4, 5
    dirs = 2 if direction == "bidirectional" else 1
    gates = 4 if kind == "LSTM" else 3
    w = RNG.standard_normal((dirs, gates * units, features)).astype(np.float32) * 0.5
    r = RNG.standard_normal((dirs, gates * units, units)).astype(np.float32) * 0.5
    outputs = ["", "Y_h", "Y_c"][:3 if state == "Y_c" else 2]
    outputs[["Y_h", "Y_c"].index(state) + 1] = "state"
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node(kind, ["xt", "w", "r"], outputs, hidden_size=units,
                              direction=direction),
             helper.make_node("Gather", ["state", "last"], ["y"], axis=0)]
    model = _graph_model(nodes, [_value("x", ["n", steps, features])], [_value("y")],
                         [_init("w", w), _init("r", r),
                          _init("last", np.array(-1, np.int64))])
    loaded = load_onnx(model)
    x = RNG.standard_normal((3, steps, features)).astype(np.float32)
    _assert_close(loaded.predict(x, verbose=0), _ort(model.SerializeToString(), x))


def test_the_cell_state_of_a_bidirectional_lstm_is_refused():
    w = np.zeros((2, 16, 3), np.float32)
    r = np.zeros((2, 16, 4), np.float32)
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("LSTM", ["xt", "w", "r"], ["", "", "c"], hidden_size=4,
                              direction="bidirectional", name="lstm"),
             helper.make_node("Transpose", ["c"], ["y"], perm=[1, 0, 2])]
    model = _graph_model(nodes, [_value("x", ["n", 5, 3])], [_value("y")],
                         [_init("w", w), _init("r", r)])
    with pytest.raises(NotImplementedError,
                       match=r"LSTM node 'lstm': the Y_c output of a bidirectional LSTM"):
        load_onnx(model)


def test_a_graph_exported_for_batch_1_predicts_any_batch():
    """Exported without dynamic axes (shapes, reshapes and all for batch 1): fastdl's model
    takes any batch, each example as ONNX Runtime computes it alone."""
    import io as bytes_io
    import torch
    module = om.randomized(om.ShuffleNetV2(classes=10), seed=3)
    buffer = bytes_io.BytesIO()
    torch.onnx.export(module, (torch.zeros(1, 3, 32, 32),), buffer, dynamo=False,
                      opset_version=17, input_names=["x"], output_names=["y"])
    model = load_onnx(buffer.getvalue())
    x = RNG.standard_normal((3, 3, 32, 32)).astype(np.float32)
    want = np.concatenate([_ort(buffer.getvalue(), x[i:i + 1]) for i in range(3)])
    _assert_close(model.predict(x, verbose=0), want)
