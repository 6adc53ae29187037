"""LSTM and GRU with torch.nn.LSTM / GRU / LSTMCell / GRUCell semantics (inference).

LSTMPlan / GRUPlan pack the weights of a stack of layers (uni- or bidirectional) once and
are called as plan(x, hx); lstm / gru run one layer in one direction, lstm_cell / gru_cell
one time step. Gate order as torch: LSTM i, f, g, o; GRU r, z, n with
n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).
"""
import numpy as np

from fastdl import _validate as v
from fastdl._backend import kernels

_GATES = {"lstm": 4, "gru": 3}


def _is_matrix_list(value):
    """A list/tuple of weight matrices (one per layer and direction), as opposed to one
    matrix written as nested lists."""
    return isinstance(value, (list, tuple)) and len(value) > 0 and np.ndim(value[0]) == 2


def _as_list(value, name, count, ndim):
    """`value` (one array of `ndim` dimensions, a list of them, or None) as a list of
    `count` entries (list items may be None for biases)."""
    if value is None:
        return [None] * count
    is_list = isinstance(value, (list, tuple)) and len(value) > 0 and all(
        item is None or np.ndim(item) == ndim for item in value)
    items = list(value) if is_list else [value]
    if len(items) != count:
        raise ValueError(f"{name}: expected {count} arrays (num_layers * directions), got "
                         f"{len(items)}")
    return items


