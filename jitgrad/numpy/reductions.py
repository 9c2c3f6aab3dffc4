"""Reductions with numpy's axis/keepdims/dtype/where arguments, on the reduce_* primitives.

Dtypes follow JAX: ``sum``/``prod``/``cumsum``/``cumprod`` of bools and of integers
narrower than the default int accumulate in the default int (unsigned: the default
uint); ``mean``/``var``/``std`` of integers are floats. Reducing an empty axis with
``max``/``min``/``argmax``/``argmin`` is a ValueError (no identity), as in numpy/JAX.
"""
from __future__ import annotations

import builtins
from typing import Any, Sequence

import numpy as np

from .. import lax
from ..core import dtypes
from ..core.array import Array, ArrayImpl
from ..ops import reductions as rd
from ._util import (_STATE, as_array, check_no_out, normalize_axes, normalize_axis,
                    promote_dtypes_inexact, quiet_call, wrap_result)
from . import ufuncs

Axis = int | Sequence[int] | None
ArrayLike = Any


def _keepdims(out, shape, axes, keepdims):
    if not keepdims:
        return out
    kept = tuple(1 if i in axes else d for i, d in enumerate(shape))
    return lax.reshape(out, kept)


def _sum_dtype(dt, dtype):
    """JAX: bools and small integers accumulate in the default int (uint for unsigned)."""
    if dtype is not None:
        from .scalar_types import canonical_dtype_arg
        return canonical_dtype_arg(dtype)
    if dtypes.is_bool(dt):
        return dtypes.default_int_dtype()
    if dtypes.is_int(dt) and dt.itemsize < dtypes.default_int_dtype().itemsize:
        return dtypes.default_uint_dtype() if dtypes.is_unsigned(dt) else dtypes.default_int_dtype()
    return dt


def _apply_where(a, where, identity):
    if where is None:
        return a
    from .creation import full_like
    return ufuncs.where(where, a, full_like(a, identity))


_sum_reduce = np.add.reduce


def _fast_sum(a, axis, keepdims):
    """Eager ``sum`` of a float/int32/int64 array: numpy's add.reduce directly, or None."""
    if _STATE.trace is not None or type(a) is not ArrayImpl or a._weak_type:
        return None
    v = a._value
    dt = v.dtype
    if dt.kind != "f" and not (dt.kind in "iu" and dt.itemsize >= dtypes.default_int_dtype().itemsize):
        return None
    if dtypes.canonicalize_dtype(dt) is not dt:
        return None
    if axis is not None:
        if type(axis) is not int or not -v.ndim <= axis < v.ndim:
            return None
    return wrap_result(quiet_call(_sum_reduce, v, axis, dt, None, keepdims), False)


def sum(a: ArrayLike, axis: Axis = None, dtype=None, out: None = None, keepdims: bool = False,
        initial: ArrayLike | None = None, where: ArrayLike | None = None,
        promote_integers: bool = True) -> Array:
    """Sum of elements over ``axis`` (all axes by default).

    ``dtype`` sets the accumulation/result dtype; by default bools and narrow integers
    accumulate in the default int (``promote_integers=False`` keeps their dtype).
    ``where`` masks elements out; ``initial`` is added to the result.
    """
    check_no_out("sum", out)
    if dtype is None and initial is None and where is None and promote_integers:
        fast = _fast_sum(a, axis, keepdims)
        if fast is not None:
            return fast
    a = as_array(a, "sum")
    axes = normalize_axes(axis, a.ndim, "sum")
    dt = _sum_dtype(a.dtype, dtype) if promote_integers or dtype is not None else a.dtype
    a = lax.convert_element_type(a, dt)
    a = _apply_where(a, where, 0)
    res = rd.reduce_sum_p.bind(a, axes=axes) if axes else a
    if initial is not None:
        res = lax.convert_element_type(ufuncs.add(res, initial), dt)
    return _keepdims(res, a.shape, axes, keepdims)


