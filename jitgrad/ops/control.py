"""Control flow: primitives whose params hold sub-programs.

    cond[branches]                     index, *operands        -> outs of branches[index]
    while[cond_ir, body_ir, ...]       *cond_consts, *body_consts, *carry -> carry
    scan[body, length, reverse, ...]   *consts, *carry, *xs    -> *carry, *ys (stacked)

A sub-program is an ``IR`` without constvars: whatever the user's function closed over
is hoisted into explicit operands of the equation (the ``*consts`` above), so params
stay hashable and printable, and every transformation sees those values as operands.
The user-facing functions (``cond``, ``switch``, ``while_loop``, ``fori_loop``, ``scan``,
``map``) trace the user's functions into such IRs, check them (branch outputs that
differ, a carry whose type changes, a predicate that is not a scalar bool) and bind the
primitives; ``jitgrad.lax`` exports them under JAX's names.

Each primitive's reference implementation runs its sub-programs with the reference
evaluator. The batching and autodiff rules are at the end of the module.
"""
from __future__ import annotations

import operator
from typing import Any, Callable, Sequence

import numpy as np

from ..core import dtypes, trace_state
from ..core.abstract import ShapedArray
from ..core.array import ArrayImpl
from ..core.errors import DTypeError, InvalidArgumentError, ShapeError
from ..core.evaluate import evaluate
from ..core.ir import IR, ClosedIR, Var
from ..core.primitive import CONTROL, Primitive
from ..core.pytree import (PyTreeDef, keystr, tree_flatten, tree_flatten_with_path,
                           tree_unflatten)
from ..core.rules import as_array, hoist_consts
from ..core.trace import eval_ir, get_aval, trace_to_ir

# ============================================================== sub-program helpers


def trace_callable(fun: Callable, args_tree: PyTreeDef, in_avals: Sequence[ShapedArray],
                   description: str, labels: Sequence[str] | None = None
                   ) -> tuple[ClosedIR, PyTreeDef]:
    """Trace ``fun(*args)`` (args given flat, with ``args_tree``) into a closed IR.

    Returns the IR and the tree structure of ``fun``'s output.
    """
    out_tree = []

    def flat_fun(*leaves):
        out = fun(*tree_unflatten(args_tree, leaves))
        out_leaves, tree = tree_flatten(out)
        out_tree.append(tree)
        return out_leaves

    closed, _ = trace_to_ir(flat_fun, in_avals, labels, description=description)
    return closed, out_tree[0]


def join_consts(closeds: Sequence[ClosedIR]) -> tuple[list[IR], list[Any]]:
    """Hoist the consts of several IRs into one shared list (for cond's branches).

    Every returned IR takes all the consts first (each ignoring the others'), then its
    own invars. A value closed over by several branches is passed once.
    """
    consts: list[Any] = []
    avals: list[ShapedArray] = []
    index: dict[int, int] = {}
    for closed in closeds:
        for v, c in zip(closed.ir.constvars, closed.consts):
            if id(c) not in index:
                index[id(c)] = len(consts)
                consts.append(c)
                avals.append(v.aval)
    irs = []
    for closed in closeds:
        slots: list[Var] = [Var(a) for a in avals]
        for v, c in zip(closed.ir.constvars, closed.consts):
            slots[index[id(c)]] = v
        ir = closed.ir
        irs.append(IR([], slots + ir.invars, ir.eqns, ir.outvars))
    return irs, consts


def same_type(a: ShapedArray, b: ShapedArray) -> bool:
    """Equal shape and dtype (weak types may differ: they only steer later promotion)."""
    return a.shape == b.shape and a.dtype == b.dtype


def join_weak(avals: Sequence[ShapedArray]) -> ShapedArray:
    """One of several same-typed avals, weakly typed only if all of them are."""
    return avals[0].update(weak_type=all(a.weak_type for a in avals))


def _check_operands(name: str, what: str, avals, expected) -> None:
    """Operands of a control primitive must fit the sub-program's inputs."""
    if len(avals) != len(expected) or not all(same_type(a, b) for a, b in zip(avals, expected)):
        got = ", ".join(a.str_short() for a in avals)
        want = ", ".join(a.str_short() for a in expected)
        raise ShapeError(f"{name}: operands ({got}) do not fit the inputs of {what} ({want})")


def _leaf_labels(tree: Any, prefix: str) -> list[str]:
    """``prefix['w']`` for each leaf of ``tree`` (used in messages about loop carries)."""
    return [f"{prefix}{keystr(path)}" for path, _ in tree_flatten_with_path(tree)[0]]


# ============================================================== cond

cond_p = Primitive("cond", CONTROL, multiple_results=True)


@cond_p.def_impl
def _cond_impl(index, *operands, branches):
    i = int(np.clip(int(index), 0, len(branches) - 1))
    return evaluate(branches[i], [], operands)


@cond_p.def_abstract_eval
def _cond_rule(index, *operands, branches):
    if index.shape != () or index.dtype != np.int32:
        raise DTypeError(f"cond: the branch index must be an int32 scalar, got {index.str_short()}")
    for i, br in enumerate(branches):
        _check_operands("cond", f"branch {i}", operands, br.in_avals)
    outs = [br.out_avals for br in branches]
    for i, o in enumerate(outs[1:], 1):
        if len(o) != len(outs[0]) or not all(same_type(a, b) for a, b in zip(o, outs[0])):
            first = ", ".join(a.str_short() for a in outs[0])
            other = ", ".join(a.str_short() for a in o)
            raise ShapeError(f"cond: branch 0 returns ({first}) but branch {i} returns ({other})")
    return [join_weak(avals) for avals in zip(*outs)]


def _check_branches(what: str, names: Sequence[str], trees, avals_list) -> None:
    """Every branch must return branch 0's structure, shapes and dtypes; else say where not."""
    for i in range(1, len(names)):
        if trees[i] != trees[0]:
            raise ShapeError(
                f"{what}: {names[0]} and {names[i]} must return the same structure, but "
                f"{names[0]} returns {trees[0]} and {names[i]} returns {trees[i]}",
                hint="Return the same pytree (same containers, same number of arrays) from "
                     "every branch.")
    example = tree_unflatten(trees[0], avals_list[0])
    paths = [keystr(p) for p, _ in tree_flatten_with_path(example)[0]]
    for i in range(1, len(names)):
        for path, a, b in zip(paths, avals_list[0], avals_list[i]):
            if not same_type(a, b):
                where = f"output {path}" if path else "the output"
                raise ShapeError(
                    f"{what}: the branches return different types for {where}: {names[0]} "
                    f"gives {a.str_short()} but {names[i]} gives {b.str_short()}",
                    hint="Every branch must return arrays of the same shapes and dtypes; "
                         "convert with .astype(...) or broadcast with jnp.broadcast_to.")


