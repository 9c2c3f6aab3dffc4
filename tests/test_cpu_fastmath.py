"""The CPU backend's float32 exp, expm1, log, log1p, tanh, logistic and erf (fast_math).

With ``jitgrad.config.fast_math`` on (the default), generated kernels call
``jitgrad.backends.fastmath``'s vectorisable approximations for these primitives on float32
(and fastmath's exp/log1p in float32 cumlogsumexp). Bounds tested here:

* against the correctly rounded result (float64 numpy/math.erf rounded to float32):
  fastmath's documented maxima over all 2^32 inputs, ``test_fastmath.ULP_BOUND``: exp,
  expm1, log, log1p and erf 1 ulp, tanh and logistic 2 ulp;
* against the reference interpreter (eager numpy float32 ufuncs, scipy's erf), which is not
  correctly rounded itself (on this machine up to 2 ulp off for exp and 3 for log and
  logistic): the bound above plus the reference's own distance from the correctly rounded
  result on the same inputs, identical NaN positions, and identical results (sign of zero
  included) for the inputs +-0, +-inf and NaN;
* with fast_math off: bit-identical to numba's libm calls, i.e. to what the backend
  generated before fastmath was wired in (libm is itself up to 3 ulp from the reference,
  which tests/test_cpu_backend.py's rtol=1e-5 covers);
* float64 is unaffected either way (same source, libm bits).

The loops must still vectorise: the assembly of generated kernels has packed float32 FMAs
and no libm call. Kernels are compiled in-process (disk cache off) so that numba can show
their assembly.
"""
from __future__ import annotations

import contextlib
import math
import re
import warnings

import numba
import numpy as np
import pytest

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import jit, lax
from jitgrad.backends import cpu
from jitgrad.backends import fastmath as fm
from jitgrad.backends.cache import CacheWarning
from jitgrad.backends.cpu import codegen, loader, scalar
from jitgrad.backends.cpu import runtime as rt
from jitgrad.passes import optimize
from jitgrad.passes.fusion import fuse

from test_fastmath import (_LIBM, ULP_BOUND, _asm, _boundaries, _vector_fma, reference,
                           ulp_distance)

F32 = np.float32
NAMES = sorted(fm.FLOAT32)
TINY = np.finfo(F32).smallest_subnormal
MAXF = np.finfo(F32).max


@contextlib.contextmanager
def flags(**values):
    """jitgrad.config flags set for the duration of a block."""
    old = {k: jitgrad.config.read(k) for k in values}
    for k, v in values.items():
        jitgrad.config.update(k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            jitgrad.config.update(k, v)


def executable_of(jf):
    return list(jf._cache.values())[-1].executable


def kernel_asm(executable) -> str:
    """The assembly of every numba function in a generated module."""
    mod = executable.module
    return "\n".join(_asm(v) for v in vars(mod).values()
                     if isinstance(v, numba.core.registry.CPUDispatcher))


# ------------------------------------------------------------------ inputs and programs

EDGE = np.array([0.0, -0.0, TINY, -TINY, 3 * TINY, 2.0 ** -130, -2.0 ** -130, 2.0 ** -126,
                 -2.0 ** -126, 1e-30, -1e-30, 1e30, -1e30, MAXF, -MAXF, np.inf, -np.inf,
                 np.nan, -np.nan, -1.0, 1.0], F32)


def _inputs() -> np.ndarray:
    """Random bit patterns (the whole float32 range: subnormals, huge, inf, NaN payloads),
    normal values, every function's thresholds and their neighbours, and EDGE."""
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2 ** 32, 60_000, dtype=np.uint64).astype(np.uint32).view(F32)
    normal = (rng.standard_normal(60_000) * 4).astype(F32)
    return np.concatenate([bits, normal, _boundaries(), EDGE])


X = _inputs()
# cumlogsumexp operand: finite, rows of 64.
C = (np.random.default_rng(8).standard_normal((8, 64)) * 5).astype(F32)


def seven(v):
    """Each approximated primitive of v, in NAMES order."""
    return [getattr(lax, n)(v) for n in NAMES]


def all_primitives(x, one, scalar_x, c):
    """seven() of a 1-D array, a size-1 array and a rank-0 value, then cumlogsumexp over
    the rows of c."""
    return seven(x) + seven(one) + seven(scalar_x) + [lax.cumlogsumexp(c, 1, False)]


# Size 0 runs as its own program: fused with the size-1 operand it trips a fusion bug (the
# size-1 results are computed inside the size-0 loop and never written).
ARGS = (X, np.array([-0.8125], F32), np.array(MAXF, F32), C)
EMPTY = X[:0].copy()
SHAPES = ("n", "size 1", "rank 0", "size 0")


