"""jitgrad.optim: update sequences against the published formulas, computed here with numpy."""
import numpy as np
import pytest

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import grad, jit, optim

F32 = np.float32
P0 = {"w": np.array([1.0, -2.0, 3.0], F32), "b": np.array(0.5, F32)}
G1 = {"w": np.array([0.1, -0.2, 0.3], F32), "b": np.array(-1.0, F32)}
G2 = {"w": np.array([0.4, 0.0, -0.5], F32), "b": np.array(2.0, F32)}


def run(opt, grads=(G1, G2), params=P0, jitted=False):
    """Apply ``opt`` to ``params`` with the given gradient sequence; returns the params."""
    state = opt.init(params)

    def step(params, state, g):
        updates, state = opt.update(g, state, params)
        return optim.apply_updates(params, updates), state
    step = jit(step) if jitted else step
    for g in grads:
        params, state = step(params, state, g)
    return params, state


def close(got, want, tol=1e-6):
    for k in want:
        np.testing.assert_allclose(np.asarray(got[k]), want[k], rtol=tol, atol=tol, err_msg=k)


def by_leaf(fn):
    """Apply a numpy reference ``fn(p, g1, g2)`` to each leaf."""
    return {k: fn(P0[k].astype(np.float64), G1[k].astype(np.float64), G2[k].astype(np.float64))
            for k in P0}


def test_adam_two_steps():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8

    def ref(p, g1, g2):
        m = v = 0.0
        for t, g in enumerate((g1, g2), start=1):
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        return p
    got, state = run(optim.adam(lr))
    close(got, by_leaf(ref))
    assert int(state[0].count) == 2
    close(run(optim.adam(lr), jitted=True)[0], by_leaf(ref))


