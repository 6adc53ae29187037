"""Backpropagation through time of the recurrent layers (LSTM, GRU both reset forms, the
plain RNN), one layer and direction, and the public lstm_backward / gru_backward.

- The NumPy reference's rnn_layer_backward against central finite differences in float64
  of its own forward, through y only, h_n / c_n only and both.
- Every native variant (the step kernels that save the gates, on their ISA's GEMM) and the
  Numba twin against the reference: hidden sizes around the unit blocks and vector
  widths, T = 1, batch 1, both directions, with and without biases and initial states.
- fastdl.ops.lstm_backward / gru_backward on every backend against torch autograd of
  torch.nn.LSTM / GRU (one layer; stacks and bidirectional ones), and bad arguments.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from fastdl import _reference as reference
from native_variants import runnable, skipped, unrunnable

ref_rnn = importlib.import_module("fastdl._reference.rnn")
KINDS = ["lstm", "gru", "gru_reset_before", "rnn_tanh", "rnn_relu"]


def rand(shape, seed, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def problem(kind, steps, batch, inputs, hidden, seed=0, bias=True, state=True):
    """(x, h0, c0, w_ih, w_hh, b_ih, b_hh): weights scaled so the gates are not saturated."""
    g = ref_rnn.GATES[kind]
    x = rand((steps, batch, inputs), seed)
    h0 = rand((batch, hidden), seed + 1, 0.5) if state else np.zeros((batch, hidden), np.float32)
    c0 = None
    if kind == "lstm":
        c0 = rand((batch, hidden), seed + 2, 0.5) if state else np.zeros((batch, hidden),
                                                                        np.float32)
    w_ih = rand((g * hidden, inputs), seed + 3, 0.5 / np.sqrt(inputs))
    w_hh = rand((g * hidden, hidden), seed + 4, 0.5 / np.sqrt(hidden))
    b_ih = rand((g * hidden,), seed + 5, 0.3) if bias else None
    b_hh = rand((g * hidden,), seed + 6, 0.3) if bias else None
    return x, h0, c0, w_ih, w_hh, b_ih, b_hh


def upstream(kind, steps, batch, hidden, which, seed=10):
    """(dy, dh_n, dc_n) for gradients through 'y', 'state' (h_n, c_n) or 'both'."""
    dy = rand((steps, batch, hidden), seed) if which in ("y", "both") else None
    dh_n = rand((batch, hidden), seed + 1) if which in ("state", "both") else None
    dc_n = (rand((batch, hidden), seed + 2) if which in ("state", "both") and kind == "lstm"
            else None)
    return dy, dh_n, dc_n


# ---------------------------------------------------------------- the reference

@pytest.mark.parametrize("which", ["y", "state", "both"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_reference_gradients_are_finite_differences(kind, reverse, which):
    steps, batch, inputs, hidden = 4, 2, 3, 5
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = problem(kind, steps, batch, inputs, hidden, seed=1)
    if kind == "rnn_relu":  # keep pre-activations away from the kink
        b_ih = b_ih + np.float32(0.5)
    dy, dh_n, dc_n = upstream(kind, steps, batch, hidden, which)
    args = [a.astype(np.float64) if a is not None else None
            for a in (x, h0, c0, w_ih, w_hh, b_ih, b_hh)]

    def loss(values):
        y, h, c, _ = ref_rnn._forward(kind, *values, reverse)
        total = 0.0
        if dy is not None:
            total += np.sum(y * dy)
        if dh_n is not None:
            total += np.sum(h * dh_n)
        if dc_n is not None:
            total += np.sum(c * dc_n)
        return total

    y, h_n, c_n, saved = reference.rnn_layer_train(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh,
                                                   reverse)
    grads = reference.rnn_layer_backward(kind, dy, dh_n, dc_n, x, y, saved, h0, c0, w_ih,
                                         w_hh, reverse)
    dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh = grads
    assert (dc0 is None) == (kind != "lstm")
    targets = [(dx, 0), (dh0, 1), (dw_ih, 3), (dw_hh, 4), (db_ih, 5), (db_hh, 6)]
    if kind == "lstm":
        targets.append((dc0, 2))
    eps, rng = 1e-6, np.random.default_rng(2)
    for grad, k in targets:
        assert grad.shape == args[k].shape and grad.dtype == np.float32
        for flat in rng.choice(grad.size, min(grad.size, 10), replace=False):
            plus = [a.copy() if a is not None else None for a in args]
            minus = [a.copy() if a is not None else None for a in args]
            plus[k].flat[flat] += eps
            minus[k].flat[flat] -= eps
            numeric = (loss(plus) - loss(minus)) / (2 * eps)
            assert grad.flat[flat] == pytest.approx(numeric, rel=2e-4, abs=2e-5), (k, flat)


# ---------------------------------------------------------------- implementations

def backend_pair(label):
    """(rnn_layer_train, rnn_layer_backward) of an implementation: 'numba', or a native
    step-kernel variant name (run on its ISA's GEMM)."""
    if label == "numba":
        pytest.importorskip("numba")
        from fastdl import _numba
        return _numba.rnn_layer_train, _numba.rnn_layer_backward
    from fastdl import _C
    isa = _C.variants("rnn")[label]["isa"]
    gemm = next(n for n, i in _C.variants("gemm").items() if i and i["isa"] == isa)

    def train(*args):
        return _C.rnn_layer_train(*args, variant=label, gemm_variant=gemm)

    def backward(*args):
        return _C.rnn_layer_backward(*args, gemm_variant=gemm)
    return train, backward


def implementations():
    params = [pytest.param(name, id=name.split("__")[-1]) for name in runnable("rnn")]
    return params + [skipped(name) for name in unrunnable("rnn")] + ["numba"]


def unit_blocks():
    """Hidden sizes around every variant's unit block (and so the vector widths)."""
    blocks = {4, 8, 16}
    return sorted({h for b in blocks for h in (b - 1, b, b + 1)} | {1, 2})


def compare(label, kind, steps, batch, inputs, hidden, which, reverse, bias=True, state=True,
            seed=0, rtol=2e-4):
    train, backward = backend_pair(label)
    args = problem(kind, steps, batch, inputs, hidden, seed=seed, bias=bias, state=state)
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = args
    got_fw = train(kind, *args, reverse)
    want_fw = reference.rnn_layer_train(kind, *args, reverse)
    what = f"{label} {kind} T={steps} B={batch} I={inputs} H={hidden} {which} rev={reverse}"
    for g, w in zip(got_fw[:3], want_fw[:3]):
        if w is None:
            assert g is None, what
            continue
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=2e-6, err_msg=what)
    dy, dh_n, dc_n = upstream(kind, steps, batch, hidden, which, seed=seed + 20)
    got = backward(kind, dy, dh_n, dc_n, x, got_fw[0], got_fw[3], h0, c0, w_ih, w_hh, reverse)
    want = reference.rnn_layer_backward(kind, dy, dh_n, dc_n, x, want_fw[0], want_fw[3], h0, c0,
                                        w_ih, w_hh, reverse)
    names = ("dx", "dh0", "dc0", "dw_ih", "dw_hh", "db_ih", "db_hh")
    for name, g, w in zip(names, got, want):
        if w is None:
            assert g is None, f"{what} {name}"
            continue
        assert g.shape == w.shape and g.dtype == np.float32, f"{what} {name}"
        scale = max(float(np.abs(w).max()), 1e-3)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * scale, err_msg=f"{what} {name}")


