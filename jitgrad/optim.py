"""``jitgrad.optim``: gradient transformations in the style of Optax.

An optimiser is a ``GradientTransformation(init, update)`` of pure functions over pytrees::

    opt = optim.adam(1e-3)
    opt_state = opt.init(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    params = optim.apply_updates(params, updates)

``update`` turns gradients into the *updates* to add to the parameters (so a learning rate
appears with a minus sign). Transformations compose with ``chain``: ``adamw`` is
``chain(scale_by_adam(...), add_decayed_weights(...), scale_by_learning_rate(...))``. A
learning rate may be a number or a *schedule*: a function of the step count (starting at
0) such as ``cosine_decay_schedule(1e-3, 1000)``. Everything is built from
``jitgrad.numpy``, so ``update`` runs eagerly or inside a jitted training step.

Names, arguments, defaults and formulas follow Optax (``optax.adam``,
``optax.clip_by_global_norm``, ``optax.warmup_cosine_decay_schedule``, ...).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from . import numpy as jnp
from .core import dtypes
from .core.errors import JitgradError
from .core.pytree import tree_leaves, tree_leaves_with_path, tree_map, tree_structure, keystr
from .core.trace import get_aval

PyTree = Any
Schedule = Callable[[Any], Any]
ScalarOrSchedule = float | Schedule


class OptimizerError(JitgradError, ValueError):
    """Gradients, parameters and optimiser state whose trees or shapes do not line up."""


class GradientTransformation(NamedTuple):
    """A pair of pure functions: ``init(params) -> state`` and
    ``update(updates, state, params=None) -> (updates, state)``."""

    init: Callable[[PyTree], Any]
    update: Callable[..., tuple[PyTree, Any]]


class EmptyState(NamedTuple):
    """The state of a stateless transformation."""


# ================================================================== tree helpers

def _map(where: str, fn: Callable, tree: PyTree, *rest: PyTree) -> PyTree:
    """``tree_map`` whose structure errors say which optimiser step was running."""
    try:
        return tree_map(fn, tree, *rest)
    except ValueError as e:
        if isinstance(e, JitgradError):
            raise
        raise OptimizerError(f"{where}: the trees do not match: {e}",
                             hint="Gradients, parameters and optimiser state must have the same "
                                  "structure: init the optimiser with the params you update.",
                             find_source=False) from None


def _zeros_like(tree: PyTree, dtype=None) -> PyTree:
    return tree_map(lambda p: jnp.zeros(get_aval(p).shape, dtype or get_aval(p).dtype), tree)


def _check_shapes(where: str, a: PyTree, b: PyTree, names=("updates", "params")) -> None:
    """Leaves at the same path must have the same shape (named by path if not)."""
    la, lb = tree_leaves_with_path(a), tree_leaves(b)
    if len(la) != len(lb) or tree_structure(a) != tree_structure(b):
        _map(where, lambda x, y: None, a, b)   # raises with the path where they differ
    for (path, x), y in zip(la, lb):
        sx, sy = get_aval(x).shape, get_aval(y).shape
        if sx != sy:
            raise OptimizerError(f"{where}: {names[0]}{keystr(path)} has shape {sx} but "
                                 f"{names[1]}{keystr(path)} has shape {sy}")


def global_norm(updates: PyTree) -> Any:
    """``sqrt(sum of squares of every entry of every leaf)``."""
    leaves = tree_leaves(updates)
    if not leaves:
        return jnp.zeros(())
    total = sum(jnp.sum(jnp.square(x)) for x in leaves)
    return jnp.sqrt(total)


def apply_updates(params: PyTree, updates: PyTree) -> PyTree:
    """``params + updates`` leaf by leaf, keeping each parameter's dtype."""
    _check_shapes("apply_updates", updates, params)
    return _map("apply_updates", lambda p, u: jnp.asarray(p + u).astype(get_aval(p).dtype),
                params, updates)


def _increment(count):
    """count + 1, saturating at the int32 maximum (never wraps negative)."""
    top = np.iinfo(np.int32).max
    return jnp.where(count < top, count + 1, count).astype(np.int32)


def _count0():
    return jnp.zeros((), np.int32)


def _cast_like(value, x):
    return jnp.asarray(value).astype(get_aval(x).dtype)


# ================================================================== combinators

