"""Plain-NumPy backend: readable float64 implementations, the Python-side oracle.

Provides the backend contract (fastdl._contract); every function takes validated
C-contiguous float32 arrays and returns a new float32 C-contiguous array (see each
function's docstring for its contract).
"""
from fastdl import _python_backend

from .activation import activation, activation_backward, softmax, softmax_backward
from .batchnorm import (batch_norm_apply, batch_norm_backward, batch_norm_inference,
                        batch_norm_statistics)
from .conv import col2im, conv, conv_backward, conv_transpose, im2col
from .embedding import embedding_backward
from .gemm import linear, linear_backward, matmul
from .losses import (class_loss, class_loss_backward, pointwise_loss,
                     pointwise_loss_backward, soft_target_loss, soft_target_loss_backward)
from .optimizers import (adagrad_update, adam_update, rmsprop_update, scale_clip, sgd_update,
                         squared_norm)
from .pooling import (avg_pool, avg_pool_backward, max_pool, max_pool_backward,
                      max_pool_input_backward, max_pool_2x2_codes,
                      max_pool_2x2_codes_backward)
from .rnn import rnn_layer, rnn_layer_backward, rnn_layer_train
from .triplet import triplet_loss, triplet_loss_backward

ConvPlan, ConvTransposePlan, LinearPlan, RnnPlan = _python_backend.make_plans(
    conv, conv_transpose, linear, rnn_layer)
ConvChain = _python_backend.ConvChain
_threads = _python_backend.Threads("numpy")
isa, num_threads = _threads.isa, _threads.num_threads
set_num_threads, set_thread_affinity = _threads.set_num_threads, _threads.set_thread_affinity
