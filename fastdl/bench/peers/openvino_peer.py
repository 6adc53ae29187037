"""OpenVINO peer (the ``openvino`` PyPI package): the ONNX graphs of onnx_graph, read and
compiled for its CPU plugin once per case, run through one infer request.

Compiled for latency as a single-caller application would: one stream,
``INFERENCE_NUM_THREADS = threads``, and fp32 inference precision -- on a CPU with bf16
instructions OpenVINO would otherwise compute in bf16, which is not the fp32 everybody
else computes. Its threads are not pinned to cores (its default on Linux): in a process
shared with the other libraries a pinned worker held a core and slowed whichever ran next
(fastdl's 7x7 stem at 2 threads, timed after OpenVINO: 0.57 -> 0.81 ms; OpenVINO's own
times did not change unpinned). Inputs and outputs are shared with NumPy, not copied.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from .base import Runner
from .onnx_graph import OnnxGraphPeer


class OpenVinoPeer(OnnxGraphPeer):
    name = "openvino"
    label = "ov"
    module = "openvino"
    spins_when_idle = True  # its TBB workers

    def __init__(self):
        self._core = None

    def version(self) -> str:
        return str(self.load().__version__).split("-")[0]  # not its build and branch

    def _session(self, serialized: bytes, feeds: Dict[str, np.ndarray], threads: int) -> Runner:
        ov = self.load()
        if self._core is None:
            self._core = ov.Core()
        compiled = self._core.compile_model(
            self._core.read_model(serialized), "CPU",
            {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
             "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
             "ENABLE_CPU_PINNING": False})
        request = compiled.create_infer_request()
        infer = request.infer
        return Runner(lambda: infer(feeds, share_inputs=True, share_outputs=True)[0])
