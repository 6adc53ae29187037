"""Bad input to layers and models: clear exceptions naming the layer, the argument and
both shapes; refused weights change nothing."""
import numpy as np
import pytest

import fastdl
from fastdl import layers
from fastdl.models import Sequential


@pytest.fixture(autouse=True)
def _fresh_names():
    fastdl.utils.clear_session()


def _cnn():
    return Sequential([layers.Input((8, 8, 3)), layers.Conv2D(4, 3, activation="relu"),
                       layers.Flatten(), layers.Dense(2)])


def test_wrong_input_shape_names_first_layer_and_both_shapes():
    model = _cnn()
    with pytest.raises(ValueError, match=r"^x: conv2d \(Conv2D\) expected input shape "
                                         r"\(None, 8, 8, 3\), got \(2, 8, 8, 4\)"):
        model.predict(np.zeros((2, 8, 8, 4)))
    with pytest.raises(ValueError, match=r"got \(2, 8, 8\)"):
        model(np.zeros((2, 8, 8)))


def test_layer_called_on_other_channels_names_it():
    conv = layers.Conv2D(4, 3, name="c")
    conv(np.zeros((1, 5, 5, 3)))
    with pytest.raises(ValueError, match=r"c \(Conv2D\): expected input shape "
                                         r"\(None, 5, 5, 3\), got \(None, 5, 5, 2\)"):
        conv(np.zeros((1, 5, 5, 2)))
    dense = layers.Dense(3, name="d")
    dense(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"d \(Dense\): expected input shape \(None, 4\)"):
        dense(np.zeros((2, 5)))


def test_too_small_input_for_valid_kernel():
    with pytest.raises(ValueError, match=r"dilated kernel \(5, 5\)"):
        layers.Conv2D(1, 3, dilation_rate=2)(np.zeros((1, 4, 9, 1)))
    with pytest.raises(ValueError, match=r"pool_size \(3,\)"):
        layers.MaxPooling1D(3)(np.zeros((1, 2, 1)))


@pytest.mark.parametrize("make, message", [
    (lambda: layers.Dense(0), r"units"),
    (lambda: layers.Dense(3, activation="no_such_act"), r"no_such_act"),
    (lambda: layers.Conv2D(4, (3, 3, 3)), r"kernel_size"),
    (lambda: layers.Conv1D(4, 3, padding="full"), r"padding"),
    (lambda: layers.Conv2D(4, 3, padding="causal"), r"padding"),
    (lambda: layers.Conv2D(6, 3, groups=4), r"groups"),
    (lambda: layers.Conv2D(4, 3, strides=2, dilation_rate=2), r"strides"),
    (lambda: layers.MaxPooling2D(2, padding="causal"), r"padding"),
    (lambda: layers.Conv2D(4, 3, data_format="nhwc"), r"data_format"),
    (lambda: layers.Dropout(1.5), r"rate"),
    (lambda: layers.Dense(3, kernel_initializer="nope"), r"kernel_initializer"),
    (lambda: layers.Dense(3, dtype="float16"), r"dtype"),
    (lambda: layers.Dense(3, unknown_arg=1), r"unknown_arg"),
    (lambda: layers.Reshape((3, -1, -1)), r"target_shape"),
])
def test_bad_constructor_arguments(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_refused_set_weights_keeps_the_old_weights_everywhere():
    model = _cnn()
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype(np.float32)
    before, weights = model.predict(x, verbose=0), model.get_weights()
    bad = [w + 1 for w in weights]
    bad[-1] = np.zeros(3, np.float32)  # the last Dense bias: 2 expected
    with pytest.raises(ValueError, match=r"^weights: dense weight dense/bias expected shape "
                                         r"\(2,\), "
                                         r"got \(3,\)"):
        model.set_weights(bad)
    with pytest.raises(ValueError, match=r"4 weight arrays, got 3"):
        model.set_weights(weights[:3])
    np.testing.assert_array_equal(model.predict(x, verbose=0), before)
    for got, want in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(got, want)


def test_set_weights_reaches_the_built_plans():
    model = _cnn()
    x = np.ones((1, 8, 8, 3), np.float32)
    model.predict(x, verbose=0)
    weights = [np.zeros_like(w) for w in model.get_weights()]
    weights[-1] = np.array([1.5, -2.0], np.float32)
    model.set_weights(weights)
    np.testing.assert_array_equal(model.predict(x, verbose=0), [[1.5, -2.0]])


def test_unknown_layer_type_is_named():
    with pytest.raises(ValueError, match=r"unknown layer type 'Conv4D'"):
        layers.get("Conv4D")
    config = _cnn().get_config()
    config["layers"][1]["class_name"] = "Conv4D"
    with pytest.raises(ValueError, match=r"Conv4D"):
        Sequential.from_config(config)


def test_model_structure_errors():
    model = Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match=r"Input can only come first"):
        model.add(layers.Input((3,)))
    dense = layers.Dense(2)
    with pytest.raises(ValueError, match=r"already in the model"):
        Sequential([dense, dense])
    with pytest.raises(TypeError, match=r"expected a fastdl layer"):
        Sequential([np.zeros(3)])
    with pytest.raises(IndexError):
        Sequential().pop()
    with pytest.raises(ValueError, match=r"no layer named 'x'"):
        model.get_layer("x")
    with pytest.raises(ValueError, match=r"input shape is unknown"):
        Sequential([layers.Dense(2)]).build()


