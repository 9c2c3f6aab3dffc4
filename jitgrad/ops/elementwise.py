"""Elementwise primitives: out[i] = f(x[i], y[i], ...).

Operands share one dtype and one shape, except that rank-0 operands broadcast (as in a
jaxpr, ``mul b 2.0:f32[]``). ``jitgrad.numpy`` does dtype promotion and broadcasting
before it binds these; ``jitgrad.lax`` exposes them under JAX's lax names.

Each primitive is declared from a row of a table: name, numpy implementation, which
dtypes it accepts, and the dtype it returns. The transformation rules live beside them.
"""
from __future__ import annotations

import math

import numpy as np

from ..core import dtypes
from ..core.abstract import ShapedArray
from ..core.errors import DTypeError, ShapeError
from ..core.primitive import ELEMENTWISE, Primitive

# ------------------------------------------------------------------ shape/dtype rule

FLOAT = "float"
INT = "int"             # signed or unsigned integers
NUMERIC = "numeric"     # int or float
INT_OR_BOOL = "int_or_bool"
ANY = "any"

_CATEGORY_TEST = {
    FLOAT: dtypes.is_float,
    INT: dtypes.is_int,
    NUMERIC: lambda d: dtypes.is_int(d) or dtypes.is_float(d),
    INT_OR_BOOL: lambda d: dtypes.is_int(d) or dtypes.is_bool(d),
    ANY: lambda d: True,
}
_CATEGORY_WORDS = {FLOAT: "floating-point", INT: "integer", NUMERIC: "numeric",
                   INT_OR_BOOL: "integer or boolean", ANY: "any"}


def elementwise_shape(name: str, avals) -> tuple[int, ...]:
    """The common shape of elementwise operands: equal shapes, rank-0 operands broadcast."""
    shape = None
    for a in avals:
        if a.shape == () or a.shape == shape:
            continue
        if shape is None:
            shape = a.shape
        else:
            shapes = ", ".join(x.str_short() for x in avals)
            raise ShapeError(
                f"{name}: operands must have equal shapes (or be scalars), got {shapes}",
                hint="jitgrad.numpy broadcasts automatically; with jitgrad.lax, broadcast "
                     "explicitly with lax.broadcast_in_dim.")
    return () if shape is None else shape


def check_same_dtype(name: str, avals) -> np.dtype:
    dt = avals[0].dtype
    for a in avals[1:]:
        if a.dtype != dt:
            shapes = ", ".join(x.str_short() for x in avals)
            raise DTypeError(
                f"{name}: operands must have the same dtype, got {shapes}",
                hint="jitgrad.numpy promotes dtypes automatically; with jitgrad.lax, convert "
                     "first with lax.convert_element_type.")
    return dt


def _elementwise_rule(name: str, category: str, out_dtype):
    test = _CATEGORY_TEST[category]

    def rule(*avals, **params):
        dt = check_same_dtype(name, avals)
        if not test(dt):
            raise DTypeError(
                f"{name} does not accept {dt.name} operands ({_CATEGORY_WORDS[category]} only), "
                f"got {', '.join(a.str_short() for a in avals)}",
                hint="Convert with .astype(...) first.")
        shape = elementwise_shape(name, avals)
        weak = all(a.weak_type for a in avals)
        odt = dt if out_dtype is None else np.dtype(out_dtype)
        return ShapedArray(shape, odt, weak and out_dtype is None)
    return rule


def _quiet(fn):
    """Run a numpy function without floating-point warnings (JAX returns inf/nan silently)."""
    def impl(*args, **params):
        with np.errstate(all="ignore"):
            return fn(*args, **params)
    impl.__name__ = getattr(fn, "__name__", "impl")
    return impl


def elementwise(name: str, impl, category: str = NUMERIC, out_dtype=None, quiet=False) -> Primitive:
    """Declare an elementwise primitive from its numpy implementation and dtype category."""
    p = Primitive(name, ELEMENTWISE)
    p.impl = _quiet(impl) if quiet else impl
    p.abstract_eval = _elementwise_rule(name, category, out_dtype)
    return p


# ------------------------------------------------------------------ numpy helpers

