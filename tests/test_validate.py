"""fastdl._validate: one validator per kind of argument, and one rule everywhere: a bool is
neither an int nor a real number, and an int is not a bool. Every public argument of each
kind is checked here with a TypeError naming it."""
import numpy as np
import pytest

import fastdl
import fastdl.losses as keras_losses
from fastdl import _validate as v
from fastdl import ops

F32 = np.float32


def raises(exc, name, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert str(info.value).startswith(f"{name}:"), f"does not name {name!r}: {info.value}"
    return str(info.value)


# ---------------------------------------------------------------- the validators

def test_flag_takes_python_and_numpy_bools_only():
    assert v.flag(True, "f") is True and v.flag(np.False_, "f") is False
    for bad in (1, 0, np.int64(1), 1.0, "yes", None):
        msg = raises(TypeError, "f", v.flag, bad, "f")
        assert "expected a bool" in msg and type(bad).__name__ in msg


def test_integer_refuses_bools_and_non_integers():
    assert v.integer(3, "i") == 3 and v.integer(np.int8(-2), "i") == -2
    assert v.integer(5, "i", minimum=5) == 5
    for bad in (True, np.True_, 1.0, "1", None):
        msg = raises(TypeError, "i", v.integer, bad, "i")
        assert "expected an int" in msg and type(bad).__name__ in msg
    assert "expected an int >= 1, got 0" in raises(ValueError, "i", v.integer, 0, "i", 1)
    raises(ValueError, "n", v.positive_int, 0, "n")
    raises(TypeError, "n", v.positive_int, True, "n")


def test_int_tuple_refuses_bools():
    assert v.int_tuple(2, "s", 2, 1) == (2, 2)
    assert v.int_tuple([1, np.int64(3)], "s", 2, 1) == (1, 3)
    for bad in (True, np.True_, (1, True), (np.False_, 1), 1.0, "12"):
        msg = raises(TypeError, "s", v.int_tuple, bad, "s", 2, 0)
        assert "expected an int or 2 ints" in msg and repr(bad) in msg


def test_real_refuses_bools_and_checks_its_bounds():
    assert v.real(1, "r") == 1.0 and type(v.real(np.float32(0.5), "r")) is float
    for bad in (True, np.False_, "1", None, [1.0]):
        msg = raises(TypeError, "r", v.real, bad, "r")
        assert "expected a real number" in msg and type(bad).__name__ in msg
    msg = raises(ValueError, "r", v.real, 1.5, "r", 0.0, 1.0)
    assert "[0.0, 1.0]" in msg and "1.5" in msg
    raises(ValueError, "r", v.real, float("nan"), "r", 0.0, 1.0)
    raises(ValueError, "r", v.real, -1, "r", low=0.0)
    assert v.real(-1e30, "r", high=0.0) == -1e30


def test_axis_wraps_and_refuses_bools():
    assert v.axis(-1, 3) == 2 and v.axis(0, 0) == 0 and v.axis(-1, 0) == 0
    msg = raises(ValueError, "axis", v.axis, 3, 3)
    assert "[-3, 2]" in msg and "3-D" in msg
    raises(TypeError, "axis", v.axis, True, 3)
    raises(TypeError, "axis", v.axis, 1.0, 3)


# ---------------------------------------------------------------- every public argument

X4 = np.ones((1, 2, 6, 6), F32)
W4 = np.ones((2, 2, 3, 3), F32)
X3, W3 = X4[:, :, 0], W4[:, :, 0]  # conv1d: [1, 2, 6], [2, 2, 3]
WL = np.ones((4, 6), F32)  # linear on X3
LOGITS, LABELS = np.ones((4, 3), F32), np.array([0, 1, 2, 1])
BN = (np.ones((2, 3, 4), F32), np.zeros(3), np.ones(3))
RNN_W = (np.ones((8, 3), F32), np.ones((8, 2), F32))  # LSTM: 4 gates x hidden 2, input 3


def lstm(**kwargs):
    return ops.lstm(np.ones((4, 1, 3), F32), None, None, *RNN_W, **kwargs)


def set_threads(**kwargs):
    fastdl.set_num_threads(kwargs.pop("n", fastdl.get_num_threads()), **kwargs)


# (argument, a call taking it as a keyword, a value the call accepts)
FLAGS = [
    ("ceil_mode", lambda **k: ops.max_pool2d(X4, 2, **k), False),
    ("ceil_mode", lambda **k: ops.avg_pool1d(X4[0], 2, **k), False),
    ("return_indices", lambda **k: ops.max_pool3d(X4, 2, **k), True),
    ("count_include_pad", lambda **k: ops.avg_pool2d(X4, 2, padding=1, **k), False),
    ("training", lambda **k: ops.dropout(X4, **k), False),
    ("training", lambda **k: ops.batch_norm(*BN, **k), True),
    ("from_logits", lambda **k: keras_losses.binary_crossentropy(LOGITS, LOGITS, **k), True),
    ("from_logits", lambda **k: keras_losses.categorical_crossentropy(LOGITS, LOGITS, **k),
     True),
    ("from_logits", lambda **k: keras_losses.sparse_categorical_crossentropy(LABELS, LOGITS,
                                                                             **k), True),
    ("batch_first", lstm, True),
    ("bidirectional", lambda **k: ops.LSTMPlan(*RNN_W, **k), False),
    ("big_cores_only", set_threads, False),
]

INTS = [
    ("kernel_size", lambda **k: ops.max_pool2d(X4, **k), 2),
    ("stride", lambda **k: ops.avg_pool2d(X4, 2, **k), 1),
    ("padding", lambda **k: ops.max_pool1d(X4[0], 2, **k), 1),
    ("dilation", lambda **k: ops.max_pool2d(X4, 2, **k), 2),
    ("divisor_override", lambda **k: ops.avg_pool3d(X4, 2, **k), 3),
    ("stride", lambda **k: ops.conv2d(X4, W4, **k), 2),
    ("padding", lambda **k: ops.conv2d(X4, W4, **k), 1),
    ("dilation", lambda **k: ops.conv2d(X4, W4, **k), 2),
    ("groups", lambda **k: ops.conv2d(X4, W4[:, :1], **k), 2),
    ("stride", lambda **k: ops.conv1d(X3, W3, **k), 2),
    ("padding", lambda **k: ops.conv1d(X3, W3, **k), 1),
    ("dilation", lambda **k: ops.conv3d(X4[:, :, None], W4[:, :, None], **k), 1),
    ("stride", lambda **k: ops.conv_transpose2d(X4, W4, **k), 2),
    ("output_padding", lambda **k: ops.conv_transpose2d(X4, W4, stride=2, **k), 1),
    ("groups", lambda **k: ops.conv_transpose2d(X4, W4, **k), 1),
    ("kernel_size", lambda **k: ops.im2col(X4, **k), 3),
    ("output_size", lambda **k: ops.col2im(np.ones((1, 2, 36), F32), kernel_size=1, **k), 6),
    ("axis", lambda **k: ops.softmax(X4, **k), 1),
    ("axis", lambda **k: ops.log_softmax(X4, **k), -1),
    ("axis", lambda **k: keras_losses.categorical_crossentropy(LOGITS, LOGITS, **k), 1),
    ("ignore_index", lambda **k: ops.cross_entropy(LOGITS, LABELS, **k), 1),
    ("ignore_index", lambda **k: ops.nll_loss(LOGITS, LABELS, **k), 0),
    ("seed", lambda **k: ops.dropout(X4, **k), 1),
    ("num_layers", lambda **k: ops.LSTMPlan(*RNN_W, **k), 1),
    ("n", set_threads, 1),
]

REALS = [
    ("negative_slope", lambda **k: ops.leaky_relu(X4, **k), 0.1),
    ("negative_slope", lambda **k: ops.conv2d(X4, W4, activation="leaky_relu", **k), 0),
    ("negative_slope", lambda **k: ops.linear(X3, WL, activation="leaky_relu", **k), 0.2),
    ("alpha", lambda **k: ops.elu(X4, **k), 2),
    ("temperature", lambda **k: ops.softmax(X4, **k), 2.0),
    ("p", lambda **k: ops.dropout(X4, **k), 0),
    ("momentum", lambda **k: ops.batch_norm(*BN, training=True, **k), 1),
    ("eps", lambda **k: ops.batch_norm(*BN, **k), 1),
    ("eps", lambda **k: ops.fold_batch_norm(W4, None, BN[1][:2], BN[2][:2], **k), 1e-3),
    ("label_smoothing", lambda **k: ops.cross_entropy(LOGITS, LABELS, **k), 0),
]


def _ids(cases):
    return [f"{name}-{i}" for i, (name, _, _) in enumerate(cases)]


@pytest.mark.parametrize("name,call,good", FLAGS, ids=_ids(FLAGS))
def test_flags_refuse_ints(name, call, good):
    call(**{name: good})
    call(**{name: np.bool_(good)})
    msg = raises(TypeError, name, call, **{name: 1})
    assert "expected a bool" in msg and "int" in msg


@pytest.mark.parametrize("name,call,good", INTS, ids=_ids(INTS))
def test_int_arguments_refuse_bools(name, call, good):
    call(**{name: good})
    raises(TypeError, name, call, **{name: True})
    raises(TypeError, name, call, **{name: np.True_})


@pytest.mark.parametrize("name,call,good", REALS, ids=_ids(REALS))
def test_real_arguments_refuse_bools(name, call, good):
    call(**{name: good})
    msg = raises(TypeError, name, call, **{name: True})
    assert "expected a real number" in msg and "bool" in msg


def test_conv_transpose_output_size_refuses_bools():
    x, w = np.ones((1, 1, 1), F32), np.ones((1, 1, 1), F32)
    assert ops.ConvTranspose1dPlan(w)(x, output_size=1).shape == (1, 1, 1)
    raises(TypeError, "output_size", ops.ConvTranspose1dPlan(w), x, output_size=True)
