"""Dead-code elimination: drop equations whose results nobody reads, and unused constants.

An equation is live if one of its outputs is read by a live equation or is an output of
the program, or if it has effects (``prim.has_effects``, see ``_ir_tools``): a future
``debug.print`` survives even though it returns nothing anyone reads. Constvars that no
live equation reads are dropped together with their values. The program's inputs are
never dropped (they are its calling convention).

Sub-IRs of control primitives are cleaned too, keeping their interface (inputs and
outputs): which outputs of a ``cond``/``scan`` could go is the primitive's business, and
its own rules would have to say so.
"""
from __future__ import annotations

from ..core.ir import IR, ClosedIR, Var
from ._ir_tools import ChangeLog, eqn_has_effects, rebuild, rewrite_subirs, run_pass


def _dce(ir: IR, consts, log: ChangeLog):
    live: set[int] = {id(a) for a in ir.outvars if type(a) is Var}
    kept = []
    for eqn in reversed(ir.eqns):
        if any(id(v) in live for v in eqn.outvars) or eqn_has_effects(eqn):
            eqn = rewrite_subirs(eqn, _dce, log)
            kept.append(eqn)
            live.update(id(a) for a in eqn.invars if type(a) is Var)
        else:
            log.add("removed {n} dead equation{s}", eqn)
    kept.reverse()

    constvars = ir.constvars
    if consts is not None:
        keep = [i for i, v in enumerate(ir.constvars) if id(v) in live]
        if len(keep) != len(ir.constvars):
            for i, v in enumerate(ir.constvars):
                if id(v) not in live:
                    log.add("dropped {n} unused constant{s}", v)
            constvars = [ir.constvars[i] for i in keep]
            consts = [consts[i] for i in keep]
    new = rebuild(ir, kept, list(ir.outvars), constvars)
    return new, consts


def eliminate_dead_code(closed: ClosedIR) -> ClosedIR:
    """Drop effect-free equations whose outputs are unused, and unused constvars."""
    return run_pass(_dce, closed)[0]
