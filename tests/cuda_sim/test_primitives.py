"""Every primitive on the cuda backend (simulated) against the reference interpreter."""
import numpy as np
import pytest

import jitgrad.numpy as jnp
from jitgrad import lax

from simcheck import check

rng = np.random.default_rng(0)
F = rng.standard_normal((3, 5)).astype(np.float32)
POS = (np.abs(F) + 0.1).astype(np.float32)
UNIT = np.clip(F / 3, -0.9, 0.9).astype(np.float32)
SPECIAL = np.array([0.0, -0.0, 1.5, -2.5, 0.5, -0.5, np.nan, np.inf, -np.inf, 3e9, -3e9, 1e20,
                    2.5, 70000.0, -1.0], np.float32)
I32 = np.array([0, 1, -1, 7, -7, 2147483647, -2147483648, 123456789, -5, 3, 100, -100],
               np.int32)
U32 = np.array([0, 1, 7, 0xFFFFFFFF, 0x80000000, 0x9E3779B9, 123456789, 3, 31, 32, 33, 5],
               np.uint32)
SHIFTS = np.array([0, 1, 31, 32, 33, 100, 5, 16, 3, 31, 0, 2], np.uint32)

FLOAT_UNARY = ["exp", "exp2", "log", "log1p", "expm1", "sqrt", "rsqrt", "cbrt", "tanh",
               "logistic", "sin", "cos", "tan", "atan", "sinh", "cosh", "asinh", "erf",
               "floor", "ceil", "neg", "sign", "abs", "square", "is_finite"]
NEEDS_POSITIVE = {"log", "sqrt", "rsqrt", "lgamma"}


@pytest.mark.parametrize("name", FLOAT_UNARY + ["lgamma"])
def test_float_unary(name):
    fn = getattr(lax, name)
    x = POS if name in NEEDS_POSITIVE else F
    check(fn, x, rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["asin", "acos", "atanh", "erf_inv"])
def test_float_unary_unit_interval(name):
    check(getattr(lax, name), UNIT, rtol=2e-5, atol=1e-5)


def test_acosh():
    check(lax.acosh, POS + 1.0, rtol=2e-5)


def test_float_specials():
    """NaN, inf and signed zeros through the elementwise templates."""
    def f(x):
        return (lax.exp(x), lax.log(x), lax.sqrt(x), lax.is_finite(x), lax.sign(x),
                lax.max(x, 0.0 * x), lax.min(x, 1.0 + 0.0 * x), lax.logistic(x), x / (x - x))
    check(f, SPECIAL, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", [0, 1])
def test_round(method):
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6, 3.5], np.float32)
    check(lambda v: lax.round(v, method), x, exact=True)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "rem", "pow", "max", "min",
                                  "atan2", "nextafter", "eq", "ne", "lt", "le", "gt", "ge"])
def test_float_binary(name):
    y = (F[::-1] + 0.25).astype(np.float32)
    x = POS if name == "pow" else F
    check(getattr(lax, name), x, y, rtol=2e-5, atol=1e-6)


def test_max_min_nan():
    x = np.array([np.nan, 1.0, np.nan, -1.0], np.float32)
    y = np.array([1.0, np.nan, np.nan, -2.0], np.float32)
    check(lambda a, b: (lax.max(a, b), lax.min(a, b), lax.clamp(-0.5, a, b)), x, y)


@pytest.mark.parametrize("dtype", [np.int32, np.uint32, np.int8, np.uint8, np.int16])
@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "rem", "max", "min", "and", "or",
                                  "xor", "eq", "lt", "ge"])
def test_int_binary(dtype, name):
    base = I32 if np.dtype(dtype).kind == "i" else U32
    x = base.astype(dtype)
    y = np.roll(base, 3).astype(dtype)
    y[1] = 0   # division by zero is defined (0)
    fn = {"and": lax.bitwise_and, "or": lax.bitwise_or, "xor": lax.bitwise_xor}.get(name) \
        or getattr(lax, name)
    check(fn, x, y)


@pytest.mark.parametrize("dtype", [np.int32, np.uint32, np.int8])
@pytest.mark.parametrize("name", ["neg", "abs", "sign", "square", "bitwise_not"])
def test_int_unary(dtype, name):
    base = I32 if np.dtype(dtype).kind == "i" else U32
    if name in ("abs", "sign", "neg") and np.dtype(dtype).kind == "u" and name != "neg":
        pass
    check(getattr(lax, name), base.astype(dtype))


@pytest.mark.parametrize("dtype", [np.int32, np.uint32, np.int8])
@pytest.mark.parametrize("name", ["shift_left", "shift_right_logical", "shift_right_arithmetic"])
def test_shifts(dtype, name):
    base = I32 if np.dtype(dtype).kind == "i" else U32
    amounts = SHIFTS.astype(np.int64)
    if np.dtype(dtype).kind == "i":
        amounts = amounts * np.where(np.arange(amounts.size) % 5 == 4, -1, 1)   # negative amounts
    check(getattr(lax, name), base.astype(dtype), amounts.astype(dtype))


