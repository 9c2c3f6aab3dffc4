"""Scalar helpers the generated CPU kernels call (``rt.fmax(a, b)``), compiled by numba.

Each reproduces the reference implementation's semantics exactly where plain numba
arithmetic would differ: numpy's NaN-propagating maximum/minimum and argmax, C-style
integer division and remainder, logaddexp, reinterpreting bits. They take typed
constants as arguments (``rt.logistic(x, np.float32(1))``) so that float32 code stays
float32: numba promotes ``float32 op float64`` to float64.

It also re-exports ``jitgrad.backends.fastmath``'s vectorisable float32 functions
(``rt.exp_f32``, ``rt.tanh_f32``, ...; scalar.py emits them when ``config.fast_math`` is
on), so generated modules need no other import.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir as llvmir
from numba.core import types
from numba.extending import intrinsic

# Called by generated code as rt.<name>_f32 (scalar.FAST_F32).
from ..fastmath import (erf_f32, exp_f32, expm1_f32, log1p_f32, log_f32,  # noqa: F401
                        logistic_f32, tanh_f32)

# forceinline: always inlined into the calling loop (see fastmath.py). cache: numba keeps
# their compiled code (with the IR that callers inline) on disk, so a new process does not
# compile them again (~1.3 s of every cold compile otherwise). numba keys that cache on
# this file's own source only, so a function calling into another module (fastmath) is
# not cached: it would keep the old callee after that module changed.
_JIT = dict(nogil=True, error_model="numpy", cache=True, forceinline=True)
_JIT_CALLS_FASTMATH = dict(_JIT, cache=False)

_LN2_F32 = np.float32(math.log(2.0))


@numba.njit(**_JIT)
def fmax(x, y):
    """numpy.maximum: x if x >= y or x is NaN, else y (NaN-propagating)."""
    return x if (x >= y or x != x) else y


@numba.njit(**_JIT)
def fmin(x, y):
    """numpy.minimum: x if x <= y or x is NaN, else y."""
    return x if (x <= y or x != x) else y


@numba.njit(**_JIT)
def idiv(x, y):
    """The reference's integer division: |x| // |y| with the sign of x*y; 0 when y == 0.

    abs() wraps in the operand type (abs(INT_MIN) == INT_MIN), exactly as np.abs does.
    The caller casts the result to the operand type.
    """
    if y == 0:
        return x - x
    q = abs(x) // abs(y)
    if (x < 0) != (y < 0):
        q = -q
    return q


@numba.njit(**_JIT)
def irem(x, y):
    """C fmod on integers (sign of the dividend); 0 when y == 0. Returns the bits as
    uint64; the caller casts to the operand type (which truncates)."""
    if y == 0:
        return np.uint64(0)
    # Magnitudes as uint64 so that INT_MIN is exact.
    mx = np.uint64(0) - np.uint64(x) if x < 0 else np.uint64(x)
    my = np.uint64(0) - np.uint64(y) if y < 0 else np.uint64(y)
    r = mx % my
    if x < 0:
        r = np.uint64(0) - r
    return r


@numba.njit(**_JIT)
def logistic(x, one):
    """The reference's stable logistic: 1/(1+e) for x >= 0, e/(1+e) otherwise, e = exp(-|x|)."""
    e = np.exp(-abs(x))
    if x >= 0:
        return one / (one + e)
    return e / (one + e)


@numba.njit(**_JIT)
def logaddexp(x, y, log2):
    """numpy.logaddexp (its npy_logaddexp algorithm), in the operands' type."""
    if x == y:
        return x + log2
    tmp = x - y
    if tmp > 0:
        return x + np.log1p(np.exp(-tmp))
    if tmp <= 0:
        return y + np.log1p(np.exp(tmp))
    return tmp


@numba.njit(**_JIT_CALLS_FASTMATH)
def logaddexp_f32(x, y):
    """float32 ``logaddexp`` computed the same way with fastmath's exp and log1p (no libm
    calls). log1p(e) for e = exp(-|x - y|) in (0, 1] is well conditioned and the rounding
    of x - y dominates either way: the error stays within 3 ulps of max(|x|, |y|, log 2)
    against float64, as with libm (2.9 against 2.7 measured; tests/test_cpu_fastmath.py)."""
    if x == y:
        return x + _LN2_F32
    tmp = x - y
    if tmp > 0:
        return x + log1p_f32(exp_f32(-tmp))
    if tmp <= 0:
        return y + log1p_f32(exp_f32(tmp))
    return tmp


@numba.njit(**_JIT)
def erfinv(y):
    """Inverse error function in float64 (the caller casts): Winitzki's approximation,
    then Newton steps on erf (erfc near +-1, where erf loses the digits)."""
    y = np.float64(y)
    if y != y or y < -1.0 or y > 1.0:
        return np.nan
    if y == 1.0:
        return np.inf
    if y == -1.0:
        return -np.inf
    if y == 0.0:
        return y
    a = 0.147
    ln = math.log((1.0 - y) * (1.0 + y))
    t = 2.0 / (math.pi * a) + ln / 2.0
    x = math.sqrt(math.sqrt(t * t - ln / a) - t)
    if y < 0:
        x = -x
    ay = abs(y)
    for _ in range(4):
        ax = abs(x)
        slope = 1.1283791670955126 * math.exp(-ax * ax)
        if slope == 0.0:
            break
        if ay > 0.5:
            step = -(math.erfc(ax) - (1.0 - ay)) / slope
        else:
            step = (math.erf(ax) - ay) / slope
        ax = ax - step
        x = ax if y > 0 else -ax
    return x


