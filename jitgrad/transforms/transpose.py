"""Transposition: run a linear program backwards (reverse mode).

``backward_pass(ir, consts, args, cts_out)`` takes a program that is linear in some of its
inputs (the ones passed as ``UndefinedPrimal(aval)``) and the cotangents of its outputs,
and returns the cotangents of those inputs. Equations that do not depend on a linear
input are evaluated first, forwards (they compute coefficients, or recompute a
checkpointed forward pass); then the linear equations are visited in reverse order, each
through its primitive's transpose rule::

    prim.transpose(ct, *args, **params) -> [ct_or_None for each operand]

where ``ct`` is the output cotangent (a list for ``multiple_results`` primitives, whose
entries may be ``Zero``), and each linear operand arrives as an ``UndefinedPrimal``; the
other operands arrive with their values. Cotangents of a value used several times are
added; a rule may return a cotangent of another float dtype (it is converted to the
operand's dtype) or a full-shape cotangent for a rank-0 operand of an elementwise
primitive (it is summed).
"""
from __future__ import annotations

from typing import Any, Sequence

from ..core import trace_state
from ..core.abstract import ShapedArray
from ..core.ir import IR, Literal, Var
# UndefinedPrimal and the helpers transpose rules are written with live in the core, below
# jitgrad/ops (core/rules.py); re-exported here for existing callers.
from ..core.rules import (NonLinearError, UndefinedPrimal, Zero, add_tangents,  # noqa: F401
                          instantiate_zeros, is_undefined_primal)
from ..core.trace import get_aval


def fit_cotangent(ct: Any, aval: ShapedArray) -> Any:
    """Line a rule's cotangent up with its operand: sum over broadcast axes of a rank-0
    operand, and convert to the operand's dtype."""
    if ct is None or type(ct) is Zero:
        return Zero(aval)
    ct_aval = get_aval(ct)
    if ct_aval.shape != aval.shape:
        if aval.shape != ():
            raise ValueError(f"internal error: a transpose rule produced a cotangent "
                             f"{ct_aval.str_short()} for an operand {aval.str_short()}")
        from ..ops.reductions import reduce_sum_p
        ct = reduce_sum_p.bind(ct, axes=tuple(range(ct_aval.ndim)))
    if ct_aval.dtype != aval.dtype:
        from ..ops.elementwise import convert_element_type_p
        ct = convert_element_type_p.bind(ct, new_dtype=aval.dtype, weak_type=aval.weak_type)
    return ct


def backward_pass(ir: IR, consts: Sequence[Any], args: Sequence[Any],
                  cts_out: Sequence[Any]) -> list[Any]:
    """Cotangents of ``ir``'s linear inputs, given the cotangents of its outputs.

    ``args`` has one entry per invar: an ``UndefinedPrimal`` for a linear input, or the
    input's value. ``cts_out`` has one entry per output (``Zero`` allowed). Returns one
    entry per invar: the cotangent (possibly ``Zero``) of each linear input, ``None`` for
    the others. Work is bound under the current trace.
    """
    linear_ids = {id(v) for v, a in zip(ir.invars, args) if type(a) is UndefinedPrimal}
    linear_eqns, forward_eqns = [], []
    for eqn in ir.eqns:
        if any(isinstance(a, Var) and id(a) in linear_ids for a in eqn.invars):
            linear_eqns.append(eqn)
            linear_ids.update(id(v) for v in eqn.outvars)
        else:
            forward_eqns.append(eqn)

    # Forward: evaluate the non-linear equations the linear ones need (coefficients).
    primal_env: dict[int, Any] = {}
    for v, c in zip(ir.constvars, consts):
        primal_env[id(v)] = c
    for v, a in zip(ir.invars, args):
        if type(a) is not UndefinedPrimal:
            primal_env[id(v)] = a
    needed = {id(a) for e in linear_eqns for a in e.invars
              if isinstance(a, Var) and id(a) not in linear_ids}
    for eqn in reversed(forward_eqns):
        if any(id(v) in needed for v in eqn.outvars):
            needed.update(id(a) for a in eqn.invars if isinstance(a, Var))
    for eqn in forward_eqns:
        if not any(id(v) in needed for v in eqn.outvars):
            continue
        ins = [a.value if isinstance(a, Literal) else primal_env[id(a)] for a in eqn.invars]
        with trace_state.source_override(eqn.source):
            out = eqn.primitive.bind(*ins, **eqn.params)
        outs = out if eqn.primitive.multiple_results else [out]
        for v, o in zip(eqn.outvars, outs):
            primal_env[id(v)] = o

    # Backward: transpose the linear equations in reverse order.
    ct_env: dict[int, Any] = {}

    def write_ct(v, ct):
        if not isinstance(v, Var) or id(v) not in linear_ids or ct is None or type(ct) is Zero:
            return
        prev = ct_env.get(id(v))
        ct_env[id(v)] = ct if prev is None else add_tangents(prev, ct)

    for v, ct in zip(ir.outvars, cts_out):
        if ct is not None and type(ct) is not Zero:
            write_ct(v, fit_cotangent(ct, v.aval))

    for eqn in reversed(linear_eqns):
        cts = [ct_env.pop(id(v), None) for v in eqn.outvars]
        if all(c is None for c in cts):
            continue
        cts = [Zero(v.aval) if c is None else c for v, c in zip(eqn.outvars, cts)]
        rule_args = []
        for a in eqn.invars:
            if isinstance(a, Literal):
                rule_args.append(a.value)
            elif id(a) in linear_ids:
                rule_args.append(UndefinedPrimal(a.aval))
            else:
                rule_args.append(primal_env[id(a)])
        prim = eqn.primitive
        if prim.transpose is None:
            raise NotImplementedError(
                f"Transpose rule (for reverse-mode differentiation) for '{prim.name}' not "
                f"implemented: '{prim.name}' was applied to a value that depends linearly on "
                "the differentiated inputs.")
        with trace_state.source_override(eqn.source):
            cts_in = prim.transpose(cts if prim.multiple_results else cts[0],
                                    *rule_args, **eqn.params)
            for a, ct in zip(eqn.invars, cts_in):
                if isinstance(a, Var) and id(a) in linear_ids:
                    write_ct(a, fit_cotangent(ct, a.aval))

    return [ct_env.get(id(v), Zero(v.aval)) if type(a) is UndefinedPrimal else None
            for v, a in zip(ir.invars, args)]


def linear_transpose_ir(ir: IR, consts: Sequence[Any], cts_out: Sequence[Any]) -> list[Any]:
    """Cotangents of all inputs of a program linear in all of them (Zeros instantiated)."""
    args = [UndefinedPrimal(v.aval) for v in ir.invars]
    return [instantiate_zeros(c) for c in backward_pass(ir, consts, args, cts_out)]
