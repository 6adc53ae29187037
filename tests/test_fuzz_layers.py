"""Bad input to fastdl.layers, fuzzed: each layer class is built from a valid configuration
with one or two constructor arguments spoiled (tests/spoilers.py: sizes negative, zero,
huge or not integers, unknown strings, None, arrays), or a valid layer predicts on a
spoiled input (wrong rank or size, NaN/Inf, other dtypes, views, lists, None, a 2^59-element
zero-stride view). Each must work or raise ValueError / TypeError naming the argument, the
input or the layer (MemoryError for sizes no machine holds) -- never another exception, a
crash or a hang. FASTDL_FUZZ_EXAMPLES sets the examples per layer (CI: 25).

The merging layers (Add, ..., Concatenate) are fuzzed in functional models of two inputs:
a constructor argument, one of the two inputs or its Input shape spoiled, or the count of
inputs wrong; the wrappers (Bidirectional, TimeDistributed, Lambda) with their layer or
function spoiled (None, a string, a layer of the wrong kind, a damaged config, a function
raising or returning what is no array of its shape), their other arguments or the input.
"""
import functools
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fastdl
from fastdl import layers, models

from spoilers import (Hang, UserFunctionError, check_outputs, guarded_call, judge, raised_by,
                      spoil)

EXAMPLES = int(os.environ.get("FASTDL_FUZZ_EXAMPLES", "25"))

pytestmark = pytest.mark.fuzz

