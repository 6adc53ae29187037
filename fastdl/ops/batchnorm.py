"""Batch normalisation (torch.nn.functional.batch_norm semantics) and folding it into the
weights of a convolution or linear layer, so that inference pays nothing for it."""
import numpy as np

from fastdl import _validate as v
from fastdl._backend import kernels


def _eps(eps):
    """eps as a float > 0."""
    eps = v.real(eps, "eps")
    if not eps > 0:
        raise ValueError(f"eps: expected a positive number, got {eps!r}")
    return eps


def _channel_vector(value, name, channels):
    arr = v.real_array(value, name)
    if arr.shape != (channels,):
        raise ValueError(f"{name}: expected shape ({channels},), got {arr.shape}")
    return arr.astype(np.float64)


def _channel_vector32(value, name, channels):
    arr = v.float32_array(value, name)
    if arr.shape != (channels,):
        raise ValueError(f"{name}: expected shape ({channels},), got {arr.shape}")
    return arr


def _running_buffer(value, name, channels):
    """A running statistic that training updates in place, as torch does."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array to update in place, got "
                        f"{type(value).__name__}")
    _channel_vector(value, name, channels)
    if value.dtype.kind != "f" or not value.flags.writeable:
        raise TypeError(f"{name}: expected a writeable floating-point array, got "
                        f"{value.dtype}{'' if value.flags.writeable else ' (read-only)'}")
    return value


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, activation=None, *, negative_slope=0.01):
    """torch.nn.functional.batch_norm over x [N, C, ...], then an optional fused activation.

    Inference (training=False) normalises with running_mean/running_var. Training
    normalises with the batch's mean and biased variance and, where running_mean /
    running_var are given (numpy arrays), updates them in place:
    running = (1 - momentum) * running + momentum * batch statistic, using the unbiased
    variance for running_var (PyTorch's rule).
    """
    x = v.float32_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x: expected an array (N, C, ...) of at least 2 dimensions, got "
                         f"shape {x.shape}")
    channels = x.shape[1]
    training = v.flag(training, "training")
    momentum = v.real(momentum, "momentum", 0.0, 1.0)
    eps = _eps(eps)
    act, slope = v.activation(activation, negative_slope)
    x3 = x.reshape(x.shape[0], channels, -1) if x.size else x.reshape(x.shape[0], channels, 0)

    if not training:
        if running_mean is None or running_var is None:
            raise ValueError("running_mean: inference (training=False) needs running_mean "
                             "and running_var")
        # One native call computes scale/shift (in double) and applies them: the NumPy
        # arithmetic on the per-channel vectors cost as much as the kernel on small maps.
        vectors = [None if value is None else _channel_vector32(value, name, channels)
                   for value, name in ((running_mean, "running_mean"),
                                       (running_var, "running_var"), (weight, "weight"),
                                       (bias, "bias"))]
        if x.size == 0:
            return x.copy()
        return kernels.batch_norm_inference(x3, *vectors, eps, act, slope).reshape(x.shape)

    gamma = np.ones(channels) if weight is None else _channel_vector(weight, "weight", channels)
    beta = np.zeros(channels) if bias is None else _channel_vector(bias, "bias", channels)
    count = x3.shape[0] * x3.shape[2]
    if count <= 1:
        raise ValueError(f"x: training needs more than 1 value per channel, got shape "
                         f"{x.shape}")
    mean, var = kernels.batch_norm_statistics(x3)
    buffers = [(running_mean, "running_mean", mean),
               (running_var, "running_var", var * count / (count - 1))]
    for buffer, name, batch_value in buffers:
        if buffer is not None:
            buffer = _running_buffer(buffer, name, channels)
            buffer[...] = (1.0 - momentum) * buffer + momentum * batch_value
    scale = gamma / np.sqrt(var + eps)
    shift = beta - mean * scale
    if x.size == 0:
        return x.copy()
    y = kernels.batch_norm_apply(x3, scale.astype(np.float32), shift.astype(np.float32), act,
                                 slope)
    return y.reshape(x.shape)


def fold_batch_norm(w, b, running_mean, running_var, weight=None, bias=None, eps=1e-5):
    """(w', b') such that a convolution or linear layer with w', b' equals that layer
    followed by inference batch norm. w: [out_channels, ...] (conv or linear layout),
    b: [out_channels] or None. Returns float32 arrays, ready for Conv2dPlan/LinearPlan."""
    w = v.real_array(w, "w")
    if w.ndim < 2:
        raise ValueError(f"w: expected [out_channels, ...] with at least 2 dimensions, got "
                         f"shape {w.shape}")
    channels = w.shape[0]
    mean = _channel_vector(running_mean, "running_mean", channels)
    var = _channel_vector(running_var, "running_var", channels)
    gamma = np.ones(channels) if weight is None else _channel_vector(weight, "weight", channels)
    beta = np.zeros(channels) if bias is None else _channel_vector(bias, "bias", channels)
    b = np.zeros(channels) if b is None else _channel_vector(b, "b", channels)
    eps = _eps(eps)
    scale = gamma / np.sqrt(var + eps)
    folded_w = w.astype(np.float64) * scale.reshape((channels,) + (1,) * (w.ndim - 1))
    folded_b = (b - mean) * scale + beta
    return folded_w.astype(np.float32), folded_b.astype(np.float32)
