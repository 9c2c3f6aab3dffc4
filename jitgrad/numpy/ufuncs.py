"""Elementwise functions with numpy semantics (promotion, broadcasting), on lax primitives.

Dtype rules are JAX's (see ``jitgrad.core.dtypes``): Python scalars are weakly typed,
``int32 + 2.5`` is float32, transcendental functions of integers return the default
float dtype, ``bool + bool`` is a logical OR and ``bool * bool`` a logical AND.
Floating-point errors give inf/NaN silently, as in JAX.

Each function first tries the eager fast path of ``_util`` (operands of one dtype, no
trace active), which calls the primitive's numpy implementation directly.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import lax
from ..core import dtypes
from ..core.array import Array, ArrayImpl
from ..ops import elementwise as ew
from ._util import (_STATE, KINDS_ANY, KINDS_FLOAT, KINDS_INT, KINDS_INT_OR_BOOL, KINDS_NUMERIC,
                    as_array, asarray_operand, check_no_out, dtype_of, elementwise_args, fast_binary,
                    fast_unary, promote_dtypes, promote_dtypes_inexact, promote_dtypes_numeric,
                    wrap_result)

ArrayLike = Any   # a jitgrad array or tracer, a numpy array or scalar, a Python number


def _raw(p):
    """The numpy function behind a primitive's implementation (without its quiet wrapper)."""
    return getattr(p.impl, "__wrapped__", p.impl)


def _make_unary(p, promote=promote_dtypes_inexact, name=None, kinds=KINDS_FLOAT, doc=None):
    name = name or p.name
    raw = _raw(p)

    def fn(x: ArrayLike, /) -> Array:
        out = fast_unary(raw, kinds, x)
        if out is not None:
            return out
        (x,) = promote(asarray_operand(x, name))
        return p.bind(x)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc or (f"Elementwise ``{name}`` (integers and bools promote to the default "
                         "float dtype).")
    return fn


def _make_binary(p, promote=promote_dtypes, name=None, kinds=KINDS_ANY, doc=None):
    name = name or p.name
    raw = _raw(p)

    def fn(x: ArrayLike, y: ArrayLike, /) -> Array:
        out = fast_binary(raw, kinds, x, y)
        if out is not None:
            return out
        x, y = elementwise_args(name, x, y, promote=promote)
        return p.bind(x, y)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc or f"Elementwise ``{name}`` of two broadcast operands (numpy semantics)."
    return fn


def _bool_or(p_num, p_bool, name, doc):
    """A binary op that means ``p_bool`` on bools (add -> or, multiply -> and), as in JAX."""
    raw = _raw(p_num)

    def fn(x: ArrayLike, y: ArrayLike, /) -> Array:
        out = fast_binary(raw, KINDS_NUMERIC, x, y)
        if out is not None:
            return out
        x, y = elementwise_args(name, x, y)
        return (p_bool if dtype_of(x) == np.bool_ else p_num).bind(x, y)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


# ------------------------------------------------------------------ arithmetic
add = _bool_or(ew.add_p, ew.or_p, "add",
               "``x + y`` elementwise (for bools: logical OR, as in JAX and numpy).")
multiply = _bool_or(ew.mul_p, ew.and_p, "multiply",
                    "``x * y`` elementwise (for bools: logical AND, as in JAX and numpy).")
subtract = _make_binary(ew.sub_p, name="subtract", kinds=KINDS_NUMERIC,
                        doc="``x - y`` elementwise (not defined for bools, as in numpy and JAX).")
maximum = _make_binary(ew.max_p, name="maximum",
                       doc="Elementwise maximum; NaN propagates.")
minimum = _make_binary(ew.min_p, name="minimum",
                       doc="Elementwise minimum; NaN propagates.")
arctan2 = _make_binary(ew.atan2_p, promote_dtypes_inexact, name="arctan2", kinds=KINDS_FLOAT,
                       doc="Elementwise ``atan(x / y)`` in the correct quadrant.")
