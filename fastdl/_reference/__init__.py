"""Plain-NumPy backend: readable float64 implementations, the Python-side oracle.

Every function takes validated C-contiguous float32 arrays and returns a new float32
C-contiguous array (see each function's docstring for its contract).
"""
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
