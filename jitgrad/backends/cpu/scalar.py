"""Expression templates: one per elementwise primitive and per reduction, as numba source.

``elementwise_expr(eqn, args)`` turns an equation whose operands are the expressions
``args`` into one expression for its result. The templates keep the reference's
semantics and the value's dtype exactly:

* numba widens small integers to int64 (and unsigned ones to uint64) in arithmetic, so
  integer results are cast back (``np.int32(a + b)``), which wraps exactly like numpy;
* float32 stays float32: literals are typed (``np.float32(0.5)``), and numba's math on
  float32 returns float32;
* NaN semantics follow numpy (``rt.fmax`` for maximum, first NaN for argmax);
* division by zero follows IEEE (kernels are compiled with ``error_model="numpy"``),
  integer division and remainder follow the reference's C semantics;
* with ``jitgrad.config.fast_math`` on (the default), float32 exp, expm1, log, log1p,
  tanh, logistic and erf (and float32 cumlogsumexp's logaddexp) call the vectorisable
  approximations of ``jitgrad.backends.fastmath`` (``rt.tanh_f32(x)``) instead of numba's
  scalar libm calls, which keep a loop from vectorising. Their error bounds (1 ulp; 2 for
  tanh and logistic) are those fastmath documents; NaN, infinities, signed zeros and
  subnormals behave as in the reference. float64, and everything with the flag off, keep
  libm exactly. The flag is read when a program is generated; ``settings()`` puts it in the
  cache key.
"""
from __future__ import annotations

import functools
import hashlib
import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ...core.config import config
from ...core.ir import Eqn, Literal
from .. import fastmath

Rule = Callable[[Eqn, Sequence[str]], str]


# ------------------------------------------------------------------ types and literals

def np_type(dtype) -> str:
    """``np.float32`` etc.: the numba-callable constructor of a dtype."""
    dt = np.dtype(dtype)
    return "np.bool_" if dt.kind == "b" else f"np.{dt.name}"


def nb_type(dtype) -> str:
    """``nb.float32`` etc.: the numba type of a dtype (for signatures)."""
    dt = np.dtype(dtype)
    return "nb.boolean" if dt.kind == "b" else f"nb.{dt.name}"


def literal(value, dtype) -> str:
    """A typed scalar constant."""
    dt = np.dtype(dtype)
    v = np.asarray(value, dtype=dt).item()
    if dt.kind == "b":
        return "True" if v else "False"
    if dt.kind == "f":
        if math.isnan(v):
            return f"{np_type(dt)}(np.nan)"
        if math.isinf(v):
            return f"{np_type(dt)}({'-' if v < 0 else ''}np.inf)"
        return f"{np_type(dt)}({float(v)!r})"
    return f"{np_type(dt)}({int(v)})"


def literal_atom(lit: Literal) -> str:
    return literal(lit.value, lit.aval.dtype)


def cast(expr: str, dtype) -> str:
    """``expr`` converted to ``dtype`` (wrapping for integers)."""
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return f"(({expr}) != 0)"
    return f"{np_type(dt)}({expr})"


def _is_f(eqn: Eqn) -> bool:
    return np.dtype(eqn.invars[0].aval.dtype).kind == "f"


def _in_dtype(eqn: Eqn) -> np.dtype:
    return np.dtype(eqn.invars[0].aval.dtype)


def _out_dtype(eqn: Eqn) -> np.dtype:
    return np.dtype(eqn.outvars[0].aval.dtype)


def _bits(dt) -> int:
    return np.dtype(dt).itemsize * 8


def _unsigned(dt) -> np.dtype:
    return np.dtype(f"u{np.dtype(dt).itemsize}")


def _signed(dt) -> np.dtype:
    return np.dtype(f"i{np.dtype(dt).itemsize}")


# ------------------------------------------------------------------ fast float32 math

# Primitive name -> the runtime helper generated code calls for it on float32
# (runtime.py re-exports fastmath's functions under these names).
FAST_F32 = {name: fn.__name__ for name, fn in fastmath.FLOAT32.items()}