def test_adamw_decouples_weight_decay():
    lr, wd = 0.05, 0.1

    def ref(p, g1, g2):
        m = v = 0.0
        for t, g in enumerate((g1, g2), start=1):
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            u = (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
            p = p - lr * (u + wd * p)
        return p
    close(run(optim.adamw(lr, weight_decay=wd))[0], by_leaf(ref))
    # a mask leaves the bias undecayed
    masked = run(optim.adamw(lr, weight_decay=wd, mask={"w": True, "b": False}))[0]
    close({"w": masked["w"]}, {"w": by_leaf(ref)["w"]})
    close({"b": masked["b"]}, {"b": run(optim.adam(lr))[0]["b"]})


def test_sgd_momentum_and_nesterov():
    lr, mu = 0.1, 0.9
    close(run(optim.sgd(lr))[0], by_leaf(lambda p, g1, g2: p - lr * (g1 + g2)))

    def heavy_ball(p, g1, g2):
        t1 = g1
        t2 = g2 + mu * t1
        return p - lr * t1 - lr * t2
    close(run(optim.sgd(lr, momentum=mu))[0], by_leaf(heavy_ball))
    close(run(optim.momentum(lr, mu))[0], by_leaf(heavy_ball))

    def nesterov(p, g1, g2):
        t1 = g1
        t2 = g2 + mu * t1
        return p - lr * (g1 + mu * t1) - lr * (g2 + mu * t2)
    close(run(optim.sgd(lr, momentum=mu, nesterov=True))[0], by_leaf(nesterov))
    close(run(optim.nesterov(lr, mu))[0], by_leaf(nesterov))


def test_rmsprop_variants():
    lr, d, eps = 0.01, 0.9, 1e-8

    def plain(p, g1, g2, inside=True):
        nu = 0.0
        for g in (g1, g2):
            nu = d * nu + (1 - d) * g * g
            p = p - lr * (g / np.sqrt(nu + eps) if inside else g / (np.sqrt(nu) + eps))
        return p
    close(run(optim.rmsprop(lr))[0], by_leaf(plain), tol=1e-5)
    close(run(optim.rmsprop(lr, eps_in_sqrt=False))[0],
          by_leaf(lambda p, a, b: plain(p, a, b, inside=False)), tol=1e-5)

    def centered(p, g1, g2):
        mu = nu = 0.0
        for g in (g1, g2):
            mu = d * mu + (1 - d) * g
            nu = d * nu + (1 - d) * g * g
            p = p - lr * g / np.sqrt(nu - mu * mu + eps)
        return p
    close(run(optim.rmsprop(lr, centered=True))[0], by_leaf(centered), tol=1e-4)


def test_adagrad_and_adadelta():
    lr = 0.1

    def adagrad(p, g1, g2):
        s = 0.1
        for g in (g1, g2):
            s = s + g * g
            p = p - lr * g / np.sqrt(s + 1e-7)
        return p
    close(run(optim.adagrad(lr))[0], by_leaf(adagrad), tol=1e-5)

    def adadelta(p, g1, g2, rho=0.9, eps=1e-6):
        eg = ex = 0.0
        for g in (g1, g2):
            eg = rho * eg + (1 - rho) * g * g
            u = np.sqrt(ex + eps) / np.sqrt(eg + eps) * g
            ex = rho * ex + (1 - rho) * u * u
            p = p - 1.0 * u
        return p
    close(run(optim.adadelta())[0], by_leaf(adadelta), tol=1e-5)


def test_clipping_and_global_norm():
    norm = np.sqrt(0.01 + 0.04 + 0.09 + 1.0)
    assert float(optim.global_norm(G1)) == pytest.approx(norm, rel=1e-6)
    clip = optim.clip_by_global_norm(0.5)
    clipped, _ = clip.update(G1, clip.init(P0))
    assert float(optim.global_norm(clipped)) == pytest.approx(0.5, rel=1e-5)
    np.testing.assert_allclose(clipped["w"], G1["w"] * 0.5 / norm, rtol=1e-5)
    kept, _ = optim.clip_by_global_norm(10.0).update(G1, ())
    np.testing.assert_array_equal(kept["w"], G1["w"])
    c, _ = optim.clip(0.15).update(G1, ())
    np.testing.assert_allclose(c["w"], [0.1, -0.15, 0.15])
    # chain: clip, then sgd
    got = run(optim.chain(optim.clip_by_global_norm(0.5), optim.sgd(1.0)), grads=(G1,))[0]
    np.testing.assert_allclose(got["w"], P0["w"] - G1["w"] * 0.5 / norm, rtol=1e-5)


SCHEDULES = [
    (optim.constant_schedule(0.3), {0: 0.3, 100: 0.3}),
    (optim.piecewise_constant_schedule(1.0, {10: 0.5, 20: 0.1}),
     {0: 1.0, 9: 1.0, 10: 0.5, 19: 0.5, 20: 0.05, 1000: 0.05}),
    (optim.exponential_decay(1.0, 10, 0.5), {0: 1.0, 10: 0.5, 5: 0.5 ** 0.5, 20: 0.25}),
    (optim.exponential_decay(1.0, 10, 0.5, staircase=True, end_value=0.2),
     {5: 1.0, 15: 0.5, 25: 0.25, 35: 0.2}),
    (optim.exponential_decay(1.0, 10, 0.5, transition_begin=5), {0: 1.0, 5: 1.0, 15: 0.5}),
    (optim.cosine_decay_schedule(2.0, 100, alpha=0.1),
     {0: 2.0, 50: 2.0 * (0.9 * 0.5 + 0.1), 100: 0.2, 200: 0.2}),
    (optim.linear_schedule(0.0, 1.0, 10, transition_begin=2), {0: 0.0, 2: 0.0, 7: 0.5, 12: 1.0, 50: 1.0}),
    (optim.polynomial_schedule(1.0, 0.0, 2, 10), {0: 1.0, 5: 0.25, 10: 0.0}),
    (optim.warmup_cosine_decay_schedule(0.0, 1.0, 10, 110, end_value=0.1),
     {0: 0.0, 5: 0.5, 10: 1.0, 60: 0.1 + 0.9 * 0.5, 110: 0.1, 500: 0.1}),
    (optim.join_schedules([optim.constant_schedule(1.0), optim.linear_schedule(1.0, 0.0, 4)], [3]),
     {0: 1.0, 2: 1.0, 3: 1.0, 5: 0.5, 7: 0.0}),
]


@pytest.mark.parametrize("i", range(len(SCHEDULES)))
def test_schedules(i):
    schedule, values = SCHEDULES[i]
    for step, want in values.items():
        assert float(schedule(step)) == pytest.approx(want, rel=1e-5, abs=1e-7), step
        assert float(jit(schedule)(np.int32(step))) == pytest.approx(want, rel=1e-5, abs=1e-7)


def test_learning_rate_schedule_follows_the_step_count():
    schedule = optim.piecewise_constant_schedule(1.0, {1: 0.1})
    got, state = run(optim.sgd(schedule))
    close(got, by_leaf(lambda p, g1, g2: p - 1.0 * g1 - 0.1 * g2))
    assert int(state[0].count) == 2


def test_optimizers_minimise_a_quadratic():
    target = np.array([1.0, -2.0, 0.5], F32)

    def loss(p):
        return jnp.sum((p["x"] - target) ** 2)
    for opt in (optim.sgd(0.1), optim.sgd(0.05, momentum=0.9), optim.adam(0.1), optim.adamw(0.1, weight_decay=0.0),
                optim.rmsprop(0.05), optim.adagrad(0.5), optim.adadelta(10.0)):
        params = {"x": np.zeros(3, F32)}
        state = opt.init(params)
        step = jit(lambda p, s: (lambda u_s: (optim.apply_updates(p, u_s[0]), u_s[1]))(
            opt.update(grad(loss)(p), s, p)))
        for _ in range(300):
            params, state = step(params, state)
        assert float(loss(params)) < 1e-3, opt


def test_mismatched_trees_are_clear_errors():
    opt = optim.adam(0.1)
    state = opt.init(P0)
    with pytest.raises(optim.OptimizerError, match=r"scale_by_adam: the trees do not match.*dict with keys"):
        opt.update({"w": G1["w"], "c": G1["b"]}, state, P0)
    with pytest.raises(optim.OptimizerError, match=r"apply_updates: updates\['w'\] has shape \(2,\) but "
                                                   r"params\['w'\] has shape \(3,\)"):
        optim.apply_updates(P0, {"w": np.zeros(2, F32), "b": np.zeros((), F32)})
    with pytest.raises(optim.OptimizerError, match="add_decayed_weights needs the params"):
        optim.adamw(0.1).update(G1, optim.adamw(0.1).init(P0))


def test_apply_updates_keeps_dtypes(x64):
    params = {"a": np.ones(2, np.float32), "b": np.ones(2, np.float64)}
    out = optim.apply_updates(params, {"a": np.ones(2, np.float64), "b": np.ones(2, np.float32)})
    assert out["a"].dtype == np.float32 and out["b"].dtype == np.float64
