"""Array creation: array, asarray, zeros, ones, full, *_like, arange, linspace, eye, tri.

Inside ``jit`` these become ``iota`` and ``broadcast_in_dim`` equations rather than large
constants, so the fusion pass can compute them inside the kernels that use them.
"""
from __future__ import annotations

import builtins
import operator
from typing import Any, Sequence

import numpy as np

from .. import lax
from ..core import dtypes
from ..core.array import Array, ArrayImpl
from ..core.errors import ConcretizationTypeError, InvalidArgumentError
from ..core.trace import get_aval
from ._util import _PY_SCALARS


def _shape_tuple(shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    try:
        return tuple(operator.index(d) for d in shape)
    except ConcretizationTypeError:
        raise
    except TypeError:
        raise InvalidArgumentError(
            f"shape must be a tuple of Python ints, got {shape!r}",
            hint="Shapes are static in jitgrad; if the shape comes from a traced value, "
                 "pass it through static_argnums.") from None


def _has_traced(obj) -> bool:
    if isinstance(obj, Array) and not isinstance(obj, ArrayImpl):
        return True
    if isinstance(obj, (list, tuple)):
        return builtins.any(_has_traced(o) for o in obj)
    return False


def array(object: Any, dtype=None, copy: bool = True, order=None, ndmin: int = 0) -> Array:
    """Create an array from data (arrays, numpy arrays, scalars, nested lists of them)."""
    if isinstance(object, Array):
        out = object if dtype is None else lax.convert_element_type(object, dtype)
        if copy and isinstance(out, ArrayImpl) and out is object:
            out = ArrayImpl(out._value, out._weak_type)   # immutable: sharing the buffer is safe
    elif isinstance(object, (list, tuple)) and _has_traced(object):
        from .shapes import stack
        out = stack([array(o) for o in object])
        if dtype is not None:
            out = lax.convert_element_type(out, dtype)
    else:
        if isinstance(object, (list, tuple)):
            object = _concrete_list(object)
        weak = dtype is None and dtypes.is_weakly_typed(object)
        if dtype is None:
            np_value = np.asarray(object)
            dt = dtypes.dtype(object) if isinstance(object, _PY_SCALARS) else \
                dtypes.canonicalize_dtype(np_value.dtype)
        else:
            dt = dtypes.canonicalize_dtype(dtype)
        value = np.array(object, dtype=dt, copy=True)
        out = ArrayImpl(value, weak)
    if ndmin and out.ndim < ndmin:
        out = lax.reshape(out, (1,) * (ndmin - out.ndim) + out.shape)
    return out


def _concrete_list(obj):
    if isinstance(obj, (list, tuple)):
        return [_concrete_list(o) for o in obj]
    if isinstance(obj, ArrayImpl):
        return obj._value
    return obj


def asarray(a: Any, dtype=None, order=None, copy=None) -> Array:
    """Like ``array`` but never copies an existing jitgrad array."""
    if isinstance(a, Array) and (dtype is None or np.dtype(dtype) == a.dtype):
        return a
    return array(a, dtype=dtype, copy=False)


def zeros(shape, dtype=None) -> Array:
    """An array of zeros (default dtype float32, float64 with x64)."""
    return lax.full(_shape_tuple(shape), 0, dtypes.canonicalize_dtype(dtype or dtypes.default_float_dtype()))


def ones(shape, dtype=None) -> Array:
    """An array of ones."""
    return lax.full(_shape_tuple(shape), 1, dtypes.canonicalize_dtype(dtype or dtypes.default_float_dtype()))


def empty(shape, dtype=None) -> Array:
    """Zeros: jitgrad arrays are immutable, so an uninitialised array has no use."""
    return zeros(shape, dtype)


def full(shape, fill_value, dtype=None) -> Array:
    """An array filled with ``fill_value`` (which may be an array broadcast to ``shape``)."""
    shape = _shape_tuple(shape)
    if isinstance(fill_value, (Array, np.ndarray)) and np.ndim(fill_value) > 0:
        from .shapes import broadcast_to
        value = asarray(fill_value, dtype)
        return broadcast_to(value, shape)
    return lax.full(shape, fill_value, dtype)


def _like(a, dtype, shape):
    aval = get_aval(asarray(a) if isinstance(a, (list, tuple)) else a)
    return (aval.shape if shape is None else _shape_tuple(shape),
            aval.dtype if dtype is None else dtypes.canonicalize_dtype(dtype))


def zeros_like(a, dtype=None, shape=None) -> Array:
    """Zeros with the shape and dtype of ``a``."""
    shape, dt = _like(a, dtype, shape)
    return lax.full(shape, 0, dt)


def ones_like(a, dtype=None, shape=None) -> Array:
    """Ones with the shape and dtype of ``a``."""
    shape, dt = _like(a, dtype, shape)
    return lax.full(shape, 1, dt)


def empty_like(a, dtype=None, shape=None) -> Array:
    """Zeros with the shape and dtype of ``a``."""
    return zeros_like(a, dtype, shape)


def full_like(a, fill_value, dtype=None, shape=None) -> Array:
    """``fill_value`` with the shape and dtype of ``a``."""
    shape, dt = _like(a, dtype, shape)
    return full(shape, fill_value, dt)


def _static_number(x, name: str):
    if isinstance(x, Array) and not isinstance(x, ArrayImpl):
        raise InvalidArgumentError(
            f"{name}: its arguments must be concrete numbers, got a traced value",
            hint="Sizes are static: pass them via static_argnums, or use lax.iota arithmetic.")
    return x.item() if isinstance(x, (ArrayImpl, np.ndarray, np.generic)) else x


def arange(start, stop=None, step=None, dtype=None) -> Array:
    """Evenly spaced values in [start, stop) (static bounds)."""
    start = _static_number(start, "arange")
    stop = _static_number(stop, "arange")
    step = _static_number(step, "arange")
    if stop is None:
        start, stop = 0, start
    step = 1 if step is None else step
    if dtype is None:
        dtype = dtypes.result_type(*[v for v in (start, stop, step)])
    dtype = dtypes.canonicalize_dtype(dtype)
    n = builtins.max(0, int(np.ceil((stop - start) / step)))
    out = lax.iota(dtype, n)
    if step != 1:
        out = lax.mul(out, np.asarray(step, dtype))
    if start != 0:
        out = lax.add(out, np.asarray(start, dtype))
    return out


def linspace(start, stop, num: int = 50, endpoint: bool = True, retstep: bool = False,
             dtype=None, axis: int = 0):
    """``num`` evenly spaced values from start to stop (inclusive unless endpoint=False)."""
    from . import ufuncs
    from .shapes import moveaxis
    num = int(num)
    dt = dtypes.canonicalize_dtype(dtype) if dtype is not None else dtypes.default_float_dtype()
    compute = dt if dtypes.is_float(dt) else dtypes.default_float_dtype()
    start = asarray(start, compute)
    stop = asarray(stop, compute)
    bshape = np.broadcast_shapes(start.shape, stop.shape)
    div = (num - 1) if endpoint else num
    steps = lax.convert_element_type(lax.iota(np.int32, num), compute)
    steps = lax.reshape(steps, (num,) + (1,) * len(bshape))
    delta = ufuncs.subtract(stop, start)
    step = ufuncs.divide(delta, div) if div > 0 else ufuncs.multiply(delta, np.nan)
    out = ufuncs.add(start, ufuncs.multiply(steps, step if div > 0 else 0.0))
    if endpoint and num > 1:   # numpy returns ``stop`` exactly as the last value
        last = lax.eq(lax.iota(np.int32, num), np.int32(num - 1))
        out = ufuncs.where(lax.reshape(last, (num,) + (1,) * len(bshape)), stop, out)
    if axis != 0 and out.ndim > 1:
        out = moveaxis(out, 0, axis)
    out = lax.convert_element_type(out, dt)
    return (out, lax.convert_element_type(step, dt)) if retstep else out


def eye(N: int, M: int | None = None, k: int = 0, dtype=None) -> Array:
    """A 2-D array with ones on the k-th diagonal."""
    M = N if M is None else M
    dt = dtypes.canonicalize_dtype(dtype or dtypes.default_float_dtype())
    rows = lax.broadcasted_iota(np.int32, (N, M), 0)
    cols = lax.broadcasted_iota(np.int32, (N, M), 1)
    return lax.convert_element_type(lax.eq(lax.add(rows, np.int32(k)), cols), dt)


def identity(n: int, dtype=None) -> Array:
    """The n x n identity matrix."""
    return eye(n, dtype=dtype)


def tri(N: int, M: int | None = None, k: int = 0, dtype=None) -> Array:
    """Ones at and below the k-th diagonal."""
    M = N if M is None else M
    dt = dtypes.canonicalize_dtype(dtype or dtypes.default_float_dtype())
    rows = lax.broadcasted_iota(np.int32, (N, M), 0)
    cols = lax.broadcasted_iota(np.int32, (N, M), 1)
    return lax.convert_element_type(lax.ge(lax.add(rows, np.int32(k)), cols), dt)


def tril(m, k: int = 0) -> Array:
    """Lower triangle of the last two axes (zeros above the k-th diagonal)."""
    from .ufuncs import where
    m = asarray(m)
    mask = tri(m.shape[-2], m.shape[-1], k, dtype=np.bool_)
    return where(mask, m, zeros_like(m))


def triu(m, k: int = 0) -> Array:
    """Upper triangle of the last two axes (zeros below the k-th diagonal)."""
    from .ufuncs import where
    m = asarray(m)
    mask = tri(m.shape[-2], m.shape[-1], k - 1, dtype=np.bool_)
    return where(mask, zeros_like(m), m)


def meshgrid(*xi, indexing: str = "xy", sparse: bool = False):
    """Coordinate matrices from coordinate vectors (numpy semantics)."""
    from .shapes import broadcast_to
    xs = [asarray(x).reshape(-1) for x in xi]
    nd = len(xs)
    shapes = [x.shape[0] for x in xs]
    if indexing == "xy" and nd >= 2:
        shapes[0], shapes[1] = shapes[1], shapes[0]
    outs = []
    for i, x in enumerate(xs):
        pos = i
        if indexing == "xy" and nd >= 2 and i < 2:
            pos = 1 - i
        s = [1] * nd
        s[pos] = x.shape[0]
        v = lax.reshape(x, s)
        outs.append(v if sparse else broadcast_to(v, tuple(shapes)))
    return outs