nextafter = _make_binary(ew.nextafter_p, promote_dtypes_inexact, name="nextafter",
                         kinds=KINDS_FLOAT, doc="The next float after ``x`` towards ``y``.")
true_divide = _make_binary(ew.div_p, promote_dtypes_inexact, name="true_divide", kinds=KINDS_FLOAT,
                           doc="``x / y`` in floating point (integers promote to float).")
divide = true_divide


def _float_divmod(x, y):
    """(floor(x / y), x mod y) for floats, as CPython's float divmod (and JAX) compute it."""
    mod = ew.rem_p.bind(x, y)
    div = ew.div_p.bind(ew.sub_p.bind(x, mod), y)
    zero = np.zeros((), mod.dtype)
    fix = lax.bitwise_and(lax.ne(mod, zero), lax.ne(ew.sign_p.bind(y), ew.sign_p.bind(mod)))
    mod = lax.select(fix, ew.add_p.bind(mod, y), mod)
    div = lax.select(fix, ew.sub_p.bind(div, np.ones((), div.dtype)), div)
    return ew.round_p.bind(div, rounding_method=0), mod


def _int_floor_divide(x, y):
    q = ew.div_p.bind(x, y)                      # truncates toward zero
    if dtypes.is_unsigned(q.dtype):
        return q
    r = ew.rem_p.bind(x, y)
    zero = np.zeros((), q.dtype)
    adjust = lax.bitwise_and(lax.ne(r, zero), lax.ne(lax.lt(r, zero), lax.lt(y, zero)))
    return lax.select(adjust, lax.sub(q, np.ones((), q.dtype)), q)


def floor_divide(x: ArrayLike, y: ArrayLike, /) -> Array:
    """``x // y``: rounds toward minus infinity, as in Python.

    Floats use CPython's (and JAX's) divmod algorithm, so ``1 // 0.1`` is 9.0 as in numpy;
    division by zero gives NaN for floats (numpy: inf) and 0 for integers (numpy: 0 with
    a warning), as jitgrad does not trap.
    """
    x, y = elementwise_args("floor_divide", x, y, promote=promote_dtypes_numeric)
    if dtypes.is_float(dtype_of(x)):
        return _float_divmod(x, y)[0]
    return _int_floor_divide(x, y)


def remainder(x: ArrayLike, y: ArrayLike, /) -> Array:
    """``x % y`` with the sign of ``y``, as in Python."""
    x, y = elementwise_args("remainder", x, y, promote=promote_dtypes_numeric)
    r = ew.rem_p.bind(x, y)
    if dtypes.is_unsigned(r.dtype):
        return r
    zero = np.zeros((), r.dtype)
    adjust = lax.bitwise_and(lax.ne(r, zero), lax.ne(lax.lt(r, zero), lax.lt(y, zero)))
    return lax.select(adjust, lax.add(r, y), r)


mod = remainder


def fmod(x: ArrayLike, y: ArrayLike, /) -> Array:
    """C-style remainder (the sign of ``x``)."""
    x, y = elementwise_args("fmod", x, y, promote=promote_dtypes_numeric)
    return ew.rem_p.bind(x, y)


def divmod(x: ArrayLike, y: ArrayLike, /) -> tuple[Array, Array]:
    """``(x // y, x % y)``."""
    x, y = elementwise_args("divmod", x, y, promote=promote_dtypes_numeric)
    if dtypes.is_float(dtype_of(x)):
        return _float_divmod(x, y)
    return floor_divide(x, y), remainder(x, y)


_power_fast = _raw(ew.pow_p)


