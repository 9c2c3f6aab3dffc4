"""Shared machinery of ``jitgrad.numpy``: operand conversion, promotion, broadcasting, axes,
and the eager fast paths.

numpy semantics (implicit promotion and broadcasting, negative axes) are built here on
top of the strict lax primitives. Eagerly, explicit broadcasts are skipped: the numpy
implementations broadcast by themselves and give the same result, one op cheaper.

Eager fast paths
----------------
Outside any trace, the common case -- jitgrad arrays of one strong dtype, or a strong
array and a Python scalar of the same kind -- skips promotion, broadcasting and
``bind`` and calls the primitive's numpy implementation directly (``fast_binary``,
``fast_unary``); anything else (weak operands, mixed dtypes, shape errors, tracers)
takes the general path, which is also what runs under ``jit``. Floating-point warnings
are silenced as in JAX (which returns inf/NaN silently) by setting numpy's error-state
context variable directly (``np.errstate`` costs ~3 us per use; this ~0.3 us).

Measured with ``timeit`` (best of 7 x 20000 calls, per-thread CPU time so that other load
on the shared 2-core machine does not count; CPython 3.11, numpy 2.4, x86-64), per call,
float32 operands, jitgrad eager vs numpy on the same data:

    ===========  =========  ========  ==============  =============  ==============
    op           shape      numpy us  jnp before us   jnp after us   overhead after
    ===========  =========  ========  ==============  =============  ==============
    x + y        (16,)         0.9         17.5            4.6            3.7
    x * 2.0      (16,)         1.9         31.3            5.7            3.8
    jnp.exp(x)   (16,)         1.1         16.5            4.2            3.1
    jnp.sum(x)   (16,)         5.8         21.2            7.8            2.1
    x @ w        (16,)@16x16   2.1        137.8            5.8            3.7
    x + y        (32, 32)      1.4         18.6            5.1            3.7
    x * 2.0      (32, 32)      2.4         33.0            6.6            4.1
    jnp.exp(x)   (32, 32)      5.1         21.5            8.4            3.3
    jnp.sum(x)   (32, 32)      6.4         23.0            8.9            2.4
    x @ w        32x32@32x32  10.3        112.0           14.6            4.2
    ===========  =========  ========  ==============  =============  ==============

("numpy" is ``xn + yn``, ``xn * 2.0``, ``np.exp(xn)``, ``np.sum(xn)``, ``xn @ wn`` on the
underlying numpy arrays; "before" is this package before the fast paths.) Where the
remaining ~3.5 us of ``x + y`` goes: the error-state switch ~0.8 us, marking the result
read-only (``setflags``) ~0.8 us, ``ArrayImpl.__init__`` ~1.0 us (it reads
``flags.writeable``, which builds a flags object), and the dispatch and dtype checks
(two Python calls) ~0.9 us.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..core import dtypes, trace_state
from ..core.array import Array, ArrayImpl
from ..core.errors import InvalidArgumentError, ShapeError
from ..core.trace import get_aval
from .. import lax
from ..ops import elementwise as ew

_PY_SCALARS = (int, float, bool)

# The thread-local trace state: ``_STATE.trace is None`` means eager (what
# trace_state.is_eager() returns, without the function call).
_STATE = trace_state._state


# ---------------------------------------------------------------- quiet numpy calls

class _ErrstateVar:
    """Stand-in for numpy's error-state context variable on numpys without one."""

    def set(self, _):
        state = np.errstate(all="ignore")
        state.__enter__()
        return state

    def reset(self, state):
        state.__exit__(None, None, None)


try:  # numpy >= 2: the error state is a context variable; set it directly (~0.3 us).
    from numpy._core._ufunc_config import _extobj_contextvar as _ERR_VAR
    from numpy._core.umath import _make_extobj
    _ERR_IGNORE = _make_extobj(all="ignore")
except (ImportError, AttributeError, TypeError):  # pragma: no cover - older numpy
    _ERR_VAR, _ERR_IGNORE = _ErrstateVar(), None


def quiet_call(fn: Callable, *args):
    """``fn(*args)`` with numpy's floating-point warnings off (JAX returns inf/NaN silently)."""
    token = _ERR_VAR.set(_ERR_IGNORE)
    try:
        return fn(*args)
    finally:
        _ERR_VAR.reset(token)


# ---------------------------------------------------------------- eager fast paths

def wrap_result(out: Any, weak: bool = False) -> ArrayImpl:
    """A fresh numpy result as a read-only ``ArrayImpl``.

    ``setflags(write=False)`` before the constructor: ``ArrayImpl.__init__`` then only reads
    the flag, and ``setflags`` (~0.8 us on a fresh 16-float result) is about half the cost
    of the ``flags.writeable = False`` the constructor would do.
    """
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    out.setflags(write=False)
    return ArrayImpl(out, weak)


_ufunc = np.ufunc
_NEP50 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"

# dtype kinds for which an op's result dtype equals its operands' dtype without any
# promotion (and the primitive accepts them). Used to pick the fast path only.
KINDS_ANY = frozenset("biuf")
KINDS_NUMERIC = frozenset("iuf")
KINDS_FLOAT = frozenset("f")
KINDS_INT_OR_BOOL = frozenset("biu")
KINDS_INT = frozenset("iu")