def test_predict_arguments():
    model = _cnn()
    x = np.zeros((3, 8, 8, 3))
    with pytest.raises(ValueError, match=r"batch_size"):
        model.predict(x, batch_size=0)
    with pytest.raises(ValueError, match=r"verbose"):
        model.predict(x, verbose=3)
    with pytest.raises((TypeError, ValueError), match=r"x"):
        model.predict(np.array(["a"] * 3))
    assert model.predict(x.astype(np.float64), verbose=0).dtype == np.float32
    assert model.predict(x.astype(np.int32), verbose=0).shape == (3, 2)
    assert model.predict(x[:0], verbose=0).shape == (0, 2)


def test_empty_batch_through_reshape_and_flatten():
    model = Sequential([layers.Input((4, 6)), layers.Reshape((-1, 3)), layers.Flatten(),
                        layers.Dense(2)])
    assert model.predict(np.zeros((0, 4, 6)), verbose=0).shape == (0, 2)


def test_every_backend_runs_the_layers(any_backend):
    """The same small model on each backend (any_backend, conftest.py) against the native
    one's float64 NumPy reference."""
    rng = np.random.default_rng(3)
    model = Sequential([layers.Input((9, 7, 2)),
                        layers.Conv2D(3, 3, strides=2, padding="same", activation="relu"),
                        layers.BatchNormalization(), layers.MaxPooling2D(2, padding="same"),
                        layers.Flatten(), layers.Dense(4, activation="softmax")])
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in model.get_weights()]
    weights[5] = np.abs(weights[5]) + 0.5  # moving variance
    model.set_weights(weights)
    x = rng.standard_normal((2, 9, 7, 2)).astype(np.float32)
    k, b, gamma, beta, mean, var, dk, db = [w.astype(np.float64) for w in weights]
    xp = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])  # 'same', stride 2: 9 -> 5, 7 -> 4
    conv = np.zeros((2, 5, 4, 3))
    for i in range(5):
        for j in range(4):
            conv[:, i, j] = np.einsum("nhwc,hwcf->nf", xp[:, 2 * i:2 * i + 3,
                                                           2 * j:2 * j + 3], k)
    y = np.maximum(conv + b, 0)
    y = (y - mean) / np.sqrt(var + 1e-3) * gamma + beta
    y = np.pad(y, [(0, 0), (0, 1), (0, 0), (0, 0)], constant_values=-np.inf)
    y = y.reshape(2, 3, 2, 2, 2, 3).max(axis=(2, 4)).reshape(2, -1) @ dk + db
    want = np.exp(y - y.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-4, atol=1e-6)
