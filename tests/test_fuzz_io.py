"""Bad input to fastdl.io.from_torch and to the bench CLI (`python -m fastdl.bench`), fuzzed.

from_torch(module, input_shape, name): random PyTorch modules -- nn.Sequentials (nested,
with named children) of 1 to 4 modules drawn with odd configurations (padding modes,
groups, dilations, strides, paddings, output paddings, huge or negative sizes, ceil_mode,
return_indices, Softmax dims, LSTM/GRU with proj_size, batch_first=False, bias=False,
Embeddings, modules fastdl has no equivalent of, subclasses overriding forward, forward
hooks), bare modules and other containers -- with input_shape, name or the module itself
sometimes spoiled (tests/spoilers.py). Each call must give a model whose prediction on a
random input of input_shape matches torch's (eval mode, rtol 1e-4) or raise ValueError /
TypeError naming the argument or the module (its path in the Sequential), MemoryError for
sizes no machine holds -- never another exception, a crash or a hang.

The bench CLI: fastdl.bench.cli.main(argv) in-process on a fast valid command line (one
tiny case, no peers, 1 sample) with one or two options given spoiled values (negative,
zero, huge, NaN, empty, unknown names, garbage, repeated, unknown flags). It must exit 0
(a legal value) or 2 with a message naming the option on stderr -- never a traceback,
another status, or a hang; values that are clearly not legal must give 2.

FASTDL_FUZZ_EXAMPLES sets the examples per test (CI: 25).
"""
import contextlib
import io
import math
import os
import re
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fastdl

from spoilers import Hang, guarded_call, judge, names_an_argument, spoil

EXAMPLES = int(os.environ.get("FASTDL_FUZZ_EXAMPLES", "25"))

pytestmark = pytest.mark.fuzz

# ------------------------------------------------------------------------- from_torch

HUGE = [2**31 - 1, 2**31, 2**62]
# Inputs beyond this many elements are not run (their models may still be built).
MAX_CHECKED = 10**6


def _torch():
    torch = pytest.importorskip("torch")
    return torch, torch.nn


def _rarely(draw, n):
    """True about once in n draws (hypothesis favours small integers: not integers(0, n))."""
    return draw(st.sampled_from([False] * (n - 1) + [True]))


def _size(draw, low=1, high=4, odd=()):
    """A small size, sometimes one of `odd`."""
    if odd and _rarely(draw, 8):
        return draw(st.sampled_from(list(odd)))
    return draw(st.integers(low, high))


def _sizes(draw, rank, low=1, high=4, odd=()):
    """An int or a tuple of `rank` ints."""
    if rank > 1 and draw(st.booleans()):
        return tuple(_size(draw, low, high, odd) for _ in range(rank))
    return _size(draw, low, high, odd)


def _channels(draw, wanted):
    """The input size a module declares: the input's (usually) or another."""
    return draw(st.integers(1, 5)) if _rarely(draw, 10) else wanted


def _conv(draw, nn, shape, transposed):
    rank = len(shape) - 1
    cin = _channels(draw, shape[0])
    groups = draw(st.sampled_from([g for g in (1, 1, 1, 2, 3, cin) if cin % g == 0 and (
        g == 1 or not transposed or _rarely(draw, 4))]))
    cout = groups * draw(st.integers(1, 3))
    kernel = _sizes(draw, rank, 1, 4, odd=(9, 12))
    dilation = _sizes(draw, rank, 1, 1, odd=(2, 3) + ((2**31 - 1,) if not transposed else ()))
    bias = draw(st.booleans())
    if transposed:
        cls = getattr(nn, f"ConvTranspose{rank}d")
        return cls(cin, cout, kernel, stride=_sizes(draw, rank, 1, 3),
                   padding=_sizes(draw, rank, 0, 3),
                   output_padding=_sizes(draw, rank, 0, 0, odd=(1, 2)),
                   groups=groups, bias=bias, dilation=dilation)
    padding = draw(st.sampled_from([0, "same", "valid", "sizes", "sizes"]))
    if padding == "sizes":
        padding = _sizes(draw, rank, 0, 3)
    stride = 1 if padding == "same" else _sizes(draw, rank, 1, 3, odd=(2**31 - 1,))
    mode = draw(st.sampled_from(["zeros"] * 9 + ["reflect", "replicate", "circular"]))
    cls = getattr(nn, f"Conv{rank}d")
    return cls(cin, cout, kernel, stride=stride, padding=padding, dilation=dilation,
               groups=groups, bias=bias, padding_mode=mode)


