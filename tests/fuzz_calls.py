"""One valid call of every public function and plan of fastdl.ops, as keyword arguments:
the starting points that tests/test_fuzz_bad_input.py spoils one argument at a time.

VALID[name]() -> (callable, kwargs). Plans are called through `plan_call`, whose
arguments are the constructor's plus `x` (the input of the call).
"""
import numpy as np

from fastdl import ops

_RNG = np.random.default_rng(0)


def a(*shape, scale=1.0):
    """A fresh float32 array (standard normal * scale)."""
    return (_RNG.standard_normal(shape) * scale).astype(np.float32)


def _pos(*shape):
    return np.abs(a(*shape)) + 0.5


def _probs(*shape):
    return (_RNG.random(shape) * 0.8 + 0.1).astype(np.float32)


def plan_call(plan_class):
    """A function of (constructor arguments..., x): builds the plan, calls it on x."""
    def call(x, **kwargs):
        return plan_class(**kwargs)(x)
    call.__name__ = plan_class.__name__
    call.plan_class = plan_class
    return call


def _pool_plan_call(x, **kwargs):
    return ops.PoolPlan(input_shape=np.shape(x), **kwargs)(x)


_pool_plan_call.plan_class = ops.PoolPlan


def _conv(dims, **extra):
    return lambda: (getattr(ops, f"conv{dims}d"),
                    dict(x=a(2, 4, *(7,) * dims), w=a(6, 2, *(3,) * dims), b=a(6), stride=1,
                         padding=1, dilation=1, groups=2, activation="relu", **extra))


def _conv_backward(dims):
    return lambda: (getattr(ops, f"conv{dims}d_backward"),
                    dict(grad_output=a(2, 6, *(7,) * dims), x=a(2, 4, *(7,) * dims),
                         w=a(6, 2, *(3,) * dims), stride=1, padding=1, dilation=1, groups=2,
                         bias=True, needs_input_grad=True))


def _conv_transpose(dims):
    return lambda: (getattr(ops, f"conv_transpose{dims}d"),
                    dict(x=a(2, 4, *(5,) * dims), w=a(4, 3, *(3,) * dims), b=a(3), stride=2,
                         padding=1, output_padding=1, groups=1, dilation=1))


def _conv_transpose_backward(dims):
    return lambda: (getattr(ops, f"conv_transpose{dims}d_backward"),
                    dict(grad_output=a(2, 3, *(10,) * dims), x=a(2, 4, *(5,) * dims),
                         w=a(4, 3, *(3,) * dims), stride=2, padding=1, output_padding=1,
                         groups=1, dilation=1, bias=True, needs_input_grad=True))


def _max_pool(dims):
    return lambda: (getattr(ops, f"max_pool{dims}d"),
                    dict(x=a(2, 3, *(8,) * dims), kernel_size=2, stride=2, padding=1,
                         dilation=1, ceil_mode=False, return_indices=True))


def _max_pool_backward(dims):
    def make():
        x = a(2, 3, *(8,) * dims)
        y, idx = getattr(ops, f"max_pool{dims}d")(x, 2, return_indices=True)
        return (getattr(ops, f"max_pool{dims}d_backward"),
                dict(grad_output=a(*y.shape), indices=idx, input_shape=x.shape))
    return make


def _max_pool_input_backward(dims):
    return lambda: (getattr(ops, f"max_pool{dims}d_input_backward"),
                    dict(grad_output=a(2, 3, *(4,) * dims), x=a(2, 3, *(8,) * dims),
                         kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False))


def _avg_pool(dims):
    return lambda: (getattr(ops, f"avg_pool{dims}d"),
                    dict(x=a(2, 3, *(8,) * dims), kernel_size=3, stride=2, padding=1,
                         ceil_mode=True, count_include_pad=False, divisor_override=None))


