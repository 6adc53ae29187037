"""fastdl.ops: the functional kernel API, with PyTorch semantics and NCHW layout.

Functions (conv2d, linear, ...) validate their arguments and run at once; Plans
(Conv2dPlan, LinearPlan) pack their weights once and are called many times as plan(x).
"""
from fastdl.ops.batchnorm import batch_norm, fold_batch_norm
from fastdl.ops.conv import Conv2dPlan, col2im, conv2d, im2col
from fastdl.ops.conv1d import Conv1dPlan, conv1d
from fastdl.ops.gemm import LinearPlan, linear, matmul

__all__ = ["Conv1dPlan", "Conv2dPlan", "LinearPlan", "batch_norm", "col2im", "conv1d", "conv2d",
           "fold_batch_norm", "im2col", "linear", "matmul"]