def _switch(index, branches: Sequence[Callable], operands: tuple, names: Sequence[str],
            what: str) -> Any:
    """Trace every branch on ``operands`` and bind ``cond`` (``index`` is int32, in range)."""
    leaves, in_tree = tree_flatten(operands)
    leaves = [as_array(x) for x in leaves]
    in_avals = [get_aval(x) for x in leaves]
    labels = _leaf_labels(operands, "operand ")
    traced = [trace_callable(fun, in_tree, in_avals, f"{what} {name}", labels)
              for fun, name in zip(branches, names)]
    trees = [t for _, t in traced]
    _check_branches(what, names, trees, [c.out_avals for c, _ in traced])
    irs, consts = join_consts([c for c, _ in traced])
    outs = cond_p.bind(index, *consts, *leaves, branches=tuple(irs))
    return tree_unflatten(trees[0], outs)


def _scalar_aval(x: Any, what: str) -> ShapedArray:
    try:
        aval = get_aval(x)
    except InvalidArgumentError:
        raise InvalidArgumentError(
            f"{what} must be a scalar array, got {type(x).__name__}") from None
    if aval.shape != ():
        raise ShapeError(f"{what} must be a scalar, got {aval.str_short()}",
                         hint="Reduce it first (e.g. jnp.all / jnp.any), or use jnp.where for an "
                              "elementwise choice.")
    return aval


def _to_int32(x: Any) -> Any:
    if isinstance(x, (bool, int, np.generic, np.ndarray)):
        return np.asarray(x, np.int32)
    return x if get_aval(x).dtype == np.int32 else _convert(x, np.int32)


def _convert(x: Any, dtype) -> Any:
    from .elementwise import convert_element_type_p
    return convert_element_type_p.bind(x, new_dtype=np.dtype(dtype), weak_type=False)


def cond(pred, true_fun: Callable, false_fun: Callable, *operands) -> Any:
    """``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)`` (``jax.lax.cond``).

    Both branches are traced; they must return the same pytree structure with the same
    shapes and dtypes. ``pred`` is a scalar bool (or integer: nonzero is true). Under
    ``vmap`` with a batched ``pred``, both branches run and the results are selected.
    """
    if not (callable(true_fun) and callable(false_fun)):
        raise InvalidArgumentError("lax.cond: true_fun and false_fun must be callables",
                                   hint="Call it as lax.cond(pred, true_fun, false_fun, "
                                        "*operands).")
    aval = _scalar_aval(pred, "lax.cond: the predicate")
    if not (dtypes.is_bool(aval.dtype) or dtypes.is_int(aval.dtype)):
        raise DTypeError(f"lax.cond: the predicate must be a scalar bool, got {aval.str_short()}",
                         hint="Compare explicitly, e.g. lax.cond(x > 0, ...).")
    if dtypes.is_int(aval.dtype):
        from .elementwise import ne_p
        pred = ne_p.bind(pred, np.zeros((), aval.dtype))
    return _switch(_to_int32(pred), (false_fun, true_fun), operands,
                   ("false_fun", "true_fun"), "lax.cond")


def switch(index, branches: Sequence[Callable], *operands) -> Any:
    """``branches[index](*operands)``, with ``index`` clamped into range (``jax.lax.switch``)."""
    from .elementwise import clamp_p
    branches = tuple(branches)
    if not branches or not all(callable(b) for b in branches):
        raise InvalidArgumentError("lax.switch: branches must be a non-empty sequence of callables")
    aval = _scalar_aval(index, "lax.switch: the index")
    if not dtypes.is_int(aval.dtype):
        raise DTypeError(f"lax.switch: the index must be an integer scalar, got {aval.str_short()}")
    if len(branches) == 1:
        return branches[0](*operands)
    index = clamp_p.bind(np.zeros((), np.int32), _to_int32(index),
                         np.asarray(len(branches) - 1, np.int32))
    return _switch(index, branches, operands, [f"branches[{i}]" for i in range(len(branches))],
                   "lax.switch")


# ============================================================== loops: typing the carry


def _carry_error(what: str, label: str, a: ShapedArray, b: ShapedArray):
    return ShapeError(
        f"{what}: the body changes the type of {label}: it enters as {a.str_short()} and "
        f"comes back as {b.str_short()}",
        hint="A loop carry must keep its shape and dtype across iterations; convert with "
             ".astype(...) or start from a value of the right type (e.g. jnp.zeros(shape, dtype)).")


def _settle_carry(what: str, init: list, labels: list[str], trace_with: Callable):
    """Trace a loop body until its carry types are stable; returns (init, result).

    ``trace_with(carry_avals)`` traces the body and returns ``(result, out_carry_avals)``.
    A weakly typed init (a Python number) whose dtype differs from what the body returns
    is promoted, and the body traced again, as JAX does; any other change of a carry's
    type is an error naming the carry and both types.
    """
    from .elementwise import convert_element_type_p
    avals = [get_aval(x) for x in init]
    for _ in range(4):
        result, outs = trace_with(avals)
        new = []
        for a, o, label in zip(avals, outs, labels):
            if a.shape != o.shape:
                raise _carry_error(what, label, a, o)
            if a.dtype != o.dtype:
                if not a.weak_type:
                    raise _carry_error(what, label, a, o)
                dt, weak = dtypes.result_type(a, o, return_weak_type_flag=True)
                new.append(ShapedArray(a.shape, dt, weak))
            elif a.weak_type and not o.weak_type:
                new.append(a.strong())
            else:
                new.append(a)
        if new == avals:
            break
        avals = new
    else:  # pragma: no cover - types only ever get stronger, so this settles quickly
        raise ShapeError(f"{what}: the carry types do not settle")
    for a, o, label in zip(avals, outs, labels):
        if not same_type(a, o):
            raise _carry_error(what, label, a, o)
    init = [x if get_aval(x).dtype == a.dtype else
            convert_element_type_p.bind(x, new_dtype=a.dtype, weak_type=a.weak_type)
            for x, a in zip(init, avals)]
    return init, result


# ============================================================== while

while_p = Primitive("while", CONTROL, multiple_results=True)


@while_p.def_impl
def _while_impl(*args, cond_ir, body_ir, cond_nconsts, body_nconsts):
    cconsts = list(args[:cond_nconsts])
    bconsts = list(args[cond_nconsts:cond_nconsts + body_nconsts])
    carry = list(args[cond_nconsts + body_nconsts:])
    while bool(evaluate(cond_ir, [], cconsts + carry)[0]):
        carry = evaluate(body_ir, [], bconsts + carry)
    return carry


@while_p.def_abstract_eval
def _while_rule(*args, cond_ir, body_ir, cond_nconsts, body_nconsts):
    carry = args[cond_nconsts + body_nconsts:]
    _check_operands("while", "cond_ir", args[:cond_nconsts] + carry, cond_ir.in_avals)
    _check_operands("while", "body_ir", args[cond_nconsts:], body_ir.in_avals)
    (pred,) = cond_ir.out_avals
    if pred.shape != () or pred.dtype != np.bool_:
        raise DTypeError(f"while: cond_ir must return a bool scalar, got {pred.str_short()}")
    body_carry = body_ir.in_avals[body_nconsts:]
    if not all(same_type(a, b) for a, b in zip(body_ir.out_avals, body_carry)):
        raise ShapeError("while: body_ir must return its carry with unchanged types")
    return [a.update(weak_type=a.weak_type and b.weak_type)
            for a, b in zip(body_carry, body_ir.out_avals)]