def _avg_pool_backward(dims):
    return lambda: (getattr(ops, f"avg_pool{dims}d_backward"),
                    dict(grad_output=a(2, 3, *(4,) * dims), input_shape=(2, 3) + (8,) * dims,
                         kernel_size=3, stride=2, padding=1, ceil_mode=False,
                         count_include_pad=True, divisor_override=None))


def _unary(name):
    return lambda: (getattr(ops, name), dict(x=a(3, 17)))


def _unary_backward(name, second):
    return lambda: (getattr(ops, f"{name}_backward"), {"grad_output": a(3, 17), second: a(3, 17)})


def _pair_loss(name, **extra):
    return lambda: (getattr(ops, name), dict(input=a(4, 5), target=a(4, 5), reduction="mean",
                                             **extra))


def _rnn(kind):
    gates = 4 if kind == "lstm" else 3
    state = dict(h0=a(1, 3, 8)) if kind == "gru" else dict(h0=a(1, 3, 8), c0=a(1, 3, 8))
    return lambda: (getattr(ops, kind),
                    dict(x=a(5, 3, 6), **state, w_ih=a(gates * 8, 6), w_hh=a(gates * 8, 8),
                         b_ih=a(gates * 8), b_hh=a(gates * 8), batch_first=False))


def _rnn_backward(kind):
    gates = 4 if kind == "lstm" else 3
    grads = (dict(grad_y=a(5, 3, 8), grad_h_n=a(1, 3, 8)) if kind == "gru" else
             dict(grad_y=a(5, 3, 8), grad_h_n=a(1, 3, 8), grad_c_n=a(1, 3, 8)))
    state = dict(h0=a(1, 3, 8)) if kind == "gru" else dict(h0=a(1, 3, 8), c0=a(1, 3, 8))
    return lambda: (getattr(ops, f"{kind}_backward"),
                    dict(**grads, x=a(5, 3, 6), **state, w_ih=a(gates * 8, 6),
                         w_hh=a(gates * 8, 8), b_ih=a(gates * 8), b_hh=a(gates * 8)))


def _cell(kind, backward=False):
    gates = 4 if kind == "lstm" else 3
    state = dict(h=a(3, 8)) if kind == "gru" else dict(h=a(3, 8), c=a(3, 8))
    grads = {} if not backward else (dict(grad_h=a(3, 8)) if kind == "gru" else
                                     dict(grad_h=a(3, 8), grad_c=a(3, 8)))
    name = f"{kind}_cell" + ("_backward" if backward else "")
    return lambda: (getattr(ops, name), dict(**grads, x=a(3, 6), **state, w_ih=a(gates * 8, 6),
                                             w_hh=a(gates * 8, 8), b_ih=a(gates * 8),
                                             b_hh=a(gates * 8)))


def _rnn_layer_backward():
    x, h0, c0 = a(5, 3, 6), a(3, 8), a(3, 8)
    w_ih, w_hh = a(32, 6), a(32, 8)
    y, h_n, c_n, saved = ops.rnn_layer_train("lstm", x, h0, c0, w_ih, w_hh)
    return ops.rnn_layer_backward, dict(kind="lstm", grad_y=a(5, 3, 8), grad_h_n=a(3, 8),
                                        grad_c_n=a(3, 8), x=x, y=y, saved=saved, h0=h0, c0=c0,
                                        w_ih=w_ih, w_hh=w_hh, reverse=False)


def _global_max_pool_backward():
    x = a(2, 3, 5, 5)
    y, idx = ops.global_max_pool(x, return_indices=True)
    return ops.global_max_pool_backward, dict(grad_output=a(*y.shape), indices=idx,
                                              input_shape=x.shape)


def _codes_backward():
    y, codes = ops.max_pool2d_codes(a(2, 3, 8, 8))
    return ops.max_pool2d_codes_backward, dict(grad_output=a(*y.shape), codes=codes)


