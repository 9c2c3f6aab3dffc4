"""Accuracy, special values and vectorisation of jitgrad.backends.fastmath (float32).

Accuracy: a dense sweep over the whole float32 range (every 1024th bit pattern, with
scattered low bits, plus random patterns and boundary values) against float64 references
computed with numpy (math.erf for erf) and rounded to float32. The bounds are the maxima
measured over all 2^32 inputs and stated in each function's docstring.
"""
from __future__ import annotations

import math
import re

import llvmlite.binding as llvm
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jitgrad.backends import fastmath as fm

# Max ulp error of each function (measured exhaustively; see the docstrings).
ULP_BOUND = {"exp": 1, "expm1": 1, "log": 1, "log1p": 1, "tanh": 2, "logistic": 2, "erf": 1}

F32 = np.float32
TINY = np.finfo(np.float32).smallest_subnormal
MAXF = np.finfo(np.float32).max


def _loop(fn):
    """A serial @njit loop applying ``fn`` elementwise (the shape the backend generates)."""
    @numba.njit(error_model="numpy")
    def apply(x, out):
        for i in range(x.shape[0]):
            out[i] = fn(x[i])
    return apply


_LOOPS: dict = {}


def apply(name: str, x: np.ndarray) -> np.ndarray:
    """fastmath's float32 ``name`` over an array, through a compiled loop."""
    if name not in _LOOPS:
        _LOOPS[name] = _loop(fm.FLOAT32[name])
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty_like(x)
    _LOOPS[name](x, out)
    return out


# ------------------------------------------------------------------ references (float64)