def test_bool_logic():
    a = np.array([True, False, True, False])
    b = np.array([True, True, False, False])
    check(lambda x, y: (lax.bitwise_and(x, y), lax.bitwise_or(x, y), lax.bitwise_xor(x, y),
                        lax.bitwise_not(x), lax.max(x, y), lax.eq(x, y)), a, b)


@pytest.mark.parametrize("y", [0, 1, 2, 3, 5, -1, -2, -3])
def test_integer_pow_float(y):
    check(lambda x: lax.integer_pow(x, y), POS, rtol=2e-6)


@pytest.mark.parametrize("y", [0, 1, 2, 3, 7, 13])
def test_integer_pow_int(y):
    check(lambda x: lax.integer_pow(x, y), I32)
    check(lambda x: lax.integer_pow(x, y), U32)


def test_select_and_clamp():
    which = np.array([0, 1, 2, 1, 0], np.int32)
    a, b, c = (np.arange(5, dtype=np.float32) * k for k in (1, 10, 100))
    check(lambda w, x, y, z: lax.select_n(w, x, y, z), which, a, b, c)
    check(lambda p, x, y: lax.select(p, x, y), which > 0, a, b)
    check(lambda x: lax.clamp(np.int32(-5), x, np.int32(100)), I32)


CONVERSIONS = [(np.float32, np.int32), (np.float32, np.uint32), (np.float32, np.int8),
               (np.float32, np.uint8), (np.float32, np.bool_), (np.int32, np.float32),
               (np.uint32, np.float32), (np.int32, np.uint8), (np.int32, np.int8),
               (np.bool_, np.float32), (np.bool_, np.int32), (np.uint32, np.int32),
               (np.float32, np.float16), (np.float16, np.float32)]
IN_RANGE = np.array([0.0, -0.0, 1.5, -2.5, 0.5, -0.7, 2.5, 100.9, -100.9, 7.0, 65000.0, 3.0],
                    np.float32)


@pytest.mark.parametrize("src,dst", CONVERSIONS)
def test_convert(src, dst):
    if np.dtype(src).kind == "f":
        x = IN_RANGE.astype(src)
    elif np.dtype(src).kind == "b":
        x = np.array([True, False, True])
    else:
        x = (I32 if np.dtype(src).kind == "i" else U32).astype(src)
    check(lambda v: lax.convert_element_type(v, dst), x, exact=True)


@pytest.mark.parametrize("dst", [np.int32, np.uint32, np.int8, np.uint8])
def test_convert_saturates(dst):
    """float -> int saturates and sends NaN to 0 (the reference's documented rule)."""
    out = check(lambda v: lax.convert_element_type(v, dst), SPECIAL[:12].copy(), exact=True) \
        if np.dtype(dst).itemsize < 4 else None
    if out is None:   # 32-bit targets: compare with exact saturation (see the report)
        from simcheck import run_both
        (c,), _ = run_both(lambda v: lax.convert_element_type(v, dst), SPECIAL)
        info = np.iinfo(dst)
        with np.errstate(invalid="ignore"):
            t = np.trunc(SPECIAL.astype(np.float64))
        want = np.where(np.isnan(t), 0, np.clip(np.nan_to_num(t, posinf=info.max, neginf=info.min),
                                                info.min, info.max)).astype(dst)
        np.testing.assert_array_equal(c, want)


def test_bitcast():
    x = SPECIAL
    check(lambda v: (lax.bitcast_convert_type(v, np.uint32), lax.bitcast_convert_type(v, np.int32)),
          x, exact=True)
    check(lambda v: lax.bitcast_convert_type(v, np.float32), U32, exact=True)
    check(lambda v: lax.bitcast_convert_type(v, np.float32), I32, exact=True)


# ------------------------------------------------------------------ layout ops

X3 = np.arange(24, dtype=np.float32).reshape(2, 3, 4)


@pytest.mark.parametrize("fn", [
    lambda x: lax.broadcast_in_dim(x[0, :, 0], (2, 3, 5), (1,)),
    lambda x: lax.reshape(x, (6, 4)),
    lambda x: lax.reshape(x, (4, 6), dimensions=(2, 0, 1)),
    lambda x: lax.transpose(x, (2, 0, 1)),
    lambda x: lax.squeeze(x[:1], (0,)),
    lambda x: lax.rev(x, (0, 2)),
    lambda x: lax.slice(x, (0, 1, 0), (2, 3, 4), (1, 1, 2)),
    lambda x: lax.pad(x, 0.5, ((1, -1, 0), (0, 2, 1), (-1, 1, 2))),
    lambda x: lax.concatenate([x, x * 2, x[:, :1]], 1),
    lambda x: lax.broadcasted_iota(np.int32, (3, 4), 1) + lax.convert_element_type(x[0], np.int32),
], ids=["broadcast", "reshape", "reshape_dims", "transpose", "squeeze", "rev", "slice", "pad",
        "concatenate", "iota"])
