"""Tests of jitgrad.benchmarking: the interleaved timer, the ceilings cache, the table formatter.

No test asserts a speed: the timer is driven by a fake clock, and real measurements
are only checked for being positive and finite.
"""
from __future__ import annotations

import gc
import json
import math
import os
import stat

import numpy as np
import pytest

from jitgrad.benchmarking import (
    Ceilings, TimingResult, block_until_ready, format_table, format_value,
    measure_ceilings, time_interleaved,
)
from jitgrad.benchmarking import ceilings as C
from jitgrad.benchmarking import timing as T
from jitgrad.benchmarking.report import format_time


# ----------------------------------------------------------------------------- timer

class FakeClock:
    """A clock that only moves when a fake kernel "runs": kernels call ``advance(cost)``."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, dt: float) -> None:
        self.now += dt


def test_interleaving_order_warmup_and_gaps():
    log: list[str] = []
    cands = {name: (lambda name=name: log.append(name)) for name in "abc"}
    res = time_interleaved(cands, repeat=4, warmup=2, gap_s=0.01, inner=1,
                           sleep=lambda s: log.append(f"sleep{s}"))
    warm = ["a", "a", "b", "b", "c", "c"]
    # Round r starts at candidate r mod 3, and every timed block is preceded by a sleep.
    rounds = [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    expected = warm + [x for rnd in rounds for name in rnd for x in ("sleep0.01", name)]
    assert log == expected
    assert list(res) == ["a", "b", "c"]
    assert all(len(r.times) == 4 and r.inner == 1 for r in res.values())


def test_no_sleep_when_gap_is_zero():
    slept = []
    time_interleaved({"a": lambda: None}, repeat=3, warmup=0, gap_s=0.0, inner=1, sleep=slept.append)
    assert slept == []


def test_fake_clock_gives_exact_per_call_times_and_inner_calls():
    clock = FakeClock()
    calls = {"fast": 0, "slow": 0}

    def kernel(name: str, cost: float):
        def run():
            calls[name] += 1
            clock.advance(cost)
        return run

    res = time_interleaved({"fast": kernel("fast", 1e-6), "slow": kernel("slow", 3e-6)},
                           repeat=5, warmup=1, gap_s=0.0, inner=7, clock=clock)
    assert calls == {"fast": 1 + 5 * 7, "slow": 1 + 5 * 7}
    assert res["fast"].times == pytest.approx([1e-6] * 5)
    assert res["slow"].median == pytest.approx(3e-6)
    assert res["slow"].paired_ratio(res["fast"]) == pytest.approx(3.0)


@pytest.mark.parametrize("cost", [1e-7, 1e-5, 3e-4, 5e-3])
def test_inner_auto_choice_reaches_target_block(cost):
    clock = FakeClock()
    res = time_interleaved({"k": lambda: clock.advance(cost)}, repeat=2, warmup=0, gap_s=0.0,
                           clock=clock)
    inner = res["k"].inner
    if cost >= T.TARGET_BLOCK_S:
        assert inner == 1  # a slow kernel is not repeated
    else:
        # Long enough to swamp clock resolution, not wastefully long.
        assert 2e-3 <= T.TARGET_BLOCK_S <= inner * cost <= 3 * T.TARGET_BLOCK_S
    assert res["k"].times == pytest.approx([cost, cost])


def test_inner_is_bounded_for_free_calls(monkeypatch):
    monkeypatch.setattr(T, "MAX_INNER", 5000)  # keep the test fast
    clock = FakeClock()  # never advances: every block takes 0 s
    assert T.choose_inner(lambda: None, clock=clock) == 5000


def test_invalid_arguments():
    with pytest.raises(ValueError):
        time_interleaved({"a": lambda: None}, repeat=0, warmup=0)
    with pytest.raises(ValueError):
        time_interleaved({"a": lambda: None}, repeat=1, warmup=0, inner=0)


def test_gc_paused_only_inside_timed_blocks():
    seen = []
    assert gc.isenabled()
    time_interleaved({"a": lambda: seen.append(gc.isenabled())}, repeat=2, warmup=1, gap_s=0.0,
                     inner=1, sleep=lambda s: None)
    assert seen == [True, False, False]
    assert gc.isenabled()


def test_timing_result_statistics_and_paired_ratio():
    r = TimingResult("a", [float(v) for v in range(1, 12)])  # 1..11
    assert (r.min, r.median, r.p10, r.p90) == (1.0, 6.0, 2.0, 10.0)
    # One round where b was hit by noise: medians say "equal", pairing says a is 2x faster.
    a = TimingResult("a", [1.0, 2.0, 4.0, 100.0, 3.0])
    b = TimingResult("b", [2.0, 4.0, 8.0, 1.0, 6.0])
    assert a.median / b.median == pytest.approx(0.75)
    assert a.paired_ratio(b) == pytest.approx(0.5)
    assert b.paired_ratio(a) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        a.paired_ratio(TimingResult("c", [1.0]))


class Async:
    """Stands in for a jax.Array: records that someone waited for it."""

    def __init__(self) -> None:
        self.waited = 0

    def block_until_ready(self):
        self.waited += 1
        return self


def test_block_until_ready_walks_trees():
    leaves = [Async() for _ in range(4)]
    tree = (leaves[0], [leaves[1], {"k": leaves[2], "n": 3}], "text", np.zeros(2), {"d": (leaves[3],)})
    assert block_until_ready(tree) is tree
    assert [leaf.waited for leaf in leaves] == [1, 1, 1, 1]


def test_timer_waits_for_every_call():
    leaf = Async()
    time_interleaved({"a": lambda: {"out": [leaf]}}, repeat=3, warmup=2, gap_s=0.0, inner=4,
                     sleep=lambda s: None)
    assert leaf.waited == 2 + 3 * 4


# ----------------------------------------------------------------------------- ceilings

@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh, not yet existing cache dir, and a counter of measurements.

    Measuring is faked (distinct numbers per call) so the cache logic is tested in
    milliseconds; ``test_real_quick_measurement`` runs the real thing once.
    """
    d = tmp_path / "sub" / "jitgrad-cache"
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(d))
    count = {"n": 0}

    def fake(machine, quick):
        count["n"] += 1
        n = float(count["n"])
        return Ceilings(10 + n, 12 + n, 100 + n, 50 + n, machine=machine,
                        measured_at=f"call {n}", details={"quick": quick})

    monkeypatch.setattr(C, "_measure", fake)
    return d, count


