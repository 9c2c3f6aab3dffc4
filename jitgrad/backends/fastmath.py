"""Vectorisable float32 exp, expm1, log, log1p, tanh, logistic and erf for numba kernels.

Why: numba lowers float32 ``np.exp``/``np.tanh``/``math.erf``... to scalar libm calls
(``expf``, ``tanhf``; there is no SVML in the PyPI llvmlite), and a loop that calls a
function does not vectorise: a tanh-GELU over 2^24 floats takes ~250 ms that way against
~10 ms for a loop LLVM can turn into AVX2 code (shared/BASELINES.md, W3 and W5).

The functions here are ordinary ``@numba.njit`` functions of one float32 scalar,
written only with float32 arithmetic, fused multiply-adds, integer bit manipulation and
selects (no calls, no data-dependent branches), so LLVM inlines them into the calling
loop and vectorises it (8 lanes per ymm register on AVX2). tests/test_fastmath.py checks
the assembly of such a loop, the accuracy over the whole float32 range and the special
values: NaN in -> NaN out, infinities, overflow to inf and underflow to (subnormal) 0,
subnormal inputs, log(0) = -inf, log(x < 0) = NaN, log1p(-1) = -inf, tanh and erf
reaching +-1 exactly, and the sign of zero.

How they work (each docstring gives its measured maximum error):

* exp: k = round(x / ln 2) by the 1.5 * 2^23 trick, r = x - k ln 2 in two parts
  (Cody-Waite, the high part has 9 bits so k * ln2_hi is exact), e^r = 1 + r + r^2 P(r)
  with a degree-4 minimax P on |r| <= ln2 / 2, times 2^k built from the exponent bits.
  2^k is applied as two factors so that results in the subnormal range round once and
  k = 128 (x just below the overflow threshold) does not overflow 2^k itself.
* expm1: the same reduction; 2^k (1 + u) - 1 = 2^k u + (2^k - 1) with u = e^r - 1 from a
  degree-5 P, which keeps relative accuracy near 0.
* log / log1p: x = 2^k m with m in [sqrt(1/2), sqrt(2)) (bit trick), f = m - 1 exact,
  log(1 + f) = f - (f^2/2 - s (f^2/2 + R(s^2))) with s = f / (2 + f) and a degree-2
  minimax R (the classic atanh series form); log1p adds the rounding error of 1 + x as
  c / u. Subnormal inputs are scaled by 2^23 first.
* tanh: x = k ln2/2 + r with k = round(2x / ln2) and |r| <= ln2/4 (the exp reduction,
  ln 2 / 2 in one part), tau = tanh(r) = r P(r^2) with a degree-3 minimax P, then the
  addition formula tanh(k ln2/2 + r) = (T + tau) / (1 + T tau) with T = tanh(k ln2/2) =
  (s - 1) / (s + 1), s = 2^k from the exponent bits, cleared of its denominator:
  ((s - 1) + (s + 1) tau) / ((s + 1) + (s - 1) tau), one division. An absolute error in
  tau reaches the result times 4s / ((s + 1) + (s - 1) tau)^2 (<= 1, ~4 / 2^k for large
  k, so P and the one-part ln 2 / 2 need only be accurate near k = 0); s - 1 and s + 1
  are exact up to |k| = 23 (beyond, what they would add is below float32 resolution,
  and from |k| = 25 the quotient is exactly +-1). It works on signed x (k < 0 gives
  s < 1), which makes it odd bit for bit with no sign handling; x is clamped to
  [-9.1, 9.1] only to keep 2^k finite. It replaced sign(x) e / (e + 2), e = expm1(2|x|)
  (same 2 ulp bound): fewer operations and a shorter dependency chain, ~20% less time
  in the tanh-GELU kernel. (A rational x P(x^2) / Q(x^2), the XLA/Eigen form, degree 9/8,
  is ~7% faster still but 5 ulp off near 1: the roundings in P and Q are not damped.)
* logistic: e = exp(-|x|); 1 / (1 + e) for x >= 0 and e / (1 + e) otherwise (the
  reference's stable form: no overflow, subnormal results where they belong).
* erf: |x| < 1: x + x P(x^2) (degree 6); 1 <= |x| < 4: 1 - exp(Q(|x| - 1)) where Q
  (degree 6) fits log(erfc); |x| >= 4 gives +-1 exactly.

The polynomial coefficients are discrete minimax fits (a linear program over ~3000
Chebyshev-spaced points, with the weights of the error each term causes in the final
result), with the coefficients rounded to float32 one at a time from the lowest order
and the rest refitted after each rounding, against 40-digit references.

Use from generated code: ``from jitgrad.backends import fastmath as fm`` and call
``fm.tanh_f32(x)`` on a float32 scalar inside any ``@njit`` function (parallel or not).
``FLOAT32`` maps jitgrad primitive names to the functions. Only float32 is approximated:
float64 keeps numba's libm calls (float64 versions need twice the polynomial degree and
libm is already accurate there). Callers must not compile these calls with numba's
``fastmath=True`` (its ``nnan``/``ninf`` flags would let LLVM drop the NaN and infinity
selects); these functions are not numba's ``inline="always"`` (which re-types their body
into the caller's IR) for that reason: they are compiled once with their own flags and
marked ``forceinline`` (LLVM's alwaysinline), so LLVM inlines the machine-level body, which
keeps the flags. Without the mark LLVM's inliner gave up on them in large functions (a
softmax row kernel with five exp call sites kept 17 calls after unrolling and ran 2.5x
slower; tests/test_cpu_fastmath.py checks). The
``fast_math`` flag of ``jitgrad.config`` (default on) says whether the CPU backend uses
them; with it off, kernels keep exact libm.

The fused multiply-adds are ``llvm.fma`` (exact, so results are the same on every
machine); on a CPU without FMA instructions LLVM would call ``fmaf`` and the loops would
stop vectorising, which the assembly test would report.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

__all__ = ["exp_f32", "expm1_f32", "log_f32", "log1p_f32", "tanh_f32", "logistic_f32",
           "erf_f32", "FLOAT32", "VERSION"]

# Bump when any function's numerics change: callers that cache compiled kernels on disk
# should put it in their cache key (numba's cache does not track callees' sources).
VERSION = 2        # 2: tanh_f32 by the addition formula (numerics changed)

# error_model="numpy": no ZeroDivisionError checks (they would add branches).
# cache: compiled once per installation (numba's cache is keyed on this file, which holds
# every function these call).
_JIT = dict(nogil=True, error_model="numpy", cache=True, forceinline=True)

_f = np.float32
_i = np.int32


# ------------------------------------------------------------------ bit-level intrinsics

@intrinsic
def _bits(typingctx, x):
    """The IEEE bits of a float32 as an int32 (a register move, vectorisable)."""
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.int32))
    return types.int32(types.float32), codegen


@intrinsic
def _from_bits(typingctx, i):
    """The float32 whose IEEE bits are the low 32 bits of the integer ``i``."""
    if not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        i32 = builder.trunc(args[0], context.get_value_type(types.int32)) \
            if i.bitwidth > 32 else args[0]
        return builder.bitcast(i32, context.get_value_type(types.float32))
    return types.float32(i), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c with one rounding (llvm.fma: vfmadd on x86 with FMA)."""
    if not (a == b == c == types.float32):
        return None

    def codegen(context, builder, sig, args):
        return builder.fma(*args)
    return types.float32(types.float32, types.float32, types.float32), codegen


