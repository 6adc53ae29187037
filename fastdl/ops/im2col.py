"""im2col / col2im (torch.nn.functional.unfold / fold) for 1, 2 or 3 spatial axes."""
import math

from fastdl import _validate as v
from fastdl import _conv_geometry as geometry
from fastdl._backend import kernels


def _unfold_geometry(dims, kernel_size, dilation, padding, stride):
    kernel_size = v.int_tuple(kernel_size, "kernel_size", dims, 1)
    dilation = v.int_tuple(dilation, "dilation", dims, 1)
    stride = v.int_tuple(stride, "stride", dims, 1)
    if isinstance(padding, str):
        raise TypeError(f"padding: expected an int or pairs, got {padding!r}")
    padding = geometry.padding(padding, dims, kernel_size, dilation, stride, allow_same=False)
    return kernel_size, dilation, padding, stride


def im2col(x, kernel_size, dilation=1, padding=0, stride=1):
    """torch.nn.functional.unfold: x [N, C, *spatial] (or [C, *spatial]) -> [N, C*prod(k),
    L] (or [C*prod(k), L]), L = the number of output positions. The number of spatial axes
    is len(kernel_size) (an int means 2-D, as in torch); rows are c*prod(k) + the flat tap
    index, columns the flat output position; padding as for the convolutions (an int, one
    per axis, or (before, after) pairs)."""
    dims = geometry.spatial_dims(kernel_size)
    axes = geometry.AXES[dims]
    x = v.float32_array(x, "x", (dims + 1, dims + 2),
                        f"{dims + 1}-D or {dims + 2}-D array ([N,] C, {axes})")
    kernel_size, dilation, padding, stride = _unfold_geometry(dims, kernel_size, dilation,
                                                              padding, stride)
    batched = x if x.ndim == dims + 2 else x[None]
    geometry.check_fits(batched.shape[2:], kernel_size, dilation, padding, "x")
    out = geometry.output_sizes(batched.shape[2:], kernel_size, dilation, padding, stride)
    v.output_size((batched.shape[0], batched.shape[1] * math.prod(kernel_size),
                   math.prod(out)), "x, kernel_size")
    cols = kernels.im2col(batched, kernel_size, dilation, padding, stride)
    return cols if x.ndim == dims + 2 else cols[0]


def col2im(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """torch.nn.functional.fold, the adjoint of im2col: cols [N, C*prod(k), L] (or
    [C*prod(k), L]) -> [N, C, *output_size] (or [C, *output_size]), overlapping entries
    summed. Spatial axes as in im2col (output_size has one entry per axis)."""
    dims = geometry.spatial_dims(kernel_size)
    cols = v.float32_array(cols, "cols", (2, 3), "2-D or 3-D array ([N,] C*prod(kernel), L)")
    output_size = v.int_tuple(output_size, "output_size", dims, 1)
    kernel_size, dilation, padding, stride = _unfold_geometry(dims, kernel_size, dilation,
                                                              padding, stride)
    batched = cols if cols.ndim == 3 else cols[None]
    taps = math.prod(kernel_size)
    if batched.shape[1] % taps:
        raise ValueError(f"cols: expected a multiple of prod(kernel_size) = {taps} rows, got "
                         f"shape {cols.shape}")
    geometry.check_fits(output_size, kernel_size, dilation, padding, "output_size")
    length = math.prod(geometry.output_sizes(output_size, kernel_size, dilation, padding,
                                             stride))
    if batched.shape[2] != length:
        raise ValueError(f"cols: expected {length} columns (blocks of output_size "
                         f"{output_size}), got shape {cols.shape}")
    v.output_size((batched.shape[0], batched.shape[1] // taps) + output_size, "output_size")
    y = kernels.col2im(batched, output_size, kernel_size, dilation, padding, stride)
    return y if cols.ndim == 3 else y[0]
