"""jnp elementwise functions against numpy: random shapes (size 0/1, broadcasting), NaN/inf,
float32/int32/bool and (with x64) float64/int64, eagerly and under jit."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jitgrad
import jitgrad.numpy as jnp
from test_numpy_support import (FEW, SETTINGS, arrays, broadcast_shapes, check, shapes,
                                x64_enabled)

# ------------------------------------------------------------------ unary

UNARY_FLOAT = {
    "exp": (jnp.exp, np.exp), "exp2": (jnp.exp2, np.exp2), "log": (jnp.log, np.log),
    "log2": (jnp.log2, np.log2), "log10": (jnp.log10, np.log10), "log1p": (jnp.log1p, np.log1p),
    "expm1": (jnp.expm1, np.expm1), "sqrt": (jnp.sqrt, np.sqrt), "cbrt": (jnp.cbrt, np.cbrt),
    "sin": (jnp.sin, np.sin), "cos": (jnp.cos, np.cos), "tan": (jnp.tan, np.tan),
    "tanh": (jnp.tanh, np.tanh), "sinh": (jnp.sinh, np.sinh), "cosh": (jnp.cosh, np.cosh),
    "arcsin": (jnp.arcsin, np.arcsin), "arccos": (jnp.arccos, np.arccos),
    "arctan": (jnp.arctan, np.arctan), "arcsinh": (jnp.arcsinh, np.arcsinh),
    "arccosh": (jnp.arccosh, np.arccosh), "arctanh": (jnp.arctanh, np.arctanh),
    "deg2rad": (jnp.deg2rad, np.deg2rad), "rad2deg": (jnp.rad2deg, np.rad2deg),
    "reciprocal": (jnp.reciprocal, lambda x: np.reciprocal(x.astype(np.result_type(x, 1.0)))),
    "sinc": (jnp.sinc, np.sinc), "rint": (jnp.rint, np.rint),
}
# Functions whose result has the input's dtype (numeric, not promoted to float).
UNARY_SAME = {
    "negative": (jnp.negative, np.negative), "absolute": (jnp.absolute, np.absolute),
    "abs": (jnp.abs, np.abs), "sign": (jnp.sign, np.sign), "square": (jnp.square, np.square),
    "floor": (jnp.floor, np.floor), "ceil": (jnp.ceil, np.ceil), "trunc": (jnp.trunc, np.trunc),
    "fix": (jnp.fix, np.fix), "round": (jnp.round, np.round), "around": (jnp.around, np.round),
    "positive": (jnp.positive, np.positive), "conj": (jnp.conj, np.conj),
    "real": (jnp.real, np.real),
}
UNARY_BOOL = {
    "isnan": (jnp.isnan, np.isnan), "isinf": (jnp.isinf, np.isinf),
    "isfinite": (jnp.isfinite, np.isfinite), "isposinf": (jnp.isposinf, np.isposinf),
    "isneginf": (jnp.isneginf, np.isneginf), "signbit": (jnp.signbit, np.signbit),
    "logical_not": (jnp.logical_not, np.logical_not),
}


@pytest.mark.parametrize("name", sorted(UNARY_FLOAT))
@SETTINGS
@given(x=arrays(np.float32, shapes()))
def test_unary_float(name, x):
    jfn, nfn = UNARY_FLOAT[name]
    check(jfn, nfn, x, dtype=np.float32)


@pytest.mark.parametrize("name", sorted(UNARY_FLOAT))
@FEW
@given(x=arrays(np.int32, shapes(), min_value=-20, max_value=20))
def test_unary_float_of_int_gives_default_float(name, x):
    jfn, nfn = UNARY_FLOAT[name]
    check(jfn, lambda v: nfn(v.astype(np.float64)), x, dtype=np.float32)


@pytest.mark.parametrize("name", sorted(UNARY_SAME))
@SETTINGS
@given(x=arrays(np.float32, shapes()))
def test_unary_same_dtype_float(name, x):
    jfn, nfn = UNARY_SAME[name]
    check(jfn, nfn, x, dtype=np.float32)


@pytest.mark.parametrize("name", sorted(UNARY_SAME))
@FEW
@given(x=arrays(np.int32, shapes()))
def test_unary_same_dtype_int(name, x):
    jfn, nfn = UNARY_SAME[name]
    check(jfn, nfn, x, dtype=np.int32)


@pytest.mark.parametrize("name", sorted(UNARY_BOOL))
@SETTINGS
@given(x=arrays(np.float32, shapes()))
def test_unary_predicates(name, x):
    jfn, nfn = UNARY_BOOL[name]
    check(jfn, nfn, x, dtype=np.bool_)


@pytest.mark.parametrize("name", sorted(UNARY_BOOL))
@FEW
@given(x=arrays(np.int32, shapes()))
def test_unary_predicates_of_ints(name, x):
    jfn, nfn = UNARY_BOOL[name]
    check(jfn, nfn, x, dtype=np.bool_)


@pytest.mark.parametrize("name", ["exp", "log1p", "sqrt", "tanh", "arctan", "sin"])
@FEW
@given(x=arrays(np.float64, shapes()))
def test_unary_float64_with_x64(name, x):
    jfn, nfn = UNARY_FLOAT[name]
    with x64_enabled():
        check(jfn, nfn, x, dtype=np.float64)


def test_unary_float64_input_without_x64_is_float32():
    x = np.array([1.0, 2.0], np.float64)
    assert jnp.exp(x).dtype == np.float32
    assert jnp.exp(jnp.asarray(x)).dtype == np.float32


@pytest.mark.parametrize("name", ["negative", "absolute", "sign", "square"])
@FEW
@given(x=arrays(np.int64, shapes(), min_value=-10**12, max_value=10**12))
def test_unary_int64_with_x64(name, x):
    jfn, nfn = UNARY_SAME[name]
    with x64_enabled():
        check(jfn, nfn, x, dtype=np.int64)


def test_bool_unary_rules():
    b = jnp.array([True, False])
    assert jnp.absolute(b).dtype == np.bool_
    assert jnp.square(b).dtype == np.int32            # JAX: bools promote to int
    np.testing.assert_array_equal(jnp.square(b), [1, 0])
    np.testing.assert_array_equal(jnp.invert(b), [False, True])
    with pytest.raises(TypeError):
        jnp.negative(b)                                # as in numpy and JAX


@pytest.mark.parametrize("decimals", [-1, 1, 2])
@FEW
@given(x=arrays(np.float32, shapes(), special=False))
def test_round_decimals(decimals, x):
    check(lambda v: jnp.round(v, decimals), lambda v: np.round(v, decimals), x,
          dtype=np.float32, atol=1e-3)


# ------------------------------------------------------------------ binary

BINARY = {
    "add": (jnp.add, np.add), "subtract": (jnp.subtract, np.subtract),
    "multiply": (jnp.multiply, np.multiply), "divide": (jnp.divide, np.divide),
    "true_divide": (jnp.true_divide, np.true_divide), "power": (jnp.power, np.power),
    "maximum": (jnp.maximum, np.maximum), "minimum": (jnp.minimum, np.minimum),
    "fmax": (jnp.fmax, np.fmax), "fmin": (jnp.fmin, np.fmin),
    "arctan2": (jnp.arctan2, np.arctan2), "hypot": (jnp.hypot, np.hypot),
    "copysign": (jnp.copysign, np.copysign), "nextafter": (jnp.nextafter, np.nextafter),
    "logaddexp": (jnp.logaddexp, np.logaddexp), "logaddexp2": (jnp.logaddexp2, np.logaddexp2),
    # JAX's heaviside(NaN, x2) is x2 (numpy: NaN).
    "heaviside": (jnp.heaviside, lambda a, b: np.where(np.isnan(a), b, np.heaviside(a, b))),
    "fmod": (jnp.fmod, np.fmod),
    "remainder": (jnp.remainder, np.remainder), "mod": (jnp.mod, np.mod),
    "float_power": (jnp.float_power, lambda a, b: np.float_power(a, b).astype(np.float32)),
}
COMPARE = {
    "equal": (jnp.equal, np.equal), "not_equal": (jnp.not_equal, np.not_equal),
    "less": (jnp.less, np.less), "less_equal": (jnp.less_equal, np.less_equal),
    "greater": (jnp.greater, np.greater), "greater_equal": (jnp.greater_equal, np.greater_equal),
    "logical_and": (jnp.logical_and, np.logical_and), "logical_or": (jnp.logical_or, np.logical_or),
    "logical_xor": (jnp.logical_xor, np.logical_xor),
}
INT_BINARY = {
    "add": (jnp.add, np.add), "subtract": (jnp.subtract, np.subtract),
    "multiply": (jnp.multiply, np.multiply), "maximum": (jnp.maximum, np.maximum),
    "minimum": (jnp.minimum, np.minimum), "floor_divide": (jnp.floor_divide, np.floor_divide),
    "remainder": (jnp.remainder, np.remainder), "fmod": (jnp.fmod, np.fmod),
    "bitwise_and": (jnp.bitwise_and, np.bitwise_and), "bitwise_or": (jnp.bitwise_or, np.bitwise_or),
    "bitwise_xor": (jnp.bitwise_xor, np.bitwise_xor),
}

float_pairs = broadcast_shapes(2).flatmap(
    lambda s: st.tuples(arrays(np.float32, s[0]), arrays(np.float32, s[1])))
int_pairs = broadcast_shapes(2).flatmap(
    lambda s: st.tuples(arrays(np.int32, s[0]), arrays(np.int32, s[1])))
bool_pairs = broadcast_shapes(2).flatmap(
    lambda s: st.tuples(arrays(np.bool_, s[0]), arrays(np.bool_, s[1])))


@pytest.mark.parametrize("name", sorted(BINARY))
@SETTINGS
@given(xy=float_pairs)
def test_binary_float(name, xy):
    jfn, nfn = BINARY[name]
    check(jfn, nfn, *xy, dtype=np.float32, rtol=1e-4)


@pytest.mark.parametrize("name", ["floor_divide", "divmod"])
@SETTINGS
@given(xy=float_pairs)
def test_floor_divide_float(name, xy):
    x, y = xy
    y = np.where(y == 0, np.float32(1.5), y)   # x // 0: NaN in JAX, inf in numpy
    jfn, nfn = getattr(jnp, name), getattr(np, name)
    check(jfn, nfn, x, y, dtype=np.float32)


def test_floor_divide_matches_python_semantics():
    x = jnp.array([1.0, -1.0, 7.0, -7.0], jnp.float32)
    y = jnp.array([0.1, 0.1, -2.0, 2.0], jnp.float32)
    np.testing.assert_array_equal(jnp.floor_divide(x, y), np.floor_divide(np.asarray(x), np.asarray(y)))
    assert np.isnan(np.asarray(jnp.floor_divide(1.0, jnp.zeros(1))))[0]   # JAX: NaN


@pytest.mark.parametrize("name", sorted(COMPARE))
@SETTINGS
@given(xy=float_pairs)
def test_compare_float(name, xy):
    jfn, nfn = COMPARE[name]
    check(jfn, nfn, *xy, dtype=np.bool_)


@pytest.mark.parametrize("name", sorted(INT_BINARY))
@SETTINGS
@given(xy=int_pairs)
def test_binary_int(name, xy):
    jfn, nfn = INT_BINARY[name]
    check(jfn, nfn, *xy, dtype=np.int32)


@SETTINGS
@given(xy=broadcast_shapes(2).flatmap(lambda s: st.tuples(
    arrays(np.int32, s[0], min_value=-50, max_value=50),
    arrays(np.int32, s[1], min_value=0, max_value=31))))
def test_shifts_int(xy):
    check(jnp.left_shift, np.left_shift, *xy, dtype=np.int32)
    check(jnp.right_shift, np.right_shift, *xy, dtype=np.int32)


@SETTINGS
@given(xy=broadcast_shapes(2).flatmap(lambda s: st.tuples(
    arrays(np.int32, s[0], min_value=-9, max_value=9),
    arrays(np.int32, s[1], min_value=0, max_value=6))))
def test_power_int(xy):
    check(jnp.power, np.power, *xy, dtype=np.int32)


@pytest.mark.parametrize("name", sorted(COMPARE) + ["add", "multiply", "maximum", "minimum",
                                                    "bitwise_and", "bitwise_or", "bitwise_xor"])
@FEW
@given(xy=bool_pairs)
def test_binary_bool(name, xy):
    jfn, nfn = getattr(jnp, name), getattr(np, name)
    check(jfn, nfn, *xy, dtype=np.bool_)


@pytest.mark.parametrize("name", ["add", "multiply", "divide", "maximum", "arctan2", "power"])
@FEW
@given(xy=broadcast_shapes(2).flatmap(
    lambda s: st.tuples(arrays(np.float64, s[0]), arrays(np.float64, s[1]))))
def test_binary_float64_with_x64(name, xy):
    jfn, nfn = BINARY[name]
    with x64_enabled():
        check(jfn, nfn, *xy, dtype=np.float64)


@pytest.mark.parametrize("name", ["add", "multiply", "floor_divide", "remainder", "maximum"])
@FEW
@given(xy=broadcast_shapes(2).flatmap(lambda s: st.tuples(
    arrays(np.int64, s[0], min_value=-10**12, max_value=10**12),
    arrays(np.int64, s[1], min_value=-10**6, max_value=10**6))))
def test_binary_int64_with_x64(name, xy):
    jfn, nfn = INT_BINARY[name]
    with x64_enabled():
        check(jfn, nfn, *xy, dtype=np.int64)


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide", "power", "maximum",
                                  "minimum", "arctan2"])
@pytest.mark.parametrize("scalar", [2.0, -0.5, 3])
@FEW
@given(x=arrays(np.float32, shapes()))
def test_binary_with_python_scalar_keeps_float32(name, scalar, x):
    jfn, nfn = BINARY[name]
    s32 = np.float32(scalar)
    check(lambda v: jfn(v, scalar), lambda v: nfn(v, s32), x, dtype=np.float32, rtol=1e-4)
    check(lambda v: jfn(scalar, v), lambda v: nfn(s32, v), x, dtype=np.float32, rtol=1e-4)


@FEW
@given(x=arrays(np.float16, shapes(), special=False))
def test_float16_stays_float16(x):
    check(lambda v: v * 2.0 + 1, lambda v: v * np.float16(2) + np.float16(1), x, dtype=np.float16)
    check(jnp.exp, np.exp, x, dtype=np.float16)


# ------------------------------------------------------------------ where / clip / misc

@SETTINGS
@given(data=broadcast_shapes(3).flatmap(lambda s: st.tuples(
    arrays(np.bool_, s[0]), arrays(np.float32, s[1]), arrays(np.float32, s[2]))))
def test_where(data):
    c, x, y = data
    check(jnp.where, np.where, c, x, y, dtype=np.float32)
    check(lambda c_, x_: jnp.where(c_, x_, 0.5), lambda c_, x_: np.where(c_, x_, np.float32(0.5)),
          c, x, dtype=np.float32)


@FEW
@given(c=arrays(np.int32, shapes()), x=arrays(np.int32, shapes(max_dims=0)))
def test_where_int_condition(c, x):
    check(lambda c_: jnp.where(c_, 1, 0), lambda c_: np.where(c_, 1, 0).astype(np.int32), c,
          dtype=np.int32)


@SETTINGS
@given(x=arrays(np.float32, shapes()), lo=st.floats(-10, 10, width=32),
       hi=st.floats(-10, 10, width=32))
def test_clip(x, lo, hi):
    check(lambda v: jnp.clip(v, lo, hi), lambda v: np.clip(v, np.float32(lo), np.float32(hi)), x,
          dtype=np.float32)
    check(lambda v: jnp.clip(v, max=hi), lambda v: np.minimum(v, np.float32(hi)), x)
    check(lambda v: jnp.clip(v, min=lo), lambda v: np.maximum(v, np.float32(lo)), x)


@SETTINGS
@given(xy=float_pairs)
def test_isclose_allclose_array_equal(xy):
    x, y = xy
    check(jnp.isclose, np.isclose, x, y, dtype=np.bool_)
    check(lambda a, b: jnp.isclose(a, b, equal_nan=True),
          lambda a, b: np.isclose(a, b, equal_nan=True), x, y)
    check(jnp.allclose, lambda a, b: np.asarray(np.allclose(a, b)), x, y, dtype=np.bool_)
    check(lambda a: jnp.array_equal(a, a, equal_nan=True),
          lambda a: np.asarray(np.array_equal(a, a, equal_nan=True)), x)


@SETTINGS
@given(x=arrays(np.float32, shapes()))
def test_nan_to_num(x):
    check(jnp.nan_to_num, np.nan_to_num, x, dtype=np.float32)
    check(lambda v: jnp.nan_to_num(v, nan=1.0, posinf=2.0, neginf=-2.0),
          lambda v: np.nan_to_num(v, nan=1.0, posinf=2.0, neginf=-2.0), x)


@FEW
@given(x=arrays(np.float32, shapes(min_dims=1)))
def test_select(x):
    check(lambda v: jnp.select([v < 0, v > 10], [v, 2 * v], default=-1.0),
          lambda v: np.select([v < 0, v > 10], [v, 2 * v], default=np.float32(-1)), x)


def test_divmod_and_operators_on_arrays():
    x = jnp.array([7, -7, 5], jnp.int32)
    q, r = divmod(x, 3)
    np.testing.assert_array_equal(q, [2, -3, 1])
    np.testing.assert_array_equal(r, [1, 2, 2])
    np.testing.assert_array_equal(x // 3, [2, -3, 1])
    np.testing.assert_array_equal(-x, [-7, 7, -5])
    np.testing.assert_array_equal(abs(x), [7, 7, 5])
    np.testing.assert_array_equal(~x, np.invert(np.array([7, -7, 5], np.int32)))
    np.testing.assert_array_equal(x ** 2, [49, 49, 25])
    np.testing.assert_array_equal(2 ** x[x > 0], [128, 32])
    np.testing.assert_array_equal(x << 1, [14, -14, 10])
    np.testing.assert_array_equal((x > 0) & (x < 6), [False, False, True])
    np.testing.assert_array_equal((x > 0) | (x < -6), [True, True, True])
    np.testing.assert_array_equal((x > 0) ^ (x < 6), [True, True, False])


def test_numpy_array_on_the_left_uses_jitgrad():
    out = np.ones(3, np.float32) + jnp.ones(3)
    assert isinstance(out, jitgrad.Array)


def test_float_warnings_are_silent():
    with np.errstate(all="raise"):
        for fn in (lambda: jnp.log(jnp.zeros(2)), lambda: jnp.exp(jnp.full(2, 1e30)),
                   lambda: jnp.ones(2) / jnp.zeros(2), lambda: jnp.sqrt(-jnp.ones(2)),
                   lambda: jnp.full(2, 3e38) + jnp.full(2, 3e38)):
            fn()
