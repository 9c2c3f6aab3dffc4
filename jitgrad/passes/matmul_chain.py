"""Matrix-chain ordering: evaluate ``A @ B @ v`` in the association that costs least.

A chain is a tree of 2-D ``dot_general`` equations (one contracted axis, no batch axes,
either operand possibly read transposed) whose intermediate results are read only by the
next product of the chain, and are not outputs of the program. Its factors are flattened
into a sequence of logical matrices ``M1 @ M2 @ ... @ Mn`` (a transposed intermediate
``(X @ Y).T`` contributes ``Y.T @ X.T``), the cheapest association is found from the
static shapes by the classic O(n^3) dynamic programme (cost: multiply-adds, m*k*n per
product), and the chain is rebuilt only if that is strictly cheaper than the current one.
``(A @ B) @ v`` with A, B of 1000x1000 and v of 1000x1 costs 1e9 + 1e6 multiply-adds;
``A @ (B @ v)`` costs 2e6.

Rounding: reassociation changes the order of floating-point sums, so float results may
change in their last bits (as with any BLAS, whose blocking already fixes no order), and
an overflow to inf in one order may not happen in the other. That is accepted for float
matmuls, as XLA's algebraic simplifier does. Integer products are exact in any order
(wrapping arithmetic is associative). Bool and mixed-precision
(``preferred_element_type`` different from the operands) products are left alone.
"""
from __future__ import annotations

import numpy as np

from ..core.ir import IR, ClosedIR, Eqn, Var
from ..ops.linalg import dot_general_p
from ._ir_tools import ChangeLog, check_eqn, rebuild, rewrite_subirs, run_pass, use_counts


def _matrix_operands(eqn: Eqn):
    """((lhs, lhs_transposed), (rhs, rhs_transposed)) if ``eqn`` is a plain matrix product."""
    if eqn.primitive is not dot_general_p or len(eqn.invars) != 2:
        return None
    lhs, rhs = eqn.invars
    if lhs.aval.ndim != 2 or rhs.aval.ndim != 2 or lhs.aval.dtype.kind not in "fiu":
        return None
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    if lb or rb or len(lc) != 1 or len(rc) != 1:
        return None
    pet = eqn.params.get("preferred_element_type")
    if pet is not None and np.dtype(pet) != lhs.aval.dtype:
        return None
    return (lhs, tuple(lc) == (0,)), (rhs, tuple(rc) == (1,))


def _shape(factor) -> tuple[int, int]:
    atom, transposed = factor
    m, n = atom.aval.shape
    return (n, m) if transposed else (m, n)


def _flops(eqn: Eqn) -> int:
    (l, lt), _ = _matrix_operands(eqn)
    m, k = _shape((l, lt))
    n = eqn.outvars[0].aval.shape[1]
    return m * k * n


class _Chain:
    """The flattened factors of one chain, its current cost and the equations it absorbs."""

    def __init__(self, root: Eqn, inner: dict[int, Eqn], log: ChangeLog):
        self.absorbed: list[Eqn] = []
        self.cost = _flops(root)
        self.log = log
        (l, lt), (r, rt) = _matrix_operands(root)
        lf, ltext = self._flatten(l, lt, inner)
        rf, rtext = self._flatten(r, rt, inner)
        self.factors = lf + rf
        self.text = f"{ltext} @ {rtext}"

    def _flatten(self, atom, transposed, inner):
        eqn = inner.get(id(atom)) if type(atom) is Var else None
        if eqn is None:
            return [(atom, transposed)], self.log.name(atom) + (".T" if transposed else "")
        self.absorbed.append(eqn)
        self.cost += _flops(eqn)
        (l, lt), (r, rt) = _matrix_operands(eqn)
        lf, ltext = self._flatten(l, lt, inner)
        rf, rtext = self._flatten(r, rt, inner)
        factors, text = lf + rf, f"({ltext} @ {rtext})"
        if transposed:
            factors = [(a, not t) for a, t in reversed(factors)]
            text += ".T"
        return factors, text


