"""lax.cond / switch / while_loop / fori_loop / scan / map: values, errors, grad, jvp, vmap.

Every result is checked against a plain Python loop (or if/else), eagerly and under jit;
gradients against central finite differences in float64.
"""
import numpy as np
import pytest

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import jit, lax, vmap
from jitgrad import grad, jvp, value_and_grad
from jitgrad.ops.control import WhileLoopReverseModeError
from jitgrad.test_util import check_grads

F32 = np.float32
modes = pytest.mark.parametrize("use_jit", [False, True], ids=["eager", "jit"])


def run(f, use_jit):
    return jit(f) if use_jit else f


def close(a, b, **kw):
    """Leafwise allclose; a list of numbers on the right is one array."""
    if isinstance(b, list):
        b = np.asarray(b)
    for x, y in zip(jitgrad.tree.leaves(a), jitgrad.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **{"rtol": 1e-6, **kw})


# ------------------------------------------------------------------ cond / switch

@modes
def test_cond_matches_python(use_jit):
    def f(x, y):
        return lax.cond(x.sum() > y, lambda a, b: (a * 2.0, b), lambda a, b: (-a, b + 1.0), x, y)

    def ref(x, y):
        return (x * 2.0, y) if x.sum() > y else (-x, y + 1.0)

    x = np.arange(3, dtype=F32)
    for y in (F32(1.0), F32(5.0)):
        close(run(f, use_jit)(x, y), ref(x, y))


@modes
def test_cond_pytrees_closures_and_integer_predicate(use_jit):
    w = np.array([1.0, 2.0], F32)

    def f(p, params):
        return lax.cond(p, lambda q: {"out": q["a"] * w, "n": q["n"]},
                        lambda q: {"out": q["a"] + w, "n": q["n"] + 1}, params)

    params = {"a": np.array([3.0, 4.0], F32), "n": np.int32(7)}
    out = run(f, use_jit)(np.int32(2), params)      # nonzero int: true
    close(out, {"n": 7, "out": params["a"] * w})
    out = run(f, use_jit)(np.int32(0), params)
    close(out, {"n": 8, "out": params["a"] + w})
    assert np.asarray(out["n"]).dtype == np.int32


@modes
def test_switch_clamps_the_index(use_jit):
    branches = [lambda x: x, lambda x: x * 10.0, lambda x: x - 100.0]
    f = run(lambda i, x: lax.switch(i, branches, x), use_jit)
    x = np.float32(2.0)
    for i, want in [(-5, 2.0), (0, 2.0), (1, 20.0), (2, -98.0), (9, -98.0)]:
        close(f(np.int32(i), x), want)
    assert float(lax.switch(3, [lambda: 1.0])) == 1.0    # one branch: just called


def test_cond_eager_with_python_values():
    assert float(lax.cond(True, lambda: 1.0, lambda: 2.0)) == 1.0
    out = lax.cond(False, lambda x: x + 1, lambda x: x - 1, 5)
    assert int(out) == 4 and np.asarray(out).dtype == np.int32


def test_cond_prints_nested_branches_deterministically():
    f = lambda x: lax.cond(x > 0, lambda: jnp.sin(x), lambda: jnp.cos(x))  # noqa: E731
    text = str(jitgrad.make_ir(f)(1.0))
    assert text == str(jitgrad.make_ir(f)(1.0))
    assert "cond[branches=(" in text and "sin" in text and "cos" in text
    assert text.count("{ lambda") == 3      # the program and its two branches


# ------------------------------------------------------------------ while_loop / fori_loop

@modes
def test_while_loop_matches_python(use_jit):
    def f(x):
        return lax.while_loop(lambda c: c["i"] < 5, lambda c: {"i": c["i"] + 1, "v": c["v"] * x},
                              {"i": 0, "v": jnp.ones_like(x)})

    x = np.array([0.5, 2.0], F32)
    out = run(f, use_jit)(x)
    assert int(out["i"]) == 5
    close(out["v"], x ** 5)
    # zero iterations keep the init (and its dtype)
    out = run(lambda n: lax.while_loop(lambda c: c < n, lambda c: c + 1, 0), use_jit)(np.int32(-3))
    assert int(out) == 0 and np.asarray(out).dtype == np.int32


@modes
def test_fori_loop_static_and_traced_bounds(use_jit):
    body = lambda i, c: c * 2.0 + i  # noqa: E731

    def ref(lo_, hi, c):
        for i in range(lo_, hi):
            c = body(i, c)
        return c

    close(run(lambda c: lax.fori_loop(1, 6, body, c), use_jit)(F32(0.5)), ref(1, 6, 0.5))
    close(run(lambda n, c: lax.fori_loop(1, n, body, c), use_jit)(np.int32(6), F32(0.5)),
          ref(1, 6, 0.5))
    assert float(lax.fori_loop(5, 2, body, 1.0)) == 1.0


