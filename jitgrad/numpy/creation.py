"""Array creation: array, asarray, zeros, ones, full, *_like, arange, linspace, eye, tri.

Inside ``jit`` these become ``iota`` and ``broadcast_in_dim`` equations rather than large
constants, so the fusion pass can compute them inside the kernels that use them.
"""
from __future__ import annotations

import builtins
import operator
from typing import Any

import numpy as np

from .. import lax
from ..core import dtypes
from ..core.array import Array, ArrayImpl
from ..core.errors import ConcretizationTypeError, InvalidArgumentError
from ..core.trace import Tracer, get_aval
from ._util import _PY_SCALARS, _STATE, as_array
from .scalar_types import canonical_dtype_arg

ArrayLike = Any


def _dtype_or_default(dtype) -> np.dtype:
    # (``dtype or default`` would be wrong: np.dtype objects have len() 0, so are falsy.)
    return dtypes.default_float_dtype() if dtype is None else canonical_dtype_arg(dtype)


def _filled(shape: tuple[int, ...], value, dt: np.dtype, weak: bool = False) -> Array:
    """``shape`` filled with the scalar ``value`` of dtype ``dt`` (a broadcast, not a constant)."""
    scalar = np.asarray(value, dt)
    if _STATE.trace is None:
        # Eagerly: a read-only broadcast view, keeping the weak flag (which the eager
        # evaluator would drop for a broadcast_in_dim).
        return ArrayImpl(np.broadcast_to(scalar, shape), weak)
    return lax.broadcast_in_dim(ArrayImpl(scalar, weak), shape, ())


def _placed(out: Array, device) -> Array:
    """``out`` on ``device`` (JAX's ``device=`` argument); None keeps it where it is."""
    if device is None:
        return out
    from ..placement import device_put
    return device_put(out, device)


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
    if isinstance(obj, Tracer):
        return True
    if isinstance(obj, (list, tuple)):
        return builtins.any(_has_traced(o) for o in obj)
    return False


def array(object: Any, dtype=None, copy: bool = True, order: str | None = "K",
          ndmin: int = 0, *, device=None) -> Array:
    """Create an array from data (arrays, numpy arrays, scalars, nested lists of them).

    A Python scalar gives a weakly typed array (as in JAX); 64-bit data is stored as 32-bit
    unless x64 is enabled. ``copy`` has no visible effect (arrays are immutable) and only
    ``order='K'``/``'C'``/``None`` are accepted.
    """
    if order not in (None, "K", "C", "A"):
        raise NotImplementedError(f"jnp.array: only order='K' is implemented, got {order!r}")
    if dtype is not None:
        dtype = canonical_dtype_arg(dtype)
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
        with np.errstate(all="ignore"):   # numpy's cast of NaN/inf to ints, without warnings
            value = np.array(object, dtype=dt, copy=True)
        out = ArrayImpl(value, weak)
    if ndmin and out.ndim < ndmin:
        out = lax.reshape(out, (1,) * (ndmin - out.ndim) + out.shape)
    return _placed(out, device)


def _concrete_list(obj):
    if isinstance(obj, (list, tuple)):
        return [_concrete_list(o) for o in obj]
    if isinstance(obj, ArrayImpl):
        return obj._value
    return obj


def asarray(a: Any, dtype=None, order: str | None = None, *, copy: bool | None = None,
            device=None) -> Array:
    """Like ``array`` but returns a jitgrad array that already has ``dtype`` unchanged.

    ``device`` (as in JAX) places the result, e.g. on a GPU (``jitgrad.devices()``).
    """
    if isinstance(a, Array) and (dtype is None or canonical_dtype_arg(dtype) == a.dtype):
        return _placed(a, device)
    return array(a, dtype=dtype, copy=False, order=order, device=device)


def copy(a: ArrayLike, order: str | None = None) -> Array:
    """A copy of ``a`` (the same values; jitgrad arrays are immutable)."""
    return array(a, copy=True, order=order)


