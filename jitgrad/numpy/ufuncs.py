"""Elementwise functions with numpy semantics (promotion, broadcasting), on lax primitives."""
from __future__ import annotations

import numpy as np

from .. import lax
from ..core import dtypes
from ..core.array import Array
from ..ops import elementwise as ew
from ._util import (asarray_operand, elementwise_args, promote_dtypes, promote_dtypes_inexact,
                    promote_dtypes_numeric)


def _make_unary(p, promote=promote_dtypes_inexact, name=None):
    name = name or p.name

    def fn(x, /):
        (x,) = promote(asarray_operand(x, name))
        return p.bind(x)
    fn.__name__ = name
    fn.__doc__ = f"Elementwise ``{name}`` (numpy semantics; integers promote to float)."
    return fn


def _make_binary(p, promote=promote_dtypes, name=None):
    name = name or p.name

    def fn(x, y, /):
        x, y = elementwise_args(name, x, y, promote=promote)
        return p.bind(x, y)
    fn.__name__ = name
    fn.__doc__ = f"Elementwise ``{name}`` of two broadcast operands (numpy semantics)."
    return fn


# ------------------------------------------------------------------ arithmetic
add = _make_binary(ew.add_p, name="add")
subtract = _make_binary(ew.sub_p, promote_dtypes_numeric, name="subtract")
multiply = _make_binary(ew.mul_p, name="multiply")
maximum = _make_binary(ew.max_p, name="maximum")
minimum = _make_binary(ew.min_p, name="minimum")
arctan2 = _make_binary(ew.atan2_p, promote_dtypes_inexact, name="arctan2")
nextafter = _make_binary(ew.nextafter_p, promote_dtypes_inexact, name="nextafter")


def true_divide(x, y, /):
    """``x / y`` in floating point (integers promote to float)."""
    x, y = elementwise_args("divide", x, y, promote=promote_dtypes_inexact)
    return ew.div_p.bind(x, y)


divide = true_divide


def floor_divide(x, y, /):
    """``x // y``: rounds toward minus infinity, as in Python."""
    x, y = elementwise_args("floor_divide", x, y, promote=promote_dtypes_numeric)
    if dtypes.is_float(x.dtype if isinstance(x, Array) else np.result_type(x)):
        return ew.floor_p.bind(ew.div_p.bind(x, y))
    q = ew.div_p.bind(x, y)                      # truncates toward zero
    r = ew.rem_p.bind(x, y)
    zero = np.zeros((), q.dtype)
    adjust = lax.bitwise_and(lax.ne(r, zero), lax.ne(lax.lt(r, zero), lax.lt(y, zero)))
    return lax.select(adjust, lax.sub(q, np.ones((), q.dtype)), q)


def remainder(x, y, /):
    """``x % y`` with the sign of ``y``, as in Python."""
    x, y = elementwise_args("remainder", x, y, promote=promote_dtypes_numeric)
    r = ew.rem_p.bind(x, y)
    zero = np.zeros((), r.dtype)
    adjust = lax.bitwise_and(lax.ne(r, zero), lax.ne(lax.lt(r, zero), lax.lt(y, zero)))
    return lax.select(adjust, lax.add(r, y), r)


mod = remainder


def fmod(x, y, /):
    """C-style remainder (sign of ``x``)."""
    x, y = elementwise_args("fmod", x, y, promote=promote_dtypes_numeric)
    return ew.rem_p.bind(x, y)


def divmod(x, y, /):
    """``(x // y, x % y)``."""
    return floor_divide(x, y), remainder(x, y)


def power(x, y, /):
    """``x ** y``. A static integer exponent uses repeated multiplication (integer_pow)."""
    if isinstance(y, (int, np.integer)) and not isinstance(y, bool):
        (x,) = promote_dtypes_numeric(asarray_operand(x, "power"))
        xdt = x.dtype if isinstance(x, Array) else np.result_type(x)
        if int(y) >= 0 or dtypes.is_float(xdt):
            return ew.integer_pow_p.bind(x, y=int(y))
    x, y = elementwise_args("power", x, y, promote=promote_dtypes_numeric)
    dt = x.dtype if isinstance(x, Array) else np.result_type(x)
    if dtypes.is_float(dt):
        return ew.pow_p.bind(x, y)
    return _integer_power(x, y)


