# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""fastdl._im2col: batched im2col/col2im over typed buffers, calling kernels/ per image.

Cython because this is a typed loop over buffers (see the README); the per-image work
is fdl::im2col / fdl::col2im in kernels/src/conv2d/conv2d.cc. Arguments were validated
by fastdl.ops; shapes here are trusted.
"""
import numpy as np

cdef extern from "fastdl/conv.h" namespace "fdl" nogil:
    cdef cppclass Conv2dGeometry:
        size_t in_channels, out_channels, groups, kernel_h, kernel_w
        size_t stride_h, stride_w, dilation_h, dilation_w
        size_t pad_top, pad_bottom, pad_left, pad_right
        size_t out_h(size_t in_h)
        size_t out_w(size_t in_w)
    void im2col_image "fdl::im2col"(const Conv2dGeometry& g, const float* x, size_t in_h,
                                    size_t in_w, float* cols)
    void col2im_image "fdl::col2im"(const Conv2dGeometry& g, const float* cols, size_t in_h,
                                    size_t in_w, float* y)


cdef Conv2dGeometry geometry(size_t channels, kernel_size, dilation, padding, stride):
    cdef Conv2dGeometry g
    g.in_channels = channels
    g.out_channels = channels
    g.groups = 1
    g.kernel_h, g.kernel_w = kernel_size
    g.dilation_h, g.dilation_w = dilation
    g.pad_top, g.pad_bottom, g.pad_left, g.pad_right = padding
    g.stride_h, g.stride_w = stride
    return g


def im2col(float[:, :, :, ::1] x, kernel_size, dilation, padding, stride):
    """x [N, C, H, W] -> [N, C*kh*kw, OH*OW] (torch.nn.functional.unfold)."""
    cdef size_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    cdef Conv2dGeometry g = geometry(c, kernel_size, dilation, padding, stride)
    cdef size_t rows = c * g.kernel_h * g.kernel_w, length = g.out_h(h) * g.out_w(w)
    out = np.zeros((n, rows, length), dtype=np.float32)
    if out.size == 0 or x.size == 0:
        return out
    cdef float[:, :, ::1] cols = out
    cdef size_t i
    with nogil:
        for i in range(n):
            im2col_image(g, &x[i, 0, 0, 0], h, w, &cols[i, 0, 0])
    return out


def col2im(float[:, :, ::1] cols, output_size, kernel_size, dilation, padding, stride):
    """cols [N, C*kh*kw, L] -> [N, C, H, W], overlapping entries summed (torch fold)."""
    cdef size_t kh = kernel_size[0], kw = kernel_size[1]
    cdef size_t n = cols.shape[0], c = cols.shape[1] // (kh * kw)
    cdef size_t h = output_size[0], w = output_size[1]
    cdef Conv2dGeometry g = geometry(c, kernel_size, dilation, padding, stride)
    out = np.zeros((n, c, h, w), dtype=np.float32)
    if out.size == 0 or cols.size == 0:
        return out
    cdef float[:, :, :, ::1] y = out
    cdef size_t i
    with nogil:
        for i in range(n):
            col2im_image(g, &cols[i, 0, 0], h, w, &y[i, 0, 0, 0])
    return out
