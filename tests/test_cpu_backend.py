"""The numba CPU backend against the reference interpreter.

Every registered primitive runs through ``jit(f, backend="cpu")`` in some program below,
and the results must equal eager evaluation (the numpy reference implementations):
bit-exact for integers and bools, within float tolerance for floats, NaN for NaN.
Inputs cover NaN/+-inf/-0.0, size-0 and size-1 dimensions, broadcasting, float32 and
float64, and (u)int8..64 and bool where a primitive takes them.

numba compiles take 0.3-5 s each, so test cases are *programs* that compute many
primitives at once (one compile each); the disk cache goes to a per-session directory.
"""
from __future__ import annotations

import contextlib
import math

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import jit, lax
from jitgrad.core.ir import ClosedIR, IR
from jitgrad.core.primitive import registry
from jitgrad.ops.layout import copy_p
from jitgrad.passes._ir_tools import iter_subirs

from program_generator import programs

F32, F64 = np.float32, np.float64
SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -3.0, 1e-3, 10.0,
            -10.0, 88.5, 0.9999, -0.9999]


@pytest.fixture(scope="session", autouse=True)
def _session_cache_dir(tmp_path_factory):
    """Compiled programs go to a fresh cache directory for the session."""
    import os
    old = os.environ.get("JITGRAD_CACHE_DIR")
    os.environ["JITGRAD_CACHE_DIR"] = str(tmp_path_factory.mktemp("jitgrad-cache"))
    yield
    if old is None:
        os.environ.pop("JITGRAD_CACHE_DIR", None)
    else:
        os.environ["JITGRAD_CACHE_DIR"] = old


@contextlib.contextmanager
def x64_mode(on: bool):
    previous = jitgrad.config.jax_enable_x64
    jitgrad.config.update("jax_enable_x64", on)
    try:
        yield
    finally:
        jitgrad.config.update("jax_enable_x64", previous)


def floats(shape, dtype=F32, seed=0, scale=3.0) -> np.ndarray:
    """Normal values with the special values mixed in (all of them if there is room)."""
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(shape) * scale).astype(dtype)
    flat = a.reshape(-1)
    k = min(len(SPECIALS), flat.size)
    if k:
        pos = rng.choice(flat.size, size=k, replace=False)
        flat[pos] = np.array(SPECIALS[:k], dtype)
    return a


