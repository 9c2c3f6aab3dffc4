"""Batching: ``vmap`` as a trace.

Inside ``vmap(f)``, each argument is a ``BatchTracer``: what ``f`` sees is one example
(the tracer's ``aval`` has no batch axis), while the tracer holds the whole batch
(``val``, a value of the parent trace) and the position of the batch axis in it
(``batch_dim``; ``None`` means the value is the same for every example).

Every primitive applied to a batch tracer goes to ``BatchTrace.process_primitive``,
which runs the primitive's batching rule under the parent trace::

    prim.batch(vals, dims, **params) -> (out, out_dim)      # lists for multiple_results

``vals`` are the operands with their batch axes, ``dims`` the batch axis of each (an int,
or ``None`` for an operand that is not batched; at least one is not ``None``). The rule
binds ordinary primitives (it runs under the parent trace, so they are evaluated, staged
or transformed further) and says where the batch axis of its result is. When no operand
is batched the rule is skipped and the primitive is applied as is.

The helpers (``moveaxis``, ``bdim_to_front``, ``broadcast_batched``, ``batched_axis``) and
the rule factories (``defbroadcasting``, ``defreducer``) shared by the rules are in
``jitgrad/core/rules.py``, below ``jitgrad/ops``: the rules live at the end of each module
in ``jitgrad/ops`` beside the primitives, and import only the core.

The design is "stackless", like the rest of the core: a value that is not this trace's
own tracer (a closure, a tracer of an enclosing transformation) is unbatched to it.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Sequence

import numpy as np

from ..core import trace_state
from ..core.abstract import ShapedArray
from ..core.errors import JitgradError, UnexpectedTracerError
from ..core.pytree import (keystr, tree_flatten, tree_flatten_with_path, tree_structure,
                           tree_unflatten)
from ..core.ir import IR, ClosedIR
# The helpers and rule factories batching rules are written with live in the core, below
# jitgrad/ops (core/rules.py); re-exported here for the trace and for existing callers.
from ..core.rules import (as_array, axis_size_of, bdim_at, bdim_to_front,  # noqa: F401
                          broadcast_batched, broadcasting_rule, batched_axis, defbroadcasting,
                          defreducer, moveaxis, not_mapped, reducer_rule)
from ..core.trace import Trace, Tracer, eval_ir, get_aval, trace_to_ir



class BatchingError(JitgradError, ValueError):
    """A ``vmap`` specification that does not fit the arguments (JAX raises ValueError)."""


# --------------------------------------------------------------------------- the trace

class BatchTracer(Tracer):
    """One example of a batch: ``val`` holds all of them, stacked along ``batch_dim``."""

    __slots__ = ("val", "batch_dim")

    def __init__(self, trace: "BatchTrace", val: Any, batch_dim: int | None):
        self._trace = trace
        self.val = val
        self.batch_dim = batch_dim

    @property
    def aval(self) -> ShapedArray:
        aval = get_aval(self.val)
        d = self.batch_dim
        if d is None:
            return aval
        return aval.update(shape=aval.shape[:d] + aval.shape[d + 1:])


class BatchTrace(Trace):
    """Applies batching rules under ``parent`` (the trace that was current at the call)."""

    def __init__(self, parent: Trace, description: str = "vmap"):
        self.parent = parent
        self.description = description
        self.alive = True

    def lift(self, x: Any) -> tuple[Any, int | None]:
        """``(value, batch_dim)`` of an operand; foreign values are not batched."""
        if isinstance(x, BatchTracer) and x._trace is self:
            return x.val, x.batch_dim
        return x, not_mapped

    def process_primitive(self, primitive, args, params):
        vals, dims = [], []
        for x in args:
            v, d = self.lift(x)
            vals.append(v)
            dims.append(d)
        with trace_state.set_current(self.parent):
            if all(d is None for d in dims):
                return primitive.bind(*vals, **params)
            if primitive.batch is None:
                raise NotImplementedError(
                    f"vmap: the primitive {primitive.name!r} has no batching rule "
                    "(prim.batch); it cannot be used inside vmap yet.")
            out, out_dim = primitive.batch(vals, dims, **params)
        if primitive.multiple_results:
            return [self.box(o, d) for o, d in zip(out, out_dim)]
        return self.box(out, out_dim)

    def box(self, val: Any, dim: int | None) -> Any:
        """A tracer of this trace for a rule's result (a plain value when not batched)."""
        return val if dim is None else BatchTracer(self, val, dim)

    def is_alive(self) -> bool:
        return self.alive

    # -- errors
    def escaped_error(self, tracer: Tracer, primitive) -> JitgradError:
        where = f" (used by {primitive.name})" if primitive is not None else ""
        return UnexpectedTracerError(
            f"a batched value {tracer.aval.str_short()} from {self.description} was used "
            f"outside of it{where}: it escaped, e.g. through a global or a list outside the "
            "function.", hint="Return values from the vmapped function instead of storing them.")

    def concretization_error(self, tracer: Tracer, cls, what: str) -> JitgradError:
        return cls(
            f"{what} was called on a batched value {tracer.aval.str_short()} inside "
            f"{self.description}: every example has its own value, so Python cannot branch "
            "or convert on it.",
            hint="Use jnp.where(cond, x, y), or jitgrad.lax.cond / lax.switch / "
                 "lax.while_loop / lax.fori_loop, which vmap batches.")