# name: (class, constructor kwargs, input shape without the batch)
LAYERS = {
    "Dense": (layers.Dense, dict(units=4, activation="relu", use_bias=True), (6,)),
    "Activation": (layers.Activation, dict(activation="tanh"), (5,)),
    "Dropout": (layers.Dropout, dict(rate=0.3, seed=1), (5,)),
    "SpatialDropout1D": (layers.SpatialDropout1D, dict(rate=0.3), (6, 3)),
    "SpatialDropout2D": (layers.SpatialDropout2D, dict(rate=0.3), (4, 4, 3)),
    "Flatten": (layers.Flatten, dict(), (3, 4)),
    "Reshape": (layers.Reshape, dict(target_shape=(6, 2)), (3, 4)),
    "Permute": (layers.Permute, dict(dims=(2, 1)), (3, 4)),
    "Slice": (layers.Slice, dict(axis=2, start=1, stop=-1, step=2), (3, 6)),
    "Rescaling": (layers.Rescaling, dict(scale=np.float32([0.5, 2.0, -1.0]), offset=0.25),
                  (4, 3)),
    "RepeatVector": (layers.RepeatVector, dict(n=3), (5,)),
    "Conv1D": (layers.Conv1D, dict(filters=4, kernel_size=3, strides=1, padding="causal",
                                   dilation_rate=2, groups=1, activation="relu"), (12, 2)),
    "Conv2D": (layers.Conv2D, dict(filters=4, kernel_size=3, strides=2, padding="same",
                                   dilation_rate=1, groups=2, use_bias=True), (9, 9, 2)),
    "Conv3D": (layers.Conv3D, dict(filters=3, kernel_size=2, strides=1, padding="valid"),
               (4, 5, 5, 2)),
    "Conv1DTranspose": (layers.Conv1DTranspose, dict(filters=3, kernel_size=3, strides=2,
                                                     padding="same"), (6, 2)),
    "Conv2DTranspose": (layers.Conv2DTranspose, dict(filters=3, kernel_size=3, strides=2,
                                                     padding="valid", output_padding=1),
                        (4, 4, 2)),
    "Conv3DTranspose": (layers.Conv3DTranspose, dict(filters=2, kernel_size=2, strides=2),
                        (2, 3, 3, 2)),
    "DepthwiseConv2D": (layers.DepthwiseConv2D, dict(kernel_size=3, depth_multiplier=2,
                                                     padding="same"), (6, 6, 3)),
    "SeparableConv1D": (layers.SeparableConv1D, dict(filters=4, kernel_size=3,
                                                     depth_multiplier=1), (10, 3)),
    "SeparableConv2D": (layers.SeparableConv2D, dict(filters=4, kernel_size=3, strides=1,
                                                     padding="same"), (6, 6, 3)),
    "MaxPooling1D": (layers.MaxPooling1D, dict(pool_size=2, strides=2, padding="valid"),
                     (9, 3)),
    "MaxPooling2D": (layers.MaxPooling2D, dict(pool_size=2, strides=None, padding="same"),
                     (7, 7, 3)),
    "MaxPooling3D": (layers.MaxPooling3D, dict(pool_size=2), (4, 4, 4, 2)),
    "AveragePooling1D": (layers.AveragePooling1D, dict(pool_size=3, strides=1,
                                                       padding="same"), (9, 3)),
    "AveragePooling2D": (layers.AveragePooling2D, dict(pool_size=(2, 3)), (6, 7, 2)),
    "AveragePooling3D": (layers.AveragePooling3D, dict(pool_size=2, padding="same"),
                         (3, 4, 4, 2)),
    "GlobalAveragePooling1D": (layers.GlobalAveragePooling1D, dict(keepdims=True), (6, 3)),
    "GlobalAveragePooling2D": (layers.GlobalAveragePooling2D, dict(), (4, 4, 3)),
    "GlobalMaxPooling2D": (layers.GlobalMaxPooling2D, dict(keepdims=False), (4, 4, 3)),
    "GlobalMaxPooling3D": (layers.GlobalMaxPooling3D, dict(), (2, 3, 3, 2)),
    "BatchNormalization": (layers.BatchNormalization, dict(axis=-1, momentum=0.9,
                                                           epsilon=1e-3, center=True,
                                                           scale=True), (4, 4, 3)),
    "ZeroPadding1D": (layers.ZeroPadding1D, dict(padding=2), (5, 3)),
    "ZeroPadding2D": (layers.ZeroPadding2D, dict(padding=((1, 0), (2, 1))), (4, 4, 3)),
    "ZeroPadding3D": (layers.ZeroPadding3D, dict(padding=1), (2, 3, 3, 2)),
    "Cropping1D": (layers.Cropping1D, dict(cropping=(1, 2)), (8, 3)),
    "Cropping2D": (layers.Cropping2D, dict(cropping=((1, 1), (0, 2))), (6, 6, 3)),
    "UpSampling1D": (layers.UpSampling1D, dict(size=2), (5, 3)),
    "UpSampling2D": (layers.UpSampling2D, dict(size=(2, 3)), (3, 3, 2)),
    "UpSampling3D": (layers.UpSampling3D, dict(size=2), (2, 2, 2, 2)),
    "UnitNormalization": (layers.UnitNormalization, dict(axis=(1, 2)), (4, 3, 2)),
    "Gather": (layers.Gather, dict(indices=[[2, 0], [-1, 2]], axis=1), (4, 3, 2)),
    "Reduce": (layers.Reduce, dict(kind="max", axis=(1, -1), keepdims=True), (4, 3, 2)),
    "Padding": (layers.Padding, dict(padding=((1, 2), (2, 0)), mode="reflect"), (4, 3, 2)),
    "Resize": (layers.Resize, dict(scale=(0.75, 1.5), interpolation="linear"), (4, 3, 2)),
    "LSTM": (layers.LSTM, dict(units=5, return_sequences=True, return_state=False,
                               go_backwards=True), (6, 3)),
    "GRU": (layers.GRU, dict(units=5, reset_after=False, return_sequences=False), (6, 3)),
    "SimpleRNN": (layers.SimpleRNN, dict(units=4, activation="relu"), (6, 3)),
    "Embedding": (layers.Embedding, dict(input_dim=10, output_dim=4), (7,)),
    "ReLU": (layers.ReLU, dict(max_value=6.0, negative_slope=0.1, threshold=0.5), (5,)),
    "LeakyReLU": (layers.LeakyReLU, dict(negative_slope=0.2), (5,)),
    "PReLU": (layers.PReLU, dict(), (5,)),
    "ELU": (layers.ELU, dict(alpha=0.5), (5,)),
    "Softmax": (layers.Softmax, dict(axis=-1), (3, 5)),
    "DepthwiseConv1D": (layers.DepthwiseConv1D, dict(kernel_size=3, depth_multiplier=2),
                        (8, 3)),
    "SpatialDropout3D": (layers.SpatialDropout3D, dict(rate=0.5), (2, 3, 3, 2)),
    "GlobalAveragePooling3D": (layers.GlobalAveragePooling3D, dict(keepdims=True),
                               (2, 3, 3, 2)),
    "GlobalMaxPooling1D": (layers.GlobalMaxPooling1D, dict(), (6, 3)),
    "Cropping3D": (layers.Cropping3D, dict(cropping=1), (4, 4, 4, 2)),
}

