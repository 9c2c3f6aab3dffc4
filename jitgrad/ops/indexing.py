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


# ---------------------------------------------------------------- batching rules
# A batched operand adds one more axis that the gather/scatter keeps whole; batched
# indices add one more batch axis of indices. When both are batched, example b must
# read its own operand: an iota column (b) is prepended to each index and the operand's
# batch axis is indexed too. dynamic_slice / dynamic_update_slice with batched starts
# become a gather / scatter of every point of each example's window.
from ..core.trace import get_aval  # noqa: E402
from ..core.rules import axis_size_of, bdim_at, bdim_to_front, moveaxis  # noqa: E402


def _with_batch_column(indices):
    """(B, ..., k) indices -> (B, ..., k+1), the new first column being the example number."""
    from .layout import concatenate_p, iota_p
    aval = get_aval(indices)
    column = iota_p.bind(dtype=aval.dtype, shape=aval.shape[:-1] + (1,), dimension=0)
    return concatenate_p.bind(column, indices, dimension=aval.ndim - 1)


def _shifted(axes) -> tuple[int, ...]:
    return tuple(a + 1 for a in axes)


def _gather_batch(vals, dims, axes, mode="clip", fill_value=None):
    (operand, indices), (od, idim) = vals, dims
    params = dict(mode=mode, fill_value=fill_value)
    if idim is None:
        # The operand's batch axis (moved first) is one more axis the gather keeps; it
        # lands right after the index batch axes.
        operand = moveaxis(operand, od, 0)
        out = gather_p.bind(operand, indices, axes=_shifted(axes), **params)
        return out, get_aval(indices).ndim - 1
    if od is None:
        # The indices' batch axis is one more index batch axis (it must not be the last).
        last = get_aval(indices).ndim - 1
        if idim == last:
            indices, idim = moveaxis(indices, last, 0), 0
        return gather_p.bind(operand, indices, axes=axes, **params), idim
    operand = moveaxis(operand, od, 0)
    indices = _with_batch_column(moveaxis(indices, idim, 0))
    return gather_p.bind(operand, indices, axes=(0,) + _shifted(axes), **params), 0


def _scatter_batch(vals, dims, axes, combine="set"):
    (operand, indices, updates), (od, idim, ud) = vals, dims
    size = axis_size_of(vals, dims)
    operand = bdim_to_front(operand, od, size)
    if idim is None:
        # Updates are (index batch axes) + (operand axes not indexed): the operand's batch
        # axis is the first of the latter.
        index_batch_rank = get_aval(indices).ndim - 1
        updates = bdim_at(updates, ud, size, index_batch_rank)
        return scatter_p.bind(operand, indices, updates, axes=_shifted(axes), combine=combine), 0
    indices = _with_batch_column(moveaxis(indices, idim, 0))
    updates = bdim_at(updates, ud, size, 0)
    return scatter_p.bind(operand, indices, updates, axes=(0,) + _shifted(axes),
                          combine=combine), 0


def _window_indices(starts, start_dims, shape, window, size):
    """Point indices (size,) + window + (ndim,) of each example's window, starts clamped
    into range as dynamic_slice does."""
    from .elementwise import add_p, clamp_p, convert_element_type_p
    from .layout import broadcast_in_dim_p, concatenate_p, iota_p
    dt = dtypes.default_int_dtype()
    grid = (size,) + tuple(window) + (1,)
    columns = []
    for axis, (s, d, n, k) in enumerate(zip(starts, start_dims, shape, window)):
        if get_aval(s).dtype != dt:
            s = convert_element_type_p.bind(s, new_dtype=dt, weak_type=False)
        s = clamp_p.bind(np.zeros((), dt), s, np.asarray(n - k, dt))
        s = broadcast_in_dim_p.bind(s, shape=grid, broadcast_dimensions=() if d is None else (0,))
        offset = iota_p.bind(dtype=dt, shape=grid, dimension=axis + 1)
        columns.append(add_p.bind(s, offset))
    if not columns:
        return broadcast_in_dim_p.bind(np.zeros((), dt), shape=(size, 0), broadcast_dimensions=())
    return concatenate_p.bind(*columns, dimension=len(grid) - 1)