def power(x: ArrayLike, y: ArrayLike, /) -> Array:
    """``x ** y``. A static integer exponent uses repeated multiplication (integer_pow).

    Integers raised to integer powers stay integers (negative exponents give 0, where
    numpy raises); otherwise the operands are promoted as for any binary op.
    """
    out = fast_binary(_power_fast, KINDS_FLOAT, x, y)
    if out is not None:
        return out
    if isinstance(y, (int, np.integer)) and not isinstance(y, (bool, np.bool_)):
        (x,) = promote_dtypes_numeric(asarray_operand(x, "power"))
        if int(y) >= 0 or dtypes.is_float(dtype_of(x)):
            return ew.integer_pow_p.bind(x, y=int(y))
    x, y = elementwise_args("power", x, y, promote=promote_dtypes_numeric)
    if dtypes.is_float(dtype_of(x)):
        return ew.pow_p.bind(x, y)
    return _integer_power(x, y)


def _integer_power(x, y):
    """Integer ** integer by square-and-multiply over the exponent's bits."""
    from .creation import asarray
    x, y = asarray(x), asarray(y)
    dt = x.dtype
    one = np.ones((), dt)
    zero = np.zeros((), dt)
    acc = lax.full_like(x if x.ndim >= y.ndim else y, 1, dt)
    base, e = x, y
    for _ in range(dt.itemsize * 8):
        bit = lax.ne(lax.bitwise_and(e, one), zero)
        acc = lax.select(bit, lax.mul(acc, base), acc)
        base = lax.mul(base, base)
        e = lax.shift_right_logical(e, one)
    if dtypes.is_unsigned(dt):
        return acc
    return lax.select(lax.lt(y, zero), lax.full_like(acc, 0), acc)


def float_power(x: ArrayLike, y: ArrayLike, /) -> Array:
    """``x ** y`` computed in floating point (integers promote to the default float)."""
    x, y = elementwise_args("float_power", x, y, promote=promote_dtypes_inexact)
    return ew.pow_p.bind(x, y)


_neg = _make_unary(ew.neg_p, promote_dtypes, "negative", KINDS_NUMERIC,
                   "``-x`` (not defined for bools, as in numpy and JAX).")
negative = _neg


def positive(x: ArrayLike, /) -> Array:
    """``+x`` (the same values)."""
    return as_array(x, "positive")


_abs_raw = _raw(ew.abs_p)


def absolute(x: ArrayLike, /) -> Array:
    """``|x|`` (bools and unsigned integers are returned unchanged)."""
    out = fast_unary(_abs_raw, "fi", x)
    if out is not None:
        return out
    x = asarray_operand(x, "absolute")
    dt = dtype_of(x)
    if dtypes.is_bool(dt) or dtypes.is_unsigned(dt):
        return as_array(x, "absolute")
    (x,) = promote_dtypes(x)
    return ew.abs_p.bind(x)


abs = absolute

sign = _make_unary(ew.sign_p, promote_dtypes, "sign", KINDS_NUMERIC,
                   "-1, 0 or 1 by sign (NaN stays NaN; not defined for bools).")
square = _make_unary(ew.square_p, promote_dtypes_numeric, "square", KINDS_NUMERIC,
                     "``x * x`` (bools promote to the default int, as in JAX).")


def reciprocal(x: ArrayLike, /) -> Array:
    """``1 / x`` (integers promote to the default float)."""
    return true_divide(1.0, x)


def _float_rounding(p, name):
    raw = _raw(p)

    def fn(x: ArrayLike, /) -> Array:
        out = fast_unary(raw, KINDS_FLOAT, x)
        if out is not None:
            return out
        x = asarray_operand(x, name)
        if not dtypes.is_float(dtype_of(x)):
            return as_array(x, name)    # integers are already whole
        return p.bind(x)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise ``{name}`` (integers are returned unchanged)."
    return fn


floor = _float_rounding(ew.floor_p, "floor")
ceil = _float_rounding(ew.ceil_p, "ceil")


def trunc(x: ArrayLike, /) -> Array:
    """Round toward zero (integers are returned unchanged)."""
    x = asarray_operand(x, "trunc")
    if not dtypes.is_float(dtype_of(x)):
        return as_array(x, "trunc")
    return where(lax.lt(x, np.zeros((), x.dtype)), ew.ceil_p.bind(x), ew.floor_p.bind(x))


