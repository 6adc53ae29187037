"""fastdl.initializers: Keras 3's formulas checked by the statistics of big draws (mean and
standard deviation within a few standard errors, bounds), dense and convolution fans,
orthogonality, shapes, seeding (fastdl.utils.set_random_seed and per-initializer seeds),
every Keras name, configs (fastdl's and Keras' own), layers' defaults, bad arguments. Where
Keras is installed, its draws of the same shapes have the same statistics."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

import fastdl
from fastdl import initializers as I
from fastdl import layers

# These tests seed and draw: the modules after them see the global random state unmoved.
pytestmark = pytest.mark.usefixtures("isolated_random_state")

DENSE = (300, 500)
CONV = (3, 3, 64, 96)


def fans(shape):
    if len(shape) == 2:
        return shape
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def expected(name, shape):
    """(kind, parameter) of a named initializer for `shape`: ('uniform', limit) or
    ('normal', standard deviation of the values), with Keras' formulas."""
    fan_in, fan_out = fans(shape)
    scale, fan = {"glorot": (1.0, (fan_in + fan_out) / 2), "he": (2.0, fan_in),
                  "lecun": (1.0, fan_in)}[name.split("_")[0]]
    variance = scale / fan
    if name.endswith("uniform"):
        return "uniform", math.sqrt(3 * variance)
    return "truncated", math.sqrt(variance)


def check_statistics(values, kind, param, mean=0.0):
    n = values.size
    values = values.astype(np.float64)
    if kind == "uniform":
        assert np.all(np.abs(values - mean) <= param * (1 + 1e-6))
        std = param / math.sqrt(3)
    elif kind == "truncated":  # the parameter is the std after truncation at 2 sigma
        std = param
        assert np.all(np.abs(values - mean) <= 2 * param / 0.87962566103423978 * (1 + 1e-6))
    else:
        std = param
    assert abs(values.mean() - mean) < 5 * std / math.sqrt(n)
    assert values.std() == pytest.approx(std, rel=0.02)


@pytest.mark.parametrize("name", ["glorot_uniform", "glorot_normal", "he_uniform",
                                  "he_normal", "lecun_uniform", "lecun_normal"])
@pytest.mark.parametrize("shape", [DENSE, CONV])
def test_variance_scaling_presets_have_keras_statistics(name, shape):
    fastdl.utils.set_random_seed(1)
    values = I.initialize(name, shape)
    assert values.shape == shape and values.dtype == np.float32
    check_statistics(values, *expected(name, shape))


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["uniform", "truncated_normal",
                                          "untruncated_normal", "normal"])
def test_variance_scaling(mode, distribution):
    init = I.VarianceScaling(scale=3.0, mode=mode, distribution=distribution, seed=2)
    fan_in, fan_out = fans(CONV)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    std = math.sqrt(3.0 / fan)
    kind = {"uniform": "uniform", "untruncated_normal": "normal"}.get(distribution,
                                                                      "truncated")
    check_statistics(init(CONV), kind, std * math.sqrt(3) if kind == "uniform" else std)


def test_random_initializers_have_their_statistics():
    shape = (400, 400)
    check_statistics(I.initialize("random_normal", shape), "normal", 0.05)
    check_statistics(I.initialize("random_uniform", shape), "uniform", 0.05)
    check_statistics(I.RandomNormal(1.5, 0.3, seed=3)(shape), "normal", 0.3, mean=1.5)
    check_statistics(I.RandomUniform(-1.0, 3.0, seed=3)(shape), "uniform", 2.0, mean=1.0)
    truncated = I.TruncatedNormal(0.5, 0.2, seed=3)(shape).astype(np.float64)
    assert np.all(np.abs(truncated - 0.5) <= 0.4 + 1e-6)  # redrawn beyond 2 stddev
    assert truncated.std() == pytest.approx(0.2 * 0.87962566103423978, rel=0.02)
    assert abs(truncated.mean() - 0.5) < 5 * 0.2 / 400
    default = I.initialize("truncated_normal", shape).astype(np.float64)
    assert np.all(np.abs(default) <= 0.1 + 1e-6)
    assert default.std() == pytest.approx(0.05 * 0.87962566103423978, rel=0.02)


