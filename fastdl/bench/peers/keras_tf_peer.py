"""Keras 3 on TensorFlow (``tensorflow-cpu``, a bench extra): the stack the seed notes'
models were written for. Only whole-model training steps (``train_step`` cases).

Keras picks its backend once per process, at import: this peer sets KERAS_BACKEND to
tensorflow before the first import and declines when something imported Keras with
another backend first. TensorFlow fixes its thread pools when it starts: the first
thread count asked for is the one it keeps (a different later count is noted).
"""

from __future__ import annotations

import os
import sys

import numpy as np

from ..cases import CaseData, TrainStepCase
from .base import Library, Runner, Unsupported


class KerasTensorFlowPeer(Library):
    name = "keras_tf"
    label = "keras-tf"
    module = "tensorflow"
    spins_when_idle = True
    _threads = None  # what TensorFlow's pools were created with

    def load(self):
        if "keras" in sys.modules and sys.modules["keras"].backend.backend() != "tensorflow":
            raise ImportError("keras is already imported with the "
                              f"{sys.modules['keras'].backend.backend()} backend")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        tf = super().load()
        import keras
        if keras.backend.backend() != "tensorflow":
            raise ImportError(f"KERAS_BACKEND is {keras.backend.backend()}, not tensorflow")
        return tf

    def version(self) -> str:
        tf = self.load()
        import keras
        return f"keras {keras.__version__} / tensorflow {tf.__version__}"

    def _setup(self, threads: int):
        tf = self.load()
        if KerasTensorFlowPeer._threads is None:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
                KerasTensorFlowPeer._threads = threads
            except RuntimeError:  # TensorFlow already started in this process
                KerasTensorFlowPeer._threads = -1
        if KerasTensorFlowPeer._threads != threads:
            return f"TensorFlow keeps the thread pools it started with, not {threads}"
        return None

    def prepare_train_step(self, case: TrainStepCase, data: CaseData, threads: int) -> Runner:
        """Keras' own twin of the model (same weights), compiled as Keras compiles by
        default (Adam 1e-3, sparse categorical cross-entropy, jit_compile 'auto');
        one call is one train_on_batch."""
        note = self._setup(threads)
        import keras
        from ..model_zoo import channels_last, keras_model, torch_model
        try:
            model = keras_model(case.model, torch_model(case.model))
        except KeyError as exc:
            raise Unsupported(str(exc)) from None
        for layer in model.layers:
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss="sparse_categorical_crossentropy")
        x, y = channels_last(data["x"]), data["y"]
        return Runner(lambda: model.train_on_batch(x, y),
                      lambda loss: np.asarray(loss, np.float32).reshape(1), note=note)
