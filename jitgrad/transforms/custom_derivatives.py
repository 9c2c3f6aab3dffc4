"""``custom_jvp`` and ``custom_vjp``: functions that bring their own derivative rule.

A call of a custom function first asks the current trace what to do (JAX's
``process_custom_jvp_call``): eagerly the function just runs; a ``JVPTrace`` applies the
user's rule instead of differentiating the function's body; a partial-evaluation trace
runs it on the parent when all its inputs are known. Any other trace (``jit``'s staging,
``vmap``) gets a primitive, ``custom_jvp_call`` / ``custom_vjp_call``, holding the traced
body as a sub-IR and the rule as a Python callable, so a later JVP of that IR (``grad``
of a ``jit``-ed function) still uses the rule.

``custom_vjp`` differentiates through ``custom_lin``: the JVP runs ``fwd`` for the primal
outputs and residuals and makes the tangents ``custom_lin(residuals, tangents)``, a linear
primitive that is never evaluated forwards; its transpose calls the user's ``bwd``. So
``grad`` works and forward mode is an error, as in JAX.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Sequence

from ..core import trace_state
from ..core.abstract import ShapedArray
from ..core.errors import JitgradError
from ..core.ir import IR
from ..core.primitive import CONTROL, OPAQUE, Primitive
from ..core.pytree import tree_flatten, tree_structure, tree_unflatten
from ..core.trace import eval_ir, get_aval, trace_to_ir
from .jvp import Zero, instantiate_zeros, is_float
from .partial_eval import hoist_consts
from .transpose import backward_pass


class CustomDerivativeError(JitgradError, TypeError):
    """A custom_jvp/custom_vjp rule that does not fit its function, or an unsupported use."""


def _resolve_args(fun: Callable, args: tuple, kwargs: dict) -> tuple:
    """Keyword arguments become positional (custom rules see positional arguments only)."""
    if not kwargs:
        return args
    try:
        bound = inspect.signature(fun).bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"{getattr(fun, '__name__', fun)}: {e}") from None
    bound.apply_defaults()
    return tuple(bound.args) + tuple(bound.kwargs.values())


def _name(fun: Callable) -> str:
    return getattr(fun, "__name__", type(fun).__name__)


def _normalize_argnums(argnums) -> tuple[int, ...]:
    if isinstance(argnums, int):
        return (argnums,)
    return tuple(int(a) for a in argnums)


# --------------------------------------------------------------------------- one call, flat

class _CustomCall:
    """One application of a custom function, seen through its flat differentiable leaves.

    Non-differentiable arguments (``nondiff_argnums``) are held as Python values; the other
    arguments are flattened into leaves, which is what traces and primitives see.
    """

    handler_name = ""   # the trace method that handles this kind of call
    primitive: Primitive

    def __init__(self, owner, args: tuple):
        self.owner = owner
        n = len(args)
        self.nondiff = tuple(sorted(a % n for a in owner.nondiff_argnums)) if n else ()
        for a in owner.nondiff_argnums:
            if not -n <= a < n:
                raise CustomDerivativeError(
                    f"{owner.name}: nondiff_argnums contains {a}, but the function was called "
                    f"with {n} positional arguments")
        self.nargs = n
        self.nondiff_vals = [args[i] for i in self.nondiff]
        diff_args = [args[i] for i in range(n) if i not in self.nondiff]
        self.arg_trees = [tree_structure(a) for a in diff_args]
        self.leaves, self.in_tree = tree_flatten(tuple(diff_args))
        self.in_avals = [get_aval(x) for x in self.leaves]
        self.out_tree = None

    # -- rebuilding the user's arguments
    def diff_args(self, leaves: Sequence[Any]) -> list[Any]:
        return list(tree_unflatten(self.in_tree, list(leaves)))

    def full_args(self, leaves: Sequence[Any]) -> list[Any]:
        diff = iter(self.diff_args(leaves))
        nondiff = dict(zip(self.nondiff, self.nondiff_vals))
        return [nondiff[i] if i in nondiff else next(diff) for i in range(self.nargs)]

    def set_out_tree(self, tree, what: str) -> None:
        if self.out_tree is None:
            self.out_tree = tree
        elif tree != self.out_tree:
            raise CustomDerivativeError(
                f"{self.owner.name}: {what} produced an output with structure {tree}, but the "
                f"function's output has structure {self.out_tree}",
                hint="A custom rule must return outputs with the same container (pytree) "
                     "structure as the function itself.")

    # -- running
    def fun_flat(self, *leaves) -> list[Any]:
        out = self.owner.fun(*self.full_args(leaves))
        flat, tree = tree_flatten(out)
        self.set_out_tree(tree, "the function")
        return flat

    def dispatch(self, leaves: Sequence[Any]) -> list[Any]:
        """Apply the custom function under the current trace (see the module docstring)."""
        trace = trace_state.current()
        if trace_state.is_eager():
            return self.fun_flat(*leaves)
        handler = getattr(trace, self.handler_name, None)
        if handler is not None:
            return handler(self, list(leaves))
        return self.bind(leaves)

    def bind(self, leaves: Sequence[Any]) -> list[Any]:
        """Stage the call as a primitive holding the traced body (``jit``, ``vmap``...)."""
        closed, _ = trace_to_ir(self.fun_flat, [get_aval(x) for x in leaves],
                                description=f"{self.owner.kind}({self.owner.name})")
        ir, consts = hoist_consts(closed)
        return self.primitive.bind(*consts, *leaves, call_ir=ir, num_consts=len(consts),
                                   **self.rule_params())

    def rule_params(self) -> dict:
        raise NotImplementedError


def _check_consts_not_differentiated(name: str, kind: str, tangents: Sequence[Any]) -> None:
    if any(type(t) is not Zero for t in tangents):
        raise CustomDerivativeError(
            f"Detected differentiation of the {kind} function {name} with respect to a "
            "closed-over value. That isn't supported because the custom rule only specifies "
            "how to differentiate the function with respect to its explicit arguments.",
            hint="Pass the value as an argument of the custom function instead of closing "
                 "over it.")


def _call_impl(*args, call_ir: IR, num_consts: int, **_):
    return eval_ir(call_ir, [], list(args))


def _call_abstract_eval(*avals, call_ir: IR, **_):
    return list(call_ir.out_avals)


def _call_transpose(cts, *args, call_ir: IR, num_consts: int, **_):
    """A custom call whose body is linear in some inputs transposes like its body."""
    return backward_pass(call_ir, [], list(args), list(cts))


# --------------------------------------------------------------------------- custom_jvp

custom_jvp_call_p = Primitive("custom_jvp_call", CONTROL, multiple_results=True)
custom_jvp_call_p.impl = _call_impl
custom_jvp_call_p.abstract_eval = _call_abstract_eval
custom_jvp_call_p.transpose = _call_transpose


def _custom_jvp_call_jvp(primals, tangents, call_ir, num_consts, jvp, symbolic_zeros=False):
    _check_consts_not_differentiated(getattr(jvp, "fun_name", "?"), "custom_jvp",
                                     tangents[:num_consts])
    return jvp(list(primals[num_consts:]), [instantiate_zeros(t) for t in tangents[num_consts:]])


custom_jvp_call_p.jvp = _custom_jvp_call_jvp


class _CustomJVPCall(_CustomCall):
    handler_name = "process_custom_jvp_call"
    primitive = custom_jvp_call_p

    def run_jvp_rule(self, primals: Sequence[Any], tangents: Sequence[Any]):
        """The user's rule on flat leaves: ``(primal_out_leaves, tangent_out_leaves)``."""
        owner = self.owner
        out = owner.jvp(*self.nondiff_vals, tuple(self.diff_args(primals)),
                        tuple(self.diff_args(tangents)))
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise CustomDerivativeError(
                f"{owner.name}: the custom JVP rule must return a pair (primal_out, "
                f"tangent_out), got {type(out).__name__}")
        p_flat, p_tree = tree_flatten(out[0])
        t_flat, t_tree = tree_flatten(out[1])
        if p_tree != t_tree:
            raise CustomDerivativeError(
                f"{owner.name}: the custom JVP rule must produce primal and tangent outputs "
                f"with equal container (pytree) structures, but got {p_tree} and {t_tree}")
        self.set_out_tree(p_tree, "the custom JVP rule")
        for p, t in zip(p_flat, t_flat):
            pa, ta = get_aval(p), get_aval(t)
            if pa.shape != ta.shape:
                raise CustomDerivativeError(
                    f"{owner.name}: the custom JVP rule must produce primal and tangent outputs "
                    f"of equal shapes, but got primal {pa.str_short()} and tangent "
                    f"{ta.str_short()}")
        return p_flat, t_flat

    def rule_params(self) -> dict:
        rule = functools.partial(_CustomJVPCall.run_jvp_rule, self)
        rule.__name__ = f"{self.owner.name}_jvp"
        rule.fun_name = self.owner.name
        return dict(jvp=rule, symbolic_zeros=False)


