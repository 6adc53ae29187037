"""fastdl: compiled deep-learning kernels for CPUs with a thin Keras-like API.

    import fastdl
    y = fastdl.ops.conv2d(x, w, b, stride=1, padding="same", activation="relu")
    plan = fastdl.ops.Conv2dPlan(w, b, padding=1)   # weights packed once
    y = plan(x)

fastdl.losses holds the Keras-style losses (fastdl.ops the torch-style ones).
fastdl.backend() tells which implementation runs ('native', 'numba' or 'numpy'),
fastdl.isa() which instruction set the native kernels use.
"""
from fastdl._backend import backend, isa
from fastdl._threads import get_num_threads, set_num_threads
from fastdl import losses, ops

__version__ = "0.1.0"

__all__ = ["backend", "get_num_threads", "isa", "losses", "ops", "set_num_threads"]