# The layers over several inputs: (class, constructor kwargs, the two inputs' shapes without
# the batch; size-1 axes broadcast).
MERGING = {
    "Add": (layers.Add, dict(), [(4, 3), (4, 3)]),
    "Subtract": (layers.Subtract, dict(), [(4, 3), (1, 3)]),
    "Multiply": (layers.Multiply, dict(), [(4, 3), (4, 1)]),
    "Average": (layers.Average, dict(), [(2, 3, 2), (2, 3, 2)]),
    "Maximum": (layers.Maximum, dict(), [(5,), (5,)]),
    "Minimum": (layers.Minimum, dict(), [(3, 3, 3), (1, 3, 1)]),
    "Concatenate": (layers.Concatenate, dict(axis=-1), [(4, 3, 2), (4, 3, 1)]),
}

# The wrappers (their own tests below).
WRAPPERS = {"Bidirectional", "TimeDistributed", "Lambda"}

# Not fuzzed here: what is not a layer one configures.
_NOT_FUZZED = {"Layer", "InputLayer", "Weight", "SymbolicTensor"}


def test_every_layer_class_is_fuzzed_or_listed():
    public = {n for n in dir(layers) if not n.startswith("_")
              and isinstance(getattr(layers, n), type)}
    assert public - set(LAYERS) - set(MERGING) - WRAPPERS - _NOT_FUZZED == set()


def _input(shape, name):
    rng = np.random.default_rng(0)
    if name == "Embedding":
        return rng.integers(0, 10, (2,) + shape)
    return rng.standard_normal((2,) + shape).astype(np.float32)


def _judge(error, spoiled, words, what):
    """judge(): here a message names an argument if it holds any of `words`."""
    judge(error, f"{what} with {spoiled}", lambda m: any(w in m for w in words))


def _predict(cls, kwargs, shape, x):
    fastdl.utils.clear_session()
    model = models.Sequential([layers.Input(shape), cls(**kwargs)])
    return model.predict(x, verbose=0)


@pytest.mark.parametrize("name", sorted(LAYERS))
@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 50,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_spoiled_layer_arguments_or_inputs(name, data):
    cls, kwargs, shape = LAYERS[name]
    kwargs = dict(kwargs)
    spoil_input = not kwargs or data.draw(st.booleans(), label="spoil the input")
    if spoil_input:
        args = {"inputs": _input(shape, name)}
        spoiled = spoil(data, args, max_args=1)
        words = ("input", cls.__name__, "x:", "shape")
        x = args["inputs"]
    else:
        spoiled = spoil(data, kwargs)
        words = tuple(spoiled) + (cls.__name__,)
        x = _input(shape, name)
    try:
        result, error = guarded_call(_predict, cls, kwargs, shape, x)
    except Hang as exc:
        pytest.fail(f"{name} with {spoiled}: {exc}")
    _judge(error, spoiled, words, name)
    if error is None:
        check_outputs(result, spoiled, name)


