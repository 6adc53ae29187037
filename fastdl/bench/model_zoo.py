"""The whole models of ``python -m fastdl.bench --models``, each written twice: with
fastdl.layers (channels_last, as a Keras user writes it) and as a PyTorch nn.Module, with
the same layer names, so that the PyTorch model's weights (random, seeded; BatchNorm
statistics randomized too) can be copied into the fastdl one and the outputs compared.
ONNX Runtime runs the PyTorch model exported to ONNX.

torch is imported only by the functions that build PyTorch models.
"""

from __future__ import annotations

import functools
from typing import Callable, Dict, Tuple

import numpy as np

# ---------------------------------------------------------------------------- fastdl

def cifar_cnn_fastdl():
    """The seed notes' CIFAR-10 CNN (528,054 parameters)."""
    from fastdl import layers
    from fastdl.models import Sequential
    return cifar_cnn(layers, Sequential)


def conv1d_lstm_fastdl():
    """A Conv1D -> LSTM classifier of 3-axis sensor windows (the seed notes' activity
    recognition shape): 128 steps x 3 channels -> 6 classes."""
    from fastdl import layers
    from fastdl.models import Sequential
    return conv1d_lstm(layers, Sequential)


def conv1d_lstm(L, Sequential):
    """The Conv1D -> LSTM model from a Keras-like `layers` module and Sequential."""
    return Sequential([
        L.Input((128, 3)),
        L.Conv1D(32, 5, activation="relu", name="conv1"), L.MaxPooling1D(2),
        L.Conv1D(64, 3, activation="relu", name="conv2"), L.MaxPooling1D(2),
        L.LSTM(64, name="lstm"), L.Dropout(0.3),
        L.Dense(6, activation="softmax", name="fc")], name="conv1d_lstm")


def cifar_cnn(L, Sequential):
    """The CIFAR-10 CNN from a Keras-like `layers` module and Sequential (fastdl's or
    Keras' own)."""
    return Sequential([
        L.Input((32, 32, 3)),
        L.Conv2D(16, 2, padding="same", activation="relu", name="conv1"), L.MaxPooling2D(2),
        L.Conv2D(32, 2, padding="same", activation="relu", name="conv2"), L.MaxPooling2D(2),
        L.Conv2D(64, 2, padding="same", activation="relu", name="conv3"), L.MaxPooling2D(2),
        L.Dropout(0.3), L.Flatten(), L.Dense(500, activation="relu", name="fc1"),
        L.Dropout(0.4), L.Dense(10, activation="softmax", name="fc2")], name="cifar_cnn")


def _conv_bn(L, x, filters, kernel, stride, name, activation="relu", depthwise=False):
    """Conv (PyTorch-style symmetric padding k // 2, as ZeroPadding2D + 'valid'), BN and
    the activation (none if None)."""
    pad = kernel // 2
    if pad:
        x = L.ZeroPadding2D(pad, name=f"{name}_pad")(x)
    if depthwise:
        x = L.DepthwiseConv2D(kernel, strides=stride, use_bias=False, name=name)(x)
    else:
        x = L.Conv2D(filters, kernel, strides=stride, use_bias=False, name=name)(x)
    x = L.BatchNormalization(epsilon=1e-5, name=f"{name}_bn")(x)
    if activation is None:
        return x
    return L.Activation(activation, name=f"{name}_{activation}")(x)


def resnet18_fastdl():
    from fastdl import layers as L
    from fastdl.models import Model
    inp = L.Input((224, 224, 3))
    x = _conv_bn(L, inp, 64, 7, 2, "conv1")
    x = L.ZeroPadding2D(1, name="maxpool_pad")(x)  # after ReLU: zeros act as -inf
    x = L.MaxPooling2D(3, strides=2, name="maxpool")(x)
    channels = 64
    for stage, filters in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if block == 0 and stage > 1 else 1
            name = f"layer{stage}_{block}"
            y = _conv_bn(L, x, filters, 3, stride, f"{name}_conv1")
            y = _conv_bn(L, y, filters, 3, 1, f"{name}_conv2", activation=None)
            if stride != 1 or channels != filters:
                x = _conv_bn(L, x, filters, 1, stride, f"{name}_downsample", activation=None)
            x = L.Activation("relu", name=f"{name}_relu")(L.Add(name=f"{name}_add")([x, y]))
            channels = filters
    x = L.GlobalAveragePooling2D(name="avgpool")(x)
    return Model(inp, L.Dense(1000, name="fc")(x), name="resnet18")


