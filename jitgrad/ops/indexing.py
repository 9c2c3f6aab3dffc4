"""Indexing primitives: point gather/scatter and dynamic (traced-offset) slices.

``gather(operand, indices, axes=(a0, .., ak-1))`` picks, for every batch position b of
``indices`` (shape ``batch + (k,)``), the sub-array ``operand[.., indices[b], ..]`` with the
listed axes fixed; the output is ``batch + [operand axes not listed]``. ``scatter`` is its
inverse, writing (or adding, multiplying, taking min/max of) ``updates`` into ``operand``.
This is JAX's gather with collapsed slice dims only, which covers numpy's integer-array
indexing, ``take``, ``take_along_axis`` and ``x.at[...]``.

Out-of-bounds indices: a gather clamps them (``mode="clip"``) or returns ``fill_value``
(``mode="fill"``); a scatter drops out-of-bounds updates, as in JAX.
"""
from __future__ import annotations

import numpy as np

from ..core import dtypes
from ..core.abstract import ShapedArray
from ..core.errors import DTypeError, ShapeError
from ..core.primitive import OPAQUE, Primitive

GATHER_MODES = ("clip", "fill")
SCATTER_COMBINES = ("set", "add", "mul", "min", "max")


def _check_indices(name: str, operand: ShapedArray, indices: ShapedArray, axes) -> None:
    if not dtypes.is_int(indices.dtype):
        raise DTypeError(f"{name}: indices must be integers, got {indices.str_short()}")
    if indices.ndim == 0 or indices.shape[-1] != len(axes):
        raise ShapeError(f"{name}: indices {indices.str_short()} must end in an axis of size "
                         f"{len(axes)} (one index per axis in axes={tuple(axes)})")
    if len(set(axes)) != len(axes) or any(not 0 <= a < operand.ndim for a in axes):
        raise ShapeError(f"{name}: axes={tuple(axes)} do not fit operand {operand.str_short()}")


def gather_shape(operand_shape, indices_shape, axes) -> tuple[int, ...]:
    rest = tuple(d for i, d in enumerate(operand_shape) if i not in axes)
    return tuple(indices_shape[:-1]) + rest


def _point_index(operand_shape, idx, axes, clip=True):
    """Turn (batch..., k) indices into a numpy advanced index over ``operand``.

    The gathered axes are moved to the front first, so numpy puts the batch dims first.
    Returns (perm, index tuple, in-bounds mask)."""
    perm = tuple(axes) + tuple(i for i in range(len(operand_shape)) if i not in axes)
    sizes = [operand_shape[a] for a in axes]
    cols, ok = [], np.ones(idx.shape[:-1], dtype=bool)
    for j, n in enumerate(sizes):
        col = idx[..., j].astype(np.int64)
        ok &= (col >= 0) & (col < n)
        cols.append(np.clip(col, 0, max(n - 1, 0)) if clip else col)
    return perm, tuple(cols), ok


# ---------------------------------------------------------------- gather
gather_p = Primitive("gather", OPAQUE)


@gather_p.def_impl
def _gather_impl(operand, indices, axes, mode="clip", fill_value=None):
    operand = np.asarray(operand)
    indices = np.asarray(indices)
    out_shape = gather_shape(operand.shape, indices.shape, axes)
    if operand.size == 0 or 0 in out_shape:
        if any(operand.shape[a] == 0 for a in axes) and int(np.prod(indices.shape[:-1])) > 0:
            fill = _fill_value(operand.dtype, fill_value)
            return np.full(out_shape, fill, dtype=operand.dtype)
        return np.zeros(out_shape, dtype=operand.dtype)
    perm, cols, ok = _point_index(operand.shape, indices, axes)
    out = np.transpose(operand, perm)[cols]
    if mode == "fill":
        mask = ok.reshape(ok.shape + (1,) * (out.ndim - ok.ndim))
        out = np.where(mask, out, _fill_value(operand.dtype, fill_value)).astype(operand.dtype)
    return out


def _fill_value(dtype, fill_value):
    if fill_value is not None:
        return fill_value
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "b":
        return True
    return np.iinfo(dtype).min if dtype.kind == "i" else np.iinfo(dtype).max


@gather_p.def_abstract_eval
def _gather_rule(operand, indices, axes, mode="clip", fill_value=None):
    _check_indices("gather", operand, indices, axes)
    if mode not in GATHER_MODES:
        raise ValueError(f"gather: mode must be one of {GATHER_MODES}, got {mode!r}")
    return ShapedArray(gather_shape(operand.shape, indices.shape, axes), operand.dtype,
                       operand.weak_type)


