"""Shared machinery of ``jitgrad.numpy``: operand conversion, promotion, broadcasting, axes.

numpy semantics (implicit promotion and broadcasting, negative axes) are built here on
top of the strict lax primitives. Eagerly, explicit broadcasts are skipped: the numpy
implementations broadcast by themselves and give the same result, one op cheaper.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..core import dtypes, trace_state
from ..core.array import Array, ArrayImpl
from ..core.errors import InvalidArgumentError, ShapeError
from ..core.trace import get_aval
from .. import lax
from ..ops import elementwise as ew

_PY_SCALARS = (int, float, bool)


def asarray_operand(x: Any, name: str = "jitgrad.numpy") -> Any:
    """Accept arrays, tracers, numpy values, Python scalars and (nested) lists."""
    if isinstance(x, (Array, _PY_SCALARS)):
        return x
    if isinstance(x, (np.ndarray, np.generic)):
        dt = dtypes.canonicalize_dtype(x.dtype)
        return x if x.dtype == dt else np.asarray(x, dt)
    if isinstance(x, (list, tuple)):
        from .creation import array
        return array(x)
    if hasattr(x, "__jax_array__"):
        return asarray_operand(x.__jax_array__(), name)
    raise InvalidArgumentError(
        f"{name}: expected an array or a number, got {type(x).__name__}",
        hint="Pass jitgrad/numpy arrays or Python numbers.")


def promote_dtypes(*args: Any) -> list[Any]:
    """Convert operands to their common dtype (JAX's lattice, with weak Python scalars)."""
    if len(args) == 1 and not isinstance(args[0], _PY_SCALARS):
        return [args[0]]
    dt, weak = dtypes.result_type(*args, return_weak_type_flag=True)
    return [_to_dtype(a, dt, weak) for a in args]


def promote_dtypes_inexact(*args: Any) -> list[Any]:
    """Like ``promote_dtypes``, but integers and bools become the default float dtype."""
    dt, weak = dtypes.result_type(*args, return_weak_type_flag=True)
    if not dtypes.is_float(dt):
        dt = dtypes.default_float_dtype()
    return [_to_dtype(a, dt, weak) for a in args]


def promote_dtypes_numeric(*args: Any) -> list[Any]:
    """Like ``promote_dtypes``, but bools become the default int dtype."""
    dt, weak = dtypes.result_type(*args, return_weak_type_flag=True)
    if dtypes.is_bool(dt):
        dt = dtypes.default_int_dtype()
    return [_to_dtype(a, dt, weak) for a in args]


def _to_dtype(a: Any, dt: np.dtype, weak: bool) -> Any:
    if isinstance(a, _PY_SCALARS):
        return ArrayImpl(np.asarray(a, dt), weak)
    if isinstance(a, Array):
        if a.dtype == dt and a.weak_type == weak:
            return a
        if a.dtype == dt and not weak:
            return a
        return ew.convert_element_type_p.bind(a, new_dtype=dt, weak_type=weak)
    return a if a.dtype == dt else np.asarray(a, dt)


def broadcast_shapes(name: str, *shapes: Sequence[int]) -> tuple[int, ...]:
    """numpy's broadcasting of shapes, with an error that names the operation."""
    if len(shapes) == 2 and shapes[0] == shapes[1]:
        return tuple(shapes[0])
    nd = max((len(s) for s in shapes), default=0)
    out = [1] * nd
    for s in shapes:
        for i, d in enumerate(s):
            j = nd - len(s) + i
            if out[j] == 1:
                out[j] = d
            elif d != 1 and d != out[j]:
                shown = " and ".join(str(tuple(x)) for x in shapes)
                raise ShapeError(
                    f"{name}: shapes {shown} cannot be broadcast together",
                    hint="Dimensions must be equal or 1 when aligned from the right; reshape "
                         "or add an axis with x[:, None].")
    return tuple(out)


def broadcast_to_shape(x: Any, shape: tuple[int, ...]) -> Any:
    """Explicitly broadcast ``x`` to ``shape`` (numpy rules: align from the right)."""
    aval = get_aval(x)
    if aval.shape == shape:
        return x
    nd = len(shape)
    return lax.broadcast_in_dim(x, shape, tuple(range(nd - aval.ndim, nd)))


def broadcast_operands(name: str, *args: Any) -> list[Any]:
    """Make operands' shapes agree for an elementwise primitive (rank-0 operands may stay)."""
    shapes = [np.shape(a) if isinstance(a, _PY_SCALARS) else a.shape for a in args]
    shape = broadcast_shapes(name, *shapes)
    if trace_state.is_eager():
        return list(args)   # numpy's own broadcasting gives the same result
    return [a if (s == shape or s == ()) else broadcast_to_shape(a, shape)
            for a, s in zip(args, shapes)]


def elementwise_args(name: str, *args: Any, promote=promote_dtypes) -> list[Any]:
    """Convert, promote and broadcast the operands of an elementwise jnp function."""
    args = [asarray_operand(a, name) for a in args]
    return broadcast_operands(name, *promote(*args))


def normalize_axis(axis: int, ndim: int, name: str) -> int:
    """A non-negative axis, or a ShapeError naming the function."""
    axis = int(axis)
    if not -ndim <= axis < max(ndim, 1) or (ndim == 0 and axis not in (0, -1)):
        raise ShapeError(f"{name}: axis {axis} is out of bounds for an array of rank {ndim}")
    return axis % ndim if ndim else 0


def normalize_axes(axis, ndim: int, name: str) -> tuple[int, ...]:
    """``None`` -> all axes; an int or a sequence -> sorted non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    axes = tuple(sorted(normalize_axis(a, ndim, name) for a in axis))
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{name}: repeated axis in {axis}")
    return axes


def check_unknown_kwargs(name: str, kwargs: dict) -> None:
    """Refuse keywords we do not implement instead of silently ignoring them."""
    if kwargs:
        raise InvalidArgumentError(
            f"{name}() got unsupported keyword argument(s): {', '.join(sorted(kwargs))}",
            hint="jitgrad implements the JAX signature of this function; see its docstring.")