fix = trunc


def round(a: ArrayLike, decimals: int = 0, out: None = None) -> Array:
    """Round half to even, to ``decimals`` places (numpy semantics)."""
    check_no_out("round", out)
    a = asarray_operand(a, "round")
    decimals = int(decimals)
    if not dtypes.is_float(dtype_of(a)):
        if decimals >= 0:
            return as_array(a, "round")
        # Integers to tens/hundreds/...: round half to even in floating point, as numpy.
        factor = 10.0 ** (-decimals)
        (af,) = promote_dtypes_inexact(a)
        r = ew.round_p.bind(lax.div(af, np.asarray(factor, af.dtype)), rounding_method=1)
        return lax.convert_element_type(lax.mul(r, np.asarray(factor, af.dtype)), dtype_of(a))
    if decimals == 0:
        return ew.round_p.bind(a, rounding_method=1)
    factor = np.asarray(10.0 ** decimals, dtype_of(a))
    return lax.div(ew.round_p.bind(lax.mul(a, factor), rounding_method=1), factor)


around = round


def rint(x: ArrayLike, /) -> Array:
    """Round to the nearest integer, half to even (integers promote to float, as in JAX)."""
    (x,) = promote_dtypes_inexact(asarray_operand(x, "rint"))
    return ew.round_p.bind(x, rounding_method=1)


def clip(arr: ArrayLike, /, min: ArrayLike | None = None, max: ArrayLike | None = None, *,
         a_min: ArrayLike | None = None, a_max: ArrayLike | None = None) -> Array:
    """Limit values to [min, max]; either bound may be None. NaN propagates.

    ``a_min``/``a_max`` are numpy's older names for the bounds. Where ``min > max`` the
    result is ``max`` (as in numpy and JAX).
    """
    if a_min is not None:
        if min is not None:
            raise TypeError("clip: give either min or a_min, not both")
        min = a_min
    if a_max is not None:
        if max is not None:
            raise TypeError("clip: give either max or a_max, not both")
        max = a_max
    out = as_array(arr, "clip")
    if min is not None:
        out = maximum(min, out)
    if max is not None:
        out = minimum(max, out)
    return out


# ------------------------------------------------------------------ transcendental
exp = _make_unary(ew.exp_p)
exp2 = _make_unary(ew.exp2_p)
log = _make_unary(ew.log_p)
log1p = _make_unary(ew.log1p_p)
expm1 = _make_unary(ew.expm1_p)
sqrt = _make_unary(ew.sqrt_p)
cbrt = _make_unary(ew.cbrt_p)
tanh = _make_unary(ew.tanh_p)
sin = _make_unary(ew.sin_p)
cos = _make_unary(ew.cos_p)
tan = _make_unary(ew.tan_p)
arcsin = _make_unary(ew.asin_p, name="arcsin")
arccos = _make_unary(ew.acos_p, name="arccos")
arctan = _make_unary(ew.atan_p, name="arctan")
sinh = _make_unary(ew.sinh_p)
cosh = _make_unary(ew.cosh_p)
arcsinh = _make_unary(ew.asinh_p, name="arcsinh")
arccosh = _make_unary(ew.acosh_p, name="arccosh")
arctanh = _make_unary(ew.atanh_p, name="arctanh")


def log2(x: ArrayLike, /) -> Array:
    """Base-2 logarithm."""
    (x,) = promote_dtypes_inexact(asarray_operand(x, "log2"))
    return lax.div(ew.log_p.bind(x), np.asarray(np.log(2.0), x.dtype))


def log10(x: ArrayLike, /) -> Array:
    """Base-10 logarithm."""
    (x,) = promote_dtypes_inexact(asarray_operand(x, "log10"))
    return lax.div(ew.log_p.bind(x), np.asarray(np.log(10.0), x.dtype))