def _pool(draw, nn, shape):
    rank = len(shape) - 1
    kernel = _sizes(draw, rank, 1, 4, odd=HUGE)
    stride = None if _rarely(draw, 4) else _sizes(draw, rank, 1, 3, odd=HUGE)
    padding = _sizes(draw, rank, 0, 2, odd=(2**40,))
    ceil_mode = _rarely(draw, 5)
    if draw(st.booleans()):
        return getattr(nn, f"MaxPool{rank}d")(
            kernel, stride, padding, dilation=_sizes(draw, rank, 1, 1, odd=(2, 3)),
            ceil_mode=ceil_mode, return_indices=_rarely(draw, 7))
    extra = {}
    if rank > 1 and _rarely(draw, 7):
        extra["divisor_override"] = draw(st.sampled_from([1, 3]))
    return getattr(nn, f"AvgPool{rank}d")(kernel, stride, padding, ceil_mode=ceil_mode,
                                          count_include_pad=draw(st.booleans()), **extra)


def _adaptive(draw, nn, shape):
    rank = len(shape) - 1
    kind = draw(st.sampled_from(["Avg", "Max"]))
    size = draw(st.sampled_from([1, 1, 1, 2, (1,) * rank, None]))
    extra = {"return_indices": True} if kind == "Max" and _rarely(draw, 7) else {}
    return getattr(nn, f"Adaptive{kind}Pool{rank}d")(size, **extra)


def _batchnorm(draw, nn, shape):
    rank = max(1, len(shape) - 1)
    return getattr(nn, f"BatchNorm{rank}d")(
        _channels(draw, shape[0]), eps=draw(st.sampled_from([1e-5, 1e-3, 0.0, 10.0])),
        affine=draw(st.booleans()), track_running_stats=not _rarely(draw, 6))


def _recurrent(draw, nn, shape):
    kind = draw(st.sampled_from(["LSTM", "LSTM", "GRU", "GRU", "RNN"]))
    hidden = draw(st.integers(1, 5))
    extra = {}
    if kind == "LSTM" and hidden > 1 and _rarely(draw, 6):
        extra["proj_size"] = draw(st.integers(1, hidden - 1))
    return getattr(nn, kind)(
        _channels(draw, shape[-1]), hidden, num_layers=draw(st.integers(1, 2)),
        bias=draw(st.booleans()), batch_first=not _rarely(draw, 7),
        bidirectional=draw(st.booleans()), **extra)


_ACTIVATIONS = ["ReLU", "ReLU6", "Sigmoid", "Tanh", "SiLU", "Hardswish", "SELU", "GELU",
                "LeakyReLU", "ELU", "Softplus"]
# Modules fastdl has no equivalent of (from_torch must name them).
_UNSUPPORTED = ["Upsample", "LayerNorm", "PReLU", "Hardtanh", "Mish", "CELU", "Softmin",
                "ZeroPad1d", "Unflatten", "Threshold", "LogSigmoid"]


def _activation(draw, nn):
    name = draw(st.sampled_from(_ACTIVATIONS))
    if name == "LeakyReLU":
        return nn.LeakyReLU(draw(st.sampled_from([0.01, 0.2, 0.0, -0.5, 2.0, 1e30])))
    if name == "ELU":
        return nn.ELU(draw(st.sampled_from([1.0, 0.5, 0.0, -1.0, 1e30])))
    if name == "Softplus":
        return nn.Softplus(beta=draw(st.sampled_from([1.0, 1.0, 2.0])),
                           threshold=draw(st.sampled_from([20.0, 20.0, 5.0])))
    if name == "GELU":
        return nn.GELU(draw(st.sampled_from(["none", "none", "tanh"])))
    if name == "ReLU":
        return nn.ReLU(inplace=draw(st.booleans()))
    return getattr(nn, name)()


