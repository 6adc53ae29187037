"""Numeric conventions every backend shares (neutral: imported by the backends, never from
the NumPy test oracle fastdl._reference)."""
import numpy as np

# Keras clips probabilities to [epsilon, 1 - epsilon] in float32 (keras.backend.epsilon() =
# 1e-7): the bounds are those float32 values, as Python floats.
KERAS_LO = float(np.float32(1e-7))
KERAS_HI = float(np.float32(1.0 - 1e-7))


def inference_scale_shift(mean, var, gamma, beta, eps):
    """The float64 per-channel (scale, shift) of inference batch norm:
    scale = gamma / sqrt(var + eps), shift = beta - mean * scale (gamma, beta None: 1, 0)."""
    scale = 1.0 / np.sqrt(var.astype(np.float64) + eps)
    if gamma is not None:
        scale = scale * gamma
    shift = -mean * scale if beta is None else beta - mean * scale
    return scale, shift
