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
    impl.__wrapped__ = fn   # jitgrad.numpy's eager fast path calls fn under its own quiet switch
    return impl


def elementwise(name: str, impl, category: str = NUMERIC, out_dtype=None, quiet=False) -> Primitive:
    """Declare an elementwise primitive from its numpy implementation and dtype category."""
    p = Primitive(name, ELEMENTWISE)
    # Floating-point results never warn (JAX returns inf/NaN silently), whatever ``quiet`` says.
    p.impl = _quiet(impl) if quiet or category in (FLOAT, NUMERIC, ANY) else impl
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


def _erf_inv_scalar(y: float) -> float:
    """Inverse error function by bisection on math.erf (the fallback without scipy)."""
    if y <= -1:
        return -math.inf if y == -1 else math.nan
    if y >= 1:
        return math.inf if y == 1 else math.nan
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if math.erf(mid) < y else (lo, mid)
    return 0.5 * (lo + hi)


def _special(scipy_name: str, fallback):
    """scipy.special's ufunc when scipy is installed, else math's scalar function, vectorised.

    scipy is imported on first use, not at import time: it costs about a second.
    """
    chosen = []

    def impl(x):
        if not chosen:
            try:
                from scipy import special
                chosen.append(_cast_like(getattr(special, scipy_name)))
            except ImportError:  # pragma: no cover - depends on the environment
                chosen.append(_scalar_ufunc(fallback))
        return chosen[0](x)
    impl.__name__ = scipy_name
    return impl


_erf = _special("erf", math.erf)
_erf_inv = _special("erfinv", _erf_inv_scalar)
_lgamma = _special("gammaln", math.lgamma)


def _convert_element_type(x, new_dtype, weak_type=False):
    x = np.asarray(x)
    new_dtype = np.dtype(new_dtype)
    if x.dtype.kind == "f" and new_dtype.kind in "iu":
        # Saturate and send NaN to 0, instead of numpy's undefined behaviour.
        # Compare in float64: clipping in float32 would round 2**31-1 up to 2**31, which
        # then overflows the cast (inf -> INT_MIN). float(info.max) of a 64-bit type is
        # 2**63 or 2**64, so ">=" there means "does not fit".
        info = np.iinfo(new_dtype)
        with np.errstate(invalid="ignore"):
            t = np.trunc(x.astype(np.float64))
            hi, lo = t >= float(info.max), t <= float(info.min)
            y = np.where(np.isnan(t) | hi | lo, 0, t).astype(new_dtype)
        return np.where(hi, info.max, np.where(lo, info.min, y)).astype(new_dtype)
    if new_dtype.kind == "b":
        return x != 0
    return x.astype(new_dtype)


# ------------------------------------------------------------------ the primitives

# Arithmetic
add_p = elementwise("add", np.add)
sub_p = elementwise("sub", np.subtract)
mul_p = elementwise("mul", np.multiply, quiet=True)
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
    # (not np.ascontiguousarray: it turns a 0-d array into a 1-d one)
    x = np.asarray(x)
    return (x if x.flags.c_contiguous else x.copy()).view(np.dtype(new_dtype))


@bitcast_convert_type_p.def_abstract_eval
def _bitcast_rule(x, new_dtype):
    new_dtype = np.dtype(new_dtype)
    if new_dtype.itemsize != x.dtype.itemsize:
        raise DTypeError(f"bitcast_convert_type: {x.dtype.name} and {new_dtype.name} differ in width",
                         hint="Only same-width bitcasts are supported.")
    return ShapedArray(x.shape, new_dtype, False)


# ------------------------------------------------------------------ batching rules
# Every elementwise primitive batches the same way: line up the batch axes, broadcast
# what needs it (see ``broadcasting_rule``). iota has no operands and is never batched.
from ..core.rules import defbroadcasting  # noqa: E402

defbroadcasting(*[p for p in list(globals().values())
                  if isinstance(p, Primitive) and p.kind == ELEMENTWISE])


# ------------------------------------------------------------------ autodiff rules
# JVP rules, and transposes of the linear primitives; conventions in jitgrad/transforms/ad.py.
# Derivatives are written with the primitives themselves, so they are plain IR under jit
# and differentiable again (grad of grad). Constants are numpy scalars of the operand dtype.
from ..core.trace import get_aval  # noqa: E402
from ..core.rules import (NonLinearError, Zero, const_like, defjvp, defjvp_elementwise,  # noqa: E402
                          defjvp_zero, is_undefined_primal, scale_tangent)

