"""fastdl itself as a benchmarked library, plus the facts the report needs about it.

Conv, dense and LSTM layers are timed through their plans (``Conv2dPlan``, ``LinearPlan``,
``LSTMPlan``, ...: weights packed once, the fast path); GEMM through ``fastdl.ops.matmul``,
which packs both activations on every call; pooling and batch norm through their
functions (nothing to pack).
"""

from __future__ import annotations

import importlib
from typing import Dict, Optional, Tuple

import numpy as np

from .cases import (BatchNormCase, CaseData, Conv1dCase, Conv2dCase, Conv3dCase,
                    ConvTranspose2dCase, DenseCase, GemmCase, LstmCase, ModelCase, Pool2dCase,
                    TrainStepCase)
from .peers.base import Library, Runner


class Fastdl(Library):
    name = "fastdl"
    label = "fastdl"
    module = "fastdl"

    def _setup(self, threads: int):
        fastdl = self.load()
        fastdl.set_num_threads(threads)
        return fastdl.ops

    def prepare_conv2d(self, case: Conv2dCase, data: CaseData, threads: int) -> Runner:
        ops = self._setup(threads)
        plan = ops.Conv2dPlan(data["w"], data["b"], stride=case.stride, padding=case.padding,
                              dilation=case.dilation, groups=case.groups)
        x = data["x"]
        return Runner(lambda: plan(x))

    def prepare_conv1d(self, case: Conv1dCase, data: CaseData, threads: int) -> Runner:
        plan = self._setup(threads).Conv1dPlan(data["w"], data["b"], stride=case.stride,
                                               padding=case.padding, dilation=case.dilation)
        x = data["x"]
        return Runner(lambda: plan(x))

    def prepare_conv3d(self, case: Conv3dCase, data: CaseData, threads: int) -> Runner:
        plan = self._setup(threads).Conv3dPlan(data["w"], data["b"], stride=case.stride,
                                               padding=case.padding)
        x = data["x"]
        return Runner(lambda: plan(x))

    def prepare_conv_transpose2d(self, case: ConvTranspose2dCase, data: CaseData,
                                 threads: int) -> Runner:
        plan = self._setup(threads).ConvTranspose2dPlan(data["w"], data["b"], stride=case.stride,
                                                        padding=case.padding)
        x = data["x"]
        return Runner(lambda: plan(x))

    def prepare_batchnorm(self, case: BatchNormCase, data: CaseData, threads: int) -> Runner:
        batch_norm = self._setup(threads).batch_norm
        args = (data["x"], data["mean"], data["var"], data["weight"], data["bias"])
        return Runner(lambda: batch_norm(*args, eps=case.eps))

    def prepare_lstm(self, case: LstmCase, data: CaseData, threads: int) -> Runner:
        plan = self._setup(threads).LSTMPlan(data["w_ih"], data["w_hh"], data["b_ih"],
                                             data["b_hh"])
        x = data["x"]
        return Runner(lambda: plan(x)[0])

    def prepare_gemm(self, case: GemmCase, data: CaseData, threads: int) -> Runner:
        matmul = self._setup(threads).matmul
        a, b = data["a"], data["b"]
        return Runner(lambda: matmul(a, b))

    def prepare_dense(self, case: DenseCase, data: CaseData, threads: int) -> Runner:
        plan = self._setup(threads).LinearPlan(data["w"], data["b"])
        x = data["x"]
        return Runner(lambda: plan(x))

    def prepare_pool2d(self, case: Pool2dCase, data: CaseData, threads: int) -> Runner:
        ops = self._setup(threads)
        pool = ops.max_pool2d if case.op == "max" else ops.avg_pool2d
        x, args = data["x"], (case.kernel, case.stride, case.padding)
        return Runner(lambda: pool(x, *args))


    def prepare_onnx_file(self, case, data: CaseData, threads: int) -> Runner:
        """The user's ONNX file through fastdl.io.load_onnx (its first output checked)."""
        self._setup(threads)
        from fastdl.io import load_onnx
        model = load_onnx(case.path)
        xs = [data[name] for name, _ in case.inputs]
        first = (lambda y: np.asarray(y[0])) if len(model.outputs) > 1 else np.asarray
        return _model_runner(model, xs if len(xs) > 1 else xs[0], to_numpy=first)

    def prepare_model(self, case: ModelCase, data: CaseData, threads: int) -> Runner:
        """The model_zoo twin built with fastdl.layers, holding the PyTorch model's
        weights, called on the NHWC input (`steps_ms`: see _model_runner)."""
        self._setup(threads)
        from . import model_zoo
        model = model_zoo.fastdl_model(case.model, model_zoo.torch_model(case.model))
        return _model_runner(model, model_zoo.channels_last(data["x"]))


    def prepare_train_step(self, case: TrainStepCase, data: CaseData, threads: int) -> Runner:
        """The model_zoo twin with the PyTorch model's weights, compiled with Adam and
        sparse categorical cross-entropy; one call is one train_on_batch. The note gives
        fit's own cost per step (batching, callbacks, logs) over the bare step, measured
        here on another twin (the timed one starts from the shared weights)."""
        self._setup(threads)
        from . import model_zoo
        x, y = model_zoo.channels_last(data["x"]), data["y"]
        overhead = fit_overhead(self._train_model(case), x, y)
        model = self._train_model(case)
        return Runner(lambda: model.train_on_batch(x, y), to_numpy=lambda loss: np.array([loss]),
                      note=f"fit costs {overhead * 100:+.1f}% per step over the bare "
                           f"training step ({case.name})")

    def _train_model(self, case: TrainStepCase):
        fastdl = self.load()
        from . import model_zoo
        model = model_zoo.fastdl_model(case.model, model_zoo.torch_model(case.model))
        for layer in model.layers:
            if type(layer).__name__ == "Dropout":
                layer.rate = 0.0
        model.compile(optimizer=fastdl.optimizers.Adam(1e-3),
                      loss="sparse_categorical_crossentropy")
        return model


