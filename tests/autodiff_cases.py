"""Inputs and params for the autodiff sweep (tests/test_autodiff.py): one entry per primitive.

Every primitive in ``jitgrad.core.primitive.registry`` must have an entry here; the sweep
fails for a primitive without one, so a primitive added later without derivative rules
(or without test inputs) is caught. An entry is a list of ``Case``\\ s:

* ``Case(make, kind="fd")``: ``make(rng) -> (args, fun)``, float64 ``args`` and a function
  of them that applies the primitive (with valid params, and integer operands such as
  indices closed over). ``check_grads`` compares first and second order JVPs and VJPs
  with finite differences; ``modes`` restricts it (``("fwd",)`` for while_loop, which has
  no reverse mode; ``("rev",)`` for custom_vjp, which has no forward mode).
* ``kind="zero"``: the derivative is zero by definition (stop_gradient, integer or boolean
  results, bitcasts): the JVP tangent and the VJP cotangent must be zeros.
* ``kind="rule"``: the primitive takes no float input (integer ops, iota): ``make`` returns
  ``(primals, params)``; its JVP rule, called directly, must give ``Zero`` tangents.

Inputs avoid the points where a function is not differentiable (ties, integers for
floor, the edges of a domain): the delicate points have their own tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import lax
from jitgrad.ops import elementwise as ew
from jitgrad.ops import indexing as ix
from jitgrad.ops import layout as lo
from jitgrad.ops import linalg as la
from jitgrad.ops import reductions as rd


@dataclass
class Case:
    make: Callable
    kind: str = "fd"
    modes: tuple = ("fwd", "rev")
    order: int = 2
    tol: float | None = None
    label: str = ""


def U(rng, shape, lo_=-2.0, hi=2.0):
    return rng.uniform(lo_, hi, size=shape).astype(np.float64)


def away_from_int(rng, shape):
    """Values with fractional part in [0.2, 0.4]: far from floor/ceil/round jumps."""
    return (rng.integers(-3, 3, size=shape) + rng.uniform(0.2, 0.4, size=shape)).astype(np.float64)


def unary(p, lo_=-2.0, hi=2.0, shape=(3, 4), **params):
    return [Case(lambda rng: ([U(rng, shape, lo_, hi)], lambda x: p.bind(x, **params)))]


def binary(p, lo_=-2.0, hi=2.0, lo2=None, hi2=None):
    lo2 = lo_ if lo2 is None else lo2
    hi2 = hi if hi2 is None else hi2
    return [
        Case(lambda rng: ([U(rng, (3, 4), lo_, hi), U(rng, (3, 4), lo2, hi2)],
                          lambda x, y: p.bind(x, y)), label="same shapes"),
        # A rank-0 operand broadcasts: its cotangent is summed.
        Case(lambda rng: ([U(rng, (), lo_, hi), U(rng, (3,), lo2, hi2)],
                          lambda x, y: p.bind(x, y)), label="rank-0 lhs"),
    ]


def compare(p):
    return [Case(lambda rng: ([U(rng, (3, 4)), U(rng, (3, 4))], lambda x, y: p.bind(x, y)),
                 kind="zero")]


def int_rule(p, nargs=2, dtype=np.int32, **params):
    def make(rng):
        return [rng.integers(0, 7, size=(4,)).astype(dtype) for _ in range(nargs)], params
    return [Case(make, kind="rule")]


def distinct(rng, shape):
    """Random values with no ties (for max/min/argmax)."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) * 0.37 + U(rng, shape, 0, 0.1)).astype(np.float64)


def _reduce(p, **kw):
    return [Case(lambda rng, axes=axes: ([distinct(rng, (3, 4))],
                                         lambda x: p.bind(x, axes=axes, **kw)),
                 label=f"axes={axes}") for axes in ((0,), (1,), (0, 1))]


def _cumulative(p):
    return [Case(lambda rng: ([distinct(rng, (6,)) * 0.5 - 1.0],
                              lambda x: p.bind(x, axis=0, reverse=False)), label="1-d"),
            Case(lambda rng: ([distinct(rng, (3, 5)) * 0.2 + 0.3],
                              lambda x: p.bind(x, axis=1, reverse=True)), label="axis 1 reverse")]


# ------------------------------------------------------------------------ indexing

