"""The call path of a jitted function: the fast dispatch, the output buffer pool and
``donate_argnums``. Results are compared with the reference backend; the pool must never
hand out a buffer that any live array, or numpy view of one, can still see."""
import collections

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import jitgrad
import jitgrad.numpy as jnp
from jitgrad.backends.buffers import BufferPool, host_pool
from jitgrad.core.array import ArrayImpl, DeletedArrayError

N = 1 << 15          # float32: 128 KiB, large enough to go through the buffer pool


def _ref(f, *args):
    return jitgrad.jit(f, backend="reference")(*args)


def _arr(seed, n=N, dtype=np.float32):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(n).astype(dtype))


def relu_fma(x, y, z):
    return jnp.maximum(x * y + z, 0)


# ------------------------------------------------------------------ fast dispatch

def test_repeated_calls_take_the_fast_path_and_match_reference():
    f = jitgrad.jit(relu_fma, backend="cpu")
    x, y, z = _arr(0), _arr(1), _arr(2)
    expected = np.asarray(_ref(relu_fma, x, y, z))
    for _ in range(3):
        np.testing.assert_array_equal(np.asarray(f(x, y, z)), expected)
    assert f._fast is not None


def test_fast_path_falls_back_on_other_signatures():
    f = jitgrad.jit(lambda a, b: a * 2 + b, backend="cpu")
    a32, b32 = _arr(0, 16), _arr(1, 16)
    np.testing.assert_allclose(np.asarray(f(a32, b32)), np.asarray(a32) * 2 + np.asarray(b32))
    f(a32, b32)
    # Another shape, a Python scalar, numpy inputs, a weak-typed scalar, a tuple structure.
    a8 = _arr(2, 8)
    np.testing.assert_allclose(np.asarray(f(a8, a8)), np.asarray(a8) * 3)
    np.testing.assert_allclose(np.asarray(f(a32, 1.5)), np.asarray(a32) * 2 + 1.5)
    np.testing.assert_allclose(np.asarray(f(np.asarray(a32), b32)),
                               np.asarray(a32) * 2 + np.asarray(b32))
    ints = jnp.arange(16)
    np.testing.assert_array_equal(np.asarray(f(ints, ints)), np.arange(16) * 3)
    assert f(ints, ints).dtype == ints.dtype
    # and back to the first signature
    np.testing.assert_allclose(np.asarray(f(a32, b32)), np.asarray(a32) * 2 + np.asarray(b32))


def test_fast_path_pytrees_and_structure_changes():
    Pair = collections.namedtuple("Pair", "w b")

    def f(p, x):
        return {"y": p["a"].w * x + p["a"].b, "n": [x.sum(), None]}
    g = jitgrad.jit(f, backend="cpu")
    p = {"a": Pair(_arr(0, 8), _arr(1, 8))}
    x = _arr(2, 8)
    for _ in range(2):
        out = g(p, x)
        ref = _ref(f, p, x)
        np.testing.assert_allclose(np.asarray(out["y"]), np.asarray(ref["y"]), rtol=1e-6)
        assert out["n"][1] is None and isinstance(out["n"], list)
    # A dict with another key set, or a tuple instead of the namedtuple, is not the same call.
    q = {"a": Pair(_arr(3, 8), _arr(4, 8)), "extra": _arr(5, 8)}
    np.testing.assert_allclose(np.asarray(g(q, x)["y"]), np.asarray(_ref(f, q, x)["y"]), rtol=1e-6)
    with pytest.raises(Exception):
        g({"a": (p["a"].w, p["a"].b)}, x)
    np.testing.assert_allclose(np.asarray(g(p, x)["y"]), np.asarray(_ref(f, p, x)["y"]), rtol=1e-6)


def test_fast_path_non_contiguous_inputs():
    f = jitgrad.jit(lambda a: a + 1, backend="cpu")
    m = jnp.asarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    mt = jnp.asarray(np.ascontiguousarray(np.asarray(m).T))
    f(mt), f(mt)                           # the fast path is built for C-contiguous values
    view = m.T                             # an eager transpose may be a strided view
    np.testing.assert_array_equal(np.asarray(f(view)), np.asarray(m).T + 1)