# ------------------------------------------------------------------ merging layers

def _merged(name, kwargs, xs):
    """What a merging layer computes (NumPy, broadcasting as Keras)."""
    xs = [np.asarray(x, np.float32) for x in xs]
    if name == "Concatenate":
        return np.concatenate(xs, axis=kwargs["axis"])
    op = {"Add": np.add, "Subtract": np.subtract, "Multiply": np.multiply,
          "Average": np.add, "Maximum": np.maximum, "Minimum": np.minimum}[name]
    out = functools.reduce(op, xs)
    return out / np.float32(len(xs)) if name == "Average" else out


def _arrays(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((2,) + tuple(s)).astype(np.float32) for s in shapes]


def _small_shape(shape):
    """Whether `shape` (a spoiled Input shape) is one an array of a few elements can have."""
    return (isinstance(shape, tuple) and all(
        type(s) is int and 0 <= s <= 64 for s in shape) and int(np.prod(shape)) <= 4096)


def _merge_predict(cls, kwargs, shapes, xs, bare=False, through=0):
    """A functional model: `cls` on Input tensors of `shapes` (the first alone if `bare`;
    the first `through` of them through a MaxPooling2D(1) first: the same values, held
    channels-first as spatial layers hold their maps), predicting on xs."""
    fastdl.utils.clear_session()
    inputs = [layers.Input(s) for s in shapes]
    tensors = [layers.MaxPooling2D(1)(t) if i < through else t for i, t in enumerate(inputs)]
    out = cls(**kwargs)(tensors[0] if bare else tensors)
    return models.Model(inputs, out).predict(xs, verbose=0)


@pytest.mark.parametrize("name", sorted(MERGING))
@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 50,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_spoiled_merging_layer(name, data):
    cls, kwargs, shapes = MERGING[name]
    kwargs, shapes = dict(kwargs), list(shapes)
    kind = data.draw(st.sampled_from(["input", "input shape", "input count"] +
                                      (["argument"] if kwargs else [])), label="kind")
    xs, bare = _arrays(shapes), False
    through = data.draw(st.sampled_from([0, 0, 1, 2]), label="inputs through MaxPooling2D")
    words = ("input", cls.__name__, "x:", "x[", "shape")
    if kind == "argument":
        spoiled = spoil(data, kwargs)
        words = tuple(spoiled) + (cls.__name__,)
    elif kind == "input":  # one of the two arrays predict is given
        args = {"x[0]": xs[0], "x[1]": xs[1]}
        spoiled = spoil(data, args, max_args=1)
        xs = [args["x[0]"], args["x[1]"]]
    elif kind == "input shape":  # one Input's shape; the arrays have it when they can
        args = {"shape[0]": shapes[0], "shape[1]": shapes[1]}
        spoiled = spoil(data, args, max_args=1)
        shapes = [args["shape[0]"], args["shape[1]"]]
        xs = [_arrays([s])[0] if _small_shape(s) else x for s, x in zip(shapes, xs)]
    else:
        count = data.draw(st.sampled_from(["one", "three", "bare", "none", "predict one",
                                           "predict three", "predict bare"]), label="count")
        spoiled = {"inputs": count}
        if count == "one":
            shapes, xs = shapes[:1], xs[:1]
        elif count == "three":  # legal but for Subtract (exactly two)
            shapes, xs = shapes + shapes[:1], xs + _arrays(shapes[:1], seed=1)
        elif count == "bare":  # the layer on one tensor, not a list
            bare = True
        elif count == "none":
            shapes, xs = [], []
        elif count == "predict one":
            xs = xs[:1]
        elif count == "predict three":
            xs = xs + xs[:1]
        else:
            xs = xs[0]
    # Maps (rank 3, a few elements) may come from a spatial layer, in its layout.
    maps = [_small_shape(s) and len(s) == 3 and min(s) >= 1 for s in shapes]
    while through and not all(maps[:through]) or through > len(shapes):
        through -= 1
    try:
        result, error = guarded_call(_merge_predict, cls, kwargs, shapes, xs, bare, through)
    except Hang as exc:
        pytest.fail(f"{name} with {spoiled}: {exc}")
    _judge(error, spoiled, words, name)
    if error is None:
        check_outputs(result, spoiled, name)
        if kind == "input count":  # the valid values, in another count: finite
            assert np.isfinite(result).all(), f"{name} with {spoiled}: non-finite output"
        # What works computes the merge (broadcasting, in any layout the inputs came in).
        with np.errstate(all="ignore"):
            want = _merged(name, kwargs, xs if isinstance(xs, list) else [xs])
        np.testing.assert_allclose(result, want, rtol=1e-5, atol=1e-6,
                                   err_msg=f"{name} with {spoiled}")