def while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any) -> Any:
    """``while cond_fun(val): val = body_fun(val)``, traced once (``jax.lax.while_loop``).

    ``cond_fun`` must return a scalar bool; ``body_fun`` must return a value of the same
    structure, shapes and dtypes as ``init_val``. Only forward-mode differentiation is
    supported (as in JAX); for ``grad`` use ``scan`` or ``fori_loop`` with static bounds.
    """
    if not (callable(cond_fun) and callable(body_fun)):
        raise InvalidArgumentError("lax.while_loop: cond_fun and body_fun must be callables")
    init, in_tree = tree_flatten(init_val)
    init = [as_array(x) for x in init]
    args_tree = tree_flatten((init_val,))[1]
    labels = _leaf_labels(init_val, "the carry")

    def trace_with(avals):
        body, body_tree = trace_callable(body_fun, args_tree, avals,
                                         "lax.while_loop body_fun", labels)
        if body_tree != in_tree:
            raise ShapeError(
                f"lax.while_loop: body_fun must return the structure of init_val, {in_tree}, "
                f"but returns {body_tree}",
                hint="Return the whole carry from body_fun, with the same containers.")
        return body, body.out_avals

    init, body = _settle_carry("lax.while_loop", init, labels, trace_with)
    avals = [get_aval(x) for x in init]
    cond_closed, cond_tree = trace_callable(cond_fun, args_tree, avals,
                                            "lax.while_loop cond_fun", labels)
    outs = cond_closed.out_avals
    if cond_tree.num_leaves != 1 or outs[0].shape != () or outs[0].dtype != np.bool_:
        got = ", ".join(a.str_short() for a in outs) or "nothing"
        raise DTypeError(f"lax.while_loop: cond_fun must return a scalar bool, got {got}",
                         hint="Reduce with jnp.all/jnp.any, or compare, e.g. i < n.")
    cond_ir, cconsts = hoist_consts(cond_closed)
    body_ir, bconsts = hoist_consts(body)
    out = while_p.bind(*cconsts, *bconsts, *init, cond_ir=cond_ir, body_ir=body_ir,
                       cond_nconsts=len(cconsts), body_nconsts=len(bconsts))
    return tree_unflatten(in_tree, out)


# ============================================================== scan

scan_p = Primitive("scan", CONTROL, multiple_results=True)


def _split_scan(args, num_consts, num_carry):
    return (list(args[:num_consts]), list(args[num_consts:num_consts + num_carry]),
            list(args[num_consts + num_carry:]))


@scan_p.def_impl
def _scan_impl(*args, body, num_consts, num_carry, length, reverse):
    consts, carry, xs = _split_scan(args, num_consts, num_carry)
    xs = [np.asarray(x) for x in xs]
    ys = []
    for i in (range(length - 1, -1, -1) if reverse else range(length)):
        out = evaluate(body, [], consts + carry + [x[i] for x in xs])
        carry, y = out[:num_carry], out[num_carry:]
        ys.append(y)
    if reverse:
        ys.reverse()
    y_avals = body.out_avals[num_carry:]
    stacked = [np.stack([y[j] for y in ys]) if ys else np.zeros((0,) + a.shape, a.dtype)
               for j, a in enumerate(y_avals)]
    return [np.asarray(c) for c in carry] + stacked


@scan_p.def_abstract_eval
def _scan_rule(*args, body, num_consts, num_carry, length, reverse):
    consts, carry, xs = _split_scan(args, num_consts, num_carry)
    for x in xs:
        if x.ndim == 0 or x.shape[0] != length:
            raise ShapeError(f"scan: every xs operand needs a leading axis of length {length}, "
                             f"got {x.str_short()}")
    x_avals = [x.update(shape=x.shape[1:]) for x in xs]
    _check_operands("scan", "its body", consts + carry + x_avals, body.in_avals)
    carry_in = body.in_avals[num_consts:num_consts + num_carry]
    outs = body.out_avals
    if not all(same_type(a, b) for a, b in zip(outs[:num_carry], carry_in)):
        raise ShapeError("scan: the body must return its carry with unchanged types")
    ys = [a.update(shape=(length,) + a.shape) for a in outs[num_carry:]]
    return [a.update(weak_type=a.weak_type and b.weak_type)
            for a, b in zip(carry_in, outs[:num_carry])] + ys


def scan(f: Callable, init: Any, xs: Any = None, length: int | None = None,
         reverse: bool = False, unroll: int | bool = 1) -> tuple[Any, Any]:
    """Loop ``carry, y = f(carry, x)`` over the leading axis of ``xs`` (``jax.lax.scan``).

    Returns the final carry and the ``y``\\ s stacked along a new leading axis. ``xs`` may
    be a pytree (all leaves with the same leading size) or ``None`` with ``length`` given;
    ``reverse=True`` runs from the end (the ``y``\\ s stay in input order). ``unroll`` is
    accepted for compatibility; the backends decide how to run the loop.
    """
    if not callable(f):
        raise InvalidArgumentError(f"lax.scan: f must be a callable, got {type(f).__name__}")
    if isinstance(unroll, bool):
        unroll = 1
    if not isinstance(unroll, (int, np.integer)) or unroll < 1:
        raise InvalidArgumentError(f"lax.scan: unroll must be a positive int, got {unroll!r}")
    x_leaves, x_tree = tree_flatten(xs)
    x_leaves = [as_array(x) for x in x_leaves]
    x_paths = [keystr(p) for p, _ in tree_flatten_with_path(xs)[0]]
    lengths = []
    for path, x in zip(x_paths, x_leaves):
        aval = get_aval(x)
        if aval.ndim == 0:
            raise ShapeError(f"lax.scan: xs{path} is a scalar ({aval.str_short()}); every leaf "
                             "of xs needs a leading axis to scan over")
        lengths.append((path, aval.shape[0]))
    sizes = {n for _, n in lengths} | ({int(length)} if length is not None else set())
    if len(sizes) > 1:
        listed = ", ".join(f"xs{p or ''} has {n}" for p, n in lengths)
        given = f"; length={length}" if length is not None else ""
        raise ShapeError(f"lax.scan: inconsistent lengths of the leading axis: {listed}{given}",
                         hint="Every leaf of xs must have the same leading size (and match "
                              "length).")
    if not sizes:
        raise InvalidArgumentError(
            "lax.scan: with xs=None (or no arrays in xs), length must be given")
    n = sizes.pop()
    x_avals = [get_aval(x).update(shape=get_aval(x).shape[1:]) for x in x_leaves]
    init_leaves, init_tree = tree_flatten(init)
    init_leaves = [as_array(x) for x in init_leaves]
    args_tree = tree_flatten((init, xs))[1]
    labels = _leaf_labels(init, "the carry")
    arg_labels = labels + [f"xs{p}" for p in x_paths]
    out_trees = []

    def body_fun(carry, x):
        out = f(carry, x)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise InvalidArgumentError(
                f"lax.scan: f must return a pair (carry, y), got {type(out).__name__}",
                hint="Return (new_carry, y); use None for y if there is nothing to stack.")
        carry_out, y = out
        c_leaves, c_tree = tree_flatten(carry_out)
        y_leaves, y_tree = tree_flatten(y)
        out_trees.append((c_tree, y_tree))
        return c_leaves + y_leaves

    def trace_with(avals):
        body, _ = trace_callable(body_fun, args_tree, list(avals) + x_avals,
                                 "lax.scan f", arg_labels)
        c_tree, _ = out_trees[-1]
        if c_tree != init_tree:
            raise ShapeError(
                f"lax.scan: f must return a carry with the structure of init, {init_tree}, "
                f"but returns {c_tree}",
                hint="Return (new_carry, y) where new_carry has the same containers as init.")
        return body, body.out_avals[:len(avals)]

    init_leaves, body = _settle_carry("lax.scan", init_leaves, labels, trace_with)
    body_ir, consts = hoist_consts(body)
    outs = scan_p.bind(*consts, *init_leaves, *x_leaves, body=body_ir, num_consts=len(consts),
                       num_carry=len(init_leaves), length=n, reverse=bool(reverse))
    _, y_tree = out_trees[-1]
    carry_out = tree_unflatten(init_tree, outs[:len(init_leaves)])
    return carry_out, tree_unflatten(y_tree, outs[len(init_leaves):])


