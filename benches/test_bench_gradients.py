"""Gradients of the layers with their own backward kernels, fastdl next to PyTorch autograd:

- depthwise 3x3 convolutions of MobileNet (32 channels on 112x112, 64 on 112x112 stride 2,
  512 on 14x14 stride 1 and 2; batch 8 and 32): dx, dw and db. ``fastdl`` is what
  fastdl.ops.conv2d_backward runs (the direct depthwise kernels), ``fastdl-gemm`` the GEMM
  path they replaced (one GEMM per channel), ``torch`` the backward of
  torch.nn.functional.conv2d(groups=C) through autograd.
- plain stride-1 3x3 convolutions (CIFAR-sized 3 -> 16 on 32x32, 16 -> 32 on 16x16,
  32 -> 64 on 8x8 at batch 32; ResNet's 64 channels on 56x56 at batch 8): ``fastdl`` runs
  the shifted dot products for dw and the forward convolution for dx, ``fastdl-gemm`` the
  im2col GEMMs and col2im they replaced.
- the embedding gradient (a scatter-add of 4096-32768 rows into a table): ``fastdl``
  (fastdl.ops.embedding_backward), ``numpy`` (np.add.at, what the Embedding layer used
  before), ``torch`` (autograd of torch.nn.functional.embedding).
- ReLU -> 2x2 max pooling on the CIFAR CNN's maps (forward and gradient): window codes
  with the ReLU gate against indices plus a ReLU gradient pass and against torch.

Every contender's result is checked against fastdl's before it is timed.

    pytest benches/test_bench_gradients.py --bench-threads 1 --benchmark-group-by=group
"""
import numpy as np
import pytest

import fastdl
from fastdl import ops

RNG = np.random.default_rng(0)

DEPTHWISE = {  # name: (batch, channels, size, stride)
    "dw3x3-32x112-b8": (8, 32, 112, 1),
    "dw3x3-32x112-b32": (32, 32, 112, 1),
    "dw3x3-64x112-s2-b8": (8, 64, 112, 2),
    "dw3x3-512x14-b8": (8, 512, 14, 1),
    "dw3x3-512x14-b32": (32, 512, 14, 1),
    "dw3x3-512x14-s2-b8": (8, 512, 14, 2),
}


CONV = {  # name: (batch, in channels, out channels, size), stride 1, groups 1
    "conv3x3-3to16x32-b32": (32, 3, 16, 32),
    "conv3x3-16to32x16-b32": (32, 16, 32, 16),
    "conv3x3-32to64x8-b32": (32, 32, 64, 8),
    "conv3x3-64x56-b8": (8, 64, 64, 56),
}


