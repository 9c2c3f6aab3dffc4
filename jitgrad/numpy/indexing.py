"""numpy indexing on immutable arrays: ``x[idx]``, ``x.at[idx].set(v)``, take, take_along_axis.

Basic indexing (ints, slices with steps, None, Ellipsis) becomes static ``slice``/``rev``/
``reshape`` equations. Integer-array indices become one ``gather`` (``scatter`` for
``.at[]`` updates). A boolean mask is turned into integer indices when its value is
known (eagerly, or a constant); under ``jit`` a traced mask is an error that suggests
``jnp.where``, because the result's shape would depend on data.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import lax
from ..core import dtypes
from ..core.array import Array, ArrayImpl
from ..core.errors import NonConcreteBooleanIndexError, ShapeError
from ..ops import indexing as ix
from ._util import normalize_axis
from .shapes import _arr


def _is_int_scalar(i) -> bool:
    return isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_))


def _expand_ellipsis(idx: tuple, ndim: int) -> tuple:
    n_real = sum(1 for i in idx if i is not None and i is not Ellipsis and not _is_bool_array(i))
    n_real += sum(np.ndim(i) for i in idx if _is_bool_array(i))
    n_ell = sum(1 for i in idx if i is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if n_real > ndim:
        raise IndexError(f"too many indices for array: array is {ndim}-dimensional, but "
                         f"{n_real} were indexed")
    fill = (slice(None),) * (ndim - n_real)
    if n_ell:
        k = idx.index(Ellipsis)
        return idx[:k] + fill + idx[k + 1:]
    return idx + fill


def _is_bool_array(i) -> bool:
    if isinstance(i, (bool, np.bool_)):
        return True
    if isinstance(i, (Array, np.ndarray)):
        return i.dtype == np.bool_
    if isinstance(i, list):
        return np.asarray(i).dtype == np.bool_
    return False


def _is_array_index(i) -> bool:
    return isinstance(i, (Array, np.ndarray, list)) and not _is_bool_array(i)


def _bool_to_int(mask, name="boolean index"):
    """A concrete boolean mask as integer index arrays (one per masked axis)."""
    if isinstance(mask, Array) and not isinstance(mask, ArrayImpl):
        raise NonConcreteBooleanIndexError(
            f"{name}: a boolean mask {mask.aval.str_short()} that is traced gives a result whose "
            "shape depends on the data, which jit cannot compile",
            hint="Use jnp.where(mask, x, fill) to keep the shape, or jnp.sum(jnp.where(mask, x, 0)) "
                 "for a masked reduction.")
    m = np.asarray(mask)
    return [np.asarray(c, dtype=dtypes.default_int_dtype()) for c in np.nonzero(m)]


def _normalize_index(idx, ndim):
    """Canonical tuple: ellipsis expanded, bool masks turned into integer arrays."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    out = []
    for i in idx:
        if isinstance(i, (bool, np.bool_)):
            # x[True] adds an axis of size 1; x[False] one of size 0 (numpy semantics).
            out.append(None)
            out.append(np.zeros((0 if not i else 1,), dtypes.default_int_dtype()) if not i else None)
            if i:
                out.pop()
            continue
        if _is_bool_array(i):
            out.extend(_bool_to_int(i))
        else:
            out.append(i)
    return _expand_ellipsis(tuple(out), ndim)


def _as_index_array(i, size=None):
    a = i if isinstance(i, Array) else np.asarray(i)
    if not dtypes.is_int(a.dtype):
        raise IndexError(f"indices must be integers, got dtype {a.dtype.name}")
    from .creation import asarray
    return asarray(a)


def _wrap_negative(idx, size):
    """Negative indices count from the end (computed in the index dtype)."""
    from .ufuncs import where, less, add
    return where(less(idx, 0), add(idx, size), idx)


