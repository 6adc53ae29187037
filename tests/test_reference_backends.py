"""The NumPy reference backend against PyTorch, and the Numba backend against the reference.

Both backends implement the same contract (fastdl/_reference/__init__.py): validated
C-contiguous float32 inputs, a new float32 C-contiguous result.
"""
from __future__ import annotations

import dataclasses
import importlib
import warnings

import numpy as np
import pytest

from fastdl import _reference as reference

ACTIVATIONS = [None, "relu", "relu6", "leaky_relu", "sigmoid", "tanh", "silu"]
ALPHA = 0.1  # leaky_relu slope; not PyTorch's default, so that passing it on is checked


# ---------------------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def numba_backend():
    pytest.importorskip("numba")
    return importlib.import_module("fastdl._numba")


@pytest.fixture(params=["reference", "numba"])
def backend(request):
    if request.param == "numba":
        return request.getfixturevalue("numba_backend")
    return reference


def random_array(shape, seed=0):
    """Standard normal float32 ndarray (also for shape ())."""
    return np.asarray(np.random.default_rng(seed).standard_normal(shape, dtype=np.float32))


def assert_close(actual, expected, reduction_length=1):
    """Check the result contract, then values with float32 tolerances that grow with the
    number of products summed into each output."""
    assert actual.dtype == np.float32 and actual.flags.c_contiguous
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-4,
                               atol=1e-5 * np.sqrt(max(reduction_length, 1)))


def torch_activation(torch, t, name):
    if name is None:
        return t
    if name == "leaky_relu":
        return torch.nn.functional.leaky_relu(t, ALPHA)
    return getattr(torch.nn.functional, name)(t)


def torch_pad(torch, t, padding):
    """Pad the last two axes by (top, bottom, left, right)."""
    top, bottom, left, right = padding
    return torch.nn.functional.pad(t, (left, right, top, bottom))


# ---------------------------------------------------------------------------- conv2d