def _index_zero(starts):
    return np.zeros((), get_aval(starts[0]).dtype if starts else dtypes.default_int_dtype())


def _dynamic_slice_batch(vals, dims, slice_sizes):
    (operand, *starts), (od, *sdims) = vals, dims
    size = axis_size_of(vals, dims)
    if all(d is None for d in sdims):
        # Same window for every example: slice the whole batch axis too.
        starts.insert(od, _index_zero(starts))
        sizes = list(slice_sizes)
        sizes.insert(od, size)
        return dynamic_slice_p.bind(operand, *starts, slice_sizes=tuple(sizes)), od
    shape = get_aval(operand).shape
    if od is not None:
        shape = shape[:od] + shape[od + 1:]
    indices = _window_indices(starts, sdims, shape, slice_sizes, size)
    axes = tuple(range(len(shape)))
    if od is not None:
        operand = moveaxis(operand, od, 0)
        indices, axes = _with_batch_column(indices), (0,) + _shifted(axes)
    return gather_p.bind(operand, indices, axes=axes, mode="clip", fill_value=None), 0


def _dynamic_update_slice_batch(vals, dims):
    (operand, update, *starts), (od, ud, *sdims) = vals, dims
    size = axis_size_of(vals, dims)
    operand = bdim_to_front(operand, od, size)
    update = bdim_to_front(update, ud, size)
    if all(d is None for d in sdims):
        return dynamic_update_slice_p.bind(operand, update, _index_zero(starts), *starts), 0
    shape, window = get_aval(operand).shape[1:], get_aval(update).shape[1:]
    indices = _with_batch_column(_window_indices(starts, sdims, shape, window, size))
    axes = tuple(range(len(shape) + 1))
    return scatter_p.bind(operand, indices, update, axes=axes, combine="set"), 0


gather_p.batch = _gather_batch
scatter_p.batch = _scatter_batch
dynamic_slice_p.batch = _dynamic_slice_batch
dynamic_update_slice_p.batch = _dynamic_update_slice_batch


# ------------------------------------------------------------------ autodiff rules
# Conventions in jitgrad/transforms/ad.py. Indices are never differentiated. gather and
# dynamic_slice are linear in the operand (their transposes scatter-add / write back);
# scatter-add and dynamic_update_slice are linear in operand and updates together.
# scatter-set with repeated indices and scatter-min/max are differentiated by masking:
# only the values that end up in the result get a derivative.
from ..core.trace import get_aval  # noqa: E402
from ..core.rules import (NonLinearError, Zero, instantiate_zeros,  # noqa: E402
                          is_undefined_primal, zeros_like_aval)


def _ew(name):
    from . import elementwise
    return getattr(elementwise, name).bind


def _select(pred, on_false, on_true):
    return _ew("select_n_p")(pred, on_false, on_true)


def _zero_like(x):
    return np.zeros((), get_aval(x).dtype)


def _clip_indices(indices, shape, axes):
    """Indices clamped into range, as gather's ``mode="clip"`` reads them."""
    from .layout import broadcast_in_dim_p
    aval = get_aval(indices)
    hi = np.array([max(shape[a] - 1, 0) for a in axes], dtype=aval.dtype)
    hi = broadcast_in_dim_p.bind(hi, shape=aval.shape, broadcast_dimensions=(aval.ndim - 1,))
    return _ew("min_p")(_ew("max_p")(indices, np.zeros((), aval.dtype)), hi)


def _gather_jvp(primals, tangents, axes, mode="clip", fill_value=None):
    (operand, indices), (g, _) = primals, tangents
    out = gather_p.bind(operand, indices, axes=axes, mode=mode, fill_value=fill_value)
    # Out-of-bounds reads in "fill" mode are constant: their tangent is 0.
    t_fill = None if mode == "clip" else 0
    return out, gather_p.bind(g, indices, axes=axes, mode=mode, fill_value=t_fill)