def _static_index(x, idx):
    """Apply ints, slices and None; return the result and where the array indices go."""
    starts, limits, strides, rev_axes = [], [], [], []
    out_shape_ops = []     # per input axis: 'keep', 'drop'
    new_axes = []
    advanced = []          # (position in output-before-advanced, array)
    pos = 0
    shape = x.shape
    for i in idx:
        if i is None:
            new_axes.append(len(out_shape_ops) - out_shape_ops.count("drop") + len(new_axes))
            continue
        n = shape[pos]
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            if step > 0:
                starts.append(start)
                limits.append(max(start, stop))
                strides.append(step)
            else:
                # Reverse, then slice forward in the reversed axis.
                length = len(range(start, stop, step))
                rstart = n - 1 - start
                starts.append(rstart)
                limits.append(rstart + (length - 1) * (-step) + 1 if length else rstart)
                strides.append(-step)
                rev_axes.append(pos)
            out_shape_ops.append("keep")
        elif _is_int_scalar(i):
            k = int(i)
            if not -n <= k < n:
                raise IndexError(f"index {k} is out of bounds for axis {pos} with size {n}")
            k %= n
            starts.append(k)
            limits.append(k + 1)
            strides.append(1)
            out_shape_ops.append("drop")
        else:
            starts.append(0)
            limits.append(n)
            strides.append(1)
            out_shape_ops.append("keep")
            advanced.append((pos, i))
        pos += 1
    y = lax.rev(x, rev_axes) if rev_axes else x
    if any(s != 0 for s in starts) or list(limits) != list(shape) or any(s != 1 for s in strides):
        y = lax.slice(y, starts, limits, strides)
    return y, out_shape_ops, new_axes, advanced


def getitem(x, idx):
    """``x[idx]`` with numpy semantics (see the module docstring)."""
    x = _arr(x, "getitem")
    if isinstance(idx, (Array, np.ndarray)) and not _is_bool_array(idx) and x.ndim >= 1:
        return take(x, idx, axis=0, mode="clip")
    idx = _normalize_index(idx, x.ndim)
    has_traced_scalar = any(isinstance(i, Array) and not _is_bool_array(i) for i in idx)
    y, ops, new_axes, advanced = _static_index(x, idx)
    if advanced or has_traced_scalar:
        return _advanced(y, ops, new_axes, advanced, idx)
    # Drop integer-indexed axes, then insert the None axes.
    keep_shape = [d for d, op in zip(y.shape, ops) if op == "keep"]
    for a in new_axes:
        keep_shape.insert(a, 1)
    return lax.reshape(y, keep_shape)


def _advanced(y, ops, new_axes, advanced, idx):
    """Integer-array indices over the axes listed in ``advanced`` (numpy's placement rules)."""
    from .shapes import broadcast_arrays, moveaxis, stack, reshape
    axes = [p for p, _ in advanced]
    arrays = [_wrap_negative(_as_index_array(a), y.shape[p]) for p, a in advanced]
    arrays = broadcast_arrays(*arrays)
    bshape = arrays[0].shape
    indices = stack([lax.convert_element_type(a, np.int32) for a in arrays], axis=-1)
    gathered = ix.gather_p.bind(y, indices, axes=tuple(axes), mode="clip", fill_value=None)
    # gathered: bshape + remaining axes of y (in order, int-indexed ones included as size 1)
    remaining = [p for p in range(y.ndim) if p not in axes]
    out_shape = list(bshape) + [y.shape[p] for p in remaining if ops[p] == "keep"]
    gathered = reshape(gathered, out_shape)
    # numpy: advanced indices that are all adjacent keep their place; otherwise they go first.
    adjacent = axes == list(range(axes[0], axes[0] + len(axes)))
    if adjacent and axes[0] > 0:
        dest = sum(1 for p in range(axes[0]) if ops[p] == "keep")
        nb = len(bshape)
        gathered = moveaxis(gathered, list(range(nb)), list(range(dest, dest + nb)))
    if new_axes:
        shape = list(gathered.shape)
        for a in new_axes:
            shape.insert(min(a, len(shape)), 1)
        gathered = reshape(gathered, shape)
    return gathered