# ------------------------------------------------------------------ constants

_ZERO, _HALF, _ONE, _TWO = _f(0.0), _f(0.5), _f(1.0), _f(2.0)
_INF, _NAN = _f(np.inf), _f(np.nan)
_SIGN = _i(-2 ** 31)                 # the sign bit as an int32 mask

# Adding 1.5 * 2^23 rounds a float32 of magnitude < 2^22 to an integer (round to nearest).
_ROUND = _f(12582912.0)
# kf + (2^23 + 127) holds k + 127 in its low mantissa bits; shifted left by 23 they are
# the exponent field of 2^k (the bits above are shifted out).
_POW2_BIAS = _f(8388735.0)
_LOG2E = _f(1.4426950408889634)
_LN2_HI = _f(0.693359375)            # 355/512: 9 bits, so k * _LN2_HI is exact
_LN2_LO = _f(0.6931471805599453 - 0.693359375)
_LN2_HI16 = _f(0.693145751953125)    # 45426/2^16: 16 bits; k * it is exact for |k| < 256
_LN2_LO16 = _f(0.6931471805599453 - 0.693145751953125)

_EXP_HI = _f(89.0)       # e^89 > FLT_MAX: from here on the result is inf
_EXP_LO = _f(-104.0)     # e^-104 < 2^-150: rounds to 0
_EXPM1_LO = _f(-30.0)    # expm1(-30) rounds to -1