def _gather_transpose(ct, operand, indices, axes, mode="clip", fill_value=None):
    if is_undefined_primal(indices):
        raise NonLinearError("gather is not linear in its indices")
    if mode == "clip":
        indices = _clip_indices(indices, operand.aval.shape, axes)
    zeros = zeros_like_aval(operand.aval)
    return [scatter_p.bind(zeros, indices, ct, axes=axes, combine="add"), None]


gather_p.jvp, gather_p.transpose = _gather_jvp, _gather_transpose


def _gather_fill0(x, indices, axes):
    return gather_p.bind(x, indices, axes=axes, mode="fill", fill_value=0)


def _winners(operand_aval, indices, axes):
    """For a scatter-set with possibly repeated indices: ``(update_wins, operand_kept)``.

    Each update is tagged with a distinct id, the ids are scattered like the updates and
    read back: an update "wins" where its own id came back (numpy's assignment keeps the
    last of repeated positions, and so does this), and an operand position is "kept"
    where no id landed. Out-of-bounds updates never win.
    """
    from .layout import broadcast_in_dim_p, iota_p, reshape_p
    iaval = get_aval(indices)
    batch = iaval.shape[:-1]
    upd_shape = gather_shape(operand_aval.shape, iaval.shape, axes)
    n = int(np.prod(batch, dtype=np.int64))
    ids = _ew("add_p")(iota_p.bind(dtype=np.dtype(np.int32), shape=(n,), dimension=0),
                       np.ones((), np.int32))
    ids = reshape_p.bind(ids, new_sizes=tuple(batch), dimensions=None)
    ids = broadcast_in_dim_p.bind(ids, shape=upd_shape, broadcast_dimensions=tuple(range(len(batch))))
    slots = broadcast_in_dim_p.bind(np.zeros((), np.int32), shape=operand_aval.shape,
                                    broadcast_dimensions=())
    landed = scatter_p.bind(slots, indices, ids, axes=axes, combine="set")
    update_wins = _ew("eq_p")(_gather_fill0(landed, indices, axes), ids)
    operand_kept = _ew("eq_p")(landed, np.zeros((), np.int32))
    return update_wins, operand_kept


def _scatter_add(operand, indices, updates, axes):
    return scatter_p.bind(operand, indices, updates, axes=axes, combine="add")


def _masked_scatter_add(operand_aval, t_op, indices, t_upd, axes, op_mask, upd_mask):
    """scatter-add of the tangents, keeping only where ``op_mask``/``upd_mask`` are True."""
    t = Zero(operand_aval)
    if type(t_op) is not Zero:
        t = _select(op_mask, _zero_like(t_op), t_op)
    if type(t_upd) is not Zero:
        t = _scatter_add(instantiate_zeros(t), indices, _select(upd_mask, _zero_like(t_upd), t_upd),
                         axes)
    return t


def _check_unique(indices, combine):
    """scatter-mul gradients assume unique indices (JAX requires unique_indices=True)."""
    from ..core.array import ArrayImpl
    if isinstance(indices, (np.ndarray, np.generic, ArrayImpl)):   # concrete: check now
        idx = np.asarray(indices).reshape(-1, np.shape(indices)[-1])
        if len({tuple(r) for r in idx.tolist()}) != len(idx):
            raise NotImplementedError(
                f"scatter-{combine} gradients with respect to the updates are only implemented "
                "for unique indices (as in JAX, which requires unique_indices=True)")


