"""THE backend contract: the functions and plan classes every backend module provides —
fastdl._native (the compiled kernels), fastdl._numba and fastdl._reference (NumPy, the
oracle). fastdl.ops calls them through fastdl._backend.kernels and never asks which backend
it is. Each one's contract (argument forms, shapes, what it returns) is the docstring of
its fastdl._reference version; arguments arrive validated by fastdl.ops (float32
C-contiguous arrays, geometry as tuples with one entry per spatial axis, padding flat
(before, after) per axis).

Plans own a copy of their weights, take new ones of the same shapes with
set_weights(...) and write into a caller's `out` array when given one:
    LinearPlan(w, b, activation, alpha, kn=False)(x, out) -> y   w [out, in]; kn: [in, out]
    ConvPlan(w, b, stride, padding, dilation, groups, activation, alpha)(x, out) -> y
    ConvTransposePlan(w, b, stride, padding, dilation, groups, activation,
                      alpha)(x, output_size, out) -> y
    RnnPlan(kind, weights, input_size, hidden_size, num_layers, bidirectional)(x, h0, c0, out)
        -> (y, h_n, c_n)   weights: one (w_ih, w_hh, b_ih, b_hh) per layer and direction
max_pool(...) and avg_pool(...) take `out` too (last, optional).

Bound calls (optional, the native backend only: fastdl.models' traces ask with getattr):
the plans' bind(x, out) and the module's bind_max_pool(x, kernel_size, stride, padding,
dilation, ceil_mode, out), bind_avg_pool(x, kernel_size, stride, padding, ceil_mode,
count_include_pad, divisor_override, out), bind_add(inputs, out), bind_copy(src, dst) and
bind_softmax(x, out, scale, log) (3-D, out may be x) return a BoundCall: that call fixed to
those arrays' memory (C-contiguous float32; bind_copy any strides), run later by
CallSequence(calls).run(inputs) without Python between them;
bind_input_copy(index, dst) copies inputs[index] (new memory each run) into dst.
ConvChain(expand, depthwise, project)(x, out) -> y: three 2-D ConvPlans of the backend (an
optional pointwise expansion, a depthwise layer, a pointwise projection) as one; the
static ConvChain.pays(expands, channels, height, width, in_channels=0, out_channels=0) says
whether it beats the plans one by one (fastdl.ops.ConvChain).
"""

FUNCTIONS = (
    "activation", "activation_backward", "softmax", "softmax_backward",
    "batch_norm_apply", "batch_norm_inference", "batch_norm_statistics", "batch_norm_backward",
    "conv", "conv_backward", "conv_transpose", "im2col", "col2im", "embedding_backward",
    "linear", "linear_backward", "matmul",
    "max_pool", "avg_pool", "max_pool_backward", "max_pool_input_backward",
    "max_pool_2x2_codes", "max_pool_2x2_codes_backward",
    "avg_pool_backward",
    "class_loss", "pointwise_loss", "soft_target_loss",
    "class_loss_backward", "pointwise_loss_backward", "soft_target_loss_backward",
    "triplet_loss", "triplet_loss_backward",
    "rnn_layer", "rnn_layer_train", "rnn_layer_backward",
    "sgd_update", "rmsprop_update", "adam_update", "adagrad_update", "squared_norm",
    "scale_clip",
    "isa", "num_threads", "set_num_threads", "set_thread_affinity",
)
PLANS = ("ConvPlan", "ConvTransposePlan", "LinearPlan", "RnnPlan", "ConvChain")
NAMES = FUNCTIONS + PLANS


def missing(module):
    """The contract's names `module` does not provide (as callables)."""
    return [name for name in NAMES if not callable(getattr(module, name, None))]
