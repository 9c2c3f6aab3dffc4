"""Products and matrix helpers: dot, matmul (@), vdot, vecdot, inner, outer, tensordot,
diagonal, trace, and the norms of ``jnp.linalg``. Contractions are ``dot_general``.

``precision`` arguments are accepted for JAX compatibility and have no effect on CPU;
``preferred_element_type`` sets the result (and accumulation) dtype.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import lax
from ..core.array import Array, ArrayImpl
from ..core.errors import ShapeError
from ..ops import indexing as ix
from ._util import (_STATE, as_array, broadcast_shapes, broadcast_to_shape, check_no_out,
                    normalize_axis, promote_dtypes, promote_dtypes_inexact, wrap_result)
from .shapes import moveaxis, ravel, reshape, transpose

ArrayLike = Any


def _promoted(a, b, name):
    a, b = as_array(a, name), as_array(b, name)
    return promote_dtypes(a, b)


def _preferred(preferred_element_type):
    if preferred_element_type is None:
        return None
    from .scalar_types import canonical_dtype_arg
    return canonical_dtype_arg(preferred_element_type)


_np_matmul = np.matmul


def _fast_matmul(a, b):
    """Eager ``a @ b`` for strong arrays of one numeric dtype whose shapes fit, or None."""
    if _STATE.trace is not None or type(a) is not ArrayImpl or type(b) is not ArrayImpl:
        return None
    if a._weak_type or b._weak_type:
        return None
    av, bv = a._value, b._value
    if av.dtype is not bv.dtype or av.dtype.kind not in "fiu":
        return None
    sa, sb = av.shape, bv.shape
    if not sa or not sb or sa[-1] != sb[-2 if len(sb) > 1 else 0]:
        return None
    try:
        out = _np_matmul(av, bv)
    except ValueError:   # batch dimensions that do not broadcast: the general path explains
        return None
    return wrap_result(out, False)


def matmul(a: ArrayLike, b: ArrayLike, *, precision=None,
           preferred_element_type=None) -> Array:
    """Matrix product with numpy's rules: a 1-D operand is a vector (its axis is removed
    from the result), leading (batch) axes broadcast."""
    if preferred_element_type is None:
        fast = _fast_matmul(a, b)
        if fast is not None:
            return fast
    pet = _preferred(preferred_element_type)
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
        ashape = a.shape[1:] if a_vec else a.shape
        bshape = b.shape[:1] if b_vec else b.shape
        raise ShapeError(
            f"matmul: contracting dimensions do not match: {ashape} @ {bshape} "
            f"({a.shape[-1]} != {b.shape[-2]})",
            hint="For a @ b, a.shape[-1] must equal b.shape[-2]; transpose one operand with .T "
                 "or swapaxes if it is laid out the other way.")
    batch = broadcast_shapes("matmul", a.shape[:-2], b.shape[:-2])
    nb = len(batch)
    if nb == 0:
        out = lax.dot_general(a, b, (((1,), (0,)), ((), ())), preferred_element_type=pet)
    elif b.ndim == 2:
        # (..., m, k) @ (k, n): contract without broadcasting b over the batch.
        a = broadcast_to_shape(a, batch + a.shape[-2:])
        out = lax.dot_general(a, b, (((a.ndim - 1,), (0,)), ((), ())), preferred_element_type=pet)
    else:
        a = broadcast_to_shape(a, batch + a.shape[-2:])
        b = broadcast_to_shape(b, batch + b.shape[-2:])
        bd = tuple(range(nb))
        out = lax.dot_general(a, b, (((nb + 1,), (nb,)), (bd, bd)), preferred_element_type=pet)
    if a_vec:
        out = lax.squeeze(out, (out.ndim - 2,))
    if b_vec:
        out = lax.squeeze(out, (out.ndim - 1,))
    return out


def dot(a: ArrayLike, b: ArrayLike, *, precision=None, preferred_element_type=None) -> Array:
    """numpy.dot: a scalar operand multiplies; otherwise the sum over the last axis of ``a``
    and the second-to-last of ``b`` (the only axis of a 1-D ``b``)."""
    pet = _preferred(preferred_element_type)
    a, b = _promoted(a, b, "dot")
    if a.ndim == 0 or b.ndim == 0:
        from .ufuncs import multiply
        out = multiply(a, b)
        return out if pet is None else lax.convert_element_type(out, pet)
    if b.ndim <= 2:
        return matmul(a, b, preferred_element_type=pet)
    cb = b.ndim - 2
    if a.shape[-1] != b.shape[cb]:
        raise ShapeError(f"dot: shapes {a.shape} and {b.shape} not aligned: "
                         f"{a.shape[-1]} (dim {a.ndim - 1}) != {b.shape[cb]} (dim {cb})")
    return lax.dot_general(a, b, (((a.ndim - 1,), (cb,)), ((), ())), preferred_element_type=pet)


def vdot(a: ArrayLike, b: ArrayLike, *, precision=None, preferred_element_type=None) -> Array:
    """Dot product of the flattened operands."""
    a, b = as_array(a, "vdot"), as_array(b, "vdot")
    if a.size != b.size:
        raise ShapeError(f"vdot: operands have different sizes: {a.shape} and {b.shape}")
    return dot(ravel(a), ravel(b), preferred_element_type=preferred_element_type)


def vecdot(x1: ArrayLike, x2: ArrayLike, /, *, axis: int = -1, precision=None,
           preferred_element_type=None) -> Array:
    """Dot product along ``axis`` of the broadcast operands (their sizes there must match)."""
    from .reductions import sum
    from .ufuncs import multiply
    x1, x2 = _promoted(x1, x2, "vecdot")
    a1, a2 = normalize_axis(axis, x1.ndim, "vecdot"), normalize_axis(axis, x2.ndim, "vecdot")
    if x1.shape[a1] != x2.shape[a2]:
        raise ShapeError(f"vecdot: axis {axis} has size {x1.shape[a1]} in {x1.shape} but "
                         f"{x2.shape[a2]} in {x2.shape}")
    out = sum(multiply(moveaxis(x1, a1, -1), moveaxis(x2, a2, -1)), axis=-1,
              dtype=_preferred(preferred_element_type) or x1.dtype)
    return out


def inner(a: ArrayLike, b: ArrayLike, *, precision=None, preferred_element_type=None) -> Array:
    """Sum over the last axes of both operands (a scalar operand multiplies)."""
    pet = _preferred(preferred_element_type)
    a, b = _promoted(a, b, "inner")
    if a.ndim == 0 or b.ndim == 0:
        from .ufuncs import multiply
        out = multiply(a, b)
        return out if pet is None else lax.convert_element_type(out, pet)
    if a.shape[-1] != b.shape[-1]:
        raise ShapeError(f"inner: last dimensions differ: {a.shape} and {b.shape}")
    return lax.dot_general(a, b, (((a.ndim - 1,), (b.ndim - 1,)), ((), ())),
                           preferred_element_type=pet)


def outer(a: ArrayLike, b: ArrayLike, out: None = None) -> Array:
    """Outer product of the flattened operands: ``ravel(a)[:, None] * ravel(b)[None, :]``."""
    check_no_out("outer", out)
    from .ufuncs import multiply
    a, b = ravel(as_array(a, "outer")), ravel(as_array(b, "outer"))
    return multiply(reshape(a, (a.shape[0], 1)), reshape(b, (1, b.shape[0])))


def _axes_tuple(x) -> tuple[int, ...]:
    return (int(x),) if isinstance(x, (int, np.integer)) else tuple(int(v) for v in x)


def tensordot(a: ArrayLike, b: ArrayLike, axes: int | Sequence = 2, *, precision=None,
              preferred_element_type=None) -> Array:
    """Sum of products over the given axes: an int n contracts the last n axes of ``a`` with
    the first n of ``b``; a pair of sequences lists the axes of each. The result has the
    free axes of ``a`` then those of ``b``."""
    pet = _preferred(preferred_element_type)
    a, b = _promoted(a, b, "tensordot")
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        if n > min(a.ndim, b.ndim) or n < 0:
            raise ShapeError(f"tensordot: cannot contract {n} axes of shapes {a.shape} and {b.shape}")
        ca, cb = tuple(range(a.ndim - n, a.ndim)), tuple(range(n))
    else:
        try:
            axes_a, axes_b = axes
        except (TypeError, ValueError):
            raise TypeError(f"tensordot: axes must be an int or a pair of axis sequences, "
                            f"got {axes!r}") from None
        ca = tuple(normalize_axis(x, a.ndim, "tensordot") for x in _axes_tuple(axes_a))
        cb = tuple(normalize_axis(x, b.ndim, "tensordot") for x in _axes_tuple(axes_b))
        if len(ca) != len(cb):
            raise ShapeError(f"tensordot: the axes lists {ca} and {cb} differ in length")
    for i, j in zip(ca, cb):
        if a.shape[i] != b.shape[j]:
            raise ShapeError(f"tensordot: shape mismatch for sum: axis {i} of {a.shape} vs "
                             f"axis {j} of {b.shape}")
    return lax.dot_general(a, b, ((ca, cb), ((), ())), preferred_element_type=pet)


def diagonal(a: ArrayLike, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Array:
    """The ``offset`` diagonal of the (axis1, axis2) planes, as the last axis (numpy semantics).

    A gather of the diagonal's positions, so inf/NaN elsewhere in the array do not leak in.
    """
    a = as_array(a, "diagonal")
    if a.ndim < 2:
        raise ValueError(f"diagonal requires an array of at least two dimensions, got {a.shape}")
    ax1, ax2 = normalize_axis(axis1, a.ndim, "diagonal"), normalize_axis(axis2, a.ndim, "diagonal")
    if ax1 == ax2:
        raise ValueError("diagonal: axis1 and axis2 cannot be the same")
    offset = int(offset)
    rest = [i for i in range(a.ndim) if i not in (ax1, ax2)]
    a = transpose(a, (ax1, ax2, *rest))
    n, m = a.shape[0], a.shape[1]
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    k = max(0, min(n - r0, m - c0))
    start = lax.broadcasted_iota(np.int32, (k, 2), 0)
    if r0 or c0:
        from .ufuncs import add
        indices = add(start, np.asarray([r0, c0], np.int32))
    else:
        indices = start
    out = ix.gather_p.bind(a, indices, axes=(0, 1), mode="clip", fill_value=None)
    return moveaxis(out, 0, -1) if rest else out


def trace(a: ArrayLike, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype=None,
          out: None = None) -> Array:
    """Sum along a diagonal (dtype rules as for ``jnp.sum``)."""
    check_no_out("trace", out)
    from .reductions import sum
    return sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


# ------------------------------------------------------------------ norms (jnp.linalg)

def _reduce_keep(fn, x, axes):
    return fn(x, axis=axes, keepdims=True)


def _vector_norm(x, axes, ord):
    from .reductions import max, min, sum
    from .ufuncs import absolute, not_equal, power, sqrt
    if ord is None or ord == 2:
        return sqrt(_reduce_keep(sum, lax.mul(x, x), axes))
    if ord == np.inf:
        return _reduce_keep(max, absolute(x), axes)
    if ord == -np.inf:
        return _reduce_keep(min, absolute(x), axes)
    if ord == 0:
        return lax.convert_element_type(_reduce_keep(sum, not_equal(x, 0), axes), x.dtype)
    if ord == 1:
        return _reduce_keep(sum, absolute(x), axes)
    if isinstance(ord, str):
        raise ValueError(f"Invalid order {ord!r} for vector norm")
    p = float(ord)
    return power(_reduce_keep(sum, power(absolute(x), p), axes), 1.0 / p)


def _matrix_norm(x, axes, ord):
    from .reductions import max, min, sum
    from .ufuncs import absolute, sqrt
    row, col = axes
    if ord is None or ord == "fro":
        return sqrt(_reduce_keep(sum, lax.mul(x, x), axes))
    if ord in (1, -1):
        pick = max if ord == 1 else min
        return _reduce_keep(pick, _reduce_keep(sum, absolute(x), (row,)), (col,))
    if ord in (np.inf, -np.inf):
        pick = max if ord == np.inf else min
        return _reduce_keep(pick, _reduce_keep(sum, absolute(x), (col,)), (row,))
    if ord in (2, -2, "nuc"):
        raise NotImplementedError(f"jnp.linalg.norm: ord={ord!r} needs singular values, which "
                                  "jitgrad does not compute (no SVD yet)")
    raise ValueError(f"Invalid order {ord!r} for matrix norm")


def norm(x: ArrayLike, ord: int | float | str | None = None, axis: int | tuple[int, ...] | None = None,
         keepdims: bool = False) -> Array:
    """Vector or matrix norm, as ``numpy.linalg.norm``.

    ``axis=None``: with ``ord=None`` the 2-norm of the flattened array, otherwise the
    vector norm of a 1-D or the matrix norm of a 2-D array. An int axis gives vector norms
    (``ord`` None/2, inf, -inf, 0, 1, or any p), a pair of axes matrix norms (``ord``
    None/'fro', 1, -1, inf, -inf; 2, -2 and 'nuc' need an SVD and are not supported).
    Integer inputs are promoted to the default float.
    """
    (x,) = promote_dtypes_inexact(as_array(x, "norm"))
    if axis is None:
        if ord is None:
            out = _vector_norm(x, tuple(range(x.ndim)), None)
            return out if keepdims else lax.reshape(out, ())
        if x.ndim not in (1, 2):
            raise ValueError(f"Improper number of dimensions to norm: ord={ord!r} needs a 1-D or "
                             f"2-D array when axis is None, got shape {x.shape}")
        axes = tuple(range(x.ndim))
    else:
        axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        axes = tuple(normalize_axis(a, x.ndim, "norm") for a in axes)
        if len(set(axes)) != len(axes):
            raise ValueError(f"norm: duplicate axes in {axis}")
    if len(axes) == 1:
        out = _vector_norm(x, axes, ord)
    elif len(axes) == 2:
        out = _matrix_norm(x, axes, ord)
    else:
        raise ValueError(f"Improper number of dimensions to norm: axis={axis}")
    if keepdims:
        return out
    return lax.reshape(out, tuple(d for i, d in enumerate(out.shape) if i not in axes))


def vector_norm(x: ArrayLike, /, *, axis: int | tuple[int, ...] | None = None,
                keepdims: bool = False, ord: int | float = 2) -> Array:
    """The vector norm over ``axis`` (all axes, flattened, if None)."""
    (x,) = promote_dtypes_inexact(as_array(x, "vector_norm"))
    axes = tuple(range(x.ndim)) if axis is None else (
        (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis))
    axes = tuple(normalize_axis(a, x.ndim, "vector_norm") for a in axes)
    out = _vector_norm(x, axes, ord)
    if keepdims:
        return out
    return lax.reshape(out, tuple(d for i, d in enumerate(out.shape) if i not in axes))


def matrix_norm(x: ArrayLike, /, *, keepdims: bool = False, ord: int | float | str = "fro") -> Array:
    """The matrix norm over the last two axes."""
    x = as_array(x, "matrix_norm")
    if x.ndim < 2:
        raise ValueError(f"matrix_norm needs at least 2 dimensions, got shape {x.shape}")
    return norm(x, ord=ord, axis=(x.ndim - 2, x.ndim - 1), keepdims=keepdims)
