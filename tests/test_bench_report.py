"""Tests of the bench's presentation (fastdl.bench.report, fastdl.bench.plot, the CLI's
--help and --plot): the per-peer summary, GB/s for memory-bound cases, the legend of
placeholders and markers, and the ratio chart."""

import json
import math
import sys

import pytest

import fastdl
from fastdl.bench import cli
from fastdl.bench.cases import (BatchNormCase, DenseCase, GemmCase, ModelCase, Pool2dCase,
                                gbytes_per_s, is_memory_bound, select_cases)
from fastdl.bench.peers.base import Library
from fastdl.bench.report import (LEGEND, ResultTable, scaling_table, summarize, summary_lines,
                                 to_json)
from fastdl.bench.suite import CaseResult, LibraryResult, SuiteRun

SMALL_RUN = ["--cases", "dense-512to1000", "--peers", "numpy", "--repeat", "2"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Named(Library):
    def __init__(self, name, label=None):
        self.name, self.label = name, label or name


FASTDL, TORCH, NCNN = Named("fastdl"), Named("torch"), Named("ncnn")


def _case_result(case, **results):
    return CaseResult(case, {name: LibraryResult(**fields) for name, fields in results.items()})


def _timed(ms, ratio=None, **fields):
    return dict(ms=ms, ratio=ratio, **fields)


UNSUPPORTED = dict(error="ImportError: no", unsupported=True)


def _gemm(name):
    return GemmCase(name, "", m=2, k=2, n=2)


def _run(threads=1):
    """Four cases: torch 2x slower, 2x faster, 4x slower than fastdl, then not run;
    ncnn never runs."""
    rows = [(2.0, 1.0), (0.5, 1.0), (4.0, 1.0), (None, 1.0)]
    cases = []
    for index, (ratio, ms) in enumerate(rows):
        torch = _timed(ms * ratio, ratio) if ratio else UNSUPPORTED
        cases.append(_case_result(_gemm(f"g{index}"), fastdl=_timed(ms, 1.0, gflops=1.0,
                                                                    pct_peak=10.0),
                                  torch=torch, ncnn=UNSUPPORTED))
    return SuiteRun(threads, "warm", 10.0, None, cases)


# --- the summary ------------------------------------------------------------------------

def test_summary_counts_won_lost_not_compared_and_the_geometric_mean():
    summaries = summarize(_run(), "fastdl")
    assert list(summaries) == ["torch", "ncnn"]
    torch, ncnn = summaries["torch"], summaries["ncnn"]
    assert (torch.won, torch.lost, torch.tied, torch.not_compared) == (2, 1, 0, 1)
    assert torch.geomean_ratio == pytest.approx((2.0 * 0.5 * 4.0) ** (1 / 3))
    assert (ncnn.won, ncnn.lost, ncnn.not_compared, ncnn.geomean_ratio) == (0, 0, 4, None)


def test_summary_lines_say_which_way_is_better():
    lines = summary_lines(_run(), FASTDL, [TORCH, Named("ncnn", "NC")])
    assert "> 1: fastdl faster" in lines[0]
    assert lines[1].split() == ["vs", "torch", "fastdl", "won", "2,", "lost", "1,", "could",
                                "not", "compare", "1;", "geometric", "mean", "ratio",
                                "1.59x", "over", "3", "cases", "(fastdl", "faster)"]
    assert "vs NC" in lines[2] and "no geometric mean (no case both ran)" in lines[2]
    slower = SuiteRun(1, "warm", None, None, [_case_result(
        _gemm("g"), fastdl=_timed(2.0, 1.0), torch=_timed(1.0, 0.5))])
    assert summary_lines(slower, FASTDL, [TORCH])[1].endswith(
        "ratio 0.50x over 1 case (fastdl slower)")
    assert summary_lines(SuiteRun(1, "warm", None, None, [_case_result(
        _gemm("g"), fastdl=_timed(1.0, 1.0))]), FASTDL, []) == []


def test_json_has_a_summary_per_run_and_keeps_its_keys():
    doc = to_json({}, [_run(1), _run(2)], [])
    for run in doc["runs"]:
        assert {"threads", "cache", "peak_gflops", "peak_error", "cases"} < set(run)
        assert run["summary"]["torch"] == {"won": 2, "lost": 1, "tied": 0, "not_compared": 1,
                                           "geomean_ratio": pytest.approx(4 ** (1 / 3))}
        case = run["cases"][0]
        assert {"name", "description", "kind", "flops", "output_shape", "results"} < set(case)
        assert case["memory_bound"] is False and case["bytes"] is None
    json.dumps(doc)  # serialisable


# --- GB/s for memory-bound cases ------------------------------------------------------------

MAXPOOL, BATCHNORM = select_cases("maxpool3x3s2-64x112")[0], select_cases("batchnorm-64x56")[0]


def test_bytes_of_a_pool_and_a_batchnorm_case():
    # max pool 3x3 s2 p1 on 64x112x112: reads 64*112*112 floats, writes 64*56*56
    assert MAXPOOL.bytes_moved == 4 * (64 * 112 * 112 + 64 * 56 * 56) == 4_014_080
    # batch norm on 64x56x56: x and y, and mean, var, weight, bias of 64 channels
    assert BATCHNORM.bytes_moved == 4 * (2 * 64 * 56 * 56 + 4 * 64) == 1_606_656
    batched = Pool2dCase("p", "", op="avg", channels=3, height=8, width=8, kernel=2, stride=2,
                         batch=2)
    assert batched.bytes_moved == 4 * (2 * 3 * 8 * 8 + 2 * 3 * 4 * 4)
    assert BatchNormCase("b", "", channels=2, height=3, width=5, batch=4).bytes_moved == \
        4 * (2 * 4 * 2 * 3 * 5 + 4 * 2)
    assert gbytes_per_s(MAXPOOL, 1e-3) == pytest.approx(4.01408)
    assert is_memory_bound(MAXPOOL) and is_memory_bound(BATCHNORM)
    assert not is_memory_bound(DenseCase("d", "", in_features=2, out_features=2))
    with pytest.raises(ValueError):
        gbytes_per_s(MAXPOOL, 0.0)


def test_memory_bound_rows_show_gbps_without_peak_and_json_has_them():
    table = ResultTable([MAXPOOL.name, BATCHNORM.name], FASTDL, [TORCH])
    pool = table.row(_case_result(MAXPOOL, fastdl=_timed(2.0, 1.0, gflops=1.0, pct_peak=5.0),
                                  torch=_timed(4.0, 2.0)))
    norm = table.row(_case_result(BATCHNORM, fastdl=_timed(0.5, 1.0, gflops=1.0,
                                                           pct_peak=5.0),
                                  torch=_timed(0.5, 1.0)))
    assert "2.0 GB/s" in pool and "%" not in pool  # 4.01408 MB in 2 ms
    assert "3.2 GB/s" in norm  # 1.606656 MB in 0.5 ms
    assert len(pool) == len(norm) == len(table.header())
    assert table.legend_lines() == [f"  {LEGEND['GB/s']}"]
    run = SuiteRun(1, "warm", 10.0, None, [_case_result(MAXPOOL, fastdl=_timed(2.0, 1.0),
                                                        torch=UNSUPPORTED)])
    [case] = to_json({}, [run], [])["runs"][0]["cases"]
    assert case["memory_bound"] is True and case["bytes"] == 4_014_080
    assert case["results"]["fastdl"]["gbytes_per_s"] == pytest.approx(2.00704)
    assert case["results"]["torch"]["gbytes_per_s"] is None


# --- legend: placeholders and markers explained once, only when printed ---------------------

def test_no_legend_when_every_cell_is_a_number():
    table = ResultTable(["g"], FASTDL, [TORCH])
    table.row(_case_result(_gemm("g"), fastdl=_timed(1.0, 1.0, gflops=2.0, pct_peak=50.0),
                           torch=_timed(2.0, 2.0)))
    assert table.legend_lines() == []


def test_each_placeholder_is_explained_once_after_its_first_table():
    table = ResultTable(["g"], FASTDL, [TORCH, NCNN])
    row = table.row(_case_result(_gemm("g"), fastdl=_timed(1.0, 1.0, gflops=2.0),
                                 torch=UNSUPPORTED,
                                 ncnn=dict(error="output mismatch: x", mismatch=True)))
    assert "n/a" in row and "MISMATCH" in row and len(row) == len(table.header())
    assert table.legend_lines() == [f"  {LEGEND[key]}" for key in ("-", "MISMATCH", "n/a")]
    table.row(_case_result(_gemm("g"), fastdl=dict(error="RuntimeError: x"),
                           torch=UNSUPPORTED, ncnn=dict(error="not run")))
    assert table.legend_lines() == [f"  {LEGEND['error']}"]  # '-' was explained already
    assert table.legend_lines() == []


def test_above_peak_is_marked_and_explained():
    table = ResultTable(["conv", "g"], FASTDL, [])
    over = table.row(_case_result(_gemm("conv"), fastdl=_timed(1.0, 1.0, gflops=150.0,
                                                               pct_peak=135.9)))
    under = table.row(_case_result(_gemm("g"), fastdl=_timed(1.0, 1.0, gflops=50.0,
                                                             pct_peak=45.3)))
    assert "effective GFLOP/s" in table.header()
    assert over.endswith("135.9%*") and under.endswith("45.3% ")
    assert over.index("%") == under.index("%") and len(over) == len(under)
    [line] = table.legend_lines()
    assert line.startswith("  *: %peak above 100%: Winograd")


def test_scaling_table_explains_its_dash_only_when_it_prints_one():
    def runs(second_ms):
        return [SuiteRun(t, "warm", None, "n/a", [_case_result(_gemm("g"), fastdl=_timed(ms))])
                for t, ms in ((1, 4.0), (2, second_ms))]
    assert not any("-:" in line for line in scaling_table(runs(2.0), "fastdl", "warm"))
    lines = scaling_table(runs(None), "fastdl", "warm")
    assert lines[2].split()[-1] == "-" and lines[-1].startswith("  -: fastdl has no time")


# --- the CLI: --help, --plot -------------------------------------------------------------

def test_help_prints_no_double_percent(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "%%" not in text and "% of the measured" in text and "--plot" in text


@pytest.fixture
def restore_threads():
    threads = fastdl.get_num_threads()
    yield
    fastdl.set_num_threads(threads)


def test_small_run_prints_summary_and_plots(tmp_path, capsys, restore_threads):
    pytest.importorskip("matplotlib")
    out = tmp_path / "ratios.png"
    assert cli.main(SMALL_RUN + ["--plot", str(out)]) == 0
    text = capsys.readouterr().out
    assert "summary (ratio = peer ms / fastdl ms, > 1: fastdl faster):" in text
    assert "vs numpy  fastdl won" in text and "over 1 case (fastdl" in text
    assert f"plot written to {out}" in text
    assert "-:" not in text and "*:" not in text and "GB/s" not in text
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_plot_draws_every_run_of_any_suite(tmp_path):
    pytest.importorskip("matplotlib")
    from fastdl.bench.plot import write_plot
    cases = [ModelCase("resnet18-b1", "", model="resnet18"),
             ModelCase("cifar_cnn-b1", "", model="cifar_cnn")]
    runs = [SuiteRun(threads, "warm", None, None, [
        _case_result(cases[0], fastdl=_timed(10.0, 1.0), torch=_timed(30.0, 3.0),
                     onnxruntime=_timed(5.0, 0.5)),
        _case_result(cases[1], fastdl=_timed(1.0, 1.0), torch=_timed(1.5, 1.5),
                     onnxruntime=UNSUPPORTED)]) for threads in (1, 2)]
    path = tmp_path / "models.svg"
    write_plot(str(path), runs, FASTDL, [TORCH, Named("onnxruntime", "ort")],
               {"cpu": "test CPU", "fastdl": {"version": "0"}})
    svg = path.read_text()
    assert "<svg" in svg and "1 thread, warm cache" in svg and "2 threads, warm cache" in svg
    write_plot(str(tmp_path / "none.png"), runs[:1], FASTDL, [], {})  # --peers none
    assert (tmp_path / "none.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize("target, message", [
    ("{tmp}", "--plot: cannot write"),  # a directory
    ("{tmp}/no-such-dir/out.png", "--plot: cannot write"),
    ("{tmp}/out.txt", "--plot: expected an image file name ending in .png, .svg, .pdf"),
    ("{tmp}/out", "--plot: expected an image file name"),
])
def test_plot_refuses_a_path_it_cannot_write_before_running(target, message, tmp_path,
                                                            capsys):
    pytest.importorskip("matplotlib")
    with pytest.raises(SystemExit) as info:
        cli.main(SMALL_RUN + ["--plot", target.replace("{tmp}", str(tmp_path))])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err.strip().splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


def test_plot_without_matplotlib_names_the_option_and_the_extra(tmp_path, capsys,
                                                                monkeypatch):
    for module in ("matplotlib", "matplotlib.backend_bases", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    with pytest.raises(SystemExit) as info:
        cli.main(SMALL_RUN + ["--plot", str(tmp_path / "out.png")])
    assert info.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--plot" in message and 'pip install "fastdl[plot]"' in message
    assert list(tmp_path.iterdir()) == []


def test_plot_refuses_a_matplotlib_too_old_for_its_layout(monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    from fastdl.bench.plot import check_plot_path
    assert check_plot_path("out.PNG") == "png"
    monkeypatch.setattr(matplotlib, "__version__", "3.5.3")
    with pytest.raises(ValueError, match=r"matplotlib >= 3.7, found 3.5.3: pip install"):
        check_plot_path("out.png")


def test_geometric_mean_is_the_mean_of_logs():  # the contract the summary documents
    ratios = [3.0, 1 / 3.0, 2.0]
    run = SuiteRun(1, "warm", None, None, [
        _case_result(_gemm(f"g{i}"), fastdl=_timed(1.0, 1.0), torch=_timed(r, r))
        for i, r in enumerate(ratios)])
    mean = summarize(run, "fastdl")["torch"].geomean_ratio
    assert math.log(mean) == pytest.approx(sum(map(math.log, ratios)) / 3)
