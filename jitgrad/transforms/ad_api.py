"""The user-facing differentiation API, with JAX's names, signatures and errors.

``jvp``, ``linearize``, ``vjp``, ``grad``, ``value_and_grad``, ``jacfwd``, ``jacrev``,
``hessian`` and ``linear_transpose``, over pytrees of arguments. They are built from the
three transformations: ``jvp_flat`` (forward mode), ``linearize_flat`` (JVP over partial
evaluation) and ``backward_pass`` (transposition of the linear IR).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np

from ..core.abstract import ShapedArray
from ..core.array import Array, ArrayImpl
from ..core.errors import DTypeError, InvalidArgumentError, ShapeError
from ..core.pytree import tree_flatten, tree_structure, tree_unflatten
from ..core.trace import eval_ir, get_aval
from ..ops.elementwise import convert_element_type_p
from ..ops.layout import reshape_p, slice_p, transpose_p
from .jvp import Zero, instantiate_zeros, is_float, jvp_flat, zeros_like_aval
from .partial_eval import linearize_flat
from .transpose import UndefinedPrimal, backward_pass

_PY_SCALARS = (int, float, bool)


def _name(fun: Callable) -> str:
    return getattr(fun, "__name__", type(fun).__name__)


def _as_value(x: Any, what: str) -> Any:
    """A pytree leaf as a jitgrad array (Python scalars become weakly typed ones, as in JAX)."""
    if isinstance(x, Array):
        return x
    if isinstance(x, _PY_SCALARS):
        aval = get_aval(x)
        return ArrayImpl(np.asarray(x, aval.dtype), aval.weak_type)
    if isinstance(x, (np.ndarray, np.generic)):
        from ..core.trace import to_numpy
        return ArrayImpl(np.array(to_numpy(x)))
    raise InvalidArgumentError(
        f"{what} has type {type(x).__name__}, which is not a valid jitgrad value",
        hint="Differentiate with respect to arrays or Python numbers (pytrees of them); "
             "close over other values or use argnums to pick the differentiated arguments.")


def _flatten_values(tree: Any, what: str) -> tuple[list[Any], Any]:
    leaves, treedef = tree_flatten(tree)
    return [_as_value(x, what) for x in leaves], treedef


def _split_aux(out: Any, fname: str, has_aux: bool):
    if not has_aux:
        return out, None
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise InvalidArgumentError(
            f"{fname} was differentiated with has_aux=True, so it must return a pair "
            f"(output, auxiliary_data), but it returned {type(out).__name__}",
            hint="Return `out, aux` from the function, or drop has_aux=True.")
    return out[0], out[1]


def _flat_fun(fun: Callable, in_tree, has_aux: bool, store: dict) -> Callable:
    """``fun`` on flat leaves, returning ``(outs, aux)`` if ``has_aux``; the output
    structure is left in ``store``."""
    def flat(*leaves):
        args = tree_unflatten(in_tree, list(leaves))
        out, aux = _split_aux(fun(*args), _name(fun), has_aux)
        out_leaves, store["out_tree"] = tree_flatten(out)
        outs = [_as_value(x, f"an output of {_name(fun)}") for x in out_leaves]
        return (outs, aux) if has_aux else outs
    return flat


def _zeros_like(x: Any) -> Any:
    return zeros_like_aval(get_aval(x).strong())


# --------------------------------------------------------------------------- jvp / linearize

def jvp(fun: Callable, primals: Sequence[Any], tangents: Sequence[Any], has_aux: bool = False):
    """Forward mode: ``(fun(*primals), J(primals) @ tangents)`` (``jax.jvp``).

    ``primals`` and ``tangents`` are tuples (or lists) of equal pytree structure; each
    tangent has its primal's shape and dtype. With ``has_aux=True``, ``fun`` returns
    ``(out, aux)`` and the result is ``(out, out_tangent, aux)``. Tangents of integer
    primals are ignored, and integer outputs get integer zeros (JAX uses float0 there).
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("primal and tangent arguments to jitgrad.jvp must be tuples or lists; "
                        f"found {type(primals).__name__} and {type(tangents).__name__}.")
    p_leaves, p_tree = _flatten_values(tuple(primals), "a primal argument of jvp")
    t_leaves, t_tree = _flatten_values(tuple(tangents), "a tangent argument of jvp")
    if p_tree != t_tree:
        raise TypeError("primal and tangent arguments to jitgrad.jvp must have the same tree "
                        f"structure; primals have tree structure {p_tree} whereas tangents "
                        f"have tree structure {t_tree}.")
    ts = []
    for p, t in zip(p_leaves, t_leaves):
        pa, ta = get_aval(p), get_aval(t)
        if pa.shape != ta.shape:
            raise ShapeError("jvp called with different primal and tangent shapes; got primal "
                             f"shape {pa.shape} and tangent shape {ta.shape}")
        if not is_float(pa):
            ts.append(Zero(pa.strong()))
            continue
        if ta.dtype != pa.dtype and not ta.weak_type:
            raise DTypeError(
                "primal and tangent arguments to jitgrad.jvp do not match; dtypes must be "
                f"equal. Got primal dtype {pa.dtype.name} and tangent dtype {ta.dtype.name}.")
        if ta.dtype != pa.dtype:
            t = convert_element_type_p.bind(t, new_dtype=pa.dtype, weak_type=False)
        ts.append(t)
    store: dict = {}
    outs, t_outs, *aux = jvp_flat(_flat_fun(fun, p_tree, has_aux, store), p_leaves, ts,
                                  description=f"jvp({_name(fun)})", has_aux=has_aux)
    t_outs = [_zeros_like(o) if type(t) is Zero else t for o, t in zip(outs, t_outs)]
    out_tree = store["out_tree"]
    result = (tree_unflatten(out_tree, outs), tree_unflatten(out_tree, t_outs))
    return result + tuple(aux)