def _best_order(dims: list[int]):
    """Matrix-chain DP: (cost, split table) for matrices of shapes dims[i] x dims[i+1]."""
    n = len(dims) - 1
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(2, n + 1):
        for i in range(n - length + 1):
            j = i + length - 1
            best = None
            for s in range(i, j):
                c = cost[i][s] + cost[s + 1][j] + dims[i] * dims[s + 1] * dims[j + 1]
                if best is None or c < best:
                    best, split[i][j] = c, s
            cost[i][j] = best
    return cost[0][n - 1], split


def _rebuild_chain(root: Eqn, factors, split, log: ChangeLog):
    """New equations computing the chain in the order of ``split``; None if ill-typed."""
    eqns: list[Eqn] = []

    def build(i, j, outvar=None):
        if i == j:
            atom, t = factors[i]
            return atom, t, log.name(atom) + (".T" if t else "")
        s = split[i][j]
        la, lt, ltext = build(i, s)
        ra, rt, rtext = build(s + 1, j)
        dn = (((0,) if lt else (1,), (1,) if rt else (0,)), ((), ()))
        params = {**root.params, "dimension_numbers": dn}
        if outvar is None:
            outvar = Var(dot_general_p.abstract_eval(la.aval, ra.aval, **params))
        eqns.append(Eqn(dot_general_p, [la, ra], [outvar], params, root.source))
        text = f"{ltext} @ {rtext}"
        return outvar, False, text if outvar is root.outvars[0] else f"({text})"

    _, _, text = build(0, len(factors) - 1, root.outvars[0])
    if not all(check_eqn(e) for e in eqns):
        return None, None
    return eqns, text


def _reorder(ir: IR, consts, log: ChangeLog):
    counts = use_counts(ir)
    outputs = {id(a) for a in ir.outvars if type(a) is Var}
    products = {id(e.outvars[0]): e for e in ir.eqns if _matrix_operands(e) is not None}

    # A product is absorbed into its reader when that reader is the only one and is a
    # product of the same kind (same params apart from the dimension numbers).
    def kind(e):
        return (e.outvars[0].aval.dtype, e.params.get("preferred_element_type"))

    inner: dict[int, Eqn] = {}
    for e in products.values():
        for a in e.invars:
            p = products.get(id(a)) if type(a) is Var else None
            if (p is not None and counts.get(id(a), 0) == 1 and id(a) not in outputs
                    and kind(p) == kind(e)):
                inner[id(a)] = p

    replace: dict[int, list[Eqn]] = {}
    drop: set[int] = set()
    for e in products.values():
        if id(e.outvars[0]) in inner:
            continue
        chain = _Chain(e, inner, log)
        if len(chain.factors) < 3:
            continue
        dims = [_shape(f)[0] for f in chain.factors] + [_shape(chain.factors[-1])[1]]
        best, split = _best_order(dims)
        if best >= chain.cost:
            continue
        new, text = _rebuild_chain(e, chain.factors, split, log)
        if new is None:
            continue
        replace[id(e)] = new
        drop.update(id(x) for x in chain.absorbed)
        log.add("reassociated {n} matmul chain{s}",
                f"{chain.text} -> {text}: {chain.cost:.3g} -> {best:.3g} multiply-adds")

    eqns = []
    for e in ir.eqns:
        if id(e) in drop:
            continue
        if id(e) in replace:
            eqns.extend(replace[id(e)])
        else:
            eqns.append(rewrite_subirs(e, _reorder, log))
    return rebuild(ir, eqns, list(ir.outvars)), consts


def reorder_matmul_chains(closed: ClosedIR) -> ClosedIR:
    """Re-associate chains of matrix products into their cheapest order (static shapes)."""
    return run_pass(_reorder, closed)[0]