def test_fans_follow_keras():
    assert I.compute_fans((5,)) == (5, 5)
    assert I.compute_fans((4, 7)) == (4, 7)
    assert I.compute_fans((3, 3, 16, 32)) == (144, 288)  # Conv2D kernel [kh, kw, in, out]
    assert I.compute_fans((5, 2, 8)) == (10, 40)          # Conv1D
    assert I.compute_fans(()) == (1, 1)


@pytest.mark.parametrize("shape", [(64, 32), (32, 64), (48, 48), (3, 3, 4, 8), (2, 5, 30)])
@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_orthogonal(shape, gain):
    q = I.Orthogonal(gain=gain, seed=4)(shape).astype(np.float64)
    assert q.shape == shape
    m = q.reshape(-1, shape[-1])
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, gain ** 2 * np.eye(len(gram)), atol=1e-5)


def test_recurrent_layers_start_orthogonal():
    for cls in (layers.LSTM, layers.GRU):
        layer = cls(8)
        assert layer.recurrent_initializer == "orthogonal"
        layer(np.zeros((1, 3, 5), np.float32))
        r = layer.recurrent_kernel.value.astype(np.float64)  # (8, gates * 8): orthonormal rows
        np.testing.assert_allclose(r @ r.T, np.eye(8), atol=1e-5)


def test_constants_and_identity():
    assert np.all(I.initialize("zeros", (3, 2)) == 0)
    assert np.all(I.initialize("ones", (2, 2, 2)) == 1)
    assert np.all(I.Constant(0.25)((4,)) == np.float32(0.25))
    assert np.all(I.initialize("constant", (2,)) == 0)
    np.testing.assert_array_equal(I.Identity(gain=3.0)((3, 4)), 3 * np.eye(3, 4))
    with pytest.raises(ValueError, match="2-D"):
        I.Identity()((2, 2, 2))
    with pytest.raises(ValueError, match="rank >= 2"):
        I.Orthogonal()((5,))


def test_seeding():
    fastdl.utils.set_random_seed(7)
    a = [I.initialize(name, (20, 10)) for name in ("glorot_uniform", "he_normal",
                                                    "orthogonal", "random_normal")]
    fastdl.utils.set_random_seed(7)
    b = [I.initialize(name, (20, 10)) for name in ("glorot_uniform", "he_normal",
                                                    "orthogonal", "random_normal")]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(I.initialize("he_normal", (20, 10)), b[1])  # the stream moves
    seeded = I.GlorotNormal(seed=11)
    np.testing.assert_array_equal(seeded((6, 6)), seeded((6, 6)))  # as Keras: same each call
    assert not np.array_equal(seeded((6, 6)), I.GlorotNormal(seed=12)((6, 6)))
    fastdl.utils.set_random_seed(3)
    first = layers.Dense(4)
    first(np.ones((1, 5), np.float32))
    fastdl.utils.set_random_seed(3)
    again = layers.Dense(4)
    again(np.ones((1, 5), np.float32))
    np.testing.assert_array_equal(first.get_weights()[0], again.get_weights()[0])


KERAS_NAMES = ["Constant", "Identity", "Ones", "Zeros", "GlorotNormal", "GlorotUniform",
               "HeNormal", "HeUniform", "LecunNormal", "LecunUniform", "Orthogonal",
               "RandomNormal", "RandomUniform", "TruncatedNormal", "VarianceScaling"]


def snake(name):
    import re
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_every_keras_name_resolves():
    for name in KERAS_NAMES:
        for spelling in (name, snake(name)):
            assert type(I.get(spelling)).__name__ == name, spelling
            assert I.check(spelling, "x") == snake(name)
    for alias, cls in (("normal", I.RandomNormal), ("uniform", I.RandomUniform),
                       ("zero", I.Zeros), ("one", I.Ones)):
        assert type(I.get(alias)) is cls