def fori_loop(lower, upper, body_fun: Callable, init_val: Any) -> Any:
    """``for i in range(lower, upper): val = body_fun(i, val)`` (``jax.lax.fori_loop``).

    With concrete bounds (Python ints or concrete arrays) this is a ``scan`` with a
    static trip count, so it is reverse-differentiable; with traced bounds it is a
    ``while_loop`` (forward-mode only), as in JAX.
    """
    from .elementwise import add_p, lt_p
    if not callable(body_fun):
        raise InvalidArgumentError("lax.fori_loop: body_fun must be a callable")
    for name, b in (("lower", lower), ("upper", upper)):
        aval = _scalar_aval(b, f"lax.fori_loop: {name}")
        if not dtypes.is_int(aval.dtype):
            raise DTypeError(f"lax.fori_loop: {name} must be an integer, got {aval.str_short()}")
    dt, weak = dtypes.result_type(lower, upper, return_weak_type_flag=True)
    one = ArrayImpl(np.ones((), dt), weak)   # i + 1 keeps i's dtype and weak type
    try:
        lo, hi = operator.index(lower), operator.index(upper)
        static = True
    except TypeError:
        static = False
    if not static:   # traced bounds: a while loop over (i, upper, val)
        lower, upper = (_index_value(b, dt, weak) for b in (lower, upper))

        def cond_fn(state):
            i, stop, _ = state
            return lt_p.bind(i, stop)

        def body_fn(state):
            i, stop, x = state
            return add_p.bind(i, one), stop, body_fun(i, x)

        return while_loop(cond_fn, body_fn, (lower, upper, init_val))[2]

    def scan_body(carry, _):
        i, x = carry
        return (add_p.bind(i, one), body_fun(i, x)), None

    start = ArrayImpl(np.asarray(lo, dt), weak)
    (_, out), _ = scan(scan_body, (start, init_val), None, length=max(hi - lo, 0))
    return out


def _index_value(b: Any, dtype, weak: bool) -> Any:
    """A loop bound as an array of the loop index's dtype."""
    if isinstance(b, (int, np.integer, np.ndarray)):
        return ArrayImpl(np.asarray(b, dtype), weak)
    return b if get_aval(b).dtype == dtype else _convert(b, dtype)


def map(f: Callable, xs: Any, *, batch_size: int | None = None) -> Any:  # noqa: A001 (JAX's name)
    """``f`` applied to each slice of ``xs`` along its leading axis, stacked (``jax.lax.map``)."""
    if batch_size is not None:
        raise NotImplementedError("lax.map: batch_size is not supported yet; use vmap inside "
                                  "lax.map over reshaped xs instead")
    _, ys = scan(lambda carry, x: (carry, f(x)), (), xs)
    return ys


# ============================================================== batching rules
# Batched operands get their batch axis first (xs of a scan: second, after the scan axis)
# and the sub-programs are batched with ``batch_ir``. A loop carry is batched when it starts
# batched or when the body makes it so, found by iterating to a fixed point.
from ..core.rules import axis_size_of, bdim_to_front, moveaxis  # noqa: E402


# The rules of cond/while/scan transform their sub-programs with the transformations
# themselves (batch_ir, eval_batched, jvp_ir, partial_eval_ir, backward_pass). Those live
# in jitgrad/transforms, above jitgrad/ops, so these wrappers import them when a rule runs
# (always after both packages are loaded) instead of at import time.

def batch_ir(*args, **kwargs):
    """``jitgrad.transforms.batching.batch_ir`` (imported on first use, see above)."""
    from ..transforms.batching import batch_ir as run
    return run(*args, **kwargs)


def eval_batched(*args, **kwargs):
    """``jitgrad.transforms.batching.eval_batched`` (imported on first use, see above)."""
    from ..transforms.batching import eval_batched as run
    return run(*args, **kwargs)


def jvp_ir(*args, **kwargs):
    """``jitgrad.transforms.jvp.jvp_ir`` (imported on first use, see above)."""
    from ..transforms.jvp import jvp_ir as run
    return run(*args, **kwargs)


def partial_eval_ir(*args, **kwargs):
    """``jitgrad.transforms.partial_eval.partial_eval_ir`` (imported on first use, see above)."""
    from ..transforms.partial_eval import partial_eval_ir as run
    return run(*args, **kwargs)


def backward_pass(*args, **kwargs):
    """``jitgrad.transforms.transpose.backward_pass`` (imported on first use, see above)."""
    from ..transforms.transpose import backward_pass as run
    return run(*args, **kwargs)


def _ir_of(fun: Callable, in_avals: Sequence[ShapedArray], description: str):
    """Trace a flat function of values into a sub-program: ``(IR, hoisted consts)``."""
    closed, _ = trace_to_ir(fun, in_avals, description=description)
    return hoist_consts(closed)


def _batched_aval(aval: ShapedArray, batched: bool, size: int) -> ShapedArray:
    return aval.update(shape=(size,) + aval.shape) if batched else aval