def logaddexp(x: ArrayLike, y: ArrayLike, /) -> Array:
    """``log(exp(x) + exp(y))`` without overflow; the gradient splits evenly at x == y."""
    x, y = elementwise_args("logaddexp", x, y, promote=promote_dtypes_inexact)
    amax = ew.max_p.bind(x, y)
    # min - max (<= 0) rather than -|x - y|: its derivative splits evenly at ties, as JAX's.
    delta = ew.sub_p.bind(ew.min_p.bind(x, y), amax)
    # inf - inf is NaN when both are the same infinity: the answer is then amax itself.
    delta = where(ew.ne_p.bind(delta, delta), np.zeros((), amax.dtype), delta)
    return ew.add_p.bind(amax, ew.log1p_p.bind(ew.exp_p.bind(delta)))


def logaddexp2(x: ArrayLike, y: ArrayLike, /) -> Array:
    """``log2(2**x + 2**y)`` without overflow."""
    x, y = elementwise_args("logaddexp2", x, y, promote=promote_dtypes_inexact)
    ln2 = np.asarray(np.log(2.0), dtype_of(x))
    return lax.div(logaddexp(lax.mul(x, ln2), lax.mul(y, ln2)), ln2)


def hypot(x: ArrayLike, y: ArrayLike, /) -> Array:
    """``sqrt(x**2 + y**2)`` (scaled, so it does not overflow for large finite inputs)."""
    x, y = elementwise_args("hypot", x, y, promote=promote_dtypes_inexact)
    ax, ay = ew.abs_p.bind(x), ew.abs_p.bind(y)
    big, small = ew.max_p.bind(ax, ay), ew.min_p.bind(ax, ay)
    zero = np.zeros((), big.dtype)
    safe = where(lax.eq(big, zero), np.ones((), big.dtype), big)
    ratio = lax.div(small, safe)
    out = lax.mul(big, ew.sqrt_p.bind(lax.add(np.ones((), big.dtype), lax.mul(ratio, ratio))))
    # Either operand infinite gives inf, even when the other is NaN (C99 / numpy).
    inf = np.asarray(np.inf, big.dtype)
    return where(lax.bitwise_or(lax.eq(ax, inf), lax.eq(ay, inf)), inf, out)


def deg2rad(x: ArrayLike, /) -> Array:
    """Degrees to radians."""
    (x,) = promote_dtypes_inexact(asarray_operand(x, "deg2rad"))
    return lax.mul(x, np.asarray(np.pi / 180, x.dtype))


def rad2deg(x: ArrayLike, /) -> Array:
    """Radians to degrees."""
    (x,) = promote_dtypes_inexact(asarray_operand(x, "rad2deg"))
    return lax.mul(x, np.asarray(180 / np.pi, x.dtype))


radians, degrees = deg2rad, rad2deg


def sinc(x: ArrayLike, /) -> Array:
    """``sin(pi x) / (pi x)``, 1 at 0."""
    (x,) = promote_dtypes_inexact(asarray_operand(x, "sinc"))
    pix = lax.mul(x, np.asarray(np.pi, x.dtype))
    zero = lax.eq(x, np.zeros((), x.dtype))
    safe = where(zero, np.ones((), x.dtype), pix)
    return where(zero, np.ones((), x.dtype), lax.div(ew.sin_p.bind(safe), safe))


def copysign(x: ArrayLike, y: ArrayLike, /) -> Array:
    """``|x|`` with the sign of ``y``."""
    x, y = elementwise_args("copysign", x, y, promote=promote_dtypes_inexact)
    return where(signbit(y), negative(absolute(x)), absolute(x))


