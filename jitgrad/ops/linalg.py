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


# ---------------------------------------------------------------- batching rules
from ..core.trace import get_aval  # noqa: E402
from ..core.rules import batched_axis, moveaxis  # noqa: E402


def _dot_general_batch(vals, dims, dimension_numbers, preferred_element_type=None):
    (lhs, rhs), (ld, rd) = vals, dims
    (lc, rc), (lb, rb) = dimension_numbers
    params = dict(preferred_element_type=preferred_element_type)

    def shift(axes, d):
        return tuple(batched_axis(a, d) for a in axes)

    if ld is not None and rd is not None:
        # Both batched: the vmapped axis becomes the first batch dimension of the contraction.
        lhs, rhs = moveaxis(lhs, ld, 0), moveaxis(rhs, rd, 0)
        dn = ((shift(lc, 0), shift(rc, 0)), ((0,) + shift(lb, 0), (0,) + shift(rb, 0)))
        return dot_general_p.bind(lhs, rhs, dimension_numbers=dn, **params), 0
    if ld is not None:
        # Only lhs: its batch axis is one more free axis of lhs, in place.
        lc2, lb2 = shift(lc, ld), shift(lb, ld)
        out_dim = len(lb) + free_axes(get_aval(lhs).ndim, lc2, lb2).index(ld)
        out = dot_general_p.bind(lhs, rhs, dimension_numbers=((lc2, rc), (lb2, rb)), **params)
        return out, out_dim
    # Only rhs: one more free axis of rhs, after all of lhs's free axes.
    rc2, rb2 = shift(rc, rd), shift(rb, rd)
    lhs_free = get_aval(lhs).ndim - len(lc) - len(lb)
    out_dim = len(lb) + lhs_free + free_axes(get_aval(rhs).ndim, rc2, rb2).index(rd)
    out = dot_general_p.bind(lhs, rhs, dimension_numbers=((lc, rc2), (lb, rb2)), **params)
    return out, out_dim


dot_general_p.batch = _dot_general_batch


# ------------------------------------------------------------------ autodiff rules
# dot_general is bilinear: d(l . r) = dl . r + l . dr, and each cotangent is the output
# cotangent contracted with the other operand over its free axes, then permuted into the
# operand's own axis order. Conventions in jitgrad/transforms/ad.py.
from ..core.rules import NonLinearError, defjvp, is_undefined_primal  # noqa: E402


def _dot(lhs, rhs, dimension_numbers, preferred_element_type):
    return dot_general_p.bind(lhs, rhs, dimension_numbers=dimension_numbers,
                              preferred_element_type=preferred_element_type)


defjvp(dot_general_p,
       lambda g, lhs, rhs, dimension_numbers, preferred_element_type=None:
           _dot(g, rhs, dimension_numbers, preferred_element_type),
       lambda g, lhs, rhs, dimension_numbers, preferred_element_type=None:
           _dot(lhs, g, dimension_numbers, preferred_element_type))


def _transpose_operand(ct, other, ndim, contract, batch, other_contract, other_batch,
                       ct_other_free, ct_batch):
    """Cotangent of one operand of ``dot_general``.

    ``contract``/``batch`` are this operand's axes, ``other_*`` the other's;
    ``ct_other_free`` are the axes of ``ct`` holding the other operand's free axes.
    """
    from .elementwise import convert_element_type_p
    from .layout import transpose_p
    other_dtype = other.dtype
    if ct.dtype != other_dtype:
        ct = convert_element_type_p.bind(ct, new_dtype=dtypes.canonicalize_dtype(other_dtype),
                                         weak_type=False)
    out = _dot(ct, other, ((ct_other_free, free_axes(other.ndim, other_contract, other_batch)),
                           (ct_batch, tuple(other_batch))), None)
    # out's axes: batch, this operand's free axes, then the other's contracted axes in
    # increasing order -- each standing for the matching axis in ``contract``.
    order = list(batch) + list(free_axes(ndim, contract, batch))
    order += [contract[list(other_contract).index(a)] for a in sorted(other_contract)]
    perm = tuple(order.index(a) for a in range(ndim))
    return out if perm == tuple(range(ndim)) else transpose_p.bind(out, permutation=perm)


def _dot_general_transpose(ct, lhs, rhs, dimension_numbers, preferred_element_type=None):
    (lc, rc), (lb, rb) = dimension_numbers
    if is_undefined_primal(lhs) and is_undefined_primal(rhs):
        raise NonLinearError("dot_general of two values that both depend on the "
                             "differentiated inputs is not linear; a JVP rule is wrong")
    nb = len(lb)
    if is_undefined_primal(lhs):
        nlf = lhs.aval.ndim - len(lc) - nb
        ct_rf = tuple(range(nb + nlf, ct.ndim))
        return [_transpose_operand(ct, rhs, lhs.aval.ndim, lc, lb, rc, rb, ct_rf,
                                   tuple(range(nb))), None]
    nlf = lhs.ndim - len(lc) - nb
    ct_lf = tuple(range(nb, nb + nlf))
    return [None, _transpose_operand(ct, lhs, rhs.aval.ndim, rc, rb, lc, lb, ct_lf,
                                     tuple(range(nb)))]


dot_general_p.transpose = _dot_general_transpose