_MOBILENET_V1 = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1),
                 (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def mobilenet_v1_fastdl():
    from fastdl import layers as L
    from fastdl.models import Model
    inp = L.Input((224, 224, 3))
    x = _conv_bn(L, inp, 32, 3, 2, "conv0")
    for i, (filters, stride) in enumerate(_MOBILENET_V1, start=1):
        x = _conv_bn(L, x, None, 3, stride, f"block{i}_dw", depthwise=True)
        x = _conv_bn(L, x, filters, 1, 1, f"block{i}_pw")
    x = L.GlobalAveragePooling2D(name="avgpool")(x)
    return Model(inp, L.Dense(1000, name="fc")(x), name="mobilenet_v1")


# (expansion, output channels, blocks, first block's stride) per stage, as torchvision
_MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                 (6, 160, 3, 2), (6, 320, 1, 1))


def _mobilenet_v2_blocks():
    """(name, in channels, expanded channels, out channels, stride) of each inverted
    residual block."""
    blocks, channels = [], 32
    for expansion, filters, repeats, first_stride in _MOBILENET_V2:
        for r in range(repeats):
            blocks.append((f"block{len(blocks) + 1}", channels, channels * expansion,
                           filters, first_stride if r == 0 else 1))
            channels = filters
    return blocks


def mobilenet_v2_fastdl():
    from fastdl import layers as L
    from fastdl.models import Model
    inp = L.Input((224, 224, 3))
    x = _conv_bn(L, inp, 32, 3, 2, "conv0", activation="relu6")
    for name, cin, hidden, cout, stride in _mobilenet_v2_blocks():
        y = x
        if hidden != cin:
            y = _conv_bn(L, y, hidden, 1, 1, f"{name}_expand", activation="relu6")
        y = _conv_bn(L, y, None, 3, stride, f"{name}_dw", activation="relu6", depthwise=True)
        y = _conv_bn(L, y, cout, 1, 1, f"{name}_project", activation=None)
        x = L.Add(name=f"{name}_add")([x, y]) if stride == 1 and cin == cout else y
    x = _conv_bn(L, x, 1280, 1, 1, "conv_last", activation="relu6")
    x = L.GlobalAveragePooling2D(name="avgpool")(x)
    return Model(inp, L.Dense(1000, name="fc")(x), name="mobilenet_v2")


# ---------------------------------------------------------------------------- PyTorch

def cifar_cnn_torch():
    import torch.nn as nn
    return _named(nn, [
        ("conv1", nn.Conv2d(3, 16, 2, padding="same")), ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(16, 32, 2, padding="same")), ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(2)),
        ("conv3", nn.Conv2d(32, 64, 2, padding="same")), ("relu3", nn.ReLU()),
        ("pool3", nn.MaxPool2d(2)), ("drop1", nn.Dropout(0.3)), ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(1024, 500)), ("relu4", nn.ReLU()), ("drop2", nn.Dropout(0.4)),
        ("fc2", nn.Linear(500, 10)), ("softmax", nn.Softmax(dim=1))])


