"""``checkpoint`` (``remat``): recompute a function's forward pass in the backward pass.

``checkpoint(f)`` traces ``f`` into a sub-IR held by a ``remat`` primitive. Its rules:

* JVP: ``remat`` of the JVP of the body (still one opaque call);
* partial evaluation (linearize): the known outputs are computed by a ``remat`` of the
  known part, and *no* intermediate is saved: the unknown (tangent) outputs are staged as
  a ``remat`` of the whole body restricted to them, taking only the body's inputs as
  residuals, so the forward computation they need is redone later;
* transpose: a ``remat`` whose body is the backward pass of the body, which first
  recomputes the forward intermediates it needs, then runs the transposed equations.

Because the recomputation lives inside a ``remat`` equation of its own, a later CSE pass
over the enclosing program cannot merge it with the original forward computation (JAX's
``prevent_cse``), so under ``jit`` the memory saving survives optimisation.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

from ..core import trace_state
from ..core.ir import IR
from ..core.primitive import CONTROL, Primitive
from ..core.pytree import tree_flatten, tree_unflatten
from ..core.trace import eval_ir, get_aval, trace_to_ir
from .jvp import Zero, instantiate_zeros, jvp_ir
from .partial_eval import dce_ir, hoist_consts, partial_eval_ir, prune_inputs
from .transpose import UndefinedPrimal, backward_pass

remat_p = Primitive("remat", CONTROL, multiple_results=True)


@remat_p.def_impl
def _remat_impl(*args, ir: IR, prevent_cse: bool = True, differentiated: bool = False):
    return eval_ir(ir, [], list(args))


@remat_p.def_abstract_eval
def _remat_abstract_eval(*avals, ir: IR, prevent_cse: bool = True, differentiated: bool = False):
    return list(ir.out_avals)


def _bind_closed(closed, args: Sequence[Any], **params) -> list[Any]:
    """Bind ``remat`` on a closed IR: its consts become leading operands."""
    ir, consts = hoist_consts(closed)
    return remat_p.bind(*consts, *args, ir=ir, **params)


def _remat_jvp(primals, tangents, ir, prevent_cse=True, differentiated=False):
    nonzero = [type(t) is not Zero for t in tangents]
    closed, out_nonzero = jvp_ir(ir, nonzero)
    outs = _bind_closed(closed, list(primals) + [t for t in tangents if type(t) is not Zero],
                        prevent_cse=prevent_cse, differentiated=differentiated)
    n = len(ir.outvars)
    rest = iter(outs[n:])
    t_out = [next(rest) if nz else Zero(v.aval.strong())
             for v, nz in zip(ir.outvars, out_nonzero)]
    return outs[:n], t_out


def _remat_partial_eval(trace, args, params):
    ir = params["ir"]
    unknowns = [not trace.is_known(x) for x in args]
    known, _, out_unknowns, num_res = partial_eval_ir(ir, unknowns)
    # Known outputs: the forward pass, with its residual outputs dropped (nothing saved).
    n_known = sum(not u for u in out_unknowns)
    known_outs: list[Any] = []
    if n_known:
        kir, kconsts = hoist_consts(known)
        kir, used = dce_ir(kir, [True] * n_known + [False] * num_res)
        operands = list(kconsts) + [x for x, u in zip(args, unknowns) if not u]
        with trace_state.set_current(trace.parent):
            known_outs = remat_p.bind(*[x for x, k in zip(operands, used) if k],
                                      ir=prune_inputs(kir, used), **_other(params))
    # Unknown outputs: staged as a remat of everything they need, inputs as residuals.
    uir, used = dce_ir(ir, out_unknowns)
    staged = trace.stage(remat_p, [x for x, k in zip(args, used) if k],
                         dict(params, ir=prune_inputs(uir, used)))
    known_it, unknown_it = iter(known_outs), iter(staged)
    return [next(unknown_it) if u else next(known_it) for u in out_unknowns]


def _other(params: dict) -> dict:
    return {k: v for k, v in params.items() if k != "ir"}


def _remat_transpose(cts, *args, ir, prevent_cse=True, differentiated=False):
    linear = [type(a) is UndefinedPrimal for a in args]
    known = [a for a in args if type(a) is not UndefinedPrimal]
    nonzero_cts = [type(c) is not Zero for c in cts]

    def backward(*xs):
        known_vals, ct_vals = iter(xs[:len(known)]), iter(xs[len(known):])
        full = [a if lin else next(known_vals) for a, lin in zip(args, linear)]
        cts_full = [next(ct_vals) if nz else Zero(v.aval)
                    for v, nz in zip(ir.outvars, nonzero_cts)]
        cts_in = backward_pass(ir, [], full, cts_full)
        return [instantiate_zeros(c) for c, lin in zip(cts_in, linear) if lin]

    in_avals = [get_aval(a) for a in known] + [get_aval(c) for c in cts if type(c) is not Zero]
    closed, _ = trace_to_ir(backward, in_avals, description="the backward pass of checkpoint")
    outs = iter(_bind_closed(closed, known + [c for c in cts if type(c) is not Zero],
                             prevent_cse=prevent_cse, differentiated=True))
    return [next(outs) if lin else None for lin in linear]


remat_p.jvp = _remat_jvp
remat_p.partial_eval = _remat_partial_eval
remat_p.transpose = _remat_transpose


def checkpoint(fun: Callable, *, prevent_cse: bool = True, policy: Callable | None = None,
               static_argnums: int | Sequence[int] = ()) -> Callable:
    """``fun``, but differentiated by recomputing its forward pass instead of saving it.

    Under ``grad``/``vjp`` no intermediate value of ``fun`` is kept for the backward pass;
    only its inputs are, and the backward pass recomputes what it needs (``jax.checkpoint``).
    ``static_argnums`` marks arguments that are Python values rather than arrays.
    ``policy`` (which intermediates to save anyway) is not supported yet: nothing is saved.
    """
    if policy is not None:
        raise NotImplementedError("checkpoint: policies are not supported yet (nothing is "
                                  "saved; every intermediate is recomputed).")
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    name = getattr(fun, "__name__", "fun")

    @functools.wraps(fun, updated=())   # not __dict__: fun may be a jit/custom_jvp object
    def remat_fun(*args, **kwargs):
        if trace_state.is_eager():
            return fun(*args, **kwargs)   # nothing to differentiate: just run it
        n = len(args)
        static_pos = {s % n for s in static} if n else set()
        dyn = [a for i, a in enumerate(args) if i not in static_pos]
        leaves, in_tree = tree_flatten((dyn, kwargs))
        out_tree = []

        def flat(*xs):
            dyn_args, kw = tree_unflatten(in_tree, list(xs))
            it = iter(dyn_args)
            call_args = [args[i] if i in static_pos else next(it) for i in range(n)]
            out_leaves, tree = tree_flatten(fun(*call_args, **kw))
            out_tree.append(tree)
            return out_leaves

        closed, _ = trace_to_ir(flat, [get_aval(x) for x in leaves],
                                description=f"checkpoint({name})")
        outs = _bind_closed(closed, leaves, prevent_cse=prevent_cse, differentiated=False)
        return tree_unflatten(out_tree[0], outs)

    return remat_fun


remat = checkpoint


def _remat_batch(vals, dims, ir, prevent_cse=True, differentiated=False):
    """vmap of a checkpointed call: still one remat, of the batched body."""
    from .batching import axis_size_of, batch_ir, bdim_to_front
    size = axis_size_of(vals, dims)
    vals = [v if d is None else bdim_to_front(v, d) for v, d in zip(vals, dims)]
    closed, out_batched = batch_ir(ir, size, [d is not None for d in dims], instantiate=False)
    outs = _bind_closed(closed, vals, prevent_cse=prevent_cse, differentiated=differentiated)
    return outs, [0 if b else None for b in out_batched]


remat_p.batch = _remat_batch
