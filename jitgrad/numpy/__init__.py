"""``jitgrad.numpy``: numpy's API on jitgrad arrays, with JAX's semantics.

Import it as ``jnp``. Arrays are immutable (use ``x.at[idx].set(v)``), dtypes follow
JAX (float32 by default, float64 with ``jax_enable_x64``; Python scalars are weakly
typed), and every function works eagerly, under ``jit``, and under the transformations.
"""
import numpy as _np

from ..core.array import Array as ndarray  # noqa: F401
from ..core import dtypes as _dtypes
from . import _methods, linalg  # noqa: F401
from .creation import (arange, array, asarray, copy, empty, empty_like, eye, full,  # noqa: F401
                       full_like, identity, linspace, meshgrid, ones, ones_like, tri, tril, triu,
                       zeros, zeros_like)
from .einsum import einsum  # noqa: F401
from .indexing import argwhere, flatnonzero, nonzero, take, take_along_axis  # noqa: F401
from .linalg_ops import (diagonal, dot, inner, matmul, outer, tensordot, trace, vdot,  # noqa: F401
                         vecdot)
from .reductions import (all, amax, amin, any, argmax, argmin, average, count_nonzero,  # noqa: F401
                         cumprod, cumsum, cumulative_prod, cumulative_sum, max, mean, min,
                         nanmax, nanmean, nanmin, nanprod, nansum, prod, ptp, std, sum, var)
from .scalar_types import (bool_, dtype, float16, float32, float64, float_, floating,  # noqa: F401
                           generic, inexact, int8, int16, int32, int64, int_, integer, number,
                           signedinteger, uint8, uint16, uint32, uint64, unsignedinteger)
from .shapes import (array_split, atleast_1d, atleast_2d, atleast_3d, broadcast_arrays,  # noqa: F401
                     broadcast_to, column_stack, concat, concatenate, diff, dstack, expand_dims,
                     flip, fliplr, flipud, hsplit, hstack, matrix_transpose, moveaxis, ndim, pad,
                     permute_dims, ravel, repeat, reshape, roll, rollaxis, rot90, row_stack, shape,
                     size, split, squeeze, stack, swapaxes, tile, transpose, vsplit, vstack)
from .ufuncs import (abs, absolute, add, allclose, arccos, arccosh, arcsin,  # noqa: F401
                     arcsinh, arctan, arctan2, arctanh, around, array_equal, array_equiv,
                     bitwise_and, bitwise_not, bitwise_or, bitwise_xor, cbrt, ceil, clip, conj,
                     conjugate, copysign, cos, cosh, deg2rad, degrees, divide, divmod, equal, exp,
                     exp2, expm1, fix, float_power, floor, floor_divide, fmax, fmin, fmod, greater,
                     greater_equal, heaviside, hypot, imag, invert, isclose, isfinite, isinf,
                     isnan, isneginf, isposinf, left_shift, less, less_equal, log, log10, log1p,
                     log2, logaddexp, logaddexp2, logical_and, logical_not, logical_or,
                     logical_xor, maximum, minimum, mod, multiply, nan_to_num, negative, nextafter,
                     not_equal, positive, power, rad2deg, radians, real, reciprocal, remainder,
                     right_shift, rint, round, select, sign, signbit, sin, sinc, sinh, sqrt,
                     square, subtract, tan, tanh, true_divide, trunc, where)

# numpy's newer (array API) spellings of the same functions.
acos, acosh, asin, asinh, atan, atan2, atanh = (arccos, arccosh, arcsin, arcsinh, arctan, arctan2,
                                                arctanh)
bitwise_invert, bitwise_left_shift, bitwise_right_shift = invert, left_shift, right_shift
pow = power

pi, e, inf, nan, euler_gamma = _np.pi, _np.e, _np.inf, _np.nan, _np.euler_gamma
newaxis = None

result_type = _dtypes.result_type
promote_types = _dtypes.promote_types
issubdtype = _dtypes.issubdtype
finfo = _dtypes.finfo
iinfo = _dtypes.iinfo
isdtype = None
del isdtype


def isscalar(element) -> bool:
    """True for Python/numpy scalars and 0-d arrays."""
    return _np.isscalar(element) or (isinstance(element, ndarray) and element.ndim == 0)


def iscomplexobj(x) -> bool:
    """False: jitgrad has no complex dtypes."""
    return False


def isrealobj(x) -> bool:
    """True: jitgrad has no complex dtypes."""
    return True


_methods.install()
