"""fastdl.layers and Sequential against Keras 3 (torch backend) as the oracle: the same
architecture built in both, Keras' weights copied over with set_weights, predictions
compared; summaries compared as printed text. Skips where keras is not installed."""
import numpy as np
import pytest

from keras_oracle import RNG, fastdl_summary, keras, keras_summary, pair  # skips without keras

from fastdl import layers

KL = keras.layers


def cifar_cnn(m, Input):
    """The seed notes' CIFAR-10 CNN."""
    return [Input((32, 32, 3)),
            m.Conv2D(16, 2, padding="same", activation="relu"), m.MaxPooling2D(2),
            m.Conv2D(32, 2, padding="same", activation="relu"), m.MaxPooling2D(2),
            m.Conv2D(64, 2, padding="same", activation="relu"), m.MaxPooling2D(2),
            m.Dropout(0.3), m.Flatten(), m.Dense(500, activation="relu"), m.Dropout(0.4),
            m.Dense(10, activation="softmax")]


def tcn_1d(m, Input):
    """Causal, dilated and strided Conv1D with pooling and a global average."""
    return [Input((50, 6)),
            m.Conv1D(8, 3, padding="causal", dilation_rate=2, activation="relu"),
            m.Conv1D(8, 3, padding="causal", dilation_rate=4, activation="tanh"),
            m.Conv1D(12, 5, strides=2, padding="same", activation="elu"),
            m.MaxPooling1D(3, strides=2, padding="same"),
            m.AveragePooling1D(2), m.Conv1D(6, 1, activation="gelu"),
            m.GlobalAveragePooling1D(), m.Dense(3, activation="log_softmax")]


def mobilenet_like(m, Input):
    """Strided 'same' convs (odd padding totals), groups, BatchNormalization, 'same'
    average pooling that excludes the padding, global max pooling. The pooling sees 13x11
    so its 'same' padding is symmetric: see test_same_average_pooling_excludes_padding."""
    return [Input((25, 21, 4)),
            m.Conv2D(8, 3, strides=2, padding="same", use_bias=False),
            m.BatchNormalization(), m.Activation("relu6"),
            m.Conv2D(8, 3, padding="same", groups=8, activation="swish"),
            m.BatchNormalization(epsilon=1e-5, center=False),
            m.Conv2D(16, 1, activation="hard_swish"),
            m.AveragePooling2D(3, strides=2, padding="same"),
            m.Conv2D(16, (3, 2), strides=(2, 1), padding="valid", activation="selu"),
            m.GlobalMaxPooling2D(), m.Dense(5, activation="sigmoid")]


def conv3d_model(m, Input):
    return [Input((6, 10, 9, 2)),
            m.Conv3D(8, 3, padding="same", activation="relu"),
            m.MaxPooling3D((1, 2, 2)), m.Conv3D(6, (2, 3, 3), strides=(1, 2, 2)),
            m.AveragePooling3D(2, padding="same"), m.Flatten(),
            m.Dense(4, activation="softplus")]


def channels_first(m, Input):
    return [Input((3, 12, 10)),
            m.Conv2D(6, 3, data_format="channels_first", activation="leaky_relu"),
            m.MaxPooling2D(2, data_format="channels_first"),
            m.BatchNormalization(axis=1), m.Flatten(data_format="channels_first"),
            m.Dense(7), m.Reshape((7, 1)), m.Flatten(), m.Dense(2, activation="tanh")]


def dense_stack(m, Input):
    return [Input((5, 12)), m.Dense(16, activation="relu"),
            m.BatchNormalization(), m.Dense(8, use_bias=False), m.Activation("softmax"),
            m.Reshape((40,)), m.Dense(3)]


FAMILIES = {"cifar_cnn": (cifar_cnn, (32, 32, 3)), "tcn_1d": (tcn_1d, (50, 6)),
            "mobilenet_like": (mobilenet_like, (25, 21, 4)),
            "conv3d": (conv3d_model, (6, 10, 9, 2)), "channels_first": (channels_first,
                                                                          (3, 12, 10)),
            "dense_stack": (dense_stack, (5, 12))}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_predictions_match_keras(family):
    build, shape = FAMILIES[family]
    k, f = pair(build)
    x = RNG.standard_normal((7,) + shape).astype(np.float32)
    want = k.predict(x, verbose=0)
    got = f.predict(x, batch_size=3, verbose=0)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    # The same batch through predict and __call__ runs the same plans: identical.
    np.testing.assert_array_equal(f(x), f.predict(x, batch_size=len(x), verbose=0))
    # Batches of 3 may pick another convolution algorithm per shape (Winograd, im2col,
    # direct) than one batch of 7: the same to float32 rounding, not bit for bit.
    np.testing.assert_allclose(f(x), got, rtol=1e-5, atol=1e-5 * np.abs(got).max())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_summary_is_keras_table(family):
    k, f = pair(FAMILIES[family][0])
    assert fastdl_summary(f) == keras_summary(k)
    assert f.count_params() == k.count_params()
    assert [l.name for l in f.layers] == [l.name for l in k.layers]


def test_cifar_cnn_summary_counts():
    """The seed CNN's parameter counts, as the issue states them."""
    _, f = pair(cifar_cnn)
    counts = [l.count_params() for l in f.layers]
    assert [c for c in counts if c] == [208, 2080, 8256, 512500, 5010]
    assert f.count_params() == 528054
    assert " Total params: 528,054 (2.01 MB)" in fastdl_summary(f)


def test_get_weights_round_trip_in_keras_order_and_shapes():
    k, f = pair(mobilenet_like)
    for got, want in zip(f.get_weights(), k.get_weights()):
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    assert [w.shape for w in f.weights] == [tuple(w.shape) for w in k.weights]
    assert len(f.trainable_weights) == len(k.trainable_weights)
    assert len(f.non_trainable_weights) == len(k.non_trainable_weights)


def _same_average_pool_reference(x, pool, strides):
    """Keras 'same' average pooling as TensorFlow and Keras' JAX backend define it
    (NHWC): each window's mean over the input values it covers, padding excluded."""
    n, h, w, c = x.shape
    oh, ow = -(-h // strides[0]), -(-w // strides[1])
    top = max((oh - 1) * strides[0] + pool[0] - h, 0) // 2
    left = max((ow - 1) * strides[1] + pool[1] - w, 0) // 2
    out = np.empty((n, oh, ow, c), np.float32)
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * strides[0] - top, j * strides[1] - left
            window = x[:, max(r0, 0):r0 + pool[0], max(c0, 0):c0 + pool[1]]
            out[:, i, j] = window.mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("size", [(12, 10), (13, 11), (5, 8)])
def test_same_average_pooling_excludes_padding(size):
    """Where 'same' pads one more after than before, Keras' torch backend pads by
    replicating edges (counting them); TensorFlow and JAX exclude the padding, and so
    does fastdl -- checked here against a direct reference instead of keras-torch."""
    x = RNG.standard_normal((2,) + size + (3,)).astype(np.float32)
    got = layers.AveragePooling2D(3, strides=2, padding="same")(x)
    np.testing.assert_allclose(got, _same_average_pool_reference(x, (3, 3), (2, 2)),
                               rtol=1e-6, atol=1e-6)
