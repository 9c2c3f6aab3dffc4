"""Algebraic simplification: rewrite equations into cheaper ones with exactly the same result.

Every rule must give bit-for-bit the result of the original equation for every input,
NaN, infinities and signed zeros included, and a value of exactly the same type (shape,
dtype *and* weak type, which decides promotion in the code around a jitted call). So:

* ``x * 1 -> x``, ``1 * x -> x``, ``x / 1 -> x``: exact in IEEE arithmetic.
* ``x + 0 -> x`` only for integers, or for floats when the zero is **-0.0**:
  ``-0.0 + 0.0`` is ``+0.0``, so adding ``+0.0`` is not the identity, while adding
  ``-0.0`` is. Dually ``x - 0.0 -> x`` (``+0.0`` only) and ``-0.0 - x -> neg x``.
* ``x * 0 -> 0`` and ``x - x -> 0`` only for integers (``inf * 0`` and ``inf - inf`` are NaN).
* ``x * -1 -> neg x`` for floats and signed integers (both wrap or flip the sign alike).
* ``reduce_sum`` over no axes or size-1 axes is not rewritten for floats: numpy (and
  XLA) add the identity 0.0, which turns -0.0 into +0.0.
* ``max(x, x)``, ``min(x, x)``, ``and(x, x)``, ``or(x, x)`` are ``x``; ``xor(x, x)`` is 0.
* Layout: transpose of transpose (permutations composed; the identity disappears),
  reshape/squeeze chains become one reshape (a reshape to the same shape disappears),
  broadcast_in_dim chains compose, rev of rev, and no-op broadcast/slice/pad/concatenate.
* An elementwise operand that is a broadcast literal becomes the scalar literal itself
  (rank-0 operands broadcast), when another operand still has the output's shape.
* ``convert_element_type`` to the value's own type disappears; a round trip through a
  wider type that holds every value exactly (f32->f64->f32, i8->f32->i8) disappears.
* ``select_n`` with a constant selector, or with all cases equal, picks the case.
* ``integer_pow(x, 1) -> x``, ``integer_pow(x, 0) -> 1``.

``stop_gradient`` is never removed: an optimised IR is re-traced when a jitted function is
called inside ``grad``, where it still matters.

Rules see "splat" constants too: a literal, or a ``broadcast_in_dim`` of a literal (what
``jnp.ones_like`` traces to). Every rewritten equation is checked against its primitive's
shape/dtype rule (``_ir_tools.check_eqn``) and the rewrite is dropped if the type differs.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..core.ir import IR, ClosedIR, Eqn, Literal, Var
from ..core.primitive import ELEMENTWISE
from ..ops import elementwise as ew
from ..ops import layout as lo
from ._ir_tools import ChangeLog, Env, check_eqn, literal_like, rebuild, rewrite_subirs, run_pass

# A rule returns None (does not apply), an atom (the output is that atom), or a list of
# equations whose last one defines the original equation's outputs.
Rule = Callable[["Eqn", "_Ctx"], "object"]
RULES: dict[str, list[tuple[str, Rule]]] = {}

# Re-simplifying the equations a rule produced is bounded, in case two rules disagree.
_MAX_REWRITES_PER_EQN = 16


def rule(*prim_names: str, label: str):
    """Register a rule for the primitives named (by name, as they print)."""
    def register(fn):
        for name in prim_names:
            RULES.setdefault(name, []).append((label, fn))
        return fn
    return register


class _Ctx:
    """What a rule may ask about the program built so far."""

    def __init__(self):
        self.producers: dict[int, Eqn] = {}

    def producer(self, atom, name: str | None = None) -> Eqn | None:
        """The equation defining ``atom`` (if it is of primitive ``name``, when given)."""
        if type(atom) is not Var:
            return None
        eqn = self.producers.get(id(atom))
        if eqn is None or (name is not None and eqn.primitive.name != name):
            return None
        return eqn

    def splat(self, atom) -> np.ndarray | None:
        """The scalar value of a literal or of a broadcast literal, else None."""
        if type(atom) is Literal:
            return atom.value
        eqn = self.producer(atom, "broadcast_in_dim")
        if eqn is not None and type(eqn.invars[0]) is Literal:
            return eqn.invars[0].value
        return None


# ------------------------------------------------------------------ value tests

def _kind(eqn: Eqn) -> str:
    return eqn.outvars[0].aval.dtype.kind


def _is(value, target) -> bool:
    """Exact comparison of a scalar with ``target``, telling -0.0 from 0.0."""
    if value is None:
        return False
    if value.dtype.kind == "f":
        return bool(value == target) and bool(np.signbit(value)) == bool(np.signbit(target))
    return bool(value == target)


def _is_add_identity(value) -> bool:
    if value is None:
        return False
    return _is(value, -0.0) if value.dtype.kind == "f" else bool(value == 0)


def _is_sub_identity(value) -> bool:   # x - c == x
    if value is None:
        return False
    return _is(value, 0.0) if value.dtype.kind == "f" else bool(value == 0)


def _fill(eqn: Eqn, value):
    """The equation's single output as a constant: a literal, or a broadcast literal."""
    out = eqn.outvars[0]
    lit = literal_like(value, out.aval)
    if out.aval.shape == ():
        return lit
    return [Eqn(lo.broadcast_in_dim_p, [lit], [out],
                dict(shape=out.aval.shape, broadcast_dimensions=()), eqn.source)]


