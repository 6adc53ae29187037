"""ONNX Runtime peer: the ONNX graphs of onnx_graph, one session per case, on the CPU
provider with ``intra_op_num_threads = threads``, ``inter_op_num_threads = 1`` and all
graph optimizations.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from .base import Runner
from .onnx_graph import OnnxGraphPeer


class OnnxRuntimePeer(OnnxGraphPeer):
    name = "onnxruntime"
    label = "ort"
    module = "onnxruntime"
    spins_when_idle = True

    def _session(self, serialized: bytes, feeds: Dict[str, np.ndarray], threads: int) -> Runner:
        ort = self.load()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(serialized, options,
                                       providers=["CPUExecutionProvider"])
        run = session.run
        return Runner(lambda: run(None, feeds)[0])
