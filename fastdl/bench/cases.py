"""The benchmark suite: what each case computes, how much work it is, its inputs.

A case is a frozen description of one kernel call. It knows its FLOP count
(2 x multiply-accumulates, the convention of XNNPACK and ncnn: bias additions and
activations are not counted), its output shape, and how to make reproducible
inputs. The memory-bound kinds (:data:`MEMORY_BOUND_KINDS`) also know the bytes one call
must move (``bytes_moved``): their speed is reported in GB/s, not GFLOP/s. Libraries
(fastdl itself and the peers) turn a case into a callable; see :mod:`fastdl.bench.peers`.

The kinds of case and the arrays in their ``data`` dict:

* ``conv1d``: ``x`` [N, Cin, L], ``w`` [Cout, Cin/groups, K], ``b`` [Cout]
* ``conv2d``: ``x`` [N, Cin, H, W], ``w`` [Cout, Cin/groups, K, K], ``b`` [Cout]
* ``conv3d``: ``x`` [N, Cin, D, H, W], ``w`` [Cout, Cin/groups, K, K, K], ``b`` [Cout]
* ``conv_transpose2d``: ``x`` [N, Cin, H, W], ``w`` [Cin, Cout, K, K] (torch layout), ``b``
* ``gemm``:   ``a`` [M, K], ``b`` [K, N] -- both are activations (no packing ahead)
* ``dense``:  ``x`` [batch, in], ``w`` [out, in] (torch layout), ``b`` [out]
* ``pool2d``: ``x`` [N, C, H, W]
* ``batchnorm``: ``x`` [N, C, H, W], ``mean``, ``var``, ``weight``, ``bias`` [C] (inference)
* ``lstm``:   ``x`` [T, B, I], ``w_ih`` [4H, I], ``w_hh`` [4H, H], ``b_ih``, ``b_hh`` [4H]
  (torch layout, gates i, f, g, o; zero initial state; the output is y [T, B, H])
* ``model``:  ``x`` [N, C, H, W] (a whole model_zoo model's input)
* ``train_step``: ``x`` [N, C, H, W], ``y`` [N] class labels (one training step; the
  output is the step's loss)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Dict, List, Sequence, Tuple, Union

import numpy as np

from fastdl._conv_geometry import output_sizes

CaseData = Dict[str, np.ndarray]
FLOAT32_BYTES = 4
# Kinds doing a few operations per element read: memory traffic, not arithmetic, sets their
# speed, so the report gives their GB/s (``bytes_moved`` / time), not GFLOP/s against the
# FMA peak. (Dense at batch 1 is bounded by reading its weights too, but its kind spans
# batches where the FLOPs are the point.)
MEMORY_BOUND_KINDS = frozenset({"pool2d", "batchnorm"})


def _uniform(rng: np.random.Generator, shape: Tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    """float32 values uniform in [-scale, scale)."""
    return (rng.random(shape, dtype=np.float32) * 2.0 - 1.0) * np.float32(scale)


def _conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution along one axis (symmetric padding, floor mode)."""
    return output_sizes((size,), (kernel,), (dilation,), (padding, padding), (stride,))[0]


def _conv_data(rng: np.random.Generator, x_shape: Tuple[int, ...], w_shape: Tuple[int, ...],
               fan_in: int, out_channels: int) -> CaseData:
    """Convolution inputs: x uniform in [-1, 1), w scaled by fan_in**-0.5, b [out_channels]."""
    return {"x": _uniform(rng, x_shape), "w": _uniform(rng, w_shape, fan_in ** -0.5),
            "b": _uniform(rng, (out_channels,), 0.1)}


@dataclass(frozen=True)
class Conv1dCase:
    """A 1-D convolution with PyTorch semantics (NCL, symmetric padding)."""

    kind: ClassVar[str] = "conv1d"
    name: str
    description: str
    cin: int
    cout: int
    length: int
    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    batch: int = 1

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return (self.batch, self.cout,
                _conv_out(self.length, self.kernel, self.stride, self.padding, self.dilation))

    @property
    def macs(self) -> int:
        n, cout, length = self.output_shape
        return n * cout * length * self.cin * self.kernel

    def make_data(self, rng: np.random.Generator) -> CaseData:
        return _conv_data(rng, (self.batch, self.cin, self.length),
                          (self.cout, self.cin, self.kernel), self.cin * self.kernel, self.cout)


