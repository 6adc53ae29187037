"""Pooling geometry shared by the backends and fastdl.ops: how many windows fit along an
axis, with PyTorch's rules; the error for a max pooling index outside its plane; and max
pooling's gradient from its input as a backend's own max_pool and scatter compose it."""


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