def fast_math() -> bool:
    """Whether float32 transcendentals use fastmath's approximations (``config.fast_math``)."""
    return bool(config.read("fast_math"))


def _use_fast(dtype) -> bool:
    return np.dtype(dtype) == np.float32 and fast_math()


@functools.lru_cache(maxsize=None)
def _fastmath_source_hash() -> str:
    return hashlib.sha256(Path(fastmath.__file__).read_bytes()).hexdigest()[:16]


def settings() -> dict:
    """What the templates depend on besides their own source (part of the CPU cache key):
    the ``fast_math`` flag as it is now, and fastmath's VERSION and source hash (numba's
    cache does not notice a changed callee, so kernels are keyed on the code they inline)."""
    return {"fast_math": fast_math(),
            "fastmath": f"{fastmath.VERSION}:{_fastmath_source_hash()}"}


def _fast_f32(name: str, libm: Rule) -> Rule:
    """``libm``'s template, except on float32 with fast_math on: ``rt.<name>_f32(x)``."""
    helper = FAST_F32[name]

    def rule(eqn, a):
        if _use_fast(_in_dtype(eqn)):
            return f"rt.{helper}({a[0]})"
        return libm(eqn, a)
    return rule


# ------------------------------------------------------------------ elementwise rules

def _binop(op: str) -> Rule:
    def rule(eqn, a):
        e = f"{a[0]} {op} {a[1]}"
        return f"({e})" if _is_f(eqn) else cast(e, _out_dtype(eqn))
    return rule


def _ufunc(fn: str, n: int = 1) -> Rule:
    return lambda eqn, a: f"{fn}({', '.join(a[:n])})"


def _div(eqn, a):
    if _is_f(eqn):
        return f"({a[0]} / {a[1]})"
    return cast(f"rt.idiv({a[0]}, {a[1]})", _out_dtype(eqn))


def _rem(eqn, a):
    if _is_f(eqn):
        return f"np.fmod({a[0]}, {a[1]})"
    return cast(f"rt.irem({a[0]}, {a[1]})", _out_dtype(eqn))


def _max(eqn, a):
    dt = _in_dtype(eqn)
    if dt.kind == "f":
        return f"rt.fmax({a[0]}, {a[1]})"
    if dt.kind == "b":
        return f"({a[0]} or {a[1]})"
    return f"({a[0]} if {a[0]} >= {a[1]} else {a[1]})"


def _min(eqn, a):
    dt = _in_dtype(eqn)
    if dt.kind == "f":
        return f"rt.fmin({a[0]}, {a[1]})"
    if dt.kind == "b":
        return f"({a[0]} and {a[1]})"
    return f"({a[0]} if {a[0]} <= {a[1]} else {a[1]})"


def _neg(eqn, a):
    return f"(-{a[0]})" if _is_f(eqn) else cast(f"-{a[0]}", _out_dtype(eqn))


def _abs(eqn, a):
    return f"abs({a[0]})" if _is_f(eqn) else cast(f"abs({a[0]})", _out_dtype(eqn))


def _square(eqn, a):
    return f"({a[0]} * {a[0]})" if _is_f(eqn) else cast(f"{a[0]} * {a[0]}", _out_dtype(eqn))


def _sign(eqn, a):
    dt = _out_dtype(eqn)
    x = a[0]
    one, zero = literal(1, dt), literal(0, dt)
    if dt.kind == "u":
        return f"({one} if {x} > 0 else {zero})"
    minus = literal(-1, dt)
    if dt.kind == "f":   # keeps NaN and the sign of zero
        return f"({one} if {x} > 0 else ({minus} if {x} < 0 else {x}))"
    return f"({one} if {x} > 0 else ({minus} if {x} < 0 else {zero}))"


def _round(eqn, a):
    dt = _out_dtype(eqn)
    if eqn.params.get("rounding_method", 1) == 0:   # half away from zero
        return f"(np.sign({a[0]}) * np.floor(abs({a[0]}) + {literal(0.5, dt)}))"
    return f"np.rint({a[0]})"


