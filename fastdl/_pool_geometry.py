"""Pooling geometry shared by the backends and fastdl.ops: how many windows fit along an
axis, with PyTorch's rules; the error for a max pooling index outside its plane; and max
pooling's gradient from its input, and the 2x2/2 pooling with window codes and its
gradient, as a backend's own max_pool and scatter compose them."""
import numpy as np


def output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's number of windows along one axis (< 1 when none fits; callers refuse
    that). With ceil_mode a partial last window counts if it starts inside the input or
    its left padding."""
    span = dilation * (kernel - 1) + 1
    out = (size + 2 * padding - span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def index_error(value, spatial):
    """The ValueError every backend raises for a max pooling index `value` outside an input
    plane of shape `spatial` (fastdl._C's binding words it the same)."""
    plane = 1
    for n in spatial:
        plane *= n
    return ValueError(f"indices: expected flat positions in [0, {plane}) of an input plane "
                      f"{tuple(spatial)}, got {value}")


def max_pool_input_backward(max_pool, max_pool_backward, x, dy, kernel_size, stride, padding,
                            dilation, ceil_mode):
    """The contract of max_pool_input_backward on a backend's `max_pool` and
    `max_pool_backward`: the indices recomputed from x, then the scatter of dy."""
    _, indices = max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, True)
    if dy.shape != indices.shape:
        raise ValueError(f"dy: expected the shape of max_pool's output {indices.shape}, got "
                         f"{dy.shape}")
    return max_pool_backward(dy, indices, x.shape[2:])


# A window code's thresholds (fdl::MaxPoolCodesBackwardFn): tap k if code < k + 0.5, the
# first k that holds; no tap above 3.5 or for NaN.
_CODE_LIMITS = (0.5, 1.5, 2.5, 3.5)
NO_TAP = 4.0


def max_pool_2x2_codes(max_pool, x, relu_gate):
    """The contract of max_pool_2x2_codes on a backend's `max_pool`: the maxima of the 2x2
    windows at stride 2 of x [N, C, H, W] (even H, W) and per window the code of the tap
    max_pool's index names (2 * row + column within the window), NO_TAP where relu_gate
    and the maximum is not > 0."""
    y, indices = max_pool(x, (2, 2), (2, 2), (0, 0), (1, 1), False, True)
    width = x.shape[3]
    codes = (2 * ((indices // width) % 2) + indices % 2).astype(np.float32)
    if relu_gate:
        codes[~(y > 0)] = NO_TAP
    return y, codes


def max_pool_2x2_codes_backward(max_pool_backward, dy, codes):
    """The contract of max_pool_2x2_codes_backward on a backend's scatter: dx
    [N, C, 2 OH, 2 OW], each window's dy at the tap its code names (_CODE_LIMITS), 0
    elsewhere."""
    tap = np.full(codes.shape, -1, np.int64)
    for k, limit in reversed(list(enumerate(_CODE_LIMITS))):
        tap[codes < limit] = k
    none = tap < 0
    dy = np.where(none, np.float32(0), dy).astype(np.float32)
    tap[none] = 0
    out_h, out_w = dy.shape[2:]
    rows = np.arange(out_h)[:, None]
    cols = np.arange(out_w)[None, :]
    indices = (2 * rows + tap // 2) * (2 * out_w) + 2 * cols + tap % 2
    return max_pool_backward(dy, np.ascontiguousarray(indices, np.int64),
                             (2 * out_h, 2 * out_w))