def prod(a: ArrayLike, axis: Axis = None, dtype=None, out: None = None, keepdims: bool = False,
         initial: ArrayLike | None = None, where: ArrayLike | None = None,
         promote_integers: bool = True) -> Array:
    """Product of elements over ``axis`` (dtype rules as for ``sum``)."""
    check_no_out("prod", out)
    a = as_array(a, "prod")
    axes = normalize_axes(axis, a.ndim, "prod")
    dt = _sum_dtype(a.dtype, dtype) if promote_integers or dtype is not None else a.dtype
    a = lax.convert_element_type(a, dt)
    a = _apply_where(a, where, 1)
    res = rd.reduce_prod_p.bind(a, axes=axes) if axes else a
    if initial is not None:
        res = lax.convert_element_type(ufuncs.multiply(res, initial), dt)
    return _keepdims(res, a.shape, axes, keepdims)


def _minmax(p, name, a, axis, out, keepdims, initial, where):
    check_no_out(name, out)
    a = as_array(a, name)
    axes = normalize_axes(axis, a.ndim, name)
    if where is not None:
        if initial is None:
            raise ValueError(f"reduction operation {name} does not have an identity, so to use a "
                             "where mask one has to specify 'initial'")
        a = _apply_where(a, where, initial)
    if initial is None and builtins.any(a.shape[i] == 0 for i in axes):
        raise ValueError(f"zero-size array to reduction operation {name} which has no identity "
                         f"(jnp.{name} over axis {axis} of an array of shape {a.shape}); pass "
                         "initial=... to define the result of an empty reduction")
    res = p.bind(a, axes=axes) if axes else a
    if initial is not None:
        res = lax.convert_element_type(
            (ufuncs.maximum if name == "max" else ufuncs.minimum)(res, initial), a.dtype)
    return _keepdims(res, a.shape, axes, keepdims)


def max(a: ArrayLike, axis: Axis = None, out: None = None, keepdims: bool = False,
        initial: ArrayLike | None = None, where: ArrayLike | None = None) -> Array:
    """Maximum over ``axis`` (NaN propagates). ``where`` needs ``initial``."""
    return _minmax(rd.reduce_max_p, "max", a, axis, out, keepdims, initial, where)


def min(a: ArrayLike, axis: Axis = None, out: None = None, keepdims: bool = False,
        initial: ArrayLike | None = None, where: ArrayLike | None = None) -> Array:
    """Minimum over ``axis`` (NaN propagates). ``where`` needs ``initial``."""
    return _minmax(rd.reduce_min_p, "min", a, axis, out, keepdims, initial, where)


amax, amin = max, min


def _bool_reduce(p, name, a, axis, out, keepdims, where):
    check_no_out(name, out)
    a = as_array(a, name)
    axes = normalize_axes(axis, a.ndim, name)
    a = ufuncs._to_bool(a)
    if where is not None:
        a = ufuncs.where(where, a, name == "all")
    res = p.bind(a, axes=axes) if axes else a
    return _keepdims(res, a.shape, axes, keepdims)


def all(a: ArrayLike, axis: Axis = None, out: None = None, keepdims: bool = False, *,
        where: ArrayLike | None = None) -> Array:
    """True if every element (along ``axis``) is nonzero (True for an empty axis)."""
    return _bool_reduce(rd.reduce_and_p, "all", a, axis, out, keepdims, where)


def any(a: ArrayLike, axis: Axis = None, out: None = None, keepdims: bool = False, *,
        where: ArrayLike | None = None) -> Array:
    """True if some element (along ``axis``) is nonzero (False for an empty axis)."""
    return _bool_reduce(rd.reduce_or_p, "any", a, axis, out, keepdims, where)


def _count(shape, axes):
    n = 1
    for i in axes:
        n *= shape[i]
    return n


def _float_dtype(a_dtype, dtype, name):
    if dtype is not None:
        from .scalar_types import canonical_dtype_arg
        return canonical_dtype_arg(dtype)
    return a_dtype if dtypes.is_float(a_dtype) else dtypes.default_float_dtype()