_add, _sub, _mul, _div, _neg = add_p.bind, sub_p.bind, mul_p.bind, div_p.bind, neg_p.bind


def _select(pred, on_false, on_true):
    return select_n_p.bind(pred, on_false, on_true)


def _square(x):
    return _mul(x, x)


def _zero_scalar(x):
    """A rank-0 zero of ``x``'s dtype: broadcasts in any elementwise primitive."""
    return const_like(x, 0)


# --- linear arithmetic: add, sub, neg, mul/div by a coefficient

def _add_jvp(primals, tangents):
    tx, ty = tangents
    out = add_p.bind(*primals)
    if type(tx) is Zero:
        return out, ty
    if type(ty) is Zero:
        return out, tx
    return out, _add(tx, ty)


def _sub_jvp(primals, tangents):
    tx, ty = tangents
    out = sub_p.bind(*primals)
    if type(ty) is Zero:
        return out, tx
    if type(tx) is Zero:
        return out, _neg(ty)
    return out, _sub(tx, ty)


def _add_transpose(ct, x, y):
    return [ct if is_undefined_primal(x) else None, ct if is_undefined_primal(y) else None]


def _sub_transpose(ct, x, y):
    return [ct if is_undefined_primal(x) else None, _neg(ct) if is_undefined_primal(y) else None]


def _mul_transpose(ct, x, y):
    if is_undefined_primal(x) and is_undefined_primal(y):
        raise NonLinearError("mul of two values that both depend on the differentiated "
                             "inputs is not linear; a JVP rule is wrong")
    if is_undefined_primal(x):
        return [_mul(ct, y), None]
    return [None, _mul(x, ct)]


def _div_transpose(ct, x, y):
    if is_undefined_primal(y):
        raise NonLinearError("div is linear in its numerator only; a JVP rule is wrong")
    return [_div(ct, y), None]


add_p.jvp, add_p.transpose = _add_jvp, _add_transpose
sub_p.jvp, sub_p.transpose = _sub_jvp, _sub_transpose
defjvp(neg_p, lambda g, x: _neg(g))
neg_p.transpose = lambda ct, x: [_neg(ct)]
defjvp(mul_p, lambda g, x, y: _mul(g, y), lambda g, x, y: _mul(x, g))
mul_p.transpose = _mul_transpose
defjvp(div_p, lambda g, x, y: _div(g, y),
       lambda g, x, y: _mul(_mul(_neg(g), x), integer_pow_p.bind(y, y=-2)))
div_p.transpose = _div_transpose


# --- other binary arithmetic

def _rem_jvp_y(g, x, y):
    q = _div(x, y)
    return _mul(_neg(g), _mul(sign_p.bind(q), floor_p.bind(abs_p.bind(q))))


defjvp(rem_p, lambda g, x, y: g, _rem_jvp_y)


def _pow_dx(ans, x, y):
    # y * x**(y-1), and 0 where y == 0 (x**0 is 1 everywhere, even at x == 0).
    d = _mul(y, pow_p.bind(x, _sub(y, const_like(y, 1))))
    return _select(eq_p.bind(y, _zero_scalar(y)), d, _zero_scalar(d))


def _pow_dy(ans, x, y):
    # log(x) * x**y, with log(0) replaced by 0: d/dy 0**y is 0 for y > 0.
    safe_x = _select(eq_p.bind(x, _zero_scalar(x)), x, const_like(x, 1))
    return _mul(log_p.bind(safe_x), ans)


def _pow_jvp(primals, tangents):
    x, y = primals
    tx, ty = tangents
    ans = pow_p.bind(x, y)
    t = Zero(ShapedArray(ans.shape, ans.dtype))
    if type(tx) is not Zero:
        t = scale_tangent(tx, _pow_dx(ans, x, y))
    if type(ty) is not Zero:
        ty_term = _mul(ty, _pow_dy(ans, x, y))
        t = ty_term if type(t) is Zero else _add(t, ty_term)
    return ans, t


pow_p.jvp = _pow_jvp


def _balanced_eq(x, z, y):
    """1 where x == z != y, 1/2 where x == z == y, else 0: max/min split a tie half-half."""
    one, half, zero = const_like(z, 1), const_like(z, 0.5), const_like(z, 0)
    return _select(eq_p.bind(x, z), zero, _select(eq_p.bind(y, z), one, half))


defjvp_elementwise(max_p, lambda ans, x, y: _balanced_eq(x, ans, y),
                   lambda ans, x, y: _balanced_eq(y, ans, x))