def _unsupported(draw, nn, shape):
    name = draw(st.sampled_from(_UNSUPPORTED))
    if name == "Upsample":
        return nn.Upsample(scale_factor=2)
    if name == "LayerNorm":
        return nn.LayerNorm(shape[-1])
    if name == "ZeroPad1d":
        return nn.ZeroPad1d(1)
    if name == "Unflatten":
        return nn.Unflatten(1, (shape[0], 1))
    if name == "Threshold":
        return nn.Threshold(0.1, 0.0)
    if name == "Softmin":
        return nn.Softmin(1)
    return getattr(nn, name)()


def _module(draw, nn, shape):
    """One module for an input of `shape` (torch's layout, without the batch axis)."""
    n = len(shape)
    kinds = ["activation"] * 3 + ["linear"] * 2 + ["batchnorm", "softmax", "flatten", "dropout",
                                                   "unsupported", "embedding"]
    if 2 <= n <= 4:
        kinds += ["conv"] * 4 + ["conv_transpose"] * 2 + ["pool"] * 3 + ["adaptive"]
    if n == 2:
        kinds += ["recurrent"] * 3
    kind = draw(st.sampled_from(kinds))
    if kind == "activation":
        return _activation(draw, nn)
    if kind == "linear":
        return nn.Linear(_channels(draw, shape[-1]), draw(st.integers(0, 5) if _rarely(
            draw, 10) else st.integers(1, 5)), bias=draw(st.booleans()))
    if kind == "batchnorm":
        return _batchnorm(draw, nn, shape)
    if kind == "softmax":
        cls = draw(st.sampled_from([nn.Softmax, nn.LogSoftmax]))
        return cls(draw(st.sampled_from([None, -1, -2, 0, 1, 2, 3, 5])))
    if kind == "flatten":
        if not _rarely(draw, 3):
            return nn.Flatten()
        return nn.Flatten(draw(st.sampled_from([1, 0, 2, -1])),
                          draw(st.sampled_from([-1, 1, 2, -2])))
    if kind == "dropout":
        return draw(st.sampled_from([nn.Dropout(0.5), nn.Identity(), nn.AlphaDropout(0.2)]))
    if kind == "unsupported":
        return _unsupported(draw, nn, shape)
    if kind == "embedding":  # not first: its input is not token indices
        return nn.Embedding(10, 3)
    if kind == "conv":
        return _conv(draw, nn, shape, transposed=False)
    if kind == "conv_transpose":
        return _conv(draw, nn, shape, transposed=True)
    if kind == "pool":
        return _pool(draw, nn, shape)
    if kind == "adaptive":
        return _adaptive(draw, nn, shape)
    return _recurrent(draw, nn, shape)


# torch's own pooling loops over every tap of a window: with the huge sizes drawn here
# (2^31 taps) it runs for hours, in native code the hang alarm cannot stop. Modules with
# such sizes are converted and predicted by fastdl, not run by torch.
TORCH_RUNS_UP_TO = 64


def _huge(module):
    """Whether a pooling module in `module` has a size torch would loop over for hours."""
    for m in module.modules():
        if "Pool" not in type(m).__name__:
            continue
        for attr in ("kernel_size", "stride", "padding", "dilation"):
            value = getattr(m, attr, None)
            values = value if isinstance(value, tuple) else (value,)
            if any(isinstance(v, int) and v > TORCH_RUNS_UP_TO for v in values):
                return True
    return False


