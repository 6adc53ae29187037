"""fastdl.layers: Keras 3's layers (names, arguments, defaults, weights) over fastdl's plans.

Shapes are Keras' (channels_last by default, batch axis first, None for any batch); each
layer's docstring says where fastdl differs.
"""
from fastdl.layers.activation_layers import ELU, LeakyReLU, PReLU, ReLU, Softmax
from fastdl.layers.base import Layer, Weight
from fastdl.layers.conv import Conv1D, Conv2D, Conv3D
from fastdl.layers.conv_transpose import Conv1DTranspose, Conv2DTranspose, Conv3DTranspose
from fastdl.layers.core import (Activation, Dense, Dropout, Flatten, Input, InputLayer, Reshape,
                                SpatialDropout1D, SpatialDropout2D, SpatialDropout3D)
from fastdl.layers.depthwise import (DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D,
                                     SeparableConv2D)
from fastdl.layers.embedding import Embedding
from fastdl.layers.lambda_layer import Lambda
from fastdl.layers.merging import (Add, Average, Concatenate, Maximum, Minimum, Multiply,
                                   Subtract)
from fastdl.layers.node import SymbolicTensor
from fastdl.layers.normalization import BatchNormalization
from fastdl.layers.padding import Padding
from fastdl.layers.pooling import (AveragePooling1D, AveragePooling2D, AveragePooling3D,
                                   GlobalAveragePooling1D, GlobalAveragePooling2D,
                                   GlobalAveragePooling3D, GlobalMaxPooling1D,
                                   GlobalMaxPooling2D, GlobalMaxPooling3D, MaxPooling1D,
                                   MaxPooling2D, MaxPooling3D)
from fastdl.layers.recurrent import GRU, LSTM, SimpleRNN
from fastdl.layers.reduce import Reduce
from fastdl.layers.rescaling import Rescaling
from fastdl.layers.resizing import Resize
from fastdl.layers.unit_normalization import UnitNormalization
from fastdl.layers.reshaping import (Cropping1D, Cropping2D, Cropping3D, Gather, Permute,
                                     RepeatVector,
                                     Slice, UpSampling1D, UpSampling2D, UpSampling3D, ZeroPadding1D,
                                     ZeroPadding2D, ZeroPadding3D)
from fastdl.layers.wrappers import Bidirectional, TimeDistributed

__all__ = sorted(name for name, value in dict(globals()).items()
                 if isinstance(value, type) or name == "Input")


def get(class_name):
    """The layer class called `class_name` (as a config names it; models are layers too);
    ValueError naming it."""
    from fastdl import models  # models import layers: resolved at call time
    cls = {"Sequential": models.Sequential, "Model": models.Model,
           "Functional": models.Model}.get(class_name) or globals().get(class_name)
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise ValueError(f"unknown layer type {class_name!r}")
    return cls
