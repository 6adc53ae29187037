"""fastdl.dask.predict: a model over a dask array on a dask.distributed LocalCluster (also
with a worker killed mid-run) and on dask's local scheduler; models pickle small.

The Dask tests skip where dask / distributed are not installed (e.g. the ARM qemu stage).

model.predict is not batch-invariant bit for bit: a Dense kernel's summation order can
depend on how many samples one call holds, so predicting chunks of 25 and predicting the
whole array (in batches of 32) may differ in the last bits. Each Dask task runs
model.predict on its chunk, so the results are compared exactly with the per-chunk local
predictions, with the whole-array prediction within float32 rounding, and exactly with it
where the chunks are multiples of batch_size (the same kernel calls).
"""
import os
import pickle
import sys

import numpy as np
import pytest

import fastdl
import fastdl.dask
from fastdl import layers, models

TIMEOUT = 120  # seconds for one compute on the cluster: a hang fails instead of blocking


def _model(seed=0):
    fastdl.utils.set_random_seed(seed)
    return models.Sequential([layers.Input((8, 8, 3)), layers.Conv2D(4, 3, activation="relu"),
                              layers.Flatten(), layers.Dense(3)])


def _images(n=100, seed=1):
    return np.random.default_rng(seed).random((n, 8, 8, 3), dtype=np.float32)


def _per_chunk(model, x, chunks, batch_size=32):
    """model.predict on each chunk (lengths `chunks`) separately, concatenated."""
    bounds = np.cumsum((0,) + tuple(chunks))
    return np.concatenate([model.predict(x[a:b], batch_size=batch_size, verbose=0)
                           for a, b in zip(bounds[:-1], bounds[1:])])


@pytest.fixture
def client():
    """A Client on a fresh LocalCluster of 2 worker processes, closed (workers and all)
    when the test ends, whether it passed or not."""
    pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


# ---------------------------------------------------------------------- pickling


def test_model_pickles_small_and_predicts_the_same():
    """Config + weights only: the pickle of a model whose plans are built (weights packed
    for the kernels) is the size of its weights plus a few kB, as before the plans
    were built, and the unpickled model predicts bit for bit the same."""
    fastdl.utils.set_random_seed(0)
    inputs = layers.Input((16, 16, 8))
    hidden = layers.Conv2D(64, 3, padding="same", activation="relu")(inputs)
    outputs = layers.Dense(10)(layers.Flatten()(layers.BatchNormalization()(hidden)))
    for model in (models.Model(inputs, outputs), _model()):
        x = np.random.default_rng(2).random((5,) + model.input_shape[1:], dtype=np.float32)
        weight_bytes = sum(w.value.nbytes for w in model.weights)
        fresh = len(pickle.dumps(model))
        expected = model.predict(x, verbose=0)        # builds and packs the plans
        data = pickle.dumps(model)
        assert len(data) == fresh
        assert weight_bytes < len(data) < weight_bytes + 8192
        assert np.array_equal(pickle.loads(data).predict(x, verbose=0), expected)


# ---------------------------------------------------------------------- a cluster


def test_local_cluster_matches_local_predict(client):
    import dask.array as da
    model, x = _model(), _images()
    whole = model.predict(x, verbose=0)

    y = fastdl.dask.predict(model, da.from_array(x, chunks=(25, 8, 8, 3)))
    assert isinstance(y, da.Array) and y.shape == (100, 3) and y.chunks[0] == (25,) * 4
    got = client.compute(y).result(timeout=TIMEOUT)
    assert got.dtype == np.float32
    assert np.array_equal(got, _per_chunk(model, x, (25,) * 4))
    np.testing.assert_allclose(got, whole, rtol=1e-6, atol=1e-6)

    # Chunks of whole batches: the same kernel calls as model.predict(whole).
    x = _images(128)
    y = fastdl.dask.predict(model, da.from_array(x, chunks=32))
    assert np.array_equal(client.compute(y).result(timeout=TIMEOUT),
                          model.predict(x, verbose=0))

    # fastdl's threads on each worker = its nthreads (1 here).
    assert client.run(fastdl.get_num_threads) == client.nthreads()


