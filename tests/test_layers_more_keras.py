"""The second half of fastdl.layers against Keras 3 (torch backend): transposed,
depthwise and separable convolutions, padding / cropping / upsampling, Permute,
RepeatVector, activation layers, SpatialDropout, Embedding, Lambda -- predictions, the
summary table, configs, and bad arguments."""
import numpy as np
import pytest

from keras_oracle import RNG, fastdl_summary, keras, keras_predict, keras_summary, pair

import fastdl
from fastdl import layers
from fastdl.models import Sequential


def _check(build, shape, batch=3, x=None, rtol=1e-4, summary=True):
    k, f = pair(build)
    if x is None:
        x = RNG.standard_normal((batch,) + shape).astype(np.float32)
    want = keras_predict(k, x)
    got = f.predict(x, verbose=0)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(np.abs(want).max(), 1))
    if summary:
        assert fastdl_summary(f) == keras_summary(k)
    for a, b in zip(f.get_weights(), k.get_weights()):
        assert a.shape == b.shape
    return k, f


TRANSPOSED = [  # (rank, kernel, strides, padding, output_padding, dilation, size)
    (2, 3, 2, "same", None, 1, (5, 6)), (2, 4, 2, "same", None, 1, (5, 6)),
    (2, 3, 1, "same", None, 1, (5, 6)), (2, 2, 2, "valid", None, 1, (5, 6)),
    (2, 3, 2, "valid", None, 1, (5, 6)), (2, (3, 2), (2, 3), "valid", 1, 1, (4, 5)),
    (2, 3, 3, "valid", None, 1, (4, 4)), (2, 3, 1, "valid", None, 2, (4, 5)),
    (1, 5, 2, "same", None, 1, (9,)), (1, 3, 3, "valid", 2, 1, (7,)),
    (3, 3, 2, "same", None, 1, (3, 4, 3)), (3, 2, 2, "valid", None, 1, (2, 3, 2))]


@pytest.mark.parametrize("rank, kernel, strides, padding, output_padding, dilation, size",
                         TRANSPOSED)
def test_conv_transpose(rank, kernel, strides, padding, output_padding, dilation, size):
    def build(m, Input):
        cls = getattr(m, f"Conv{rank}DTranspose")
        return [Input(size + (3,)), cls(4, kernel, strides=strides, padding=padding,
                                        output_padding=output_padding,
                                        dilation_rate=dilation, activation="relu")]
    _check(build, size + (3,))


def test_conv_transpose_channels_first_and_no_bias():
    def build(m, Input):
        return [Input((3, 5, 4)), m.Conv2DTranspose(2, 3, strides=2, padding="same",
                                                    data_format="channels_first",
                                                    use_bias=False, activation="tanh")]
    _check(build, (3, 5, 4))


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3), dict(kernel_size=3, strides=2, padding="same"),
    dict(kernel_size=(3, 2), depth_multiplier=2, activation="relu6"),
    dict(kernel_size=3, dilation_rate=2, padding="same", use_bias=False),
    dict(kernel_size=3, data_format="channels_first")])
def test_depthwise_conv2d(kwargs):
    shape = (4, 9, 8) if kwargs.get("data_format") else (9, 8, 4)
    _check(lambda m, Input: [Input(shape), m.DepthwiseConv2D(**kwargs)], shape)


def test_depthwise_conv1d_and_separable():
    _check(lambda m, Input: [Input((20, 3)),
                             m.DepthwiseConv1D(5, strides=2, padding="same",
                                               depth_multiplier=3, activation="swish")],
           (20, 3))
    _check(lambda m, Input: [Input((20, 3)),
                             m.SeparableConv1D(6, 3, padding="causal" if False else "same",
                                               depth_multiplier=2, activation="relu")],
           (20, 3))
    _check(lambda m, Input: [Input((11, 10, 4)),
                             m.SeparableConv2D(8, 3, strides=2, depth_multiplier=2,
                                               activation="elu"),
                             m.SeparableConv2D(5, (3, 1), padding="same", use_bias=False)],
           (11, 10, 4))


def mobilenet_block_model(m, Input):
    """A MobileNet-style depthwise-separable CNN: strided stem, DepthwiseConv2D + BN +
    ReLU + 1x1 Conv2D blocks, one SeparableConv2D, global average pooling."""
    return [Input((32, 32, 3)),
            m.Conv2D(8, 3, strides=2, padding="same", use_bias=False),
            m.BatchNormalization(), m.ReLU(6.0),
            m.DepthwiseConv2D(3, padding="same", use_bias=False), m.BatchNormalization(),
            m.ReLU(), m.Conv2D(16, 1, use_bias=False), m.BatchNormalization(), m.ReLU(),
            m.ZeroPadding2D(((0, 1), (0, 1))), m.DepthwiseConv2D(3, strides=2),
            m.BatchNormalization(), m.ReLU(), m.SeparableConv2D(24, 3, padding="same",
                                                                activation="relu"),
            m.GlobalAveragePooling2D(), m.Dropout(0.2), m.Dense(5, activation="softmax")]


