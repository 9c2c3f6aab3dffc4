"""Forward-mode differentiation: the JVP trace and ``jvp_ir``.

(The symbolic ``Zero`` and the helpers JVP rules are written with, ``defjvp`` and friends,
are in ``jitgrad/core/rules.py``, below ``jitgrad/ops``; this module re-exports them.)

Inside ``jvp(f)``, every value ``f`` computes with is a ``JVPTracer``: a primal value plus
its tangent (the directional derivative along the input tangents). A primitive applied
to JVP tracers goes to ``JVPTrace.process_primitive``, which runs the primitive's JVP
rule under the parent trace::

    prim.jvp(primals, tangents, **params) -> (primal_out, tangent_out)

(lists for ``multiple_results`` primitives). A tangent may be the symbolic ``Zero(aval)``:
"known to be zero", which costs nothing and lets rules skip work. The rule's results are
values of the parent trace, so the same rule serves eager evaluation, staging under
``jit``, and every enclosing transformation.

The design is stackless: a value that is not this trace's own tracer is a constant to it
(tangent ``Zero``), so each ``JVPTrace`` instance only differentiates with respect to its
own inputs, and nested ``jvp`` of ``jvp`` cannot confuse their perturbations.
"""
from __future__ import annotations

import operator
from typing import Any, Callable, Sequence

from ..core import trace_state
from ..core.abstract import ShapedArray
from ..core.errors import JitgradError, UnexpectedTracerError
from ..core.ir import IR, ClosedIR
# The symbolic Zero and the helpers rules are written with live in the core, below
# jitgrad/ops (core/rules.py); re-exported here for the traces and for existing callers.
from ..core.rules import (Zero, add_tangents, const_like, defjvp, defjvp2,  # noqa: F401
                          defjvp_elementwise, defjvp_zero, deflinear, instantiate_zeros,
                          is_float, is_zero, scale_tangent, zeros_like_aval)
from ..core.trace import Trace, Tracer, eval_ir, get_aval, trace_to_ir


# --------------------------------------------------------------------------- tangents

def fit_to_aval(t: Any, aval: ShapedArray) -> Any:
    """Give a tangent the primal's shape and dtype: broadcast a rank-0 tangent, convert dtype.

    Rules may return a rank-0 tangent for a primal that was broadcast (``add(x_scalar, y)``
    differentiated only in ``x``), or a tangent in another float dtype; this lines it up.
    """
    if type(t) is Zero:
        return Zero(aval)
    t_aval = get_aval(t)
    if t_aval.dtype != aval.dtype:
        from ..ops.elementwise import convert_element_type_p
        t = convert_element_type_p.bind(t, new_dtype=aval.dtype, weak_type=False)
    if t_aval.shape != aval.shape:
        if t_aval.shape != ():
            raise ValueError(f"internal error: a rule produced a tangent {t_aval.str_short()} "
                             f"for a value {aval.str_short()}")
        from ..ops.layout import broadcast_in_dim_p
        t = broadcast_in_dim_p.bind(t, shape=aval.shape, broadcast_dimensions=())
    return t


# --------------------------------------------------------------------------- the trace

class JVPTracer(Tracer):
    """A value inside ``jvp``: ``primal`` (a value of the parent trace) and its ``tangent``."""

    __slots__ = ("primal", "tangent")

    def __init__(self, trace: "JVPTrace", primal: Any, tangent: Any):
        self._trace = trace
        self.primal = primal
        self.tangent = tangent

    @property
    def aval(self) -> ShapedArray:
        return get_aval(self.primal)

    # Python needs a concrete value for `if x < 3:`, int(x), float(x)... The primal is
    # concrete when the parent trace is eager (as in JAX, primals stay concrete under an
    # eager grad), so ask the primal; under jit it raises the staging trace's error.
    def __bool__(self):
        return bool(self.primal)

    def __int__(self):
        return int(self.primal)

    def __index__(self):
        return operator.index(self.primal)

    def __float__(self):
        return float(self.primal)

    def __complex__(self):
        return complex(self.primal)

    def item(self, *args):
        return self.primal.item(*args) if hasattr(self.primal, "item") else self.primal

    def tolist(self):
        return self.primal.tolist() if hasattr(self.primal, "tolist") else self.primal