# --------------------------------------------------------------------------- sub-programs

def eval_batched(ir: IR, consts: Sequence[Any], vals: Sequence[Any],
                 dims: Sequence[int | None]) -> tuple[list[Any], list[int | None]]:
    """Run ``ir`` on batched operands under the current trace: ``(outs, out_dims)``.

    Used by control-flow rules to inline a sub-program for a whole batch.
    """
    trace = BatchTrace(trace_state.current(), "vmap of a sub-program")
    args = [trace.box(v, d) for v, d in zip(vals, dims)]
    try:
        with trace_state.set_current(trace):
            outs = eval_ir(ir, consts, args)
        lifted = [trace.lift(o) for o in outs]
    finally:
        trace.alive = False
    return [v for v, _ in lifted], [d for _, d in lifted]


def batch_ir(ir: IR, size: int, in_batched: Sequence[bool],
             instantiate: bool | Sequence[bool]) -> tuple[ClosedIR, list[bool]]:
    """The program computing ``ir`` for a whole batch, and which of its outputs are batched.

    Inputs marked in ``in_batched`` carry the batch axis first; so do batched outputs.
    Outputs marked in ``instantiate`` are batched even if they do not depend on a batched
    input (broadcast). The rules may create constant arrays: they are the closed IR's consts.
    """
    if isinstance(instantiate, bool):
        instantiate = [instantiate] * len(ir.outvars)
    in_avals = [a.update(shape=(size,) + a.shape) if b else a
                for a, b in zip(ir.in_avals, in_batched)]
    out_batched: list[bool] = []

    def batched(*args):
        outs, dims = eval_batched(ir, [], args, [0 if b else None for b in in_batched])
        result = []
        for o, d, inst in zip(outs, dims, instantiate):
            out_batched.append(d is not None or inst)
            result.append(bdim_to_front(o, d, size) if out_batched[-1] else o)
        return result

    closed, _ = trace_to_ir(batched, in_avals, description="vmap of a sub-program")
    return closed, out_batched


# --------------------------------------------------------------------------- vmap

def _flatten_axes(what: str, tree: Any, axes: Any) -> list:
    """One axis spec per leaf of ``tree``: ``axes`` is a prefix tree of ints/None."""
    axes_leaves, axes_def = tree_flatten(axes, is_leaf=lambda x: x is None)
    for a in axes_leaves:
        if a is not None and not isinstance(a, (int, np.integer)):
            raise BatchingError(
                f"vmap {what} must be made of ints and None, got {a!r} in {axes!r}",
                hint="Give an int (the mapped axis) or None (not mapped) for each value.")
    try:
        subtrees = axes_def.flatten_up_to(tree)
    except ValueError:
        raise BatchingError(
            f"vmap {what} specification {axes!r} must be a tree prefix of the corresponding "
            f"value, whose structure is {tree_structure(tree)}",
            hint="Use one int/None for a whole argument, or a tree with the same containers "
                 "(a tuple for a tuple, a dict with the same keys for a dict).") from None
    out = []
    for a, sub in zip(axes_leaves, subtrees):
        out.extend([None if a is None else int(a)] * tree_structure(sub).num_leaves)
    return out


def _arg_names(fun: Callable) -> list[str] | None:
    try:
        params = inspect.signature(fun).parameters.values()
    except (TypeError, ValueError):
        return None
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _describe_arg(path: tuple, names: list[str] | None) -> str:
    """``x['w']`` (or ``args[0]['w']``) for the leaf at ``path`` of ``(args, kwargs)``."""
    where, key, rest = path[0].idx, path[1], keystr(tuple(path[2:]))
    if where == 1:
        return f"{key.key}{rest}"
    if names is not None and key.idx < len(names):
        return f"{names[key.idx]}{rest}"
    return f"args[{key.idx}]{rest}"