class _RNNPlan:
    _kind = None    # 'lstm' or 'gru'
    _module = None  # torch's class name: 'LSTM' or 'GRU'

    def __init__(self, w_ih, w_hh, b_ih=None, b_hh=None, *, num_layers=None,
                 bidirectional=False, batch_first=False):
        if not isinstance(bidirectional, (bool, np.bool_)):
            raise TypeError(f"bidirectional: expected a bool, got {type(bidirectional).__name__}")
        if not isinstance(batch_first, (bool, np.bool_)):
            raise TypeError(f"batch_first: expected a bool, got {type(batch_first).__name__}")
        self.bidirectional, self.batch_first = bool(bidirectional), bool(batch_first)
        dirs = 2 if self.bidirectional else 1
        count = len(w_ih) if _is_matrix_list(w_ih) else 1
        if num_layers is None:
            if count % dirs:
                raise ValueError(f"w_ih: expected a multiple of {dirs} matrices (num_layers * "
                                 f"directions), got {count}")
            num_layers = count // dirs
        num_layers = v.positive_int(num_layers, "num_layers")
        count = num_layers * dirs
        gates = _GATES[self._kind]
        w_ih, w_hh = _as_list(w_ih, "w_ih", count, 2), _as_list(w_hh, "w_hh", count, 2)
        b_ih, b_hh = _as_list(b_ih, "b_ih", count, 1), _as_list(b_hh, "b_hh", count, 1)
        w_hh0 = v.float32_array(w_hh[0], "w_hh[0]", 2, f"2-D array ({gates}*hidden, hidden)")
        hidden = w_hh0.shape[1]
        if hidden < 1:
            raise ValueError(f"w_hh[0]: expected hidden_size >= 1, got shape {w_hh0.shape}")
        self.hidden_size, self.num_layers = hidden, num_layers
        self.input_size = None
        self.weights = []
        for k in range(count):
            layer = k // dirs
            v.same_dtype([(f"w_ih[{k}]", w_ih[k]), (f"w_hh[{k}]", w_hh[k]),
                          (f"b_ih[{k}]", b_ih[k]), (f"b_hh[{k}]", b_hh[k])])
            wi = v.float32_array(w_ih[k], f"w_ih[{k}]", 2, "2-D array (gates*hidden, input)")
            wh = v.float32_array(w_hh[k], f"w_hh[{k}]", 2, "2-D array (gates*hidden, hidden)")
            if wh.shape != (gates * hidden, hidden):
                raise ValueError(f"w_hh[{k}]: expected shape {(gates * hidden, hidden)} "
                                 f"({self._module}: {gates} gates of hidden_size {hidden}), "
                                 f"got {wh.shape}")
            if k == 0:
                self.input_size = wi.shape[1]
            inputs = self.input_size if layer == 0 else dirs * hidden
            if wi.shape != (gates * hidden, inputs):
                raise ValueError(f"w_ih[{k}]: expected shape {(gates * hidden, inputs)}, got "
                                 f"{wi.shape}")
            biases = []
            for name, b in ((f"b_ih[{k}]", b_ih[k]), (f"b_hh[{k}]", b_hh[k])):
                if b is not None:
                    b = v.float32_array(b, name, 1, f"1-D array ({gates}*hidden,)")
                    if b.shape != (gates * hidden,):
                        raise ValueError(f"{name}: expected shape ({gates * hidden},), got "
                                         f"{b.shape}")
                biases.append(b)
            self.weights.append((wi, wh, biases[0], biases[1]))
        self._native = None
        if hasattr(kernels, "RnnPlan"):
            self._native = kernels.RnnPlan(self._kind, self.weights, self.input_size, hidden,
                                           num_layers, self.bidirectional)

    @classmethod
    def from_torch(cls, module):
        """The plan of a torch.nn.LSTM / torch.nn.GRU module's current weights (inference:
        dropout between layers is not applied, as in module.eval())."""
        if getattr(module, "mode", None) != cls._module:
            raise TypeError(f"module: expected a torch.nn.{cls._module}, got "
                            f"{type(module).__name__}")
        if getattr(module, "proj_size", 0):
            raise ValueError(f"module: proj_size={module.proj_size} is not supported")
        dirs = 2 if module.bidirectional else 1

        def param(name):
            t = getattr(module, name, None)
            return None if t is None else t.detach().cpu().numpy()

        names = [f"_l{layer}" + ("_reverse" if d else "")
                 for layer in range(module.num_layers) for d in range(dirs)]
        w_ih = [param("weight_ih" + s) for s in names]
        w_hh = [param("weight_hh" + s) for s in names]
        b_ih = [param("bias_ih" + s) for s in names] if module.bias else None
        b_hh = [param("bias_hh" + s) for s in names] if module.bias else None
        return cls(w_ih, w_hh, b_ih, b_hh, num_layers=module.num_layers,
                   bidirectional=module.bidirectional, batch_first=module.batch_first)

    def _state(self, value, name, batch, batched):
        """An initial state [layers*dirs, B, H] (float32) or None."""
        if value is None:
            return None
        count = self.num_layers * (2 if self.bidirectional else 1)
        want = (count, batch, self.hidden_size) if batched else (count, self.hidden_size)
        arr = v.float32_array(value, name)
        if arr.shape != want:
            raise ValueError(f"{name}: expected shape {want} (num_layers * directions, "
                             f"{'batch, ' if batched else ''}hidden_size), got {arr.shape}")
        return arr if batched else arr[:, None, :]

    def _split_hx(self, hx):
        """(h0, c0) from hx: LSTM a pair (either may be None), GRU one array."""
        if self._kind == "gru":
            return hx, None
        if hx is None:
            return None, None
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"hx: expected a tuple (h0, c0) or None, got "
                            f"{type(hx).__name__}")
        return hx[0], hx[1]

    def __call__(self, x, hx=None):
        """x [T, B, input_size] ([B, T, input_size] with batch_first, or unbatched
        [T, input_size]); hx: LSTM (h0, c0), GRU h0, each [num_layers * directions, B,
        hidden_size] ([.., hidden_size] unbatched), or None for zeros.

        Returns (y, (h_n, c_n)) for LSTM, (y, h_n) for GRU: y [T, B, directions *
        hidden_size] (batch_first: [B, T, ...]), float32."""
        lstm = self._kind == "lstm"
        native = self._native
        if (native is not None and hx is None and not self.batch_first
                and type(x) is np.ndarray and x.dtype == np.float32 and x.ndim == 3
                and x.shape[2] == self.input_size and x.flags.c_contiguous):
            y, h_n, c_n = native(x)  # the common case without the checks below
            return (y, (h_n, c_n)) if lstm else (y, h_n)
        x = v.float32_array(x, "x", (2, 3), "3-D array (T, B, input_size) or 2-D "
                            "(T, input_size)" if not self.batch_first else
                            "3-D array (B, T, input_size) or 2-D (T, input_size)")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"x: expected input_size {self.input_size} in the last axis, got "
                             f"shape {x.shape}")
        batched = x.ndim == 3
        if not batched:
            x = x[:, None, :]
        elif self.batch_first:
            x = np.ascontiguousarray(x.transpose(1, 0, 2))
        steps, batch = x.shape[0], x.shape[1]
        if steps == 0:
            raise ValueError("x: expected sequence length >= 1 (as torch), got 0 steps")
        dirs = 2 if self.bidirectional else 1
        v.output_size((steps, batch, dirs * self.hidden_size), "y")
        h0, c0 = self._split_hx(hx)
        h0 = self._state(h0, "hx" if not lstm else "h0", batch, batched)
        c0 = self._state(c0, "c0", batch, batched)
        if native is not None:
            y, h_n, c_n = native(x, h0, c0)
        else:
            y, h_n, c_n = self._run_layers(x, h0, c0)
        if not batched:
            y, h_n = y[:, 0, :], h_n[:, 0, :]
            c_n = None if c_n is None else c_n[:, 0, :]
        elif self.batch_first:
            y = np.ascontiguousarray(y.transpose(1, 0, 2))
        return (y, (h_n, c_n)) if lstm else (y, h_n)

    def _run_layers(self, x, h0, c0):
        """The stack on a backend without plans: one kernels.rnn_layer per layer and
        direction."""
        lstm = self._kind == "lstm"
        dirs = 2 if self.bidirectional else 1
        count, batch = self.num_layers * dirs, x.shape[1]
        shape = (count, batch, self.hidden_size)
        h0 = np.zeros(shape, np.float32) if h0 is None else h0
        c0 = (np.zeros(shape, np.float32) if c0 is None else c0) if lstm else None
        h_n = np.empty(shape, np.float32)
        c_n = np.empty(shape, np.float32) if lstm else None
        seq = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                k = layer * dirs + d
                y, h, c = kernels.rnn_layer(self._kind, seq, h0[k], None if c0 is None else c0[k],
                                            *self.weights[k], d == 1)
                outs.append(y)
                h_n[k] = h
                if lstm:
                    c_n[k] = c
            seq = outs[0] if dirs == 1 else np.ascontiguousarray(np.concatenate(outs, axis=2))
        return seq, h_n, c_n

    def __repr__(self):
        return (f"{type(self).__name__}(input_size={self.input_size}, "
                f"hidden_size={self.hidden_size}, num_layers={self.num_layers}, "
                f"bias={self.weights[0][2] is not None or self.weights[0][3] is not None}, "
                f"batch_first={self.batch_first}, bidirectional={self.bidirectional})")


