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
                    ConvTranspose2dCase, DenseCase, GemmCase, LstmCase, ModelCase, Pool2dCase)
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


    def prepare_model(self, case: ModelCase, data: CaseData, threads: int) -> Runner:
        """The model_zoo twin built with fastdl.layers, holding the PyTorch model's
        weights, called on the NHWC input. `steps_ms` is the sum of its compiled steps'
        times measured inside runs of the model (Model.profile: the time in kernels; the
        rest of the model's time is its own overhead)."""
        self._setup(threads)
        from . import model_zoo
        model = model_zoo.fastdl_model(case.model, model_zoo.torch_model(case.model))
        x = np.ascontiguousarray(data["x"].transpose(0, 2, 3, 1))
        model(x)  # plans built, buffers allocated

        def steps_ms():
            return sum(ms for _, ms in model.profile(x, repeat=30))
        return Runner(lambda: model(x), steps_ms=steps_ms)


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
