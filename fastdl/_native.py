"""Native backend: the compiled kernels (fastdl._C, pybind11; fastdl._im2col, Cython).

Same functions and contract as fastdl._reference; the functional forms build a plan per
call (packing the weights), the Plan classes keep it.
"""
from fastdl import _C, _im2col
from fastdl._C import (Conv2dPlan, LinearPlan, isa, matmul, num_threads, set_num_threads,
                       set_thread_affinity)
from fastdl._im2col import col2im, im2col

if _C.isa_cap_error():
    import warnings

    warnings.warn(_C.isa_cap_error(), RuntimeWarning, stacklevel=2)


def linear(x, w, b, activation, alpha):
    return LinearPlan(w, b, activation, alpha)(x)


def conv2d(x, w, b, stride, padding, dilation, groups, activation, alpha):
    return Conv2dPlan(w, b, stride, padding, dilation, groups, activation, alpha)(x)


__all__ = ["Conv2dPlan", "LinearPlan", "col2im", "conv2d", "im2col", "isa", "linear", "matmul",
           "num_threads", "set_num_threads", "set_thread_affinity", "_C", "_im2col"]
