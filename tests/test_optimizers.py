"""Optimizers: every update kernel (fastdl._optimizers, the SIMD kernels of the active ISA;
the Numba twin) against the NumPy reference with every option; the optimizer classes
against closed-form updates (schedules, clipping, weight decay, slots per weight);
configs; bad arguments. Every ISA variant against double precision: the C++ test
kernels/tests/optimizer_test.cc.
Keras 3 as the oracle of the whole optimizers: tests/test_optimizers_keras.py."""
from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from fastdl import _reference as reference
from fastdl import optimizers
from fastdl.optimizers import schedules
from native_variants import backend_module


def rand(n, seed, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(n) * scale).astype(np.float32)


def kernels_of(label):
    name = {"native": "fastdl._native", "numba": "fastdl._numba"}[label]
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.skip(f"{label} backend unavailable: {exc}")


# Each: (name, slot count, extra args after the slots), run for 3 steps.
UPDATES = [
    ("sgd_update", 0, (0.1, 0.0, False)),
    ("sgd_update", 1, (0.1, 0.9, False)),
    ("sgd_update", 1, (0.1, 0.9, True)),
    ("rmsprop_update", 1, (None, None, 0.01, 0.9, 0.0, 1e-7)),
    ("rmsprop_update", 3, (0.01, 0.9, 0.5, 1e-7)),  # momentum and centered
    ("adam_update", 2, (None, 0.01, 0.9, 0.999, 1e-7, 0.0)),
    ("adam_update", 3, (0.01, 0.9, 0.999, 1e-7, 0.004)),  # amsgrad and AdamW decay
    ("adagrad_update", 1, (0.05, 1e-7)),
]


def call_update(module, name, slots, extra, w, g, step):
    fn = getattr(module, name)
    if name == "sgd_update":
        return fn(w, g, slots[0] if slots else None, *extra)
    if name == "rmsprop_update":
        if len(slots) == 1:
            return fn(w, g, slots[0], None, None, *extra[2:])
        return fn(w, g, slots[0], slots[1], slots[2], *extra)
    if name == "adam_update":
        if len(slots) == 2:
            lr, b1, b2, eps, wd = extra[1:]
            return fn(w, g, slots[0], slots[1], None, lr, b1, b2, eps, step, wd)
        lr, b1, b2, eps, wd = extra
        return fn(w, g, slots[0], slots[1], slots[2], lr, b1, b2, eps, step, wd)
    return fn(w, g, slots[0], *extra)


@pytest.mark.parametrize("label", ["native", "numba"])
@pytest.mark.parametrize("name,nslots,extra", UPDATES)
@pytest.mark.parametrize("n", [0, 1, 5, 1000])
def test_update_kernels_match_reference(label, name, nslots, extra, n):
    module = kernels_of(label)
    state = {}
    for who, impl in (("ref", reference), ("got", module)):
        w = rand(n, 1)
        # Slots of a running optimizer: positive squared averages; rmsprop's centered
        # mean (its third slot) small enough that rms - mean^2 stays positive.
        slots = [0.1 + np.abs(rand(n, 10 + i)) * 0.1 for i in range(nslots)]
        if name == "rmsprop_update" and nslots == 3:
            slots[2] = rand(n, 13) * 0.01
        for step in (1, 2, 3):
            call_update(impl, name, slots, extra, w, rand(n, 2 + step), step)
        state[who] = [w] + slots
    # float32 arithmetic (the kernels, as Keras) vs float64: a few ulps of the operands
    for got, want in zip(state["got"], state["ref"]):
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("label", ["native", "numba"])
def test_norm_and_clip_kernels_match_reference(label):
    module = kernels_of(label)
    g = rand(1001, 3, 4.0)
    assert math.isclose(module.squared_norm(g), reference.squared_norm(g), rel_tol=1e-12)
    a, b = g.copy(), g.copy()
    module.scale_clip(a, 0.5, 1.0)
    reference.scale_clip(b, 0.5, 1.0)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a).max() == 1.0


class Weight:
    def __init__(self, value, name="w"):
        self.value, self.name = np.array(value, np.float32), name


@pytest.fixture(params=["native", "numba", "numpy"])
def backend(request, monkeypatch):
    from fastdl.optimizers import base, rules
    module = backend_module(request.param)
    monkeypatch.setattr(base, "kernels", module)
    monkeypatch.setattr(rules, "kernels", module)
    return request.param


def test_sgd_momentum_and_schedule_closed_form(backend):
    w = Weight([1.0, -2.0])
    lr = schedules.PiecewiseConstantDecay([0], [0.1, 0.01])
    opt = optimizers.SGD(learning_rate=lr, momentum=0.5)
    g = np.array([1.0, 1.0])
    opt.apply_gradients([(g, w)])  # step 0: lr 0.1, v = -0.1
    opt.apply_gradients([(g, w)])  # step 1: lr 0.01, v = -0.05 - 0.01
    np.testing.assert_allclose(w.value, np.array([1.0, -2.0]) - 0.1 - 0.06, rtol=1e-6)
    assert opt.iterations == 2 and opt.learning_rate == 0.01