defjvp_elementwise(min_p, lambda ans, x, y: _balanced_eq(x, ans, y),
                   lambda ans, x, y: _balanced_eq(y, ans, x))


def _atan2_denom(x, y):
    return _add(_square(x), _square(y))


defjvp_elementwise(atan2_p, lambda ans, x, y: _div(y, _atan2_denom(x, y)),
                   lambda ans, x, y: _div(_neg(x), _atan2_denom(x, y)))
# nextafter(x, y) moves x by one ulp: its derivative is that of x (JAX has no rule).
defjvp(nextafter_p, lambda g, x, y: g, None)


# --- unary functions

def _abs_jvp(g, x):
    # JAX's convention: the derivative at 0 is +1.
    return _select(ge_p.bind(x, _zero_scalar(x)), _neg(g), g)


defjvp(abs_p, _abs_jvp)
defjvp_elementwise(square_p, lambda ans, x: _mul(const_like(x, 2), x))
defjvp_elementwise(exp_p, lambda ans, x: ans)
defjvp_elementwise(exp2_p, lambda ans, x: _mul(ans, const_like(x, np.log(2.0))))
defjvp_elementwise(expm1_p, lambda ans, x: _add(ans, const_like(x, 1)))
defjvp_elementwise(log_p, lambda ans, x: _div(const_like(x, 1), x), singular=True)
defjvp_elementwise(log1p_p, lambda ans, x: _div(const_like(x, 1), _add(x, const_like(x, 1))),
                   singular=True)
defjvp_elementwise(sqrt_p, lambda ans, x: _div(const_like(x, 0.5), ans), singular=True)
defjvp_elementwise(rsqrt_p, lambda ans, x: _mul(const_like(x, -0.5), _div(ans, x)),
                   singular=True)
defjvp_elementwise(cbrt_p, lambda ans, x: _div(const_like(x, 1 / 3), _square(ans)),
                   singular=True)
defjvp_elementwise(tanh_p, lambda ans, x: _sub(const_like(x, 1), _square(ans)))
defjvp_elementwise(logistic_p, lambda ans, x: _mul(ans, _sub(const_like(x, 1), ans)))
defjvp_elementwise(sin_p, lambda ans, x: cos_p.bind(x))
defjvp_elementwise(cos_p, lambda ans, x: _neg(sin_p.bind(x)))
defjvp_elementwise(tan_p, lambda ans, x: _add(const_like(x, 1), _square(ans)))
defjvp_elementwise(asin_p, lambda ans, x: rsqrt_p.bind(_sub(const_like(x, 1), _square(x))),
                   singular=True)
defjvp_elementwise(acos_p,
                   lambda ans, x: _neg(rsqrt_p.bind(_sub(const_like(x, 1), _square(x)))),
                   singular=True)
defjvp_elementwise(atan_p, lambda ans, x: _div(const_like(x, 1), _add(const_like(x, 1),
                                                                      _square(x))))
defjvp_elementwise(sinh_p, lambda ans, x: cosh_p.bind(x))
defjvp_elementwise(cosh_p, lambda ans, x: sinh_p.bind(x))
defjvp_elementwise(asinh_p, lambda ans, x: rsqrt_p.bind(_add(_square(x), const_like(x, 1))))
defjvp_elementwise(acosh_p, lambda ans, x: rsqrt_p.bind(
    _mul(_sub(x, const_like(x, 1)), _add(x, const_like(x, 1)))), singular=True)
defjvp_elementwise(atanh_p, lambda ans, x: _div(const_like(x, 1), _mul(
    _sub(const_like(x, 1), x), _add(const_like(x, 1), x))), singular=True)
defjvp_elementwise(erf_p, lambda ans, x: _mul(const_like(x, 2 / np.sqrt(np.pi)),
                                              exp_p.bind(_neg(_square(x)))))
defjvp_elementwise(erf_inv_p, lambda ans, x: _mul(const_like(x, np.sqrt(np.pi) / 2),
                                                  exp_p.bind(_square(ans))), singular=True)