def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply transformations one after the other; the state is the tuple of their states."""
    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None):
        if len(state) != len(transforms):
            raise OptimizerError(f"chain: expected a state of {len(transforms)} parts, got "
                                 f"{len(state)}", find_source=False)
        new_state = []
        for t, s in zip(transforms, state):
            updates, s = t.update(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)
    return GradientTransformation(init, update)


def identity() -> GradientTransformation:
    """Leave the updates unchanged."""
    return GradientTransformation(lambda params: EmptyState(),
                                  lambda updates, state, params=None: (updates, state))


# ================================================================== scaling

def scale(step_size: float) -> GradientTransformation:
    """Multiply every update by ``step_size``."""
    def update(updates, state, params=None):
        return _map("scale", lambda g: g * _cast_like(step_size, g), updates), state
    return GradientTransformation(lambda params: EmptyState(), update)


class ScaleByScheduleState(NamedTuple):
    count: Any   # int32 scalar: how many updates have been made


def scale_by_schedule(step_size_fn: Schedule) -> GradientTransformation:
    """Multiply the updates by ``step_size_fn(count)`` (count = 0 at the first update)."""
    def init(params):
        return ScaleByScheduleState(count=_count0())

    def update(updates, state, params=None):
        step = step_size_fn(state.count)
        updates = _map("scale_by_schedule", lambda g: g * _cast_like(step, g), updates)
        return updates, ScaleByScheduleState(count=_increment(state.count))
    return GradientTransformation(init, update)


def scale_by_learning_rate(learning_rate: ScalarOrSchedule, *,
                           flip_sign: bool = True) -> GradientTransformation:
    """Multiply by ``-learning_rate`` (a number or a schedule); ``flip_sign=False`` keeps +."""
    sign = -1.0 if flip_sign else 1.0
    if callable(learning_rate):
        return scale_by_schedule(lambda count: sign * learning_rate(count))
    return scale(sign * learning_rate)


# ================================================================== moments

class TraceState(NamedTuple):
    trace: PyTree


def trace(decay: float, nesterov: bool = False, accumulator_dtype=None) -> GradientTransformation:
    """Momentum: ``t = g + decay * t``; the update is ``t`` (or ``g + decay * t`` for Nesterov)."""
    def init(params):
        return TraceState(trace=_zeros_like(params, accumulator_dtype))

    def update(updates, state, params=None):
        new_trace = _map("trace", lambda g, t: g + decay * t, updates, state.trace)
        if nesterov:
            updates = _map("trace", lambda g, t: g + decay * t, updates, new_trace)
        else:
            updates = new_trace
        return updates, TraceState(trace=new_trace)
    return GradientTransformation(init, update)


class ScaleByAdamState(NamedTuple):
    count: Any
    mu: PyTree
    nu: PyTree


def _bias_correction(moment, decay: float, count):
    correction = 1 - jnp.asarray(decay, np.float32) ** count.astype(np.float32)
    return tree_map(lambda t: t / correction.astype(get_aval(t).dtype), moment)


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, eps_root: float = 0.0,
                  mu_dtype=None, *, nesterov: bool = False) -> GradientTransformation:
    """Adam's rescaling (Kingma & Ba, 2015) with bias-corrected moments:
    ``mu_hat / (sqrt(nu_hat + eps_root) + eps)``; ``nesterov=True`` gives NAdam."""
    def init(params):
        return ScaleByAdamState(count=_count0(), mu=_zeros_like(params, mu_dtype),
                                nu=_zeros_like(params))

    def update(updates, state, params=None):
        mu = _map("scale_by_adam", lambda g, m: (1 - b1) * g + b1 * m, updates, state.mu)
        nu = _map("scale_by_adam", lambda g, v: (1 - b2) * jnp.square(g) + b2 * v,
                  updates, state.nu)
        count = _increment(state.count)
        if nesterov:
            mu_hat = tree_map(lambda m, g: b1 * m + (1 - b1) * g,
                              _bias_correction(mu, b1, _increment(count)),
                              _bias_correction(updates, b1, count))
        else:
            mu_hat = _bias_correction(mu, b1, count)
        nu_hat = _bias_correction(nu, b2, count)
        updates = tree_map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat)
        return updates, ScaleByAdamState(count=count, mu=mu, nu=nu)
    return GradientTransformation(init, update)


class ScaleByRmsState(NamedTuple):
    nu: PyTree


def scale_by_rms(decay: float = 0.9, eps: float = 1e-8, initial_scale: float = 0.0,
                 eps_in_sqrt: bool = True) -> GradientTransformation:
    """RMSProp's rescaling: ``g / sqrt(nu + eps)`` with ``nu`` a moving average of ``g^2``
    (``eps_in_sqrt=False``: ``g / (sqrt(nu) + eps)``)."""
    def init(params):
        return ScaleByRmsState(nu=tree_map(lambda p: jnp.full(get_aval(p).shape, initial_scale,
                                                             get_aval(p).dtype), params))

    def update(updates, state, params=None):
        nu = _map("scale_by_rms", lambda g, n: (1 - decay) * jnp.square(g) + decay * n,
                  updates, state.nu)
        if eps_in_sqrt:
            updates = tree_map(lambda g, n: g / jnp.sqrt(n + eps), updates, nu)
        else:
            updates = tree_map(lambda g, n: g / (jnp.sqrt(n) + eps), updates, nu)
        return updates, ScaleByRmsState(nu=nu)
    return GradientTransformation(init, update)


class ScaleByRStdDevState(NamedTuple):
    mu: PyTree
    nu: PyTree


def scale_by_stddev(decay: float = 0.9, eps: float = 1e-8,
                    initial_scale: float = 0.0) -> GradientTransformation:
    """Centred RMSProp: ``g / sqrt(nu - mu^2 + eps)`` (moving averages of ``g^2`` and ``g``)."""
    def init(params):
        return ScaleByRStdDevState(
            mu=_zeros_like(params),
            nu=tree_map(lambda p: jnp.full(get_aval(p).shape, initial_scale, get_aval(p).dtype),
                        params))

    def update(updates, state, params=None):
        mu = _map("scale_by_stddev", lambda g, m: (1 - decay) * g + decay * m, updates, state.mu)
        nu = _map("scale_by_stddev", lambda g, n: (1 - decay) * jnp.square(g) + decay * n,
                  updates, state.nu)
        updates = tree_map(lambda g, m, n: g / jnp.sqrt(n - jnp.square(m) + eps), updates, mu, nu)
        return updates, ScaleByRStdDevState(mu=mu, nu=nu)
    return GradientTransformation(init, update)


class ScaleByRssState(NamedTuple):
    sum_of_squares: PyTree


def scale_by_rss(initial_accumulator_value: float = 0.1, eps: float = 1e-7) -> GradientTransformation:
    """AdaGrad's rescaling: ``g / sqrt(sum of all g^2 so far + eps)``."""
    def init(params):
        return ScaleByRssState(sum_of_squares=tree_map(
            lambda p: jnp.full(get_aval(p).shape, initial_accumulator_value, get_aval(p).dtype),
            params))

    def update(updates, state, params=None):
        sos = _map("scale_by_rss", lambda g, s: jnp.square(g) + s, updates, state.sum_of_squares)
        updates = tree_map(
            lambda g, s: jnp.where(s > 0, g / jnp.sqrt(s + eps), jnp.zeros_like(g)), updates, sos)
        return updates, ScaleByRssState(sum_of_squares=sos)
    return GradientTransformation(init, update)


