"""Fold transposes into the dot_general that consumes them: ``A @ B.T`` never builds ``B.T``.

``dot_general`` names the axes it contracts and batches over, so a transposed operand
can be replaced by the untransposed one with its dimension numbers renamed through the
permutation: for ``y = transpose(x, perm)``, axis ``j`` of ``y`` is axis ``perm[j]`` of
``x``. The output lists the free axes of each operand in increasing order, so the fold is
made only when renaming keeps the free axes in that order (always true for matrices);
otherwise the result would need a transpose of its own. The transpose itself is left for
dead-code elimination (it may have other readers).

A transpose *of* a dot_general's result is folded too, when it swaps the two free-axis
blocks and keeps the batch axes in front: ``(A @ B).T`` is ``B.T @ A.T``, a dot_general
with its operands swapped (the gradient of a dense layer's weights has this shape). This
is done only when the transpose is the product's sole reader, so nothing is computed twice.

Both folds sum the same products; the order of the float additions is whatever the
matmul kernel picks for the new layout, as it already is for any BLAS call.
"""
from __future__ import annotations

from ..core.ir import IR, ClosedIR, Eqn, Var
from ..ops.linalg import dot_general_p, free_axes
from ..ops.layout import transpose_p
from ._ir_tools import ChangeLog, check_eqn, rebuild, rewrite_subirs, run_pass, use_counts


def _renamed(perm, ndim, contract, batch):
    """(contract', batch') through ``perm``, or None if the free axes would reorder."""
    free = free_axes(ndim, contract, batch)
    mapped = [perm[a] for a in free]
    if mapped != sorted(mapped):
        return None
    return tuple(perm[a] for a in contract), tuple(perm[a] for a in batch)


def _fold_operand(eqn: Eqn, side: int, producers: dict) -> Eqn | None:
    operand = eqn.invars[side]
    t = producers.get(id(operand)) if type(operand) is Var else None
    if t is None or t.primitive is not transpose_p:
        return None
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    contract, batch = (lc, lb) if side == 0 else (rc, rb)
    renamed = _renamed(tuple(t.params["permutation"]), operand.aval.ndim, contract, batch)
    if renamed is None:
        return None
    contract, batch = renamed
    dn = ((contract, rc), (batch, rb)) if side == 0 else ((lc, contract), (lb, batch))
    invars = list(eqn.invars)
    invars[side] = t.invars[0]
    new = eqn.replace(invars=invars, params={**eqn.params, "dimension_numbers": dn})
    return new if check_eqn(new) else None


def _swap_operands(t: Eqn, dot: Eqn) -> Eqn | None:
    """``transpose(dot_general(l, r))`` as ``dot_general(r, l)``, if the permutation swaps
    the free-axis blocks (batch axes staying first); else None."""
    (lc, rc), (lb, rb) = dot.params["dimension_numbers"]
    lhs, rhs = dot.invars
    nb = len(lb)
    nl = lhs.aval.ndim - len(lc) - nb
    nr = rhs.aval.ndim - len(rc) - nb
    swapped = (tuple(range(nb)) + tuple(range(nb + nl, nb + nl + nr))
               + tuple(range(nb, nb + nl)))
    if tuple(t.params["permutation"]) != swapped:
        return None
    new = Eqn(dot_general_p, [rhs, lhs], list(t.outvars),
              {**dot.params, "dimension_numbers": ((rc, lc), (rb, lb))}, t.source)
    return new if check_eqn(new) else None


def _fold(ir: IR, consts, log: ChangeLog):
    producers: dict[int, Eqn] = {}
    counts = use_counts(ir)
    outputs = {id(a) for a in ir.outvars if type(a) is Var}
    eqns = []
    dropped: set[int] = set()
    for old in ir.eqns:
        eqn = rewrite_subirs(old, _fold, log)
        if eqn.primitive is dot_general_p:
            for side in (0, 1):
                new = _fold_operand(eqn, side, producers)
                if new is not None:
                    eqn = new
                    log.add("folded {n} transpose{s} into dot_general", old)
        elif eqn.primitive is transpose_p:
            x = eqn.invars[0]
            dot = producers.get(id(x)) if type(x) is Var else None
            if (dot is not None and dot.primitive is dot_general_p and counts.get(id(x)) == 1
                    and id(x) not in outputs):
                new = _swap_operands(eqn, dot)
                if new is not None:
                    log.add("folded {n} transpose{s} of a dot_general result (operands swapped)",
                            old)
                    dropped.add(id(dot))
                    eqn = new
        eqns.append(eqn)
        for v in eqn.outvars:
            producers[id(v)] = eqn
    if dropped:
        eqns = [e for e in eqns if id(e) not in dropped]
    return rebuild(ir, eqns, list(ir.outvars)), consts


def fold_transposes_into_dot(closed: ClosedIR) -> ClosedIR:
    """Let dot_general read transposed operands in place, and write transposed results."""
    return run_pass(_fold, closed)[0]
