"""PyTorch modules as fastdl models: from_torch(module, input_shape).

`module` is an nn.Sequential (nested Sequentials are flattened) of supported layers; the
result is a fastdl Sequential in PyTorch's layout -- channels_first for maps, batch-first
sequences -- computing the same outputs with the module's current weights (eval mode:
BatchNorm's running statistics, Dropout off). Supported: Conv1d/2d/3d (zero padding),
ConvTranspose1d/2d/3d, Linear, BatchNorm1d/2d/3d, MaxPool1d/2d/3d, AvgPool1d/2d/3d,
AdaptiveAvgPool/AdaptiveMaxPool to 1, Flatten, Dropout (any), Identity, the common
activations, LSTM and GRU (batch_first, any num_layers, bidirectional; their output
sequence), Embedding. Anything else raises a ValueError naming the module ("from_torch:
<its path in the Sequential> (<its class>): why"): modules torch would compute otherwise (a
subclass overriding forward, forward hooks) or refuse to run on input_shape, and
configurations fastdl's layers refuse.

torch is only imported here, when called.
"""
import numpy as np

# The most padding='same' may add along an axis (dilation * (kernel - 1)): fastdl's
# convolutions pad the input explicitly, so a padding of 2^31 (legal in torch, which skips
# the taps outside) asks for gigabytes even for a tiny input.
MAX_SAME_PAD = 2**16


def from_torch(module, input_shape, name=None):
    """A fastdl Sequential equal to `module` on inputs of `input_shape` (without the batch
    axis, PyTorch's layout: (C, L), (C, H, W), (C, D, H, W), (T, features) or (T,) of
    token indices for an Embedding first)."""
    import torch.nn as nn
    from fastdl import layers
    from fastdl.models import Sequential
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
    input_shape = _input_shape(input_shape)
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"name: expected a non-empty str or None, got {name!r}"[:200])
    modules = list(_flatten(module, nn))
    indices = bool(modules) and isinstance(modules[0][1], nn.Embedding)
    model = Sequential([layers.Input(input_shape, dtype="int64" if indices else None)],
                       name=name)
    for i, (path, m) in enumerate(modules):
        _check_forward(path, m, nn)
        if isinstance(m, nn.Embedding) and i > 0:
            _refuse(path, m, "an Embedding takes token indices: only as the first module")
        try:
            for layer, weights in _convert(path, m, nn, layers, model.output_shape or
                                           model.input_shape):
                model.add(layer)
                if weights is not None:
                    layer.set_weights(weights)
        except (ValueError, TypeError) as exc:  # fastdl's layer refused the configuration
            if str(exc).startswith("from_torch: "):
                raise
            raise type(exc)(f"from_torch: {path} ({type(m).__name__}): its fastdl "
                            f"equivalent refuses it: {exc}") from None
    return model


def _input_shape(value):
    """input_shape as a tuple of sizes (ints in [1, 2^31 - 1])."""
    from fastdl import _validate as v
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"input_shape: expected a tuple of ints (the input's shape without "
                        f"the batch axis), got {type(value).__name__}")
    if not value:
        raise ValueError("input_shape: expected at least one axis, got ()")
    return tuple(v.integer(s, "input_shape", minimum=1, maximum=v.MAX_AXIS) for s in value)


def _flatten(module, nn, prefix=""):
    path = prefix.rstrip(".") or type(module).__name__
    if isinstance(module, nn.Sequential):
        _check_forward(path, module, nn)
        for child_name, child in module.named_children():
            yield from _flatten(child, nn, f"{prefix}{child_name}.")
    else:
        yield path, module


def _check_forward(path, m, nn):
    """Refuses a module whose forward is not torch's: a subclass overriding it, or forward
    hooks (they change the output; from_torch converts what torch's own class computes)."""
    base = next((c for c in type(m).__mro__ if c.__module__.startswith("torch.nn.")), None)
    if base not in (None, nn.Module) and type(m).forward is not base.forward:
        # (a module of its own, straight from nn.Module: no fastdl equivalent, see _convert)
        _refuse(path, m, f"its class overrides {base.__name__}.forward; from_torch converts "
                         f"what torch's {base.__name__} computes")
    hooks = [getattr(m, a, None) for a in ("_forward_hooks", "_forward_pre_hooks")]
    if any(hooks):
        _refuse(path, m, "it has forward hooks, which change what it computes")


def _np(tensor):
    return tensor.detach().cpu().numpy().astype(np.float32)


def _tuple(value, n):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _refuse(path, module, why):
    raise ValueError(f"from_torch: {path} ({type(module).__name__}): {why}")


