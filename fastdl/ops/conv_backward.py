"""Gradients of the convolutions (1-D/2-D/3-D, plain and transposed), PyTorch semantics:
what torch.autograd gives for conv{1,2,3}d and conv_transpose{1,2,3}d.

Each takes the forward's arguments (in the forward's order) with grad_output, and returns
(grad_x or None, grad_w, grad_b or None). The two are one computation with the roles of
x and grad_output exchanged:
  conv:            grad_x = conv_transpose(grad_output, w)   grad_w = grad_output (x) x
  conv_transpose:  grad_x = conv(grad_output, w)             grad_w = x (x) grad_output
where (x) is the weight-gradient correlation: for stride 1, shifted dot products over x
and grad_output on a zero-padded grid (fastdl/conv_backward.h), otherwise one GEMM per group
over im2col columns.

grad_w and grad_b sum over batch x output positions (say R terms) in float32 blocks: the
GEMM adds its K block (a few hundred products) per chain, then the chains, and grad_b 256
positions per partial sum; the shifted dot products sum each chunk of images (whose staged
x and grad_output fit 2^17 floats, or one image) in vector lanes and add the chunks in
double. The rounding error of an entry grows about as (block + R / block) * 2^-24 *
sum |terms| rather than R * 2^-24.
"""
import numpy as np

from fastdl import _validate as v
from fastdl._backend import kernels
from fastdl.ops.conv import Conv1dPlan, Conv2dPlan, Conv3dPlan
from fastdl.ops.conv_transpose import (ConvTranspose1dPlan, ConvTranspose2dPlan,
                                       ConvTranspose3dPlan)


def _batched(grad_output, x, dims):
    """(dy, x, unbatched): float32 arrays with the batch axis (added to both when x comes
    unbatched, as the forward takes it)."""
    dy = v.float32_array(grad_output, "grad_output")
    x = v.float32_array(x, "x", (dims + 1, dims + 2), f"{dims + 2}-D array (N, C, *spatial) "
                        f"or {dims + 1}-D (C, *spatial)")
    if x.ndim == dims + 1:
        return dy[None], x[None], True
    return dy, x, False


def _check_grad_output(dy, shape, unbatched):
    if dy.shape != tuple(shape):
        want = tuple(shape[1:]) if unbatched else tuple(shape)
        got = dy.shape[1:] if unbatched else dy.shape
        raise ValueError(f"grad_output: expected the forward's output shape {want}, got {got}")


def _unbatch(grads, unbatched, needs_input_grad):
    dx, dw, db = grads
    if unbatched and dx is not None:
        dx = dx[0]
    return (dx if needs_input_grad else None), dw, db


def _conv_backward(plan_class, grad_output, x, w, stride, padding, dilation, groups, bias,
                   needs_input_grad):
    dy, x, unbatched = _batched(grad_output, x, plan_class.dims)
    bias, needs_input_grad = v.flag(bias, "bias"), v.flag(needs_input_grad, "needs_input_grad")
    plan = plan_class._unpacked(w, stride, padding, dilation, groups)
    _check_grad_output(dy, plan.checked_output_shape(x), unbatched)
    grads = conv_backward_checked((plan.stride, plan.padding, plan.dilation, plan.groups),
                                  dy, x, plan.weight, bias, needs_input_grad)
    return _unbatch(grads, unbatched, needs_input_grad)


def conv_backward_checked(geometry, grad_output, x, w, bias, needs_input_grad):
    """conv{1,2,3}d_backward for a caller that checked everything already (a layer, per
    step): `geometry` the (stride, padding, dilation, groups) of a Conv{1,2,3}dPlan for x's
    shape (padding in its flat form), grad_output / x / w float32 C-contiguous and batched,
    of the shapes that plan gives."""
    grads = kernels.conv_backward(grad_output, x, w, *geometry, bias, needs_input_grad)
    return _unbatch(grads, False, needs_input_grad)


def conv1d_backward(grad_output, x, w, stride=1, padding=0, dilation=1, groups=1, bias=True,
                    needs_input_grad=True):
    """The gradients of conv1d(x, w, b, stride, padding, dilation, groups) from
    grad_output [N, out_channels, L_out]: (grad_x [N, C, L] or None, grad_w like w,
    grad_b [out_channels] or None when not bias)."""
    return _conv_backward(Conv1dPlan, grad_output, x, w, stride, padding, dilation, groups,
                          bias, needs_input_grad)