def test_fast_path_sees_config_changes(x64):
    f = jitgrad.jit(lambda a: a * 2, backend="cpu")
    a = np.arange(4.0)
    assert f(a).dtype == np.float64
    assert f(a).dtype == np.float64
    jitgrad.config.update("jax_enable_x64", False)
    try:
        assert f(a).dtype == np.float32
    finally:
        jitgrad.config.update("jax_enable_x64", True)
    assert f(a).dtype == np.float64


def test_deleted_argument_raises_through_fast_path():
    f = jitgrad.jit(lambda a: a + 1, backend="cpu")
    a = _arr(0, 8)
    f(a), f(a)
    b = _arr(1, 8)
    b.delete()
    with pytest.raises(DeletedArrayError, match="deleted"):
        f(b)


# ------------------------------------------------------------------ buffer pool

def test_buffer_pool_reuses_only_unreferenced_buffers():
    pool = BufferPool(max_bytes=1 << 22, min_bytes=1024)
    a = pool.empty((1024,), np.dtype(np.float32))
    b = pool.empty((1024,), np.dtype(np.float32))
    assert a is not b
    view = a[2:]                    # a view keeps its base alive
    del a
    c = pool.empty((1024,), np.dtype(np.float32))
    assert not np.shares_memory(c, view) and not np.shares_memory(c, b)
    c_id = id(c)
    del c
    d = pool.empty((1024,), np.dtype(np.float32))
    assert id(d) == c_id            # nothing saw it any more: reused
    del view
    e = pool.empty((1024,), np.dtype(np.float32))
    assert not np.shares_memory(e, d) and not np.shares_memory(e, b)


def test_buffer_pool_respects_its_byte_bound():
    pool = BufferPool(max_bytes=3 * 4096, min_bytes=1024)
    held = [pool.empty((1024,), np.dtype(np.float32)) for _ in range(5)]
    assert pool.nbytes <= 3 * 4096
    assert len({id(h) for h in held}) == 5
    del held
    for shape in [(1024,), (2048,), (512, 2)]:
        pool.empty(shape, np.dtype(np.float32))
        assert pool.nbytes <= 3 * 4096


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=3, max_size=12),
       st.sampled_from([N, 64]))
def test_pool_never_aliases_live_outputs(plan, n):
    """Keep random subsets of outputs (or only numpy views of them) alive across calls: a
    kept value must never change, and every result equals the reference backend's."""
    def f(x, s):
        return jnp.sin(x) * s, x + s
    g = jitgrad.jit(f, backend="cpu")
    x = _arr(7, n)      # large outputs come from the shared pool, small ones from rings
    kept = []
    for i, (keep, as_view) in enumerate(plan):
        s = float(i)
        out = g(x, s)
        ref = _ref(f, x, s)
        for o, r in zip(out, ref):
            np.testing.assert_allclose(np.asarray(o), np.asarray(r), rtol=1e-6, atol=1e-6)
        if keep:
            o = out[i % 2]
            held = np.asarray(o) if as_view else o
            kept.append((held, np.array(np.asarray(o), copy=True)))
        del out
        for held, snapshot in kept:
            np.testing.assert_array_equal(np.asarray(held), snapshot)


def test_multi_segment_intermediates_are_pooled_and_correct():
    seen = []

    def f(x):
        y = jnp.exp(x) * 2
        jitgrad.debug.callback(lambda v: seen.append(v), y)   # keeps a reference to y
        return jnp.tanh(y) + 1
    g = jitgrad.jit(f, backend="cpu")
    results = []
    for i in range(4):
        x = _arr(i)
        results.append((g(x), np.tanh(np.exp(np.asarray(x)) * 2) + 1, np.exp(np.asarray(x)) * 2))
    for out, expected, y in results:
        np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5)
    # the callback's values were not overwritten by later calls
    for v, (_, _, y) in zip(seen, results):
        np.testing.assert_allclose(np.asarray(v), y, rtol=1e-5)