IDX_CLIP = np.array([[0, 1], [2, 3], [5, 0], [-1, 2]], np.int32)    # (5,0), (-1,2) out of range
IDX_IN = np.array([[0, 1], [2, 3], [1, 0]], np.int32)
IDX_DUP = np.array([[0, 1], [2, 3], [0, 1], [1, 2]], np.int32)       # (0,1) twice


def _gather(mode):
    def make(rng):
        return [U(rng, (3, 4, 2))], lambda x: ix.gather_p.bind(
            x, IDX_CLIP, axes=(0, 1), mode=mode, fill_value=None if mode == "clip" else -1.0)
    return Case(make, label=mode)


def _scatter(combine, idx, lo_=-2.0):
    def make(rng):
        upd = U(rng, (len(idx), 2), lo_, 2.0) if combine not in ("min", "max") else \
            distinct(rng, (len(idx), 2)) - 1.5
        op = U(rng, (3, 4, 2), lo_, 2.0) if combine not in ("min", "max") else distinct(rng, (3, 4, 2)) * 0.3 - 1.2
        return [op, upd], lambda o, u: ix.scatter_p.bind(o, idx, u, axes=(0, 1), combine=combine)
    return Case(make, label=combine)


# ------------------------------------------------------------------------ higher-order primitives

def _custom_jvp_fn():
    @jitgrad.custom_jvp
    def f(x, y):
        return jnp.sin(x) * y

    @f.defjvp
    def f_jvp(primals, tangents):
        (x, y), (tx, ty) = primals, tangents
        return f(x, y), jnp.cos(x) * y * tx + jnp.sin(x) * ty
    return jitgrad.jit(f)   # under jit the call is a custom_jvp_call equation


def _custom_vjp_fn():
    @jitgrad.custom_vjp
    def f(x, y):
        return jnp.sin(x) * y

    def fwd(x, y):
        return f(x, y), (x, y)

    def bwd(res, g):
        x, y = res
        return jnp.cos(x) * y * g, jnp.sin(x) * g
    f.defvjp(fwd, bwd)
    return jitgrad.jit(f)


def _xy(rng):
    return [U(rng, (3,)), U(rng, (3,))]


def _maxpool(x):
    return lax.reduce_window(x, -np.inf, lax.max, (2, 2), (1, 1), "VALID")


def _minpool(x):
    return lax.reduce_window(x, np.inf, lax.min, (2, 2), (1, 1), "VALID")


def _pool_tangent(rng):
    x = distinct(rng, (4, 5))
    return [x, U(rng, (4, 5))], lambda x, t: jitgrad.jvp(_maxpool, (x,), (t,))[1]


def _pool_cotangent(rng):
    x = distinct(rng, (4, 5))
    return [x, U(rng, (3, 4))], lambda x, ct: jitgrad.vjp(_maxpool, x)[1](ct)[0]


def _while(x):
    def body(c):
        i, v = c
        return i + 1, jnp.sin(v) * 1.5
    return lax.while_loop(lambda c: c[0] < 3, body, (0, x))[1]


def _scan(x, y):
    def body(c, xi):
        c = jnp.tanh(c * xi + y)
        return c, c * 2.0
    c, ys = lax.scan(body, x[0], x)
    return c + ys.sum()


def _cond(x, y):
    return lax.cond(x.sum() > 0, lambda a, b: jnp.sin(a) * b, lambda a, b: a - b, x, y)


def _debug(x):
    jitgrad.debug.callback(lambda *a: None, x)
    return jnp.sin(x)


def _remat(x, y):
    return jitgrad.checkpoint(lambda a, b: jnp.sin(a) * jnp.exp(b))(x, y)


# ------------------------------------------------------------------------ the table