def _cond_batch(vals, dims, branches):
    from .elementwise import clamp_p, select_n_p
    from .layout import broadcast_in_dim_p
    (index, *ops), (idim, *odims) = vals, dims
    size = axis_size_of(vals, dims)
    ops = [v if d is None else moveaxis(v, d, 0) for v, d in zip(ops, odims)]
    in_batched = [d is not None for d in odims]
    if idim is None:
        # One branch for the whole batch: batch each branch, agreeing on which outputs
        # are batched.
        per_branch = [batch_ir(br, size, in_batched, False)[1] for br in branches]
        out_batched = [any(bs) for bs in zip(*per_branch)]
        irs, consts = join_consts([batch_ir(br, size, in_batched, out_batched)[0]
                                   for br in branches])
        outs = cond_p.bind(index, *consts, *ops, branches=tuple(irs))
        return outs, [0 if b else None for b in out_batched]
    # Each example picks its own branch: run every branch on the whole batch and select
    # (as JAX does, so side-effect-free branches are required, which they are).
    index = clamp_p.bind(np.zeros((), np.int32), moveaxis(index, idim, 0),
                         np.asarray(len(branches) - 1, np.int32))
    in_dims = [0 if b else None for b in in_batched]
    results = [eval_batched(br, [], ops, in_dims) for br in branches]
    outs = []
    for j in range(len(branches[0].outvars)):
        cases = [bdim_to_front(r_vals[j], r_dims[j], size) for r_vals, r_dims in results]
        which = broadcast_in_dim_p.bind(index, shape=get_aval(cases[0]).shape,
                                        broadcast_dimensions=(0,))
        outs.append(select_n_p.bind(which, *cases))
    return outs, [0] * len(outs)


def _carry_fixed_point(body: IR, size: int, consts_batched: list[bool],
                       carry_batched: list[bool], xs_batched: list[bool]) -> list[bool]:
    """Which carries end up batched: those that start so, or that the body makes so."""
    n = len(carry_batched)
    while True:
        _, out = batch_ir(body, size, consts_batched + carry_batched + xs_batched, False)
        new = [a or b for a, b in zip(carry_batched, out[:n])]
        if new == carry_batched:
            return carry_batched
        carry_batched = new


def _while_batch(vals, dims, cond_ir, body_ir, cond_nconsts, body_nconsts):
    from .elementwise import select_n_p
    from .layout import broadcast_in_dim_p
    from .reductions import reduce_or_p
    size = axis_size_of(vals, dims)
    vals = [v if d is None else moveaxis(v, d, 0) for v, d in zip(vals, dims)]
    batched = [d is not None for d in dims]
    nc = cond_nconsts + body_nconsts
    cc_b, bc_b, carry_b = batched[:cond_nconsts], batched[cond_nconsts:nc], batched[nc:]
    cconsts, bconsts, carry = vals[:cond_nconsts], vals[cond_nconsts:nc], vals[nc:]
    carry_b = _carry_fixed_point(body_ir, size, bc_b, carry_b, [])
    _, (pred_batched,) = batch_ir(cond_ir, size, cc_b + carry_b, False)
    if pred_batched:
        carry_b = [True] * len(carry_b)
    carry = [bdim_to_front(c, 0 if was else None, size) if b else c
             for c, was, b in zip(carry, batched[nc:], carry_b)]
    if not pred_batched:
        cond2, cc2 = hoist_consts(batch_ir(cond_ir, size, cc_b + carry_b, False)[0])
        body2, bc2 = hoist_consts(batch_ir(body_ir, size, bc_b + carry_b, carry_b)[0])
        outs = while_p.bind(*cc2, *cconsts, *bc2, *bconsts, *carry, cond_ir=cond2, body_ir=body2,
                            cond_nconsts=len(cc2) + cond_nconsts,
                            body_nconsts=len(bc2) + body_nconsts)
        return outs, [0 if b else None for b in carry_b]

    # Each example stops at its own time: loop while any of them goes on, and let the
    # ones that have stopped keep their carry (select with the per-example predicate).
    cc_dims = [0 if b else None for b in cc_b]
    bc_dims = [0 if b else None for b in bc_b]
    carry_dims = [0] * len(carry)
    cc_avals = [get_aval(v) for v in cconsts]
    bc_avals = [get_aval(v) for v in bconsts]
    carry_avals = [get_aval(v) for v in carry]

    def predicate(cc, c):
        (pred,), (d,) = eval_batched(cond_ir, [], list(cc) + list(c), cc_dims + carry_dims)
        return bdim_to_front(pred, d, size)

    def any_cond(*args):
        return [reduce_or_p.bind(predicate(args[:cond_nconsts], args[cond_nconsts:]), axes=(0,))]

    def select_body(*args):
        cc, bc, c = args[:cond_nconsts], args[cond_nconsts:nc], args[nc:]
        pred = predicate(cc, c)
        new, new_dims = eval_batched(body_ir, [], list(bc) + list(c), bc_dims + carry_dims)
        out = []
        for old, v, d in zip(c, new, new_dims):
            v = bdim_to_front(v, d, size)
            which = broadcast_in_dim_p.bind(pred, shape=get_aval(v).shape,
                                            broadcast_dimensions=(0,))
            out.append(select_n_p.bind(which, old, v))
        return out

    cond2, cc2 = _ir_of(any_cond, cc_avals + carry_avals, "vmap of a while_loop cond_fun")
    body2, bc2 = _ir_of(select_body, cc_avals + bc_avals + carry_avals,
                        "vmap of a while_loop body_fun")
    outs = while_p.bind(*cc2, *cconsts, *bc2, *cconsts, *bconsts, *carry, cond_ir=cond2,
                        body_ir=body2, cond_nconsts=len(cc2) + cond_nconsts,
                        body_nconsts=len(bc2) + nc)
    return outs, [0] * len(outs)


def _scan_batch(vals, dims, body, num_consts, num_carry, length, reverse):
    size = axis_size_of(vals, dims)
    consts, carry, xs = _split_scan(vals, num_consts, num_carry)
    const_d, carry_d, xs_d = _split_scan(dims, num_consts, num_carry)
    consts = [v if d is None else moveaxis(v, d, 0) for v, d in zip(consts, const_d)]
    xs = [v if d is None else moveaxis(v, d, 1) for v, d in zip(xs, xs_d)]   # scan axis stays first
    const_b, xs_b = [d is not None for d in const_d], [d is not None for d in xs_d]
    carry_b = _carry_fixed_point(body, size, const_b, [d is not None for d in carry_d], xs_b)
    carry = [bdim_to_front(c, d, size) if b else c for c, d, b in zip(carry, carry_d, carry_b)]
    num_ys = len(body.outvars) - num_carry
    closed, out_b = batch_ir(body, size, const_b + carry_b + xs_b, carry_b + [False] * num_ys)
    body2, new_consts = hoist_consts(closed)
    outs = scan_p.bind(*new_consts, *consts, *carry, *xs, body=body2,
                       num_consts=len(new_consts) + num_consts, num_carry=num_carry,
                       length=length, reverse=reverse)
    out_dims = [0 if b else None for b in carry_b] + [1 if b else None for b in out_b[num_carry:]]
    return outs, out_dims


cond_p.batch = _cond_batch
while_p.batch = _while_batch
scan_p.batch = _scan_batch