def vmap(fun: Callable, in_axes: Any = 0, out_axes: Any = 0, axis_name: Any = None,
         axis_size: int | None = None) -> Callable:
    """Vectorise ``fun`` over a batch axis of its arguments (``jax.vmap``).

    ``in_axes``: an int (the mapped axis of every argument; negative counts from the
    end), ``None`` (not mapped), or a tuple with one entry per positional argument, each
    a pytree prefix of that argument made of ints and ``None``. Keyword arguments are
    always mapped over axis 0. ``out_axes``: the same for the outputs; ``None`` means the
    output is the same for every example (an error if it is not). ``axis_size`` gives the
    batch size when no argument is mapped. ``axis_name`` is accepted for compatibility and
    has no effect: jitgrad has no collective operations.
    """
    if not callable(fun):
        raise TypeError(f"vmap expects a callable, got {type(fun).__name__}")
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)
    if not (in_axes is None or isinstance(in_axes, (int, np.integer, tuple))):
        raise BatchingError(
            f"vmap in_axes must be an int, None, or a tuple with one entry per positional "
            f"argument, got {in_axes!r}",
            hint="To map a single dict argument, wrap its spec in a tuple: in_axes=({...},).")
    name = getattr(fun, "__name__", type(fun).__name__)

    @functools.wraps(fun, updated=())   # not __dict__: fun may be a jitted function object
    def batched_fun(*args, **kwargs):
        if isinstance(in_axes, tuple) and len(in_axes) != len(args):
            raise BatchingError(
                f"vmap({name}): in_axes has {len(in_axes)} entries but {len(args)} positional "
                "arguments were passed", hint="Give one in_axes entry per positional argument.")
        axes = _flatten_axes("in_axes", args, in_axes) + [0] * len(tree_flatten(kwargs)[0])
        path_leaves, in_tree = tree_flatten_with_path((args, kwargs))
        paths = [p for p, _ in path_leaves]
        leaves = [x for _, x in path_leaves]
        size = _batch_size(name, fun, paths, leaves, axes, axis_size)
        parent = trace_state.current()
        trace = BatchTrace(parent, f"vmap({name})")
        in_vals = [x if a is None else BatchTracer(trace, as_array(x), a % get_aval(x).ndim)
                   for x, a in zip(leaves, axes)]
        try:
            with trace_state.set_current(trace):
                out = fun(*tree_unflatten(in_tree, in_vals)[0],
                          **tree_unflatten(in_tree, in_vals)[1])
            out_path_leaves, out_tree = tree_flatten_with_path(out)
            out_axes_flat = _flatten_axes("out_axes", out, out_axes)
            outs = [_unbatch_output(trace, x, a, size, name, path)
                    for (path, x), a in zip(out_path_leaves, out_axes_flat)]
        finally:
            trace.alive = False
        return tree_unflatten(out_tree, outs)

    return batched_fun


def _batch_size(name, fun, paths, leaves, axes, axis_size) -> int:
    """The common size of the mapped axes, or a BatchingError naming each argument."""
    names = _arg_names(fun)
    sizes = []
    for path, x, a in zip(paths, leaves, axes):
        if a is None:
            continue
        aval = get_aval(x)
        if not -aval.ndim <= a < aval.ndim:
            raise BatchingError(
                f"vmap({name}) was asked to map argument {_describe_arg(path, names)} along "
                f"axis {a}, but it has rank {aval.ndim} ({aval.str_short()})",
                hint="Use an axis that exists, or in_axes=None for arguments that are not "
                     "mapped.")
        sizes.append((path, aval, a, aval.shape[a]))
    if not sizes:
        if axis_size is None:
            raise BatchingError(
                f"vmap({name}) must have at least one non-None value in in_axes",
                hint="Map at least one argument, or give axis_size=... to set the batch size.")
        return int(axis_size)
    distinct = {s for *_, s in sizes} | ({int(axis_size)} if axis_size is not None else set())
    if len(distinct) > 1:
        lines = [f"  axis {a} of argument {_describe_arg(p, names)} ({aval.str_short()}) has "
                 f"size {s}" for p, aval, a, s in sizes]
        if axis_size is not None:
            lines.append(f"  axis_size={axis_size}")
        raise BatchingError(
            f"vmap({name}) got inconsistent sizes for the mapped axes:\n" + "\n".join(lines),
            hint="Every mapped axis must have the same size; use in_axes=None for arguments "
                 "that are shared by all examples.")
    return distinct.pop()


def _unbatch_output(trace: BatchTrace, x: Any, out_axis: int | None, size: int,
                    name: str, path: tuple) -> Any:
    """The value of one output leaf with its batch axis at ``out_axis`` (under the parent)."""
    val, dim = trace.lift(x)
    if out_axis is None:
        if dim is not None:
            raise BatchingError(
                f"vmap({name}): output {keystr(path) or '(the result)'} is batched (it depends "
                f"on a mapped argument), but out_axes is None for it",
                hint="Use an int out_axes for outputs that differ between examples; None "
                     "is only for outputs that are the same for every example.")
        return val
    ndim = get_aval(val).ndim + (dim is None)
    if not -ndim <= out_axis < ndim:
        raise BatchingError(
            f"vmap({name}): out_axes={out_axis} is out of range for output "
            f"{keystr(path) or '(the result)'} of rank {ndim} (batch axis included)")
    return bdim_at(val, dim, size, out_axis % ndim)
