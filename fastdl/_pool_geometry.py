"""Pooling geometry shared by the backends and fastdl.ops: how many windows fit along an
axis, with PyTorch's rules."""


def output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's number of windows along one axis (< 1 when none fits; callers refuse
    that). With ceil_mode a partial last window counts if it starts inside the input or
    its left padding."""
    span = dilation * (kernel - 1) + 1
    out = (size + 2 * padding - span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out