# ============================================================== autodiff rules
# Conventions: jitgrad/transforms/jvp.py (prim.jvp), partial_eval.py (prim.partial_eval),
# transpose.py (prim.transpose). The sub-programs are differentiated with ``jvp_ir``, split
# with ``partial_eval_ir`` and run backwards with ``backward_pass``; each rule then binds
# the same primitive on the transformed sub-programs. ``grad`` through ``scan`` saves the
# residuals of every iteration (stacked, as extra ys) and transposes into a scan running the
# other way; ``while`` has a JVP but no reverse mode (its trip count is not known ahead).
from ..core.errors import JitgradError  # noqa: E402
from ..core.rules import Zero, UndefinedPrimal, instantiate_zeros, zeros_like_aval  # noqa: E402


class WhileLoopReverseModeError(JitgradError, ValueError):
    """Reverse-mode differentiation through ``while_loop`` (JAX raises ValueError)."""


def _permuted(ir: IR, in_order: Sequence[int], out_order: Sequence[int] | None = None) -> IR:
    """``ir`` with its invars (and outvars) reordered; the same program otherwise."""
    outvars = ir.outvars if out_order is None else [ir.outvars[i] for i in out_order]
    return IR(ir.constvars, [ir.invars[i] for i in in_order], ir.eqns, outvars)


def _groups(*sizes: int) -> list[list[int]]:
    """Consecutive index ranges of the given sizes: _groups(2, 1) == [[0, 1], [2]]."""
    out, start = [], 0
    for n in sizes:
        out.append(list(range(start, start + n)))
        start += n
    return out


def _nonzero(ts) -> list[bool]:
    return [type(t) is not Zero for t in ts]


def _tangent_outputs(outs, nonzero, avals):
    """Tangent outputs of a rule: the returned ones where nonzero, Zero elsewhere."""
    it = iter(outs)
    return [next(it) if nz else Zero(a.strong()) for nz, a in zip(nonzero, avals)]


# ---------------------------------------------------------------- JVP

def _cond_jvp(primals, tangents, branches):
    index, ops, ops_t = primals[0], list(primals[1:]), list(tangents[1:])
    nz = _nonzero(ops_t)
    out_nz = [any(col) for col in zip(*[jvp_ir(br, nz)[1] for br in branches])]
    irs, consts = join_consts([jvp_ir(br, nz, instantiate=out_nz)[0] for br in branches])
    outs = cond_p.bind(index, *consts, *ops, *[t for t in ops_t if type(t) is not Zero],
                       branches=tuple(irs))
    n = len(branches[0].outvars)
    return outs[:n], _tangent_outputs(outs[n:], out_nz, branches[0].out_avals)


def _loop_fixed_point(jvp_or_pe, ir, flags_before, carry, flags_after, n_other_out):
    """Iterate ``carry`` flags (nonzero tangent / unknown) until the body keeps them.

    ``jvp_or_pe(ir, in_flags, instantiate) -> out_flags`` tells which outputs get the flag.
    """
    n = len(carry)
    while True:
        out = jvp_or_pe(ir, flags_before + carry + flags_after, carry + [False] * n_other_out)
        new = [a or b for a, b in zip(carry, out[:n])]
        if new == carry:
            return carry
        carry = new


def _jvp_flags(ir, flags, instantiate):
    return jvp_ir(ir, flags, instantiate)[1]


def _while_jvp(primals, tangents, cond_ir, body_ir, cond_nconsts, body_nconsts):
    nc = cond_nconsts + body_nconsts
    cconsts, bconsts, carry = primals[:cond_nconsts], primals[cond_nconsts:nc], primals[nc:]
    bconsts_t, carry_t = tangents[cond_nconsts:nc], tangents[nc:]
    bc_nz = _nonzero(bconsts_t)
    carry_nz = _loop_fixed_point(_jvp_flags, body_ir, bc_nz, _nonzero(carry_t), [], 0)
    body, _ = jvp_ir(body_ir, bc_nz + carry_nz, instantiate=carry_nz)
    body, hoisted = hoist_consts(body)
    # jvp_ir order: hoisted, bconsts, carry, bconsts_t, carry_t -> while's: consts | carry
    n_h, n_b, n_c, n_bt, n_ct = len(hoisted), body_nconsts, len(carry), sum(bc_nz), sum(carry_nz)
    h, b, c, bt, ct = _groups(n_h, n_b, n_c, n_bt, n_ct)
    body = _permuted(body, h + b + bt + c + ct)
    # The predicate ignores the tangents: give cond_ir unused inputs for them.
    cond = IR([], cond_ir.invars + [Var(a.strong()) for a, nz
                                    in zip(body_ir.in_avals[body_nconsts:], carry_nz) if nz],
              cond_ir.eqns, cond_ir.outvars)
    carry_t_in = [instantiate_zeros(t) for t, nz in zip(carry_t, carry_nz) if nz]
    bconsts_t_in = [t for t in bconsts_t if type(t) is not Zero]
    outs = while_p.bind(*cconsts, *hoisted, *bconsts, *bconsts_t_in, *carry, *carry_t_in,
                        cond_ir=cond, body_ir=body, cond_nconsts=cond_nconsts,
                        body_nconsts=n_h + n_b + n_bt)
    return outs[:n_c], _tangent_outputs(outs[n_c:], carry_nz, body_ir.out_avals)


def _scan_jvp(primals, tangents, body, num_consts, num_carry, length, reverse):
    consts, carry, xs = _split_scan(primals, num_consts, num_carry)
    consts_t, carry_t, xs_t = _split_scan(tangents, num_consts, num_carry)
    const_nz, xs_nz = _nonzero(consts_t), _nonzero(xs_t)
    n_ys = len(body.outvars) - num_carry
    carry_nz = _loop_fixed_point(_jvp_flags, body, const_nz, _nonzero(carry_t), xs_nz, n_ys)
    jbody, out_nz = jvp_ir(body, const_nz + carry_nz + xs_nz,
                           instantiate=carry_nz + [False] * n_ys)
    jbody, hoisted = hoist_consts(jbody)
    ys_nz = out_nz[num_carry:]
    # jvp_ir order: hoisted, consts, carry, xs, consts_t, carry_t, xs_t -> consts | carry | xs,
    # and outputs carry, ys, carry_t, ys_t -> carry | ys.
    sizes = (len(hoisted), num_consts, num_carry, len(xs), sum(const_nz), sum(carry_nz), sum(xs_nz))
    h, k, c, x, kt, ct, xt = _groups(*sizes)
    oc, oy, oct_, oyt = _groups(num_carry, n_ys, sum(carry_nz), sum(ys_nz))
    jbody = _permuted(jbody, h + k + kt + c + ct + x + xt, oc + oct_ + oy + oyt)
    carry_t_in = [instantiate_zeros(t) for t, nz in zip(carry_t, carry_nz) if nz]
    outs = scan_p.bind(*hoisted, *consts, *[t for t in consts_t if type(t) is not Zero],
                       *carry, *carry_t_in, *xs, *[t for t in xs_t if type(t) is not Zero],
                       body=jbody, num_consts=sizes[0] + sizes[1] + sizes[4],
                       num_carry=num_carry + sizes[5], length=length, reverse=reverse)
    n_ct = sum(carry_nz)
    carry_out, carry_t_out = outs[:num_carry], outs[num_carry:num_carry + n_ct]
    ys, ys_t = outs[num_carry + n_ct:num_carry + n_ct + n_ys], outs[num_carry + n_ct + n_ys:]
    out_avals = _scan_rule(*[get_aval(v) for v in primals], body=body, num_consts=num_consts,
                           num_carry=num_carry, length=length, reverse=reverse)
    tangents_out = (_tangent_outputs(carry_t_out, carry_nz, out_avals[:num_carry])
                    + _tangent_outputs(ys_t, ys_nz, out_avals[num_carry:]))
    return carry_out + ys, tangents_out