class JVPTrace(Trace):
    """Runs JVP rules under ``parent`` (the trace that was current when ``jvp`` started)."""

    def __init__(self, parent: Trace, description: str = "jvp"):
        self.parent = parent
        self.description = description
        self.alive = True

    # -- values
    def lift(self, x: Any) -> tuple[Any, Any]:
        """``(primal, tangent)`` of an operand; anything not ours is a constant (tangent Zero)."""
        if isinstance(x, JVPTracer) and x._trace is self:
            return x.primal, x.tangent
        if isinstance(x, Tracer) and not _alive(x._trace):
            raise x._trace.escaped_error(x, None)
        return x, Zero(_tangent_aval(x))

    def box(self, primal: Any, tangent: Any) -> Any:
        """A tracer for a rule's result; a plain parent value when its tangent is zero."""
        return primal if type(tangent) is Zero else JVPTracer(self, primal, tangent)

    def process_primitive(self, primitive, args, params):
        primals, tangents = [], []
        for x in args:
            p, t = self.lift(x)
            primals.append(p)
            tangents.append(t)
        with trace_state.set_current(self.parent):
            if all(type(t) is Zero for t in tangents):
                return primitive.bind(*primals, **params)
            if primitive.jvp is None:
                raise NotImplementedError(
                    f"Differentiation rule for '{primitive.name}' not implemented: the "
                    f"primitive has no JVP rule (prim.jvp), so it cannot be differentiated.")
            out, t_out = primitive.jvp(primals, tangents, **params)
            if primitive.multiple_results:
                t_out = [_fit_tangent(t, o) for o, t in zip(out, t_out)]
            else:
                t_out = _fit_tangent(t_out, out)
        if primitive.multiple_results:
            return [self.box(o, t) for o, t in zip(out, t_out)]
        return self.box(out, t_out)

    # Custom derivatives (jitgrad.transforms.custom_derivatives) ask the current trace first.
    def process_custom_jvp_call(self, call, args):
        """Apply a ``custom_jvp`` function: its own JVP rule instead of differentiating it."""
        primals, tangents = zip(*[self.lift(x) for x in args]) if args else ((), ())
        with trace_state.set_current(self.parent):
            if all(type(t) is Zero for t in tangents):
                return call.dispatch(list(primals))
            tangents = [instantiate_zeros(t) for t in tangents]
            outs, t_outs = call.run_jvp_rule(list(primals), tangents)
            t_outs = [_fit_tangent(t, o) for o, t in zip(outs, t_outs)]
        return [self.box(o, t) for o, t in zip(outs, t_outs)]

    def process_custom_vjp_call(self, call, args):
        """Apply a ``custom_vjp`` function: run ``fwd`` and make the tangent a linear call of ``bwd``."""
        primals, tangents = zip(*[self.lift(x) for x in args]) if args else ((), ())
        with trace_state.set_current(self.parent):
            if all(type(t) is Zero for t in tangents):
                return call.dispatch(list(primals))
            outs, t_outs = call.jvp_via_fwd(list(primals), list(tangents))
        return [self.box(o, t) for o, t in zip(outs, t_outs)]

    def is_alive(self) -> bool:
        return self.alive

    # -- errors
    def escaped_error(self, tracer: Tracer, primitive) -> JitgradError:
        where = f" (used by {primitive.name})" if primitive is not None else ""
        return UnexpectedTracerError(
            f"a differentiated value {tracer.aval.str_short()} from {self.description} was used "
            f"after the differentiation finished{where}: it escaped, e.g. through a global or a "
            "list outside the function.",
            hint="Return values from the differentiated function (use has_aux=True for extra "
                 "outputs) instead of storing them outside it.")

    def concretization_error(self, tracer: Tracer, cls, what: str) -> JitgradError:
        return cls(f"{what} was called on a differentiated value {tracer.aval.str_short()} "
                   f"inside {self.description}.",
                   hint="Use jitgrad.lax.stop_gradient(x) or the primal value outside the "
                        "differentiated function.")


