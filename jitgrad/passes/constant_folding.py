"""Constant folding: run equations whose operands are all known while compiling.

An equation is folded when every operand is a literal or a concrete constant of at most
``MAX_FOLD_ELEMENTS`` elements (a closed-over array; never a tracer of an outer trace).
It is evaluated with the primitive's numpy ``impl`` (the reference semantics, so the
result is exactly what the reference backend computes at run time). A scalar result
becomes a literal; an array result of at most ``MAX_FOLD_ELEMENTS`` elements becomes a new
constant.

Not folded:
* equations whose operands are all scalar literals but whose result is an array
  (``broadcast_in_dim 0.0``, ``iota``): generating them inside a fused kernel costs
  nothing, while a constant array costs memory and a read;
* anything bigger than the cap (folding a large array trades a cheap recomputation for
  compile time and memory), effectful or control-flow equations, and equations whose
  ``impl`` fails or disagrees with their abstract value.

An elementwise equation whose operands are literals or broadcast literals ("splats",
``jnp.ones_like(x) * 0.5``) is folded on the scalars and becomes a broadcast of the
result: an elementwise function of constant arrays is that constant everywhere.

A concrete scalar constvar is also turned into a literal (its constvar then dies).
"""
from __future__ import annotations

import numpy as np

from ..core.ir import IR, ClosedIR, Eqn, Literal, Var
from ..core.primitive import ELEMENTWISE
from ..ops.layout import broadcast_in_dim_p
from ._ir_tools import (ChangeLog, Env, check_eqn, concrete_value, eqn_has_effects, has_effects,
                        is_control, make_const, rebuild, rewrite_subirs, run_pass)

MAX_FOLD_ELEMENTS = 1024


def _evaluate(eqn, values):
    """The equation's outputs as numpy arrays, or None if they cannot be trusted."""
    prim = eqn.primitive
    try:
        with np.errstate(all="ignore"):
            out = prim.impl(*values, **eqn.params)
    except Exception:
        return None
    outs = list(out) if prim.multiple_results else [out]
    if len(outs) != len(eqn.outvars):
        return None
    result = []
    for o, v in zip(outs, eqn.outvars):
        o = np.asarray(o)
        if o.shape != v.aval.shape or o.dtype != v.aval.dtype:
            return None
        result.append(o)
    return result


def _fold_splats(eqn, splats: dict) -> Eqn | None:
    """``op(splat a, b)`` with literal/splat operands -> ``broadcast_in_dim(op(a, b))``."""
    prim = eqn.primitive
    if (prim.kind != ELEMENTWISE or prim.multiple_results or prim.impl is None
            or has_effects(prim) or not eqn.invars
            or not any(type(a) is Var and id(a) in splats for a in eqn.invars)
            or not all(type(a) is Literal or id(a) in splats for a in eqn.invars)):
        return None
    scalars = [a if type(a) is Literal else splats[id(a)] for a in eqn.invars]
    out = eqn.outvars[0]
    probe = eqn.replace(invars=scalars, outvars=[Var(out.aval.update(shape=()))])
    values = _evaluate(probe, [s.value for s in scalars])
    if values is None:
        return None
    new = Eqn(broadcast_in_dim_p, [Literal(values[0], probe.outvars[0].aval)], [out],
              dict(shape=out.aval.shape, broadcast_dimensions=()), eqn.source)
    return new if check_eqn(new) else None


def _fold(ir: IR, consts, log: ChangeLog):
    env = Env()
    known: dict[int, np.ndarray] = {}      # var -> value, for constvars and folded arrays
    constvars = list(ir.constvars)
    new_consts = None if consts is None else list(consts)
    if consts is not None:
        for v, c in zip(ir.constvars, consts):
            value = concrete_value(c)
            if value is None or value.shape != v.aval.shape or value.dtype != v.aval.dtype:
                continue
            if value.ndim == 0:
                env.set(v, Literal(value, v.aval))
                log.add("turned {n} scalar constant{s} into literals", v)
            elif value.size <= MAX_FOLD_ELEMENTS:
                known[id(v)] = value

    splats: dict[int, Literal] = {}        # var -> the literal it is a broadcast of
    eqns = []
    for old in ir.eqns:
        eqn = env.eqn(old)
        prim = eqn.primitive
        if prim is broadcast_in_dim_p and type(eqn.invars[0]) is Literal:
            splats[id(eqn.outvars[0])] = eqn.invars[0]
        folded = _fold_splats(eqn, splats)
        if folded is not None:
            eqns.append(folded)
            splats[id(folded.outvars[0])] = folded.invars[0]
            log.add("folded {n} equation{s} on broadcast constants", old)
            continue
        if (prim.impl is None or is_control(eqn) or eqn_has_effects(eqn)
                or not all(type(a) is Literal or id(a) in known for a in eqn.invars)):
            eqns.append(rewrite_subirs(eqn, _fold, log))
            continue
        has_array_operand = any(type(a) is Var for a in eqn.invars)
        all_scalar = all(v.aval.shape == () for v in eqn.outvars)
        small = all(v.aval.size <= MAX_FOLD_ELEMENTS for v in eqn.outvars)
        if not (all_scalar or (has_array_operand and small and new_consts is not None)):
            eqns.append(eqn)
            continue
        values = _evaluate(eqn, [a.value if type(a) is Literal else known[id(a)]
                                 for a in eqn.invars])
        if values is None:
            eqns.append(eqn)
            continue
        for v, value in zip(eqn.outvars, values):
            if value.ndim == 0:
                env.set(v, Literal(value, v.aval))
            else:
                # The old outvar becomes a constvar: it keeps its aval and every reader.
                constvars.append(v)
                new_consts.append(make_const(value))
                known[id(v)] = value
        log.add("folded {n} equation{s}", old)

    new = rebuild(ir, eqns, env.atoms(ir.outvars), constvars)
    return (ir, consts) if new is ir else (new, new_consts)


def fold_constants(closed: ClosedIR) -> ClosedIR:
    """Evaluate equations whose operands are all literals or small constants."""
    return run_pass(_fold, closed)[0]
