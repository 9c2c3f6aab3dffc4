"""Reductions with numpy's axis/keepdims/dtype arguments, on the reduce_* primitives."""
from __future__ import annotations

import builtins

import numpy as np

from .. import lax
from ..core import dtypes
from ..core.array import Array
from ..core.errors import ShapeError
from ..ops import reductions as rd
from ._util import asarray_operand, check_unknown_kwargs, normalize_axes, normalize_axis
from . import ufuncs


def _operand(a, name):
    a = asarray_operand(a, name)
    if not isinstance(a, Array):
        from .creation import asarray
        a = asarray(a)
    return a


def _keepdims(out, shape, axes, keepdims):
    if not keepdims:
        return out
    kept = tuple(1 if i in axes else d for i, d in enumerate(shape))
    return lax.reshape(out, kept)


def _sum_dtype(dt, dtype):
    """JAX: bools and small integers accumulate in the default int (uint for unsigned)."""
    if dtype is not None:
        return dtypes.canonicalize_dtype(dtype)
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


def sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None, **kw):
    """Sum of elements over ``axis`` (all axes by default)."""
    check_unknown_kwargs("sum", kw)
    a = _operand(a, "sum")
    axes = normalize_axes(axis, a.ndim, "sum")
    a = lax.convert_element_type(a, _sum_dtype(a.dtype, dtype))
    a = _apply_where(a, where, 0)
    res = rd.reduce_sum_p.bind(a, axes=axes) if axes else a
    if initial is not None:
        res = ufuncs.add(res, initial)
    return _keepdims(res, a.shape, axes, keepdims)


def prod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None, **kw):
    """Product of elements over ``axis``."""
    check_unknown_kwargs("prod", kw)
    a = _operand(a, "prod")
    axes = normalize_axes(axis, a.ndim, "prod")
    a = lax.convert_element_type(a, _sum_dtype(a.dtype, dtype))
    a = _apply_where(a, where, 1)
    res = rd.reduce_prod_p.bind(a, axes=axes) if axes else a
    if initial is not None:
        res = ufuncs.multiply(res, initial)
    return _keepdims(res, a.shape, axes, keepdims)


def _minmax(p, name, a, axis, keepdims, initial, where):
    a = _operand(a, name)
    axes = normalize_axes(axis, a.ndim, name)
    if where is not None:
        if initial is None:
            raise ValueError(f"{name}: reduction with where= needs an initial value")
        a = _apply_where(a, where, initial)
    if initial is None and builtins.any(a.shape[i] == 0 for i in axes):
        raise ShapeError(f"{name}: zero-size array to reduction operation {name} which has no "
                         "identity", hint="Pass initial=... to define the result of an empty reduction.")
    res = p.bind(a, axes=axes) if axes else a
    if initial is not None:
        res = (ufuncs.maximum if name == "max" else ufuncs.minimum)(res, initial)
    return _keepdims(res, a.shape, axes, keepdims)


def max(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    """Maximum over ``axis`` (NaN propagates)."""
    return _minmax(rd.reduce_max_p, "max", a, axis, keepdims, initial, where)


def min(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    """Minimum over ``axis`` (NaN propagates)."""
    return _minmax(rd.reduce_min_p, "min", a, axis, keepdims, initial, where)


amax, amin = max, min


def _bool_reduce(p, name, a, axis, keepdims, where):
    a = _operand(a, name)
    axes = normalize_axes(axis, a.ndim, name)
    a = ufuncs._to_bool(a)
    if where is not None:
        a = ufuncs.where(where, a, name == "all")
    res = p.bind(a, axes=axes) if axes else a
    return _keepdims(res, a.shape, axes, keepdims)


def all(a, axis=None, out=None, keepdims=False, *, where=None):
    """True if every element (along ``axis``) is nonzero."""
    return _bool_reduce(rd.reduce_and_p, "all", a, axis, keepdims, where)


def any(a, axis=None, out=None, keepdims=False, *, where=None):
    """True if some element (along ``axis``) is nonzero."""
    return _bool_reduce(rd.reduce_or_p, "any", a, axis, keepdims, where)


def _count(shape, axes):
    n = 1
    for i in axes:
        n *= shape[i]
    return n


def mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    """Arithmetic mean over ``axis`` (integers average in floating point)."""
    a = _operand(a, "mean")
    axes = normalize_axes(axis, a.ndim, "mean")
    dt = dtypes.canonicalize_dtype(dtype) if dtype is not None else (
        a.dtype if dtypes.is_float(a.dtype) else dtypes.default_float_dtype())
    a = lax.convert_element_type(a, dt)
    if where is None:
        total = sum(a, axis=axes, keepdims=keepdims)
        return ufuncs.true_divide(total, np.asarray(_count(a.shape, axes), dt))
    total = sum(a, axis=axes, keepdims=keepdims, where=where)
    from .creation import ones_like
    count = sum(ones_like(a), axis=axes, keepdims=keepdims, where=where)
    return ufuncs.true_divide(total, count)


def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, correction=None):
    """Variance over ``axis``; ``ddof`` (or ``correction``) subtracts from the count."""
    if correction is not None:
        ddof = correction
    a = _operand(a, "var")
    axes = normalize_axes(axis, a.ndim, "var")
    dt = dtypes.canonicalize_dtype(dtype) if dtype is not None else (
        a.dtype if dtypes.is_float(a.dtype) else dtypes.default_float_dtype())
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


def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, correction=None):
    """Standard deviation over ``axis``."""
    return ufuncs.sqrt(var(a, axis, dtype, out, ddof, keepdims, where=where, correction=correction))