def _libm_kernel():
    @numba.njit(error_model="numpy")
    def libm_all(x, one, out):
        """What the backend generated before fastmath: numba's libm calls."""
        for i in range(x.shape[0]):
            v = x[i]
            out[0, i] = np.exp(v)
            out[1, i] = np.expm1(v)
            out[2, i] = math.erf(v)
            out[3, i] = np.log(v)
            out[4, i] = np.log1p(v)
            out[5, i] = rt.logistic(v, one)
            out[6, i] = np.tanh(v)
    assert NAMES == ["erf", "exp", "expm1", "log", "log1p", "logistic", "tanh"]
    return libm_all


_LIBM_ALL = _libm_kernel()
_LIBM_ROW = {"exp": 0, "expm1": 1, "erf": 2, "log": 3, "log1p": 4, "logistic": 5, "tanh": 6}


def libm(x: np.ndarray) -> dict:
    """name -> numba's libm result over the 1-D array x."""
    out = np.empty((7, x.size), x.dtype)
    _LIBM_ALL(x, x.dtype.type(1), out)
    return {n: out[_LIBM_ROW[n]] for n in NAMES}


def _outputs(fn) -> list[np.ndarray]:
    """fn(*ARGS) and fn(EMPTY)'s seven outputs, as numpy arrays, cumlogsumexp's last."""
    main = [np.asarray(o) for o in fn(all_primitives)(*ARGS)]
    return main[:-1] + [np.asarray(o) for o in fn(seven)(EMPTY)] + main[-1:]


_RUNS: dict = {}


def run(fast_math: bool):
    """(executable of all_primitives, outputs) compiled for the CPU with the flag given."""
    if fast_math not in _RUNS:
        jitted = []

        def compiled(f):
            jitted.append(jit(f, backend="cpu"))
            return jitted[-1]
        with flags(fast_math=fast_math, cache=False):
            out = _outputs(compiled)
        _RUNS[fast_math] = (executable_of(jitted[0]), out)
    return _RUNS[fast_math]


_WANT: list = []


def eager():
    """The reference interpreter's outputs (eager jitgrad, numpy implementations)."""
    if not _WANT:
        _WANT.append(_outputs(lambda f: f))
    return _WANT[0]


def outputs_of(out, name):
    """(shape label, input, output) for primitive ``name``."""
    k = NAMES.index(name)
    for j, (label, x) in enumerate(zip(SHAPES, ARGS[:3] + (EMPTY,))):
        yield label, np.asarray(x).reshape(-1), out[j * len(NAMES) + k].reshape(-1)


# ------------------------------------------------------------------ fast_math on

def test_generated_source_calls_fastmath_for_float32():
    exe, _ = run(True)
    for n in NAMES:
        assert f"rt.{scalar.FAST_F32[n]}(" in exe.source, n
    assert "rt.logaddexp_f32(" in exe.source
    for libm_call in ("np.exp(", "np.expm1(", "np.log(", "np.log1p(", "np.tanh(", "math.erf(",
                      "rt.logistic(", "rt.logaddexp("):
        assert libm_call not in exe.source, libm_call


@pytest.mark.parametrize("name", NAMES)
def test_fast_math_within_documented_ulp_bounds(name):
    _, out = run(True)
    want_all = eager()
    for (label, x, got), (_, _, want) in zip(outputs_of(out, name), outputs_of(want_all, name)):
        assert got.dtype == want.dtype == F32 and got.shape == want.shape, (name, label)
        truth = reference(name, x)
        nan = np.isnan(truth)
        assert (np.isnan(got) == nan).all() and (np.isnan(want) == nan).all(), (name, label)
        if not (~nan).any():
            continue
        d = ulp_distance(got[~nan], truth[~nan])
        worst = int(np.argmax(d))
        assert d[worst] <= ULP_BOUND[name], (
            f"{name}({x[~nan][worst]!r}) [{label}] = {got[~nan][worst]!r}, correctly rounded "
            f"{truth[~nan][worst]!r}: {d[worst]} ulp > {ULP_BOUND[name]}")
        # Against the reference interpreter: our bound plus the reference's own error.
        ref_err = int(ulp_distance(want[~nan], truth[~nan]).max())
        assert ulp_distance(got[~nan], want[~nan]).max() <= ULP_BOUND[name] + ref_err, (name, label)


