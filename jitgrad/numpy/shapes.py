"""Shape manipulation: reshape, transpose, stacking, splitting, flipping, padding, tiling."""
from __future__ import annotations

import builtins
import operator
from typing import Any, Sequence

import numpy as np

from .. import lax
from ..core.array import Array
from ..core.errors import ShapeError
from ._util import (as_array, broadcast_shapes, broadcast_to_shape, normalize_axes,
                    normalize_axis, promote_dtypes)

ArrayLike = Any   # a jitgrad array or tracer, a numpy array or scalar, a Python number


def _arr(a, name="jitgrad.numpy"):
    return as_array(a, name)


def _resolve_shape(size: int, shape, name="reshape") -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    shape = [operator.index(d) for d in shape]
    unknown = [i for i, d in enumerate(shape) if d == -1]
    if len(unknown) > 1:
        raise ShapeError(f"{name}: can only specify one unknown dimension (-1), got {tuple(shape)}")
    if unknown:
        known = 1
        for d in shape:
            if d != -1:
                known *= d
        if known == 0 or size % known:
            raise ShapeError(f"{name}: cannot reshape an array of size {size} into shape {tuple(shape)}")
        shape[unknown[0]] = size // known
    total = 1
    for d in shape:
        total *= d
    if total != size:
        raise ShapeError(f"{name}: cannot reshape an array of size {size} into shape {tuple(shape)}",
                         hint="The new shape must have the same number of elements.")
    return tuple(shape)


def reshape(a: ArrayLike, shape=None, order: str = "C", *, newshape=None, copy=None):
    """Give a new shape (one axis may be -1), reading and writing elements in row-major
    (``order='C'``) or column-major (``order='F'``) order. ``copy`` has no effect."""
    if shape is None:
        if newshape is None:
            raise TypeError("reshape() missing the required argument 'shape'")
        shape = newshape
    elif newshape is not None:
        raise TypeError("reshape: give shape or newshape, not both")
    a = _arr(a, "reshape")
    new = _resolve_shape(a.size, shape)
    if order == "C":
        return lax.reshape(a, new)
    if order == "F":
        flipped = lax.reshape(transpose(a), tuple(reversed(new)))
        return transpose(flipped)
    raise NotImplementedError(f"jnp.reshape: order must be 'C' or 'F', got {order!r}")


def ravel(a: ArrayLike, order: str = "C"):
    """The flattened array, in row-major (``'C'``) or column-major (``'F'``) order."""
    a = _arr(a, "ravel")
    if order == "F":
        a = transpose(a)
    elif order not in ("C", "K", "A"):
        raise NotImplementedError(f"jnp.ravel: order must be 'C' or 'F', got {order!r}")
    return lax.reshape(a, (a.size,))


def transpose(a: ArrayLike, axes: Sequence[int] | None = None):
    """Permute axes (reverse them by default)."""
    a = _arr(a, "transpose")
    if axes is None:
        axes = tuple(reversed(range(a.ndim)))
    perm = tuple(normalize_axis(ax, a.ndim, "transpose") for ax in axes)
    if sorted(perm) != list(range(a.ndim)):
        raise ShapeError(f"transpose: axes {tuple(axes)} don't match an array of rank {a.ndim}")
    return lax.transpose(a, perm)


permute_dims = transpose


def matrix_transpose(x: ArrayLike):
    """Swap the last two axes."""
    x = _arr(x, "matrix_transpose")
    if x.ndim < 2:
        raise ShapeError(f"matrix_transpose needs at least 2 axes, got shape {x.shape}")
    return swapaxes(x, -1, -2)


def swapaxes(a: ArrayLike, axis1: int, axis2: int):
    """Exchange two axes."""
    a = _arr(a, "swapaxes")
    perm = list(range(a.ndim))
    i, j = normalize_axis(axis1, a.ndim, "swapaxes"), normalize_axis(axis2, a.ndim, "swapaxes")
    perm[i], perm[j] = perm[j], perm[i]
    return lax.transpose(a, perm)