def fast_binary(impl: Callable, kinds: frozenset, x: Any, y: Any):
    """Eagerly run ``impl(x, y)`` for the common case, or return None for the general path.

    The common case: no trace is active and ``x``/``y`` are strong jitgrad arrays of one
    dtype, or one of them is a Python scalar whose kind (float/int) fits the array's
    dtype so that weak-type promotion keeps that dtype.
    """
    if _STATE.trace is not None:
        return None
    tx, ty = type(x), type(y)
    scalar = 0          # which operand is a Python scalar to convert to the array's dtype
    if tx is ArrayImpl:
        if x._weak_type:
            return None
        xv = x._value
        dt = xv.dtype
        if ty is ArrayImpl:
            if y._weak_type:
                return None
            yv = y._value
            if yv.dtype is not dt:
                return None
        elif (ty is float and dt.kind == "f") or (ty is int and dt.kind in "iuf"):
            yv, scalar = y, 2
        else:
            return None
    elif tx is float or tx is int:
        if ty is not ArrayImpl or y._weak_type:
            return None
        yv = y._value
        dt = yv.dtype
        if dt.kind != "f" and (tx is float or dt.kind not in "iu"):
            return None
        xv, scalar = x, 1
    else:
        return None
    if dt.kind not in kinds:
        return None
    token = _ERR_VAR.set(_ERR_IGNORE)
    try:
        # Under NEP 50 (numpy >= 2) a ufunc treats a Python scalar as weakly typed, exactly
        # JAX's rule; otherwise convert it (~1 us). An int out of the dtype's range raises
        # OverflowError either way, as in JAX.
        if scalar and not (_NEP50 and type(impl) is _ufunc):
            if scalar == 2:
                yv = dt.type(yv)
            else:
                xv = dt.type(xv)
        out = impl(xv, yv)
    except ValueError:      # e.g. shapes that do not broadcast: the general path explains
        return None
    finally:
        _ERR_VAR.reset(token)
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    out.setflags(write=False)
    return ArrayImpl(out, False)


def fast_unary(impl: Callable, kinds: frozenset, x: Any):
    """Eagerly run ``impl(x)`` on a jitgrad array whose dtype needs no promotion, or None."""
    if _STATE.trace is not None or type(x) is not ArrayImpl:
        return None
    xv = x._value
    if xv.dtype.kind not in kinds:
        return None
    token = _ERR_VAR.set(_ERR_IGNORE)
    try:
        out = impl(xv)
    finally:
        _ERR_VAR.reset(token)
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    out.setflags(write=False)
    return ArrayImpl(out, x._weak_type)


# ---------------------------------------------------------------- operands and promotion

def asarray_operand(x: Any, name: str = "jitgrad.numpy") -> Any:
    """Accept arrays, tracers, numpy values, Python scalars and (nested) lists.

    Unlike JAX, lists and tuples are accepted (converted with ``jnp.array``) wherever an
    array is; this only accepts more programs, it changes no result.
    """
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


def as_array(x: Any, name: str = "jitgrad.numpy") -> Array:
    """Like ``asarray_operand`` but always a jitgrad ``Array`` (or tracer)."""
    x = asarray_operand(x, name)
    if isinstance(x, Array):
        return x
    from .creation import asarray
    return asarray(x)


def dtype_of(x: Any) -> np.dtype:
    """The (canonical) dtype of an operand: array, tracer, numpy value or Python scalar."""
    if isinstance(x, Array):
        return x.dtype
    return dtypes.dtype(x)


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
        if a.dtype == dt and (a.weak_type == weak or not weak):
            return a
        if weak and type(a) is ArrayImpl and _STATE.trace is None:
            # Eagerly, the evaluator would drop the requested weak flag (it derives weakness
            # from the operands only), so that f32[] results of `i32_array + 2.5` would be
            # strong eagerly but weak under jit. Run the conversion here and keep the flag.
            out = ew.convert_element_type_p.impl(a._value, new_dtype=dt, weak_type=True)
            return ArrayImpl(np.asarray(out), True)
        return ew.convert_element_type_p.bind(a, new_dtype=dt, weak_type=weak)
    return a if a.dtype == dt else np.asarray(a, dt)


# ---------------------------------------------------------------- broadcasting

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
    if _STATE.trace is None:
        return list(args)   # numpy's own broadcasting gives the same result
    return [a if (s == shape or s == ()) else broadcast_to_shape(a, shape)
            for a, s in zip(args, shapes)]


def elementwise_args(name: str, *args: Any, promote=promote_dtypes) -> list[Any]:
    """Convert, promote and broadcast the operands of an elementwise jnp function."""
    args = [asarray_operand(a, name) for a in args]
    return broadcast_operands(name, *promote(*args))


# ---------------------------------------------------------------- axes and arguments

def normalize_axis(axis: int, ndim: int, name: str) -> int:
    """A non-negative axis, or a ShapeError naming the function."""
    try:
        axis = int(axis)
    except TypeError:
        raise InvalidArgumentError(f"{name}: axis must be an integer, got {axis!r}") from None
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


def check_no_out(name: str, out: Any) -> None:
    """JAX arrays are immutable, so ``out=`` (numpy's output buffer) is refused, as in JAX."""
    if out is not None:
        raise NotImplementedError(
            f"The 'out' argument to jnp.{name} is not supported: jitgrad arrays are immutable; "
            "use the returned value instead.")