def test_fori_loop_is_a_scan_with_static_bounds_and_a_while_otherwise():
    body = lambda i, c: c + i  # noqa: E731
    assert "scan[" in str(jitgrad.make_ir(lambda c: lax.fori_loop(0, 3, body, c))(1))
    assert "while[" in str(jitgrad.make_ir(lambda n: lax.fori_loop(0, n, body, 0))(3))


def test_weakly_typed_init_is_promoted_like_jax():
    out = lax.fori_loop(0, 3, lambda i, x: x + 1.5, 0)     # int init, float body
    assert float(out) == 4.5 and np.asarray(out).dtype == np.float32


# ------------------------------------------------------------------ scan / map

def scan_reference(f, init, xs, length=None, reverse=False):
    n = length if xs is None else len(jitgrad.tree.leaves(xs)[0])
    order = range(n - 1, -1, -1) if reverse else range(n)
    carry, ys = init, [None] * n
    for i in order:
        x = None if xs is None else jitgrad.tree.map(lambda a: a[i], xs)
        carry, ys[i] = f(carry, x)
    ys = jitgrad.tree.map(lambda *a: np.stack([np.asarray(v) for v in a]), *ys)
    return carry, ys


@modes
@pytest.mark.parametrize("reverse", [False, True])
def test_scan_pytree_carry_and_outputs(use_jit, reverse):
    def step(c, x):
        h = jnp.tanh(c["h"] * x["a"] + x["b"])
        return {"h": h, "t": c["t"] + 1}, (h * 2.0, c["t"])

    init = {"h": np.ones(3, F32), "t": np.int32(0)}
    xs = {"a": np.linspace(0, 1, 12).reshape(4, 3).astype(F32), "b": np.ones((4, 3), F32)}
    got = run(lambda i, x: lax.scan(step, i, x, reverse=reverse), use_jit)(init, xs)
    close(got, scan_reference(step, init, xs, reverse=reverse), rtol=1e-5)


@modes
def test_scan_without_xs_and_lax_map(use_jit):
    f = run(lambda c: lax.scan(lambda c, _: (c * 2.0, c), c, None, length=4), use_jit)
    carry, ys = f(F32(1.0))
    close(carry, 16.0)
    close(ys, [1.0, 2.0, 4.0, 8.0])
    xs = np.arange(6, dtype=F32).reshape(3, 2)
    close(run(lambda v: lax.map(lambda r: r.sum() * 2.0, v), use_jit)(xs), xs.sum(1) * 2)
    carry, ys = lax.scan(lambda c, x: (c + x, None), 0.0, np.arange(4.0, dtype=F32))
    assert ys is None and float(carry) == 6.0


def test_scan_length_zero():
    carry, ys = lax.scan(lambda c, x: (c + x.sum(), x * 2.0), F32(1.0), np.zeros((0, 2), F32))
    assert float(carry) == 1.0 and ys.shape == (0, 2) and ys.dtype == np.float32


# ------------------------------------------------------------------ errors

def test_branch_output_types_differ_names_both():
    with pytest.raises(jitgrad.ShapeError,
                       match=r"false_fun gives f32\[3\] but true_fun gives f32\[2\]"):
        lax.cond(True, lambda: jnp.zeros(2), lambda: jnp.zeros(3))
    with pytest.raises(jitgrad.ShapeError, match=r"output \['b'\].*branches\[0\] gives i32\[\] but "
                                                 r"branches\[1\] gives f32\[\]"):
        lax.switch(0, [lambda: {"b": 1}, lambda: {"b": 1.0}])
    with pytest.raises(jitgrad.ShapeError, match="same structure"):
        lax.cond(True, lambda: (1.0, 2.0), lambda: 1.0)


def test_predicate_must_be_a_scalar_bool():
    with pytest.raises(jitgrad.ShapeError, match=r"predicate must be a scalar, got bool\[2\]"):
        lax.cond(jnp.array([True, False]), lambda: 1.0, lambda: 2.0)
    with pytest.raises(jitgrad.DTypeError, match="scalar bool"):
        lax.cond(1.5, lambda: 1.0, lambda: 2.0)
    with pytest.raises(jitgrad.DTypeError,
                       match=r"cond_fun must return a scalar bool, got i32\[\]"):
        lax.while_loop(lambda c: c, lambda c: c - 1, 3)
    with pytest.raises(jitgrad.DTypeError, match="integer"):
        lax.switch(1.0, [lambda: 1.0, lambda: 2.0])


