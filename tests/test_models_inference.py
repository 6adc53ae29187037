"""A model's compiled inference program (fastdl/models/inference.py): BatchNormalization
folded and activations fused into convolutions and Dense layers, Dropout dropped, output
buffers reused -- the same results as running every layer, weights changes seen, outputs
never aliased, concurrent callers safe."""
import threading

import numpy as np
import pytest

import fastdl
from fastdl import layers
from fastdl.models import Model, Sequential
from fastdl.models.inference import FusedConv, FusedDense, compile_program

RNG = np.random.default_rng(7)


def _randomize(model):
    weights = []
    for w in model.weights:
        a = RNG.standard_normal(w.shape).astype(np.float32)
        if "moving_variance" in w.name:
            a = np.abs(a) + 0.5
        weights.append(a)
    model.set_weights(weights)


def _net(data_format="channels_last"):
    fastdl.utils.clear_session()
    cf = data_format == "channels_first"
    inp = layers.Input((3, 10, 9) if cf else (10, 9, 3))
    kw = {"data_format": data_format}
    axis = 1 if cf else -1
    x = layers.Conv2D(6, 3, padding="same", use_bias=False, **kw)(inp)
    x = layers.Activation("relu")(layers.BatchNormalization(axis=axis)(x))
    y = layers.Conv2D(6, 3, padding="same", **kw)(x)
    y = layers.BatchNormalization(axis=axis, center=False)(y)      # folded, no activation
    x = layers.Activation("relu6")(layers.Add()([x, y]))
    z = layers.Conv2D(4, 1, **kw)(x)
    z = layers.Activation("softmax")(z)                             # not fusible
    x = layers.Conv2D(5, 3, strides=2, activation="tanh", **kw)(x)  # own activation
    x = layers.BatchNormalization(axis=axis)(x)                     # after an activation
    x = layers.Dropout(0.5)(layers.Flatten(**kw)(x))
    x = layers.Dense(8)(x)
    x = layers.Activation("swish")(layers.BatchNormalization()(x))
    out = layers.Dense(3, activation="sigmoid")(x)
    probs = layers.Dense(4, activation="softmax")(x)                # softmax after the plan
    model = Model(inp, [out, z, layers.GlobalMaxPooling2D(**kw)(y), probs])
    _randomize(model)
    return model


def _unfused(model, x):
    from fastdl.layers import layout as L
    ys, lays = model._program.run([x], [L.KERAS])
    return [L.to_keras(y, lay) for y, lay in zip(ys, lays)]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_compiled_program_fuses_and_matches_the_layers(data_format):
    model = _net(data_format)
    compiled = compile_program(model._program)
    kinds = [type(s.layer).__name__ for s in compiled.steps]
    fused = {s.layer.name: type(s.layer) for s in compiled.steps
             if isinstance(s.layer, (FusedConv, FusedDense))}
    assert fused == {"conv2d+batch_normalization+activation": FusedConv,
                     "conv2d_1+batch_normalization_1": FusedConv,
                     "dense+batch_normalization_3+activation_3": FusedDense,
                     # alone (the softmax, the BN after tanh cannot join): still plan steps
                     "conv2d_2": FusedConv, "conv2d_3": FusedConv, "dense_1": FusedDense,
                     "dense_2": FusedDense}
    assert "Dropout" not in kinds and "BatchNormalization" in kinds  # the one after tanh
    assert len(compiled.steps) == len(model._program.steps) - 6
    x = RNG.standard_normal((3,) + model.inputs[0].shape[1:]).astype(np.float32)
    for got, want in zip(model.predict(x, verbose=0), _unfused(model, x)):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


def test_weight_changes_reach_fused_steps():
    model = _net()
    x = RNG.standard_normal((2, 10, 9, 3)).astype(np.float32)
    model.predict(x, verbose=0)
    bn = model.get_layer("batch_normalization")
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights([gamma * 2, beta - 1, mean + 0.5, var * 3])   # one layer, directly
    for got, want in zip(model.predict(x, verbose=0), _unfused(model, x)):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
    _randomize(model)                                            # the whole model
    for got, want in zip(model.predict(x, verbose=0), _unfused(model, x)):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