def test_layout(fn):
    check(fn, X3, exact=True)
    check(lambda x: fn(x) * 2.0 + 1.0, X3)   # read through inside a fused kernel


# ------------------------------------------------------------------ reductions

@pytest.mark.parametrize("name", ["reduce_sum", "reduce_prod", "reduce_max", "reduce_min"])
@pytest.mark.parametrize("axes", [(0,), (1,), (2,), (0, 2), (0, 1, 2), ()])
def test_reductions(name, axes):
    x = (X3 / 10 - 1).astype(np.float32)
    check(lambda v: getattr(lax, name)(v, axes), x, rtol=1e-5)


@pytest.mark.parametrize("shape,axes", [((3, 300), (1,)), ((700,), (0,)), ((4, 40), (1,)),
                                        ((40, 3), (0,)), ((20, 33), (0,)), ((2, 0, 3), (1,))],
                         ids=["rows300", "full700", "rows40", "cols", "leading", "empty"])
def test_reduction_strategies(shape, axes):
    """Long rows (two-pass), medium rows (block per row), short rows and sums over leading
    axes (thread per row), empty rows."""
    x = rng.standard_normal(shape).astype(np.float32)
    if 0 in shape:   # an empty reduction gives the identity
        check(lambda v: (jnp.sum(v, axis=axes), lax.reduce_max(v, axes), jnp.prod(v, axis=axes)), x)
    else:
        check(lambda v: (jnp.sum(v, axis=axes), jnp.max(v, axis=axes), jnp.min(v, axis=axes)), x,
              rtol=1e-4, atol=1e-4)
        xi = rng.integers(-1000, 1000, shape).astype(np.int32)
        check(lambda v: (jnp.sum(v, axis=axes), jnp.argmax(v, axis=axes[0]),
                         jnp.argmin(v, axis=axes[0])), xi)


def test_reduce_nan_and_ties():
    x = np.array([[1.0, np.nan, 3.0, np.nan], [2.0, 2.0, 1.0, 2.0], [-np.inf, -np.inf, -5, 0]],
                 np.float32)
    check(lambda v: (jnp.max(v, axis=1), jnp.min(v, axis=1), jnp.argmax(v, axis=1),
                     jnp.argmin(v, axis=1), jnp.argmax(v, axis=0)), x)
    long = np.zeros((2, 150), np.float32)
    long[0, 77] = long[0, 120] = 5.0
    long[1, 140] = np.nan
    long[1, 10] = np.nan
    check(lambda v: (jnp.argmax(v, axis=1), jnp.max(v, axis=1), jnp.argmax(v.ravel(), axis=0)), long)


@pytest.mark.parametrize("name", ["reduce_and", "reduce_or", "reduce_xor"])
def test_bitwise_reductions(name):
    b = rng.random((3, 7)) > 0.5
    check(lambda v: getattr(lax, name)(v, (1,)), b)
    check(lambda v: getattr(lax, name)(v, (0,)), U32.reshape(3, 4))


def test_int_sum_wraps():
    x = np.full((2, 40), 2 ** 30, np.int32)
    check(lambda v: (jnp.sum(v, axis=1), lax.reduce_prod(v[:, :3], (1,))), x)
    x8 = np.full((50,), 100, np.int8)
    check(lambda v: lax.reduce_sum(v, (0,)), x8)


# ------------------------------------------------------------------ matmul

@pytest.mark.parametrize("lhs_shape,rhs_shape,dn", [
    ((5, 7), (7, 3), (((1,), (0,)), ((), ()))),
    ((17, 9), (9, 10), (((1,), (0,)), ((), ()))),          # several tiles, partial edges
    ((7, 5), (7, 3), (((0,), (0,)), ((), ()))),            # A^T B
    ((5, 7), (3, 7), (((1,), (1,)), ((), ()))),            # A B^T
    ((2, 4, 6), (2, 6, 3), (((2,), (1,)), ((0,), (0,)))),  # batched
    ((4, 2, 6), (6, 3, 2), (((2,), (0,)), ((1,), (2,)))),  # batch axis in the middle
    ((6,), (6,), (((0,), (0,)), ((), ()))),                # vector dot
    ((3, 6), (6,), (((1,), (0,)), ((), ()))),              # matrix-vector
    ((2, 3, 4), (3, 4, 5), (((1, 2), (0, 1)), ((), ()))),  # two contracting axes
    ((3, 0), (0, 2), (((1,), (0,)), ((), ()))),            # empty contraction
])
def test_dot_general(lhs_shape, rhs_shape, dn):
    a = rng.standard_normal(lhs_shape).astype(np.float32)
    b = rng.standard_normal(rhs_shape).astype(np.float32)
    check(lambda x, y: lax.dot_general(x, y, dn), a, b, rtol=1e-4, atol=1e-5)


