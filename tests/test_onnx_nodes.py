"""ONNX's own backend node tests (regenerated from the onnx package, tests/onnx_nodes.py)
run through fastdl.ops: every case of every op in ADAPTERS is one test (ids
"<OpType>-<case name>", so pytest counts them per op; the run ends with a per-op summary,
see tests/conftest.py).

An adapter maps the ONNX node (attributes with ONNX's defaults, inputs by position) to
fastdl.ops calls and returns the node's outputs. One that meets a feature fastdl cannot
express raises Unsupported with the precise reason, and the case is skipped saying so.
To add an op (ConvTranspose, LSTM, GRU, ...): write `def _my_op(case, inputs, n_outputs)`
and add it to ADAPTERS; the op's cases are then collected and run. Ops in PENDING are
listed (each case skipped, naming the missing fastdl op) until their adapter exists.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import onnx_nodes
from fastdl import ops
from onnx_nodes import explicit_pads, pool_output_sizes, spatial_attrs


class Unsupported(Exception):
    """The case uses a feature fastdl cannot express; the message says which."""


# ---------------------------------------------------------------- activations

def _unary(fn):
    return lambda case, inputs, n_outputs: [fn(inputs[0], case.attrs)]


# ---------------------------------------------------------------- convolution

def _conv(case, inputs, n_outputs):
    x, w = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    dims = x.ndim - 2
    kernel, strides, dilations = spatial_attrs(case.attrs, w.shape[2:])
    if list(case.attrs.get("kernel_shape") or kernel) != kernel:
        raise Unsupported("kernel_shape differs from the weight's spatial shape")
    begin, end = explicit_pads(case.attrs, x.shape[2:], kernel, strides, dilations)
    groups = case.attrs.get("group", 1)
    if dims == 2:
        return [ops.conv2d(x, w, b, strides, ((begin[0], end[0]), (begin[1], end[1])),
                           dilations, groups)]
    if dims == 1:
        return [ops.conv1d(x, w, b, strides[0], (begin[0], end[0]), dilations[0], groups)]
    return [ops.conv3d(x, w, b, strides, tuple(zip(begin, end)), dilations, groups)]


_CONV_TRANSPOSE = {1: ops.conv_transpose1d, 2: ops.conv_transpose2d, 3: ops.conv_transpose3d}


def _conv_transpose(case, inputs, n_outputs):
    """ONNX ConvTranspose: output position o is position o + pad_begin of the unpadded
    result, whose extent is full = s*(in-1) + d*(k-1) + 1; output_shape (or auto_pad SAME_*)
    fixes the output size and splits the padding (the odd one at the end for SAME_UPPER,
    at the beginning otherwise). Symmetric padding with an extra within PyTorch's
    output_padding range runs as one fastdl call; other splits crop the unpadded result
    (positions past it receive the bias only)."""
    x, w = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    dims = x.ndim - 2
    kernel, strides, dilations = spatial_attrs(case.attrs, w.shape[2:])
    if list(case.attrs.get("kernel_shape") or kernel) != kernel:
        raise Unsupported("kernel_shape differs from the weight's spatial shape")
    groups = case.attrs.get("group", 1)
    extra = list(case.attrs.get("output_padding") or [0] * dims)
    full = [s * (i - 1) + d * (k - 1) + 1
            for s, i, d, k in zip(strides, x.shape[2:], dilations, kernel)]
    mode = case.attrs.get("auto_pad", "NOTSET")
    sizes = case.attrs.get("output_shape")
    if sizes is None and mode in ("SAME_UPPER", "SAME_LOWER"):
        sizes = [i * s for i, s in zip(x.shape[2:], strides)]
    if sizes is not None:
        sizes = list(sizes)[-dims:]
        total = [f + e - o for f, e, o in zip(full, extra, sizes)]
        begin = [t // 2 if mode == "SAME_UPPER" else t - t // 2 for t in total]
    else:
        pads = list(case.attrs.get("pads") or [0] * (2 * dims)) if mode == "NOTSET" else []
        begin, end = (pads[:dims], pads[dims:]) if pads else ([0] * dims, [0] * dims)
        sizes = [f + e - pb - pe for f, e, pb, pe in zip(full, extra, begin, end)]
    fn = _CONV_TRANSPOSE[dims]
    output_padding = [o - f + 2 * pb for o, f, pb in zip(sizes, full, begin)]
    if all(pb >= 0 and 0 <= op < max(s, d) for pb, op, s, d in
           zip(begin, output_padding, strides, dilations)):
        return [fn(x, w, b, strides, begin, output_padding, groups, dilations)]
    y_full = fn(x, w, b, strides, 0, 0, groups, dilations)
    y = np.zeros(x.shape[:1] + y_full.shape[1:2] + tuple(sizes), np.float32)
    if b is not None:
        y += b.reshape((-1,) + (1,) * dims)
    dst, src = [slice(None)] * 2, [slice(None)] * 2
    for o, f, pb in zip(sizes, full, begin):  # output o <- full position o + pb
        lo, hi = max(0, -pb), min(o, f - pb)
        dst.append(slice(lo, max(lo, hi)))
        src.append(slice(lo + pb, max(lo, hi) + pb))
    y[tuple(dst)] = y_full[tuple(src)]
    return [y]


# ---------------------------------------------------------------- pooling

_MAX_POOL = {1: ops.max_pool1d, 2: ops.max_pool2d, 3: ops.max_pool3d}
_AVG_POOL = {1: ops.avg_pool1d, 2: ops.avg_pool2d, 3: ops.avg_pool3d}


def _pool_geometry(case, x):
    kernel, strides, dilations = spatial_attrs(case.attrs, case.attrs["kernel_shape"])
    begin, end = explicit_pads(case.attrs, x.shape[2:], kernel, strides, dilations)
    ceil_mode = bool(case.attrs.get("ceil_mode", 0))
    out = pool_output_sizes(x.shape[2:], kernel, strides, dilations, begin, end, ceil_mode)
    return kernel, strides, dilations, begin, end, ceil_mode, out


def _torch_style_padding(kernel, begin, end):
    """The symmetric padding fastdl's (PyTorch's) pooling takes, or None."""
    if begin == end and all(2 * p <= k for p, k in zip(begin, kernel)):
        return begin
    return None


def _padded(x, begin, end, out, kernel, strides, dilations, value):
    """x padded explicitly with `value`: ONNX's pads plus, at the end, whatever ceil_mode
    needs so that a valid pooling yields exactly `out` windows."""
    widths = [(0, 0), (0, 0)]
    for size, pb, pe, o, k, s, d in zip(x.shape[2:], begin, end, out, kernel, strides,
                                        dilations):
        extra = max(0, (o - 1) * s + (k - 1) * d + 1 - (size + pb + pe))
        widths.append((pb, pe + extra))
    return np.pad(x, widths, constant_values=value)


def _onnx_indices(plane_idx, x_shape, padded_shape, begin, storage_order):
    """fastdl's (PyTorch's) flat indices into each input plane (of `padded_shape` if the
    input was padded explicitly) -> ONNX's flat indices over N*C*spatial of x_shape, in
    row-major (storage_order 0) or column-major (1) order within a plane."""
    coords = np.unravel_index(plane_idx, padded_shape)
    coords = tuple(c - b for c, b in zip(coords, begin))
    spatial = tuple(x_shape[2:])
    within = np.ravel_multi_index(coords, spatial, order="F" if storage_order else "C")
    n, c = x_shape[:2]
    plane = np.arange(n * c).reshape((n, c) + (1,) * len(spatial)) * int(np.prod(spatial))
    return (within + plane).astype(np.int64)


def _max_pool(case, inputs, n_outputs):
    x0 = inputs[0]
    x = np.asarray(x0, np.float32)  # integer inputs (uint8, int8) are exact in float32
    dims = x.ndim - 2
    kernel, strides, dilations, begin, end, ceil_mode, out = _pool_geometry(case, x)
    want_indices = n_outputs > 1
    padding = _torch_style_padding(kernel, begin, end)
    if padding is not None:
        result = _MAX_POOL[dims](x, kernel, strides, padding, dilations, ceil_mode,
                                 return_indices=want_indices)
        padded_shape, offset = x.shape[2:], [0] * dims
    else:  # asymmetric or large pads: pad with -inf here, pool without padding
        xp = _padded(x, begin, end, out, kernel, strides, dilations, -np.inf)
        result = _MAX_POOL[dims](xp, kernel, strides, 0, dilations, False,
                                 return_indices=want_indices)
        padded_shape, offset = xp.shape[2:], begin
    y, idx = result if want_indices else (result, None)
    outputs = [y.astype(x0.dtype)]
    if want_indices:
        outputs.append(_onnx_indices(idx, x.shape, padded_shape, offset,
                                     case.attrs.get("storage_order", 0)))
    return outputs


def _window_sums(a, kernel, strides, dilations, out):
    """Sum over each (dilated) pooling window of a [N, C, *spatial] with no padding, for
    `out` windows per axis, through fastdl's avg_pool with divisor_override=1.

    fastdl's avg_pool has no dilation (neither has PyTorch's): a dilated window sum with
    stride s is the stride-1 one sampled every s, and the stride-1 one splits into
    dilation phases, each an undilated stride-1 window sum over a[p::d]."""
    dims = a.ndim - 2
    pool = _AVG_POOL[dims]
    if all(d == 1 for d in dilations):
        sums = pool(a, kernel, strides, 0, divisor_override=1)
    else:
        full = [size - (k - 1) * d for size, k, d in zip(a.shape[2:], kernel, dilations)]
        sums = np.zeros(a.shape[:2] + tuple(full), np.float32)
        for phase in itertools.product(*(range(d) for d in dilations)):
            sub = a[(Ellipsis,) + tuple(slice(p, None, d) for p, d in zip(phase, dilations))]
            if any(n < k for n, k in zip(sub.shape[2:], kernel)):
                continue  # this phase holds no whole window
            part = pool(np.ascontiguousarray(sub), kernel, 1, 0, divisor_override=1)
            target = (Ellipsis,) + tuple(slice(p, None, d) for p, d in zip(phase, dilations))
            sums[target] = part[(Ellipsis,) + tuple(slice(0, len(range(p, f, d)))
                                                    for p, f, d in zip(phase, full, dilations))]
        sums = sums[(Ellipsis,) + tuple(slice(None, None, s) for s in strides)]
    return sums[(Ellipsis,) + tuple(slice(0, o) for o in out)]


def _average_pool(case, inputs, n_outputs):
    x = np.asarray(inputs[0], np.float32)
    dims = x.ndim - 2
    kernel, strides, dilations, begin, end, ceil_mode, out = _pool_geometry(case, x)
    include_pad = bool(case.attrs.get("count_include_pad", 0))
    padding = _torch_style_padding(kernel, begin, end)
    if padding is not None and all(d == 1 for d in dilations):
        return [_AVG_POOL[dims](x, kernel, strides, padding, ceil_mode, include_pad)]
    # Asymmetric pads or dilation: window sums of the zero-padded input divided by window
    # sums of a mask that is 1 on the input (and on ONNX's pads if count_include_pad), 0 on
    # what ceil_mode adds past them.
    xp = _padded(x, begin, end, out, kernel, strides, dilations, 0.0)
    mask = np.zeros((1, 1) + xp.shape[2:], np.float32)
    inner = tuple(slice(pb, pb + n) for pb, n in zip(begin, x.shape[2:]))
    padded = tuple(slice(0, pb + n + pe) for pb, n, pe in zip(begin, x.shape[2:], end))
    mask[(0, 0) + (padded if include_pad else inner)] = 1.0
    sums = _window_sums(xp, kernel, strides, dilations, out)
    counts = _window_sums(mask, kernel, strides, dilations, out)
    return [(sums / counts).astype(np.float32)]


def _global_avg_pool(case, inputs, n_outputs):
    return [ops.global_avg_pool(inputs[0])]


def _global_max_pool(case, inputs, n_outputs):
    return [ops.global_max_pool(inputs[0])]


# ---------------------------------------------------------------- batch norm, gemm

def _batch_norm(case, inputs, n_outputs):
    x, scale, bias, mean, var = inputs[:5]
    eps = case.attrs.get("epsilon", 1e-5)
    momentum = case.attrs.get("momentum", 0.9)
    if not case.attrs.get("training_mode", 0):
        return [ops.batch_norm(x, mean, var, scale, bias, training=False, eps=eps)]
    # ONNX: running = momentum * running + (1 - momentum) * batch statistic, with the
    # biased batch variance; fastdl (PyTorch): momentum' = 1 - momentum and the unbiased
    # variance. The normalisation (biased variance) is the same in both.
    running_mean = np.array(mean, np.float32)
    running_var = np.array(var, np.float32)
    y = ops.batch_norm(x, running_mean, running_var, scale, bias, training=True,
                       momentum=1.0 - momentum, eps=eps)
    count = x.size // x.shape[1]
    unbiased_part = running_var - momentum * var  # (1 - momentum) * unbiased variance
    onnx_var = momentum * var + unbiased_part * (count - 1) / count
    return [y, running_mean, onnx_var.astype(np.float32)][:n_outputs]


def _gemm(case, inputs, n_outputs):
    a, b = inputs[0], inputs[1]
    c = inputs[2] if len(inputs) > 2 else None
    alpha, beta = case.attrs.get("alpha", 1.0), case.attrs.get("beta", 1.0)
    a = a.T if case.attrs.get("transA", 0) else a
    b = b.T if case.attrs.get("transB", 0) else b
    n = b.shape[1]
    if c is None or c.size in (1, n) and c.ndim <= 2 and (c.ndim < 2 or c.shape[0] == 1):
        # C is a row vector (or a scalar): the bias of linear(x, w [N, K], bias).
        bias = None if c is None else beta * np.broadcast_to(np.asarray(c).reshape(-1), (n,))
        return [ops.linear(alpha * a, b.T, bias)]
    return [alpha * ops.matmul(a, b) + beta * c]


# ---------------------------------------------------------------- the table

ADAPTERS = {  # ONNX op_type -> adapter(case, inputs by position, number of outputs)
    "Relu": _unary(lambda x, a: ops.relu(x)),
    "LeakyRelu": _unary(lambda x, a: ops.leaky_relu(x, a.get("alpha", 0.01))),
    "Elu": _unary(lambda x, a: ops.elu(x, a.get("alpha", 1.0))),
    "Sigmoid": _unary(lambda x, a: ops.sigmoid(x)),
    "Tanh": _unary(lambda x, a: ops.tanh(x)),
    "HardSwish": _unary(lambda x, a: ops.hard_swish(x)),
    "Softmax": _unary(lambda x, a: ops.softmax(x, a.get("axis", -1))),
    "LogSoftmax": _unary(lambda x, a: ops.log_softmax(x, a.get("axis", -1))),
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _max_pool,
    "AveragePool": _average_pool,
    "GlobalAveragePool": _global_avg_pool,
    "GlobalMaxPool": _global_max_pool,
    "BatchNormalization": _batch_norm,
    "Gemm": _gemm,
}

PENDING = {  # ops fastdl will support: their cases are listed, skipped until adapted
    "LSTM": "fastdl.ops has no lstm yet",
    "GRU": "fastdl.ops has no gru yet",
}


def pytest_generate_tests(metafunc):
    if "node_case" not in metafunc.fixturenames:
        return
    by_op = onnx_nodes.cases_by_op()
    if not by_op:
        metafunc.parametrize("node_case", [pytest.param(
            None, marks=pytest.mark.skip(reason="onnx is not installed"))])
        return
    params = [pytest.param(case, id=f"{op}-{case.name}")
              for op in sorted(set(ADAPTERS) | set(PENDING)) for case in by_op.get(op, [])]
    metafunc.parametrize("node_case", params)


def test_onnx_node(node_case):
    if node_case.op_type in PENDING:
        pytest.skip(PENDING[node_case.op_type])
    adapter = ADAPTERS[node_case.op_type]
    for inputs, expected in node_case.data_sets:
        present = list(inputs)
        while present and present[-1] is None:  # omitted trailing optional inputs
            present.pop()
        try:
            outputs = adapter(node_case, present, len(expected))
        except Unsupported as why:
            pytest.skip(f"{node_case.op_type}: {why}")
        assert len(outputs) == len(expected), node_case.name
        for k, (got, want) in enumerate(zip(outputs, expected)):
            got = np.asarray(got)
            assert got.shape == want.shape, (node_case.name, k, got.shape, want.shape)
            if want.dtype.kind in "iub":
                np.testing.assert_array_equal(got, want, err_msg=f"{node_case.name} #{k}")
            else:
                np.testing.assert_allclose(got, want, rtol=node_case.rtol,
                                           atol=node_case.atol,
                                           err_msg=f"{node_case.name} output #{k}")


def test_every_adapted_op_has_cases(onnx_node_cases):
    """A renamed op or a filter gone wrong would otherwise pass by running nothing."""
    missing = [op for op in ADAPTERS if not onnx_node_cases.get(op)]
    assert not missing, f"no ONNX node test case for {missing}"