def test_carry_type_change_names_the_carry_and_both_types():
    with pytest.raises(jitgrad.ShapeError,
                       match=r"carry\['w'\]: it enters as f32\[3\] and comes back as f32\[1,3\]"):
        lax.while_loop(lambda c: c["i"] < 3,
                       lambda c: {"i": c["i"] + 1, "w": c["w"][None]},
                       {"i": 0, "w": jnp.zeros(3)})
    with pytest.raises(jitgrad.ShapeError,
                       match=r"carry\[1\]: it enters as i32\[\] and comes back as f32\[\]"):
        lax.scan(lambda c, x: ((c[0], c[1] * x), x), (1.0, jnp.int32(1)), jnp.ones(3))
    with pytest.raises(jitgrad.ShapeError, match="structure of init"):
        lax.scan(lambda c, x: ((c, c), x), 1.0, jnp.ones(3))


def test_scan_argument_errors():
    with pytest.raises(jitgrad.InvalidArgumentError, match="pair"):
        lax.scan(lambda c, x: c + x, 0.0, jnp.ones(3))
    with pytest.raises(jitgrad.ShapeError, match=r"xs\['b'\] has 4"):
        lax.scan(lambda c, x: (c, x), 0.0, {"a": jnp.ones(3), "b": jnp.ones(4)})
    with pytest.raises(jitgrad.ShapeError, match="scalar"):
        lax.scan(lambda c, x: (c, x), 0.0, 1.0)
    with pytest.raises(jitgrad.InvalidArgumentError, match="length must be given"):
        lax.scan(lambda c, x: (c, x), 0.0, None)


# ------------------------------------------------------------------ differentiation

def numeric_grad(f, x, eps=1e-6):
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[idx] = eps
        g[idx] = (float(f(x + d)) - float(f(x - d))) / (2 * eps)
    return g


