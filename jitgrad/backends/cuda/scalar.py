"""Scalar expressions for elementwise primitives, as numba.cuda Python source.

``ScalarEmitter.apply(eqn_name, params, args, in_dtypes, out_dtype)`` returns the source
of one expression computing the primitive on scalar operands (each already a local
variable of its dtype). The emitted code has the reference interpreter's semantics,
bit for bit where the reference is exact:

* **Every value is typed.** numba widens ``float32 * 2.0`` to float64 and
  ``uint32 + uint32`` to 64 bits, so every constant is a typed module global
  (``_k3 = np.float32(2.0)``) and every integer result is converted back to its dtype
  (``uint32(...)``), which wraps around modulo 2**bits exactly as numpy does.
* **Integers of up to 32 bits compute in 64 bits**, where their sums, differences and
  products cannot overflow (unsigned products use uint64), then wrap on conversion.
  So threefry's uint32 arithmetic gives the same random bits as on the CPU.
* **Shifts** by a negative amount or by the bit width or more give 0 (logical) or the
  sign fill (arithmetic), as in ``jitgrad.ops.elementwise``; C would be undefined there.
* **Integer division** truncates toward zero and division by zero gives 0; ``rem`` takes
  the dividend's sign (C semantics, as the reference).
* **float -> int conversion saturates** (NaN -> 0), comparing against the exact powers
  of two that bound the target type.
* **max/min propagate NaN** and return the second operand on ties (numpy's order).
* Math functions come from libdevice (``ld.expf`` for float32: single precision stays
  single precision); under the simulator ``ld`` is a numpy shim (see devicelib).

float16 values are computed in float32 and rounded back to float16 after every
operation, as numpy's float16 loops do.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ...core.errors import JitgradError

# numba's scalar type constructors, by numpy dtype name (imported by generated modules).
TYPE_NAMES = {
    "bool": "boolean", "int8": "int8", "uint8": "uint8", "int16": "int16", "uint16": "uint16",
    "int32": "int32", "uint32": "uint32", "int64": "int64", "uint64": "uint64",
    "float16": "float16", "float32": "float32", "float64": "float64",
}


class UnsupportedOnCuda(JitgradError, NotImplementedError):
    """An operation the cuda backend cannot generate code for (the message says which)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message, hint=hint or "Run this program with backend='cpu', or file an "
                         "issue naming the operation.", find_source=False)


def type_name(dtype) -> str:
    """numba's constructor for ``dtype`` (``uint32``; ``boolean`` for bool)."""
    return TYPE_NAMES[np.dtype(dtype).name]


