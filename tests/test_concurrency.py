"""Plans and models shared between Python threads: 8 threads calling the same plan (every
plan type) or model at once get the serial results, bit for bit, also while another thread
keeps changing the thread count. The kernels run without the GIL, so these calls really
overlap (on the pool, or serially beside another thread's job)."""
import threading

import numpy as np
import pytest

import fastdl
from fastdl import layers, models, ops

from results import leaves

CALLERS = 8


def _rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _plans(rng):
    """(name, callable, inputs): one of every plan type, inputs of several sizes each."""
    cases = []
    for dims, size in ((1, (60,)), (2, (14, 13)), (3, (6, 7, 5))):
        conv = getattr(ops, f"Conv{dims}dPlan")(_rand(rng, 16, 8, *(3,) * dims), _rand(rng, 16),
                                                padding=1, activation="relu")
        transpose = getattr(ops, f"ConvTranspose{dims}dPlan")(_rand(rng, 8, 6, *(3,) * dims),
                                                              stride=2)
        xs = [_rand(rng, 2 + i, 8, *(s + i for s in size)) for i in range(3)]
        cases += [(f"Conv{dims}dPlan", conv, xs), (f"ConvTranspose{dims}dPlan", transpose, xs)]
    cases.append(("LinearPlan", ops.LinearPlan(_rand(rng, 300, 200), _rand(rng, 300)),
                  [_rand(rng, 40 + 7 * i, 200) for i in range(3)]))
    cases.append(("LSTMPlan", ops.LSTMPlan(_rand(rng, 128, 20) * 0.3, _rand(rng, 128, 32) * 0.3),
                  [_rand(rng, 12 + i, 6, 20) for i in range(3)]))
    cases.append(("GRUPlan", ops.GRUPlan(_rand(rng, 96, 20) * 0.3, _rand(rng, 96, 32) * 0.3),
                  [_rand(rng, 12 + i, 6, 20) for i in range(3)]))
    pool_x = _rand(rng, 4, 16, 30, 30)
    for kind in ("max", "avg"):
        cases.append((f"PoolPlan {kind}", ops.PoolPlan(kind, pool_x.shape, 3, 2, 1), [pool_x]))
    model = models.Sequential([layers.Input((12, 12, 3)), layers.Conv2D(8, 3, activation="relu"),
                               layers.BatchNormalization(), layers.MaxPooling2D(),
                               layers.Flatten(), layers.Dense(5, activation="softmax")])
    cases.append(("model.predict", lambda x: model.predict(x, verbose=0),
                  [_rand(rng, 9 + 20 * i, 12, 12, 3) for i in range(3)]))
    return cases


def _run_together(work):
    """Runs work(k) on CALLERS threads at once; returns what they raised."""
    errors = []
    start = threading.Barrier(CALLERS)

    def caller(k):
        try:
            start.wait()
            work(k)
        except BaseException as exc:  # reported by the test
            errors.append(f"caller {k}: {exc!r}")

    callers = [threading.Thread(target=caller, args=(k,)) for k in range(CALLERS)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in callers), "a caller hangs (deadlock)"
    return errors


def _results(call):
    return [np.asarray(a) for a in leaves(call())]


@pytest.mark.parametrize("toggle_threads", [False, True],
                         ids=["fixed thread count", "thread count changing"])
def test_eight_threads_share_every_plan_type(threads, toggle_threads):
    threads(2)
    cases = _plans(np.random.default_rng(0))
    want = {(name, i): _results(lambda: call(x)) for name, call, xs in cases
            for i, x in enumerate(xs)}
    mismatches = []
    stop = threading.Event()

    def toggle():
        n = 0
        while not stop.is_set():
            fastdl.set_num_threads(1 + n % 3)
            n += 1

    def work(k):
        for rep in range(4):
            for name, call, xs in cases:
                i = (k + rep) % len(xs)
                got = _results(lambda: call(xs[i]))
                if not all(np.array_equal(a, b) for a, b in zip(got, want[name, i])):
                    mismatches.append((name, k, rep, i))

    toggler = threading.Thread(target=toggle)
    if toggle_threads:
        toggler.start()
    try:
        errors = _run_together(work)
    finally:
        stop.set()
        if toggle_threads:
            toggler.join()
    assert errors == [] and mismatches == []