def _cast_like(fn):
    """Keep numpy from widening: the result has the first operand's dtype."""
    def impl(x, *rest):
        out = fn(x, *rest)
        dt = np.result_type(x)
        return out.astype(dt, copy=False) if out.dtype != dt else out
    return impl


def _div(x, y):
    if np.result_type(x).kind in "iu":
        # C semantics: round toward zero; division by zero gives 0 rather than a crash.
        y_safe = np.where(y == 0, 1, y)
        q = np.abs(x) // np.abs(y_safe)
        q = np.where((x < 0) != (y_safe < 0), -q, q)
        return np.where(y == 0, 0, q).astype(np.result_type(x))
    return np.true_divide(x, y)


def _rem(x, y):
    if np.result_type(x).kind in "iu":
        y_safe = np.where(y == 0, 1, y)
        return np.where(y == 0, 0, np.fmod(x, y_safe)).astype(np.result_type(x))
    return np.fmod(x, y)


def _bits(x) -> int:
    return np.dtype(np.result_type(x)).itemsize * 8


def _shift_left(x, y):
    dt = np.result_type(x)
    bad = (y < 0) | (y >= _bits(x))
    return np.where(bad, 0, np.left_shift(x, np.where(bad, 0, y))).astype(dt)


def _unsigned_of(dt):
    return np.dtype(f"u{np.dtype(dt).itemsize}")


def _signed_of(dt):
    return np.dtype(f"i{np.dtype(dt).itemsize}")


def _shift_right_logical(x, y):
    dt = np.result_type(x)
    ux = np.asarray(x).view(_unsigned_of(dt))
    bad = (y < 0) | (y >= _bits(x))
    out = np.where(bad, 0, np.right_shift(ux, np.where(bad, 0, y).astype(ux.dtype)))
    return out.astype(ux.dtype).view(dt)


def _shift_right_arithmetic(x, y):
    dt = np.result_type(x)
    sx = np.asarray(x).view(_signed_of(dt))
    nbits = _bits(x)
    yy = np.clip(y, 0, nbits - 1).astype(sx.dtype)
    return np.right_shift(sx, yy).astype(sx.dtype).view(dt)


def _round(x, rounding_method=1):
    # rounding_method 0: half away from zero (lax default); 1: half to even (jnp.round).
    if rounding_method == 0:
        return (np.sign(x) * np.floor(np.abs(x) + np.asarray(0.5, x.dtype))).astype(x.dtype)
    return np.round(x)


def _sign(x):
    return np.sign(x)


def _rsqrt(x):
    return np.asarray(1, x.dtype) / np.sqrt(x)


def _logistic(x):
    # Stable in both tails: 1/(1+exp(-x)) for x >= 0, exp(x)/(1+exp(x)) otherwise.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def _scalar_ufunc(fn):
    """Vectorise a Python math function, keeping the input dtype."""
    vec = np.frompyfunc(fn, 1, 1)

    def impl(x):
        x = np.asarray(x)
        return np.asarray(vec(x.astype(np.float64)), dtype=np.float64).astype(x.dtype)
    return impl


try:  # scipy is optional; math's scalar functions are the exact fallback
    from scipy import special as _special
    _erf = _cast_like(_special.erf)
    _erf_inv = _cast_like(_special.erfinv)
    _lgamma = _cast_like(_special.gammaln)
    _digamma = _cast_like(_special.digamma)
except ImportError:  # pragma: no cover - depends on the environment
    _erf = _scalar_ufunc(math.erf)
    _lgamma = _scalar_ufunc(math.lgamma)

    def _erf_inv_scalar(y):
        if y <= -1:
            return -math.inf if y == -1 else math.nan
        if y >= 1:
            return math.inf if y == 1 else math.nan
        lo, hi = -10.0, 10.0
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if math.erf(mid) < y else (lo, mid)
        return 0.5 * (lo + hi)
    _erf_inv = _scalar_ufunc(_erf_inv_scalar)
    _digamma = None


def _convert_element_type(x, new_dtype, weak_type=False):
    x = np.asarray(x)
    new_dtype = np.dtype(new_dtype)
    if x.dtype.kind == "f" and new_dtype.kind in "iu":
        # Saturate and send NaN to 0, instead of numpy's undefined behaviour.
        info = np.iinfo(new_dtype)
        with np.errstate(invalid="ignore"):
            y = np.where(np.isnan(x), 0, np.clip(np.trunc(x), info.min, info.max))
        return y.astype(new_dtype)
    if new_dtype.kind == "b":
        return x != 0
    return x.astype(new_dtype)