class ScaleByAdaDeltaState(NamedTuple):
    e_g: PyTree
    e_x: PyTree


def scale_by_adadelta(rho: float = 0.9, eps: float = 1e-6) -> GradientTransformation:
    """AdaDelta's rescaling (Zeiler, 2012): ``sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g``."""
    def init(params):
        return ScaleByAdaDeltaState(e_g=_zeros_like(params), e_x=_zeros_like(params))

    def update(updates, state, params=None):
        e_g = _map("scale_by_adadelta", lambda g, e: rho * e + (1 - rho) * jnp.square(g),
                   updates, state.e_g)
        updates = tree_map(lambda g, eg, ex: jnp.sqrt(ex + eps) / jnp.sqrt(eg + eps) * g,
                           updates, e_g, state.e_x)
        e_x = tree_map(lambda u, e: rho * e + (1 - rho) * jnp.square(u), updates, state.e_x)
        return updates, ScaleByAdaDeltaState(e_g=e_g, e_x=e_x)
    return GradientTransformation(init, update)


# ================================================================== weight decay, clipping

def _resolve_mask(mask, params):
    if mask is None:
        return None
    return mask(params) if callable(mask) else mask


def add_decayed_weights(weight_decay: float = 0.0, mask=None) -> GradientTransformation:
    """``updates + weight_decay * params`` (decoupled weight decay, as AdamW).

    ``mask`` (a tree of bools like params, or a function of params returning one) limits
    the decay to the leaves marked True.
    """
    def update(updates, state, params=None):
        if params is None:
            raise OptimizerError("add_decayed_weights needs the params: call "
                                 "update(grads, state, params)", find_source=False)
        m = _resolve_mask(mask, params)
        if m is None:
            out = _map("add_decayed_weights", lambda g, p: g + weight_decay * p, updates, params)
        else:
            out = _map("add_decayed_weights",
                       lambda g, p, keep: g + weight_decay * p if keep else g, updates, params, m)
        return out, state
    return GradientTransformation(lambda params: EmptyState(), update)


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Rescale all updates together so that their global norm is at most ``max_norm``."""
    def update(updates, state, params=None):
        g_norm = global_norm(updates)
        trigger = g_norm < max_norm

        def clip(t):
            scaled = (t / g_norm.astype(get_aval(t).dtype)) * max_norm
            return jnp.where(trigger, t, scaled)
        return tree_map(clip, updates), state
    return GradientTransformation(lambda params: EmptyState(), update)


def clip(max_delta: float) -> GradientTransformation:
    """Clip every entry of the updates to ``[-max_delta, max_delta]``."""
    def update(updates, state, params=None):
        return tree_map(lambda g: jnp.clip(g, -max_delta, max_delta), updates), state
    return GradientTransformation(lambda params: EmptyState(), update)


# ================================================================== optimisers

def sgd(learning_rate: ScalarOrSchedule, momentum: float | None = None, nesterov: bool = False,
        accumulator_dtype=None) -> GradientTransformation:
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""
    parts = []
    if momentum is not None:
        parts.append(trace(decay=momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype))
    parts.append(scale_by_learning_rate(learning_rate))
    return chain(*parts)


def momentum(learning_rate: ScalarOrSchedule, mass: float = 0.9) -> GradientTransformation:
    """SGD with heavy-ball momentum (``jax.example_libraries.optimizers.momentum``)."""
    return sgd(learning_rate, momentum=mass)


def nesterov(learning_rate: ScalarOrSchedule, mass: float = 0.9) -> GradientTransformation:
    """SGD with Nesterov momentum (``jax.example_libraries.optimizers.nesterov``)."""
    return sgd(learning_rate, momentum=mass, nesterov=True)


def adam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
         eps_root: float = 0.0, mu_dtype=None, *, nesterov: bool = False) -> GradientTransformation:
    """Adam (Kingma & Ba, 2015)."""
    return chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
                 scale_by_learning_rate(learning_rate))


def adamw(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          eps_root: float = 0.0, mu_dtype=None, weight_decay: float = 1e-4, mask=None, *,
          nesterov: bool = False) -> GradientTransformation:
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019)."""
    return chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
                 add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))