@dataclass(frozen=True)
class Conv3dCase:
    """A 3-D convolution with PyTorch semantics (NCDHW, cubic kernel, symmetric padding)."""

    kind: ClassVar[str] = "conv3d"
    name: str
    description: str
    cin: int
    cout: int
    depth: int
    height: int
    width: int
    kernel: int
    stride: int = 1
    padding: int = 0
    batch: int = 1

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return (self.batch, self.cout, *(_conv_out(size, self.kernel, self.stride, self.padding, 1)
                                         for size in (self.depth, self.height, self.width)))

    @property
    def macs(self) -> int:
        n, cout, od, oh, ow = self.output_shape
        return n * cout * od * oh * ow * self.cin * self.kernel ** 3

    def make_data(self, rng: np.random.Generator) -> CaseData:
        return _conv_data(rng, (self.batch, self.cin, self.depth, self.height, self.width),
                          (self.cout, self.cin) + (self.kernel,) * 3, self.cin * self.kernel ** 3,
                          self.cout)


@dataclass(frozen=True)
class ConvTranspose2dCase:
    """A 2-D transposed convolution with PyTorch semantics (NCHW, symmetric padding)."""

    kind: ClassVar[str] = "conv_transpose2d"
    name: str
    description: str
    cin: int
    cout: int
    height: int
    width: int
    kernel: int
    stride: int = 1
    padding: int = 0
    batch: int = 1

    def _out_size(self, size: int) -> int:
        return (size - 1) * self.stride - 2 * self.padding + self.kernel

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return (self.batch, self.cout, self._out_size(self.height), self._out_size(self.width))

    @property
    def macs(self) -> int:  # every input pixel meets every kernel tap once
        return self.batch * self.cin * self.height * self.width * self.cout * self.kernel ** 2

    def make_data(self, rng: np.random.Generator) -> CaseData:
        return _conv_data(rng, (self.batch, self.cin, self.height, self.width),
                          (self.cin, self.cout, self.kernel, self.kernel), self.cin, self.cout)


