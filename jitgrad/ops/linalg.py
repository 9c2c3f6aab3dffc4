"""dot_general: every contraction (matmul, batched matmul, dot, einsum pairs, tensordot).

``dimension_numbers = ((lhs_contract, rhs_contract), (lhs_batch, rhs_batch))``. The
output axes are: batch axes, then lhs free axes, then rhs free axes (JAX's order).
"""
from __future__ import annotations

import numpy as np

from ..core import dtypes
from ..core.abstract import ShapedArray
from ..core.errors import DTypeError, ShapeError
from ..core.primitive import OPAQUE, Primitive

dot_general_p = Primitive("dot_general", OPAQUE)


def free_axes(ndim: int, contract, batch) -> tuple[int, ...]:
    used = set(contract) | set(batch)
    return tuple(i for i in range(ndim) if i not in used)


@dot_general_p.def_impl
def _dot_general_impl(lhs, rhs, dimension_numbers, preferred_element_type=None):
    (lc, rc), (lb, rb) = dimension_numbers
    lhs, rhs = np.asarray(lhs), np.asarray(rhs)
    lf, rf = free_axes(lhs.ndim, lc, lb), free_axes(rhs.ndim, rc, rb)
    out_dtype = np.dtype(preferred_element_type) if preferred_element_type else lhs.dtype
    # Bring both operands to (batch, free, contract) / (batch, contract, free) and use matmul,
    # which reaches BLAS for floats.
    bshape = tuple(lhs.shape[a] for a in lb)
    lfs = tuple(lhs.shape[a] for a in lf)
    rfs = tuple(rhs.shape[a] for a in rf)
    k = int(np.prod([lhs.shape[a] for a in lc], dtype=np.int64))
    l2 = np.transpose(lhs, tuple(lb) + lf + tuple(lc)).reshape(bshape + (int(np.prod(lfs, dtype=np.int64)), k))
    r2 = np.transpose(rhs, tuple(rb) + tuple(rc) + rf).reshape(bshape + (k, int(np.prod(rfs, dtype=np.int64))))
    if l2.dtype == np.bool_:
        out = (l2.astype(np.int32) @ r2.astype(np.int32)) > 0
    else:
        acc = out_dtype if out_dtype.kind == l2.dtype.kind else l2.dtype
        out = np.matmul(l2.astype(acc, copy=False), r2.astype(acc, copy=False))
    return out.reshape(bshape + lfs + rfs).astype(out_dtype, copy=False)


@dot_general_p.def_abstract_eval
def _dot_general_rule(lhs, rhs, dimension_numbers, preferred_element_type=None):
    (lc, rc), (lb, rb) = dimension_numbers
    shapes = f"{lhs.str_short()} and {rhs.str_short()}"
    if lhs.dtype != rhs.dtype:
        raise DTypeError(f"dot_general: operands must share a dtype, got {shapes}",
                         hint="jnp.matmul/jnp.dot promote automatically.")
    if len(lc) != len(rc) or len(lb) != len(rb):
        raise ShapeError(f"dot_general: contracting/batch dimension lists differ in length: "
                         f"{dimension_numbers}")
    for axes, nd in ((lc, lhs.ndim), (lb, lhs.ndim), (rc, rhs.ndim), (rb, rhs.ndim)):
        if any(not 0 <= a < nd for a in axes):
            raise ShapeError(f"dot_general: dimension numbers {dimension_numbers} out of range "
                             f"for {shapes}")
    for a, b in zip(lc, rc):
        if lhs.shape[a] != rhs.shape[b]:
            raise ShapeError(f"dot_general: contracting dimensions do not match: axis {a} of "
                             f"{lhs.str_short()} is {lhs.shape[a]} but axis {b} of "
                             f"{rhs.str_short()} is {rhs.shape[b]}",
                             hint="For x @ w, x.shape[-1] must equal w.shape[-2].")
    for a, b in zip(lb, rb):
        if lhs.shape[a] != rhs.shape[b]:
            raise ShapeError(f"dot_general: batch dimensions do not match for {shapes}")
    out_dtype = lhs.dtype if preferred_element_type is None else np.dtype(preferred_element_type)
    lf, rf = free_axes(lhs.ndim, lc, lb), free_axes(rhs.ndim, rc, rb)
    shape = (tuple(lhs.shape[a] for a in lb) + tuple(lhs.shape[a] for a in lf)
             + tuple(rhs.shape[a] for a in rf))
    return ShapedArray(shape, out_dtype, lhs.weak_type and rhs.weak_type)