def _rsqrt(eqn, a):
    return f"({literal(1, _out_dtype(eqn))} / np.sqrt({a[0]}))"


def _logistic(eqn, a):
    return f"rt.logistic({a[0]}, {literal(1, _out_dtype(eqn))})"


def _erf_inv(eqn, a):
    return cast(f"rt.erfinv({a[0]})", _out_dtype(eqn))


def _math(fn: str) -> Rule:
    # math.erf / math.lgamma keep float32 in numba; cast anyway (exactness of the type).
    return lambda eqn, a: cast(f"math.{fn}({a[0]})", _out_dtype(eqn))


def _compare(op: str) -> Rule:
    return lambda eqn, a: f"({a[0]} {op} {a[1]})"


def _bitwise(op: str) -> Rule:
    def rule(eqn, a):
        e = f"{a[0]} {op} {a[1]}"
        return f"({e})" if _in_dtype(eqn).kind == "b" else cast(e, _out_dtype(eqn))
    return rule


def _not(eqn, a):
    return f"(not {a[0]})" if _in_dtype(eqn).kind == "b" else cast(f"~{a[0]}", _out_dtype(eqn))


def _shift_left(eqn, a):
    dt = _out_dtype(eqn)
    u = np_type(_unsigned(dt))
    x, y = a
    return f"({cast(f'{u}({x}) << {u}({y})', dt)} if 0 <= {y} < {_bits(dt)} else {literal(0, dt)})"


def _shift_right_logical(eqn, a):
    dt = _out_dtype(eqn)
    u = np_type(_unsigned(dt))
    x, y = a
    return f"({cast(f'{u}({x}) >> {u}({y})', dt)} if 0 <= {y} < {_bits(dt)} else {literal(0, dt)})"


def _shift_right_arithmetic(eqn, a):
    dt = _out_dtype(eqn)
    s = np_type(_signed(dt))
    x, y = a
    n = _bits(dt) - 1
    # y clipped to [0, bits-1] (as the reference does), compared before any conversion.
    amount = f"({s}({n}) if {y} > {n} else ({s}(0) if {y} < 0 else {s}({y})))"
    return cast(f"{s}({x}) >> {amount}", dt)


