"""Traces: who handles a primitive when it is applied.

* ``EvalTrace`` (the default) runs the primitive's numpy implementation right away.
* ``StagingTrace`` records the primitive as an equation of an IR being built (``jit``,
  ``make_ir``): its values are ``StagingTracer``\\ s that know only their abstract value.
* Transformations (jvp, vmap, ...) add their own traces on top, each handling a
  primitive by applying its rule in terms of the trace below it.

The current trace is set with ``trace_state.set_current``; ``Primitive.bind`` asks it to
process the operation. A value belonging to another, enclosing trace (a closure) is a
constant to the inner trace; a tracer whose trace has finished has escaped and is an error.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from . import trace_state
from .abstract import ShapedArray
from .array import Array, ArrayImpl
from .dtypes import canonicalize_dtype
from .errors import (ConcretizationTypeError, JitgradError, SourceInfo, TracerArrayConversionError,
                     TracerBoolConversionError, TracerIntegerConversionError, UnexpectedTracerError,
                     InvalidArgumentError, user_source_info)
from .evaluate import run_equations
from .ir import IR, ClosedIR, Eqn, Literal, Var


# --------------------------------------------------------------------------- values

_SCALAR_TYPES = (int, float, bool)


def get_aval(x: Any) -> ShapedArray:
    """The abstract value of anything that can be an operand (array, tracer, scalar)."""
    if isinstance(x, Array):
        return x.aval
    if isinstance(x, np.ndarray) or isinstance(x, np.generic):
        return ShapedArray(np.shape(x), canonicalize_dtype(x.dtype), False)
    if isinstance(x, bool):
        return ShapedArray((), np.bool_, False)
    if isinstance(x, int):
        return ShapedArray((), canonicalize_dtype(np.int64), True)
    if isinstance(x, float):
        return ShapedArray((), canonicalize_dtype(np.float64), True)
    raise InvalidArgumentError(
        f"{type(x).__name__} object is not a valid jitgrad value",
        hint="Pass arrays, numpy arrays or Python numbers; mark other arguments of a jitted "
             "function with static_argnums/static_argnames.")


def to_numpy(x: Any) -> np.ndarray:
    """The concrete numpy value of an eager operand, with jitgrad's canonical dtype."""
    if type(x) is ArrayImpl:
        return x._value
    if isinstance(x, np.ndarray):
        dt = canonicalize_dtype(x.dtype)
        return x if dt == x.dtype else x.astype(dt)
    aval = get_aval(x)
    return np.asarray(x, dtype=aval.dtype)


# --------------------------------------------------------------------------- traces

class Trace:
    """Handles primitive applications. Subclasses implement ``process_primitive``."""

    def process_primitive(self, primitive, args: Sequence[Any], params: dict):
        raise NotImplementedError


class EvalTrace(Trace):
    """Eager evaluation on numpy: the default when no trace is active."""

    def process_primitive(self, primitive, args, params):
        vals = []
        any_weak = False
        for x in args:
            if type(x) is ArrayImpl:
                vals.append(x._value)
                any_weak = any_weak or x._weak_type
            elif isinstance(x, Tracer):
                raise x._trace.escaped_error(x, primitive)
            elif isinstance(x, Array):
                # A concrete array on an accelerator (cuda's DeviceArrayImpl): the
                # operation runs there, on all the arguments.
                return x._eager_apply(primitive, args, params)
            else:
                vals.append(x)
                any_weak = any_weak or (type(x) in (int, float))
        try:
            out = primitive.impl(*vals, **params)
        except JitgradError:
            raise
        except Exception:
            # Let the shape/dtype rule explain a bad call; re-raise numpy's error otherwise.
            primitive.abstract_eval(*[get_aval(v) for v in vals], **params)
            raise
        weak = False
        if any_weak or params.get("weak_type"):
            # Rare: ask the shape/dtype rule, so eager and jit agree on weak types exactly.
            avals = primitive.abstract_eval(*[_eager_aval(x) for x in args], **params)
            weak = [a.weak_type for a in avals] if primitive.multiple_results else avals.weak_type
        if primitive.multiple_results:
            weak = weak or [False] * len(out)
            return [ArrayImpl(np.asarray(o), w) for o, w in zip(out, weak)]
        return ArrayImpl(np.asarray(out), weak)


def _eager_aval(x: Any) -> ShapedArray:
    return x.aval if type(x) is ArrayImpl else get_aval(x)


