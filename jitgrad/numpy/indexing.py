"""numpy indexing on immutable arrays: ``x[idx]``, ``x.at[idx].set(v)``, take, take_along_axis.

Every index form numpy has, with JAX's semantics where they differ:

* ints, slices with any step, ``None``, ``...`` become static ``slice``/``rev``/``reshape``
  equations. Out-of-bounds integers are clamped, as in JAX (numpy raises).
* integer arrays (and traced integer scalars) are advanced indices: one ``gather``, with
  numpy's placement of the result axes (where the advanced indices are, if they are
  adjacent in the index, otherwise first). Negative indices count from the end;
  indices still out of bounds are clamped (``mode="clip"``, JAX's default for reads) or
  give ``fill_value`` (``x.at[idx].get(mode="fill")``). An index that is only traced
  scalars becomes a ``dynamic_slice`` instead of a gather.
* boolean masks are turned into integer indices when their value is known (eagerly, or a
  constant); a traced mask raises ``NonConcreteBooleanIndexError`` suggesting
  ``jnp.where``, because the result's shape would depend on data. A scalar ``True`` /
  ``False`` adds an axis of length 1 / 0, as in numpy.
* ``x.at[idx]`` supports every index form above for ``get/set/add/subtract/multiply/
  divide/power/min/max/apply``; updates to out-of-bounds positions are dropped (JAX's
  default ``mode``) or clamped (``mode="clip"``); repeated indices all apply.

Unlike JAX, a list is accepted as an index (``x[[0, 2]]``, numpy's meaning) instead of
being an error.
"""
from __future__ import annotations

import operator
from typing import Any, Callable

import numpy as np

from .. import lax
from ..core import dtypes
from ..core.array import Array, ArrayImpl
from ..core.errors import NonConcreteBooleanIndexError, ShapeError
from ..core.trace import Tracer
from ..ops import indexing as ix
from ._util import _STATE, as_array, check_no_out, normalize_axis

ArrayLike = Any

_CLIP_MODES = (None, "clip", "promise_in_bounds")
_FILL_MODES = ("fill", "drop")


def _gather_mode(mode) -> str:
    if mode in _CLIP_MODES:
        return "clip"
    if mode in _FILL_MODES:
        return "fill"
    raise ValueError(f"indexing mode must be one of 'promise_in_bounds', 'clip', 'drop', 'fill'; "
                     f"got {mode!r}")


def _is_traced(x) -> bool:
    return isinstance(x, Tracer)


# ------------------------------------------------------------------ index canonicalisation
# Entries of a canonical index:
#   None                       a new axis of size 1
#   slice                      static bounds (ints or None)
#   int                        a static integer (Python int)
#   _BoolScalar(value)         a scalar True/False (a new axis of length 1/0)
#   np.ndarray (integer)       a concrete integer-array index
#   tracer (integer)           a traced integer index, of any rank

class _BoolScalar:
    __slots__ = ("value",)

    def __init__(self, value: bool):
        self.value = bool(value)


def _index_error_type(what: str) -> TypeError:
    return TypeError(f"Indexer must be an integer, a slice, None, Ellipsis, or an integer or "
                     f"boolean array; got {what}")


def _static_int(v, what: str):
    """A slice bound as a Python int (or None); traced bounds are an error."""
    if v is None:
        return None
    if _is_traced(v):
        raise IndexError(
            f"slice {what} must be static to use numpy slicing syntax, got a traced value "
            f"{v.aval.str_short()}. A slice of traced start and static size is "
            "lax.dynamic_slice(x, starts, sizes) (or lax.dynamic_slice_in_dim); the size of "
            "an array cannot depend on traced values.")
    try:
        return operator.index(v)
    except TypeError:
        raise _index_error_type(f"a slice with {what} {v!r}") from None


def _mask_to_arrays(mask) -> list[np.ndarray]:
    """A concrete boolean mask as integer index arrays (one per masked axis)."""
    if _is_traced(mask):
        raise NonConcreteBooleanIndexError(
            f"boolean indexing with a traced mask {mask.aval.str_short()}: the result's shape "
            "would depend on the mask's values, which are not known while tracing",
            hint="Use jnp.where(mask, x, fill) to keep the shape (or jnp.sum(jnp.where(mask, "
                 "x, 0)) for a masked reduction, or jnp.nonzero(mask, size=n) for a static size).")
    m = np.asarray(mask)
    return [np.asarray(c, dtype=dtypes.default_int_dtype()) for c in np.nonzero(m)]


