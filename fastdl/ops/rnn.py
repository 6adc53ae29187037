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
    `count` (name, entry) pairs, the names as the caller wrote them ('w_ih' for one array,
    'w_ih[k]' in a list; list items may be None for biases)."""
    if value is None:
        return [(name, None)] * count
    is_list = isinstance(value, (list, tuple)) and len(value) > 0 and all(
        item is None or np.ndim(item) == ndim for item in value)
    if not is_list:
        if count != 1:
            raise ValueError(f"{name}: expected {count} arrays (num_layers * directions), got "
                             f"one")
        return [(name, value)]
    if len(value) != count:
        raise ValueError(f"{name}: expected {count} arrays (num_layers * directions), got "
                         f"{len(value)}")
    return [(f"{name}[{k}]", item) for k, item in enumerate(value)]


class _RNNPlan:
    _kind = None    # 'lstm' or 'gru'
    _module = None  # torch's class name: 'LSTM' or 'GRU'

    def __init__(self, w_ih, w_hh, b_ih=None, b_hh=None, *, num_layers=None,
                 bidirectional=False, batch_first=False):
        self.bidirectional = v.flag(bidirectional, "bidirectional")
        self.batch_first = v.flag(batch_first, "batch_first")
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
        w_hh0 = v.float32_array(w_hh[0][1], w_hh[0][0], 2, f"2-D array ({gates}*hidden, hidden)")
        hidden = w_hh0.shape[1]
        if hidden < 1:
            raise ValueError(f"{w_hh[0][0]}: expected hidden_size >= 1, got shape "
                             f"{w_hh0.shape}")
        self.hidden_size, self.num_layers = hidden, num_layers
        self.input_size = None
        self._weights = []  # the plan's own copies, one (w_ih, w_hh, b_ih, b_hh) per k
        for k in range(count):
            inputs = None if k == 0 else self.input_size if k < dirs else dirs * hidden
            self._weights.append(self._own_layer(k, inputs, w_ih, w_hh, b_ih, b_hh,
                                                 own=True))
            if k == 0:
                self.input_size = self._weights[0][0].shape[1]
        self._impl = kernels.RnnPlan(self._kind, self._weights, self.input_size, hidden,
                                     num_layers, self.bidirectional)

    def _own_layer(self, k, inputs, w_ih, w_hh, b_ih, b_hh, own):
        """Layer-direction k's (w_ih, w_hh, b_ih, b_hh) checked against the plan's shapes
        (inputs None: w_ih's columns set input_size), as new float32 copies (own) or
        float32 views."""
        gates, hidden = _GATES[self._kind], self.hidden_size
        convert = v.owned_float32 if own else v.float32_array
        (wi_name, wi), (wh_name, wh) = w_ih[k], w_hh[k]
        wi = convert(wi, wi_name, 2, "2-D array (gates*hidden, input)")
        wh = convert(wh, wh_name, 2, "2-D array (gates*hidden, hidden)")
        if wh.shape != (gates * hidden, hidden):
            raise ValueError(f"{wh_name}: expected shape {(gates * hidden, hidden)} "
                             f"({self._module}: {gates} gates of hidden_size {hidden}), "
                             f"got {wh.shape}")
        want = (gates * hidden, wi.shape[1] if inputs is None else inputs)
        if wi.shape != want:
            raise ValueError(f"{wi_name}: expected shape {want}, got {wi.shape}")
        biases = []
        for name, b in (b_ih[k], b_hh[k]):
            if b is not None:
                b = convert(b, name, 1, f"1-D array ({gates}*hidden,)")
                if b.shape != (gates * hidden,):
                    raise ValueError(f"{name}: expected shape ({gates * hidden},), got "
                                     f"{b.shape}")
            biases.append(b)
        return (wi, wh, biases[0], biases[1])

    @property
    def weights(self):
        """The (w_ih, w_hh, b_ih, b_hh) of each layer and direction this plan computes with,
        in torch's parameter order (read-only views; a bias may be None)."""
        return [tuple(v.read_only(a) for a in layer) for layer in self._weights]

    def set_weights(self, w_ih, w_hh, b_ih=None, b_hh=None):
        """New weights of the shapes the plan was built with (in the constructor's forms),
        e.g. after a training step: copied into the plan's own arrays and repacked in place.
        A bias is required exactly where the plan has one."""
        count = len(self._weights)
        lists = [_as_list(w, name, count, nd) for w, name, nd in
                 ((w_ih, "w_ih", 2), (w_hh, "w_hh", 2), (b_ih, "b_ih", 1), (b_hh, "b_hh", 1))]
        dirs = 2 if self.bidirectional else 1
        new = []
        for k in range(count):
            inputs = self.input_size if k < dirs else dirs * self.hidden_size
            layer = self._own_layer(k, inputs, *lists, own=False)
            for (name, _), have, got in zip([lst[k] for lst in lists[2:]], self._weights[k][2:],
                                            layer[2:]):
                if (have is None) != (got is None):
                    raise ValueError(f"{name}: expected {'None' if have is None else 'a bias'} "
                                     f"(as the plan was built), got "
                                     f"{'None' if got is None else 'an array'}")
            new.append(layer)
        for mine, layer in zip(self._weights, new):
            for dst, src in zip(mine, layer):
                if dst is not None:
                    np.copyto(dst, src)
        self._impl.set_weights(self._weights)

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

    def _time_major(self, x, name="x"):
        """(x as float32 [T, B, input_size], C-contiguous; whether it came batched), from
        the forms __call__ takes."""
        x = v.float32_array(x, name, (2, 3), "3-D array (T, B, input_size) or 2-D "
                            "(T, input_size)" if not self.batch_first else
                            "3-D array (B, T, input_size) or 2-D (T, input_size)")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input_size {self.input_size} in the last "
                             f"axis, got shape {x.shape}")
        batched = x.ndim == 3
        if not batched:
            x = x[:, None, :]
        elif self.batch_first:
            x = np.ascontiguousarray(x.transpose(1, 0, 2))
        if x.shape[0] == 0:
            raise ValueError(f"{name}: expected sequence length >= 1 (as torch), got 0 steps")
        return x, batched

    def __call__(self, x, hx=None, out=None):
        """x [T, B, input_size] ([B, T, input_size] with batch_first, or unbatched
        [T, input_size]); hx: LSTM (h0, c0), GRU h0, each [num_layers * directions, B,
        hidden_size] ([.., hidden_size] unbatched), or None for zeros.

        Returns (y, (h_n, c_n)) for LSTM, (y, h_n) for GRU: y [T, B, directions *
        hidden_size] (batch_first: [B, T, ...]), float32; y is written into `out` when
        given (float32, C-contiguous, y's shape)."""
        return self._call(x, hx, out, "hx")

    def _call(self, x, hx, out, gru_state_name):
        """__call__, with what a GRU's messages call its state (ops.gru: its h0)."""
        lstm = self._kind == "lstm"
        if (out is None and hx is None and not self.batch_first
                and type(x) is np.ndarray and x.dtype == np.float32 and x.ndim == 3
                and x.shape[2] == self.input_size and x.flags.c_contiguous):
            y, h_n, c_n = self._impl(x, None, None, None)  # the common case, unchecked
            return (y, (h_n, c_n)) if lstm else (y, h_n)
        x, batched = self._time_major(x)
        steps, batch = x.shape[0], x.shape[1]
        dirs = 2 if self.bidirectional else 1
        shape = v.output_size((steps, batch, dirs * self.hidden_size), "y")
        h0, c0 = self._split_hx(hx)
        h0 = self._state(h0, "h0" if lstm else gru_state_name, batch, batched)
        c0 = self._state(c0, "c0", batch, batched)
        if out is not None:  # the caller's layout: batch first, unbatched or [T, B, ...]
            out = v.output_buffer(out, (batch, steps, shape[2]) if self.batch_first and batched
                                  else shape if batched else (steps, shape[2]))
        # The kernel writes y [T, B, ...] into out unless out is batch-first.
        direct = out is not None and not (self.batch_first and batched)
        y, h_n, c_n = self._impl(x, h0, c0, out.reshape(shape) if direct else None)
        if not batched:
            h_n = h_n[:, 0, :]
            c_n = None if c_n is None else c_n[:, 0, :]
        if direct:
            y = out
        elif not batched:
            y = y[:, 0, :]
        elif self.batch_first and out is not None:
            np.copyto(out, y.transpose(1, 0, 2))
            y = out
        elif self.batch_first:
            y = np.ascontiguousarray(y.transpose(1, 0, 2))
        return (y, (h_n, c_n)) if lstm else (y, h_n)

    def __repr__(self):
        return (f"{type(self).__name__}(input_size={self.input_size}, "
                f"hidden_size={self.hidden_size}, num_layers={self.num_layers}, "
                f"bias={self._weights[0][2] is not None or self._weights[0][3] is not None}, "
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


def _fits_x(w_ih, x):
    """In the functional forms x is the data and w_ih the argument that must fit it: a
    column count that differs from x's input size names w_ih."""
    if np.ndim(w_ih) == 2 and np.ndim(x) >= 1 and np.shape(w_ih)[1] != np.shape(x)[-1]:
        raise ValueError(f"w_ih: expected {np.shape(x)[-1]} columns (x's input size, x has "
                         f"shape {np.shape(x)}), got shape {np.shape(w_ih)}")
    return w_ih


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
    plan = LSTMPlan(_fits_x(_single(w_ih, "w_ih"), x), _single(w_hh, "w_hh"), b_ih, b_hh,
                    batch_first=batch_first)
    batched = np.ndim(x) == 3
    return plan(x, (_layer_state(h0, "h0", batched), _layer_state(c0, "c0", batched)))


def gru(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, batch_first=False):
    """One GRU layer in one direction over a sequence: -> (y, h_n); shapes as lstm()."""
    plan = GRUPlan(_fits_x(_single(w_ih, "w_ih"), x), _single(w_hh, "w_hh"), b_ih, b_hh,
                   batch_first=batch_first)
    return plan._call(x, _layer_state(h0, "h0", np.ndim(x) == 3), None, "h0")


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
    plan = LSTMPlan(_fits_x(_single(w_ih, "w_ih"), x), _single(w_hh, "w_hh"), b_ih, b_hh)
    x, (h, c) = _cell_input(x, (("h", h), ("c", c)), plan.input_size, plan.hidden_size)
    _, (h_n, c_n) = plan(x, (h, c))
    return h_n[0], c_n[0]


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """torch.nn.GRUCell: one step -> h'. x [B, input] or [input]; h [B, hidden] or [hidden]
    (None: zeros)."""
    plan = GRUPlan(_fits_x(_single(w_ih, "w_ih"), x), _single(w_hh, "w_hh"), b_ih, b_hh)
    x, (h,) = _cell_input(x, (("h", h),), plan.input_size, plan.hidden_size)
    _, h_n = plan(x, h)
    return h_n[0]
