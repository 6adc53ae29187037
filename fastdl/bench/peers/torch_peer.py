"""PyTorch peer: torch.nn.functional / torch.matmul on CPU tensors sharing NumPy memory."""

from __future__ import annotations

import numpy as np

from ..cases import (BatchNormCase, CaseData, Conv1dCase, Conv2dCase, Conv3dCase,
                     ConvTranspose2dCase, DenseCase, GemmCase, LstmCase, ModelCase, Pool2dCase,
                     TrainStepCase)
from .base import Library, Runner


def _tensor_to_numpy(tensor) -> np.ndarray:
    return tensor.numpy()


class TorchPeer(Library):
    name = "torch"
    label = "torch"
    module = "torch"
    spins_when_idle = True

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

    def prepare_conv1d(self, case: Conv1dCase, data: CaseData, threads: int) -> Runner:
        torch, t = self._setup(data, threads)
        conv1d = torch.nn.functional.conv1d
        x, w, b = t["x"], t["w"], t["b"]
        args = (case.stride, case.padding, case.dilation)
        return Runner(lambda: conv1d(x, w, b, *args), _tensor_to_numpy)

    def prepare_conv3d(self, case: Conv3dCase, data: CaseData, threads: int) -> Runner:
        torch, t = self._setup(data, threads)
        conv3d = torch.nn.functional.conv3d
        x, w, b = t["x"], t["w"], t["b"]
        return Runner(lambda: conv3d(x, w, b, case.stride, case.padding), _tensor_to_numpy)

    def prepare_conv_transpose2d(self, case: ConvTranspose2dCase, data: CaseData,
                                 threads: int) -> Runner:
        torch, t = self._setup(data, threads)
        deconv = torch.nn.functional.conv_transpose2d
        x, w, b = t["x"], t["w"], t["b"]
        return Runner(lambda: deconv(x, w, b, case.stride, case.padding), _tensor_to_numpy)

    def prepare_batchnorm(self, case: BatchNormCase, data: CaseData, threads: int) -> Runner:
        torch, t = self._setup(data, threads)
        batch_norm = torch.nn.functional.batch_norm
        args = (t["x"], t["mean"], t["var"], t["weight"], t["bias"], False, 0.1, case.eps)
        return Runner(lambda: batch_norm(*args), _tensor_to_numpy)

    def prepare_lstm(self, case: LstmCase, data: CaseData, threads: int) -> Runner:
        torch, t = self._setup(data, threads)
        lstm = torch.nn.LSTM(case.input_size, case.hidden_size)
        with torch.no_grad():
            for name in ("w_ih", "w_hh", "b_ih", "b_hh"):  # weight_ih_l0 <- w_ih, ...
                prefix = "weight" if name.startswith("w") else "bias"
                getattr(lstm, f"{prefix}_{name[2:]}_l0").copy_(t[name])
        x = t["x"]

        def run():
            with torch.inference_mode():
                return lstm(x)[0]
        return Runner(run, _tensor_to_numpy)

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

    def prepare_model(self, case: ModelCase, data: CaseData, threads: int) -> Runner:
        """The model_zoo's nn.Module, eager, under inference_mode."""
        torch, t = self._setup(data, threads)
        from ..model_zoo import torch_model
        module, x = torch_model(case.model), t["x"]

        def run():
            with torch.inference_mode():
                return module(x)
        return Runner(run, _tensor_to_numpy)

    def prepare_train_step(self, case: TrainStepCase, data: CaseData, threads: int) -> Runner:
        """A copy of the model_zoo's nn.Module in train mode (dropout at 0), Adam (lr
        1e-3), eager: zero_grad, forward, the cross-entropy of the model's probabilities
        clipped as Keras clips them, backward, step."""
        import copy
        torch, t = self._setup(data, threads)
        from ..model_zoo import torch_model
        module = copy.deepcopy(torch_model(case.model)).train()
        for m in module.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
        x, y = t["x"], t["y"]
        nll = torch.nn.functional.nll_loss

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = nll(torch.log(module(x).clamp(1e-7, 1 - 1e-7)), y)
            loss.backward()
            optimizer.step()
            return loss.detach()
        return Runner(step, lambda loss: loss.numpy().reshape(1))
