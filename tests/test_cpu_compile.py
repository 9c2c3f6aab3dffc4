"""What the CPU backend asks numba to compile (compile latency, issue 8).

numba types, lowers, wraps and optimises every function separately (and a callee again
inside its caller), so the generated module must hold one numba function per segment:
the serial kernels are blocks of the entry, under comment headers that name what they
fuse. Only a kernel with parallel loops is a function of its own. These tests count
functions (never time them) and check that kernels sharing one namespace keep their
scratch variables apart.
"""
from __future__ import annotations

import numba
import numpy as np
import pytest

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import jit
from jitgrad.backends.cpu import codegen

F32 = np.float32


def _executable(jf):
    """The CPU executable jit compiled (jit objects of one function share their cache)."""
    from jitgrad.backends.cpu import CpuExecutable
    found = [e.executable for e in jf._cache.values() if isinstance(e.executable, CpuExecutable)]
    assert len(found) == 1, found
    return found[0]


def _dispatchers(executable) -> dict[str, numba.core.registry.CPUDispatcher]:
    """The numba functions the generated module defines (not the runtime helpers)."""
    mod = executable.module
    return {k: v for k, v in vars(mod).items()
            if isinstance(v, numba.core.registry.CPUDispatcher)
            and v.py_func.__module__ == mod.__name__}


def _mlp_step(w1, b1, w2, b2, x, y):
    def loss(w1, b1, w2, b2):
        h = jnp.maximum(x @ w1 + b1, 0)
        logits = h @ w2 + b2
        return -jnp.mean(jnp.sum(y * jitgrad.nn.log_softmax(logits), axis=-1))
    val, g = jitgrad.value_and_grad(loss, argnums=(0, 1, 2, 3))(w1, b1, w2, b2)
    return val, [p - 0.1 * d for p, d in zip((w1, b1, w2, b2), g)]


def _mlp_args():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 6)).astype(F32)
    y = np.eye(4, dtype=F32)[rng.integers(0, 4, 8)]
    return (rng.standard_normal((6, 5)).astype(F32) * 0.5, np.zeros(5, F32),
            rng.standard_normal((5, 4)).astype(F32) * 0.5, np.zeros(4, F32), x, y)


def test_a_training_step_compiles_one_numba_function():
    args = _mlp_args()
    jf = jit(_mlp_step, backend="cpu")
    got = jf(*args)
    want = jit(_mlp_step, backend="reference")(*args)
    for g, w in zip(jax_leaves(got), jax_leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-6)
    ex = _executable(jf)
    kernels = ex.fused.kernels
    assert len(kernels) >= 4, str(ex.fused)
    funcs = _dispatchers(ex)
    assert list(funcs) == ["entry0"], f"expected the entry only, got {sorted(funcs)}"
    assert len(funcs["entry0"].signatures) == 1
    # Every kernel is a readable block of the entry, named after what it fuses.
    body = ex.source.split("def entry0(")[1]
    for g in kernels:
        assert f"\n    # {g.name}: {g.kind} kernel" in body, g.name


def test_entry_takes_its_temporaries_as_one_buffer():
    """Every array argument costs numba typing, unboxing code and time per call: the
    entry's temporaries and scratch arrays are views into one uint8 buffer instead."""
    args = _mlp_args()
    jf = jit(_mlp_step, backend="cpu")
    jf(*args)
    ex = _executable(jf)
    (seg,) = ex.plan.segments
    assert seg.temps and seg.temp_bytes >= sum(
        int(np.prod(v.aval.shape)) * np.dtype(v.aval.dtype).itemsize for v in seg.temps)
    (sig,) = _dispatchers(ex)["entry0"].signatures
    assert len(sig) == len(seg.inputs) + len(seg.outputs) + 1
    assert sig[-1] == numba.types.Array(numba.uint8, 1, "C")
    body = ex.source.split("def entry0(")[1]
    assert "np.empty(" not in body and body.count("rt.carve(tbuf, ") >= len(seg.temps)


