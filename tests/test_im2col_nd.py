"""fastdl.ops.im2col / col2im in 1-D and 3-D (len(kernel_size) spatial axes), on every
backend: 1-D checked against torch's unfold/fold of a one-row image, 3-D against explicit
patches cut from torch, col2im as the adjoint of im2col; 2-D behaviour unchanged."""
import importlib

import numpy as np
import pytest

import fastdl
from fastdl import ops

try:
    import torch
    F = torch.nn.functional
except ImportError:  # the ARM build's tests under qemu: the NumPy reference is the oracle
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def _numba_backend():
    """fastdl._numba, or skip where numba is not installed (e.g. the ARM run under qemu)."""
    pytest.importorskip("numba")
    return importlib.import_module("fastdl._numba")


CASES_1D = [  # (C, L, k, dilation, padding, stride)
    (3, 10, (3,), 1, 1, 1),
    (2, 17, (4,), 2, ((3, 0),), 3),
    (1, 5, (5,), 1, 0, 1),
    (4, 9, (1,), 1, 2, 2),
]
CASES_3D = [  # (C, (D, H, W), k, dilation, padding, stride)
    (2, (4, 5, 6), (3, 3, 3), 1, 1, 1),
    (3, (6, 4, 7), (2, 3, 1), (2, 1, 1), ((1, 0), (0, 2), (2, 1)), (2, 1, 3)),
    (1, (3, 3, 3), (1, 1, 1), 1, 0, 1),
    (2, (5, 5, 5), (5, 2, 3), 1, (0, 1, 1), (1, 2, 2)),
]


def _flat(padding, dims):
    return fastdl._conv_geometry.padding(padding, dims, (1,) * dims, (1,) * dims, (1,) * dims,
                                         allow_same=False)


def _tuple(value, dims):
    return (value,) * dims if isinstance(value, int) else tuple(value)


def torch_unfold_nd(x, k, dilation, padding, stride):
    """[N, C, spatial...] -> [N, C*prod(k), L] by cutting patches out of torch tensors (the
    NumPy reference where torch is missing)."""
    dims = len(k)
    if torch is None:
        return _backend_module("numpy").im2col(x, k, _tuple(dilation, dims),
                                               _flat(padding, dims), _tuple(stride, dims))
    flat = _flat(padding, dims)
    pads = [q for a in reversed(range(dims)) for q in (flat[2 * a], flat[2 * a + 1])]
    t = F.pad(torch.from_numpy(x), pads)
    d, s = _tuple(dilation, dims), _tuple(stride, dims)
    for a in range(dims):  # unfold each axis into windows: [..., out_a, ..., k_a]
        t = t.unfold(2 + a, d[a] * (k[a] - 1) + 1, s[a])[..., ::d[a]]
    # t: [N, C, out..., k...] -> [N, C, k..., out...]
    perm = [0, 1] + [2 + dims + a for a in range(dims)] + [2 + a for a in range(dims)]
    t = t.permute(*perm)
    return t.reshape(x.shape[0], -1, int(np.prod(t.shape[2 + dims:]))).numpy()


BACKENDS = ["public", "numpy", "numba", "native"]


def _im2col(backend, x, k, dilation, padding, stride):
    if backend == "public":
        return ops.im2col(x, k, dilation, padding, stride)
    dims = len(k)
    module = _backend_module(backend)
    return module.im2col(x, k, _tuple(dilation, dims), _flat(padding, dims),
                         _tuple(stride, dims))


def _col2im(backend, cols, size, k, dilation, padding, stride):
    if backend == "public":
        return ops.col2im(cols, size, k, dilation, padding, stride)
    dims = len(k)
    module = _backend_module(backend)
    return module.col2im(cols, size, k, _tuple(dilation, dims), _flat(padding, dims),
                         _tuple(stride, dims))


def _backend_module(backend):
    if backend == "numpy":
        return importlib.import_module("fastdl._reference")
    if backend == "numba":
        return _numba_backend()
    return pytest.importorskip("fastdl._native")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES_1D + CASES_3D)
