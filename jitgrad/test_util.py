"""Testing helpers for users' own code, with JAX's names: ``check_grads`` and friends.

``check_grads(f, args, order)`` checks a function's derivatives numerically, the way one
tests a custom JVP or VJP rule: forward mode against central finite differences, and
reverse mode against forward mode by the dot-product identity
``<J v, u> == <v, J^T u>`` for random ``v`` and ``u``; then the same for the derivative
functions themselves, up to ``order``. Use float64 (``jax_enable_x64``) for tight checks.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .core import dtypes
from .core.pytree import tree_flatten, tree_map

_DEFAULT_TOL = {np.dtype(np.float16): 5e-2, np.dtype(np.float32): 2e-2,
                np.dtype(np.float64): 1e-5}
_DEFAULT_EPS = {np.dtype(np.float16): 1e-2, np.dtype(np.float32): 1e-3,
                np.dtype(np.float64): 1e-4}


def _np(x: Any) -> np.ndarray:
    return np.asarray(x)


def _dtype_of(tree: Any) -> np.dtype:
    """The lowest-precision float dtype among the leaves (it sets the default tolerances)."""
    floats = [np.asarray(x).dtype for x in tree_flatten(tree)[0]
              if dtypes.is_float(np.asarray(x).dtype)]
    return min(floats, key=lambda d: d.itemsize) if floats else np.dtype(np.float64)


def _is_float(x: Any) -> bool:
    return dtypes.is_float(np.asarray(x).dtype)


def _rand_like(rng: np.random.RandomState, x: Any) -> Any:
    """A random standard-normal tangent for a float leaf; integer leaves get no tangent (0)."""
    a = _np(x)
    if not _is_float(a):
        return np.zeros(a.shape, a.dtype)
    return rng.standard_normal(a.shape).astype(a.dtype)


def _axpy(scale: float, xs: Any, ys: Any) -> Any:
    """``ys + scale * xs`` leaf-wise, float leaves only; computed in numpy."""
    def f(x, y):
        y = _np(y)
        if not _is_float(y):
            return y
        return (y + scale * _np(x)).astype(y.dtype)
    return tree_map(f, xs, ys)


def _inner(xs: Any, ys: Any) -> float:
    total = 0.0
    for x, y in zip(tree_flatten(xs)[0], tree_flatten(ys)[0]):
        if _is_float(x) and _is_float(y):
            total += float(np.sum(_np(x).astype(np.float64) * _np(y).astype(np.float64)))
    return total


def check_close(actual: Any, expected: Any, atol: float | None = None,
                rtol: float | None = None, err_msg: str = "") -> None:
    """Assert two pytrees are leaf-wise close (tolerances default by dtype)."""
    a_leaves, a_tree = tree_flatten(actual)
    e_leaves, e_tree = tree_flatten(expected)
    if a_tree != e_tree:
        raise AssertionError(f"{err_msg}: tree structures differ: {a_tree} vs {e_tree}")
    for a, e in zip(a_leaves, e_leaves):
        a, e = _np(a), _np(e)
        tol = _DEFAULT_TOL.get(np.result_type(a, e) if _is_float(a) else np.dtype(np.float64),
                               1e-5)
        np.testing.assert_allclose(a.astype(np.float64) if _is_float(a) else a,
                                   e.astype(np.float64) if _is_float(e) else e,
                                   atol=tol if atol is None else atol,
                                   rtol=tol if rtol is None else rtol, err_msg=err_msg)


def numerical_jvp(f: Callable, primals: Sequence[Any], tangents: Sequence[Any],
                  eps: float | None = None) -> Any:
    """Central finite difference ``(f(x + eps v) - f(x - eps v)) / (2 eps)``, in numpy."""
    eps = _DEFAULT_EPS.get(_dtype_of(primals), 1e-4) if eps is None else eps
    up = f(*_axpy(eps, tangents, primals))
    down = f(*_axpy(-eps, tangents, primals))

    def diff(u, d):
        u, d = _np(u), _np(d)
        if not _is_float(u):
            return np.zeros(u.shape, np.float64)
        return ((u.astype(np.float64) - d.astype(np.float64)) / (2 * eps))
    return tree_map(diff, up, down)


def check_jvp(f: Callable, f_jvp: Callable, args: Sequence[Any], atol=None, rtol=None,
              eps=None, err_msg: str = "") -> None:
    """``f_jvp(args, tangents)`` against ``f`` and finite differences along random tangents."""
    rng = np.random.RandomState(0)
    tangents = tree_map(lambda x: _rand_like(rng, x), tuple(args))
    out, t_out = f_jvp(tuple(args), tangents)
    check_close(out, f(*args), atol, rtol, f"{err_msg} primal output")
    expected = numerical_jvp(f, tuple(args), tangents, eps)
    tol = _grad_tol(args, atol, rtol)
    check_close(tree_map(lambda t: _np(t).astype(np.float64) if _is_float(t) else
                         np.zeros(np.shape(t), np.float64), t_out),
                expected, tol[0], tol[1], f"{err_msg} tangent output vs finite differences")


def check_vjp(f: Callable, f_vjp: Callable, args: Sequence[Any], atol=None, rtol=None,
              eps=None, err_msg: str = "") -> None:
    """``f_vjp(*args) -> (out, pullback)``: ``<J v, u> == <v, pullback(u)>`` for random v, u."""
    rng = np.random.RandomState(0)
    out, pullback = f_vjp(*args)
    check_close(out, f(*args), atol, rtol, f"{err_msg} primal output")
    tangents = tree_map(lambda x: _rand_like(rng, x), tuple(args))
    jv = numerical_jvp(f, tuple(args), tangents, eps)
    cts = tree_map(lambda x: _rand_like(rng, x), out)
    ct_in = pullback(cts)
    ip = _inner(tangents, ct_in)
    ip_expected = _inner(jv, cts)
    atol_, rtol_ = _grad_tol(args, atol, rtol)
    scale = max(1.0, abs(ip_expected))
    if not abs(ip - ip_expected) <= atol_ * scale + rtol_ * abs(ip_expected):
        raise AssertionError(f"{err_msg}: VJP does not match finite differences: "
                             f"<v, J^T u> = {ip!r} but <J v, u> = {ip_expected!r}")


def _grad_tol(args, atol, rtol) -> tuple[float, float]:
    tol = _DEFAULT_TOL.get(_dtype_of(args), 1e-5)
    return (tol if atol is None else atol, tol if rtol is None else rtol)


def check_grads(f: Callable, args: Sequence[Any], order: int,
                modes: Sequence[str] = ("fwd", "rev"), atol: float | None = None,
                rtol: float | None = None, eps: float | None = None) -> None:
    """Check ``f``'s derivatives up to ``order`` (``jax.test_util.check_grads``).

    ``modes``: "fwd" checks ``jvp`` against finite differences, "rev" checks ``vjp``
    against finite differences with the dot-product test. For ``order > 1`` the check is
    repeated on the derivative functions (``jvp`` of ``f`` as a function of primals and
    tangents; the pullback of ``f`` applied to its own output as cotangent). Raises
    ``AssertionError`` describing which derivative failed.
    """
    from .transforms.ad_api import jvp, vjp
    for m in modes:
        if m not in ("fwd", "rev"):
            raise ValueError(f"check_grads: unknown mode {m!r}; use 'fwd' and/or 'rev'")
    args = tuple(args)

    def check(fun: Callable, fun_args: tuple, k: int, what: str) -> None:
        if "fwd" in modes:
            name = f"JVP of {what}" if what else "JVP"
            check_jvp(fun, lambda p, t: jvp(fun, p, t), fun_args, atol, rtol, eps, name)
            if k > 1:
                def fun_jvp(primals, tangents):
                    return jvp(fun, primals, tangents)
                check(fun_jvp, (fun_args, fun_args), k - 1, name)
        if "rev" in modes:
            name = f"VJP of {what}" if what else "VJP"
            check_vjp(fun, lambda *a: vjp(fun, *a), fun_args, atol, rtol, eps, name)
            if k > 1:
                def fun_vjp(*primals):
                    out, pullback = vjp(fun, *primals)
                    return pullback(out)
                check(fun_vjp, fun_args, k - 1, name)

    check(f, args, order, "")