def test_real_quick_measurement(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(d))
    first = measure_ceilings(quick=True)
    for v in (first.triad_gbs, first.copy_gbs, first.gemm_f32_gflops, first.gemm_f64_gflops):
        assert math.isfinite(v) and v > 0
    assert first.machine == C.machine_info()
    monkeypatch.setattr(C, "_measure", lambda *a: pytest.fail("should be served from the cache"))
    assert measure_ceilings(quick=True) == first


def _files(d):
    return sorted(p.name for p in d.iterdir())


def test_measure_then_cache_hit(cache):
    d, count = cache
    first = measure_ceilings(quick=True)
    assert count["n"] == 1
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    files = _files(d)
    assert len(files) == 1 and files[0].startswith("ceilings-quick-") and files[0].endswith(".json")
    again = measure_ceilings(quick=True)
    assert count["n"] == 1  # served from the file
    assert again == first
    fresh = measure_ceilings(quick=True, refresh=True)
    assert count["n"] == 2 and fresh.triad_gbs != first.triad_gbs
    assert _files(d) == files  # replaced in place, no temp files left behind
    assert measure_ceilings(quick=True) == fresh


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o100])
def test_directory_created_0700_whatever_the_umask(cache, tmp_path, monkeypatch, umask):
    d = tmp_path / "direct"  # parent exists, so the umask only affects this directory
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(d))
    old = os.umask(umask)
    try:
        measure_ceilings(quick=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700


def test_existing_directory_is_not_chmodded(cache, tmp_path, monkeypatch):
    d = tmp_path / "chosen"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(d))
    measure_ceilings(quick=True)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o755
    (f,) = d.iterdir()
    assert stat.S_IMODE(os.stat(f).st_mode) & 0o077 == 0  # the file itself is private


def _valid_payload(path):
    with open(path) as f:
        return json.load(f)