@dataclass(frozen=True)
class Conv2dCase:
    """A 2-D convolution with PyTorch semantics (NCHW, symmetric padding)."""

    kind: ClassVar[str] = "conv2d"
    name: str
    description: str
    cin: int
    cout: int
    height: int
    width: int
    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    batch: int = 1

    def _out_size(self, size: int) -> int:
        return _conv_out(size, self.kernel, self.stride, self.padding, self.dilation)

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return (self.batch, self.cout, self._out_size(self.height), self._out_size(self.width))

    @property
    def macs(self) -> int:
        n, cout, oh, ow = self.output_shape
        return n * cout * oh * ow * (self.cin // self.groups) * self.kernel * self.kernel

    def make_data(self, rng: np.random.Generator) -> CaseData:
        fan_in = (self.cin // self.groups) * self.kernel * self.kernel
        return _conv_data(rng, (self.batch, self.cin, self.height, self.width),
                          (self.cout, self.cin // self.groups, self.kernel, self.kernel), fan_in,
                          self.cout)


@dataclass(frozen=True)
class GemmCase:
    """C[M, N] = A[M, K] @ B[K, N], both operands fresh activations."""

    kind: ClassVar[str] = "gemm"
    name: str
    description: str
    m: int
    k: int
    n: int

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return (self.m, self.n)

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n

    def make_data(self, rng: np.random.Generator) -> CaseData:
        return {"a": _uniform(rng, (self.m, self.k)),
                "b": _uniform(rng, (self.k, self.n), self.k ** -0.5)}


@dataclass(frozen=True)
class DenseCase:
    """A fully connected layer y = x @ w.T + b with prepared (packed) weights."""

    kind: ClassVar[str] = "dense"
    name: str
    description: str
    in_features: int
    out_features: int
    batch: int = 1

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return (self.batch, self.out_features)

    @property
    def macs(self) -> int:
        return self.batch * self.in_features * self.out_features

    def make_data(self, rng: np.random.Generator) -> CaseData:
        return {"x": _uniform(rng, (self.batch, self.in_features)),
                "w": _uniform(rng, (self.out_features, self.in_features),
                              self.in_features ** -0.5),
                "b": _uniform(rng, (self.out_features,), 0.1)}


@dataclass(frozen=True)
class Pool2dCase:
    """Max or average pooling with PyTorch semantics (NCHW, symmetric padding, floor mode).

    There is no multiply-accumulate: ``macs`` counts the window taps read (one max or add
    each), so the GFLOP/s of a pooling case is twice its taps per second.
    """

    kind: ClassVar[str] = "pool2d"
    name: str
    description: str
    op: str  # 'max' or 'avg'
    channels: int
    height: int
    width: int
    kernel: int
    stride: int
    padding: int = 0
    batch: int = 1

    def _out_size(self, size: int) -> int:
        return (size + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return (self.batch, self.channels, self._out_size(self.height),
                self._out_size(self.width))

    @property
    def macs(self) -> int:
        n, c, oh, ow = self.output_shape
        return n * c * oh * ow * self.kernel * self.kernel

    @property
    def bytes_moved(self) -> int:
        """Bytes one call reads and writes at least: its float32 input and output."""
        n, c, oh, ow = self.output_shape
        return FLOAT32_BYTES * (n * c * self.height * self.width + n * c * oh * ow)

    def make_data(self, rng: np.random.Generator) -> CaseData:
        return {"x": _uniform(rng, (self.batch, self.channels, self.height, self.width))}


@dataclass(frozen=True)
class BatchNormCase:
    """Inference batch norm y = (x - mean) / sqrt(var + eps) * weight + bias, NCHW.

    ``macs`` counts one multiply-add per element (the normalisation folded to a*x + b)."""

    kind: ClassVar[str] = "batchnorm"
    name: str
    description: str
    channels: int
    height: int
    width: int
    eps: float = 1e-5
    batch: int = 1

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return (self.batch, self.channels, self.height, self.width)

    @property
    def macs(self) -> int:
        return self.batch * self.channels * self.height * self.width

    @property
    def bytes_moved(self) -> int:
        """Bytes one call reads and writes at least: float32 x and y, and the four
        per-channel parameters (mean, var, weight, bias)."""
        elements = self.batch * self.channels * self.height * self.width
        return FLOAT32_BYTES * (2 * elements + 4 * self.channels)

    def make_data(self, rng: np.random.Generator) -> CaseData:
        c = self.channels
        return {"x": _uniform(rng, self.output_shape), "mean": _uniform(rng, (c,), 0.5),
                "var": (rng.random(c, dtype=np.float32) + np.float32(0.5)),
                "weight": _uniform(rng, (c,)), "bias": _uniform(rng, (c,), 0.5)}


@dataclass(frozen=True)
class LstmCase:
    """One LSTM layer (torch.nn.LSTM semantics, seq-first) over a whole sequence from a
    zero state; ``macs`` counts the input projection and the recurrence."""

    kind: ClassVar[str] = "lstm"
    name: str
    description: str
    input_size: int
    hidden_size: int
    steps: int
    batch: int = 1

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return (self.steps, self.batch, self.hidden_size)

    @property
    def macs(self) -> int:
        h = self.hidden_size
        return self.steps * self.batch * 4 * h * (self.input_size + h)

    def make_data(self, rng: np.random.Generator) -> CaseData:
        h, scale = self.hidden_size, self.hidden_size ** -0.5
        return {"x": _uniform(rng, (self.steps, self.batch, self.input_size)),
                "w_ih": _uniform(rng, (4 * h, self.input_size), scale),
                "w_hh": _uniform(rng, (4 * h, h), scale),
                "b_ih": _uniform(rng, (4 * h,), scale), "b_hh": _uniform(rng, (4 * h,), scale)}


@dataclass(frozen=True)
class ModelCase:
    """A whole model of fastdl.bench.model_zoo on one batch (``x`` NCHW, as PyTorch takes
    it; fastdl gets the NHWC transpose): ``macs`` counts its convolutions and Linear
    layers."""

    kind: ClassVar[str] = "model"
    name: str
    description: str
    model: str  # a model_zoo.ZOO key
    batch: int = 1

    @property
    def output_shape(self) -> Tuple[int, ...]:
        from .model_zoo import CLASSES
        return (self.batch, CLASSES[self.model])

    @property
    def macs(self) -> int:
        from .model_zoo import macs
        return macs(self.model, self.batch)

    def make_data(self, rng: np.random.Generator) -> CaseData:
        from .model_zoo import ZOO
        return {"x": rng.standard_normal((self.batch,) + ZOO[self.model][2],
                                         dtype=np.float32)}


@dataclass(frozen=True)
class TrainStepCase:
    """One training step of a model_zoo model on one batch: forward, sparse categorical
    cross-entropy, backward, Adam update (lr 1e-3). Every library starts from the same
    weights; Dropout layers run at rate 0 in all of them so that their first steps'
    losses (the output checked) are the same computation. ``macs``: 3 x the forward's
    (the forward, the input gradients and the weight gradients)."""

    kind: ClassVar[str] = "train_step"
    name: str
    description: str
    model: str  # a model_zoo.ZOO key
    batch: int = 32

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return (1,)

    @property
    def macs(self) -> int:
        from .model_zoo import macs
        return 3 * macs(self.model, self.batch)

    def make_data(self, rng: np.random.Generator) -> CaseData:
        from .model_zoo import ZOO
        from .model_zoo import CLASSES
        return {"x": rng.standard_normal((self.batch,) + ZOO[self.model][2], dtype=np.float32),
                "y": rng.integers(0, CLASSES[self.model], self.batch)}


Case = Union[Conv1dCase, Conv2dCase, Conv3dCase, ConvTranspose2dCase, GemmCase, DenseCase,
             Pool2dCase, BatchNormCase, LstmCase, ModelCase, TrainStepCase]


def flops(case: Case) -> int:
    """Floating-point operations of one call: 2 x multiply-accumulates."""
    return 2 * case.macs


def gflops(case: Case, seconds: float) -> float:
    """Achieved GFLOP/s of one call of ``case`` that took ``seconds``."""
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    return flops(case) / seconds / 1e9


def is_memory_bound(case: Case) -> bool:
    """Whether ``case`` is reported in GB/s (see :data:`MEMORY_BOUND_KINDS`)."""
    return case.kind in MEMORY_BOUND_KINDS


def gbytes_per_s(case: Case, seconds: float) -> float:
    """Achieved GB/s (1e9 bytes) of one call of a memory-bound ``case`` that took
    ``seconds``: its ``bytes_moved`` over the time."""
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    return case.bytes_moved / seconds / 1e9


def make_data(case: Case, seed: int = 0) -> CaseData:
    """Reproducible inputs for ``case``: the same seed gives the same arrays."""
    return case.make_data(np.random.default_rng(seed))


def _resnet18_conv3x3(channels: int, size: int) -> Conv2dCase:
    return Conv2dCase(
        name=f"conv3x3-{channels}x{size}",
        description=f"ResNet-18 3x3 conv {channels}->{channels} on {size}x{size}, s1 p1",
        cin=channels, cout=channels, height=size, width=size, kernel=3, padding=1)


DEFAULT_SUITE: Tuple[Case, ...] = (
    _resnet18_conv3x3(64, 56),
    _resnet18_conv3x3(128, 28),
    _resnet18_conv3x3(256, 14),
    _resnet18_conv3x3(512, 7),
    Conv2dCase(name="conv7x7s2-3to64x224",
               description="ResNet stem 7x7 conv 3->64 on 224x224, s2 p3",
               cin=3, cout=64, height=224, width=224, kernel=7, stride=2, padding=3),
    Conv2dCase(name="conv1x1-32to64x112", description="1x1 conv 32->64 on 112x112",
               cin=32, cout=64, height=112, width=112, kernel=1),
    Conv2dCase(name="depthwise3x3-32x112",
               description="depthwise 3x3 conv, 32 channels on 112x112, s1 p1",
               cin=32, cout=32, height=112, width=112, kernel=3, padding=1, groups=32),
    Conv2dCase(name="depthwise3x3-512x14",
               description="depthwise 3x3 conv, 512 channels on 14x14, s1 p1 (MobileNet)",
               cin=512, cout=512, height=14, width=14, kernel=3, padding=1, groups=512),
    Conv1dCase(name="conv1d-64x1000", description="1-D conv 64->64, k3 p1, length 1000",
               cin=64, cout=64, length=1000, kernel=3, padding=1),
    Conv1dCase(name="conv1d-dil4-64x1000",
               description="dilated 1-D conv 64->64, k3 d4 'same' (p4), length 1000 (TCN)",
               cin=64, cout=64, length=1000, kernel=3, padding=4, dilation=4),
    Conv3dCase(name="conv3d-64x8x28", description="3-D conv 64->64, k3 p1 on 8x28x28",
               cin=64, cout=64, depth=8, height=28, width=28, kernel=3, padding=1),
    ConvTranspose2dCase(name="convT4x4s2-64to32x28",
                        description="transposed conv 64->32, k4 s2 p1, 28x28 -> 56x56",
                        cin=64, cout=32, height=28, width=28, kernel=4, stride=2, padding=1),
    Pool2dCase(name="maxpool3x3s2-64x112",
               description="ResNet stem max pool 3x3 s2 p1, 64 channels on 112x112",
               op="max", channels=64, height=112, width=112, kernel=3, stride=2, padding=1),
    BatchNormCase(name="batchnorm-64x56", description="batch norm (inference), 64x56x56",
                  channels=64, height=56, width=56),
    LstmCase(name="lstm-b1-64to128x100", description="LSTM 64->128, batch 1, 100 steps",
             input_size=64, hidden_size=128, steps=100, batch=1),
    LstmCase(name="lstm-b32-64to128x100", description="LSTM 64->128, batch 32, 100 steps",
             input_size=64, hidden_size=128, steps=100, batch=32),
    GemmCase(name="gemm-256x1024x1024", description="GEMM M=256 K=1024 N=1024",
             m=256, k=1024, n=1024),
    GemmCase(name="gemm-1024x1024x1024", description="GEMM M=1024 K=1024 N=1024",
             m=1024, k=1024, n=1024),
    DenseCase(name="dense-512to1000",
              description="dense 512->1000, batch 1 (call overhead dominates)",
              in_features=512, out_features=1000),
)


MODEL_SUITE: Tuple[Case, ...] = (
    ModelCase(name="cifar_cnn-b1", description="the seed notes' CIFAR-10 CNN, batch 1",
              model="cifar_cnn", batch=1),
    ModelCase(name="cifar_cnn-b32", description="the seed notes' CIFAR-10 CNN, batch 32",
              model="cifar_cnn", batch=32),
    ModelCase(name="resnet18-b1", description="ResNet-18, 224x224, batch 1",
              model="resnet18", batch=1),
    ModelCase(name="mobilenet_v1-b1", description="MobileNetV1, 224x224, batch 1",
              model="mobilenet_v1", batch=1),
    ModelCase(name="mobilenet_v2-b1", description="MobileNetV2, 224x224, batch 1",
              model="mobilenet_v2", batch=1),
    ModelCase(name="conv1d_lstm-b32", description="Conv1D -> LSTM on 128-step 3-axis "
                                                  "windows, batch 32",
              model="conv1d_lstm", batch=32),
)


TRAINING_SUITE: Tuple[Case, ...] = (
    TrainStepCase(name="train-cifar_cnn-b32",
                  description="one Adam step of the seed notes' CIFAR-10 CNN, batch 32",
                  model="cifar_cnn", batch=32),
    TrainStepCase(name="train-conv1d_lstm-b32",
                  description="one Adam step of a Conv1D -> LSTM classifier of 128-step "
                              "3-axis windows, batch 32", model="conv1d_lstm", batch=32),
)


def select_cases(spec: str, suite: Sequence[Case] = DEFAULT_SUITE) -> List[Case]:
    """The cases named by ``spec``, a comma-separated list, in suite order.

    Each item selects the case with exactly that name, or else every case whose
    name contains it (case-insensitive). An item that selects nothing raises
    ``ValueError`` listing the valid names.
    """
    items = [item.strip().lower() for item in spec.split(",") if item.strip()]
    if not items:
        raise ValueError("no case given (expected a comma-separated list of case names)")
    chosen = set()
    for item in items:
        exact = [c.name for c in suite if c.name.lower() == item]
        matches = exact or [c.name for c in suite if item in c.name.lower()]
        if not matches:
            names = ", ".join(c.name for c in suite)
            raise ValueError(f"no case matches {item!r}; the cases are: {names}")
        chosen.update(matches)
    return [c for c in suite if c.name in chosen]