# (e^r - 1 - r) / r^2 on |r| <= ln2/2: degree 4 for exp (0.05 ulp), 5 for expm1 (0.007 ulp)
_E0, _E1, _E2, _E3, _E4 = (_f(0.4999999403953552), _f(0.1666652113199234),
                           _f(0.04166828840970993), _f(0.008368703536689281),
                           _f(0.001381894457153976))
_M0, _M1, _M2, _M3, _M4, _M5 = (_f(0.5), _f(0.1666666567325592), _f(0.04166649281978607),
                                _f(0.008333543315529823), _f(0.0013932364527136087),
                                _f(0.0001976432540686801))

# log: R(z)/z where R = 2 atanh(s)/s - 2, z = s^2 <= 0.0295 (0.014 ulp)
_L0, _L1, _L2 = _f(0.6666677594184875), _f(0.3997752368450165), _f(0.298734575510025)
_SQRT_HALF_BITS = _i(0x3F3504F3)     # bits of sqrt(1/2)
_ONE_BITS = _i(0x3F800000)
_MANT = _i(0x007FFFFF)
_SMALLEST_NORMAL = _f(2.0 ** -126)
_TWO23 = _f(2.0 ** 23)

# tanh: |x| <= 9.1 keeps k <= 27 (2^k finite); tanh(x) rounds to 1 for |x| > 9.011.
_TANH_CLAMP = _f(9.1)
_TWO_LOG2E = _f(2.0 * 1.4426950408889634)
_LN2_HALF = _f(0.6931471805599453 / 2)   # 1e-9 off; k times that is damped in tanh_f32
# 1.5 * 2^23 + 127: after y = fma(x, 2/ln2, this) the low mantissa bits of y hold k + 127,
# so y's bits shifted left by 23 are 2^k, and y - this = k.
_ROUND_POW2 = _f(12582912.0 + 127.0)
# tanh(r)/r - 1 as a polynomial in r^2 on |r| <= ln2/4 (0.003 ulp)
_H1, _H2, _H3 = _f(-0.33333322405815125), _f(0.1333114206790924), _f(-0.05271520838141441)

# erf(x)/x - 1 as a polynomial in x^2 on [0, 1] (0.024 ulp)
_S0, _S1, _S2, _S3, _S4, _S5, _S6 = (
    _f(0.12837916612625122), _f(-0.3761262595653534), _f(0.11283578723669052),
    _f(-0.026853347197175026), _f(0.005187162198126316), _f(-0.0007997853099368513),
    _f(7.806903886375949e-05))
# log(erfc(x)) as a polynomial in x - 1 on [1, 4] (0.13 ulp of erf)
_Q0, _Q1, _Q2, _Q3, _Q4, _Q5, _Q6 = (
    _f(-1.8496055603027344), _f(-2.6389670372009277), _f(-0.8431007862091064),
    _f(-0.041593726724386215), _f(0.010054146870970726), _f(-0.0019350359216332436),
    _f(0.00020824599778279662))
_ERF_CLAMP = _f(4.0)     # erf(4) rounds to 1 (erfc(4) = 1.5e-8 < 2^-25)


# ------------------------------------------------------------------ shared pieces

@numba.njit(**_JIT)
def _pow2(kf):
    """2^k for an integer-valued float32 k in [-126, 127]."""
    return _from_bits(_bits(kf + _POW2_BIAS) << 23)


@numba.njit(**_JIT)
def _scale(y, kf):
    """y * 2^k for integer-valued k in [-150, 128], as two factors 2^k1 * 2^(k-k1) (each
    a normal number), so that a subnormal result is rounded only once."""
    k1 = (kf * _HALF + _ROUND) - _ROUND
    return (y * _pow2(k1)) * _pow2(kf - k1)


@numba.njit(**_JIT)
def _copysign(mag, sgn):
    """|mag| with the sign of sgn, for mag >= 0 (NaN sgn: its sign bit)."""
    return _from_bits(_bits(mag) | (_bits(sgn) & _SIGN))


@numba.njit(**_JIT)
def _reduce(x):
    """(k, r) with x = k ln2 + r, k an integer-valued float32, |r| <= ln2/2 (+ rounding)."""
    kf = _fma(x, _LOG2E, _ROUND) - _ROUND
    r = _fma(kf, -_LN2_HI, x)
    r = _fma(kf, -_LN2_LO, r)
    return kf, r