def _scatter_jvp(primals, tangents, axes, combine="set"):
    operand, indices, updates = primals
    t_op, _, t_upd = tangents
    out = scatter_p.bind(operand, indices, updates, axes=axes, combine=combine)
    aval = get_aval(operand).strong()
    if combine == "add":
        return out, _scatter_add(instantiate_zeros(t_op), indices, instantiate_zeros(t_upd), axes)
    if combine == "set":
        wins, kept = _winners(aval, indices, axes)
        return out, _masked_scatter_add(aval, t_op, indices, t_upd, axes, kept, wins)
    if combine == "mul":
        t = Zero(aval)
        if type(t_op) is not Zero:   # out = operand * (product of the updates landing there)
            t = scatter_p.bind(t_op, indices, updates, axes=axes, combine="mul")
        if type(t_upd) is not Zero:  # unique indices: d out = operand * t_upd at its position
            _check_unique(indices, combine)
            term = _ew("mul_p")(operand, _scatter_add(zeros_like_aval(aval), indices, t_upd, axes))
            t = term if type(t) is Zero else _ew("add_p")(t, term)
        return out, t
    # min / max: the derivative is shared equally by every value equal to the result.
    dt = aval.dtype
    read_back = gather_p.bind(out, indices, axes=axes, mode="fill", fill_value=np.nan)
    upd_hits = _ew("eq_p")(updates, read_back)
    op_hits = _ew("eq_p")(operand, out)
    convert = _ew("convert_element_type_p")
    n_upd = _scatter_add(zeros_like_aval(aval), indices,
                         convert(upd_hits, new_dtype=dt, weak_type=False), axes)
    n_refs = _ew("add_p")(n_upd, convert(op_hits, new_dtype=dt, weak_type=False))
    t = _masked_scatter_add(aval, t_op, indices, t_upd, axes, op_hits, upd_hits)
    return out, _ew("div_p")(t, n_refs)


def _scatter_transpose(ct, operand, indices, updates, axes, combine="set"):
    if is_undefined_primal(indices):
        raise NonLinearError("scatter is not linear in its indices")
    lin_op, lin_upd = is_undefined_primal(operand), is_undefined_primal(updates)
    if combine == "add":
        return [ct if lin_op else None, None,
                _gather_fill0(ct, indices, axes) if lin_upd else None]
    if combine == "set":
        wins, kept = _winners(operand.aval if lin_op else get_aval(operand), indices, axes)
        ct_op = _select(kept, _zero_like(ct), ct) if lin_op else None
        ct_upd = (_select(wins, _zero_like(ct), _gather_fill0(ct, indices, axes))
                  if lin_upd else None)
        return [ct_op, None, ct_upd]
    if combine == "mul" and lin_op and not lin_upd:
        return [scatter_p.bind(ct, indices, updates, axes=axes, combine="mul"), None, None]
    raise NonLinearError(f"scatter-{combine} is not linear in its updates")


scatter_p.jvp, scatter_p.transpose = _scatter_jvp, _scatter_transpose


def _dynamic_slice_jvp(primals, tangents, slice_sizes):
    operand, *starts = primals
    out = dynamic_slice_p.bind(operand, *starts, slice_sizes=slice_sizes)
    return out, dynamic_slice_p.bind(tangents[0], *starts, slice_sizes=slice_sizes)


def _dynamic_slice_transpose(ct, operand, *starts, slice_sizes):
    zeros = zeros_like_aval(operand.aval)
    return [dynamic_update_slice_p.bind(zeros, ct, *starts)] + [None] * len(starts)


dynamic_slice_p.jvp, dynamic_slice_p.transpose = _dynamic_slice_jvp, _dynamic_slice_transpose


def _dynamic_update_slice_jvp(primals, tangents):
    operand, update, *starts = primals
    out = dynamic_update_slice_p.bind(operand, update, *starts)
    t_op, t_upd = tangents[0], tangents[1]
    return out, dynamic_update_slice_p.bind(instantiate_zeros(t_op), instantiate_zeros(t_upd),
                                            *starts)


def _dynamic_update_slice_transpose(ct, operand, update, *starts):
    upd_aval = update.aval if is_undefined_primal(update) else get_aval(update)
    ct_op = (dynamic_update_slice_p.bind(ct, zeros_like_aval(upd_aval), *starts)
             if is_undefined_primal(operand) else None)
    ct_upd = (dynamic_slice_p.bind(ct, *starts, slice_sizes=upd_aval.shape)
              if is_undefined_primal(update) else None)
    return [ct_op, ct_upd] + [None] * len(starts)


dynamic_update_slice_p.jvp = _dynamic_update_slice_jvp
dynamic_update_slice_p.transpose = _dynamic_update_slice_transpose