def take(a, indices, axis=None, mode=None, fill_value=None, unique_indices=False,
         indices_are_sorted=False):
    """Elements of ``a`` at ``indices`` along ``axis`` (flattened if None).

    Out-of-bounds indices: ``mode='fill'`` (the default, as in JAX) returns NaN for floats
    (or ``fill_value``); ``mode='clip'`` clamps; ``'wrap'`` wraps around.
    """
    from .shapes import ravel, moveaxis
    a = _arr(a, "take")
    if axis is None:
        a, axis = ravel(a), 0
    ax = normalize_axis(axis, a.ndim, "take")
    idx = _as_index_array(indices)
    n = a.shape[ax]
    mode = mode or "fill"
    if mode == "wrap":
        from .ufuncs import remainder
        idx = remainder(idx, max(n, 1))
    elif mode in ("fill", "clip"):
        idx = _wrap_negative(idx, n) if mode == "fill" else _wrap_negative(idx, n)
    else:
        raise ValueError(f"take: mode must be 'fill', 'clip' or 'wrap', got {mode!r}")
    indices = lax.expand_dims(lax.convert_element_type(idx, np.int32), (idx.ndim,))
    g = ix.gather_p.bind(a, indices, axes=(ax,), mode="fill" if mode == "fill" else "clip",
                         fill_value=fill_value)
    # g: idx.shape + a.shape without ax; numpy puts idx's axes at position ax.
    if ax and idx.ndim:
        nb = idx.ndim
        g = moveaxis(g, list(range(nb)), list(range(ax, ax + nb)))
    return g


def take_along_axis(arr, indices, axis: int | None, mode=None, fill_value=None):
    """``arr`` picked at ``indices`` along ``axis``, matching the other axes pointwise."""
    from .shapes import ravel, broadcast_to, stack
    a = _arr(arr, "take_along_axis")
    idx = _as_index_array(indices)
    if axis is None:
        a, axis = ravel(a), 0
        idx = ravel(idx)
    ax = normalize_axis(axis, a.ndim, "take_along_axis")
    if idx.ndim != a.ndim:
        raise ShapeError(f"take_along_axis: indices of shape {idx.shape} must have the same number "
                         f"of dimensions as the array of shape {a.shape}")
    out_shape = tuple(idx.shape[i] if i == ax else max(a.shape[i], idx.shape[i]) if idx.shape[i] == 1
                      or a.shape[i] == 1 else a.shape[i] for i in range(a.ndim))
    for i in range(a.ndim):
        if i != ax and idx.shape[i] not in (1, a.shape[i]) and a.shape[i] != 1:
            raise ShapeError(f"take_along_axis: index shape {idx.shape} does not match array "
                             f"shape {a.shape} on axis {i}")
    idx = broadcast_to(_wrap_negative(idx, a.shape[ax]), out_shape)
    a_b = broadcast_to(a, tuple(out_shape[i] if i != ax else a.shape[ax] for i in range(a.ndim)))
    cols = []
    for i in range(a.ndim):
        cols.append(lax.convert_element_type(idx, np.int32) if i == ax
                    else lax.broadcasted_iota(np.int32, out_shape, i))
    indices = stack(cols, axis=-1)
    mode = "fill" if (mode or "fill") == "fill" else "clip"
    return ix.gather_p.bind(a_b, indices, axes=tuple(range(a.ndim)), mode=mode, fill_value=fill_value)


# ------------------------------------------------------------------ x.at[idx]