def signbit(x: ArrayLike, /) -> Array:
    """True where the sign bit is set (including -0.0)."""
    x = asarray_operand(x, "signbit")
    dt = dtype_of(x)
    if dtypes.is_float(dt):
        ibits = np.dtype(f"i{dt.itemsize}")
        return lax.lt(lax.bitcast_convert_type(x, ibits), np.zeros((), ibits))
    if dtypes.is_unsigned(dt) or dtypes.is_bool(dt):
        return lax.full_like(x, False, np.bool_)
    return lax.lt(x, np.zeros((), dt))


def heaviside(x1: ArrayLike, x2: ArrayLike, /) -> Array:
    """0 for x1 < 0, x2 at 0, 1 for x1 > 0."""
    x1, x2 = elementwise_args("heaviside", x1, x2, promote=promote_dtypes_inexact)
    zero = np.zeros((), dtype_of(x1))
    return where(lax.lt(x1, zero), zero, where(lax.gt(x1, zero), np.ones((), dtype_of(x1)), x2))


def conjugate(x: ArrayLike, /) -> Array:
    """The complex conjugate: the same values (jitgrad has no complex dtypes)."""
    return as_array(x, "conjugate")


conj = conjugate


def real(val: ArrayLike, /) -> Array:
    """The real part: the same values (jitgrad has no complex dtypes)."""
    return as_array(val, "real")


def imag(val: ArrayLike, /) -> Array:
    """The imaginary part: zeros (jitgrad has no complex dtypes)."""
    val = asarray_operand(val, "imag")
    return lax.full_like(val, 0)


# ------------------------------------------------------------------ comparison and logic
_cmp_doc = "Elementwise ``x {} y`` (a bool array)."
equal = _make_binary(ew.eq_p, name="equal", doc=_cmp_doc.format("=="))
not_equal = _make_binary(ew.ne_p, name="not_equal", doc=_cmp_doc.format("!="))
less = _make_binary(ew.lt_p, name="less", doc=_cmp_doc.format("<"))
less_equal = _make_binary(ew.le_p, name="less_equal", doc=_cmp_doc.format("<="))
greater = _make_binary(ew.gt_p, name="greater", doc=_cmp_doc.format(">"))
greater_equal = _make_binary(ew.ge_p, name="greater_equal", doc=_cmp_doc.format(">="))
bitwise_and = _make_binary(ew.and_p, name="bitwise_and", kinds=KINDS_INT_OR_BOOL,
                           doc="Bitwise AND of integers, logical AND of bools.")
bitwise_or = _make_binary(ew.or_p, name="bitwise_or", kinds=KINDS_INT_OR_BOOL,
                          doc="Bitwise OR of integers, logical OR of bools.")
bitwise_xor = _make_binary(ew.xor_p, name="bitwise_xor", kinds=KINDS_INT_OR_BOOL,
                           doc="Bitwise XOR of integers, logical XOR of bools.")
left_shift = _make_binary(ew.shift_left_p, name="left_shift", kinds=KINDS_INT,
                          doc="``x << y`` for integers (shifts of the bit width or more give 0).")


def right_shift(x: ArrayLike, y: ArrayLike, /) -> Array:
    """``x >> y``: arithmetic for signed integers, logical for unsigned (numpy semantics)."""
    x, y = elementwise_args("right_shift", x, y)
    if dtypes.is_unsigned(dtype_of(x)):
        return ew.shift_right_logical_p.bind(x, y)
    return ew.shift_right_arithmetic_p.bind(x, y)


invert = _make_unary(ew.not_p, promote_dtypes, "invert", KINDS_INT_OR_BOOL,
                     "Bitwise NOT of integers, logical NOT of bools.")
bitwise_not = invert


def _to_bool(x):
    x = as_array(x, "logical")
    dt = dtype_of(x)
    if dtypes.is_bool(dt):
        return x
    return lax.ne(x, np.zeros((), dtypes.canonicalize_dtype(dt)))


def logical_and(x: ArrayLike, y: ArrayLike, /) -> Array:
    """Elementwise logical AND (nonzero is true)."""
    return bitwise_and(_to_bool(x), _to_bool(y))