def _torch_forward(module, x, nn):
    """torch's output of `module` on x: a Sequential applies its children in turn, and an
    LSTM/GRU gives its output sequence (what from_torch converts them to)."""
    if isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward \
            and not module._forward_hooks and not module._forward_pre_hooks:
        for child in module:
            x = _torch_forward(child, x, nn)
        return x
    y = module(x)
    return y[0] if isinstance(module, nn.RNNBase) and isinstance(y, tuple) else y


def _output_shape(torch, nn, module, shape, tokens):
    """The shape (without the batch axis) of the module's output on a zero input of `shape`,
    or None where torch cannot run it."""
    x = torch.zeros((1,) + shape, dtype=torch.int64 if tokens else torch.float32)
    try:
        with torch.inference_mode():
            y, error = guarded_call(_torch_forward, module.eval(), x, nn)
    except Hang:
        return None
    if error is not None or not isinstance(y, torch.Tensor) or y.ndim < 1:
        return None
    return tuple(y.shape[1:])


def _package(draw, torch, nn, modules):
    """The modules as what from_torch is given: a Sequential (children named or numbered,
    some nested), a bare module, another container, a Sequential subclass with its own
    forward, a subclass of a supported module overriding forward, or with a forward
    hook."""
    how = draw(st.sampled_from(["sequential"] * 12 + ["named", "named", "nested", "nested",
                                                      "bare", "container", "subclass",
                                                      "overridden", "hook"]))
    if how == "bare" and len(modules) == 1:
        return modules[0]
    if how == "named":
        names = draw(st.lists(st.sampled_from(["conv", "a b", "x-1", "é", "layer_1", "7",
                                               "A"]), min_size=len(modules),
                              max_size=len(modules), unique=True))
        return nn.Sequential(OrderedDict(zip(names, modules)))
    if how == "nested" and len(modules) > 1:
        cut = draw(st.integers(1, len(modules) - 1))
        return nn.Sequential(nn.Sequential(*modules[:cut]), *modules[cut:])
    if how == "container":
        return _Container(nn.Sequential(*modules))
    if how == "subclass":
        return _Residual(*modules)
    if how == "overridden":
        i = draw(st.integers(0, len(modules) - 1))
        modules = list(modules)
        modules[i] = _Doubled(modules[i])
        return nn.Sequential(*modules)
    if how == "hook":
        i = draw(st.integers(0, len(modules) - 1))
        modules[i].register_forward_hook(lambda m, args, out: out * 2 if isinstance(
            out, torch.Tensor) else out)
    return nn.Sequential(*modules)


def _classes():
    """Module classes with their own forward (defined once torch is imported)."""
    torch, nn = _torch()
    global _Container, _Residual, _Doubled

    class _Container(nn.Module):
        def __init__(self, body):
            super().__init__()
            self.body = body

        def forward(self, x):
            return self.body(x)

    class _Residual(nn.Sequential):
        def forward(self, x):
            y = super().forward(x)
            return y + 1.0

    def _Doubled(module):  # noqa: N802 -- a subclass of the module's class, forward x 2
        cls = type(module)
        sub = type(f"Doubled{cls.__name__}", (cls,), {
            "forward": lambda self, *a: _double(cls.forward(self, *a))})
        module.__class__ = sub
        return module

    def _double(y):
        return tuple(_double(t) for t in y) if isinstance(y, tuple) else y * 2

    return torch, nn