class _IndexUpdateHelper:
    """``x.at``: indexable, giving an ``_IndexUpdateRef``."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __getitem__(self, index):
        return _IndexUpdateRef(self.array, index)

    def __repr__(self):
        return f"_IndexUpdateHelper({self.array!r})"


class _IndexUpdateRef:
    """``x.at[idx]``: functional updates that return new arrays."""

    __slots__ = ("array", "index")

    def __init__(self, array, index):
        self.array, self.index = array, index

    def get(self, *, mode=None, fill_value=None):
        """``x[idx]``."""
        return getitem(self.array, self.index)

    def set(self, values, *, mode=None):
        """A copy of ``x`` with ``x[idx] = values``."""
        return _scatter(self.array, self.index, values, "set")

    def add(self, values, *, mode=None):
        """A copy of ``x`` with ``x[idx] += values`` (repeated indices accumulate)."""
        return _scatter(self.array, self.index, values, "add")

    def subtract(self, values, *, mode=None):
        """A copy of ``x`` with ``x[idx] -= values``."""
        from .ufuncs import negative
        return _scatter(self.array, self.index, negative(values), "add")

    def multiply(self, values, *, mode=None):
        """A copy of ``x`` with ``x[idx] *= values``."""
        return _scatter(self.array, self.index, values, "mul")

    mul = multiply

    def divide(self, values, *, mode=None):
        """A copy of ``x`` with ``x[idx] /= values``."""
        from .ufuncs import reciprocal
        return _scatter(self.array, self.index, reciprocal(values), "mul")

    def min(self, values, *, mode=None):
        """A copy of ``x`` with ``x[idx] = minimum(x[idx], values)``."""
        return _scatter(self.array, self.index, values, "min")

    def max(self, values, *, mode=None):
        """A copy of ``x`` with ``x[idx] = maximum(x[idx], values)``."""
        return _scatter(self.array, self.index, values, "max")

    def apply(self, func, *, mode=None):
        """A copy of ``x`` with ``func`` applied at ``idx``."""
        return _scatter(self.array, self.index, func(getitem(self.array, self.index)), "set")


def _scatter(x, index, values, combine):
    """Scatter ``values`` at ``x[index]``: the update is expressed on flat element positions.

    The positions are computed by indexing an iota of x's shape with the same index, so
    every numpy index form that ``getitem`` supports works here too.
    """
    from .creation import asarray
    from .shapes import broadcast_to, ravel, reshape
    x = _arr(x, "at")
    positions = getitem(lax.reshape(lax.iota(np.int32, x.size), x.shape), index)
    values = asarray(values)
    if values.dtype != x.dtype:
        values = lax.convert_element_type(values, x.dtype)
    try:
        values = broadcast_to(values, positions.shape)
    except ShapeError:
        raise ShapeError(f"at[].{combine}: values of shape {values.shape} cannot be broadcast to "
                         f"the indexed shape {positions.shape}") from None
    flat = ravel(x)
    idx = reshape(positions, positions.shape + (1,))
    out = ix.scatter_p.bind(flat, idx, values, axes=(0,), combine=combine)
    return lax.reshape(out, x.shape)


def nonzero(a, *, size=None, fill_value=None):
    """Indices of the nonzero elements (one array per axis). Needs concrete input unless
    ``size`` is given, in which case the result is padded/truncated to ``size``."""
    a = _arr(a, "nonzero")
    if size is None:
        if not isinstance(a, ArrayImpl):
            raise NonConcreteBooleanIndexError(
                f"nonzero of a traced array {a.aval.str_short()} has a data-dependent shape",
                hint="Pass size=... (a static upper bound) or use jnp.where(cond, x, y).")
        return tuple(ArrayImpl(np.asarray(c, dtypes.default_int_dtype())) for c in np.nonzero(np.asarray(a)))
    from .reductions import cumsum, sum
    from .ufuncs import where, not_equal
    from .shapes import ravel
    flat = not_equal(ravel(a), 0)
    count_before = cumsum(flat) - 1
    target = where(flat, count_before, size)              # slot of each nonzero element
    fill = 0 if fill_value is None else fill_value
    coords = []
    pos = lax.iota(np.int32, a.size)
    for d in range(a.ndim):
        stride = int(np.prod(a.shape[d + 1:], dtype=np.int64))
        coord = lax.rem(lax.div(pos, np.int32(max(stride, 1))), np.int32(max(a.shape[d], 1)))
        base = lax.full((size,), fill, dtypes.default_int_dtype())
        idx = lax.expand_dims(lax.convert_element_type(target, np.int32), (1,))
        coords.append(ix.scatter_p.bind(base, idx, lax.convert_element_type(coord, base.dtype),
                                        axes=(0,), combine="set"))
    return tuple(coords)


def flatnonzero(a, *, size=None, fill_value=None):
    """Indices of nonzero elements of the flattened array."""
    from .shapes import ravel
    return nonzero(ravel(_arr(a)), size=size, fill_value=fill_value)[0]


def argwhere(a, *, size=None, fill_value=None):
    """Coordinates of nonzero elements, one row each."""
    from .shapes import stack
    coords = nonzero(a, size=size, fill_value=fill_value)
    return stack(coords, axis=-1) if coords else _arr(np.zeros((0, 0), np.int32))