# ------------------------------------------------------------------ wrappers

def _rnn(cls=None, units=3, **kwargs):
    return (cls or layers.LSTM)(units, return_sequences=True, **kwargs)


def _built(layer, shape):
    layer._build_for(shape)
    return layer


def _layer_spoilers(recurrent, step_shape, backwards=False):
    """Other layers (and configs) for a layer-valued argument, beyond spoilers.py's
    general ones: (label, function of a draw -> a fresh value). `recurrent`: the argument
    takes an LSTM / GRU / SimpleRNN (Bidirectional's), going backwards if `backwards`;
    `step_shape`: what the layer is called on, without the batch."""
    wrong = step_shape[:-1] + (step_shape[-1] + 2,)
    out = [
        ("Dense", lambda d: layers.Dense(3)),
        ("Conv2D", lambda d: layers.Conv2D(2, 3, padding="same")),
        ("Flatten", lambda d: layers.Flatten()),
        ("built for another input", lambda d: _built(
            _rnn(go_backwards=backwards) if recurrent else layers.Dense(3), (None,) + wrong)),
        ("several outputs", lambda d: layers.LSTM(2, return_state=True,
                                                  go_backwards=backwards)),
        ("a Bidirectional", lambda d: layers.Bidirectional(layers.LSTM(2))),
        ("a TimeDistributed", lambda d: layers.TimeDistributed(layers.Dense(2))),
        ("a model", lambda d: models.Sequential([layers.Input(step_shape),
                                                 layers.Dense(2)])),
        ("damaged config", lambda d: d.draw(st.sampled_from([
            {"class_name": "LSTM"}, {"config": {"units": 3}}, {"class_name": 3, "config": {}},
            {"class_name": "Nonsense", "config": {}},
            {"class_name": "LSTM", "config": {"units": -1}},
            {"class_name": "LSTM", "config": 3}, {"class_name": "LSTM", "config": None},
            {"class_name": "Dense", "config": {"units": 3, "nonsense": 1}},
            {"class_name": "Layer", "config": {}}, {"class_name": "Sequential", "config": {}},
            {"class_name": "Functional", "config": {"layers": 3}},
            {"class_name": "InputLayer", "config": {"shape": [3]}}]))),
        ("the base Layer", lambda d: layers.Layer()),
        ("an InputLayer", lambda d: layers.InputLayer(step_shape)),
    ]
    if recurrent:
        out += [
            ("GRU", lambda d: _rnn(layers.GRU, go_backwards=backwards)),
            ("SimpleRNN", lambda d: _rnn(layers.SimpleRNN, 4, go_backwards=backwards)),
            ("other direction", lambda d: _rnn(go_backwards=not backwards)),
            ("last step only", lambda d: layers.LSTM(3, go_backwards=backwards)),
            ("returns states", lambda d: _rnn(return_state=True, go_backwards=backwards)),
            ("other units", lambda d: _rnn(units=5, go_backwards=backwards)),
            ("config", lambda d: {"class_name": "LSTM", "config": {
                "units": 3, "return_sequences": True, "go_backwards": backwards}}),
        ]
    else:
        out += [("Dropout", lambda d: layers.Dropout(0.5)),
                ("LSTM", lambda d: layers.LSTM(2)),
                ("config", lambda d: {"class_name": "Dense", "config": {"units": 2}})]
    return out


