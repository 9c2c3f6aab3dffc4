"""The disk cache of compiled programs (jitgrad/backends/cache.py) as the CPU backend uses it.

Damaged or modified entries must be regenerated with a CacheWarning and never executed;
concurrent processes and threads must compile a program once and agree on results; a
second process must load the program without compiling (checked by the backend's
counters, not by timing); ``config.update("cache", False)`` keeps the disk untouched.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import jit
from jitgrad.backends import cache as disk_cache
from jitgrad.backends import cpu
from jitgrad.backends.cpu import loader

ROOT = Path(__file__).resolve().parents[1]
F32 = np.float32


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A fresh cache directory, and a fresh in-process module table (as in a new process)."""
    d = tmp_path / "cache" / "nested"
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(d))
    monkeypatch.setattr(loader, "_MODULES", {})
    yield d


def _program(scale):
    # A distinct program per test (the scale is a literal in the IR), so keys differ.
    def f(x, w, b):
        return jnp.maximum(x @ w + b, 0) * scale, jnp.sum(jnp.tanh(x), axis=1)
    return f


def _args():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((4, 3)).astype(F32), rng.standard_normal((3, 5)).astype(F32),
            rng.standard_normal(5).astype(F32))


def _expected(scale):
    x, w, b = _args()
    return np.maximum(x @ w + b, 0) * np.float32(scale), np.sum(np.tanh(x), axis=1)


def _run(scale):
    """Compile ``_program(scale)`` (a fresh jit object) and run it; returns the outputs."""
    out = jit(_program(scale), backend="cpu")(*_args())
    return [np.asarray(o) for o in out]