# ------------------------------------------------------------------ the primitives

# Arithmetic
add_p = elementwise("add", np.add)
sub_p = elementwise("sub", np.subtract)
mul_p = elementwise("mul", np.multiply)
div_p = elementwise("div", _div, quiet=True)
rem_p = elementwise("rem", _rem, quiet=True)
pow_p = elementwise("pow", np.power, FLOAT, quiet=True)
max_p = elementwise("max", np.maximum, ANY)
min_p = elementwise("min", np.minimum, ANY)
atan2_p = elementwise("atan2", np.arctan2, FLOAT)
nextafter_p = elementwise("nextafter", np.nextafter, FLOAT)

neg_p = elementwise("neg", np.negative)
sign_p = elementwise("sign", _sign)
abs_p = elementwise("abs", np.abs)
square_p = elementwise("square", np.square)
floor_p = elementwise("floor", np.floor, FLOAT)
ceil_p = elementwise("ceil", np.ceil, FLOAT)
round_p = elementwise("round", _round, FLOAT)
is_finite_p = elementwise("is_finite", np.isfinite, FLOAT, out_dtype=np.bool_)

# Transcendental
exp_p = elementwise("exp", np.exp, FLOAT, quiet=True)
exp2_p = elementwise("exp2", np.exp2, FLOAT, quiet=True)
log_p = elementwise("log", np.log, FLOAT, quiet=True)
log1p_p = elementwise("log1p", np.log1p, FLOAT, quiet=True)
expm1_p = elementwise("expm1", np.expm1, FLOAT, quiet=True)
sqrt_p = elementwise("sqrt", np.sqrt, FLOAT, quiet=True)
rsqrt_p = elementwise("rsqrt", _rsqrt, FLOAT, quiet=True)
cbrt_p = elementwise("cbrt", np.cbrt, FLOAT)
tanh_p = elementwise("tanh", np.tanh, FLOAT)
logistic_p = elementwise("logistic", _logistic, FLOAT, quiet=True)
sin_p = elementwise("sin", np.sin, FLOAT)
cos_p = elementwise("cos", np.cos, FLOAT)
tan_p = elementwise("tan", np.tan, FLOAT)
asin_p = elementwise("asin", np.arcsin, FLOAT, quiet=True)
acos_p = elementwise("acos", np.arccos, FLOAT, quiet=True)
atan_p = elementwise("atan", np.arctan, FLOAT)
sinh_p = elementwise("sinh", np.sinh, FLOAT, quiet=True)
cosh_p = elementwise("cosh", np.cosh, FLOAT, quiet=True)
asinh_p = elementwise("asinh", np.arcsinh, FLOAT)
acosh_p = elementwise("acosh", np.arccosh, FLOAT, quiet=True)
atanh_p = elementwise("atanh", np.arctanh, FLOAT, quiet=True)
erf_p = elementwise("erf", _erf, FLOAT)
erf_inv_p = elementwise("erf_inv", _erf_inv, FLOAT, quiet=True)
lgamma_p = elementwise("lgamma", _lgamma, FLOAT, quiet=True)

# Comparison
eq_p = elementwise("eq", np.equal, ANY, out_dtype=np.bool_)
ne_p = elementwise("ne", np.not_equal, ANY, out_dtype=np.bool_)
lt_p = elementwise("lt", np.less, ANY, out_dtype=np.bool_)
le_p = elementwise("le", np.less_equal, ANY, out_dtype=np.bool_)
gt_p = elementwise("gt", np.greater, ANY, out_dtype=np.bool_)
ge_p = elementwise("ge", np.greater_equal, ANY, out_dtype=np.bool_)

# Logical / bitwise
and_p = elementwise("and", np.bitwise_and, INT_OR_BOOL)
or_p = elementwise("or", np.bitwise_or, INT_OR_BOOL)
xor_p = elementwise("xor", np.bitwise_xor, INT_OR_BOOL)
not_p = elementwise("not", np.invert, INT_OR_BOOL)
shift_left_p = elementwise("shift_left", _shift_left, INT)
shift_right_logical_p = elementwise("shift_right_logical", _shift_right_logical, INT)
shift_right_arithmetic_p = elementwise("shift_right_arithmetic", _shift_right_arithmetic, INT)


