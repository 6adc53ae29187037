"""Native backend: the compiled kernels (fastdl._C, pybind11; fastdl._im2col,
fastdl._losses, fastdl._triplet and fastdl._optimizers, Cython; fastdl._im2col and
fastdl._losses call the kernels through fastdl._C).

Provides the backend contract (fastdl._contract) with the contracts of fastdl._reference;
the functional forms build a plan per call (packing the weights), the Plan classes keep it.
"""
import importlib.util

import numpy as np

for _name in ("fastdl._C", "fastdl._im2col", "fastdl._losses", "fastdl._optimizers",
              "fastdl._triplet"):
    if importlib.util.find_spec(_name) is None:
        raise ImportError(f"{_name} was not built (no C++17 compiler at install time, or "
                          f"FASTDL_NO_EXTENSION=1); reinstall with a compiler for the fast "
                          f"kernels")

from fastdl._C import (  # noqa: E402
    BoundCall, CallSequence, bind_add, bind_avg_pool, bind_copy, bind_input_copy, bind_max_pool,
    bind_softmax,
    ConvChain, ConvPlan, ConvTransposePlan, LinearPlan, RnnPlan, activation, activation_backward,
    avg_pool, avg_pool_backward, batch_norm_apply, batch_norm_backward, batch_norm_inference,
    batch_norm_statistics, conv_backward, embedding_backward, isa, linear_backward, matmul,
    max_pool, max_pool_2x2_codes, max_pool_2x2_codes_backward, max_pool_backward,
    max_pool_input_backward, num_threads, rnn_layer_backward,
    rnn_layer_train, set_num_threads, set_thread_affinity, softmax, softmax_backward)
from fastdl._im2col import col2im, im2col  # noqa: E402
from fastdl._losses import (  # noqa: E402
    class_loss, class_loss_backward, pointwise_loss, pointwise_loss_backward, soft_target_loss,
    soft_target_loss_backward)
from fastdl._optimizers import (  # noqa: E402
    adagrad_update, adam_update, rmsprop_update, scale_clip, sgd_update, squared_norm)
from fastdl._triplet import triplet_loss, triplet_loss_backward  # noqa: E402
from fastdl import _C  # noqa: E402

if _C.isa_cap_error():
    import warnings

    warnings.warn(_C.isa_cap_error(), RuntimeWarning, stacklevel=2)


def linear(x, w, b, activation, alpha):
    return LinearPlan(w, b, activation, alpha)(x)


def conv(x, w, b, stride, padding, dilation, groups, activation, alpha):
    return ConvPlan(w, b, stride, padding, dilation, groups, activation, alpha)(x)


def conv_transpose(x, w, b, stride, padding, output_size, dilation, groups, activation, alpha):
    flat_padding = [v for p in padding for v in (p, p)]
    return ConvTransposePlan(w, b, stride, flat_padding, dilation, groups, activation,
                             alpha)(x, output_size)


def rnn_layer(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse):
    """One layer and direction through a one-layer RnnPlan (contract: fastdl._reference.
    rnn_layer). The reverse direction is the forward one over the time-reversed sequence."""
    plan = RnnPlan(kind, [(w_ih, w_hh, b_ih, b_hh)], w_ih.shape[1], w_hh.shape[1], 1, False)
    if reverse:
        x = np.ascontiguousarray(x[::-1])
    y, h_n, c_n = plan(x, h0[None], None if c0 is None else c0[None])
    if reverse:
        y = np.ascontiguousarray(y[::-1])
    return y, h_n[0], None if c_n is None else c_n[0]