def zeros(shape, dtype=None, *, device=None) -> Array:
    """An array of zeros (default dtype float32, float64 with x64)."""
    return _placed(_filled(_shape_tuple(shape), 0, _dtype_or_default(dtype)), device)


def ones(shape, dtype=None, *, device=None) -> Array:
    """An array of ones (default dtype float32, float64 with x64)."""
    return _placed(_filled(_shape_tuple(shape), 1, _dtype_or_default(dtype)), device)


def empty(shape, dtype=None, *, device=None) -> Array:
    """Zeros: jitgrad arrays are immutable, so an uninitialised array has no use."""
    return zeros(shape, dtype, device=device)


def full(shape, fill_value, dtype=None, *, device=None) -> Array:
    """An array filled with ``fill_value`` (which may be an array broadcast to ``shape``)."""
    if device is not None:
        return _placed(full(shape, fill_value, dtype), device)
    shape = _shape_tuple(shape)
    if dtype is not None:
        dtype = canonical_dtype_arg(dtype)
    if isinstance(fill_value, (Array, np.ndarray, list, tuple)) and np.ndim(fill_value) > 0:
        from .shapes import broadcast_to
        value = asarray(fill_value, dtype)
        return broadcast_to(value, shape)
    if isinstance(fill_value, Array):
        value = fill_value if dtype is None else lax.convert_element_type(fill_value, dtype)
        from .shapes import broadcast_to
        return broadcast_to(value, shape)
    weak = dtype is None and dtypes.is_weakly_typed(fill_value)
    dt = dtypes.dtype(fill_value) if dtype is None else dtype
    return _filled(shape, fill_value, dt, weak)


def _like(a, dtype, shape):
    """(shape, dtype, weak) of a *_like result: ``a``'s unless given (weak only if inherited)."""
    aval = get_aval(as_array(a, "zeros_like") if isinstance(a, (list, tuple)) else a)
    return (aval.shape if shape is None else _shape_tuple(shape),
            aval.dtype if dtype is None else canonical_dtype_arg(dtype),
            dtype is None and aval.weak_type)


def zeros_like(a, dtype=None, shape=None, *, device=None) -> Array:
    """Zeros with the shape and dtype (and weak type) of ``a``."""
    return _placed(_filled_like(a, dtype, shape, 0), device)


def _filled_like(a, dtype, shape, value) -> Array:
    shape, dt, weak = _like(a, dtype, shape)
    return _filled(shape, value, dt, weak)


def ones_like(a, dtype=None, shape=None, *, device=None) -> Array:
    """Ones with the shape and dtype (and weak type) of ``a``."""
    return _placed(_filled_like(a, dtype, shape, 1), device)


def empty_like(a, dtype=None, shape=None, *, device=None) -> Array:
    """Zeros with the shape and dtype of ``a``."""
    return zeros_like(a, dtype, shape, device=device)


def full_like(a, fill_value, dtype=None, shape=None, *, device=None) -> Array:
    """``fill_value`` with the shape and dtype of ``a`` (unless ``dtype``/``shape`` are given)."""
    if device is not None:
        return _placed(full_like(a, fill_value, dtype, shape), device)
    shape, dt, weak = _like(a, dtype, shape)
    if isinstance(fill_value, (Array, np.ndarray, list, tuple)) and np.ndim(fill_value) > 0:
        return full(shape, fill_value, dt)
    if isinstance(fill_value, Array):
        from .shapes import broadcast_to
        return broadcast_to(lax.convert_element_type(fill_value, dt), shape)
    return _filled(shape, fill_value, dt, weak)


def _static_number(x, name: str):
    if isinstance(x, Tracer):
        raise InvalidArgumentError(
            f"{name}: its arguments must be concrete numbers, got a traced value",
            hint="Sizes are static: pass them via static_argnums, or use lax.iota arithmetic.")
    return x.item() if isinstance(x, (Array, np.ndarray, np.generic)) else x


