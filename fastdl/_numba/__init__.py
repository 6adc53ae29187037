"""Numba backend: the jitted twin of the native kernels, used when fastdl._C is missing.

Same names and contract as fastdl._reference. Raises ImportError if numba is missing.
"""
try:
    import numba  # noqa: F401
except ImportError as exc:
    raise ImportError("the fastdl Numba backend needs numba (pip install numba)") from exc

from .activation import activation, softmax
from .batchnorm import batch_norm_apply, batch_norm_inference, batch_norm_statistics
from .conv import col2im, conv2d, im2col
from .conv_nd import col2im_nd, conv3d, conv_transpose, im2col_nd
from .gemm import linear, matmul
from .losses import class_loss, pointwise_loss, soft_target_loss
from .pooling import avg_pool, max_pool
from .rnn import rnn_layer

__all__ = ["activation", "batch_norm_apply", "batch_norm_statistics", "col2im", "conv2d",
           "im2col", "linear", "matmul", "softmax"]
__all__ += ["avg_pool", "batch_norm_inference", "max_pool"]
__all__ += ["col2im_nd", "conv3d", "conv_transpose", "im2col_nd"]
__all__ += ["class_loss", "pointwise_loss", "soft_target_loss"]
__all__ += ["rnn_layer"]