def conv1d_lstm_torch():
    import torch.nn as nn

    class Conv1dLstm(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv1d(3, 32, 5), nn.Conv1d(32, 64, 3)
            self.lstm = nn.LSTM(64, 64, batch_first=True)
            self.drop, self.fc = nn.Dropout(0.3), nn.Linear(64, 6)

        def forward(self, x):  # x [N, 3, 128]
            pool, relu = nn.functional.max_pool1d, nn.functional.relu
            h = pool(relu(self.conv2(pool(relu(self.conv1(x)), 2))), 2)
            _, (h_n, _) = self.lstm(h.transpose(1, 2))
            return nn.functional.softmax(self.fc(self.drop(h_n[0])), dim=1)
    return Conv1dLstm()


def _named(nn, items):
    import collections
    return nn.Sequential(collections.OrderedDict(items))


def _torch_conv_bn(nn, cin, cout, kernel, stride, activation="relu", groups=1):
    """The PyTorch twin of _conv_bn: Conv2d, BatchNorm2d and the activation (none if
    None)."""
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if activation is not None:
        layers.append({"relu": nn.ReLU, "relu6": nn.ReLU6}[activation]())
    return nn.Sequential(*layers)


def resnet18_torch():
    import torch
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = _torch_conv_bn(nn, cin, cout, 3, stride)
            self.conv2 = _torch_conv_bn(nn, cout, cout, 3, 1, activation=None)
            self.downsample = (_torch_conv_bn(nn, cin, cout, 1, stride, activation=None)
                               if stride != 1 or cin != cout else None)

        def forward(self, x):
            y = self.conv2(self.conv1(x))
            return torch.relu((x if self.downsample is None else self.downsample(x)) + y)

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = _torch_conv_bn(nn, 3, 64, 7, 2)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            channels = 64
            for stage, filters in enumerate((64, 128, 256, 512), start=1):
                blocks = []
                for block in range(2):
                    blocks.append(Block(channels, filters,
                                        2 if block == 0 and stage > 1 else 1))
                    channels = filters
                setattr(self, f"layer{stage}", nn.Sequential(*blocks))
            self.fc = nn.Linear(512, 1000)

        def forward(self, x):
            x = self.maxpool(self.conv1(x))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(x.mean((2, 3)))

    return ResNet18()


def mobilenet_v1_torch():
    import torch.nn as nn

    class MobileNetV1(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv0 = _torch_conv_bn(nn, 3, 32, 3, 2)
            channels = 32
            for i, (filters, stride) in enumerate(_MOBILENET_V1, start=1):
                setattr(self, f"block{i}_dw",
                        _torch_conv_bn(nn, channels, channels, 3, stride, groups=channels))
                setattr(self, f"block{i}_pw", _torch_conv_bn(nn, channels, filters, 1, 1))
                channels = filters
            self.fc = nn.Linear(1024, 1000)

        def forward(self, x):
            x = self.conv0(x)
            for i in range(1, len(_MOBILENET_V1) + 1):
                x = getattr(self, f"block{i}_pw")(getattr(self, f"block{i}_dw")(x))
            return self.fc(x.mean((2, 3)))

    return MobileNetV1()


def mobilenet_v2_torch():
    import torch.nn as nn

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = _mobilenet_v2_blocks()
            self.conv0 = _torch_conv_bn(nn, 3, 32, 3, 2, activation="relu6")
            for name, cin, hidden, cout, stride in self.blocks:
                if hidden != cin:
                    setattr(self, f"{name}_expand",
                            _torch_conv_bn(nn, cin, hidden, 1, 1, activation="relu6"))
                setattr(self, f"{name}_dw",
                        _torch_conv_bn(nn, hidden, hidden, 3, stride, "relu6", groups=hidden))
                setattr(self, f"{name}_project",
                        _torch_conv_bn(nn, hidden, cout, 1, 1, activation=None))
            self.conv_last = _torch_conv_bn(nn, 320, 1280, 1, 1, activation="relu6")
            self.fc = nn.Linear(1280, 1000)

        def forward(self, x):
            x = self.conv0(x)
            for name, cin, hidden, cout, stride in self.blocks:
                y = getattr(self, f"{name}_expand")(x) if hidden != cin else x
                y = getattr(self, f"{name}_project")(getattr(self, f"{name}_dw")(y))
                x = x + y if stride == 1 and cin == cout else y
            return self.fc(self.conv_last(x).mean((2, 3)))

    return MobileNetV2()


# ---------------------------------------------------------------------------- both

ZOO: Dict[str, Tuple[Callable, Callable, Tuple[int, int, int]]] = {
    # name: (fastdl builder, torch builder, input (C, H, W))
    "cifar_cnn": (cifar_cnn_fastdl, cifar_cnn_torch, (3, 32, 32)),
    "resnet18": (resnet18_fastdl, resnet18_torch, (3, 224, 224)),
    "mobilenet_v1": (mobilenet_v1_fastdl, mobilenet_v1_torch, (3, 224, 224)),
    "mobilenet_v2": (mobilenet_v2_fastdl, mobilenet_v2_torch, (3, 224, 224)),
    "conv1d_lstm": (conv1d_lstm_fastdl, conv1d_lstm_torch, (3, 128)),
}
# Classes of each model's output.
CLASSES = {"cifar_cnn": 10, "resnet18": 1000, "mobilenet_v1": 1000, "mobilenet_v2": 1000,
           "conv1d_lstm": 6}


@functools.lru_cache(maxsize=4)
def torch_model(name: str, seed: int = 0):
    """The PyTorch model `name` in eval mode with seeded random weights and BatchNorm
    statistics (one object per name and seed: every library runs the same weights)."""
    import torch
    torch.manual_seed(seed)
    module = ZOO[name][1]()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
    return module.eval()


def fastdl_model(name: str, module):
    """The fastdl twin of `module` (torch_model(name, ...)) holding its weights."""
    import fastdl
    fastdl.utils.clear_session()
    model = ZOO[name][0]()
    copy_weights(module, model)
    return model


def channels_last(x: np.ndarray) -> np.ndarray:
    """A PyTorch-layout input (N, C, *spatial) as Keras and fastdl take it."""
    return np.ascontiguousarray(np.moveaxis(x, 1, -1))


def keras_model(name: str, module):
    """Keras' own twin of `module` (only models written with cifar_cnn's Keras-like
    builder have one), holding its weights through the fastdl twin. Keras must be
    imported by the caller with the backend it wants."""
    import keras
    builders = {"cifar_cnn": cifar_cnn, "conv1d_lstm": conv1d_lstm}
    if name not in builders:
        raise KeyError(f"no Keras twin of {name!r}")
    model = builders[name](keras.layers, keras.Sequential)
    model.set_weights(fastdl_model(name, module).get_weights())
    return model


def copy_weights(module, model) -> None:
    """PyTorch's parameters into the fastdl layers of the same name ('a.b.0' -> 'a_b';
    a Conv2d/BatchNorm2d pair inside an nn.Sequential maps to <name> and <name>_bn)."""
    import torch.nn as nn
    by_name = {layer.name: layer for layer in model.layers}
    done = set()
    for path, m in module.named_modules():
        if not isinstance(m, (nn.Conv1d, nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.LSTM)):
            continue
        name = _fastdl_name(path, m, nn)
        layer = by_name.get(name)
        if layer is None:
            raise KeyError(f"no fastdl layer {name!r} for torch module {path!r}")
        layer.set_weights(_weights(m, layer, nn, _flatten_source(model, layer)))
        done.add(name)
    missing = [l.name for l in model.layers if l.weights and l.name not in done]
    if missing:
        raise KeyError(f"fastdl layers without torch weights: {missing}")


def _fastdl_name(path: str, m, nn) -> str:
    parts = path.split(".")
    if parts[-1] in ("0", "1") and len(parts) > 1:  # inside a conv-bn(-relu) Sequential
        base = "_".join(parts[:-1])
        return base if isinstance(m, nn.Conv2d) else f"{base}_bn"
    return "_".join(parts)


def _weights(m, layer, nn, flattened):
    def arr(t):
        return t.detach().numpy().astype(np.float32)
    if isinstance(m, nn.Conv1d):  # [out, in, k] -> Keras [k, in, out]
        return [arr(m.weight).transpose(2, 1, 0)] + ([arr(m.bias)] if m.bias is not None
                                                      else [])
    if isinstance(m, nn.LSTM):  # gates i, f, g, o in both; Keras keeps one bias
        return [arr(m.weight_ih_l0).T, arr(m.weight_hh_l0).T,
                arr(m.bias_ih_l0) + arr(m.bias_hh_l0)]
    if isinstance(m, nn.Conv2d):
        w = arr(m.weight)  # [out, in/groups, kh, kw]
        if type(layer).__name__ == "DepthwiseConv2D":  # Keras [kh, kw, in, 1]
            kernel = w.transpose(2, 3, 0, 1)
        else:  # Keras [kh, kw, in/groups, out]
            kernel = w.transpose(2, 3, 1, 0)
        return [kernel] + ([arr(m.bias)] if m.bias is not None else [])
    if isinstance(m, nn.BatchNorm2d):
        return [arr(m.weight), arr(m.bias), arr(m.running_mean), arr(m.running_var)]
    w = arr(m.weight).T  # Linear: Keras [in, out]
    if flattened is not None:  # rows in torch's (C, H, W) order -> Keras' (H, W, C)
        h, wd, c = flattened
        w = w.reshape(c, h, wd, -1).transpose(1, 2, 0, 3).reshape(w.shape[0], -1)
    return [w, arr(m.bias)]


def _flatten_source(model, layer):
    """(H, W, C) of the map a Flatten (then only Dropouts) turned into this layer's input
    in a Sequential model, else None."""
    layers = model.layers
    i = next(i for i, l in enumerate(layers) if l is layer) - 1
    while i >= 0 and type(layers[i]).__name__ == "Dropout":
        i -= 1
    if i >= 0 and type(layers[i]).__name__ == "Flatten" and len(layers[i].input_shape) == 4:
        return tuple(layers[i].input_shape[1:])
    return None


@functools.lru_cache(maxsize=None)
def macs(name: str, batch: int) -> int:
    """Multiply-accumulates of one forward pass (convolutions and Linear layers)."""
    import torch
    module = ZOO[name][1]()
    total = 0
    hooks = []

    def count(m, inputs, output):
        nonlocal total
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d)):
            k = int(np.prod(m.kernel_size)) * m.in_channels // m.groups
            total += output.numel() * k
        elif isinstance(m, torch.nn.LSTM):  # input and recurrent GEMMs of every step
            steps_rows = inputs[0].shape[0] * inputs[0].shape[1]
            total += steps_rows * 4 * m.hidden_size * (m.input_size + m.hidden_size)
        elif isinstance(m, torch.nn.Linear):
            total += output.numel() * m.in_features

    for m in module.modules():
        hooks.append(m.register_forward_hook(count))
    with torch.inference_mode():
        module.eval()(torch.zeros((batch,) + ZOO[name][2]))
    for h in hooks:
        h.remove()
    return total
