"""What the backends without compiled kernels (fastdl._numba, fastdl._reference) share: the
plan classes of the contract (fastdl._contract) built over a backend's functional kernels,
and the thread count they record.

Their plans keep the weights (copied) and call the functional kernel on every call; there
is nothing to pack, so set_weights copies. They compute on the calling thread.
"""
import os
import re

import numpy as np


def _copy(a):
    return None if a is None else np.array(a, dtype=np.float32, order="C", copy=True)


def _refill(dst, src):
    if dst is not None:
        np.copyto(dst, src)


def _into(out, y):
    """y, or y copied into the caller's `out`."""
    if out is None:
        return y
    np.copyto(out, y.reshape(out.shape))
    return out


class ConvChain:
    """The contract's ConvChain over a Python backend's ConvPlans: the three plans one after
    the other (the native backend's strips win cache misses, which these kernels do not
    depend on: pays() is always False, so compiled models never form one here)."""

    def __init__(self, expand, depthwise, project):
        self._expand, self._depthwise, self._project = expand, depthwise, project

    def __call__(self, x, out=None):
        y = x if self._expand is None else self._expand(x)
        return self._project(self._depthwise(y), out)

    @staticmethod
    def pays(expands, channels, height, width, in_channels=0, out_channels=0):
        return False


def make_plans(conv, conv_transpose, linear, rnn_layer):
    """(ConvPlan, ConvTransposePlan, LinearPlan, RnnPlan) over these functional kernels."""

    class _Plan:
        """Keeps copies of w and b; set_weights copies new ones in."""

        def __init__(self, w, b):
            self._w, self._b = _copy(w), _copy(b)

        def set_weights(self, w, b):
            _refill(self._w, w)
            _refill(self._b, b)

    class LinearPlan(_Plan):
        # kn: w arrives as [in, out]; kept here as the [out, in] copy linear() takes.
        def __init__(self, w, b, activation, alpha, kn=False):
            self._kn = kn
            super().__init__(w.T if kn else w, b)
            self._act = (activation, alpha)

        def set_weights(self, w, b):
            super().set_weights(w.T if self._kn else w, b)

        def __call__(self, x, out=None):
            return _into(out, linear(x, self._w, self._b, *self._act))

    class ConvPlan(_Plan):
        def __init__(self, w, b, stride, padding, dilation, groups, activation, alpha):
            super().__init__(w, b)
            self._args = (stride, padding, dilation, groups, activation, alpha)

        def __call__(self, x, out=None):
            return _into(out, conv(x, self._w, self._b, *self._args))

    class ConvTransposePlan(_Plan):
        # padding: flat (before, after) per axis, symmetric (PyTorch's transposed form).
        def __init__(self, w, b, stride, padding, dilation, groups, activation, alpha):
            super().__init__(w, b)
            self._stride, self._padding = stride, tuple(padding[0::2])
            self._rest = (dilation, groups, activation, alpha)

        def __call__(self, x, output_size, out=None):
            return _into(out, conv_transpose(x, self._w, self._b, self._stride, self._padding,
                                             tuple(output_size), *self._rest))

    class RnnPlan:
        def __init__(self, kind, weights, input_size, hidden_size, num_layers, bidirectional):
            self._kind, self._layers = kind, num_layers
            self._dirs = 2 if bidirectional else 1
            self._hidden = hidden_size
            self._weights = [tuple(_copy(a) for a in layer) for layer in weights]

        def set_weights(self, weights):
            for mine, new in zip(self._weights, weights):
                for dst, src in zip(mine, new):
                    _refill(dst, src)

        def __call__(self, x, h0=None, c0=None, out=None):
            """One rnn_layer per layer and direction; the directions' outputs concatenated."""
            lstm = self._kind == "lstm"
            count, batch = self._layers * self._dirs, x.shape[1]
            shape = (count, batch, self._hidden)
            h0 = np.zeros(shape, np.float32) if h0 is None else h0
            c0 = (np.zeros(shape, np.float32) if c0 is None else c0) if lstm else None
            h_n = np.empty(shape, np.float32)
            c_n = np.empty(shape, np.float32) if lstm else None
            seq = x
            for layer in range(self._layers):
                outs = []
                for d in range(self._dirs):
                    k = layer * self._dirs + d
                    y, h, c = rnn_layer(self._kind, seq, h0[k], None if c0 is None else c0[k],
                                        *self._weights[k], d == 1)
                    outs.append(y)
                    h_n[k] = h
                    if lstm:
                        c_n[k] = c
                seq = outs[0] if self._dirs == 1 else np.concatenate(outs, axis=2)
            return _into(out, np.ascontiguousarray(seq)), h_n, c_n

    return ConvPlan, ConvTransposePlan, LinearPlan, RnnPlan


class Threads:
    """The thread count a backend without a pool records (FASTDL_NUM_THREADS, else the CPUs
    this process may use), so that code written for the native backend runs unchanged."""

    def __init__(self, name):
        self._name = name
        self._count = None

    def isa(self):
        return self._name

    def num_threads(self):
        if self._count is None:
            self._count = _env_threads() or len(os.sched_getaffinity(0))
        return self._count

    def set_num_threads(self, n):
        self._count = max(1, int(n))

    @staticmethod
    def set_thread_affinity(cpus):
        """Restricts the calling thread (all these backends use) to `cpus` (all if empty)."""
        try:
            os.sched_setaffinity(0, cpus or range(os.cpu_count() or 1))
        except OSError:
            return False
        return True


# What the native pool accepts in FASTDL_NUM_THREADS (kernels/src/core/threadpool.cc): a
# whole string strtol reads as a base-10 int, in [1, 1024].
_ENV_COUNT = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")


def _env_threads():
    """FASTDL_NUM_THREADS as the native pool reads it, or None when unset or invalid (the
    pool then silently takes the CPUs this process may use, and so do these backends)."""
    env = os.environ.get("FASTDL_NUM_THREADS")
    if env is not None and _ENV_COUNT.fullmatch(env) and 1 <= int(env) <= 1024:
        return int(env)
    return None