def _arg(p, name, a, axis, keepdims):
    a = _operand(a, name)
    if axis is None:
        from .shapes import ravel
        flat = ravel(a)
        res = p.bind(flat, axes=(0,), index_dtype=dtypes.default_int_dtype())
        return lax.reshape(res, (1,) * a.ndim) if keepdims else res
    ax = normalize_axis(axis, a.ndim, name)
    res = p.bind(a, axes=(ax,), index_dtype=dtypes.default_int_dtype())
    return _keepdims(res, a.shape, (ax,), keepdims)


def argmax(a, axis=None, out=None, keepdims=False):
    """Index of the maximum (first on ties) along ``axis``, or of the flattened array."""
    return _arg(rd.argmax_p, "argmax", a, axis, keepdims)


def argmin(a, axis=None, out=None, keepdims=False):
    """Index of the minimum (first on ties) along ``axis``, or of the flattened array."""
    return _arg(rd.argmin_p, "argmin", a, axis, keepdims)


def _cumulative(p, name, a, axis, dtype, promote_sum):
    a = _operand(a, name)
    if axis is None:
        from .shapes import ravel
        a, axis = ravel(a), 0
    axis = normalize_axis(axis, a.ndim, name)
    if promote_sum:
        a = lax.convert_element_type(a, _sum_dtype(a.dtype, dtype))
    elif dtype is not None:
        a = lax.convert_element_type(a, dtype)
    if dtypes.is_bool(a.dtype):
        a = lax.convert_element_type(a, dtypes.default_int_dtype())
    return p.bind(a, axis=axis, reverse=False)


def cumsum(a, axis=None, dtype=None, out=None):
    """Cumulative sum along ``axis`` (flattened if None)."""
    return _cumulative(rd.cumsum_p, "cumsum", a, axis, dtype, True)


def cumprod(a, axis=None, dtype=None, out=None):
    """Cumulative product along ``axis`` (flattened if None)."""
    return _cumulative(rd.cumprod_p, "cumprod", a, axis, dtype, True)


cumulative_sum = cumsum
cumulative_prod = cumprod


def count_nonzero(a, axis=None, keepdims=False):
    """How many elements are nonzero along ``axis``."""
    return sum(ufuncs._to_bool(a), axis=axis, keepdims=keepdims)


def ptp(a, axis=None, keepdims=False):
    """Range (max - min) along ``axis``."""
    return ufuncs.subtract(max(a, axis, keepdims=keepdims), min(a, axis, keepdims=keepdims))


def _nan_version(reduce, fill):
    def fn(a, axis=None, keepdims=False, **kw):
        a = _operand(a, reduce.__name__)
        return reduce(ufuncs.where(ufuncs.isnan(a), fill, a), axis=axis, keepdims=keepdims, **kw)
    fn.__name__ = "nan" + reduce.__name__
    fn.__doc__ = f"``{reduce.__name__}`` ignoring NaN."
    return fn


nansum = _nan_version(sum, 0)
nanprod = _nan_version(prod, 1)
nanmax = _nan_version(max, -np.inf)
nanmin = _nan_version(min, np.inf)


def nanmean(a, axis=None, keepdims=False):
    """Mean ignoring NaN."""
    a = _operand(a, "nanmean")
    ok = ufuncs.logical_not(ufuncs.isnan(a))
    return mean(a, axis=axis, keepdims=keepdims, where=ok)


def average(a, axis=None, weights=None, returned=False, keepdims=False):
    """Weighted mean along ``axis``; with ``returned=True`` also the sum of weights."""
    a = _operand(a, "average")
    if weights is None:
        avg = mean(a, axis=axis, keepdims=keepdims)
        count = _count(a.shape, normalize_axes(axis, a.ndim, "average"))
        return (avg, lax.full_like(avg, count)) if returned else avg
    w = _operand(weights, "average")
    if w.ndim != a.ndim:   # 1-D weights along ``axis``
        ax = normalize_axis(axis, a.ndim, "average")
        shape = [1] * a.ndim
        shape[ax] = a.shape[ax]
        w = lax.reshape(w, shape)
    # Broadcast the weights to a's shape before summing them.
    w_full = ufuncs.add(ufuncs.multiply(a, 0), w)
    total_w = sum(w_full, axis=axis, keepdims=keepdims)
    avg = ufuncs.true_divide(sum(ufuncs.multiply(a, w_full), axis=axis, keepdims=keepdims), total_w)
    return (avg, total_w) if returned else avg
