"""The functional Model and merge layers against Keras 3 (torch backend): several inputs
and outputs, residual blocks, shared layers, models used as layers; predictions, summary
text (with its Connected to column), layer order and weights; configs; graph errors."""
import numpy as np
import pytest

from keras_oracle import (RNG, assert_close, fastdl_summary, keras_predict, keras_summary,
                          pair_model)

import fastdl
from fastdl import layers
from fastdl.models import Model, Sequential


def two_in_two_out(ns):
    L = ns.layers
    image, meta = ns.Input((12, 10, 3), name="image"), ns.Input((5,), name="meta")
    x = L.Conv2D(8, 3, padding="same", activation="relu")(image)
    x = L.MaxPooling2D(2)(x)
    x = L.Conv2D(4, 3, activation="relu")(x)
    x = L.Flatten()(x)
    m = L.Dense(6, activation="tanh")(meta)
    joined = L.Concatenate()([x, m])
    label = L.Dense(3, activation="softmax", name="label")(joined)
    score = L.Dense(1, name="score")(L.Dense(7, activation="relu")(joined))
    return ns.Model([image, meta], [label, score])


def tcn(ns):
    """Causal dilated Conv1D blocks with residual Adds (1x1 projection where the width
    changes)."""
    L = ns.layers
    inp = ns.Input((40, 4))
    x = inp
    for filters, dilation in ((8, 1), (8, 2), (12, 4)):
        y = L.Conv1D(filters, 3, padding="causal", dilation_rate=dilation,
                     activation="relu")(x)
        y = L.Conv1D(filters, 3, padding="causal", dilation_rate=dilation)(y)
        skip = x if x.shape[-1] == filters else L.Conv1D(filters, 1)(x)
        x = L.Activation("relu")(L.Add()([skip, y]))
    x = L.GlobalAveragePooling1D()(x)
    return ns.Model(inp, L.Dense(2, activation="softmax")(x))


def residual_cnn(ns):
    """ResNet-style blocks (conv-BN-relu, conv-BN, Add with the input or a strided 1x1
    projection) and every elementwise merge."""
    L = ns.layers
    inp = ns.Input((16, 16, 3))
    x = L.Conv2D(8, 3, padding="same", use_bias=False)(inp)
    x = L.Activation("relu")(L.BatchNormalization()(x))
    for filters, stride in ((8, 1), (16, 2)):
        y = L.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        y = L.Activation("relu")(L.BatchNormalization()(y))
        y = L.BatchNormalization()(L.Conv2D(filters, 3, padding="same", use_bias=False)(y))
        skip = x if stride == 1 else L.Conv2D(filters, 1, strides=stride)(x)
        x = L.Activation("relu")(L.Add()([skip, y]))
    a = L.Conv2D(16, 1)(x)
    merged = [L.Multiply()([x, a]), L.Maximum()([x, a]), L.Minimum()([x, a]),
              L.Average()([x, a, x]), L.Subtract()([a, x])]
    x = L.Concatenate()(merged)
    x = L.GlobalMaxPooling2D()(x)
    return ns.Model(inp, L.Dense(4)(x))


def shared_layers(ns):
    """One encoder applied to two inputs (a siamese net): nodes [0] and [1] of its layers."""
    L = ns.layers
    a, b = ns.Input((6,)), ns.Input((6,))
    dense = L.Dense(5, activation="relu")
    head = L.Dense(3)
    ea, eb = head(dense(a)), head(dense(b))
    diff = L.Subtract()([ea, eb])
    return ns.Model([a, b], L.Dense(1, activation="sigmoid")(L.Concatenate()([diff,
                                                                             ea])))


def nested_models(ns):
    """A Sequential and a functional model used as layers of a functional model."""
    L = ns.layers
    encoder = ns.Sequential([ns.Input((8, 8, 2)), L.Conv2D(4, 3, activation="relu"),
                             L.Flatten()], name="encoder")
    inner_in = ns.Input((144,))
    head = ns.Model(inner_in, L.Dense(3)(L.Dense(6, activation="relu")(inner_in)),
                    name="head")
    inp = ns.Input((8, 8, 2))
    return ns.Model(inp, head(encoder(inp)))