def linearize(fun: Callable, *primals, has_aux: bool = False):
    """``(fun(*primals), f_jvp)`` where ``f_jvp(*tangents)`` is the JVP at ``primals``.

    The primal computation runs now; ``f_jvp`` evaluates the saved linear program, so
    calling it repeatedly does not redo the primal work (``jax.linearize``).
    """
    p_leaves, p_tree = _flatten_values(tuple(primals), "an argument of linearize")
    has_t = [is_float(get_aval(p)) for p in p_leaves]
    store: dict = {}
    outs, linear, out_nonzero, *aux = linearize_flat(
        _flat_fun(fun, p_tree, has_aux, store), p_leaves, has_t,
        description=f"linearize({_name(fun)})", has_aux=has_aux)
    out_tree = store["out_tree"]
    out_avals = [get_aval(o).strong() for o in outs]

    def f_jvp(*tangents):
        t_leaves, t_tree = _flatten_values(tuple(tangents), "a tangent")
        if t_tree != p_tree:
            raise TypeError(f"linearize's f_jvp expects tangents with the structure of the "
                            f"primals, {p_tree}, got {t_tree}")
        ins = [t for t, h in zip(t_leaves, has_t) if h]
        lin_outs = iter(eval_ir(linear.ir, linear.consts, ins))
        flat = [next(lin_outs) if nz else zeros_like_aval(a)
                for nz, a in zip(out_nonzero, out_avals)]
        return tree_unflatten(out_tree, flat)

    out = tree_unflatten(out_tree, outs)
    return (out, f_jvp) + tuple(aux)


# --------------------------------------------------------------------------- vjp