def _convert(path, m, nn, layers, shape):
    """[(fastdl layer, its weights or None)] for the torch module m at `path`, given the
    Keras shape of its input."""
    name = path.replace(".", "_")
    if not any(c.isalpha() for c in name):  # a bare index in a Sequential: say what it is
        from fastdl.layers.base import snake_case
        name = f"{snake_case(type(m).__name__)}_{name}"
    _check_features(path, m, shape)
    _check_rank(path, m, nn, shape)
    conv_rank = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}
    tconv_rank = {nn.ConvTranspose1d: 1, nn.ConvTranspose2d: 2, nn.ConvTranspose3d: 3}
    for cls, rank in conv_rank.items():
        if type(m) is cls:
            return _conv(path, name, m, rank, layers)
    for cls, rank in tconv_rank.items():
        if type(m) is cls:
            return _conv_transpose(path, name, m, rank, layers)
    if isinstance(m, nn.Linear):
        w = _np(m.weight)
        b = None if m.bias is None else _np(m.bias)
        return [(layers.Dense(m.out_features, use_bias=b is not None, name=name),
                 [w.T] + ([b] if b is not None else []))]
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
        if not m.track_running_stats or m.running_mean is None:
            _refuse(path, m, "needs running statistics (track_running_stats=True)")
        weights = ([_np(m.weight), _np(m.bias)] if m.affine else []) + [
            _np(m.running_mean), _np(m.running_var)]
        return [(layers.BatchNormalization(axis=1, epsilon=m.eps, center=m.affine,
                                           scale=m.affine, name=name), weights)]
    pools = {nn.MaxPool1d: ("max", 1), nn.MaxPool2d: ("max", 2), nn.MaxPool3d: ("max", 3),
             nn.AvgPool1d: ("avg", 1), nn.AvgPool2d: ("avg", 2), nn.AvgPool3d: ("avg", 3)}
    if type(m) in pools:
        return _pool(path, name, m, *pools[type(m)], layers, shape)
    adaptive = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
    if isinstance(m, adaptive):
        rank = len(shape) - 2
        if any(s != 1 for s in _tuple(m.output_size, rank)):
            _refuse(path, m, "only output_size 1 (a global pooling) is supported")
        if getattr(m, "return_indices", False):
            _refuse(path, m, "return_indices=True is not supported (its output is a tuple)")
        kind = "Average" if "Avg" in type(m).__name__ else "Max"
        cls = getattr(layers, f"Global{kind}Pooling{rank}D")
        return [(cls(data_format="channels_first", keepdims=True, name=name), None)]
    if isinstance(m, nn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            _refuse(path, m, "only start_dim=1, end_dim=-1 is supported")
        # Keras' default Flatten keeps the array's order: (C, *S), as torch flattens.
        return [(layers.Flatten(name=name), None)]
    if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
                      nn.AlphaDropout, nn.Identity)):
        return []
    if isinstance(m, (nn.LSTM, nn.GRU)):
        return _recurrent(path, name, m, nn, layers)
    if isinstance(m, nn.Embedding):
        if m.max_norm is not None:
            _refuse(path, m, "max_norm is not supported")
        return [(layers.Embedding(m.num_embeddings, m.embedding_dim, name=name),
                 [_np(m.weight)])]
    activation = _activation(path, m, nn, layers, name, len(shape))
    if activation is not None:
        return [(activation, None)]
    _refuse(path, m, "no fastdl equivalent (supported: conv, transposed conv, Linear, "
                     "BatchNorm, pooling, Flatten, Dropout, activations, LSTM, GRU, "
                     "Embedding)")


def _check_rank(path, m, nn, shape):
    """A module for 1, 2 or 3 spatial axes against the rank of its input (batch and
    channels included): torch would read one axis less as an unbatched input."""
    ranked = []
    for d in (1, 2, 3):
        ranked += [(getattr(nn, f"{kind}{d}d"), d) for kind in (
            "Conv", "ConvTranspose", "MaxPool", "AvgPool", "AdaptiveAvgPool",
            "AdaptiveMaxPool", "BatchNorm")]
    for cls, d in ranked:
        if isinstance(m, cls):
            wanted = (2, 3) if cls is nn.BatchNorm1d else (d + 2,)
            if len(shape) not in wanted:
                _refuse(path, m, f"takes inputs of {' or '.join(map(str, wanted))} axes "
                                 f"(the batch's included), but its input has shape {shape}")
            return