def mean(a: ArrayLike, axis: Axis = None, dtype=None, out: None = None, keepdims: bool = False, *,
         where: ArrayLike | None = None) -> Array:
    """Arithmetic mean over ``axis`` (integers and bools average in the default float).

    The mean of an empty axis is NaN (0/0), as in numpy and JAX.
    """
    check_no_out("mean", out)
    a = as_array(a, "mean")
    axes = normalize_axes(axis, a.ndim, "mean")
    dt = _float_dtype(a.dtype, dtype, "mean")
    a = lax.convert_element_type(a, dt)
    if where is None:
        total = sum(a, axis=axes, keepdims=keepdims)
        return ufuncs.true_divide(total, np.asarray(_count(a.shape, axes), dt))
    total = sum(a, axis=axes, keepdims=keepdims, where=where)
    from .creation import ones_like
    count = sum(ones_like(a), axis=axes, keepdims=keepdims, where=where)
    return ufuncs.true_divide(total, count)


def var(a: ArrayLike, axis: Axis = None, dtype=None, out: None = None, ddof: int = 0,
        keepdims: bool = False, *, where: ArrayLike | None = None,
        correction: int | float | None = None) -> Array:
    """Variance over ``axis``; ``ddof`` (or its newer name ``correction``) is subtracted
    from the count of elements."""
    check_no_out("var", out)
    if correction is not None:
        if ddof != 0:
            raise ValueError("var: ddof and correction can't be provided simultaneously")
        ddof = correction
    a = as_array(a, "var")
    axes = normalize_axes(axis, a.ndim, "var")
    dt = _float_dtype(a.dtype, dtype, "var")
    a = lax.convert_element_type(a, dt)
    centered = ufuncs.subtract(a, mean(a, axis=axes, keepdims=True, where=where))
    sq = ufuncs.square(centered)
    if where is None:
        n = _count(a.shape, axes)
        total = sum(sq, axis=axes, keepdims=keepdims)
        return ufuncs.true_divide(total, np.asarray(builtins.max(n - ddof, 0), dt))
    from .creation import ones_like
    total = sum(sq, axis=axes, keepdims=keepdims, where=where)
    n = sum(ones_like(a), axis=axes, keepdims=keepdims, where=where)
    return ufuncs.true_divide(total, ufuncs.maximum(ufuncs.subtract(n, ddof), 0))


def std(a: ArrayLike, axis: Axis = None, dtype=None, out: None = None, ddof: int = 0,
        keepdims: bool = False, *, where: ArrayLike | None = None,
        correction: int | float | None = None) -> Array:
    """Standard deviation over ``axis`` (the square root of ``var``)."""
    check_no_out("std", out)
    return ufuncs.sqrt(var(a, axis, dtype, None, ddof, keepdims, where=where, correction=correction))


def _arg(p, name, a, axis, out, keepdims):
    check_no_out(name, out)
    a = as_array(a, name)
    keepdims = bool(keepdims)
    if axis is None:
        if a.size == 0:
            raise ValueError(f"attempt to get {name} of an empty sequence")
        from .shapes import ravel
        res = p.bind(ravel(a), axes=(0,), index_dtype=dtypes.default_int_dtype())
        return lax.reshape(res, (1,) * a.ndim) if keepdims else res
    ax = normalize_axis(axis, a.ndim, name)
    if a.shape[ax] == 0:
        raise ValueError(f"attempt to get {name} of an empty sequence (axis {ax} of shape {a.shape})")
    res = p.bind(a, axes=(ax,), index_dtype=dtypes.default_int_dtype())
    return _keepdims(res, a.shape, (ax,), keepdims)


def argmax(a: ArrayLike, axis: int | None = None, out: None = None,
           keepdims: bool | None = None) -> Array:
    """Index of the maximum (first on ties; NaN counts as the maximum) along ``axis``, or
    of the flattened array."""
    return _arg(rd.argmax_p, "argmax", a, axis, out, keepdims)


