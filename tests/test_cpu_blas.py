"""jitgrad.backends.cpu.blas: numpy's BLAS called from numba code by symbol name.

Results are compared with numpy in float64; the cross-process test checks that numba's
on-disk cache links the registered symbols again in a fresh process, and that machine code
cached for one BLAS ABI is not loaded when the BLAS is switched off.
"""
import glob
import json
import os
import subprocess
import sys
import textwrap
import threading

import numba
import numpy as np
import pytest

from jitgrad.backends.cpu import blas

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def reference(a, b, c, ta, tb, alpha, beta):
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    out = alpha * ((a64.T if ta else a64) @ (b64.T if tb else b64))
    if beta != 0:
        out = out + beta * c.astype(np.float64)
    return out


def tol(dtype):
    return dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)


def test_finds_numpys_own_blas():
    libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    vendored = [p for p in glob.glob(os.path.join(libs, "*")) if "blas" in os.path.basename(p)]
    info = blas.info()
    assert blas.available(), info.reason
    if vendored:   # a numpy wheel: its vendored library, never scipy's
        assert os.path.realpath(info.path) in {os.path.realpath(p) for p in vendored}
    assert "scipy.libs" not in info.path
    assert info.int_bits in (32, 64) and info.sgemm and info.dgemm
    assert blas.ABI_TAG.startswith("blas:") and f"i{info.int_bits}" in blas.ABI_TAG


def test_never_picks_scipys_openblas():
    try:
        import scipy.linalg  # noqa: F401  (loads scipy's own OpenBLAS into the process)
    except ImportError:
        scipy = None
    loaded = [p for p in blas._loaded_libraries() if "scipy.libs" in p and "blas" in p]
    candidates = blas._candidate_paths()
    assert not [p for p in candidates if "scipy.libs" in p or "/scipy/" in p], candidates
    if scipy is not None and loaded:    # scipy's library is mapped, yet numpy's comes first
        assert candidates and "numpy" in candidates[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_gemm_matches_numpy(dtype, ta, tb):
    rng = np.random.default_rng(0)
    m, n, k = 7, 5, 9
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    for alpha, beta in [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25)]:
        c = rng.standard_normal((m, n)).astype(dtype)
        expect = reference(a, b, c, ta, tb, alpha, beta)
        blas.gemm(a, b, c, ta, tb, alpha, beta)
        np.testing.assert_allclose(c, expect, **tol(dtype))


def _views(x):
    """The same matrix in several memory layouts."""
    f = np.asfortranarray(x)
    wide = np.zeros((x.shape[0], 2 * x.shape[1] + 1), x.dtype)
    wide[:, 1::2][:, :x.shape[1]] = x
    flipped = np.ascontiguousarray(x[::-1])[::-1]
    return {"C": x, "F": f, "strided": wide[:, 1::2][:, :x.shape[1]], "negative": flipped,
            "rowslice": np.vstack([x, x])[: x.shape[0]], "colslice": np.hstack([x, x])[:, x.shape[1]:]}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_any_layout(dtype):
    rng = np.random.default_rng(1)
    m, n, k = 6, 4, 3
    a0 = rng.standard_normal((m, k)).astype(dtype)
    b0 = rng.standard_normal((n, k)).astype(dtype)
    ones = np.ones((m, n), dtype)
    cases = [(an, a, "C", b0, "C", ones.copy()) for an, a in _views(a0).items()]
    cases.append(("broadcast", np.broadcast_to(a0[:1], a0.shape), "C", b0, "C", ones.copy()))
    cases += [("C", a0, bn, b, "C", ones.copy()) for bn, b in _views(b0).items()]
    cases += [("F", np.asfortranarray(a0), "F", np.asfortranarray(b0), cn, c)
              for cn, c in _views(ones).items()]
    for an, a, bn, b, cn, c in cases:
        a_before, b_before, c_before = a.copy(), b.copy(), c.copy()
        blas.gemm(a, b, c, False, True, 1.5, 1.0)
        np.testing.assert_allclose(c, reference(a_before, b_before, c_before, False, True, 1.5,
                                                1.0), **tol(dtype), err_msg=f"a {an}, b {bn}, c {cn}")
        np.testing.assert_array_equal(a, a_before)   # operands are not written
        np.testing.assert_array_equal(b, b_before)


@pytest.mark.parametrize("m,n,k", [(0, 3, 4), (3, 0, 4), (0, 0, 0), (3, 4, 0), (1, 1, 1),
                                   (1, 5, 3), (5, 1, 3)])