@pytest.mark.parametrize("label", implementations())
@pytest.mark.parametrize("kind", KINDS)
def test_every_implementation_matches_the_reference(label, kind):
    for hidden in unit_blocks():
        compare(label, kind, 3, 2, 3, hidden, "both", reverse=hidden % 2 == 1, seed=hidden)
    for which in ("y", "state"):
        compare(label, kind, 5, 3, 4, 9, which, reverse=False)
        compare(label, kind, 5, 3, 4, 9, which, reverse=True)
    compare(label, kind, 1, 1, 2, 8, "both", reverse=False)          # T = 1, batch 1
    compare(label, kind, 6, 1, 5, 17, "both", reverse=True)          # batch 1, GEMV steps
    compare(label, kind, 4, 7, 3, 5, "both", reverse=False, bias=False, state=False)
    compare(label, kind, 12, 13, 6, 33, "both", reverse=True, seed=3)  # several tiles


# ---------------------------------------------------------------- public ops vs torch

def torch_case(kind, input_size, hidden, layers=1, bidirectional=False, batch_first=False,
               bias=True, seed=0):
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    m = cls(input_size, hidden, num_layers=layers, bidirectional=bidirectional,
            batch_first=batch_first, bias=bias)
    dirs = 2 if bidirectional else 1
    names = [f"_l{layer}" + ("_reverse" if d else "") for layer in range(layers)
             for d in range(dirs)]
    return torch, m, names