def _check_features(path, m, shape):
    """The module's declared input size against the shape it is given (channels on axis 1;
    features on the last axis for Linear)."""
    for attr, axis in (("in_channels", 1), ("num_features", 1), ("in_features", -1),
                       ("input_size", -1)):
        want = getattr(m, attr, None)
        if isinstance(want, int) and len(shape) > 1 and shape[axis] not in (None, want):
            _refuse(path, m, f"takes {want} {attr.replace('_', ' ')}, but its input has "
                             f"shape {shape}")


def _conv(path, name, m, rank, layers):
    if m.padding_mode != "zeros":
        _refuse(path, m, f"padding_mode {m.padding_mode!r} (only 'zeros')")
    w = _np(m.weight)  # [out, in/groups, *k]
    b = None if m.bias is None else _np(m.bias)
    kernel = np.transpose(w, tuple(range(2, rank + 2)) + (1, 0))  # Keras [*k, in/g, out]
    out = []
    if isinstance(m.padding, str):
        padding = m.padding  # 'valid' or 'same' (stride 1): Keras' meaning
        reach = [d * (k - 1) for d, k in zip(_tuple(m.dilation, rank), _tuple(m.kernel_size,
                                                                              rank))]
        if padding == "same" and max(reach) > MAX_SAME_PAD:
            _refuse(path, m, f"padding='same' with dilation {m.dilation} pads by {max(reach)},"
                             f" more than fastdl takes ({MAX_SAME_PAD}: its convolutions "
                             f"pad the input explicitly)")
    else:
        pads = _tuple(m.padding, rank)
        padding = "valid"
        if any(pads):
            pad_layer = getattr(layers, f"ZeroPadding{rank}D")
            out.append((pad_layer(tuple(pads) if rank > 1 else pads[0],
                                  data_format="channels_first", name=f"{name}_pad"), None))
    cls = getattr(layers, f"Conv{rank}D")
    layer = cls(m.out_channels, m.kernel_size, strides=m.stride, padding=padding,
                dilation_rate=m.dilation, groups=m.groups, use_bias=b is not None,
                data_format="channels_first", name=name)
    out.append((layer, [kernel] + ([b] if b is not None else [])))
    return out


def _conv_transpose(path, name, m, rank, layers):
    if m.padding_mode != "zeros":
        _refuse(path, m, "only zero padding is supported")
    w = _np(m.weight)  # [in, out / groups, *k]
    b = None if m.bias is None else _np(m.bias)
    kernel = np.transpose(w, tuple(range(2, rank + 2)) + (1, 0))  # [*k, out / groups, in]
    cls = getattr(layers, f"Conv{rank}DTranspose")
    output_padding = _tuple(m.output_padding, rank)
    layer = cls(m.out_channels, m.kernel_size, strides=m.stride, padding="valid",
                # given even when 0: without it Keras' 'valid' length is L * stride where
                # the kernel is shorter than the stride, torch's (L - 1) * stride + kernel
                output_padding=output_padding,
                dilation_rate=m.dilation, groups=m.groups, use_bias=b is not None,
                data_format="channels_first", name=name)
    out = [(layer, [kernel] + ([b] if b is not None else []))]
    pads = _tuple(m.padding, rank)
    if any(pads):  # torch's padding removes that much from each side of the output
        crop = getattr(layers, f"Cropping{rank}D")
        out.append((crop(tuple(pads) if rank > 1 else pads[0], data_format="channels_first",
                         name=f"{name}_crop"), None))
    return out


def _pool(path, name, m, kind, rank, layers, shape):
    if getattr(m, "ceil_mode", False):
        _refuse(path, m, "ceil_mode=True is not supported")
    if kind == "max" and m.return_indices:
        _refuse(path, m, "return_indices=True is not supported (its output is a tuple)")
    if kind == "avg" and getattr(m, "divisor_override", None) is not None:  # not on 1-D
        _refuse(path, m, "divisor_override is not supported")
    k = _tuple(m.kernel_size, rank)
    stride = _tuple(m.stride if m.stride is not None else m.kernel_size, rank)
    pads = _tuple(m.padding, rank)
    if any(p > size / 2 for p, size in zip(pads, k)):
        _refuse(path, m, f"padding {m.padding} is more than half the kernel {m.kernel_size}, "
                         f"which torch refuses to run")
    if kind == "avg" and rank == 3 and any(s is not None and s < size for s, size in zip(
            shape[2:], k)):  # torch's avg_pool3d, unlike the others, checks the unpadded size
        _refuse(path, m, f"its input {shape} is smaller than the kernel {m.kernel_size}, "
                         f"which torch refuses to run")
    cls = getattr(layers, f"{'Max' if kind == 'max' else 'Average'}Pooling{rank}D")
    extra = {"count_include_pad": bool(m.count_include_pad)} if kind == "avg" and any(
        pads) else {}
    if kind == "max" and any(d != 1 for d in _tuple(m.dilation, rank)):
        extra["dilation_rate"] = _tuple(m.dilation, rank)
    return [(cls(k, stride, padding=pads if any(pads) else "valid",
                 data_format="channels_first", name=name, **extra), None)]


