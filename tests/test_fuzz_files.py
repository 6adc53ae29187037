"""Damaged files, fuzzed: a saved model (fastdl's archive), its weights (.npz) and its
Keras-layout weights (.weights.h5) truncated, bit-flipped or overwritten with zeros. Loading
must give a model / weights (the damage missed what is read) or a ValueError naming the
path -- never another exception, a crash or a hang. FASTDL_FUZZ_EXAMPLES sets the examples
per file kind (CI: 25)."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fastdl
from fastdl import layers, models

from spoilers import Hang, guarded_call

EXAMPLES = int(os.environ.get("FASTDL_FUZZ_EXAMPLES", "25"))

pytestmark = pytest.mark.fuzz


def _model():
    fastdl.utils.clear_session()
    return models.Sequential([layers.Input((8, 8, 3)), layers.Conv2D(4, 3, activation="relu"),
                              layers.BatchNormalization(), layers.Flatten(), layers.Dense(3)])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
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
    return {kind: path.read_bytes() for kind, path in files.items()}


@st.composite
def damage(draw, data):
    b = bytearray(data)
    kind = draw(st.sampled_from(["truncate", "flip", "zeros", "garbage"]))
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


def _load(kind, path):
    if kind == "model":
        return models.load_model(path)
    model = _model()
    model.load_weights(path)
    return model


@pytest.mark.parametrize("kind", ["model", "weights", "keras weights"])
@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 50,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_damaged_files_raise_a_clear_error_or_load(saved, tmp_path_factory, kind, data):
    if kind not in saved:
        pytest.skip("h5py is not installed")
    damaged = data.draw(damage(saved[kind]), label="damaged bytes")
    path = tmp_path_factory.mktemp("damaged") / {"model": "m.keras", "weights": "w.npz",
                                                 "keras weights": "w.weights.h5"}[kind]
    path.write_bytes(damaged)
    try:
        model, error = guarded_call(_load, kind, str(path))
    except Hang as exc:
        pytest.fail(f"{kind}: {exc}")
    if error is not None:
        assert isinstance(error, ValueError) and str(error).startswith("path:"), (
            f"{kind}: {type(error).__name__}, not a ValueError naming the path: {error!r}")
    else:
        x = np.ones((1, 8, 8, 3), np.float32)
        assert model.predict(x, verbose=0).shape == (1, 3)