def vjp(fun: Callable, *primals, has_aux: bool = False):
    """Reverse mode: ``(fun(*primals), pullback)`` with ``pullback(ct) = ct @ J`` (``jax.vjp``).

    ``pullback`` takes a cotangent with the structure, shapes and dtypes of the output and
    returns a tuple with one cotangent per primal argument. Integer arguments get integer
    zeros (JAX uses float0). With ``has_aux=True`` the result is ``(out, pullback, aux)``.
    """
    p_leaves, p_tree = _flatten_values(tuple(primals), "an argument of vjp")
    out, pullback, aux = _vjp_flat(fun, p_leaves, p_tree, has_aux)
    return (out, pullback, aux) if has_aux else (out, pullback)


def _vjp_flat(fun: Callable, p_leaves: list, p_tree, has_aux: bool):
    has_t = [is_float(get_aval(p)) for p in p_leaves]
    store: dict = {}
    outs, linear, out_nonzero, *aux = linearize_flat(
        _flat_fun(fun, p_tree, has_aux, store), p_leaves, has_t,
        description=f"vjp({_name(fun)})", has_aux=has_aux)
    out_tree = store["out_tree"]
    out_avals = [get_aval(o) for o in outs]
    in_avals = [get_aval(p).strong() for p in p_leaves]

    def pullback(ct):
        ct_leaves, ct_tree = tree_flatten(ct)
        if ct_tree != out_tree:
            raise TypeError(
                f"Tree structure of cotangent input {ct_tree}, does not match structure of "
                f"primal output {out_tree}.")
        cts = []
        for c, a in zip(ct_leaves, out_avals):
            c = _as_value(c, "a cotangent")
            ca = get_aval(c)
            if ca.shape != a.shape:
                raise ShapeError(
                    f"Shape of cotangent input to vjp pullback function {ca.shape} must be the "
                    f"same as the shape of corresponding primal output {a.shape}.",
                    hint="Pass a cotangent with the output's shape (e.g. jnp.ones_like(out)).")
            cts.append(c)
        lin_cts = [c for c, nz in zip(cts, out_nonzero) if nz]
        args = [UndefinedPrimal(v.aval) for v in linear.ir.invars]
        lin_in = iter(backward_pass(linear.ir, linear.consts, args, lin_cts))
        flat = [instantiate_zeros(next(lin_in)) if h else zeros_like_aval(a)
                for h, a in zip(has_t, in_avals)]
        return tuple(tree_unflatten(p_tree, flat))

    return tree_unflatten(out_tree, outs), pullback, (aux[0] if has_aux else None)


# --------------------------------------------------------------------------- grad