def logical_or(x: ArrayLike, y: ArrayLike, /) -> Array:
    """Elementwise logical OR (nonzero is true)."""
    return bitwise_or(_to_bool(x), _to_bool(y))


def logical_xor(x: ArrayLike, y: ArrayLike, /) -> Array:
    """Elementwise logical XOR (nonzero is true)."""
    return bitwise_xor(_to_bool(x), _to_bool(y))


def logical_not(x: ArrayLike, /) -> Array:
    """Elementwise logical NOT (nonzero is true)."""
    return ew.not_p.bind(_to_bool(x))


_isfinite_raw = _raw(ew.is_finite_p)


def isfinite(x: ArrayLike, /) -> Array:
    """True where ``x`` is neither inf nor NaN."""
    out = fast_unary(_isfinite_raw, KINDS_FLOAT, x)
    if out is not None:
        return out
    x = asarray_operand(x, "isfinite")
    if not dtypes.is_float(dtype_of(x)):
        return lax.full_like(x, True, np.bool_)
    return ew.is_finite_p.bind(x)


def isnan(x: ArrayLike, /) -> Array:
    """True where ``x`` is NaN."""
    x = asarray_operand(x, "isnan")
    if not dtypes.is_float(dtype_of(x)):
        return lax.full_like(x, False, np.bool_)
    return ew.ne_p.bind(x, x)


def isinf(x: ArrayLike, /) -> Array:
    """True where ``x`` is +inf or -inf."""
    x = asarray_operand(x, "isinf")
    dt = dtype_of(x)
    if not dtypes.is_float(dt):
        return lax.full_like(x, False, np.bool_)
    return ew.eq_p.bind(ew.abs_p.bind(x), np.asarray(np.inf, dt))


def isposinf(x: ArrayLike, /) -> Array:
    """True where ``x`` is +inf."""
    x = asarray_operand(x, "isposinf")
    if not dtypes.is_float(dtype_of(x)):
        return lax.full_like(x, False, np.bool_)
    return ew.eq_p.bind(x, np.asarray(np.inf, dtype_of(x)))


def isneginf(x: ArrayLike, /) -> Array:
    """True where ``x`` is -inf."""
    x = asarray_operand(x, "isneginf")
    if not dtypes.is_float(dtype_of(x)):
        return lax.full_like(x, False, np.bool_)
    return ew.eq_p.bind(x, np.asarray(-np.inf, dtype_of(x)))


def fmax(x: ArrayLike, y: ArrayLike, /) -> Array:
    """Maximum that ignores NaN when the other operand is a number."""
    x, y = elementwise_args("fmax", x, y)
    return where(isnan(x), y, where(isnan(y), x, ew.max_p.bind(x, y)))


def fmin(x: ArrayLike, y: ArrayLike, /) -> Array:
    """Minimum that ignores NaN when the other operand is a number."""
    x, y = elementwise_args("fmin", x, y)
    return where(isnan(x), y, where(isnan(y), x, ew.min_p.bind(x, y)))


_select_raw = _raw(ew.select_n_p)


def where(condition: ArrayLike, x: ArrayLike | None = None, y: ArrayLike | None = None, /, *,
          size: int | None = None, fill_value: ArrayLike | None = None):
    """``x`` where ``condition`` else ``y``, all three broadcast together.

    With only ``condition``, this is ``jnp.nonzero(condition, size=size,
    fill_value=fill_value)``, which needs a concrete condition unless ``size`` is given.
    """
    if x is None and y is None:
        from .indexing import nonzero
        return nonzero(condition, size=size, fill_value=fill_value)
    if x is None or y is None:
        raise TypeError("jnp.where takes either 1 or 3 arguments")
    if size is not None or fill_value is not None:
        raise TypeError("jnp.where: size and fill_value are only used with a single argument")
    condition = _to_bool(condition)
    x, y = promote_dtypes(asarray_operand(x, "where"), asarray_operand(y, "where"))
    c, x, y = elementwise_args("where", condition, x, y, promote=lambda *a: list(a))
    if _STATE.trace is None and type(c) is ArrayImpl and type(x) is ArrayImpl \
            and type(y) is ArrayImpl:
        # Eagerly: the result is weak if both cases are (the condition does not count,
        # which the eager evaluator's operand-based rule would get wrong).
        return wrap_result(_select_raw(c._value, y._value, x._value),
                           x._weak_type and y._weak_type)
    return ew.select_n_p.bind(c, y, x)