def test_dot_int_and_bool():
    a = rng.integers(-5, 5, (4, 6)).astype(np.int32)
    b = rng.integers(-5, 5, (6, 3)).astype(np.int32)
    check(lambda x, y: x @ y, a, b)
    check(lambda x, y: lax.dot_general(x, y, (((1,), (0,)), ((), ()))), a > 0, b > 2)
    big = np.full((3, 4), 2 ** 20, np.int32)
    check(lambda x, y: x @ y, big, big.T.copy())   # wraps like numpy
    check(lambda x, y: lax.dot_general(x, y, (((1,), (0,)), ((), ())),
                                       preferred_element_type=np.float32),
          a.astype(np.float16), b.astype(np.float16), rtol=1e-3)


def test_matmul_epilogue():
    x = rng.standard_normal((9, 5)).astype(np.float32)
    w = rng.standard_normal((5, 11)).astype(np.float32)
    b = rng.standard_normal(11).astype(np.float32)
    r = rng.standard_normal((9, 11)).astype(np.float32)
    check(lambda x, w, b, r: jnp.maximum(x @ w + b, 0) * 0.5 + r, x, w, b, r, rtol=1e-5, atol=1e-5)
    check(lambda x, w: (x @ w, jnp.tanh(x @ w)), x, w, rtol=1e-5, atol=1e-5)
    check(lambda x, w: (x @ w).T + 1.0, x, w, rtol=1e-5, atol=1e-5)   # not fusable: transposed


# ------------------------------------------------------------------ opaque ops

def test_gather_scatter():
    x = np.arange(20, dtype=np.float32).reshape(4, 5)
    idx = np.array([[0], [3], [-1], [7], [2]], np.int32)
    from jitgrad.ops import indexing as ix
    check(lambda v, i: ix.gather_p.bind(v, i, axes=(0,), mode="clip", fill_value=None), x, idx)
    check(lambda v, i: ix.gather_p.bind(v, i, axes=(1,), mode="fill", fill_value=None), x, idx)
    upd = np.arange(25, dtype=np.float32).reshape(5, 5) + 100
    for how in ("set", "add", "mul", "min", "max"):
        check(lambda v, i, u: ix.scatter_p.bind(v, i, u, axes=(0,), combine=how),
              x, np.array([[1], [1], [3], [9], [-1]], np.int32), upd)
    check(lambda v: v[jnp.array([2, 0, 2])] * 2, x)
    check(lambda v: v.at[jnp.array([1, 1, 3])].add(jnp.ones((3, 5))), x)
    check(lambda v: jnp.take_along_axis(v, jnp.array([[0], [4], [2], [1]]), axis=1), x)


def test_dynamic_slices():
    x = np.arange(30, dtype=np.float32).reshape(5, 6)
    for s in (0, 2, 4, 9, -3):
        check(lambda v, i: lax.dynamic_slice(v, (i, np.int32(1)), (2, 3)), x, np.int32(s))
        check(lambda v, i: lax.dynamic_update_slice(v, jnp.ones((2, 3)), (i, np.int32(4))),
              x, np.int32(s))


@pytest.mark.parametrize("name", ["cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp"])
@pytest.mark.parametrize("axis,reverse", [(0, False), (1, True), (1, False)])
def test_cumulative(name, axis, reverse):
    x = (rng.standard_normal((3, 6)) / 2).astype(np.float32)
    check(lambda v: getattr(lax, name)(v, axis, reverse), x, rtol=1e-5, atol=1e-6)
    if name in ("cumsum", "cummax", "cummin"):
        check(lambda v: getattr(lax, name)(v, axis, reverse), I32[:12].reshape(3, 4)
              if axis == 0 else I32[:12].reshape(2, 6))


def test_block_per_row_dtypes():
    """Shared-memory trees over bool (stored as uint8), int64 accumulators and float16."""
    b = rng.random((3, 70)) > 0.97
    i = rng.integers(-9, 9, (2, 40)).astype(np.int32)
    h = rng.standard_normal((2, 50)).astype(np.float16)
    check(lambda b, i, h: (jnp.any(b, axis=1), jnp.all(~b, axis=1), jnp.sum(i, axis=1),
                           lax.reduce_xor(i, (1,)), jnp.max(i, axis=1), jnp.sum(h, axis=1)),
          b, i, h, rtol=2e-3, atol=2e-3)