@numba.njit(**_JIT)
def _exp_core(x):
    """e^x for x in [-104, 89] (not NaN)."""
    kf, r = _reduce(x)
    p = _fma(_fma(_fma(_fma(_E4, r, _E3), r, _E2), r, _E1), r, _E0)
    u = _fma(p, r * r, r)                  # e^r - 1, rounded once
    return _scale(_ONE + u, kf)


@numba.njit(**_JIT)
def _expm1_parts(x):
    """(k, u) with e^x - 1 = 2^k u + (2^k - 1), u = e^r - 1 (x finite, |x| < 2^21)."""
    kf, r = _reduce(x)
    p = _fma(_fma(_fma(_fma(_fma(_M5, r, _M4), r, _M3), r, _M2), r, _M1), r, _M0)
    return kf, _fma(p, r * r, r)


@numba.njit(**_JIT)
def _expm1_core(x):
    """e^x - 1 for x in [-30, 89] (not NaN); relative accuracy near 0."""
    kf, u = _expm1_parts(x)
    # 2^k (1 + u) - 1 = 2^k u + (2^k - 1). For k = 128, 2^k itself overflows: use
    # 2 (2^127 u + (2^127 - 1/2)) instead.
    big = kf > _f(127.5)
    kc = _f(127.0) if big else kf
    twice = _TWO if big else _ONE
    c = _HALF if big else _ONE
    s = _pow2(kc)
    return _fma(s, u, s - c) * twice


@numba.njit(**_JIT)
def _log1p_core(f):
    """log(1 + f) for f in [sqrt(1/2) - 1, sqrt(2) - 1], as f - (f^2/2 - s (f^2/2 + R))."""
    s = f / (_TWO + f)
    z = s * s
    r = z * _fma(_fma(_L2, z, _L1), z, _L0)
    hfsq = _HALF * f * f
    return f - (hfsq - s * (hfsq + r))


@numba.njit(**_JIT)
def _split(b):
    """For the bits b of a positive normal float32 x: (k as int, m) with x = 2^k m and
    m in [sqrt(1/2), sqrt(2)). Shifting by the bits of sqrt(1/2) makes the exponent field
    step up exactly where m crosses sqrt(2)."""
    t = b - _SQRT_HALF_BITS
    k = t >> 23
    m = _from_bits((t & _MANT) + _SQRT_HALF_BITS)
    return k, m


# ------------------------------------------------------------------ the functions

@numba.njit(**_JIT)
def exp_f32(x):
    """e^x in float32. Max error 1 ulp (measured over all 2^32 inputs).

    Overflows to inf for x > 88.72 and underflows through the subnormals to 0 for
    x < -103.97; exp(-inf) = 0, exp(inf) = inf, NaN -> NaN.
    """
    # Clamps written so that NaN passes through (x86 min/max semantics); NaN then
    # propagates through every step (2^NaN is built as 0, and 0 * NaN is NaN).
    xc = _EXP_HI if x > _EXP_HI else x
    xc = _EXP_LO if xc < _EXP_LO else xc
    return _exp_core(xc)


@numba.njit(**_JIT)
def expm1_f32(x):
    """e^x - 1 in float32. Max error 1 ulp (measured over all 2^32 inputs).

    Exact (= x) for tiny x, keeps the sign of zero; -1 below x = -17.3, inf above 88.72,
    NaN -> NaN.
    """
    xc = _EXP_HI if x > _EXP_HI else x     # NaN passes through (see exp_f32)
    xc = _EXPM1_LO if xc < _EXPM1_LO else xc
    y = _expm1_core(xc)
    return x if x == _ZERO else y


@numba.njit(**_JIT)
def log_f32(x):
    """Natural log in float32. Max error 1 ulp (measured over all 2^32 inputs).

    log(0) = -inf, log(x < 0) = NaN, log(inf) = inf, NaN -> NaN; subnormal x exact to
    the same bound.
    """
    sub = x < _SMALLEST_NORMAL
    xs = x * _TWO23 if sub else x
    k, m = _split(_bits(xs))
    k = k - 23 if sub else k
    kf = _f(k)
    f = m - _ONE
    # k ln2 + log1p(f), with ln2 in two parts (k * _LN2_HI16 is exact).
    y = _fma(kf, _LN2_HI16, kf * _LN2_LO16 + _log1p_core(f))
    y = y if x > _ZERO else (-_INF if x == _ZERO else _NAN)
    return y if x < _INF else x            # inf -> inf, NaN -> NaN