def test_the_model_is_one_task_of_the_graph(client):
    """The model enters the graph once (not once per task), and a worker holds at most
    one copy of it."""
    import dask.array as da
    fastdl.utils.set_random_seed(0)
    model = models.Sequential([layers.Input((8, 8, 3)), layers.Flatten(), layers.Dense(64)])
    weight_bytes = sum(w.value.nbytes for w in model.weights)          # 49,408
    y = fastdl.dask.predict(model, da.zeros((80, 8, 8, 3), chunks=10))  # 8 tasks
    assert weight_bytes < len(pickle.dumps(dict(y.__dask_graph__()))) < 1.5 * weight_bytes
    client.compute(y).result(timeout=TIMEOUT)

    def held_models(dask_worker):
        return sum(isinstance(value, models.Model) for value in dask_worker.data.values())
    assert max(client.run(held_models).values()) <= 1


def test_num_threads_is_set_on_the_workers(client):
    import dask.array as da
    model, x = _model(), _images(40)
    y = fastdl.dask.predict(model, da.from_array(x, chunks=10), num_threads=2)
    assert np.array_equal(client.compute(y).result(timeout=TIMEOUT), _per_chunk(model, x, [10] * 4))
    assert set(client.run(fastdl.get_num_threads).values()) == {2}


def test_killed_worker_is_retried(client, tmp_path):
    """The first predict task to run on a worker kills that worker's process (os._exit,
    from a Lambda layer inside the model): Dask reruns what was lost on the other worker
    or on the one the nanny restarts, and the result is complete and exact."""
    import dask.array as da
    parent, marker = os.getpid(), str(tmp_path / "killed")

    def die_once(x):
        if os.getpid() != parent and len(x) and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return x

    fastdl.utils.set_random_seed(0)
    model = models.Sequential([layers.Input((8, 8, 3)),
                               layers.Lambda(die_once, output_shape=(8, 8, 3)),
                               layers.Conv2D(4, 3), layers.Flatten(), layers.Dense(3)])
    x = _images()
    y = fastdl.dask.predict(model, da.from_array(x, chunks=(25, 8, 8, 3)))
    got = client.compute(y).result(timeout=TIMEOUT)
    assert os.path.exists(marker)  # a worker really died
    assert np.array_equal(got, _per_chunk(model, x, (25,) * 4))


# ---------------------------------------------------------------------- local scheduler


def _local(y):
    return y.compute(scheduler="threads")


def test_local_scheduler_without_a_client():
    da = pytest.importorskip("dask.array")
    model, x = _model(), _images()
    y = fastdl.dask.predict(model, da.from_array(x, chunks=(25, 8, 8, 3)), batch_size=10)
    assert np.array_equal(_local(y), _per_chunk(model, x, (25,) * 4, batch_size=10))
    empty = fastdl.dask.predict(model, da.zeros((0, 8, 8, 3), chunks=1))
    assert _local(empty).shape == (0, 3)


def test_other_axes_are_rechunked_and_dtypes_converted():
    da = pytest.importorskip("dask.array")
    model, x = _model(), _images()
    y = fastdl.dask.predict(model, da.from_array(x.astype(np.float64), chunks=(50, 3, 5, 2)))
    assert y.chunks == ((50, 50), (3,))
    assert np.array_equal(_local(y), _per_chunk(model, x.astype(np.float64), (50, 50)))


def test_sequential_without_an_input_shape_is_built_from_the_array():
    da = pytest.importorskip("dask.array")
    x = _images(30)
    model = models.Sequential([layers.Conv2D(2, 3), layers.GlobalAveragePooling2D()])
    y = fastdl.dask.predict(model, da.from_array(x, chunks=10))
    assert y.shape == (30, 2)
    assert np.array_equal(_local(y), _per_chunk(model, x, (10, 10, 10)))


