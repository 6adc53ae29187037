"""Damaged files, fuzzed: a saved model (fastdl's archive), its weights (.npz), its
Keras-layout weights (.weights.h5), the same model saved by Keras 3 itself (a `.keras`
archive, read by fastdl.io.load_keras) and an ONNX graph (fastdl.io.load_onnx) truncated,
bit-flipped or overwritten with zeros. Loading must give a model / weights (the damage
missed what is read) or a ValueError naming the path (load_onnx: naming `model`, or a
NotImplementedError listing nodes it does not run) -- never another exception, a crash or
a hang. FASTDL_FUZZ_EXAMPLES sets the
examples per file kind (CI: 25)."""
import copy
import io
import json
import os
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fastdl
import fastdl.io
from fastdl import layers, models

from spoilers import Hang, guarded_call

EXAMPLES = int(os.environ.get("FASTDL_FUZZ_EXAMPLES", "25"))

pytestmark = pytest.mark.fuzz

# The kinds damaged as zip archives too (header fields, a member's content behind valid
# CRCs, a config that still parses): fastdl's model archive, its .npz weights, Keras' .keras.
ARCHIVES = {"model", "weights", "keras"}


def _model():
    fastdl.utils.clear_session()
    return models.Sequential([layers.Input((8, 8, 3)), layers.Conv2D(4, 3, activation="relu"),
                              layers.BatchNormalization(), layers.Flatten(), layers.Dense(3)])


def _keras_archive(path):
    """The same architecture saved by Keras 3 (torch backend) at `path`; skips (raises
    pytest's Skipped) where keras is not installed."""
    os.environ.setdefault("KERAS_BACKEND", "torch")  # before any import of keras
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("keras runs on another backend than torch")
    model = keras.Sequential([keras.Input((8, 8, 3)),
                              keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.BatchNormalization(), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    model.save(str(path))
    return path


def _onnx_model(path):
    """A small ONNX graph as exporters write them at `path` (Conv, BatchNormalization,
    Relu, MaxPool, the Shape -> Gather -> Unsqueeze -> Concat -> Reshape arithmetic,
    Gemm); skips (raises pytest's Skipped) where onnx is not installed."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)

    def init(name, shape, dtype=np.float32):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(dtype), name)
    inits = [init("w", (4, 3, 3, 3)), init("b", (4,)), init("scale", (4,)),
             init("shift", (4,)), init("mean", (4,)),
             numpy_helper.from_array(rng.random(4).astype(np.float32) + 0.5, "var"),
             init("fc", (3, 36)), init("fc_b", (3,)),
             numpy_helper.from_array(np.array([0], np.int64), "zero"),
             numpy_helper.from_array(np.array([-1], np.int64), "rest")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "scale", "shift", "mean", "var"],
                              ["n"]),
             helper.make_node("Relu", ["n"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[3, 3], strides=[3, 3]),
             helper.make_node("Shape", ["p"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["batch"], axis=0),
             helper.make_node("Concat", ["batch", "rest"], ["target"], axis=0),
             helper.make_node("Reshape", ["p", "target"], ["flat"]),
             helper.make_node("Gemm", ["flat", "fc", "fc_b"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "small", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["n", 3, 8, 8])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, ["n", 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture(scope="module")
def saved(tmp_path_factory, isolated_random_state):
    folder = tmp_path_factory.mktemp("saved")
    model = _model()
    files = {"model": folder / "m.keras", "weights": folder / "w.npz"}
    model.save(str(files["model"]))
    model.save_weights(str(files["weights"]))
    try:
        import h5py  # noqa: F401
        files["keras weights"] = folder / "w.weights.h5"
        model.save_weights(str(files["keras weights"]))
    except ImportError:
        pass
    for kind, write, name in (("keras", _keras_archive, "k.keras"),
                              ("onnx", _onnx_model, "m.onnx")):
        try:
            files[kind] = write(folder / name)
        except pytest.skip.Exception:
            pass
    return {kind: path.read_bytes() for kind, path in files.items()}


# A zip's record signatures (local file header, central directory entry, end of the central
# directory) and the length of the fixed part that follows each.
_ZIP_RECORDS = {b"PK\x03\x04": 30, b"PK\x01\x02": 46, b"PK\x05\x06": 22}


def _zip_fields(data):
    """The byte offsets of the zip archive records' fixed fields (flags, compression, CRC,
    sizes, offsets...) in `data`."""
    out = []
    for signature, size in _ZIP_RECORDS.items():
        at = data.find(signature)
        while at >= 0:
            out.extend(range(at + 4, min(at + size, len(data))))
            at = data.find(signature, at + 1)
    return out


def _zip_members(data):
    """[(ZipInfo, bytes)] of the zip archive `data`."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info, archive.read(info)) for info in archive.infolist()]


# What a damaged JSON config holds instead of a value: other types, sizes no machine holds,
# NaN, unknown names.
_JSON_SPOILED = [None, True, 0, -1, 1.5, 2**31, 2**62, -2**63, float("nan"), "", "nonsense",
                 [], [1], {}, {"class_name": "nonsense"}]


def _json_paths(value, path=()):
    """Every path (keys and indices) to a value inside the JSON `value`."""
    out = [path]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(
        value, list) else ()
    for key, child in items:
        out += _json_paths(child, path + (key,))
    return out


@st.composite
def _json_damage(draw, config):
    """The JSON `config` with a value replaced (or a key removed) at 1 to 3 places."""
    for _ in range(draw(st.integers(1, 3))):
        paths = _json_paths(config)[1:]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = config
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            # (a copy: the same list put in twice could be put inside itself)
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(_JSON_SPOILED)))
    return config


