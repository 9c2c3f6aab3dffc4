"""Products: dot, matmul (@), vdot, inner, outer, tensordot, trace, as dot_general."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import lax
from ..core.errors import ShapeError
from ._util import broadcast_shapes, broadcast_to_shape, promote_dtypes, asarray_operand, normalize_axis
from .shapes import _arr, ravel, reshape


def _promoted(a, b, name):
    a, b = _arr(a, name), _arr(b, name)
    a, b = promote_dtypes(a, b)
    if a.dtype == np.bool_:
        a, b = lax.convert_element_type(a, np.int32), lax.convert_element_type(b, np.int32)
    return a, b


def matmul(a, b, *, precision=None, preferred_element_type=None):
    """Matrix product with numpy's rules: 1-D operands are promoted, leading axes broadcast."""
    a, b = _promoted(a, b, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: operands must have at least one axis, got shapes {a.shape} "
                         f"and {b.shape}", hint="Use * for scalar multiplication.")
    a_vec, b_vec = a.ndim == 1, b.ndim == 1
    if a_vec:
        a = reshape(a, (1, a.shape[0]))
    if b_vec:
        b = reshape(b, (b.shape[0], 1))
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(
            f"matmul: contracting dimensions do not match: {a.shape} @ {b.shape} "
            f"({a.shape[-1]} != {b.shape[-2]})",
            hint="For a @ b, a.shape[-1] must equal b.shape[-2]; transpose one operand with .T "
                 "or swapaxes if it is laid out the other way.")
    batch = broadcast_shapes("matmul", a.shape[:-2], b.shape[:-2])
    nb = len(batch)
    if nb == 0:
        out = lax.dot_general(a, b, (((1,), (0,)), ((), ())),
                              preferred_element_type=preferred_element_type)
    elif b.ndim == 2:
        # (..., m, k) @ (k, n): contract without broadcasting b over the batch.
        a = broadcast_to_shape(a, batch + a.shape[-2:])
        out = lax.dot_general(a, b, (((a.ndim - 1,), (0,)), ((), ())),
                              preferred_element_type=preferred_element_type)
    else:
        a = broadcast_to_shape(a, batch + a.shape[-2:])
        b = broadcast_to_shape(b, batch + b.shape[-2:])
        bd = tuple(range(nb))
        out = lax.dot_general(a, b, (((nb + 1,), (nb,)), (bd, bd)),
                              preferred_element_type=preferred_element_type)
    if a_vec:
        out = lax.squeeze(out, (out.ndim - 2,))
    if b_vec:
        out = lax.squeeze(out, (out.ndim - 1,))
    return out


def dot(a, b, *, precision=None, preferred_element_type=None):
    """numpy.dot: sum over the last axis of a and the second-to-last of b."""
    a, b = _promoted(a, b, "dot")
    if a.ndim == 0 or b.ndim == 0:
        from .ufuncs import multiply
        return multiply(a, b)
    if b.ndim == 1 or a.ndim == 1 or (a.ndim <= 2 and b.ndim <= 2):
        return matmul(a, b, preferred_element_type=preferred_element_type)
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(f"dot: shapes {a.shape} and {b.shape} not aligned: "
                         f"{a.shape[-1]} (dim {a.ndim - 1}) != {b.shape[-2]} (dim {b.ndim - 2})")
    return lax.dot_general(a, b, (((a.ndim - 1,), (b.ndim - 2,)), ((), ())),
                           preferred_element_type=preferred_element_type)


def vdot(a, b, *, precision=None):
    """Dot product of the flattened operands."""
    return dot(ravel(_arr(a)), ravel(_arr(b)))


def vecdot(x1, x2, *, axis: int = -1):
    """Dot product along ``axis``, broadcasting the rest."""
    from .ufuncs import multiply
    from .reductions import sum
    return sum(multiply(x1, x2), axis=axis)


