"""Batch inference on Dask: a fastdl model applied chunk by chunk to a dask array.

    import dask.array as da
    import fastdl.dask
    from distributed import Client

    client = Client()                        # or Client("tcp://scheduler:8786"), or none
    x = da.from_zarr("images.zarr")          # (n, 32, 32, 3), chunked along the batch axis
    y = fastdl.dask.predict(model, x)        # a dask array (n, 10): nothing computed yet
    y.compute()                              # or y.to_zarr(...), y.mean(axis=0).compute()...

Dask is an optional extra (`pip install "fastdl[dask]"`): this module imports without
it, and `predict` raises an ImportError naming the extra when dask is missing.
"""
import os
import uuid

import numpy as np

from fastdl import _threads
from fastdl import _validate as v

_EXTRA = 'fastdl.dask needs dask: pip install "fastdl[dask]"'


def predict(model, array, batch_size=32, num_threads=None):
    """model.predict(array) as a dask array: one task per chunk of the batch axis.

    model: a fastdl model (fastdl.models.Sequential or Model) with one output; a model
        with several inputs takes a list or tuple of dask arrays, one per input.
    array: a dask.array.Array of shape (batch,) + the model's input shape, any real dtype
        (converted to float32 in each task as model.predict does). Chunks along the batch
        axis become the tasks; the other axes are rechunked to one chunk (a model needs
        whole samples). Several inputs are aligned to common batch chunks.
    batch_size: what each task passes to model.predict (samples per kernel call).
    num_threads: fastdl's kernel threads on each dask.distributed worker. Default: the
        worker's own nthreads (its share of the machine's cores, e.g. 1 per worker for
        LocalCluster(n_workers=2) on 2 cores), capped at the CPUs the worker process may
        use. A worker runs up to nthreads tasks at once; fastdl's pool serves one call
        at a time and runs a concurrent one serially on its own thread, so cores are not
        oversubscribed many times over (num_threads=1 leaves all parallelism to Dask's
        tasks). It is set in each worker process by its first task, for the process.
        Under dask's local scheduler the caller's own setting is left alone.

    Computes wherever the result is computed: on the dask.distributed Client of the
    process (a LocalCluster or any cluster one is connected to), or without one on dask's
    local scheduler. The model enters the task graph once, as one task of its own that
    every chunk's task depends on: it is pickled once (config and weights, no packed
    kernel buffers: the plans are rebuilt on the worker), each worker receives it once,
    and a worker lost mid-run loses nothing Dask cannot redo (a scattered copy could not
    be redone). Under the local scheduler the tasks share the model object itself.
    Either way the tasks use the model's weights as they are when the result is computed.
    (A model over ~10 MB makes distributed warn "Sending large graph": that is the model,
    sent once.)

    Returns a float32 dask array of shape (batch,) + the model's output shape, chunked
    along the batch axis as the input. Each task runs model.predict(chunk, batch_size):
    the result equals that of model.predict on each chunk, bit for bit; it also equals
    model.predict(whole, batch_size) bit for bit when every chunk but the last holds a
    multiple of batch_size samples. (Other chunkings may differ in the last bits: a
    Dense kernel's summation order can depend on the number of samples in a call.)

    Raises TypeError / ValueError naming the argument for what is not such a model, array
    or size; NotImplementedError for a model with several outputs.
    """
    try:
        import dask
        import dask.array as da
    except ImportError as exc:
        raise ImportError(_EXTRA) from exc
    from fastdl.models import Model

    if not isinstance(model, Model):
        raise TypeError(f"model: expected a fastdl model (fastdl.models.Sequential or "
                        f"Model), got {type(model).__name__}")
    if model._several_outputs:
        raise NotImplementedError(
            f"model: {model.name} has {len(model.outputs)} outputs; fastdl.dask.predict "
            f"runs models with one (predict each with models.Model(model.inputs, "
            f"model.outputs[i]))")
    batch_size = v.positive_int(batch_size, "batch_size")
    if num_threads is not None:
        num_threads = v.positive_int(num_threads, "num_threads")
    arrays = _input_arrays(model, array, da)
    out_shape, dtype = _output_shape_and_dtype(model, arrays)

    # New names each call (no hashing of the weights, which may change between calls).
    token = uuid.uuid4().hex
    shared = dask.delayed(model, name=f"fastdl-model-{token}", traverse=False)
    args = []
    for i, a in enumerate(arrays):
        args += [a.rechunk({axis: -1 for axis in range(1, a.ndim)}),
                 ("batch",) + tuple(f"in{i}.{k}" for k in range(1, a.ndim))]
    out_ind = ("batch",) + tuple(f"out.{k}" for k in range(1, len(out_shape)))
    return da.blockwise(
        _predict_chunk, out_ind, shared, None, *args,
        new_axes={ind: size for ind, size in zip(out_ind[1:], out_shape[1:])},
        concatenate=True, dtype=dtype, meta=np.empty((0,) * len(out_shape), dtype),
        name=f"fastdl-predict-{token}", batch_size=batch_size, num_threads=num_threads)