def _argnums_tuple(argnums, nargs: int, fname: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for a in nums:
        if not isinstance(a, int) or not -nargs <= a < nargs:
            raise InvalidArgumentError(
                f"differentiation of {fname} requested with respect to argnums={argnums}, but "
                f"it was called with only {nargs} positional argument(s)",
                hint="argnums counts positional arguments from 0.")
    return tuple(a % nargs for a in nums)


def _check_input_dtypes(fname: str, diff_args, argnums, allow_int: bool, what: str) -> None:
    if allow_int:
        return
    for i, arg in zip(argnums, diff_args):
        for leaf in tree_flatten(arg)[0]:
            aval = get_aval(_as_value(leaf, f"argument {i} of {fname}"))
            if not is_float(aval):
                raise DTypeError(
                    f"{what} requires real-valued (floating-point) inputs, but argument {i} of "
                    f"{fname} has dtype {aval.dtype.name} ({aval.str_short()})",
                    hint="Convert it with .astype(jnp.float32), choose other argnums, or pass "
                         "allow_int=True to get zero gradients for integer inputs.")


def value_and_grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
                   holomorphic: bool = False, allow_int: bool = False,
                   reduce_axes: Sequence = ()) -> Callable:
    """``fun`` and its gradient together: ``(value, grad)``, or ``((value, aux), grad)``.

    See ``grad`` for the arguments.
    """
    if holomorphic:
        raise NotImplementedError("holomorphic=True needs complex dtypes, which jitgrad does "
                                  "not have.")
    fname = _name(fun)

    @functools.wraps(fun, updated=())   # not __dict__: fun may be a jit/custom_jvp object
    def value_and_grad_f(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args), fname)
        diff_args = [args[i] for i in nums]
        _check_input_dtypes(fname, diff_args, nums, allow_int, "grad")

        def partial_fun(*dargs):
            full = list(args)
            for i, a in zip(nums, dargs):
                full[i] = a
            return fun(*full, **kwargs)
        partial_fun.__name__ = fname

        leaves, tree = _flatten_values(tuple(diff_args), f"an argument of {fname}")
        out, pullback, aux = _vjp_flat(partial_fun, leaves, tree, has_aux)
        out_leaves = tree_flatten(out)[0]
        if len(out_leaves) != 1 or get_aval(out_leaves[0]).shape != ():
            shape = (get_aval(out_leaves[0]).shape if len(out_leaves) == 1 else
                     f"a {tree_structure(out)} of {len(out_leaves)} arrays")
            raise ShapeError(
                f"Gradient only defined for scalar-output functions: grad({fname}) needs "
                f"{fname} to return a scalar, but its output had shape: {shape}.",
                hint="Reduce the output to a scalar (e.g. .sum() or jnp.mean), or use "
                     "jitgrad.jacrev / jitgrad.jacfwd for the Jacobian, or jitgrad.vjp with "
                     "an explicit cotangent.")
        out_aval = get_aval(out_leaves[0])
        if not is_float(out_aval):
            raise DTypeError(
                f"grad requires real-valued (floating-point) outputs, but {fname} returned "
                f"{out_aval.str_short()}",
                hint="Return a floating-point scalar (convert with .astype(jnp.float32)).")
        ct = tree_unflatten(tree_structure(out), [ArrayImpl(np.ones((), out_aval.dtype))])
        g = pullback(ct)
        g = g[0] if isinstance(argnums, int) else tuple(g)
        return ((out, aux), g) if has_aux else (out, g)

    return value_and_grad_f


def grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
         holomorphic: bool = False, allow_int: bool = False,
         reduce_axes: Sequence = ()) -> Callable:
    """The gradient of a scalar-valued ``fun`` with respect to argument(s) ``argnums``.

    ``grad(f)(x)`` has the structure of ``x``; with a tuple ``argnums`` it is a tuple of
    gradients, one per listed argument. With ``has_aux=True``, ``fun`` returns
    ``(value, aux)`` and ``grad`` returns ``(gradient, aux)``. Integer inputs are an error
    unless ``allow_int=True`` (their gradient is zero). Composes with ``jit``, ``vmap``
    and itself (``grad(grad(f))``).
    """
    vg = value_and_grad(fun, argnums, has_aux, holomorphic, allow_int)

    @functools.wraps(fun, updated=())   # not __dict__: fun may be a jit/custom_jvp object
    def grad_f(*args, **kwargs):
        if has_aux:
            (_, aux), g = vg(*args, **kwargs)
            return g, aux
        _, g = vg(*args, **kwargs)
        return g

    return grad_f


# --------------------------------------------------------------------------- Jacobians

def _std_basis(leaves: Sequence[Any]) -> list[Any]:
    """The identity, split into one batch of basis tangents per leaf: ``(n,) + leaf.shape``."""
    avals = [get_aval(x) for x in leaves]
    sizes = [a.size for a in avals]
    total = sum(sizes)
    dtype = np.result_type(*[a.dtype for a in avals]) if avals else np.float32
    eye = np.eye(total, dtype=dtype)
    out, start = [], 0
    for a, n in zip(avals, sizes):
        block = eye[:, start:start + n].reshape((total,) + a.shape).astype(a.dtype)
        out.append(ArrayImpl(block))
        start += n
    return out