def params_of(m, names, what):
    return [getattr(m, what + s) for s in names]


def assert_grad(got, want, what, rtol=1e-4):
    want = want.detach().numpy() if hasattr(want, "detach") else want
    assert isinstance(got, np.ndarray) and got.dtype == np.float32, what
    assert got.shape == want.shape, (what, got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol,
                               atol=rtol * max(float(np.abs(want).max()), 1e-2), err_msg=what)


def run_torch_and_fastdl(kind, steps, batch, input_size, hidden, which, layers=1,
                         bidirectional=False, batch_first=False, bias=True, with_state=True,
                         unbatched=False, seed=0):
    from fastdl import ops
    torch, m, names = torch_case(kind, input_size, hidden, layers, bidirectional, batch_first,
                                 bias, seed)
    lstm = kind == "lstm"
    dirs = 2 if bidirectional else 1
    count = layers * dirs
    if unbatched:
        x = rand((steps, input_size), seed + 1)
        sshape = (count, hidden)
    else:
        x = rand((batch, steps, input_size) if batch_first else (steps, batch, input_size),
                 seed + 1)
        sshape = (count, batch, hidden)
    h0, c0 = rand(sshape, seed + 2, 0.5), rand(sshape, seed + 3, 0.5)
    tx = torch.tensor(x, requires_grad=True)
    th0 = torch.tensor(h0, requires_grad=True)
    tc0 = torch.tensor(c0, requires_grad=True)
    if lstm:
        ty, (th, tc) = m(tx, (th0, tc0)) if with_state else m(tx)
    else:
        ty, th = m(tx, th0) if with_state else m(tx)
        tc = None
    gy = rand(tuple(ty.shape), seed + 4) if which in ("y", "both") else None
    gh = rand(tuple(th.shape), seed + 5) if which in ("state", "both") else None
    gc = rand(tuple(th.shape), seed + 6) if which in ("state", "both") and lstm else None
    loss = 0
    for out, g in ((ty, gy), (th, gh), (tc, gc)):
        if g is not None:
            loss = loss + (out * torch.from_numpy(g)).sum()
    loss.backward()
    w_ih = [p.detach().numpy() for p in params_of(m, names, "weight_ih")]
    w_hh = [p.detach().numpy() for p in params_of(m, names, "weight_hh")]
    b_ih = [p.detach().numpy() for p in params_of(m, names, "bias_ih")] if bias else None
    b_hh = [p.detach().numpy() for p in params_of(m, names, "bias_hh")] if bias else None
    single = count == 1
    if single:  # the one-matrix form of the functional ops
        w_ih, w_hh = w_ih[0], w_hh[0]
        b_ih = b_ih[0] if bias else None
        b_hh = b_hh[0] if bias else None
    kw = dict(batch_first=batch_first) if single else dict(
        num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    if lstm:
        got = ops.lstm_backward(gy, gh, gc, x, h0 if with_state else None,
                                c0 if with_state else None, w_ih, w_hh, b_ih, b_hh, **kw)
        dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh = got
    else:
        got = ops.gru_backward(gy, gh, x, h0 if with_state else None, w_ih, w_hh, b_ih, b_hh,
                               **kw)
        dx, dh0, dw_ih, dw_hh, db_ih, db_hh = got
        dc0 = None
    what = f"{kind} T={steps} B={batch} H={hidden} {which} L={layers} D={dirs}"
    assert_grad(dx, tx.grad, what + " dx")
    if with_state:
        assert_grad(dh0, th0.grad, what + " dh0")
        if lstm:
            assert_grad(dc0, tc0.grad, what + " dc0")
    else:
        assert dh0 is None and dc0 is None
    for mine, attr in ((dw_ih, "weight_ih"), (dw_hh, "weight_hh"), (db_ih, "bias_ih"),
                       (db_hh, "bias_hh")):
        if not bias and attr.startswith("bias"):
            assert mine is None
            continue
        mine = [mine] if single else mine
        for k, p in enumerate(params_of(m, names, attr)):
            assert_grad(mine[k], p.grad, f"{what} {attr}[{k}]")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("hidden", [1, 3, 4, 7, 8, 9, 15, 16, 17])
def test_backward_matches_torch_around_the_unit_blocks(any_backend, kind, hidden):
    run_torch_and_fastdl(kind, 5, 3, 4, hidden, "both", seed=hidden)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("which", ["y", "state", "both"])
@pytest.mark.parametrize("steps,batch", [(1, 1), (1, 4), (6, 1), (7, 5)])
def test_backward_matches_torch_through_y_states_and_both(any_backend, kind, which, steps,
                                                          batch):
    run_torch_and_fastdl(kind, steps, batch, 3, 6, which, seed=steps * 10 + batch)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("layers,bidirectional,batch_first,bias,with_state,unbatched", [
    (2, False, False, True, True, False), (1, True, False, True, True, False),
    (2, True, True, True, False, False), (1, False, True, False, True, False),
    (1, False, False, True, True, True), (2, True, False, False, True, True)])
def test_backward_of_stacks_and_forms_matches_torch(any_backend, kind, layers, bidirectional,
                                                    batch_first, bias, with_state, unbatched):
    run_torch_and_fastdl(kind, 4, 3, 5, 7, "both", layers, bidirectional, batch_first, bias,
                         with_state, unbatched)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("batched", [True, False])
def test_cell_backward_matches_torch(any_backend, kind, batched):
    torch = pytest.importorskip("torch")
    from fastdl import ops
    torch.manual_seed(0)
    lstm = kind == "lstm"
    cell = (torch.nn.LSTMCell if lstm else torch.nn.GRUCell)(5, 9)
    shape = (4,) if batched else ()
    x, h, c = rand(shape + (5,), 1), rand(shape + (9,), 2), rand(shape + (9,), 3)
    tx, th, tc = (torch.tensor(a, requires_grad=True) for a in (x, h, c))
    gh, gc = rand(shape + (9,), 4), rand(shape + (9,), 5)
    if lstm:
        h1, c1 = cell(tx, (th, tc))
        ((h1 * torch.from_numpy(gh)).sum() + (c1 * torch.from_numpy(gc)).sum()).backward()
    else:
        h1 = cell(tx, th)
        (h1 * torch.from_numpy(gh)).sum().backward()
    weights = [p.detach().numpy() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih,
                                           cell.bias_hh)]
    if lstm:
        dx, dh, dc, *dw = ops.lstm_cell_backward(gh, gc, x, h, c, *weights)
        assert_grad(dc, tc.grad, "dc")
    else:
        dx, dh, *dw = ops.gru_cell_backward(gh, x, h, *weights)
    assert_grad(dx, tx.grad, "dx")
    assert_grad(dh, th.grad, "dh")
    for got, p in zip(dw, (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)):
        assert_grad(got, p.grad, "weights")


