"""Peers that run ONNX graphs (ONNX Runtime, OpenVINO): each case as a one-node ONNX
model built in memory, each whole model as the model_zoo's nn.Module exported to ONNX,
a user's ONNX file as it is. Weights are initializers (constant, so a runtime may
pre-pack them, as it does for a real model); the activations are graph inputs. A
subclass turns the serialized model into a Runner (its session and thread settings).
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from ..cases import (BatchNormCase, CaseData, Conv1dCase, Conv2dCase, Conv3dCase,
                     ConvTranspose2dCase, DenseCase, GemmCase, LstmCase, ModelCase, Pool2dCase)
from .base import Library, Runner

OPSET = 17
IR_VERSION = 8  # old enough for every onnxruntime that supports opset 17


def one_node_model(op_type: str, inputs: Dict[str, np.ndarray],
                   initializers: Dict[str, np.ndarray], output_shape: Sequence[int],
                   **attributes):
    """An ONNX ModelProto with a single ``op_type`` node computing output ``y``.

    ``inputs`` become graph inputs and ``initializers`` constants, both in the order
    given, which is the order of the node's inputs.
    """
    from onnx import TensorProto, helper, numpy_helper

    def value_info(name, shape):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))

    node = helper.make_node(op_type, [*inputs, *initializers], ["y"], **attributes)
    graph = helper.make_graph(
        [node], f"fastdl_bench_{op_type.lower()}",
        [value_info(name, arr.shape) for name, arr in inputs.items()],
        [value_info("y", output_shape)],
        initializer=[numpy_helper.from_array(arr, name) for name, arr in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model


class OnnxGraphPeer(Library):
    """The cases as ONNX graphs; subclasses implement _session."""

    def _session(self, serialized: bytes, feeds: Dict[str, np.ndarray], threads: int) -> Runner:
        """A runner computing the serialized ONNX model's first output from `feeds` on
        `threads` threads."""
        raise NotImplementedError

    def _runner(self, model, feeds: Dict[str, np.ndarray], threads: int) -> Runner:
        return self._session(model.SerializeToString(), feeds, threads)

    def prepare_conv2d(self, case: Conv2dCase, data: CaseData, threads: int) -> Runner:
        pad, k = case.padding, case.kernel
        model = one_node_model(
            "Conv", {"x": data["x"]}, {"w": data["w"], "b": data["b"]}, case.output_shape,
            kernel_shape=[k, k], strides=[case.stride] * 2, pads=[pad] * 4,
            dilations=[case.dilation] * 2, group=case.groups)
        return self._runner(model, {"x": data["x"]}, threads)

    def _conv(self, case, data: CaseData, threads: int, ndim: int, dilation: int = 1) -> Runner:
        model = one_node_model(
            "Conv", {"x": data["x"]}, {"w": data["w"], "b": data["b"]}, case.output_shape,
            kernel_shape=[case.kernel] * ndim, strides=[case.stride] * ndim,
            pads=[case.padding] * (2 * ndim), dilations=[dilation] * ndim)
        return self._runner(model, {"x": data["x"]}, threads)

    def prepare_conv1d(self, case: Conv1dCase, data: CaseData, threads: int) -> Runner:
        return self._conv(case, data, threads, 1, case.dilation)

    def prepare_conv3d(self, case: Conv3dCase, data: CaseData, threads: int) -> Runner:
        return self._conv(case, data, threads, 3)

    def prepare_conv_transpose2d(self, case: ConvTranspose2dCase, data: CaseData,
                                 threads: int) -> Runner:
        k, s, pad = case.kernel, case.stride, case.padding
        model = one_node_model("ConvTranspose", {"x": data["x"]},
                               {"w": data["w"], "b": data["b"]}, case.output_shape,
                               kernel_shape=[k, k], strides=[s, s], pads=[pad] * 4)
        return self._runner(model, {"x": data["x"]}, threads)

    def prepare_batchnorm(self, case: BatchNormCase, data: CaseData, threads: int) -> Runner:
        params = {name: data[name] for name in ("weight", "bias", "mean", "var")}
        model = one_node_model("BatchNormalization", {"x": data["x"]}, params,
                               case.output_shape, epsilon=case.eps)
        return self._runner(model, {"x": data["x"]}, threads)

    def prepare_lstm(self, case: LstmCase, data: CaseData, threads: int) -> Runner:
        # ONNX orders the gates i, o, f, c (torch: i, f, g, o) and wants [dirs, ...] arrays;
        # B is [Wb, Rb]; Y is [T, dirs, B, H].
        h = case.hidden_size
        iofc = np.concatenate([np.arange(0, h), np.arange(3 * h, 4 * h),
                               np.arange(h, 2 * h), np.arange(2 * h, 3 * h)])
        weights = {"W": data["w_ih"][iofc][None], "R": data["w_hh"][iofc][None],
                   "B": np.concatenate([data["b_ih"][iofc], data["b_hh"][iofc]])[None]}
        model = one_node_model("LSTM", {"x": data["x"]}, weights,
                               (case.steps, 1, case.batch, h), hidden_size=h)
        runner = self._runner(model, {"x": data["x"]}, threads)
        runner.to_numpy = lambda y: np.asarray(y).reshape(case.output_shape)
        return runner

    def prepare_gemm(self, case: GemmCase, data: CaseData, threads: int) -> Runner:
        feeds = {"a": data["a"], "b": data["b"]}
        model = one_node_model("MatMul", feeds, {}, case.output_shape)
        return self._runner(model, feeds, threads)

    def prepare_dense(self, case: DenseCase, data: CaseData, threads: int) -> Runner:
        model = one_node_model("Gemm", {"x": data["x"]}, {"w": data["w"], "b": data["b"]},
                               case.output_shape, transB=1)
        return self._runner(model, {"x": data["x"]}, threads)

    def prepare_pool2d(self, case: Pool2dCase, data: CaseData, threads: int) -> Runner:
        k, s, pad = case.kernel, case.stride, case.padding
        model = one_node_model("MaxPool" if case.op == "max" else "AveragePool",
                               {"x": data["x"]}, {}, case.output_shape, kernel_shape=[k, k],
                               strides=[s, s], pads=[pad] * 4)
        return self._runner(model, {"x": data["x"]}, threads)

    def prepare_onnx_file(self, case, data: CaseData, threads: int) -> Runner:
        """The user's ONNX file, its first output."""
        with open(case.path, "rb") as f:
            return self._session(f.read(), dict(data), threads)

    def prepare_model(self, case: ModelCase, data: CaseData, threads: int) -> Runner:
        """The model_zoo's nn.Module exported to ONNX (opset 17, TorchScript exporter)."""
        import io

        import torch
        from ..model_zoo import torch_model
        module, buffer = torch_model(case.model), io.BytesIO()
        torch.onnx.export(module, (torch.from_numpy(data["x"]),), buffer, opset_version=OPSET,
                          input_names=["x"], output_names=["y"], dynamo=False)
        return self._session(buffer.getvalue(), {"x": data["x"]}, threads)