class custom_jvp:
    """A function with a custom JVP rule (``jax.custom_jvp``).

        @custom_jvp
        def f(x, y): ...

        @f.defjvp
        def f_jvp(primals, tangents):
            x, y = primals; x_dot, y_dot = tangents
            return f(x, y), tangent_out

    ``nondiff_argnums`` lists arguments that are not differentiated (Python values such as
    functions or flags); the rule receives them first: ``f_jvp(*nondiff, primals, tangents)``.
    The rule also defines reverse mode (by transposing its linear tangent computation).
    Tangents reach the rule as arrays (zeros for undifferentiated inputs).
    """

    kind = "custom_jvp"

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = ()):
        functools.update_wrapper(self, fun, updated=())
        self.fun = fun
        self.name = _name(fun)
        self.nondiff_argnums = _normalize_argnums(nondiff_argnums)
        self.jvp: Callable | None = None

    def defjvp(self, jvp: Callable, symbolic_zeros: bool = False) -> Callable:
        """Set the rule ``jvp(*nondiff, primals, tangents) -> (primal_out, tangent_out)``."""
        if symbolic_zeros:
            raise NotImplementedError("custom_jvp: symbolic_zeros=True is not supported; "
                                      "the rule receives zeros as arrays.")
        self.jvp = jvp
        return jvp

    def defjvps(self, *jvps: Callable | None) -> None:
        """Set the rule from one function per differentiable argument.

        ``jvps[i](g, primal_out, *primals)`` is the output tangent caused by argument ``i``'s
        tangent ``g``; ``None`` means argument ``i`` does not affect the output's tangent.
        """
        def jvp(*args):
            *nondiff, primals, tangents = args
            call_args = _merge_nondiff(self.nondiff_argnums, nondiff, primals)
            primal_out = self(*call_args)
            out_leaves, out_tree = tree_flatten(primal_out)
            total = [Zero(get_aval(o)) for o in out_leaves]
            for fn, t in zip(jvps, tangents):
                if fn is None:
                    continue
                contrib_leaves = out_tree.flatten_up_to(fn(t, primal_out, *primals))
                total = [c if type(s) is Zero else s + c for s, c in zip(total, contrib_leaves)]
            total = [instantiate_zeros(s) for s in total]
            return primal_out, tree_unflatten(out_tree, total)
        self.jvp = jvp

    def __call__(self, *args, **kwargs):
        if self.jvp is None:
            raise AttributeError(f"No JVP defined for custom_jvp function {self.name} using "
                                 "defjvp.")
        args = _resolve_args(self.fun, args, kwargs)
        call = _CustomJVPCall(self, args)
        outs = call.dispatch(call.leaves)
        return tree_unflatten(call.out_tree, outs)