@pytest.mark.parametrize("corrupt", [
    lambda p: p.write_bytes(b"\x00\xff garbage"),
    lambda p: p.write_text(p.read_text()[: len(p.read_text()) // 2]),  # truncated write
    lambda p: p.write_text("[1, 2, 3]"),
    lambda p: p.write_text(json.dumps({**_valid_payload(p), "schema": -1})),
    lambda p: p.write_text(p.read_text().replace('"triad_gbs": ', '"triad_gbs": -')),
    lambda p: p.write_text(json.dumps({**_valid_payload(p), "ceilings": {
        **_valid_payload(p)["ceilings"], "gemm_f32_gflops": "fast"}})),
    lambda p: p.write_text(json.dumps({**_valid_payload(p), "ceilings": {
        **_valid_payload(p)["ceilings"], "copy_gbs": float("nan")}})),
    lambda p: p.write_text(json.dumps({**_valid_payload(p), "machine": {"cpu": "someone else's"}})),
    lambda p: p.write_text(json.dumps({k: v for k, v in _valid_payload(p).items() if k != "ceilings"})),
])
def test_corrupted_cache_is_remeasured(cache, corrupt):
    d, count = cache
    measure_ceilings(quick=True)
    (path,) = d.iterdir()
    corrupt(path)
    c = measure_ceilings(quick=True)
    assert count["n"] == 2
    # The bad file was replaced by a good one: the next call is a cache hit.
    assert _valid_payload(path)["ceilings"]["triad_gbs"] == c.triad_gbs
    measure_ceilings(quick=True)
    assert count["n"] == 2


def test_machine_change_triggers_remeasure(cache, monkeypatch):
    d, count = cache
    measure_ceilings(quick=True)
    real_info = C.machine_info
    monkeypatch.setattr(C, "machine_info", lambda: {**real_info(), "hostname": "other-host"})
    other = measure_ceilings(quick=True)
    assert count["n"] == 2
    assert other.machine["hostname"] == "other-host"
    assert len(_files(d)) == 2
    monkeypatch.setattr(C, "machine_info", real_info)
    measure_ceilings(quick=True)
    assert count["n"] == 2  # the original machine's entry is still valid


def test_quick_and_full_never_share_an_entry():
    m = C.machine_info()
    assert C.cache_path(m, quick=True) != C.cache_path(m, quick=False)
    assert C.cache_path(m, True) != C.cache_path({**m, "cores": 999}, True)


def test_write_is_atomic(cache, monkeypatch):
    d, _ = cache
    measure_ceilings(quick=True)
    (path,) = d.iterdir()
    replaced = []
    real_replace = os.replace

    def recording_replace(src, dst):
        replaced.append((os.path.dirname(src), os.path.basename(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(C.os, "replace", recording_replace)
    measure_ceilings(quick=True, refresh=True)
    ((src_dir, src_name, dst),) = replaced
    assert src_dir == str(d) and src_name.endswith(".tmp") and dst == str(path)
    before = path.read_bytes()

    # A write that dies half-way leaves the old file intact and no temp file behind.
    def failing_dump(obj, f, **kw):
        f.write('{"schema": ')
        raise OSError("disk full")

    monkeypatch.setattr(C.json, "dump", failing_dump)
    with pytest.warns(UserWarning, match="could not cache"):
        c = measure_ceilings(quick=True, refresh=True)
    assert c.triad_gbs > 0  # the caller still gets numbers
    assert _files(d) == [path.name]
    assert path.read_bytes() == before


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert C.cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("JITGRAD_CACHE_DIR")
    assert C.cache_dir() == tmp_path / "xdg" / "jitgrad"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert C.cache_dir() == tmp_path / "home" / ".cache" / "jitgrad"


def test_machine_info_fields():
    m = C.machine_info()
    assert {"cpu", "cores", "hostname", "numpy", "numba", "blas"} <= set(m)
    assert m["numpy"] == np.__version__
    json.dumps(m)  # must be JSON-serialisable to be a cache key


def test_roofline():
    c = Ceilings(triad_gbs=10.0, copy_gbs=12.0, gemm_f32_gflops=100.0, gemm_f64_gflops=50.0,
                 machine={}, measured_at="now")
    assert c.roofline_time(1e9, 0) == pytest.approx(0.1)          # memory bound
    assert c.roofline_time(0, 1e12) == pytest.approx(10.0)        # compute bound
    assert c.roofline_time(1e9, 1e9) == pytest.approx(0.1)        # the larger bound wins
    assert c.roofline_time(0, 1e12, dtype="float64") == pytest.approx(20.0)
    assert c.percent_of_roofline(0.2, 1e9, 0) == pytest.approx(50.0)


# ----------------------------------------------------------------------------- report

def test_format_table_alignment_and_missing_values():
    rows = [{"impl": "numpy", "ms": 52.2, "n": 16777216, "ratio": "1.00x"},
            {"impl": "numba prange", "ms": 0.00123, "n": 4096, "ratio": "0.24x", "extra": "x"}]
    out = format_table(rows, ["impl", "ms", "n", "ratio", "missing"])
    assert out.splitlines() == [
        "impl               ms         n  ratio  missing",
        "------------  -------  --------  -----  -------",
        "numpy           52.20  16777216  1.00x  -",
        "numba prange  0.00123      4096  0.24x  -",
    ]


def test_format_value():
    assert format_value(None) == "-"
    assert format_value(True) == "True"
    assert format_value(np.int64(7)) == "7"
    assert format_value(np.float32(0.5)) == "0.5"
    assert format_value(3.14159) == "3.14"
    assert format_value(123.456) == "123.5"
    assert format_value(12345.6) == "12346"
    assert format_value(1.5e-5) == "1.5e-05"
    assert format_value(2.5e7) == "2.5e+07"
    assert format_value(float("nan")) == "nan"
    assert format_value(0.0) == "0"


def test_format_time_units():
    assert format_time(0.418) == "418 ms"
    assert format_time(1.93e-6) == "1.93 us"
    assert format_time(2.5) == "2.50 s"
    assert format_time(0.9999) == "1.00 s"
    assert format_time(None) == "-"