def _unary(eqn: Eqn, prim, x, **params):
    return [Eqn(prim, [x], list(eqn.outvars), params, eqn.source)]


# ------------------------------------------------------------------ arithmetic

@rule("add", label="x+(-0.0) -> x")
def _add_zero(eqn, ctx):
    x, y = eqn.invars
    if _is_add_identity(ctx.splat(y)):
        return x
    if _is_add_identity(ctx.splat(x)):
        return y


@rule("sub", label="x-0 -> x")
def _sub_zero(eqn, ctx):
    x, y = eqn.invars
    if _is_sub_identity(ctx.splat(y)):
        return x


@rule("sub", label="-0.0-x -> neg x")
def _zero_sub(eqn, ctx):
    x, y = eqn.invars
    if _is_add_identity(ctx.splat(x)):
        return _unary(eqn, ew.neg_p, y)


@rule("mul", label="x*1 -> x")
def _mul_one(eqn, ctx):
    x, y = eqn.invars
    if _is(ctx.splat(y), 1):
        return x
    if _is(ctx.splat(x), 1):
        return y


@rule("mul", label="x*-1 -> neg x")
def _mul_minus_one(eqn, ctx):
    if _kind(eqn) not in "fi":
        return None
    x, y = eqn.invars
    if _is(ctx.splat(y), -1):
        return _unary(eqn, ew.neg_p, x)
    if _is(ctx.splat(x), -1):
        return _unary(eqn, ew.neg_p, y)


@rule("mul", label="x*0 -> 0 (integers)")
def _mul_zero(eqn, ctx):
    if _kind(eqn) not in "iu":
        return None
    x, y = eqn.invars
    if _is(ctx.splat(x), 0) or _is(ctx.splat(y), 0):
        return _fill(eqn, 0)


@rule("div", label="x/1 -> x")
def _div_one(eqn, ctx):
    x, y = eqn.invars
    if _is(ctx.splat(y), 1):
        return x


@rule("neg", label="neg(neg x) -> x")
def _neg_neg(eqn, ctx):
    inner = ctx.producer(eqn.invars[0], "neg")
    if inner is not None:
        return inner.invars[0]


@rule("max", "min", "and", "or", label="op(x, x) -> x")
def _idempotent(eqn, ctx):
    x, y = eqn.invars
    if x is y:
        return x


@rule("sub", "xor", label="x-x -> 0 (integers)")
def _self_cancel(eqn, ctx):
    x, y = eqn.invars
    if x is y and _kind(eqn) in "iub":
        return _fill(eqn, 0)


@rule("integer_pow", label="x**1 -> x, x**0 -> 1")
def _integer_pow(eqn, ctx):
    y = eqn.params["y"]
    if y == 1:
        return eqn.invars[0]
    if y == 0:
        return _fill(eqn, 1)


# ------------------------------------------------------------------ conversions, selection

def _holds_exactly(src: np.dtype, mid: np.dtype) -> bool:
    """Whether every value of ``src`` survives a conversion to ``mid`` and back."""
    src, mid = np.dtype(src), np.dtype(mid)
    if src == mid or src.kind == "b":
        return True
    if src.kind == mid.kind and src.kind in "iuf":
        return mid.itemsize >= src.itemsize
    if src.kind == "u" and mid.kind == "i":
        return mid.itemsize > src.itemsize
    if src.kind in "iu" and mid.kind == "f":
        mantissa = {2: 11, 4: 24, 8: 53}.get(mid.itemsize, 0)
        return src.itemsize * 8 - (src.kind == "i") <= mantissa
    return False