def moveaxis(a: ArrayLike, source, destination):
    """Move axes to new positions, keeping the others in order."""
    a = _arr(a, "moveaxis")
    src = [source] if isinstance(source, (int, np.integer)) else list(source)
    dst = [destination] if isinstance(destination, (int, np.integer)) else list(destination)
    if len(src) != len(dst):
        raise ShapeError("moveaxis: source and destination must have the same number of axes")
    src = [normalize_axis(s, a.ndim, "moveaxis") for s in src]
    dst = [normalize_axis(d, a.ndim, "moveaxis") for d in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ShapeError(f"moveaxis: repeated axis in source {source} or destination {destination}")
    order = [i for i in range(a.ndim) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return lax.transpose(a, order)


def rollaxis(a: ArrayLike, axis: int, start: int = 0):
    """Roll ``axis`` backwards until it lies at ``start`` (numpy.rollaxis)."""
    a = _arr(a, "rollaxis")
    axis = normalize_axis(axis, a.ndim, "rollaxis")
    start = start % (a.ndim + 1) if start < 0 else start
    if axis < start:
        start -= 1
    return moveaxis(a, axis, start)


def expand_dims(a: ArrayLike, axis):
    """Insert axes of size 1 at ``axis`` (an int or a tuple)."""
    a = _arr(a, "expand_dims")
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    nd = a.ndim + len(axes)
    dims = sorted(normalize_axis(ax, nd, "expand_dims") for ax in axes)
    if len(set(dims)) != len(dims):
        raise ShapeError(f"expand_dims: repeated axis in {axis}")
    shape = list(a.shape)
    for d in dims:
        shape.insert(d, 1)
    return lax.reshape(a, shape)


def squeeze(a: ArrayLike, axis=None):
    """Remove axes of size 1 (all of them, or the given ones)."""
    a = _arr(a, "squeeze")
    if axis is None:
        axes = tuple(i for i, d in enumerate(a.shape) if d == 1)
    else:
        axes = normalize_axes(axis, a.ndim, "squeeze")
        for ax in axes:
            if a.shape[ax] != 1:
                raise ShapeError(f"squeeze: cannot select an axis to squeeze out which has size "
                                 f"not equal to one (axis {ax} of shape {a.shape})")
    return lax.squeeze(a, axes) if axes else a


def broadcast_to(array: ArrayLike, shape):
    """Broadcast to ``shape`` with numpy rules."""
    a = _arr(array, "broadcast_to")
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)
    tail = shape[len(shape) - a.ndim:] if a.ndim else ()
    if len(shape) < a.ndim or any(d not in (1, t) for d, t in zip(a.shape, tail)):
        raise ShapeError(f"broadcast_to: cannot broadcast an array of shape {a.shape} to {shape}",
                         hint="Each axis must match or be 1, aligned from the right.")
    return broadcast_to_shape(a, shape)


def broadcast_arrays(*args):
    """Broadcast all arguments to one shape."""
    arrs = [_arr(a, "broadcast_arrays") for a in args]
    shape = broadcast_shapes("broadcast_arrays", *[a.shape for a in arrs])
    return [broadcast_to_shape(a, shape) for a in arrs]


def concatenate(arrays: Sequence[ArrayLike], axis: int | None = 0, dtype=None):
    """Join arrays along an existing axis (flattened first if ``axis`` is None)."""
    arrs = [_arr(a, "concatenate") for a in arrays]
    if not arrs:
        raise ValueError("need at least one array to concatenate")
    if axis is None:
        arrs = [ravel(a) for a in arrs]
        axis = 0
    arrs = promote_dtypes(*arrs)
    if dtype is not None:
        arrs = [lax.convert_element_type(a, dtype) for a in arrs]
    if arrs[0].ndim == 0:
        raise ShapeError("concatenate: zero-dimensional arrays cannot be concatenated",
                         hint="Use jnp.stack to join scalars.")
    ax = normalize_axis(axis, arrs[0].ndim, "concatenate")
    for a in arrs:
        if a.ndim != arrs[0].ndim:
            raise ShapeError("concatenate: all the input arrays must have the same number of "
                             f"dimensions, got shapes {[x.shape for x in arrs]}")
    return lax.concatenate(arrs, ax)


concat = concatenate


def stack(arrays: Sequence[ArrayLike], axis: int = 0, out=None, dtype=None):
    """Join arrays of one shape along a new axis."""
    if out is not None:
        raise NotImplementedError("The 'out' argument to jnp.stack is not supported.")
    arrs = [_arr(a, "stack") for a in arrays]
    if not arrs:
        raise ValueError("need at least one array to stack")
    shapes = {a.shape for a in arrs}
    if len(shapes) != 1:
        raise ShapeError(f"stack: all input arrays must have the same shape, got {[a.shape for a in arrs]}")
    ax = normalize_axis(axis, arrs[0].ndim + 1, "stack")
    return concatenate([expand_dims(a, ax) for a in arrs], axis=ax, dtype=dtype)


def atleast_1d(*arys: ArrayLike):
    """Views with at least one axis."""
    outs = [_arr(a) if _arr(a).ndim >= 1 else reshape(a, (1,)) for a in arys]
    return outs[0] if len(outs) == 1 else outs


def atleast_2d(*arys: ArrayLike):
    """Views with at least two axes."""
    outs = []
    for a in arys:
        a = _arr(a)
        outs.append(a if a.ndim >= 2 else reshape(a, (1,) * (2 - a.ndim) + a.shape))
    return outs[0] if len(outs) == 1 else outs


def atleast_3d(*arys: ArrayLike):
    """Views with at least three axes (numpy's placement of the new axes)."""
    outs = []
    for a in arys:
        a = _arr(a)
        if a.ndim == 0:
            a = reshape(a, (1, 1, 1))
        elif a.ndim == 1:
            a = reshape(a, (1, a.shape[0], 1))
        elif a.ndim == 2:
            a = reshape(a, a.shape + (1,))
        outs.append(a)
    return outs[0] if len(outs) == 1 else outs


def hstack(tup: Sequence[ArrayLike], dtype=None):
    """Stack horizontally (axis 1, or 0 for 1-D arrays)."""
    arrs = [atleast_1d(a) for a in tup]
    return concatenate(arrs, axis=0 if arrs[0].ndim == 1 else 1, dtype=dtype)


def vstack(tup: Sequence[ArrayLike], dtype=None):
    """Stack vertically (rows)."""
    return concatenate([atleast_2d(a) for a in tup], axis=0, dtype=dtype)


row_stack = vstack


def dstack(tup: Sequence[ArrayLike], dtype=None):
    """Stack along the third axis."""
    return concatenate([atleast_3d(a) for a in tup], axis=2, dtype=dtype)


def column_stack(tup: Sequence[ArrayLike]):
    """Stack 1-D arrays as columns of a 2-D array."""
    arrs = []
    for a in tup:
        a = _arr(a)
        arrs.append(reshape(a, (a.shape[0], 1)) if a.ndim < 2 else a)
    return concatenate(arrs, axis=1)


def _split_points(n: int, indices_or_sections, name: str, exact: bool):
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if k <= 0:
            raise ValueError(f"{name}: number of sections must be larger than 0")
        if exact and n % k:
            raise ShapeError(f"{name}: array split does not result in an equal division "
                             f"({n} elements into {k} sections)",
                             hint="Use jnp.array_split for unequal sections.")
        base, extra = divmod(n, k)
        sizes = [base + 1] * extra + [base] * (k - extra)
        points = list(np.cumsum([0] + sizes))
    else:
        points = [0] + [builtins.min(builtins.max(int(i) if i >= 0 else int(i) + n, 0), n)
                        for i in indices_or_sections] + [n]
    return points


def split(ary: ArrayLike, indices_or_sections, axis: int = 0):
    """Split into equal sections, or at the given indices."""
    return _split(ary, indices_or_sections, axis, "split", exact=True)


def array_split(ary: ArrayLike, indices_or_sections, axis: int = 0):
    """Split into nearly equal sections (sizes may differ by one)."""
    return _split(ary, indices_or_sections, axis, "array_split", exact=False)


def _split(ary, indices_or_sections, axis, name, exact):
    a = _arr(ary, name)
    ax = normalize_axis(axis, a.ndim, name)
    points = _split_points(a.shape[ax], indices_or_sections, name, exact)
    outs = []
    for start, stop in zip(points[:-1], points[1:]):
        outs.append(lax.slice_in_dim(a, start, builtins.max(start, stop), 1, ax))
    return outs


def hsplit(ary: ArrayLike, indices_or_sections):
    """Split along axis 1 (axis 0 for 1-D)."""
    a = _arr(ary)
    return split(a, indices_or_sections, axis=1 if a.ndim > 1 else 0)


def vsplit(ary: ArrayLike, indices_or_sections):
    """Split along axis 0."""
    return split(ary, indices_or_sections, axis=0)


def flip(m: ArrayLike, axis=None):
    """Reverse the order of elements along ``axis`` (all axes by default)."""
    a = _arr(m, "flip")
    axes = normalize_axes(axis, a.ndim, "flip")
    return lax.rev(a, axes) if axes else a


def fliplr(m: ArrayLike):
    """Reverse along axis 1."""
    return flip(m, 1)


def flipud(m: ArrayLike):
    """Reverse along axis 0."""
    return flip(m, 0)


def roll(a: ArrayLike, shift, axis=None):
    """Shift elements cyclically along ``axis`` (flattened if None)."""
    a = _arr(a, "roll")
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), a.shape)
    shifts = (shift,) if isinstance(shift, (int, np.integer)) else tuple(shift)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if len(shifts) == 1:
        shifts = shifts * len(axes)
    out = a
    for s, ax in zip(shifts, axes):
        ax = normalize_axis(ax, a.ndim, "roll")
        n = a.shape[ax]
        if n == 0:
            continue
        s = int(s) % n
        if s:
            out = lax.concatenate([lax.slice_in_dim(out, n - s, n, 1, ax),
                                   lax.slice_in_dim(out, 0, n - s, 1, ax)], ax)
    return out


