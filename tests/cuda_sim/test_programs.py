"""Whole programs on the cuda backend (simulated): random programs, control flow,
gradients, a few MLP training steps, random bits, and fused row-wise patterns."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import grad, jit, lax, random, value_and_grad
from jitgrad.core.primitive import OPAQUE, Primitive

from program_generator import programs
from simcheck import check, run_both


# ------------------------------------------------------------------ random programs

@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)
@given(programs(dtype=np.float32, max_steps=6, max_rank=3))
def test_random_programs(prog):
    check(prog, *prog.inputs, rtol=2e-3, atol=2e-3)


# ------------------------------------------------------------------ fused patterns

def _softmax(x):
    m = jnp.max(x, axis=-1, keepdims=True)
    e = jnp.exp(x - m)
    return e / jnp.sum(e, axis=-1, keepdims=True)


def _layer_norm(x, g, b):
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
    return (x - mu) * lax.rsqrt(var + 1e-5) * g + b


def _cross_entropy(logits, y):
    return -jnp.mean(jnp.sum(y * jitgrad.nn.log_softmax(logits), axis=-1))


@pytest.mark.parametrize("cols", [5, 40, 300])
def test_rowwise_patterns(cols):
    rng = np.random.default_rng(cols)
    x = rng.standard_normal((3, cols)).astype(np.float32)
    g, b = rng.standard_normal(cols).astype(np.float32), rng.standard_normal(cols).astype(np.float32)
    y = np.eye(cols, dtype=np.float32)[[0, cols - 1, 1]]
    check(_softmax, x, rtol=1e-5, atol=1e-6)
    check(jitgrad.nn.log_softmax, x, rtol=1e-5, atol=1e-5)
    check(_layer_norm, x, g, b, rtol=1e-4, atol=1e-4)
    check(_cross_entropy, x, y, rtol=1e-5, atol=1e-5)


def test_kernel_counts():
    """The generated module has one kernel per fused group (Dense + relu is one)."""
    from jitgrad.backends import cuda as jc
    x = np.ones((4, 3), np.float32)
    w = np.ones((3, 5), np.float32)
    b = np.ones(5, np.float32)
    closed = jitgrad.api.optimize(jitgrad.make_ir(lambda x, w, b: jnp.maximum(x @ w + b, 0))(x, w, b))
    prog = jc.generate(closed)
    assert [i.kind for i in prog.infos.values()] == ["matmul"]
    closed = jitgrad.api.optimize(jitgrad.make_ir(_softmax)(x))
    assert [i.kind for i in jc.generate(closed).infos.values()] == ["rowwise"]


# ------------------------------------------------------------------ control flow

def test_cond_and_switch():
    def f(p, x):
        return lax.cond(p > 0, lambda v: v * 2.0, lambda v: jnp.sin(v), x)
    x = np.arange(4, dtype=np.float32)
    for p in (1.0, -1.0):
        check(f, np.float32(p), x)
    check(lambda i, x: lax.switch(i, [lambda v: v + 1, lambda v: v * 3, jnp.exp], x),
          np.int32(2), x)


def test_while_and_fori():
    def collatz_steps(n):
        def body(s):
            k, c = s
            return lax.select(k % 2 == 0, k // 2, 3 * k + 1), c + 1
        return lax.while_loop(lambda s: s[0] != 1, body, (n, np.int32(0)))
    check(collatz_steps, np.int32(6))
    check(lambda x: lax.fori_loop(0, 5, lambda i, v: v * 1.5 + i, x),
          np.ones(3, np.float32))


def test_scan():
    def cumulative(xs, c0):
        def step(c, x):
            c = c * 0.5 + x
            return c, (c * 2, jnp.sum(x))
        return lax.scan(step, c0, xs)
    xs = np.arange(12, dtype=np.float32).reshape(4, 3)
    check(cumulative, xs, np.zeros(3, np.float32))
    check(lambda xs, c: lax.scan(lambda c, x: (c + x, c), c, xs, reverse=True), xs,
          np.ones(3, np.float32))
    check(lambda xs: lax.scan(lambda c, x: (c, x), 0.0, xs.T)[1], xs)   # a transposed xs


# A primitive no backend knows: the cuda backend runs its reference implementation on
# host copies of its operands (and says so in the generated code).
_host_only_p = Primitive("test_cuda_host_only", OPAQUE)
_host_only_p.impl = lambda x: np.cumsum(x[::-1], axis=-1)
_host_only_p.abstract_eval = lambda x: x


def test_host_fallback():
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    f = jit(lambda v: jnp.tanh(_host_only_p.bind(v.T * 2)) + 1, backend="cuda")
    out = f(x)
    np.testing.assert_allclose(np.asarray(out), np.tanh(np.cumsum((x.T * 2)[::-1], axis=-1)) + 1,
                               rtol=1e-6)
    (entry,) = f._cache.values()
    assert "rt.host_fallback(" in entry.executable.source


# ------------------------------------------------------------------ gradients and training

def _mlp_params(seed=0):
    rng = np.random.default_rng(seed)
    return {"w1": (rng.standard_normal((6, 12)) * 0.4).astype(np.float32),
            "b1": np.zeros(12, np.float32),
            "w2": (rng.standard_normal((12, 4)) * 0.4).astype(np.float32),
            "b2": np.zeros(4, np.float32)}


def _mlp_loss(p, x, y):
    h = jnp.maximum(x @ p["w1"] + p["b1"], 0)
    return _cross_entropy(h @ p["w2"] + p["b2"], y)


def _data(seed=1, n=8):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, n)]
    return x, y


def test_gradients():
    p = _mlp_params()
    x, y = _data()
    check(grad(_mlp_loss), p, x, y, rtol=1e-4, atol=1e-5)
    check(lambda v: grad(lambda u: jnp.sum(jnp.tanh(u) ** 2 * jnp.exp(-u)))(v),
          np.linspace(-2, 2, 7).astype(np.float32), rtol=1e-5, atol=1e-6)


def test_training_steps_stay_on_device():
    """A few SGD steps: weights stay on the GPU between steps and match the reference."""
    def step(p, x, y):
        loss, g = value_and_grad(_mlp_loss)(p, x, y)
        return jitgrad.tree.map(lambda a, b: a - 0.5 * b, p, g), loss

    x, y = _data()
    gpu = jitgrad.devices("cuda")[0]
    params = jitgrad.device_put(_mlp_params(), gpu)
    ref = _mlp_params()
    cuda_step = jit(step, backend="cuda")
    ref_step = jit(step, backend="reference")
    for _ in range(3):
        params, loss = cuda_step(params, x, y)
        ref, ref_loss = ref_step(ref, x, y)
        assert all(a.device == gpu for a in jitgrad.tree.leaves(params))
        np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-4)
    for a, b in zip(jitgrad.tree.leaves(jitgrad.device_get(params)), jitgrad.tree.leaves(ref)):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-4, atol=1e-5)
    assert float(loss) < float(_mlp_loss(_mlp_params(), x, y))


# ------------------------------------------------------------------ random bits

def test_random_bits_match_cpu():
    """threefry's uint32 arithmetic is bit-exact: the same key gives the same bits."""
    key = random.key(42)

    def draws(k):
        k1, k2 = random.split(k)
        return (random.bits(k1, (5,)), random.uniform(k2, (2, 3)), random.normal(k1, (4,)),
                random.bits(k2, (3,), np.uint8))
    c, r = run_both(draws, key)
    np.testing.assert_array_equal(c[0], r[0])
    np.testing.assert_array_equal(c[1], r[1])
    np.testing.assert_array_equal(c[3], r[3])
    np.testing.assert_allclose(c[2], r[2], rtol=1e-5, atol=1e-6)
    eager = np.asarray(random.bits(random.split(key)[0], (5,)))
    np.testing.assert_array_equal(c[0], eager)


