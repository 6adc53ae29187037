"""LSTM / GRU: fastdl.ops (LSTMPlan, GRUPlan, lstm, gru, lstm_cell, gru_cell) against
torch.nn.LSTM / GRU / LSTMCell / GRUCell on every backend (native, numba, numpy); every
native step variant against the NumPy reference; bad arguments."""
import importlib

import numpy as np
import pytest

from fastdl import _reference as reference
from fastdl import ops
from fastdl.ops import rnn as rnn_module
from native_variants import variant_params

torch = pytest.importorskip("torch")

TOL = dict(rtol=1e-4, atol=2e-5)


def _modules():
    out = {"numpy": "fastdl._reference", "numba": "fastdl._numba", "native": "fastdl._native"}
    found = {}
    for name, module in out.items():
        try:
            found[name] = importlib.import_module(module)
        except ImportError:
            pass
    return found


BACKENDS = _modules()


@pytest.fixture(params=sorted(BACKENDS))
def backend(request, monkeypatch):
    """Runs the public ops on one backend's kernels (plans on the native one)."""
    monkeypatch.setattr(rnn_module, "kernels", BACKENDS[request.param])
    return request.param


def rand(shape, seed, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def torch_module(kind, input_size, hidden, layers=1, bidirectional=False, batch_first=False,
                 bias=True, seed=0):
    torch.manual_seed(seed)
    cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    return cls(input_size, hidden, num_layers=layers, bidirectional=bidirectional,
               batch_first=batch_first, bias=bias).eval()


def plan_class(kind):
    return ops.LSTMPlan if kind == "lstm" else ops.GRUPlan


def close(actual, expected, what=""):
    expected = expected.detach().numpy() if hasattr(expected, "detach") else expected
    assert isinstance(actual, np.ndarray) and actual.dtype == np.float32, what
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    np.testing.assert_allclose(actual, expected, err_msg=what, **TOL)


# ---------------------------------------------------------------------------- plans vs torch

@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("layers,bidirectional,batch_first", [
    (1, False, False), (2, False, False), (1, True, False), (2, True, True), (1, False, True)])
@pytest.mark.parametrize("with_state", [False, True])
def test_plan_matches_torch(backend, kind, layers, bidirectional, batch_first, with_state):
    input_size, hidden, steps, batch = 7, 13, 5, 3
    m = torch_module(kind, input_size, hidden, layers, bidirectional, batch_first)
    plan = plan_class(kind).from_torch(m)
    x = rand((batch, steps, input_size) if batch_first else (steps, batch, input_size), 1)
    count = layers * (2 if bidirectional else 1)
    h0, c0 = rand((count, batch, hidden), 2), rand((count, batch, hidden), 3)
    t = torch.from_numpy
    with torch.no_grad():
        if kind == "lstm":
            want_y, (want_h, want_c) = m(t(x), (t(h0), t(c0))) if with_state else m(t(x))
            y, (h, c) = plan(x, (h0, c0) if with_state else None)
            close(c, want_c, "c_n")
        else:
            want_y, want_h = m(t(x), t(h0)) if with_state else m(t(x))
            y, h = plan(x, h0 if with_state else None)
    close(y, want_y, "y")
    close(h, want_h, "h_n")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("hidden,input_size", [(1, 1), (5, 3), (17, 9), (33, 31)])
@pytest.mark.parametrize("steps,batch", [(1, 1), (4, 2), (3, 7)])
def test_sizes_off_the_vector_width(backend, kind, hidden, input_size, steps, batch):
    m = torch_module(kind, input_size, hidden, bidirectional=True, seed=hidden)
    x = rand((steps, batch, input_size), 4)
    with torch.no_grad():
        want = m(torch.from_numpy(x))
    got = plan_class(kind).from_torch(m)(x)
    close(got[0], want[0], "y")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_unbatched_input_and_no_bias(backend, kind):
    m = torch_module(kind, 6, 10, layers=2, bidirectional=True, bias=False)
    x = rand((4, 6), 5)
    h0 = rand((4, 10), 6)
    hx = (h0, rand((4, 10), 7)) if kind == "lstm" else h0
    thx = tuple(map(torch.from_numpy, hx)) if kind == "lstm" else torch.from_numpy(hx)
    with torch.no_grad():
        want = m(torch.from_numpy(x), thx)
    got = plan_class(kind).from_torch(m)(x, hx)
    close(got[0], want[0], "y")
    if kind == "lstm":
        close(got[1][0], want[1][0], "h_n")
        close(got[1][1], want[1][1], "c_n")
    else:
        close(got[1], want[1], "h_n")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_empty_batch(backend, kind):
    m = torch_module(kind, 3, 4)
    with torch.no_grad():
        want = m(torch.zeros(5, 0, 3))
    got = plan_class(kind).from_torch(m)(np.zeros((5, 0, 3), np.float32))
    close(got[0], want[0], "y")


def test_plan_from_weight_lists_equals_from_torch(backend):
    m = torch_module("lstm", 5, 6, layers=2, bidirectional=True)
    names = ["_l0", "_l0_reverse", "_l1", "_l1_reverse"]
    p = {n: t.detach().numpy() for n, t in m.named_parameters()}
    plan = ops.LSTMPlan([p["weight_ih" + s] for s in names], [p["weight_hh" + s] for s in names],
                        [p["bias_ih" + s] for s in names], [p["bias_hh" + s] for s in names],
                        bidirectional=True)
    assert plan.num_layers == 2 and plan.input_size == 5 and plan.hidden_size == 6
    x = rand((3, 2, 5), 8)
    with torch.no_grad():
        want = m(torch.from_numpy(x))[0]
    close(plan(x)[0], want, "y")


def test_bench_call_shape():
    """fastdl/bench/subject.py: LSTMPlan(w_ih, w_hh, b_ih, b_hh), then plan(x)[0]."""
    m = torch_module("lstm", 8, 16)
    w = [t.detach().numpy() for t in (m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0)]
    x = rand((6, 4, 8), 9)
    with torch.no_grad():
        want = m(torch.from_numpy(x))[0]
    close(ops.LSTMPlan(*w)(x)[0], want, "y")


# ---------------------------------------------------------------------------- functional forms

def _params(m, suffix="_l0"):
    return [getattr(m, n + suffix).detach().numpy()
            for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


@pytest.mark.parametrize("batch_first", [False, True])
def test_lstm_and_gru_functions(backend, batch_first):
    for kind in ("lstm", "gru"):
        m = torch_module(kind, 5, 9, batch_first=batch_first)
        x = rand((3, 4, 5) if batch_first else (4, 3, 5), 10)
        h0, c0 = rand((3, 9), 11), rand((3, 9), 12)
        t = torch.from_numpy
        with torch.no_grad():
            if kind == "lstm":
                want_y, (want_h, want_c) = m(t(x), (t(h0[None]), t(c0[None])))
                y, (h, c) = ops.lstm(x, h0, c0, *_params(m), batch_first=batch_first)
                close(c, want_c, "c_n")
            else:
                want_y, want_h = m(t(x), t(h0[None]))
                y, h = ops.gru(x, h0[None], *_params(m), batch_first=batch_first)
        close(y, want_y, kind + " y")
        close(h, want_h, kind + " h_n")


def test_functions_default_zero_states_and_no_bias(backend):
    m = torch_module("lstm", 4, 6, bias=False)
    x = rand((5, 4), 13)  # unbatched
    with torch.no_grad():
        want_y, (want_h, _) = m(torch.from_numpy(x))
    w_ih, w_hh = m.weight_ih_l0.detach().numpy(), m.weight_hh_l0.detach().numpy()
    y, (h, _) = ops.lstm(x, None, None, w_ih, w_hh)
    close(y, want_y, "y")
    close(h, want_h, "h_n")


@pytest.mark.parametrize("batched", [True, False])
def test_cells_match_torch(backend, batched):
    torch.manual_seed(3)
    lc, gc = torch.nn.LSTMCell(7, 11), torch.nn.GRUCell(7, 11)
    shape = (5,) if batched else ()
    x, h, c = rand(shape + (7,), 14), rand(shape + (11,), 15), rand(shape + (11,), 16)
    t = torch.from_numpy
    lp = [p.detach().numpy() for p in (lc.weight_ih, lc.weight_hh, lc.bias_ih, lc.bias_hh)]
    gp = [p.detach().numpy() for p in (gc.weight_ih, gc.weight_hh, gc.bias_ih, gc.bias_hh)]
    with torch.no_grad():
        want_h, want_c = lc(t(x), (t(h), t(c)))
        want_g = gc(t(x), t(h))
        want_g0 = gc(t(x))
    got_h, got_c = ops.lstm_cell(x, h, c, *lp)
    close(got_h, want_h, "lstm h")
    close(got_c, want_c, "lstm c")
    close(ops.gru_cell(x, h, *gp), want_g, "gru h")
    close(ops.gru_cell(x, None, *gp), want_g0, "gru h from zeros")


# ---------------------------------------------------------------------------- backends/variants

@pytest.mark.parametrize("name", sorted(BACKENDS))
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("reverse", [False, True])
def test_backend_layer_matches_reference(name, kind, reverse):
    g = 4 if kind == "lstm" else 3
    x, h0, c0 = rand((6, 3, 5), 20), rand((3, 10), 21), rand((3, 10), 22)
    w = rand((g * 10, 5), 23, 0.4), rand((g * 10, 10), 24, 0.4), rand(g * 10, 25), None
    c0 = c0 if kind == "lstm" else None
    got = BACKENDS[name].rnn_layer(kind, x, h0, c0, *w, reverse)
    want = reference.rnn_layer(kind, x, h0, c0, *w, reverse)
    for a, b in zip(got, want):
        if b is None:
            assert a is None
        else:
            close(a, b, name)


@pytest.mark.parametrize("variant", variant_params("rnn"))
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("hidden", [1, 7, 16, 33, 64])
@pytest.mark.parametrize("batch", [1, 2, 5, 13])
def test_native_variant_matches_reference(variant, kind, hidden, batch):
    from fastdl import _C
    g, input_size, steps = (4 if kind == "lstm" else 3), 9, 4
    scale = hidden ** -0.5
    weights = [(rand((g * hidden, input_size if k < 2 else 2 * hidden), 30 + k, scale),
                rand((g * hidden, hidden), 40 + k, scale), rand(g * hidden, 50 + k, scale),
                rand(g * hidden, 60 + k, scale)) for k in range(4)]
    plan = _C.RnnPlan(kind, weights, input_size, hidden, 2, True, variant=variant)
    assert plan.variant == variant
    x = rand((steps, batch, input_size), 70)
    h0 = rand((4, batch, hidden), 71)
    c0 = rand((4, batch, hidden), 72) if kind == "lstm" else None
    y, h_n, c_n = plan(x, h0, c0)
    seq = x
    for layer in range(2):
        outs = []
        for d in range(2):
            k = 2 * layer + d
            yy, hh, cc = reference.rnn_layer(kind, seq, h0[k], None if c0 is None else c0[k],
                                             *weights[k], d == 1)
            outs.append(yy)
            close(h_n[k], hh, f"{variant} h_n[{k}]")
            if kind == "lstm":
                close(c_n[k], cc, f"{variant} c_n[{k}]")
        seq = np.concatenate(outs, axis=2)
    close(y, seq, f"{variant} y")


def test_variants_listing():
    from fastdl import _C
    table = _C.variants("rnn")
    assert "fdl_f32_rnn__ref" in table and table["fdl_f32_rnn__ref"]["unit_block"] == 4
    with pytest.raises(ValueError, match="variant"):
        _C.RnnPlan("lstm", [(np.zeros((4, 1), np.float32), np.zeros((4, 1), np.float32), None,
                             None)], 1, 1, 1, False, variant="nope")


# ---------------------------------------------------------------------------- bad arguments

def _lstm_weights(hidden=4, inputs=3):
    return rand((4 * hidden, inputs), 1), rand((4 * hidden, hidden), 2)


@pytest.mark.parametrize("call,error,match", [
    (lambda: ops.LSTMPlan(*_lstm_weights())(np.zeros((2, 1, 5))), ValueError, "x: expected input_size 3"),
    (lambda: ops.LSTMPlan(*_lstm_weights())(np.zeros((2, 1, 1, 3))), ValueError, "x: expected a 3-D"),
    (lambda: ops.LSTMPlan(*_lstm_weights())(np.zeros((0, 1, 3))), ValueError, "sequence length"),
    (lambda: ops.LSTMPlan(*_lstm_weights())(np.zeros((2, 1, 3), complex)), TypeError, "x:"),
    (lambda: ops.LSTMPlan(rand((12, 3), 0), rand((16, 4), 0)), ValueError, r"^w_ih: expected shape \(16, 3\)"),
    (lambda: ops.LSTMPlan(rand((16, 3), 0), rand((12, 4), 0)), ValueError, r"^w_hh: expected shape \(16, 4\)"),
    (lambda: ops.LSTMPlan([rand((16, 3), 0)], [rand((12, 4), 0)]), ValueError, r"^w_hh\[0\]: expected shape \(16, 4\)"),
    (lambda: ops.GRUPlan(*_lstm_weights()), ValueError, r"^w_hh: expected shape \(12, 4\)"),
    (lambda: ops.LSTMPlan(*_lstm_weights(), b_ih=np.zeros(15, np.float32)), ValueError, r"^b_ih: expected shape \(16,\)"),
    (lambda: ops.LSTMPlan(*_lstm_weights(), bidirectional=True), ValueError, "w_ih: expected 2 arrays|multiple of 2"),
    (lambda: ops.LSTMPlan(*_lstm_weights(), bidirectional="yes"), TypeError, "bidirectional"),
    (lambda: ops.LSTMPlan(*_lstm_weights(), num_layers=0), ValueError, "num_layers"),
    (lambda: ops.LSTMPlan(_lstm_weights()[0], _lstm_weights()[1].astype(np.complex64)), TypeError, "^w_hh:"),
    (lambda: ops.lstm(np.zeros((2, 1, 5)), None, None, *_lstm_weights()), ValueError, r"^w_ih: expected 5 columns"),
    (lambda: ops.gru_cell(np.zeros((2, 5)), None, rand((12, 3), 0), rand((12, 4), 0)), ValueError, r"^w_ih: expected 5 columns"),
    (lambda: ops.LSTMPlan(*_lstm_weights())(np.zeros((2, 1, 3)), (np.zeros((1, 2, 4)), None)), ValueError, r"h0: expected shape \(1, 1, 4\)"),
    (lambda: ops.LSTMPlan(*_lstm_weights())(np.zeros((2, 1, 3)), np.zeros((1, 1, 4))), TypeError, "hx: expected a tuple"),
    (lambda: ops.GRUPlan(rand((12, 3), 0), rand((12, 4), 0))(np.zeros((2, 3)), np.zeros((1, 1, 4))), ValueError, r"hx: expected shape \(1, 4\)"),
    (lambda: ops.lstm_cell(np.zeros((2, 3)), np.zeros((3, 4)), None, *_lstm_weights()), ValueError, r"h: expected shape \(2, 4\)"),
    (lambda: ops.lstm_cell(np.zeros((2, 2, 3)), None, None, *_lstm_weights()), ValueError, "x: expected a 2-D"),
    (lambda: ops.lstm(np.zeros((2, 1, 3)), None, None, [_lstm_weights()[0]] * 2, _lstm_weights()[1]), ValueError, "w_ih: expected one 2-D matrix"),
    (lambda: ops.LSTMPlan.from_torch(torch.nn.GRU(3, 4)), TypeError, "torch.nn.LSTM"),
    (lambda: ops.LSTMPlan.from_torch(torch.nn.LSTM(3, 4, proj_size=2)), ValueError, "proj_size"),
])
def test_bad_arguments(backend, call, error, match):
    with pytest.raises(error, match=match):
        call()