def test_mobilenet_style_model():
    _check(mobilenet_block_model, (32, 32, 3))


def test_decoder_of_transposed_convs():
    _check(lambda m, Input: [Input((4, 4, 8)),
                             m.Conv2DTranspose(8, 3, strides=2, padding="same",
                                               activation="relu"),
                             m.Conv2DTranspose(4, 4, strides=2, padding="same",
                                               activation="relu"),
                             m.UpSampling2D(2), m.Conv2DTranspose(3, 2, strides=2),
                             m.Cropping2D(((1, 2), (3, 0)))], (4, 4, 8))


@pytest.mark.parametrize("make, shape", [
    (lambda m: m.ZeroPadding1D(2), (7, 3)), (lambda m: m.ZeroPadding1D((1, 3)), (7, 3)),
    (lambda m: m.ZeroPadding2D(), (5, 4, 2)), (lambda m: m.ZeroPadding2D((2, 1)), (5, 4, 2)),
    (lambda m: m.ZeroPadding2D(((1, 0), (0, 2))), (5, 4, 2)),
    (lambda m: m.ZeroPadding2D(1, data_format="channels_first"), (2, 5, 4)),
    (lambda m: m.ZeroPadding3D(((1, 0), (0, 2), (1, 1))), (3, 4, 2, 2)),
    (lambda m: m.Cropping1D((2, 1)), (7, 3)), (lambda m: m.Cropping2D(1), (5, 4, 2)),
    (lambda m: m.Cropping2D(((1, 2), (0, 1)), data_format="channels_first"), (2, 6, 4)),
    (lambda m: m.Cropping3D(((1, 0), (0, 1), (1, 1))), (3, 4, 5, 2)),
    (lambda m: m.UpSampling1D(3), (4, 2)), (lambda m: m.UpSampling2D((2, 3)), (3, 4, 2)),
    (lambda m: m.UpSampling2D(2, data_format="channels_first"), (2, 3, 4)),
    (lambda m: m.UpSampling2D((2, 3), interpolation="bilinear"), (3, 4, 2)),
    (lambda m: m.UpSampling3D((1, 2, 2)), (2, 3, 2, 2)),
    (lambda m: m.Permute((2, 1)), (4, 3)), (lambda m: m.Permute((3, 1, 2)), (2, 3, 4)),
    (lambda m: m.RepeatVector(3), (5,)),
    (lambda m: m.ReLU(), (4, 5)), (lambda m: m.ReLU(max_value=1.5), (4, 5)),
    (lambda m: m.ReLU(negative_slope=0.1, threshold=0.5, max_value=2.0), (4, 5)),
    (lambda m: m.ReLU(negative_slope=0.2), (4, 5)), (lambda m: m.LeakyReLU(), (4, 5)),
    (lambda m: m.LeakyReLU(0.05), (4, 5)), (lambda m: m.ELU(), (4, 5)),
    (lambda m: m.ELU(0.5), (4, 5)), (lambda m: m.Softmax(), (4, 5)),
    (lambda m: m.Softmax(axis=1), (4, 5)), (lambda m: m.Softmax(axis=(1, 2)), (3, 4, 5)),
    (lambda m: m.PReLU(), (4, 5)), (lambda m: m.PReLU(shared_axes=[1, 2]), (3, 4, 2)),
    (lambda m: m.SpatialDropout1D(0.3), (4, 5)), (lambda m: m.SpatialDropout2D(0.3),
                                                  (3, 4, 2))])
def test_layer_alone(make, shape):
    """Each layer after a Conv/Dense (so maps arrive channels-first inside the model) and
    as the first layer."""
    def build(m, Input):
        if len(shape) >= 3:
            return [Input(shape), m.Conv2D(shape[-1], 1) if len(shape) == 3 else
                    m.Conv3D(shape[-1], 1) if len(shape) == 4 else m.Dense(shape[-1]),
                    make(m)]
        return [Input(shape), m.Dense(shape[-1]), make(m)]
    k, f = pair(build)
    if any(isinstance(l, layers.PReLU) for l in f.layers):  # alpha off zero
        weights = [w if w.ndim > 0 else w for w in k.get_weights()]
        weights[-1] = RNG.uniform(0.1, 0.5, weights[-1].shape).astype(np.float32)
        k.set_weights(weights)
        f.set_weights(weights)
    x = RNG.standard_normal((3,) + shape).astype(np.float32)
    np.testing.assert_allclose(f.predict(x, verbose=0), keras_predict(k, x), rtol=1e-4,
                               atol=1e-4)
    assert fastdl_summary(f) == keras_summary(k)
    _check(lambda m, Input: [Input(shape), make(m)], shape, summary=False)