class LSTMPlan(_RNNPlan):
    """torch.nn.LSTM with its weights packed once: plan(x, (h0, c0)) -> (y, (h_n, c_n)).

    w_ih, w_hh, b_ih, b_hh: one array each for a single layer and direction, or lists in
    torch's parameter order (layer 0 forward, layer 0 reverse, layer 1 forward, ...); a bias
    of None means zeros. w_ih [4*hidden, input], w_hh [4*hidden, hidden], gates i, f, g, o.
    num_layers is inferred from the number of matrices.
    """

    _kind, _module = "lstm", "LSTM"


class GRUPlan(_RNNPlan):
    """torch.nn.GRU with its weights packed once: plan(x, h0) -> (y, h_n).

    Weights as for LSTMPlan with 3 gates r, z, n (w_ih [3*hidden, input]).
    """

    _kind, _module = "gru", "GRU"


def _single(w, name):
    if _is_matrix_list(w):
        raise ValueError(f"{name}: expected one 2-D matrix (one layer, one direction), got a "
                         f"list of {len(w)}")
    return w


def _layer_state(value, name, batched):
    """h0/c0 of a one-layer call: [B, H] or [1, B, H] ([H] or [1, H] unbatched) -> with the
    leading layer axis."""
    if value is None:
        return None
    arr = v.float32_array(value, name)
    return arr[None] if arr.ndim == (2 if batched else 1) else arr


def lstm(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, batch_first=False):
    """One LSTM layer in one direction over a sequence: -> (y, (h_n, c_n)).

    x [T, B, input] ([B, T, input] with batch_first; unbatched [T, input]); h0, c0 [B, H]
    or [1, B, H] (unbatched [H] or [1, H]), None for zeros. y [T, B, H]; h_n, c_n
    [1, B, H] as torch.nn.LSTM's."""
    plan = LSTMPlan(_single(w_ih, "w_ih"), _single(w_hh, "w_hh"), b_ih, b_hh,
                    batch_first=batch_first)
    batched = np.ndim(x) == 3
    return plan(x, (_layer_state(h0, "h0", batched), _layer_state(c0, "c0", batched)))


def gru(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, batch_first=False):
    """One GRU layer in one direction over a sequence: -> (y, h_n); shapes as lstm()."""
    plan = GRUPlan(_single(w_ih, "w_ih"), _single(w_hh, "w_hh"), b_ih, b_hh,
                   batch_first=batch_first)
    return plan(x, _layer_state(h0, "h0", np.ndim(x) == 3))


def _cell_input(x, states, input_size, hidden):
    """x [B, I] or [I] and the states [B, H] or [H] (None: zeros) as one time step."""
    x = v.float32_array(x, "x", (1, 2), "2-D array (batch, input_size) or 1-D (input_size,)")
    if x.shape[-1] != input_size:
        raise ValueError(f"x: expected input_size {input_size} in the last axis, got shape "
                         f"{x.shape}")
    want = x.shape[:-1] + (hidden,)
    out = []
    for name, s in states:
        if s is not None:
            s = v.float32_array(s, name)
            if s.shape != want:
                raise ValueError(f"{name}: expected shape {want}, got {s.shape}")
            s = s[None]
        out.append(s)
    return x[None], out


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """torch.nn.LSTMCell: one step -> (h', c'). x [B, input] or [input]; h, c [B, hidden]
    or [hidden] (None: zeros)."""
    plan = LSTMPlan(_single(w_ih, "w_ih"), _single(w_hh, "w_hh"), b_ih, b_hh)
    x, (h, c) = _cell_input(x, (("h", h), ("c", c)), plan.input_size, plan.hidden_size)
    _, (h_n, c_n) = plan(x, (h, c))
    return h_n[0], c_n[0]


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """torch.nn.GRUCell: one step -> h'. x [B, input] or [input]; h [B, hidden] or [hidden]
    (None: zeros)."""
    plan = GRUPlan(_single(w_ih, "w_ih"), _single(w_hh, "w_hh"), b_ih, b_hh)
    x, (h,) = _cell_input(x, (("h", h),), plan.input_size, plan.hidden_size)
    _, h_n = plan(x, h)
    return h_n[0]
