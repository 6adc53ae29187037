"""What a training step pays to give a plan new weights (plan.set_weights: copy and repack
in place), next to one forward call of the same plan, for the layers the ground-work issue
names: the ResNet-18 3x3 conv 128->128 on 28x28 (Winograd: the repack transforms the
weights for each tile size the plan has built) and an LSTM 64->128 over 100 steps (batch 1
and 32). ``benchmark.group`` pairs them; the ratio is set_weights / forward.

    pytest benches/test_bench_repack.py --benchmark-group-by=group
"""
import numpy as np
import pytest

import fastdl

RNG = np.random.default_rng(0)


def _conv3x3():
    w = RNG.standard_normal((128, 128, 3, 3), dtype=np.float32) * 0.05
    plan = fastdl.ops.Conv2dPlan(w, np.zeros(128, np.float32), padding=1)
    x = RNG.standard_normal((1, 128, 28, 28), dtype=np.float32)
    return plan, (w * 0.5, np.ones(128, np.float32)), lambda: plan(x)


def _lstm(batch):
    def build():
        w_ih = RNG.standard_normal((512, 64), dtype=np.float32) * 0.1
        w_hh = RNG.standard_normal((512, 128), dtype=np.float32) * 0.1
        b = np.zeros(512, np.float32)
        plan = fastdl.ops.LSTMPlan(w_ih, w_hh, b, b)
        x = RNG.standard_normal((100, batch, 64), dtype=np.float32)
        return plan, (w_ih * 0.5, w_hh * 0.5, b, b), lambda: plan(x)
    return build


LAYERS = {"conv3x3-128x28": _conv3x3, "lstm-b1-64to128x100": _lstm(1),
          "lstm-b32-64to128x100": _lstm(32)}


@pytest.mark.parametrize("what", ["forward", "set_weights"])
@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_repack(benchmark, bench_threads, layer, what):
    fastdl.set_num_threads(bench_threads)
    plan, new_weights, forward = LAYERS[layer]()
    forward()  # lazily built state (Winograd forms) exists, as in training
    benchmark.group = f"repack {layer}"
    benchmark.extra_info.update(threads=bench_threads)
    if what == "forward":
        benchmark(forward)
    else:
        benchmark(plan.set_weights, *new_weights)