# integer_pow: x ** n for a static integer n.
integer_pow_p = Primitive("integer_pow", ELEMENTWISE)


@integer_pow_p.def_impl
def _integer_pow_impl(x, y):
    if y < 0:
        with np.errstate(all="ignore"):
            return (np.asarray(1, x.dtype) / np.power(x, -y)).astype(x.dtype)
    return np.power(x, np.asarray(y, dtype=x.dtype)).astype(x.dtype)


@integer_pow_p.def_abstract_eval
def _integer_pow_rule(x, y):
    if not isinstance(y, int):
        raise DTypeError(f"integer_pow needs a Python int exponent, got {y!r}")
    if dtypes.is_bool(x.dtype) or (dtypes.is_int(x.dtype) and y < 0):
        raise DTypeError(f"integer_pow: {x.str_short()} ** {y} is not defined",
                         hint="Use floating-point operands for negative powers.")
    return x


# select_n(which, *cases): cases[which[i]][i]. which is bool (2 cases) or int32.
select_n_p = Primitive("select_n", ELEMENTWISE)


@select_n_p.def_impl
def _select_n_impl(which, *cases):
    if len(cases) == 1:
        return np.broadcast_to(cases[0], np.broadcast_shapes(np.shape(which), np.shape(cases[0]))).copy()
    if np.result_type(which) == np.bool_:
        return np.where(which, cases[1], cases[0])
    shape = np.broadcast_shapes(np.shape(which), *[np.shape(c) for c in cases])
    return np.choose(np.broadcast_to(which, shape), [np.broadcast_to(c, shape) for c in cases])


@select_n_p.def_abstract_eval
def _select_n_rule(which, *cases):
    if not cases:
        raise ShapeError("select_n needs at least one case")
    dt = check_same_dtype("select_n", cases)
    if which.dtype != np.bool_ and which.dtype != np.int32:
        raise DTypeError(f"select_n: the selector must be bool or int32, got {which.str_short()}")
    if which.dtype == np.bool_ and len(cases) > 2:
        raise DTypeError("select_n: a bool selector chooses between at most 2 cases")
    shape = elementwise_shape("select_n", (which,) + cases)
    return ShapedArray(shape, dt, all(c.weak_type for c in cases))


# clamp(lo, x, hi)
clamp_p = Primitive("clamp", ELEMENTWISE)


@clamp_p.def_impl
def _clamp_impl(lo, x, hi):
    return np.minimum(np.maximum(x, lo), hi).astype(np.result_type(x))


@clamp_p.def_abstract_eval
def _clamp_rule(lo, x, hi):
    check_same_dtype("clamp", (lo, x, hi))
    for bound in (lo, hi):
        if bound.shape not in ((), x.shape):
            raise ShapeError(f"clamp: bounds must be scalars or match x, got "
                             f"{lo.str_short()}, {x.str_short()}, {hi.str_short()}")
    return x


# convert_element_type(x, new_dtype, weak_type)
convert_element_type_p = Primitive("convert_element_type", ELEMENTWISE)
convert_element_type_p.impl = _convert_element_type


@convert_element_type_p.def_abstract_eval
def _convert_rule(x, new_dtype, weak_type=False):
    return ShapedArray(x.shape, dtypes.canonicalize_dtype(new_dtype), weak_type)


# bitcast_convert_type(x, new_dtype): reinterpret the bits (same width only)
bitcast_convert_type_p = Primitive("bitcast_convert_type", ELEMENTWISE)


@bitcast_convert_type_p.def_impl
def _bitcast_impl(x, new_dtype):
    return np.ascontiguousarray(x).view(np.dtype(new_dtype))


@bitcast_convert_type_p.def_abstract_eval
def _bitcast_rule(x, new_dtype):
    new_dtype = np.dtype(new_dtype)
    if new_dtype.itemsize != x.dtype.itemsize:
        raise DTypeError(f"bitcast_convert_type: {x.dtype.name} and {new_dtype.name} differ in width",
                         hint="Only same-width bitcasts are supported.")
    return ShapedArray(x.shape, new_dtype, False)
