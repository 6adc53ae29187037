"""The optimizers against Keras 3 (torch backend): the same weights and gradients through
four updates of each optimizer and option, and the schedules step by step."""
from __future__ import annotations

import numpy as np
import pytest

from keras_oracle import keras  # skips this module without keras
from fastdl import optimizers
from fastdl.optimizers import schedules


class Weight:
    def __init__(self, value):
        self.value, self.name = np.array(value, np.float32), "w"


CASES = [
    ("SGD", {}), ("SGD", {"momentum": 0.9}), ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("RMSprop", {}), ("RMSprop", {"momentum": 0.5, "centered": True}),
    ("Adam", {}), ("Adam", {"amsgrad": True}), ("AdamW", {"weight_decay": 0.1}),
    ("Adagrad", {}), ("SGD", {"clipnorm": 0.5}), ("Adam", {"clipvalue": 0.2}),
    ("SGD", {"global_clipnorm": 0.5}), ("SGD", {"weight_decay": 0.05}),
]


@pytest.mark.parametrize("cls,kwargs", CASES, ids=[f"{c}-{'-'.join(k) or 'default'}"
                                                   for c, k in CASES])
def test_four_updates_match_keras(cls, kwargs):
    rng = np.random.default_rng(0)
    start = [rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(5).astype(
        np.float32)]
    grads = [[rng.standard_normal(s.shape).astype(np.float32) for s in start]
             for _ in range(4)]
    ours = getattr(optimizers, cls)(learning_rate=0.05, **kwargs)
    theirs = getattr(keras.optimizers, cls)(learning_rate=0.05, **kwargs)
    weights = [Weight(s) for s in start]
    variables = [keras.Variable(s) for s in start]
    for step in grads:
        ours.apply_gradients(zip(step, weights))
        theirs.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in step], variables))
    for w, var in zip(weights, variables):
        np.testing.assert_allclose(w.value, keras.ops.convert_to_numpy(var), rtol=2e-5,
                                   atol=2e-6)
    assert ours.iterations == int(keras.ops.convert_to_numpy(theirs.iterations))


@pytest.mark.parametrize("name,args", [
    ("ExponentialDecay", (0.1, 7, 0.5)), ("InverseTimeDecay", (0.1, 7, 0.5)),
    ("PiecewiseConstantDecay", ([3, 9], [0.1, 0.05, 0.01])),
    ("CosineDecay", (0.1, 12)),
])
def test_schedules_match_keras(name, args):
    ours = getattr(schedules, name)(*args)
    theirs = getattr(keras.optimizers.schedules, name)(*args)
    for step in range(0, 20):
        assert ours(step) == pytest.approx(float(theirs(step)), rel=1e-5, abs=1e-8)  # f32
    warm = schedules.CosineDecay(0.0, 10, warmup_target=0.1, warmup_steps=4)
    keras_warm = keras.optimizers.schedules.CosineDecay(0.0, 10, warmup_target=0.1,
                                                        warmup_steps=4)
    for step in range(0, 20):
        assert warm(step) == pytest.approx(float(keras_warm(step)), rel=1e-6, abs=1e-9)