@pytest.mark.parametrize("beta", [0.0, 1.0, 3.0])
def test_gemm_zero_and_unit_sizes(m, n, k, beta):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((m, k))
    b = rng.standard_normal((k, n))
    c = rng.standard_normal((m, n))
    expect = reference(a, b, c, False, False, 2.0, beta)
    blas.gemm(a, b, c, False, False, 2.0, beta)
    np.testing.assert_allclose(c, expect, rtol=1e-12, atol=1e-12)


def test_beta_zero_overwrites_nan():
    a = np.ones((2, 3), np.float32)
    b = np.ones((3, 2), np.float32)
    for k_empty in (False, True):
        aa, bb = (a[:, :0], b[:0]) if k_empty else (a, b)
        c = np.full((2, 2), np.nan, np.float32)
        blas.gemm(aa, bb, c, False, False, 1.0, 0.0)
        np.testing.assert_array_equal(c, np.full((2, 2), 0.0 if k_empty else 3.0, np.float32))


def test_gemm_rejects_mismatched_shapes():
    a = np.ones((2, 3))
    with pytest.raises(ValueError, match="shapes"):
        blas.gemm(a, np.ones((4, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="shapes"):
        blas.gemm(a, np.ones((3, 2)), np.ones((2, 3)))


def test_gemm_from_numba_folds_bias():
    @numba.njit
    def dense(x, w, bias):
        out = np.empty((x.shape[0], w.shape[0]), x.dtype)
        out[:, :] = bias                               # broadcast bias, then accumulate
        blas.gemm(x, w, out, False, True, 1.0, 1.0)    # x @ w.T + bias, w.T never copied
        return out

    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    w = rng.standard_normal((3, 5)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    np.testing.assert_allclose(dense(x, w, bias), x @ w.T + bias, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_batched(dtype):
    rng = np.random.default_rng(4)
    a = rng.standard_normal((3, 4, 6)).astype(dtype)       # used transposed: 6 x 4
    b = rng.standard_normal((3, 4, 5)).astype(dtype)
    c = rng.standard_normal((3, 6, 5)).astype(dtype)
    expect = np.stack([reference(a[i], b[i], c[i], True, False, 1.0, 0.5) for i in range(3)])
    blas.gemm_batched(a, b, c, True, False, 1.0, 0.5)
    np.testing.assert_allclose(c, expect, **tol(dtype))
    empty = np.zeros((0, 6, 5), dtype)
    blas.gemm_batched(a[:0], b[:0], empty, True, False, 1.0, 0.0)
    with pytest.raises(ValueError, match="batch"):
        blas.gemm_batched(a, b[:2], c, True, False, 1.0, 0.0)


def _threadpoolctl_count():
    """numpy's BLAS thread count as threadpoolctl sees it (None if not installed)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    path = os.path.realpath(blas.info().path)
    for pool in threadpool_info():
        if os.path.realpath(pool.get("filepath", "")) == path:
            return pool["num_threads"]
    return None


def test_set_threads_local_restores_numpys_count():
    assert blas.info().threads, "numpy's OpenBLAS exports a thread control"
    before = blas.get_num_threads()
    assert before >= 1
    seen = []

    @numba.njit
    def single_threaded_matmul(a, b, c):
        previous = blas.set_threads_local(1)
        blas.gemm(a, b, c, False, False, 1.0, 0.0)
        inside = blas.set_threads_local(previous)
        return previous, inside

    a = np.ones((300, 200), np.float32)
    b = np.ones((200, 100), np.float32)
    c = np.zeros((300, 100), np.float32)
    previous, inside = single_threaded_matmul(a, b, c)
    np.testing.assert_array_equal(c, np.full((300, 100), 200, np.float32))
    assert inside == 1 and previous == before
    assert blas.get_num_threads() == before
    tc = _threadpoolctl_count()
    if tc is not None:
        assert tc == before
    seen.append(np.ones((64, 64)) @ np.ones((64, 64)))     # numpy still works afterwards
    assert seen[0][0, 0] == 64


def test_threads_limit_is_reference_counted_across_threads():
    before = blas.get_num_threads()
    barrier = threading.Barrier(4)
    errors = []

    def worker(i):
        try:
            a = np.full((40, 30), i + 1.0)
            c = np.zeros((40, 20))
            for _ in range(20):
                with blas.threads_limit(1):
                    barrier.wait(timeout=30) if _ == 0 else None
                    blas.gemm(a, np.ones((30, 20)), c, False, False, 1.0, 0.0)
                    assert blas.get_num_threads() == 1
                assert np.all(c == 30 * (i + 1.0))
        except BaseException as e:   # reported in the main thread
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    assert blas.get_num_threads() == before
    with blas.threads_limit(1):
        with blas.threads_limit(1):
            assert blas.get_num_threads() == 1
        assert blas.get_num_threads() == 1
    assert blas.get_num_threads() == before


CHILD = textwrap.dedent("""
    import json, sys
    import numba, numpy as np
    from jitgrad.backends.cpu import blas    # registers the symbols before cached code loads

    @numba.njit(cache=True)
    def dense(x, w, bias):
        out = np.empty((x.shape[0], w.shape[0]), x.dtype)
        out[:, :] = bias
        blas.gemm(x, w, out, False, True, 1.0, 1.0)
        return out

    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    w = np.arange(6, dtype=np.float32).reshape(2, 3) - 2
    bias = np.array([0.5, -1.0], np.float32)
    got = dense(x, w, bias)
    print(json.dumps({"ok": bool(np.allclose(got, x @ w.T + bias)),
                      "hits": sum(dense.stats.cache_hits.values()),
                      "misses": sum(dense.stats.cache_misses.values()),
                      "available": blas.available(),
                      "cfunc_hits": [blas._gemm_cfuncs[s].cache_hits for s in (4, 8)]}))
""")

CHILD_NO_BLAS = textwrap.dedent("""
    import json
    import numpy as np
    from jitgrad.backends.cpu import blas
    a = np.arange(12, dtype=np.float32).reshape(4, 3)
    b = np.arange(6, dtype=np.float32).reshape(2, 3) - 2
    c = np.ones((4, 2), np.float32)
    blas.gemm(a, b, c, False, True, 2.0, 1.0)
    a3 = np.stack([a, a + 1]); b3 = np.stack([b, b * 2]); c3 = np.zeros((2, 4, 2), np.float32)
    blas.gemm_batched(a3, b3, c3, False, True, 1.0, 0.0)
    ok = np.allclose(c, 2 * a @ b.T + 1) and np.allclose(c3, a3 @ b3.transpose(0, 2, 1))
    print(json.dumps({"ok": bool(ok), "available": blas.available(), "reason": blas.info().reason,
                      "gemm_hits": sum(blas.gemm.stats.cache_hits.values()),
                      "cfunc_hits": [blas._gemm_cfuncs[s].cache_hits for s in (4, 8)],
                      "threads": int(blas.set_threads_local(1))}))
""")


def _run_child(tmp_path, source, **env):
    script = tmp_path / f"child_{abs(hash(source))}.py"
    script.write_text(source)
    full = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba_cache"),
                PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]), **env)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       env=full, timeout=600, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_cached_code_links_by_symbol_name_in_a_new_process(tmp_path):
    first = _run_child(tmp_path, CHILD)
    assert first == {"ok": True, "hits": 0, "misses": 1, "available": True,
                     "cfunc_hits": [0, 0]}
    second = _run_child(tmp_path, CHILD)          # loads dense and the cfuncs from disk
    assert second == {"ok": True, "hits": 1, "misses": 0, "available": True,
                      "cfunc_hits": [1, 1]}
    # Same cache directory, BLAS switched off: the cfuncs' cached BLAS machine code must not
    # be loaded (it names symbols this process does not register); loops give the result.
    # gemm itself only knows the fixed jitgrad_gemm_* interface, so it may come from disk.
    off = _run_child(tmp_path, CHILD_NO_BLAS, JITGRAD_BLAS="none")
    assert off["ok"] and not off["available"] and "JITGRAD_BLAS" in off["reason"]
    assert off["cfunc_hits"] == [0, 0] and off["threads"] == 0
    again = _run_child(tmp_path, CHILD_NO_BLAS, JITGRAD_BLAS="none")
    assert again["ok"] and again["cfunc_hits"] == [1, 1] and again["gemm_hits"] == 1
    # Code cached while the BLAS was present calls gemm through the fixed interface only:
    # it loads and runs (on loops) in a process without BLAS.
    loops = _run_child(tmp_path, CHILD, JITGRAD_BLAS="none")
    assert loops == {"ok": True, "hits": 1, "misses": 0, "available": False,
                     "cfunc_hits": [1, 1]}