def test_several_inputs_are_aligned_along_the_batch():
    da = pytest.importorskip("dask.array")
    fastdl.utils.set_random_seed(3)
    a, b = layers.Input((8, 8, 3)), layers.Input((5,))
    features = layers.Flatten()(layers.Conv2D(2, 3)(a))
    model = models.Model([a, b], layers.Dense(4)(layers.Concatenate()([features, b])))
    xa, xb = _images(60), np.random.default_rng(4).random((60, 5), dtype=np.float32)
    y = fastdl.dask.predict(model, [da.from_array(xa, chunks=(20, 8, 8, 3)),
                                    da.from_array(xb, chunks=(30, 5))])
    assert y.chunks[0] == (20, 10, 10, 20)  # the common refinement of both chunkings
    bounds = np.cumsum((0,) + y.chunks[0])
    expected = np.concatenate([model.predict([xa[i:j], xb[i:j]], verbose=0)
                               for i, j in zip(bounds[:-1], bounds[1:])])
    assert np.array_equal(_local(y), expected)


# ---------------------------------------------------------------------- bad input


def _bad_calls(da):
    model, x = _model(), _images(8)
    dx = da.from_array(x, chunks=4)
    a, b = layers.Input((3,)), layers.Input((2,))
    two_in = models.Model([a, b], layers.Dense(1)(layers.Concatenate()([a, b])))
    two_out = models.Model(a, [layers.Dense(1)(a), layers.Dense(2)(a)])
    return [
        (TypeError, "model:", lambda: fastdl.dask.predict(layers.Dense(3), dx)),
        (TypeError, "model:", lambda: fastdl.dask.predict(None, dx)),
        (NotImplementedError, "model:", lambda: fastdl.dask.predict(
            two_out, da.zeros((4, 3), chunks=2))),
        (TypeError, "array:", lambda: fastdl.dask.predict(model, x)),
        (TypeError, "array:", lambda: fastdl.dask.predict(model, [dx])),
        (TypeError, "array:", lambda: fastdl.dask.predict(model, dx.astype(np.complex64))),
        (ValueError, "array:", lambda: fastdl.dask.predict(model, da.zeros((), chunks=()))),
        (ValueError, r"array: .*\(None, 8, 8, 3\), got \(8, 8, 8\)",
         lambda: fastdl.dask.predict(model, dx[..., 0])),
        (ValueError, r"array: .*got \(8, 8, 7, 3\)", lambda: fastdl.dask.predict(
            model, da.zeros((8, 8, 7, 3), chunks=4))),
        (ValueError, "array: .*unknown", lambda: fastdl.dask.predict(
            model, dx[:, da.from_array(np.ones(8, bool), chunks=4)])),
        (TypeError, "array:", lambda: fastdl.dask.predict(two_in, da.zeros((4, 3), chunks=2))),
        (TypeError, r"array\[1\]:", lambda: fastdl.dask.predict(
            two_in, [da.zeros((4, 3), chunks=2), np.zeros((4, 2))])),
        (ValueError, r"array\[1\]:", lambda: fastdl.dask.predict(
            two_in, [da.zeros((4, 3), chunks=2), da.zeros((4, 3), chunks=2)])),
        (ValueError, "array: .*batch sizes", lambda: fastdl.dask.predict(
            two_in, [da.zeros((4, 3), chunks=2), da.zeros((5, 2), chunks=2)])),
        (ValueError, "array: .*does not take", lambda: fastdl.dask.predict(
            models.Sequential([layers.Conv2D(2, 3)]), da.zeros((4, 3), chunks=2))),
        (ValueError, "batch_size:", lambda: fastdl.dask.predict(model, dx, batch_size=0)),
        (TypeError, "batch_size:", lambda: fastdl.dask.predict(model, dx, batch_size=2.5)),
        (ValueError, "num_threads:", lambda: fastdl.dask.predict(model, dx, num_threads=0)),
    ]


def test_bad_arguments_name_the_argument():
    da = pytest.importorskip("dask.array")
    for error, message, call in _bad_calls(da):
        with pytest.raises(error, match=message):
            call()


def test_without_dask_the_error_names_the_extra(monkeypatch):
    """fastdl.dask imports without dask; predict then says which extra to install."""
    for name in [n for n in sys.modules if n == "dask" or n.startswith("dask.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "dask", None)  # `import dask` raises ImportError
    with pytest.raises(ImportError, match=r"fastdl\[dask\]"):
        fastdl.dask.predict(_model(), _images(4))