def _recurrent(path, name, m, nn, layers):
    if not m.batch_first:
        _refuse(path, m, "needs batch_first=True (fastdl's sequences are batch-first)")
    if getattr(m, "proj_size", 0):
        _refuse(path, m, "proj_size is not supported")
    lstm = isinstance(m, nn.LSTM)
    out = []
    for depth in range(m.num_layers):
        directions = []
        for suffix in ([""] if not m.bidirectional else ["", "_reverse"]):
            w_ih = _np(getattr(m, f"weight_ih_l{depth}{suffix}"))
            w_hh = _np(getattr(m, f"weight_hh_l{depth}{suffix}"))
            zeros = np.zeros(w_ih.shape[0], np.float32)
            b_ih = _np(getattr(m, f"bias_ih_l{depth}{suffix}")) if m.bias else zeros
            b_hh = _np(getattr(m, f"bias_hh_l{depth}{suffix}")) if m.bias else zeros
            directions.append(_lstm_weights(w_ih, w_hh, b_ih, b_hh) if lstm else
                              _gru_weights(w_ih, w_hh, b_ih, b_hh))
        cls = layers.LSTM if lstm else layers.GRU
        extra = {} if lstm else {"reset_after": True}
        layer_name = f"{name}_l{depth}" if m.num_layers > 1 else name
        cell = cls(m.hidden_size, return_sequences=True, name=layer_name, **extra)
        if m.bidirectional:
            out.append((layers.Bidirectional(cell, merge_mode="concat",
                                             name=f"{layer_name}_bidirectional"),
                        directions[0] + directions[1]))
        else:
            out.append((cell, directions[0]))
    return out


def _lstm_weights(w_ih, w_hh, b_ih, b_hh):
    """torch's gates i, f, g, o are Keras' i, f, c, o: the same order, transposed."""
    return [w_ih.T.copy(), w_hh.T.copy(), b_ih + b_hh]


def _gru_weights(w_ih, w_hh, b_ih, b_hh):
    """torch's gates r, z, n as Keras' z, r, h (reset_after: the two biases kept apart)."""
    def reorder(a):
        r, z, n = np.split(a, 3, axis=0)
        return np.concatenate([z, r, n], axis=0)
    return [reorder(w_ih).T.copy(), reorder(w_hh).T.copy(),
            np.stack([reorder(b_ih), reorder(b_hh)])]


def _activation(path, m, nn, layers, name, rank):
    simple = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh",
              nn.SiLU: "silu", nn.Hardswish: "hard_swish", nn.SELU: "selu",
              nn.Softplus: "softplus"}
    if type(m) in simple:
        if isinstance(m, nn.Softplus) and (m.beta != 1 or m.threshold != 20):
            _refuse(path, m, "only beta=1, threshold=20 is supported")
        return layers.Activation(simple[type(m)], name=name)
    if isinstance(m, nn.GELU):
        return layers.Activation("gelu_tanh" if m.approximate == "tanh" else "gelu", name=name)
    if isinstance(m, nn.LeakyReLU):
        return layers.LeakyReLU(negative_slope=m.negative_slope, name=name)
    if isinstance(m, nn.ELU):
        return layers.ELU(alpha=m.alpha, name=name)
    if isinstance(m, (nn.Softmax, nn.LogSoftmax)):
        # dim=None: torch's legacy implicit dim, 0 (the batch axis) for 3-D inputs, else 1
        dim = m.dim if m.dim is not None else 0 if rank == 3 else 1
        if not -rank <= dim < rank:
            _refuse(path, m, f"dim {m.dim} is out of range for its {rank}-D input")
        if dim in (0, -rank):
            _refuse(path, m, f"dim {m.dim} is the batch axis of its {rank}-D input "
                             f"(fastdl's layers work per example)")
        if isinstance(m, nn.LogSoftmax):
            if dim not in (-1, rank - 1):
                _refuse(path, m, "LogSoftmax only over the last axis")
            return layers.Activation("log_softmax", name=name)
        if dim in (-1, rank - 1):
            return layers.Activation("softmax", name=name)
        return layers.Softmax(axis=dim, name=name)
    return None