# ---------------------------------------------------------------- partial evaluation
# Rules take (trace, args, params): known values are the parent's, unknown ones are the
# trace's tracers. Known work is bound on the parent; unknown work is staged with
# ``trace.stage``, the known values it reads becoming residuals.

def _cond_partial_eval(trace, args, params):
    branches = params["branches"]
    index, ops = args[0], args[1:]
    if not trace.is_known(index):
        return trace.stage(cond_p, args, params)
    unknowns = [not trace.is_known(x) for x in ops]
    out_uk = [any(col) for col in zip(*[partial_eval_ir(br, unknowns)[2] for br in branches])]
    splits = [partial_eval_ir(br, unknowns, instantiate=out_uk) for br in branches]
    n_known_out = sum(not u for u in out_uk)
    # Every branch must return the same residuals: each returns its own, and zeros in the
    # slots of the other branches' residuals.
    res_avals = [[v.aval for v in known.ir.outvars[n_known_out:]] for known, *_ in splits]
    known_ops = [x for x, u in zip(ops, unknowns) if not u]
    known_avals = [get_aval(x) for x in known_ops]

    def known_branch(i):
        known = splits[i][0]

        def fun(*xs):
            outs = eval_ir(known.ir, known.consts, list(xs))
            res = iter(outs[n_known_out:])
            slots = [next(res) if j == i else zeros_like_aval(a)
                     for j, avals in enumerate(res_avals) for a in avals]
            return outs[:n_known_out] + slots
        return trace_to_ir(fun, known_avals, description="the known part of a cond branch")[0]

    kirs, kconsts = join_consts([known_branch(i) for i in range(len(branches))])
    with trace_state.set_current(trace.parent):
        known_outs = cond_p.bind(index, *kconsts, *known_ops, branches=tuple(kirs))
    residuals = known_outs[n_known_out:]
    # Each unknown branch takes all residual slots (ignoring the others') and the unknown ops.
    uirs = []
    for i, (_, unknown, _, num_res) in enumerate(splits):
        uir = unknown.ir
        slots = [Var(a) for avals in res_avals[:i] for a in avals]
        slots += uir.invars[:num_res]
        slots += [Var(a) for avals in res_avals[i + 1:] for a in avals]
        uirs.append(IR([], slots + uir.invars[num_res:], uir.eqns, uir.outvars))
    unknown_ops = [x for x, u in zip(ops, unknowns) if u]
    staged = trace.stage(cond_p, [index, *residuals, *unknown_ops], dict(branches=tuple(uirs)))
    known_it, unknown_it = iter(known_outs[:n_known_out]), iter(staged)
    return [next(unknown_it) if u else next(known_it) for u in out_uk]


def _pe_flags(ir, flags, instantiate):
    return partial_eval_ir(ir, flags, instantiate=instantiate)[2]


def _scan_partial_eval(trace, args, params):
    body, num_consts, num_carry = params["body"], params["num_consts"], params["num_carry"]
    length, reverse = params["length"], params["reverse"]
    consts, carry, xs = _split_scan(args, num_consts, num_carry)
    const_uk = [not trace.is_known(x) for x in consts]
    xs_uk = [not trace.is_known(x) for x in xs]
    n_ys = len(body.outvars) - num_carry
    carry_uk = _loop_fixed_point(_pe_flags, body, const_uk,
                                 [not trace.is_known(x) for x in carry], xs_uk, n_ys)
    known, unknown, out_uk, num_res = partial_eval_ir(
        body, const_uk + carry_uk + xs_uk, instantiate=carry_uk + [False] * n_ys)
    n_known_out = sum(not u for u in out_uk)
    n_kc = sum(not u for u in const_uk)

    # Residuals that do not change between iterations (a known const, a constant) are
    # passed to the unknown scan once, a residual that is a known x is passed as that xs
    # operand; the others are stacked as extra ys of the known scan.
    kir = known.ir
    known_consts = [x for x, u in zip(consts, const_uk) if not u]
    known_carry = [x for x, u in zip(carry, carry_uk) if not u]
    known_xs = [x for x, u in zip(xs, xs_uk) if not u]
    n_kcarry = len(known_carry)
    where = {id(v): known.consts[j] for j, v in enumerate(kir.constvars)}
    where.update({id(v): known_consts[j] for j, v in enumerate(kir.invars[:n_kc])})
    xs_where = {id(v): known_xs[j] for j, v in enumerate(kir.invars[n_kc + n_kcarry:])}
    invariant, per_iter = [], []   # (residual index, value), (residual index, stacked or None)
    for r, v in enumerate(kir.outvars[n_known_out:]):
        if not isinstance(v, Var):
            invariant.append((r, v.value))
        elif id(v) in where:
            invariant.append((r, where[id(v)]))
        else:
            per_iter.append((r, xs_where.get(id(v))))
    stack = [r for r, x in per_iter if x is None]
    kbody = IR(kir.constvars, kir.invars, kir.eqns,
               kir.outvars[:n_known_out] + [kir.outvars[n_known_out + r] for r in stack])
    kbody, hoisted = hoist_consts(ClosedIR(kbody, known.consts))
    with trace_state.set_current(trace.parent):
        known_outs = scan_p.bind(*hoisted, *known_consts, *known_carry, *known_xs, body=kbody,
                                 num_consts=len(hoisted) + n_kc, num_carry=n_kcarry,
                                 length=length, reverse=reverse)
    stacked = iter(known_outs[n_known_out:])
    res_xs = [next(stacked) if x is None else x for _, x in per_iter]

    # The unknown scan: consts = invariant residuals + unknown consts; carry = the unknown
    # carries; xs = stacked residuals + unknown xs.
    uir = unknown.ir
    res_vars, uk_vars = uir.invars[:num_res], uir.invars[num_res:]
    n_uc, n_ucarry = sum(const_uk), sum(carry_uk)
    uk_consts_v, uk_carry_v, uk_xs_v = (uk_vars[:n_uc], uk_vars[n_uc:n_uc + n_ucarry],
                                        uk_vars[n_uc + n_ucarry:])
    ubody = IR([], [res_vars[r] for r, _ in invariant] + uk_consts_v + uk_carry_v
               + [res_vars[r] for r, _ in per_iter] + uk_xs_v, uir.eqns, uir.outvars)
    operands = ([val for _, val in invariant] + [x for x, u in zip(consts, const_uk) if u]
                + [x for x, u in zip(carry, carry_uk) if u]
                + res_xs + [x for x, u in zip(xs, xs_uk) if u])
    staged = trace.stage(scan_p, operands, dict(
        body=ubody, num_consts=len(invariant) + n_uc, num_carry=n_ucarry, length=length,
        reverse=reverse))
    known_it, unknown_it = iter(known_outs[:n_known_out]), iter(staged)
    return [next(unknown_it) if u else next(known_it) for u in out_uk]