def _model_runner(model, x, to_numpy=np.asarray) -> Runner:
    """A whole model called on x, its plans built and buffers placed by a first call;
    `steps_ms` sums its compiled steps' times measured inside runs (Model.profile: the
    time in kernels; the rest of a call is the model's own overhead)."""
    model(x)

    def steps_ms():
        return sum(ms for _, ms in model.profile(x, repeat=30))
    return Runner(lambda: model(x), to_numpy=to_numpy, steps_ms=steps_ms)


def fit_overhead(model, x, y, steps: int = 16, rounds: int = 3) -> float:
    """(fit's time per step - the bare step's) / the bare step's, the best of `rounds`
    alternating measurements of `steps` steps each (fit on the batch repeated `steps`
    times, unshuffled, verbose 0, with its History callback)."""
    import time
    from fastdl.models import training
    compiled = model._compiled
    xs, ys = np.concatenate([x] * steps), np.concatenate([y] * steps)
    bare = fit = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            training.train_step(model, compiled, [x], [y], [None])
        bare = min(bare, (time.perf_counter() - start) / steps)
        start = time.perf_counter()
        model.fit(xs, ys, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
        fit = min(fit, (time.perf_counter() - start) / steps)
    return (fit - bare) / bare


def fma_peak_gflops(threads: int, seconds: float = 0.25) -> Tuple[Optional[float], Optional[str]]:
    """(measured FMA peak GFLOP/s with ``threads`` fastdl threads, None) or (None, reason).

    The peak comes from the native extension; without it there is no peak (n/a).
    """
    try:
        native = importlib.import_module("fastdl._C")
        importlib.import_module("fastdl").set_num_threads(threads)
        return float(native.fma_peak_gflops(seconds)), None
    except ImportError as exc:
        return None, f"native extension fastdl._C not available ({exc})"
    except (AttributeError, RuntimeError, ValueError) as exc:
        return None, f"fastdl._C.fma_peak_gflops failed: {exc!r}"


def describe() -> Dict[str, object]:
    """fastdl's version, chosen ISA, backend and default thread count."""
    fastdl = importlib.import_module("fastdl")
    return {"version": str(getattr(fastdl, "__version__", "unknown")),
            "isa": fastdl.isa(), "backend": fastdl.backend(),
            "default_threads": fastdl.get_num_threads()}