def _logistic64(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


_erf64 = np.frompyfunc(math.erf, 1, 1)

REFERENCE = {
    "exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p, "tanh": np.tanh,
    "logistic": _logistic64,
    "erf": lambda x: _erf64(x).astype(np.float64),
}


def reference(name: str, x: np.ndarray) -> np.ndarray:
    """The float64 result rounded to float32."""
    with np.errstate(all="ignore"):
        return REFERENCE[name](x.astype(np.float64)).astype(np.float32)


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Number of float32 values between a and b (+0 and -0 count as one; NaN excluded)."""
    def ordered(v):
        i = v.view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)
    return np.abs(ordered(a) - ordered(b))


# ------------------------------------------------------------------ inputs

def _sweep() -> np.ndarray:
    """Every 1024th bit pattern (low bits scattered by a multiplicative hash) + random ones."""
    i = np.arange(2 ** 22, dtype=np.uint64)
    low = (i * np.uint64(2654435761)) >> np.uint64(7) & np.uint64(1023)
    bits = ((i << np.uint64(10)) | low).astype(np.uint32)
    rand = np.random.default_rng(0).integers(0, 2 ** 32, size=2 ** 20, dtype=np.uint64)
    return np.concatenate([bits, rand.astype(np.uint32)]).view(np.float32)


def _boundaries() -> np.ndarray:
    """Special values, thresholds of every function, and their float32 neighbours."""
    base = np.array([
        0.0, 1.0, 2.0, 0.5, 1e-30, TINY, 2 * TINY, 2.0 ** -126, 2.0 ** -126 - 2.0 ** -149,
        2.0 ** -24, 2.0 ** -25, MAXF, np.inf,
        88.72283935546875, 88.0, 89.0, 87.33654, 103.97208, 104.0, 17.328680, 30.0,
        0.34657359, 0.69314718, 1.0 - 2.0 ** -24, 0.70710677, 1.4142135,
        9.0, 9.0109, 9.1, 0.625, 3.9192059, 3.92, 4.0, 20.0, 100.0,
    ], dtype=np.float32)
    base = np.concatenate([base, -base])
    with np.errstate(over="ignore"):
        near = np.concatenate([np.nextafter(base, F32(np.inf)), np.nextafter(base, F32(-np.inf))])
    nans = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FFFFFFF], dtype=np.uint32)
    return np.concatenate([base, near, nans.view(np.float32)])


_INPUTS: list = []


def inputs() -> np.ndarray:
    if not _INPUTS:
        _INPUTS.append(np.concatenate([_sweep(), _boundaries()]))
    return _INPUTS[0]


# ------------------------------------------------------------------ accuracy

@pytest.mark.parametrize("name", sorted(fm.FLOAT32))
def test_ulp_error_over_float32_range(name):
    x = inputs()
    if name == "erf":    # math.erf is slow; beyond |x| = 4 erf is exactly +-1 (tested below)
        x = x[~(np.abs(x) >= 4.5)]
    got, want = apply(name, x), reference(name, x)
    nan_got, nan_want = np.isnan(got), np.isnan(want)
    bad_nan = np.flatnonzero(nan_got != nan_want)
    assert bad_nan.size == 0, f"{name}: NaN mismatch at x={x[bad_nan[:5]]}: {got[bad_nan[:5]]}"
    ok = ~nan_want
    d = ulp_distance(got[ok], want[ok])
    worst = int(np.argmax(d))
    assert d[worst] <= ULP_BOUND[name], (
        f"{name}({x[ok][worst]!r}) = {got[ok][worst]!r}, reference {want[ok][worst]!r}: "
        f"{d[worst]} ulp > bound {ULP_BOUND[name]}")


def test_tanh_every_float_near_its_reduction_switches_and_saturation():
    """tanh_f32 switches k = round(2x / ln2) at x = (k + 1/2) ln2/2 (a different branch of
    its addition formula on each side) and returns exactly +-1 once k >= 25: every float
    within 2048 ulp of each switch point and every float in [8, 9.2], both signs."""
    h = math.log(2) / 2
    centers = np.array([(k + 0.5) * h for k in range(27)], np.float32).view(np.int32)
    near = (centers[:, None] + np.arange(-2048, 2048, dtype=np.int32)).ravel()
    band = np.arange(F32(8.0).view(np.int32), F32(9.2).view(np.int32) + 1, dtype=np.int32)
    x = np.concatenate([near, band]).view(np.float32)
    x = np.concatenate([x, -x])
    got, want = apply("tanh", x), reference("tanh", x)
    d = ulp_distance(got, want)
    assert d.max() <= ULP_BOUND["tanh"], f"tanh({x[np.argmax(d)]!r}): {d.max()} ulp"
    big = np.abs(x) >= 8.4912          # 2|x| / ln2 >= 24.5: k = 25, s +- 1 round to s
    assert (got[big] == np.sign(x[big])).all()


def test_exp_subnormal_results_and_overflow_threshold():
    # exp's results pass through the subnormals on the way to 0.
    x = np.linspace(-104.5, -86.0, 200001, dtype=np.float32)
    assert ulp_distance(apply("exp", x), reference("exp", x)).max() <= ULP_BOUND["exp"]
    y = apply("exp", x)
    assert (y[x < -103.98] == 0).all() and (y[(x > -103.9) & (x < -87.4)] > 0).all()
    # The last float32 with a finite exp, and the next one.
    edge = F32(88.72283)     # exp(88.72284) > FLT_MAX + ulp/2
    y = apply("exp", np.array([edge, np.nextafter(edge, F32(np.inf))], np.float32))
    assert np.isfinite(y[0]) and y[1] == np.inf


# ------------------------------------------------------------------ special values

def _eq(got, want):
    """Same value, NaN-ness and sign of zero."""
    got, want = np.asarray(got, np.float32), np.asarray(want, np.float32)
    return (np.isnan(got) == np.isnan(want)).all() and (
        np.signbit(got[~np.isnan(got)]) == np.signbit(want[~np.isnan(want)])).all() and (
        got[~np.isnan(got)] == want[~np.isnan(want)]).all()


NAN, INF = np.nan, np.inf
SPECIAL = {
    "exp": [(NAN, NAN), (INF, INF), (-INF, 0.0), (0.0, 1.0), (-0.0, 1.0), (TINY, 1.0),
            (89.0, INF), (1e30, INF), (MAXF, INF), (-104.0, 0.0), (-1e30, 0.0), (-MAXF, 0.0)],
    "expm1": [(NAN, NAN), (INF, INF), (-INF, -1.0), (0.0, 0.0), (-0.0, -0.0), (TINY, TINY),
              (-TINY, -TINY), (2.0 ** -30, 2.0 ** -30), (-20.0, -1.0), (-MAXF, -1.0),
              (89.0, INF), (MAXF, INF)],
    "log": [(NAN, NAN), (INF, INF), (-INF, NAN), (0.0, -INF), (-0.0, -INF), (-1.0, NAN),
            (-TINY, NAN), (1.0, 0.0)],
    "log1p": [(NAN, NAN), (INF, INF), (-INF, NAN), (-1.0, -INF), (-1.5, NAN), (0.0, 0.0),
              (-0.0, -0.0), (TINY, TINY), (-TINY, -TINY), (2.0 ** -30, 2.0 ** -30)],
    "tanh": [(NAN, NAN), (INF, 1.0), (-INF, -1.0), (0.0, 0.0), (-0.0, -0.0), (TINY, TINY),
             (-TINY, -TINY), (9.2, 1.0), (-9.2, -1.0), (20.0, 1.0), (MAXF, 1.0),
             (-MAXF, -1.0)],
    "logistic": [(NAN, NAN), (INF, 1.0), (-INF, 0.0), (0.0, 0.5), (-0.0, 0.5), (20.0, 1.0),
                 (MAXF, 1.0), (-200.0, 0.0), (-MAXF, 0.0)],
    "erf": [(NAN, NAN), (INF, 1.0), (-INF, -1.0), (0.0, 0.0), (-0.0, -0.0), (3.95, 1.0),
            (-3.95, -1.0), (4.0, 1.0), (10.0, 1.0), (MAXF, 1.0), (-MAXF, -1.0)],
}


@pytest.mark.parametrize("name", sorted(SPECIAL))
def test_special_values(name):
    x = np.array([c[0] for c in SPECIAL[name]], np.float32)
    want = np.array([c[1] for c in SPECIAL[name]], np.float32)
    got = apply(name, x)
    for xi, g, w in zip(x, got, want):
        assert _eq(g, w), f"{name}({xi!r}) = {g!r}, expected {w!r}"


def test_nan_payloads_stay_nan():
    x = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FFFFFFF],
                 np.uint32).view(np.float32)
    for name in fm.FLOAT32:
        assert np.isnan(apply(name, x)).all(), name


def test_subnormal_inputs():
    x = np.array([TINY, 3 * TINY, 2.0 ** -140, 2.0 ** -127, 2.0 ** -126 - 2.0 ** -149],
                 np.float32)
    x = np.concatenate([x, -x])
    for name in ("exp", "expm1", "log1p", "tanh", "logistic", "erf"):
        d = ulp_distance(apply(name, x), reference(name, x))
        assert d.max() <= ULP_BOUND[name], name
    pos = x[x > 0]
    assert ulp_distance(apply("log", pos), reference("log", pos)).max() <= ULP_BOUND["log"]
    # log of the smallest subnormal: -149 ln 2.
    assert abs(float(apply("log", np.array([TINY], np.float32))[0]) + 149 * math.log(2)) < 1e-5


@settings(max_examples=200, deadline=None)
@given(st.floats(width=32, allow_nan=False))
def test_odd_and_complementary_symmetries(v):
    x = np.array([v, -v], np.float32)
    for name in ("tanh", "erf"):      # odd functions: computed from |x| with x's sign
        y = apply(name, x)
        assert y[0] == -y[1] and np.signbit(y[0]) != np.signbit(y[1]), (name, v)
    s = apply("logistic", x).astype(np.float64)
    assert abs(s[0] + s[1] - 1.0) <= 2.0 ** -22


# ------------------------------------------------------------------ vectorisation

_LIBM = re.compile(r"\b(expf|expm1f|logf|log1pf|tanhf|erff|exp|expm1|log|log1p|tanh|erf)\b")


def _has_avx2() -> bool:
    return bool(llvm.get_host_cpu_features().get("avx2", False))


def _vector_fma(asm: str) -> bool:
    """Packed float32 multiply(-add)s on full vector registers."""
    reg = "ymm" if _has_avx2() else "xmm"
    return re.search(rf"\b(vfmadd\w*ps|vfnmadd\w*ps|vmulps|mulps)\s+[^\n]*%{reg}", asm) is not None


def _asm(dispatcher) -> str:
    return "\n".join(dispatcher.inspect_asm().values())


def test_control_libm_loop_is_scalar_call():
    """The check below can fail: numba's own np.tanh loop calls tanhf."""
    @numba.njit(error_model="numpy")
    def libm_loop(x, out):
        for i in range(x.shape[0]):
            out[i] = np.tanh(x[i])
    x = np.ones(16, np.float32)
    libm_loop(x, np.empty_like(x))
    assert _LIBM.search(_asm(libm_loop))


@pytest.mark.parametrize("name", sorted(fm.FLOAT32))
def test_loop_vectorises_without_libm_calls(name):
    x = np.linspace(-5, 5, 64, dtype=np.float32)
    apply(name, x)
    asm = _asm(_LOOPS[name])
    assert not _LIBM.search(asm), f"{name}: the loop calls libm: {_LIBM.search(asm).group(0)}"
    assert _vector_fma(asm), f"{name}: no packed float32 vector arithmetic in the loop"


def test_parallel_gelu_loop_vectorises():
    """A prange tanh-GELU kernel, as the backend would generate it."""
    tanh = fm.tanh_f32
    c0, c1, half, one = F32(0.7978845608), F32(0.044715), F32(0.5), F32(1.0)

    @numba.njit(parallel=True, error_model="numpy")
    def gelu(x, out):
        for i in numba.prange(x.shape[0]):
            v = x[i]
            out[i] = half * v * (one + tanh(c0 * (v + c1 * v * v * v)))
    x = np.linspace(-6, 6, 1001, dtype=np.float32)
    out = np.empty_like(x)
    gelu(x, out)
    x64 = x.astype(np.float64)
    want = 0.5 * x64 * (1 + np.tanh(0.7978845608 * (x64 + 0.044715 * x64 ** 3)))
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    asm = _asm(gelu)
    assert not _LIBM.search(asm) and _vector_fma(asm)


def test_fast_math_flag_is_a_trace_flag():
    import jitgrad
    from jitgrad.core import config as config_module
    assert "fast_math" in config_module.TRACE_FLAGS
    before = jitgrad.config.fast_math
    try:
        jitgrad.config.update("fast_math", not before)
        assert jitgrad.config.fast_math is (not before)
    finally:
        jitgrad.config.update("fast_math", before)
