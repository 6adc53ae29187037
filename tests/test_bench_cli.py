"""Tests of the benchmark suite (fastdl.bench): the CLI end to end, and its pure helpers."""

import dataclasses
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastdl.io

from fastdl.bench.cases import (DEFAULT_SUITE, MODEL_SUITE, Conv2dCase, DenseCase, GemmCase, flops,
                                gflops, make_data, select_cases)
from fastdl.bench.cli import parse_threads
from fastdl.bench.peers import ALL_PEERS, select_peers
from fastdl.bench.peers.base import IDLE_SPIN_S, Library, Runner, Unsupported
from fastdl.bench.peers.ncnn_peer import param_text, weight_bin
from fastdl.bench.report import ResultTable, fmt_ms, fmt_ratio, scaling_table
from fastdl.bench.suite import (CaseResult, LibraryResult, Mismatch, SuiteRun, check_output,
                                prepare_checked, problems, run_case)
from fastdl.bench.timing import TimingSettings, measure_interleaved

REPO_ROOT = Path(__file__).resolve().parents[1]
SMALL_CASE = "dense-512to1000"
LIBRARY_KEYS = {"ms", "gflops", "pct_peak", "ratio", "error"}


# --- the CLI, end to end ---------------------------------------------------------------

def _run_cli(*args, cwd):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "fastdl.bench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_small_case_writes_json_with_positive_numbers(tmp_path):
    out = tmp_path / "out.json"
    proc = _run_cli("--cases", SMALL_CASE, "--repeat", "3", "--json", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert SMALL_CASE in proc.stdout and "GFLOP/s" in proc.stdout

    doc = json.loads(out.read_text())
    assert doc["ok"] is True and doc["problems"] == []
    assert {"fastdl", "cpu", "peers", "threads"} <= set(doc["meta"])
    [run] = doc["runs"]
    assert run["threads"] == 1 and run["cache"] == "warm"
    [case] = run["cases"]
    assert case["name"] == SMALL_CASE and case["flops"] == 2 * 512 * 1000
    results = case["results"]
    # every peer with a dense operation (the training-only Keras/TF peer sits this out)
    assert set(results) == {"fastdl", *(p.name for p in ALL_PEERS if p.supports("dense"))}
    assert "keras_tf" not in results
    for name, result in results.items():
        assert LIBRARY_KEYS <= set(result), name
        if result["error"] is None:
            assert result["ms"] > 0 and result["gflops"] > 0 and result["ratio"] > 0, name
            assert result["samples"] == 3, name
        else:
            assert result["ms"] is None, name
    assert results["fastdl"]["error"] is None and results["fastdl"]["ratio"] == 1.0


def test_cli_list_and_bad_arguments(tmp_path):
    listed = _run_cli("--list", cwd=tmp_path)
    assert listed.returncode == 0
    assert all(case.name in listed.stdout for case in DEFAULT_SUITE)
    bad = _run_cli("--cases", "no-such-case", cwd=tmp_path)
    assert bad.returncode == 2 and "no case matches" in bad.stderr


def test_cli_models_suite_runs_a_model_against_torch(tmp_path):
    """--models: a whole model, fastdl's output checked against PyTorch's, with the
    overhead table (model time vs the sum of its steps)."""
    pytest.importorskip("torch")
    listed = _run_cli("--models", "--list", cwd=tmp_path)
    assert listed.returncode == 0
    assert all(name in listed.stdout for name in ("cifar_cnn-b1", "resnet18-b1",
                                                   "mobilenet_v1-b1"))
    out = tmp_path / "models.json"
    proc = _run_cli("--models", "--cases", "cifar_cnn-b1", "--peers", "torch", "--repeat",
                    "3", "--json", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "model overhead of fastdl" in proc.stdout
    [case] = json.loads(out.read_text())["runs"][0]["cases"]
    fastdl_result, torch_result = case["results"]["fastdl"], case["results"]["torch"]
    assert case["kind"] == "model" and case["flops"] == 2 * 1762184
    assert 0 < fastdl_result["steps_ms"] and fastdl_result["ms"] > 0
    assert torch_result["error"] is None and torch_result["max_abs_diff"] < 1e-4


def test_cli_onnx_times_a_users_model_against_onnx_runtime(tmp_path):
    """--onnx FILE: the user's model through load_onnx, ONNX Runtime on the same file,
    outputs compared; the MACs its Conv and Gemm nodes do."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    import onnx_models as om
    path = tmp_path / "squeeze.onnx"
    path.write_bytes(om.exported(om.randomized(om.SqueezeNet11(classes=10)), (1, 3, 64, 64)))
    out = tmp_path / "onnx.json"
    proc = _run_cli("--onnx", str(path), "--peers", "all", "--repeat", "3", "--json",
                    str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [case] = json.loads(out.read_text())["runs"][0]["cases"]
    assert case["kind"] == "onnx_file" and case["name"] == "squeeze"
    assert case["output_shape"] == [1, 10]
    files = {"onnxruntime"} | ({"openvino"} if importlib.util.find_spec("openvino") else set())
    assert set(case["results"]) == {"fastdl", *files}  # the peers that run files
    for peer in files:
        assert case["results"][peer]["max_abs_diff"] < 1e-4, peer
    # SqueezeNet 1.1's MACs at 64x64: each Conv's outputs x (its input channels x taps)
    model = fastdl.io.load_onnx(str(path))
    macs = sum(math.prod(layer.output_shape[1:]) * math.prod(layer.kernel_size) *
               layer.get_weights()[0].shape[-2]
               for layer in model.layers if type(layer).__name__ == "Conv2D")
    assert case["flops"] == 2 * macs


def test_onnx_case_whose_output_shape_onnx_cannot_infer(tmp_path):
    """ShuffleNet's reshapes take their shapes from Shape nodes: ONNX's shape inference
    leaves the output unknown, fastdl's import gives it."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import onnx_models as om
    from fastdl.bench.onnx_case import onnx_file_case
    path = tmp_path / "shuffle.onnx"
    path.write_bytes(om.exported(om.randomized(om.ShuffleNetV2(classes=7)), (1, 3, 32, 32)))
    case = onnx_file_case(str(path))
    assert case.output_shape == (1, 7) and case.inputs == (("x", (1, 3, 32, 32)),)
    assert case.macs > 0


@pytest.mark.parametrize("argv,message", [
    (["--onnx", "{tmp}/none.onnx"], "--onnx: no ONNX file at"),
    (["--onnx", "{tmp}/bad.onnx"], "--onnx: .* is not an ONNX model"),
    (["--onnx", "{tmp}/bad.onnx", "--models"], "--models, --training and --onnx"),
])
def test_cli_onnx_refuses_bad_files_before_running(argv, message, tmp_path, capsys):
    pytest.importorskip("onnx")
    from fastdl.bench import cli
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07 not a protobuf \xff")
    with pytest.raises(SystemExit) as info:
        cli.main([a.replace("{tmp}", str(tmp_path)) for a in argv] + ["--peers", "none"])
    assert info.value.code == 2
    assert re.search(message, capsys.readouterr().err.strip().splitlines()[-1])


# --- cases: FLOPs, shapes, selection ---------------------------------------------------

def test_flops_of_resnet_conv3x3_layer():
    case = select_cases("conv3x3-64x56")[0]
    assert case.output_shape == (1, 64, 56, 56)
    assert flops(case) == 2 * 64 * 64 * 9 * 56 * 56


def test_flops_and_shapes_of_strided_depthwise_gemm_and_dense():
    stem = Conv2dCase("stem", "", cin=3, cout=64, height=224, width=224, kernel=7,
                      stride=2, padding=3)
    assert stem.output_shape == (1, 64, 112, 112)
    assert stem.macs == 64 * 112 * 112 * 3 * 49
    depthwise = Conv2dCase("dw", "", cin=32, cout=32, height=112, width=112, kernel=3,
                           padding=1, groups=32)
    assert depthwise.macs == 32 * 112 * 112 * 9
    dilated = Conv2dCase("dil", "", cin=1, cout=1, height=10, width=10, kernel=3, dilation=2)
    assert dilated.output_shape == (1, 1, 6, 6)
    assert flops(GemmCase("g", "", m=2, k=3, n=4)) == 2 * 2 * 3 * 4
    assert flops(DenseCase("d", "", in_features=512, out_features=1000, batch=2)) == \
        2 * 2 * 512 * 1000


def test_gflops_from_seconds():
    case = GemmCase("g", "", m=1000, k=1000, n=500)  # 1 GFLOP
    assert gflops(case, 0.5) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        gflops(case, 0.0)


@pytest.mark.parametrize("case", DEFAULT_SUITE, ids=lambda case: case.name)
def test_make_data_is_reproducible_float32_and_matches_the_case(case):
    first, second = make_data(case, seed=3), make_data(case, seed=3)
    for key, array in first.items():
        assert array.dtype == np.float32 and array.flags.c_contiguous
        np.testing.assert_array_equal(array, second[key])
    assert not np.array_equal(next(iter(first.values())),
                              next(iter(make_data(case, seed=4).values())))


def test_select_cases_exact_substring_order_and_errors():
    assert [c.name for c in select_cases("conv3x3-512x7")] == ["conv3x3-512x7"]
    assert [c.name for c in select_cases("GEMM")] == ["gemm-256x1024x1024",
                                                      "gemm-1024x1024x1024"]
    # suite order, no duplicates
    assert [c.name for c in select_cases("dense, conv3x3-64x56,dense")] == [
        "conv3x3-64x56", "dense-512to1000"]
    with pytest.raises(ValueError, match="no case matches"):
        select_cases("conv9x9")
    with pytest.raises(ValueError):
        select_cases(" , ")


def test_default_suite_names_are_unique():
    names = [case.name for case in DEFAULT_SUITE]
    assert len(names) == len(set(names))


# --- command-line helpers ----------------------------------------------------------------

def test_parse_threads():
    assert parse_threads("1") == [1]
    assert parse_threads("1,2,2,4") == [1, 2, 4]
    for bad in ("0", "a", "", "1,-2"):
        with pytest.raises(ValueError):
            parse_threads(bad)


def test_select_peers_by_name_or_label():
    assert [p.name for p in select_peers("all")] == [p.name for p in ALL_PEERS]
    assert select_peers("none") == []
    assert [p.name for p in select_peers("numpy,ort")] == ["onnxruntime", "numpy"]
    with pytest.raises(ValueError, match="unknown peer"):
        select_peers("tensorflow")
    with pytest.raises(ValueError, match="no peer given"):
        select_peers(" , ")


@pytest.mark.parametrize("argv, option", [
    (["--budget", "nan"], "--budget"),  # ran forever (NaN passed the > 0 check)
    (["--budget", "inf"], "--budget"),
    (["--budget", "1e308"], "--budget"),
    (["--repeat", "1000000000"], "--repeat"),  # ran for days
    (["--threads", str(2**31)], "--threads"),  # a pool of 2^31 threads
    (["--seed", "-1"], "--seed"),  # NumPy's traceback after the header
    (["--cases", ""], "--cases"),  # ran the whole suite
    (["--cases", "no-such-case"], "--cases"),  # the message did not name the option
    (["--peers", ""], "--peers"),  # no peers, silently
    (["--peers", "tensorflow"], "--peers"),
    (["--json", "{tmp}"], "--json"),  # a directory: a traceback after the whole run
    (["--json", "{tmp}/no-such-dir/out.json"], "--json"),
    (["--list", "--threads", "0"], "--threads"),  # --list skipped the checks
])
def test_cli_refuses_bad_values_before_running_and_names_the_option(argv, option, tmp_path,
                                                                     capsys):
    """Found by tests/test_fuzz_io.py: exit 2 with the option named, nothing run."""
    from fastdl.bench import cli
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--cases" not in argv:
        argv += ["--cases", SMALL_CASE]
    with pytest.raises(SystemExit) as info:
        cli.main(argv + ["--peers", "none"] if "--peers" not in argv else argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert option in captured.err.strip().splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


def test_cli_list_shows_the_selected_cases(capsys):
    from fastdl.bench import cli
    assert cli.main(["--list", "--cases", "dense"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 1 and listed[0].startswith(SMALL_CASE)


# --- output checking ---------------------------------------------------------------------

def test_check_output_accepts_rounding_and_rejects_real_differences():
    reference = np.linspace(-50.0, 50.0, 12).reshape(3, 4)
    assert check_output((3, 4), None, reference.astype(np.float32)) is None
    close = (reference * (1 + 5e-5)).astype(np.float32)
    assert check_output((3, 4), reference, close) < 1e-2
    with pytest.raises(Mismatch, match="shape"):
        check_output((4, 3), reference, close)
    wrong = close.copy()
    wrong[1, 2] += 1.0
    with pytest.raises(Mismatch, match="exceeds"):
        check_output((3, 4), reference, wrong)
    with pytest.raises(Mismatch, match="NaN"):
        check_output((3, 4), None, np.full((3, 4), np.nan, np.float32))


# --- timing ------------------------------------------------------------------------------

class FakeClock:
    """A clock in ns that advances only when the fake kernels 'run'."""

    def __init__(self):
        self.now = 0

    def __call__(self):
        return self.now

    def kernel(self, ns):
        def call():
            self.now += ns
        return call


def test_measure_interleaved_repeat_and_batching():
    clock = FakeClock()
    calls = {"slow": clock.kernel(2_000_000), "fast": clock.kernel(1_000)}
    settings = TimingSettings(repeat=4, warmup_s=0.0, sample_target_s=1e-3)
    timings = measure_interleaved(calls, settings, clock=clock)
    assert timings["slow"].samples == 4 and timings["slow"].calls_per_sample == 1
    assert timings["fast"].calls_per_sample == 1000
    assert timings["slow"].median_ms == pytest.approx(2.0)
    assert timings["fast"].median_ms == pytest.approx(0.001)


def test_measure_interleaved_budget_and_cold_flush():
    clock = FakeClock()
    flushes = []
    settings = TimingSettings(budget_s=0.01, warmup_s=0.0, min_samples=3, cold=True)
    timings = measure_interleaved({"k": clock.kernel(4_000_000)}, settings,
                                  flush=lambda: flushes.append(1), clock=clock)
    assert timings["k"].samples == 3  # 3 x 4 ms >= 10 ms budget
    assert len(flushes) == 3
    with pytest.raises(ValueError):
        measure_interleaved({"k": clock.kernel(1)}, settings, clock=clock)


def test_measure_interleaved_alternates_blocks_and_settles_after_spinning_library():
    clock = FakeClock()
    order, pauses = [], []

    def kernel(name):
        def call():
            order.append(name)
            clock.now += 1_000_000
        return call

    settings = TimingSettings(budget_s=0.004, rounds=2, warmup_s=0.0, min_samples=1)
    timings = measure_interleaved({"a": kernel("a"), "b": kernel("b")}, settings,
                                  settle_s={"b": 0.1}, clock=clock, sleep=pauses.append)
    measured = order[4:]  # after two warm-up calls each
    # each block: 1 untimed call + 1 sample = half the budget; round 2 starts with b
    assert measured == ["a", "a", "b", "b", "b", "b", "a", "a"]
    assert timings["a"].samples == timings["b"].samples == 2
    assert pauses == [0.1, 0.1]


# --- run_case with stand-in libraries ----------------------------------------------------

class StandIn(Library):
    """A library computing ``a @ b`` (optionally wrong), or failing."""

    def __init__(self, name, offset=0.0, fail=False):
        self.name = self.label = name
        self.offset, self.fail = offset, fail

    def prepare_gemm(self, case, data, threads):
        if self.fail:
            raise RuntimeError("boom")
        a, b = data["a"], data["b"]
        return Runner(lambda: a @ b + np.float32(self.offset))


def test_run_case_checks_times_and_records_failures():
    case = GemmCase("g", "", m=8, k=16, n=8)
    settings = TimingSettings(repeat=2, warmup_s=0.0)
    peers = [StandIn("good"), StandIn("wrong", offset=0.5), StandIn("broken", fail=True)]
    result = run_case(case, StandIn("fastdl"), peers, 1, settings, peak_gflops=100.0)
    fastdl, good, wrong, broken = (result.results[n] for n in
                                   ("fastdl", "good", "wrong", "broken"))
    assert fastdl.error is None and fastdl.ratio == 1.0 and fastdl.pct_peak > 0
    assert good.error is None and good.ms > 0 and good.max_abs_diff == 0.0
    assert wrong.mismatch and wrong.ms is None and "mismatch" in wrong.error
    assert broken.error == "RuntimeError: boom" and not broken.unsupported
    run = SuiteRun(1, "warm", 100.0, None, [result])
    assert [p.split(": ")[1] for p in problems([run], "fastdl")] == ["wrong"]


def test_spinning_peers_settle_after_multithreaded_calls_only():
    class Spinning(StandIn):
        spins_when_idle = True

    case = GemmCase("g", "", m=2, k=2, n=2)
    data = {"a": np.ones((2, 2), np.float32), "b": np.ones((2, 2), np.float32)}
    assert Spinning("s").prepare(case, data, 1).settle_s == 0.0
    assert Spinning("s").prepare(case, data, 2).settle_s == IDLE_SPIN_S
    assert StandIn("quiet").prepare(case, data, 2).settle_s == 0.0
    # every installed-or-not peer whose pool spins says so
    assert {p.label for p in ALL_PEERS if p.spins_when_idle} >= {"torch", "ort", "ncnn"}


def test_run_case_unsupported_peer_and_failing_fastdl():
    case = Conv2dCase("c", "", cin=1, cout=1, height=4, width=4, kernel=3)
    settings = TimingSettings(repeat=1, warmup_s=0.0)
    result = run_case(case, StandIn("fastdl"), [StandIn("peer")], 1, settings, None)
    assert result.results["fastdl"].unsupported
    assert result.results["peer"].error.startswith("not run")
    run = SuiteRun(1, "warm", None, "n/a", [result])
    assert len(problems([run], "fastdl")) == 1


def test_library_without_the_operation_is_unsupported():
    with pytest.raises(Unsupported):
        StandIn("x").prepare(DenseCase("d", "", in_features=2, out_features=2), {}, 1)


# --- ncnn model writing -------------------------------------------------------------------

def test_ncnn_param_text_and_weight_bin():
    text = param_text([("Input", "in", [], ["x"], {0: 4, 1: 3}),
                       ("InnerProduct", "fc", ["x"], ["y"], {0: 2, 1: 1, 2: 8})])
    assert text.splitlines() == ["7767517", "2 2", "Input in 0 1 x 0=4 1=3",
                                 "InnerProduct fc 1 1 x y 0=2 1=1 2=8"]
    blob = weight_bin(np.ones((2, 4), np.float32), np.zeros(2, np.float32))
    assert len(blob) == 4 + 8 * 4 + 2 * 4 and blob[:4] == b"\0\0\0\0"


# --- report formatting ---------------------------------------------------------------------

def test_number_formatting():
    assert fmt_ms(None) == "-"
    assert fmt_ms(0.07192) == "0.072" and fmt_ms(12.3456) == "12.346"
    assert fmt_ms(1234.56) == "1234.6"
    assert fmt_ratio(None) == "" and fmt_ratio(1.5) == "1.50x"


def _case_result(case, **results):
    return CaseResult(case, {name: LibraryResult(**fields) for name, fields in results.items()})


def test_result_table_rows_align_with_header_and_show_status():
    case = GemmCase("gemm-small", "", m=2, k=2, n=2)
    fastdl, peers = StandIn("fastdl"), [StandIn("torch"), StandIn("ort"), StandIn("ncnn")]
    table = ResultTable([case.name, "a-much-longer-case-name"], fastdl, peers)
    row = table.row(_case_result(
        case, fastdl=dict(ms=2.0, gflops=10.0, pct_peak=50.0, ratio=1.0),
        torch=dict(ms=3.0, ratio=1.5),
        ort=dict(error="ImportError: missing", unsupported=True),
        ncnn=dict(error="output mismatch: ...", mismatch=True)))
    header = table.header()
    assert len(row) == len(header)
    assert header.index("|") == row.index("|")
    assert "1.50x" in row and "MISMATCH" in row and "| " + " " * 8 + "-" in row
    assert "50.0%" in row

    failed = table.row(_case_result(case, fastdl=dict(error="RuntimeError: x"),
                                    torch=dict(error="not run")))
    assert len(failed) == len(header) and "error" in failed


def test_scaling_table_shows_speedup_over_first_thread_count():
    case = GemmCase("g", "", m=2, k=2, n=2)
    runs = [SuiteRun(t, "warm", None, "n/a",
                     [_case_result(case, fastdl=dict(ms=ms))]) for t, ms in ((1, 4.0), (2, 2.5))]
    lines = scaling_table(runs, "fastdl", "warm")
    assert "1T ms" in lines[1] and "2T ms" in lines[1]
    assert lines[2].split() == ["g", "4.000", "2.500", "1.60x"]
    assert scaling_table(runs[:1], "fastdl", "warm") == []


def test_scaling_table_warns_when_the_peak_does_not_scale():
    case = GemmCase("g", "", m=2, k=2, n=2)
    runs = [SuiteRun(t, "warm", peak, None, [_case_result(case, fastdl=dict(ms=1.0))])
            for t, peak in ((1, 100.0), (2, 120.0), (4, 390.0))]
    warnings = [line for line in scaling_table(runs, "fastdl", "warm") if "WARNING" in line]
    assert len(warnings) == 1 and "at 2 threads" in warnings[0]


def test_cli_training_suite_times_a_step_against_torch(tmp_path):
    """--training: one Adam step of the CIFAR CNN, the first step's loss checked against
    PyTorch's on the same weights and batch, fit's overhead in a note."""
    pytest.importorskip("torch")
    listed = _run_cli("--training", "--list", cwd=tmp_path)
    assert listed.returncode == 0 and "train-cifar_cnn-b32" in listed.stdout
    out = tmp_path / "training.json"
    proc = _run_cli("--training", "--cases", "cifar", "--peers", "torch", "--repeat", "3",
                    "--json", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "fit costs" in proc.stdout
    [case] = json.loads(out.read_text())["runs"][0]["cases"]
    assert case["kind"] == "train_step" and case["flops"] == 3 * 2 * 1762184 * 32
    assert case["results"]["torch"]["error"] is None
    assert case["results"]["torch"]["max_abs_diff"] < 1e-4
    assert _run_cli("--training", "--models", cwd=tmp_path).returncode == 2


# --- OpenVINO and ncnn-by-pnnx peers --------------------------------------------------------

def _case(name, suite=DEFAULT_SUITE):
    return next(case for case in suite if case.name == name)


def _fastdl_output(case, data):
    from fastdl.bench.subject import Fastdl
    runner = Fastdl().prepare(case, data, 1)
    return np.asarray(runner.to_numpy(runner.call()))


@pytest.mark.parametrize("name, threads", [("conv3x3-512x7", 1), ("depthwise3x3-512x14", 2),
                                           ("convT4x4s2-64to32x28", 1), ("lstm-b1-64to128x100", 1),
                                           ("maxpool3x3s2-64x112", 1), ("dense-512to1000", 2)])
def test_openvino_peer_runs_the_kernel_cases_in_fp32(name, threads):
    """The ONNX graph of each kind of case, compiled by OpenVINO for fp32 on `threads`
    threads: fastdl's output within the suite's tolerance (bf16 would not be)."""
    pytest.importorskip("openvino")
    pytest.importorskip("onnx")
    from fastdl.bench.peers.openvino_peer import OpenVinoPeer
    case = _case(name)
    data = make_data(case)
    peer = OpenVinoPeer()
    runner, output, diff = prepare_checked(peer, case, data, threads, _fastdl_output(case, data))
    assert diff is not None and runner.settle_s == (IDLE_SPIN_S if threads > 1 else 0)
    # no thread left pinned to some of the cores (the libraries timed next need them)
    anywhere = os.sched_getaffinity(0)
    assert all(os.sched_getaffinity(int(t)) == anywhere for t in os.listdir("/proc/self/task"))
    assert "-" not in peer.version()  # 2026.4.1, not its build and branch


def test_openvino_and_ncnn_peers_run_a_whole_model():
    """A model_zoo model: OpenVINO on its ONNX export, ncnn on pnnx's conversion (fp32
    weights: with pnnx's default fp16 the probabilities are 2e-6 off), both agreeing with
    PyTorch."""
    pytest.importorskip("torch")
    from fastdl.bench.model_zoo import torch_model
    from fastdl.bench.peers.ncnn_peer import NcnnPeer
    from fastdl.bench.peers.openvino_peer import OpenVinoPeer
    import torch
    case = _case("cifar_cnn-b1", MODEL_SUITE)
    data = make_data(case)
    module = torch_model(case.model)  # cached: its parameters must not be inference tensors
    with torch.inference_mode():
        want = module(torch.from_numpy(data["x"])).numpy()
    ran = 0
    for peer, modules in ((OpenVinoPeer(), ("openvino", "onnx")), (NcnnPeer(), ("ncnn", "pnnx"))):
        if all(importlib.util.find_spec(m) for m in modules):
            _, output, diff = prepare_checked(peer, case, data, 1, want)
            assert diff < 5e-7, (peer.name, diff)
            ran += 1
    if not ran:
        pytest.skip("neither openvino nor ncnn with pnnx installed")


def test_ncnn_peer_runs_models_at_batch_1_and_names_what_pnnx_cannot_convert():
    pytest.importorskip("ncnn")
    pytest.importorskip("pnnx")
    pytest.importorskip("torch")
    from fastdl.bench.peers.ncnn_peer import NcnnPeer
    peer = NcnnPeer()
    batch32 = _case("cifar_cnn-b32", MODEL_SUITE)
    with pytest.raises(Unsupported, match="batch 1 only"):
        peer.prepare(batch32, make_data(batch32), 1)
    lstm = _case("conv1d_lstm-b32", MODEL_SUITE)
    one = dataclasses.replace(lstm, name="conv1d_lstm-b1", batch=1)
    try:
        prepare_checked(peer, one, make_data(one), 1, None)
    except Unsupported as exc:  # the LSTM's h_n[0] (torch.unbind) has no ncnn layer
        assert "pnnx could not convert" in str(exc) and "." in str(exc).split("convert")[1]


def test_output_to_sends_native_and_python_output_to_the_file(tmp_path):
    log = tmp_path / "log"
    script = ("import os\nfrom fastdl.bench.peers.ncnn_peer import _output_to\n"
              f"with _output_to({str(log)!r}):\n"
              "    print('from python')\n"
              "    os.write(1, b'from fd 1\\n')\n"
              "    os.write(2, b'from fd 2\\n')\n"
              "print('after')\n")
    here = str(Path(fastdl.__file__).resolve().parents[1])  # the fastdl this test imported
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [
        here, os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (proc.stdout, proc.stderr) == ("after\n", "")
    assert log.read_text() == "from python\nfrom fd 1\nfrom fd 2\n"