def rot90(m: ArrayLike, k: int = 1, axes=(0, 1)):
    """Rotate by 90 degrees in the plane of ``axes``."""
    m = _arr(m, "rot90")
    k = k % 4
    a0, a1 = axes
    if k == 0:
        return m
    if k == 2:
        return flip(flip(m, a0), a1)
    if k == 1:
        return swapaxes(flip(m, a1), a0, a1)
    return flip(swapaxes(m, a0, a1), a1)


def _pad_widths(pad_width, ndim):
    pw = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (ndim, 2))
    if (pw < 0).any():
        raise ValueError("pad: negative pad widths are not allowed")
    return [(int(lo), int(hi)) for lo, hi in pw]


def pad(array: ArrayLike, pad_width, mode: str = "constant", *, constant_values=0,
        reflect_type: str = "even"):
    """Pad an array; modes 'constant' (``constant_values``, per axis and side if an array),
    'empty' (zeros), 'edge', 'reflect', 'symmetric' and 'wrap'.

    ``pad_width`` is an int, a (before, after) pair, or one pair per axis. Only
    ``reflect_type='even'`` is supported.
    """
    a = _arr(array, "pad")
    widths = _pad_widths(pad_width, a.ndim)
    if reflect_type != "even":
        raise NotImplementedError("jnp.pad: only reflect_type='even' is supported")
    if mode == "empty":
        mode, constant_values = "constant", 0
    elif mode != "constant" and not (isinstance(constant_values, (int, float))
                                     and constant_values == 0):
        raise ValueError(f"jnp.pad: constant_values is only used with mode='constant', not {mode!r}")
    if mode == "constant":
        cv = np.broadcast_to(np.asarray(constant_values), (a.ndim, 2)) \
            if np.ndim(constant_values) else None
        if cv is None:
            from .creation import asarray
            value = lax.convert_element_type(asarray(constant_values), a.dtype)
            return lax.pad(a, value, [(lo, hi, 0) for lo, hi in widths])
        out = a
        for ax, (lo, hi) in enumerate(widths):
            cfg = [(0, 0, 0)] * a.ndim
            cfg[ax] = (lo, 0, 0)
            out = lax.pad(out, np.asarray(cv[ax][0], a.dtype), cfg)
            cfg[ax] = (0, hi, 0)
            out = lax.pad(out, np.asarray(cv[ax][1], a.dtype), cfg)
        return out
    if mode not in ("edge", "reflect", "symmetric", "wrap"):
        raise NotImplementedError(f"jnp.pad: mode {mode!r} is not supported (supported: "
                                  "'constant', 'empty', 'edge', 'reflect', 'symmetric', 'wrap')")
    out = a
    for ax, (lo, hi) in enumerate(widths):
        n = out.shape[ax]
        if lo == 0 and hi == 0:
            continue
        if n == 0:
            raise ValueError(f"pad: can't extend an empty axis {ax} with mode {mode!r}")
        pieces = []
        if lo:
            pieces.append(_pad_piece(out, ax, lo, mode, left=True))
        pieces.append(out)
        if hi:
            pieces.append(_pad_piece(out, ax, hi, mode, left=False))
        out = lax.concatenate(pieces, ax)
    return out


