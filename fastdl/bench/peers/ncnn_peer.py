"""ncnn peer (the ``ncnn`` PyPI module): a small .param/.bin network per case.

The network is written to a temporary directory in ncnn's text format and loaded
once. ncnn has no batch dimension for images, so convolutions run batch 1 only.
fp16/bf16 storage and arithmetic are switched off so that ncnn computes in fp32 like
everybody else; its other defaults (packing layout, Winograd, sgemm) stay on.
Timed: creating an extractor, feeding the prepared input ``ncnn.Mat`` and extracting
the output (which ncnn unpacks to fp32 elempack 1); converting to NumPy is not timed.

Whole models are the model_zoo's nn.Modules converted by pnnx (the ``pnnx`` PyPI
package, the converter ncnn's authors ship: TorchScript -> ncnn with BatchNorm folded),
weights kept in fp32.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np

from ..cases import (BatchNormCase, CaseData, Conv1dCase, Conv2dCase, Conv3dCase,
                     ConvTranspose2dCase, DenseCase, GemmCase, LstmCase, ModelCase, Pool2dCase)
from .base import Library, Runner, Unsupported

PARAM_MAGIC = 7767517

# (layer type, layer name, bottom blobs, top blobs, {param id: value}); params not
# given keep their ncnn defaults (e.g. activation_type 0 = none).
Layer = Tuple[str, str, Sequence[str], Sequence[str], Mapping[int, object]]


def param_text(layers: Sequence[Layer]) -> str:
    """ncnn .param text for ``layers``: (type, name, bottoms, tops, {id: value})."""
    blobs = {top for _, _, _, tops, _ in layers for top in tops}
    lines = [str(PARAM_MAGIC), f"{len(layers)} {len(blobs)}"]
    for layer_type, name, bottoms, tops, params in layers:
        fields = [layer_type, name, str(len(bottoms)), str(len(tops)), *bottoms, *tops]
        fields += [f"{key}={value}" for key, value in params.items()]
        lines.append(" ".join(fields))
    return "\n".join(lines) + "\n"


def weight_bin(weights: np.ndarray, bias: np.ndarray) -> bytes:
    """ncnn .bin bytes for one layer: tagged fp32 weights, then raw fp32 bias.

    ncnn loads weights with an "auto" type preceded by a 4-byte tag (0 = float32)
    and biases as raw float32.
    """
    tag = np.zeros(1, dtype=np.uint32).tobytes()
    return tag + np.ascontiguousarray(weights, np.float32).tobytes() + \
        np.ascontiguousarray(bias, np.float32).tobytes()


class NcnnPeer(Library):
    name = "ncnn"
    label = "ncnn"
    module = "ncnn"
    spins_when_idle = True

    def _net(self, layers: Sequence[Layer], weights: bytes, threads: int):
        """An ncnn.Net with ``layers`` and their ``weights`` loaded, fp32 only."""
        with tempfile.TemporaryDirectory(prefix="fastdl_bench_ncnn_") as tmp:
            param_path = os.path.join(tmp, "model.param")
            bin_path = os.path.join(tmp, "model.bin")
            with open(param_path, "w") as f:
                f.write(param_text(layers))
            with open(bin_path, "wb") as f:
                f.write(weights)
            return self._load(param_path, bin_path if weights else None, threads)

    def _load(self, param_path: str, bin_path, threads: int):
        """An ncnn.Net from a .param and .bin file (none: no weights), fp32 only."""
        ncnn = self.load()
        net = ncnn.Net()
        opt = net.opt
        opt.num_threads = threads
        opt.use_fp16_storage = opt.use_fp16_packed = opt.use_fp16_arithmetic = False
        opt.use_bf16_storage = False
        opt.use_vulkan_compute = False
        if net.load_param(param_path) != 0:
            raise RuntimeError(f"ncnn could not load {os.path.basename(param_path)}")
        if bin_path is not None and net.load_model(bin_path) != 0:
            raise RuntimeError(f"ncnn could not load {os.path.basename(bin_path)}")
        return net

    def _runner(self, net, inputs: Dict[str, np.ndarray], output_shape,
                in_place: bool = False, output: str = "y") -> Runner:
        """``in_place``: the layer overwrites its input; the extractor then runs out of
        light mode, in which ncnn copies an input blob before an in-place layer (in light
        mode it writes into the NumPy-owned input and crashes)."""
        ncnn = self.load()
        # ncnn.Mat(array) shares the array's memory: keep the arrays referenced here.
        feeds: List[Tuple[str, object, np.ndarray]] = [
            (name, ncnn.Mat(arr), arr) for name, arr in inputs.items()]

        def run():
            extractor = net.create_extractor()
            if in_place:
                extractor.set_light_mode(False)
            for name, mat, _ in feeds:
                extractor.input(name, mat)
            status, out = extractor.extract(output)
            if status != 0:
                raise RuntimeError(f"ncnn extract failed with status {status}")
            return out

        return Runner(run, lambda out: np.array(out).reshape(output_shape))

    def prepare_conv2d(self, case: Conv2dCase, data: CaseData, threads: int) -> Runner:
        if case.batch != 1:
            raise Unsupported("ncnn runs convolutions on batch 1 only")
        w = data["w"]
        params = {0: case.cout, 1: case.kernel, 11: case.kernel, 2: case.dilation,
                  12: case.dilation, 3: case.stride, 13: case.stride, 4: case.padding,
                  14: case.padding, 15: case.padding, 16: case.padding, 5: 1, 6: w.size}
        layer_type = "Convolution"
        if case.groups > 1:
            layer_type, params[7] = "ConvolutionDepthWise", case.groups
        layers = [("Input", "input", [], ["x"], {0: case.width, 1: case.height, 2: case.cin}),
                  (layer_type, "conv", ["x"], ["y"], params)]
        net = self._net(layers, weight_bin(w, data["b"]), threads)
        return self._runner(net, {"x": data["x"][0]}, case.output_shape)

    def prepare_conv1d(self, case: Conv1dCase, data: CaseData, threads: int) -> Runner:
        if case.batch != 1:
            raise Unsupported("ncnn runs convolutions on batch 1 only")
        w = data["w"]
        params = {0: case.cout, 1: case.kernel, 2: case.dilation, 3: case.stride,
                  4: case.padding, 15: case.padding, 5: 1, 6: w.size}
        layers = [("Input", "input", [], ["x"], {0: case.length, 1: case.cin}),
                  ("Convolution1D", "conv", ["x"], ["y"], params)]
        net = self._net(layers, weight_bin(w, data["b"]), threads)
        return self._runner(net, {"x": data["x"][0]}, case.output_shape)

    def prepare_conv3d(self, case: Conv3dCase, data: CaseData, threads: int) -> Runner:
        if case.batch != 1:
            raise Unsupported("ncnn runs convolutions on batch 1 only")
        w, k, s, p = data["w"], case.kernel, case.stride, case.padding
        params = {0: case.cout, 1: k, 11: k, 21: k, 3: s, 13: s, 23: s,
                  4: p, 14: p, 24: p, 15: p, 16: p, 17: p, 5: 1, 6: w.size}
        layers = [("Input", "input", [], ["x"],
                   {0: case.width, 1: case.height, 11: case.depth, 2: case.cin}),
                  ("Convolution3D", "conv", ["x"], ["y"], params)]
        net = self._net(layers, weight_bin(w, data["b"]), threads)
        return self._runner(net, {"x": data["x"][0]}, case.output_shape)

    def prepare_conv_transpose2d(self, case: ConvTranspose2dCase, data: CaseData,
                                 threads: int) -> Runner:
        if case.batch != 1:
            raise Unsupported("ncnn runs convolutions on batch 1 only")
        # ncnn's Deconvolution wants the weights as [Cout, Cin, K, K] (torch: [Cin, Cout, ...]).
        w = np.ascontiguousarray(data["w"].transpose(1, 0, 2, 3))
        k, s, p = case.kernel, case.stride, case.padding
        params = {0: case.cout, 1: k, 11: k, 3: s, 13: s, 4: p, 14: p, 15: p, 16: p,
                  5: 1, 6: w.size}
        layers = [("Input", "input", [], ["x"], {0: case.width, 1: case.height, 2: case.cin}),
                  ("Deconvolution", "deconv", ["x"], ["y"], params)]
        net = self._net(layers, weight_bin(w, data["b"]), threads)
        return self._runner(net, {"x": data["x"][0]}, case.output_shape)

    def prepare_batchnorm(self, case: BatchNormCase, data: CaseData, threads: int) -> Runner:
        if case.batch != 1:
            raise Unsupported("ncnn runs batch norm on batch 1 only")
        # BatchNorm loads slope, mean, var, bias as raw float32 (no type tags).
        weights = b"".join(np.ascontiguousarray(data[name], np.float32).tobytes()
                           for name in ("weight", "mean", "var", "bias"))
        layers = [("Input", "input", [], ["x"],
                   {0: case.width, 1: case.height, 2: case.channels}),
                  ("BatchNorm", "bn", ["x"], ["y"], {0: case.channels, 1: case.eps})]
        net = self._net(layers, weights, threads)
        return self._runner(net, {"x": data["x"][0]}, case.output_shape, in_place=True)

    def prepare_lstm(self, case: LstmCase, data: CaseData, threads: int) -> Runner:
        if case.batch != 1:
            raise Unsupported("ncnn's LSTM runs batch 1 only")
        # ncnn orders the gates i, f, o, g (torch: i, f, g, o); bias is b_ih + b_hh.
        h = case.hidden_size
        ifog = np.concatenate([np.arange(0, 2 * h), np.arange(3 * h, 4 * h),
                               np.arange(2 * h, 3 * h)])
        tag = np.zeros(1, dtype=np.uint32).tobytes()
        blobs = (data["w_ih"][ifog], (data["b_ih"] + data["b_hh"])[ifog], data["w_hh"][ifog])
        weights = b"".join(tag + np.ascontiguousarray(b, np.float32).tobytes() for b in blobs)
        layers = [("Input", "input", [], ["x"], {0: case.input_size, 1: case.steps}),
                  ("LSTM", "lstm", ["x"], ["y"],
                   {0: h, 1: data["w_ih"].size, 2: 0})]
        net = self._net(layers, weights, threads)
        return self._runner(net, {"x": np.ascontiguousarray(data["x"][:, 0, :])},
                            case.output_shape)

    def prepare_gemm(self, case: GemmCase, data: CaseData, threads: int) -> Runner:
        layers = [("Input", "input_a", [], ["a"], {0: case.k, 1: case.m}),
                  ("Input", "input_b", [], ["b"], {0: case.n, 1: case.k}),
                  ("Gemm", "gemm", ["a", "b"], ["y"], {0: 1.0, 1: 1.0, 2: 0, 3: 0})]
        net = self._net(layers, b"", threads)
        return self._runner(net, {"a": data["a"], "b": data["b"]}, case.output_shape)

    def prepare_dense(self, case: DenseCase, data: CaseData, threads: int) -> Runner:
        w = data["w"]
        x = data["x"][0] if case.batch == 1 else data["x"]
        input_params = {0: case.in_features} if case.batch == 1 else \
            {0: case.in_features, 1: case.batch}
        layers = [("Input", "input", [], ["x"], input_params),
                  ("InnerProduct", "dense", ["x"], ["y"],
                   {0: case.out_features, 1: 1, 2: w.size})]
        net = self._net(layers, weight_bin(w, data["b"]), threads)
        return self._runner(net, {"x": x}, case.output_shape)

    def prepare_pool2d(self, case: Pool2dCase, data: CaseData, threads: int) -> Runner:
        if case.batch != 1:
            raise Unsupported("ncnn runs pooling on batch 1 only")
        k, s, pad = case.kernel, case.stride, case.padding
        # pad_mode 1: explicit pads, floor rounding (PyTorch's default).
        params = {0: 0 if case.op == "max" else 1, 1: k, 11: k, 2: s, 12: s, 3: pad, 13: pad,
                  14: pad, 15: pad, 5: 1, 6: 1}
        layers = [("Input", "input", [], ["x"], {0: case.width, 1: case.height, 2: case.channels}),
                  ("Pooling", "pool", ["x"], ["y"], params)]
        net = self._net(layers, b"", threads)
        return self._runner(net, {"x": data["x"][0]}, case.output_shape)

    def prepare_model(self, case: ModelCase, data: CaseData, threads: int) -> Runner:
        """The model_zoo's nn.Module converted by pnnx (batch 1: ncnn has no batch axis)."""
        if case.batch != 1:
            raise Unsupported("ncnn runs models on batch 1 only")
        try:
            pnnx = importlib.import_module("pnnx")
        except ImportError:
            raise Unsupported("converting a model for ncnn needs pnnx (pip install pnnx)")
        import torch
        from ..model_zoo import torch_model
        module, x = torch_model(case.model), data["x"]
        with tempfile.TemporaryDirectory(prefix="fastdl_bench_pnnx_") as tmp:
            param_path, bin_path = (os.path.join(tmp, f"model.ncnn.{ext}")
                                    for ext in ("param", "bin"))
            with _output_to(os.path.join(tmp, "pnnx.log")):
                pnnx.export(module, os.path.join(tmp, "model.pt"), (torch.from_numpy(x),),
                            fp16=False)
            with open(param_path) as f:  # the magic, the counts, then a layer a line
                types = [fields[0] for fields in map(str.split, f.readlines()[2:]) if fields]
            kept = sorted({t for t in types if "." in t})
            if kept:  # torch operators pnnx has no ncnn layer for stay as they are
                raise Unsupported(f"pnnx could not convert {', '.join(kept)} to ncnn layers")
            net = self._load(param_path, bin_path, threads)
        return self._runner(net, {"in0": np.ascontiguousarray(x[0])}, case.output_shape,
                            output="out0")


@contextlib.contextmanager
def _output_to(path: str):
    """Sends this process's stdout and stderr (file descriptors 1 and 2: pnnx prints from
    C++) to the file at `path` while the block runs."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(path, "w") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:  # what Python buffered in the block goes to the log too
                sys.stdout.flush()
                sys.stderr.flush()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
