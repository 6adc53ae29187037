"""The ONNX operators fastdl.io.load_onnx reads.

CONVERTERS[op_type](builder, node, attrs, inputs) turns a node reading a model tensor into
fastdl layers (channels_first, ONNX's layout) and returns its outputs; FOLDERS[op_type]
(attrs, inputs, opset) computes a node whose inputs are all constants with NumPy, once, at
load (the shape arithmetic of exported graphs). An input is a NumPy array (a constant), a
SymbolicTensor, or None (an omitted optional input). A node fastdl cannot compute raises
Unsupported saying why; load_onnx lists them all.

Shapes of model tensors fold too: Shape gives the batch axis as BATCH, which the folders
carry along (Gather, Concat, Unsqueeze...) and Reshape recognises as the batch axis.
"""
import math

import numpy as np

from fastdl.io.onnx_attrs import explicit_pads, pool_output_sizes, spatial_attrs

# The batch axis' size in a folded shape: no real size, and arithmetic on it gives no
# real size either (a reshape of such a value is refused as unresolvable).
BATCH = np.int64(-(2**62) - 7)


class Unsupported(Exception):
    """The node uses something fastdl cannot compute; the message says what."""


class Permuted:
    """An ONNX value whose batch axis is not first -- the time-major (T, N, F) sequences
    of recurrent nodes -- held as the batch-first model tensor `t`: the value is
    np.transpose(t, perm), perm[0] != 0. Only the converters in TAKE_PERMUTED read one."""

    def __init__(self, t, perm):
        self.t, self.perm = t, tuple(perm)

    @property
    def shape(self):
        return tuple(self.t.shape[p] for p in self.perm)


def _const(value, what):
    if not isinstance(value, np.ndarray):
        raise Unsupported(f"{what} is computed by the graph; fastdl needs a constant")
    return value


def _is_tensor(value):
    return value is not None and not isinstance(value, (np.ndarray, Permuted))


def _transposed(b, node, value, order, suffix="_t"):
    """np.transpose(value, order) as a plain model tensor (its batch axis first)."""
    t, perm = (value.t, value.perm) if isinstance(value, Permuted) else (
        value, tuple(range(len(value.shape))))
    c = [perm[k] for k in order]
    if c[0] != 0:
        return Permuted(t, c)
    if c == list(range(len(c))):
        return t
    return b.apply(node, _layers().Permute, t, suffix=suffix, dims=tuple(c[1:]))


def _layers():
    from fastdl import layers
    return layers


def _rank_of(x, what="its input"):
    rank = len(x.shape) - 2
    if rank not in (1, 2, 3):
        raise Unsupported(f"{what} has {len(x.shape)} axes; fastdl's spatial layers take 3 "
                          f"to 5 (batch, channels, 1 to 3 spatial)")
    return rank


def _pairs(begin, end):
    """Per-axis (before, after) amounts as the padding layers take them."""
    pairs = tuple(zip(begin, end))
    return pairs[0] if len(pairs) == 1 else pairs


def _axis(axis, ndim, what="axis"):
    if not -ndim <= axis < ndim:
        raise Unsupported(f"{what} {axis} is out of range for {ndim} axes")
    return axis % ndim


# ------------------------------------------------------------------ convolution, dense

def _conv(b, node, attrs, inputs):
    x, w = inputs[0], _const(inputs[1], "its weight")
    bias = _const(inputs[2], "its bias") if len(inputs) > 2 and inputs[2] is not None \
        else None
    rank = _rank_of(x)
    if w.ndim != rank + 2:
        raise Unsupported(f"weight of shape {w.shape} for a {rank}-D input")
    kernel, strides, dilations = spatial_attrs(attrs, w.shape[2:])
    if list(attrs.get("kernel_shape") or kernel) != kernel:
        raise Unsupported("kernel_shape differs from the weight's spatial shape")
    try:
        begin, end = explicit_pads(attrs, x.shape[2:], kernel, strides, dilations)
    except ValueError as exc:
        raise Unsupported(str(exc)) from None
    L = _layers()
    y = x
    if any(begin) or any(end):  # (the inference runner folds it into the convolution)
        y = b.apply(node, getattr(L, f"ZeroPadding{rank}D"), y, suffix="_pad",
                    padding=_pairs(begin, end), data_format="channels_first")
    kernel_weights = np.transpose(w, tuple(range(2, rank + 2)) + (1, 0))  # [*k, in/g, out]
    return [b.apply(node, getattr(L, f"Conv{rank}D"), y,
                    [kernel_weights] + ([bias] if bias is not None else []),
                    filters=w.shape[0], kernel_size=tuple(kernel), strides=tuple(strides),
                    padding="valid", dilation_rate=tuple(dilations),
                    groups=attrs.get("group", 1), use_bias=bias is not None,
                    data_format="channels_first")]