def _merge_nondiff(nondiff_argnums, nondiff_vals, diff_vals) -> list[Any]:
    n = len(nondiff_vals) + len(diff_vals)
    positions = sorted(a % n for a in nondiff_argnums)
    nd = dict(zip(positions, nondiff_vals))
    diff = iter(diff_vals)
    return [nd[i] if i in nd else next(diff) for i in range(n)]


# --------------------------------------------------------------------------- custom_vjp

custom_vjp_call_p = Primitive("custom_vjp_call", CONTROL, multiple_results=True)
custom_vjp_call_p.impl = _call_impl
custom_vjp_call_p.abstract_eval = _call_abstract_eval


def _custom_vjp_call_jvp(primals, tangents, call_ir, num_consts, fwd_jvp, bwd):
    _check_consts_not_differentiated(getattr(fwd_jvp, "fun_name", "?"), "custom_vjp",
                                     tangents[:num_consts])
    return fwd_jvp(list(primals[num_consts:]), list(tangents[num_consts:]))


custom_vjp_call_p.jvp = _custom_vjp_call_jvp


# custom_lin(residuals..., tangents...): the tangents of a custom_vjp function's outputs.
# Linear in the tangents; only ever transposed (its transpose runs the user's bwd).
custom_lin_p = Primitive("custom_lin", OPAQUE, multiple_results=True)