def _check_float_inputs(fname: str, what: str, leaves: Sequence[Any]) -> None:
    for x in leaves:
        a = get_aval(x)
        if not is_float(a):
            raise DTypeError(f"{what} requires real-valued (floating-point) inputs, but an "
                             f"argument of {fname} has dtype {a.dtype.name}",
                             hint="Convert it with .astype(jnp.float32) or choose other argnums.")


def _reshape(x: Any, shape: tuple) -> Any:
    shape = tuple(int(d) for d in shape)
    if get_aval(x).shape == shape:
        return x
    return reshape_p.bind(x, new_sizes=shape, dimensions=None)


def _moveaxis_front_to_back(x: Any, n_front: int) -> Any:
    """Move the first ``n_front`` axes of ``x`` to the end."""
    nd = get_aval(x).ndim
    perm = tuple(range(n_front, nd)) + tuple(range(n_front))
    return x if perm == tuple(range(nd)) else transpose_p.bind(x, permutation=perm)


def _rows(x: Any, start: int, stop: int) -> Any:
    """``x[start:stop]`` (along the first axis)."""
    shape = get_aval(x).shape
    return slice_p.bind(x, start_indices=(int(start),) + (0,) * (len(shape) - 1),
                        limit_indices=(int(stop),) + tuple(shape[1:]),
                        strides=(1,) * len(shape))


def jacfwd(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
           holomorphic: bool = False) -> Callable:
    """The Jacobian of ``fun`` by forward mode (``vmap`` of ``jvp`` over a basis).

    For an output leaf of shape ``out`` and an input leaf of shape ``in`` the block has
    shape ``out + in``. The result has the output's structure, with the structure of the
    differentiated argument(s) at each output leaf (``jax.jacfwd``).
    """
    if holomorphic:
        raise NotImplementedError("holomorphic=True needs complex dtypes, which jitgrad does "
                                  "not have.")
    from .batching import vmap
    fname = _name(fun)

    @functools.wraps(fun, updated=())   # not __dict__: fun may be a jit/custom_jvp object
    def jacfun(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args), fname)
        diff_args = tuple(args[i] for i in nums)
        leaves, in_tree = _flatten_values(diff_args, f"an argument of {fname}")
        _check_float_inputs(fname, "jacfwd", leaves)

        def flat_fun(*xs):
            full = list(args)
            for i, a in zip(nums, tree_unflatten(in_tree, list(xs))):
                full[i] = a
            out, aux = _split_aux(fun(*full, **kwargs), fname, has_aux)
            out_leaves, store["out_tree"] = tree_flatten(out)
            return out_leaves, aux

        store: dict = {}

        def push(*basis):
            outs, t_outs, aux = jvp_flat(flat_fun, leaves, list(basis), has_aux=True,
                                         description=f"jacfwd({fname})")
            return [_zeros_like(o) if type(t) is Zero else t for o, t in zip(outs, t_outs)], aux

        basis = _std_basis(leaves)
        if basis and get_aval(basis[0]).shape[0] == 0:
            outs, aux = flat_fun(*leaves)
            t_outs = [zeros_like_aval(ShapedArray((0,) + get_aval(o).shape, get_aval(o).dtype))
                      for o in outs]
        else:
            # The auxiliary data does not depend on the basis: it comes out unbatched.
            t_outs, aux = vmap(push, out_axes=(0, None))(*basis)
        in_avals = [get_aval(x) for x in leaves]
        blocks = []
        for t in t_outs:   # (n_in_total,) + out_shape
            out_shape = get_aval(t).shape[1:]
            per_in, start = [], 0
            for a in in_avals:
                piece = _rows(t, start, start + a.size)
                start += a.size
                piece = _reshape(piece, a.shape + out_shape)
                piece = _moveaxis_front_to_back(piece, len(a.shape))
                per_in.append(piece)
            blocks.append(tree_unflatten(in_tree, per_in))
            if isinstance(argnums, int):
                blocks[-1] = blocks[-1][0]
        jac = tree_unflatten(store["out_tree"], blocks)
        return (jac, aux) if has_aux else jac

    return jacfun


