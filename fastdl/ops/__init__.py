"""fastdl.ops: the functional kernel API, with PyTorch semantics and NCHW layout.

Functions (conv2d, linear, ...) validate their arguments and run at once; Plans
(Conv2dPlan, LinearPlan, ...) own and pack their weights once, are called many times as
plan(x) (or plan(x, out=y) into a buffer of the caller's) and take new weights with
plan.set_weights(...).
"""
from fastdl.ops.activation import (dropout, dropout_backward, elu, elu_backward, hard_swish,
                                   hard_swish_backward, leaky_relu, leaky_relu_backward,
                                   log_softmax, log_softmax_backward, relu, relu6, relu6_backward,
                                   relu_backward, sigmoid, sigmoid_backward, silu,
                                   silu_backward, softmax, softmax_backward, swish,
                                   swish_backward, tanh, tanh_backward)
from fastdl.ops.batchnorm import batch_norm, fold_batch_norm
from fastdl.ops.batchnorm_backward import batch_norm_backward
from fastdl.ops.conv import Conv1dPlan, Conv2dPlan, Conv3dPlan, conv1d, conv2d, conv3d
from fastdl.ops.conv_chain import ConvChain
from fastdl.ops.conv_backward import (conv1d_backward, conv2d_backward, conv3d_backward,
                                      conv_transpose1d_backward, conv_transpose2d_backward,
                                      conv_transpose3d_backward)
from fastdl.ops.conv_transpose import (ConvTranspose1dPlan, ConvTranspose2dPlan,
                                       ConvTranspose3dPlan, conv_transpose1d, conv_transpose2d,
                                       conv_transpose3d)
from fastdl.ops.embedding import embedding, embedding_backward
from fastdl.ops.gemm import LinearPlan, linear, linear_backward, matmul
from fastdl.ops.im2col import col2im, im2col
from fastdl.ops.losses import (binary_cross_entropy, binary_cross_entropy_backward,
                               binary_cross_entropy_with_logits,
                               binary_cross_entropy_with_logits_backward, cross_entropy,
                               cross_entropy_backward, huber_loss, huber_loss_backward, kl_div,
                               kl_div_backward, l1_loss, l1_loss_backward, mse_loss,
                               mse_loss_backward, nll_loss, nll_loss_backward, smooth_l1_loss,
                               smooth_l1_loss_backward)
from fastdl.ops.pooling import (PoolPlan, avg_pool1d, avg_pool1d_backward, avg_pool2d,
                                avg_pool2d_backward, avg_pool3d, avg_pool3d_backward,
                                global_avg_pool, global_avg_pool_backward, global_max_pool,
                                global_max_pool_backward, max_pool1d, max_pool1d_backward,
                                max_pool1d_input_backward, max_pool2d, max_pool2d_backward,
                                max_pool2d_codes, max_pool2d_codes_backward,
                                max_pool2d_input_backward, max_pool3d, max_pool3d_backward,
                                max_pool3d_input_backward)
from fastdl.ops.rnn import GRUPlan, LSTMPlan, gru, gru_cell, lstm, lstm_cell
from fastdl.ops.rnn_backward import (gru_backward, gru_cell_backward, lstm_backward,
                                     lstm_cell_backward, rnn_layer_backward, rnn_layer_train)
from fastdl.ops.triplet import triplet_margin_loss, triplet_margin_loss_backward

__all__ = ["Conv1dPlan", "Conv2dPlan", "Conv3dPlan", "ConvChain", "LinearPlan", "batch_norm",
           "col2im", "conv1d", "conv2d", "conv3d", "fold_batch_norm", "im2col", "linear",
           "matmul"]
__all__ += ["ConvTranspose1dPlan", "ConvTranspose2dPlan", "ConvTranspose3dPlan",
            "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]
__all__ += ["dropout", "elu", "hard_swish", "leaky_relu", "log_softmax", "relu", "relu6",
            "sigmoid", "silu", "softmax", "swish", "tanh"]
__all__ += ["PoolPlan", "avg_pool1d", "avg_pool2d", "avg_pool3d", "global_avg_pool", "global_max_pool",
            "max_pool1d", "max_pool2d", "max_pool3d"]
__all__ += ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
            "huber_loss", "kl_div", "l1_loss", "mse_loss", "nll_loss", "smooth_l1_loss",
            "triplet_margin_loss"]
__all__ += ["elu_backward", "hard_swish_backward", "leaky_relu_backward", "linear_backward",
            "log_softmax_backward", "relu6_backward", "relu_backward", "sigmoid_backward",
            "silu_backward", "softmax_backward", "swish_backward", "tanh_backward"]
__all__ += ["avg_pool1d_backward", "avg_pool2d_backward", "avg_pool3d_backward",
            "global_avg_pool_backward", "global_max_pool_backward", "max_pool1d_backward",
            "max_pool2d_backward", "max_pool2d_codes", "max_pool2d_codes_backward",
            "max_pool3d_backward", "max_pool1d_input_backward",
            "max_pool2d_input_backward", "max_pool3d_input_backward"]
__all__ += ["binary_cross_entropy_backward", "binary_cross_entropy_with_logits_backward",
            "cross_entropy_backward", "huber_loss_backward", "kl_div_backward",
            "l1_loss_backward", "mse_loss_backward", "nll_loss_backward",
            "smooth_l1_loss_backward", "triplet_margin_loss_backward"]
__all__ += ["batch_norm_backward"]
__all__ += ["conv1d_backward", "conv2d_backward", "conv3d_backward", "conv_transpose1d_backward",
            "conv_transpose2d_backward", "conv_transpose3d_backward"]
__all__ += ["GRUPlan", "LSTMPlan", "gru", "gru_cell", "lstm", "lstm_cell"]
__all__ += ["gru_backward", "gru_cell_backward", "lstm_backward", "lstm_cell_backward",
            "rnn_layer_backward", "rnn_layer_train"]
__all__ += ["embedding", "embedding_backward", "dropout_backward"]