def test_steady_state_outputs_come_from_the_pool():
    g = jitgrad.jit(relu_fma, backend="cpu")
    x, y, z = _arr(0), _arr(1), _arr(2)
    out = g(x, y, z)
    first = id(out._value)     # the pool keeps the buffer, so its id stays its own
    del out
    created = host_pool().stats["created"]
    for _ in range(5):
        out = g(x, y, z)
        del out
    assert host_pool().stats["created"] == created
    assert id(g(x, y, z)._value) == first


# ------------------------------------------------------------------ donation

def adam_like(p, m, g):
    m2 = 0.9 * m + 0.1 * g
    return p - 0.01 * m2, m2


def test_donated_buffers_become_outputs_and_arrays_are_deleted():
    step = jitgrad.jit(adam_like, backend="cpu", donate_argnums=(0, 1))
    p, m, grad = _arr(0), _arr(1), _arr(2)
    ref_p, ref_m = _ref(adam_like, p, m, grad)
    for it in range(3):
        bufs = (id(p._value), id(m._value))   # (a reference would stop the donation)
        p2, m2 = step(p, m, grad)
        assert p.is_deleted() and m.is_deleted() and not grad.is_deleted()
        if True:
            assert {id(p2._value), id(m2._value)} == set(bufs)   # (pairing by shape/dtype)
        if it == 0:
            np.testing.assert_allclose(np.asarray(p2), np.asarray(ref_p), rtol=1e-6)
            np.testing.assert_allclose(np.asarray(m2), np.asarray(ref_m), rtol=1e-6)
        with pytest.raises(DeletedArrayError, match="donated"):
            p + 1
        with pytest.raises(DeletedArrayError):
            np.asarray(m)
        with pytest.raises(DeletedArrayError):
            step(p, m2, grad)
        assert "deleted" in repr(p)
        p, m = p2, m2


def test_donation_matches_undonated_training_loop():
    def step(params, g):
        return jitgrad.tree.map(lambda w: w * 0.5 + g, params)
    plain = jitgrad.jit(step, backend="cpu")
    donating = jitgrad.jit(step, backend="cpu", donate_argnums=0)
    p1 = {"w": _arr(0), "b": _arr(1, 64)}
    p2 = {"w": _arr(0), "b": _arr(1, 64)}
    g = jnp.asarray(np.float32(0.25))
    for _ in range(4):
        p1, p2 = plain(p1, g), donating(p2, g)
        for k in p1:
            np.testing.assert_array_equal(np.asarray(p1[k]), np.asarray(p2[k]))


def test_donation_skipped_while_a_view_is_alive():
    f = jitgrad.jit(lambda a: a * 2, backend="cpu", donate_argnums=0)
    a = _arr(3)
    f(a * 1)                              # warm up the fast path
    a = a * 1
    view = np.asarray(a)
    snapshot = view.copy()
    out = f(a)
    assert not a.is_deleted()
    np.testing.assert_array_equal(view, snapshot)
    np.testing.assert_array_equal(np.asarray(out), snapshot * 2)


def test_donating_the_same_array_twice_does_not_alias():
    f = jitgrad.jit(lambda a, b: a * 2 + b, backend="cpu", donate_argnums=0)
    for _ in range(2):
        a = _arr(4) * 1
        expected = np.asarray(a) * 3
        out = f(a, a)
        np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-6)
        assert not a.is_deleted()


