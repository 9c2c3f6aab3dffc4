"""Reductions over axes (sum, max, argmax, ...) and cumulative scans along one axis."""
from __future__ import annotations

import numpy as np

from ..core import dtypes
from ..core.abstract import ShapedArray
from ..core.errors import DTypeError, ShapeError
from ..core.primitive import OPAQUE, REDUCTION, Primitive


def check_axes(name: str, aval: ShapedArray, axes) -> tuple[int, ...]:
    """Axes must be a tuple of distinct, in-range, non-negative ints."""
    axes = tuple(axes)
    for a in axes:
        if not isinstance(a, (int, np.integer)) or not 0 <= a < aval.ndim:
            raise ShapeError(f"{name}: axis {a} is out of range for {aval.str_short()}",
                             hint=f"Use axes between 0 and {aval.ndim - 1} (negative axes are "
                                  "normalised by jitgrad.numpy).")
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{name}: repeated axis in {axes} for {aval.str_short()}")
    return axes


def reduced_shape(shape, axes) -> tuple[int, ...]:
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _identity(name: str, dtype: np.dtype):
    """The value a reduction of an empty axis returns."""
    if name == "reduce_max":
        if dtype.kind == "f":
            return -np.inf
        return False if dtype.kind == "b" else np.iinfo(dtype).min
    if name == "reduce_min":
        if dtype.kind == "f":
            return np.inf
        return True if dtype.kind == "b" else np.iinfo(dtype).max
    return None


def _reduction(name: str, ufunc, category) -> Primitive:
    p = Primitive(name, REDUCTION)

    def impl(x, axes):
        x = np.asarray(x)
        ident = _identity(name, x.dtype)
        with np.errstate(all="ignore"):   # inf - inf and overflow give NaN/inf silently (JAX)
            if ident is None:
                out = ufunc.reduce(x, axis=tuple(axes), dtype=x.dtype)
            else:
                out = ufunc.reduce(x, axis=tuple(axes), initial=ident)
        return np.asarray(out, dtype=x.dtype)

    def rule(x, axes):
        axes = check_axes(name, x, axes)
        if not category(x.dtype):
            raise DTypeError(f"{name} does not accept {x.str_short()}")
        return ShapedArray(reduced_shape(x.shape, axes), x.dtype, x.weak_type)

    p.impl, p.abstract_eval = impl, rule
    return p


_numeric = lambda d: dtypes.is_int(d) or dtypes.is_float(d)
_any = lambda d: True
_int_or_bool = lambda d: dtypes.is_int(d) or dtypes.is_bool(d)

reduce_sum_p = _reduction("reduce_sum", np.add, _numeric)
reduce_prod_p = _reduction("reduce_prod", np.multiply, _numeric)
reduce_max_p = _reduction("reduce_max", np.maximum, _any)
reduce_min_p = _reduction("reduce_min", np.minimum, _any)
reduce_and_p = _reduction("reduce_and", np.bitwise_and, _int_or_bool)
reduce_or_p = _reduction("reduce_or", np.bitwise_or, _int_or_bool)
reduce_xor_p = _reduction("reduce_xor", np.bitwise_xor, _int_or_bool)


def _argreduce(name: str, np_fn) -> Primitive:
    p = Primitive(name, REDUCTION)

    def impl(x, axes, index_dtype):
        (axis,) = axes
        return np.asarray(np_fn(x, axis=axis), dtype=index_dtype)

    def rule(x, axes, index_dtype):
        axes = check_axes(name, x, axes)
        if len(axes) != 1:
            raise ShapeError(f"{name} reduces exactly one axis, got axes={axes}")
        if x.shape[axes[0]] == 0:
            raise ShapeError(f"{name}: cannot reduce an empty axis of {x.str_short()}",
                             hint="The result of argmax/argmin over zero elements is undefined.")
        return ShapedArray(reduced_shape(x.shape, axes), np.dtype(index_dtype), False)

    p.impl, p.abstract_eval = impl, rule
    return p


argmax_p = _argreduce("argmax", np.argmax)
argmin_p = _argreduce("argmin", np.argmin)


