"""``jitgrad.lax``: the primitives under JAX's ``jax.lax`` names.

These are thin: operands must already agree in dtype and shape (rank-0 operands and
Python scalars broadcast), exactly as in JAX. ``jitgrad.numpy`` builds numpy semantics
(promotion, broadcasting, negative axes) on top of them.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .core import dtypes
from .core.array import Array, ArrayImpl
from .core.trace import get_aval
from .ops import elementwise as ew
from .ops import indexing as ix
from .ops import layout as lo
from .ops import linalg as la
from .ops import reductions as rd

_PY_SCALARS = (int, float, bool)


def _match_scalars(*args):
    """Give Python scalars the dtype of the array operands (JAX's weak typing for lax)."""
    dtype = next((get_aval(a).dtype for a in args if not isinstance(a, _PY_SCALARS)), None)
    if dtype is None:
        dtype, weak = dtypes.result_type(*args, return_weak_type_flag=True)
        return [ArrayImpl(np.asarray(a, dtype), weak) for a in args]
    return [np.asarray(a, dtype) if isinstance(a, _PY_SCALARS) else a for a in args]


def _unary(p):
    def op(x):
        (x,) = _match_scalars(x)
        return p.bind(x)
    op.__name__ = p.name
    op.__doc__ = f"Elementwise ``{p.name}`` (the ``{p.name}`` primitive)."
    return op


def _binary(p):
    def op(x, y):
        x, y = _match_scalars(x, y)
        return p.bind(x, y)
    op.__name__ = p.name
    op.__doc__ = f"Elementwise ``{p.name}`` of two operands of one dtype (the ``{p.name}`` primitive)."
    return op


add, sub, mul, div, rem, pow, max, min = map(_binary, (ew.add_p, ew.sub_p, ew.mul_p, ew.div_p,
                                                        ew.rem_p, ew.pow_p, ew.max_p, ew.min_p))
atan2, nextafter = _binary(ew.atan2_p), _binary(ew.nextafter_p)
eq, ne, lt, le, gt, ge = map(_binary, (ew.eq_p, ew.ne_p, ew.lt_p, ew.le_p, ew.gt_p, ew.ge_p))
bitwise_and, bitwise_or, bitwise_xor = map(_binary, (ew.and_p, ew.or_p, ew.xor_p))
bitwise_not = _unary(ew.not_p)
shift_left = _binary(ew.shift_left_p)
shift_right_logical = _binary(ew.shift_right_logical_p)
shift_right_arithmetic = _binary(ew.shift_right_arithmetic_p)

(neg, sign, abs, square, floor, ceil, is_finite, exp, exp2, log, log1p, expm1, sqrt, rsqrt,
 cbrt, tanh, logistic, sin, cos, tan, asin, acos, atan, sinh, cosh, asinh, acosh, atanh, erf,
 erf_inv, lgamma) = map(_unary, (
    ew.neg_p, ew.sign_p, ew.abs_p, ew.square_p, ew.floor_p, ew.ceil_p, ew.is_finite_p, ew.exp_p,
    ew.exp2_p, ew.log_p, ew.log1p_p, ew.expm1_p, ew.sqrt_p, ew.rsqrt_p, ew.cbrt_p, ew.tanh_p,
    ew.logistic_p, ew.sin_p, ew.cos_p, ew.tan_p, ew.asin_p, ew.acos_p, ew.atan_p, ew.sinh_p,
    ew.cosh_p, ew.asinh_p, ew.acosh_p, ew.atanh_p, ew.erf_p, ew.erf_inv_p, ew.lgamma_p))


class RoundingMethod:
    """How ``lax.round`` breaks ties (JAX's enum values)."""
    AWAY_FROM_ZERO = 0
    TO_NEAREST_EVEN = 1


def round(x, rounding_method: int = RoundingMethod.AWAY_FROM_ZERO):
    """Round to the nearest integer; ties away from zero unless TO_NEAREST_EVEN."""
    return ew.round_p.bind(x, rounding_method=int(rounding_method))


def integer_pow(x, y: int):
    """``x ** y`` for a static Python int ``y``."""
    return ew.integer_pow_p.bind(x, y=int(y))


def select_n(which, *cases):
    """``cases[which]`` elementwise: a bool ``which`` picks cases[1] where True."""
    return ew.select_n_p.bind(which, *cases)


def select(pred, on_true, on_false):
    """``on_true`` where ``pred`` else ``on_false`` (JAX's older name)."""
    return ew.select_n_p.bind(pred, on_false, on_true)


def clamp(min, x, max):
    """``x`` limited to [min, max]; the bounds may be scalars."""
    min, x, max = _match_scalars(min, x, max)
    return ew.clamp_p.bind(min, x, max)


def convert_element_type(operand, new_dtype):
    """Convert to ``new_dtype`` (float->int truncates toward zero and saturates; NaN -> 0)."""
    new_dtype = dtypes.canonicalize_dtype(new_dtype)
    if isinstance(operand, _PY_SCALARS):
        operand = np.asarray(operand, dtypes.dtype(operand))
    if get_aval(operand).dtype == new_dtype and not getattr(operand, "weak_type", False):
        return operand
    return ew.convert_element_type_p.bind(operand, new_dtype=new_dtype, weak_type=False)


def bitcast_convert_type(operand, new_dtype):
    """Reinterpret the bits of ``operand`` as ``new_dtype`` (same width)."""
    return ew.bitcast_convert_type_p.bind(operand, new_dtype=np.dtype(new_dtype))


def stop_gradient(x):
    """Identity whose derivative is zero (pytrees accepted)."""
    from .core.pytree import tree_map
    from .ops.calls import stop_gradient_p
    return tree_map(lambda v: stop_gradient_p.bind(v) if isinstance(v, Array) else v, x)


# ------------------------------------------------------------------------- reductions

def reduce_sum(operand, axes: Sequence[int]):
    """Sum over ``axes``."""
    return rd.reduce_sum_p.bind(operand, axes=tuple(axes))


def reduce_prod(operand, axes: Sequence[int]):
    """Product over ``axes``."""
    return rd.reduce_prod_p.bind(operand, axes=tuple(axes))


def reduce_max(operand, axes: Sequence[int]):
    """Maximum over ``axes`` (NaN propagates; -inf for an empty axis)."""
    return rd.reduce_max_p.bind(operand, axes=tuple(axes))


def reduce_min(operand, axes: Sequence[int]):
    """Minimum over ``axes`` (NaN propagates; +inf for an empty axis)."""
    return rd.reduce_min_p.bind(operand, axes=tuple(axes))


def reduce_and(operand, axes: Sequence[int]):
    """Logical/bitwise AND over ``axes``."""
    return rd.reduce_and_p.bind(operand, axes=tuple(axes))


def reduce_or(operand, axes: Sequence[int]):
    """Logical/bitwise OR over ``axes``."""
    return rd.reduce_or_p.bind(operand, axes=tuple(axes))


def reduce_xor(operand, axes: Sequence[int]):
    """Bitwise XOR over ``axes``."""
    return rd.reduce_xor_p.bind(operand, axes=tuple(axes))


def argmax(operand, axis: int, index_dtype):
    """Index of the maximum along ``axis`` (first one on ties; NaN counts as the maximum)."""
    return rd.argmax_p.bind(operand, axes=(int(axis),), index_dtype=dtypes.canonicalize_dtype(index_dtype))


def argmin(operand, axis: int, index_dtype):
    """Index of the minimum along ``axis`` (first one on ties)."""
    return rd.argmin_p.bind(operand, axes=(int(axis),), index_dtype=dtypes.canonicalize_dtype(index_dtype))


def cumsum(operand, axis: int = 0, reverse: bool = False):
    """Inclusive cumulative sum along ``axis``."""
    return rd.cumsum_p.bind(operand, axis=int(axis), reverse=bool(reverse))


def cumprod(operand, axis: int = 0, reverse: bool = False):
    """Inclusive cumulative product along ``axis``."""
    return rd.cumprod_p.bind(operand, axis=int(axis), reverse=bool(reverse))


def cummax(operand, axis: int = 0, reverse: bool = False):
    """Inclusive cumulative maximum along ``axis``."""
    return rd.cummax_p.bind(operand, axis=int(axis), reverse=bool(reverse))


def cummin(operand, axis: int = 0, reverse: bool = False):
    """Inclusive cumulative minimum along ``axis``."""
    return rd.cummin_p.bind(operand, axis=int(axis), reverse=bool(reverse))


def cumlogsumexp(operand, axis: int = 0, reverse: bool = False):
    """Inclusive cumulative log-sum-exp along ``axis``."""
    return rd.cumlogsumexp_p.bind(operand, axis=int(axis), reverse=bool(reverse))


# ------------------------------------------------------------------------- layout

def broadcast_in_dim(operand, shape: Sequence[int], broadcast_dimensions: Sequence[int]):
    """Broadcast ``operand`` to ``shape``; its axis i becomes output axis broadcast_dimensions[i]."""
    shape, dims = tuple(int(d) for d in shape), tuple(int(d) for d in broadcast_dimensions)
    aval = get_aval(operand)
    if aval.shape == shape and dims == tuple(range(len(shape))):
        return operand
    return lo.broadcast_in_dim_p.bind(operand, shape=shape, broadcast_dimensions=dims)


def broadcast(operand, sizes: Sequence[int]):
    """Add leading axes of the given sizes."""
    aval = get_aval(operand)
    sizes = tuple(int(s) for s in sizes)
    dims = tuple(range(len(sizes), len(sizes) + aval.ndim))
    return broadcast_in_dim(operand, sizes + aval.shape, dims)


def reshape(operand, new_sizes: Sequence[int], dimensions: Sequence[int] | None = None):
    """Reshape (after transposing by ``dimensions`` if given), row-major."""
    new_sizes = tuple(int(d) for d in new_sizes)
    if dimensions is None and get_aval(operand).shape == new_sizes:
        return operand
    dims = None if dimensions is None else tuple(int(d) for d in dimensions)
    return lo.reshape_p.bind(operand, new_sizes=new_sizes, dimensions=dims)


def transpose(operand, permutation: Sequence[int]):
    """Permute axes."""
    perm = tuple(int(p) for p in permutation)
    if perm == tuple(range(len(perm))) and get_aval(operand).ndim == len(perm):
        return operand
    return lo.transpose_p.bind(operand, permutation=perm)


def squeeze(array, dimensions: Sequence[int]):
    """Remove the listed axes of size 1."""
    ndim = get_aval(array).ndim
    dims = tuple(sorted(int(d) % ndim if ndim else int(d) for d in dimensions))
    if not dims:
        return array
    return lo.squeeze_p.bind(array, dimensions=dims)


def expand_dims(array, dimensions: Sequence[int]):
    """Insert axes of size 1 at the given output positions."""
    aval = get_aval(array)
    nd = aval.ndim + len(dimensions)
    dims = sorted(int(d) % nd for d in dimensions)
    shape = list(aval.shape)
    for d in dims:
        shape.insert(d, 1)
    return reshape(array, shape)


def rev(operand, dimensions: Sequence[int]):
    """Reverse the order of elements along ``dimensions``."""
    return lo.rev_p.bind(operand, dimensions=tuple(int(d) for d in dimensions))


def slice(operand, start_indices, limit_indices, strides=None):
    """Static slice ``operand[start:limit:stride]`` on every axis."""
    return lo.slice_p.bind(operand, start_indices=tuple(int(i) for i in start_indices),
                           limit_indices=tuple(int(i) for i in limit_indices),
                           strides=None if strides is None else tuple(int(s) for s in strides))


def slice_in_dim(operand, start_index, limit_index, stride=1, axis=0):
    """Static slice along one axis."""
    aval = get_aval(operand)
    axis = axis % aval.ndim
    n = aval.shape[axis]
    start = 0 if start_index is None else (start_index + n if start_index < 0 else start_index)
    limit = n if limit_index is None else (limit_index + n if limit_index < 0 else limit_index)
    starts, limits, strides = [0] * aval.ndim, list(aval.shape), [1] * aval.ndim
    starts[axis], limits[axis], strides[axis] = start, limit, stride
    return slice(operand, starts, limits, strides)


def index_in_dim(operand, index, axis=0, keepdims=True):
    """The static ``index``-th entry along ``axis``."""
    aval = get_aval(operand)
    axis = axis % aval.ndim
    index = index + aval.shape[axis] if index < 0 else index
    out = slice_in_dim(operand, index, index + 1, 1, axis)
    return out if keepdims else squeeze(out, (axis,))


def pad(operand, padding_value, padding_config):
    """Pad with (low, high, interior) amounts per axis; negative low/high crop."""
    (padding_value,) = _match_scalars_to(operand, padding_value)
    config = tuple(tuple(int(v) for v in c) for c in padding_config)
    return lo.pad_p.bind(operand, padding_value, padding_config=config)


def _match_scalars_to(ref, *args):
    dt = get_aval(ref).dtype
    return [np.asarray(a, dt) if isinstance(a, _PY_SCALARS) else a for a in args]


def concatenate(operands: Sequence[Any], dimension: int):
    """Join operands along ``dimension``."""
    if len(operands) == 1:
        return operands[0]
    return lo.concatenate_p.bind(*operands, dimension=int(dimension))


def iota(dtype, size: int):
    """``[0, 1, ..., size-1]``."""
    return lo.iota_p.bind(dtype=dtypes.canonicalize_dtype(dtype), shape=(int(size),), dimension=0)


def broadcasted_iota(dtype, shape: Sequence[int], dimension: int):
    """An array of ``shape`` whose entries are their index along ``dimension``."""
    return lo.iota_p.bind(dtype=dtypes.canonicalize_dtype(dtype),
                          shape=tuple(int(s) for s in shape), dimension=int(dimension))


def full(shape: Sequence[int], fill_value, dtype=None):
    """An array of ``shape`` filled with ``fill_value`` (weakly typed for a Python scalar)."""
    weak = dtype is None and dtypes.is_weakly_typed(fill_value)
    dtype = dtypes.canonicalize_dtype(dtype) if dtype is not None else dtypes.dtype(fill_value)
    if isinstance(fill_value, Array):
        value = convert_element_type(fill_value, dtype)
    else:
        value = ArrayImpl(np.asarray(fill_value, dtype), weak)
    return broadcast_in_dim(value, tuple(shape), ())


def full_like(x, fill_value, dtype=None, shape=None):
    """Like ``full`` with the shape and dtype of ``x`` by default."""
    aval = get_aval(x)
    return full(aval.shape if shape is None else shape, fill_value,
                aval.dtype if dtype is None else dtype)


def zeros_like_array(x):
    """Zeros with the shape and dtype of ``x``."""
    return full_like(x, 0)


# ------------------------------------------------------------------------- contractions

def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    """General contraction; ``dimension_numbers = ((lc, rc), (lb, rb))``."""
    (lc, rc), (lb, rb) = dimension_numbers
    dn = ((tuple(int(a) for a in lc), tuple(int(a) for a in rc)),
          (tuple(int(a) for a in lb), tuple(int(a) for a in rb)))
    pet = None if preferred_element_type is None else dtypes.canonicalize_dtype(preferred_element_type)
    return la.dot_general_p.bind(lhs, rhs, dimension_numbers=dn, preferred_element_type=pet)


def dot(lhs, rhs, precision=None, preferred_element_type=None):
    """Vector/matrix product contracting the last axis of lhs with the first of rhs."""
    lnd = get_aval(lhs).ndim
    return dot_general(lhs, rhs, (((lnd - 1,), (0,)), ((), ())),
                       preferred_element_type=preferred_element_type)


def batch_matmul(lhs, rhs):
    """Matmul over the last two axes, batched over the leading ones."""
    nd = get_aval(lhs).ndim
    batch = tuple(range(nd - 2))
    return dot_general(lhs, rhs, (((nd - 1,), (nd - 2,)), (batch, batch)))


# ------------------------------------------------------------------------- indexing

def dynamic_slice(operand, start_indices: Sequence[Any], slice_sizes: Sequence[int]):
    """``operand[start:start+size]`` with traced starts, clamped to stay in bounds."""
    starts = [_index_scalar(s) for s in start_indices]
    return ix.dynamic_slice_p.bind(operand, *starts, slice_sizes=tuple(int(k) for k in slice_sizes))


def dynamic_update_slice(operand, update, start_indices: Sequence[Any]):
    """``operand`` with ``update`` written at traced offsets (clamped to stay in bounds)."""
    starts = [_index_scalar(s) for s in start_indices]
    return ix.dynamic_update_slice_p.bind(operand, update, *starts)


def _index_scalar(s):
    if isinstance(s, (int, np.integer)):
        return np.asarray(s, dtypes.default_int_dtype())
    return s


def dynamic_slice_in_dim(operand, start_index, slice_size: int, axis: int = 0):
    """``dynamic_slice`` along one axis."""
    aval = get_aval(operand)
    axis = axis % aval.ndim
    starts = [0] * aval.ndim
    starts[axis] = start_index
    sizes = list(aval.shape)
    sizes[axis] = slice_size
    return dynamic_slice(operand, starts, sizes)


def dynamic_index_in_dim(operand, index, axis: int = 0, keepdims: bool = True):
    """The traced ``index``-th entry along ``axis``."""
    out = dynamic_slice_in_dim(operand, index, 1, axis)
    return out if keepdims else squeeze(out, (axis % get_aval(operand).ndim,))


def dynamic_update_slice_in_dim(operand, update, start_index, axis: int):
    """``dynamic_update_slice`` along one axis."""
    aval = get_aval(operand)
    axis = axis % aval.ndim
    starts = [0] * aval.ndim
    starts[axis] = start_index
    return dynamic_update_slice(operand, update, starts)


def dynamic_update_index_in_dim(operand, update, index, axis: int):
    """Write ``update`` (without the ``axis``) at a traced ``index`` along ``axis``."""
    aval = get_aval(operand)
    axis = axis % aval.ndim
    if get_aval(update).ndim == aval.ndim - 1:
        update = expand_dims(update, (axis,))
    return dynamic_update_slice_in_dim(operand, update, index, axis)


# ------------------------------------------------------------------------- control flow
# Defined with their primitives in ops/control.py. ``map`` is JAX's lax.map; it shadows the
# builtin from here on, so nothing above this line may call the builtin ``map`` at run time.
from .ops.control import cond, fori_loop, map, scan, switch, while_loop  # noqa: E402,F401,A004


# ------------------------------------------------------------------------- convolution, pooling
# Defined with their primitives in ops/conv.py and ops/windows.py.
from .ops.conv import (ConvDimensionNumbers, conv, conv_dimension_numbers,  # noqa: E402,F401
                       conv_general_dilated, conv_with_general_padding, padtype_to_pads)
from .ops.windows import reduce_window  # noqa: E402,F401