def _canonical_entry(i):
    """One user index entry as a canonical entry, a boolean mask (ndarray of bool, or a
    traced bool) kept as is, or Ellipsis."""
    if i is None or i is Ellipsis:
        return i
    t = type(i)
    if t is int:
        return i
    if t is slice:
        return slice(_static_int(i.start, "start"), _static_int(i.stop, "stop"),
                     _static_int(i.step, "step"))
    if t is bool or isinstance(i, np.bool_):
        return _BoolScalar(i)
    if isinstance(i, (int, np.integer)):
        return int(i)
    if isinstance(i, (list, tuple)):
        if any(_is_traced(e) for e in _flatten(i)):
            from .creation import array
            i = array(i)
        else:
            i = np.asarray([_concrete(e) for e in i] if i else i)
            if i.size == 0 and i.dtype.kind == "f":
                i = i.astype(dtypes.default_int_dtype())   # [] is an empty integer index
    if isinstance(i, Array) and not isinstance(i, Tracer):   # a concrete array
        i = np.asarray(i)
    if isinstance(i, (np.ndarray, np.generic)):
        kind = i.dtype.kind
        if kind == "b":
            return _BoolScalar(bool(i)) if i.ndim == 0 else np.asarray(i)
        if kind in "iu":
            return int(i) if i.ndim == 0 else np.asarray(i)
        raise _index_error_type(f"an array of dtype {i.dtype.name}")
    if isinstance(i, Array):   # a tracer
        kind = i.dtype.kind
        if kind == "b":
            return i
        if kind in "iu":
            return i
        raise _index_error_type(f"a traced array of dtype {i.dtype.name}")
    raise _index_error_type(f"{type(i).__name__} {i!r}")


def _flatten(seq):
    for e in seq:
        if isinstance(e, (list, tuple)):
            yield from _flatten(e)
        else:
            yield e


def _concrete(e):
    if isinstance(e, (list, tuple)):
        return [_concrete(v) for v in e]
    if isinstance(e, Array):
        return np.asarray(e)
    return e


def _is_mask(e) -> bool:
    return (isinstance(e, np.ndarray) and e.dtype == np.bool_) or \
        (_is_traced(e) and e.dtype == np.bool_)