def _integer_power(x, y):
    """Integer ** integer by square-and-multiply over the exponent's bits."""
    dt = x.dtype
    one = np.ones((), dt)
    acc = lax.full_like(x if x.ndim >= np.ndim(y) else y, 1, dt)
    base = x
    e = y
    for _ in range(dt.itemsize * 8):
        bit = lax.ne(lax.bitwise_and(e, one), np.zeros((), dt))
        acc = lax.select(bit, lax.mul(acc, base), acc)
        base = lax.mul(base, base)
        e = lax.shift_right_logical(e, one)
    return lax.select(lax.lt(y, np.zeros((), dt)), lax.full_like(acc, 0), acc)


float_power = power


def negative(x, /):
    """``-x``."""
    (x,) = promote_dtypes_numeric(asarray_operand(x, "negative"))
    return ew.neg_p.bind(x)


def positive(x, /):
    """``+x``."""
    return asarray_operand(x, "positive")


def absolute(x, /):
    """``|x|``."""
    x = asarray_operand(x, "absolute")
    dt = x.dtype if isinstance(x, Array) else dtypes.dtype(x)
    if dtypes.is_bool(dt) or dtypes.is_unsigned(dt):
        return x
    (x,) = promote_dtypes(x)
    return ew.abs_p.bind(x)


abs = absolute


def sign(x, /):
    """-1, 0 or 1 by sign (NaN stays NaN)."""
    (x,) = promote_dtypes_numeric(asarray_operand(x, "sign"))
    return ew.sign_p.bind(x)


def square(x, /):
    """``x * x``."""
    (x,) = promote_dtypes_numeric(asarray_operand(x, "square"))
    return ew.square_p.bind(x)


def reciprocal(x, /):
    """``1 / x``."""
    return true_divide(1.0, x)


def _float_rounding(p, name):
    def fn(x, /):
        x = asarray_operand(x, name)
        dt = x.dtype if isinstance(x, Array) else dtypes.dtype(x)
        if not dtypes.is_float(dt):
            return x                    # integers are already whole
        return p.bind(x)
    fn.__name__ = name
    fn.__doc__ = f"Elementwise ``{name}`` (integers are returned unchanged)."
    return fn


floor = _float_rounding(ew.floor_p, "floor")
ceil = _float_rounding(ew.ceil_p, "ceil")


def trunc(x, /):
    """Round toward zero."""
    x = asarray_operand(x, "trunc")
    if not dtypes.is_float(x.dtype if isinstance(x, Array) else dtypes.dtype(x)):
        return x
    return where(lax.lt(x, np.zeros((), x.dtype)), ew.ceil_p.bind(x), ew.floor_p.bind(x))


fix = trunc


def round(a, decimals: int = 0, out=None):
    """Round half to even, to ``decimals`` places (numpy semantics)."""
    a = asarray_operand(a, "round")
    dt = a.dtype if isinstance(a, Array) else dtypes.dtype(a)
    if not dtypes.is_float(dt):
        return a
    if decimals == 0:
        return ew.round_p.bind(a, rounding_method=1)
    factor = np.asarray(10.0 ** decimals, dt)
    return lax.div(ew.round_p.bind(lax.mul(a, factor), rounding_method=1), factor)


around = round
rint = lambda x, /: round(x)


def clip(arr, min=None, max=None, *, a_min=None, a_max=None):
    """Limit values to [min, max] (either may be None)."""
    min = a_min if min is None else min
    max = a_max if max is None else max
    out = asarray_operand(arr, "clip")
    if min is not None:
        out = maximum(out, min)
    if max is not None:
        out = minimum(out, max)
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


def log2(x, /):
    """Base-2 logarithm."""
    (x,) = promote_dtypes_inexact(asarray_operand(x, "log2"))
    return lax.div(ew.log_p.bind(x), np.asarray(np.log(2.0), x.dtype))


def log10(x, /):
    """Base-10 logarithm."""
    (x,) = promote_dtypes_inexact(asarray_operand(x, "log10"))
    return lax.div(ew.log_p.bind(x), np.asarray(np.log(10.0), x.dtype))


def logaddexp(x, y, /):
    """``log(exp(x) + exp(y))`` without overflow."""
    x, y = elementwise_args("logaddexp", x, y, promote=promote_dtypes_inexact)
    amax = ew.max_p.bind(x, y)
    delta = ew.sub_p.bind(x, y)
    out = ew.add_p.bind(amax, ew.log1p_p.bind(ew.exp_p.bind(ew.neg_p.bind(ew.abs_p.bind(delta)))))
    # inf - inf is NaN: where both are the same infinity, the answer is that infinity.
    return where(ew.eq_p.bind(x, y), ew.add_p.bind(x, np.asarray(np.log(2.0), amax.dtype)), out)