@rule("convert_element_type", label="convert to own type -> x")
def _convert_noop(eqn, ctx):
    x = eqn.invars[0]
    if x.aval == eqn.outvars[0].aval:
        return x


@rule("convert_element_type", label="lossless convert round trip -> x")
def _convert_round_trip(eqn, ctx):
    inner = ctx.producer(eqn.invars[0], "convert_element_type")
    if inner is None:
        return None
    z = inner.invars[0]
    mid, out = inner.outvars[0].aval.dtype, eqn.outvars[0].aval.dtype
    if z.aval.dtype == out and _holds_exactly(z.aval.dtype, mid):
        return _unary(eqn, ew.convert_element_type_p, z, **eqn.params)


def _pick(eqn: Eqn, case):
    """The output is ``case`` (forwarded, or broadcast from a scalar)."""
    out = eqn.outvars[0]
    if case.aval == out.aval:
        return case
    if case.aval.shape == () and case.aval.dtype == out.aval.dtype:
        return [Eqn(lo.broadcast_in_dim_p, [case], [out],
                    dict(shape=out.aval.shape, broadcast_dimensions=()), eqn.source)]
    return None


@rule("select_n", label="select_n with a constant or trivial choice")
def _select_const(eqn, ctx):
    which, *cases = eqn.invars
    if all(c is cases[0] for c in cases):
        return _pick(eqn, cases[0])
    w = ctx.splat(which)
    if w is not None and 0 <= int(w) < len(cases):
        return _pick(eqn, cases[int(w)])


# ------------------------------------------------------------------ layout

@rule("transpose", label="transpose chain -> one transpose")
def _transpose(eqn, ctx):
    x = eqn.invars[0]
    perm = tuple(eqn.params["permutation"])
    inner = ctx.producer(x, "transpose")
    if inner is not None:
        first = tuple(inner.params["permutation"])
        x, perm = inner.invars[0], tuple(first[p] for p in perm)
    if perm == tuple(range(len(perm))):
        return x
    if inner is not None:
        return _unary(eqn, lo.transpose_p, x, permutation=perm)


def _inner_reshape(ctx, x):
    """(operand, dimensions) if ``x`` comes from a reshape or squeeze, else None."""
    inner = ctx.producer(x)
    if inner is None:
        return None
    if inner.primitive is lo.reshape_p:
        return inner.invars[0], inner.params.get("dimensions")
    if inner.primitive is lo.squeeze_p:
        return inner.invars[0], None
    return None


@rule("reshape", "squeeze", label="reshape/squeeze chain -> one reshape")
def _reshape(eqn, ctx):
    x = eqn.invars[0]
    shape = eqn.outvars[0].aval.shape
    dims = eqn.params.get("dimensions") if eqn.primitive is lo.reshape_p else None
    if dims is not None and tuple(dims) == tuple(range(len(dims))):
        return _unary(eqn, lo.reshape_p, x, new_sizes=shape, dimensions=None)
    if dims is not None:
        return None
    if x.aval.shape == shape:
        return x
    inner = _inner_reshape(ctx, x)
    if inner is not None:
        z, inner_dims = inner
        return _unary(eqn, lo.reshape_p, z, new_sizes=shape, dimensions=inner_dims)


@rule("broadcast_in_dim", label="broadcast_in_dim chain or no-op")
def _broadcast(eqn, ctx):
    x = eqn.invars[0]
    shape = tuple(eqn.params["shape"])
    dims = tuple(eqn.params["broadcast_dimensions"])
    if x.aval.shape == shape and dims == tuple(range(len(shape))):
        return x
    inner = ctx.producer(x, "broadcast_in_dim")
    if inner is not None:
        inner_dims = tuple(inner.params["broadcast_dimensions"])
        return _unary(eqn, lo.broadcast_in_dim_p, inner.invars[0], shape=shape,
                      broadcast_dimensions=tuple(dims[d] for d in inner_dims))


@rule("rev", label="rev chain or no-op")
def _rev(eqn, ctx):
    x = eqn.invars[0]
    dims = set(eqn.params["dimensions"])
    inner = ctx.producer(x, "rev")
    if inner is not None:
        x, dims = inner.invars[0], dims ^ set(inner.params["dimensions"])
    dims = {d for d in dims if x.aval.shape[d] > 1}
    if not dims:
        return x
    if inner is not None:
        return _unary(eqn, lo.rev_p, x, dimensions=tuple(sorted(dims)))