def canonical_index(idx, shape: tuple[int, ...]) -> list:
    """The user's index as a list of canonical entries (ellipsis expanded, masks resolved)."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    entries = [_canonical_entry(i) for i in idx]
    consumed = 0
    for e in entries:
        if e is None or e is Ellipsis or isinstance(e, _BoolScalar):
            continue
        consumed += e.ndim if _is_mask(e) else 1
    n_ell = sum(1 for e in entries if e is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if consumed > len(shape):
        raise IndexError(f"too many indices for array: array is {len(shape)}-dimensional, but "
                         f"{consumed} were indexed")
    fill = [slice(None)] * (len(shape) - consumed)
    if n_ell:
        k = next(j for j, e in enumerate(entries) if e is Ellipsis)
        entries = entries[:k] + fill + entries[k + 1:]
    else:
        entries = entries + fill
    out, pos = [], 0
    for e in entries:
        if _is_mask(e):
            expected = shape[pos:pos + e.ndim]
            if tuple(e.shape) != tuple(expected):
                raise IndexError(f"boolean index did not match the indexed array: mask of shape "
                                 f"{tuple(e.shape)} for axes of shape {tuple(expected)}")
            out.extend(_mask_to_arrays(e))
            pos += e.ndim
        else:
            out.append(e)
            if e is not None and not isinstance(e, _BoolScalar):
                pos += 1
    return out


def _is_advanced(e) -> bool:
    return isinstance(e, (np.ndarray, _BoolScalar)) or _is_traced(e)


# ------------------------------------------------------------------ getitem

def _slice_params(s: slice, n: int):
    """(start, limit, stride, reversed, length) of a static slice of an axis of size n."""
    start, stop, step = s.indices(n)
    length = len(range(start, stop, step))
    if step > 0:
        return start, (start + (length - 1) * step + 1 if length else start), step, False, length
    rstart = n - 1 - start
    return rstart, (rstart + (length - 1) * (-step) + 1 if length else rstart), -step, True, length


def _clamp_int(k: int, n: int, axis: int) -> int:
    if n == 0:
        raise IndexError(f"index {k} is out of bounds for axis {axis} with size 0")
    if k < 0:
        k += n
    return min(max(k, 0), n - 1)


def _apply_slices(x, entries):
    """Apply the slice entries (one per axis of x; other entries keep the whole axis)."""
    starts, limits, strides, rev = [], [], [], []
    for ax, (e, n) in enumerate(zip(entries, x.shape)):
        if isinstance(e, slice):
            s, l, st, r, _ = _slice_params(e, n)
            starts.append(s)
            limits.append(l)
            strides.append(st)
            if r:
                rev.append(ax)
        else:
            starts.append(0)
            limits.append(n)
            strides.append(1)
    y = lax.rev(x, rev) if rev else x
    if any(s != 0 for s in starts) or tuple(limits) != tuple(x.shape) or any(s != 1 for s in strides):
        y = lax.slice(y, starts, limits, strides)
    return y


def _basic(x, entries):
    """ints, slices and None only: slice, then one reshape that drops/adds unit axes."""
    axis_entries, out_shape, pos = [], [], 0
    for e in entries:
        if e is None:
            out_shape.append(1)
            continue
        n = x.shape[pos]
        if isinstance(e, slice):
            axis_entries.append(e)
            out_shape.append(_slice_params(e, n)[4])
        else:
            k = _clamp_int(e, n, pos)
            axis_entries.append(slice(k, k + 1))
        pos += 1
    y = _apply_slices(x, axis_entries)
    return lax.reshape(y, out_shape) if tuple(out_shape) != tuple(y.shape) else y


def _fast_basic(x, idx):
    """Eager numpy basic indexing for ints in bounds, slices, None and Ellipsis, or None."""
    if _STATE.trace is not None or type(x) is not ArrayImpl:
        return None
    items = idx if type(idx) is tuple else (idx,)
    shape = x._value.shape
    pos = 0
    for i in items:
        t = type(i)
        if t is slice:
            if not all(type(b) is int or b is None for b in (i.start, i.stop, i.step)):
                return None
            pos += 1
        elif t is int:
            if pos >= len(shape) or not -shape[pos] <= i < shape[pos]:
                return None
            pos += 1
        elif i is None:
            continue
        elif i is Ellipsis:
            return None if pos else _fast_basic_ellipsis(x, items)
        else:
            return None
    if pos > len(shape):
        return None
    v = x._value[idx]
    return ArrayImpl(v if type(v) is np.ndarray else np.asarray(v), x._weak_type)


def _fast_basic_ellipsis(x, items):
    # Only a leading Ellipsis is handled here; count from the end to check int bounds.
    rest = items[1:]
    if any(i is Ellipsis for i in rest):
        return None
    shape = x._value.shape
    real = [i for i in rest if i is not None]
    if len(real) > len(shape):
        return None
    for i, n in zip(real, shape[len(shape) - len(real):]):
        t = type(i)
        if t is int:
            if not -n <= i < n:
                return None
        elif t is slice:
            if not all(type(b) is int or b is None for b in (i.start, i.stop, i.step)):
                return None
        else:
            return None
    v = x._value[items]
    return ArrayImpl(v if type(v) is np.ndarray else np.asarray(v), x._weak_type)


def getitem(x: ArrayLike, idx, *, mode: str | None = None, fill_value=None) -> Array:
    """``x[idx]`` with numpy's index forms and JAX's out-of-bounds rules (module docstring).

    ``mode`` is ``None``/'promise_in_bounds'/'clip' (clamp) or 'fill'/'drop' (out-of-bounds
    positions give ``fill_value``: NaN for floats, the minimum for signed ints, the maximum
    for unsigned ints, True for bools).
    """
    if mode is None:
        fast = _fast_basic(x, idx)
        if fast is not None:
            return fast
    x = as_array(x, "getitem")
    gmode = _gather_mode(mode)
    entries = canonical_index(idx, x.shape)
    advanced = any(_is_advanced(e) for e in entries)
    if not advanced and gmode == "fill":
        # Out-of-bounds static ints must give fill_value: let the gather handle them.
        pos = 0
        for e in entries:
            if e is None:
                continue
            if type(e) is int and not -x.shape[pos] <= e < x.shape[pos]:
                advanced = True
            pos += 1
    if not advanced:
        return _basic(x, entries)
    return _advanced(x, entries, gmode, fill_value)


def _insert_unit_axes(x, entries):
    """Give every None / scalar-bool entry an axis of size 1 in x.

    Returns the reshaped x and one entry per axis of it: None becomes a full slice, a
    scalar bool an index array [0] (True) or [] (False) on its new axis.
    """
    if not any(e is None or isinstance(e, _BoolScalar) for e in entries):
        return x, entries
    shape, out, pos = [], [], 0
    idt = dtypes.default_int_dtype()
    for e in entries:
        if e is None:
            shape.append(1)
            out.append(slice(None))
        elif isinstance(e, _BoolScalar):
            shape.append(1)
            out.append(np.zeros((1 if e.value else 0,), idt))
        else:
            shape.append(x.shape[pos])
            out.append(e)
            pos += 1
    return lax.reshape(x, shape), out


def _normalized_indices(i, n: int):
    """Integer index array with negative entries counted from the end (int32)."""
    if isinstance(i, (int, np.ndarray)):
        a = np.asarray(i)
        a = np.where(a < 0, a + n, a)
        return a.astype(np.int32) if a.dtype != np.int32 else a
    from .ufuncs import add, less, where
    i = where(less(i, 0), add(i, n), i)
    return lax.convert_element_type(i, np.int32)


def _advanced(x, entries, gmode: str, fill_value):
    """Integer-array (and traced scalar) indices: numpy's placement rules."""
    x, entries = _insert_unit_axes(x, entries)
    y = _apply_slices(x, entries)
    adv_axes = [ax for ax, e in enumerate(entries) if not isinstance(e, slice)]
    scalars_only = all(type(e) is int or (_is_traced(e) and e.ndim == 0)
                       for e in (entries[a] for a in adv_axes))
    if scalars_only and gmode == "clip":
        # Traced scalar positions (with static ints): a clamped dynamic_slice.
        starts, sizes = [], list(y.shape)
        for ax, n in enumerate(y.shape):
            if ax in adv_axes:
                e = entries[ax]
                if n == 0:
                    raise IndexError(f"index is out of bounds for axis {ax} with size 0")
                starts.append(np.int32(_clamp_int(e, n, ax)) if type(e) is int
                              else _normalized_indices(e, n))
                sizes[ax] = 1
            else:
                starts.append(np.int32(0))
        out = lax.dynamic_slice(y, starts, sizes)
        return lax.reshape(out, [d for ax, d in enumerate(y.shape) if ax not in adv_axes])
    from .shapes import broadcast_arrays, moveaxis, stack
    arrays = [_normalized_indices(entries[a], y.shape[a]) for a in adv_axes]
    if all(isinstance(a, np.ndarray) for a in arrays):
        try:
            arrays = np.broadcast_arrays(*arrays)
        except ValueError:
            shapes = " ".join(str(a.shape) for a in arrays)
            raise IndexError(f"shape mismatch: indexing arrays could not be broadcast together "
                             f"with shapes {shapes}") from None
        indices = np.stack(arrays, axis=-1)
    else:
        arrays = broadcast_arrays(*arrays)
        indices = stack(arrays, axis=-1)
    bshape = tuple(indices.shape[:-1])
    out = ix.gather_p.bind(y, indices, axes=tuple(adv_axes), mode=gmode, fill_value=fill_value)
    # numpy: advanced indices next to each other keep their place; otherwise they go first.
    adjacent = adv_axes == list(range(adv_axes[0], adv_axes[0] + len(adv_axes)))
    if adjacent and adv_axes[0] > 0 and bshape:
        nb = len(bshape)
        out = moveaxis(out, list(range(nb)), list(range(adv_axes[0], adv_axes[0] + nb)))
    return out


