"""LSTM, GRU, SimpleRNN, Bidirectional and TimeDistributed against Keras 3 (torch
backend): outputs and states for every combination of the sequence options, the model
families of the issue (Conv1D -> LSTM, TimeDistributed CNN -> LSTM, Embedding ->
Bidirectional(GRU)), summaries, configs, weights files, bad input, every backend."""
import numpy as np
import pytest

from keras_oracle import (RNG, assert_close, fastdl_summary, keras, keras_predict,
                          keras_summary, pair, pair_model)

import fastdl
from fastdl import layers
from fastdl.models import Sequential


def _functional(make, shape):
    """A functional model Input(shape) -> make(layers) (several outputs kept as a list)."""
    def build(ns):
        inp = ns.Input(shape)
        out = make(ns.layers)(inp)
        return ns.Model(inp, out)
    return build


OPTIONS = [dict(), dict(return_sequences=True), dict(return_state=True),
           dict(return_sequences=True, return_state=True, go_backwards=True),
           dict(go_backwards=True), dict(use_bias=False, return_sequences=True)]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "GRU_v1", "SimpleRNN"])
def test_recurrent_layer_options(kind, options):
    extra = {"reset_after": False} if kind == "GRU_v1" else {}
    cls_name = kind.split("_")[0]
    k, f = pair_model(_functional(
        lambda m: getattr(m, cls_name)(5, **options, **extra), (7, 3)))
    x = RNG.standard_normal((4, 7, 3)).astype(np.float32)
    assert_close(f.predict(x, verbose=0), keras_predict(k, x))
    assert fastdl_summary(f) == keras_summary(k)


@pytest.mark.parametrize("kind, kwargs", [
    ("LSTM", dict(activation="relu")), ("LSTM", dict(recurrent_activation="hard_sigmoid")),
    ("GRU", dict(activation="relu")),
    ("GRU", dict(recurrent_activation="hard_sigmoid", reset_after=False)),
    ("SimpleRNN", dict(activation="relu")), ("LSTM", dict(unit_forget_bias=False))])
def test_recurrent_activations(kind, kwargs):
    k, f = pair_model(_functional(
        lambda m: getattr(m, kind)(4, return_sequences=True, **kwargs), (6, 3)))
    x = RNG.standard_normal((3, 6, 3)).astype(np.float32)
    assert_close(f.predict(x, verbose=0), keras_predict(k, x))


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("sequences", [False, True])
def test_bidirectional(merge_mode, sequences):
    k, f = pair_model(_functional(
        lambda m: m.Bidirectional(m.GRU(4, return_sequences=sequences),
                                  merge_mode=merge_mode), (6, 3)))
    x = RNG.standard_normal((3, 6, 3)).astype(np.float32)
    assert_close(f.predict(x, verbose=0), keras_predict(k, x))
    assert fastdl_summary(f) == keras_summary(k)


def test_bidirectional_states_and_backward_layer():
    k, f = pair_model(_functional(
        lambda m: m.Bidirectional(m.LSTM(4, return_state=True)), (6, 3)))
    x = RNG.standard_normal((3, 6, 3)).astype(np.float32)
    assert_close(f.predict(x, verbose=0), keras_predict(k, x))
    k, f = pair_model(_functional(
        lambda m: m.Bidirectional(m.LSTM(3, return_sequences=True),
                                  backward_layer=m.SimpleRNN(3, return_sequences=True,
                                                             go_backwards=True)), (6, 2)))
    x = RNG.standard_normal((2, 6, 2)).astype(np.float32)
    assert_close(f.predict(x, verbose=0), keras_predict(k, x))


def conv1d_lstm(m, Input):
    """The issue's Conv1D -> LSTM classifier."""
    return [Input((40, 6)), m.Conv1D(16, 5, padding="causal", activation="relu"),
            m.MaxPooling1D(2), m.Conv1D(16, 3, activation="relu"),
            m.LSTM(12, return_sequences=True), m.LSTM(8), m.Dense(3, activation="softmax")]


def video_model(m, Input):
    """TimeDistributed(Conv2D / MaxPooling2D / Flatten) -> LSTM, a video classifier."""
    return [Input((5, 12, 12, 3)),
            m.TimeDistributed(m.Conv2D(4, 3, activation="relu")),
            m.TimeDistributed(m.MaxPooling2D(2)), m.TimeDistributed(m.Flatten()),
            m.LSTM(6), m.Dense(2, activation="sigmoid")]


def text_model(m, Input):
    """Embedding -> Bidirectional(GRU) text classifier."""
    return [Input((10,)), m.Embedding(50, 8), m.Bidirectional(m.GRU(6)),
            m.Dense(4, activation="softmax")]


@pytest.mark.parametrize("build, shape, integer", [(conv1d_lstm, (40, 6), False),
                                                   (video_model, (5, 12, 12, 3), False),
                                                   (text_model, (10,), True)])
