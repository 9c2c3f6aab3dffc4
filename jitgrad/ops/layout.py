"""Layout primitives: they move or replicate data without arithmetic.

broadcast_in_dim, reshape, transpose, squeeze, rev, slice, pad, concatenate, iota, copy.
Backends turn most of them into index arithmetic inside a fused kernel (a view), so
they rarely cost a pass over memory of their own.
"""
from __future__ import annotations

import numpy as np

from ..core import dtypes
from ..core.abstract import ShapedArray
from ..core.errors import DTypeError, ShapeError
from ..core.primitive import ELEMENTWISE, LAYOUT, Primitive


def _ints(xs) -> tuple[int, ...]:
    return tuple(int(x) for x in xs)


# ---------------------------------------------------------------- broadcast_in_dim
broadcast_in_dim_p = Primitive("broadcast_in_dim", LAYOUT)


@broadcast_in_dim_p.def_impl
def _broadcast_in_dim_impl(x, shape, broadcast_dimensions):
    x = np.asarray(x)
    expanded = [1] * len(shape)
    for src, dst in enumerate(broadcast_dimensions):
        expanded[dst] = x.shape[src]
    return np.broadcast_to(x.reshape(expanded), shape)


@broadcast_in_dim_p.def_abstract_eval
def _broadcast_in_dim_rule(x, shape, broadcast_dimensions):
    shape, dims = _ints(shape), _ints(broadcast_dimensions)
    ok = (len(dims) == x.ndim and all(0 <= d < len(shape) for d in dims)
          and all(a < b for a, b in zip(dims, dims[1:]))
          and all(x.shape[i] in (1, shape[d]) for i, d in enumerate(dims)))
    if not ok:
        raise ShapeError(
            f"broadcast_in_dim: cannot broadcast {x.str_short()} to shape {shape} "
            f"with broadcast_dimensions={dims}",
            hint="Each operand axis i maps to output axis broadcast_dimensions[i] (increasing) "
                 "and must have size 1 or the output size there.")
    return ShapedArray(shape, x.dtype, x.weak_type)


# ---------------------------------------------------------------- reshape
reshape_p = Primitive("reshape", LAYOUT)


@reshape_p.def_impl
def _reshape_impl(x, new_sizes, dimensions=None):
    x = np.asarray(x)
    if dimensions is not None:
        x = np.transpose(x, dimensions)
    return x.reshape(new_sizes)


@reshape_p.def_abstract_eval
def _reshape_rule(x, new_sizes, dimensions=None):
    new_sizes = _ints(new_sizes)
    if any(d < 0 for d in new_sizes) or int(np.prod(new_sizes, dtype=np.int64)) != x.size:
        raise ShapeError(f"reshape: cannot reshape {x.str_short()} ({x.size} elements) "
                         f"into shape {new_sizes}",
                         hint="The new shape must hold the same number of elements.")
    if dimensions is not None and sorted(dimensions) != list(range(x.ndim)):
        raise ShapeError(f"reshape: dimensions={dimensions} is not a permutation for {x.str_short()}")
    return ShapedArray(new_sizes, x.dtype, x.weak_type)


# ---------------------------------------------------------------- transpose
transpose_p = Primitive("transpose", LAYOUT)


@transpose_p.def_impl
def _transpose_impl(x, permutation):
    return np.transpose(x, permutation)


@transpose_p.def_abstract_eval
def _transpose_rule(x, permutation):
    perm = _ints(permutation)
    if sorted(perm) != list(range(x.ndim)):
        raise ShapeError(f"transpose: permutation {perm} does not fit {x.str_short()}",
                         hint=f"Give a permutation of range({x.ndim}).")
    return ShapedArray(tuple(x.shape[p] for p in perm), x.dtype, x.weak_type)


# ---------------------------------------------------------------- squeeze
squeeze_p = Primitive("squeeze", LAYOUT)


@squeeze_p.def_impl
def _squeeze_impl(x, dimensions):
    return np.squeeze(x, axis=tuple(dimensions)) if dimensions else np.asarray(x)


@squeeze_p.def_abstract_eval
def _squeeze_rule(x, dimensions):
    dims = _ints(dimensions)
    for d in dims:
        if not 0 <= d < x.ndim or x.shape[d] != 1:
            raise ShapeError(f"squeeze: axis {d} of {x.str_short()} does not have size 1",
                             hint="Only axes of size 1 can be squeezed.")
    return ShapedArray(tuple(s for i, s in enumerate(x.shape) if i not in dims), x.dtype, x.weak_type)


# ---------------------------------------------------------------- rev
rev_p = Primitive("rev", LAYOUT)


@rev_p.def_impl
def _rev_impl(x, dimensions):
    return np.flip(x, tuple(dimensions)) if dimensions else np.asarray(x)


@rev_p.def_abstract_eval
def _rev_rule(x, dimensions):
    for d in dimensions:
        if not 0 <= d < x.ndim:
            raise ShapeError(f"rev: axis {d} is out of range for {x.str_short()}")
    return x


# ---------------------------------------------------------------- slice
slice_p = Primitive("slice", LAYOUT)


@slice_p.def_impl
def _slice_impl(x, start_indices, limit_indices, strides=None):
    strides = strides or (1,) * len(start_indices)
    return np.asarray(x)[tuple(slice(s, l, st) for s, l, st in zip(start_indices, limit_indices, strides))]