def jacrev(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
           holomorphic: bool = False, allow_int: bool = False) -> Callable:
    """The Jacobian of ``fun`` by reverse mode (``vmap`` of the pullback over a basis).

    Same result layout as ``jacfwd``: blocks of shape ``out + in`` (``jax.jacrev``).
    """
    if holomorphic:
        raise NotImplementedError("holomorphic=True needs complex dtypes, which jitgrad does "
                                  "not have.")
    from .batching import vmap
    fname = _name(fun)

    @functools.wraps(fun, updated=())   # not __dict__: fun may be a jit/custom_jvp object
    def jacfun(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args), fname)
        diff_args = tuple(args[i] for i in nums)
        leaves, in_tree = _flatten_values(diff_args, f"an argument of {fname}")
        if not allow_int:
            _check_float_inputs(fname, "jacrev", leaves)

        def partial_fun(*dargs):
            full = list(args)
            for i, a in zip(nums, dargs):
                full[i] = a
            return fun(*full, **kwargs)
        partial_fun.__name__ = fname

        out, pullback, aux = _vjp_flat(partial_fun, leaves, in_tree, has_aux)
        out_leaves, out_tree = tree_flatten(out)
        basis = _std_basis(out_leaves)

        def pull(*cts):
            return tree_flatten(pullback(tree_unflatten(out_tree, list(cts))))[0]

        n_out = sum(get_aval(o).size for o in out_leaves)
        if n_out == 0:
            cts_in = [zeros_like_aval(ShapedArray((0,) + get_aval(x).shape, get_aval(x).dtype))
                      for x in leaves]
        else:
            cts_in = vmap(pull)(*basis)   # each (n_out_total,) + in_shape
        rows = []   # per output leaf: the flat list of blocks, one per input leaf
        start = 0
        for o in out_leaves:
            oa = get_aval(o)
            row = []
            for c, x in zip(cts_in, leaves):
                piece = _rows(c, start, start + oa.size)
                row.append(_reshape(piece, oa.shape + get_aval(x).shape))
            start += oa.size
            tree_in = tree_unflatten(in_tree, row)
            rows.append(tree_in[0] if isinstance(argnums, int) else tree_in)
        jac = tree_unflatten(out_tree, rows)
        return (jac, aux) if has_aux else jac

    return jacfun


def hessian(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
            holomorphic: bool = False) -> Callable:
    """The Hessian of a scalar ``fun``: ``jacfwd(jacrev(fun))`` (``jax.hessian``)."""
    return jacfwd(jacrev(fun, argnums, has_aux=has_aux, holomorphic=holomorphic), argnums,
                  has_aux=has_aux, holomorphic=holomorphic)


def linear_transpose(fun: Callable, *primals) -> Callable:
    """The transpose of a linear ``fun``, for inputs shaped like ``primals`` (``jax.linear_transpose``).

    ``primals`` are only used for their shapes and dtypes. The returned function maps an
    output cotangent to a tuple of input cotangents.
    """
    from ..core.trace import trace_to_ir
    p_leaves, p_tree = _flatten_values(tuple(primals), "an argument of linear_transpose")
    store: dict = {}
    closed, _ = trace_to_ir(_flat_fun(fun, p_tree, False, store),
                            [get_aval(p).strong() for p in p_leaves],
                            description=f"linear_transpose({_name(fun)})")

    def transposed(ct):
        ct_leaves, ct_tree = tree_flatten(ct)
        if ct_tree != store["out_tree"]:
            raise TypeError(f"linear_transpose: cotangent structure {ct_tree} does not match "
                            f"the output structure {store['out_tree']}")
        args = [UndefinedPrimal(v.aval) for v in closed.ir.invars]
        cts = backward_pass(closed.ir, closed.consts, args, list(ct_leaves))
        return tuple(tree_unflatten(p_tree, [instantiate_zeros(c) for c in cts]))

    return transposed
