"""The vocabulary transformation rules are written in: symbolic zeros and rule factories.

Each primitive in ``jitgrad/ops`` carries its JVP, transpose and batching rules at the end
of its own module (DESIGN.md). Those rules are written with the small helpers collected
here, which sit in the core so that the dependency runs one way: ``ops`` imports the
core, and ``transforms`` (the traces that *run* the rules) imports the core and ``ops``.
Nothing here knows how a transformation works; it only knows the rule conventions,
which are documented in ``jitgrad/transforms/ad.py`` (autodiff) and
``jitgrad/transforms/batching.py`` (vmap):

* autodiff: ``Zero`` (a symbolic zero tangent or cotangent), ``UndefinedPrimal`` (a linear
  operand of a transpose rule), ``NonLinearError``, ``const_like``, ``instantiate_zeros``,
  ``add_tangents``, ``scale_tangent`` and the rule factories ``defjvp``, ``defjvp2``,
  ``defjvp_elementwise``, ``defjvp_zero``, ``deflinear``;
* batching: ``axis_size_of``, ``batched_axis``, ``moveaxis``, ``bdim_at``,
  ``bdim_to_front``, ``broadcast_batched``, ``as_array`` and the rule factories
  ``defbroadcasting``, ``defreducer``;
* sub-programs: ``hoist_consts``.

A few helpers bind primitives that ``jitgrad/ops`` defines (``add``, ``mul``,
``broadcast_in_dim``, ``transpose``, ...). They find them by name in the core's primitive
registry when they run (``_bind``), which is always after ``jitgrad.ops`` has been
imported, rather than importing ``ops`` from the core.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from . import dtypes
from .abstract import ShapedArray
from .array import ArrayImpl
from .ir import IR, ClosedIR
from .primitive import registry
from .trace import get_aval


def _bind(name: str, *args: Any, **params: Any) -> Any:
    """Bind the primitive registered as ``name`` (defined in ``jitgrad/ops``, see above)."""
    return registry[name].bind(*args, **params)


# --------------------------------------------------------------------------- symbolic zeros

class Zero:
    """A tangent or cotangent known to be zero, of abstract value ``aval`` (never materialised).

    Rules receive ``Zero`` for operands that do not depend on the differentiated inputs and
    may return it for outputs that do not depend on their tangent inputs.
    """

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    @staticmethod
    def like(x: Any) -> "Zero":
        """The zero tangent of the value ``x``."""
        return Zero(get_aval(x))

    def __repr__(self) -> str:
        return f"Zero({self.aval.str_short()})"


def is_zero(t: Any) -> bool:
    """Whether ``t`` is the symbolic ``Zero``."""
    return type(t) is Zero


def is_float(aval: ShapedArray) -> bool:
    """Whether values of ``aval`` have (nonzero) tangents: only floating-point ones do."""
    return dtypes.is_float(aval.dtype)


def const_like(x: Any, value) -> np.ndarray:
    """A numpy scalar of ``x``'s dtype: how rules write constants (``0.5`` -> f32 or f64)."""
    return np.asarray(value, dtype=get_aval(x).dtype)


def zeros_like_aval(aval: ShapedArray) -> Any:
    """A materialised array of zeros of ``aval``'s shape and dtype, under the current trace."""
    zero = np.zeros((), aval.dtype)
    if aval.shape == ():
        return ArrayImpl(zero)
    return _bind("broadcast_in_dim", zero, shape=aval.shape, broadcast_dimensions=())


def instantiate_zeros(t: Any) -> Any:
    """``t`` itself, or real zeros if it is the symbolic ``Zero``."""
    return zeros_like_aval(t.aval) if type(t) is Zero else t


def add_tangents(a: Any, b: Any) -> Any:
    """The sum of two tangents (or cotangents), skipping symbolic zeros."""
    if type(a) is Zero:
        return b
    if type(b) is Zero:
        return a
    return _bind("add", a, b)


# --------------------------------------------------------------------------- transpose operands