def sequential_around_functional(ns):
    L = ns.layers
    inner_in = ns.Input((10,))
    block = ns.Model(inner_in, L.Add()([inner_in, L.Dense(10)(inner_in)]), name="block")
    return ns.Sequential([ns.Input((10,)), L.Dense(10), block, L.Dense(2)])


def channels_last_chain(ns):
    """A chain built functionally: Keras prints it without the Connected to column."""
    L = ns.layers
    inp = ns.Input((9, 9, 2))
    x = L.Conv2D(3, 3)(inp)
    return ns.Model(inp, L.Dense(2)(L.Flatten()(x)))


def unet(ns):
    """A small U-Net-style encoder/decoder: Conv2DTranspose, UpSampling2D and skip
    Concatenates."""
    L = ns.layers
    inp = ns.Input((16, 16, 3))
    e1 = L.Conv2D(8, 3, padding="same", activation="relu")(inp)
    e2 = L.Conv2D(16, 3, padding="same", activation="relu")(L.MaxPooling2D(2)(e1))
    b = L.Conv2D(16, 3, padding="same", activation="relu")(L.MaxPooling2D(2)(e2))
    d2 = L.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu")(b)
    d2 = L.Conv2D(16, 3, padding="same", activation="relu")(L.Concatenate()([d2, e2]))
    d1 = L.UpSampling2D(2)(d2)
    d1 = L.Conv2D(8, 3, padding="same", activation="relu")(L.Concatenate()([d1, e1]))
    return ns.Model(inp, L.Conv2D(2, 1, activation="sigmoid")(d1))


