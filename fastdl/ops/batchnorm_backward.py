"""The gradient of batch normalisation, PyTorch semantics: what torch.autograd gives for
torch.nn.functional.batch_norm(x, running_mean, running_var, weight, bias, training, ...,
eps).

With xhat = (x - mean) / sqrt(var + eps) per channel and m = N * (spatial size):
    grad_bias   = sum(grad_output)              grad_weight = sum(grad_output * xhat)
    training  (mean, var: the batch's own; biased variance):
        grad_x = weight / sqrt(var + eps) / m * (m * grad_output - grad_bias - xhat * grad_weight)
    inference (mean, var: running_mean, running_var, fixed):
        grad_x = grad_output * weight / sqrt(var + eps)
The per-channel sums add float blocks in double (kernels/include/fastdl/batchnorm.h).
"""
import numpy as np

from fastdl import _validate as v
from fastdl._backend import kernels
from fastdl.ops.batchnorm import _channel_vector, _channel_vector32, _eps


def _bias_flag(bias, channels):
    """bias as the forward had it: a flag, or the forward's bias array (counts as True)."""
    if bias is True or bias is False or isinstance(bias, np.bool_):
        return bool(bias)
    if bias is None:
        return False
    _channel_vector(bias, "bias", channels)
    return True


def batch_norm_backward(grad_output, x, running_mean=None, running_var=None, weight=None,
                        bias=True, training=True, eps=1e-5, *, needs_input_grad=True,
                        batch_mean=None, batch_var=None):
    """The gradients of fastdl.ops.batch_norm(x, running_mean, running_var, weight, bias,
    training, eps=eps) (without its activation: take that one's gradient first with
    <activation>_backward) from grad_output, shaped like x [N, C, ...].

    Returns (grad_x like x or None when not needs_input_grad, grad_weight [C] or None when
    weight is None, grad_bias [C] or None when not bias). bias: whether the forward had one
    (the forward's bias array counts as True; its values do not matter).

    Training takes the batch's statistics from x itself (running_mean / running_var are
    not needed), or the forward's own as batch_mean / batch_var (the biased variance): that
    saves a pass over x and allows a single value per channel (xhat is 0 there, as Keras
    has it). Inference (training=False) needs running_mean and running_var."""
    x = v.float32_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x: expected an array (N, C, ...) of at least 2 dimensions, got "
                         f"shape {x.shape}")
    dy = v.float32_array(grad_output, "grad_output")
    if dy.shape != x.shape:
        raise ValueError(f"grad_output: expected x's shape {x.shape}, got {dy.shape}")
    channels = x.shape[1]
    training = v.flag(training, "training")
    needs_input_grad = v.flag(needs_input_grad, "needs_input_grad")
    has_bias = _bias_flag(bias, channels)
    eps = _eps(eps)
    gamma = None if weight is None else _channel_vector32(weight, "weight", channels)
    stats = [None if value is None else _channel_vector(value, name, channels)
             for value, name in ((running_mean, "running_mean"), (running_var, "running_var"),
                                 (batch_mean, "batch_mean"), (batch_var, "batch_var"))]
    x3 = x.reshape(x.shape[0], channels, -1) if x.size else x.reshape(x.shape[0], channels, 0)
    if (stats[2] is None) != (stats[3] is None):
        raise ValueError("batch_mean: give batch_mean and batch_var together, or neither")
    if stats[2] is not None and not training:
        raise ValueError("batch_mean: the batch statistics are for training=True; inference "
                         "normalises with running_mean and running_var")
    if training and stats[2] is not None:
        mean, var = stats[2], stats[3]
    elif training:
        count = x3.shape[0] * x3.shape[2]
        if count <= 1:
            raise ValueError(f"x: training needs more than 1 value per channel, got shape "
                             f"{x.shape}")
        mean, var = kernels.batch_norm_statistics(x3)
    else:
        if stats[0] is None or stats[1] is None:
            raise ValueError("running_mean: inference (training=False) needs running_mean "
                             "and running_var")
        mean, var = stats[0], stats[1]
    inv_std = (1.0 / np.sqrt(var + eps)).astype(np.float32)
    needs_params = gamma is not None or has_bias
    dx, dgamma, dbeta = kernels.batch_norm_backward(
        dy.reshape(x3.shape), x3, mean.astype(np.float32), inv_std, gamma, training,
        needs_input_grad, needs_params)
    return (None if dx is None else dx.reshape(x.shape),
            dgamma if gamma is not None else None,
            dbeta if has_bias else None)