@pytest.mark.parametrize("init", [I.Constant(0.5), I.RandomNormal(0.1, 0.2, seed=3),
                                  I.VarianceScaling(2.0, "fan_out", "uniform"),
                                  I.Orthogonal(gain=2.0), I.GlorotUniform(seed=5),
                                  I.Identity(1.5), I.TruncatedNormal(stddev=0.1)])
def test_configs_round_trip_through_layers(init):
    again = I.get(I.serialize(init))
    assert type(again) is type(init) and again.get_config() == init.get_config()
    dense = layers.Dense(3, kernel_initializer=init)
    config = dense.get_config()
    rebuilt = layers.Dense.from_config(config)
    assert rebuilt.get_config() == config
    rebuilt(np.ones((1, 3), np.float32))
    assert rebuilt.get_weights()[0].shape == (3, 3)


def test_default_configs_stay_names():
    assert I.check({"class_name": "GlorotUniform", "config": {"seed": None}}, "x") == \
        "glorot_uniform"
    assert layers.Dense(2).get_config()["kernel_initializer"] == "glorot_uniform"


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    k = pytest.importorskip("keras")
    if k.backend.backend() != "torch":
        pytest.skip("keras runs on another backend than torch")
    return k


@pytest.mark.parametrize("name", ["GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal",
                                  "LecunUniform", "LecunNormal", "RandomNormal",
                                  "RandomUniform", "TruncatedNormal"])
def test_same_statistics_as_keras(keras, name):
    ours = getattr(I, name)(seed=1)(CONV).astype(np.float64)
    theirs = np.asarray(getattr(keras.initializers, name)(seed=1)(CONV), np.float64)
    assert ours.std() == pytest.approx(theirs.std(), rel=0.03)
    if name != "RandomNormal":  # bounded: by the same limit (uniform) or 2 sigma (truncated)
        assert np.abs(ours).max() == pytest.approx(np.abs(theirs).max(), rel=0.02)
    spread = theirs.std() / math.sqrt(theirs.size)
    assert abs(ours.mean() - theirs.mean()) < 10 * spread


def test_keras_configs_load(keras):
    for init in (keras.initializers.GlorotUniform(), keras.initializers.Constant(0.3),
                 keras.initializers.RandomNormal(0.1, 0.2, seed=4),
                 keras.initializers.VarianceScaling(2.0, "fan_out", "uniform"),
                 keras.initializers.Orthogonal(gain=2.0)):
        config = keras.initializers.serialize(init)
        mine = I.get(config)
        assert type(mine).__name__ == config["class_name"]
        assert mine.get_config() == pytest.approx(
            {k: v for k, v in config["config"].items() if k not in ("input_axes",
                                                                   "output_axes")})


@pytest.mark.parametrize("call,error,match", [
    (lambda: I.check("glorot", "kernel_initializer"), ValueError, "kernel_initializer"),
    (lambda: I.check(3, "bias_initializer"), TypeError, "bias_initializer"),
    (lambda: I.check({"class_name": "STFT"}, "kernel_initializer"), ValueError, "STFT"),
    (lambda: I.check({"class_name": "GlorotUniform", "config": {"input_axes": [0]}}, "k"),
     ValueError, "input_axes"),
    (lambda: I.check({"class_name": "Constant", "config": {"val": 1}}, "k"), TypeError, "k"),
    (lambda: I.VarianceScaling(mode="fan"), ValueError, "mode"),
    (lambda: I.VarianceScaling(distribution="cauchy"), ValueError, "distribution"),
    (lambda: I.VarianceScaling(scale=0), ValueError, "scale"),
    (lambda: I.RandomNormal(seed=-1), ValueError, "seed"),
    (lambda: I.Constant("a"), TypeError, "value"),
    (lambda: I.RandomUniform(maxval=float("inf")), ValueError, "maxval"),
    (lambda: layers.Dense(2, kernel_initializer="glorot"), ValueError, "kernel_initializer"),
])
def test_bad_arguments_raise_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