@st.composite
def torch_calls(draw):
    """(module, input_shape, whether the input is token indices)."""
    torch, nn = _classes()
    tokens = _rarely(draw, 10)
    if tokens:
        shape = (draw(st.integers(1, 6)),)
        num = draw(st.integers(1, 12))
        first = nn.Embedding(num, draw(st.integers(1, 4)),
                             padding_idx=draw(st.sampled_from([None, None, 0, -1])),
                             max_norm=1.0 if _rarely(draw, 8) else None)
        modules = [first]
        current = _output_shape(torch, nn, first, shape, tokens=True)
    else:
        rank = draw(st.sampled_from([0, 1, 1, 2, 2, 2, 3]))  # spatial axes (0: features)
        if rank == 0:
            shape = (draw(st.integers(1, 6)),)
        else:
            shape = (draw(st.integers(1, 4)),) + tuple(draw(st.integers(1, 9))
                                                       for _ in range(rank))
        modules, current = [], shape
    torch.manual_seed(draw(st.integers(0, 2**16)))
    for _ in range(draw(st.sampled_from([1, 1, 2, 2, 3, 4])) - len(modules)):
        if current is None or not current or 0 in current:
            break
        try:
            module = _module(draw, nn, current)
        except (ValueError, RuntimeError):  # torch's constructor refused the configuration
            break
        modules.append(module)
        current = None if _huge(module) else _output_shape(torch, nn, module, current,
                                                           tokens=False)
    if not modules:
        modules = [nn.Identity()]
    from test_io_torch import randomize_bn  # (imports torch: here, where torch is)
    randomize_bn(nn.Sequential(*modules), draw(st.integers(0, 2**16)))
    module = _package(draw, torch, nn, modules)
    if not _rarely(draw, 5):
        module.eval()
    return module, shape, tokens


def _module_paths(module, nn):
    """What a message may name the module by: every module's path in it, and its type."""
    if not isinstance(module, nn.Module):
        return set()
    return {(name or type(m).__name__, type(m).__name__) for name, m in module.named_modules()}


def _names_the_module(message, paths):
    match = re.match(r"from_torch: (.+?) \((\w+)\)", message)
    return bool(match) and (match.group(1), match.group(2)) in paths


def _check_prediction(torch, nn, module, model, shape, tokens, spoiled):
    """The model's prediction against torch's on a random input of `shape`."""
    what = f"from_torch with {spoiled or 'valid arguments'}, input_shape {shape}, {module}"
    assert all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape), (
        f"{what}: accepted input_shape {shape!r}")
    if math.prod(shape) > MAX_CHECKED:
        return
    rng = np.random.default_rng(0)
    first = next((m for _, m in module.named_modules() if not list(m.children())), None)
    if tokens or isinstance(first, nn.Embedding):
        x = rng.integers(0, getattr(first, "num_embeddings", 1), (2,) + shape)
    else:
        x = rng.standard_normal((2,) + shape).astype(np.float32)
    module.eval()
    if _huge(module):  # fastdl's prediction alone: it runs, in the shape the model declares
        try:
            got, error = guarded_call(model.predict, x, verbose=0)
        except Hang as exc:
            pytest.fail(f"{what}: predict: {exc}"[:3000])
        assert error is None or isinstance(error, MemoryError), (
            f"{what}: predict raised {error!r}"[:3000])
        if error is None:
            assert got.shape == (2,) + tuple(model.output_shape[1:]), what[:3000]
        return
    try:
        with torch.inference_mode():
            want, error = guarded_call(_torch_forward, module, torch.from_numpy(x), nn)
    except Hang:
        return
    if isinstance(error, MemoryError) or "can't allocate memory" in str(error):
        return
    assert error is None, (f"{what}: from_torch made a model, but torch cannot run the "
                           f"module on this input: {error!r}"[:3000])
    assert isinstance(want, torch.Tensor), (
        f"{what}: from_torch made a model, but torch's module returns "
        f"{type(want).__name__}"[:3000])
    want = want.numpy()
    try:
        got, error = guarded_call(model.predict, x, verbose=0)
    except Hang as exc:
        pytest.fail(f"{what}: predict: {exc}"[:3000])
    assert error is None, f"{what}: predict raised {error!r}"[:3000]
    assert got.shape == want.shape, f"{what}: shape {got.shape}, torch's {want.shape}"[:3000]
    finite = np.abs(want[np.isfinite(want)])
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * scale, equal_nan=True,
                               err_msg=what[:3000])