# ------------------------------------------------------------------ float64 (x64 mode)

def test_x64(x64):
    x = np.linspace(-3, 3, 10)
    i = np.arange(10, dtype=np.int64) * (2 ** 40)
    check(lambda v, k: (jnp.exp(v) * 2 + jnp.sum(v), k * 3 + 1, k >> 3, v.astype(np.int64),
                        lax.bitcast_convert_type(v, np.int64)), x, i, rtol=1e-12, atol=1e-12)
    a = np.random.default_rng(0).standard_normal((5, 9))
    check(lambda a: a @ a.T, a, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ convolution and pooling

@pytest.mark.parametrize("kw", [
    dict(window_strides=(1, 1), padding="SAME"),
    dict(window_strides=(2, 1), padding="VALID", rhs_dilation=(1, 2)),
    dict(window_strides=(1, 1), padding=((1, 0), (2, -1)), lhs_dilation=(2, 1)),
    dict(window_strides=(1, 1), padding="SAME", feature_group_count=2),
    dict(window_strides=(1, 1), padding="VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")),
    dict(window_strides=(1, 1), padding="VALID", batch_group_count=2),
], ids=["same", "strided_dilated", "lhs_dilation", "groups", "nhwc", "batch_groups"])
def test_conv(kw):
    rng = np.random.default_rng(3)
    dn = kw.get("dimension_numbers")
    if dn:
        x, w = rng.standard_normal((2, 5, 4, 2)), rng.standard_normal((3, 2, 2, 3))
    elif kw.get("batch_group_count"):
        x, w = rng.standard_normal((4, 2, 4, 4)), rng.standard_normal((4, 2, 2, 2))
    else:
        x, w = rng.standard_normal((2, 4, 5, 4)), rng.standard_normal((4, 4 // kw.get(
            "feature_group_count", 1), 3, 2))
    check(lambda x, w: lax.conv_general_dilated(x, w, **kw), x.astype(np.float32),
          w.astype(np.float32), rtol=1e-4, atol=1e-5)


def test_pooling_and_its_gradients():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 5, 4)).astype(np.float32)
    x[0, 0, 1, 1] = x[0, 0, 1, 2]      # a tie inside a window: the first one wins

    def max_pool(v):
        return lax.reduce_window(v, -np.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "SAME")

    def pools(v):
        return (max_pool(v), lax.reduce_window(v, 0.0, lax.add, (1, 1, 3, 2), (1, 1, 1, 2), "VALID"),
                lax.reduce_window(v, np.inf, lax.min, (1, 1, 2, 2), (1, 1, 1, 1), ((0, 0), (0, 0),
                                                                                   (1, 1), (0, 1))))
    check(pools, x, rtol=1e-5)
    check(grad(lambda v: jnp.sum(max_pool(v) ** 2)), x, rtol=1e-5)       # select_and_scatter_add
    t = rng.standard_normal(x.shape).astype(np.float32)
    check(lambda v, t: jitgrad.jvp(max_pool, (v,), (t,))[1], x, t)      # select_and_gather_add