def compute_dtype(dtype) -> np.dtype:
    """The dtype a value is held in inside a kernel (float16 computes in float32)."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def _bits(dtype) -> int:
    return np.dtype(dtype).itemsize * 8


class ConstPool:
    """Typed constants of one generated module: ``name(value, dtype) -> '_k3'``.

    ``lines()`` gives their definitions (``_k3 = np.float32(2.0)``) for the module header.
    """

    def __init__(self):
        self._names: dict[tuple, str] = {}
        self._lines: list[str] = []

    def name(self, value, dtype) -> str:
        dtype = compute_dtype(dtype)
        v = np.asarray(value, dtype=dtype)
        key = (dtype.str, v.tobytes())
        found = self._names.get(key)
        if found is None:
            found = f"_k{len(self._names)}"
            self._names[key] = found
            self._lines.append(f"{found} = {_numpy_literal(v)}")
        return found

    def lines(self) -> list[str]:
        return list(self._lines)


def _numpy_literal(v: np.ndarray) -> str:
    """Source for a numpy scalar equal to ``v`` bit for bit (NaN payloads and -0.0 kept)."""
    dt = v.dtype
    if dt == np.bool_:
        return f"np.bool_({bool(v)})"
    if dt.kind in "iu":
        return f"np.{dt.name}({int(v)})"
    f = float(v)
    if np.isnan(f) or (f == 0.0 and np.signbit(f)):
        ui = np.dtype(f"u{dt.itemsize}")
        return f"np.{ui.name}({int(v.view(ui))}).view(np.{dt.name})"
    if np.isinf(f):
        return f"np.{dt.name}({'-' if f < 0 else ''}np.inf)"
    return f"np.{dt.name}({f!r})"


# Float math primitives and their libdevice names (float32 adds an 'f').
_LIBDEVICE_UNARY = {
    "exp": "exp", "exp2": "exp2", "log": "log", "log1p": "log1p", "expm1": "expm1",
    "sqrt": "sqrt", "cbrt": "cbrt", "tanh": "tanh", "sin": "sin", "cos": "cos", "tan": "tan",
    "asin": "asin", "acos": "acos", "atan": "atan", "sinh": "sinh", "cosh": "cosh",
    "asinh": "asinh", "acosh": "acosh", "atanh": "atanh", "erf": "erf",
    "erf_inv": "erfinv", "lgamma": "lgamma", "floor": "floor", "ceil": "ceil",
}
_LIBDEVICE_BINARY = {"pow": "pow", "atan2": "atan2", "nextafter": "nextafter"}


class ScalarEmitter:
    """Builds scalar expressions; ``bind(expr, dtype) -> name`` makes a kernel temporary."""

    def __init__(self, consts: ConstPool, bind: Callable[[str, np.dtype], str]):
        self.k = consts
        self.bind = bind

    # -- small helpers
    def const(self, value, dtype) -> str:
        return self.k.name(value, dtype)

    def cast(self, expr: str, dtype) -> str:
        """``expr`` converted to ``dtype`` (wrapping for integers); float16 rounds."""
        dtype = np.dtype(dtype)
        if dtype == np.float16:
            return f"float32(float16({expr}))"
        return f"{type_name(dtype)}({expr})"

    def ld(self, name: str, dtype, *args: str) -> str:
        """A libdevice call in the precision of ``dtype`` (float32 -> ``expf``)."""
        cdt = compute_dtype(dtype)
        fn = f"ld.{name}f" if cdt == np.float32 else f"ld.{name}"
        return self.cast(f"{fn}({', '.join(args)})", dtype)

    def wide(self, expr: str, dtype, unsigned_product: bool = False) -> str:
        """``expr`` widened to 64 bits if its integer dtype is narrower."""
        dtype = np.dtype(dtype)
        if _bits(dtype) >= 64:
            return expr
        if unsigned_product and dtype.kind == "u":
            return f"uint64({expr})"
        return f"int64({expr})"

    @classmethod
    def has_rule(cls, name: str) -> bool:
        """Whether elementwise primitive ``name`` has kernel code."""
        return hasattr(cls, "p_" + name) or name in _LIBDEVICE_UNARY or name in _LIBDEVICE_BINARY

    # -- the dispatcher
    def apply(self, name: str, params: dict, args: Sequence[str], in_dtypes: Sequence[np.dtype],
              out_dtype: np.dtype) -> str:
        """Expression for ``name[params](*args)``; args are names of typed locals."""
        rule = getattr(self, "p_" + name, None)
        if rule is None:
            if name in _LIBDEVICE_UNARY:
                return self.ld(_LIBDEVICE_UNARY[name], out_dtype, args[0])
            if name in _LIBDEVICE_BINARY:
                return self.ld(_LIBDEVICE_BINARY[name], out_dtype, args[0], args[1])
            raise UnsupportedOnCuda(f"the cuda backend has no kernel code for the elementwise "
                                    f"primitive {name!r}")
        return rule(params, list(args), [np.dtype(d) for d in in_dtypes], np.dtype(out_dtype))

    # -- arithmetic
    def _int_arith(self, op: str, a: str, b: str, dt: np.dtype) -> str:
        if dt.kind == "b":
            raise UnsupportedOnCuda(f"{op} on bool")
        unsigned_product = op == "*"
        return self.cast(f"{self.wide(a, dt, unsigned_product)} {op} "
                         f"{self.wide(b, dt, unsigned_product)}", dt)

    def _arith(self, op, params, args, ins, out):
        a, b = args
        if out.kind == "f":
            return self.cast(f"{a} {op} {b}", out)
        return self._int_arith(op, a, b, out)

    def p_add(self, params, args, ins, out):
        return self._arith("+", params, args, ins, out)

    def p_sub(self, params, args, ins, out):
        return self._arith("-", params, args, ins, out)

    def p_mul(self, params, args, ins, out):
        return self._arith("*", params, args, ins, out)

    def p_div(self, params, args, ins, out):
        a, b = args
        if out.kind == "f":
            return self.cast(f"{a} / {b}", out)
        zero = self.const(0, out)
        if out.kind == "u":
            return f"({zero} if {b} == {zero} else {self.cast(f'{a} // {b}', out)})"
        # As the reference: magnitudes |x| // |y| taken in the operand type (abs(INT_MIN)
        # wraps to INT_MIN there), floor-divided, then the sign of x*y applied.
        ma = self.wide(self.cast(f"abs({self.wide(a, out)})", out), out)
        mb = self.wide(self.cast(f"abs({self.wide(b, out)})", out), out)
        q = f"({ma} // {mb})"
        neg = f"(({a} < {zero}) != ({b} < {zero}))"
        return f"({zero} if {b} == {zero} else {self.cast(f'(-{q} if {neg} else {q})', out)})"

    def p_rem(self, params, args, ins, out):
        a, b = args
        if out.kind == "f":
            return self.ld("fmod", out, a, b)
        zero = self.const(0, out)
        if out.kind == "u":
            return f"({zero} if {b} == {zero} else {self.cast(f'{a} % {b}', out)})"
        r = f"(abs({self.wide(a, out)}) % abs({self.wide(b, out)}))"
        return f"({zero} if {b} == {zero} else {self.cast(f'(-{r} if {a} < {zero} else {r})', out)})"

    def p_neg(self, params, args, ins, out):
        (a,) = args
        if out.kind == "f":
            return self.cast(f"-{a}", out)
        if _bits(out) >= 64:
            return self.cast(f"{self.const(0, out)} - {a}", out)
        return self.cast(f"-int64({a})", out)

    def p_abs(self, params, args, ins, out):
        (a,) = args
        if out.kind == "f":
            return self.ld("fabs", out, a)
        if out.kind == "u":
            return a
        return self.cast(f"abs({self.wide(a, out)})", out)

    def p_sign(self, params, args, ins, out):
        (a,) = args
        zero, one = self.const(0, out), self.const(1, out)
        if out.kind == "u":
            return f"({one} if {a} > {zero} else {zero})"
        m1 = self.const(-1, out)
        nan_case = f"({a} if {a} != {a} else {zero})" if out.kind == "f" else zero
        return f"({one} if {a} > {zero} else ({m1} if {a} < {zero} else {nan_case}))"

    def p_square(self, params, args, ins, out):
        return self.p_mul(params, [args[0], args[0]], ins, out)

    def p_max(self, params, args, ins, out):
        a, b = args
        nan = f" or {a} != {a}" if out.kind == "f" else ""
        return f"({a} if ({a} > {b}{nan}) else {b})"

    def p_min(self, params, args, ins, out):
        a, b = args
        nan = f" or {a} != {a}" if out.kind == "f" else ""
        return f"({a} if ({a} < {b}{nan}) else {b})"

    def p_round(self, params, args, ins, out):
        method = params.get("rounding_method", 1)
        return self.ld("round" if int(method) == 0 else "rint", out, args[0])

    def p_is_finite(self, params, args, ins, out):
        (a,) = args
        inf = self.const(np.inf, ins[0])
        return f"({a} == {a} and {a} != {inf} and {a} != -{inf})"

    def p_rsqrt(self, params, args, ins, out):
        one = self.const(1, out)
        return self.cast(f"{one} / {self.ld('sqrt', out, args[0])}", out)

    def p_logistic(self, params, args, ins, out):
        # As the reference: e = exp(-|x|); x >= 0 ? 1/(1+e) : e/(1+e)  (stable in both tails)
        (a,) = args
        one, zero = self.const(1, out), self.const(0, out)
        e = self.bind(self.ld("exp", out, f"-{self.ld('fabs', out, a)}"), out)
        d = self.bind(self.cast(f"{one} + {e}", out), out)
        return f"({self.cast(f'{one} / {d}', out)} if {a} >= {zero} else {self.cast(f'{e} / {d}', out)})"

    def p_integer_pow(self, params, args, ins, out):
        (a,) = args
        y = int(params["y"])
        if out.kind == "f":
            if y == 0:
                return self.const(1, out)
            if y in (1, 2, 3):
                expr = a
                for _ in range(y - 1):
                    expr = self.cast(f"{expr} * {a}", out)
                return expr
            value = self.ld("pow", out, a, self.const(abs(y), out))
            return self.cast(f"{self.const(1, out)} / {value}", out) if y < 0 else value
        # Integers: square-and-multiply, wrapping after every product (exact in Z/2^n).
        result, base, n = None, a, y
        while n:
            if n & 1:
                result = base if result is None else self.bind(self._int_arith("*", result, base, out), out)
            n >>= 1
            if n:
                base = self.bind(self._int_arith("*", base, base, out), out)
        return result if result is not None else self.const(1, out)

    def p_clamp(self, params, args, ins, out):
        lo, x, hi = args
        lower = self.bind(self.p_max(params, [x, lo], ins, out), out)
        return self.p_min(params, [lower, hi], ins, out)

    def p_select_n(self, params, args, ins, out):
        which, *cases = args
        if len(cases) == 1:
            return cases[0]
        if ins[0] == np.bool_:
            return f"({cases[1]} if {which} else {cases[0]})"
        expr = cases[-1]
        for i in range(len(cases) - 2, -1, -1):
            expr = f"({cases[i]} if {which} == {i} else {expr})"
        return expr

    # -- comparisons and logic
    def _compare(self, op):
        def rule(params, args, ins, out):
            return f"({args[0]} {op} {args[1]})"
        return rule

    def p_eq(self, *a):
        return self._compare("==")(*a)

    def p_ne(self, *a):
        return self._compare("!=")(*a)

    def p_lt(self, *a):
        return self._compare("<")(*a)

    def p_le(self, *a):
        return self._compare("<=")(*a)

    def p_gt(self, *a):
        return self._compare(">")(*a)

    def p_ge(self, *a):
        return self._compare(">=")(*a)

    def _bitwise(self, op, args, out):
        a, b = args
        if out.kind == "b":
            return f"boolean({a} {op} {b})"
        return self.cast(f"{a} {op} {b}", out)

    def p_and(self, params, args, ins, out):
        return self._bitwise("&", args, out)

    def p_or(self, params, args, ins, out):
        return self._bitwise("|", args, out)

    def p_xor(self, params, args, ins, out):
        return self._bitwise("^", args, out)

    def p_not(self, params, args, ins, out):
        (a,) = args
        if out.kind == "b":
            return f"(not {a})"
        return self.cast(f"~{a}", out)

    # -- shifts: out-of-range amounts are defined (see the module docstring)
    def _in_range(self, b: str, dt: np.dtype) -> str:
        bits = self.const(_bits(dt), dt)
        if dt.kind == "u":
            return f"{b} < {bits}"
        return f"({b} >= {self.const(0, dt)} and {b} < {bits})"

    def p_shift_left(self, params, args, ins, out):
        a, b = args
        if _bits(out) >= 64:
            shifted = self.cast(f"{a} << {b}", out)
        else:   # a < 2**32 shifted by < 32 fits in 64 bits; wrap on conversion
            shifted = self.cast(f"int64({a}) << int64({b})", out)
        return f"({shifted} if {self._in_range(b, out)} else {self.const(0, out)})"

    def p_shift_right_logical(self, params, args, ins, out):
        a, b = args
        u = np.dtype(f"u{out.itemsize}")
        shifted = self.cast(f"{type_name(u)}({a}) >> {type_name(u)}({b})", out)
        return f"({shifted} if {self._in_range(b, out)} else {self.const(0, out)})"

    def p_shift_right_arithmetic(self, params, args, ins, out):
        a, b = args
        s = np.dtype(f"i{out.itemsize}")
        top = self.const(_bits(out) - 1, out)
        amount = f"({b} if {b} < {top} else {top})"
        if out.kind == "i":
            amount = f"({self.const(0, out)} if {b} < {self.const(0, out)} else {amount})"
        return self.cast(f"{type_name(s)}({a}) >> {type_name(s)}({amount})", out)

    # -- conversions
    def p_convert_element_type(self, params, args, ins, out):
        (a,) = args
        src = ins[0]
        if out == src:
            return a
        if out.kind == "b":
            return f"({a} != {self.const(0, src)})"
        if src.kind == "f" and out.kind in "iu":
            # Saturate against the exact powers of two bounding ``out``; NaN -> 0.
            bits = _bits(out)
            info = np.iinfo(out)
            hi = self.const(2.0 ** (bits - 1) if out.kind == "i" else 2.0 ** bits, src)
            lo = self.const(-(2.0 ** (bits - 1)) if out.kind == "i" else 0.0, src)
            mx, mn, zero = self.const(info.max, out), self.const(info.min, out), self.const(0, out)
            return (f"({zero} if {a} != {a} else ({mx} if {a} >= {hi} else "
                    f"({mn} if {a} <= {lo} else {self.cast(a, out)})))")
        return self.cast(a, out)

    def p_bitcast_convert_type(self, params, args, ins, out):
        (a,) = args
        src = ins[0]
        if src == out:
            return a
        if src.kind != "f" and out.kind != "f":
            return self.cast(a, out)
        if src.itemsize not in (4, 8):
            raise UnsupportedOnCuda(f"bitcast_convert_type between {src.name} and {out.name}")
        width = src.itemsize * 8
        to_bits, from_bits = (("ld.float_as_int", "ld.int_as_float") if width == 32 else
                              ("ld.double_as_longlong", "ld.longlong_as_double"))
        if src.kind == "f":
            bits = f"{to_bits}({a})"
            return bits if out == np.dtype(f"i{src.itemsize}") else self.cast(bits, out)
        return f"{from_bits}(int{width}({a}))"

    def p_copy(self, params, args, ins, out):
        return args[0]

    def p_stop_gradient(self, params, args, ins, out):
        return args[0]

    def p_optimization_barrier(self, params, args, ins, out):
        return args[0]