def digamma(x):
    """The digamma function psi = lgamma', built from primitives (so it is differentiable).

    Reflection psi(x) = psi(1-x) - pi/tan(pi x) below 1/2, the recurrence
    psi(z) = psi(z+6) - sum 1/(z+k), and the asymptotic series at z+6 (error < 1e-11).
    """
    one = const_like(x, 1)
    reflect = lt_p.bind(x, const_like(x, 0.5))
    z = _select(reflect, x, _sub(one, x))
    shift = _zero_scalar(x)
    for k in range(6):
        shift = _add(shift, _div(one, _add(z, const_like(x, k))))
    w = _add(z, const_like(x, 6))
    w2 = _div(one, _square(w))
    series = const_like(x, 1 / 132)
    for c in (1 / 240, 1 / 252, 1 / 120, 1 / 12):
        series = _sub(const_like(x, c), _mul(w2, series))
    psi = _sub(_sub(_sub(log_p.bind(w), _div(const_like(x, 0.5), w)), _mul(w2, series)), shift)
    pi = const_like(x, np.pi)
    reflected = _sub(psi, _div(pi, tan_p.bind(_mul(pi, x))))
    return _select(reflect, psi, reflected)


defjvp_elementwise(lgamma_p, lambda ans, x: digamma(x))


def _integer_pow_jvp(primals, tangents, y):
    (x,), (g,) = primals, tangents
    ans = integer_pow_p.bind(x, y=y)
    if y == 0:
        return ans, Zero(ShapedArray(ans.shape, ans.dtype))
    if y == 1:
        return ans, g
    coef = _mul(const_like(x, y), integer_pow_p.bind(x, y=y - 1) if y != 2 else x)
    # x**(y-1) is infinite at 0 only for negative y.
    return ans, scale_tangent(g, coef) if y < 0 else _mul(g, coef)


integer_pow_p.jvp = _integer_pow_jvp

# Piecewise constant, or integer/boolean valued: zero derivative.
defjvp_zero(sign_p, floor_p, ceil_p, round_p, is_finite_p, eq_p, ne_p, lt_p, le_p, gt_p, ge_p,
            and_p, or_p, xor_p, not_p, shift_left_p, shift_right_logical_p,
            shift_right_arithmetic_p, bitcast_convert_type_p)


# --- selection, clamping, conversion

def _select_n_jvp(primals, tangents):
    which, *cases = primals
    out = select_n_p.bind(which, *cases)
    t_cases = [_zero_scalar(c) if type(t) is Zero else t for c, t in zip(cases, tangents[1:])]
    return out, select_n_p.bind(which, *t_cases)


def _select_n_transpose(ct, which, *cases):
    if is_undefined_primal(which):
        raise NonLinearError("select_n is not linear in its selector")
    zero = _zero_scalar(ct)
    out = [None]
    for i, c in enumerate(cases):
        if is_undefined_primal(c):
            out.append(select_n_p.bind(which, *[ct if j == i else zero
                                                 for j in range(len(cases))]))
        else:
            out.append(None)
    return out


select_n_p.jvp, select_n_p.transpose = _select_n_jvp, _select_n_transpose


def _clamp_jvp(primals, tangents):
    lo, x, hi = primals
    out = clamp_p.bind(lo, x, hi)
    zero = _zero_scalar(x)
    t = Zero(ShapedArray(out.shape, out.dtype))
    # As in JAX: x's tangent passes strictly inside (lo, hi); lo's where lo > x (and lo < hi);
    # hi's where hi < x. At a tie nobody's tangent passes.
    if type(tangents[0]) is not Zero:
        where = and_p.bind(gt_p.bind(lo, x), lt_p.bind(lo, hi))
        t = _select(where, zero, tangents[0])
    if type(tangents[1]) is not Zero:
        where = and_p.bind(gt_p.bind(x, lo), lt_p.bind(x, hi))
        term = _select(where, zero, tangents[1])
        t = term if type(t) is Zero else _add(t, term)
    if type(tangents[2]) is not Zero:
        term = _select(lt_p.bind(hi, x), zero, tangents[2])
        t = term if type(t) is Zero else _add(t, term)
    return out, t


clamp_p.jvp = _clamp_jvp


def _convert_jvp(primals, tangents, new_dtype, weak_type=False):
    (x,), (g,) = primals, tangents
    out = convert_element_type_p.bind(x, new_dtype=new_dtype, weak_type=weak_type)
    if not (dtypes.is_float(out.dtype) and dtypes.is_float(get_aval(x).dtype)):
        return out, Zero(ShapedArray(out.shape, out.dtype))
    return out, convert_element_type_p.bind(g, new_dtype=new_dtype, weak_type=weak_type)


def _convert_transpose(ct, x, new_dtype, weak_type=False):
    return [convert_element_type_p.bind(ct, new_dtype=x.aval.dtype, weak_type=x.aval.weak_type)]


convert_element_type_p.jvp, convert_element_type_p.transpose = _convert_jvp, _convert_transpose
