"""Dense ops on the packed GEMM: linear (torch.nn.functional.linear), matmul, LinearPlan."""
import numpy as np

from fastdl import _validate as v
from fastdl._backend import backend, kernels


class LinearPlan:
    """y = activation(x @ w.T + b) with w [out_features, in_features] packed once.

    Called as plan(x) with x [..., in_features] (any real dtype, any strides) and returns
    float32 [..., out_features]. `negative_slope` is leaky_relu's slope.
    """

    def __init__(self, w, b=None, activation=None, *, negative_slope=0.01):
        v.same_dtype([("w", w), ("b", b)])
        self.weight = v.float32_array(w, "w", 2, "2-D array (out_features, in_features)")
        self.bias = None
        if b is not None:
            self.bias = v.float32_array(b, "b", 1, "1-D array (out_features,)")
            if self.bias.shape[0] != self.weight.shape[0]:
                raise ValueError(f"b: expected shape ({self.weight.shape[0]},) to match "
                                 f"w's out_features, got {self.bias.shape}")
        self.activation, self.negative_slope = v.activation(activation, negative_slope)
        self.out_features, self.in_features = self.weight.shape
        self._native = None
        if backend() == "native":
            self._native = kernels.LinearPlan(self.weight, self.bias, self.activation,
                                              self.negative_slope)

    def __call__(self, x):
        # Fast path for the common case (a batch of float32 rows): at batch 1 the checks
        # below cost as much as the kernel.
        if (self._native is not None and type(x) is np.ndarray and x.dtype == np.float32
                and x.ndim == 2 and x.shape[1] == self.in_features and x.flags.c_contiguous):
            return self._native(x)
        x = v.float32_array(x, "x")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"x: expected shape (..., {self.in_features}), got {x.shape}")
        rows = x.reshape(int(np.prod(x.shape[:-1])), self.in_features)
        v.output_size((rows.shape[0], self.out_features), "linear")
        if self._native is not None:
            y = self._native(rows)
        else:
            y = kernels.linear(rows, self.weight, self.bias, self.activation,
                               self.negative_slope)
        return y.reshape(x.shape[:-1] + (self.out_features,))

    def __repr__(self):
        return (f"LinearPlan(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, activation={self.activation!r})")


def linear(x, w, b=None, activation=None, *, negative_slope=0.01):
    """torch.nn.functional.linear followed by an optional fused activation."""
    v.same_dtype([("x", x), ("w", w), ("b", b)])
    return LinearPlan(w, b, activation, negative_slope=negative_slope)(x)


def matmul(a, b):
    """a [M, K] @ b [K, N] -> float32 [M, N] on the packed GEMM (both operands packed
    per call)."""
    a = v.float32_array(a, "a", 2, "2-D array (M, K)")
    b = v.float32_array(b, "b", 2, "2-D array (K, N)")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"b: expected {a.shape[1]} rows to match a's columns, got shape "
                         f"{b.shape}")
    v.output_size((a.shape[0], b.shape[1]), "matmul")
    return kernels.matmul(a, b)