def argmin(a: ArrayLike, axis: int | None = None, out: None = None,
           keepdims: bool | None = None) -> Array:
    """Index of the minimum (first on ties; NaN counts as the minimum) along ``axis``, or
    of the flattened array."""
    return _arg(rd.argmin_p, "argmin", a, axis, out, keepdims)


def _cumulative(p, name, a, axis, dtype, out):
    check_no_out(name, out)
    a = as_array(a, name)
    if axis is None:
        from .shapes import ravel
        a, axis = ravel(a), 0
    axis = normalize_axis(axis, a.ndim, name)
    a = lax.convert_element_type(a, _sum_dtype(a.dtype, dtype))
    if dtypes.is_bool(a.dtype):
        a = lax.convert_element_type(a, dtypes.default_int_dtype())
    return p.bind(a, axis=axis, reverse=False)


def cumsum(a: ArrayLike, axis: int | None = None, dtype=None, out: None = None) -> Array:
    """Cumulative sum along ``axis`` (of the flattened array if None); dtypes as ``sum``."""
    return _cumulative(rd.cumsum_p, "cumsum", a, axis, dtype, out)


def cumprod(a: ArrayLike, axis: int | None = None, dtype=None, out: None = None) -> Array:
    """Cumulative product along ``axis`` (of the flattened array if None)."""
    return _cumulative(rd.cumprod_p, "cumprod", a, axis, dtype, out)


def cumulative_sum(x: ArrayLike, /, *, axis: int | None = None, dtype=None,
                   include_initial: bool = False) -> Array:
    """Array-API cumulative sum; ``include_initial`` prepends a 0. ``axis`` may be omitted
    only for 1-D input."""
    return _cumulative_api(cumsum, 0, x, axis, dtype, include_initial, "cumulative_sum")


def cumulative_prod(x: ArrayLike, /, *, axis: int | None = None, dtype=None,
                    include_initial: bool = False) -> Array:
    """Array-API cumulative product; ``include_initial`` prepends a 1."""
    return _cumulative_api(cumprod, 1, x, axis, dtype, include_initial, "cumulative_prod")


def _cumulative_api(fn, identity, x, axis, dtype, include_initial, name):
    x = as_array(x, name)
    if axis is None:
        if x.ndim > 1:
            raise ValueError(f"{name}: axis must be given for arrays of more than one dimension")
        axis = 0
    out = fn(x, axis=axis, dtype=dtype)
    if include_initial:
        from .shapes import pad
        ax = normalize_axis(axis, out.ndim, name)
        widths = [(0, 0)] * out.ndim
        widths[ax] = (1, 0)
        out = pad(out, widths, constant_values=identity)
    return out


