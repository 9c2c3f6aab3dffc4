"""Common-subexpression elimination: compute each distinct value once.

Two equations are the same computation when they apply the same primitive with the same
params to the same operands; the later one is dropped and its outputs read the earlier
one's. Literal operands are equal when their dtype, weak type and bits are (so ``0.0`` and
``-0.0`` differ, two NaNs of one dtype agree); params are compared with the care of
``_ir_tools.freeze`` (``1.0`` is not ``1``, sub-IRs by identity). For the commutative
primitives whose result is bitwise symmetric (``add``, ``mul``, comparisons for equality,
bitwise ops) ``a + b`` and ``b + a`` are the same; ``max``/``min`` are not on that list,
because which zero ``max(-0.0, 0.0)`` returns depends on the operand order.

Never merged: effectful equations, primitives with ``no_cse``, and equations whose params
say ``prevent_cse=True`` (JAX's spelling on ``remat``/checkpoint: its recomputation is kept).
Sub-IRs are processed on their own (they cannot see the outer values).
"""
from __future__ import annotations

from ..core.ir import IR, ClosedIR, Var
from ._ir_tools import (ChangeLog, Env, eqn_has_effects, freeze, literal_key, no_cse, rebuild,
                        rewrite_subirs, run_pass)

COMMUTATIVE = frozenset({"add", "mul", "and", "or", "xor", "eq", "ne"})


def _atom_key(a):
    return ("var", id(a)) if type(a) is Var else literal_key(a)


def _eqn_key(eqn):
    operands = [_atom_key(a) for a in eqn.invars]
    if eqn.primitive.name in COMMUTATIVE and len(operands) == 2:
        operands.sort(key=repr)
    return (id(eqn.primitive), freeze(eqn.params), tuple(operands),
            tuple(v.aval for v in eqn.outvars))


def _cse(ir: IR, consts, log: ChangeLog):
    env = Env()
    seen: dict = {}
    eqns = []
    for old in ir.eqns:
        eqn = rewrite_subirs(env.eqn(old), _cse, log)
        if (not eqn.outvars or no_cse(eqn.primitive) or eqn.params.get("prevent_cse") is True
                or eqn_has_effects(eqn)):
            eqns.append(eqn)
            continue
        key = _eqn_key(eqn)
        first = seen.get(key)
        if first is None:
            seen[key] = eqn.outvars
            eqns.append(eqn)
        else:
            for v, w in zip(eqn.outvars, first):
                env.set(v, w)
            log.add("merged {n} equation{s}", old)
    return rebuild(ir, eqns, env.atoms(ir.outvars)), consts


def eliminate_common_subexpressions(closed: ClosedIR) -> ClosedIR:
    """Merge equations that compute the same thing from the same operands."""
    return run_pass(_cse, closed)[0]