def test_traced_calls_match_the_layers_and_see_weight_changes():
    """From the second call with an input signature on, a call runs the steps as plain
    calls (InferenceRunner's trace): the same results, and a weight change (one layer, or
    the whole model) still reaches them."""
    model = _net()
    x = RNG.standard_normal((2, 10, 9, 3)).astype(np.float32)
    for _ in range(3):
        for got, want in zip(model(x), _unfused(model, x)):
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
    runner = model._executor()
    assert len(runner._traces) == 1
    trace, = runner._traces.values()
    assert trace.chain is None  # branches: the trace runs on slots
    bn = model.get_layer("batch_normalization")
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights([gamma * 2, beta - 1, mean + 0.5, var * 3])
    for _ in range(3):  # the stale trace, then its successor
        for got, want in zip(model(x), _unfused(model, x)):
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
    _randomize(model)
    for got, want in zip(model(x), _unfused(model, x)):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_traced_sequential_runs_as_a_chain_and_falls_back_on_odd_inputs(data_format):
    """A Sequential model's trace is a plain chain of calls; a fused step given what its
    kernel cannot take as it comes (a Lambda's strided view, read in place where the
    layer is channels_first; a float64 array) takes the checked path, with the same
    results as the layers."""
    fastdl.utils.clear_session()
    cf = data_format == "channels_first"
    kw = {"data_format": data_format}
    flip = layers.Lambda(lambda t: t[:, :, ::-1, :])                 # a strided view
    widen = layers.Lambda(lambda t: np.asarray(t, np.float64) * 2)   # another dtype
    model = Sequential([layers.Input((3, 9, 8) if cf else (9, 8, 3)),
                        layers.Conv2D(4, 3, activation="relu", **kw),
                        layers.MaxPooling2D(2, **kw), flip, layers.Conv2D(5, 2, **kw), widen,
                        layers.Conv2D(3, 1, **kw), layers.Flatten(**kw), layers.Dense(6)])
    _randomize(model)
    x = RNG.standard_normal((3,) + model.input_shape[1:]).astype(np.float32)
    model(x)  # builds the program
    want = _unfused(model, x)[0]
    for _ in range(4):
        np.testing.assert_allclose(model(x), want, rtol=2e-5, atol=2e-5)
    trace, = model._executor()._traces.values()
    assert trace.chain is not None


def test_outputs_are_not_reused_buffers():
    """An intermediate written into a reused buffer that is also an output (through a
    view: Flatten of a fused conv) is copied: later calls leave earlier results alone."""
    fastdl.utils.clear_session()
    inp = layers.Input((2, 6, 6))
    c = layers.Activation("relu")(layers.Conv2D(3, 3, data_format="channels_first",
                                                use_bias=False)(inp))
    flat = layers.Flatten()(c)
    model = Model(inp, [flat, layers.Dense(2)(flat)])
    _randomize(model)
    a = RNG.standard_normal((2, 2, 6, 6)).astype(np.float32)
    first = model(a)
    kept = [y.copy() for y in first]
    model(a * -3 + 1)
    for y, k in zip(first, kept):
        np.testing.assert_array_equal(y, k)


