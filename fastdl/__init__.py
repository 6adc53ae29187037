"""fastdl: compiled deep-learning kernels for CPUs with a thin Keras-like API.

    import fastdl
    y = fastdl.ops.conv2d(x, w, b, stride=1, padding="same", activation="relu")
    plan = fastdl.ops.Conv2dPlan(w, b, padding=1)   # weights packed once
    y = plan(x)

    model = fastdl.models.Sequential([fastdl.layers.Input((32, 32, 3)),
                                      fastdl.layers.Conv2D(16, 3, activation="relu"), ...])

fastdl.losses holds the Keras-style losses (fastdl.ops the torch-style ones).
fastdl.backend() tells which implementation runs ('native', 'numba' or 'numpy'),
fastdl.isa() which instruction set the native kernels use.
"""
from fastdl._backend import backend, isa
from fastdl._threads import get_num_threads, set_num_threads
from fastdl import activations, initializers, io, layers, losses, models, ops, utils

__version__ = "0.1.0"

__all__ = ["activations", "backend", "get_num_threads", "initializers", "io", "isa", "layers",
           "losses", "models", "ops", "set_num_threads", "utils"]
