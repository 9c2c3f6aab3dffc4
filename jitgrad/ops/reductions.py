"""Reductions over axes (sum, max, argmax, ...) and cumulative scans along one axis."""
from __future__ import annotations

import numpy as np

from ..core import dtypes
from ..core.abstract import ShapedArray
from ..core.errors import DTypeError, ShapeError
from ..core.primitive import OPAQUE, REDUCTION, Primitive


def check_axes(name: str, aval: ShapedArray, axes) -> tuple[int, ...]:
    """Axes must be a tuple of distinct, in-range, non-negative ints."""
    axes = tuple(axes)
    for a in axes:
        if not isinstance(a, (int, np.integer)) or not 0 <= a < aval.ndim:
            raise ShapeError(f"{name}: axis {a} is out of range for {aval.str_short()}",
                             hint=f"Use axes between 0 and {aval.ndim - 1} (negative axes are "
                                  "normalised by jitgrad.numpy).")
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{name}: repeated axis in {axes} for {aval.str_short()}")
    return axes


def reduced_shape(shape, axes) -> tuple[int, ...]:
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _identity(name: str, dtype: np.dtype):
    """The value a reduction of an empty axis returns."""
    if name == "reduce_max":
        if dtype.kind == "f":
            return -np.inf
        return False if dtype.kind == "b" else np.iinfo(dtype).min
    if name == "reduce_min":
        if dtype.kind == "f":
            return np.inf
        return True if dtype.kind == "b" else np.iinfo(dtype).max
    return None


def _reduction(name: str, ufunc, category) -> Primitive:
    p = Primitive(name, REDUCTION)

    def impl(x, axes):
        x = np.asarray(x)
        ident = _identity(name, x.dtype)
        if ident is None:
            out = ufunc.reduce(x, axis=tuple(axes), dtype=x.dtype)
        else:
            out = ufunc.reduce(x, axis=tuple(axes), initial=ident)
        return np.asarray(out, dtype=x.dtype)

    def rule(x, axes):
        axes = check_axes(name, x, axes)
        if not category(x.dtype):
            raise DTypeError(f"{name} does not accept {x.str_short()}")
        return ShapedArray(reduced_shape(x.shape, axes), x.dtype, x.weak_type)

    p.impl, p.abstract_eval = impl, rule
    return p


_numeric = lambda d: dtypes.is_int(d) or dtypes.is_float(d)
_any = lambda d: True
_int_or_bool = lambda d: dtypes.is_int(d) or dtypes.is_bool(d)

reduce_sum_p = _reduction("reduce_sum", np.add, _numeric)
reduce_prod_p = _reduction("reduce_prod", np.multiply, _numeric)
reduce_max_p = _reduction("reduce_max", np.maximum, _any)
reduce_min_p = _reduction("reduce_min", np.minimum, _any)
reduce_and_p = _reduction("reduce_and", np.bitwise_and, _int_or_bool)
reduce_or_p = _reduction("reduce_or", np.bitwise_or, _int_or_bool)
reduce_xor_p = _reduction("reduce_xor", np.bitwise_xor, _int_or_bool)


def _argreduce(name: str, np_fn) -> Primitive:
    p = Primitive(name, REDUCTION)

    def impl(x, axes, index_dtype):
        (axis,) = axes
        return np.asarray(np_fn(x, axis=axis), dtype=index_dtype)

    def rule(x, axes, index_dtype):
        axes = check_axes(name, x, axes)
        if len(axes) != 1:
            raise ShapeError(f"{name} reduces exactly one axis, got axes={axes}")
        if x.shape[axes[0]] == 0:
            raise ShapeError(f"{name}: cannot reduce an empty axis of {x.str_short()}",
                             hint="The result of argmax/argmin over zero elements is undefined.")
        return ShapedArray(reduced_shape(x.shape, axes), np.dtype(index_dtype), False)

    p.impl, p.abstract_eval = impl, rule
    return p


argmax_p = _argreduce("argmax", np.argmax)
argmin_p = _argreduce("argmin", np.argmin)


def _cumulative(name: str, accumulate) -> Primitive:
    """Inclusive scan along one axis, optionally from the end (``reverse=True``)."""
    p = Primitive(name, OPAQUE)

    def impl(x, axis, reverse=False):
        x = np.asarray(x)
        if reverse:
            x = np.flip(x, axis)
        with np.errstate(all="ignore"):
            out = accumulate(x, axis=axis, dtype=x.dtype) if name != "cumlogsumexp" else \
                accumulate(x, axis=axis)
        out = np.asarray(out, dtype=x.dtype)
        return np.flip(out, axis).copy() if reverse else out

    def rule(x, axis, reverse=False):
        check_axes(name, x, (axis,))
        if dtypes.is_bool(x.dtype):
            raise DTypeError(f"{name} does not accept {x.str_short()}")
        if name == "cumlogsumexp" and not dtypes.is_float(x.dtype):
            raise DTypeError(f"cumlogsumexp needs floating-point input, got {x.str_short()}")
        return x

    p.impl, p.abstract_eval = impl, rule
    return p


cumsum_p = _cumulative("cumsum", np.add.accumulate)
cumprod_p = _cumulative("cumprod", np.multiply.accumulate)
cummax_p = _cumulative("cummax", np.maximum.accumulate)
cummin_p = _cumulative("cummin", np.minimum.accumulate)
cumlogsumexp_p = _cumulative("cumlogsumexp", np.logaddexp.accumulate)