def _pad_piece(a, ax, width, mode, left):
    n = a.shape[ax]
    if mode == "edge":
        idx = [0] * width if left else [n - 1] * width
    elif mode == "wrap":
        idx = [(i - width) % n for i in range(width)] if left else [i % n for i in range(width)]
    else:
        # reflect excludes the edge value, symmetric repeats it; bounce back and forth.
        period = 2 * (n - 1) if mode == "reflect" else 2 * n
        def refl(i):  # index of position i in the infinitely reflected sequence
            if period == 0:
                return 0
            i %= period
            if mode == "reflect":
                return i if i < n else period - i
            return i if i < n else period - 1 - i
        idx = [refl(-(width - i)) for i in range(width)] if left else [refl(n - 1 + i + 1)
                                                                       for i in range(width)]
    from .indexing import take
    return take(a, np.asarray(idx, dtype=np.int32), axis=ax)


def repeat(a: ArrayLike, repeats, axis=None, *, total_repeat_length=None):
    """Repeat each element ``repeats`` times (an int, or one count per element along ``axis``;
    the counts must be concrete). ``total_repeat_length``, if given, must equal the
    resulting length (JAX's padding/truncation to another length is not supported)."""
    a = _arr(a, "repeat")
    if axis is None:
        a, axis = ravel(a), 0
    ax = normalize_axis(axis, a.ndim, "repeat")
    if total_repeat_length is not None:
        from ..core.trace import Tracer
        reps_now = np.asarray(repeats) if not isinstance(repeats, Tracer) else None
        total = None if reps_now is None else int(
            np.sum(np.broadcast_to(reps_now, (a.shape[ax],))))
        if total != total_repeat_length:
            raise NotImplementedError(
                "jnp.repeat: total_repeat_length must equal the sum of the (concrete) repeats; "
                "padding or truncating to another length is not supported")
    if isinstance(repeats, (int, np.integer)):
        r = int(repeats)
        expanded = expand_dims(a, ax + 1)
        shape = list(expanded.shape)
        shape[ax + 1] = r
        tiled = broadcast_to_shape(expanded, tuple(shape))
        new_shape = list(a.shape)
        new_shape[ax] *= r
        return lax.reshape(tiled, new_shape)
    from ..core.trace import Tracer
    if isinstance(repeats, Tracer):
        raise NotImplementedError(
            "jnp.repeat: traced repeats (the output size depends on their values) are not "
            "supported; pass concrete repeats.")
    reps = np.asarray(repeats)
    if reps.size == 0 or reps.dtype == np.bool_:
        reps = reps.astype(np.int64)
    idx = np.repeat(np.arange(a.shape[ax]), reps)
    from .indexing import take
    return take(a, idx.astype(np.int32), axis=ax)