# ------------------------------------------------------------------ take / take_along_axis

def take(a: ArrayLike, indices: ArrayLike, axis: int | None = None, out: None = None,
         mode: str | None = None, unique_indices: bool = False, indices_are_sorted: bool = False,
         fill_value=None) -> Array:
    """Elements of ``a`` at ``indices`` along ``axis`` (of the flattened array if None).

    Out-of-bounds indices (JAX semantics): ``mode='fill'`` (the default) returns
    ``fill_value`` (NaN for floats, see ``getitem``), with negative indices counting from
    the end; ``mode='clip'`` clamps to [0, n-1] (so negative indices give element 0, as in
    numpy); ``mode='wrap'`` wraps around. ``unique_indices``/``indices_are_sorted`` are
    promises that allow faster code; they do not change the result.
    """
    check_no_out("take", out)
    from .shapes import moveaxis, ravel
    a = as_array(a, "take")
    if axis is None:
        a, axis = ravel(a), 0
    ax = normalize_axis(axis, a.ndim, "take")
    idx = as_array(indices, "take")
    if not dtypes.is_int(idx.dtype):
        raise TypeError(f"take: indices must be integers, got dtype {idx.dtype.name}")
    n = a.shape[ax]
    mode = "fill" if mode is None else mode
    if mode in ("wrap", "clip") and n == 0 and idx.size > 0:
        raise IndexError("Cannot do a non-empty jnp.take() from an empty axis.")
    if mode == "wrap":
        from .ufuncs import remainder
        idx = lax.convert_element_type(remainder(idx, max(n, 1)), np.int32)
        gmode = "clip"
    elif mode == "clip":
        idx = lax.convert_element_type(idx, np.int32)
        gmode = "clip"
    elif mode == "fill":
        idx = _normalized_indices(idx, n)
        gmode = "fill"
    else:
        raise ValueError(f"take: mode must be 'fill', 'clip' or 'wrap', got {mode!r}")
    indices = lax.expand_dims(idx, (idx.ndim,))
    g = ix.gather_p.bind(a, indices, axes=(ax,), mode=gmode, fill_value=fill_value)
    # g: idx.shape + a.shape without ax; numpy puts idx's axes at position ax.
    if ax and idx.ndim:
        nb = idx.ndim
        g = moveaxis(g, list(range(nb)), list(range(ax, ax + nb)))
    return g


