"""ONNX's geometry attributes of convolution and pooling nodes (kernel_shape, strides,
dilations, auto_pad, pads, ceil_mode) as explicit sizes: shared by fastdl.io.load_onnx and
the ONNX node tests (tests/test_onnx_nodes.py)."""
import math


def spatial_attrs(attrs, kernel_shape):
    """(kernel_shape, strides, dilations) with ONNX's defaults (strides and dilations 1)."""
    dims = len(kernel_shape)
    strides = list(attrs.get("strides") or [1] * dims)
    dilations = list(attrs.get("dilations") or [1] * dims)
    return list(kernel_shape), strides, dilations


def explicit_pads(attrs, in_sizes, kernel, strides, dilations):
    """ONNX's auto_pad / pads as (begin, end) lists per spatial axis.

    pads is [x1_begin, x2_begin, ..., x1_end, x2_end, ...]. SAME_UPPER / SAME_LOWER pad so
    that out = ceil(in / stride), the odd pixel at the end (UPPER) or the beginning
    (LOWER); VALID pads nothing. ValueError for an unknown auto_pad."""
    dims = len(in_sizes)
    mode = attrs.get("auto_pad", "NOTSET")
    if mode in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for size, k, s, d in zip(in_sizes, kernel, strides, dilations):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small, large = total // 2, total - total // 2
            begin.append(small if mode == "SAME_UPPER" else large)
            end.append(large if mode == "SAME_UPPER" else small)
        return begin, end
    if mode == "VALID":
        return [0] * dims, [0] * dims
    if mode != "NOTSET":
        raise ValueError(f"unknown auto_pad {mode!r}")
    pads = list(attrs.get("pads") or [0] * (2 * dims))
    return pads[:dims], pads[dims:]


def pool_output_sizes(in_sizes, kernel, strides, dilations, begin, end, ceil_mode):
    """ONNX's pooling output sizes; with ceil_mode a last window that would start in the
    end padding is dropped (as PyTorch does)."""
    out = []
    for size, k, s, d, pb, pe in zip(in_sizes, kernel, strides, dilations, begin, end):
        span = (k - 1) * d + 1
        n = (size + pb + pe - span) / s
        o = (math.ceil(n) if ceil_mode else math.floor(n)) + 1
        if ceil_mode and (o - 1) * s >= size + pb:
            o -= 1
        out.append(o)
    return out