class UndefinedPrimal:
    """Marks a linear operand in a transpose rule: only its abstract value is known."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self) -> str:
        return f"UndefinedPrimal({self.aval.str_short()})"


def is_undefined_primal(x: Any) -> bool:
    """Whether the transpose-rule operand ``x`` is a linear one (an ``UndefinedPrimal``)."""
    return type(x) is UndefinedPrimal


class NonLinearError(NotImplementedError):
    """A transpose rule met an operand it is not linear in (a bug in a JVP rule)."""


# --------------------------------------------------------------------------- JVP rule factories

def _sum_tangents(contribs: Sequence[Any], out_aval: ShapedArray) -> Any:
    acc: Any = Zero(out_aval)
    for c in contribs:
        acc = add_tangents(acc, c)
    return acc


def defjvp(prim, *jvp_fns: Callable | None) -> None:
    """JVP rule from one function per operand: ``jvp_fn(g, *primals, **params)``.

    Each returns that operand's contribution to the output tangent, given its tangent ``g``
    (never a Zero: zero operands are skipped). ``None`` marks an operand that is not
    differentiable (an index, a predicate). Contributions are summed.
    """
    def rule(primals, tangents, **params):
        out = prim.bind(*primals, **params)
        contribs = [fn(t, *primals, **params) for fn, t in zip(jvp_fns, tangents)
                    if fn is not None and type(t) is not Zero]
        return out, _sum_tangents(contribs, get_aval(out))
    prim.jvp = rule


def defjvp2(prim, *jvp_fns: Callable | None) -> None:
    """Like ``defjvp``, with the primal output too: ``jvp_fn(g, ans, *primals, **params)``."""
    def rule(primals, tangents, **params):
        out = prim.bind(*primals, **params)
        contribs = [fn(t, out, *primals, **params) for fn, t in zip(jvp_fns, tangents)
                    if fn is not None and type(t) is not Zero]
        return out, _sum_tangents(contribs, get_aval(out))
    prim.jvp = rule


def defjvp_elementwise(prim, *derivatives: Callable | None, singular: bool = False) -> None:
    """JVP of an elementwise primitive from its partial derivatives.

    ``derivative(ans, *primals)`` returns the elementwise partial derivative with respect
    to that operand; the tangent is ``g * derivative``. With ``singular=True`` the
    derivative may be infinite at finite inputs (sqrt at 0, log at 0), and the product
    treats ``0 * inf`` as 0 (see ``scale_tangent``), so a zero (co)tangent stays zero.
    """
    scale = scale_tangent if singular else _mul

    def rule(primals, tangents, **params):
        out = prim.bind(*primals, **params)
        contribs = [scale(t, d(out, *primals)) for d, t in zip(derivatives, tangents)
                    if d is not None and type(t) is not Zero]
        return out, _sum_tangents(contribs, get_aval(out))
    prim.jvp = rule


def defjvp_zero(*prims) -> None:
    """Primitives whose derivative is zero everywhere it exists (floor, sign, comparisons,
    integer ops, argmax, iota...): the tangent of every output is ``Zero``."""
    for prim in prims:
        def rule(primals, tangents, _prim=prim, **params):
            out = _prim.bind(*primals, **params)
            if _prim.multiple_results:
                return out, [Zero(get_aval(o).strong()) for o in out]
            return out, Zero(get_aval(out).strong())
        prim.jvp = rule


def deflinear(prim, transpose_rule: Callable) -> None:
    """A primitive linear in all its operands: the JVP applies it to the tangents.

    ``transpose_rule(ct, *args, **params)`` follows the transpose convention (see
    ``jitgrad/transforms/ad.py``).
    """
    def rule(primals, tangents, **params):
        out = prim.bind(*primals, **params)
        t_out = prim.bind(*[instantiate_zeros(t) for t in tangents], **params)
        return out, t_out
    prim.jvp = rule
    prim.transpose = transpose_rule


def _mul(t: Any, coef: Any) -> Any:
    return _bind("mul", t, coef)


def scale_tangent(t: Any, coef: Any) -> Any:
    """``t * coef`` for a derivative ``coef`` that may be infinite, with ``0 * inf = 0``.

    A zero tangent (or cotangent) must give zero, not NaN: otherwise
    ``grad(lambda x: jnp.where(x > 0, jnp.sqrt(x), 0.))(0.)`` is NaN (the where sends a zero
    cotangent into sqrt's infinite derivative). The product stays linear in ``t``: an
    infinite ``coef`` is split into two finite factors whose product overflows, so
    ``t * (±max) * max`` is ``±inf`` for every nonzero normal ``t`` and 0 for ``t == 0``;
    finite entries are multiplied exactly (by ``coef`` and then by 1).
    """
    if isinstance(coef, (ArrayImpl, np.ndarray, np.generic)):
        value = np.asarray(coef)
        if np.all(np.isfinite(value) | np.isnan(value)):
            return _mul(t, coef)
    big = const_like(coef, np.finfo(get_aval(coef).dtype).max)
    finite = _bind("clamp", -big, coef, big)
    second = _bind("select_n", _bind("is_finite", coef), big, const_like(coef, 1))
    return _mul(_mul(t, finite), second)


# --------------------------------------------------------------------------- batching helpers

not_mapped = None   # the batch dimension of a value that is the same for every example


def axis_size_of(vals: Sequence[Any], dims: Sequence[int | None]) -> int:
    """The batch size, read from the first batched operand."""
    for v, d in zip(vals, dims):
        if d is not None:
            return get_aval(v).shape[d]
    raise ValueError("axis_size_of: no operand is batched")


def batched_axis(axis: int, bdim: int) -> int:
    """Where the per-example axis ``axis`` sits in a value whose batch axis is ``bdim``."""
    return axis + 1 if axis >= bdim else axis


def moveaxis(x: Any, src: int, dst: int) -> Any:
    """``x`` with its axis ``src`` moved to position ``dst`` (a transpose, unless a no-op)."""
    ndim = get_aval(x).ndim
    src, dst = src % ndim, dst % ndim
    if src == dst:
        return x
    perm = [i for i in range(ndim) if i != src]
    perm.insert(dst, src)
    return _bind("transpose", x, permutation=tuple(perm))


def as_array(x: Any) -> Any:
    """Numpy arrays and Python numbers as jitgrad arrays of their canonical dtype (a Python
    number stays weakly typed); anything else unchanged. Keeps numpy from picking int64."""
    if isinstance(x, (np.ndarray, np.generic, int, float, bool)):
        aval = get_aval(x)
        return ArrayImpl(np.array(x, dtype=aval.dtype), aval.weak_type)
    return x


def broadcast_batched(x: Any, size: int, axis: int = 0) -> Any:
    """An unbatched ``x`` with a new batch axis of ``size`` inserted at ``axis``."""
    x = as_array(x)
    aval = get_aval(x)
    shape = aval.shape[:axis] + (size,) + aval.shape[axis:]
    dims = tuple(i if i < axis else i + 1 for i in range(aval.ndim))
    return _bind("broadcast_in_dim", x, shape=shape, broadcast_dimensions=dims)


def bdim_at(x: Any, bdim: int | None, size: int, dst: int) -> Any:
    """``x`` with its batch axis at ``dst``: moved there, or broadcast if ``x`` is unbatched."""
    if bdim is None:
        return broadcast_batched(x, size, dst)
    return moveaxis(x, bdim, dst)


def bdim_to_front(x: Any, bdim: int | None, size: int | None = None) -> Any:
    """``x`` with its batch axis first (an unbatched ``x`` is broadcast, given ``size``)."""
    if bdim is None:
        if size is None:
            raise ValueError("bdim_to_front: an unbatched value needs the batch size")
        return broadcast_batched(x, size, 0)
    return moveaxis(x, bdim, 0)


# ----------------------------------------------------------------------- batching rule factories

def broadcasting_rule(prim) -> Callable:
    """The batching rule of an elementwise primitive (equal shapes; rank-0 operands broadcast).

    The batch axis of the result is that of the first batched operand of full rank, so
    the common case (all batched alike) moves nothing. Batched operands are moved there;
    an unbatched full-rank operand, or a batched per-example scalar among full-rank
    operands, is broadcast; an unbatched rank-0 operand broadcasts by itself.
    """
    def rule(vals, dims, **params):
        size = axis_size_of(vals, dims)
        avals = [get_aval(v) for v in vals]
        ranks = [a.ndim - (d is not None) for a, d in zip(avals, dims)]
        rank = max(ranks)
        out_dim = next((d for d, r in zip(dims, ranks) if d is not None and r == rank), 0)
        full = next(i for i, r in enumerate(ranks) if r == rank)
        example_shape = list(avals[full].shape)
        if dims[full] is not None:
            del example_shape[dims[full]]
        out_shape = tuple(example_shape[:out_dim]) + (size,) + tuple(example_shape[out_dim:])
        args = []
        for v, d, r in zip(vals, dims, ranks):
            if d is None:
                args.append(v if r == 0 else broadcast_batched(v, size, out_dim))
            elif r == rank:
                args.append(moveaxis(v, d, out_dim))
            else:   # a per-example scalar, batched: shape (size,)
                args.append(_bind("broadcast_in_dim", v, shape=out_shape,
                                  broadcast_dimensions=(out_dim,)))
        return prim.bind(*args, **params), out_dim
    return rule


def defbroadcasting(*prims) -> None:
    """Give elementwise primitives the broadcasting batching rule."""
    for p in prims:
        p.batch = broadcasting_rule(p)


def reducer_rule(prim) -> Callable:
    """The batching rule of a primitive reducing ``axes`` of one operand (sum, argmax, ...)."""
    def rule(vals, dims, axes, **params):
        (x,), (d,) = vals, dims
        new_axes = tuple(batched_axis(a, d) for a in axes)
        out_dim = d - sum(1 for a in axes if a < d)
        return prim.bind(x, axes=new_axes, **params), out_dim
    return rule


def defreducer(*prims) -> None:
    """Give reductions over an ``axes`` param the shifted-axes batching rule."""
    for p in prims:
        p.batch = reducer_rule(p)


# --------------------------------------------------------------------------- sub-programs

def hoist_consts(closed: ClosedIR) -> tuple[IR, list[Any]]:
    """Turn a closed IR's constvars into leading invars: ``(ir, consts)``, ``ir`` const-free.

    Primitives that hold a sub-program keep it const-free and pass the consts as operands,
    so every transformation sees them as ordinary inputs.
    """
    ir = closed.ir
    return IR([], list(ir.constvars) + list(ir.invars), ir.eqns, ir.outvars), list(closed.consts)