def hypot(x, y, /):
    """``sqrt(x**2 + y**2)``."""
    x, y = elementwise_args("hypot", x, y, promote=promote_dtypes_inexact)
    return sqrt(add(square(x), square(y)))


def deg2rad(x, /):
    """Degrees to radians."""
    (x,) = promote_dtypes_inexact(asarray_operand(x, "deg2rad"))
    return lax.mul(x, np.asarray(np.pi / 180, x.dtype))


def rad2deg(x, /):
    """Radians to degrees."""
    (x,) = promote_dtypes_inexact(asarray_operand(x, "rad2deg"))
    return lax.mul(x, np.asarray(180 / np.pi, x.dtype))


radians, degrees = deg2rad, rad2deg


def sinc(x, /):
    """``sin(pi x) / (pi x)``, 1 at 0."""
    (x,) = promote_dtypes_inexact(asarray_operand(x, "sinc"))
    pix = lax.mul(x, np.asarray(np.pi, x.dtype))
    zero = lax.eq(x, np.zeros((), x.dtype))
    safe = where(zero, np.ones((), x.dtype), pix)
    return where(zero, np.ones((), x.dtype), lax.div(ew.sin_p.bind(safe), safe))


def copysign(x, y, /):
    """``|x|`` with the sign of ``y``."""
    x, y = elementwise_args("copysign", x, y, promote=promote_dtypes_inexact)
    return where(signbit(y), negative(absolute(x)), absolute(x))


def signbit(x, /):
    """True where the sign bit is set (including -0.0)."""
    x = asarray_operand(x, "signbit")
    dt = x.dtype if isinstance(x, Array) else dtypes.dtype(x)
    if dtypes.is_float(dt):
        ibits = np.dtype(f"i{dt.itemsize}")
        return lax.lt(lax.bitcast_convert_type(x, ibits), np.zeros((), ibits))
    if dtypes.is_unsigned(dt) or dtypes.is_bool(dt):
        return lax.full_like(x, False, np.bool_)
    return lax.lt(x, np.zeros((), dt))


def heaviside(x1, x2, /):
    """0 for x1 < 0, x2 at 0, 1 for x1 > 0."""
    x1, x2 = elementwise_args("heaviside", x1, x2, promote=promote_dtypes_inexact)
    zero = np.zeros((), x1.dtype)
    return where(lax.lt(x1, zero), zero, where(lax.gt(x1, zero), np.ones((), x1.dtype), x2))


# ------------------------------------------------------------------ comparison and logic
equal = _make_binary(ew.eq_p, name="equal")
not_equal = _make_binary(ew.ne_p, name="not_equal")
less = _make_binary(ew.lt_p, name="less")
less_equal = _make_binary(ew.le_p, name="less_equal")
greater = _make_binary(ew.gt_p, name="greater")
greater_equal = _make_binary(ew.ge_p, name="greater_equal")
bitwise_and = _make_binary(ew.and_p, name="bitwise_and")
bitwise_or = _make_binary(ew.or_p, name="bitwise_or")
bitwise_xor = _make_binary(ew.xor_p, name="bitwise_xor")
left_shift = _make_binary(ew.shift_left_p, name="left_shift")


def right_shift(x, y, /):
    """Arithmetic shift for signed integers, logical for unsigned (numpy semantics)."""
    x, y = elementwise_args("right_shift", x, y)
    if dtypes.is_unsigned(x.dtype):
        return ew.shift_right_logical_p.bind(x, y)
    return ew.shift_right_arithmetic_p.bind(x, y)


def invert(x, /):
    """Bitwise NOT (logical NOT for bools)."""
    (x,) = promote_dtypes(asarray_operand(x, "invert"))
    return ew.not_p.bind(x)


bitwise_not = invert


def _to_bool(x):
    x = asarray_operand(x, "logical")
    dt = x.dtype if isinstance(x, Array) else dtypes.dtype(x)
    if dtypes.is_bool(dt):
        return x
    return lax.ne(x, np.zeros((), dtypes.canonicalize_dtype(dt)))


def logical_and(x, y, /):
    """Elementwise logical AND."""
    return bitwise_and(_to_bool(x), _to_bool(y))


def logical_or(x, y, /):
    """Elementwise logical OR."""
    return bitwise_or(_to_bool(x), _to_bool(y))


def logical_xor(x, y, /):
    """Elementwise logical XOR."""
    return bitwise_xor(_to_bool(x), _to_bool(y))


def logical_not(x, /):
    """Elementwise logical NOT."""
    return ew.not_p.bind(_to_bool(x))


