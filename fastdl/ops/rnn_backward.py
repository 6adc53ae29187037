"""Gradients of the recurrent layers by backpropagation through time.

The training pair, one layer in one direction, time-major (what the Keras-like layers
train with; contracts: fastdl/_reference/rnn.py):
  rnn_layer_train(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse) -> (y, h_n, c_n, saved)
  rnn_layer_backward(kind, grad_y, grad_h_n, grad_c_n, x, y, saved, h0, c0, w_ih, w_hh,
                     reverse) -> (grad_x, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_b_ih,
                                  grad_b_hh)
for kind 'lstm', 'gru' (PyTorch's GRU, Keras' reset_after=True), 'gru_reset_before' (Keras'
reset_after=False), 'rnn_tanh', 'rnn_relu' (torch.nn.RNN, Keras' SimpleRNN).

PyTorch's face: lstm_backward, gru_backward, lstm_cell_backward, gru_cell_backward give what
torch.autograd gives for torch.nn.LSTM / GRU / LSTMCell / GRUCell (stacks of layers and
bidirectional ones too, with weights given as LSTMPlan takes them). They take the forward's
arguments with the upstream gradients first, run the training forward (keeping the gates)
and then the backward; a layer that trains keeps `saved` from its own forward instead.

The weight gradients sum T * B products per entry in float32 (the GEMM adds a K block per
chain, then the chains; the biases 256 rows per partial sum): the rounding error grows
about as (block + T * B / block) * 2^-24 * sum |terms|.
"""
import numpy as np

from fastdl import _validate as v
from fastdl._backend import kernels
from fastdl.ops import rnn_masked
from fastdl.ops.rnn import GRUPlan, LSTMPlan, _fits_x, _is_matrix_list, _layer_state, _single

GATES = {"lstm": 4, "gru": 3, "gru_reset_before": 3, "rnn_tanh": 1, "rnn_relu": 1}


# ---------------------------------------------------------------- the training pair

def _kind(kind):
    if kind not in GATES:
        raise ValueError(f"kind: expected one of {', '.join(map(repr, GATES))}, got {kind!r}")
    return kind


def _shaped(value, name, shape, what, optional=True):
    """value as float32 of exactly `shape` (None stays None when optional)."""
    if value is None:
        if optional:
            return None
        raise ValueError(f"{name}: expected {what} {shape}, got None")
    arr = v.float32_array(value, name)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name}: expected {what} {tuple(shape)}, got shape {arr.shape}")
    return arr


def _layer_args(kind, x, h0, c0, w_ih, w_hh):
    """Checked (x [T, B, I], h0 [B, H] (zeros for None), c0 (LSTM; zeros for None),
    w_ih, w_hh, hidden)."""
    gates = GATES[_kind(kind)]
    x = v.float32_array(x, "x", 3, "3-D array (T, B, input_size)")
    w_hh = v.float32_array(w_hh, "w_hh", 2, f"2-D array ({gates}*hidden, hidden)")
    hidden = w_hh.shape[1]
    if hidden < 1 or w_hh.shape[0] != gates * hidden:
        raise ValueError(f"w_hh: expected shape ({gates}*hidden, hidden) for kind {kind!r}, got "
                         f"{w_hh.shape}")
    w_ih = _shaped(w_ih, "w_ih", (gates * hidden, x.shape[2]), "shape (gates*hidden, "
                   "x's input size)", optional=False)
    state = (x.shape[1], hidden)
    h0 = _shaped(h0, "h0", state, "shape (batch, hidden)")
    h0 = np.zeros(state, np.float32) if h0 is None else h0
    if kind == "lstm":
        c0 = _shaped(c0, "c0", state, "shape (batch, hidden)")
        c0 = np.zeros(state, np.float32) if c0 is None else c0
    elif c0 is not None:
        raise ValueError(f"c0: only an LSTM has a cell state; expected None for kind {kind!r}")
    return x, h0, c0, w_ih, w_hh, hidden


def _dropout_masks(masks, kind, x, hidden):
    """Checked (input masks [G, B, I] or None, recurrent masks [G, B, H] or None), or None."""
    if masks is None:
        return None
    if not isinstance(masks, (tuple, list)) or len(masks) != 2:
        raise TypeError(f"masks: expected (input_masks, recurrent_masks), got "
                        f"{type(masks).__name__}")
    gates, batch = GATES[kind], x.shape[1]
    return (_shaped(masks[0], "masks[0]", (gates, batch, x.shape[2]), "input masks of shape"),
            _shaped(masks[1], "masks[1]", (gates, batch, hidden), "recurrent masks of shape"))