def test_matmul_product_is_computed_in_the_output_buffer():
    """relu(x @ w + b): BLAS writes the product into the output, the epilogue rewrites it
    in place; no temporary, no temp buffer argument."""
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((64, 32)).astype(F32), rng.standard_normal((32, 48)).astype(F32)
    b = rng.standard_normal(48).astype(F32)

    def dense(x, w, b):
        return jnp.maximum(x @ w + b, 0)
    jf = jit(dense, backend="cpu")
    np.testing.assert_allclose(np.asarray(jf(x, w, b)), np.maximum(x @ w + b, 0), rtol=1e-5,
                               atol=1e-5)
    ex = _executable(jf)
    (seg,) = ex.plan.segments
    assert seg.temps == [] and seg.temp_bytes == 0
    out = ex.fused.names[id(seg.outputs[0])]
    assert f"blas.gemm_static(b_a, b_b, b_{out})" in ex.source


def test_carve_views_bytes_of_the_buffer():
    from jitgrad.backends.cpu import runtime as rt

    @numba.njit
    def fill(buf):
        a = rt.carve(buf, 0, (2, 3), np.float32)
        b = rt.carve(buf, 64, (4,), np.int64)
        for i in range(2):
            for j in range(3):
                a[i, j] = i * 10 + j
        for k in range(4):
            b[k] = -k
        return a.shape, b.shape
    buf = np.zeros(128, np.uint8)
    assert fill(buf) == ((2, 3), (4,))
    np.testing.assert_array_equal(buf[:24].view(np.float32).reshape(2, 3),
                                  [[0, 1, 2], [10, 11, 12]])
    np.testing.assert_array_equal(buf[64:96].view(np.int64), [0, -1, -2, -3])
    assert not buf[24:64].any() and not buf[96:].any()


def jax_leaves(tree):
    return jitgrad.tree.leaves(tree)


def test_kernels_in_one_entry_keep_their_scratch_variables_apart():
    # An integer matmul (explicit loops, int32 accumulator) and cumulative sums of three
    # dtypes: without per-kernel names their accumulators would share one variable and
    # numba would unify (or reject) their types.
    def f(a, b, x, n, d):
        return a @ b, jnp.cumsum(x, axis=1), jnp.cumsum(n, axis=0), jnp.cumsum(d)
    rng = np.random.default_rng(1)
    a = rng.integers(-5, 5, (3, 4)).astype(np.int32)
    b = rng.integers(-5, 5, (4, 2)).astype(np.int32)
    x = rng.standard_normal((2, 5)).astype(F32)
    n = rng.integers(-100, 100, (6,)).astype(np.int64)
    d = np.linspace(0.1, 1.0, 7)
    previous = jitgrad.config.jax_enable_x64
    jitgrad.config.update("jax_enable_x64", True)
    try:
        jf = jit(f, backend="cpu")
        got = [np.asarray(o) for o in jf(a, b, x, n, d)]
    finally:
        jitgrad.config.update("jax_enable_x64", previous)
    np.testing.assert_array_equal(got[0], a @ b)
    assert got[0].dtype == np.int32
    np.testing.assert_allclose(got[1], np.cumsum(x, axis=1), rtol=1e-6)
    assert got[1].dtype == F32
    np.testing.assert_array_equal(got[2], np.cumsum(n))
    np.testing.assert_allclose(got[3], np.cumsum(d), rtol=1e-12)
    assert got[3].dtype == np.float64
    ex = _executable(jf)
    assert list(_dispatchers(ex)) == ["entry0"]
    body = ex.source.split("def entry0(")[1]
    assert "acc =" not in body and "acc" in body   # accumulators carry a unique suffix