def take_along_axis(arr: ArrayLike, indices: ArrayLike, axis: int | None,
                    mode: str | None = None, fill_value=None) -> Array:
    """``arr`` picked at ``indices`` along ``axis``; the other axes of ``indices`` and ``arr``
    broadcast against each other. Out-of-bounds: ``mode='fill'`` (default, JAX) or 'clip'.
    Negative indices count from the end."""
    from .shapes import broadcast_to, ravel, stack
    a = as_array(arr, "take_along_axis")
    idx = as_array(indices, "take_along_axis")
    if not dtypes.is_int(idx.dtype):
        raise TypeError(f"take_along_axis: indices must be integers, got dtype {idx.dtype.name}")
    if axis is None:
        if idx.ndim != 1:
            raise ValueError("take_along_axis: with axis=None, indices must be 1-D, got shape "
                             f"{idx.shape}")
        a, axis = ravel(a), 0
    ax = normalize_axis(axis, a.ndim, "take_along_axis")
    if idx.ndim != a.ndim:
        raise ShapeError(f"take_along_axis: indices of shape {idx.shape} must have the same number "
                         f"of dimensions as the array of shape {a.shape}")
    out_shape = []
    for i in range(a.ndim):
        if i == ax:
            out_shape.append(idx.shape[i])
        elif a.shape[i] == idx.shape[i] or idx.shape[i] == 1:
            out_shape.append(a.shape[i])
        elif a.shape[i] == 1:
            out_shape.append(idx.shape[i])
        else:
            raise ShapeError(f"take_along_axis: index shape {idx.shape} does not broadcast with "
                             f"array shape {a.shape} on axis {i}")
    out_shape = tuple(out_shape)
    gmode = _gather_mode("fill" if mode is None else mode)
    idx = broadcast_to(_normalized_indices(idx, a.shape[ax]), out_shape)
    a_b = broadcast_to(a, tuple(out_shape[i] if i != ax else a.shape[ax] for i in range(a.ndim)))
    cols = [idx if i == ax else lax.broadcasted_iota(np.int32, out_shape, i) for i in range(a.ndim)]
    gathered = stack(cols, axis=-1)
    return ix.gather_p.bind(a_b, gathered, axes=tuple(range(a.ndim)), mode=gmode,
                            fill_value=fill_value)


# ------------------------------------------------------------------ x.at[idx]