def test_model_families(build, shape, integer, tmp_path):
    k, f = pair(build)
    x = (RNG.integers(0, 50, (4,) + shape) if integer else
         RNG.standard_normal((4,) + shape)).astype(np.float32)
    want = keras_predict(k, x)
    assert_close(f.predict(x, verbose=0), want)
    assert fastdl_summary(f) == keras_summary(k)
    # Through Keras' files: the .keras archive and the weights file.
    k.save(tmp_path / "m.keras")
    assert_close(fastdl.io.load_keras(tmp_path / "m.keras").predict(x, verbose=0), want)
    k.save_weights(tmp_path / "m.weights.h5")
    f.set_weights([np.zeros_like(w) for w in f.get_weights()])
    f.load_weights(tmp_path / "m.weights.h5")
    assert_close(f.predict(x, verbose=0), want)
    # fastdl's own archive and config round trip.
    f.save(tmp_path / "m.fastdl")
    assert_close(fastdl.models.load_model(tmp_path / "m.fastdl").predict(x, verbose=0), want)


def test_time_distributed_around_a_model():
    def build(ns):
        inner = ns.Sequential([ns.Input((8, 8, 2)), ns.layers.Conv2D(3, 3, activation="relu"),
                               ns.layers.GlobalMaxPooling2D()], name="frame_encoder")
        inp = ns.Input((4, 8, 8, 2))
        x = ns.layers.TimeDistributed(inner)(inp)
        return ns.Model(inp, ns.layers.GRU(5)(x))
    k, f = pair_model(build)
    x = RNG.standard_normal((3, 4, 8, 8, 2)).astype(np.float32)
    assert_close(f.predict(x, verbose=0), keras_predict(k, x))
    assert fastdl_summary(f) == keras_summary(k)


def test_bad_input_and_arguments():
    fastdl.utils.clear_session()
    lstm = layers.LSTM(4)
    lstm(np.zeros((2, 5, 3), np.float32))
    with pytest.raises(ValueError, match=r"lstm \(LSTM\): expected input shape \(None, 5, 3\)"
                                         r", got \(None, 5, 2\)"):
        lstm(np.zeros((2, 5, 2), np.float32))
    with pytest.raises(ValueError, match=r"a 3-D shape"):
        layers.GRU(3)(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"stateful"):
        layers.LSTM(3, stateful=True)
    with pytest.raises(ValueError, match=r"units"):
        layers.SimpleRNN(0)
    with pytest.raises(TypeError, match=r"recurrent layer"):
        layers.Bidirectional(layers.Dense(3))
    with pytest.raises(ValueError, match=r"merge_mode"):
        layers.Bidirectional(layers.LSTM(3), merge_mode="max")
    with pytest.raises(ValueError, match=r"go_backwards"):
        layers.Bidirectional(layers.LSTM(3), backward_layer=layers.LSTM(3))
    with pytest.raises(ValueError, match=r"\(LSTM\): expected at least one step"):
        Sequential([layers.Input((None, 3)), layers.LSTM(2)]).predict(
            np.zeros((1, 0, 3)), verbose=0)


def test_wrapper_arguments_are_refused_by_name():
    """Found by tests/test_fuzz_layers.py: each was another exception, or a message naming
    no argument."""
    fastdl.utils.clear_session()
    seq = dict(return_sequences=True)
    with pytest.raises(ValueError, match=r"^merge_mode: expected one of"):
        layers.Bidirectional(layers.LSTM(3), merge_mode=np.array([1.5, 2.0]))  # was ambiguous
    with pytest.raises(TypeError, match=r"^backward_layer: expected a recurrent layer .* got "
                                        r"Dense"):
        layers.Bidirectional(layers.LSTM(3), backward_layer=layers.Dense(3))  # AttributeError
    with pytest.raises(ValueError, match=r"^backward_layer: merge_mode 'sum' needs its units "
                                         r"\(5\) to match layer's \(3\)"):  # NumPy broadcast
        layers.Bidirectional(layers.LSTM(3, **seq), merge_mode="sum",
                             backward_layer=layers.LSTM(5, go_backwards=True, **seq))
    layers.Bidirectional(layers.LSTM(3, **seq),  # concat takes other units
                         backward_layer=layers.LSTM(5, go_backwards=True, **seq))
    with pytest.raises(ValueError, match=r"^bidirectional\w* \(Bidirectional\): forward_lstm"):
        layers.Bidirectional(layers.LSTM(3))(np.zeros((2, 5, 2, 1), np.float32))
    with pytest.raises(TypeError, match=r"^layer: expected a layer config"):
        layers.TimeDistributed({})  # was KeyError
    with pytest.raises(ValueError, match=r"^layer: the LSTM config makes no layer: units"):
        layers.Bidirectional({"class_name": "LSTM", "config": {"units": -1}})
    with pytest.raises(ValueError, match=r"^backward_layer: the Sequential config makes no"):
        layers.Bidirectional(layers.LSTM(3), backward_layer={"class_name": "Sequential",
                                                             "config": {}})  # was KeyError
    with pytest.raises(TypeError, match=r"^layer: .*the base class Layer"):
        layers.TimeDistributed(layers.Layer())  # was NotImplementedError at predict
    with pytest.raises(TypeError, match=r"^layer: .*the base class Layer"):
        layers.TimeDistributed({"class_name": "Layer", "config": {}})


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_every_backend_runs_recurrent_layers(any_backend, kind):
    k, f = pair_model(_functional(
        lambda m: m.Bidirectional(getattr(m, kind)(4, return_sequences=True)), (5, 3)))
    x = RNG.standard_normal((2, 5, 3)).astype(np.float32)
    assert_close(f.predict(x, verbose=0), keras_predict(k, x))