def _forward_mode_error(*args, **params):
    raise CustomDerivativeError(
        "can't apply forward-mode autodiff (jvp) to a custom_vjp function.",
        hint="custom_vjp defines reverse mode only: use grad/vjp, or define the function "
             "with custom_jvp to support both modes.")


custom_lin_p.impl = _forward_mode_error
custom_lin_p.abstract_eval = lambda *avals, out_avals, **_: list(out_avals)


def _custom_lin_jvp(primals, tangents, **params):
    _forward_mode_error()


def _custom_lin_transpose(cts, *args, num_res, bwd, out_avals, tangent_mask):
    res = list(args[:num_res])
    cts = [instantiate_zeros(c) for c in cts]
    cts_in = bwd(res, cts)
    kept = [c for c, m in zip(cts_in, tangent_mask) if m]
    return [None] * num_res + kept


custom_lin_p.jvp = _custom_lin_jvp
custom_lin_p.transpose = _custom_lin_transpose


class _CustomVJPCall(_CustomCall):
    handler_name = "process_custom_vjp_call"
    primitive = custom_vjp_call_p

    def jvp_via_fwd(self, primals: Sequence[Any], tangents: Sequence[Any]):
        """Run ``fwd``; the output tangents are ``custom_lin`` of the input tangents."""
        owner = self.owner
        out = owner.fwd(*self.full_args(primals))
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise CustomDerivativeError(
                f"{owner.name}: the custom VJP fwd rule must return a pair (output, "
                f"residuals), got {type(out).__name__}")
        primal_out, res = out
        p_flat, p_tree = tree_flatten(primal_out)
        self.set_out_tree(p_tree, "the custom VJP fwd rule")
        res_flat, res_tree = tree_flatten(res)
        mask = tuple(type(t) is not Zero for t in tangents)
        out_avals = tuple(get_aval(p).strong() for p in p_flat)
        bwd = functools.partial(_CustomVJPCall.run_bwd, self, res_tree)
        bwd.__name__ = f"{owner.name}_bwd"
        t_out = custom_lin_p.bind(*res_flat, *[t for t in tangents if type(t) is not Zero],
                                  num_res=len(res_flat), bwd=bwd, out_avals=out_avals,
                                  tangent_mask=mask)
        t_out = [t if is_float(a) else Zero(a) for t, a in zip(t_out, out_avals)]
        return p_flat, t_out

    def run_bwd(self, res_tree, res_flat: Sequence[Any], cts_flat: Sequence[Any]) -> list[Any]:
        """The user's ``bwd`` on flat values: one cotangent per differentiable leaf."""
        owner = self.owner
        res = tree_unflatten(res_tree, list(res_flat))
        ct = tree_unflatten(self.out_tree, list(cts_flat))
        out = owner.bwd(*self.nondiff_vals, res, ct)
        n = len(self.arg_trees)
        if not isinstance(out, (tuple, list)) or len(out) != n:
            got = f"length {len(out)}" if isinstance(out, (tuple, list)) else type(out).__name__
            raise CustomDerivativeError(
                f"{owner.name}: the custom VJP bwd rule must produce a tuple with one entry per "
                f"differentiable argument ({n}), but got {got}",
                hint="Return a tuple, e.g. `return (x_bar,)` for a function of one argument.")
        flat = []
        start = 0
        for i, (ct_i, tree_i) in enumerate(zip(out, self.arg_trees)):
            avals = self.in_avals[start:start + tree_i.num_leaves]
            start += tree_i.num_leaves
            if ct_i is None:
                flat.extend(Zero(a) for a in avals)
                continue
            try:
                leaves = tree_i.flatten_up_to(ct_i)
            except ValueError:
                raise CustomDerivativeError(
                    f"{owner.name}: the custom VJP bwd rule must produce an output with the same "
                    f"container (pytree) structure as the differentiable arguments, but "
                    f"cotangent {i} has structure {tree_structure(ct_i)} where the argument has "
                    f"{tree_i}") from None
            for leaf, a in zip(leaves, avals):
                if leaf is None:
                    flat.append(Zero(a))
                    continue
                la = get_aval(leaf)
                if la.shape != a.shape:
                    raise CustomDerivativeError(
                        f"{owner.name}: the custom VJP bwd rule produced a cotangent of shape "
                        f"{la.shape} for an argument of shape {a.shape} ({a.str_short()})",
                        hint="Each cotangent must have the shape of its primal input.")
                flat.append(leaf)
        return flat

    def rule_params(self) -> dict:
        fwd_jvp = functools.partial(_CustomVJPCall.jvp_via_fwd, self)
        fwd_jvp.__name__ = f"{self.owner.name}_fwd"
        fwd_jvp.fun_name = self.owner.name
        return dict(fwd_jvp=fwd_jvp, bwd=getattr(self.owner.bwd, "__name__", "bwd"))