def test_the_layer_pair_on_every_backend_matches_the_reference(any_backend):
    """fastdl.ops.rnn_layer_train / rnn_layer_backward (what the layers use) for every kind,
    initial states None (zeros) and given."""
    from fastdl import ops
    for kind in KINDS:
        x, h0, c0, w_ih, w_hh, b_ih, b_hh = problem(kind, 4, 3, 2, 5, seed=7)
        for states in ((None, None), (h0, c0)):
            s0 = states[0], states[1] if kind == "lstm" else None
            y, h_n, c_n, saved = ops.rnn_layer_train(kind, x, *s0, w_ih, w_hh, b_ih, b_hh, True)
            zeros = np.zeros_like(h0)
            r0 = (zeros if s0[0] is None else h0,
                  (zeros if s0[1] is None else c0) if kind == "lstm" else None)
            want = reference.rnn_layer_train(kind, x, *r0, w_ih, w_hh, b_ih, b_hh, True)
            np.testing.assert_allclose(y, want[0], rtol=1e-5, atol=2e-6)
            dy, dh_n, dc_n = upstream(kind, 4, 3, 5, "both")
            got = ops.rnn_layer_backward(kind, dy, dh_n, dc_n, x, y, saved, *s0, w_ih, w_hh,
                                         True)
            ref = reference.rnn_layer_backward(kind, dy, dh_n, dc_n, x, want[0], want[3], *r0,
                                               w_ih, w_hh, True)
            for g, w in zip(got, ref):
                if w is None:
                    assert g is None
                else:
                    np.testing.assert_allclose(g, w, rtol=2e-4, atol=2e-4 * np.abs(w).max())


