# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""fastdl._im2col: batched im2col/col2im (torch unfold/fold) for 1, 2 or 3 spatial axes, a
typed loop over the batch calling the kernels per image (fdl::im2col / fdl::col2im,
kernels/src/conv/im2col.cc) through fastdl._C's kernel table.

Cython because this is a typed loop over buffers (see the README). Arguments were validated
by fastdl.ops (sizes, padding per axis flattened (before, after), output sizes that fit);
shapes here are trusted.
"""
import numpy as np

from kernel_api cimport ConvGeometry, FastdlKernelApi, Size3, fastdl_kernel_api, volume

cdef const FastdlKernelApi* api = fastdl_kernel_api()


def isa():
    """The ISA of the kernels this module calls now (the one fastdl._C reports)."""
    return api.active_isa().decode()


cdef Size3 widen(values, size_t fill):
    """(a, b) -> {fill, a, b}: the trailing axes are the given ones."""
    cdef Size3 out
    cdef size_t dims = len(values), a
    for a in range(3):
        out[a] = fill if a < 3 - dims else values[a - (3 - dims)]
    return out


cdef ConvGeometry geometry(size_t channels, kernel_size, dilation, padding, stride):
    cdef ConvGeometry g
    g.in_channels = channels
    g.out_channels = channels
    g.groups = 1
    g.kernel = widen(kernel_size, 1)
    g.dilation = widen(dilation, 1)
    g.stride = widen(stride, 1)
    g.pad_before = widen(padding[0::2], 0)
    g.pad_after = widen(padding[1::2], 0)
    return g


def im2col(x, kernel_size, dilation, padding, stride):
    """x [N, C, *spatial] (float32, C-contiguous) -> [N, C * prod(kernel_size), L]."""
    cdef size_t n = x.shape[0], c = x.shape[1]
    cdef ConvGeometry g = geometry(c, kernel_size, dilation, padding, stride)
    cdef Size3 size = widen(x.shape[2:], 1)
    cdef size_t rows = c * g.taps(), length = volume(api.conv_out_size(g, size))
    out = np.zeros((n, rows, length), dtype=np.float32)
    if out.size == 0 or x.size == 0:
        return out
    cdef const float[::1] xs = x.reshape(-1)
    cdef float[::1] cols = out.reshape(-1)
    cdef size_t i, image = c * volume(size)
    with nogil:
        for i in range(n):
            api.im2col(g, &xs[i * image], size, &cols[i * rows * length])
    return out


def col2im(cols, output_size, kernel_size, dilation, padding, stride):
    """cols [N, C * prod(kernel_size), L] -> [N, C, *output_size], overlapping entries
    summed (torch fold)."""
    cdef size_t taps = int(np.prod(kernel_size))
    cdef size_t n = cols.shape[0], c = cols.shape[1] // taps, length = cols.shape[2]
    cdef ConvGeometry g = geometry(c, kernel_size, dilation, padding, stride)
    cdef Size3 size = widen(output_size, 1)
    out = np.zeros((n, c) + tuple(output_size), dtype=np.float32)
    if out.size == 0 or cols.size == 0:
        return out
    cdef const float[::1] cs = cols.reshape(-1)
    cdef float[::1] y = out.reshape(-1)
    cdef size_t i, image = c * volume(size), block = cols.shape[1] * length
    with nogil:
        for i in range(n):
            api.col2im(g, &cs[i * block], size, &y[i * image])
    return out