@numba.njit(**_JIT)
def lgamma(x):
    """log|Gamma(x)|: libm's, except lgamma(-inf) = -inf as scipy.special.gammaln (the
    reference implementation) has it."""
    if x == -np.inf:
        return x
    return math.lgamma(x)


@intrinsic
def bitcast(typingctx, x, target):
    """Reinterpret the bits of scalar ``x`` as ``target`` (a numba number class, same width)."""
    to = target.instance_type if isinstance(target, types.NumberClass) else None
    if to is None or not isinstance(x, types.Number) or to.bitwidth != x.bitwidth:
        return None
    sig = to(x, target)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(to))
    return sig, codegen


@intrinsic
def carve(typingctx, buf, offset, shape, dtype):
    """A C-contiguous ``dtype`` array of static ``shape`` (a tuple of ints) viewing the bytes
    of uint8 buffer ``buf`` from ``offset``: how an entry takes all its temporaries in one
    argument. Builds the array struct directly (``buf[a:b].view(t).reshape(s)`` lowers to
    far more code: bounds, contiguity and size checks with their error paths). The caller
    guarantees the bytes are there (codegen lays the buffer out)."""
    if not (isinstance(buf, types.Array) and buf.dtype == types.uint8 and buf.ndim == 1
            and isinstance(offset, types.Integer) and isinstance(shape, types.BaseTuple)
            and all(isinstance(t, types.Integer) for t in shape.types)
            and isinstance(dtype, types.NumberClass)):
        return None
    ndim = len(shape.types)
    aryty = types.Array(dtype.instance_type, ndim, "C")
    sig = aryty(buf, offset, shape, dtype)

    def codegen(context, builder, signature, args):
        from numba.core import cgutils
        from numba.np.arrayobj import make_array, populate_array
        from numba.core.imputils import impl_ret_borrowed
        src = make_array(signature.args[0])(context, builder, args[0])
        out = make_array(aryty)(context, builder)
        intp = context.get_value_type(types.intp)
        itemsize = context.get_abi_sizeof(context.get_data_type(aryty.dtype))
        dims = [builder.sext(d, intp) if d.type.width < intp.width else d
                for d in cgutils.unpack_tuple(builder, args[2], ndim)]
        strides, acc = [], intp(itemsize)
        for d in reversed(dims):
            strides.insert(0, acc)
            acc = builder.mul(acc, d)
        data = builder.bitcast(builder.gep(src.data, [args[1]]), out.data.type)
        populate_array(out, data=data, shape=dims, strides=strides, itemsize=intp(itemsize),
                       meminfo=src.meminfo, parent=src.parent)
        return impl_ret_borrowed(context, builder, aryty, out._getvalue())
    return sig, codegen


# ------------------------------------------------------------------ reduction steps
# Float reductions fold with these so that LLVM's loop vectoriser turns the loop into
# vector partial results (8 float32 per ymm register, interleaved), as numpy's own SIMD
# reductions do. A plain ``acc + x`` chain may not be reordered (it would change the
# rounding), so the loop runs at one element per add latency and, if it computes anything
# else, stays scalar. Summation order is then the vector width times LLVM's interleave
# count of partial sums, folded at the end: like numpy's pairwise sum, not sequential.

def _reduction_step(name: str, doc: str, emit):
    """An intrinsic ``name(acc, x)`` on two floats of one type whose LLVM instruction
    ``emit(builder, acc, x)`` writes."""
    def typer(typingctx, acc, x):
        if not (acc == x and isinstance(acc, types.Float)):
            return None

        def codegen(context, builder, sig, args):
            return emit(builder, *args)
        return acc(acc, x), codegen
    typer.__name__ = typer.__qualname__ = name
    typer.__doc__ = doc
    return intrinsic(typer)


def _llvm_intrinsic(name: str):
    """``emit`` for a call of LLVM's two-operand float intrinsic ``name``."""
    def emit(builder, a, b):
        fn = builder.module.declare_intrinsic(name, [a.type],
                                              llvmir.FunctionType(a.type, [a.type, a.type]))
        return builder.call(fn, [a, b])
    return emit


radd = _reduction_step("radd", "``acc + x`` that LLVM may reassociate (a sum's step).",
                       lambda b, acc, x: b.fadd(acc, x, flags=("reassoc",)))
rmul = _reduction_step("rmul", "``acc * x`` that LLVM may reassociate (a product's step).",
                       lambda b, acc, x: b.fmul(acc, x, flags=("reassoc",)))
# NaN-propagating maximum/minimum that LLVM vectorises as reductions (vmaxps + a NaN
# check). They order -0 below +0, where numpy's reduce returns whichever zero its own
# order meets first.
rmax = _reduction_step("rmax", "NaN-propagating max(acc, x) (llvm.maximum).",
                       _llvm_intrinsic("llvm.maximum"))
rmin = _reduction_step("rmin", "NaN-propagating min(acc, x) (llvm.minimum).",
                       _llvm_intrinsic("llvm.minimum"))