def rnn_layer_train(kind, x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, reverse=False,
                    masks=None):
    """One recurrent layer in one direction, keeping what rnn_layer_backward needs.

    x [T, B, I]; h0, c0 [B, H] or None (zeros; c0 for 'lstm' only); w_ih [G*H, I], w_hh
    [G*H, H], b_ih / b_hh [G*H] or None, in torch's gate order (G = 4 for 'lstm', 3 for the
    GRUs, 1 for the RNNs; see fastdl/_reference/rnn.py for each kind's formula). reverse:
    from the last step to the first. masks: Keras' recurrent dropout, (input masks
    [G, B, I] or None, recurrent masks [G, B, H] or None): gate k reads x * input_masks[k]
    and h_{t-1} * recurrent_masks[k] (fastdl/ops/rnn_masked.py); the kernels have no masked
    form, so masked layers run fastdl/ops/rnn_masked.py (NumPy, float64) on every backend. Returns
    (y [T, B, H], h_n [B, H], c_n [B, H] or None, saved), float32; saved is opaque (the
    backend's own layout)."""
    x, h0, c0, w_ih, w_hh, hidden = _layer_args(kind, x, h0, c0, w_ih, w_hh)
    width = (GATES[kind] * hidden,)
    b_ih = _shaped(b_ih, "b_ih", width, "shape")
    b_hh = _shaped(b_hh, "b_hh", width, "shape")
    masks = _dropout_masks(masks, kind, x, hidden)
    if masks is not None:
        return rnn_masked.layer_train(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh,
                                      v.flag(reverse, "reverse"), masks)
    return kernels.rnn_layer_train(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh,
                                   v.flag(reverse, "reverse"))


def rnn_layer_backward(kind, grad_y, grad_h_n, grad_c_n, x, y, saved, h0, c0, w_ih, w_hh,
                       reverse=False, masks=None):
    """Backpropagation through time of rnn_layer_train (the same kind, x, h0, c0, weights,
    direction and masks; y and saved as it returned them). grad_y [T, B, H], grad_h_n, grad_c_n
    [B, H] ('lstm'): each None for zeros.

    Returns (grad_x [T, B, I], grad_h0 [B, H], grad_c0 [B, H] or None, grad_w_ih, grad_w_hh,
    grad_b_ih, grad_b_hh [G*H]), float32."""
    x, h0, c0, w_ih, w_hh, hidden = _layer_args(kind, x, h0, c0, w_ih, w_hh)
    steps, batch = x.shape[:2]
    y = _shaped(y, "y", (steps, batch, hidden), "rnn_layer_train's output of shape",
                optional=False)
    saved = v.float32_array(saved, "saved", 3, "3-D array (T, B, ...) from rnn_layer_train")
    if saved.shape[:2] != (steps, batch):
        raise ValueError(f"saved: expected what rnn_layer_train returned for x of shape "
                         f"{x.shape}, got shape {saved.shape}")
    grad_y = _shaped(grad_y, "grad_y", y.shape, "y's shape")
    grad_h_n = _shaped(grad_h_n, "grad_h_n", h0.shape, "h_n's shape")
    if kind == "lstm":
        grad_c_n = _shaped(grad_c_n, "grad_c_n", h0.shape, "c_n's shape")
    elif grad_c_n is not None:
        raise ValueError(f"grad_c_n: only an LSTM has a cell state; expected None for kind "
                         f"{kind!r}")
    masks = _dropout_masks(masks, kind, x, hidden)
    if masks is not None:
        return rnn_masked.layer_backward(kind, grad_y, grad_h_n, grad_c_n, x, y, saved, h0,
                                         c0, w_ih, w_hh, v.flag(reverse, "reverse"), masks)
    return kernels.rnn_layer_backward(kind, grad_y, grad_h_n, grad_c_n, x, y, saved, h0, c0,
                                      w_ih, w_hh, v.flag(reverse, "reverse"))


# ---------------------------------------------------------------- stacks (PyTorch's face)

