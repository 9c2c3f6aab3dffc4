"""Partial evaluation: run what is known now, stage what is not into a new IR.

A ``PartialEvalTrace`` sits on a parent trace. Its own tracers are *unknown* values (each
one a ``Var`` of the IR being built); everything else is *known* (a value of the parent).
A primitive whose operands are all known is bound on the parent right away; one with an
unknown operand is staged as an equation, and the known operands it uses become the
staged IR's constvars: the *residuals*.

Linearization is JVP over partial evaluation: the primals are known and the input
tangents unknown, so the primal computation (and every coefficient a JVP rule derives
from it) runs on the parent, while the tangent computation, linear in the input tangents,
is staged into the *linear IR* that ``transpose.backward_pass`` later runs backwards.

``partial_eval_ir`` does the same to a whole IR, splitting it into a known program and an
unknown program joined by residuals (rules of control-flow primitives use it on their
sub-programs). A primitive may take over its own splitting with ``prim.partial_eval``
(see ad.py); by default a primitive with an unknown operand is staged whole.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from ..core import trace_state
from ..core.ir import IR, ClosedIR, Eqn, Var
from ..core.rules import hoist_consts  # noqa: F401  (moved to the core: ops rules use it)
from ..core.trace import StagingTrace, StagingTracer, eval_ir, get_aval
from .jvp import JVPTrace, Zero, lower_aux


class PartialEvalTrace(StagingTrace):
    """Binds known work on ``parent``; stages work on unknown values into an IR.

    Unknown values are ``StagingTracer``\\ s of this trace (made by ``new_arg`` or by staged
    equations); ``finish(outs)`` returns the staged IR, whose constvars are the residuals
    and whose consts are their (parent) values.
    """

    def __init__(self, parent, description: str = "linearize"):
        super().__init__(description)
        self.parent = parent

    def is_known(self, x: Any) -> bool:
        """Known values belong to the parent (or are constants); unknown ones are ours."""
        return not (isinstance(x, StagingTracer) and x._trace is self)

    def process_primitive(self, primitive, args, params):
        if all(self.is_known(x) for x in args):
            with trace_state.set_current(self.parent):
                return primitive.bind(*args, **params)
        rule = getattr(primitive, "partial_eval", None)
        if rule is not None:
            return rule(self, list(args), params)
        return self.stage(primitive, args, params)

    def stage(self, primitive, args: Sequence[Any], params: dict):
        """Record ``primitive`` as an equation of the unknown IR (known operands -> residuals)."""
        return StagingTrace.process_primitive(self, primitive, args, params)

    # custom_jvp / custom_vjp functions on known values run on the parent unchanged;
    # with unknown operands they are staged whole (custom_derivatives binds the primitive).
    def process_custom_jvp_call(self, call, args):
        if all(self.is_known(x) for x in args):
            with trace_state.set_current(self.parent):
                return call.dispatch(list(args))
        return call.bind(list(args))

    def process_custom_vjp_call(self, call, args):
        return self.process_custom_jvp_call(call, args)


# --------------------------------------------------------------------------- linearize

def linearize_flat(fun: Callable, primals: Sequence[Any], has_tangent: Sequence[bool],
                   description: str = "linearize", has_aux: bool = False):
    """Linearize ``fun`` (flat lists in and out) at ``primals``.

    Returns ``(primals_out, linear, out_nonzero)``: ``linear`` is a ``ClosedIR`` mapping the
    tangents of the inputs marked in ``has_tangent`` to the tangents of the outputs marked
    in ``out_nonzero`` (the others are zero); its consts are the residuals, values of the
    trace that was current at the call. With ``has_aux``, ``fun`` returns ``(outs, aux)``
    and ``aux`` (not differentiated) is returned fourth.
    """
    parent = trace_state.current()
    pe = PartialEvalTrace(parent, description)
    jt = JVPTrace(pe, description)
    ins = [jt.box(p, pe.new_arg(get_aval(p).strong())) if ht else p
           for p, ht in zip(primals, has_tangent)]
    try:
        with trace_state.set_current(jt):
            outs = fun(*ins)
        outs, aux = outs if has_aux else (outs, None)
        pairs = [jt.lift(o) for o in outs]
        aux = lower_aux(jt, aux)
    finally:
        jt.alive = False
    primals_out = [p for p, _ in pairs]
    out_nonzero = [type(t) is not Zero for _, t in pairs]
    with trace_state.set_current(pe):
        linear = pe.finish([t for _, t in pairs if type(t) is not Zero])
    pe.alive = False
    return (primals_out, linear, out_nonzero) + ((aux,) if has_aux else ())


# --------------------------------------------------------------------------- IR-level helpers

def dce_ir(ir: IR, used_outputs: Sequence[bool]) -> tuple[IR, list[bool]]:
    """Drop the outputs not in ``used_outputs`` and every equation they alone needed.

    Returns ``(new_ir, used_inputs)``; the new IR keeps all of ``ir``'s invars (so its
    signature does not change) and ``used_inputs`` says which ones it still reads.
    Equations have no side effects, so an equation none of whose results is used goes.
    """
    outvars = [v for v, u in zip(ir.outvars, used_outputs) if u]
    live = {id(v) for v in outvars if isinstance(v, Var)}
    kept: list[Eqn] = []
    for eqn in reversed(ir.eqns):
        if any(id(v) in live for v in eqn.outvars):
            kept.append(eqn)
            live.update(id(a) for a in eqn.invars if isinstance(a, Var))
    kept.reverse()
    used_inputs = [id(v) in live for v in ir.invars]
    return IR(ir.constvars, ir.invars, kept, outvars), used_inputs


def prune_inputs(ir: IR, keep: Sequence[bool]) -> IR:
    """``ir`` with only the invars marked in ``keep`` (the others must be unused)."""
    return IR(ir.constvars, [v for v, k in zip(ir.invars, keep) if k], ir.eqns, ir.outvars)


def partial_eval_ir(ir: IR | ClosedIR, unknowns: Sequence[bool],
                    instantiate: bool | Sequence[bool] = False):
    """Split a program by which of its inputs are unknown.

    Returns ``(known, unknown, out_unknowns, num_res)``:

    * ``known`` (a ``ClosedIR``) takes the known inputs and returns the known outputs
      followed by ``num_res`` residuals;
    * ``unknown`` (a ``ClosedIR`` without consts) takes the residuals followed by the
      unknown inputs and returns the unknown outputs;
    * ``out_unknowns[i]`` says whether output ``i`` is computed by ``unknown``.

    An equation goes to ``unknown`` when it depends on an unknown input, otherwise to
    ``known``. ``instantiate`` (one bool, or one per output) makes a known output an
    unknown one anyway (``unknown`` then returns it, read from a residual), which
    loop rules need to keep a carry's known-ness the same in every iteration.
    Primitives with a ``partial_eval`` rule split themselves.
    """
    closed = ir if isinstance(ir, ClosedIR) else ClosedIR(ir, [])
    body = closed.ir
    n_out = len(body.outvars)
    inst = [instantiate] * n_out if isinstance(instantiate, bool) else list(instantiate)
    known_trace = StagingTrace("the known part of a partially evaluated program")
    pe = PartialEvalTrace(known_trace, "the unknown part of a partially evaluated program")
    args = [pe.new_arg(v.aval) if u else known_trace.new_arg(v.aval)
            for v, u in zip(body.invars, unknowns)]
    with trace_state.set_current(pe):
        outs = eval_ir(body, closed.consts, args)
    out_unknowns = [not pe.is_known(o) or force for o, force in zip(outs, inst)]
    with trace_state.set_current(pe):
        unknown_closed = pe.finish([o for o, u in zip(outs, out_unknowns) if u])
    residuals = unknown_closed.consts
    uir = unknown_closed.ir
    unknown = ClosedIR(IR([], list(uir.constvars) + list(uir.invars), uir.eqns, uir.outvars), [])
    with trace_state.set_current(known_trace):
        known = known_trace.finish([o for o, u in zip(outs, out_unknowns) if not u]
                                   + list(residuals))
    return known, unknown, out_unknowns, len(residuals)