def _layer_words(kwargs, spoiled):
    """A spoiled layer-valued argument may be refused by that layer itself, in its own
    message naming it and the shapes (a layer built for another input): its name and class
    count as naming the argument."""
    return tuple(w for arg in spoiled for w in (
        (kwargs[arg].name, kwargs[arg].class_name)
        if isinstance(kwargs.get(arg), layers.Layer) else ()))


def _wrapper_predict(make_layer, shape, x, after=None):
    """Input(shape) -> the layer make_layer() builds (-> `after`), predicting on x."""
    fastdl.utils.clear_session()
    inp = layers.Input(shape)
    out = make_layer()(inp)
    if after is not None:
        out = after(out)
    return models.Model(inp, out).predict(x, verbose=0)


def _random_weights(layer, input_shape):
    layer._build_for(input_shape)
    rng = np.random.default_rng(1)
    return [rng.uniform(-0.5, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()]


BIDIRECTIONAL_STEPS = (5, 2)


@settings(max_examples=EXAMPLES * 4, deadline=None, derandomize=EXAMPLES <= 50,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_spoiled_bidirectional(data):
    shape = BIDIRECTIONAL_STEPS
    kwargs = dict(layer=_rnn(), merge_mode=data.draw(st.sampled_from(
        layers.Bidirectional._MODES), label="merge_mode"))
    if data.draw(st.booleans(), label="with backward_layer"):
        kwargs["backward_layer"] = _rnn(go_backwards=True)
    if data.draw(st.booleans(), label="with weights"):
        kwargs["weights"] = _random_weights(layers.Bidirectional(_rnn()), (None,) + shape)
    x = _input(shape, "Bidirectional")
    if data.draw(st.booleans(), label="spoil the input"):
        args = {"inputs": x}
        spoiled = spoil(data, args, max_args=1)
        words = ("input", "Bidirectional", "x:", "shape")
        x = args["inputs"]
    else:
        spoiled = spoil(data, kwargs, extra={
            "layer": _layer_spoilers(True, shape),
            "backward_layer": _layer_spoilers(True, shape, backwards=True)})
        # Weights given with a spoiled (other) layer no longer fit it: their own error.
        words = (tuple(spoiled) + ("Bidirectional",) + _layer_words(kwargs, spoiled) +
                 (("weights",) if "weights" in kwargs else ()))
    try:
        result, error = guarded_call(_wrapper_predict, lambda: layers.Bidirectional(**kwargs),
                                     shape, x)
    except Hang as exc:
        pytest.fail(f"Bidirectional with {spoiled}: {exc}")
    _judge(error, spoiled, words, "Bidirectional")
    if error is None:
        check_outputs(result, spoiled, "Bidirectional")


# name: (the wrapped layer's maker, input shape without the batch)
TIME_DISTRIBUTED = {
    "Dense": (lambda: layers.Dense(3), (4, 5)),
    "Conv2D": (lambda: layers.Conv2D(2, 3, padding="same"), (3, 6, 6, 2)),
}


@pytest.mark.parametrize("name", sorted(TIME_DISTRIBUTED))
@settings(max_examples=EXAMPLES * 2, deadline=None, derandomize=EXAMPLES <= 50,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_spoiled_time_distributed(name, data):
    make, shape = TIME_DISTRIBUTED[name]
    kwargs = dict(layer=make())
    x = _input(shape, "TimeDistributed")
    if data.draw(st.booleans(), label="spoil the input"):
        args = {"inputs": x}
        spoiled = spoil(data, args, max_args=1)
        words = ("input", "TimeDistributed", "x:", "shape")
        x = args["inputs"]
    else:
        spoiled = spoil(data, kwargs, extra={"layer": _layer_spoilers(False, shape[1:])})
        words = tuple(spoiled) + ("TimeDistributed",) + _layer_words(kwargs, spoiled)
    what = f"TimeDistributed({name})"
    try:
        result, error = guarded_call(_wrapper_predict,
                                     lambda: layers.TimeDistributed(**kwargs), shape, x)
    except Hang as exc:
        pytest.fail(f"{what} with {spoiled}: {exc}")
    _judge(error, spoiled, words, what)
    if error is None:
        check_outputs(result, spoiled, what)


def _scale(x, factor=1.0):
    return x * factor


_REGISTERED = "test_fuzz_layers._scale"


def _registered(d):
    fastdl.utils.get_custom_objects()[_REGISTERED] = _scale
    return _REGISTERED


LAMBDA_SHAPE = (3, 4)


@settings(max_examples=EXAMPLES * 4, deadline=None, derandomize=EXAMPLES <= 50,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_spoiled_lambda(data):
    shape = LAMBDA_SHAPE
    kwargs = dict(function=_scale, arguments={"factor": 0.5}, mask=None,
                  output_shape=data.draw(st.sampled_from([shape, None, lambda s: s]),
                                         label="output_shape"))
    x = _input(shape, "Lambda")
    if data.draw(st.booleans(), label="spoil the input"):
        args = {"inputs": x}
        spoiled = spoil(data, args, max_args=1)
        words = ("input", "Lambda", "x:", "shape")
        x = args["inputs"]
    else:
        spoiled = spoil(data, kwargs, extra={
            "function": [("registered", _registered)],
            "output_shape": [("callable", lambda d: (lambda s: s)),
                             ("callable returning None", lambda d: (lambda s: None)),
                             ("callable returning a string", lambda d: (lambda s: "abc")),
                             ("callable raising", lambda d: _raises_on_shape),
                             ("callable of the wrong arity", lambda d: (lambda: (3, 4)))],
            "arguments": [("unknown key", lambda d: {"factor": 0.5, "nonsense": 1}),
                          ("non-str key", lambda d: {1: 0.5}),
                          ("bad value", lambda d: {"factor": d.draw(st.sampled_from(
                              ["abc", None, np.ones(7), np.nan, [1, 2]]))})]})
        words = tuple(spoiled) + ("Lambda",)
    # The Lambda's output feeds a Dense: its declared output shape is what the Dense is
    # built for. A Dense refusing a shape the Lambda declared (rank 1, no features) names
    # itself and both shapes, as any layer refusing its input.
    words += ("Dense",)
    try:
        result, error = guarded_call(_wrapper_predict, lambda: layers.Lambda(**kwargs),
                                     shape, x, after=layers.Dense(2))
    except Hang as exc:
        pytest.fail(f"Lambda with {spoiled}: {exc}")
    # An exception raised by the user's own function (or output_shape function) propagates
    # as itself, as in Keras: the user's error, not fastdl's. Exactly that case is excused:
    # a frame of theirs in the traceback (a wrong return value, an arity that cannot take
    # the call or a wrong `arguments` must still give fastdl's ValueError/TypeError).
    function = kwargs.get("function")
    if isinstance(function, str):  # a registered name: the function it names
        function = fastdl.utils.get_custom_objects().get(function)
    if error is not None and raised_by(error, [function, kwargs.get("output_shape")]):
        return
    _judge(error, spoiled, words, "Lambda")
    if error is None:
        check_outputs(result, spoiled, "Lambda")


def _raises_on_shape(input_shape):
    raise UserFunctionError("the user's output_shape function failed")
