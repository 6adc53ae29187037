"""Saving and loading: fastdl's archives and weights files, pickling's sibling; Keras 3
`.keras` archives and `.weights.h5` files read into fastdl (and fastdl's .weights.h5 read
by Keras); bad files refused with the layer named and the model left as it was."""
import json
import zipfile

import numpy as np
import pytest

from keras_oracle import RNG, assert_close, keras, keras_predict, pair, pair_model

import fastdl
from fastdl import layers
from fastdl.io import load_keras
from fastdl.models import Model, Sequential, load_model

import test_layers_keras as seq_families
import test_models_functional as fun_families

pytest.importorskip("h5py")

# Every model family of the Sequential and functional oracle tests.
FAMILIES = {**{f"seq_{name}": (lambda build: lambda ns: ns.Sequential(build(ns.layers,
                                                                           ns.Input)))(b)
               for name, (b, _) in seq_families.FAMILIES.items()},
            **fun_families.FAMILIES}


def _inputs(model, n=4):
    shapes = [t.shape for t in model.inputs]
    xs = [RNG.standard_normal((n,) + tuple(s[1:])).astype(np.float32) for s in shapes]
    return xs if len(xs) > 1 else xs[0]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_keras_file_loads_with_the_same_predictions(family, tmp_path):
    k, _ = pair_model(FAMILIES[family])
    path = tmp_path / "model.keras"
    k.save(path)
    fastdl.utils.clear_session()
    f = load_keras(path)
    assert [l.name for l in f.layers] == [l.name for l in k.layers]
    x = _inputs(f)
    assert_close(f.predict(x, verbose=0), keras_predict(k, x))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_fastdl_archive_round_trip(family, tmp_path):
    _, f = pair_model(FAMILIES[family])
    x = _inputs(f)
    want = f.predict(x, verbose=0)
    f.save(tmp_path / "model.fastdl")
    g = load_model(tmp_path / "model.fastdl")
    assert_close(g.predict(x, verbose=0), want, rtol=1e-6)
    assert json.dumps(g.get_config(), default=list) == json.dumps(f.get_config(),
                                                                  default=list)
    assert [w.name for w in g.weights] == [w.name for w in f.weights]


@pytest.mark.parametrize("family", ["seq_cifar_cnn", "residual_cnn", "nested_models",
                                    "shared_layers"])
def test_weights_files_both_ways_with_keras(family, tmp_path):
    k, f = pair_model(FAMILIES[family])
    x = _inputs(f)
    want = keras_predict(k, x)
    # Keras' .weights.h5 into a fastdl model of the same layers (fresh weights first).
    k.save_weights(tmp_path / "k.weights.h5")
    f.set_weights([np.zeros_like(w) for w in f.get_weights()])
    f.load_weights(tmp_path / "k.weights.h5")
    assert_close(f.predict(x, verbose=0), want)
    # fastdl's .weights.h5 into Keras, and fastdl's .npz back into fastdl.
    f.save_weights(tmp_path / "f.weights.h5")
    f.save_weights(tmp_path / "f.npz")
    k.set_weights([np.zeros_like(w) for w in k.get_weights()])
    k.load_weights(tmp_path / "f.weights.h5")
    assert_close(keras_predict(k, x), want)
    f.set_weights([np.zeros_like(w) for w in f.get_weights()])
    f.load_weights(tmp_path / "f.npz")
    assert_close(f.predict(x, verbose=0), want)


def test_load_model_reads_keras_archives_too(tmp_path):
    k, _ = pair(seq_families.cifar_cnn)
    k.save(tmp_path / "cnn.keras")
    f = load_model(tmp_path / "cnn.keras")
    x = _inputs(f)
    assert_close(f.predict(x, verbose=0), keras_predict(k, x))


def test_custom_activation_by_registered_name(tmp_path):
    def scaled_tanh(x):
        return 1.7 * np.tanh(x)

    @keras.saving.register_keras_serializable(package="tests")
    def keras_scaled_tanh(x):
        return 1.7 * keras.ops.tanh(x)

    keras.utils.clear_session()
    inp = keras.Input((5,))
    k = keras.Model(inp, keras.layers.Dense(3, activation=keras_scaled_tanh)(inp))
    k.save(tmp_path / "custom.keras")
    with pytest.raises(ValueError, match=r"unknown activation 'tests>keras_scaled_tanh'.*"
                                         r"register"):
        load_keras(tmp_path / "custom.keras")
    fastdl.utils.get_custom_objects()["keras_scaled_tanh"] = scaled_tanh
    try:
        f = load_keras(tmp_path / "custom.keras")
        x = _inputs(f)
        assert_close(f.predict(x, verbose=0), keras_predict(k, x))
        f.save(tmp_path / "custom.fastdl")
        assert_close(load_model(tmp_path / "custom.fastdl").predict(x, verbose=0),
               keras_predict(k, x))
    finally:
        del fastdl.utils.get_custom_objects()["keras_scaled_tanh"]


