"""Memory: 10,000 calls of every plan type, of model.predict and of train_on_batch leave the
resident set within 1 MB of where it was after warm-up; allocations too large for the
machine raise MemoryError before touching memory (the resident set does not move) and
leave fastdl working.

Each check runs in a child interpreter, so the resident set is this code's alone.
"""
import pytest

from child_process import expect_ok, run_script

CALLS = 10_000

RSS = """
import gc, os
import numpy as np

def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
"""


def test_repeated_calls_do_not_grow_the_resident_set():
    result = expect_ok(*run_script(RSS + f"""
import fastdl
from fastdl import layers, models, ops
fastdl.set_num_threads(2)
rng = np.random.default_rng(0)
r = lambda *s: rng.standard_normal(s).astype(np.float32)
model = models.Sequential([layers.Input((8, 8, 3)), layers.Conv2D(8, 3, activation="relu"),
                           layers.MaxPooling2D(), layers.Flatten(), layers.Dense(4)])
model.compile("adam", "mse")
xb, yb = r(4, 8, 8, 3), r(4, 4)
pool_x = r(2, 4, 10, 10)
cases = {{
    "Conv1dPlan": (ops.Conv1dPlan(r(8, 4, 3), r(8), padding=1), r(2, 4, 30)),
    "Conv2dPlan": (ops.Conv2dPlan(r(8, 4, 3, 3), r(8), padding=1), r(2, 4, 10, 10)),
    "Conv3dPlan": (ops.Conv3dPlan(r(8, 4, 3, 3, 3), r(8), padding=1), r(1, 4, 5, 6, 6)),
    "ConvTranspose1dPlan": (ops.ConvTranspose1dPlan(r(4, 8, 3), stride=2), r(2, 4, 30)),
    "ConvTranspose2dPlan": (ops.ConvTranspose2dPlan(r(4, 8, 3, 3), stride=2), r(2, 4, 9, 9)),
    "ConvTranspose3dPlan": (ops.ConvTranspose3dPlan(r(4, 8, 3, 3, 3), stride=2),
                            r(1, 4, 4, 5, 5)),
    "LinearPlan": (ops.LinearPlan(r(32, 64), r(32)), r(8, 64)),
    "LSTMPlan": (ops.LSTMPlan(r(64, 10), r(64, 16)), r(5, 3, 10)),
    "GRUPlan": (ops.GRUPlan(r(48, 10), r(48, 16)), r(5, 3, 10)),
    "PoolPlan max": (ops.PoolPlan("max", pool_x.shape, 2), pool_x),
    "PoolPlan avg": (ops.PoolPlan("avg", pool_x.shape, 3, 1, 1), pool_x),
    "model.predict": (lambda x: model.predict(x, verbose=0), r(3, 8, 8, 3)),
    "train_on_batch": (lambda x: model.train_on_batch(*x), (xb, yb)),
}}
growth = {{}}
for name, (call, x) in cases.items():
    for _ in range(300):
        call(x)
    gc.collect()
    before = rss_bytes()
    for _ in range({CALLS}):
        call(x)
    gc.collect()
    growth[name] = rss_bytes() - before
report(growth=growth)
"""))
    print("resident set growth over", CALLS, "calls (bytes):", result["growth"])
    for name, grew in result["growth"].items():
        assert grew < 1 << 20, (name, grew)


def test_allocations_too_large_for_the_machine_raise_memory_error():
    result = expect_ok(*run_script(RSS + """
from fastdl import layers, models, ops
x = np.ones((1, 1, 2, 2), np.float32)
attempts = {
    "conv_transpose2d stride 10**6 (output 15 TB)":
        lambda: ops.conv_transpose2d(x, np.ones((1, 1, 1, 1), np.float32), stride=10**6),
    "embedding_backward 10**11 rows":
        lambda: ops.embedding_backward(np.ones((2, 8), np.float32), np.array([0, 1]), 10**11),
    "UpSampling2D size 10**6": lambda: models.Sequential(
        [layers.Input((2, 2, 1)), layers.UpSampling2D(10**6)]).predict(
            np.ones((1, 2, 2, 1), np.float32), verbose=0),
    "RepeatVector 2**31 - 1 (512 GB)": lambda: models.Sequential(
        [layers.Input((64,)), layers.RepeatVector(2**31 - 1)]).predict(
            np.ones((1, 64), np.float32), verbose=0),
}
outcome = {}
for name, attempt in attempts.items():
    before = rss_bytes()
    try:
        attempt()
        outcome[name] = "no error"
    except MemoryError:
        grew = rss_bytes() - before
        outcome[name] = "MemoryError" if grew < 64 << 20 else f"MemoryError after {grew} bytes"
    except Exception as exc:
        outcome[name] = repr(exc)
still = ops.conv2d(np.ones((1, 1, 3, 3), np.float32), np.ones((1, 1, 3, 3), np.float32))
report(outcome=outcome, still_works=float(still.item()))
"""))
    assert result["still_works"] == 9.0
    assert all(v == "MemoryError" for v in result["outcome"].values()), result["outcome"]
