"""jitgrad.nn: activations, initializers, conv/pooling primitives, layers, losses, errors."""
import numpy as np
import pytest
from scipy import special

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import grad, jit, lax, nn, random
from jitgrad.nn import initializers as init
from jitgrad.nn import losses
from jitgrad.ops import conv as conv_ops
from jitgrad.test_util import check_grads

F32 = np.float32


def rng(seed=0):
    return np.random.default_rng(seed)


# ================================================================== activations

X = np.linspace(-5, 5, 41).astype(F32)

REFERENCE = {
    "relu": (nn.relu, lambda x: np.maximum(x, 0)),
    "relu6": (nn.relu6, lambda x: np.minimum(np.maximum(x, 0), 6)),
    "leaky_relu": (nn.leaky_relu, lambda x: np.where(x >= 0, x, 0.01 * x)),
    "elu": (nn.elu, lambda x: np.where(x > 0, x, np.expm1(x))),
    "celu": (lambda x: nn.celu(x, 2.0), lambda x: np.maximum(x, 0) + 2 * np.minimum(np.expm1(x / 2), 0)),
    "selu": (nn.selu, lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x))),
    "gelu_tanh": (nn.gelu, lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))),
    "gelu_erf": (lambda x: nn.gelu(x, approximate=False), lambda x: 0.5 * x * (1 + special.erf(x / np.sqrt(2)))),
    "sigmoid": (nn.sigmoid, special.expit),
    "log_sigmoid": (nn.log_sigmoid, lambda x: -np.logaddexp(0, -x)),
    "softplus": (nn.softplus, lambda x: np.logaddexp(x, 0)),
    "silu": (nn.silu, lambda x: x * special.expit(x)),
    "swish": (nn.swish, lambda x: x * special.expit(x)),
    "soft_sign": (nn.soft_sign, lambda x: x / (np.abs(x) + 1)),
    "hard_tanh": (nn.hard_tanh, lambda x: np.clip(x, -1, 1)),
    "tanh": (nn.tanh, np.tanh),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_activation_values(name):
    fn, ref = REFERENCE[name]
    out = np.asarray(fn(X))
    assert out.dtype == F32
    np.testing.assert_allclose(out, ref(X.astype(np.float64)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(jit(fn)(X)), out, rtol=1e-6, atol=1e-7)


def test_kinks_have_jax_derivatives():
    assert float(grad(nn.relu)(0.0)) == 0.0
    assert float(grad(nn.relu)(2.0)) == 1.0
    assert float(grad(nn.relu6)(6.0)) == 0.0
    assert float(grad(nn.relu6)(3.0)) == 1.0
    assert float(grad(lambda x: nn.leaky_relu(x, 0.2))(-1.0)) == pytest.approx(0.2)
    assert float(grad(nn.elu)(-1.0)) == pytest.approx(np.exp(-1.0), rel=1e-6)
    np.testing.assert_allclose(grad(lambda x: nn.softplus(x).sum())(X), special.expit(X), rtol=1e-5)


def test_activation_gradients(x64):
    x = np.linspace(-2.3, 2.1, 7)
    for fn in (nn.elu, nn.gelu, lambda v: nn.gelu(v, approximate=False), nn.silu,
               nn.log_sigmoid, nn.softplus, nn.selu):
        check_grads(fn, (x,), order=2)


def test_softmax_family_is_stable_and_masked():
    logits = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1000.0, -1000.0]], F32)
    p = np.asarray(nn.softmax(logits))
    ref = special.softmax(logits.astype(np.float64), axis=-1)
    np.testing.assert_allclose(p, ref, rtol=1e-6)
    np.testing.assert_allclose(nn.log_softmax(logits), special.log_softmax(logits.astype(np.float64), -1),
                               rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(nn.logsumexp(logits, axis=1), special.logsumexp(logits.astype(np.float64), 1),
                               rtol=1e-7)
    mask = np.array([[True, False, True], [True, True, False]])
    pm = np.asarray(nn.softmax(logits, where=mask))
    assert pm[0, 1] == 0 and pm[1, 2] == 0
    np.testing.assert_allclose(pm.sum(-1), 1, rtol=1e-6)
    lm = np.asarray(nn.log_softmax(logits, where=mask))
    assert lm[0, 1] == -np.inf and np.isfinite(lm[0, 0])
    np.testing.assert_allclose(nn.logsumexp(logits, axis=1, where=mask),
                               [special.logsumexp([1000.0, 999.0]), special.logsumexp([-1000.0, -1000.0])],
                               rtol=1e-7)
    # gradient of logsumexp is the softmax, even at large logits
    np.testing.assert_allclose(grad(lambda z: nn.logsumexp(z))(logits[0]), ref[0], rtol=1e-6)


def test_logsumexp_options():
    a = rng().normal(size=(3, 4)).astype(F32)
    b = rng(1).uniform(0.5, 2, size=(3, 4)).astype(F32)
    np.testing.assert_allclose(nn.logsumexp(a), special.logsumexp(a), rtol=1e-6)
    np.testing.assert_allclose(nn.logsumexp(a, axis=0, keepdims=True),
                               special.logsumexp(a, axis=0, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(nn.logsumexp(a, axis=(0, 1), b=b), special.logsumexp(a, b=b), rtol=1e-6)
    out, sign = nn.logsumexp(a, axis=1, b=-b, return_sign=True)
    ref_out, ref_sign = special.logsumexp(a, axis=1, b=-b, return_sign=True)
    np.testing.assert_allclose(out, ref_out, rtol=1e-6)
    np.testing.assert_array_equal(sign, ref_sign)
    assert float(nn.logsumexp(np.full(3, -np.inf, F32))) == -np.inf


def test_one_hot():
    oh = np.asarray(nn.one_hot(np.array([0, 2, 5, -1]), 3))
    np.testing.assert_array_equal(oh, [[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]])
    assert oh.dtype == F32
    np.testing.assert_array_equal(nn.one_hot(np.array([1, 0]), 2, axis=0, dtype=jnp.int32),
                                  [[0, 1], [1, 0]])
    assert nn.one_hot(np.zeros((2, 3), np.int32), 4).shape == (2, 3, 4)
    with pytest.raises(jitgrad.DTypeError, match="one_hot.*integer"):
        nn.one_hot(np.array([0.0, 1.0]), 2)


# ================================================================== initializers

@pytest.mark.parametrize("name,factor,mode", [
    ("glorot_uniform", 1.0, "avg"), ("glorot_normal", 1.0, "avg"), ("xavier_uniform", 1.0, "avg"),
    ("he_uniform", 2.0, "in"), ("he_normal", 2.0, "in"), ("kaiming_normal", 2.0, "in"),
    ("lecun_uniform", 1.0, "in"), ("lecun_normal", 1.0, "in")])
def test_variance_scaling_family(name, factor, mode):
    shape = (300, 200)
    w = np.asarray(getattr(init, name)()(random.key(0), shape))
    assert w.shape == shape and w.dtype == F32
    fan = 300 if mode == "in" else 250
    assert abs(w.var() / (factor / fan) - 1) < 0.05
    assert abs(w.mean()) < 0.01
    if "uniform" in name:
        assert np.abs(w).max() <= np.sqrt(3 * factor / fan) + 1e-6
    else:   # truncated at two (rescaled) standard deviations
        assert np.abs(w).max() <= 2 * np.sqrt(factor / fan) / 0.8796256610342398 + 1e-6
    np.testing.assert_array_equal(getattr(init, name)()(random.key(0), shape), w)


def test_fans_and_simple_initializers():
    assert init.compute_fans((3, 3, 16, 32)) == (3 * 3 * 16, 3 * 3 * 32)          # HWIO
    assert init.compute_fans((32, 16, 3, 3), in_axis=1, out_axis=0) == (144, 288)  # OIHW
    k = random.key(1)
    np.testing.assert_array_equal(init.zeros(k, (2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(init.ones(k, (2,), jnp.float32), np.ones(2))
    np.testing.assert_array_equal(init.constant(0.5)(k, (2,)), [0.5, 0.5])
    n = np.asarray(init.normal(0.1)(k, (20000,)))
    assert abs(n.std() - 0.1) < 0.005
    u = np.asarray(init.uniform(0.5)(k, (20000,)))
    assert u.min() >= 0 and u.max() < 0.5
    t = np.asarray(init.truncated_normal(1.0)(k, (20000,)))
    assert t.min() > -2 and t.max() < 2
    with pytest.raises(ValueError, match="rank >= 2"):
        init.glorot_uniform()(k, (5,))


def test_initializers_with_x64(x64):
    w = init.he_normal()(random.key(0), (4, 4), jnp.float64)
    assert w.dtype == np.float64


# ================================================================== conv and pooling primitives

def conv_reference(x, w, strides, pads, lhs_dil, rhs_dil, groups):
    """Direct loops over NCHW x and OIHW w (float64)."""
    x = conv_ops._pad_zeros(x, pads, lhs_dil)
    n, _, hp, wp = x.shape
    o, i, kh, kw = w.shape
    eh, ew = (kh - 1) * rhs_dil[0] + 1, (kw - 1) * rhs_dil[1] + 1
    oh, ow = (hp - eh) // strides[0] + 1, (wp - ew) // strides[1] + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for c_out in range(o):
        g = c_out // og
        for a in range(oh):
            for b in range(ow):
                patch = x[:, g * i:(g + 1) * i,
                          a * strides[0]:a * strides[0] + eh:rhs_dil[0],
                          b * strides[1]:b * strides[1] + ew:rhs_dil[1]]
                out[:, c_out, a, b] = np.einsum("nihw,ihw->n", patch, w[c_out])
    return out


CONV_CONFIGS = [
    dict(strides=(1, 1), pads=((0, 0), (0, 0)), lhs_dil=(1, 1), rhs_dil=(1, 1), groups=1),
    dict(strides=(2, 1), pads=((1, 2), (0, 1)), lhs_dil=(1, 1), rhs_dil=(2, 1), groups=2),
    dict(strides=(1, 2), pads=((-1, 1), (2, 0)), lhs_dil=(2, 1), rhs_dil=(1, 1), groups=1),
    dict(strides=(1, 1), pads=((1, 1), (1, 1)), lhs_dil=(1, 1), rhs_dil=(1, 1), groups=4),
]


@pytest.mark.parametrize("cfg", CONV_CONFIGS, ids=lambda c: f"s{c['strides']}g{c['groups']}")
def test_conv_general_dilated_matches_direct_loops(cfg):
    x = rng().normal(size=(2, 4, 7, 6))
    w = rng(1).normal(size=(4, 4 // cfg["groups"], 3, 2))
    want = conv_reference(x, w, cfg["strides"], cfg["pads"], cfg["lhs_dil"], cfg["rhs_dil"], cfg["groups"])
    got = lax.conv_general_dilated(x.astype(F32), w.astype(F32), cfg["strides"], cfg["pads"],
                                   cfg["lhs_dil"], cfg["rhs_dil"], feature_group_count=cfg["groups"])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # the same through another layout
    got_nhwc = lax.conv_general_dilated(
        np.transpose(x, (0, 2, 3, 1)).astype(F32), np.transpose(w, (2, 3, 1, 0)).astype(F32),
        cfg["strides"], cfg["pads"], cfg["lhs_dil"], cfg["rhs_dil"],
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=cfg["groups"])
    np.testing.assert_allclose(np.transpose(np.asarray(got_nhwc), (0, 3, 1, 2)), want, rtol=1e-4, atol=1e-4)


def test_conv_padding_strings_and_lax_conv():
    assert lax.padtype_to_pads((8, 7), (3, 3), (2, 2), "SAME") == [(0, 1), (1, 1)]
    assert lax.padtype_to_pads((8, 7), (3, 3), (2, 2), "SAME_LOWER") == [(1, 0), (1, 1)]
    assert lax.padtype_to_pads((8, 7), (3, 3), (1, 1), "VALID") == [(0, 0), (0, 0)]
    x = rng().normal(size=(2, 3, 8, 7)).astype(F32)
    w = rng(1).normal(size=(5, 3, 3, 3)).astype(F32)
    assert lax.conv(x, w, (2, 2), "SAME").shape == (2, 5, 4, 4)
    assert lax.conv(x, w, (1, 1), "VALID").shape == (2, 5, 6, 5)
    np.testing.assert_allclose(lax.conv(x, w, (1, 1), "SAME"),
                               conv_reference(x.astype(np.float64), w.astype(np.float64), (1, 1),
                                              ((1, 1), (1, 1)), (1, 1), (1, 1), 1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(jit(lambda a, b: lax.conv(a, b, (1, 1), "SAME"))(x, w),
                               lax.conv(x, w, (1, 1), "SAME"), rtol=1e-6)
    with pytest.raises(jitgrad.ShapeError, match="input has 3 features but the kernel expects 2"):
        lax.conv(x, w[:, :2], (1, 1), "SAME")


@pytest.mark.parametrize("cfg", CONV_CONFIGS[:3], ids=lambda c: f"s{c['strides']}g{c['groups']}")
def test_conv_gradients(cfg, x64):
    x = rng().normal(size=(2, 4, 5, 4))
    w = rng(1).normal(size=(4, 4 // cfg["groups"], 2, 2))

    def f(x, w):
        return lax.conv_general_dilated(x, w, cfg["strides"], cfg["pads"], cfg["lhs_dil"],
                                        cfg["rhs_dil"], feature_group_count=cfg["groups"])
    check_grads(f, (x, w), order=1)


def test_reduce_window_values_and_gradients(x64):
    x = rng().permutation(60).reshape(3, 4, 5).astype(np.float64)   # distinct: no ties
    mx = lax.reduce_window(x, -np.inf, lax.max, (1, 2, 2), (1, 2, 1), "VALID")
    want = np.max(np.lib.stride_tricks.sliding_window_view(x, (1, 2, 2)), axis=(-3, -2, -1))[:, ::2]
    np.testing.assert_array_equal(mx, want)
    sm = lax.reduce_window(x, 0.0, lax.add, (1, 3, 3), (1, 1, 1), "SAME")
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    np.testing.assert_allclose(sm, np.lib.stride_tricks.sliding_window_view(padded, (1, 3, 3)).sum((-3, -2, -1)))
    assert lax.reduce_window(x, 5.0, lax.add, (1, 1, 1), (1, 1, 1), "VALID")[0, 0, 0] == x[0, 0, 0] + 5
    check_grads(lambda v: lax.reduce_window(v, -np.inf, lax.max, (1, 2, 2), (1, 1, 2), "SAME"), (x,), 1)
    check_grads(lambda v: lax.reduce_window(v, np.inf, lax.min, (2, 2, 1), (1, 1, 1), "VALID"), (x,), 1)
    check_grads(lambda v: lax.reduce_window(v, 0.0, lax.add, (1, 3, 2), (1, 2, 2), "SAME"), (x,), 2)
    # max pooling sends the whole gradient to each window's maximum
    g = np.asarray(grad(lambda v: lax.reduce_window(v, -np.inf, lax.max, (1, 2, 2), (1, 2, 2),
                                                    "VALID").sum())(x))
    assert g.sum() == 3 * 2 * 2 and set(np.unique(g)) <= {0.0, 1.0}


# ================================================================== layers

def test_dense_and_sequential_shapes_and_values():
    model = nn.Sequential([nn.Dense(16), nn.relu, nn.Dense(3)])
    params, state, out = model.init(random.key(0), (5,))
    assert out == (3,) and state == {}
    assert sorted(params) == ["Dense_0", "Dense_1"]
    assert params["Dense_0"]["kernel"].shape == (5, 16) and params["Dense_1"]["bias"].shape == (3,)
    x = rng().normal(size=(4, 5)).astype(F32)
    y, _ = model.apply(params, state, x)
    p0, p1 = params["Dense_0"], params["Dense_1"]
    want = np.maximum(x @ np.asarray(p0["kernel"]) + np.asarray(p0["bias"]), 0) @ np.asarray(p1["kernel"]) \
        + np.asarray(p1["bias"])
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    yj, _ = jit(lambda p, s, x: model.apply(p, s, x))(params, state, x)
    np.testing.assert_allclose(yj, y, rtol=1e-6)
    assert model.output_shape((5,)) == (3,)
    # the same key gives the same params
    again, _, _ = model.init(random.key(0), (5,))
    np.testing.assert_array_equal(again["Dense_1"]["kernel"], params["Dense_1"]["kernel"])


def test_conv_pool_flatten_layers():
    model = nn.Sequential([nn.Conv2D(4, 3), nn.MaxPool2D(2), nn.Conv2D(6, 2, strides=2, padding="VALID"),
                           nn.AvgPool2D(1), nn.Flatten(), nn.Dense(2)])
    params, state, out = model.init(random.key(1), (2, 8, 8))
    assert params["Conv2D_0"]["kernel"].shape == (4, 2, 3, 3)
    assert model.output_shape((2, 8, 8)) == out == (2,)
    x = rng().normal(size=(3, 2, 8, 8)).astype(F32)
    y, _ = model.apply(params, state, x)
    assert y.shape == (3, 2)
    c = params["Conv2D_0"]
    conv = np.asarray(lax.conv(x, c["kernel"], (1, 1), "SAME")) + np.asarray(c["bias"])[None, :, None, None]
    y0, _ = nn.Conv2D(4, 3).apply(c, {}, x)
    np.testing.assert_allclose(y0, conv, rtol=1e-6)
    pooled, _ = nn.MaxPool2D(2).apply({}, {}, conv)
    np.testing.assert_allclose(pooled, conv.reshape(3, 4, 4, 2, 4, 2).max(axis=(3, 5)))
    avg, _ = nn.AvgPool2D(2).apply({}, {}, conv)
    np.testing.assert_allclose(avg, conv.reshape(3, 4, 4, 2, 4, 2).mean(axis=(3, 5)), rtol=1e-5, atol=1e-6)


def test_dropout():
    layer = nn.Dropout(0.25)
    x = np.ones((200, 50), F32)
    y, _ = layer.apply({}, {}, x)                      # evaluation: identity
    np.testing.assert_array_equal(y, x)
    yt, _ = layer.apply({}, {}, x, key=random.key(0), train=True)
    yt = np.asarray(yt)
    assert set(np.unique(yt)) == {0.0, np.float32(1 / 0.75)}
    assert abs((yt == 0).mean() - 0.25) < 0.02
    np.testing.assert_array_equal(layer.apply({}, {}, x, key=random.key(0), train=True)[0], yt)
    with pytest.raises(ValueError, match="Dropout layer.*needs a PRNG key"):
        layer.apply({}, {}, x, train=True)
    model = nn.Sequential([nn.Dense(4), nn.Dropout(0.5)])
    p, s, _ = model.init(random.key(0), (3,))
    a, _ = model.apply(p, s, np.ones((2, 3), F32), key=random.key(1), train=True)
    b, _ = jit(lambda p, s, x, k: model.apply(p, s, x, key=k, train=True))(p, s, np.ones((2, 3), F32),
                                                                         random.key(1))
    np.testing.assert_array_equal(a, b)


def test_batchnorm_train_and_eval():
    bn = nn.BatchNorm(momentum=0.9)
    params, state, _ = bn.init(random.key(0), (3, 4, 4))
    x = (rng().normal(size=(8, 3, 4, 4)) * np.array([1, 2, 3])[None, :, None, None]
         + np.array([5, -1, 0])[None, :, None, None]).astype(F32)
    y, new_state = bn.apply(params, state, x, train=True)
    y = np.asarray(y)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, atol=1e-3)
    np.testing.assert_allclose(new_state["mean"], 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(new_state["var"], 0.9 + 0.1 * x.var(axis=(0, 2, 3)), rtol=1e-5)
    ye, same = bn.apply(params, new_state, x)           # evaluation: running statistics
    assert same is new_state
    m, v = np.asarray(new_state["mean"]), np.asarray(new_state["var"])
    np.testing.assert_allclose(ye, (x - m[None, :, None, None]) / np.sqrt(v[None, :, None, None] + 1e-5),
                               rtol=1e-4, atol=1e-5)
    # features of a (batch, features) input
    p2, s2, _ = nn.BatchNorm().init(random.key(0), (6,))
    y2, _ = nn.BatchNorm().apply(p2, s2, rng().normal(size=(10, 6)).astype(F32), train=True)
    np.testing.assert_allclose(np.asarray(y2).mean(0), 0, atol=1e-5)


def test_layernorm_and_embedding():
    ln = nn.LayerNorm()
    p, s, _ = ln.init(random.key(0), (5,))
    x = rng().normal(size=(3, 5)).astype(F32) * 4 + 2
    y = np.asarray(ln.apply(p, s, x)[0])
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(-1), 1, atol=1e-3)
    emb = nn.Embedding(10, 4)
    pe, _, out = emb.init(random.key(0), (7,))
    assert out == (7, 4)
    ids = np.array([[1, 2, 3], [9, 0, 1]], np.int32)
    ye, _ = emb.apply(pe, {}, ids)
    np.testing.assert_array_equal(ye, np.asarray(pe["embedding"])[ids])
    g = grad(lambda p: emb.apply(p, {}, ids)[0].sum())(pe)["embedding"]
    np.testing.assert_array_equal(np.asarray(g)[:, 0], np.bincount(ids.ravel(), minlength=10))


def test_sequential_gradients_match_finite_differences(x64):
    model = nn.Sequential([nn.Conv2D(2, 2, padding="VALID", dtype=jnp.float64), nn.gelu,
                           nn.AvgPool2D(2), nn.Flatten(), nn.LayerNorm(dtype=jnp.float64),
                           nn.Dense(3, dtype=jnp.float64)])
    params, state, _ = model.init(random.key(0), (1, 5, 5))
    x = rng().normal(size=(2, 1, 5, 5))
    labels = np.array([0, 2], np.int32)

    def loss(params):
        logits, _ = model.apply(params, state, x)
        return losses.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    check_grads(loss, (params,), order=1, modes=("rev",))


# ================================================================== errors

def test_wrong_input_shapes_name_the_layer_and_both_shapes():
    model = nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(2)])
    params, state, _ = model.init(random.key(0), (4,))
    with pytest.raises(jitgrad.ShapeError, match=r"Dense layer 'Dense_0' expected input \(batch, \.\.\., 4\) "
                                                 r"but got f32\[3,5\]"):
        model.apply(params, state, np.zeros((3, 5), F32))
    conv = nn.Sequential([nn.Conv2D(3, 3)])
    cp, cs, _ = conv.init(random.key(0), (2, 6, 6))
    with pytest.raises(jitgrad.ShapeError, match=r"Conv2D layer 'Conv2D_0' expected input "
                                                 r"\(batch, 2, height, width\).*f32\[1,3,6,6\]"):
        conv.apply(cp, cs, np.zeros((1, 3, 6, 6), F32))
    with pytest.raises(jitgrad.ShapeError, match=r"MaxPool2D layer expected input .*f32\[4,4\]"):
        nn.MaxPool2D().apply({}, {}, np.zeros((4, 4), F32))
    with pytest.raises(jitgrad.DTypeError, match="Embedding layer expected integer ids"):
        nn.Embedding(3, 2).apply({"embedding": np.zeros((3, 2), F32)}, {}, np.zeros((2,), F32))


def test_mismatched_parameter_trees_name_the_path():
    model = nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(2)])
    params, state, _ = model.init(random.key(0), (4,))
    x = np.zeros((3, 4), F32)
    bad = {**params, "Dense_1": {"kernel": np.zeros((8, 3), F32), "bias": np.zeros(2, F32)}}
    with pytest.raises(nn.ParamTreeError, match=r"params\['Dense_1'\]\['kernel'\] has shape \(8, 3\) "
                                                r"but Dense layer 'Dense_1' expects \(\*, 2\)"):
        model.apply(bad, state, x)
    bad = {**params, "Dense_0": {"kernel": params["Dense_0"]["kernel"]}}
    with pytest.raises(nn.ParamTreeError, match=r"params\['Dense_0'\] for Dense layer 'Dense_0' does "
                                                r"not fit: missing 'bias'"):
        model.apply(bad, state, x)
    with pytest.raises(nn.ParamTreeError, match=r"missing 'Dense_1'; unexpected 'dense_1'"):
        model.apply({"Dense_0": params["Dense_0"], "dense_1": params["Dense_1"]}, state, x)
    bn = nn.Sequential([nn.BatchNorm()])
    bp, bs, _ = bn.init(random.key(0), (3,))
    with pytest.raises(nn.ParamTreeError, match=r"state\['BatchNorm_0'\]\['var'\] has shape"):
        bn.apply(bp, {"BatchNorm_0": {"mean": np.zeros(3, F32), "var": np.zeros(4, F32)}},
                 np.zeros((2, 3), F32))


# ================================================================== losses

def test_cross_entropy_losses():
    logits = rng().normal(size=(5, 4)).astype(F32) * 3
    labels = np.array([0, 3, 1, 1, 2], np.int32)
    ref = -special.log_softmax(logits.astype(np.float64), axis=-1)[np.arange(5), labels]
    np.testing.assert_allclose(losses.softmax_cross_entropy_with_integer_labels(logits, labels), ref, rtol=1e-5)
    onehot = nn.one_hot(labels, 4)
    np.testing.assert_allclose(losses.softmax_cross_entropy(logits, onehot), ref, rtol=1e-5)
    g = grad(lambda z: losses.softmax_cross_entropy_with_integer_labels(z, labels).sum())(logits)
    np.testing.assert_allclose(g, special.softmax(logits, -1) - np.asarray(onehot), atol=1e-6)
    big = np.array([[1e4, 0.0]], F32)
    assert float(losses.softmax_cross_entropy_with_integer_labels(big, np.array([1]))[0]) == pytest.approx(1e4)


def test_binary_and_regression_losses():
    logits = np.array([-100.0, -1.0, 0.0, 2.0, 100.0], F32)
    labels = np.array([0.0, 1.0, 0.5, 1.0, 0.0], F32)
    ref = np.logaddexp(0, logits) - labels * logits
    np.testing.assert_allclose(losses.sigmoid_binary_cross_entropy(logits, labels), ref, rtol=1e-5)
    np.testing.assert_allclose(losses.binary_cross_entropy_with_logits(logits, labels), ref, rtol=1e-5)
    p, t = np.array([1.0, 2.0, 4.0], F32), np.array([0.0, 2.0, 2.0], F32)
    assert float(losses.mean_squared_error(p, t)) == pytest.approx(5 / 3)
    np.testing.assert_allclose(losses.squared_error(p, t), [1, 0, 4])
    np.testing.assert_allclose(losses.l2_loss(p, t), [0.5, 0, 2])
    params = {"a": {"kernel": np.ones((2, 2), F32), "bias": np.full(2, 3.0, F32)}}
    assert float(losses.l2_regularization(params)) == pytest.approx(0.5 * (4 + 18))
    assert float(losses.l2_regularization(params, lambda path, _: path.endswith("['kernel']"))) == 2.0


def test_loss_label_errors():
    logits = np.zeros((4, 3), F32)
    with pytest.raises(jitgrad.DTypeError, match="integer class ids of shape \\(4,\\), got f32\\[4\\]"):
        losses.softmax_cross_entropy_with_integer_labels(logits, np.zeros(4, F32))
    with pytest.raises(jitgrad.ShapeError, match="look like one-hot labels"):
        losses.softmax_cross_entropy_with_integer_labels(logits, np.zeros((4, 3), np.int32))
    with pytest.raises(jitgrad.ShapeError, match="without its class axis"):
        losses.softmax_cross_entropy_with_integer_labels(logits, np.zeros(5, np.int32))
    with pytest.raises(jitgrad.DTypeError, match="softmax_cross_entropy_with_integer_labels"):
        losses.softmax_cross_entropy(logits, np.zeros(4, np.int32))
    with pytest.raises(jitgrad.ShapeError, match="must have the shape of logits"):
        losses.softmax_cross_entropy(logits, np.zeros((4, 2), F32))
    with pytest.raises(jitgrad.ShapeError, match="same shape"):
        losses.mean_squared_error(np.zeros((4, 1), F32), np.zeros(4, F32))