def isfinite(x, /):
    """True where ``x`` is neither inf nor NaN."""
    x = asarray_operand(x, "isfinite")
    dt = x.dtype if isinstance(x, Array) else dtypes.dtype(x)
    if not dtypes.is_float(dt):
        return lax.full_like(x, True, np.bool_)
    return ew.is_finite_p.bind(x)


def isnan(x, /):
    """True where ``x`` is NaN."""
    x = asarray_operand(x, "isnan")
    dt = x.dtype if isinstance(x, Array) else dtypes.dtype(x)
    if not dtypes.is_float(dt):
        return lax.full_like(x, False, np.bool_)
    return ew.ne_p.bind(x, x)


def isinf(x, /):
    """True where ``x`` is +inf or -inf."""
    x = asarray_operand(x, "isinf")
    dt = x.dtype if isinstance(x, Array) else dtypes.dtype(x)
    if not dtypes.is_float(dt):
        return lax.full_like(x, False, np.bool_)
    return ew.eq_p.bind(ew.abs_p.bind(x), np.asarray(np.inf, dt))


def isposinf(x, /):
    """True where ``x`` is +inf."""
    return equal(x, np.inf)


def isneginf(x, /):
    """True where ``x`` is -inf."""
    return equal(x, -np.inf)


def fmax(x, y, /):
    """Maximum that ignores NaN when the other operand is a number."""
    x, y = elementwise_args("fmax", x, y)
    return where(isnan(x), y, where(isnan(y), x, ew.max_p.bind(x, y)))


def fmin(x, y, /):
    """Minimum that ignores NaN when the other operand is a number."""
    x, y = elementwise_args("fmin", x, y)
    return where(isnan(x), y, where(isnan(y), x, ew.min_p.bind(x, y)))


def where(condition, x=None, y=None, /):
    """``x`` where ``condition`` else ``y`` (broadcast). The 1-argument form needs concrete input."""
    if x is None and y is None:
        from .indexing import nonzero
        return nonzero(condition)
    if x is None or y is None:
        raise TypeError("jnp.where takes either 1 or 3 arguments")
    condition = _to_bool(condition)
    x, y = promote_dtypes(asarray_operand(x, "where"), asarray_operand(y, "where"))
    c, x, y = elementwise_args("where", condition, x, y, promote=lambda *a: list(a))
    return ew.select_n_p.bind(c, y, x)


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Elementwise ``|a - b| <= atol + rtol * |b|``."""
    a, b = elementwise_args("isclose", a, b, promote=promote_dtypes_inexact)
    out = less_equal(absolute(subtract(a, b)), add(atol, multiply(rtol, absolute(b))))
    out = logical_or(out, logical_and(equal(a, b), isinf(a)))   # equal infinities
    out = logical_and(out, logical_not(logical_or(isnan(a), isnan(b))))
    if equal_nan:
        out = logical_or(out, logical_and(isnan(a), isnan(b)))
    return out


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True if every element is close (a 0-d bool array)."""
    from .reductions import all as _all
    return _all(isclose(a, b, rtol, atol, equal_nan))


def array_equal(a1, a2, equal_nan: bool = False):
    """True if shapes and elements are equal."""
    from .reductions import all as _all
    a1, a2 = asarray_operand(a1), asarray_operand(a2)
    if np.shape(a1) != np.shape(a2):
        from .creation import array
        return array(False)
    eq = equal(a1, a2)
    if equal_nan:
        eq = logical_or(eq, logical_and(isnan(a1), isnan(a2)))
    return _all(eq)


def select(condlist, choicelist, default=0):
    """The first choice whose condition holds, else ``default`` (numpy.select)."""
    if len(condlist) != len(choicelist):
        raise ValueError("select: condlist and choicelist must have the same length")
    out = default
    for cond, choice in reversed(list(zip(condlist, choicelist))):
        out = where(cond, choice, out)
    return asarray_operand(out)


def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """Replace NaN and infinities by finite numbers."""
    x = asarray_operand(x, "nan_to_num")
    dt = x.dtype if isinstance(x, Array) else dtypes.dtype(x)
    if not dtypes.is_float(dt):
        return x
    info = np.finfo(dt)
    posinf = info.max if posinf is None else posinf
    neginf = info.min if neginf is None else neginf
    out = where(isnan(x), np.asarray(nan, dt), x)
    out = where(isposinf(out), np.asarray(posinf, dt), out)
    return where(isneginf(out), np.asarray(neginf, dt), out)