def _input_arrays(model, array, da):
    """The dask arrays, one per model input, checked against the model's input shapes."""
    several = model._several_inputs
    if several:
        if not isinstance(array, (list, tuple)) or len(array) != len(model.inputs):
            raise TypeError(f"array: {model.name} has {len(model.inputs)} inputs; expected a "
                            f"list of as many dask arrays, got {_describe(array)}")
        arrays, names = list(array), [f"array[{i}]" for i in range(len(array))]
    else:
        arrays, names = [array], ["array"]
    # A Sequential given no input shape takes the array's (predict builds it).
    unbuilt = getattr(model, "_input", True) is None
    wants = [None] * len(arrays) if unbuilt else model._input_shapes()
    for a, name, want in zip(arrays, names, wants):
        if not isinstance(a, da.Array):
            raise TypeError(f"{name}: expected a dask.array.Array (dask.array.from_array(x, "
                            f"chunks=...) makes one), got {_describe(a)}")
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name}: expected an array of real numbers, got dtype {a.dtype}")
        if a.ndim == 0:
            raise ValueError(f"{name}: expected a batch of inputs, got a 0-d array")
        if any(np.isnan(d) for d in a.shape[1:]):
            raise ValueError(f"{name}: the extents of the non-batch axes are unknown "
                             f"{a.shape}; call {name}.compute_chunk_sizes() first")
        if want is not None and not (a.ndim == len(want) and all(
                w is None or w == d for w, d in zip(want[1:], a.shape[1:]))):
            raise ValueError(f"{name}: {model.name} expects input shape "
                             f"{_shape_text(want)}, got {_shape_text(a.shape)}")
    sizes = [a.shape[0] for a in arrays]
    known = {s for s in sizes if not np.isnan(s)}
    if len(known) > 1:
        raise ValueError(f"array: the inputs have different batch sizes {sizes}")
    return arrays


def _output_shape_and_dtype(model, arrays):
    """(shape, dtype) of the model's output for these inputs, from a run on zero samples
    here (which also builds a Sequential given no input shape, as model.predict does)."""
    empty = [np.zeros((0,) + a.shape[1:], a.dtype) for a in arrays]
    try:
        y = model.predict(empty if model._several_inputs else empty[0], verbose=0)
    except (TypeError, ValueError) as exc:  # e.g. a layer refusing these sizes
        shapes = ", ".join(_shape_text(a.shape) for a in arrays)
        raise type(exc)(f"array: {model.name} does not take inputs of shape {shapes}: "
                        f"{exc}") from exc
    return y.shape, y.dtype


def _predict_chunk(model, *chunks, batch_size, num_threads):
    """One task: the model on one chunk of the batch (one chunk per model input)."""
    _set_worker_threads(num_threads)
    x = list(chunks) if model._several_inputs else chunks[0]
    return model.predict(x, batch_size=batch_size, verbose=0)


def _set_worker_threads(num_threads):
    """On a dask.distributed worker, sets fastdl's thread count (see predict); elsewhere
    does nothing."""
    try:
        from distributed import get_worker
        worker = get_worker()
    except (ImportError, ValueError):  # not in a worker: dask's local scheduler
        return
    if num_threads is None:
        num_threads = max(1, min(worker.state.nthreads, _usable_cpus()))
    if _threads.get_num_threads() != num_threads:
        _threads.set_num_threads(num_threads)


def _usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _describe(value):
    return f"a list of {len(value)}" if isinstance(value, (list, tuple)) else \
        type(value).__name__


def _shape_text(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")"