def _stack_gradients(plan, x, h0, c0, grad_y, grad_h_n, grad_c_n):
    """The gradients of a plan's stack (weights: plan._weights, torch's order) at x [T, B, I]
    from grad_y [T, B, D*H], grad_h_n / grad_c_n [L*D, B, H] (each None for zeros); h0 / c0
    [L*D, B, H] or None. Returns (grad_x, grad_h0, grad_c0 or None, [(grad_w_ih, grad_w_hh,
    grad_b_ih or None, grad_b_hh or None) per layer and direction])."""
    kind, dirs, hidden = plan._kind, 2 if plan.bidirectional else 1, plan.hidden_size
    count = plan.num_layers * dirs
    lstm = kind == "lstm"
    records, seq = [], x
    for layer in range(plan.num_layers):
        outs = []
        for d in range(dirs):
            k = layer * dirs + d
            w_ih, w_hh, b_ih, b_hh = plan._weights[k]
            h0k = None if h0 is None else h0[k]
            c0k = None if c0 is None or not lstm else c0[k]
            y, _, _, saved = rnn_layer_train(kind, seq, h0k, c0k, w_ih, w_hh, b_ih, b_hh, d == 1)
            records.append((seq, y, saved, h0k, c0k))
            outs.append(y)
        seq = outs[0] if dirs == 1 else np.concatenate(outs, axis=2)
    grad_h0 = np.empty((count,) + x.shape[1:2] + (hidden,), np.float32)
    grad_c0 = np.empty_like(grad_h0) if lstm else None
    weights = [None] * count
    dseq = grad_y
    for layer in reversed(range(plan.num_layers)):
        dx = None
        for d in range(dirs):
            k = layer * dirs + d
            w_ih, w_hh, b_ih, b_hh = plan._weights[k]
            seq_in, y, saved, h0k, c0k = records[k]
            dy = None if dseq is None else dseq[:, :, d * hidden:(d + 1) * hidden]
            dh_n = None if grad_h_n is None else grad_h_n[k]
            dc_n = None if grad_c_n is None or not lstm else grad_c_n[k]
            dxk, grad_h0[k], dc0, dw_ih, dw_hh, db_ih, db_hh = rnn_layer_backward(
                kind, dy, dh_n, dc_n, seq_in, y, saved, h0k, c0k, w_ih, w_hh, d == 1)
            if lstm:
                grad_c0[k] = dc0
            weights[k] = (dw_ih, dw_hh, None if b_ih is None else db_ih,
                          None if b_hh is None else db_hh)
            dx = dxk if dx is None else dx + dxk
        dseq = dx
    return dseq, grad_h0, grad_c0, weights


def _state_for(plan, value, name, batch, batched, single):
    """A state argument as [L*D, B, H] float32 (None stays None), and how to give its
    gradient back in the caller's shape."""
    if value is None:
        return None, None
    shape = np.shape(value)
    if single:
        value = _layer_state(value, name, batched)
    arr = plan._state(value, name, batch, batched)
    return arr, (lambda g: g.reshape(shape))


def _stack_backward(plan, single, x, states, grads_y, grad_states):
    """lstm_backward / gru_backward on a validated plan: states and grad_states (h, c) or
    (h,); returns (grad_x, grad per state, weights' gradients) in the caller's forms."""
    xt, batched = plan._time_major(x)
    steps, batch = xt.shape[:2]
    dirs = 2 if plan.bidirectional else 1
    checked = [_state_for(plan, s, name, batch, batched, single) for name, s in states]
    grad_checked = [_state_for(plan, g, name, batch, batched, single)[0]
                    for name, g in grad_states]
    dy = None
    if grads_y is not None:
        width = dirs * plan.hidden_size
        want = ((batch, steps, width) if plan.batch_first else (steps, batch, width)) \
            if batched else (steps, width)
        dy = _shaped(grads_y, "grad_y", want, "the forward's output shape")
        if not batched:
            dy = dy[:, None, :]
        elif plan.batch_first:
            dy = np.ascontiguousarray(dy.transpose(1, 0, 2))
    h0 = checked[0][0]
    c0 = checked[1][0] if len(checked) > 1 else None
    grad_h_n = grad_checked[0]
    grad_c_n = grad_checked[1] if len(grad_checked) > 1 else None
    dx, dh0, dc0, weights = _stack_gradients(plan, xt, h0, c0, dy, grad_h_n, grad_c_n)
    if not batched:
        dx = dx[:, 0, :]
    elif plan.batch_first:
        dx = np.ascontiguousarray(dx.transpose(1, 0, 2))
    state_grads = [None if restore is None else restore(g if batched else g[:, 0, :])
                   for (_, restore), g in zip(checked, (dh0, dc0))]
    columns = list(zip(*weights))  # (w_ih's, w_hh's, b_ih's, b_hh's)
    if single:
        columns = [c[0] for c in columns]
    else:
        columns = [None if all(g is None for g in c) else list(c) for c in columns]
    return dx, state_grads, columns