def _integer_pow(eqn, a):
    n = eqn.params["y"]
    dt = _out_dtype(eqn)
    x = a[0]
    if n == 0:
        return literal(1, dt)

    def power(k: int) -> str:
        # Square-and-multiply; integers wrap after every product, like numpy's loop.
        if k == 1:
            return x
        half = power(k // 2)
        sq = f"({half} * {half})" if dt.kind == "f" else cast(f"{half} * {half}", dt)
        if k % 2:
            return f"({sq} * {x})" if dt.kind == "f" else cast(f"{sq} * {x}", dt)
        return sq
    p = power(abs(n))
    return f"({literal(1, dt)} / {p})" if n < 0 else p


def _select_n(eqn, a):
    which, cases = a[0], list(a[1:])
    if len(cases) == 1:
        return cases[0]
    if np.dtype(eqn.invars[0].aval.dtype).kind == "b":
        return f"({cases[1]} if {which} else {cases[0]})"
    expr = cases[-1]
    for k in range(len(cases) - 2, -1, -1):
        expr = f"({cases[k]} if {which} == {k} else {expr})"
    return expr


def _clamp(eqn, a):
    lo, x, hi = a
    if np.dtype(eqn.invars[1].aval.dtype).kind == "f":
        return f"rt.fmin(rt.fmax({x}, {lo}), {hi})"
    inner = f"({x} if {x} >= {lo} else {lo})"
    return f"({inner} if {inner} <= {hi} else {hi})"


def _convert(eqn, a):
    src, dst = _in_dtype(eqn), _out_dtype(eqn)
    x = a[0]
    if src == dst:
        return x
    if dst.kind == "b":
        return f"({x} != 0)"
    if src.kind == "f" and dst.kind in "iu":
        # Saturating, NaN -> 0 (the reference's rule); bounds compared in float64.
        info = np.iinfo(dst)
        hi, lo = float(info.max), float(info.min)
        return (f"({literal(0, dst)} if {x} != {x} else ({literal(info.max, dst)} if {x} >= {hi!r} "
                f"else ({literal(info.min, dst)} if {x} <= {lo!r} else {np_type(dst)}({x}))))")
    return f"{np_type(dst)}({x})"


def _bitcast(eqn, a):
    src, dst = _in_dtype(eqn), _out_dtype(eqn)
    x = a[0]
    if src == dst:
        return x
    if dst.kind == "b":
        return f"({x} != 0)"
    if src.kind == "b":
        return f"{np_type(dst)}({x})"
    return f"rt.bitcast({x}, {np_type(dst)})"


def _identity(eqn, a):
    return a[0]


ELEMENTWISE: dict[str, Rule] = {
    "add": _binop("+"), "sub": _binop("-"), "mul": _binop("*"), "div": _div, "rem": _rem,
    "pow": lambda eqn, a: f"({a[0]} ** {a[1]})",
    "max": _max, "min": _min,
    "atan2": _ufunc("np.arctan2", 2), "nextafter": _ufunc("np.nextafter", 2),
    "neg": _neg, "sign": _sign, "abs": _abs, "square": _square,
    "floor": _ufunc("np.floor"), "ceil": _ufunc("np.ceil"), "round": _round,
    "is_finite": _ufunc("np.isfinite"),
    "exp": _fast_f32("exp", _ufunc("np.exp")), "exp2": _ufunc("np.exp2"),
    "log": _fast_f32("log", _ufunc("np.log")), "log1p": _fast_f32("log1p", _ufunc("np.log1p")),
    "expm1": _fast_f32("expm1", _ufunc("np.expm1")), "sqrt": _ufunc("np.sqrt"),
    "rsqrt": _rsqrt, "cbrt": _ufunc("np.cbrt"), "tanh": _fast_f32("tanh", _ufunc("np.tanh")),
    "logistic": _fast_f32("logistic", _logistic), "sin": _ufunc("np.sin"), "cos": _ufunc("np.cos"),
    "tan": _ufunc("np.tan"), "asin": _ufunc("np.arcsin"), "acos": _ufunc("np.arccos"),
    "atan": _ufunc("np.arctan"), "sinh": _ufunc("np.sinh"), "cosh": _ufunc("np.cosh"),
    "asinh": _ufunc("np.arcsinh"), "acosh": _ufunc("np.arccosh"), "atanh": _ufunc("np.arctanh"),
    "erf": _fast_f32("erf", _math("erf")), "erf_inv": _erf_inv,
    "lgamma": lambda eqn, a: cast(f"rt.lgamma({a[0]})", _out_dtype(eqn)),
    "eq": _compare("=="), "ne": _compare("!="), "lt": _compare("<"), "le": _compare("<="),
    "gt": _compare(">"), "ge": _compare(">="),
    "and": _bitwise("&"), "or": _bitwise("|"), "xor": _bitwise("^"), "not": _not,
    "shift_left": _shift_left, "shift_right_logical": _shift_right_logical,
    "shift_right_arithmetic": _shift_right_arithmetic,
    "integer_pow": _integer_pow, "select_n": _select_n, "clamp": _clamp,
    "convert_element_type": _convert, "bitcast_convert_type": _bitcast,
    "copy": _identity, "stop_gradient": _identity,
}


def elementwise_expr(eqn: Eqn, args: Sequence[str]) -> str:
    """The expression computing ``eqn``'s result from operand expressions ``args``."""
    return ELEMENTWISE[eqn.primitive.name](eqn, list(args))


# Operand expressions a template uses more than once; the code generator binds them to
# a local name first so they are evaluated once.
MULTI_USE = frozenset({"sign", "round", "square", "convert_element_type", "clamp", "integer_pow",
                       "max", "min", "shift_left", "shift_right_logical",
                       "shift_right_arithmetic", "select_n"})


# ------------------------------------------------------------------ reductions

REDUCTIONS = ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min", "reduce_and",
              "reduce_or", "reduce_xor", "argmax", "argmin")