def isclose(a: ArrayLike, b: ArrayLike, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Array:
    """Elementwise ``|a - b| <= atol + rtol * |b|`` (equal infinities are close)."""
    a, b = elementwise_args("isclose", a, b, promote=promote_dtypes_inexact)
    out = less_equal(absolute(subtract(a, b)), add(atol, multiply(rtol, absolute(b))))
    # An infinity is close only to the same infinity.
    out = logical_and(out, logical_not(logical_or(isinf(a), isinf(b))))
    out = logical_or(out, logical_and(equal(a, b), isinf(a)))
    out = logical_and(out, logical_not(logical_or(isnan(a), isnan(b))))
    if equal_nan:
        out = logical_or(out, logical_and(isnan(a), isnan(b)))
    return out


def allclose(a: ArrayLike, b: ArrayLike, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> Array:
    """True if every element is close (a 0-d bool array)."""
    from .reductions import all as _all
    return _all(isclose(a, b, rtol, atol, equal_nan))


def array_equal(a1: ArrayLike, a2: ArrayLike, equal_nan: bool = False) -> Array:
    """True if shapes and elements are equal (a 0-d bool array)."""
    from .reductions import all as _all
    a1, a2 = asarray_operand(a1, "array_equal"), asarray_operand(a2, "array_equal")
    if np.shape(a1) != np.shape(a2):
        from .creation import array
        return array(False)
    eq = equal(a1, a2)
    if equal_nan:
        eq = logical_or(eq, logical_and(isnan(a1), isnan(a2)))
    return _all(eq)


def array_equiv(a1: ArrayLike, a2: ArrayLike) -> Array:
    """True if the arrays broadcast together and are equal everywhere."""
    from .reductions import all as _all
    from ._util import broadcast_shapes
    a1, a2 = asarray_operand(a1, "array_equiv"), asarray_operand(a2, "array_equiv")
    try:
        broadcast_shapes("array_equiv", np.shape(a1), np.shape(a2))
    except TypeError:
        from .creation import array
        return array(False)
    return _all(equal(a1, a2))


def select(condlist, choicelist, default: ArrayLike = 0) -> Array:
    """The first choice whose condition holds, else ``default`` (numpy.select)."""
    if len(condlist) != len(choicelist):
        raise ValueError("select: condlist and choicelist must have the same length")
    if not condlist:
        raise ValueError("select: condlist must not be empty")
    out = default
    for cond, choice in reversed(list(zip(condlist, choicelist))):
        out = where(cond, choice, out)
    return as_array(out, "select")


def nan_to_num(x: ArrayLike, copy: bool = True, nan: float = 0.0, posinf: float | None = None,
               neginf: float | None = None) -> Array:
    """Replace NaN by ``nan`` and infinities by ``posinf``/``neginf`` (default: the largest
    finite values). ``copy`` has no effect: jitgrad arrays are immutable."""
    x = asarray_operand(x, "nan_to_num")
    dt = dtype_of(x)
    if not dtypes.is_float(dt):
        return as_array(x, "nan_to_num")
    info = np.finfo(dt)
    posinf = info.max if posinf is None else posinf
    neginf = info.min if neginf is None else neginf
    out = where(isnan(x), np.asarray(nan, dt), x)
    out = where(isposinf(out), np.asarray(posinf, dt), out)
    return where(isneginf(out), np.asarray(neginf, dt), out)