def _check(outs, scale):
    for got, want in zip(outs, _expected(scale)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _entry_files(cache_dir: Path):
    d = cache_dir / "cpu"
    return sorted(d.glob("jitgrad_cpu_*.py"))


def _reload_from_disk():
    """Forget loaded modules, as a new process would."""
    loader._MODULES.clear()


# ------------------------------------------------------------------ directory

def test_cache_directories_are_private(cache_dir):
    _check(_run(1.5), 1.5)
    for d in (cache_dir, cache_dir / "cpu"):
        assert d.is_dir()
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    (src,) = _entry_files(cache_dir)
    assert stat.S_IMODE(src.stat().st_mode) == 0o600
    manifest = json.loads(src.with_suffix(".manifest.json").read_text())
    assert manifest["artifacts"], "numba's machine code is recorded"
    assert not list((cache_dir / "cpu").glob(".*.tmp")), "no temp files left behind"


def test_key_depends_on_ir_backend_versions_and_settings():
    base = disk_cache.entry_key("cpu", "{ lambda ; a:f32[3]. let in (a,) }", {"x": 1})
    assert base == disk_cache.entry_key("cpu", "{ lambda ; a:f32[3]. let in (a,) }", {"x": 1})
    assert base != disk_cache.entry_key("cuda", "{ lambda ; a:f32[3]. let in (a,) }", {"x": 1})
    assert base != disk_cache.entry_key("cpu", "{ lambda ; a:f32[4]. let in (a,) }", {"x": 1})
    assert base != disk_cache.entry_key("cpu", "{ lambda ; a:f32[3]. let in (a,) }", {"x": 2})
    versions = disk_cache.library_versions()
    assert {"jitgrad", "numba", "numpy", "llvmlite", "python"} <= set(versions)


# ------------------------------------------------------------------ damaged entries

def _tamper_marker(tmp_path):
    return tmp_path / "tampered-code-ran"


@pytest.mark.parametrize("damage", ["truncate", "corrupt", "tamper"])
def test_damaged_source_is_regenerated_with_a_warning_and_never_executed(cache_dir, tmp_path, damage):
    scale = {"truncate": 2.0, "corrupt": 2.5, "tamper": 3.0}[damage]
    _check(_run(scale), scale)
    (src,) = _entry_files(cache_dir)
    good = src.read_text()
    marker = _tamper_marker(tmp_path)
    if damage == "truncate":
        src.write_text(good[: len(good) // 2])
    elif damage == "corrupt":
        raw = bytearray(src.read_bytes())
        for i in range(100, len(raw), 97):
            raw[i] ^= 0x5A
        src.write_bytes(bytes(raw))
    else:   # valid Python that would leave a trace if it ever ran
        src.write_text(good + f"\nopen({str(marker)!r}, 'w').write('ran')\n")
    _reload_from_disk()
    before = cpu.stats()["compiled"]
    with pytest.warns(disk_cache.CacheWarning, match="does not match the program"):
        outs = _run(scale)
    _check(outs, scale)
    assert not marker.exists(), "the damaged entry was executed"
    assert src.read_text() == good, "the entry was regenerated"
    assert cpu.stats()["compiled"] == before + 1, "machine code from the damaged entry was dropped"


def test_corrupted_machine_code_is_recompiled_with_a_warning(cache_dir):
    _check(_run(4.0), 4.0)
    (src,) = _entry_files(cache_dir)
    artifacts = sorted((cache_dir / "cpu" / "__pycache__").glob(src.stem + ".*"))
    assert artifacts
    for p in artifacts:
        raw = bytearray(p.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        p.write_bytes(bytes(raw))
    _reload_from_disk()
    before = cpu.stats()["compiled"]
    with pytest.warns(disk_cache.CacheWarning, match="does not match its recorded digests"):
        outs = _run(4.0)
    _check(outs, 4.0)
    assert cpu.stats()["compiled"] == before + 1


def test_intact_entry_is_loaded_without_compiling_or_warnings(cache_dir):
    _check(_run(4.5), 4.5)
    _reload_from_disk()
    before = dict(cpu.stats())
    with warnings.catch_warnings():
        warnings.simplefilter("error", disk_cache.CacheWarning)
        outs = _run(4.5)
    _check(outs, 4.5)
    after = cpu.stats()
    assert after["compiled"] == before["compiled"]
    assert after["loaded"] == before["loaded"] + 1


# ------------------------------------------------------------------ config

def test_cache_can_be_disabled(cache_dir):
    previous = jitgrad.config.cache
    jitgrad.config.update("cache", False)
    try:
        before = cpu.stats()["compiled"]
        _check(_run(5.0), 5.0)
        assert cpu.stats()["compiled"] == before + 1
        assert not cache_dir.exists() or not _entry_files(cache_dir)
    finally:
        jitgrad.config.update("cache", previous)


# ------------------------------------------------------------------ threads

def test_threads_calling_one_jitted_function_compile_once(cache_dir):
    f = jit(_program(6.0), backend="cpu")
    n = 6
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []
    before = cpu.stats()

    def worker(i, fn):
        try:
            barrier.wait()
            results[i] = [np.asarray(o) for o in fn(*_args())]
        except BaseException as e:   # pragma: no cover - reported below
            errors.append(e)

    # Half the threads share one jit object, half make their own (separate jit locks).
    threads = [threading.Thread(target=worker, args=(i, f if i % 2 else jit(_program(6.0),
                                                                           backend="cpu")))
               for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for r in results:
        _check(r, 6.0)
    after = cpu.stats()
    assert after["compiled"] - before["compiled"] == 1
    assert after["loaded"] == before["loaded"]


# ------------------------------------------------------------------ processes

_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import jitgrad, jitgrad.numpy as jnp
    from jitgrad.backends import cpu
    scale = float(sys.argv[1])
    def f(x, w, b):
        return jnp.maximum(x @ w + b, 0) * scale, jnp.sum(jnp.tanh(x), axis=1)
    rng = np.random.default_rng(0)
    args = (rng.standard_normal((4, 3)).astype(np.float32),
            rng.standard_normal((3, 5)).astype(np.float32), rng.standard_normal(5).astype(np.float32))
    outs = jitgrad.jit(f, backend="cpu")(*args)
    print(json.dumps({"stats": cpu.stats(), "outs": [np.asarray(o).tolist() for o in outs]}))
""")


def _spawn(cache_dir: Path, scale: float) -> subprocess.Popen:
    env = dict(os.environ, JITGRAD_CACHE_DIR=str(cache_dir), PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(scale)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen, scale: float) -> dict:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    data = json.loads(out.strip().splitlines()[-1])
    for got, want in zip(data["outs"], _expected(scale)):
        np.testing.assert_allclose(np.asarray(got, F32), want, rtol=1e-5, atol=1e-6)
    return data


def test_second_process_reuses_the_disk_cache(tmp_path):
    d = tmp_path / "shared"
    first = _result(_spawn(d, 7.0), 7.0)
    assert first["stats"]["compiled"] == 1
    second = _result(_spawn(d, 7.0), 7.0)
    assert second["stats"]["compiled"] == 0, "the second process compiled again"
    assert second["stats"]["loaded"] == 1


def test_concurrent_processes_compile_the_same_program_once(tmp_path):
    d = tmp_path / "shared"
    procs = [_spawn(d, 8.0), _spawn(d, 8.0)]
    results = [_result(p, 8.0) for p in procs]
    assert sum(r["stats"]["compiled"] for r in results) == 1
    assert sum(r["stats"]["loaded"] for r in results) == 1
    (src,) = _entry_files(d)
    assert "def entry0(" in src.read_text()
    # And the entry both left behind is intact for a third process.
    third = _result(_spawn(d, 8.0), 8.0)
    assert third["stats"] == {"compiled": 0, "loaded": 1, "reused": 0}
