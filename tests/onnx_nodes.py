"""ONNX's backend node test cases, regenerated from the onnx package's generators
(onnx.backend.test.case.node), shared by the tests (see tests/conftest.py's
onnx_node_cases fixture and tests/test_onnx_nodes.py).

Generating them runs every generator of the onnx package (~9 s), so it happens once per
session, on first use. Only single-node graphs are kept (multi-node ones are the
"_expanded" function bodies), grouped by op_type. (The geometry rules of ONNX's
convolution and pooling attributes are the library's: fastdl/io/onnx_attrs.py.)
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field


@dataclass
class NodeCase:
    """One ONNX node test case: the node's attributes, its inputs by position (None for
    an omitted optional input) and the expected outputs, per data set."""
    name: str
    op_type: str
    opset: int
    attrs: dict
    input_names: list
    output_names: list
    data_sets: list = field(repr=False)  # [(inputs by node position, expected outputs)]
    rtol: float = 1e-3
    atol: float = 1e-7
    # Position of each present output in the op's signature (nodes may omit outputs,
    # e.g. an LSTM node asking for Y_h only has outputs ['', 'Y_h']).
    output_positions: list = field(default_factory=list)
    model: bytes = field(default=b"", repr=False)  # the case's ModelProto, serialized


def onnx_available():
    try:
        import onnx  # noqa: F401
        from onnx.backend.test.case import node  # noqa: F401
    except ImportError:
        return False
    return True


def _node_case(case, onnx):
    graph = case.model.graph
    node = graph.node[0]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}
    opset = next((o.version for o in case.model.opset_import if o.domain in ("", "ai.onnx")),
                 0)
    graph_inputs = [i.name for i in graph.input]
    data_sets = []
    for inputs, outputs in case.data_sets:
        by_name = dict(zip(graph_inputs, inputs))
        data_sets.append(([by_name.get(n) if n else None for n in node.input], list(outputs)))
    return NodeCase(case.name, node.op_type, opset, attrs, list(node.input),
                    [n for n in node.output if n], data_sets, case.rtol, case.atol,
                    [k for k, n in enumerate(node.output) if n],
                    case.model.SerializeToString())


@functools.lru_cache(maxsize=1)
def cases_by_op():
    """{op_type: [NodeCase, ...]} for every single-node case in the onnx package ({} if
    onnx is not installed). Cached for the session."""
    if not onnx_available():
        return {}
    import onnx
    from onnx.backend.test.case import node
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the generators of unrelated ops warn
        # All at once: the package imports its generators once per process, so filtering
        # by op_type here would only work on the first call.
        cases = node.collect_testcases(None)
    out = {}
    for case in cases:
        if case.kind == "node" and len(case.model.graph.node) == 1:
            nc = _node_case(case, onnx)
            out.setdefault(nc.op_type, []).append(nc)
    for listed in out.values():
        listed.sort(key=lambda c: c.name)
    return out