def count_nonzero(a: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array:
    """How many elements are nonzero along ``axis`` (default int dtype)."""
    return sum(ufuncs._to_bool(as_array(a, "count_nonzero")), axis=axis, keepdims=keepdims)


def ptp(a: ArrayLike, axis: Axis = None, out: None = None, keepdims: bool = False) -> Array:
    """Range (max - min) along ``axis``."""
    check_no_out("ptp", out)
    return ufuncs.subtract(max(a, axis, keepdims=keepdims), min(a, axis, keepdims=keepdims))


def _nan_version(reduce, fill, has_dtype):
    name = "nan" + reduce.__name__

    if has_dtype:
        def fn(a: ArrayLike, axis: Axis = None, dtype=None, out: None = None,
               keepdims: bool = False, initial: ArrayLike | None = None,
               where: ArrayLike | None = None) -> Array:
            a = as_array(a, name)
            return reduce(ufuncs.where(ufuncs.isnan(a), fill, a), axis=axis, dtype=dtype, out=out,
                          keepdims=keepdims, initial=initial, where=where)
    else:
        def fn(a: ArrayLike, axis: Axis = None, out: None = None, keepdims: bool = False,
               initial: ArrayLike | None = None, where: ArrayLike | None = None) -> Array:
            a = as_array(a, name)
            return reduce(ufuncs.where(ufuncs.isnan(a), fill, a), axis=axis, out=out,
                          keepdims=keepdims, initial=initial, where=where)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``{reduce.__name__}`` ignoring NaN (an all-NaN slice gives {fill})."
    return fn


nansum = _nan_version(sum, 0, True)
nanprod = _nan_version(prod, 1, True)


def nanmax(a: ArrayLike, axis: Axis = None, out: None = None, keepdims: bool = False,
           initial: ArrayLike | None = None, where: ArrayLike | None = None) -> Array:
    """``max`` ignoring NaN; an all-NaN slice gives NaN (as in numpy, without its warning)."""
    return _nan_minmax(max, -np.inf, a, axis, out, keepdims, initial, where, "nanmax")


def nanmin(a: ArrayLike, axis: Axis = None, out: None = None, keepdims: bool = False,
           initial: ArrayLike | None = None, where: ArrayLike | None = None) -> Array:
    """``min`` ignoring NaN; an all-NaN slice gives NaN (as in numpy, without its warning)."""
    return _nan_minmax(min, np.inf, a, axis, out, keepdims, initial, where, "nanmin")


def _nan_minmax(reduce, fill, a, axis, out, keepdims, initial, where, name):
    a = as_array(a, name)
    if not dtypes.is_float(a.dtype):
        return reduce(a, axis=axis, out=out, keepdims=keepdims, initial=initial, where=where)
    nan = ufuncs.isnan(a)
    res = reduce(ufuncs.where(nan, fill, a), axis=axis, out=out, keepdims=keepdims,
                 initial=initial, where=where)
    all_nan = all(nan, axis=axis, keepdims=keepdims)
    return ufuncs.where(all_nan, np.nan, res) if initial is None else res


def nanmean(a: ArrayLike, axis: Axis = None, dtype=None, out: None = None, keepdims: bool = False,
            where: ArrayLike | None = None) -> Array:
    """Mean ignoring NaN (an all-NaN slice gives NaN)."""
    check_no_out("nanmean", out)
    a = as_array(a, "nanmean")
    if not dtypes.is_float(a.dtype):
        return mean(a, axis=axis, dtype=dtype, keepdims=keepdims, where=where)
    ok = ufuncs.logical_not(ufuncs.isnan(a))
    if where is not None:
        ok = ufuncs.logical_and(ok, where)
    return mean(a, axis=axis, dtype=dtype, keepdims=keepdims, where=ok)


def average(a: ArrayLike, axis: Axis = None, weights: ArrayLike | None = None,
            returned: bool = False, keepdims: bool = False):
    """Weighted mean along ``axis``; with ``returned=True`` also the sum of weights."""
    a = as_array(a, "average")
    if weights is None:
        avg = mean(a, axis=axis, keepdims=keepdims)
        count = _count(a.shape, normalize_axes(axis, a.ndim, "average"))
        return (avg, lax.full_like(avg, count)) if returned else avg
    w = as_array(weights, "average")
    if w.shape != a.shape:
        if axis is None or not isinstance(axis, (int, np.integer)) or w.ndim != 1:
            raise TypeError(f"average: weights of shape {w.shape} differ from a's shape {a.shape}; "
                            "1-D weights need an integer axis")
        ax = normalize_axis(axis, a.ndim, "average")
        if w.shape[0] != a.shape[ax]:
            raise ValueError(f"average: length of weights ({w.shape[0]}) differs from axis {ax} "
                             f"of a ({a.shape[ax]})")
        shape = [1] * a.ndim
        shape[ax] = a.shape[ax]
        w = lax.reshape(w, shape)
    a, w = promote_dtypes_inexact(a, w)
    # Broadcast the weights to a's shape before summing them.
    w_full = ufuncs.add(ufuncs.multiply(a, 0), w)
    total_w = sum(w_full, axis=axis, keepdims=keepdims)
    avg = ufuncs.true_divide(sum(ufuncs.multiply(a, w_full), axis=axis, keepdims=keepdims), total_w)
    return (avg, total_w) if returned else avg
