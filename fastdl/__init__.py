"""fastdl: compiled deep-learning kernels for CPUs with a thin Keras-like API.

    import fastdl
    y = fastdl.ops.conv2d(x, w, b, stride=1, padding="same", activation="relu")
    plan = fastdl.ops.Conv2dPlan(w, b, padding=1)   # weights packed once
    y = plan(x)

    model = fastdl.models.Sequential([fastdl.layers.Input((32, 32, 3)),
                                      fastdl.layers.Conv2D(16, 3, activation="relu"), ...])

    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=10, validation_split=0.1)
    fastdl.plot_history(history, "history.png")

fastdl.losses holds the Keras-style losses (fastdl.ops the torch-style ones);
fastdl.optimizers, fastdl.metrics and fastdl.callbacks what fit takes; fastdl.regularizers
and fastdl.initializers what layers take;
fastdl.wrappers the scikit-learn estimators.
fastdl.backend() tells which implementation runs ('native', 'numba' or 'numpy'),
fastdl.isa() which instruction set the native kernels use.
"""
from fastdl._backend import backend, isa
from fastdl._threads import get_num_threads, set_num_threads
from fastdl import (activations, callbacks, initializers, io, layers, losses, metrics, models,
                    ops, optimizers, regularizers, utils)
from fastdl.plotting import plot_history

__version__ = "0.1.0"

__all__ = ["activations", "backend", "callbacks", "get_num_threads", "initializers", "io",
           "isa", "layers", "losses", "metrics", "models", "ops", "optimizers", "plot_history",
           "regularizers", "set_num_threads", "utils"]
