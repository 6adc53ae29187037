"""PyTorch peer: torch.nn.functional / torch.matmul on CPU tensors sharing NumPy memory."""

from __future__ import annotations

import numpy as np

from ..cases import Conv2dCase, CaseData, DenseCase, GemmCase, Pool2dCase
from .base import Library, Runner


def _tensor_to_numpy(tensor) -> np.ndarray:
    return tensor.numpy()


class TorchPeer(Library):
    name = "torch"
    label = "torch"
    module = "torch"

    def _setup(self, data: CaseData, threads: int):
        """torch with ``threads`` intra-op threads, and ``data`` as tensors (no copy)."""
        torch = self.load()
        torch.set_num_threads(threads)
        return torch, {key: torch.from_numpy(arr) for key, arr in data.items()}

    def prepare_conv2d(self, case: Conv2dCase, data: CaseData, threads: int) -> Runner:
        torch, t = self._setup(data, threads)
        conv2d = torch.nn.functional.conv2d
        x, w, b = t["x"], t["w"], t["b"]
        args = (case.stride, case.padding, case.dilation, case.groups)
        return Runner(lambda: conv2d(x, w, b, *args), _tensor_to_numpy)

    def prepare_gemm(self, case: GemmCase, data: CaseData, threads: int) -> Runner:
        torch, t = self._setup(data, threads)
        matmul, a, b = torch.matmul, t["a"], t["b"]
        return Runner(lambda: matmul(a, b), _tensor_to_numpy)

    def prepare_dense(self, case: DenseCase, data: CaseData, threads: int) -> Runner:
        torch, t = self._setup(data, threads)
        linear = torch.nn.functional.linear
        x, w, b = t["x"], t["w"], t["b"]
        return Runner(lambda: linear(x, w, b), _tensor_to_numpy)

    def prepare_pool2d(self, case: Pool2dCase, data: CaseData, threads: int) -> Runner:
        torch, t = self._setup(data, threads)
        F = torch.nn.functional
        pool = F.max_pool2d if case.op == "max" else F.avg_pool2d
        x, args = t["x"], (case.kernel, case.stride, case.padding)
        return Runner(lambda: pool(x, *args), _tensor_to_numpy)