@dataclasses.dataclass(frozen=True)
class ConvCase:
    batch: int = 2
    in_channels: int = 3
    size: tuple = (9, 8)
    out_channels: int = 4
    kernel: tuple = (3, 3)
    stride: tuple = (1, 1)
    padding: tuple = (1, 1, 1, 1)  # top, bottom, left, right
    dilation: tuple = (1, 1)
    groups: int = 1
    activation: str | None = None
    bias: bool = True

    def inputs(self):
        x = random_array((self.batch, self.in_channels, *self.size), seed=1)
        w = random_array((self.out_channels, self.in_channels // self.groups, *self.kernel),
                         seed=2)
        b = random_array(self.out_channels, seed=3) if self.bias else None
        return x, w, b

    def run(self, backend, x, w, b):
        return backend.conv(x, w, b, self.stride, self.padding, self.dilation,
                            self.groups, self.activation, ALPHA)

    def reduction_length(self):
        return self.in_channels // self.groups * self.kernel[0] * self.kernel[1]


def conv_case(**changes):
    label = ",".join(f"{key}={value}" for key, value in changes.items()) or "default"
    return pytest.param(ConvCase(**changes), id=label.replace(" ", ""))


CONV_CASES = [
    *[conv_case(kernel=(k, k), padding=(k // 2,) * 4) for k in (1, 3, 5, 7)],
    conv_case(kernel=(7, 7), padding=(0, 0, 0, 0), size=(7, 7)),  # a 1x1 output
    *[conv_case(stride=(s, s)) for s in (2, 3)],
    conv_case(stride=(1, 2), padding=(0, 0, 0, 0)),
    conv_case(dilation=(2, 2), padding=(2, 2, 2, 2)),
    conv_case(dilation=(2, 1), kernel=(3, 2), stride=(2, 1)),
    conv_case(in_channels=4, out_channels=6, groups=2),
    conv_case(in_channels=3, out_channels=3, groups=3),  # depthwise
    conv_case(in_channels=4, out_channels=8, groups=4, stride=(2, 2)),  # depthwise x2
    conv_case(in_channels=1, out_channels=1),
    conv_case(in_channels=1, out_channels=5, padding=(0, 0, 0, 0)),
    conv_case(padding=(0, 2, 1, 0)),
    conv_case(padding=(2, 0, 0, 3), stride=(2, 2)),
    conv_case(kernel=(2, 2), padding=(0, 1, 0, 1)),  # TF 'same' for an even kernel
    conv_case(kernel=(4, 2), padding=(1, 2, 0, 1), dilation=(1, 2)),
    conv_case(batch=0),
    conv_case(bias=False),
    *[conv_case(activation=name) for name in ACTIVATIONS[1:]],
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_reference_conv2d_matches_torch(torch, case):
    x, w, b = case.inputs()
    y = torch.nn.functional.conv2d(
        torch_pad(torch, torch.from_numpy(x), case.padding), torch.from_numpy(w),
        None if b is None else torch.from_numpy(b), case.stride, 0, case.dilation,
        case.groups)
    expected = torch_activation(torch, y, case.activation).numpy()
    assert_close(case.run(reference, x, w, b), expected, case.reduction_length())


@pytest.mark.parametrize("case", CONV_CASES)
def test_numba_conv2d_matches_reference(numba_backend, case):
    x, w, b = case.inputs()
    assert_close(case.run(numba_backend, x, w, b), case.run(reference, x, w, b),
                 case.reduction_length())


# ---------------------------------------------------------------------------- linear, matmul

# Sizes around the register tiles (6 rows, 16 columns), empty matrices, K = 0, and one
# shape that crosses the Numba kernel's cache blocks (K > 128, N > 256).
TILE_SIZES = (1, 5, 6, 7, 15, 16, 17)
GEMM_SHAPES = sorted({
    *[(s, 7, 16) for s in TILE_SIZES],
    *[(6, s, 16) for s in TILE_SIZES],
    *[(6, 16, s) for s in TILE_SIZES],
    (0, 5, 7), (5, 0, 7), (5, 7, 0), (0, 0, 0), (17, 17, 17), (2, 257, 129),
})
GEMM_IDS = [f"M{m}-N{n}-K{k}" for m, n, k in GEMM_SHAPES]


def linear_inputs(m, n, k, bias=True):
    return random_array((m, k), 1), random_array((n, k), 2), (random_array(n, 3) if bias else None)


@pytest.mark.parametrize("m,n,k", GEMM_SHAPES, ids=GEMM_IDS)
def test_reference_linear_matches_torch(torch, m, n, k):
    x, w, b = linear_inputs(m, n, k)
    expected = torch.nn.functional.linear(*map(torch.from_numpy, (x, w, b))).numpy()
    assert_close(reference.linear(x, w, b, None, ALPHA), expected, k)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_reference_linear_activation_matches_torch(torch, activation, bias):
    x, w, b = linear_inputs(7, 17, 15, bias)
    y = torch.nn.functional.linear(torch.from_numpy(x), torch.from_numpy(w),
                                   None if b is None else torch.from_numpy(b))
    expected = torch_activation(torch, y, activation).numpy()
    assert_close(reference.linear(x, w, b, activation, ALPHA), expected, 15)


@pytest.mark.parametrize("m,n,k", GEMM_SHAPES, ids=GEMM_IDS)
def test_reference_matmul_matches_torch(torch, m, n, k):
    a, b = random_array((m, k), 1), random_array((k, n), 2)
    expected = torch.from_numpy(a).matmul(torch.from_numpy(b)).numpy()
    assert_close(reference.matmul(a, b), expected, k)


@pytest.mark.parametrize("m,n,k", GEMM_SHAPES, ids=GEMM_IDS)
def test_numba_linear_matches_reference(numba_backend, m, n, k):
    x, w, b = linear_inputs(m, n, k)
    assert_close(numba_backend.linear(x, w, b, None, ALPHA),
                 reference.linear(x, w, b, None, ALPHA), k)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_numba_linear_activation_matches_reference(numba_backend, activation, bias):
    x, w, b = linear_inputs(7, 17, 15, bias)
    assert_close(numba_backend.linear(x, w, b, activation, ALPHA),
                 reference.linear(x, w, b, activation, ALPHA), 15)


@pytest.mark.parametrize("m,n,k", GEMM_SHAPES, ids=GEMM_IDS)
def test_numba_matmul_matches_reference(numba_backend, m, n, k):
    a, b = random_array((m, k), 1), random_array((k, n), 2)
    assert_close(numba_backend.matmul(a, b), reference.matmul(a, b), k)


# ---------------------------------------------------------------------------- im2col, col2im

@dataclasses.dataclass(frozen=True)
class UnfoldCase:
    batch: int = 2
    channels: int = 3
    size: tuple = (6, 7)
    kernel: tuple = (3, 3)
    dilation: tuple = (1, 1)
    padding: tuple = (1, 1, 1, 1)  # top, bottom, left, right
    stride: tuple = (1, 1)

    def geometry(self):
        return self.kernel, self.dilation, self.padding, self.stride

    def image(self):
        return random_array((self.batch, self.channels, *self.size), seed=1)

    def columns(self):
        """Random columns of the shape im2col gives for this case."""
        return random_array(reference.im2col(self.image(), *self.geometry()).shape, seed=2)

    def padded_size(self):
        top, bottom, left, right = self.padding
        return self.size[0] + top + bottom, self.size[1] + left + right


def unfold_case(**changes):
    label = ",".join(f"{key}={value}" for key, value in changes.items()) or "default"
    return pytest.param(UnfoldCase(**changes), id=label.replace(" ", ""))


UNFOLD_CASES = [
    unfold_case(),
    unfold_case(kernel=(2, 3), dilation=(2, 1), padding=(1, 1, 0, 0), stride=(2, 1)),
    unfold_case(kernel=(1, 1), padding=(0, 0, 0, 0), stride=(3, 2)),
    unfold_case(kernel=(5, 5), padding=(2, 2, 2, 2), stride=(2, 2), size=(9, 8)),
    unfold_case(channels=1, dilation=(2, 2), padding=(2, 2, 2, 2)),
    unfold_case(padding=(0, 2, 1, 0), stride=(2, 1)),  # asymmetric
    unfold_case(batch=0),
]


@pytest.mark.parametrize("case", UNFOLD_CASES)
def test_reference_im2col_matches_torch_unfold(torch, case):
    # Torch's unfold pads symmetrically: pad explicitly instead, which covers both.
    x = case.image()
    expected = torch.nn.functional.unfold(
        torch_pad(torch, torch.from_numpy(x), case.padding), case.kernel, case.dilation, 0,
        case.stride).numpy()
    assert_close(reference.im2col(x, *case.geometry()), expected)


@pytest.mark.parametrize("case", UNFOLD_CASES)
def test_reference_col2im_matches_torch_fold(torch, case):
    # Fold onto the padded image, then crop the padding off.
    cols = case.columns()
    top, _, left, _ = case.padding
    height, width = case.size
    padded = torch.nn.functional.fold(torch.from_numpy(cols), case.padded_size(),
                                      case.kernel, case.dilation, 0, case.stride).numpy()
    expected = padded[:, :, top:top + height, left:left + width]
    assert_close(reference.col2im(cols, case.size, *case.geometry()), expected,
                 case.kernel[0] * case.kernel[1])


@pytest.mark.parametrize("case", UNFOLD_CASES)
def test_numba_im2col_matches_reference(numba_backend, case):
    x = case.image()
    assert_close(numba_backend.im2col(x, *case.geometry()),
                 reference.im2col(x, *case.geometry()))


@pytest.mark.parametrize("case", UNFOLD_CASES)
def test_numba_col2im_matches_reference(numba_backend, case):
    cols = case.columns()
    assert_close(numba_backend.col2im(cols, case.size, *case.geometry()),
                 reference.col2im(cols, case.size, *case.geometry()),
                 case.kernel[0] * case.kernel[1])


# ---------------------------------------------------------------------------- activations

@pytest.mark.parametrize("shape", [(), (0,), (2, 3, 5)], ids=["0d", "empty", "3d"])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_matches_torch(torch, backend, name, shape):
    x = random_array(shape)
    x *= 4  # reach the flat parts of sigmoid and tanh
    y = backend.activation(x, name, ALPHA)
    assert not np.shares_memory(y, x)
    assert_close(y, torch_activation(torch, torch.from_numpy(x), name).numpy())


SPECIAL_INPUTS = np.array([np.nan, -np.inf, np.inf, -1e4, 1e4, -100.0, 100.0, -0.0],
                          dtype=np.float32)
# f(x) at SPECIAL_INPUTS; silu(-inf) = -inf * 0 is NaN, as in PyTorch.
SPECIAL_OUTPUTS = {
    None: SPECIAL_INPUTS,
    "relu": [np.nan, 0, np.inf, 0, 1e4, 0, 100, 0],
    "relu6": [np.nan, 0, 6, 0, 6, 0, 6, 0],
    "leaky_relu": [np.nan, -np.inf, np.inf, -1e3, 1e4, -10, 100, 0],
    "sigmoid": [np.nan, 0, 1, 0, 1, np.exp(-100.0), 1, 0.5],
    "tanh": [np.nan, -1, 1, -1, 1, -1, 1, 0],
    "silu": [np.nan, np.nan, np.inf, 0, 1e4, -100 * np.exp(-100.0), 100, 0],
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_propagates_nan_and_inf_without_warnings(backend, name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = backend.activation(SPECIAL_INPUTS, name, ALPHA)
    # atol only matters for the denormal results at -100.
    np.testing.assert_allclose(y, np.float32(SPECIAL_OUTPUTS[name]), rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_fused_activations_propagate_nan(backend, name):
    x = random_array((3, 4))
    x[1, 2] = np.nan
    assert np.isnan(backend.linear(x, random_array((5, 4)), None, name, ALPHA)[1]).all()
    image = random_array((1, 1, 3, 3))
    image[0, 0, 1, 1] = np.nan
    y = backend.conv(image, random_array((2, 1, 1, 1)), None, (1, 1), (0, 0, 0, 0), (1, 1),
                     1, name, ALPHA)
    assert np.isnan(y[:, :, 1, 1]).all() and not np.isnan(y[:, :, 0, 0]).any()