class _IndexUpdateHelper:
    """``x.at``: index it to get an ``_IndexUpdateRef``."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __getitem__(self, index) -> "_IndexUpdateRef":
        return _IndexUpdateRef(self.array, index)

    def __repr__(self) -> str:
        return f"_IndexUpdateHelper({self.array!r})"


class _IndexUpdateRef:
    """``x.at[idx]``: functional updates that return new arrays (``x`` is unchanged).

    ``mode``: None/'promise_in_bounds'/'drop'/'fill' drop updates at out-of-bounds
    positions, 'clip' clamps them into bounds. ``indices_are_sorted`` and
    ``unique_indices`` are promises that allow faster code; they do not change results.
    """

    __slots__ = ("array", "index")

    def __init__(self, array, index):
        self.array, self.index = array, index

    def __repr__(self) -> str:
        return f"_IndexUpdateRef({self.array!r}, {self.index!r})"

    def get(self, *, indices_are_sorted: bool = False, unique_indices: bool = False,
            mode: str | None = None, fill_value=None) -> Array:
        """``x[idx]``; with ``mode='fill'`` out-of-bounds positions give ``fill_value``."""
        return getitem(self.array, self.index, mode=mode, fill_value=fill_value)

    def set(self, values: ArrayLike, *, indices_are_sorted: bool = False,
            unique_indices: bool = False, mode: str | None = None) -> Array:
        """A copy of ``x`` with ``x[idx] = values`` (for repeated indices, one of them wins)."""
        return _scatter(self.array, self.index, values, "set", mode)

    def add(self, values: ArrayLike, *, indices_are_sorted: bool = False,
            unique_indices: bool = False, mode: str | None = None) -> Array:
        """A copy of ``x`` with ``x[idx] += values`` (repeated indices accumulate)."""
        return _scatter(self.array, self.index, values, "add", mode)

    def subtract(self, values: ArrayLike, *, indices_are_sorted: bool = False,
                 unique_indices: bool = False, mode: str | None = None) -> Array:
        """A copy of ``x`` with ``x[idx] -= values``."""
        from .ufuncs import negative
        return _scatter(self.array, self.index, negative(values), "add", mode)

    def multiply(self, values: ArrayLike, *, indices_are_sorted: bool = False,
                 unique_indices: bool = False, mode: str | None = None) -> Array:
        """A copy of ``x`` with ``x[idx] *= values`` (repeated indices multiply)."""
        return _scatter(self.array, self.index, values, "mul", mode)

    mul = multiply

    def divide(self, values: ArrayLike, *, indices_are_sorted: bool = False,
               unique_indices: bool = False, mode: str | None = None) -> Array:
        """``x`` divided by ``values`` at ``idx`` (``x[idx] /= values``), as in JAX:
        ``x / ones_like(x).at[idx].multiply(values)``."""
        from .creation import ones_like
        from .ufuncs import true_divide
        x = as_array(self.array, "at[].divide")
        return true_divide(x, _scatter(ones_like(x), self.index, values, "mul", mode))

    def power(self, values: ArrayLike, *, indices_are_sorted: bool = False,
              unique_indices: bool = False, mode: str | None = None) -> Array:
        """``x ** values`` at ``idx`` (``x[idx] **= values``), as in JAX:
        ``x ** ones_like(x).at[idx].multiply(values)``."""
        from .creation import ones_like
        from .ufuncs import power
        x = as_array(self.array, "at[].power")
        return power(x, _scatter(ones_like(x), self.index, values, "mul", mode))

    def min(self, values: ArrayLike, *, indices_are_sorted: bool = False,
            unique_indices: bool = False, mode: str | None = None) -> Array:
        """A copy of ``x`` with ``x[idx] = minimum(x[idx], values)``."""
        return _scatter(self.array, self.index, values, "min", mode)

    def max(self, values: ArrayLike, *, indices_are_sorted: bool = False,
            unique_indices: bool = False, mode: str | None = None) -> Array:
        """A copy of ``x`` with ``x[idx] = maximum(x[idx], values)``."""
        return _scatter(self.array, self.index, values, "max", mode)

    def apply(self, func: Callable[[Array], Array], *, indices_are_sorted: bool = False,
              unique_indices: bool = False, mode: str | None = None) -> Array:
        """A copy of ``x`` with the elementwise ``func`` applied at ``idx`` (once per
        position, even if the index repeats it)."""
        gmode = "clip" if mode == "clip" else "fill"
        current = getitem(self.array, self.index, mode=gmode)
        return _scatter(self.array, self.index, func(current), "set", mode)


def _scatter(x, index, values, combine: str, mode):
    """Scatter ``values`` at ``x[index]``, expressed on flat element positions.

    The positions are found by indexing an iota of x's shape with the same index (so every
    index form ``getitem`` supports works here too); positions out of bounds become
    ``x.size``, which the scatter drops, unless ``mode='clip'`` clamps them.
    """
    from .creation import asarray
    from .shapes import broadcast_to, ravel
    x = as_array(x, "at")
    if mode not in _CLIP_MODES + _FILL_MODES:
        _gather_mode(mode)   # raises the error
    gmode = "clip" if mode == "clip" else "fill"
    iota = lax.reshape(lax.iota(np.int32, x.size), x.shape)
    positions = getitem(iota, index, mode=gmode, fill_value=x.size)
    values = asarray(values)
    if values.dtype != x.dtype:
        values = lax.convert_element_type(values, x.dtype)
    # Leading unit axes of the values beyond the indexed shape are allowed, as in numpy.
    while values.ndim > positions.ndim and values.shape[0] == 1:
        values = lax.reshape(values, values.shape[1:])
    try:
        values = broadcast_to(values, positions.shape)
    except ShapeError:
        raise ShapeError(f"at[].{combine}: values of shape {values.shape} cannot be broadcast to "
                         f"the indexed shape {positions.shape}",
                         hint="The update must broadcast to the shape of x[idx].") from None
    idx = lax.reshape(positions, positions.shape + (1,))
    out = ix.scatter_p.bind(ravel(x), idx, values, axes=(0,), combine=combine)
    return lax.reshape(out, x.shape)


# ------------------------------------------------------------------ nonzero and friends

def nonzero(a: ArrayLike, *, size: int | None = None, fill_value=None) -> tuple[Array, ...]:
    """Indices of the nonzero elements, one array per axis (row-major order).

    Needs a concrete ``a`` unless ``size`` (a static length) is given, in which case the
    result is truncated or padded with ``fill_value`` (default 0) to ``size``.
    """
    a = as_array(a, "nonzero")
    if a.ndim == 0:
        raise ValueError("Calling nonzero on 0d arrays is not allowed. Use jnp.atleast_1d(x) "
                         "first.")
    idt = dtypes.default_int_dtype()
    if size is None:
        if _is_traced(a):
            raise NonConcreteBooleanIndexError(
                f"nonzero of a traced array {a.aval.str_short()} has a data-dependent shape",
                hint="Pass size=... (a static upper bound) or use jnp.where(cond, x, y).")
        return tuple(ArrayImpl(np.asarray(c, idt)) for c in np.nonzero(np.asarray(a)))
    size = operator.index(size)
    from .reductions import cumsum
    from .shapes import ravel
    from .ufuncs import not_equal, subtract, where
    flat = not_equal(ravel(a), 0)
    slot = where(flat, subtract(cumsum(flat), 1), size)         # where each nonzero goes
    slot = lax.expand_dims(lax.convert_element_type(slot, np.int32), (1,))
    fills = fill_value if isinstance(fill_value, (tuple, list)) else (fill_value,) * a.ndim
    if len(fills) != a.ndim:
        raise ValueError(f"nonzero: fill_value must be a scalar or a tuple of length {a.ndim}")
    pos = lax.iota(idt, a.size)
    coords = []
    for d in range(a.ndim):
        stride = int(np.prod(a.shape[d + 1:], dtype=np.int64))
        coord = lax.rem(lax.div(pos, np.asarray(max(stride, 1), idt)),
                        np.asarray(max(a.shape[d], 1), idt))
        base = lax.full((size,), 0 if fills[d] is None else fills[d], idt)
        coords.append(ix.scatter_p.bind(base, slot, coord, axes=(0,), combine="set"))
    return tuple(coords)


def flatnonzero(a: ArrayLike, *, size: int | None = None, fill_value=None) -> Array:
    """Indices of the nonzero elements of the flattened array."""
    from .shapes import ravel
    return nonzero(ravel(as_array(a, "flatnonzero")), size=size, fill_value=fill_value)[0]


def argwhere(a: ArrayLike, *, size: int | None = None, fill_value=None) -> Array:
    """Coordinates of the nonzero elements, one row each: shape (count, a.ndim)."""
    from .shapes import atleast_1d, stack
    a = as_array(a, "argwhere")
    coords = nonzero(atleast_1d(a), size=size, fill_value=fill_value)
    out = stack(coords, axis=-1)
    if a.ndim == 0:
        out = lax.slice(out, (0, 0), (out.shape[0], 0))
    return out