def _while_partial_eval(trace, args, params):
    raise WhileLoopReverseModeError(
        "Reverse-mode differentiation does not work for lax.while_loop or lax.fori_loop "
        "with traced (non-static) bounds: the number of iterations, and so what the backward "
        "pass must replay, is not known ahead of time.",
        hint="Use lax.scan, or lax.fori_loop with Python-int bounds (a scan), for grad/vjp; "
             "forward mode (jvp, jacfwd) does work through while_loop.")


# ---------------------------------------------------------------- transposition
# Operands arriving as UndefinedPrimal are the linear ones; the others are residuals.

def _linear_sub_ir(ir: IR, linear: Sequence[bool], res_avals, ct_avals, description):
    """Trace ``fun(residuals, cts) -> cts of ir's linear inputs`` into a closed IR."""
    def backward(*xs):
        res, cts = iter(xs[:len(res_avals)]), list(xs[len(res_avals):])
        args = [UndefinedPrimal(v.aval) if lin else next(res) for v, lin in zip(ir.invars, linear)]
        cts_in = backward_pass(ir, [], args, cts)
        return [instantiate_zeros(c) for c, lin in zip(cts_in, linear) if lin]
    return trace_to_ir(backward, list(res_avals) + list(ct_avals), description=description)[0]


def _cond_transpose(cts, index, *ops, branches):
    linear = [type(x) is UndefinedPrimal for x in ops]
    res = [x for x in ops if type(x) is not UndefinedPrimal]
    cts = [instantiate_zeros(c) for c in cts]
    res_avals = [get_aval(x) for x in res]
    ct_avals = [get_aval(c) for c in cts]
    irs, consts = join_consts([_linear_sub_ir(br, linear, res_avals, ct_avals,
                                              "the transpose of a cond branch")
                               for br in branches])
    outs = iter(cond_p.bind(index, *consts, *res, *cts, branches=tuple(irs)))
    return [None] + [next(outs) if lin else None for lin in linear]


def _scan_transpose(cts, *args, body, num_consts, num_carry, length, reverse):
    from .elementwise import add_p
    consts, carry, xs = _split_scan(args, num_consts, num_carry)
    const_lin = [type(x) is UndefinedPrimal for x in consts]
    xs_lin = [type(x) is UndefinedPrimal for x in xs]
    # Every carry of a linear scan is linear (a zeros init may arrive as a plain value).
    res_consts = [x for x, lin in zip(consts, const_lin) if not lin]
    res_xs = [x for x, lin in zip(xs, xs_lin) if not lin]
    ct_carry = [instantiate_zeros(c) for c in cts[:num_carry]]
    ct_ys = [instantiate_zeros(c) for c in cts[num_carry:]]
    lin_const_avals = [x.aval for x, lin in zip(consts, const_lin) if lin]
    carry_avals = body.in_avals[num_consts:num_consts + num_carry]
    x_avals = body.in_avals[num_consts + num_carry:]
    res_x_avals = [a for a, lin in zip(x_avals, xs_lin) if not lin]
    y_avals = body.out_avals[num_carry:]
    n_rc, n_lc = len(res_consts), len(lin_const_avals)

    # One step backwards: (residual consts | const ct sums, carry cts | residual xs, ys cts)
    #                  -> (const ct sums, carry cts | xs cts)
    def step(*vals):
        rc, acc = vals[:n_rc], vals[n_rc:n_rc + n_lc]
        ct_c = vals[n_rc + n_lc:n_rc + n_lc + num_carry]
        rx = vals[n_rc + n_lc + num_carry:n_rc + n_lc + num_carry + len(res_x_avals)]
        ct_y = vals[n_rc + n_lc + num_carry + len(res_x_avals):]
        rc_it, rx_it = iter(rc), iter(rx)
        step_args = ([UndefinedPrimal(v.aval) if lin else next(rc_it)
                      for v, lin in zip(body.invars[:num_consts], const_lin)]
                     + [UndefinedPrimal(a) for a in carry_avals]
                     + [UndefinedPrimal(a) if lin else next(rx_it)
                        for a, lin in zip(x_avals, xs_lin)])
        cts_in = backward_pass(body, [], step_args, list(ct_c) + list(ct_y))
        ct_consts = [instantiate_zeros(c) for c, lin in zip(cts_in[:num_consts], const_lin) if lin]
        ct_carry_in = [instantiate_zeros(c) for c in cts_in[num_consts:num_consts + num_carry]]
        ct_xs = [instantiate_zeros(c) for c, lin in zip(cts_in[num_consts + num_carry:], xs_lin)
                 if lin]
        return [add_p.bind(a, c) for a, c in zip(acc, ct_consts)] + ct_carry_in + ct_xs

    in_avals = ([get_aval(x) for x in res_consts] + [a.strong() for a in lin_const_avals]
                + [a.strong() for a in carry_avals] + res_x_avals + [a.strong() for a in y_avals])
    tbody, hoisted = hoist_consts(trace_to_ir(step, in_avals,
                                              description="the transpose of a scan body")[0])
    acc0 = [zeros_like_aval(a.strong()) for a in lin_const_avals]
    outs = scan_p.bind(*hoisted, *res_consts, *acc0, *ct_carry, *res_xs, *ct_ys, body=tbody,
                       num_consts=len(hoisted) + n_rc, num_carry=n_lc + num_carry,
                       length=length, reverse=not reverse)
    ct_consts_it = iter(outs[:n_lc])
    ct_carry = outs[n_lc:n_lc + num_carry]
    ct_xs_it = iter(outs[n_lc + num_carry:])
    return ([next(ct_consts_it) if lin else None for lin in const_lin]
            + [c if type(x) is UndefinedPrimal else None for x, c in zip(carry, ct_carry)]
            + [next(ct_xs_it) if lin else None for lin in xs_lin])


cond_p.jvp = _cond_jvp
while_p.jvp = _while_jvp
scan_p.jvp = _scan_jvp
cond_p.partial_eval = _cond_partial_eval
scan_p.partial_eval = _scan_partial_eval
while_p.partial_eval = _while_partial_eval
cond_p.transpose = _cond_transpose
scan_p.transpose = _scan_transpose