def _json_object(content):
    try:
        value = json.loads(content)
    except ValueError:
        return None
    return value if isinstance(value, dict) and value else None


@st.composite
def damage(draw, data, archive=False):
    """`data` damaged. With archive=True (`data` is a zip), also as a zip: "header" changes
    bytes of the records' fields (flags such as encryption, the compression method, sizes,
    offsets), "member" damages one member's bytes and writes a sound archive around them
    (valid CRCs: what a member holds gets read -- damage to the raw bytes mostly meets the
    CRC check). A JSON member (a config) may also keep parsing with values changed, other
    types, keys removed ("json")."""
    b = bytearray(data)
    config = _json_object(data) if not archive else None
    kind = draw(st.sampled_from(["truncate", "flip", "zeros", "garbage"]
                                + (["header", "member"] if archive else [])
                                + (["json"] * 2 if config else [])))
    if kind == "json":
        return json.dumps(draw(_json_damage(config))).encode()
    if kind == "header":
        fields = _zip_fields(data)
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.sampled_from(fields))
            b[at] = draw(st.integers(0, 255)) if draw(st.booleans()) else (
                b[at] ^ 1 << draw(st.integers(0, 7)))
        return bytes(b)
    if kind == "member":
        members = _zip_members(data)
        which = draw(st.sampled_from([i for i, (_, m) in enumerate(members) if m]))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as rewritten:
            for i, (info, content) in enumerate(members):
                rewritten.writestr(info, draw(damage(content)) if i == which else content)
        return buffer.getvalue()
    if kind == "truncate":
        return bytes(b[:draw(st.integers(0, len(b) - 1))])
    if kind == "flip":
        for _ in range(draw(st.integers(1, 30))):
            b[draw(st.integers(0, len(b) - 1))] ^= 1 << draw(st.integers(0, 7))
        return bytes(b)
    start = draw(st.integers(0, len(b) - 1))
    length = draw(st.integers(1, 400))
    fill = bytes(length) if kind == "zeros" else draw(st.binary(min_size=length,
                                                                max_size=length))
    b[start:start + length] = fill[:len(b) - start]
    return bytes(b)


def _load_and_predict(kind, path):
    """What the model loaded from `path` predicts on its input's shape (ones, batch 1)."""
    if kind == "keras":
        model = fastdl.io.load_keras(path)
    elif kind == "onnx":
        model = fastdl.io.load_onnx(path)
    elif kind == "model":
        model = models.load_model(path)
    else:
        model = _model()
        model.load_weights(path)
    assert model.input_shape is not None, "a model without an input shape: no weights placed"
    shape = tuple(1 if s is None else s for s in model.input_shape)
    return model.predict(np.ones(shape, np.float32), verbose=0), model.output_shape