@slice_p.def_abstract_eval
def _slice_rule(x, start_indices, limit_indices, strides=None):
    strides = strides or (1,) * x.ndim
    if not (len(start_indices) == len(limit_indices) == len(strides) == x.ndim):
        raise ShapeError(f"slice: need {x.ndim} start/limit/stride entries for {x.str_short()}")
    shape = []
    for d, (s, l, st) in enumerate(zip(start_indices, limit_indices, strides)):
        if not (0 <= s <= l <= x.shape[d]) or st < 1:
            raise ShapeError(f"slice: [{s}:{l}:{st}] is out of bounds for axis {d} of {x.str_short()}")
        shape.append(max(0, -(-(l - s) // st)))
    return ShapedArray(tuple(shape), x.dtype, x.weak_type)


# ---------------------------------------------------------------- pad
pad_p = Primitive("pad", LAYOUT)


@pad_p.def_impl
def _pad_impl(x, padding_value, padding_config):
    x = np.asarray(x)
    shape = _pad_shape(x.shape, padding_config)
    # Interior and non-negative edge padding first, then crop any negative edges.
    grown = [lo_ + hi_ + (n - 1) * (it + 1) + 1 if n else lo_ + hi_
             for n, (lo_, hi_, it) in zip(x.shape, ((max(lo, 0), max(hi, 0), it)
                                                    for lo, hi, it in padding_config))]
    out = np.full(grown, padding_value, dtype=x.dtype)
    index = tuple(slice(max(lo, 0), max(lo, 0) + (n - 1) * (it + 1) + 1 if n else max(lo, 0), it + 1)
                  for n, (lo, hi, it) in zip(x.shape, padding_config))
    out[index] = x
    crop = tuple(slice(-min(lo, 0), g + min(hi, 0)) for g, (lo, hi, _) in zip(grown, padding_config))
    out = out[crop]
    assert out.shape == shape
    return out


def _pad_shape(shape, config) -> tuple[int, ...]:
    return tuple(lo + hi + n + max(n - 1, 0) * it for n, (lo, hi, it) in zip(shape, config))


@pad_p.def_abstract_eval
def _pad_rule(x, padding_value, padding_config):
    config = tuple(tuple(int(v) for v in c) for c in padding_config)
    if len(config) != x.ndim or any(len(c) != 3 or c[2] < 0 for c in config):
        raise ShapeError(f"pad: padding_config must have one (low, high, interior) triple per "
                         f"axis of {x.str_short()}, got {padding_config}")
    if padding_value.shape != () or padding_value.dtype != x.dtype:
        raise DTypeError(f"pad: padding value must be a scalar of dtype {x.dtype.name}, "
                         f"got {padding_value.str_short()}")
    shape = _pad_shape(x.shape, config)
    if any(d < 0 for d in shape):
        raise ShapeError(f"pad: negative padding {padding_config} removes more than {x.str_short()} has")
    return ShapedArray(shape, x.dtype, x.weak_type)


# ---------------------------------------------------------------- concatenate
concatenate_p = Primitive("concatenate", LAYOUT)


@concatenate_p.def_impl
def _concatenate_impl(*xs, dimension):
    return np.concatenate([np.asarray(x) for x in xs], axis=dimension)


@concatenate_p.def_abstract_eval
def _concatenate_rule(*xs, dimension):
    if not xs:
        raise ShapeError("concatenate needs at least one operand")
    dt = xs[0].dtype
    base = xs[0].shape
    if not 0 <= dimension < len(base):
        raise ShapeError(f"concatenate: dimension {dimension} out of range for {xs[0].str_short()}")
    for x in xs:
        if x.dtype != dt:
            raise DTypeError("concatenate: operands must share a dtype, got "
                             + ", ".join(a.str_short() for a in xs))
        if x.ndim != len(base) or any(a != b for i, (a, b) in enumerate(zip(x.shape, base))
                                      if i != dimension):
            raise ShapeError(f"concatenate: shapes {', '.join(a.str_short() for a in xs)} differ "
                             f"outside axis {dimension}")
    shape = list(base)
    shape[dimension] = sum(x.shape[dimension] for x in xs)
    return ShapedArray(tuple(shape), dt, all(x.weak_type for x in xs))


# ---------------------------------------------------------------- iota
# iota has no operands: out[idx] = idx[dimension]. It is computed pointwise from the
# index, so the fusion pass treats it like an elementwise op.
iota_p = Primitive("iota", ELEMENTWISE)


@iota_p.def_impl
def _iota_impl(dtype, shape, dimension):
    n = shape[dimension]
    vec = np.arange(n, dtype=dtype)
    expanded = [1] * len(shape)
    expanded[dimension] = n
    return np.broadcast_to(vec.reshape(expanded), shape)


@iota_p.def_abstract_eval
def _iota_rule(dtype, shape, dimension):
    if not 0 <= dimension < len(shape):
        raise ShapeError(f"iota: dimension {dimension} out of range for shape {shape}")
    dt = dtypes.canonicalize_dtype(dtype)
    if dt.kind == "b":
        raise DTypeError("iota needs a numeric dtype")
    return ShapedArray(_ints(shape), dt, False)


# ---------------------------------------------------------------- copy
copy_p = Primitive("copy", ELEMENTWISE)
copy_p.impl = lambda x: np.array(x)
copy_p.abstract_eval = lambda x: x
