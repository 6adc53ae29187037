"""The benchmark suite: what each case computes, how much work it is, its inputs.

A case is a frozen description of one kernel call. It knows its FLOP count
(2 x multiply-accumulates, the convention of XNNPACK and ncnn: bias additions and
activations are not counted), its output shape, and how to make reproducible
inputs. Libraries (fastdl itself and the peers) turn a case into a callable; see
:mod:`fastdl.bench.peers`.

The three kinds of case and the arrays in their ``data`` dict:

* ``conv2d``: ``x`` [N, Cin, H, W], ``w`` [Cout, Cin/groups, K, K], ``b`` [Cout]
* ``gemm``:   ``a`` [M, K], ``b`` [K, N] -- both are activations (no packing ahead)
* ``dense``:  ``x`` [batch, in], ``w`` [out, in] (torch layout), ``b`` [out]
* ``pool2d``: ``x`` [N, C, H, W]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Dict, List, Sequence, Tuple, Union

import numpy as np

CaseData = Dict[str, np.ndarray]


def _uniform(rng: np.random.Generator, shape: Tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    """float32 values uniform in [-scale, scale)."""
    return (rng.random(shape, dtype=np.float32) * 2.0 - 1.0) * np.float32(scale)


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
        span = self.dilation * (self.kernel - 1) + 1
        return (size + 2 * self.padding - span) // self.stride + 1

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return (self.batch, self.cout, self._out_size(self.height), self._out_size(self.width))

    @property
    def macs(self) -> int:
        n, cout, oh, ow = self.output_shape
        return n * cout * oh * ow * (self.cin // self.groups) * self.kernel * self.kernel

    def make_data(self, rng: np.random.Generator) -> CaseData:
        fan_in = (self.cin // self.groups) * self.kernel * self.kernel
        return {
            "x": _uniform(rng, (self.batch, self.cin, self.height, self.width)),
            "w": _uniform(rng, (self.cout, self.cin // self.groups, self.kernel, self.kernel),
                          fan_in ** -0.5),
            "b": _uniform(rng, (self.cout,), 0.1),
        }


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

    def make_data(self, rng: np.random.Generator) -> CaseData:
        return {"x": _uniform(rng, (self.batch, self.channels, self.height, self.width))}


Case = Union[Conv2dCase, GemmCase, DenseCase, Pool2dCase]


def flops(case: Case) -> int:
    """Floating-point operations of one call: 2 x multiply-accumulates."""
    return 2 * case.macs


def gflops(case: Case, seconds: float) -> float:
    """Achieved GFLOP/s of one call of ``case`` that took ``seconds``."""
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    return flops(case) / seconds / 1e9


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
    Pool2dCase(name="maxpool3x3s2-64x112",
               description="ResNet stem max pool 3x3 s2 p1, 64 channels on 112x112",
               op="max", channels=64, height=112, width=112, kernel=3, stride=2, padding=1),
    GemmCase(name="gemm-256x1024x1024", description="GEMM M=256 K=1024 N=1024",
             m=256, k=1024, n=1024),
    GemmCase(name="gemm-1024x1024x1024", description="GEMM M=1024 K=1024 N=1024",
             m=1024, k=1024, n=1024),
    DenseCase(name="dense-512to1000",
              description="dense 512->1000, batch 1 (call overhead dominates)",
              in_features=512, out_features=1000),
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

