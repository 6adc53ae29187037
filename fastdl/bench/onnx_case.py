"""`python -m fastdl.bench --onnx model.onnx`: a user's own ONNX model as a bench case.

fastdl runs it through fastdl.io.load_onnx, ONNX Runtime from the same file; both get the
same random inputs (standard normal, float32) of the graph's input shapes with the batch
axis set to `batch` (where the graph leaves it symbolic). ``macs`` counts the
multiply-accumulates of its Conv, ConvTranspose, Gemm, MatMul, LSTM and GRU nodes (the
rest is not counted), from the shapes ONNX's shape inference gives at that batch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import ClassVar, Tuple

import numpy as np

from .cases import CaseData


@dataclass(frozen=True)
class OnnxFileCase:
    """The ONNX model at ``path`` on one batch; ``inputs``: ((name, shape), ...)."""

    kind: ClassVar[str] = "onnx_file"
    name: str
    description: str
    path: str
    inputs: Tuple[Tuple[str, Tuple[int, ...]], ...]
    output_shape: Tuple[int, ...]
    macs: int

    def make_data(self, rng: np.random.Generator) -> CaseData:
        return {name: rng.standard_normal(shape, dtype=np.float32)
                for name, shape in self.inputs}


def onnx_file_case(path: str, batch: int = 1) -> OnnxFileCase:
    """The case of the ONNX file at `path`; ValueError saying what is wrong with it."""
    try:
        import onnx
    except ImportError:
        raise ValueError("needs the onnx package (pip install onnx)") from None
    if not os.path.isfile(path):
        raise ValueError(f"no ONNX file at {path}")
    try:
        model = onnx.load(path)
    except Exception as exc:  # protobuf's DecodeError and the like for a damaged file
        raise ValueError(f"{path} is not an ONNX model ({type(exc).__name__}: {exc})") \
            from None
    initializers = {t.name for t in model.graph.initializer}
    inputs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dims = value.type.tensor_type.shape.dim
        shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                 for d in dims]
        if shape and shape[0] is None:
            shape[0] = batch
        if not shape or None in shape:
            raise ValueError(f"{path}: input {value.name!r} has symbolic axes {shape} "
                             f"(the bench sets only the batch axis)")
        for d, size in zip(dims, shape):
            d.dim_value = size  # fixed for the shape inference below
        inputs.append((value.name, tuple(shape)))
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as exc:  # InferenceError: shapes ONNX itself cannot follow
        raise ValueError(f"{path}: ONNX's shape inference fails ({exc})") from None
    shapes = _shapes(inferred.graph)
    output = inferred.graph.output[0].name
    if output not in shapes or None in shapes[output]:
        # (shapes computed by the graph itself, e.g. ShuffleNet's Shape -> Reshape: ONNX's
        # inference stops there; fastdl's import folds them)
        shapes[output] = _fastdl_output_shape(path, batch)
    name = os.path.splitext(os.path.basename(path))[0]
    return OnnxFileCase(name=name, description=f"{os.path.basename(path)}, batch {batch}",
                        path=path, inputs=tuple(inputs), output_shape=shapes[output],
                        macs=_macs(inferred.graph, shapes))


def _fastdl_output_shape(path, batch):
    """The first output's shape at `batch` as the model load_onnx makes declares it."""
    from fastdl.io import load_onnx
    try:
        model = load_onnx(path)
    except (ValueError, NotImplementedError) as exc:
        raise ValueError(f"{path}: ONNX's shape inference leaves the output's shape "
                         f"unknown, and fastdl cannot load the model: {exc}") from None
    shape = model.output_shape[0] if isinstance(model.output_shape, list) else \
        model.output_shape
    return (batch,) + tuple(shape[1:])


def _shapes(graph):
    """{value name: shape (None for unknown axes)} of every typed value in `graph`."""
    out = {}
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        out[value.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                for d in dims)
    for init in graph.initializer:
        out[init.name] = tuple(init.dims)
    return out


def _macs(graph, shapes) -> int:
    total = 0
    for node in graph.node:
        ins = [shapes.get(n) for n in node.input]
        out = shapes.get(node.output[0]) if node.output else None
        if out is None or None in out or any(s is None or None in s for s in ins[:2]):
            continue
        if node.op_type == "Conv":  # every output: (in / groups) x kernel taps
            total += math.prod(out) * math.prod(ins[1][1:])
        elif node.op_type == "ConvTranspose":  # every input: out / groups x kernel taps
            total += math.prod(ins[0]) * math.prod(ins[1][1:])
        elif node.op_type in ("Gemm", "MatMul"):  # every output: the shared axis
            trans_a = any(a.name == "transA" and a.i for a in node.attribute)
            total += math.prod(out) * (ins[0][-2] if trans_a else ins[0][-1])
        elif node.op_type in ("LSTM", "GRU"):  # every step: gates x H x (F + H)
            w, r = ins[1], ins[2]
            steps, batch = ins[0][0], ins[0][1]
            total += steps * batch * w[0] * w[1] * (w[2] + r[2])
    return total