def _cumulative(name: str, accumulate) -> Primitive:
    """Inclusive scan along one axis, optionally from the end (``reverse=True``)."""
    p = Primitive(name, OPAQUE)

    def impl(x, axis, reverse=False):
        x = np.asarray(x)
        if reverse:
            x = np.flip(x, axis)
        with np.errstate(all="ignore"):
            out = accumulate(x, axis=axis, dtype=x.dtype) if name != "cumlogsumexp" else \
                accumulate(x, axis=axis)
        out = np.asarray(out, dtype=x.dtype)
        return np.flip(out, axis).copy() if reverse else out

    def rule(x, axis, reverse=False):
        check_axes(name, x, (axis,))
        if dtypes.is_bool(x.dtype):
            raise DTypeError(f"{name} does not accept {x.str_short()}")
        if name == "cumlogsumexp" and not dtypes.is_float(x.dtype):
            raise DTypeError(f"cumlogsumexp needs floating-point input, got {x.str_short()}")
        return x

    p.impl, p.abstract_eval = impl, rule
    return p


cumsum_p = _cumulative("cumsum", np.add.accumulate)
cumprod_p = _cumulative("cumprod", np.multiply.accumulate)
cummax_p = _cumulative("cummax", np.maximum.accumulate)
cummin_p = _cumulative("cummin", np.minimum.accumulate)
cumlogsumexp_p = _cumulative("cumlogsumexp", np.logaddexp.accumulate)


# ------------------------------------------------------------------ batching rules
from ..core.rules import batched_axis, defreducer  # noqa: E402

defreducer(reduce_sum_p, reduce_prod_p, reduce_max_p, reduce_min_p, reduce_and_p, reduce_or_p,
           reduce_xor_p, argmax_p, argmin_p)


def _cumulative_batch_rule(prim):
    # The scan runs along the same per-example axis; the batch axis stays where it is.
    def rule(vals, dims, axis, reverse=False):
        (x,), (d,) = vals, dims
        return prim.bind(x, axis=batched_axis(axis, d), reverse=reverse), d
    return rule


for _p in (cumsum_p, cumprod_p, cummax_p, cummin_p, cumlogsumexp_p):
    _p.batch = _cumulative_batch_rule(_p)


# ------------------------------------------------------------------ autodiff rules
# Conventions in jitgrad/transforms/ad.py. reduce_sum and cumsum are linear; max/min split
# the derivative equally among the positions attaining the extremum (as JAX does); the
# products and the other cumulative ops are differentiated without dividing by the input,
# so zeros in the input are handled exactly.
from ..core.rules import const_like, defjvp_zero, deflinear  # noqa: E402
from ..core.trace import get_aval  # noqa: E402


def _layout():
    # The layout primitives (broadcast_in_dim, pad, ...): imported when a rule runs, as the
    # elementwise ones below are, so that the ops modules can load in any order.
    from . import layout
    return layout


def _kept_axes(ndim, axes):
    return tuple(i for i in range(ndim) if i not in axes)


def _unreduce(x, shape, axes):
    """``x``, the result of reducing ``axes`` of an array of ``shape``, broadcast back to it."""
    if not axes:
        return x
    return _layout().broadcast_in_dim_p.bind(x, shape=tuple(shape),
                                             broadcast_dimensions=_kept_axes(len(shape), axes))


def _axes_last(x, kept, axes, flat_shape):
    """``x`` with ``axes`` moved after ``kept`` and merged into one last axis of ``flat_shape``."""
    layout = _layout()
    perm = tuple(int(a) for a in kept + tuple(axes))
    if perm != tuple(range(len(perm))):
        x = layout.transpose_p.bind(x, permutation=perm)
    if get_aval(x).shape != flat_shape:
        x = layout.reshape_p.bind(x, new_sizes=flat_shape, dimensions=None)
    return x


def _reduce_sum_transpose(ct, x, axes):
    return [_unreduce(ct, x.aval.shape, axes)]


deflinear(reduce_sum_p, _reduce_sum_transpose)


def _chooser_jvp(prim):
    """reduce_max / reduce_min: the tangent averaged over the positions equal to the result."""
    def rule(primals, tangents, axes):
        (x,), (g,) = primals, tangents
        from .elementwise import convert_element_type_p, div_p, eq_p, mul_p
        ans = prim.bind(x, axes=axes)
        at_ans = eq_p.bind(x, _unreduce(ans, x.shape, axes))
        where = convert_element_type_p.bind(at_ans, new_dtype=x.dtype, weak_type=False)
        counts = reduce_sum_p.bind(where, axes=axes)
        return ans, div_p.bind(reduce_sum_p.bind(mul_p.bind(g, where), axes=axes), counts)
    return rule


