"""Dense ops on the packed GEMM: linear (torch.nn.functional.linear), matmul, LinearPlan."""
import math

import numpy as np

from fastdl import _validate as v
from fastdl._backend import kernels
from fastdl.ops._plan import WeightedPlan


class LinearPlan(WeightedPlan):
    """y = activation(x @ w.T + b) with w [out_features, in_features] packed once.

    Called as plan(x) (or plan(x, out=y)) with x [..., in_features] (any real dtype, any
    strides); returns float32 [..., out_features]. `negative_slope` is leaky_relu's slope.
    transposed=True: w is [in_features, out_features] (y = x @ w + b, Keras' Dense kernel),
    here and in set_weights; it packs straight from that layout (a training step's new
    kernel needs no transposed copy) into the same panels, so the results are identical.
    """

    def __init__(self, w, b=None, activation=None, *, negative_slope=0.01, transposed=False):
        self.transposed = bool(transposed)
        layout = "(in_features, out_features)" if self.transposed else \
            "(out_features, in_features)"
        self._w = v.owned_float32(w, "w", 2, f"2-D array {layout}")
        self.out_features, self.in_features = self._w.shape[::-1] if self.transposed else \
            self._w.shape
        self._b = self._own_bias(b, self.out_features)
        self.activation, self.negative_slope = v.activation(activation, negative_slope)
        self._impl = kernels.LinearPlan(self._w, self._b, self.activation, self.negative_slope,
                                        kn=self.transposed)

    def __call__(self, x, out=None):
        # Fast path for the common case (a batch of float32 rows): at batch 1 the checks
        # below cost as much as the kernel.
        if (out is None and type(x) is np.ndarray and x.dtype == np.float32 and x.ndim == 2
                and x.shape[1] == self.in_features and x.flags.c_contiguous):
            return self._impl(x, None)
        x = v.float32_array(x, "x")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"x: expected shape (..., {self.in_features}), got {x.shape}")
        rows = x.reshape(math.prod(x.shape[:-1]), self.in_features)
        v.output_size((rows.shape[0], self.out_features), "x")
        shape = x.shape[:-1] + (self.out_features,)
        if out is None:
            return self._impl(rows, None).reshape(shape)
        self._impl(rows, v.output_buffer(out, shape).reshape(rows.shape[0], self.out_features))
        return out

    def __repr__(self):
        return (f"LinearPlan(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self._b is not None}, activation={self.activation!r}"
                f"{', transposed=True' if self.transposed else ''})")


def linear(x, w, b=None, activation=None, *, negative_slope=0.01):
    """torch.nn.functional.linear followed by an optional fused activation."""
    x = v.float32_array(x, "x")  # the arguments in order: x is checked first
    return LinearPlan(w, b, activation, negative_slope=negative_slope)(x)


def matmul(a, b):
    """a [M, K] @ b [K, N] -> float32 [M, N] on the packed GEMM (both operands packed
    per call)."""
    a = v.float32_array(a, "a", 2, "2-D array (M, K)")
    b = v.float32_array(b, "b", 2, "2-D array (K, N)")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"b: expected {a.shape[1]} rows to match a's columns, got shape "
                         f"{b.shape}")
    v.output_size((a.shape[0], b.shape[1]), "a, b")
    return kernels.matmul(a, b)


def linear_backward(grad_output, x, w, bias=True, needs_input_grad=True, *,
                    transposed=False):
    """The gradients of y = x @ w.T + b (torch.nn.functional.linear) from grad_output.

    grad_output [..., out_features], x [..., in_features] (the same leading axes), w
    [out_features, in_features]. Returns (grad_x [..., in_features] or None when not
    needs_input_grad, grad_w [out_features, in_features], grad_b [out_features] or None
    when not bias), float32. transposed=True: w is [in_features, out_features] (y = x @ w
    + b, Keras' Dense kernel) and grad_w comes in that layout, with no transposes.

    grad_w and grad_b sum over every leading position (batch x positions, say R rows) in
    float32, in blocks (the GEMM's K block, 256 rows for grad_b), so an entry's rounding
    error grows about as (block + R / block) * 2^-24 * sum |terms| rather than R * 2^-24.
    """
    dy = v.float32_array(grad_output, "grad_output")
    x = v.float32_array(x, "x")
    w = v.float32_array(w, "w", 2, "2-D array (out_features, in_features)")
    bias, needs_input_grad = v.flag(bias, "bias"), v.flag(needs_input_grad, "needs_input_grad")
    transposed = v.flag(transposed, "transposed")
    out_features, in_features = w.shape[::-1] if transposed else w.shape
    if x.ndim == 0 or x.shape[-1] != in_features:
        raise ValueError(f"x: expected shape (..., {in_features}) to match w {w.shape}, got "
                         f"{x.shape}")
    if dy.shape != x.shape[:-1] + (out_features,):
        raise ValueError(f"grad_output: expected shape {x.shape[:-1] + (out_features,)} (x's "
                         f"leading axes, w's out_features), got {dy.shape}")
    rows = math.prod(x.shape[:-1])
    dx, dw, db = kernels.linear_backward(dy.reshape(rows, out_features),
                                         x.reshape(rows, in_features), w, bias,
                                         needs_input_grad, transposed)
    return (None if dx is None else dx.reshape(x.shape)), dw, db