@pytest.mark.parametrize("fun", [
    lambda a: a[::-1] + 1,                       # reads a in another order than it writes
    lambda a: jnp.cumsum(a) * 2,                 # reads a[:i] for out[i]
    lambda a: (a.reshape(128, 256) @ a.reshape(256, 128)).reshape(-1)[: N // 2].repeat(2),
    lambda a: a - jnp.mean(a),                   # a reduction over a, then a second pass
])
def test_donation_is_safe_for_non_elementwise_reads(fun):
    f = jitgrad.jit(fun, backend="cpu", donate_argnums=0)
    for i in range(3):
        a = _arr(10 + i) * 1
        expected = np.asarray(_ref(fun, a))
        np.testing.assert_allclose(np.asarray(f(a)), expected, rtol=2e-5, atol=2e-4)


def test_donation_never_gives_a_matmul_its_own_operand_as_output():
    # The matmul's raw product is computed in the output's buffer and its epilogue then
    # runs in place: that buffer must not be the donated operand, which the GEMM reads.
    w = np.random.default_rng(3).standard_normal((256, 256)).astype(np.float32) / 16
    fun = lambda a: jnp.maximum(a @ w + 1, 0)   # noqa: E731
    f = jitgrad.jit(fun, backend="cpu", donate_argnums=0)
    for i in range(3):
        a = _arr(20 + i).reshape(128, 256) * 1
        expected = np.asarray(_ref(fun, a))
        np.testing.assert_allclose(np.asarray(f(a)), expected, rtol=2e-5, atol=2e-4)


def test_donation_ignored_under_an_outer_trace():
    inner = jitgrad.jit(lambda a: a * 2, backend="cpu", donate_argnums=0)
    outer = jitgrad.jit(lambda a: inner(a) + 1, backend="cpu")
    a = _arr(5) * 1
    np.testing.assert_allclose(np.asarray(outer(a)), np.asarray(a) * 2 + 1, rtol=1e-6)
    assert not a.is_deleted()
    g = jitgrad.grad(lambda a: inner(a).sum())(a)
    np.testing.assert_allclose(np.asarray(g), 2.0)
    assert not a.is_deleted()


def test_donation_with_static_arguments_and_numpy_inputs():
    f = jitgrad.jit(lambda k, a: a * k, backend="cpu", static_argnums=0, donate_argnums=1)
    a = np.arange(N, dtype=np.float32)
    out = f(3, a)                          # a numpy argument is never deleted or overwritten
    np.testing.assert_array_equal(a, np.arange(N, dtype=np.float32))
    b = out * 1
    out2 = f(3, b)
    np.testing.assert_array_equal(np.asarray(out2), np.arange(N, dtype=np.float32) * 9)
    assert b.is_deleted()
    assert isinstance(out2, ArrayImpl)


def test_donated_adam_training_step_matches_undonated():
    """A step whose update kernels also reduce (bias gradients) and read the parameters in
    several phases: donating params and optimiser state changes nothing."""
    from jitgrad import optim
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((32, 16)).astype(np.float32))
    opt = optim.adam(1e-2)

    def step(p, s):
        def loss(p):
            h = jnp.maximum(x @ p["w"] + p["b"], 0)
            return jnp.mean((h @ p["v"]) ** 2)
        value, g = jitgrad.value_and_grad(loss)(p)
        u, s = opt.update(g, s, p)
        return optim.apply_updates(p, u), s, value

    def init():
        r = np.random.default_rng(1)
        return {"w": jnp.asarray(r.standard_normal((16, 24)).astype(np.float32)),
                "b": jnp.asarray(r.standard_normal(24).astype(np.float32)),
                "v": jnp.asarray(r.standard_normal((24, 8)).astype(np.float32))}
    plain = jitgrad.jit(step, backend="cpu")
    donating = jitgrad.jit(step, backend="cpu", donate_argnums=(0, 1))
    p1, p2 = init(), init()
    s1, s2 = opt.init(p1), opt.init(p2)
    for _ in range(4):
        p1, s1, v1 = plain(p1, s1)
        old = p2
        p2, s2, v2 = donating(p2, s2)
        np.testing.assert_array_equal(np.asarray(v1), np.asarray(v2))
        for a, b in zip(jitgrad.tree.leaves((p1, s1)), jitgrad.tree.leaves((p2, s2))):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert any(leaf.is_deleted() for leaf in jitgrad.tree.leaves(old))