def test_clipping_in_keras_order(backend):
    g = np.array([3.0, 4.0], np.float32)  # norm 5
    for opt, want in ((optimizers.SGD(1.0, clipnorm=1.0), [-0.6, -0.8]),
                      (optimizers.SGD(1.0, clipvalue=3.5), [-3.0, -3.5]),
                      (optimizers.SGD(1.0, global_clipnorm=2.5), [-1.5, -2.0])):
        w = Weight([0.0, 0.0])
        opt.apply_gradients([(g, w)])
        np.testing.assert_allclose(w.value, want, rtol=1e-6)
    np.testing.assert_array_equal(g, [3.0, 4.0])  # the caller's gradient is untouched
    a, b = Weight([0.0]), Weight([0.0])  # the global norm spans every gradient
    optimizers.SGD(1.0, global_clipnorm=1.0).apply_gradients([(np.array([3.0]), a),
                                                              (np.array([4.0]), b)])
    np.testing.assert_allclose([a.value[0], b.value[0]], [-0.6, -0.8], rtol=1e-6)


def test_weight_decay_is_decoupled(backend):
    w = Weight([2.0])
    optimizers.SGD(0.1, weight_decay=0.5).apply_gradients([(np.zeros(1), w)])
    np.testing.assert_allclose(w.value, [2.0 * (1 - 0.05)], rtol=1e-6)
    w = Weight([2.0])
    optimizers.AdamW(0.1, weight_decay=0.5).apply_gradients([(np.zeros(1), w)])
    np.testing.assert_allclose(w.value, [2.0 * (1 - 0.05)], rtol=1e-6)


def test_slots_are_kept_per_weight(backend):
    a, b = Weight([0.0]), Weight([0.0])
    opt = optimizers.Adam(0.1)
    opt.apply_gradients([(np.ones(1), a)])
    opt.apply_gradients([(np.ones(1), a), (-np.ones(1), b)])
    # b's first update: fresh moments, but the bias correction of the optimizer's step 2
    # (Keras counts steps per optimizer, not per weight).
    m, v = -0.1, 0.001
    alpha = 0.1 * math.sqrt(1 - 0.999 ** 2) / (1 - 0.9 ** 2)
    np.testing.assert_allclose(b.value, [-alpha * m / (math.sqrt(v) + 1e-7)], rtol=1e-5)
    assert len(opt.variables()) == 1 + 2 * 2


@pytest.mark.parametrize("schedule,steps,want", [
    (schedules.ExponentialDecay(1.0, 10, 0.5), [0, 10, 15], [1.0, 0.5, 0.5 ** 1.5]),
    (schedules.ExponentialDecay(1.0, 10, 0.5, staircase=True), [15], [0.5]),
    (schedules.InverseTimeDecay(1.0, 10, 1.0), [0, 10], [1.0, 0.5]),
    (schedules.PiecewiseConstantDecay([5, 10], [1.0, 0.5, 0.1]), [5, 6, 11], [1.0, 0.5, 0.1]),
    (schedules.CosineDecay(1.0, 10, alpha=0.1), [0, 5, 10, 20], [1.0, 0.55, 0.1, 0.1]),
    (schedules.CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=5), [0, 2, 5, 15],
     [0.0, 0.4, 1.0, 0.0]),
])
def test_schedules_closed_form(schedule, steps, want):
    np.testing.assert_allclose([schedule(s) for s in steps], want, rtol=1e-9, atol=1e-12)
    again = schedules.deserialize(schedules.serialize(schedule))
    assert [again(s) for s in steps] == [schedule(s) for s in steps]


@pytest.mark.parametrize("cls", [optimizers.SGD, optimizers.RMSprop, optimizers.Adam,
                                 optimizers.AdamW, optimizers.Adagrad])
def test_config_round_trip(cls):
    opt = cls(learning_rate=schedules.ExponentialDecay(0.1, 5, 0.9), clipnorm=2.0)
    again = optimizers.deserialize(optimizers.serialize(opt))
    assert type(again) is cls and again.get_config() == opt.get_config()
    assert optimizers.get(cls.__name__.lower()).__class__ is cls


@pytest.mark.parametrize("call,match", [
    (lambda: optimizers.SGD(momentum=1.5), "momentum"),
    (lambda: optimizers.SGD(learning_rate="fast"), "learning_rate"),
    (lambda: optimizers.Adam(beta_1=1.0), "beta_1"),
    (lambda: optimizers.Adam(epsilon=-1), "epsilon"),
    (lambda: optimizers.SGD(clipnorm=1, global_clipnorm=1), "clipnorm"),
    (lambda: optimizers.SGD(clipvalue=0), "clipvalue"),
    (lambda: optimizers.AdamW(weight_decay=None), "weight_decay"),
    (lambda: optimizers.get("adamax2"), "optimizer"),
    (lambda: optimizers.get(3), "optimizer"),
    (lambda: optimizers.SGD().apply_gradients([(np.ones(2), Weight([0.0]))]), "grads"),
    (lambda: optimizers.SGD().apply_gradients([(np.ones(1), object())]), "weights"),
    (lambda: schedules.ExponentialDecay(1.0, 0, 0.5), "decay_steps"),
    (lambda: schedules.PiecewiseConstantDecay([1, 2], [1.0]), "values"),
])
def test_bad_arguments_raise_naming_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