@pytest.mark.parametrize("name", NAMES)
def test_fast_math_special_inputs_equal_reference(name):
    _, out = run(True)
    (_, x, got), (_, _, want) = next(outputs_of(out, name)), next(outputs_of(eager(), name))
    special = (x == 0) | np.isinf(x) | np.isnan(x)
    assert special.sum() >= 6
    g, w = got[special], want[special]
    assert (np.isnan(g) == np.isnan(w)).all(), (name, x[special], g, w)
    ok = ~np.isnan(w)
    assert (g[ok] == w[ok]).all() and (np.signbit(g[ok]) == np.signbit(w[ok])).all(), (
        name, x[special][ok], g[ok], w[ok])
    # Subnormal inputs stay within the bound (their results are 1, x or log of them).
    sub = (x != 0) & (np.abs(x) < 2.0 ** -126)
    if name == "log":
        sub &= x > 0
    assert sub.sum() >= 3
    assert ulp_distance(got[sub], reference(name, x[sub])).max() <= ULP_BOUND[name]


def test_fast_cumlogsumexp_matches_reference():
    _, out = run(True)
    want = eager()[-1]
    np.testing.assert_allclose(out[-1], want, rtol=1e-5, atol=1e-6)


def test_logaddexp_f32_accuracy_and_specials():
    """rt.logaddexp_f32 (cumlogsumexp's step): within 3 ulps of max(|x|, |y|, log 2) of
    float64 logaddexp (libm gives 2.7 on these inputs: the rounding of x - y dominates), and
    the same results as the libm version for infinities, NaN and equal operands."""
    @numba.njit(error_model="numpy")
    def both(x, y, fast, slow):
        for i in range(x.shape[0]):
            fast[i] = rt.logaddexp_f32(x[i], y[i])
            slow[i] = rt.logaddexp(x[i], y[i], F32(math.log(2.0)))
    rng = np.random.default_rng(9)
    scale = 10.0 ** rng.uniform(-2, 4, 200_000)
    x = (rng.standard_normal(scale.size) * scale).astype(F32)
    y = (rng.standard_normal(scale.size) * scale).astype(F32)
    fast, slow = np.empty_like(x), np.empty_like(x)
    both(x, y, fast, slow)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    unit = np.spacing(np.maximum(np.maximum(np.abs(x), np.abs(y)), F32(math.log(2.0)))).astype(np.float64)
    err = np.abs(fast - np.logaddexp(x64, y64)) / unit
    assert err.max() <= 3.0, (x[np.argmax(err)], y[np.argmax(err)], err.max())
    s = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1.0, MAXF, -MAXF, 88.0], F32)
    sx, sy = np.repeat(s, s.size), np.tile(s, s.size)
    f2, s2 = np.empty_like(sx), np.empty_like(sx)
    both(sx, sy, f2, s2)
    assert (np.isnan(f2) == np.isnan(s2)).all()
    exact = (np.isinf(s2) | np.isinf(sx) | np.isinf(sy) | (sx == sy)) & ~np.isnan(s2)
    assert (f2[exact] == s2[exact]).all()


def test_generated_kernels_vectorise_without_libm_calls():
    exe, _ = run(True)
    asm = kernel_asm(exe)
    hit = _LIBM.search(asm)
    assert hit is None, f"a fast_math kernel calls libm: {hit.group(0)}"
    assert _vector_fma(asm), "no packed float32 vector arithmetic in the fast_math kernels"


def test_libm_kernels_show_libm_calls():
    """The control for the check above: the fast_math=False kernels call libm."""
    exe, _ = run(False)
    assert _LIBM.search(kernel_asm(exe))


def _gelu(x):
    return 0.5 * x * (1 + jnp.tanh(0.79788456 * (x + 0.044715 * x ** 3)))