EVAL_TRACE = EvalTrace()
trace_state.set_default(EVAL_TRACE)


class Tracer(Array):
    """A value inside a trace: it knows its abstract value, and its trace knows the rest."""

    __slots__ = ("_trace",)

    def __bool__(self):
        raise self._trace.concretization_error(self, TracerBoolConversionError, "bool()")

    def __int__(self):
        raise self._trace.concretization_error(self, TracerIntegerConversionError, "int()")

    def __index__(self):
        raise self._trace.concretization_error(self, TracerIntegerConversionError, "an index")

    def __float__(self):
        raise self._trace.concretization_error(self, ConcretizationTypeError, "float()")

    def __complex__(self):
        raise self._trace.concretization_error(self, ConcretizationTypeError, "complex()")

    def __array__(self, dtype=None, copy=None):
        raise self._trace.concretization_error(self, TracerArrayConversionError, "np.asarray()")

    def item(self, *args):
        raise self._trace.concretization_error(self, ConcretizationTypeError, ".item()")

    def tolist(self):
        raise self._trace.concretization_error(self, ConcretizationTypeError, ".tolist()")

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def block_until_ready(self):
        return self

    def __repr__(self) -> str:
        return f"Traced<{self.aval.str_short()}>with<{type(self._trace).__name__}>"


class StagingTracer(Tracer):
    """A value of an IR under construction: one ``Var``."""

    __slots__ = ("var",)

    def __init__(self, trace: "StagingTrace", var: Var):
        self._trace = trace
        self.var = var

    @property
    def aval(self) -> ShapedArray:
        return self.var.aval


