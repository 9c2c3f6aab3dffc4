"""Automatic differentiation: jvp, linearize, vjp, grad and friends, against finite differences.

* The sweep: every registered primitive, first and second order, forward and reverse
  (inputs and params in tests/autodiff_cases.py; a primitive without an entry fails).
* The numerically delicate cases (ties, zeros, where+sqrt, large logits, division).
* The API: pytrees, argnums, has_aux, jit composition, custom rules, checkpoint, errors.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import (checkpoint, custom_jvp, custom_vjp, grad, hessian, jacfwd, jacrev, jit,
                     jvp, lax, linearize, make_ir, value_and_grad, vjp, vmap)
from jitgrad.core.ir import IR, ClosedIR
from jitgrad.core.primitive import registry
from jitgrad.core.trace import get_aval
from jitgrad.test_util import check_grads
from jitgrad.transforms import ad

from autodiff_cases import cases

CASES = cases()


def _np(x):
    return np.asarray(x)


def _allclose(a, b, tol=1e-7):
    for x, y in zip(jitgrad.tree.leaves(a), jitgrad.tree.leaves(b)):
        np.testing.assert_allclose(_np(x), _np(y), rtol=tol, atol=tol)


# ============================================================================ the sweep

def _run_fd(case, args, fun):
    tol = case.tol
    check_grads(fun, args, case.order, modes=case.modes, atol=tol, rtol=tol)
    # The same derivatives staged under jit (rules must work on tracers, not only on data).
    out = fun(*args)
    rng = np.random.default_rng(1)
    ct = jitgrad.tree.map(lambda o: rng.standard_normal(np.shape(o)), out)
    if "rev" in case.modes:
        eager = vjp(fun, *args)[1](ct)
        staged = jit(lambda *a: vjp(fun, *a)[1](ct))(*args)
    else:
        eager = jvp(fun, tuple(args), tuple(args))[1]
        staged = jit(lambda *a: jvp(fun, a, a)[1])(*args)
    _allclose(eager, staged, 1e-6 if tol is None else tol)


def _run_zero(args, fun):
    out, t_out = jvp(fun, tuple(args), tuple(np.ones_like(a) for a in args))
    for t in jitgrad.tree.leaves(t_out):
        assert not np.any(_np(t)), "the tangent of a zero-derivative primitive must be zero"
    out, pullback = vjp(fun, *args)
    ct = jitgrad.tree.map(lambda o: np.ones(np.shape(o), _np(o).dtype), out)
    for c in pullback(ct):
        assert not np.any(_np(c)), "the cotangent of a zero-derivative primitive must be zero"


def _run_rule(prim, primals, params):
    tangents = [ad.Zero(get_aval(p)) for p in primals]
    out, t_out = prim.jvp(primals, tangents, **params)
    expected = prim.bind(*primals, **params)
    _allclose(out, expected)
    for t in (t_out if prim.multiple_results else [t_out]):
        assert type(t) is ad.Zero


@pytest.mark.parametrize("name", sorted(registry))
def test_sweep_every_primitive(name, x64):
    prim = registry[name]
    assert prim.jvp is not None, f"primitive {name!r} has no JVP rule (prim.jvp)"
    entry = CASES.get(name)
    if entry is None:
        pytest.fail(f"primitive {name!r} has no entry in tests/autodiff_cases.py: add test inputs "
                    "(and its JVP/transpose rules) so that its derivatives are checked")
    for case in entry:
        rng = np.random.default_rng(zlib.crc32(f"{name}/{case.label}".encode()))
        try:
            if case.kind == "rule":
                _run_rule(prim, *case.make(rng))
            elif case.kind == "zero":
                _run_zero(*case.make(rng))
            else:
                _run_fd(case, *case.make(rng))
        except AssertionError as e:
            raise AssertionError(f"{name} [{case.label or case.kind}]: {e}") from None


def test_linear_primitives_have_transposes():
    linear = ["add", "sub", "neg", "mul", "div", "select_n", "convert_element_type", "copy",
              "broadcast_in_dim", "reshape", "transpose", "squeeze", "rev", "slice", "pad",
              "concatenate", "reduce_sum", "cumsum", "dot_general", "gather", "scatter",
              "dynamic_slice", "dynamic_update_slice", "custom_lin", "remat"]
    assert [n for n in linear if registry[n].transpose is None] == []


# ============================================================================ delicate cases

def test_where_sqrt_at_zero_has_zero_gradient():
    f = lambda x: jnp.where(x > 0, jnp.sqrt(x), 0.)
    assert float(grad(f)(0.)) == 0.0
    assert float(jit(grad(f))(0.)) == 0.0
    g = grad(lambda x: jnp.sum(jnp.where(x > 0, jnp.sqrt(x), 0.)))(jnp.array([0., 4.]))
    np.testing.assert_allclose(_np(g), [0., 0.25])
    # sqrt's own derivative at 0 is still infinite, as in JAX
    assert np.isinf(float(grad(jnp.sqrt)(0.)))
    assert np.isinf(float(jvp(jnp.sqrt, (0.,), (1.,))[1]))


def test_where_log_and_division_at_zero():
    f = lambda x: jnp.where(x > 0, jnp.log(x), 0.)
    assert float(grad(f)(0.)) == 0.0
    g = grad(lambda x: jnp.where(x != 0, 1.0 / x, 0.))
    assert np.isfinite(float(g(2.0)))
    np.testing.assert_allclose(float(g(2.0)), -0.25)


def test_division_derivatives(x64):
    check_grads(lambda x, y: x / y, (np.array([1.5, -2.0]), np.array([0.7, 3.0])), order=2)
    gx, gy = grad(lambda x, y: x / y, argnums=(0, 1))(3.0, 2.0)
    np.testing.assert_allclose([float(gx), float(gy)], [0.5, -0.75])


def test_maximum_ties_split_half_half():
    assert float(grad(lambda x, y: jnp.maximum(x, y))(1.0, 1.0)) == 0.5
    gx, gy = grad(lambda x, y: jnp.minimum(x, y), argnums=(0, 1))(2.0, 2.0)
    assert (float(gx), float(gy)) == (0.5, 0.5)
    assert float(grad(lambda x: jnp.maximum(x, 0.))(0.)) == 0.5      # relu at 0, as in JAX


def test_reduce_max_gives_gradient_to_every_max_equally():
    g = grad(lambda x: jnp.max(x))(jnp.array([1., 3., 2., 3.]))
    np.testing.assert_allclose(_np(g), [0, 0.5, 0, 0.5])
    g = grad(lambda x: jnp.min(x, axis=1).sum())(jnp.array([[1., 1., 2.], [0., 5., 6.]]))
    np.testing.assert_allclose(_np(g), [[0.5, 0.5, 0], [1, 0, 0]])


def test_reduce_prod_with_zeros():
    x = jnp.array([2., 0., 3., 4.])
    np.testing.assert_allclose(_np(grad(jnp.prod)(x)), [0., 24., 0., 0.])
    np.testing.assert_allclose(_np(grad(jnp.prod)(jnp.array([0., 0., 3.]))), [0., 0., 0.])
    h = hessian(jnp.prod)(jnp.array([2., 0., 3.]))
    np.testing.assert_allclose(_np(h), [[0, 3, 0], [3, 0, 2], [0, 2, 0]])   # prod of the others


def test_cumulative_ops_with_zeros_and_ties(x64):
    x = np.array([2., 0., 3., 0.5])
    g = grad(lambda x: jnp.cumprod(x).sum())(x)
    # d/dx_j sum_i prod_{k<=i} x_k, computed without division
    expected = [sum(np.prod([x[k] for k in range(i + 1) if k != j]) for i in range(j, 4))
                for j in range(4)]
    np.testing.assert_allclose(_np(g), expected)
    g = grad(lambda x: lax.cummax(x).sum())(jnp.array([1., 3., 2., 4.]))
    np.testing.assert_allclose(_np(g), [1, 2, 0, 1])


def test_logsumexp_style_stability_at_large_logits(x64):
    def log_softmax(z):
        shifted = z - lax.stop_gradient(jnp.max(z))
        return shifted - jnp.log(jnp.sum(jnp.exp(shifted)))
    z = jnp.array([1000., 0., -1000.])
    g = grad(lambda z: log_softmax(z)[0])(z)
    assert np.all(np.isfinite(_np(g)))
    np.testing.assert_allclose(_np(g), [0., 0., 0.], atol=1e-12)
    check_grads(lambda z: lax.cumlogsumexp(z), (np.array([500., 501., -3.]),), order=2)


def test_logistic_log1p_integer_pow_clamp(x64):
    check_grads(lambda x: jax_like_logistic(x), (np.array([-40., -1., 0.5, 30.]),), order=2)
    np.testing.assert_allclose(float(grad(lax.logistic)(0.)), 0.25)
    assert float(grad(lax.logistic)(-800.)) == 0.0
    np.testing.assert_allclose(float(grad(jnp.log1p)(1e-10)), 1.0)
    check_grads(lambda x: lax.integer_pow(x, -3), (np.array([0.5, -1.5]),), order=2)
    assert float(grad(lambda x: lax.integer_pow(x, 0))(0.)) == 0.0
    assert float(grad(lambda x: x ** 2)(0.)) == 0.0
    # clamp: the operand's gradient passes strictly inside the bounds only
    g = grad(lambda x: jnp.sum(jnp.clip(x, -1., 1.)))(jnp.array([-2., 0.5, 1.0, 3.]))
    np.testing.assert_allclose(_np(g), [0., 1., 0.5, 0.])   # jnp.clip is max/min: a tie splits
    g = grad(lambda x: jnp.sum(lax.clamp(-1., x, 1.)))(jnp.array([-2., 0.5, 1.0, 3.]))
    np.testing.assert_allclose(_np(g), [0., 1., 0., 0.])


def jax_like_logistic(x):
    return lax.logistic(x)


def test_pow_derivatives_in_both_arguments(x64):
    check_grads(lambda x, y: x ** y, (np.array([0.5, 2.0]), np.array([1.5, -0.7])), order=2)
    assert float(grad(lambda y: 0.0 ** y)(2.0)) == 0.0          # log(0) replaced
    assert float(grad(lambda x: x ** 0.0)(0.0)) == 0.0
    np.testing.assert_allclose(float(grad(lambda x: jnp.power(x, 2.5))(4.0)), 2.5 * 8)


def test_convert_element_type_derivatives():
    assert float(grad(lambda x: x.astype(jnp.int32).astype(jnp.float32) * x)(2.7)) == 2.0
    g = grad(lambda x: jnp.sum(x.astype(jnp.float16).astype(jnp.float32) ** 2))(jnp.ones(3))
    assert g.dtype == jnp.float32
    np.testing.assert_allclose(_np(g), [2, 2, 2])


def test_indexing_gradients(x64):
    x = jnp.arange(6.)
    g = grad(lambda x: jnp.sum(x[jnp.array([0, 2, 2, 5])] ** 2))(x)
    np.testing.assert_allclose(_np(g), [0, 0, 8, 0, 0, 10])
    g = grad(lambda x: jnp.sum(x.at[jnp.array([1, 1])].set(jnp.array([7., 8.])) * x))(x)
    np.testing.assert_allclose(_np(g), [0, 8, 4, 6, 8, 10])   # y_i + x_i dy_i/dx_i
    g = grad(lambda v: jnp.sum(x.at[jnp.array([1, 1, 3])].set(v) ** 2))(jnp.array([7., 8., 9.]))
    np.testing.assert_allclose(_np(g), [0, 16, 18])      # the last repeated write wins
    g = grad(lambda x: jnp.sum(lax.dynamic_slice(x, (jnp.int32(4),), (3,))))(x)
    np.testing.assert_allclose(_np(g), [0, 0, 0, 1, 1, 1])   # the start is clamped to 3


def test_pad_and_slice_transposes(x64):
    x = np.arange(12.).reshape(3, 4)
    f = lambda x: lax.pad(x, 0., ((-1, 2, 1), (2, -3, 0)))
    out, pullback = vjp(f, x)
    ct = np.random.default_rng(0).standard_normal(np.shape(out))
    (g,) = pullback(ct)
    # the transpose of a linear map: <f(x), ct> == <x, f^T(ct)>
    np.testing.assert_allclose(np.sum(_np(f(x)) * ct), np.sum(x * _np(g)))
    f = lambda x: x[::2, 1::3]
    (g,) = vjp(f, x)[1](np.ones((2, 1)))
    np.testing.assert_allclose(_np(g), [[0, 1, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]])


# ============================================================================ API

def test_grad_of_pytree_params_and_argnums():
    params = {"w": jnp.array([[1., 2.], [3., 4.]]), "b": (jnp.array([0.5, -0.5]),)}

    def loss(p, x, scale):
        return scale * jnp.sum(jnp.tanh(x @ p["w"] + p["b"][0]) ** 2)

    x = jnp.array([[0.1, 0.2]])
    g = grad(loss)(params, x, 2.0)
    assert jitgrad.tree.structure(g) == jitgrad.tree.structure(params)
    gp, gx, gs = grad(loss, argnums=(0, 1, 2))(params, x, 2.0)
    assert gx.shape == (1, 2) and gs.shape == ()
    _allclose(gp, g, 1e-6)
    np.testing.assert_allclose(float(gs), float(loss(params, x, 1.0)), rtol=1e-6)
    v, g2 = value_and_grad(loss)(params, x, 2.0)
    np.testing.assert_allclose(float(v), float(loss(params, x, 2.0)))
    _allclose(g2, g)


def test_has_aux():
    f = lambda x: (jnp.sum(x ** 2), {"mean": jnp.mean(x)})
    g, aux = grad(f, has_aux=True)(jnp.array([1., 2.]))
    np.testing.assert_allclose(_np(g), [2, 4])
    np.testing.assert_allclose(float(aux["mean"]), 1.5)
    assert type(aux["mean"]) is type(jnp.ones(1))     # a plain array, not a leaked tracer
    j, aux = jacfwd(lambda x: (x * 3, {"s": x.sum(), "tag": "kept"}), has_aux=True)(jnp.ones(2))
    assert float(aux["s"]) == 2.0 and aux["tag"] == "kept"
    assert type(aux["s"]) is type(jnp.ones(1))
    (v, aux), g = value_and_grad(f, has_aux=True)(jnp.array([1., 2.]))
    assert float(v) == 5.0
    out, pullback, aux = vjp(f, jnp.array([1., 2.]), has_aux=True)
    np.testing.assert_allclose(_np(pullback(1.0)[0]), [2, 4])
    out, t, aux = jvp(f, (jnp.array([1., 2.]),), (jnp.array([1., 0.]),), has_aux=True)
    assert float(t) == 2.0


def test_jvp_linearize_vjp_agree(x64):
    f = lambda x, y: (jnp.sin(x) * y, jnp.sum(x ** 3))
    x, y = np.array([0.3, -1.2]), np.array([2.0, 0.5])
    tx, ty = np.array([1.0, 0.5]), np.array([-0.3, 2.0])
    out, t_out = jvp(f, (x, y), (tx, ty))
    out2, f_jvp = linearize(f, x, y)
    _allclose(out, out2)
    _allclose(t_out, f_jvp(tx, ty))
    _allclose(t_out, f_jvp(tx, ty))   # reusable
    _, pullback = vjp(f, x, y)
    ct = (np.array([0.7, -1.0]), np.float64(0.4))
    cx, cy = pullback(ct)
    lhs = np.sum(_np(t_out[0]) * ct[0]) + float(t_out[1]) * ct[1]
    rhs = np.sum(_np(cx) * tx) + np.sum(_np(cy) * ty)
    np.testing.assert_allclose(lhs, rhs)


def test_higher_order():
    f = lambda x: jnp.sin(x) * x
    d1 = lambda x: jnp.cos(x) * x + jnp.sin(x)
    d2 = lambda x: -jnp.sin(x) * x + 2 * jnp.cos(x)
    d3 = lambda x: -jnp.cos(x) * x - 3 * jnp.sin(x)
    np.testing.assert_allclose(float(grad(f)(0.7)), float(d1(0.7)), rtol=1e-6)
    np.testing.assert_allclose(float(grad(grad(f))(0.7)), float(d2(0.7)), rtol=1e-5)
    np.testing.assert_allclose(float(grad(grad(grad(f)))(0.7)), float(d3(0.7)), rtol=1e-5)
    np.testing.assert_allclose(float(jit(grad(jit(grad(f))))(0.7)), float(d2(0.7)), rtol=1e-5)


def test_jacobians_and_hessian(x64):
    def f(x):
        return {"a": jnp.sin(x) * x[0], "b": jnp.sum(x ** 2)}
    x = np.array([0.5, -1.0, 2.0])
    jf, jr = jacfwd(f)(x), jacrev(f)(x)
    assert jf["a"].shape == (3, 3) and jf["b"].shape == (3,)
    _allclose(jf, jr)
    expected_a = np.diag(np.cos(x) * x[0])
    expected_a[:, 0] += np.sin(x)
    np.testing.assert_allclose(_np(jf["a"]), expected_a)
    h = hessian(lambda x: jnp.sum(x ** 3) * x[1])(x)
    expected = np.diag(6 * x * x[1])
    expected[1, :] += 3 * x ** 2
    expected[:, 1] += 3 * x ** 2
    expected[1, 1] = 12 * x[1] ** 2   # d2/dx1^2 of x1^4
    np.testing.assert_allclose(_np(h), expected)
    # pytree inputs and argnums tuples
    j = jacrev(lambda p, q: p["u"] * q, argnums=(0, 1))({"u": x}, 2.0)
    np.testing.assert_allclose(_np(j[0]["u"]), 2 * np.eye(3))
    np.testing.assert_allclose(_np(j[1]), x)


def test_python_control_flow_on_concrete_values():
    def f(x):
        if x < 3:
            return x ** 2
        return -x
    assert float(grad(f)(2.0)) == 4.0
    assert float(grad(f)(4.0)) == -1.0
    assert float(jvp(f, (2.0,), (1.0,))[1]) == 4.0
    with pytest.raises(jitgrad.ConcretizationTypeError):
        jit(grad(f))(2.0)


def test_jit_of_grad_and_grad_of_jit():
    f = lambda w, x: jnp.sum(jnp.tanh(x @ w) ** 2)
    w, x = jnp.ones((3, 2)) * 0.1, jnp.arange(6.).reshape(2, 3)
    g0 = grad(f)(w, x)
    _allclose(jit(grad(f))(w, x), g0, 1e-5)
    _allclose(grad(jit(f))(w, x), g0, 1e-5)
    _allclose(jit(grad(jit(f)))(w, x), g0, 1e-5)
    _allclose(vmap(grad(f), in_axes=(None, 0))(w, jnp.stack([x, x])), jnp.stack([g0, g0]), 1e-5)


def test_perturbation_confusion_is_impossible():
    # d/dx [x * d/dy (x + y)] = d/dx [x * 1] = 1  (a shared perturbation would give 2)
    def f(x):
        return x * jvp(lambda y: x + y, (1.0,), (1.0,))[1]
    assert float(grad(f)(2.0)) == 1.0
    # nested jvp of jvp: d/dx d/dx x^3 = 6x
    g = lambda x: jvp(lambda z: z ** 3, (x,), (1.0,))[1]
    assert float(jvp(g, (2.0,), (1.0,))[1]) == 12.0


def test_closure_over_outer_tracers():
    # the inner grad closes over the outer differentiated x
    f = lambda x: grad(lambda y: jnp.sin(x * y))(1.0)
    np.testing.assert_allclose(float(grad(f)(0.5)), float(jnp.cos(0.5) - 0.5 * jnp.sin(0.5)),
                               rtol=1e-6)


def test_stop_gradient():
    f = lambda x: x * lax.stop_gradient(x)
    assert float(grad(f)(3.0)) == 3.0
    assert float(jit(grad(f))(3.0)) == 3.0
    g = grad(lambda p: jnp.sum(lax.stop_gradient(p)["a"] * p["a"]))({"a": jnp.array([1., 2.])})
    np.testing.assert_allclose(_np(g["a"]), [1, 2])


def test_integer_inputs_and_outputs():
    with pytest.raises(jitgrad.DTypeError, match="int32") as e:
        grad(lambda x: x * 2.0)(3)
    assert "allow_int" in str(e.value)
    g = grad(lambda x, n: x * n, argnums=(0, 1), allow_int=True)(2.0, 3)
    assert float(g[0]) == 3.0 and int(g[1]) == 0
    with pytest.raises(jitgrad.DTypeError, match="floating-point"):
        grad(lambda x: jnp.int32(x))(2.0)
    # integer intermediates carry no derivative
    assert float(grad(lambda x: x * jnp.argmax(jnp.array([x, 2 * x])))(1.0)) == 1.0


def test_grad_of_non_scalar_is_a_clear_error():
    with pytest.raises(jitgrad.ShapeError) as e:
        grad(lambda x: x * 2)(jnp.ones(3))
    msg = str(e.value)
    assert "(3,)" in msg and "jacrev" in msg and "vjp" in msg
    assert isinstance(e.value, TypeError)


def test_other_errors():
    with pytest.raises(TypeError, match="tuples or lists"):
        jvp(jnp.sin, 1.0, 1.0)
    with pytest.raises(jitgrad.ShapeError, match="shapes"):
        jvp(jnp.sin, (jnp.ones(2),), (jnp.ones(3),))
    _, pullback = vjp(jnp.sin, jnp.ones(2))
    with pytest.raises(jitgrad.ShapeError, match="cotangent"):
        pullback(jnp.ones(3))
    with pytest.raises(jitgrad.InvalidArgumentError, match="argnums"):
        grad(lambda x: x, argnums=2)(1.0)
    with pytest.raises(jitgrad.InvalidArgumentError, match="has_aux"):
        grad(lambda x: x, has_aux=True)(1.0)
    leaked = []
    grad(lambda x: leaked.append(x) or x)(1.0)
    with pytest.raises(jitgrad.UnexpectedTracerError):
        jnp.sin(leaked[0])


# ============================================================================ custom rules

def _clip_gradient_fn():
    @custom_jvp
    def f(x, scale):
        return jnp.sin(x) * scale

    @f.defjvp
    def f_jvp(primals, tangents):
        (x, scale), (tx, ts) = primals, tangents
        # linear in the tangents: the clipping is on the coefficient
        return f(x, scale), jnp.clip(jnp.cos(x) * scale, -0.1, 0.1) * tx + jnp.sin(x) * ts
    return f


def test_custom_jvp_eager_jit_and_nested():
    f = _clip_gradient_fn()
    np.testing.assert_allclose(float(f(1.0, 2.0)), 2 * np.sin(1.0), rtol=1e-6)
    assert abs(float(grad(f)(1.0, 2.0)) - 0.1) < 1e-6
    assert abs(float(jit(grad(f))(1.0, 2.0)) - 0.1) < 1e-6
    assert abs(float(grad(jit(f))(1.0, 2.0)) - 0.1) < 1e-6
    np.testing.assert_allclose(float(grad(f, argnums=1)(1.0, 2.0)), np.sin(1.0), rtol=1e-6)
    # nested grad differentiates the rule itself: d/dx clip(cos(x) * 0.01) = -sin(x) * 0.01
    g2 = grad(grad(lambda x: f(x, 0.01)))(1.0)
    np.testing.assert_allclose(float(g2), -np.sin(1.0) * 0.01, rtol=1e-5)
    np.testing.assert_allclose(float(jit(grad(jit(grad(lambda x: f(x, 0.01)))))(1.0)),
                               -np.sin(1.0) * 0.01, rtol=1e-5)
    # vmap of the custom function keeps the rule
    g = grad(lambda x: jnp.sum(vmap(f, in_axes=(0, None))(x, 2.0)))(jnp.array([1., 0.01]))
    np.testing.assert_allclose(_np(g), [0.1, 0.1], rtol=1e-6)


def test_custom_jvp_defjvps_and_nondiff_argnums():
    @custom_jvp
    def f(x, y):
        return x * y
    f.defjvps(lambda tx, ans, x, y: tx * y * 10, lambda ty, ans, x, y: ty * x)
    gx, gy = grad(f, argnums=(0, 1))(2.0, 3.0)
    assert (float(gx), float(gy)) == (30.0, 2.0)

    from functools import partial

    @partial(custom_jvp, nondiff_argnums=(0,))
    def app(fn, x):
        return fn(x)

    @app.defjvp
    def app_jvp(fn, primals, tangents):
        (x,), (t,) = primals, tangents
        return app(fn, x), 7.0 * t
    assert float(grad(lambda x: app(jnp.sin, x))(1.0)) == 7.0
    assert float(jit(grad(lambda x: app(jnp.sin, x)))(1.0)) == 7.0


def test_custom_vjp_eager_jit_nested_and_nondiff():
    @custom_vjp
    def f(x, y):
        return jnp.sin(x) * y

    def fwd(x, y):
        return f(x, y), (jnp.cos(x), jnp.sin(x), y)

    def bwd(res, g):
        cos_x, sin_x, y = res
        return (cos_x * y * g * 3.0, sin_x * g)   # x's gradient deliberately tripled
    f.defvjp(fwd, bwd)
    gx = grad(f)(0.5, 2.0)
    np.testing.assert_allclose(float(gx), 3 * np.cos(0.5) * 2, rtol=1e-6)
    np.testing.assert_allclose(float(jit(grad(f))(0.5, 2.0)), float(gx), rtol=1e-6)
    np.testing.assert_allclose(float(grad(jit(f))(0.5, 2.0)), float(gx), rtol=1e-6)
    # second order differentiates bwd: d/dx 3 cos(x) y = -3 sin(x) y
    np.testing.assert_allclose(float(grad(grad(f))(0.5, 2.0)), -3 * np.sin(0.5) * 2, rtol=1e-5)
    np.testing.assert_allclose(float(jit(grad(grad(jit(f))))(0.5, 2.0)), -3 * np.sin(0.5) * 2,
                               rtol=1e-5)
    per_example = vmap(grad(f), in_axes=(0, None))(jnp.array([0.5, 1.0]), 2.0)
    np.testing.assert_allclose(_np(per_example), 6 * np.cos([0.5, 1.0]), rtol=1e-6)
    with pytest.raises(TypeError, match="forward-mode"):
        jvp(f, (0.5, 2.0), (1.0, 0.0))

    from functools import partial

    @partial(custom_vjp, nondiff_argnums=(1,))
    def scale_grad(x, k):
        return x

    scale_grad.defvjp(lambda x, k: (x, None), lambda k, res, g: (g * k,))
    assert float(grad(lambda x: scale_grad(x, 5.0) * 2)(1.0)) == 10.0

    @custom_vjp
    def bad(x):
        return x
    bad.defvjp(lambda x: (x, None), lambda res, g: (g, g))
    with pytest.raises(jitgrad.JitgradError, match="one entry per"):
        grad(bad)(1.0)


def test_check_grads_on_custom_rules(x64):
    f = _clip_gradient_fn()
    with pytest.raises(AssertionError):   # the clipped rule is not the true derivative
        check_grads(lambda x: f(x, 2.0), (np.array([1.0]),), order=1)
    check_grads(lambda x: f(x, 0.01), (np.array([1.0]),), order=1)


# ============================================================================ checkpoint

def _count(ir, name):
    """Equations named ``name`` in ``ir``, sub-programs included."""
    ir = ir.ir if isinstance(ir, ClosedIR) else ir
    total = 0
    for eqn in ir.eqns:
        total += eqn.primitive.name == name
        for v in eqn.params.values():
            for sub in (v if isinstance(v, (tuple, list)) else [v]):
                if isinstance(sub, (IR, ClosedIR)):
                    total += _count(sub, name)
    return total


def test_checkpoint_recomputes_in_the_backward_pass(x64):
    def block(x):
        return jnp.sin(jnp.sin(jnp.sin(x)))
    x = 0.7
    plain = make_ir(value_and_grad(block))(x)
    ckpt = make_ir(value_and_grad(checkpoint(block)))(x)
    assert _count(plain, "sin") == 3               # each sin once; cosines are saved
    assert _count(ckpt, "sin") == 3 + 2            # the forward, then sin sin recomputed
    remats = [e for e in ckpt.ir.eqns if e.primitive.name == "remat"]
    assert len(remats) == 2 and remats[1].params["differentiated"]
    # the backward remat reads only the input (and the cotangent): no saved intermediates
    backward = remats[1]
    assert all(not isinstance(a, type(backward.outvars[0])) or a in ckpt.ir.invars
               for a in backward.invars)
    _allclose(value_and_grad(checkpoint(block))(x), value_and_grad(block)(x))
    # under jit the recomputation survives the optimisation passes (no CSE with the forward)
    lowered = jit(value_and_grad(checkpoint(block))).lower(x)
    assert _count(lowered, "sin") >= 5
    _allclose(jit(value_and_grad(checkpoint(block)))(x), value_and_grad(block)(x), 1e-12)


def test_checkpoint_composes(x64):
    f = lambda w, x: jnp.sum(jnp.tanh(x @ w) ** 2)
    fc = checkpoint(f)
    w, x = np.full((3, 2), 0.1), np.arange(6.).reshape(2, 3) / 6
    _allclose(grad(fc)(w, x), grad(f)(w, x))
    check_grads(lambda w: fc(w, x), (w,), order=2)
    _allclose(vmap(grad(fc), in_axes=(None, 0))(w, np.stack([x, x])),
              vmap(grad(f), in_axes=(None, 0))(w, np.stack([x, x])))
    static = checkpoint(lambda x, n: x ** n, static_argnums=(1,))
    assert float(grad(static)(2.0, 3)) == 12.0


# ============================================================================ plain IR

def test_gradient_of_a_dense_relu_layer_is_plain_ir():
    def loss(w, b, x):
        return jnp.sum(jnp.maximum(x @ w + b, 0.))
    w, b, x = jnp.ones((3, 4)), jnp.zeros(4), jnp.ones((2, 3))
    ir = make_ir(grad(loss, argnums=(0, 1)))(w, b, x)
    text = str(ir)
    assert "dot_general" in text and "max" in text
    allowed = {p.name for p in registry.values() if p.kind != "control"}
    for eqn in ir.ir.eqns:
        assert eqn.primitive.name in allowed, eqn.primitive.name
        for v in eqn.params.values():
            assert not (callable(v) and not isinstance(v, (type, np.dtype))), (eqn, v)
            assert not isinstance(v, (IR, ClosedIR))
    _allclose(jit(grad(loss, argnums=(0, 1)))(w, b, x), grad(loss, argnums=(0, 1))(w, b, x))