def _rewrite_config(src, dst, edit):
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
        for name in a.namelist():
            data = a.read(name)
            if name == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config)
            b.writestr(name, data)


def test_bad_keras_files_name_the_layer(tmp_path):
    k, _ = pair(seq_families.cifar_cnn)
    k.save(tmp_path / "good.keras")

    def rename_class(config):
        config["config"]["layers"][1]["class_name"] = "Conv2DFancy"

    def bad_activation(config):
        config["config"]["layers"][1]["config"]["activation"] = "mish_x"

    def unsupported_option(config):
        config["config"]["layers"][-1]["config"]["lora_rank"] = 4

    for edit, message in ((rename_class, r"layer 'conv2d'.*unknown layer type "
                                         r"'Conv2DFancy'"),
                          (bad_activation, r"unknown activation 'mish_x'"),
                          (unsupported_option, r"layer 'dense_1' \(Dense\) uses lora_rank=4")):
        _rewrite_config(tmp_path / "good.keras", tmp_path / "bad.keras", edit)
        with pytest.raises(ValueError, match=message):
            load_keras(tmp_path / "bad.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"not a Keras .keras archive"):
        load_keras(tmp_path / "junk.keras")
    with pytest.raises(ValueError, match=r"neither a fastdl model"):
        with zipfile.ZipFile(tmp_path / "empty.zip", "w") as z:
            z.writestr("x", "y")
        load_model(tmp_path / "empty.zip")


def test_damaged_keras_archives_raise_a_value_error_naming_the_path(tmp_path):
    """Found by tests/test_fuzz_files.py: damage that zipfile, h5py or the layers answered
    with another exception (or, for a config without an input shape, with a model that
    dropped the file's weights) is a ValueError starting "path:"."""
    k, _ = pair(seq_families.cifar_cnn)
    k.save(tmp_path / "good.keras")
    good = (tmp_path / "good.keras").read_bytes()

    def damaged(edit):
        data = bytearray(good)
        edit(data)
        (tmp_path / "bad.keras").write_bytes(bytes(data))
        with pytest.raises(ValueError, match=r"^path: ") as info:
            load_keras(tmp_path / "bad.keras")
        return str(info.value)

    def encrypted(data):  # the flag bit of every central directory entry
        at = data.find(b"PK\x01\x02")
        while at >= 0:
            data[at + 8] |= 1
            at = data.find(b"PK\x01\x02", at + 1)

    def version(data):  # "needed to extract" 8.4 in the first central directory entry
        data[data.find(b"PK\x01\x02") + 6] = 84

    assert "reading config.json failed (RuntimeError" in damaged(encrypted)  # was uncaught
    assert "zip file version" in damaged(version)  # was NotImplementedError

    def no_input_shape(config):
        config["config"]["layers"] = config["config"]["layers"][1:]  # no InputLayer
        config["config"].pop("build_input_shape", None)

    def wrong_type(config):
        config["config"]["layers"][1]["config"]["trainable"] = "nonsense"

    for edit, message in ((no_input_shape, r"no input shape.*weights"),
                          (wrong_type, r"cannot build \(TypeError: trainable")):
        _rewrite_config(tmp_path / "good.keras", tmp_path / "bad.keras", edit)
        with pytest.raises(ValueError, match=r"^path: .*" + message):
            load_keras(tmp_path / "bad.keras")


def test_mismatched_weights_file_names_the_layer_and_changes_nothing(tmp_path):
    k, f = pair(seq_families.cifar_cnn)
    k.save_weights(tmp_path / "cnn.weights.h5")
    fastdl.utils.clear_session()
    other = Sequential(seq_families.cifar_cnn(layers, layers.Input)[:-1] +
                       [layers.Dense(7, activation="softmax", name="head")])
    before = other.get_weights()
    with pytest.raises(ValueError, match=r"head weight head/kernel expected shape "
                                         r"\(500, 7\), got \(500, 10\)"):
        other.load_weights(tmp_path / "cnn.weights.h5")
    for got, want in zip(other.get_weights(), before):
        np.testing.assert_array_equal(got, want)
    fastdl.utils.clear_session()
    fewer = Sequential(seq_families.cifar_cnn(layers, layers.Input) + [layers.Dense(3)])
    with pytest.raises(ValueError, match=r"no weights for layer dense_2 .*layers/dense_2/vars/0"):
        fewer.load_weights(tmp_path / "cnn.weights.h5")
    f.save_weights(tmp_path / "cnn.npz")
    with pytest.raises(ValueError, match=r"expected 12 weight arrays, got 10"):
        fewer.load_weights(tmp_path / "cnn.npz")