class StagingTrace(Trace):
    """Builds an IR: each primitive application becomes an equation.

    Values from outside (concrete arrays, tracers of enclosing traces) become constvars;
    Python scalars become literals. ``arg_labels`` name the inputs in error messages
    (e.g. ``"argument 'x' of f"``).
    """

    def __init__(self, description: str = "a traced function"):
        self.description = description
        self.invars: list[Var] = []
        self.arg_labels: dict[int, str] = {}
        self.eqns: list[Eqn] = []
        self.constvars: list[Var] = []
        self.consts: list[Any] = []
        self._const_ids: dict[int, Var] = {}
        self.alive = True

    # -- building
    def new_arg(self, aval: ShapedArray, label: str | None = None) -> StagingTracer:
        """A fresh input of the IR."""
        var = Var(aval)
        self.invars.append(var)
        if label is not None:
            self.arg_labels[id(var)] = label
        return StagingTracer(self, var)

    def to_atom(self, x: Any):
        """The IR atom for an operand: own tracer -> its var, scalar -> literal, else constvar."""
        if isinstance(x, StagingTracer) and x._trace is self:
            return x.var
        if isinstance(x, Tracer):
            if not x._trace.is_alive():
                raise x._trace.escaped_error(x, None)
            return self._const(x, x.aval)
        if isinstance(x, _SCALAR_TYPES) or (isinstance(x, np.generic)):
            aval = get_aval(x)
            return Literal(x, aval)
        if isinstance(x, ArrayImpl) and x.ndim == 0:
            return Literal(x._value, x.aval)
        if isinstance(x, np.ndarray) and x.ndim == 0:
            return Literal(to_numpy(x), get_aval(x))
        if isinstance(x, (ArrayImpl, np.ndarray)):
            value = x if isinstance(x, ArrayImpl) else ArrayImpl(np.array(to_numpy(x)))
            return self._const(value, value.aval)
        return self._const(x, get_aval(x))

    def _const(self, value: Any, aval: ShapedArray) -> Var:
        var = self._const_ids.get(id(value))
        if var is None:
            var = Var(aval)
            self._const_ids[id(value)] = var
            self.constvars.append(var)
            self.consts.append(value)
        return var

    def is_alive(self) -> bool:
        return self.alive

    def process_primitive(self, primitive, args, params):
        atoms = [self.to_atom(x) for x in args]
        source = trace_state.source() or user_source_info(2)
        try:
            out_avals = primitive.abstract_eval(*[a.aval for a in atoms], **params)
        except JitgradError as e:
            raise e.with_source(source) from None
        if primitive.multiple_results:
            outvars = [Var(a) for a in out_avals]
        else:
            outvars = [Var(out_avals)]
        self.eqns.append(Eqn(primitive, atoms, outvars, params, source))
        tracers = [StagingTracer(self, v) for v in outvars]
        return tracers if primitive.multiple_results else tracers[0]

    def finish(self, outs: Sequence[Any]) -> ClosedIR:
        """Close the trace and return the IR computing ``outs``."""
        outvars = [self.to_atom(x) for x in outs]
        self.alive = False
        ir = IR(self.constvars, self.invars, self.eqns, outvars)
        return ClosedIR(ir, self.consts)

    # -- errors
    def escaped_error(self, tracer: Tracer, primitive) -> JitgradError:
        where = f" (used by {primitive.name})" if primitive is not None else ""
        return UnexpectedTracerError(
            f"a traced value {tracer.aval.str_short()} from {self.description} was used after that "
            f"trace finished{where}: it escaped, e.g. through a global, a list outside the "
            "function, or a closure kept for later.",
            hint="Return values from the traced function instead of storing them outside it.")

    def concretization_error(self, tracer: Tracer, cls, what: str) -> JitgradError:
        deps = self._input_labels(tracer)
        origin = (f"It depends on {', '.join(deps)}." if deps else
                  "It was computed inside the trace.")
        if cls is TracerBoolConversionError:
            hint = ("Python `if`, `while`, `and`/`or` and bool() need concrete values. Use "
                    "jnp.where(cond, x, y) or jitgrad.lax.cond / lax.while_loop for traced "
                    "conditions, or mark the argument static with static_argnums/static_argnames.")
        elif cls is TracerIntegerConversionError:
            hint = ("A traced value cannot be used as a Python int (a shape, a range, a list index). "
                    "Use static_argnums/static_argnames for values that decide shapes, or "
                    "lax.dynamic_slice / jnp.take for traced indices.")
        elif cls is TracerArrayConversionError:
            hint = ("numpy functions cannot see traced values; use the jitgrad.numpy equivalent, "
                    "or move the numpy code outside the jitted function.")
        else:
            hint = "Use static_argnums/static_argnames if the value must be known while tracing."
        return cls(
            f"{what} was called on a traced value {tracer.aval.str_short()} while tracing "
            f"{self.description}; its value is not known until the program runs. {origin}",
            hint=hint)

    def _input_labels(self, tracer: Tracer) -> list[str]:
        """Which labelled inputs the tracer's value depends on (for concretization errors)."""
        if not isinstance(tracer, StagingTracer) or tracer._trace is not self:
            return []
        producer = {id(v): e for e in self.eqns for v in e.outvars}
        seen, stack, labels = set(), [tracer.var], []
        while stack:
            v = stack.pop()
            if id(v) in seen or not isinstance(v, Var):
                continue
            seen.add(id(v))
            if id(v) in self.arg_labels:
                labels.append(self.arg_labels[id(v)])
            eqn = producer.get(id(v))
            if eqn is not None:
                stack.extend(eqn.invars)
        order = {id(v): i for i, v in enumerate(self.invars)}
        return sorted(set(labels), key=lambda l: min(
            (order[k] for k, lab in self.arg_labels.items() if lab == l), default=0))


# --------------------------------------------------------------------------- helpers

def trace_to_ir(fun: Callable, in_avals: Sequence[ShapedArray],
                labels: Sequence[str] | None = None,
                description: str = "a traced function") -> tuple[ClosedIR, Any]:
    """Trace ``fun(*tracers)`` into an IR. Returns the closed IR and ``fun``'s raw outputs.

    ``fun`` takes and returns flat lists of values; pytree handling is the caller's.
    """
    trace = StagingTrace(description)
    tracers = [trace.new_arg(a, labels[i] if labels else None) for i, a in enumerate(in_avals)]
    with trace_state.set_current(trace):
        outs = fun(*tracers)
        closed = trace.finish(outs)
    return closed, outs


def eval_ir(ir: IR, consts: Sequence[Any], args: Sequence[Any]) -> list[Any]:
    """Evaluate an IR by binding each equation under the current trace.

    Eagerly this runs the reference implementations; inside a trace it re-stages the
    program (keeping each equation's original source line) or transforms it.
    """
    return run_equations(ir, consts, args, _bind_with_source)


def _bind_with_source(eqn: Eqn, operands: list) -> Any:
    with trace_state.source_override(eqn.source):
        return eqn.primitive.bind(*operands, **eqn.params)


def full_like_aval(value: Any, aval: ShapedArray) -> Any:
    """A concrete array of ``aval``'s shape and dtype filled with ``value`` (eager helper)."""
    return ArrayImpl(np.full(aval.shape, value, dtype=aval.dtype))
