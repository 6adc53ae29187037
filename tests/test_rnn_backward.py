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