def _conv_runner(who, batch, cin, cout, groups, size, stride, threads):
    """(call, fastdl's gradients, the contender's) of a 3x3 convolution, padding 1."""
    x = RNG.standard_normal((batch, cin, size, size), dtype=np.float32)
    w = RNG.standard_normal((cout, cin // groups, 3, 3), dtype=np.float32)
    out = (size + 2 - 3) // stride + 1
    dy = RNG.standard_normal((batch, cout, out, out), dtype=np.float32)
    fastdl.set_num_threads(threads)
    want = ops.conv2d_backward(dy, x, w, stride, 1, groups=groups)
    if who == "fastdl":
        return lambda: ops.conv2d_backward(dy, x, w, stride, 1, groups=groups), want, None
    if who == "fastdl-gemm":
        from fastdl import _C
        call = lambda: _C.conv_backward(dy, x, w, (stride, stride), (1, 1, 1, 1), (1, 1),
                                        groups, True, True, algorithm="gemm")
        return call, want, call()
    torch = pytest.importorskip("torch")
    torch.set_num_threads(threads)
    tx, tw, tb = (torch.tensor(a, requires_grad=True)
                  for a in (x, w, np.zeros(cout, np.float32)))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=1, groups=groups)
    tdy = torch.tensor(dy)

    def call():
        tx.grad = tw.grad = tb.grad = None
        ty.backward(tdy, retain_graph=True)
        return tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()
    return call, want, call()


@pytest.mark.parametrize("who", ["fastdl", "fastdl-gemm", "torch"])
@pytest.mark.parametrize("layer", sorted(DEPTHWISE))
def test_depthwise_backward(benchmark, bench_threads, layer, who):
    batch, channels, size, stride = DEPTHWISE[layer]
    _bench_conv(benchmark, bench_threads, layer, who,
                _conv_runner(who, batch, channels, channels, channels, size, stride,
                             bench_threads))


@pytest.mark.parametrize("who", ["fastdl", "fastdl-gemm", "torch"])
@pytest.mark.parametrize("layer", sorted(CONV))
def test_stride_one_conv_backward(benchmark, bench_threads, layer, who):
    batch, cin, cout, size = CONV[layer]
    _bench_conv(benchmark, bench_threads, layer, who,
                _conv_runner(who, batch, cin, cout, 1, size, 1, bench_threads))


def _bench_conv(benchmark, bench_threads, layer, who, runner):
    call, want, got = runner
    if got is not None:
        for g, r in zip(got, want):
            np.testing.assert_allclose(g, r, rtol=1e-3, atol=2e-2)  # float32 sums
    benchmark.group = f"backward {layer}"
    benchmark.extra_info.update(threads=bench_threads, library=who)
    benchmark(call)


EMBEDDING = {  # name: (num_embeddings, dim, indices shape)
    "emb-10000x128-32x128": (10000, 128, (32, 128)),
    "emb-1000x64-256x128": (1000, 64, (256, 128)),
    "emb-100x512-32x64": (100, 512, (32, 64)),
}


@pytest.mark.parametrize("who", ["fastdl", "numpy", "torch"])
@pytest.mark.parametrize("case", sorted(EMBEDDING))
def test_embedding_backward(benchmark, bench_threads, case, who):
    rows, dim, shape = EMBEDDING[case]
    idx = RNG.integers(0, rows, size=shape)
    dy = RNG.standard_normal(shape + (dim,), dtype=np.float32)
    fastdl.set_num_threads(bench_threads)
    want = ops.embedding_backward(dy, idx, rows)
    if who == "fastdl":
        call = lambda: ops.embedding_backward(dy, idx, rows)
    elif who == "numpy":
        def call():
            table = np.zeros((rows, dim), np.float32)
            np.add.at(table, idx.reshape(-1), dy.reshape(-1, dim))
            return table
    else:
        torch = pytest.importorskip("torch")
        torch.set_num_threads(bench_threads)
        tw = torch.zeros(rows, dim, requires_grad=True)
        ty = torch.nn.functional.embedding(torch.tensor(idx), tw)
        tdy = torch.tensor(dy)

        def call():
            tw.grad = None
            ty.backward(tdy, retain_graph=True)
            return tw.grad.numpy()
    np.testing.assert_allclose(call(), want, rtol=1e-5, atol=1e-5)
    benchmark.group = f"backward {case}"
    benchmark.extra_info.update(threads=bench_threads, library=who)
    benchmark(call)


POOL = {  # name: ReLU maps [N, C, H, W] max pooled 2x2 at stride 2 (the CIFAR CNN's three)
    "pool2x2-16x32-b32": (32, 16, 32, 32),
    "pool2x2-32x16-b32": (32, 32, 16, 16),
    "pool2x2-64x8-b32": (32, 64, 8, 8),
}


@pytest.mark.parametrize("who", ["fastdl", "fastdl-indices", "torch"])
@pytest.mark.parametrize("case", sorted(POOL))
def test_relu_max_pool_forward_and_backward(benchmark, bench_threads, case, who):
    """One training pass through ReLU -> MaxPool2d(2): the pooling forward and the gradient
    for the ReLU's input. ``fastdl``: window codes with the ReLU gate (what training runs),
    ``fastdl-indices``: int64 indices, their scatter and a ReLU gradient pass (what it ran
    before), ``torch``: max_pool2d with indices, its backward and relu's through autograd."""
    x = np.maximum(RNG.standard_normal(POOL[case], dtype=np.float32), 0)  # a ReLU's output
    y, idx = ops.max_pool2d(x, 2, return_indices=True)
    dy = RNG.standard_normal(y.shape, dtype=np.float32)
    fastdl.set_num_threads(bench_threads)
    want = ops.relu_backward(ops.max_pool2d_backward(dy, idx, x.shape), x)
    if who == "fastdl":
        def call():
            _, codes = ops.max_pool2d_codes(x, relu_gate=True)
            return ops.max_pool2d_codes_backward(dy, codes)
    elif who == "fastdl-indices":
        def call():
            _, indices = ops.max_pool2d(x, 2, return_indices=True)
            return ops.relu_backward(ops.max_pool2d_backward(dy, indices, x.shape), x)
    else:
        torch = pytest.importorskip("torch")
        torch.set_num_threads(bench_threads)
        tz = torch.tensor(x).requires_grad_()
        tdy = torch.tensor(dy)

        def call():
            tz.grad = None
            torch.nn.functional.max_pool2d(torch.relu(tz), 2).backward(tdy)
            return tz.grad.numpy()
    np.testing.assert_array_equal(call(), want)
    benchmark.group = f"relu + max pool {case}"
    benchmark.extra_info.update(threads=bench_threads, library=who)
    benchmark(call)