def _alive(trace) -> bool:
    is_alive = getattr(trace, "is_alive", None)
    return True if is_alive is None else is_alive()


def _tangent_aval(x: Any) -> ShapedArray:
    return get_aval(x).strong()


def _fit_tangent(t: Any, primal_out: Any) -> Any:
    """A rule's tangent lined up with its primal; integer and boolean results get Zero."""
    aval = get_aval(primal_out).strong()
    if not is_float(aval):
        return Zero(aval)
    return fit_to_aval(t, aval)


# --------------------------------------------------------------------------- flat entry points

def jvp_flat(fun: Callable, primals: Sequence[Any], tangents: Sequence[Any],
             description: str = "jvp", has_aux: bool = False):
    """Run ``fun(*primals)`` (flat lists in and out), pushing ``tangents`` forward.

    Returns ``(outs, tangents_out)``. ``tangents`` may hold ``Zero``; the returned tangents
    may too. Values are those of the trace that is current at the call. With ``has_aux``,
    ``fun`` returns ``(outs, aux)`` and the result has a third entry: ``aux`` with its
    values lowered to the current trace (not differentiated).
    """
    parent = trace_state.current()
    trace = JVPTrace(parent, description)
    ins = [trace.box(p, t) for p, t in zip(primals, tangents)]
    try:
        with trace_state.set_current(trace):
            outs = fun(*ins)
        outs, aux = outs if has_aux else (outs, None)
        pairs = [trace.lift(o) for o in outs]
        aux = lower_aux(trace, aux)
    finally:
        trace.alive = False
    result = ([p for p, _ in pairs], [t for _, t in pairs])
    return result + (aux,) if has_aux else result


def lower_aux(trace: "JVPTrace", aux: Any) -> Any:
    """Auxiliary outputs without their derivatives: this trace's tracers become their primals."""
    from ..core.pytree import tree_map
    return tree_map(lambda x: x.primal if isinstance(x, JVPTracer) and x._trace is trace else x,
                    aux)


def jvp_ir(ir: IR, nonzero_tangents: Sequence[bool], instantiate: bool | Sequence[bool] = False
           ) -> tuple[ClosedIR, list[bool]]:
    """The JVP of a program, as a program (for rules of primitives holding sub-IRs).

    The new IR takes ``ir``'s inputs followed by the tangents of the inputs marked in
    ``nonzero_tangents``, and returns ``ir``'s outputs followed by the tangents of the
    outputs it returns as nonzero (``out_nonzero``, the second result). ``instantiate``
    (one bool, or one per output) forces an output tangent to be returned as zeros rather
    than left out. ``ir`` may have constvars only if it is given as a ``ClosedIR``.
    """
    closed = ir if isinstance(ir, ClosedIR) else ClosedIR(ir, [])
    body = closed.ir
    n_out = len(body.outvars)
    inst = [instantiate] * n_out if isinstance(instantiate, bool) else list(instantiate)
    n_in = len(body.invars)
    in_avals = list(body.in_avals) + [v.aval.strong() for v, nz
                                        in zip(body.invars, nonzero_tangents) if nz]
    out_nonzero: list[bool] = []

    def fun(*args):
        primals, rest = list(args[:n_in]), list(args[n_in:])
        tangents = [rest.pop(0) if nz else Zero(v.aval.strong())
                    for v, nz in zip(body.invars, nonzero_tangents)]
        outs, t_outs = jvp_flat(lambda *xs: eval_ir(body, closed.consts, xs), primals, tangents)
        kept = []
        for o, t, force in zip(outs, t_outs, inst):
            if type(t) is Zero and force:
                t = zeros_like_aval(get_aval(o).strong())
            out_nonzero.append(type(t) is not Zero)
            if type(t) is not Zero:
                kept.append(t)
        return list(outs) + kept

    new, _ = trace_to_ir(fun, in_avals, description="jvp of a sub-program")
    return new, out_nonzero