@numba.njit(**_JIT)
def log1p_f32(x):
    """log(1 + x) in float32. Max error 1 ulp (measured over all 2^32 inputs).

    Exact (= x) for tiny x, keeps the sign of zero; log1p(-1) = -inf, log1p(x < -1) = NaN,
    log1p(inf) = inf, NaN -> NaN.
    """
    u = _ONE + x
    c = (x - (u - _ONE)) / u               # 1 + x = u (1 + c/u): log1p(x) ~ log(u) + c/u
    k, m = _split(_bits(u))
    kf = _f(k)
    f = m - _ONE
    y = _fma(kf, _LN2_HI16, _fma(kf, _LN2_LO16, c) + _log1p_core(f))
    y = x if x == _ZERO else y
    y = y if x > _f(-1.0) else (-_INF if x == _f(-1.0) else _NAN)
    return y if x < _INF else x


@numba.njit(**_JIT)
def tanh_f32(x):
    """Hyperbolic tangent in float32. Max error 2 ulp (measured over all 2^32 inputs),
    odd bit for bit.

    Exactly +-1 for |x| >= 8.491 (tanh rounds to 1 from |x| = 9.011 on; in between 1 is
    at most 1.4 ulp off), keeps the sign of zero, subnormal inputs give themselves,
    NaN -> NaN.
    """
    # Clamp to [-9.1, 9.1]; both selects pass NaN through (see exp_f32).
    a = -_TANH_CLAMP if x < -_TANH_CLAMP else x
    a = _TANH_CLAMP if a > _TANH_CLAMP else a
    y = _fma(a, _TWO_LOG2E, _ROUND_POW2)   # k = round(2a / ln2), |k| <= 27
    kf = y - _ROUND_POW2
    s = _from_bits(_bits(y) << 23)         # 2^k (NaN a: 0, and NaN flows on through r)
    r = _fma(kf, -_LN2_HALF, a)            # a = k ln2/2 + r, |r| <= ln2/4, no cancellation
    w = r * r
    tau = r * _fma(_fma(_fma(_H3, w, _H2), w, _H1), w, _ONE)   # tanh(r); -0 stays -0
    m = _ONE - s                           # -(s - 1), exact; -m is -0 for k = 0, which
    sp = s + _ONE                          # keeps tanh(-0) = -0 (+0 + -0 would give +0)
    return _fma(sp, tau, -m) / _fma(-m, tau, sp)


@numba.njit(**_JIT)
def logistic_f32(x):
    """The logistic sigmoid 1 / (1 + e^-x) in float32. Max error 2 ulp (measured over all
    2^32 inputs).

    Computed in the reference's stable form: 1 / (1 + e) for x >= 0 and e / (1 + e)
    otherwise, e = exp(-|x|), so it never overflows and reaches the subnormals for
    x < -87.3; logistic(inf) = 1, logistic(-inf) = 0, NaN -> NaN.
    """
    n = -abs(x)
    n = _EXP_LO if n < _EXP_LO else n      # NaN passes through (see exp_f32)
    e = _exp_core(n)
    return (_ONE if x >= _ZERO else e) / (_ONE + e)


@numba.njit(**_JIT)
def erf_f32(x):
    """The error function in float32. Max error 1 ulp (measured over all 2^32 inputs).

    Exactly +-1 for |x| >= 4 (it rounds to 1 from 3.92 on), odd (keeps the sign of zero),
    NaN -> NaN.
    """
    z = x * x
    p = _fma(_fma(_fma(_fma(_fma(_fma(_S6, z, _S5), z, _S4), z, _S3), z, _S2), z, _S1), z, _S0)
    small = _fma(x, p, x)
    ax = abs(x)
    a = _ERF_CLAMP if ax > _ERF_CLAMP else ax      # NaN passes through (see exp_f32)
    a = _ONE if a < _ONE else a
    t = a - _ONE
    q = _fma(_fma(_fma(_fma(_fma(_fma(_Q6, t, _Q5), t, _Q4), t, _Q3), t, _Q2), t, _Q1), t, _Q0)
    large = _copysign(_ONE - _exp_core(q), x)
    return small if ax < _ONE else large


# jitgrad primitive name -> float32 approximation (the CPU backend's lookup table).
FLOAT32 = {
    "exp": exp_f32,
    "expm1": expm1_f32,
    "log": log_f32,
    "log1p": log1p_f32,
    "tanh": tanh_f32,
    "logistic": logistic_f32,
    "erf": erf_f32,
}