@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 50,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_from_torch_converts_or_names_what_it_refuses(data):
    torch, nn = _torch()
    from fastdl.io import from_torch
    module, shape, tokens = data.draw(torch_calls(), label="module and input shape")
    kwargs = {"module": module, "input_shape": shape,
              "name": data.draw(st.sampled_from([None, "net"]), label="name")}
    spoiled = spoil(data, kwargs) if _rarely(data.draw, 4) else {}
    fastdl.utils.clear_session()
    try:
        model, error = guarded_call(from_torch, **kwargs)
    except Hang as exc:
        pytest.fail(f"from_torch with {spoiled}: {exc}")
    what = (f"from_torch with {spoiled or 'valid arguments'}, "
            f"input_shape {kwargs['input_shape']!r}")
    judge(error, what, lambda m: names_an_argument(m, {"module", "input_shape", "name"})
          or _names_the_module(m, _module_paths(kwargs["module"], nn)),
          detail=f"\n{kwargs['module']}")
    if error is None:
        _check_prediction(torch, nn, kwargs["module"], model, kwargs["input_shape"], tokens,
                          spoiled)


# --------------------------------------------------------------------------- bench CLI

BENCH_CASE = "dense-512to1000"  # 0.03 ms a call: a legal run takes about 0.4 s
# The base command line: one tiny case, no peers, one sample.
BENCH_BASE = {"--cases": BENCH_CASE, "--peers": "none", "--repeat": "1"}
HUGE_TEXT = [str(2**31), str(2**62), str(2**63), "9" * 40]


def _bench_values(folder):
    """{option: [(value, legal: True / False)]}: values legal for the run (exit 0) and
    values that are not (exit 2)."""
    bad_common = [("", False), ("abc", False), ("nan", False), ("-1", False), (" ", False)]
    import importlib.util
    can_plot = importlib.util.find_spec("matplotlib") is not None  # else --plot is refused
    return {
        "--threads": [("1", True), ("2,1", True), (" 2 ", True), ("1,1", True), ("0", False),
                      ("1,0", False), (",", False), ("1.5", False), ("1025", False)]
        + [(h, False) for h in HUGE_TEXT] + bad_common,
        "--cases": [(BENCH_CASE.upper(), True), (f"{BENCH_CASE},{BENCH_CASE}", True),
                    (f" {BENCH_CASE} ", True), (",", False), ("no-such-case", False),
                    (f"{BENCH_CASE},nope", False), ("-999999", False)]
        + [v for v in bad_common if v[0] != "-1"],  # (-1: in case names, --cases' substrings)
        "--peers": [("none", True), ("numpy", True), ("NUMPY", True), (",", False),
                    ("all,none", False), ("none,numpy", False), ("tensorflow", False)]
        + bad_common,
        "--repeat": [("1", True), ("3", True), ("0", False), ("1.5", False), ("inf", False),
                     ("10001", False), (str(10**9), False)]
        + [(h, False) for h in HUGE_TEXT] + bad_common,
        "--budget": [("0.01", True), ("1e-9", True), ("0", False), ("-0.0", False),
                     ("inf", False), ("-inf", False), ("1e308", False), ("601", False)]
        + [(h, False) for h in HUGE_TEXT] + bad_common,
        "--cache": [("warm", True), ("cold", True), ("both", True), ("hot", False),
                    ("WARM", False)] + bad_common,
        "--json": [(str(folder / "out.json"), True), (str(folder), False),
                   (str(folder / "no-such-dir" / "out.json"), False), ("", False)],
        "--seed": [("0", True), ("7", True), (str(2**64), True), ("1.5", False)]
        + bad_common,
        "--plot": [(str(folder / "ratios.png"), can_plot), (str(folder / "ratios.SVG"), can_plot),
                   (str(folder), False), (str(folder / "no-such-dir" / "r.png"), False),
                   (str(folder / "ratios.txt"), False), (str(folder / "ratios"), False),
                   ("", False), ("-1", False)],
        # (a real model's run: tests/test_bench_cli.py)
        "--onnx": [(str(folder), False), (str(folder / "none.onnx"), False)] + bad_common,
    }