# ---------------------------------------------------------------- bad arguments

def test_bad_arguments_raise_clear_errors():
    from fastdl import ops
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = problem("lstm", 3, 2, 4, 5)
    with pytest.raises(ValueError, match="^kind: expected one of"):
        ops.rnn_layer_train("lstmx", x, h0, c0, w_ih, w_hh)
    with pytest.raises(ValueError, match=r"^w_hh: expected shape \(3\*hidden, hidden\) for "
                       r"kind 'gru', got \(20, 5\)"):
        ops.rnn_layer_train("gru", x, h0, None, w_ih, w_hh)
    with pytest.raises(ValueError, match="^c0: only an LSTM has a cell state"):
        ops.rnn_layer_train("gru", x, h0, c0, w_ih[:15], w_hh[:15])
    with pytest.raises(ValueError, match=r"^h0: expected shape \(batch, hidden\) \(2, 5\)"):
        ops.rnn_layer_train("lstm", x, h0[:1], c0, w_ih, w_hh)
    with pytest.raises(ValueError, match="^w_ih: expected shape"):
        ops.rnn_layer_train("lstm", x, h0, c0, w_ih[:, :3], w_hh)
    with pytest.raises(ValueError, match="^b_ih: expected shape"):
        ops.rnn_layer_train("lstm", x, h0, c0, w_ih, w_hh, b_ih[:3])
    y, _, _, saved = ops.rnn_layer_train("lstm", x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="^grad_y: expected y's shape"):
        ops.rnn_layer_backward("lstm", y[:2], None, None, x, y, saved, h0, c0, w_ih, w_hh)
    with pytest.raises(ValueError, match="^saved: expected what rnn_layer_train returned"):
        ops.rnn_layer_backward("lstm", y, None, None, x, y, saved[:2], h0, c0, w_ih, w_hh)
    with pytest.raises(ValueError, match="^grad_c_n: only an LSTM"):
        ops.rnn_layer_backward("rnn_tanh", None, None, h0, x, y, saved, h0, None,
                               w_ih[:5], w_hh[:5])
    with pytest.raises(TypeError):
        ops.lstm_backward(None, None, None, x.astype(complex), h0, c0, w_ih, w_hh)
    with pytest.raises(ValueError, match="^w_ih: expected 4 columns"):
        ops.lstm_backward(None, None, None, x, h0, c0, w_ih[:, :2], w_hh)
    with pytest.raises(ValueError, match="^grad_y: expected the forward's output shape"):
        ops.lstm_backward(y[:, :1], None, None, x, h0, c0, w_ih, w_hh)
    with pytest.raises(ValueError, match="^grad_h_n: expected shape"):
        ops.gru_backward(None, h0[:1], x, h0, w_ih[:15], w_hh[:15])
    with pytest.raises(ValueError, match="^x: expected sequence length >= 1"):
        ops.gru_backward(None, None, x[:0], None, w_ih[:15], w_hh[:15])


def test_random_shapes_match_the_reference(any_backend):
    """Property-based: any kind, direction and small shape (batch 0 included) through each
    backend's training pair equals the reference; nothing crashes."""
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    from fastdl import ops

    @hypothesis.settings(max_examples=60, deadline=None, derandomize=True)
    @hypothesis.given(st.sampled_from(KINDS), st.integers(1, 5), st.integers(0, 4),
                      st.integers(1, 5), st.integers(1, 20), st.booleans(), st.booleans(),
                      st.sampled_from(["y", "state", "both"]))
    def check(kind, steps, batch, inputs, hidden, reverse, bias, which):
        args = problem(kind, steps, batch, inputs, hidden, seed=hidden, bias=bias)
        x, h0, c0 = args[:3]
        got = ops.rnn_layer_train(kind, *args, reverse)
        want = reference.rnn_layer_train(kind, *args, reverse)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=2e-6)
        dy, dh_n, dc_n = upstream(kind, steps, batch, hidden, which)
        g = ops.rnn_layer_backward(kind, dy, dh_n, dc_n, x, got[0], got[3], h0, c0, *args[3:5],
                                   reverse)
        w = reference.rnn_layer_backward(kind, dy, dh_n, dc_n, x, want[0], want[3], h0, c0,
                                         *args[3:5], reverse)
        for a, b in zip(g, w):
            if b is None:
                assert a is None
            elif b.size:
                np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4 * np.abs(b).max())
    check()