class custom_vjp:
    """A function with a custom VJP rule (``jax.custom_vjp``).

        @custom_vjp
        def f(x, y): ...

        def f_fwd(x, y):
            return f(x, y), residuals
        def f_bwd(residuals, g):
            return (x_bar, y_bar)
        f.defvjp(f_fwd, f_bwd)

    ``fwd`` takes the same arguments as ``f``; ``bwd(*nondiff, residuals, g)`` returns one
    cotangent per differentiable argument (``None`` for zero). Forward mode (``jvp``) of a
    custom_vjp function is an error, as in JAX.
    """

    kind = "custom_vjp"

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = ()):
        functools.update_wrapper(self, fun, updated=())
        self.fun = fun
        self.name = _name(fun)
        self.nondiff_argnums = _normalize_argnums(nondiff_argnums)
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None

    def defvjp(self, fwd: Callable, bwd: Callable, symbolic_zeros: bool = False) -> None:
        """Set the forward (``fwd(*args) -> (out, residuals)``) and backward rules."""
        if symbolic_zeros:
            raise NotImplementedError("custom_vjp: symbolic_zeros=True is not supported.")
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args, **kwargs):
        if self.fwd is None:
            raise AttributeError(f"No VJP defined for custom_vjp function {self.name} using "
                                 "defvjp.")
        args = _resolve_args(self.fun, args, kwargs)
        call = _CustomVJPCall(self, args)
        outs = call.dispatch(call.leaves)
        return tree_unflatten(call.out_tree, outs)


