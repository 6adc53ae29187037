"""ONNX's own backend node tests (regenerated from the onnx package, tests/onnx_nodes.py)
run through fastdl.ops: every case of every op in ADAPTERS is one test (ids
"<OpType>-<case name>", so pytest counts them per op; the run ends with a per-op summary,
see tests/conftest.py).

An adapter maps the ONNX node (attributes with ONNX's defaults, inputs by position) to
fastdl.ops calls and returns the node's outputs. One that meets a feature fastdl cannot
express raises Unsupported with the precise reason, and the case is skipped saying so.
To add an op: write `def _my_op(case, inputs, n_outputs)` and add it to ADAPTERS; the
op's cases are then collected and run. Ops in PENDING are
listed (each case skipped, naming the missing fastdl op) until their adapter exists.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import onnx_nodes
from fastdl import ops
from fastdl.io.onnx_attrs import explicit_pads, pool_output_sizes, spatial_attrs


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
    """ONNX ConvTranspose -> fastdl's (PyTorch's) conv_transpose, whose padding is one
    symmetric amount per axis cropped from both ends and whose output_padding extends the
    end. ONNX's pads may be asymmetric or, with output_shape, negative (the output grows):
    fastdl computes with the largest symmetric padding inside both pads and an
    output_padding reaching the wanted end; the adapter crops the rest, and pads with
    zeros (there is no bias in that case) only where output_padding would exceed what
    PyTorch allows."""
    x, w = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    dims = x.ndim - 2
    kernel, strides, dilations = spatial_attrs(case.attrs, w.shape[2:])
    if list(case.attrs.get("kernel_shape") or kernel) != kernel:
        raise Unsupported("kernel_shape differs from the weight's spatial shape")
    groups = case.attrs.get("group", 1)
    out_pad = list(case.attrs.get("output_padding") or [0] * dims)
    # Full output before any padding is cropped, per axis (ONNX and PyTorch agree).
    full = [(n - 1) * s + (k - 1) * d + 1 for n, s, k, d in zip(x.shape[2:], strides, kernel,
                                                                dilations)]
    mode = case.attrs.get("auto_pad", "NOTSET")
    if case.attrs.get("output_shape") or mode in ("SAME_UPPER", "SAME_LOWER"):
        out = list(case.attrs.get("output_shape") or [n * s for n, s in zip(x.shape[2:],
                                                                           strides)])
        total = [f + op - o for f, op, o in zip(full, out_pad, out)]
        if mode == "SAME_UPPER":
            begin, end = [t // 2 for t in total], [t - t // 2 for t in total]
        else:
            begin, end = [t - t // 2 for t in total], [t // 2 for t in total]
    else:
        begin, end = explicit_pads(case.attrs, x.shape[2:], kernel, strides, dilations)
        out = [f + op - pb - pe for f, op, pb, pe in zip(full, out_pad, begin, end)]
    padding = [max(0, min(pb, pe)) for pb, pe in zip(begin, end)]
    # The wanted window in full-output coordinates is [begin, begin + out); fastdl gives
    # [padding, full + output_padding - padding).
    reach = [max(0, pb + o - (f - p)) for pb, o, f, p in zip(begin, out, full, padding)]
    ok = [r < max(s, d) for r, s, d in zip(reach, strides, dilations)]
    torch_out_pad = [r if fits else 0 for r, fits in zip(reach, ok)]
    if not all(ok) and b is not None:
        raise Unsupported("output_shape beyond PyTorch's output_padding range with a bias")
    y = _CONV_TRANSPOSE[dims](x, w, b, strides, padding, torch_out_pad, groups, dilations)
    front = [max(0, p - pb) for pb, p in zip(begin, padding)]  # a negative begin pad
    widths = [(0, 0), (0, 0)] + [(f, max(0, pb - p + o - n)) for f, pb, p, o, n in
                                 zip(front, begin, padding, out, y.shape[2:])]
    y = np.pad(y, widths)
    window = tuple(slice(pb - p + f, pb - p + f + o) for f, pb, p, o in
                   zip(front, begin, padding, out))
    return [y[(Ellipsis,) + window]]


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


# ---------------------------------------------------------------- recurrent

# ONNX orders the gate blocks of W, R and B as LSTM i,o,f,c and GRU z,r,h; fastdl (as
# PyTorch) as LSTM i,f,g,o and GRU r,z,n: the ONNX block each fastdl block comes from.
_LSTM_BLOCKS, _GRU_BLOCKS = (0, 2, 3, 1), (1, 0, 2)


def _gate_blocks(a, order):
    """a [..., G*H, ...] on axis 0 with its G gate blocks put in `order`."""
    return np.concatenate([np.split(a, len(order))[i] for i in order])


def _rnn_attrs(case, inputs):
    """(x as [T, B, I], number of directions, B split into (Wb, Rb) per direction or None)
    after refusing what neither fastdl nor PyTorch has."""
    attrs = case.attrs
    if attrs.get("clip") is not None:
        raise Unsupported("clip: fastdl's (PyTorch's) recurrences do not clip")
    if attrs.get("activations") or attrs.get("activation_alpha") or attrs.get("activation_beta"):
        raise Unsupported("custom activations: fastdl uses sigmoid/tanh as PyTorch")
    if attrs.get("input_forget", 0):
        raise Unsupported("input_forget (coupled input and forget gates)")
    x = inputs[0]
    if attrs.get("layout", 0):
        x = x.transpose(1, 0, 2)
    seq_lens = inputs[4] if len(inputs) > 4 else None
    if seq_lens is not None and np.any(np.asarray(seq_lens) != x.shape[0]):
        raise Unsupported("sequence_lens shorter than the sequence (PyTorch needs packing)")
    directions = 2 if attrs.get("direction", "forward") == "bidirectional" else 1
    b = inputs[3] if len(inputs) > 3 else None
    biases = [None] * directions if b is None else [np.split(bd, 2) for bd in b]
    return np.ascontiguousarray(x, np.float32), directions, biases


def _run_directions(case, x, directions, run_one):
    """Runs run_one(d, x in that direction's time order) -> (y [T, B, H], finals) per
    direction and stacks them the ONNX way: Y [T, dirs, B, H], each final [dirs, B, H];
    layout 1 moves the batch first."""
    reverse = case.attrs.get("direction", "forward") == "reverse"
    ys, finals = [], []
    for d in range(directions):
        backwards = reverse or d == 1
        y, fin = run_one(d, x[::-1] if backwards else x)
        ys.append(y[::-1] if backwards else y)
        finals.append(fin)
    y = np.stack(ys, axis=1)
    states = [np.stack(s) for s in zip(*finals)]
    if case.attrs.get("layout", 0):
        y, states = y.transpose(2, 0, 1, 3), [s.transpose(1, 0, 2) for s in states]
    return [y] + states


def _initial(inputs, position, d, batch, hidden):
    s = inputs[position] if len(inputs) > position else None
    return np.zeros((batch, hidden), np.float32) if s is None else np.asarray(s[d], np.float32)


def _lstm(case, inputs, n_outputs):
    """ONNX LSTM through fastdl.ops.lstm per direction; peepholes (which PyTorch's LSTM has
    not) through the step equations written with fastdl.ops.linear/sigmoid/tanh."""
    x, directions, biases = _rnn_attrs(case, inputs)
    w, r = inputs[1], inputs[2]
    hidden, batch = case.attrs["hidden_size"], x.shape[1]
    peep = inputs[7] if len(inputs) > 7 else None

    def run_one(d, xs):
        h0 = _initial(inputs, 5, d, batch, hidden)
        c0 = _initial(inputs, 6, d, batch, hidden)
        wb, rb = biases[d] if biases[d] is not None else (None, None)
        if peep is None or not np.any(peep[d]):
            reorder = (lambda a: None if a is None else _gate_blocks(a, _LSTM_BLOCKS))
            y, (h, c) = ops.lstm(xs, h0, c0, reorder(w[d]), reorder(r[d]), reorder(wb),
                                 reorder(rb))
            return y, (h[0], c[0])  # h_n, c_n [1, B, H] as torch.nn.LSTM's
        p_i, p_o, p_f = np.split(peep[d], 3)
        h, c, ys = h0, c0, []
        for xt in xs:
            gates = ops.linear(xt, w[d], wb) + ops.linear(h, r[d], rb)
            i, o, f, g = np.split(gates, 4, axis=1)
            i, f = ops.sigmoid(i + p_i * c), ops.sigmoid(f + p_f * c)
            c = f * c + i * ops.tanh(g)
            h = ops.sigmoid(o + p_o * c) * ops.tanh(c)
            ys.append(h)
        return np.stack(ys), (h, c)

    outputs = _run_directions(case, x, directions, run_one)
    return _named_outputs(case, outputs, ["Y", "Y_h", "Y_c"])


def _gru(case, inputs, n_outputs):
    """ONNX GRU. linear_before_reset=1 is PyTorch's GRU: fastdl.ops.gru per direction.
    ONNX's default, 0, applies the reset gate before the recurrent product of the new
    gate, r * h inside R_h (r * h); fastdl has no such kernel, so that form runs the step
    equations written with fastdl.ops.linear/sigmoid/tanh."""
    x, directions, biases = _rnn_attrs(case, inputs)
    w, r = inputs[1], inputs[2]
    hidden, batch = case.attrs["hidden_size"], x.shape[1]
    before_reset = case.attrs.get("linear_before_reset", 0)

    def run_one(d, xs):
        h0 = _initial(inputs, 5, d, batch, hidden)
        wb, rb = biases[d] if biases[d] is not None else (None, None)
        if before_reset:
            reorder = (lambda a: None if a is None else _gate_blocks(a, _GRU_BLOCKS))
            y, h = ops.gru(xs, h0, reorder(w[d]), reorder(r[d]), reorder(wb), reorder(rb))
            return y, (h[0],)
        w_zr, w_h = w[d][:2 * hidden], w[d][2 * hidden:]
        r_zr, r_h = r[d][:2 * hidden], r[d][2 * hidden:]
        wb_zr, wb_h = (None, None) if wb is None else (wb[:2 * hidden], wb[2 * hidden:])
        rb_zr, rb_h = (None, None) if rb is None else (rb[:2 * hidden], rb[2 * hidden:])
        h, ys = h0, []
        for xt in xs:
            z, rg = np.split(ops.sigmoid(ops.linear(xt, w_zr, wb_zr)
                                         + ops.linear(h, r_zr, rb_zr)), 2, axis=1)
            n = ops.tanh(ops.linear(xt, w_h, wb_h) + ops.linear(rg * h, r_h, rb_h))
            h = (1 - z) * n + z * h
            ys.append(h)
        return np.stack(ys), (h,)

    outputs = _run_directions(case, x, directions, run_one)
    return _named_outputs(case, outputs, ["Y", "Y_h"])


def _named_outputs(case, outputs, onnx_names):
    """The outputs the node asks for, by their position in the op's signature
    (onnx_names, for the reader: ONNX RNN nodes often ask for Y_h only)."""
    assert len(outputs) == len(onnx_names)
    return [outputs[k] for k in case.output_positions]


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
    "MaxPool": _max_pool,
    "AveragePool": _average_pool,
    "GlobalAveragePool": _global_avg_pool,
    "GlobalMaxPool": _global_max_pool,
    "BatchNormalization": _batch_norm,
    "Gemm": _gemm,
    "ConvTranspose": _conv_transpose,
    "LSTM": _lstm,
    "GRU": _gru,
}

PENDING = {}  # op_type -> why: ops fastdl will support, their cases skipped until adapted


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


def test_onnx_gru_cases_with_linear_before_reset(onnx_node_cases):
    """Every ONNX GRU case runs ONNX's default linear_before_reset=0, which fastdl.ops.gru
    (PyTorch's GRU) does not compute; the same cases with linear_before_reset=1, expected
    outputs from ONNX's own reference evaluator, run through fastdl.ops.gru itself."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    cases = onnx_node_cases.get("GRU", [])
    assert cases
    for case in cases:
        attrs = dict(case.attrs, linear_before_reset=1)
        outputs = ["Y", "Y_h"]
        node = onnx.helper.make_node("GRU", case.input_names, outputs, **attrs)
        for inputs, _ in case.data_sets:
            feeds = {n: a for n, a in zip(case.input_names, inputs) if n}
            expected = ReferenceEvaluator(node).run(None, feeds)
            lbr_case = type(case)(case.name, "GRU", case.opset, attrs, case.input_names,
                                  outputs, [], case.rtol, case.atol, [0, 1])
            got = _gru(lbr_case, list(inputs), 2)
            for k, (g, want) in enumerate(zip(got, expected)):
                np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6,
                                           err_msg=f"{case.name} lbr=1 output #{k}")