def reduction_init(name: str, dtype) -> str:
    """The identity a reduction's accumulator starts from (what an empty axis gives)."""
    dt = np.dtype(dtype)
    if name == "reduce_sum" or name in ("reduce_or", "reduce_xor"):
        return literal(0, dt)
    if name == "reduce_prod":
        return literal(1, dt)
    if name == "reduce_max":
        if dt.kind == "f":
            return literal(-np.inf, dt)
        return "False" if dt.kind == "b" else literal(np.iinfo(dt).min, dt)
    if name == "reduce_min":
        if dt.kind == "f":
            return literal(np.inf, dt)
        return "True" if dt.kind == "b" else literal(np.iinfo(dt).max, dt)
    if name == "reduce_and":
        return "True" if dt.kind == "b" else literal(np.iinfo(dt).max if dt.kind == "u" else -1, dt)
    raise KeyError(name)


_FLOAT_REDUCTION_STEPS = {"reduce_sum": "radd", "reduce_prod": "rmul", "reduce_max": "rmax",
                          "reduce_min": "rmin"}


def reduction_combine(name: str, dtype, acc: str, x: str, reorderable: bool = False) -> str:
    """The expression folding element ``x`` into accumulator ``acc``. ``reorderable``: the
    fold may run in any order (a reduction's loop; not a scan or a scatter), so float
    steps use runtime's radd/rmul/rmax/rmin, which LLVM vectorises."""
    dt = np.dtype(dtype)
    if reorderable and dt.kind == "f" and name in _FLOAT_REDUCTION_STEPS:
        return f"rt.{_FLOAT_REDUCTION_STEPS[name]}({acc}, {x})"
    if name in ("reduce_sum", "reduce_prod"):
        op = "+" if name == "reduce_sum" else "*"
        return f"{acc} {op} {x}" if dt.kind == "f" else cast(f"{acc} {op} {x}", dt)
    if name == "reduce_max":
        if dt.kind == "f":
            return f"rt.fmax({acc}, {x})"
        return f"({acc} or {x})" if dt.kind == "b" else f"({acc} if {acc} >= {x} else {x})"
    if name == "reduce_min":
        if dt.kind == "f":
            return f"rt.fmin({acc}, {x})"
        return f"({acc} and {x})" if dt.kind == "b" else f"({acc} if {acc} <= {x} else {x})"
    op = {"reduce_and": "&", "reduce_or": "|", "reduce_xor": "^"}[name]
    return f"({acc} {op} {x})" if dt.kind == "b" else cast(f"{acc} {op} {x}", dt)


def arg_better(name: str, dtype, best: str, x: str) -> str:
    """Condition under which element ``x`` replaces ``best`` in argmax/argmin (numpy's rule:
    the first NaN wins and stays; otherwise the first extreme)."""
    op = ">" if name == "argmax" else "<"
    if np.dtype(dtype).kind == "f":
        return f"({best} == {best} and ({x} {op} {best} or {x} != {x}))"
    return f"({x} {op} {best})"


# ------------------------------------------------------------------ cumulative ops

def cumulative_combine(name: str, dtype, acc: str, x: str) -> str:
    dt = np.dtype(dtype)
    if name == "cumsum":
        return reduction_combine("reduce_sum", dt, acc, x)
    if name == "cumprod":
        return reduction_combine("reduce_prod", dt, acc, x)
    if name == "cummax":
        return reduction_combine("reduce_max", dt, acc, x)
    if name == "cummin":
        return reduction_combine("reduce_min", dt, acc, x)
    if name == "cumlogsumexp":
        if _use_fast(dt):
            return f"rt.logaddexp_f32({acc}, {x})"
        return f"rt.logaddexp({acc}, {x}, {literal(math.log(2.0), dt)})"
    raise KeyError(name)


def scatter_combine(combine: str, dtype, old: str, x: str) -> str:
    if combine == "set":
        return x
    name = {"add": "reduce_sum", "mul": "reduce_prod", "min": "reduce_min", "max": "reduce_max"}[combine]
    return reduction_combine(name, dtype, old, x)