def cases() -> dict[str, list[Case]]:
    """The sweep table (built lazily so that importing this module is cheap)."""
    T: dict[str, list[Case]] = {}
    for p in (ew.add_p, ew.sub_p, ew.mul_p, ew.atan2_p, ew.nextafter_p):
        T[p.name] = binary(p)
    T["div"] = binary(ew.div_p, 0.5, 2.0)
    T["rem"] = binary(ew.rem_p, 0.2, 0.8, 1.5, 2.0)
    T["pow"] = binary(ew.pow_p, 0.5, 2.0)
    T["max"] = [Case(lambda rng: ([U(rng, (3, 4)), U(rng, (3, 4))],
                                  lambda x, y: ew.max_p.bind(x, y)))]
    T["min"] = [Case(lambda rng: ([U(rng, (3, 4)), U(rng, (3, 4))],
                                  lambda x, y: ew.min_p.bind(x, y)))]
    for p in (ew.neg_p, ew.square_p, ew.exp_p, ew.exp2_p, ew.expm1_p, ew.tanh_p, ew.logistic_p,
              ew.sin_p, ew.cos_p, ew.atan_p, ew.sinh_p, ew.cosh_p, ew.asinh_p, ew.erf_p):
        T[p.name] = unary(p)
    T["abs"] = unary(ew.abs_p, 0.3, 2.0) + unary(ew.abs_p, -2.0, -0.3)
    T["tan"] = unary(ew.tan_p, -1.0, 1.0)
    for p in (ew.log_p, ew.sqrt_p, ew.rsqrt_p, ew.lgamma_p):
        T[p.name] = unary(p, 0.5, 3.0)
    T["lgamma"] += unary(ew.lgamma_p, -2.8, -2.2)   # the reflection branch
    T["cbrt"] = unary(ew.cbrt_p, 0.3, 2.0) + unary(ew.cbrt_p, -2.0, -0.3)
    T["log1p"] = unary(ew.log1p_p, -0.5, 2.0)
    for p in (ew.asin_p, ew.acos_p, ew.atanh_p, ew.erf_inv_p):
        T[p.name] = unary(p, -0.8, 0.8)
    T["acosh"] = unary(ew.acosh_p, 1.2, 3.0)
    for p in (ew.floor_p, ew.ceil_p, ew.sign_p):
        T[p.name] = [Case(lambda rng, p=p: ([away_from_int(rng, (3, 4))], lambda x: p.bind(x)))]
    T["round"] = [Case(lambda rng: ([away_from_int(rng, (3, 4))],
                                    lambda x: ew.round_p.bind(x, rounding_method=m)),
                       label=f"method {m}") for m in (0, 1)]
    T["is_finite"] = [Case(lambda rng: ([U(rng, (3,))], lambda x: ew.is_finite_p.bind(x)),
                           kind="zero")]
    for p in (ew.eq_p, ew.ne_p, ew.lt_p, ew.le_p, ew.gt_p, ew.ge_p):
        T[p.name] = compare(p)
    for p in (ew.and_p, ew.or_p, ew.xor_p, ew.shift_left_p, ew.shift_right_logical_p,
              ew.shift_right_arithmetic_p):
        T[p.name] = int_rule(p)
    T["not"] = int_rule(ew.not_p, nargs=1)
    T["integer_pow"] = [Case(lambda rng, y=y: ([U(rng, (3, 4), 0.5, 2.0)],
                                               lambda x: ew.integer_pow_p.bind(x, y=y)),
                             label=f"y={y}") for y in (0, 1, 2, 3, -2)]
    T["select_n"] = [
        Case(lambda rng: ([U(rng, (3, 4)), U(rng, (3, 4))], lambda x, y: ew.select_n_p.bind(
            np.array([[1, 0, 1, 0]] * 3, bool), x, y)), label="bool"),
        Case(lambda rng: ([U(rng, (4,)), U(rng, (4,)), U(rng, ())], lambda a, b, c:
                          ew.select_n_p.bind(np.array([0, 2, 1, 2], np.int32), a, b, c)),
             label="int32, rank-0 case"),
    ]
    T["clamp"] = [Case(lambda rng: ([np.float64(-0.5), U(rng, (6,)), np.float64(0.7)],
                                    lambda lo_, x, hi: ew.clamp_p.bind(lo_, x, hi)))]
    T["convert_element_type"] = [
        Case(lambda rng: ([U(rng, (4,))], lambda x: ew.convert_element_type_p.bind(
            ew.convert_element_type_p.bind(x, new_dtype=np.dtype("float32"), weak_type=False),
            new_dtype=np.dtype("float64"), weak_type=False)), tol=1e-2, label="f64->f32->f64"),
        Case(lambda rng: ([U(rng, (4,))], lambda x: ew.convert_element_type_p.bind(
            x, new_dtype=np.dtype("int32"), weak_type=False)), kind="zero", label="to int"),
    ]
    T["bitcast_convert_type"] = [Case(lambda rng: ([U(rng, (4,))], lambda x:
                                                   ew.bitcast_convert_type_p.bind(
                                                       x, new_dtype=np.dtype("int64"))),
                                      kind="zero")]
    T["stop_gradient"] = [Case(lambda rng: ([U(rng, (4,))],
                                            lambda x: jitgrad.lax.stop_gradient(x)), kind="zero")]

    # layout
    T["broadcast_in_dim"] = [
        Case(lambda rng: ([U(rng, (3, 1))], lambda x: lo.broadcast_in_dim_p.bind(
            x, shape=(2, 3, 4), broadcast_dimensions=(1, 2)))),
        Case(lambda rng: ([U(rng, ())], lambda x: lo.broadcast_in_dim_p.bind(
            x, shape=(2, 3), broadcast_dimensions=())), label="scalar")]
    T["reshape"] = [
        Case(lambda rng: ([U(rng, (3, 4))], lambda x: lo.reshape_p.bind(
            x, new_sizes=(2, 6), dimensions=None))),
        Case(lambda rng: ([U(rng, (3, 4))], lambda x: lo.reshape_p.bind(
            x, new_sizes=(6, 2), dimensions=(1, 0))), label="with dimensions")]
    T["transpose"] = [Case(lambda rng: ([U(rng, (2, 3, 4))], lambda x: lo.transpose_p.bind(
        x, permutation=(2, 0, 1))))]
    T["squeeze"] = [Case(lambda rng: ([U(rng, (3, 1, 4))],
                                      lambda x: lo.squeeze_p.bind(x, dimensions=(1,))))]
    T["rev"] = [Case(lambda rng: ([U(rng, (3, 4))], lambda x: lo.rev_p.bind(x, dimensions=(0, 1))))]
    T["slice"] = [
        Case(lambda rng: ([U(rng, (5, 6))], lambda x: lo.slice_p.bind(
            x, start_indices=(1, 0), limit_indices=(5, 6), strides=(2, 3))), label="strided"),
        Case(lambda rng: ([U(rng, (5, 6))], lambda x: lo.slice_p.bind(
            x, start_indices=(1, 2), limit_indices=(4, 3), strides=None)), label="plain")]
    T["pad"] = [
        Case(lambda rng: ([U(rng, (3, 4)), np.float64(0.3)], lambda x, v: lo.pad_p.bind(
            x, v, padding_config=((1, 2, 1), (0, 1, 2)))), label="interior"),
        Case(lambda rng: ([U(rng, (3, 4)), np.float64(0.3)], lambda x, v: lo.pad_p.bind(
            x, v, padding_config=((-1, 2, 0), (1, -2, 1)))), label="negative")]
    T["concatenate"] = [Case(lambda rng: ([U(rng, (2, 3)), U(rng, (4, 3)), U(rng, (1, 3))],
                                          lambda a, b, c: lo.concatenate_p.bind(a, b, c,
                                                                                dimension=0)))]
    T["iota"] = [Case(lambda rng: ([], dict(dtype=np.dtype("float64"), shape=(3,), dimension=0)),
                      kind="rule")]
    T["copy"] = unary(lo.copy_p)

    # reductions
    T["reduce_sum"] = _reduce(rd.reduce_sum_p)
    T["reduce_max"] = _reduce(rd.reduce_max_p)
    T["reduce_min"] = _reduce(rd.reduce_min_p)
    T["reduce_prod"] = [Case(lambda rng, axes=axes: ([U(rng, (3, 4), 0.5, 1.5)],
                                                     lambda x: rd.reduce_prod_p.bind(x, axes=axes)),
                             label=f"axes={axes}") for axes in ((0,), (1,), (0, 1), ())]
    for p in (rd.reduce_and_p, rd.reduce_or_p, rd.reduce_xor_p):
        T[p.name] = int_rule(p, nargs=1, axes=(0,))
    for p in (rd.argmax_p, rd.argmin_p):
        T[p.name] = [Case(lambda rng, p=p: ([distinct(rng, (3, 4))], lambda x: p.bind(
            x, axes=(1,), index_dtype=np.dtype("int32"))), kind="zero")]
    T["cumsum"] = _cumulative(rd.cumsum_p)
    T["cumprod"] = _cumulative(rd.cumprod_p) + [
        Case(lambda rng: ([np.array([0.5, -1.2, 0.0, 1.5, 0.8])],
                          lambda x: rd.cumprod_p.bind(x, axis=0, reverse=False)), label="a zero")]
    T["cummax"] = _cumulative(rd.cummax_p)
    T["cummin"] = _cumulative(rd.cummin_p)
    T["cumlogsumexp"] = _cumulative(rd.cumlogsumexp_p)

    # indexing
    T["gather"] = [_gather("clip"), _gather("fill")]
    T["scatter"] = [_scatter("set", IDX_DUP), _scatter("add", IDX_DUP), _scatter("mul", IDX_IN),
                    _scatter("min", IDX_DUP), _scatter("max", IDX_DUP),
                    _scatter("add", IDX_CLIP)]
    T["dynamic_slice"] = [Case(lambda rng: ([U(rng, (5, 4))], lambda x: ix.dynamic_slice_p.bind(
        x, np.int32(1), np.int32(3), slice_sizes=(3, 2))))]
    T["dynamic_update_slice"] = [Case(lambda rng: ([U(rng, (5, 4)), U(rng, (2, 3))],
                                                   lambda x, u: ix.dynamic_update_slice_p.bind(
                                                       x, u, np.int32(2), np.int32(5))))]

    # contractions
    T["dot_general"] = [
        Case(lambda rng: ([U(rng, (3, 4)), U(rng, (4, 2))], lambda a, b: la.dot_general_p.bind(
            a, b, dimension_numbers=(((1,), (0,)), ((), ())), preferred_element_type=None)),
             label="matmul"),
        Case(lambda rng: ([U(rng, (2, 3, 4)), U(rng, (2, 5, 3))], lambda a, b: la.dot_general_p.bind(
            a, b, dimension_numbers=(((1,), (2,)), ((0,), (0,))), preferred_element_type=None)),
             label="batched, contracting a middle axis"),
        Case(lambda rng: ([U(rng, (4, 2, 3)), U(rng, (3, 4, 2))], lambda a, b: la.dot_general_p.bind(
            a, b, dimension_numbers=(((0, 2), (1, 0)), ((), ())), preferred_element_type=None)),
             label="two contracting axes in a different order"),
    ]

    # primitives holding sub-programs, custom rules, effects
    T["custom_jvp_call"] = [Case(lambda rng: (_xy(rng), _custom_jvp_fn()))]
    T["custom_vjp_call"] = [Case(lambda rng: (_xy(rng), _custom_vjp_fn()), modes=("rev",))]
    T["custom_lin"] = [Case(lambda rng: (_xy(rng), _custom_vjp_fn()), modes=("rev",))]
    T["remat"] = [Case(lambda rng: (_xy(rng), _remat))]
    T["cond"] = [Case(lambda rng: (_xy(rng), _cond)),
                 Case(lambda rng: ([-abs(U(rng, (3,))), U(rng, (3,))], _cond), label="false")]
    T["while"] = [Case(lambda rng: ([U(rng, (3,))], _while), modes=("fwd",))]
    T["scan"] = [Case(lambda rng: ([U(rng, (4,), -1, 1), np.float64(0.3)], _scan))]
    T["debug_callback"] = [Case(lambda rng: ([U(rng, (3,))], _debug))]
    T["conv_general_dilated"] = [Case(lambda rng: (
        [U(rng, (1, 2, 5, 5)), U(rng, (3, 2, 3, 3))],
        lambda x, w: lax.conv_general_dilated(x, w, (1, 2), "SAME")))]
    T["reduce_window_sum"] = [Case(lambda rng: ([U(rng, (4, 5))], lambda x: lax.reduce_window(
        x, 0.0, lax.add, (2, 3), (2, 1), "SAME")))]
    T["reduce_window_max"] = [Case(lambda rng: ([distinct(rng, (4, 5))], _maxpool))]
    T["reduce_window_min"] = [Case(lambda rng: ([distinct(rng, (4, 5))], _minpool))]
    T["select_and_gather_add"] = [Case(_pool_tangent)]
    T["select_and_scatter_add"] = [Case(_pool_cotangent)]
    return T