def test_parallel_gelu_kernel_vectorises():
    """The tanh-GELU the benchmark times, large enough for a prange loop."""
    x = np.linspace(-6, 6, codegen.PARALLEL_MIN_WORK // 4, dtype=F32)
    with flags(fast_math=True, cache=False):
        jf = jit(_gelu, backend="cpu")
        got = np.asarray(jf(x))
    exe = executable_of(jf)
    assert "prange(" in exe.source and "rt.tanh_f32(" in exe.source
    # numpy's float32 GELU (for x < -5.3, 1 + tanh(.) cancels to 0 in float32 either way)
    want = 0.5 * x * (1 + np.tanh(F32(0.79788456) * (x + F32(0.044715) * x ** 3)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    asm = kernel_asm(exe)
    assert not _LIBM.search(asm) and _vector_fma(asm)


def _xent_value_and_grad(z, y):
    m = jnp.max(z, axis=-1, keepdims=True)
    logp = z - m - jnp.log(jnp.sum(jnp.exp(z - m), axis=-1, keepdims=True))
    return -jnp.mean(jnp.sum(y * logp, axis=-1))


# A call left to one of fastmath's functions (inside the generated code, LLVM's own
# inliner gives up on them in large loops unless they are marked always-inline).
_FASTMATH_CALL = re.compile(r"\$_ZN7jitgrad8backends8fastmath\d+\w+")


def test_large_row_kernel_inlines_fastmath_functions():
    """Softmax cross-entropy forward + backward is one large row kernel: every exp/log
    call must be inlined, in the process that compiles it (before they were marked
    forceinline, LLVM kept 17 calls to exp_f32 in this kernel, which ran 2.5x as long)."""
    rng = np.random.default_rng(3)
    z = (rng.standard_normal((64, 1000)) * 3).astype(F32)
    y = np.eye(1000, dtype=F32)[rng.integers(0, 1000, 64)]
    with flags(fast_math=True, cache=False):
        jf = jit(jitgrad.value_and_grad(_xent_value_and_grad), backend="cpu")
        loss, grad = jf(z, y)
    exe = executable_of(jf)
    assert "rt.exp_f32(" in exe.source and "rt.log_f32(" in exe.source
    asm = kernel_asm(exe)
    hit = _FASTMATH_CALL.search(asm)
    assert hit is None, f"the kernel calls a fastmath function instead of inlining it: {hit.group(0)}"
    want_loss, want_grad = jitgrad.value_and_grad(_xent_value_and_grad)(z, y)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-9)


# ------------------------------------------------------------------ fast_math off, float64

def test_fast_math_off_is_libm_bit_exact():
    exe, out = run(False)
    assert "_f32(" not in exe.source
    for n in NAMES:
        for (label, x, got), (_, _, want) in zip(outputs_of(out, n), outputs_of(eager(), n)):
            expected = libm(np.ascontiguousarray(x))[n]
            assert np.array_equal(got.view(np.uint32), expected.view(np.uint32)), (n, label)
            assert (np.isnan(got) == np.isnan(want)).all(), (n, label)


def _source(f, *args):
    closed = optimize(jitgrad.make_ir(f)(*args))
    return codegen.generate(fuse(closed, cpu.supports)).source


def test_float64_unaffected():
    with np.errstate(invalid="ignore"):       # NaN payloads
        x = np.concatenate([X, EDGE]).astype(np.float64)
    f = lambda v: [getattr(lax, n)(v) for n in NAMES]  # noqa: E731
    with flags(jax_enable_x64=True, cache=False):
        with flags(fast_math=False):
            src_off = _source(f, x)
        with flags(fast_math=True):
            assert _source(f, x) == src_off
            assert "_f32(" not in src_off
            got = [np.asarray(o) for o in jit(f, backend="cpu")(x)]
    expected = libm(x)
    for n, g in zip(NAMES, got):
        assert g.dtype == np.float64
        assert np.array_equal(g.view(np.uint64), expected[n].view(np.uint64)), n


# ------------------------------------------------------------------ cache keys

def test_cache_key_distinguishes_fast_math(tmp_path, monkeypatch):
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(tmp_path))
    x = np.linspace(-2, 2, 33, dtype=F32)
    keys, sources = {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        with flags(cache=True):
            for on in (True, False, True):
                with flags(fast_math=on):
                    before = loader.STATS["reused"]
                    # A new function each time (jit caches per function): only the backend
                    # can reuse a compiled module, by its cache key.
                    jf = jit(lambda v: jnp.tanh(v) * 3.0, backend="cpu")
                    y = np.asarray(jf(x))
                    exe = executable_of(jf)
                    assert ("rt.tanh_f32(" in exe.source) is on
                    if on in keys:
                        assert exe.key == keys[on] and exe.source == sources[on]
                        assert loader.STATS["reused"] == before + 1
                    keys[on], sources[on] = exe.key, exe.source
                    np.testing.assert_allclose(y, np.tanh(x) * 3, rtol=1e-6)
    assert keys[True] != keys[False]
    assert len(list(tmp_path.rglob("*.py"))) == 2


def test_cache_key_includes_fast_math_and_fastmath_version(monkeypatch):
    with flags(fast_math=True):
        on = cpu.settings()
        monkeypatch.setattr(fm, "VERSION", fm.VERSION + 1)
        assert cpu.settings() != on
        monkeypatch.setattr(fm, "VERSION", fm.VERSION - 1)
        assert cpu.settings() == on
    with flags(fast_math=False):
        assert cpu.settings() != on