def arange(start, stop=None, step=None, dtype=None, *, device=None) -> Array:
    """Evenly spaced values ``start + i * step`` in [start, stop) (bounds must be static).

    The dtype is inferred from the bounds as in JAX (Python ints give the default int,
    floats the default float); the result is not weakly typed.
    """
    if device is not None:
        return _placed(arange(start, stop, step, dtype), device)
    start = _static_number(start, "arange")
    stop = _static_number(stop, "arange")
    step = _static_number(step, "arange")
    if stop is None:
        start, stop = 0, start
    step = 1 if step is None else step
    if dtype is None:
        dtype = dtypes.result_type(*[v for v in (start, stop, step)])
    dtype = canonical_dtype_arg(dtype)
    if step == 0:
        raise ZeroDivisionError("arange: step must not be zero")
    n = builtins.max(0, int(np.ceil((stop - start) / step)))
    out = lax.iota(dtype, n)
    if step != 1:
        out = lax.mul(out, np.asarray(step, dtype))
    if start != 0:
        out = lax.add(out, np.asarray(start, dtype))
    return out


def linspace(start, stop, num: int = 50, endpoint: bool = True, retstep: bool = False,
             dtype=None, axis: int = 0, *, device=None):
    """``num`` evenly spaced values from start to stop (inclusive unless endpoint=False)."""
    if device is not None:
        return _placed(linspace(start, stop, num, endpoint, retstep, dtype, axis), device)
    from . import ufuncs
    from .shapes import moveaxis
    num = int(num)
    dt = _dtype_or_default(dtype)
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
    if not dtypes.is_float(dt):
        out = ufuncs.floor(out)    # integer linspace rounds down, as in numpy and JAX
    out = lax.convert_element_type(out, dt)
    return (out, lax.convert_element_type(step, dt)) if retstep else out


def eye(N: int, M: int | None = None, k: int = 0, dtype=None, *, device=None) -> Array:
    """A 2-D array with ones on the k-th diagonal (k > 0: above the main diagonal)."""
    M = N if M is None else M
    N, M, k = operator.index(N), operator.index(M), operator.index(k)
    dt = _dtype_or_default(dtype)
    rows = lax.broadcasted_iota(np.int32, (N, M), 0)
    cols = lax.broadcasted_iota(np.int32, (N, M), 1)
    return _placed(lax.convert_element_type(lax.eq(lax.add(rows, np.int32(k)), cols), dt), device)


def identity(n: int, dtype=None) -> Array:
    """The n x n identity matrix."""
    return eye(n, dtype=dtype)


def tri(N: int, M: int | None = None, k: int = 0, dtype=None) -> Array:
    """Ones at and below the k-th diagonal."""
    M = N if M is None else M
    N, M, k = operator.index(N), operator.index(M), operator.index(k)
    dt = _dtype_or_default(dtype)
    rows = lax.broadcasted_iota(np.int32, (N, M), 0)
    cols = lax.broadcasted_iota(np.int32, (N, M), 1)
    return lax.convert_element_type(lax.ge(lax.add(rows, np.int32(k)), cols), dt)


def tril(m, k: int = 0) -> Array:
    """Lower triangle of the last two axes (zeros above the k-th diagonal)."""
    from .ufuncs import where
    m = as_array(m, "tril")
    if m.ndim < 2:
        raise ValueError(f"tril: argument must be at least 2-dimensional, got shape {m.shape}")
    mask = tri(m.shape[-2], m.shape[-1], k, dtype=np.bool_)
    return where(mask, m, zeros_like(m))


def triu(m, k: int = 0) -> Array:
    """Upper triangle of the last two axes (zeros below the k-th diagonal)."""
    from .ufuncs import where
    m = as_array(m, "triu")
    if m.ndim < 2:
        raise ValueError(f"triu: argument must be at least 2-dimensional, got shape {m.shape}")
    mask = tri(m.shape[-2], m.shape[-1], k - 1, dtype=np.bool_)
    return where(mask, zeros_like(m), m)


def meshgrid(*xi: ArrayLike, copy: bool = True, sparse: bool = False,
             indexing: str = "xy") -> list[Array]:
    """Coordinate matrices from coordinate vectors (numpy semantics; ``copy`` has no effect)."""
    from .shapes import broadcast_to
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
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
