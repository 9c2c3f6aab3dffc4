"""jit: tracing once per signature, static arguments, pytrees, retrace logging, errors."""
import collections
import logging
import threading

import numpy as np
import pytest

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import jit


def counting(fn):
    """Wrap ``fn`` so that each trace (each Python execution under jit) is counted."""
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(1)
        return fn(*args, **kwargs)
    wrapped.calls = calls
    return wrapped


def test_traces_once_per_signature():
    f = counting(lambda x, y: x * y + 1.0)
    g = jit(f)
    x = np.ones((3,), np.float32)
    for _ in range(3):
        np.testing.assert_allclose(g(x, x), 2.0)
    assert len(f.calls) == 1
    g(np.ones((4,), np.float32), np.ones((4,), np.float32))   # new shape
    assert len(f.calls) == 2
    g(np.ones((4,), np.int32), np.ones((4,), np.int32))       # new dtype
    assert len(f.calls) == 3
    g(x, x)                                                   # back to a cached one
    assert len(f.calls) == 3
    assert g._cache_size() == 3


def test_weak_type_is_part_of_the_signature():
    f = counting(lambda x: x * 2)
    g = jit(f)
    r1 = g(3.0)
    r2 = g(np.float32(3.0))
    assert len(f.calls) == 2
    assert r1.weak_type and not r2.weak_type
    assert float(r1) == float(r2) == 6.0


def test_jit_inside_loop_hits_the_cache():
    def f(x):
        return x + 1
    for _ in range(3):
        jit(f)(np.ones(2, np.float32))
    assert jit(f)._cache_size() == 1


def test_static_argnums_and_argnames():
    f = counting(lambda x, n, *, mode: x * n if mode == "mul" else x + n)
    g = jit(f, static_argnums=1, static_argnames="mode")
    x = np.arange(3, dtype=np.float32)
    np.testing.assert_allclose(g(x, 2, mode="mul"), x * 2)
    np.testing.assert_allclose(g(x, 2, mode="add"), x + 2)
    np.testing.assert_allclose(g(x, 3, mode="add"), x + 3)
    np.testing.assert_allclose(g(x, 3, mode="add"), x + 3)
    assert len(f.calls) == 3


def test_static_argnames_resolve_positional_use():
    def f(x, n):
        return jnp.zeros((n,)) + x     # n must be static to build a shape
    g = jit(f, static_argnames="n")
    np.testing.assert_allclose(g(1.0, 3), np.ones(3))      # passed positionally
    np.testing.assert_allclose(g(1.0, n=2), np.ones(2))    # passed by keyword


def test_static_shape_argument_can_build_shapes():
    @jit
    def make(x, n):
        return jnp.zeros((n,)) + x
    with pytest.raises(jitgrad.ConcretizationTypeError):
        make(1.0, 3)
    make_static = jit(lambda x, n: jnp.zeros((n,)) + x, static_argnums=1)
    np.testing.assert_allclose(make_static(1.0, 3), np.ones(3))


Point = collections.namedtuple("Point", "x y")


def test_pytree_arguments_and_results():
    @jit
    def f(params, batch):
        out = {"sum": params["w"] + batch.x, "prod": params["w"] * batch.y}
        return [out, None, (params["b"],)]
    params = {"w": np.ones(3, np.float32), "b": np.float32(2)}
    res = f(params, Point(np.arange(3, dtype=np.float32), np.full(3, 2, np.float32)))
    assert isinstance(res, list) and res[1] is None
    np.testing.assert_allclose(res[0]["sum"], [1, 2, 3])
    np.testing.assert_allclose(res[0]["prod"], [2, 2, 2])
    np.testing.assert_allclose(res[2][0], 2)


def test_unhashable_static_argument_is_a_clear_error():
    g = jit(lambda x, opts: x, static_argnums=1)
    with pytest.raises(TypeError, match="hashable"):
        g(1.0, [1, 2])


def test_non_array_argument_says_use_static_argnums():
    g = jit(lambda x, name: x)
    with pytest.raises(TypeError, match="static_argnums") as err:
        g(1.0, "relu")
    assert "'name'" in str(err.value)


def test_unknown_keyword_is_not_ignored():
    g = jit(lambda x: x)
    with pytest.raises(TypeError):
        g(1.0, scale=2.0)
    with pytest.raises(TypeError):
        jit(lambda x: x, static_argnum=1)


def test_log_compiles_names_the_changed_argument(caplog):
    jitgrad.config.update("log_compiles", True)
    try:
        g = jit(lambda x, y: x + y)
        with caplog.at_level(logging.WARNING, logger="jitgrad"):
            g(np.ones(3, np.float32), np.ones(3, np.float32))
            g(np.ones(3, np.float32), np.ones(4, np.float32)[:3].astype(np.int32))
            g(np.ones(3, np.float32), np.ones(3, np.float32))
    finally:
        jitgrad.config.update("log_compiles", False)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "first call" in messages[0]
    assert "dtype" in messages[1] and "'y'" in messages[1]


def test_config_change_retraces():
    f = counting(lambda x: x + 1)
    g = jit(f)
    g(1.0)
    jitgrad.config.update("jax_enable_x64", True)
    try:
        assert g(1.0).dtype == np.float64
    finally:
        jitgrad.config.update("jax_enable_x64", False)
    assert g(1.0).dtype == np.float32
    assert len(f.calls) == 2


def test_threads_share_one_trace():
    f = counting(lambda x: jnp.sum(x * x))
    g = jit(f)
    x = np.arange(100, dtype=np.float32)
    results = []

    def worker():
        results.append(float(g(x)))
    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [float(np.sum(x * x))] * 8
    assert len(f.calls) == 1


def test_nested_jit_is_inlined():
    inner = jit(lambda x: jnp.sin(x) * 2)
    outer = jit(lambda x: inner(x) + inner(x * 3))
    ir = jitgrad.make_ir(lambda x: inner(x) + 1)(np.ones(2, np.float32))
    assert [e.primitive.name for e in ir.ir.eqns] == ["sin", "mul", "add"]
    x = np.linspace(0, 1, 5).astype(np.float32)
    np.testing.assert_allclose(outer(x), 2 * np.sin(x) + 2 * np.sin(3 * x), rtol=1e-6)


def test_closure_over_concrete_array_becomes_constant():
    w = jnp.arange(3.0)
    ir = jitgrad.make_ir(lambda x: x * w)(np.ones(3, np.float32))
    assert len(ir.ir.constvars) == 1
    np.testing.assert_allclose(jit(lambda x: x * w)(np.ones(3, np.float32)), [0, 1, 2])


def test_escaped_tracer_is_an_error():
    leaked = []

    @jit
    def f(x):
        leaked.append(x)
        return x
    f(1.0)
    with pytest.raises(jitgrad.UnexpectedTracerError):
        jnp.sin(leaked[0])


def test_jit_of_method():
    class Model:
        scale = 3.0

        @jit
        def apply(self, x):
            return x * 2

        def apply_static(self, x):
            return x * self.scale
        apply_static = jit(apply_static, static_argnums=0)

    # As in JAX, ``self`` is not an array: it must be static.
    with pytest.raises(TypeError, match="(?s)'self'.*static_argnums"):
        Model().apply(np.ones(2, np.float32))
    np.testing.assert_allclose(Model().apply_static(np.ones(2, np.float32)), [3, 3])


def test_lower_returns_ir():
    g = jit(lambda x: jnp.exp(x) + 1)
    text = str(g.lower(np.ones(2, np.float32)))
    assert "exp" in text and "add" in text