def test_layer_configs_round_trip():
    fastdl.utils.clear_session()
    model = Sequential(mobilenet_block_model(layers, layers.Input))
    g = Sequential.from_config(model.get_config())
    g.set_weights(model.get_weights())
    x = RNG.standard_normal((2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(g.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-6)


def test_embedding_and_integer_inputs():
    def build(m, Input):
        return [Input((6,), dtype="int32"), m.Embedding(30, 4), m.Flatten(), m.Dense(2)]
    k, f = pair(build)
    x = RNG.integers(0, 30, (5, 6)).astype(np.int32)
    np.testing.assert_allclose(f.predict(x, verbose=0), keras_predict(k, x), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(f.predict(x.astype(np.float32), verbose=0),
                               keras_predict(k, x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"embedding \(Embedding\): index 30 is outside "
                                         r"\[0, 30\)"):
        f.predict(np.full((1, 6), 30), verbose=0)
    with pytest.raises(ValueError, match=r"integer indices"):
        f.predict(np.full((1, 6), 1.5), verbose=0)
    assert fastdl_summary(f) == keras_summary(k)


def test_lambda_layer_by_registered_name(tmp_path):
    def double_plus_one(x):
        return 2 * x + 1

    fastdl.utils.clear_session()
    model = Sequential([layers.Input((3,)), layers.Lambda(double_plus_one),
                        layers.Dense(2)])
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    assert model.layers[0].compute_output_shape((None, 3)) == (None, 3)
    with pytest.raises(ValueError, match=r"lambda \(Lambda\): its function 'double_plus_one'"
                                         r" is not registered"):
        model.save(tmp_path / "m.fastdl")
    fastdl.utils.get_custom_objects()["double_plus_one"] = double_plus_one
    try:
        model.save(tmp_path / "m.fastdl")
        again = fastdl.models.load_model(tmp_path / "m.fastdl")
        np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0))
    finally:
        del fastdl.utils.get_custom_objects()["double_plus_one"]
    with pytest.raises(ValueError, match=r"no function is registered as 'nope'"):
        layers.Lambda("nope")
    pair_out = layers.Lambda(lambda xs: xs[0] - xs[1], output_shape=(3,))
    np.testing.assert_allclose(pair_out([x, x]), np.zeros_like(x))


def test_lambda_checks_its_call_and_what_its_function_returns():
    """Found by tests/test_fuzz_layers.py: a function its call does not fit, `arguments` or
    `output_shape` not of their kind, and a result of the wrong shape or no array were
    Python's TypeErrors naming nothing, NumPy's errors, or went through unchecked."""
    def run(layer, batch=4):
        fastdl.utils.clear_session()
        model = Sequential([layers.Input((3,)), layer, layers.Dense(2)])
        return model.predict(np.ones((batch, 3), np.float32), verbose=0)

    def scale(x, factor=1.0):
        return x * factor

    with pytest.raises(TypeError, match=r"^function: lambda\w* \(Lambda\) calls it as "
                                        r"<lambda>\(inputs\), which its signature \(\)"):
        layers.Lambda(lambda: 0)
    with pytest.raises(TypeError, match=r"^function: .*scale\(inputs, nonsense=\.\.\.\)"):
        layers.Lambda(scale, arguments={"nonsense": 1})
    with pytest.raises(TypeError, match=r"^arguments: expected a dict"):
        layers.Lambda(scale, arguments="abc")  # was dict()'s ValueError
    with pytest.raises(TypeError, match=r"^arguments: expected a dict"):
        layers.Lambda(scale, arguments={1: 2.0})
    with pytest.raises(TypeError, match=r"^output_shape: expected a tuple of ints"):
        layers.Lambda(scale, output_shape="abc")  # was ('a', 'b', 'c')
    with pytest.raises(ValueError, match=r"^output_shape: expected an int >= 0"):
        layers.Lambda(scale, output_shape=(3, -1))
    with pytest.raises(TypeError, match=r"^output_shape: lambda\w* \(Lambda\) expected the "
                                        r"function to return a shape"):
        run(layers.Lambda(scale, output_shape=lambda s: None))
    with pytest.raises(ValueError, match=r"^lambda\w* \(Lambda\): its function returned shape "
                                         r"\(1, 3\) for a batch of 4; expected \(4, 3\)"):
        run(layers.Lambda(lambda x: x[:1]))  # went through unchecked
    with pytest.raises(ValueError, match=r"^lambda\w* \(Lambda\): its function returned shape "
                                         r"\(4, 3\) .* \(from output_shape\)"):
        run(layers.Lambda(scale, output_shape=(5,)))  # the Dense was built for 5 inputs
    with pytest.raises(TypeError, match=r"^lambda\w* \(Lambda\): its function's output: "
                                        r"expected an array of real numbers, got None"):
        run(layers.Lambda(lambda x: None))
    with pytest.raises(ValueError, match=r"^lambda\w* \(Lambda\): its function's output: "
                                         r"expected an array, got list"):
        run(layers.Lambda(lambda x: [x, x[:, :1]]))  # was NumPy's inhomogeneous shape
    with pytest.raises(ZeroDivisionError):  # the function's own error is the caller's
        run(layers.Lambda(lambda x: 1 / 0))
    np.testing.assert_allclose(run(layers.Lambda(scale, output_shape=lambda s: s,
                                                 arguments={"factor": 2.0}), batch=2).shape,
                               (2, 2))


@pytest.mark.parametrize("make, message", [
    (lambda: layers.Conv2DTranspose(2, 3, strides=2, output_padding=2), r"output_padding"),
    (lambda: layers.Conv1DTranspose(2, 3, padding="causal"), r"padding"),
    (lambda: layers.DepthwiseConv2D(3, depth_multiplier=0), r"depth_multiplier"),
    (lambda: layers.ZeroPadding2D(((1, 2, 3), (0, 0))), r"padding"),
    (lambda: layers.ZeroPadding2D(-1), r"padding"),
    (lambda: layers.Cropping2D("x"), r"cropping"),
    (lambda: layers.UpSampling2D(2, interpolation="bicubic"), r"interpolation"),
    (lambda: layers.UpSampling1D(0), r"size"),
    (lambda: layers.Permute((1, 3)), r"dims"),
    (lambda: layers.RepeatVector(0), r"n"),
    (lambda: layers.ReLU(max_value=-1), r"max_value"),
    (lambda: layers.LeakyReLU(-0.1), r"negative_slope"),
    (lambda: layers.Embedding(0, 3), r"input_dim"),
    (lambda: layers.Embedding(5, 3, mask_zero=True), r"mask_zero"),
    (lambda: layers.SpatialDropout2D(2.0), r"rate"),
    (lambda: layers.Lambda(3), r"function")])
def test_bad_arguments(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_bad_inputs_name_the_layer():
    fastdl.utils.clear_session()
    with pytest.raises(ValueError, match=r"cropping2d \(Cropping2D\): expected input shape "
                                         r"spatial sizes above the cropping"):
        Sequential([layers.Input((3, 4, 1)), layers.Cropping2D(2)])
    with pytest.raises(ValueError, match=r"repeat_vector \(RepeatVector\): expected input "
                                         r"shape a 2-D shape"):
        Sequential([layers.Input((3, 4)), layers.RepeatVector(2)])
    with pytest.raises(ValueError, match=r"permute \(Permute\)"):
        Sequential([layers.Input((3, 4)), layers.Permute((2, 1, 3))])


def test_activation_layers_fuse_into_plans():
    """ReLU / LeakyReLU / ELU(1) after a convolution run inside its plan when compiled."""
    from fastdl.models.inference import FusedConv, compile_program
    fastdl.utils.clear_session()
    model = Sequential([layers.Input((6, 6, 2)), layers.Conv2D(3, 3), layers.ReLU(6.0),
                        layers.Conv2D(3, 1), layers.LeakyReLU(0.1), layers.Conv2D(2, 1),
                        layers.ELU(), layers.Conv2D(2, 1), layers.ReLU(threshold=0.5)])
    steps = compile_program(model._chain()).steps
    names = [s.layer.name for s in steps if isinstance(s.layer, FusedConv)]
    assert names == ["conv2d+re_lu", "conv2d_1+leaky_re_lu", "conv2d_2+elu", "conv2d_3"]
    x = RNG.standard_normal((2, 6, 6, 2)).astype(np.float32)
    from fastdl.layers import layout as L
    ys, lays = model._chain().run([x], [L.KERAS])
    np.testing.assert_allclose(model.predict(x, verbose=0), L.to_keras(ys[0], lays[0]),
                               rtol=1e-5, atol=1e-6)


def test_every_backend_runs_the_new_layers(any_backend):
    """A model of the new layers on each backend, against Keras."""
    def build(m, Input):
        return [Input((8, 8, 3)), m.ZeroPadding2D(1),
                m.DepthwiseConv2D(3, strides=2, depth_multiplier=2),
                m.Conv2DTranspose(4, 3, strides=2, padding="same"),
                m.SeparableConv2D(3, 3), m.UpSampling2D(), m.Cropping2D(1),
                m.LeakyReLU(0.1), m.GlobalAveragePooling2D(), m.Dense(2)]
    _check(build, (8, 8, 3), summary=False)