def ints(shape, dtype, seed=0) -> np.ndarray:
    """Random integers including the type's extremes, -1, 0 and 1."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    a = rng.integers(max(info.min, -1000), min(info.max, 1000), size=shape, endpoint=True).astype(dtype)
    flat = a.reshape(-1)
    special = [info.min, info.max, 0, 1, 7, info.max - 1] + ([-1, -7, info.min + 1] if info.min < 0 else [])
    k = min(len(special), flat.size)
    if k:
        pos = rng.choice(flat.size, size=k, replace=False)
        flat[pos] = np.array(special[:k]).astype(dtype)
    return a


def _tree_leaves(x):
    return jitgrad.tree_util.tree_leaves(x)


def assert_same(got, want, rtol, atol, what=""):
    got_l, want_l = _tree_leaves(got), _tree_leaves(want)
    assert len(got_l) == len(want_l), what
    for k, (g, w) in enumerate(zip(got_l, want_l)):
        g, w = np.asarray(g), np.asarray(w)
        label = f"{what} output {k}"
        assert g.dtype == w.dtype, f"{label}: dtype {g.dtype} != {w.dtype}"
        assert g.shape == w.shape, f"{label}: shape {g.shape} != {w.shape}"
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True, err_msg=label)
            # The sign of infinities and which entries are NaN must agree exactly.
            np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=label)
        else:
            np.testing.assert_array_equal(g, w, err_msg=label)


def check(f, *args, rtol=2e-6, atol=1e-6, static_argnums=(), oracle="eager"):
    """Run ``f`` eagerly (reference implementations) and compiled for the CPU; compare.
    ``oracle="reference"`` uses the reference backend under jit instead of eager mode."""
    if oracle == "eager":
        want = f(*args)
    else:
        want = jit(f, backend="reference", static_argnums=static_argnums)(*args)
    jf = jit(f, backend="cpu", static_argnums=static_argnums)
    got = jf(*args)
    assert_same(got, want, rtol, atol, getattr(f, "__name__", ""))
    return jf


def executable_of(jf):
    entries = list(jf._cache.values())
    return entries[-1].executable


# ------------------------------------------------------------------------- programs
# Each CASE is (name, function, args factory, x64, rtol, atol). One compile per case.

CASES: list[tuple] = []


def case(name, args, x64=False, rtol=2e-6, atol=1e-6):
    def register(fn):
        CASES.append((name, fn, args, x64, rtol, atol))
        return fn
    return register


FLOAT_UNARY = ("neg", "sign", "abs", "square", "floor", "ceil", "is_finite", "exp", "exp2", "log",
               "log1p", "expm1", "sqrt", "rsqrt", "cbrt", "tanh", "logistic", "sin", "cos", "tan",
               "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "erf", "erf_inv",
               "lgamma")


def float_unary(x):
    outs = [getattr(lax, name)(x) for name in FLOAT_UNARY]
    outs += [lax.round(x, 0), lax.round(x, 1), lax.integer_pow(x, 3), lax.integer_pow(x, -2),
             lax.integer_pow(x, 0), lax.stop_gradient(x), copy_p.bind(x)]
    return outs


for _dt, _shape, _x64 in ((F32, (3, 7), False), (F32, (0, 4), False), (F64, (4, 5), True)):
    case(f"float_unary_{np.dtype(_dt).name}_{_shape}",
         (lambda dt=_dt, s=_shape: (floats(s, dt),)), x64=_x64,
         rtol=1e-5 if _dt == F32 else 1e-12, atol=1e-6 if _dt == F32 else 1e-12)(float_unary)

FLOAT_BINARY = ("add", "sub", "mul", "div", "rem", "pow", "max", "min", "atan2", "nextafter",
                "eq", "ne", "lt", "le", "gt", "ge")


def float_binary(x, y):
    # y broadcasts against x (jnp inserts broadcast_in_dim); lax ops need equal shapes.
    x, y = jnp.broadcast_arrays(x, y)
    outs = [getattr(lax, name)(x, y) for name in FLOAT_BINARY]
    outs += [lax.select_n(x > y, x, y), lax.select_n(jnp.asarray(x > 0, jnp.int32), y, x),
             lax.clamp(jnp.float32(-1) if x.dtype == F32 else -1.0, x, y),
             jnp.where(jnp.isnan(x), y, x * y + 1)]
    return outs


case("float_binary_f32_broadcast", lambda: (floats((3, 1, 6), F32, 1), floats((5, 6), F32, 2)),
     rtol=1e-5)(float_binary)
case("float_binary_f64", lambda: (floats((4, 6), F64, 3), floats((4, 6), F64, 4)), x64=True,
     rtol=1e-12, atol=1e-12)(float_binary)


def int_ops(x, y, s):
    ops = [lax.add(x, y), lax.sub(x, y), lax.mul(x, y), lax.div(x, y), lax.rem(x, y),
           lax.max(x, y), lax.min(x, y), lax.neg(x), lax.sign(x), lax.abs(x), lax.square(x),
           lax.bitwise_and(x, y), lax.bitwise_or(x, y), lax.bitwise_xor(x, y), lax.bitwise_not(x),
           lax.shift_left(x, s), lax.shift_right_logical(x, s), lax.shift_right_arithmetic(x, s),
           lax.integer_pow(x, 3), lax.integer_pow(x, 0),
           lax.eq(x, y), lax.ne(x, y), lax.lt(x, y), lax.le(x, y), lax.gt(x, y), lax.ge(x, y),
           lax.select_n(x > y, x, y), lax.clamp(y, x, lax.max(x, y)),
           jnp.sum(x, axis=0), jnp.prod(y, axis=1), jnp.max(x, axis=1), jnp.min(y, axis=0),
           lax.reduce_and(x, (1,)), lax.reduce_or(y, (0,)), lax.reduce_xor(x, (0, 1)),
           lax.argmax(x, 1, jnp.int32), lax.argmin(y, 0, jnp.int32), jnp.cumsum(x, axis=1),
           jnp.cumprod(y, axis=0)]
    return ops


def _shifts(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    bits = np.dtype(dtype).itemsize * 8
    choices = [0, 1, 3, bits - 1, bits, bits + 1, 2 * bits] + ([-1, -bits] if np.dtype(dtype).kind == "i" else [])
    return rng.choice(np.array(choices), size=shape).astype(dtype)


def int_ops_many(*arrays):
    """int_ops for several dtypes in one program: (x, y, shifts) per dtype."""
    outs = []
    for k in range(0, len(arrays), 3):
        outs += int_ops(*arrays[k:k + 3])
    return outs


def _int_args(dtypes, seed=1):
    args = []
    for k, dt in enumerate(dtypes):
        args += [ints((6, 5), dt, seed + 3 * k), ints((6, 5), dt, seed + 3 * k + 1),
                 _shifts((6, 5), dt, seed + 3 * k + 2)]
    return tuple(args)


for _dts, _x64 in (((np.int32,), False), ((np.uint32,), False), ((np.int8, np.uint16), False),
                   ((np.int64,), True), ((np.uint64,), True)):
    case("int_ops_" + "_".join(np.dtype(d).name for d in _dts), (lambda d=_dts: _int_args(d)),
         x64=_x64)(int_ops_many)


@case("uint32_prng_mix", lambda: (ints((4, 33), np.uint32, 5), ints((4, 33), np.uint32, 6)))
def uint32_mix(k, c):
    # The shapes of a threefry round: add, rotate (shift/or), xor, all wrapping.
    def rotl(v, r):
        return lax.shift_left(v, np.uint32(r)) | lax.shift_right_logical(v, np.uint32(32 - r))
    x0, x1 = k + c, c
    for r in (13, 15, 26, 6):
        x0 = x0 + x1
        x1 = rotl(x1, r) ^ x0
    bits = lax.shift_right_logical(x1, np.uint32(9)) | np.uint32(0x3F800000)
    return x0, x1, lax.bitcast_convert_type(bits, jnp.float32) - 1.0


@case("bool_ops", lambda: (np.random.default_rng(0).random((5, 4)) > 0.5,
                           np.random.default_rng(1).random((5, 4)) > 0.5))
def bool_ops(a, b):
    return [lax.bitwise_and(a, b), lax.bitwise_or(a, b), lax.bitwise_xor(a, b), lax.bitwise_not(a),
            lax.eq(a, b), lax.ne(a, b), lax.max(a, b), lax.min(a, b), lax.select_n(a, b, a),
            lax.reduce_and(a, (1,)), lax.reduce_or(a, (0,)), lax.reduce_xor(b, (0, 1)),
            lax.reduce_max(a, (0,)), lax.reduce_min(b, (1,)), lax.argmax(a, 1, jnp.int32),
            jnp.asarray(a, jnp.int32) + jnp.asarray(b, jnp.float32),
            lax.convert_element_type(a, jnp.uint8)]


CONVERT_TARGETS = (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.bool_, np.float32)


@case("convert_from_f32", lambda: (np.concatenate([floats((40,), F32, 7, scale=1e3),
                                                  np.array([3e9, -3e9, 2147483520.0, -2147483648.0,
                                                            4294967040.0, 255.9, -128.9, 0.5, -0.5],
                                                           F32)]),))
def convert_from_f32(x):
    return [lax.convert_element_type(x, t) for t in CONVERT_TARGETS]


@case("convert_from_f64", lambda: (np.concatenate([floats((30,), F64, 8, scale=1e12),
                                                  np.array([9.3e18, -9.3e18, 1.9e19, 2.0**63, -2.0**63,
                                                            2.0**64, 2.0**63 - 1024], F64)]),),
      x64=True)
def convert_from_f64(x):
    return [lax.convert_element_type(x, t) for t in CONVERT_TARGETS + (np.int64, np.uint64)]


@case("convert_between_ints", lambda: (ints((20,), np.int32, 9), ints((20,), np.uint32, 10)))
def convert_between_ints(a, b):
    outs = [lax.convert_element_type(a, t) for t in CONVERT_TARGETS]
    outs += [lax.convert_element_type(b, t) for t in CONVERT_TARGETS]
    outs += [lax.bitcast_convert_type(a, jnp.float32), lax.bitcast_convert_type(b, jnp.int32),
             lax.bitcast_convert_type(lax.convert_element_type(a, jnp.float32), jnp.uint32)]
    return outs


def reductions(x):
    outs = []
    for axes in ((0,), (1,), (0, 1), (1, 2), (0, 2), (2,), ()):
        if all(a < x.ndim for a in axes):
            outs += [lax.reduce_sum(x, axes), lax.reduce_prod(x, axes), lax.reduce_max(x, axes),
                     lax.reduce_min(x, axes)]
    if x.ndim and x.shape[-1]:
        outs += [lax.argmax(x, x.ndim - 1, jnp.int32), lax.argmin(x, x.ndim - 1, jnp.int32)]
    if x.ndim > 1 and x.shape[0]:
        outs += [lax.argmax(x, 0, jnp.int32), lax.argmin(x, 0, jnp.int32)]
    return outs


def reductions_many(*xs):
    return [r for x in xs for r in reductions(x)]


case("reductions_(4, 6, 5)", lambda: (floats((4, 6, 5), F32, 11),), rtol=1e-5)(reductions)
case("reductions_size0_size1", lambda: (floats((0, 5), F32, 11), floats((3, 0), F32, 12),
                                        floats((1, 1, 7), F32, 13)), rtol=1e-5)(reductions_many)
case("reductions_f64", lambda: (floats((3, 8), F64, 12),), x64=True, rtol=1e-12, atol=1e-12)(reductions)


@case("cumulative", lambda: (floats((4, 5), F32, 13, scale=1.0), ints((3, 4), np.int32, 14)),
      rtol=1e-5)
def cumulative(x, n):
    return [lax.cumsum(x, 1, False), lax.cumprod(x, 0, True), lax.cummax(x, 1, True),
            lax.cummin(x, 0, False), lax.cumlogsumexp(x, 1, False), lax.cumlogsumexp(x, 0, True),
            lax.cumsum(n, 0, True), lax.cummax(n, 1, False)]


@case("layout_outputs", lambda: (floats((2, 3, 4), F32, 14), floats((4,), F32, 15)))
def layout_outputs(x, v):
    # Layout ops that are program outputs are materialised; inside expressions they are
    # read through index maps.
    t = lax.transpose(x, (2, 0, 1))
    outs = [t, lax.reshape(x, (6, 4)), lax.reshape(x, (4, 6), (2, 1, 0)), lax.rev(x, (0, 2)),
            lax.slice(x, (0, 1, 0), (2, 3, 4), (1, 1, 2)), lax.squeeze(x[:, :1], (1,)),
            lax.broadcast_in_dim(v, (3, 4), (1,)), lax.expand_dims(v, (0,)),
            lax.pad(x, np.float32(-7.0), ((1, 0, 0), (0, 2, 1), (-1, 1, 0))),
            lax.concatenate([x, x * 2, x[:, :1]], 1), lax.broadcasted_iota(jnp.int32, (3, 4), 1),
            lax.iota(jnp.float32, 5)]
    # The same layout ops consumed by arithmetic (read through index maps).
    outs += [t * 2 + 1, lax.reshape(x, (6, 4)) + v, lax.rev(x, (1,)) - x,
             lax.pad(v, np.float32(0.5), ((2, 1, 1),)) * 3,
             lax.concatenate([v, v + 1], 0) / 2, lax.broadcasted_iota(jnp.float32, (2, 3, 4), 2) + x,
             jnp.sum(lax.transpose(x, (1, 0, 2)), axis=0), jnp.max(x[:, ::2, ::-1], axis=-1)]
    return outs


@case("layout_size0_size1", lambda: (floats((0, 3), F32, 16), floats((1, 3, 1), F32, 17)))
def layout_size0(x, y):
    return [lax.transpose(x, (1, 0)), lax.reshape(x, (3, 0)), x + 1, lax.squeeze(y, (0, 2)) * 2,
            lax.pad(x, np.float32(1.0), ((1, 1, 0), (0, 0, 0))),
            lax.concatenate([x, x], 0), jnp.sum(x, axis=0), jnp.sum(y, axis=(0, 2)),
            lax.broadcast_in_dim(lax.squeeze(y, (0, 2)), (2, 3), (1,)),
            lax.reshape(-y[:, :1, :], ())]     # a rank-0 result of a loop over size-1 axes


@case("dot_general", lambda: (floats((5, 4), F32, 18, 1.0), floats((4, 3), F32, 19, 1.0),
                              floats((2, 5, 4), F32, 20, 1.0), floats((2, 4, 3), F32, 21, 1.0),
                              floats((3,), F32, 22, 1.0)), rtol=1e-5, atol=1e-5)
def dot_general(a, b, ba, bb, c):
    return [a @ b, a.T.T @ b, b.T @ a.T, lax.dot_general(a, b, (((1,), (0,)), ((), ()))),
            lax.dot_general(b, a, (((0,), (1,)), ((), ()))),          # contracting lhs axis 0
            jnp.matmul(ba, bb), jnp.einsum("bij,bjk->bki", ba, bb),  # batched, transposed out
            lax.dot_general(ba, bb, (((0, 2), (0, 1)), ((), ()))),     # two contracting dims
            b @ c, c @ b.T, jnp.dot(c, c),
            jnp.maximum(a @ b + c, 0),                                 # with an epilogue
            jnp.zeros((3, 0), jnp.float32) @ jnp.zeros((0, 2), jnp.float32),
            jnp.zeros((0, 4), jnp.float32) @ b]


@case("dot_general_int_and_mixed", lambda: (ints((3, 4), np.int32, 23), ints((4, 2), np.int32, 24),
                                            np.random.default_rng(3).random((3, 4)) > 0.5,
                                            floats((3, 4), F64, 25, 1.0)), x64=True,
      rtol=1e-12, atol=1e-12)
def dot_general_int(a, b, m, x):
    return [a @ b, lax.dot_general(m, m, (((1,), (1,)), ((), ()))),
            lax.dot_general(a, b, (((1,), (0,)), ((), ())), preferred_element_type=jnp.float32),
            lax.dot_general(lax.convert_element_type(x, jnp.float32), x.T.astype(jnp.float32),
                            (((1,), (0,)), ((), ())), preferred_element_type=jnp.float64),
            x @ x.T]


@case("indexing", lambda: (floats((5, 4), F32, 26), np.array([[0], [4], [7], [-2], [2]], np.int32),
                           np.array([1, 3], np.int32)))
def indexing(x, idx, s):
    from jitgrad.ops import indexing as ix
    outs = [ix.gather_p.bind(x, idx, axes=(0,), mode="clip", fill_value=None),
            ix.gather_p.bind(x, idx, axes=(0,), mode="fill", fill_value=None),
            ix.gather_p.bind(x, jnp.concatenate([idx, idx[::-1]], 1), axes=(0, 1), mode="fill",
                             fill_value=-1.0)]
    upd = jnp.ones((5, 4), jnp.float32) * jnp.arange(5, dtype=jnp.float32)[:, None]
    for combine in ("set", "add", "mul", "min", "max"):
        outs.append(ix.scatter_p.bind(x, idx, upd, axes=(0,), combine=combine))
    outs += [lax.dynamic_slice(x, (s[0], s[1]), (3, 2)), lax.dynamic_slice(x, (s[1] + 5, -s[0]), (2, 2)),
             lax.dynamic_update_slice(x, jnp.zeros((2, 3), jnp.float32), (s[1], s[0])),
             jnp.asarray(x)[jnp.array([0, 2, 2])], jnp.asarray(x).at[jnp.array([1, 1, 3])].add(1.0),
             jnp.take_along_axis(x, jnp.array([[3, 0, 1, 1]] * 5, jnp.int32), axis=1)]
    return outs


@case("indexing_empty", lambda: (floats((0, 3), F32, 27), np.zeros((2, 1), np.int32),
                                 floats((3, 0), F32, 28)))
def indexing_empty(x, idx, y):
    from jitgrad.ops import indexing as ix
    return [ix.gather_p.bind(x, idx, axes=(0,), mode="clip", fill_value=None),
            ix.gather_p.bind(y, idx, axes=(0,), mode="fill", fill_value=None),
            ix.scatter_p.bind(x, idx, jnp.zeros((2, 3), jnp.float32), axes=(0,), combine="add")]


@case("rowwise_patterns", lambda: (floats((6, 9), F32, 29, 2.0), np.eye(9, dtype=F32)[
    np.random.default_rng(1).integers(0, 9, 6)], floats((9,), F32, 30, 1.0)), rtol=1e-5, atol=1e-5)
def rowwise_patterns(x, y, g):
    m = jnp.max(x, axis=-1, keepdims=True)
    e = jnp.exp(x - m)
    s = jnp.sum(e, axis=-1, keepdims=True)
    softmax = e / s
    log_softmax = x - m - jnp.log(s)
    lse = jnp.log(jnp.sum(jnp.exp(x - m), axis=-1)) + m[:, 0]
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mu) ** 2, axis=-1, keepdims=True)
    ln = (x - mu) / jnp.sqrt(var + 1e-5) * g
    xent = -jnp.mean(jnp.sum(y * log_softmax, axis=-1))
    col = x / jnp.sum(x, axis=0)        # a column reduction consumed in full: two kernels
    return softmax, log_softmax, lse, ln, xent, col, x - jnp.sum(x)


@case("fallbacks", lambda: (floats((4, 3), F32, 31, 1.0), np.array(2, np.int32)), rtol=1e-5)
def fallbacks(x, n):
    # Control flow runs through the reference implementation between numba segments.
    y = jnp.exp(x) + 1
    z = lax.cond(n > 1, lambda v: v * 2, lambda v: v - 1, y)
    w = lax.fori_loop(0, 3, lambda i, v: v * 0.5 + i, z)
    # A fallback's result may be a strided view (a transpose): kernels still get it.
    t = lax.cond(n > 1, lambda v: v.T, lambda v: -v.T, y) + 1
    return jnp.sum(w, axis=0), z.T, x, t


CASE_IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name, fn, make_args, x64, rtol, atol", CASES, ids=CASE_IDS)
def test_program_matches_reference(name, fn, make_args, x64, rtol, atol):
    with x64_mode(x64):
        args = make_args()
        check(fn, *args, rtol=rtol, atol=atol)


def _primitives_in(ir: IR, found: set) -> None:
    for e in ir.eqns:
        found.add(e.primitive.name)
        for sub in iter_subirs(e.params):
            _primitives_in(sub.ir if isinstance(sub, ClosedIR) else sub, found)


# Primitives that only transformations produce; they are checked through grad/vmap/remat
# programs in test_autodiff_programs below, or are produced there at all.
TRANSFORM_ONLY = {"custom_jvp_call", "custom_vjp_call", "custom_lin", "remat",
                  "select_and_gather_add", "select_and_scatter_add", "debug_callback",
                  "conv_general_dilated", "reduce_window_sum", "reduce_window_max",
                  "reduce_window_min", "scan", "while"}


def test_every_primitive_is_covered():
    """Every registered primitive appears in some program of this file (a new primitive
    without a CPU test fails here)."""
    found: set[str] = set()
    for name, fn, make_args, x64, _, _ in CASES:
        with x64_mode(x64):
            _primitives_in(jitgrad.make_ir(fn)(*make_args()).ir, found)
    for fn, make_args, *_ in EXTRA_PROGRAMS:
        _primitives_in(jitgrad.make_ir(fn)(*make_args()).ir, found)
    for fn, make_args in [(_custom_lin, lambda: (floats((3,), F32, 50), floats((3,), F32, 51)))]:
        _primitives_in(jitgrad.make_ir(fn)(*make_args()).ir, found)
    assert NOT_EXECUTABLE <= found
    missing = sorted(set(registry) - found)
    assert not missing, f"primitives without a CPU backend test: {missing}"


# --------------------------------------------------------------- other primitives
# conv, windows, debug callbacks, custom derivatives, remat: mostly fallbacks today.

def _conv_windows(x, k):
    y = lax.conv_general_dilated(x, k, (1, 1), "SAME")
    pooled = lax.reduce_window(y, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    summed = lax.reduce_window(y, 0.0, lax.add, (1, 1, 2, 2), (1, 1, 1, 1), "VALID")
    mins = lax.reduce_window(y, jnp.inf, lax.min, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    return pooled, summed, mins


def _debug_and_custom(x):
    jitgrad.debug.print("x sum {s}", s=jnp.sum(x))

    @jitgrad.custom_jvp
    def f(v):
        return jnp.sin(v)
    f.defjvp(lambda p, t: (f(p[0]), jnp.cos(p[0]) * t[0]))

    @jitgrad.custom_vjp
    def g(v):
        return v * 3
    g.defvjp(lambda v: (v * 3, None), lambda res, ct: (ct * 3,))
    h = jitgrad.checkpoint(lambda v: jnp.tanh(v) * 2)
    return f(x) + g(x) + h(x), lax.scan(lambda c, v: (c + v, c * v), jnp.zeros(3, jnp.float32), x)


def _custom_lin(x, t):
    @jitgrad.custom_vjp
    def g(v):
        return jnp.sin(v) * 3
    g.defvjp(lambda v: (jnp.sin(v) * 3, jnp.cos(v)), lambda res, ct: (ct * 3 * res,))
    return jitgrad.linearize(g, x)[1](t)     # holds custom_lin (linear in t)


def _jvps(x, k, t):
    # jvp of max pooling (select_and_gather_add).
    _, t2 = jitgrad.jvp(lambda a: _conv_windows(a, k)[0], (x,), (t,))
    return t2


def _while(x, n):
    return lax.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, jnp.tanh(c[1]) * 1.5),
                          (jnp.int32(0), x))


def _grad_windows(x, k):
    return jitgrad.grad(lambda a: jnp.sum(_conv_windows(a, k)[0]))(x)


EXTRA_PROGRAMS = [
    (_conv_windows, lambda: (floats((1, 2, 6, 6), F32, 40, 1.0), floats((3, 2, 3, 3), F32, 41, 1.0))),
    (_debug_and_custom, lambda: (floats((4, 3), F32, 42, 1.0),)),
    (_grad_windows, lambda: (floats((1, 2, 6, 6), F32, 43, 1.0), floats((3, 2, 3, 3), F32, 44, 1.0))),
    (lambda x: jitgrad.grad(lambda v: jnp.sum(_debug_and_custom(v)[0]))(x),
     lambda: (floats((4, 3), F32, 45, 1.0),)),
    (_jvps, lambda: (floats((1, 2, 6, 6), F32, 46, 1.0), floats((3, 2, 3, 3), F32, 47, 1.0),
                     floats((1, 2, 6, 6), F32, 48, 1.0))),
    (_while, lambda: (floats((3, 2), F32, 49, 1.0), np.array(4, np.int32))),
]

# custom_lin only exists inside linearize of a custom_vjp function; no backend can run it
# (its implementation refuses, see test_custom_lin_runs_nowhere).
NOT_EXECUTABLE = {"custom_lin"}


def test_custom_lin_runs_nowhere():
    from jitgrad.transforms.custom_derivatives import CustomDerivativeError
    x, t = floats((3,), F32, 50), floats((3,), F32, 51)
    for backend in ("reference", "cpu"):
        with pytest.raises(CustomDerivativeError):
            jit(_custom_lin, backend=backend)(x, t)


@pytest.mark.parametrize("index", range(len(EXTRA_PROGRAMS)))
def test_other_primitives(index, capsys):
    fn, make_args, *oracle = EXTRA_PROGRAMS[index]
    check(fn, *make_args(), rtol=1e-4, atol=1e-5, oracle=(oracle or ["eager"])[0])


# --------------------------------------------------------------- random programs

@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(programs(dtype=np.float32))
def test_random_programs_float32(prog):
    check(prog, *prog.inputs, rtol=2e-3, atol=2e-3)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(programs(dtype=np.float64, max_steps=6))
def test_random_programs_float64(prog):
    with x64_mode(True):
        check(prog, *prog.inputs, rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------- MLP forward and backward

def _mlp_params(seed=0):
    rng = np.random.default_rng(seed)
    return {"w1": (rng.standard_normal((16, 32)) * 0.3).astype(F32), "b1": np.zeros(32, F32),
            "w2": (rng.standard_normal((32, 10)) * 0.3).astype(F32), "b2": np.zeros(10, F32)}


def _mlp_loss(p, x, y):
    h = jnp.maximum(x @ p["w1"] + p["b1"], 0)
    logits = h @ p["w2"] + p["b2"]
    m = jnp.max(logits, axis=-1, keepdims=True)
    log_softmax = logits - m - jnp.log(jnp.sum(jnp.exp(logits - m), axis=-1, keepdims=True))
    return -jnp.mean(jnp.sum(y * log_softmax, axis=-1))


def _mlp_data(seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 16)).astype(F32)
    y = np.eye(10, dtype=F32)[rng.integers(0, 10, 8)]
    return x, y


def test_mlp_forward():
    check(_mlp_loss, _mlp_params(), *_mlp_data(), rtol=1e-5, atol=1e-6)


def test_mlp_backward_and_sgd_step():
    def step(p, x, y):
        loss, g = jitgrad.value_and_grad(_mlp_loss)(p, x, y)
        return loss, jitgrad.tree.map(lambda a, b: a - 0.1 * b, p, g)
    check(step, _mlp_params(), *_mlp_data(), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------- executables

def test_generated_source_is_readable_and_named():
    def dense(x, w, b):
        return jnp.maximum(x @ w + b, 0)
    jf = check(dense, floats((4, 3), F32, 50, 1.0), floats((3, 5), F32, 51, 1.0),
               floats((5,), F32, 52, 1.0))
    ex = executable_of(jf)
    # Serial kernels are blocks of the entry, under a header naming what they fuse.
    assert "# k0_dot_add_max: matmul kernel" in ex.source
    assert "def entry0(" in ex.source and "blas.gemm_static(" in ex.source  # numpy's BLAS, directly
    assert "prange" not in ex.source.split("# k0_dot_add_max")[1]   # small: serial
    assert "k0_dot_add_max" in str(ex.fused)


def test_float32_stays_float32():
    jf = check(lambda x, y: jnp.tanh(x * y + 0.5) * 2.0, floats((64,), F32, 53, 1.0),
               floats((64,), F32, 54, 1.0), rtol=1e-5)
    src = executable_of(jf).source
    assert "np.float32(0.5)" in src and "float64" not in src.split("def _A")[1]


def test_parallel_loops_only_for_large_kernels_without_blas():
    from jitgrad.backends.cpu import codegen
    from jitgrad.passes import optimize
    from jitgrad.passes.fusion import fuse

    def source(f, *shapes):
        closed = optimize(jitgrad.make_ir(f)(*[_zeros(s) for s in shapes]))
        return codegen.generate(fuse(closed, jitgrad.backends.cpu.supports)).source
    work, floor = codegen.PARALLEL_MIN_WORK, codegen.PARALLEL_MIN_ELEMENTS
    cost = codegen.EXPENSIVE_OP_COST
    # Parallel from the work (elements x op costs), never below the element floor.
    assert "prange(" in source(lambda x: x * 2 + 1, (work // 2,))            # 2 ops: work
    assert "prange(" not in source(lambda x: x * 2 + 1, (work // 4,))        # half of it
    assert "prange(" in source(lambda x: jnp.exp(x) + 1, (work // cost,))   # exp costs more
    assert "prange(" not in source(lambda x: jnp.exp(jnp.exp(x)), (floor // 2,))
    # A program that calls BLAS keeps its loops serial (OpenMP/OpenBLAS thread fight).
    assert "prange(" not in source(lambda x, w: (jnp.exp(x) + 1, w @ w), (work,), (4, 4))


def _zeros(shape):
    return _ZEROS.setdefault(shape, np.zeros(shape, F32))


_ZEROS: dict = {}


def test_inputs_are_not_modified_and_outputs_are_fresh():
    def f(x):
        return x, x + 1, x.T
    x = floats((3, 4), F32, 55)
    before = x.copy()
    out = jit(f, backend="cpu")(x)
    np.testing.assert_array_equal(x, before)
    assert not np.shares_memory(np.asarray(out[0]), x)
    assert x.flags.writeable


def test_executable_is_reused_with_different_values():
    jf = jit(lambda a, b: jnp.sum(a * b, axis=0), backend="cpu")
    for seed in range(3):
        a, b = floats((5, 3), F32, seed), floats((5, 3), F32, seed + 10)
        np.testing.assert_allclose(np.asarray(jf(a, b)), np.sum(a * b, axis=0), rtol=1e-5,
                                   equal_nan=True)
    assert jf._cache_size() == 1


def test_closed_over_constants():
    w = floats((4, 4), F32, 56, 1.0)
    check(lambda x: jnp.tanh(x @ w) + w[0], floats((2, 4), F32, 57, 1.0), rtol=1e-5)


def test_python_scalars_and_weak_types():
    check(lambda x, s: x * s + 1, floats((3,), F32, 58), 2.5)
    check(lambda s: jnp.asarray(s) * 2 + 1, 3.0)


def test_codegen_bugs_surface_as_a_jitgrad_error(monkeypatch):
    """A numba failure on generated code is reported as jitgrad's error, not numba's."""
    from jitgrad.backends.cpu import loader, scalar
    monkeypatch.setitem(scalar.ELEMENTWISE, "exp", lambda eqn, a: f"no_such_function({a[0]})")
    previous = jitgrad.config.cache
    jitgrad.config.update("cache", False)
    try:
        with pytest.raises(loader.BackendCompileError, match="internal error") as info:
            jit(lambda x: jnp.exp(x) * 7.25, backend="cpu")(floats((3,), F32, 60))
        assert isinstance(info.value, jitgrad.JitgradError)
        assert "backend='reference'" in str(info.value)
    finally:
        jitgrad.config.update("cache", previous)


@pytest.mark.parametrize("n", [1, 7, 37, 1000])
def test_float_row_reductions_vectorise_and_match_reference(n):
    # Float sum/max/min fold with runtime.radd/rmax/rmin, which LLVM may reorder into
    # vector partial results; NaN and inf must still propagate as in numpy, wherever they
    # fall (vector body or remainder).
    x = floats((5, n), F32, 80 + n, 2.0)
    x[1, min(3, n - 1)] = np.nan
    x[2, n - 1] = np.nan
    x[3, n // 2] = np.inf
    x[4, :] = -np.inf

    def f(z):
        return (jnp.sum(z * z, axis=1), jnp.max(z, axis=1), jnp.min(z, axis=1),
                jnp.prod(1 + z * 1e-3, axis=1), jitgrad.nn.log_softmax(z, axis=1),
                jitgrad.nn.logsumexp(z, axis=1))
    jf = check(f, x, rtol=2e-5, atol=1e-5)
    source = executable_of(jf).source
    if n > 1:   # (a size-1 axis needs no loop)
        assert "rt.radd(" in source and "rt.rmax(" in source and "rt.rmin(" in source
    if n == 1000:
        entry = executable_of(jf).module.entry0
        asm = "\n".join(entry.inspect_asm().values())
        # packed (ymm/xmm) adds and maxima: the reductions are vectorised
        assert re.search(r"\bv?addps\b", asm) and re.search(r"\bv?maxps\b", asm)


@pytest.mark.parametrize("n", [2, 1000])
def test_row_kernel_caches_expensive_values_between_passes(n):
    """Softmax cross-entropy forward + backward needs exp(z - max) in three passes of each
    row: computed once, kept in a row buffer, read back by the later passes."""
    z = floats((6, n), F32, 90 + n, 3.0)
    z[1, 0] = np.nan
    z[2, n - 1] = np.inf
    z[3, :] = -np.inf
    y = np.eye(n, dtype=F32)[np.arange(6) % n]

    def loss(z, y):
        logp = jitgrad.nn.log_softmax(z, axis=-1)
        return -jnp.mean(jnp.sum(y * logp, axis=-1))
    jf = check(jitgrad.value_and_grad(loss), z, y, rtol=2e-5, atol=1e-6)
    source = executable_of(jf).source
    assert source.count("rt.exp_f32(") == 1
    # the row buffer: per call (a slice of the entry's temp buffer) or per worker thread
    assert re.search(r"rc\d+ = (np\.empty\(|rt\.carve\(tbuf, \d+, \()" + str(n), source)


def test_reduction_steps_reorderable_only_in_reductions():
    """Scans and scatters keep the sequential, numpy-exact fold (no reassociation)."""
    from jitgrad.backends.cpu import scalar
    assert scalar.reduction_combine("reduce_sum", F32, "a", "x", reorderable=True) == "rt.radd(a, x)"
    assert scalar.cumulative_combine("cumsum", F32, "a", "x") == "a + x"
    assert scalar.cumulative_combine("cummax", F32, "a", "x") == "rt.fmax(a, x)"
    assert scalar.scatter_combine("add", F32, "a", "x") == "a + x"
    assert scalar.reduction_combine("reduce_sum", np.int32, "a", "x", reorderable=True) \
        != "rt.radd(a, x)"