def rmsprop(learning_rate: ScalarOrSchedule, decay: float = 0.9, eps: float = 1e-8,
            initial_scale: float = 0.0, eps_in_sqrt: bool = True, centered: bool = False,
            momentum: float | None = None, nesterov: bool = False) -> GradientTransformation:
    """RMSProp (Hinton's lecture 6e); ``centered=True`` divides by the gradient's std."""
    parts = [scale_by_stddev(decay, eps, initial_scale) if centered
             else scale_by_rms(decay, eps, initial_scale, eps_in_sqrt),
             scale_by_learning_rate(learning_rate)]
    if momentum is not None:
        parts.append(trace(decay=momentum, nesterov=nesterov))
    return chain(*parts)


def adagrad(learning_rate: ScalarOrSchedule, initial_accumulator_value: float = 0.1,
            eps: float = 1e-7) -> GradientTransformation:
    """AdaGrad (Duchi et al., 2011)."""
    return chain(scale_by_rss(initial_accumulator_value, eps),
                 scale_by_learning_rate(learning_rate))


def adadelta(learning_rate: ScalarOrSchedule | None = None, rho: float = 0.9, eps: float = 1e-6,
             weight_decay: float = 0.0) -> GradientTransformation:
    """AdaDelta (Zeiler, 2012); ``learning_rate=None`` means 1 (the original method)."""
    return chain(add_decayed_weights(weight_decay),
                 scale_by_adadelta(rho, eps),
                 scale_by_learning_rate(1.0 if learning_rate is None else learning_rate))


# ================================================================== schedules

def constant_schedule(value: float) -> Schedule:
    """``value`` at every step."""
    return lambda count: jnp.asarray(value, dtypes.default_float_dtype())


def piecewise_constant_schedule(init_value: float,
                                boundaries_and_scales: dict[int, float] | None = None) -> Schedule:
    """A step schedule: start at ``init_value``; from step ``b`` on, multiply by
    ``boundaries_and_scales[b]`` (cumulatively)."""
    items = sorted((boundaries_and_scales or {}).items())

    def schedule(count):
        count = jnp.asarray(count)
        v = jnp.asarray(init_value, dtypes.default_float_dtype())
        for threshold, factor in items:
            v = jnp.where(count >= threshold, v * factor, v)
        return v
    return schedule