reduce_max_p.jvp = _chooser_jvp(reduce_max_p)
reduce_min_p.jvp = _chooser_jvp(reduce_min_p)


def _shift(x, axis, by, fill):
    """``x`` moved ``by`` places along ``axis`` (toward the end), ``fill`` coming in."""
    config = [(0, 0, 0)] * x.ndim
    config[axis] = (by, -by, 0)
    return _layout().pad_p.bind(x, fill, padding_config=tuple(config))


def _reduce_prod_jvp(primals, tangents, axes):
    # d prod(x) = sum_j g_j * prod_{k<j} x_k * prod_{k>j} x_k: exclusive products from both
    # ends, with no division, so zeros in x are fine.
    (x,), (g,) = primals, tangents
    from .elementwise import mul_p
    ans = reduce_prod_p.bind(x, axes=axes)
    if not axes:
        return ans, g
    kept = _kept_axes(x.ndim, axes)
    n = int(np.prod([x.shape[a] for a in axes]))
    flat_shape = tuple(x.shape[a] for a in kept) + (n,)
    xs = _axes_last(x, kept, axes, flat_shape)
    gs = _axes_last(g, kept, axes, flat_shape)
    last = len(kept)
    one = const_like(x, 1)
    before = _shift(cumprod_p.bind(xs, axis=last, reverse=False), last, 1, one)
    after = _shift(cumprod_p.bind(xs, axis=last, reverse=True), last, -1, one)
    return ans, reduce_sum_p.bind(mul_p.bind(gs, mul_p.bind(before, after)), axes=(last,))


reduce_prod_p.jvp = _reduce_prod_jvp

defjvp_zero(reduce_and_p, reduce_or_p, reduce_xor_p, argmax_p, argmin_p)

deflinear(cumsum_p, lambda ct, x, axis, reverse=False: [
    cumsum_p.bind(ct, axis=axis, reverse=not reverse)])


def prefix_scan(combine, x, axis: int, reverse: bool, fill):
    """Inclusive scan of ``combine`` along ``axis``, in log2(n) rounds of shifted combines.

    Built from primitives (pad, rev and ``combine``), so its JVP follows from theirs: the
    cumulative primitives below are differentiated through it (as JAX differentiates
    them through an associative scan). ``fill`` is ``combine``'s identity.
    """
    rev_p = _layout().rev_p
    if reverse:
        x = rev_p.bind(x, dimensions=(int(axis),))
    k, n = 1, x.shape[axis]
    while k < n:
        x = combine(_shift(x, axis, k, fill), x)
        k *= 2
    return rev_p.bind(x, dimensions=(int(axis),)) if reverse else x


def _logaddexp(a, b):
    from .elementwise import (abs_p, add_p, eq_p, exp_p, log1p_p, max_p, neg_p, select_n_p,
                              sub_p)
    amax = max_p.bind(a, b)
    out = add_p.bind(amax, log1p_p.bind(exp_p.bind(neg_p.bind(abs_p.bind(sub_p.bind(a, b))))))
    # Equal arguments (equal infinities included): amax + log 2, with a symmetric derivative.
    return select_n_p.bind(eq_p.bind(a, b), out, add_p.bind(amax, const_like(a, np.log(2.0))))


def _scan_jvp(prim, combine, fill):
    def rule(primals, tangents, axis, reverse=False):
        (x,), (g,) = primals, tangents
        # The JVP of the scan is forward mode itself, run on prefix_scan: imported here
        # because jitgrad/transforms sits above jitgrad/ops (the rule runs long after both
        # are imported).
        from ..transforms.jvp import jvp_flat
        ans = prim.bind(x, axis=axis, reverse=reverse)
        _, (t,) = jvp_flat(lambda v: [prefix_scan(combine, v, axis, reverse, fill(v))], [x], [g])
        return ans, t
    return rule


def _binary(name):
    def combine(a, b):
        from . import elementwise
        return getattr(elementwise, name).bind(a, b)
    return combine


cumprod_p.jvp = _scan_jvp(cumprod_p, _binary("mul_p"), lambda x: const_like(x, 1))
cummax_p.jvp = _scan_jvp(cummax_p, _binary("max_p"), lambda x: const_like(x, -np.inf))
cummin_p.jvp = _scan_jvp(cummin_p, _binary("min_p"), lambda x: const_like(x, np.inf))
cumlogsumexp_p.jvp = _scan_jvp(cumlogsumexp_p, _logaddexp, lambda x: const_like(x, -np.inf))