# Flags and other words on the command line: (arguments, legal: True / False / None for
# either, the option a refusal names). -h prints the help and exits 0 wherever it comes,
# before what follows it is read.
_BENCH_WORDS = [(["--list"], True, "--list"), (["--models"], False, "--cases"),
                (["--training"], False, "--cases"),
                (["--models", "--training"], False, "--training"),
                (["--list=1"], False, "--list"), (["--frobnicate", "3"], False, "--frobnicate"),
                (["-x"], False, "-x"), (["--c", "warm"], False, "--c"),
                (["--see", "3"], True, "--seed"), (["-h"], None, "-h"),
                (["--help"], None, "--help")]


def _run_bench(argv):
    """(exit status, stdout, stderr) of the bench CLI run in-process on argv."""
    from fastdl.bench import cli
    out, err = io.StringIO(), io.StringIO()
    threads = fastdl.get_num_threads()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = cli.main(argv)
            except SystemExit as exc:  # argparse: --help, bad arguments
                status = exc.code
    finally:
        fastdl.set_num_threads(threads)
    return status, out.getvalue(), err.getvalue()


@st.composite
def bench_argvs(draw, folder):
    """(argv, legal: True / False / None, the options a refusal may name)."""
    values = _bench_values(folder)
    options, before, after = dict(BENCH_BASE), [], []
    legal, names = True, set()
    for option in draw(st.lists(st.sampled_from(sorted(values) + ["words"]), min_size=1,
                                max_size=2, unique=True), label="options spoiled"):
        if option == "words":
            words, ok, name = draw(st.sampled_from(_BENCH_WORDS), label="words")
            after += words
            legal = None if ok is None or legal is None else legal and ok
            names.add(name)
            continue
        value, ok = draw(st.sampled_from(values[option]), label=option)
        names.add(option)
        form = draw(st.sampled_from(["replace", "replace", "equals", "repeated"]),
                    label=f"{option} form")
        firsts = [v for v, ok in values[option] if ok]
        if form == "repeated" and firsts:  # a legal value first: argparse takes the last
            before += [option, draw(st.sampled_from(firsts), label=f"{option} first")]
        if form == "equals":
            options.pop(option, None)
            after.append(f"{option}={value}")
        else:
            options[option] = value
        legal = None if legal is None else legal and ok
        if option == "--budget" and "--repeat" not in names and not _rarely(draw, 4):
            options.pop("--repeat", None)  # the base's; else both: they exclude each other
    argv = before + [w for option, value in options.items() for w in (option, value)] + after
    given = {w.split("=")[0] for w in argv if w.startswith("--")}
    if {"--budget", "--repeat"} <= given:
        legal = None if legal is None else False
        names |= {"--budget", "--repeat"}
    return argv, legal, names


@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 50,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_bench_cli_runs_or_names_the_bad_option(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("bench")
    argv, legal, names = data.draw(bench_argvs(folder), label="argv")
    try:
        result, error = guarded_call(_run_bench, argv)
    except Hang as exc:
        pytest.fail(f"bench CLI {argv}: {exc}")
    assert error is None, f"bench CLI {argv}: raised {error!r}"
    status, out, err = result
    what = f"bench CLI {argv}"
    assert status in (0, 2), f"{what}: exit status {status}\n{out}\n{err}"[:3000]
    assert "Traceback" not in out + err, f"{what}: {err}"[:3000]
    if status == 2:
        assert legal is not True, f"{what}: refused legal values: {err}"[:3000]
        message = err.strip().splitlines()[-1] if err.strip() else ""
        assert any(name in message for name in names), (
            f"{what}: the message names none of {sorted(names)}: {err}"[:3000])
    else:
        assert legal is not False, f"{what}: exit 0 for values that are not legal\n{out}"[:3000]
        if not {"--list", "-h", "--help"} & set(argv):
            assert BENCH_CASE in out, f"{what}: no result row\n{out}"[:3000]