def inner(a, b, *, precision=None):
    """Sum over the last axes of both operands."""
    a, b = _promoted(a, b, "inner")
    if a.ndim == 0 or b.ndim == 0:
        from .ufuncs import multiply
        return multiply(a, b)
    if a.shape[-1] != b.shape[-1]:
        raise ShapeError(f"inner: last dimensions differ: {a.shape} and {b.shape}")
    return lax.dot_general(a, b, (((a.ndim - 1,), (b.ndim - 1,)), ((), ())))


def outer(a, b):
    """Outer product of the flattened operands."""
    a, b = _promoted(ravel(_arr(a)), ravel(_arr(b)), "outer")
    return lax.dot_general(reshape(a, (a.shape[0], 1)), reshape(b, (1, b.shape[0])),
                           (((1,), (0,)), ((), ())))


def tensordot(a, b, axes=2, *, precision=None, preferred_element_type=None):
    """Sum products over the given axes (an int n: last n of a with first n of b)."""
    a, b = _promoted(a, b, "tensordot")
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        if n > min(a.ndim, b.ndim) or n < 0:
            raise ShapeError(f"tensordot: cannot contract {n} axes of shapes {a.shape} and {b.shape}")
        ca, cb = tuple(range(a.ndim - n, a.ndim)), tuple(range(n))
    else:
        ca, cb = axes
        ca = (ca,) if isinstance(ca, (int, np.integer)) else tuple(ca)
        cb = (cb,) if isinstance(cb, (int, np.integer)) else tuple(cb)
        ca = tuple(normalize_axis(x, a.ndim, "tensordot") for x in ca)
        cb = tuple(normalize_axis(x, b.ndim, "tensordot") for x in cb)
    for i, j in zip(ca, cb):
        if a.shape[i] != b.shape[j]:
            raise ShapeError(f"tensordot: shape mismatch for sum: axis {i} of {a.shape} vs "
                             f"axis {j} of {b.shape}")
    return lax.dot_general(a, b, ((ca, cb), ((), ())), preferred_element_type=preferred_element_type)


def trace(a, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype=None):
    """Sum along a diagonal."""
    from .reductions import sum
    return sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


def diagonal(a, offset: int = 0, axis1: int = 0, axis2: int = 1):
    """The ``offset`` diagonal over two axes, moved to the end (numpy semantics)."""
    from .creation import eye
    from .ufuncs import multiply
    from .reductions import sum
    from .shapes import moveaxis
    a = _arr(a, "diagonal")
    a = moveaxis(a, (axis1, axis2), (-2, -1))
    n, m = a.shape[-2], a.shape[-1]
    # Mask the diagonal and sum out one axis: a gather-free formulation that fuses well.
    mask = eye(n, m, k=offset, dtype=a.dtype)
    picked = sum(multiply(a, mask), axis=-1)           # (..., n): entries of row i on the diagonal
    start, stop = (0, min(n, m - offset)) if offset >= 0 else (-offset, min(n, m - offset))
    stop = max(start, stop)
    return lax.slice_in_dim(picked, start, stop, 1, picked.ndim - 1)


def norm(x, ord=None, axis=None, keepdims=False):
    """Vector 2-norm / Frobenius norm (and 1, inf norms of vectors)."""
    from .reductions import sum, max
    from .ufuncs import absolute, sqrt, multiply
    x = _arr(x, "norm")
    if ord is None or ord == 2 and (axis is None and x.ndim == 1 or isinstance(axis, int)):
        return sqrt(sum(multiply(x, x), axis=axis, keepdims=keepdims))
    if ord == "fro":
        return sqrt(sum(multiply(x, x), axis=axis, keepdims=keepdims))
    if ord == 1:
        return sum(absolute(x), axis=axis, keepdims=keepdims)
    if ord in (np.inf, "inf"):
        return max(absolute(x), axis=axis, keepdims=keepdims)
    raise NotImplementedError(f"jnp.linalg.norm: ord={ord!r} is not supported")
