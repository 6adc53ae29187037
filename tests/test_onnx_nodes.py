"""ONNX's own backend node tests (regenerated from the onnx package, tests/onnx_nodes.py)
run through fastdl.io.load_onnx: each case's node becomes a model (its first input the
model's input, the others constants; a time-major recurrent node between transposes from
and to batch-first arrays), loaded by the library's converters (fastdl/io/onnx_ops.py) and
predicted. Every case of every op load_onnx converts is one test (ids "<OpType>-<case
name>", so pytest counts them per op; the run ends with a per-op summary, see
tests/conftest.py). A case load_onnx refuses -- NotImplementedError: a form its layers do
not compute, the batch axis mixed with the others, an input dtype other than float32 --
is skipped saying why.
"""
from __future__ import annotations

import numpy as np
import pytest

import onnx_nodes


def _converted_ops():
    try:
        from fastdl.io.onnx_ops import CONVERTERS
    except ImportError:
        return set()
    return set(CONVERTERS)


def pytest_generate_tests(metafunc):
    if "node_case" not in metafunc.fixturenames:
        return
    by_op = onnx_nodes.cases_by_op()
    if not by_op:
        metafunc.parametrize("node_case", [pytest.param(
            None, marks=pytest.mark.skip(reason="onnx is not installed"))])
        return
    params = [pytest.param(case, id=f"{op}-{case.name}")
              for op in sorted(_converted_ops()) for case in by_op.get(op, [])]
    metafunc.parametrize("node_case", params)


_RECURRENT = {"LSTM", "GRU", "RNN"}
# A recurrent node's outputs between time-major ONNX and batch-first fastdl.
_TO_BATCH_FIRST = {0: [2, 0, 1, 3], 1: [1, 0, 2], 2: [1, 0, 2]}  # Y, Y_h, Y_c


def _node_model(case, inputs, expected):
    """(model, x, to batch-first per output): the node case as a model load_onnx reads.
    Its first input is the model's input (batch axis first), the other inputs constants
    of this data set; a time-major recurrent node sits between transposes from and to
    batch-first arrays, so the model reads and gives those."""
    import onnx
    from onnx import helper, numpy_helper
    node = onnx.load_from_string(case.model).graph.node[0]
    x = inputs[0]
    time_major = case.op_type in _RECURRENT and not case.attrs.get("layout", 0)
    nodes, outputs, perms = [node], [], []
    feed = node.input[0]
    if time_major:
        feed = "x_batch_first"
        x = x.transpose(1, 0, 2)
        nodes.insert(0, helper.make_node("Transpose", [feed], [node.input[0]],
                                         perm=[1, 0, 2]))
    for position, name in zip(case.output_positions, case.output_names):
        perm = _TO_BATCH_FIRST[position] if time_major else None
        if perm:
            nodes.append(helper.make_node("Transpose", [name], [name + "_batch_first"],
                                          perm=perm))
            name += "_batch_first"
        rank = len(expected[len(outputs)].shape)
        outputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                     [f"d{i}" for i in range(rank)]))
        perms.append(perm)
    dtype = helper.np_dtype_to_tensor_dtype(x.dtype)
    constants = [numpy_helper.from_array(a, n) for n, a in zip(node.input[1:], inputs[1:])
                 if n and a is not None]
    graph = helper.make_graph(nodes, case.name, [helper.make_tensor_value_info(
        feed, dtype, ["n"] + list(x.shape[1:]))], outputs, constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", case.opset)])
    return model, x, perms


def test_onnx_node(node_case):
    from fastdl.io import load_onnx
    for inputs, expected in node_case.data_sets:
        if not all(isinstance(a, (np.ndarray, np.generic))
                   for a in list(inputs) + list(expected) if a is not None):
            pytest.skip("inputs or outputs that are sequences or optionals, not tensors")
        inputs = [None if a is None else np.asarray(a) for a in inputs]
        expected = [np.asarray(a) for a in expected]
        model, x, perms = _node_model(node_case, list(inputs), expected)
        try:
            loaded = load_onnx(model)
        except NotImplementedError as why:
            pytest.skip(str(why).split("\n", 1)[-1].strip())
        except ValueError as why:
            if not str(why).startswith("model: input"):
                raise
            pytest.skip(str(why))
        got = loaded.predict(x, verbose=0)
        got = got if isinstance(got, list) else [got]
        assert len(got) == len(expected), node_case.name
        for k, (g, want, perm) in enumerate(zip(got, expected, perms)):
            want = want.transpose(perm) if perm else want
            assert g.shape == want.shape, (node_case.name, k, g.shape, want.shape)
            np.testing.assert_allclose(g, want, rtol=node_case.rtol, atol=node_case.atol,
                                       err_msg=f"{node_case.name} output #{k}")


def test_most_converted_ops_have_cases(onnx_node_cases):
    """A renamed op or a filter gone wrong would otherwise pass by running nothing."""
    missing = sorted(op for op in _converted_ops() if not onnx_node_cases.get(op))
    assert len(missing) <= 2, f"no ONNX node test case for {missing}"


def test_onnx_gru_cases_with_linear_before_reset(onnx_node_cases):
    """Every ONNX GRU case runs ONNX's default linear_before_reset=0; the same cases with
    linear_before_reset=1 (PyTorch's GRU, Keras' reset_after), expected outputs from
    ONNX's own reference evaluator, through load_onnx too."""
    import onnx
    from onnx.reference import ReferenceEvaluator
    from fastdl.io import load_onnx

    cases = onnx_node_cases.get("GRU", [])
    assert cases
    for case in cases:
        if any(n and i == 4 for i, n in enumerate(case.input_names)):
            continue  # sequence_lens: load_onnx refuses it (test_onnx_node says so)
        attrs = dict(case.attrs, linear_before_reset=1)
        node = onnx.helper.make_node("GRU", case.input_names, ["Y", "Y_h"], **attrs)
        graph = onnx.helper.make_graph([node], case.name, [], [])
        model = onnx.helper.make_model(graph, opset_imports=[
            onnx.helper.make_opsetid("", case.opset)])
        for inputs, _ in case.data_sets:
            feeds = {n: a for n, a in zip(case.input_names, inputs) if n}
            expected = ReferenceEvaluator(node).run(None, feeds)
            lbr_case = type(case)(case.name, "GRU", case.opset, attrs, case.input_names,
                                  ["Y", "Y_h"], [], case.rtol, case.atol, [0, 1],
                                  model.SerializeToString())
            built, x, perms = _node_model(lbr_case, list(inputs), expected)
            got = load_onnx(built).predict(x, verbose=0)
            for k, (g, want, perm) in enumerate(zip(got, expected, perms)):
                want = want if perm is None else want.transpose(perm)
                np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6,
                                           err_msg=f"{case.name} lbr=1 output #{k}")
