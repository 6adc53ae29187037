"""fastdl across processes: multiprocessing pools started by fork (after this process's
thread pool ran) and by spawn, a model sent to the workers by pickle, predicting there what
it predicts here, bit for bit. (os.fork() itself: tests/test_env_selection.py.)"""
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import fastdl
from fastdl import layers, models, ops

_worker_model = None


def _init_worker(model, threads):
    global _worker_model
    fastdl.set_num_threads(threads)
    _worker_model = model


def _predict_in_worker(x):
    return _worker_model.predict(x, verbose=0)


def _conv_in_worker(args):
    x, w = args
    return ops.conv2d(x, w, padding=1, activation="relu")


def _model():
    fastdl.utils.set_random_seed(3)
    model = models.Sequential([
        layers.Input((16, 16, 3)), layers.Conv2D(16, 3, activation="relu"),
        layers.BatchNormalization(), layers.MaxPooling2D(), layers.Conv2D(8, 3),
        layers.GlobalAveragePooling2D(), layers.Dense(4, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.standard_normal((64, 16, 16, 3)).astype(np.float32),
              rng.integers(0, 4, 64), epochs=1, verbose=0)  # non-trivial BN statistics
    return model


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_a_model_predicts_the_same_in_a_worker_pool(threads, method):
    threads(2)
    model = _model()
    rng = np.random.default_rng(1)
    chunks = [rng.standard_normal((5 + 3 * i, 16, 16, 3)).astype(np.float32) for i in range(4)]
    want = [model.predict(c, verbose=0) for c in chunks]  # the pool has run before the fork
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(2, mp_context=context, initializer=_init_worker,
                             initargs=(model, 1)) as pool:
        got = list(pool.map(_predict_in_worker, chunks, timeout=240))
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_forked_pool_workers_and_the_parent_keep_computing(threads):
    threads(2)
    rng = np.random.default_rng(2)
    jobs = [(rng.standard_normal((2, 8, 20, 20)).astype(np.float32),
             rng.standard_normal((16, 8, 3, 3)).astype(np.float32)) for _ in range(6)]
    want = [_conv_in_worker(job) for job in jobs]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        got = pool.map(_conv_in_worker, jobs)
    again = [_conv_in_worker(job) for job in jobs]  # the parent's pool after the fork
    for g, a, w in zip(got, again, want):
        np.testing.assert_array_equal(g, w)
        np.testing.assert_array_equal(a, w)