def lstm_backward(grad_y, grad_h_n, grad_c_n, x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None,
                  num_layers=None, bidirectional=False, batch_first=False):
    """The gradients of torch.nn.LSTM (and fastdl.ops.lstm / LSTMPlan) from those of its
    outputs: -> (grad_x, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh).

    grad_y like y (None: no gradient through y); grad_h_n, grad_c_n like h_n, c_n (None:
    zeros). The forward's arguments follow as lstm() / LSTMPlan take them: one matrix each
    for one layer and direction (then h0, c0 may be [B, H]), or lists in torch's parameter
    order with num_layers / bidirectional. A gradient is None where its argument was None
    (an initial state or a bias); list weights give lists of gradients."""
    single = not _is_matrix_list(w_ih)
    if single:
        w_ih, w_hh = _fits_x(_single(w_ih, "w_ih"), x), _single(w_hh, "w_hh")
    plan = LSTMPlan(w_ih, w_hh, b_ih, b_hh, num_layers=num_layers, bidirectional=bidirectional,
                    batch_first=batch_first)
    dx, (dh0, dc0), weights = _stack_backward(
        plan, single, x, (("h0", h0), ("c0", c0)), grad_y,
        (("grad_h_n", grad_h_n), ("grad_c_n", grad_c_n)))
    return (dx, dh0, dc0, *weights)


def gru_backward(grad_y, grad_h_n, x, h0, w_ih, w_hh, b_ih=None, b_hh=None, num_layers=None,
                 bidirectional=False, batch_first=False):
    """The gradients of torch.nn.GRU (and fastdl.ops.gru / GRUPlan): -> (grad_x, grad_h0,
    grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh); arguments as lstm_backward's."""
    single = not _is_matrix_list(w_ih)
    if single:
        w_ih, w_hh = _fits_x(_single(w_ih, "w_ih"), x), _single(w_hh, "w_hh")
    plan = GRUPlan(w_ih, w_hh, b_ih, b_hh, num_layers=num_layers, bidirectional=bidirectional,
                   batch_first=batch_first)
    dx, (dh0,), weights = _stack_backward(plan, single, x, (("h0", h0),), grad_y,
                                          (("grad_h_n", grad_h_n),))
    return (dx, dh0, *weights)


def _cell_step(x, name):
    """A cell's input [B, I] or [I] as one step: ([1, B, I], batched)."""
    x = v.float32_array(x, name, (1, 2), "2-D array (batch, input_size) or 1-D (input_size,)")
    return (x[None] if x.ndim == 2 else x[None, None]), x.ndim == 2


def _cell_states(xs, batched, w_hh):
    """(lead, back): a cell's state argument (or its gradient), checked against x and w_hh
    ([B, H], or [H] with a 1-D x), as a one-layer sequence's ([B, H] stays, [H] -> [1, H]);
    and a state gradient back."""
    hidden = np.shape(w_hh)[1] if np.ndim(w_hh) == 2 else None  # else w_hh's own error
    want = (xs.shape[1], hidden) if batched else (hidden,)

    def lead(value, name):
        if value is None:
            return value
        arr = v.float32_array(value, name)
        if hidden is not None and arr.shape != want:
            raise ValueError(f"{name}: expected shape {want} ({'batch, ' if batched else ''}"
                             f"hidden_size, as x and w_hh), got {arr.shape}")
        return arr if batched else arr[None]

    def back(grad):
        return grad if grad is None or batched else grad[0]
    return lead, back


def lstm_cell_backward(grad_h, grad_c, x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """The gradients of torch.nn.LSTMCell (fastdl.ops.lstm_cell) from those of h' and c'
    (None: zeros): -> (grad_x, grad_h, grad_c, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh);
    grad_h / grad_c None where h / c was None (zeros)."""
    xs, batched = _cell_step(x, "x")
    lead, back = _cell_states(xs, batched, w_hh)
    dx, dh, dc, *weights = lstm_backward(None, lead(grad_h, "grad_h"), lead(grad_c, "grad_c"),
                                         xs, lead(h, "h"), lead(c, "c"), w_ih, w_hh, b_ih, b_hh)
    return (dx[0] if batched else dx[0, 0], back(dh), back(dc), *weights)


def gru_cell_backward(grad_h, x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """The gradients of torch.nn.GRUCell (fastdl.ops.gru_cell) from that of h' (None:
    zeros): -> (grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""
    xs, batched = _cell_step(x, "x")
    lead, back = _cell_states(xs, batched, w_hh)
    dx, dh, *weights = gru_backward(None, lead(grad_h, "grad_h"), xs, lead(h, "h"), w_ih, w_hh,
                                    b_ih, b_hh)
    return (dx[0] if batched else dx[0, 0], back(dh), *weights)