def tile(A: ArrayLike, reps):
    """Repeat the whole array ``reps`` times along each axis."""
    a = _arr(A, "tile")
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    nd = builtins.max(a.ndim, len(reps))
    a = lax.reshape(a, (1,) * (nd - a.ndim) + a.shape)
    reps = (1,) * (nd - len(reps)) + reps
    # Broadcast to (r0, n0, r1, n1, ...) then merge each pair of axes.
    inter, dims = [], []
    for i, (r, n) in enumerate(zip(reps, a.shape)):
        inter += [r, n]
        dims.append(2 * i + 1)
    out = lax.broadcast_in_dim(a, inter, dims)
    return lax.reshape(out, [r * n for r, n in zip(reps, a.shape)])


def diff(a: ArrayLike, n: int = 1, axis: int = -1, prepend=None, append=None):
    """n-th discrete difference along ``axis``."""
    from . import ufuncs
    a = _arr(a, "diff")
    ax = normalize_axis(axis, a.ndim, "diff")
    pieces = []
    for extra, where in ((prepend, "pre"), (append, "app")):
        if extra is not None:
            e = _arr(extra)
            if e.ndim == 0:
                shape = list(a.shape)
                shape[ax] = 1
                e = broadcast_to(e, shape)
            pieces.append((where, e))
    if pieces:
        parts = [e for w, e in pieces if w == "pre"] + [a] + [e for w, e in pieces if w == "app"]
        a = concatenate(parts, axis=ax)
    for _ in range(n):
        m = a.shape[ax]
        a = ufuncs.subtract(lax.slice_in_dim(a, builtins.min(1, m), m, 1, ax),
                            lax.slice_in_dim(a, 0, builtins.max(m - 1, 0), 1, ax))
    return a


def shape(a: ArrayLike):
    """The shape of ``a``."""
    return np.shape(a) if not isinstance(a, Array) else a.shape


def ndim(a: ArrayLike):
    """The number of axes of ``a``."""
    return len(shape(a))


def size(a: ArrayLike, axis=None):
    """The number of elements (along ``axis``)."""
    s = shape(a)
    if axis is not None:
        return s[axis]
    n = 1
    for d in s:
        n *= d
    return n