def mobilenet_separable(ns):
    """A MobileNet-style depthwise-separable CNN with BatchNormalization and
    GlobalAveragePooling2D."""
    L = ns.layers
    inp = ns.Input((24, 24, 3))
    x = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(8, 3, strides=2, padding="same",
                                                    use_bias=False)(inp)))
    for filters, stride in ((16, 1), (24, 2)):
        x = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
        x = L.ReLU(6.0)(L.BatchNormalization()(x))
        x = L.Conv2D(filters, 1, use_bias=False)(x)
        x = L.ReLU(6.0)(L.BatchNormalization()(x))
    x = L.SeparableConv2D(32, 3, padding="same", activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    return ns.Model(inp, L.Dense(5, activation="softmax")(L.Dropout(0.2)(x)))


FAMILIES = {f.__name__: f for f in (two_in_two_out, tcn, residual_cnn, shared_layers,
                                      nested_models, sequential_around_functional,
                                      channels_last_chain, unet, mobilenet_separable)}


def _inputs(model, n=5):
    shapes = [t.shape for t in model.inputs]
    xs = [RNG.standard_normal((n,) + tuple(s[1:])).astype(np.float32) for s in shapes]
    return xs if len(xs) > 1 else xs[0]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_predictions_match_keras(family):
    k, f = pair_model(FAMILIES[family])
    x = _inputs(f)
    want = keras_predict(k, x)
    assert_close(f.predict(x, batch_size=2, verbose=0), want)
    assert_close(f(x), want)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_summary_layers_and_weights_match_keras(family):
    k, f = pair_model(FAMILIES[family])
    assert fastdl_summary(f) == keras_summary(k)
    assert [l.name for l in f.layers] == [l.name for l in k.layers]
    assert f.count_params() == k.count_params()
    assert [w.shape for w in f.get_weights()] == [w.shape for w in k.get_weights()]
    for got, want in zip(f.get_weights(), k.get_weights()):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_config_round_trip(family):
    _, f = pair_model(FAMILIES[family])
    x = _inputs(f)
    want = f.predict(x, verbose=0)
    config = f.get_config()
    fastdl.utils.clear_session()
    g = type(f).from_config(config)
    assert g.get_config() == config
    g.set_weights(f.get_weights())
    assert_close(g.predict(x, verbose=0), want)


def test_inputs_by_name_and_outputs_as_built():
    _, f = pair_model(two_in_two_out)
    image, meta = _inputs(f)
    by_list = f.predict([image, meta], verbose=0)
    by_name = f.predict({"meta": meta, "image": image}, verbose=0)
    assert isinstance(by_list, list) and len(by_list) == 2
    for a, b in zip(by_list, by_name):
        np.testing.assert_array_equal(a, b)
    single = Model(f.inputs[1], layers.Dense(2)(f.inputs[1]))
    assert isinstance(single.predict(meta, verbose=0), np.ndarray)


def test_damaged_model_configs_name_the_config():
    """Found by fuzzing wrappers' layer configs: from_config let KeyError out."""
    def two_input_model():
        fastdl.utils.clear_session()
        a, b = layers.Input((4,)), layers.Input((4,))
        return Model([a, b], layers.Add()([layers.Dense(2)(a), layers.Dense(2)(b)]))

    assert len(Model.from_config(two_input_model().get_config()).inputs) == 2
    for cls in (Sequential, Model):
        with pytest.raises(TypeError, match=r"^config: expected a dict, got list"):
            cls.from_config([])
        with pytest.raises(ValueError, match=r"^config: expected the keys .*missing .*layers"):
            cls.from_config({})
        with pytest.raises(ValueError, match=r"^config: layers\[0\] is not a dict"):
            cls.from_config({"layers": [{"class_name": "Dense"}], "input_layers": [],
                             "output_layers": []})
    config = two_input_model().get_config()
    config["output_layers"] = [["no_such_layer", 0, 0]]
    with pytest.raises(ValueError, match=r"^config: its input_layers, output_layers or "
                                         r"inbound_nodes name no layer call"):
        Model.from_config(config)


def test_functional_model_errors():
    fastdl.utils.clear_session()
    a, b = layers.Input((4,)), layers.Input((4,))
    y = layers.Dense(2)(a)
    with pytest.raises(ValueError, match=r"graph disconnected"):
        Model(b, y)
    with pytest.raises(ValueError, match=r"not an Input"):
        Model(y, layers.Dense(1)(y))
    with pytest.raises(TypeError, match=r"inputs= and outputs="):
        Model()
    with pytest.raises(TypeError, match=r"outputs: expected tensors"):
        Model(a, np.zeros(3))
    with pytest.raises(ValueError, match=r"unique.*dense_x"):
        Model(a, layers.Dense(1, name="dense_x")(layers.Dense(2, name="dense_x")(a)))
    model = Model([a, b], layers.Add()([y, layers.Dense(2)(b)]))
    with pytest.raises(ValueError, match=r"2 inputs.*got 1 array"):
        model.predict(np.zeros((3, 4)), verbose=0)
    with pytest.raises(ValueError, match=r"^x\[1\]: input_layer_1 \(InputLayer\) expected input "
                                         r"shape \(None, 4\), got \(3, 5\)"):
        model.predict([np.zeros((3, 4)), np.zeros((3, 5))], verbose=0)
    with pytest.raises(ValueError, match=r"different batch sizes"):
        model.predict([np.zeros((3, 4)), np.zeros((2, 4))], verbose=0)
    with pytest.raises(ValueError, match=r"input names"):
        model.predict({"nope": np.zeros((3, 4))}, verbose=0)


def test_merge_layer_errors():
    fastdl.utils.clear_session()
    a, b, c = layers.Input((4,)), layers.Input((5,)), layers.Input((4, 2))
    with pytest.raises(ValueError, match=r"add \(Add\): expected input shape shapes that "
                                         r"broadcast together \(axis 1: 4 vs 5\)"):
        layers.Add()([a, b])
    with pytest.raises(ValueError, match=r"exactly 2 inputs, got 3"):
        layers.Subtract()([a, a, a])
    with pytest.raises(ValueError, match=r"expected a list of inputs"):
        layers.Add()(a)
    with pytest.raises(ValueError, match=r"inputs of one rank"):
        layers.Concatenate()([a, c])
    with pytest.raises(ValueError, match=r"same sizes except along axis 1"):
        layers.Concatenate(axis=1)([c, layers.Input((4, 3))])
    with pytest.raises(ValueError, match=r"axis 0 is not a feature axis"):
        layers.Concatenate(axis=0)([a, a])
    with pytest.raises(TypeError, match=r"mix SymbolicTensors"):
        layers.Add()([a, np.zeros((1, 4))])


def test_merge_layers_broadcast_and_concatenate_maps_channels_first_inside_models():
    """Concatenate on the channel axis and on a spatial axis of channels-first-held maps,
    and broadcasting of size-1 axes, against NumPy on Keras-layout arrays."""
    fastdl.utils.clear_session()
    inp = layers.Input((6, 5, 3))
    conv = layers.Conv2D(3, 1, use_bias=False)
    y = conv(inp)
    out = [layers.Concatenate(axis=axis)([y, inp]) for axis in (-1, 1, 2)]
    pooled = layers.GlobalAveragePooling2D(keepdims=True)(y)  # (None, 1, 1, 3)
    out.append(layers.Multiply()([y, pooled]))
    model = Model(inp, out)
    x = RNG.standard_normal((2, 6, 5, 3)).astype(np.float32)
    conv.set_weights([RNG.standard_normal((1, 1, 3, 3)).astype(np.float32)])
    yk = np.einsum("nhwc,cf->nhwf", x, conv.get_weights()[0][0, 0])
    got = model.predict(x, verbose=0)
    for axis, g in zip((-1, 1, 2), got):
        np.testing.assert_allclose(g, np.concatenate([yk, x], axis=axis), rtol=1e-5,
                                   atol=1e-5)
    np.testing.assert_allclose(got[3], yk * yk.mean(axis=(1, 2), keepdims=True), rtol=1e-5,
                               atol=1e-5)


def test_model_weights_are_shared_not_copied():
    fastdl.utils.clear_session()
    a, b = layers.Input((3,)), layers.Input((3,))
    dense = layers.Dense(2)
    model = Model([a, b], layers.Add()([dense(a), dense(b)]))
    assert len(model.weights) == 2 and model.count_params() == 8
    model.set_weights([np.eye(3, 2, dtype=np.float32), np.zeros(2, np.float32)])
    np.testing.assert_array_equal(dense.get_weights()[0], np.eye(3, 2))
    x = np.ones((1, 3), np.float32)
    np.testing.assert_array_equal(model.predict([x, x], verbose=0), [[2.0, 2.0]])


def test_models_in_sequential_and_trainable_flag():
    fastdl.utils.clear_session()
    inner = Sequential([layers.Input((4,)), layers.Dense(3)], name="inner")
    outer = Sequential([layers.Input((4,)), inner, layers.Dense(1)])
    assert outer.count_params() == 19 and len(outer.trainable_weights) == 4
    inner.trainable = False
    assert len(outer.trainable_weights) == 2 and len(outer.non_trainable_weights) == 2
    outer.trainable = False
    assert outer.trainable_weights == [] and len(outer.non_trainable_weights) == 4


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_models_pickle(family):
    """Pickled models (for multiprocessing and Dask) predict the same, keep their layer
    order and weights, and the copy is independent of the original."""
    import pickle
    _, f = pair_model(FAMILIES[family])
    x = _inputs(f)
    want = f.predict(x, verbose=0)  # plans built: they must not be pickled
    g = pickle.loads(pickle.dumps(f))
    assert_close(g.predict(x, verbose=0), want)
    assert [l.name for l in g.layers] == [l.name for l in f.layers]
    assert g.get_config() == f.get_config()
    g.set_weights([w * 0 for w in g.get_weights()])
    assert_close(f.predict(x, verbose=0), want)


def test_custom_activation_function_pickles_by_reference():
    import pickle
    fastdl.utils.clear_session()
    model = Sequential([layers.Input((3,)), layers.Dense(2, activation=_double)])
    x = np.ones((1, 3), np.float32)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(x, verbose=0),
                                  model.predict(x, verbose=0))


def _double(x):
    return 2 * x