@pytest.mark.parametrize("kind", ["model", "weights", "keras weights", "keras", "onnx"])
@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 50,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_damaged_files_raise_a_clear_error_or_load(saved, tmp_path_factory, kind, data):
    if kind not in saved:
        pytest.skip({"keras": "keras", "onnx": "onnx"}.get(kind, "h5py") + " is not installed")
    damaged = data.draw(damage(saved[kind], archive=kind in ARCHIVES), label="damaged bytes")
    path = tmp_path_factory.mktemp("damaged") / {"model": "m.keras", "weights": "w.npz",
                                                 "keras weights": "w.weights.h5",
                                                 "keras": "k.keras", "onnx": "m.onnx"}[kind]
    path.write_bytes(damaged)
    try:
        result, error = guarded_call(_load_and_predict, kind, str(path))
    except Hang as exc:
        pytest.fail(f"{kind}: {exc}")
    if error is not None and kind == "onnx":
        # load_onnx names its argument, `model`; damage that leaves a valid graph may make
        # it one fastdl does not run: a NotImplementedError listing the nodes
        assert isinstance(error, (ValueError, NotImplementedError)) and str(error).startswith(
            "model:"), f"onnx: {type(error).__name__}, not a ValueError naming model: {error!r}"
    elif error is not None:
        # (a model that loads but cannot predict on its own input shape fails here too)
        assert isinstance(error, ValueError) and str(error).startswith("path:"), (
            f"{kind}: {type(error).__name__}, not a ValueError naming the path: {error!r}")
    else:
        # The damage may have changed the model's config (a JSON member that still parses):
        # the output has the shape the loaded model declares.
        y, output_shape = result
        assert y.shape == tuple(1 if s is None else s for s in output_shape)


def _encrypted(data):
    """`data` with every central directory entry flagged encrypted."""
    b = bytearray(data)
    at = b.find(b"PK\x01\x02")
    while at >= 0:
        b[at + 8] |= 0x1
        at = b.find(b"PK\x01\x02", at + 1)
    return bytes(b)


def _name_not_utf8(data, record=b"PK\x01\x02", which=0):
    """`data` with a name made invalid UTF-8 and flagged UTF-8: the `which`th record of the
    kind `record` (a central directory entry; a local file header: b"PK\x03\x04")."""
    b = bytearray(data)
    at = b.find(record)
    for _ in range(which):
        at = b.find(record, at + 1)
    b[at + (9 if record == b"PK\x01\x02" else 7)] |= 0x08  # bit 11 of the flags: UTF-8
    b[at + _ZIP_RECORDS[record]] = 0xff
    return bytes(b)


def _rewritten(data, member, edit):
    """The zip archive `data` with `member`'s bytes replaced by edit(bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as rewritten:
        for info, content in _zip_members(data):
            rewritten.writestr(info, edit(content) if info.filename == member else content)
    return buffer.getvalue()


def _strings_npy(_):
    buffer = io.BytesIO()
    np.save(buffer, np.array(["a", "b"]))
    return buffer.getvalue()


@pytest.mark.parametrize("kind,damaged", [
    # Found by the fuzz above, each once answered with another exception:
    ("model", _encrypted), ("weights", _encrypted),  # zipfile's RuntimeError
    # (a name flagged UTF-8 that is not: UnicodeDecodeError)
    ("model", _name_not_utf8),
    ("model", lambda d: _name_not_utf8(d, b"PK\x03\x04", which=1)),  # weights.npz's header
    # (a .npy header cut open: numpy's header parser raises tokenize.TokenError)
    ("weights", lambda d: _rewritten(d, "w00000.npy", lambda c: c.replace(b"), }", b",  }"))),
    ("weights", lambda d: _rewritten(d, "w00000.npy", _strings_npy)),  # set_weights' TypeError
], ids=["model encrypted", "weights encrypted", "model name not utf-8",
        "model member's name not utf-8", "npy header open",
        "npy of strings"])
def test_damage_found_by_the_fuzz_is_a_value_error_naming_the_path(saved, tmp_path, kind,
                                                                     damaged):
    path = tmp_path / {"model": "m.keras", "weights": "w.npz"}[kind]
    path.write_bytes(damaged(saved[kind]))
    with pytest.raises(ValueError, match=r"^path: "):
        _load_and_predict(kind, str(path))