@rule("slice", label="slice of everything -> x")
def _slice_all(eqn, ctx):
    x = eqn.invars[0]
    p = eqn.params
    strides = p.get("strides") or (1,) * x.aval.ndim
    if (all(s == 0 for s in p["start_indices"]) and tuple(p["limit_indices"]) == x.aval.shape
            and all(s == 1 for s in strides)):
        return x


@rule("pad", label="pad by nothing -> x")
def _pad_none(eqn, ctx):
    if all(tuple(c) == (0, 0, 0) for c in eqn.params["padding_config"]):
        return eqn.invars[0]


@rule("concatenate", label="concatenate of one operand -> x")
def _concat_one(eqn, ctx):
    if len(eqn.invars) == 1:
        return eqn.invars[0]


@rule("reduce_sum", "reduce_prod", "reduce_max", "reduce_min", "reduce_and", "reduce_or",
      "reduce_xor", label="reduction over size-1 axes -> reshape")
def _trivial_reduction(eqn, ctx):
    x = eqn.invars[0]
    if eqn.primitive.name == "reduce_sum" and x.aval.dtype.kind == "f":
        return None   # the added identity 0.0 turns -0.0 into +0.0
    if all(x.aval.shape[a] == 1 for a in eqn.params["axes"]):
        shape = eqn.outvars[0].aval.shape
        if shape == x.aval.shape:
            return x
        return _unary(eqn, lo.reshape_p, x, new_sizes=shape, dimensions=None)


def _splat_operand(eqn, ctx):
    """An elementwise operand that is a broadcast literal can be the literal itself (rank-0
    operands broadcast), as long as another operand still gives the output its shape."""
    out_shape = eqn.outvars[0].aval.shape
    if out_shape == ():
        return None
    invars = list(eqn.invars)
    changed = False
    for i, a in enumerate(invars):
        b = ctx.producer(a, "broadcast_in_dim")
        if b is not None and type(b.invars[0]) is Literal and b.invars[0].aval == a.aval.update(shape=()):
            # (an operand replaced earlier in this loop is a literal now, so at least one
            # full-shaped operand always remains)
            others = invars[:i] + invars[i + 1:]
            if any(type(o) is Var and o.aval.shape == out_shape for o in others):
                invars[i] = b.invars[0]
                changed = True
    if changed:
        return [eqn.replace(invars=invars)]


# Applies to every elementwise primitive with several operands, after its own rules.
_SPLAT_RULE = ("broadcast literal operand -> scalar literal", _splat_operand)


# ------------------------------------------------------------------ the pass

def _rules_for(eqn: Eqn):
    rules = RULES.get(eqn.primitive.name, [])
    if eqn.primitive.kind == ELEMENTWISE and len(eqn.invars) > 1:
        rules = rules + [_SPLAT_RULE]
    return rules


def _apply_rules(eqn: Eqn, ctx: _Ctx):
    """(label, result) of the first rule that applies and type-checks, or (None, None)."""
    if len(eqn.outvars) != 1:
        return None, None
    out = eqn.outvars[0]
    for label, fn in _rules_for(eqn):
        result = fn(eqn, ctx)
        if result is None:
            continue
        if isinstance(result, list):
            if result[-1].outvars == eqn.outvars and all(check_eqn(e) for e in result):
                return label, result
        elif result.aval == out.aval:
            return label, result
    return None, None


def _simplify(ir: IR, consts, log: ChangeLog):
    env = Env()
    ctx = _Ctx()
    eqns = []
    for old in ir.eqns:
        work = [rewrite_subirs(env.eqn(old), _simplify, log)]
        budget = _MAX_REWRITES_PER_EQN
        while work:
            eqn = env.eqn(work.pop(0))
            label, result = _apply_rules(eqn, ctx) if budget > 0 else (None, None)
            if label is None:
                eqns.append(eqn)
                for v in eqn.outvars:
                    ctx.producers[id(v)] = eqn
                continue
            budget -= 1
            log.add(label + ": {n} equation{s}", eqn)
            if isinstance(result, list):
                work = result + work
            else:
                env.set(eqn.outvars[0], result)
    return rebuild(ir, eqns, env.atoms(ir.outvars)), consts


def simplify(closed: ClosedIR) -> ClosedIR:
    """Apply the exact algebraic rewrites listed in this module's docstring."""
    return run_pass(_simplify, closed)[0]