def check_grad(f, x):
    """grad(f)(x), eagerly and under jit, against finite differences (float64)."""
    want = numeric_grad(f, x)
    np.testing.assert_allclose(grad(f)(x), want, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(jit(grad(f))(x), want, rtol=1e-6, atol=1e-8)


X0 = np.array([0.3, -0.7, 1.1])


def _cond_loss(x):
    return lax.cond(x.sum() > 0, lambda y: jnp.sum(jnp.sin(y) * x), lambda y: jnp.sum(y ** 3), x)


def _switch_loss(x):
    i = (jnp.sum(x) * 2).astype(jnp.int32)
    return lax.switch(i, [lambda y: jnp.sum(y), lambda y: jnp.sum(jnp.exp(y) * y),
                          lambda y: jnp.prod(y)], x)


def _scan_loss(x):
    def step(c, a):
        h = jnp.tanh(c * x + a)
        return h, jnp.sum(h * a)
    xs = jnp.arange(12.0).reshape(4, 3) * 0.1
    c, ys = lax.scan(step, x, xs)
    return jnp.sum(c) + jnp.sum(ys * jnp.arange(4.0))


def _scan_reverse_pytree_loss(x):
    def step(c, a):
        return {"h": jnp.sin(c["h"] * a) + c["k"], "k": c["k"]}, c["h"] * a
    c, ys = lax.scan(step, {"h": x, "k": x ** 2}, jnp.stack([x, 2 * x, x + 1.0]), reverse=True)
    return jnp.sum(c["h"]) + jnp.sum(ys ** 2)


def _fori_loss(x):
    return jnp.sum(lax.fori_loop(0, 5, lambda i, c: jnp.sin(c) * x + i * 0.1, x))


@pytest.mark.parametrize("loss", [_cond_loss, _switch_loss, _scan_loss,
                                  _scan_reverse_pytree_loss, _fori_loss])
def test_grad_against_finite_differences(x64, loss):
    check_grad(loss, X0)
    check_grad(loss, -X0)       # the other branch of cond / switch
    check_grads(loss, (X0,), order=2, modes=("fwd", "rev"))


def test_second_order_through_cond_and_scan(x64):
    for loss in (_cond_loss, _scan_loss):
        g2 = numeric_grad(lambda v: grad(loss)(v)[0], X0, eps=1e-5)
        np.testing.assert_allclose(grad(lambda v: grad(loss)(v)[0])(X0), g2, rtol=1e-5, atol=1e-7)


def test_jvp_through_while_loop(x64):
    def f(x):
        return lax.while_loop(lambda c: c[0] < 4, lambda c: (c[0] + 1, jnp.sin(c[1]) * x),
                              (0, x))[1]

    t = np.array([1.0, 0.5, -2.0])
    out, tangent = jvp(f, (X0,), (t,))
    eps = 1e-6
    want = (np.asarray(f(X0 + eps * t)) - np.asarray(f(X0 - eps * t))) / (2 * eps)
    np.testing.assert_allclose(out, f(X0))
    np.testing.assert_allclose(tangent, want, rtol=1e-6, atol=1e-8)
    _, tangent_jit = jit(lambda x, v: jvp(f, (x,), (v,)))(X0, t)
    np.testing.assert_allclose(tangent_jit, want, rtol=1e-6, atol=1e-8)
    check_grads(f, (X0,), order=2, modes=("fwd",))


def test_grad_through_while_loop_is_a_clear_error(x64):
    def f(x):
        return lax.while_loop(lambda c: c[0] < 4, lambda c: (c[0] + 1, c[1] * x), (0, x))[1].sum()

    with pytest.raises(WhileLoopReverseModeError, match="Reverse-mode differentiation") as e:
        grad(f)(X0)
    assert "scan" in str(e.value) and "fori_loop" in str(e.value)
    assert isinstance(e.value, ValueError)
    with pytest.raises(WhileLoopReverseModeError):      # fori_loop with traced bounds
        jit(grad(lambda x, n: lax.fori_loop(0, n, lambda i, c: c * x, x).sum()))(X0, 3)


def test_grad_ignores_a_while_loop_that_does_not_depend_on_the_input(x64):
    def f(x):
        n = lax.while_loop(lambda c: c < 10.0, lambda c: c * 2.0, 1.0)
        return jnp.sum(x * n)
    np.testing.assert_allclose(grad(f)(X0), np.full(3, 16.0))


def test_backward_scan_is_a_reverse_scan():
    x = np.ones(3, F32)
    text = str(jitgrad.make_ir(grad(_scan_loss))(x))
    assert "reverse=False" in text and "reverse=True" in text


# ------------------------------------------------------------------ vmap

def test_vmap_cond_with_batched_predicate_selects():
    xs = np.array([-2.0, -1.0, 1.0, 3.0], F32)
    f = vmap(lambda x: lax.cond(x > 0, lambda: jnp.sqrt(x), lambda: x * x))
    close(f(xs), np.where(xs > 0, np.sqrt(np.abs(xs)), xs * xs))
    assert "select_n" in str(jitgrad.make_ir(f)(xs))
    assert "cond[" not in str(jitgrad.make_ir(f)(xs))
    # an unbatched predicate stays a cond
    g = vmap(lambda x, p: lax.cond(p, lambda: x + 1.0, lambda: x - 1.0), in_axes=(0, None))
    assert "cond[" in str(jitgrad.make_ir(g)(xs, True))
    close(g(xs, True), xs + 1)


def test_vmap_switch_while_scan_fori():
    idx = np.array([0, 2, 1, 5], np.int32)
    xs = np.array([1.0, 2.0, 3.0, 4.0], F32)
    branches = [lambda x: x, lambda x: -x, lambda x: x * x]
    close(vmap(lambda i, x: lax.switch(i, branches, x))(idx, xs), [1.0, 4.0, -3.0, 16.0])
    # each example leaves its while loop at its own time
    out = vmap(lambda x: lax.while_loop(lambda c: c < 10.0, lambda c: c * 2.0, x))(xs)
    close(out, [16.0, 16.0, 12.0, 16.0])
    ns = np.array([0, 1, 3, 5], np.int32)
    close(vmap(lambda n, x: lax.fori_loop(0, n, lambda i, c: c + x, 0.0))(ns, xs), ns * xs)
    seqs = np.arange(12, dtype=F32).reshape(4, 3)
    carry, ys = vmap(lambda s: lax.scan(lambda c, x: (c + x, c), 0.0, s))(seqs)
    close(carry, seqs.sum(1))
    close(ys, np.cumsum(seqs, 1) - seqs)
    carry, ys = vmap(lambda s: lax.scan(lambda c, x: (c + x, c), 0.0, s), in_axes=1)(seqs)
    close(carry, seqs.sum(0))


def test_vmap_of_grad_and_grad_of_vmap_through_control_flow(x64):
    xs = np.stack([X0, -X0, 2 * X0])
    per_example = vmap(grad(_cond_loss))(xs)
    for x, g in zip(xs, per_example):
        np.testing.assert_allclose(g, numeric_grad(_cond_loss, x), rtol=1e-6, atol=1e-8)
    per_example = vmap(grad(_scan_loss))(xs)
    for x, g in zip(xs, per_example):
        np.testing.assert_allclose(g, numeric_grad(_scan_loss, x), rtol=1e-6, atol=1e-8)

    def total(x):
        return jnp.sum(vmap(_cond_loss)(jnp.stack([x, -x, x * 2.0])))
    np.testing.assert_allclose(grad(total)(X0), numeric_grad(total, X0), rtol=1e-6, atol=1e-8)
    value, g = value_and_grad(lambda x: jnp.sum(vmap(_fori_loss)(jnp.stack([x, x + 1.0]))))(X0)
    np.testing.assert_allclose(g, numeric_grad(lambda x: _fori_loss(x) + _fori_loss(x + 1.0), X0),
                               rtol=1e-6, atol=1e-8)