def test_im2col_matches_torch_and_col2im_is_its_adjoint(backend, case):
    c, size, k, dilation, padding, stride = case
    size = _tuple(size, len(k))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, c) + size, dtype=np.float32)
    cols = _im2col(backend, x, k, dilation, padding, stride)
    want = torch_unfold_nd(x, k, dilation, padding, stride)
    assert cols.dtype == np.float32 and cols.flags.c_contiguous
    np.testing.assert_array_equal(cols, want)
    if len(k) == 1 and torch is not None:  # torch's own unfold/fold on a one-row image
        p = _flat(padding, 1)
        if p[0] == p[1]:
            t = F.unfold(torch.from_numpy(x[:, :, None]), (1, k[0]), (1, dilation),
                         (0, p[0]), (1, stride)).numpy()
            np.testing.assert_array_equal(cols, t)
            folded = F.fold(torch.from_numpy(cols), (1, size[0]), (1, k[0]), (1, dilation),
                            (0, p[0]), (1, stride)).numpy()[:, :, 0]
            np.testing.assert_allclose(_col2im(backend, cols, size, k, dilation, padding,
                                               stride), folded, rtol=1e-6, atol=1e-6)
    # <im2col(x), v> == <x, col2im(v)>
    v = rng.standard_normal(cols.shape, dtype=np.float32)
    back = _col2im(backend, v, size, k, dilation, padding, stride)
    assert back.shape == x.shape and back.dtype == np.float32
    lhs = np.sum(cols.astype(np.float64) * v)
    rhs = np.sum(x.astype(np.float64) * back)
    assert abs(lhs - rhs) <= 1e-4 * (1 + abs(lhs))
    if backend == "public":  # unbatched
        np.testing.assert_array_equal(ops.im2col(x[0], k, dilation, padding, stride), cols[0])
        np.testing.assert_array_equal(ops.col2im(v[0], size, k, dilation, padding, stride),
                                      back[0])


@needs_torch
def test_2d_unchanged():
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6), dtype=np.float32)
    got = ops.im2col(x, 3, 2, 1, 2)
    want = F.unfold(torch.from_numpy(x), 3, 2, 1, 2).numpy()
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(ops.im2col(x, (3, 3), 2, 1, 2), want)
    np.testing.assert_array_equal(ops.im2col(x[0], 3, 2, 1, 2), want[0])


@pytest.mark.parametrize("call,error,name", [
    (lambda: ops.im2col(np.ones((1, 2, 5, 5, 5)), (3, 3, 3, 3)), ValueError, "kernel_size"),
    (lambda: ops.im2col(np.ones((1, 2, 5, 5, 5)), ()), ValueError, "kernel_size"),
    (lambda: ops.im2col(np.ones((1, 2, 5, 5, 5)), 3.0), TypeError, "kernel_size"),
    (lambda: ops.im2col(np.ones((1, 2, 5, 5)), (3, 3, 3)), ValueError, "x"),  # unbatched: D=2 < 3
    (lambda: ops.im2col(np.ones(5), (3,)), ValueError, "x"),
    (lambda: ops.im2col(np.ones((1, 2, 5)), (7,)), ValueError, "x"),
    (lambda: ops.im2col(np.ones((1, 2, 5)), (3,), padding="same"), TypeError, "padding"),
    # One axis: a pair of ints is (left, right), as for conv1d; three values are too many.
    (lambda: ops.im2col(np.ones((1, 2, 5)), (3,), padding=(1, 1, 1)), ValueError, "padding"),
    (lambda: ops.im2col(np.ones((1, 2, 5, 5, 5)), (3, 3, 3), stride=(1, 1)), ValueError,
     "stride"),
    (lambda: ops.col2im(np.ones((1, 5, 3)), (5,), (3,)), ValueError, "cols"),
    (lambda: ops.col2im(np.ones((1, 6, 4)), (5,), (3,)), ValueError, "cols"),
    (lambda: ops.col2im(np.ones((1, 6, 3)), (5, 5), (3,)), ValueError, "output_size"),
    (lambda: ops.col2im(np.ones((1, 6, 3)), (2,), (3,)), ValueError, "output_size"),
])
def test_bad_arguments_name_themselves(call, error, name):
    with pytest.raises(error, match=f"^{name}:"):
        call()