def _dropout_backward():
    _, mask = ops.dropout(a(4, 9), 0.3, return_mask=True)
    return ops.dropout_backward, dict(grad_output=a(4, 9), mask=mask, p=0.3, training=True)


def _classes(n, k):
    return _RNG.integers(0, k, n)


VALID = {
    **{f"conv{d}d": _conv(d) for d in (1, 2, 3)},
    **{f"conv{d}d_backward": _conv_backward(d) for d in (1, 2, 3)},
    **{f"conv_transpose{d}d": _conv_transpose(d) for d in (1, 2, 3)},
    **{f"conv_transpose{d}d_backward": _conv_transpose_backward(d) for d in (1, 2, 3)},
    **{f"max_pool{d}d": _max_pool(d) for d in (1, 2, 3)},
    **{f"max_pool{d}d_backward": _max_pool_backward(d) for d in (1, 2, 3)},
    **{f"max_pool{d}d_input_backward": _max_pool_input_backward(d) for d in (1, 2, 3)},
    **{f"avg_pool{d}d": _avg_pool(d) for d in (1, 2, 3)},
    **{f"avg_pool{d}d_backward": _avg_pool_backward(d) for d in (1, 2, 3)},
    **{n: _unary(n) for n in ("relu", "relu6", "sigmoid", "tanh", "silu", "swish",
                              "hard_swish")},
    "elu": lambda: (ops.elu, dict(x=a(3, 17), alpha=0.7)),
    "leaky_relu": lambda: (ops.leaky_relu, dict(x=a(3, 17), negative_slope=0.2)),
    "softmax": lambda: (ops.softmax, dict(x=a(3, 17), axis=-1, temperature=1.5)),
    "log_softmax": lambda: (ops.log_softmax, dict(x=a(3, 17), axis=0, temperature=1.0)),
    **{f"{n}_backward": _unary_backward(n, "output") for n in ("relu", "relu6", "sigmoid",
                                                              "tanh")},
    **{f"{n}_backward": _unary_backward(n, "input") for n in ("silu", "swish", "hard_swish")},
    "elu_backward": lambda: (ops.elu_backward, dict(grad_output=a(3, 17), input=a(3, 17),
                                                    alpha=0.7)),
    "leaky_relu_backward": lambda: (ops.leaky_relu_backward,
                                    dict(grad_output=a(3, 17), input=a(3, 17),
                                         negative_slope=0.2)),
    "softmax_backward": lambda: (ops.softmax_backward,
                                 dict(grad_output=a(3, 17), output=ops.softmax(a(3, 17)),
                                      axis=-1, temperature=1.0)),
    "log_softmax_backward": lambda: (ops.log_softmax_backward,
                                     dict(grad_output=a(3, 17), output=ops.log_softmax(a(3, 17)),
                                          axis=-1, temperature=1.0)),
    "linear": lambda: (ops.linear, dict(x=a(5, 12), w=a(7, 12), b=a(7), activation="tanh")),
    "linear_backward": lambda: (ops.linear_backward,
                                dict(grad_output=a(5, 7), x=a(5, 12), w=a(7, 12), bias=True,
                                     needs_input_grad=True)),
    "matmul": lambda: (ops.matmul, dict(a=a(5, 12), b=a(12, 7))),
    "batch_norm": lambda: (ops.batch_norm,
                           dict(x=a(4, 3, 5, 5), running_mean=a(3), running_var=_pos(3),
                                weight=a(3), bias=a(3), training=True, momentum=0.1, eps=1e-5,
                                activation="relu")),
    "batch_norm_backward": lambda: (ops.batch_norm_backward,
                                    dict(grad_output=a(4, 3, 5, 5), x=a(4, 3, 5, 5),
                                         running_mean=a(3), running_var=_pos(3), weight=a(3),
                                         bias=True, training=False, eps=1e-5)),
    "fold_batch_norm": lambda: (ops.fold_batch_norm,
                                dict(w=a(6, 3, 3, 3), b=a(6), running_mean=a(6),
                                     running_var=_pos(6), weight=a(6), bias=a(6), eps=1e-5)),
    "global_avg_pool": lambda: (ops.global_avg_pool, dict(x=a(2, 3, 5, 5))),
    "global_avg_pool_backward": lambda: (ops.global_avg_pool_backward,
                                         dict(grad_output=a(2, 3, 1, 1),
                                              input_shape=(2, 3, 5, 5))),
    "global_max_pool": lambda: (ops.global_max_pool, dict(x=a(2, 3, 5, 5), return_indices=True)),
    "global_max_pool_backward": _global_max_pool_backward,
    "max_pool2d_codes": lambda: (ops.max_pool2d_codes, dict(x=a(2, 3, 8, 8), relu_gate=True)),
    "max_pool2d_codes_backward": _codes_backward,
    "im2col": lambda: (ops.im2col, dict(x=a(2, 3, 6, 6), kernel_size=3, dilation=1, padding=1,
                                        stride=1)),
    "col2im": lambda: (ops.col2im, dict(cols=a(2, 27, 36), output_size=(6, 6), kernel_size=3,
                                        dilation=1, padding=1, stride=1)),
    "dropout": lambda: (ops.dropout, dict(x=a(4, 9), p=0.3, training=True, seed=1,
                                          return_mask=True)),
    "dropout_backward": _dropout_backward,
    "embedding": lambda: (ops.embedding, dict(input=_classes(7, 10), weight=a(10, 4),
                                              padding_idx=0)),
    "embedding_backward": lambda: (ops.embedding_backward,
                                   dict(grad_output=a(7, 4), indices=_classes(7, 10),
                                        num_embeddings=10, padding_idx=1,
                                        scale_grad_by_freq=True)),
    "lstm": _rnn("lstm"), "gru": _rnn("gru"),
    "lstm_backward": _rnn_backward("lstm"), "gru_backward": _rnn_backward("gru"),
    "lstm_cell": _cell("lstm"), "gru_cell": _cell("gru"),
    "lstm_cell_backward": _cell("lstm", True), "gru_cell_backward": _cell("gru", True),
    "rnn_layer_train": lambda: (ops.rnn_layer_train,
                                dict(kind="gru", x=a(5, 3, 6), h0=a(3, 8), c0=None,
                                     w_ih=a(24, 6), w_hh=a(24, 8), b_ih=a(24), b_hh=a(24),
                                     reverse=True)),
    "rnn_layer_backward": _rnn_layer_backward,
    **{n: _pair_loss(n) for n in ("mse_loss", "l1_loss")},
    **{f"{n}_backward": _pair_loss(f"{n}_backward", grad_output=2.0)
       for n in ("mse_loss", "l1_loss")},
    "huber_loss": _pair_loss("huber_loss", delta=0.5, weight=_pos(4, 5)),
    "huber_loss_backward": _pair_loss("huber_loss_backward", delta=0.5, grad_output=1.0),
    "smooth_l1_loss": _pair_loss("smooth_l1_loss", beta=0.5),
    "smooth_l1_loss_backward": _pair_loss("smooth_l1_loss_backward", beta=0.5, grad_output=1.0),
    "kl_div": lambda: (ops.kl_div, dict(input=np.log(_probs(4, 5)), target=_probs(4, 5),
                                        reduction="batchmean", log_target=False)),
    "kl_div_backward": lambda: (ops.kl_div_backward,
                                dict(input=np.log(_probs(4, 5)), target=_probs(4, 5),
                                     reduction="sum", log_target=False, grad_output=1.0)),
    "binary_cross_entropy": lambda: (ops.binary_cross_entropy,
                                     dict(input=_probs(4, 5), target=_probs(4, 5),
                                          weight=_pos(4, 5), reduction="mean")),
    "binary_cross_entropy_backward": lambda: (ops.binary_cross_entropy_backward,
                                              dict(input=_probs(4, 5), target=_probs(4, 5),
                                                   reduction="sum", grad_output=1.0)),
    "binary_cross_entropy_with_logits": lambda: (ops.binary_cross_entropy_with_logits,
                                                 dict(input=a(4, 5), target=_probs(4, 5),
                                                      pos_weight=_pos(5), reduction="none")),
    "binary_cross_entropy_with_logits_backward": lambda: (
        ops.binary_cross_entropy_with_logits_backward,
        dict(input=a(4, 5), target=_probs(4, 5), pos_weight=_pos(5), reduction="mean",
             grad_output=1.0)),
    "cross_entropy": lambda: (ops.cross_entropy,
                              dict(input=a(6, 5), target=_classes(6, 5), weight=_pos(5),
                                   reduction="mean", label_smoothing=0.1, ignore_index=-100)),
    "cross_entropy_backward": lambda: (ops.cross_entropy_backward,
                                       dict(input=a(6, 5), target=_classes(6, 5),
                                            reduction="sum", label_smoothing=0.0,
                                            ignore_index=2, grad_output=1.0)),
    "nll_loss": lambda: (ops.nll_loss, dict(input=a(6, 5), target=_classes(6, 5),
                                            weight=_pos(5), reduction="mean", ignore_index=-100)),
    "nll_loss_backward": lambda: (ops.nll_loss_backward,
                                  dict(input=a(6, 5), target=_classes(6, 5), reduction="mean",
                                       ignore_index=-100, grad_output=1.0)),
    "triplet_margin_loss": lambda: (ops.triplet_margin_loss,
                                    dict(anchor=a(4, 8), positive=a(4, 8), negative=a(4, 8),
                                         margin=1.0, p=2, eps=1e-6, swap=True,
                                         reduction="mean")),
    "triplet_margin_loss_backward": lambda: (ops.triplet_margin_loss_backward,
                                             dict(anchor=a(4, 8), positive=a(4, 8),
                                                  negative=a(4, 8), margin=1.0, p=2, eps=1e-6,
                                                  swap=False, reduction="sum",
                                                  grad_output=1.0)),
    # Plans: the constructor's arguments plus x.
    **{f"Conv{d}dPlan": (lambda d=d: (plan_call(getattr(ops, f"Conv{d}dPlan")),
                                      dict(w=a(6, 2, *(3,) * d), b=a(6), stride=2, padding=1,
                                           dilation=1, groups=2, activation="relu",
                                           x=a(2, 4, *(7,) * d))))
       for d in (1, 2, 3)},
    **{f"ConvTranspose{d}dPlan": (lambda d=d: (plan_call(getattr(ops, f"ConvTranspose{d}dPlan")),
                                               dict(w=a(4, 3, *(3,) * d), b=a(3), stride=2,
                                                    padding=1, output_padding=1, dilation=1,
                                                    groups=1, x=a(2, 4, *(5,) * d))))
       for d in (1, 2, 3)},
    "LinearPlan": lambda: (plan_call(ops.LinearPlan), dict(w=a(7, 12), b=a(7),
                                                           activation="relu", x=a(5, 12))),
    "LSTMPlan": lambda: (plan_call(ops.LSTMPlan), dict(w_ih=a(32, 6), w_hh=a(32, 8), b_ih=a(32),
                                                       b_hh=a(32), num_layers=1,
                                                       bidirectional=False, batch_first=True,
                                                       x=a(3, 5, 6))),
    "GRUPlan": lambda: (plan_call(ops.GRUPlan), dict(w_ih=a(24, 6), w_hh=a(24, 8), b_ih=a(24),
                                                     b_hh=a(24), bidirectional=False,
                                                     x=a(5, 3, 6))),
    "PoolPlan": lambda: (_pool_plan_call, dict(kind="max", kernel_size=2, stride=2, padding=1,
                                               count_include_pad=True, x=a(2, 3, 8, 8))),
}