# ---------------------------------------------------------------- scatter
scatter_p = Primitive("scatter", OPAQUE)

_UFUNC = {"add": np.add, "mul": np.multiply, "min": np.minimum, "max": np.maximum}


@scatter_p.def_impl
def _scatter_impl(operand, indices, updates, axes, combine="set"):
    out = np.array(operand, copy=True)
    indices, updates = np.asarray(indices), np.asarray(updates)
    if out.size == 0 or updates.size == 0:
        return out
    perm, cols, ok = _point_index(out.shape, indices, axes, clip=False)
    view = np.transpose(out, perm)           # a view: writes land in ``out``
    cols = tuple(c[ok] for c in cols)
    upd = updates[ok]
    if combine == "set":
        view[cols] = upd
    else:
        _UFUNC[combine].at(view, cols, upd)
    return out


@scatter_p.def_abstract_eval
def _scatter_rule(operand, indices, updates, axes, combine="set"):
    _check_indices("scatter", operand, indices, axes)
    if combine not in SCATTER_COMBINES:
        raise ValueError(f"scatter: combine must be one of {SCATTER_COMBINES}, got {combine!r}")
    expected = gather_shape(operand.shape, indices.shape, axes)
    if updates.shape != expected or updates.dtype != operand.dtype:
        raise ShapeError(f"scatter: updates must be {ShapedArray(expected, operand.dtype).str_short()} "
                         f"for operand {operand.str_short()} and indices {indices.str_short()}, "
                         f"got {updates.str_short()}")
    return operand


# ---------------------------------------------------------------- dynamic_slice
dynamic_slice_p = Primitive("dynamic_slice", OPAQUE)


def _clamped_starts(shape, sizes, starts):
    return tuple(int(np.clip(int(s), 0, n - k)) for s, n, k in zip(starts, shape, sizes))


@dynamic_slice_p.def_impl
def _dynamic_slice_impl(operand, *starts, slice_sizes):
    operand = np.asarray(operand)
    begin = _clamped_starts(operand.shape, slice_sizes, starts)
    return operand[tuple(slice(b, b + k) for b, k in zip(begin, slice_sizes))].copy()


def _check_starts(name, operand, starts):
    if len(starts) != operand.ndim:
        raise ShapeError(f"{name}: need {operand.ndim} start indices for {operand.str_short()}, "
                         f"got {len(starts)}")
    for s in starts:
        if s.shape != () or not dtypes.is_int(s.dtype):
            raise DTypeError(f"{name}: start indices must be integer scalars, got {s.str_short()}")


@dynamic_slice_p.def_abstract_eval
def _dynamic_slice_rule(operand, *starts, slice_sizes):
    _check_starts("dynamic_slice", operand, starts)
    sizes = tuple(int(k) for k in slice_sizes)
    if len(sizes) != operand.ndim or any(not 0 <= k <= n for k, n in zip(sizes, operand.shape)):
        raise ShapeError(f"dynamic_slice: slice_sizes {sizes} do not fit {operand.str_short()}")
    return ShapedArray(sizes, operand.dtype, operand.weak_type)


# ---------------------------------------------------------------- dynamic_update_slice
dynamic_update_slice_p = Primitive("dynamic_update_slice", OPAQUE)


@dynamic_update_slice_p.def_impl
def _dynamic_update_slice_impl(operand, update, *starts):
    out = np.array(operand, copy=True)
    update = np.asarray(update)
    begin = _clamped_starts(out.shape, update.shape, starts)
    out[tuple(slice(b, b + k) for b, k in zip(begin, update.shape))] = update
    return out


@dynamic_update_slice_p.def_abstract_eval
def _dynamic_update_slice_rule(operand, update, *starts):
    _check_starts("dynamic_update_slice", operand, starts)
    if update.ndim != operand.ndim or any(u > o for u, o in zip(update.shape, operand.shape)):
        raise ShapeError(f"dynamic_update_slice: update {update.str_short()} does not fit in "
                         f"{operand.str_short()}")
    if update.dtype != operand.dtype:
        raise DTypeError(f"dynamic_update_slice: update {update.str_short()} must have the "
                         f"operand's dtype {operand.dtype.name}")
    return operand