def conv2d_backward(grad_output, x, w, stride=1, padding=0, dilation=1, groups=1, bias=True,
                    needs_input_grad=True):
    """The gradients of conv2d(x, w, b, stride, padding, dilation, groups) from
    grad_output [N, out_channels, OH, OW]: (grad_x [N, C, H, W] or None, grad_w like w,
    grad_b or None). padding as conv2d takes it (ints, per-side pairs, 'same', 'valid')."""
    return _conv_backward(Conv2dPlan, grad_output, x, w, stride, padding, dilation, groups,
                          bias, needs_input_grad)


def conv3d_backward(grad_output, x, w, stride=1, padding=0, dilation=1, groups=1, bias=True,
                    needs_input_grad=True):
    """The gradients of conv3d(x, w, b, stride, padding, dilation, groups) from
    grad_output [N, out_channels, OD, OH, OW]: (grad_x or None, grad_w, grad_b or None)."""
    return _conv_backward(Conv3dPlan, grad_output, x, w, stride, padding, dilation, groups,
                          bias, needs_input_grad)


def _conv_transpose_backward(plan_class, grad_output, x, w, stride, padding, output_padding,
                             groups, dilation, bias, needs_input_grad):
    dy, x, unbatched = _batched(grad_output, x, plan_class.dims)
    bias, needs_input_grad = v.flag(bias, "bias"), v.flag(needs_input_grad, "needs_input_grad")
    plan = plan_class._unpacked(w, stride, padding, output_padding, dilation, groups)
    _check_grad_output(dy, plan.checked_output_shape(x), unbatched)
    # The convolution taking dy back to x's extent: the same padding before each axis, and
    # after it what leaves exactly x's extent. Where output_padding exceeds the padding
    # after, dy's last positions (which no input reached) are cropped instead.
    crop, flat = [], []
    for (before, after), extra in zip(plan._pads, plan.output_padding):
        excess = extra - after
        crop.append(slice(0, -excess) if excess > 0 else slice(None))
        flat += [before, max(0, -excess)]
    dy_used = np.ascontiguousarray(dy[(Ellipsis,) + tuple(crop)])
    _, dw, _ = kernels.conv_backward(x, dy_used, plan.weight, plan.stride, flat, plan.dilation,
                                     plan.groups, False, False)
    dx = None
    if needs_input_grad:
        dx = kernels.conv(dy_used, plan.weight, None, plan.stride, flat, plan.dilation,
                          plan.groups, None, 0.0)
    db = None
    if bias:
        axes = (0,) + tuple(range(2, dy.ndim))
        db = dy.sum(axis=axes, dtype=np.float64).astype(np.float32)
    return _unbatch((dx, dw, db), unbatched, needs_input_grad)


def conv_transpose1d_backward(grad_output, x, w, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, bias=True, needs_input_grad=True):
    """The gradients of conv_transpose1d(x, w, b, stride, padding, output_padding, groups,
    dilation) from grad_output [N, out_channels, L_out]: (grad_x [N, in_channels, L] or
    None, grad_w like w, grad_b or None)."""
    return _conv_transpose_backward(ConvTranspose1dPlan, grad_output, x, w, stride, padding,
                                    output_padding, groups, dilation, bias, needs_input_grad)


def conv_transpose2d_backward(grad_output, x, w, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, bias=True, needs_input_grad=True):
    """The gradients of conv_transpose2d(...) (same arguments) from grad_output [N,
    out_channels, OH, OW]: (grad_x or None, grad_w like w, grad_b or None)."""
    return _conv_transpose_backward(ConvTranspose2dPlan, grad_output, x, w, stride, padding,
                                    output_padding, groups, dilation, bias, needs_input_grad)


def conv_transpose3d_backward(grad_output, x, w, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, bias=True, needs_input_grad=True):
    """The gradients of conv_transpose3d(...) (same arguments) from grad_output [N,
    out_channels, OD, OH, OW]: (grad_x or None, grad_w like w, grad_b or None)."""
    return _conv_transpose_backward(ConvTranspose3dPlan, grad_output, x, w, stride, padding,
                                    output_padding, groups, dilation, bias, needs_input_grad)