def test_only_a_parallel_kernel_is_a_function_of_its_own(monkeypatch):
    # Lower the threshold so that a small program has one parallel kernel next to serial
    # ones (and no BLAS call, which would keep every loop serial).
    monkeypatch.setattr(codegen, "PARALLEL_MIN_ELEMENTS", 4096)
    monkeypatch.setattr(codegen, "PARALLEL_MIN_WORK", 4096)

    def f(x, s):
        return jnp.exp(x) * 2.0 + 1.0, jnp.cumsum(s), jnp.sum(jnp.tanh(s))
    x = np.linspace(-2, 2, 64 * 128, dtype=F32).reshape(64, 128)
    s = np.linspace(-1, 1, 10, dtype=F32)
    jf = jit(f, backend="cpu")
    got = [np.asarray(o) for o in jf(x, s)]
    np.testing.assert_allclose(got[0], np.exp(x) * F32(2) + F32(1), rtol=2e-6)
    np.testing.assert_allclose(got[1], np.cumsum(s), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[2], np.sum(np.tanh(s)), rtol=1e-5, atol=1e-6)
    ex = _executable(jf)
    funcs = _dispatchers(ex)
    par = [g for g in ex.fused.kernels if "prange(" in ex.source.split(f"def {g.name}(")[-1]
           .split("\n\n\n")[0] and f"def {g.name}(" in ex.source]
    assert len(par) == 1, ex.source
    assert sorted(funcs) == sorted(["entry0", par[0].name])
    assert funcs[par[0].name].targetoptions.get("parallel"), "the parallel kernel is parfor-compiled"
    assert not funcs["entry0"].targetoptions.get("parallel"), "the entry itself stays serial"
    body = ex.source.split("def entry0(")[1]
    assert f"{par[0].name}(" in body and "prange(" not in body


@pytest.mark.parametrize("shape", [(0, 3), (3, 0)])
def test_kernels_with_nothing_to_compute_still_compile(shape):
    # Empty shapes generate kernels without statements; their blocks must stay valid.
    def f(x, w):
        return jnp.tanh(x) + 1.0, x @ w, jnp.sum(x, axis=1)
    x = np.ones(shape, F32)
    w = np.ones((shape[1], 2), F32)
    got = [np.asarray(o) for o in jit(f, backend="cpu")(x, w)]
    np.testing.assert_array_equal(got[0], np.tanh(x) + 1)
    np.testing.assert_array_equal(got[1], x @ w)
    np.testing.assert_array_equal(got[2], np.sum(x, axis=1))


def test_first_jit_call_does_not_import_scipy_linalg():
    """numba's import-time probe for scipy's BLAS (0.3 s: scipy.linalg, numpy.f2py) is
    deferred (backends/cpu/numba_startup.py); numba's own check stays in place for when
    it is needed."""
    import subprocess
    import sys
    code = (
        "import sys, importlib.util, numpy as np, jitgrad\n"
        "jitgrad.config.update('cache', False)\n"
        "out = jitgrad.jit(lambda x: x * 2, backend='cpu')(np.ones(3, np.float32))\n"
        "assert float(out[1]) == 2.0\n"
        "from numba.np import arraymath, linalg\n"
        "assert arraymath.ensure_blas is linalg.ensure_blas\n"
        "assert arraymath._HAVE_BLAS == (importlib.util.find_spec('scipy') is not None)\n"
        "print('scipy.linalg' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_typed_literals_become_module_constants():
    """numba types and lowers ``np.float32(0.5)`` as four steps and a call resolution; a
    module constant (frozen by numba) is one. Comments keep the literal as written."""
    code = ("def f(x):\n    # scale by np.float32(0.5)\n"
            "    return x * np.float32(0.5) + np.float32(-np.inf) - np.float32(0.5)")
    consts, out = codegen.hoist_literals(code)
    assert consts == "_c0 = np.float32(0.5)\n_c1 = np.float32(-np.inf)\n"
    assert out.splitlines()[1] == "    # scale by np.float32(0.5)"
    assert out.splitlines()[2] == "    return x * _c0 + _c1 - _c0"
    args = _mlp_args()
    jf = jit(_mlp_step, backend="cpu")
    jf(*args)
    body = _executable(jf).source.split("def entry0(")[1]
    code_lines = [ln for ln in body.splitlines() if not ln.lstrip().startswith("#")]
    assert not any("np.float32(" in ln for ln in code_lines)