# --------------------------------------------------------------------------- batching
# Under vmap the custom primitives stay custom: the body is batched with ``batch_ir`` and
# the rules are wrapped in ``vmap``, so a later JVP/transpose still uses the user's rules.
# Every output is batched (along axis 0) so that body and rules agree.

def _unbatched_aval(aval: ShapedArray, batched: bool) -> ShapedArray:
    return aval.update(shape=aval.shape[1:]) if batched else aval


def _batch_operands(vals, dims):
    from .batching import axis_size_of, bdim_to_front
    size = axis_size_of(vals, dims)
    return size, [v if d is None else bdim_to_front(v, d) for v, d in zip(vals, dims)]


def _vmapped_pair_rule(rule: Callable, batched: Sequence[bool]) -> Callable:
    """``rule(primals, tangents) -> (outs, touts)`` over a batch: primal ``i`` (and its
    tangent) carry a leading batch axis where ``batched[i]``; every result does. Zero
    tangents are passed around vmap (they are not arrays)."""
    from .batching import vmap

    def batched_rule(primals, tangents):
        nonzero = [type(t) is not Zero for t in tangents]
        t_axes = [0 if b else None for b, nz in zip(batched, nonzero) if nz]
        zero_avals = [_unbatched_aval(t.aval, b) if type(t) is Zero else None
                      for t, b in zip(tangents, batched)]

        def one(ps, ts):
            it = iter(ts)
            full = [next(it) if nz else Zero(a) for nz, a in zip(nonzero, zero_avals)]
            outs, touts = rule(list(ps), full)
            return list(outs), [instantiate_zeros(t) for t in touts]
        return vmap(one, in_axes=([0 if b else None for b in batched], t_axes), out_axes=0)(
            list(primals), [t for t in tangents if type(t) is not Zero])
    batched_rule.__name__ = getattr(rule, "__name__", "rule") + "_batched"
    batched_rule.fun_name = getattr(rule, "fun_name", "?")
    return batched_rule


def _custom_call_batch(prim, rule_key):
    def rule(vals, dims, call_ir, num_consts, **params):
        from .batching import batch_ir
        size, vals = _batch_operands(vals, dims)
        in_batched = [d is not None for d in dims]
        closed, _ = batch_ir(call_ir, size, in_batched, instantiate=True)
        ir, consts = hoist_consts(closed)
        params = dict(params)
        params[rule_key] = _vmapped_pair_rule(params[rule_key], in_batched[num_consts:])
        # The hoisted consts of the batched body join the closed-over operands.
        outs = prim.bind(*consts, *vals, call_ir=ir, num_consts=len(consts) + num_consts,
                         **params)
        return outs, [0] * len(outs)
    return rule


custom_jvp_call_p.batch = _custom_call_batch(custom_jvp_call_p, "jvp")
custom_vjp_call_p.batch = _custom_call_batch(custom_vjp_call_p, "fwd_jvp")


def _custom_lin_batch(vals, dims, num_res, bwd, out_avals, tangent_mask):
    from .batching import vmap
    size, vals = _batch_operands(vals, dims)
    vals = [v if d is not None else _broadcast_front(v, size) for v, d in zip(vals, dims)]

    def bwd_batched(res, cts):
        def one(r, c):
            return [instantiate_zeros(x) for x in bwd(r, c)]
        return vmap(one)(list(res), list(cts))
    bwd_batched.__name__ = getattr(bwd, "__name__", "bwd") + "_batched"
    outs = custom_lin_p.bind(*vals, num_res=num_res, bwd=bwd_batched,
                             out_avals=tuple(a.update(shape=(size,) + a.shape) for a in out_avals),
                             tangent_mask=tangent_mask)
    return outs, [0] * len(outs)


def _broadcast_front(v, size):
    from .batching import broadcast_batched
    return broadcast_batched(v, size, 0)


custom_lin_p.batch = _custom_lin_batch