def test_concurrent_callers_get_their_own_results():
    model = _net()
    xs = [RNG.standard_normal((2, 10, 9, 3)).astype(np.float32) for _ in range(6)]
    want = [_unfused(model, x) for x in xs]
    got = [None] * len(xs)

    def work(i):
        for _ in range(5):
            got[i] = model(xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, w in zip(got, want):
        for a, b in zip(g, w):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


def test_models_built_one_after_another_read_each_calls_input():
    """The arena frees each step's first buffer; the memory (and id) of a freed buffer
    comes back as some later array's, often one a call makes anew (a model input's
    converted copy, a Python step's output). Were such an array taken for one of the
    model's buffers, its step would be bound to memory later calls no longer write: those
    calls would give an earlier input's results. Several models in turn give the freed ids
    many chances to come back."""
    for _ in range(6):
        model = _net()
        xs = [RNG.standard_normal((2, 10, 9, 3)).astype(np.float32) for _ in range(3)]
        want = [_unfused(model, x) for x in xs]
        for i in [0, 0, 1, 2, 1, 0]:
            got = model(xs[i])  # alive during the next call, as a caller's results are
            for y, w in zip(got, want[i]):
                np.testing.assert_allclose(y, w, rtol=1e-4, atol=1e-4)


def test_sequential_recompiles_after_add_and_pop():
    fastdl.utils.clear_session()
    model = Sequential([layers.Input((4,)), layers.Dense(3), layers.BatchNormalization()])
    _randomize(model)
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    before = model(x)
    model.add(layers.Activation("relu"))
    np.testing.assert_allclose(model(x), np.maximum(before, 0), rtol=1e-6, atol=1e-6)
    model.pop()
    np.testing.assert_allclose(model(x), before, rtol=1e-6, atol=1e-6)


def test_zero_padding_runs_inside_the_next_convolution():
    fastdl.utils.clear_session()
    inp = layers.Input((9, 8, 3))
    x = layers.ZeroPadding2D(((1, 2), (0, 1)))(inp)
    x = layers.Conv2D(4, 3, strides=2, use_bias=False)(x)            # takes the padding
    x = layers.Activation("relu")(layers.BatchNormalization()(x))
    p = layers.ZeroPadding2D(1)(x)
    y = layers.DepthwiseConv2D(3)(p)                                  # takes it too
    z = layers.ZeroPadding2D(1)(y)
    a = layers.Conv2D(2, 3, padding="same")(z)                        # 'same': not fused
    b = layers.Conv2D(2, 3)(z)                                        # two readers: not
    model = Model(inp, [a, b])
    _randomize(model)
    compiled = compile_program(model._program)
    names = [s.layer.name for s in compiled.steps]
    assert "zero_padding2d" not in names and "zero_padding2d_1" not in names
    assert "zero_padding2d_2" in names
    x = RNG.standard_normal((2, 9, 8, 3)).astype(np.float32)
    for got, want in zip(model.predict(x, verbose=0), _unfused(model, x)):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


def test_zero_padding_before_max_pooling_runs_in_the_pooling_over_relu_maps():
    """ZeroPadding -> MaxPooling over maps written by relu or relu6 (ResNet's stem): the
    pooling pads with its kernels' -inf border, which picks the maxima the zeros would.
    Not over maps that can be negative, nor padding unequal on the two sides or wider than
    half the window."""
    from fastdl.models.inference import PaddingStep, PoolStep
    fastdl.utils.clear_session()
    inp = layers.Input((13, 12, 3))
    a = layers.Conv2D(4, 3, activation="relu")(inp)                     # fused relu
    a = layers.MaxPooling2D(3, strides=2)(layers.ZeroPadding2D(1)(a))   # taken over
    b = layers.Activation("relu6")(layers.Add()([inp, inp]))            # an Activation layer
    b = layers.MaxPooling2D((3, 5), strides=2)(layers.ZeroPadding2D((1, 2))(b))  # taken over
    c = layers.Conv2D(4, 3)(inp)                                        # can be negative
    c = layers.MaxPooling2D(3, strides=2)(layers.ZeroPadding2D(1)(c))
    d = layers.Conv2D(4, 3, activation="relu")(inp)
    d = layers.MaxPooling2D(3, strides=2)(layers.ZeroPadding2D(2)(d))   # wider than half
    model = Model(inp, [a, b, c, d])
    _randomize(model)
    steps = compile_program(model._program).steps
    padding = {s.layer.name for s in steps if type(s.layer) is PaddingStep}
    assert padding == {"zero_padding2d_2", "zero_padding2d_3"}
    pads = {s.layer.name: s.layer.pads for s in steps if type(s.layer) is PoolStep}
    assert pads == {"max_pooling2d": (1, 1), "max_pooling2d_1": (1, 2),
                    "max_pooling2d_2": None, "max_pooling2d_3": None}
    for seed in range(3):
        x = np.random.default_rng(seed).standard_normal((2, 13, 12, 3)).astype(np.float32) - 1
        for _ in range(2):  # the first call and the traced ones
            for got, want in zip(model(x), _unfused(model, x)):
                np.testing.assert_array_equal(got, want)


def test_zero_padding_alone_reuses_its_zeroed_buffer():
    """A ZeroPadding no convolution takes (before a pooling layer) writes into a buffer
    whose border was zeroed once: calls with other inputs see their own interior and still
    a zero border; one that is a model output is a fresh array."""
    from fastdl.models.inference import PaddingStep
    fastdl.utils.clear_session()
    inp = layers.Input((6, 7, 2))
    p = layers.ZeroPadding2D(((1, 2), (2, 0)))(layers.Activation("sigmoid")(inp))
    out = layers.MaxPooling2D(3, strides=2)(p)
    model = Model(inp, [out, layers.ZeroPadding3D(1)(layers.Reshape((6, 7, 2, 1))(inp))])
    compiled = compile_program(model._program)
    steps = {s.layer.name: type(s.layer) for s in compiled.steps}
    assert steps["zero_padding2d"] is PaddingStep and steps["zero_padding3d"] is not PaddingStep
    for seed in range(3):  # sigmoid > 0: a non-zero border would change the maxima
        x = np.random.default_rng(seed).standard_normal((2, 6, 7, 2)).astype(np.float32) - 3
        got = model.predict(x, verbose=0)
        for g, w in zip(got, _unfused(model, x)):
            np.testing.assert_array_equal(g, w)
    first, second = model(x)[1], model(x)[1]
    assert first is not second and not np.shares_memory(first, second)


def _shuffled(x, groups):
    n, c = x.shape[:2]
    return x.reshape((n, groups, c // groups) + x.shape[2:]).swapaxes(1, 2).reshape(x.shape)


@pytest.mark.parametrize("held", ["keras", "cf_rows", "cf_channels"])
def test_concatenate_then_channel_shuffle_runs_as_one_copy(held):
    """Concatenate -> Reshape (g, C/g, ...) -> Permute -> Reshape back (ShuffleNet's channel
    shuffle as exported to ONNX) is one step copying each input to its shuffled places;
    groups that split an input, reused buffers and a model output are right. Arrays held
    channels-first (a conv's output in a channels_last model) take the four layers, also
    where their channel axis would pass for the shuffled one (cf_channels)."""
    from fastdl.models.inference import ChannelShuffleStep
    fastdl.utils.clear_session()
    shape = (8, 8, 3) if held == "cf_channels" else (6, 5, 4)  # there: (8, 8, 8) concatenated
    inp = layers.Input(shape)  # axis 1 is what the shuffle permutes
    if held == "keras":
        a, b = layers.Activation("tanh")(inp), layers.Activation("sigmoid")(inp)
    else:
        a, b = layers.Conv2D(4, 1)(inp), layers.Conv2D(4, 3, padding="same")(inp)
    cat = layers.Concatenate(axis=-1 if held == "cf_channels" else 1)([a, b])
    rows, cols, depth = cat.shape[1:]
    x = layers.Reshape((rows // 4, 4, cols, depth))(cat)  # groups of 4: one may span inputs
    x = layers.Reshape((rows, cols, depth))(layers.Permute((2, 1, 3, 4))(x))
    model = Model(inp, [layers.Conv2D(2, 1)(x), x])
    _randomize(model)
    compiled = compile_program(model._program)
    shuffles = [s.layer for s in compiled.steps if isinstance(s.layer, ChannelShuffleStep)]
    assert len(shuffles) == 1 and len(compiled.steps) == len(model._program.steps) - 3
    for seed in range(3):
        x = np.random.default_rng(seed).standard_normal((2,) + shape).astype(np.float32)
        got, want = model.predict(x, verbose=0), _unfused(model, x)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5)
        if held == "keras":
            parts = np.concatenate([np.tanh(x), 1 / (1 + np.exp(-x))], 1)
            np.testing.assert_allclose(got[1], _shuffled(parts, 3), rtol=1e-6, atol=1e-6)
    assert model(x)[1] is not model(x)[1]  # a model output: never the reused buffer


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_concatenated_convolutions_write_into_their_channels(data_format):
    """Convolutions of one input whose outputs only a channel Concatenate reads (SqueezeNet's
    fire module) run as one step: at batch 1 each writes its channels of the output in
    place; other batches, a concatenation along another axis and a branch read elsewhere
    too are right; weight changes reach the traced calls."""
    from fastdl.models.inference import ConcatenatedConvsStep
    fastdl.utils.clear_session()
    cf = data_format == "channels_first"
    kw = {"data_format": data_format}
    inp = layers.Input((3, 9, 8) if cf else (9, 8, 3))
    squeeze = layers.Conv2D(4, 1, activation="relu", **kw)(inp)
    fire = layers.Concatenate(axis=1 if cf else -1)([
        layers.Conv2D(5, 1, activation="relu", **kw)(squeeze),
        layers.Conv2D(3, 3, padding="same", use_bias=False, **kw)(squeeze),
        layers.Activation("relu")(layers.BatchNormalization(axis=1 if cf else -1)(
            layers.Conv2D(2, 3, padding="same", **kw)(squeeze)))])
    rows = layers.Concatenate(axis=2)([layers.Conv2D(3, 1, **kw)(fire),
                                       layers.Conv2D(3, 3, padding="same", **kw)(fire)])
    shared = layers.Conv2D(2, 1, **kw)(fire)           # also a model output: not merged
    kept = layers.Concatenate(axis=1 if cf else -1)([shared, layers.Conv2D(2, 1, **kw)(fire)])
    model = Model(inp, [layers.Activation("tanh")(fire), rows, kept, shared])
    _randomize(model)
    compiled = compile_program(model._program)
    merged = [s.layer.name for s in compiled.steps
              if isinstance(s.layer, ConcatenatedConvsStep)]
    assert len(merged) == 2 and merged[0].endswith("concatenate")  # fire, rows
    for batch in (1, 1, 3, 1):  # the second call on runs the trace
        x = RNG.standard_normal((batch,) + model.inputs[0].shape[1:]).astype(np.float32)
        for got, want in zip(model.predict(x, verbose=0), _unfused(model, x)):
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
    steps = {s.layer.name: s.layer for s in model._executor().compiled.steps}
    assert steps[merged[0]]._direct and not steps[merged[1]]._direct  # in place: fire only
    _randomize(model)  # new weights reach the next calls, traced again from the second
    for _ in range(3):
        x = RNG.standard_normal(x.shape).astype(np.float32)
        for got, want in zip(model(x), _unfused(model, x)):
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