def _conv_transpose(b, node, attrs, inputs):
    x, w = inputs[0], _const(inputs[1], "its weight")
    bias = _const(inputs[2], "its bias") if len(inputs) > 2 and inputs[2] is not None \
        else None
    rank = _rank_of(x)
    groups = int(attrs.get("group", 1))
    kernel, strides, dilations = spatial_attrs(attrs, w.shape[2:])
    if list(attrs.get("kernel_shape") or kernel) != kernel:
        raise Unsupported("kernel_shape differs from the weight's spatial shape")
    out_pad = list(attrs.get("output_padding") or [0] * rank)
    if any(p >= max(s, d) for p, s, d in zip(out_pad, strides, dilations)):
        raise Unsupported(f"output_padding {out_pad} not below the strides or dilations")
    # The full output (no padding removed), then what ONNX's pads / output_shape keep.
    full = [(n - 1) * s + (k - 1) * d + 1 + p for n, s, k, d, p in zip(
        x.shape[2:], strides, kernel, dilations, out_pad)]
    mode = attrs.get("auto_pad", "NOTSET")
    if attrs.get("output_shape") or mode in ("SAME_UPPER", "SAME_LOWER"):
        out = list(attrs.get("output_shape") or [n * s for n, s in zip(x.shape[2:], strides)])
        total = [f - o for f, o in zip(full, out[-rank:])]
        small = [t // 2 for t in total]
        big = [t - t // 2 for t in total]
        begin, end = (small, big) if mode != "SAME_LOWER" else (big, small)
    else:
        try:
            begin, end = explicit_pads(attrs, x.shape[2:], kernel, strides, dilations)
        except ValueError as exc:
            raise Unsupported(str(exc)) from None
    if any(p < 0 for p in begin + end):
        raise Unsupported("an output larger than the full transposed convolution")
    L = _layers()
    kernel_weights = np.transpose(w, tuple(range(2, rank + 2)) + (1, 0))  # [*k, out/g, in]
    y = b.apply(node, getattr(L, f"Conv{rank}DTranspose"), x,
                [kernel_weights] + ([bias] if bias is not None else []),
                suffix="_full" if any(begin) or any(end) else "",
                filters=w.shape[1] * groups, groups=groups, kernel_size=tuple(kernel),
                strides=tuple(strides),
                padding="valid", output_padding=tuple(out_pad),
                dilation_rate=tuple(dilations), use_bias=bias is not None,
                data_format="channels_first")
    if any(begin) or any(end):
        y = b.apply(node, getattr(L, f"Cropping{rank}D"), y, cropping=_pairs(begin, end),
                    data_format="channels_first")
    return [y]


def _dense(b, node, x, kernel, bias):
    return b.apply(node, _layers().Dense, x, [kernel] + ([bias] if bias is not None else []),
                   units=kernel.shape[1], use_bias=bias is not None)


def _gemm(b, node, attrs, inputs):
    a, w = inputs[0], _const(inputs[1], "B")
    if attrs.get("transA", 0):
        raise Unsupported("transA=1 (the batch axis would be A's second)")
    if len(a.shape) != 2 or w.ndim != 2:
        raise Unsupported(f"A of {len(a.shape)} axes or B of {w.ndim}")
    kernel = (w.T if attrs.get("transB", 0) else w) * attrs.get("alpha", 1.0)
    units = kernel.shape[1]
    bias = None
    if len(inputs) > 2 and inputs[2] is not None:
        c = _const(inputs[2], "C") * attrs.get("beta", 1.0)
        if c.size not in (1, units) or (c.ndim == 2 and c.shape[0] != 1):
            raise Unsupported(f"C of shape {c.shape} differs per example")
        bias = np.broadcast_to(c.reshape(-1), (units,))
    return [_dense(b, node, a, kernel, bias)]


def _matmul(b, node, attrs, inputs):
    x, w = inputs
    if not _is_tensor(x):
        raise Unsupported("A is a constant and B computed (fastdl's Dense multiplies the "
                          "model's tensor by constant weights)")
    w = _const(w, "B")
    if w.ndim != 2 or len(x.shape) < 2:
        raise Unsupported(f"B of {w.ndim} axes or A of {len(x.shape)} (fastdl: A @ a "
                          f"matrix)")
    return [_dense(b, node, x, w, b.absorbed_bias(node, w.shape[1]))]


# ------------------------------------------------------------------ normalization

def _batch_norm(b, node, attrs, inputs):
    if attrs.get("training_mode", 0) or len([o for o in node.output if o]) > 1:
        raise Unsupported("training mode (running statistics as outputs)")
    x = inputs[0]
    scale, bias, mean, var = (_const(v, n) for v, n in zip(
        inputs[1:5], ("scale", "B", "input_mean", "input_var")))
    if len(x.shape) < 2:
        raise Unsupported("an input without a channel axis")
    return [b.apply(node, _layers().BatchNormalization, x, [scale, bias, mean, var], axis=1,
                    epsilon=attrs.get("epsilon", 1e-5))]


# ------------------------------------------------------------------ activations

def _activation(name):
    def convert(b, node, attrs, inputs):
        return [b.apply(node, _layers().Activation, inputs[0], activation=name)]
    return convert


def _leaky_relu(b, node, attrs, inputs):
    return [b.apply(node, _layers().LeakyReLU, inputs[0],
                    negative_slope=attrs.get("alpha", 0.01))]


def _elu(b, node, attrs, inputs):
    alpha = attrs.get("alpha", 1.0)
    if alpha == 1.0:
        return _activation("elu")(b, node, attrs, inputs)
    return [b.apply(node, _layers().ELU, inputs[0], alpha=alpha)]


def _selu(b, node, attrs, inputs):
    """SELU, or for other constants gamma * elu(x, alpha): an ELU into a Rescaling."""
    alpha = attrs.get("alpha", 1.67326319217681884765625)
    gamma = attrs.get("gamma", 1.05070102214813232421875)
    if math.isclose(alpha, 1.6732632) and math.isclose(gamma, 1.0507010):
        return _activation("selu")(b, node, attrs, inputs)
    y = b.apply(node, _layers().ELU, inputs[0], suffix="_elu", alpha=alpha)
    return [b.apply(node, _layers().Rescaling, y, scale=gamma)]


def _hard_sigmoid(b, node, attrs, inputs):
    """max(0, min(1, alpha x + beta)): Keras' hard_sigmoid (relu6(x + 3) / 6) where alpha is
    1/6 and beta 1/2, else a Rescaling into a ReLU capped at 1."""
    alpha, beta = attrs.get("alpha", 0.2), attrs.get("beta", 0.5)
    if math.isclose(alpha, 1 / 6, rel_tol=1e-6) and beta == 0.5:
        return _activation("hard_sigmoid")(b, node, attrs, inputs)
    y = b.apply(node, _layers().Rescaling, inputs[0], suffix="_affine", scale=alpha,
                offset=beta)
    return [b.apply(node, _layers().ReLU, y, max_value=1.0)]


def _clip(b, node, attrs, inputs):
    """ReLU (min 0: capped at max), or for another min a ReLU between two Rescalings:
    clip(x, lo, hi) = relu_capped(x - lo, hi - lo) + lo; min(x, hi) = hi - relu(hi - x)."""
    if len(inputs) > 1:  # opset 11: min and max are inputs
        low = None if len(inputs) < 2 or inputs[1] is None else _const(inputs[1], "min")
        high = None if len(inputs) < 3 or inputs[2] is None else _const(inputs[2], "max")
    else:
        low, high = attrs.get("min"), attrs.get("max")
    low = None if low is None else float(np.asarray(low).reshape(-1)[0])
    high = None if high is None else float(np.asarray(high).reshape(-1)[0])
    low = None if low == -math.inf else low
    high = None if high == math.inf else high
    x, L = inputs[0], _layers()
    if low is None and high is None:
        return [x]
    if low is not None and high is not None and high < low:
        # min(max(x, low), high) is high everywhere: a ReLU capped at 0, moved to high.
        y = b.apply(node, L.ReLU, x, suffix="_zero", max_value=0.0)
        return [b.apply(node, L.Rescaling, y, scale=1.0, offset=high)]
    if low == 0.0:
        if high is None:
            return _activation("relu")(b, node, attrs, inputs[:1])
        if high == 6.0:
            return _activation("relu6")(b, node, attrs, inputs[:1])
        return [b.apply(node, L.ReLU, x, max_value=high)]
    if low is None:  # only a max
        y = b.apply(node, L.Rescaling, x, suffix="_flip", scale=-1.0, offset=high)
        y = b.apply(node, L.ReLU, y, suffix="_relu")
        return [b.apply(node, L.Rescaling, y, scale=-1.0, offset=high)]
    y = b.apply(node, L.Rescaling, x, suffix="_shift", scale=1.0, offset=-low)
    y = b.apply(node, L.ReLU, y, suffix="_relu",
                **({} if high is None else {"max_value": high - low}))
    return [b.apply(node, L.Rescaling, y, scale=1.0, offset=low)]


def _gelu(b, node, attrs, inputs):
    approximate = attrs.get("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise Unsupported(f"approximate={approximate!r}")
    return _activation("gelu_tanh" if approximate == "tanh" else "gelu")(b, node, attrs,
                                                                         inputs)


def _softmax(log):
    def convert(b, node, attrs, inputs):
        x = inputs[0]
        ndim = len(x.shape)
        axis = _axis(attrs.get("axis", -1 if b.opset >= 13 else 1), ndim)
        if axis == 0:
            raise Unsupported("over the batch axis")
        if b.opset < 13 and axis != ndim - 1:
            raise Unsupported(f"opset {b.opset}'s softmax over the flattened axes {axis}.. "
                              f"(fastdl: over one axis)")
        if axis == ndim - 1:
            return _activation("log_softmax" if log else "softmax")(b, node, attrs, inputs)
        if log:
            raise Unsupported("LogSoftmax over an axis other than the last")
        return [b.apply(node, _layers().Softmax, x, axis=axis)]
    return convert


def _pass_through(b, node, attrs, inputs):
    """Identity, and Dropout at inference."""
    if len([o for o in node.output if o]) > 1:
        raise Unsupported("the mask output (fastdl's imported models run inference only)")
    if len(inputs) > 2 and inputs[2] is not None and np.any(_const(inputs[2],
                                                                    "training_mode")):
        raise Unsupported("training_mode true (dropout at inference)")
    return [inputs[0]]


# ------------------------------------------------------------------ pooling

def _pool(kind):
    def convert(b, node, attrs, inputs):
        x = inputs[0]
        rank = _rank_of(x)
        if len([o for o in node.output if o]) > 1 or attrs.get("storage_order", 0):
            raise Unsupported("the Indices output")
        kernel, strides, dilations = spatial_attrs(attrs, attrs["kernel_shape"])
        sizes = list(x.shape[2:])
        try:
            begin, end = explicit_pads(attrs, sizes, kernel, strides, dilations)
        except ValueError as exc:
            raise Unsupported(str(exc)) from None
        include_pad = bool(attrs.get("count_include_pad", 0))
        if attrs.get("ceil_mode", 0):
            out = pool_output_sizes(sizes, kernel, strides, dilations, begin, end, True)
            if out != pool_output_sizes(sizes, kernel, strides, dilations, begin, end, False):
                if kind == "Average" and include_pad:
                    raise Unsupported("ceil_mode with count_include_pad (a divisor that "
                                      "counts the declared padding but not the extra end)")
                # The last window reaches past the end: padding that covers it (-inf for
                # max, not counted for average) gives the same values.
                end = [max(e, (o - 1) * s + (k - 1) * d + 1 - n - p) for e, o, s, k, d, n, p
                       in zip(end, out, strides, kernel, dilations, sizes, begin)]
        extra = {"count_include_pad": include_pad} if kind == "Average" and (
            any(begin) or any(end)) else {}
        if any(d != 1 for d in dilations):
            extra["dilation_rate"] = tuple(dilations)
        cls = getattr(_layers(), f"{kind}Pooling{rank}D")
        padding = _pairs(begin, end) if any(begin) or any(end) else "valid"
        return [b.apply(node, cls, x, pool_size=tuple(kernel), strides=tuple(strides),
                        padding=padding, data_format="channels_first", **extra)]
    return convert


def _global_pool(kind):
    def convert(b, node, attrs, inputs):
        rank = _rank_of(inputs[0])
        cls = getattr(_layers(), f"Global{kind}Pooling{rank}D")
        return [b.apply(node, cls, inputs[0], data_format="channels_first", keepdims=True)]
    return convert


_GLOBAL_POOLING = {"mean": "Average", "max": "Max"}


def _reduce(kind):
    """ReduceMean / Max / Min / Sum over feature axes: a global pooling where it is one
    (a mean or maximum over every spatial axis of a map), else a Reduce layer."""
    def convert(b, node, attrs, inputs):
        x = inputs[0]
        ndim = len(x.shape)
        axes = attrs.get("axes") if len(inputs) < 2 or inputs[1] is None else \
            _const(inputs[1], "axes")
        axes = [] if axes is None else sorted(
            {_axis(int(a), ndim) for a in np.asarray(axes).reshape(-1)})
        if not axes and attrs.get("noop_with_empty_axes", 0):
            return [x]
        if not axes or 0 in axes:
            raise Unsupported("a reduction over the batch axis" if axes else
                              "a reduction over every axis, the batch's too")
        keep = bool(attrs.get("keepdims", 1))
        if kind in _GLOBAL_POOLING and 3 <= ndim <= 5 and axes == list(range(2, ndim)):
            cls = getattr(_layers(), f"Global{_GLOBAL_POOLING[kind]}Pooling{ndim - 2}D")
            return [b.apply(node, cls, x, data_format="channels_first", keepdims=keep)]
        return [b.apply(node, _layers().Reduce, x, kind=kind, axis=tuple(axes),
                        keepdims=keep)]
    return convert


# ------------------------------------------------------------------ merging

_MERGE = {"Add": "Add", "Sub": "Subtract", "Mul": "Multiply", "Sum": "Add", "Max": "Maximum",
          "Min": "Minimum", "Mean": "Average", "Div": None}


def _with_constant(b, node, inputs):
    """Add, Sub, Mul or Div of a model tensor and a constant that broadcasts against it
    without growing it (nor varying along the batch axis): a Rescaling layer."""
    first = _is_tensor(inputs[0])
    x, c = inputs if first else inputs[::-1]
    c = np.asarray(c, np.float32)
    shape = (1,) + tuple(x.shape[1:])
    try:
        grows = np.broadcast_shapes(shape, c.shape) != shape
    except ValueError:
        grows = True
    if grows:
        raise Unsupported(f"a constant of shape {c.shape} that broadcasts {tuple(x.shape)} "
                          f"to another shape (or along the batch axis)")
    op = node.op_type
    if op == "Div" and not first:
        raise Unsupported("a constant divided by the model's tensor")
    scale, offset = {"Add": (1.0, c), "Mul": (c, 0.0),
                     "Sub": (1.0, -c) if first else (-1.0, c),
                     "Div": ((1.0 / c.astype(np.float64)).astype(np.float32), 0.0)}[op]
    return [b.apply(node, _layers().Rescaling, x, scale=scale, offset=offset)]


def _merge(b, node, attrs, inputs):
    if node.op_type in ("Add", "Sub", "Mul", "Div") and len(inputs) == 2 and \
            sum(map(_is_tensor, inputs)) == 1 and all(x is not None for x in inputs):
        return _with_constant(b, node, inputs)
    if not all(_is_tensor(x) for x in inputs):
        raise Unsupported("a constant operand (fastdl merges the model's tensors)")
    if len({tuple(x.shape) for x in inputs}) > 1:
        raise Unsupported(f"operands of different shapes {[tuple(x.shape) for x in inputs]} "
                          f"(broadcasting)")
    if len(inputs) == 1:
        return [inputs[0]]
    if _MERGE[node.op_type] is None:
        raise Unsupported("a division of two model tensors")
    return [b.apply(node, getattr(_layers(), _MERGE[node.op_type]), list(inputs))]


def _concat(b, node, attrs, inputs):
    if not all(_is_tensor(x) for x in inputs):
        raise Unsupported("a constant operand (fastdl concatenates the model's tensors)")
    axis = _axis(attrs["axis"], len(inputs[0].shape))
    if axis == 0:
        raise Unsupported("along the batch axis")
    if len(inputs) == 1:
        return [inputs[0]]
    return [b.apply(node, _layers().Concatenate, list(inputs), axis=axis)]


# ------------------------------------------------------------------ shapes

def _shape(b, node, attrs, inputs):
    shape = np.array([BATCH] + list(inputs[0].shape[1:]), np.int64)
    start, end = attrs.get("start", 0), attrs.get("end")
    return [shape[start:end]]


def _reshaped(b, node, x, target):
    """x as `target` (a full shape, batch axis first: BATCH, or the graph's batch size)."""
    target = [int(t) for t in target]
    size = math.prod(x.shape[1:])
    if not b.static_batch(target[0]) and target[0] != -1:
        raise Unsupported(f"a reshape to {target} that does not keep the batch axis first")
    rest = target[1:]
    if any(t < -1 or t == BATCH for t in rest) or rest.count(-1) > 1:
        raise Unsupported(f"a reshape to {target} fastdl cannot resolve (the batch size "
                          f"enters an axis other than the first)")
    if -1 in rest:
        known = math.prod(t for t in rest if t != -1)
        if known == 0 or size % known:
            raise Unsupported(f"a reshape of {x.shape} to {target}")
        rest[rest.index(-1)] = size // known
    if math.prod(rest) != size:
        raise Unsupported(f"a reshape of {x.shape} to {target} that moves the batch axis")
    if tuple(rest) == tuple(x.shape[1:]):
        return x
    return b.apply(node, _layers().Reshape, x, target_shape=tuple(rest))


def _reshape(b, node, attrs, inputs):
    x, target = inputs[0], _const(inputs[1], "the shape")
    target = [int(t) for t in target]
    if not attrs.get("allowzero", 0):
        target = [x.shape[i] if t == 0 else t for i, t in enumerate(target)]
    if isinstance(x, Permuted):
        return [_reshaped_permuted(b, node, x, target)]
    target = [BATCH if i == 0 and t is None else t for i, t in enumerate(target)]
    return [_reshaped(b, node, x, target)]


def _reshaped_permuted(b, node, x, target):
    """A reshape of a Permuted value that keeps its leading axes (those the permutation
    moves) and reshapes the trailing ones, in order: e.g. a bidirectional recurrent
    output (T, N, 2, H) -> (T, N, 2H)."""
    shape, perm = x.shape, x.perm
    keep = 0
    while keep < min(len(shape), len(target)) and (
            target[keep] == shape[keep] or (shape[keep] is None and b.static_batch(
                target[keep]))):
        keep += 1
    moved = max(i for i, p in enumerate(perm) if p != i) + 1
    if keep < moved:
        raise Unsupported(f"a reshape of a time-major {shape} to {target} that moves its "
                          f"permuted axes")
    rest = [int(t) for t in target[keep:]]
    batch_first = [BATCH] + list(x.t.shape[1:keep]) + rest  # perm[:keep] is 0..keep-1
    return Permuted(_reshaped(b, node, x.t, batch_first),
                    list(perm[:keep]) + list(range(keep, keep + len(rest))))


def _flatten(b, node, attrs, inputs):
    x = inputs[0]
    ndim = len(x.shape)
    axis = attrs.get("axis", 1)
    if not -ndim <= axis <= ndim:
        raise Unsupported(f"axis {axis} is out of range for {ndim} axes")
    axis = axis + ndim if axis < 0 else axis  # in [0, ndim]: ONNX counts from the end
    if axis == 0:
        raise Unsupported("axis 0 (the batch axis joins the features)")
    if any(s != 1 for s in x.shape[1:axis]):
        raise Unsupported(f"axis {axis}: the batch axis would join axes {list(x.shape[1:axis])}")
    if len(x.shape) == 2:
        return [x]
    return [b.apply(node, _layers().Flatten, x)]


def _squeeze_axes(attrs, inputs, opset):
    if opset >= 13:
        return None if len(inputs) < 2 or inputs[1] is None else \
            [int(a) for a in _const(inputs[1], "axes").reshape(-1)]
    return attrs.get("axes")


def _squeeze(b, node, attrs, inputs):
    x = inputs[0]
    ndim = len(x.shape)
    axes = _squeeze_axes(attrs, inputs, b.opset)
    axes = [i for i in range(ndim) if x.shape[i] == 1] if axes is None else \
        sorted(_axis(a, ndim) for a in axes)
    return [_squeezed(b, node, x, axes)]


def _squeezed(b, node, x, axes):
    """x (a tensor or a Permuted value) without its axes `axes` (sorted, each of size 1)."""
    ndim = len(x.shape)
    perm = x.perm if isinstance(x, Permuted) else tuple(range(ndim))
    t = x.t if isinstance(x, Permuted) else x
    dropped = sorted(perm[a] for a in axes)  # the axes of the batch-first tensor
    if 0 in dropped:
        raise Unsupported("squeezing the batch axis")
    if any(x.shape[a] != 1 for a in axes):
        raise Unsupported(f"axes {axes} of shape {x.shape} are not all 1")
    y = _reshaped(b, node, t, [BATCH] + [s for i, s in enumerate(t.shape)
                                         if i not in dropped and i > 0])
    kept = [p - sum(d < p for d in dropped) for i, p in enumerate(perm) if i not in axes]
    return _transposed(b, node, y, kept)


def _unsqueeze(b, node, attrs, inputs):
    x = inputs[0]
    axes = _squeeze_axes(attrs, inputs, b.opset)
    if axes is None:
        raise Unsupported("no axes")
    ndim = len(x.shape) + len(axes)
    axes = sorted(_axis(a, ndim) for a in axes)
    if 0 in axes:
        raise Unsupported("a new axis before the batch axis")
    shape = list(x.shape[1:])
    for a in axes:
        shape.insert(a - 1, 1)
    return [_reshaped(b, node, x, [BATCH] + shape)]


def _transpose(b, node, attrs, inputs):
    x = inputs[0]
    ndim = len(x.shape)
    perm = list(attrs.get("perm") or range(ndim - 1, -1, -1))
    return [_transposed(b, node, x, perm, suffix="")]


def _sliced(b, node, x, axis, start, stop, step=1, suffix=""):
    """x[start:stop:step] along `axis` (ONNX's clamping: ends beyond the axis are its
    end); x itself when that keeps everything."""
    ndim = len(x.shape)
    axis = _axis(axis, ndim)
    if axis == 0:
        raise Unsupported("a slice of the batch axis")
    size = x.shape[axis]
    if step == 0:
        raise Unsupported("a step of 0")
    kept = range(size)[slice(start, stop, step)]  # ONNX clamps as Python does
    if kept == range(size):
        return x
    if not kept:
        raise Unsupported(f"an empty slice [{start}:{stop}:{step}] of an axis of {size}")
    return b.apply(node, _layers().Slice, x, suffix=suffix, axis=axis, start=kept.start,
                   stop=kept.stop if kept.stop >= 0 else None, step=kept.step)


def _slice(b, node, attrs, inputs):
    x = inputs[0]
    starts, ends = (_const(v, n).reshape(-1) for v, n in zip(inputs[1:3], ("starts", "ends")))
    axes = range(len(starts)) if len(inputs) < 4 or inputs[3] is None else \
        _const(inputs[3], "axes").reshape(-1)
    steps = [1] * len(starts) if len(inputs) < 5 or inputs[4] is None else \
        _const(inputs[4], "steps").reshape(-1)
    for i, (start, end, axis, step) in enumerate(zip(starts, ends, axes, steps)):
        x = _sliced(b, node, x, int(axis), int(start), int(end), int(step),
                    suffix=f"_{i}" if i else "")
    return [x]


def _split(b, node, attrs, inputs):
    x = inputs[0]
    axis = _axis(attrs.get("axis", 0), len(x.shape))
    if axis == 0:
        raise Unsupported("a split of the batch axis")
    n = len(node.output)
    sizes = attrs.get("split") if len(inputs) < 2 or inputs[1] is None else \
        [int(s) for s in _const(inputs[1], "split").reshape(-1)]
    size = x.shape[axis]
    if sizes is None:  # equal parts (the last smaller, opset 18's num_outputs)
        part = -(-size // n)
        sizes = [min(part, size - i * part) for i in range(n)]
    if len(sizes) != n or sum(sizes) != size:
        raise Unsupported(f"split sizes {sizes} for {n} outputs of an axis of {size}")
    starts = np.cumsum([0] + list(sizes))
    return [_sliced(b, node, x, axis, int(a), int(e), suffix=f"_{i}")
            for i, (a, e) in enumerate(zip(starts[:-1], starts[1:]))]


def _gather(b, node, attrs, inputs):
    """One index along an axis: a Slice (and, for a scalar index, that axis dropped) --
    also of a time-major value, e.g. h_n[-1] of a recurrent node's last states; several:
    a Gather layer."""
    x, indices = inputs[0], _const(inputs[1], "indices")
    axis = _axis(attrs.get("axis", 0), len(x.shape))
    if x.shape[axis] is None:
        raise Unsupported("an index into the batch axis")
    if indices.size != 1:
        if isinstance(x, Permuted) or indices.size == 0:
            raise Unsupported(f"indices of shape {indices.shape} into a time-major value"
                              if indices.size else "no indices")
        return [b.apply(node, _layers().Gather, x, indices=indices, axis=axis)]
    index = int(indices.reshape(-1)[0]) % x.shape[axis]
    if isinstance(x, Permuted):
        y = Permuted(_sliced(b, node, x.t, x.perm[axis], index, index + 1, suffix="_slice"),
                     x.perm)
    else:
        y = _sliced(b, node, x, axis, index, index + 1, suffix="_slice")
    return [y if indices.ndim == 1 else _squeezed(b, node, y, [axis])]


# Resize's coordinate rules under which its result is the UpSampling layers': nearest
# repeats each element (integer scales), linear is Keras' half-pixel bilinear.
_NEAREST_AS_REPEAT = {("asymmetric", "floor"), ("half_pixel", "round_prefer_floor"),
                      ("half_pixel", "round_prefer_ceil"),
                      ("pytorch_half_pixel", "round_prefer_floor"),
                      ("pytorch_half_pixel", "round_prefer_ceil")}


def _resize_extents(x, attrs, inputs):
    """(sizes, scales) of a Resize node over the spatial axes: sizes an int per axis or None
    (floor(extent * scale) at run time), scales a float per axis or None (size / extent).
    Refuses a resize of the batch or channel axis."""
    ndim = len(x.shape)
    axes = attrs.get("axes")
    axes = list(range(ndim)) if axes is None else [int(a) % ndim for a in axes]
    policy = attrs.get("keep_aspect_ratio_policy", "stretch")
    if len(inputs) > 3 and inputs[3] is not None and inputs[3].size:
        given = [int(s) for s in _const(inputs[3], "sizes").reshape(-1)]
        if any(n is None for n in x.shape[1:]):
            raise Unsupported(f"sizes {given} for an input of unknown extents {x.shape}")
        # The batch extent (unknown here) is taken as it comes: its factor is 1.
        extents = [given[axes.index(a)] if a in axes and a > 0 else
                   (1 if a == 0 else x.shape[a]) for a in range(ndim)]
        current = [1] + list(x.shape[1:])
        scales = [e / c for e, c in zip(extents, current)]
        if policy != "stretch":
            if policy not in ("not_larger", "not_smaller"):
                raise Unsupported(f"keep_aspect_ratio_policy {policy!r}")
            kept = [scales[a] for a in axes]
            scale = min(kept) if policy == "not_larger" else max(kept)
            scales = [scale if a in axes else 1.0 for a in range(ndim)]
            extents = [int(scale * c + 0.5) if a in axes else c
                       for a, c in enumerate(current)]
        if extents[1] != x.shape[1]:
            raise Unsupported(f"sizes {given} resize the channel axis")
        return extents[2:], (scales[2:] if policy != "stretch" else None)
    given = [float(s) for s in _const(inputs[2], "scales").reshape(-1)]
    scales = [given[axes.index(a)] if a in axes else 1.0 for a in range(ndim)]
    if scales[:2] != [1.0, 1.0]:
        raise Unsupported(f"scales {given} resize the batch or channel axis")
    return None, scales[2:]


def _resize(b, node, attrs, inputs):
    """UpSampling where the node repeats or is Keras' bilinear by whole factors, else the
    Resize layer (ONNX's rules for nearest and linear)."""
    x = inputs[0]
    rank = _rank_of(x)
    mode = attrs.get("mode", "nearest")
    rule = (attrs.get("coordinate_transformation_mode", "half_pixel"),
            attrs.get("nearest_mode", "round_prefer_floor"))
    layers = _layers()
    from fastdl.layers._resample import COORDINATE_MODES, NEAREST_MODES
    if mode not in ("nearest", "linear") or attrs.get("antialias", 0) \
            or rule[0] not in COORDINATE_MODES or rule[1] not in NEAREST_MODES:
        raise Unsupported(f"mode {mode!r} with coordinate_transformation_mode {rule[0]!r}"
                          + (f", nearest_mode {rule[1]!r}" if mode == "nearest" else "")
                          + (", antialias" if attrs.get("antialias", 0) else ""))
    sizes, scales = _resize_extents(x, attrs, inputs)
    factors = scales if scales is not None else [s / n for s, n in zip(sizes, x.shape[2:])]
    whole = scales is None or sizes is None or all(
        s == f * n for s, f, n in zip(sizes, scales, x.shape[2:]))
    if whole and all(f == int(f) and f >= 1 for f in factors):
        if all(f == 1 for f in factors):
            return [x]
        if (mode == "nearest" and rule in _NEAREST_AS_REPEAT) or (
                mode == "linear" and rank == 2 and rule[0] in ("half_pixel",
                                                               "pytorch_half_pixel")):
            return [b.apply(node, getattr(layers, f"UpSampling{rank}D"), x,
                            size=tuple(int(f) for f in factors), data_format="channels_first",
                            **({"interpolation": "bilinear" if mode == "linear" else "nearest"}
                               if rank == 2 else {}))]
    return [b.apply(node, layers.Resize, x, size=sizes, scale=scales, interpolation=mode,
                    coordinate_mode=rule[0], nearest_mode=rule[1],
                    data_format="channels_first")]


def _pad(b, node, attrs, inputs):
    """ZeroPadding where the node pads the spatial axes with zeros, else a Padding layer
    (a constant value, edge, reflect, wrap)."""
    x = inputs[0]
    rank = _rank_of(x)
    mode = attrs.get("mode", "constant")
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise Unsupported(f"mode {mode!r}")
    pads = attrs.get("pads") if b.opset < 11 else _const(inputs[1], "pads")
    value = attrs.get("value", 0.0) if b.opset < 11 else 0.0
    if len(inputs) > 2 and inputs[2] is not None:
        value = float(_const(inputs[2], "constant_value").reshape(-1)[0])
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    ndim = len(x.shape)
    if len(inputs) > 3 and inputs[3] is not None:  # opset 18: pads of these axes only
        axes = [_axis(int(a), ndim, "axes") for a in _const(inputs[3], "axes").reshape(-1)]
        if len(pads) != 2 * len(axes) or len(set(axes)) != len(axes):
            raise Unsupported(f"pads {pads} for axes {axes}")
        full = [0] * (2 * ndim)
        for k, a in enumerate(axes):
            full[a], full[ndim + a] = pads[k], pads[len(axes) + k]
        pads = full
    begin, end = pads[:ndim], pads[ndim:]
    if any(p < 0 for p in pads) or begin[:2] != [0, 0] or end[:2] != [0, 0]:
        raise Unsupported(f"pads {pads} (fastdl pads the spatial axes, without cropping)")
    if not any(pads):
        return [x]
    if mode == "constant" and value == 0.0:
        return [b.apply(node, getattr(_layers(), f"ZeroPadding{rank}D"), x,
                        padding=_pairs(begin[2:], end[2:]), data_format="channels_first")]
    return [b.apply(node, _layers().Padding, x, padding=tuple(zip(begin[2:], end[2:])),
                    mode=mode, value=value, data_format="channels_first")]


# ------------------------------------------------------------------ recurrent

def _lstm_gates(a):
    """ONNX's LSTM gates i, o, f, c (along axis 0) in Keras' order i, f, c, o."""
    i, o, f, c = np.split(a, 4, axis=0)
    return np.concatenate([i, f, c, o], axis=0)


def _recurrent(kind):
    """LSTM / GRU: a Keras LSTM or GRU layer (Bidirectional for both directions) giving
    the node's Y; the last states Y_h, Y_c only where nothing reads them."""
    def convert(b, node, attrs, inputs):
        x = inputs[0]
        read = [len(node.output) > i and bool(node.output[i]) and b.is_read(node.output[i])
                for i in range(3)]
        if len(inputs) > 4 and inputs[4] is not None:
            raise Unsupported("sequence_lens")
        for i, name in ((5, "initial_h"), (6, "initial_c"), (7, "P (peepholes)")):
            if len(inputs) > i and inputs[i] is not None and np.any(_const(inputs[i], name)):
                raise Unsupported(f"a {name} other than zeros")
        direction = attrs.get("direction", "forward")
        if read[2] and direction == "bidirectional":
            raise Unsupported("the Y_c output of a bidirectional LSTM")
        if attrs.get("clip") is not None or attrs.get("input_forget", 0):
            raise Unsupported("clip or input_forget")
        defaults = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}[kind]
        if attrs.get("activations") not in (None, defaults, defaults * 2):
            raise Unsupported(f"activations {attrs.get('activations')}")
        w, r = _const(inputs[1], "W"), _const(inputs[2], "R")
        units = attrs["hidden_size"]
        gates = 4 if kind == "LSTM" else 3
        bias = _const(inputs[3], "B") if len(inputs) > 3 and inputs[3] is not None else \
            np.zeros((w.shape[0], 2 * gates * units), np.float32)
        if attrs.get("layout", 0):
            seq = _transposed(b, node, x, [0, 1, 2], suffix="_in")
        else:
            seq = _transposed(b, node, x, [1, 0, 2], suffix="_in")  # (T, N, F) -> (N, T, F)
        if isinstance(seq, Permuted):
            raise Unsupported("an input whose batch axis is neither first nor second")
        reset_after = bool(attrs.get("linear_before_reset", 0))
        weights = []
        for d in range(w.shape[0]):
            wb, rb = np.split(bias[d], 2)
            if kind == "LSTM":
                weights += [_lstm_gates(w[d]).T, _lstm_gates(r[d]).T, _lstm_gates(wb + rb)]
            else:  # ONNX's gates z, r, h are Keras' order
                weights += [w[d].T, r[d].T, np.stack([wb, rb]) if reset_after else wb + rb]
        L = _layers()
        extra = {} if kind == "LSTM" else {"reset_after": reset_after}
        cell = getattr(L, kind)(units, return_sequences=True, return_state=read[2],
                                go_backwards=direction == "reverse",
                                name=b.layer_name((node.name or kind.lower()) + "_cell"),
                                **extra)
        if direction == "bidirectional":
            y = b.apply(node, L.Bidirectional, seq, weights, layer=cell, merge_mode="concat")
        else:
            y = cell(seq)
            cell.set_weights([np.asarray(a, np.float32) for a in weights])
            y, c = (y[0], y[2]) if read[2] else (y, None)
            if direction == "reverse":  # Keras gives the steps in the order it ran them
                y = _sliced(b, node, y, 1, None, None, -1, suffix="_aligned")
        directions = w.shape[0]
        # Y is (T, directions, N, H): y (N, T, directions * H) as (N, T, directions, H)
        y4 = _reshaped(b, node, y, [BATCH, y.shape[1], directions, units])
        batch_first = attrs.get("layout", 0)
        outputs = [y4 if batch_first else Permuted(y4, (1, 2, 0, 3))]
        if read[1] or read[2]:  # Y_h (directions, N, H): each direction's last step of Y
            steps = y4.shape[1]
            last = [_sliced(b, node, _sliced(b, node, y4, 1, t, t + 1, suffix=f"_h{d}_t"),
                            2, d, d + 1, suffix=f"_h{d}") for d, t in enumerate(
                [0 if direction == "reverse" else steps - 1] +
                ([0] if directions == 2 else []))]
            h = last[0] if directions == 1 else b.apply(node, L.Concatenate, last,
                                                        suffix="_h", axis=2)
            h = _reshaped(b, node, h, [BATCH, directions, units])
            outputs.append(h if batch_first else Permuted(h, (1, 0, 2)))
        if read[2]:
            c = _reshaped(b, node, c, [BATCH, 1, units])
            outputs.append(c if batch_first else Permuted(c, (1, 0, 2)))
        return outputs
    return convert


# The attributes each operator may carry (those of its versions up to opset 25): one not
# listed -- from a later version -- makes the node unsupported rather than misread.
_GEOMETRY = {"auto_pad", "dilations", "kernel_shape", "pads", "strides"}
_RECURRENT_ATTRS = {"activation_alpha", "activation_beta", "activations", "clip",
                    "direction", "hidden_size", "layout"}
ATTRIBUTES = {
    "Conv": _GEOMETRY | {"group"}, "ConvTranspose": _GEOMETRY | {"group", "output_padding",
                                                              "output_shape"},
    "Gemm": {"alpha", "beta", "transA", "transB"},
    "BatchNormalization": {"epsilon", "momentum", "training_mode", "spatial"},
    "Clip": {"min", "max"}, "Softmax": {"axis"}, "LogSoftmax": {"axis"},
    "MaxPool": _GEOMETRY | {"ceil_mode", "storage_order"},
    "AveragePool": _GEOMETRY | {"ceil_mode", "count_include_pad"},
    "ReduceMean": {"axes", "keepdims", "noop_with_empty_axes"},
    "ReduceMax": {"axes", "keepdims", "noop_with_empty_axes"},
    "ReduceMin": {"axes", "keepdims", "noop_with_empty_axes"},
    "ReduceSum": {"axes", "keepdims", "noop_with_empty_axes"},
    "Concat": {"axis"}, "Shape": {"start", "end"}, "Reshape": {"allowzero"},
    "Flatten": {"axis"}, "Squeeze": {"axes"}, "Unsqueeze": {"axes"}, "Transpose": {"perm"},
    "Pad": {"mode", "pads", "value"}, "Split": {"axis", "split", "num_outputs"},
    "Gather": {"axis"},
    "Resize": {"mode", "coordinate_transformation_mode", "nearest_mode", "antialias",
               "cubic_coeff_a", "exclude_outside", "extrapolation_value",
               "keep_aspect_ratio_policy", "axes"},
    "LSTM": _RECURRENT_ATTRS | {"input_forget"},
    "GRU": _RECURRENT_ATTRS | {"linear_before_reset"},
    "Cast": {"to", "saturate", "round_mode"},
    "Constant": {"value", "value_float", "value_floats", "value_int", "value_ints",
                 "sparse_value", "value_string", "value_strings"},
    "ConstantOfShape": {"value"}, "Dropout": {"seed", "ratio"},
    "HardSigmoid": {"alpha", "beta"}, "LeakyRelu": {"alpha"}, "Elu": {"alpha"},
    "Selu": {"alpha", "gamma"}, "Gelu": {"approximate"},
}

# The converters that read Permuted values (time-major sequences).
TAKE_PERMUTED = {"Transpose", "Squeeze", "Reshape", "Gather", "LSTM", "GRU", "Identity",
                 "Dropout"}

CONVERTERS = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "Gemm": _gemm, "MatMul": _matmul, "BatchNormalization": _batch_norm,
    "Relu": _activation("relu"), "Sigmoid": _activation("sigmoid"),
    "Tanh": _activation("tanh"), "Softplus": _activation("softplus"),
    "HardSwish": _activation("hard_swish"), "LeakyRelu": _leaky_relu, "Elu": _elu,
    "Selu": _selu, "HardSigmoid": _hard_sigmoid, "Clip": _clip, "Gelu": _gelu,
    "Softmax": _softmax(False), "LogSoftmax": _softmax(True),
    "Identity": _pass_through, "Dropout": _pass_through,
    "MaxPool": _pool("Max"), "AveragePool": _pool("Average"),
    "GlobalAveragePool": _global_pool("Average"), "GlobalMaxPool": _global_pool("Max"),
    "ReduceMean": _reduce("mean"), "ReduceMax": _reduce("max"),
    "ReduceMin": _reduce("min"), "ReduceSum": _reduce("sum"),
    **{op: _merge for op in _MERGE}, "Concat": _concat,
    "Shape": _shape, "Reshape": _reshape, "Flatten": _flatten, "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze, "Transpose": _transpose, "Pad": _pad, "Slice": _slice,
    "Split": _split, "Gather": _gather, "Resize": _resize, "LSTM": _recurrent("LSTM"), "GRU": _recurrent("GRU"),
}


# ------------------------------------------------------------------ constant folding

def _fold_constant(attrs, inputs, opset):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in attrs:
            value = np.asarray(attrs[key])
            return [value.astype(np.float32) if value.dtype == np.float64 else value]
    raise Unsupported(f"a Constant of {sorted(attrs)} (fastdl folds numeric tensors)")


def _fold_cast(attrs, inputs, opset):
    import onnx
    return [inputs[0].astype(onnx.helper.tensor_dtype_to_np_dtype(attrs["to"]))]


def _fold_gather(attrs, inputs, opset):
    data, indices = inputs
    return [np.take(data, indices.astype(np.int64), axis=attrs.get("axis", 0))]


def _fold_slice(attrs, inputs, opset):
    data, starts, ends = inputs[:3]
    axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else range(len(starts))
    steps = inputs[4] if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
    index = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(s), int(e), int(st))
    return [data[tuple(index)]]


def _fold_unsqueeze(attrs, inputs, opset):
    axes = _squeeze_axes(attrs, inputs, opset)
    ndim = inputs[0].ndim + len(axes)
    return [np.expand_dims(inputs[0], tuple(a % ndim for a in axes))]


def _fold_squeeze(attrs, inputs, opset):
    axes = _squeeze_axes(attrs, inputs, opset)
    return [np.squeeze(inputs[0], None if axes is None else tuple(axes))]


def _fold_div(attrs, inputs, opset):
    a, b = inputs
    if a.dtype.kind in "iu":
        return [np.trunc(a / b).astype(a.dtype)]
    return [a / b]


def _fold_reshape(attrs, inputs, opset):
    data, shape = inputs
    shape = [data.shape[i] if s == 0 and not attrs.get("allowzero", 0) else int(s)
             for i, s in enumerate(shape)]
    return [data.reshape(shape)]


def _fold_constant_of_shape(attrs, inputs, opset):
    """(The exporters' zero initial states of recurrent nodes have the batch size in
    their shape: 1 there, a constant the recurrent converters check is all zeros.)"""
    value = attrs.get("value", np.zeros(1, np.float32))
    shape = [1 if s == BATCH else int(s) for s in inputs[0]]
    return [np.full(shape, value.reshape(-1)[0], value.dtype)]


FOLDERS = {
    "Constant": _fold_constant, "Identity": lambda a, i, o: [i[0]], "Cast": _fold_cast,
    "Shape": lambda a, i, o: [np.array(i[0].shape, np.int64)[a.get("start", 0):a.get("end")]],
    "Gather": _fold_gather, "Slice": _fold_slice,
    "Concat": lambda a, i, o: [np.concatenate(i, axis=a["axis"])],
    "Unsqueeze": _fold_unsqueeze, "Squeeze": _fold_squeeze, "Reshape": _fold_reshape,
    "Transpose": lambda a, i, o: [np.transpose(i[0], a.get("perm"))],
    "Add": lambda a, i, o: [i[0] + i[1]], "Sub": lambda a, i, o: [i[0] - i[1]],
    "Mul": lambda a, i, o: [i[0] * i[1]], "Div": _fold_div,
    "ConstantOfShape": _fold_constant_of_shape,
}