def exponential_decay(init_value: float, transition_steps: int, decay_rate: float,
                      transition_begin: int = 0, staircase: bool = False,
                      end_value: float | None = None) -> Schedule:
    """``init_value * decay_rate ** ((count - transition_begin) / transition_steps)``
    (the exponent floored with ``staircase``), bounded by ``end_value``."""
    if transition_steps <= 0:
        raise ValueError("exponential_decay: transition_steps must be > 0")

    def schedule(count):
        steps = jnp.asarray(count).astype(dtypes.default_float_dtype()) - transition_begin
        p = steps / transition_steps
        if staircase:
            p = jnp.floor(p)
        value = jnp.where(steps <= 0, init_value, init_value * jnp.power(decay_rate, p))
        if end_value is not None:
            value = jnp.maximum(value, end_value) if decay_rate < 1 else jnp.minimum(value, end_value)
        return value
    return schedule


def polynomial_schedule(init_value: float, end_value: float, power: float, transition_steps: int,
                        transition_begin: int = 0) -> Schedule:
    """From ``init_value`` to ``end_value`` along ``(1 - t)^power`` over ``transition_steps``."""
    if transition_steps <= 0:
        return constant_schedule(init_value)

    def schedule(count):
        c = jnp.clip(jnp.asarray(count).astype(dtypes.default_float_dtype()) - transition_begin,
                     0, transition_steps)
        frac = 1 - c / transition_steps
        return (init_value - end_value) * (frac ** power) + end_value
    return schedule


def linear_schedule(init_value: float, end_value: float, transition_steps: int,
                    transition_begin: int = 0) -> Schedule:
    """A straight line from ``init_value`` to ``end_value`` over ``transition_steps``."""
    return polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)


def cosine_decay_schedule(init_value: float, decay_steps: int, alpha: float = 0.0,
                          exponent: float = 1.0) -> Schedule:
    """Cosine decay from ``init_value`` to ``alpha * init_value`` over ``decay_steps``."""
    if decay_steps <= 0:
        raise ValueError("cosine_decay_schedule: decay_steps must be > 0")

    def schedule(count):
        c = jnp.minimum(jnp.asarray(count).astype(dtypes.default_float_dtype()), decay_steps)
        cosine = 0.5 * (1 + jnp.cos(np.pi * c / decay_steps))
        return init_value * ((1 - alpha) * cosine ** exponent + alpha)
    return schedule


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """``schedules[i]`` from ``boundaries[i - 1]`` on, each restarted at 0 at its boundary."""
    if len(boundaries) != len(schedules) - 1:
        raise ValueError("join_schedules: need one boundary fewer than schedules")

    def schedule(count):
        count = jnp.asarray(count)
        out = schedules[0](count)
        for boundary, sched in zip(boundaries, schedules[1:]):
            out = jnp.where(count < boundary, out, sched(count - boundary))
        return out
    return schedule


def warmup_cosine_decay_schedule(init_value: float, peak_value: float, warmup_steps: int,
                                 decay_steps: int, end_value: float = 0.0,
                                 exponent: float = 1.0) -> Schedule:
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then cosine
    decay to ``end_value`` at step ``decay_steps`` (which counts the warm-up)."""
    alpha = 0.0 if peak_value == 0 else end_value / peak_value
    return join_schedules(
        [linear_schedule(init_value, peak_value, warmup_steps),
         cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent)],
        [warmup_steps])


def warmup_exponential_decay_schedule(init_value: float, peak_value: float, warmup_steps: int,
                                      transition_steps: int, decay_rate: float,
                                      transition_begin: int = 0, staircase: bool = False,
                                      end_value: float | None = None) -> Schedule:
    """Linear warm-up to ``peak_value``, then ``exponential_decay`` from it."""
    return join_schedules(
        [linear_schedule(init_value, peak_value, warmup_steps),
         exponential_decay(peak_value, transition_steps, decay_rate, transition_begin,
                           staircase, end_value)],
        [warmup_steps])


__all__ = [
    "GradientTransformation", "EmptyState", "OptimizerError", "adadelta", "adagrad", "adam",
    "adamw", "add_decayed_weights", "apply_updates", "chain", "clip", "clip_by_global_norm",
    "constant_schedule", "cosine_decay_schedule", "exponential_decay", "global_norm",
    "identity", "join_schedules", "linear_schedule", "momentum", "nesterov",
    "piecewise_constant_schedule", "polynomial_schedule", "rmsprop", "scale",
    "scale_by_adadelta", "scale_by_adam", "scale_by_learning_rate", "scale_by_rms",
    "scale_by_rss", "scale_by_schedule", "scale_by_stddev", "sgd", "trace",
    "warmup_cosine_decay_schedule", "warmup_exponential_decay_schedule",
]
