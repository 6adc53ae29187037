"""fastdl.set_num_threads: counts, validation, big_cores_only (with a fake sysfs)."""
import os

import numpy as np
import pytest

import fastdl
from fastdl import _threads


def _fake_sysfs(tmp_path, capacities):
    for cpu, capacity in capacities.items():
        d = tmp_path / f"cpu{cpu}"
        d.mkdir()
        if capacity is not None:
            (d / "cpu_capacity").write_text(f"{capacity}\n")
    return str(tmp_path)


def test_big_cores_picks_the_highest_capacity(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    sysfs = _fake_sysfs(tmp_path, {c: (462 if c < 4 else 1024) for c in range(8)})
    assert _threads.big_cores(sysfs) == [4, 5, 6, 7]


def test_big_cores_falls_back_to_max_frequency_then_to_all(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    sysfs = _fake_sysfs(tmp_path, {0: None, 1: None, 2: None})
    for cpu, freq in ((0, 1800000), (1, 2362000), (2, 2362000)):
        (tmp_path / f"cpu{cpu}" / "cpufreq").mkdir()
        (tmp_path / f"cpu{cpu}" / "cpufreq" / "cpuinfo_max_freq").write_text(str(freq))
    assert _threads.big_cores(sysfs) == [1, 2]
    assert _threads.big_cores(str(tmp_path / "missing")) == [0, 1, 2]


@pytest.mark.parametrize("bad,error", [(0, ValueError), (-2, ValueError), (1.5, TypeError),
                                       ("2", TypeError)])
def test_bad_thread_counts_are_refused(bad, error):
    with pytest.raises(error, match="n:"):
        fastdl.set_num_threads(bad)


def test_big_cores_only_restricts_then_restores_affinity():
    if fastdl.backend() != "native":
        pytest.skip("affinity applies to the native thread pool")
    before_threads, before_cpus = fastdl.get_num_threads(), os.sched_getaffinity(0)
    try:
        fastdl.set_num_threads(2, big_cores_only=True)
        assert os.sched_getaffinity(0) == set(_threads.big_cores())
        assert fastdl.get_num_threads() == 2
        x = np.ones((1, 8, 10, 10), np.float32)
        w = np.ones((8, 8, 3, 3), np.float32)
        assert np.allclose(fastdl.ops.conv2d(x, w, padding=1)[0, 0, 5, 5], 72.0)
        fastdl.set_num_threads(1)
        assert os.sched_getaffinity(0) == before_cpus
    finally:
        fastdl.set_num_threads(before_threads)
    with pytest.raises(TypeError, match="big_cores_only"):
        fastdl.set_num_threads(1, big_cores_only="yes")
