"""vmap: a sweep over every registered primitive against a Python loop, plus the API.

The sweep takes its cases from ``CASES`` (primitive name -> functions of per-example
inputs). A primitive registered without an entry there fails ``test_sweep_covers``, so
one added later without a batching rule (or without a test of it) is caught.
"""
import importlib
import pkgutil

import numpy as np
import pytest

import jitgrad
import jitgrad.numpy as jnp
import jitgrad.ops
from jitgrad import jit, lax, vmap
from jitgrad.core.primitive import registry
from jitgrad.ops import elementwise as ew
from jitgrad.ops import indexing as ix
from jitgrad.ops import layout as lo
from jitgrad.ops import linalg as la
from jitgrad.transforms.batching import BatchingError

# Register every primitive there is, whichever other modules happen to be imported.
for _m in pkgutil.iter_modules(jitgrad.ops.__path__):
    importlib.import_module(f"jitgrad.ops.{_m.name}")

# jitgrad's own primitives (other test modules may register throwaway ones of their own).
PRIMITIVES = sorted(name for name, p in registry.items()
                    if getattr(p.abstract_eval, "__module__", "").startswith("jitgrad."))

B = 3   # examples per batch
F32, I32 = np.float32, np.int32


# ------------------------------------------------------------------ example inputs

def unif(lo_, hi, shape=(3, 4), dtype=F32):
    return lambda rng: rng.uniform(lo_, hi, shape).astype(dtype)


def ints(lo_, hi, shape=(3, 4), dtype=I32):
    return lambda rng: rng.integers(lo_, hi, shape).astype(dtype)


def bools(shape=(3, 4)):
    return lambda rng: rng.random(shape) < 0.5


class Case:
    """``fun(*args)`` on one example; ``makers`` draw each argument's per-example value."""

    def __init__(self, fun, *makers, label=""):
        self.fun, self.makers, self.label = fun, makers, label

    def __repr__(self):
        return self.label or getattr(self.fun, "__name__", "case")


def bind(prim, **params):
    def fun(*args):
        return prim.bind(*args, **params)
    fun.__name__ = f"{prim.name}[{', '.join(f'{k}={v}' for k, v in params.items())}]"
    return fun


_DOMAIN = {"log": (0.1, 2), "log1p": (0.1, 2), "sqrt": (0.1, 2), "rsqrt": (0.1, 2),
           "lgamma": (0.1, 2), "acosh": (1.1, 3), "pow": (0.1, 2)}
FLOAT_UNARY = ["neg", "sign", "abs", "square", "floor", "ceil", "is_finite", "exp", "exp2",
               "log", "log1p", "expm1", "sqrt", "rsqrt", "cbrt", "tanh", "logistic", "sin", "cos",
               "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "erf",
               "erf_inv", "lgamma", "stop_gradient", "copy"]
FLOAT_BINARY = ["add", "sub", "mul", "div", "rem", "pow", "max", "min", "atan2", "nextafter",
                "eq", "ne", "lt", "le", "gt", "ge"]
INT_BINARY = ["and", "or", "xor", "shift_left", "shift_right_logical", "shift_right_arithmetic"]

CASES: dict[str, list[Case]] = {}


def add_case(name, *cases):
    CASES.setdefault(name, []).extend(cases)


for _name in FLOAT_UNARY:
    lo_, hi = _DOMAIN.get(_name, (-0.9, 0.9))
    add_case(_name, Case(bind(registry[_name]), unif(lo_, hi)),
             Case(bind(registry[_name]), unif(lo_, hi, ())))
add_case("round", Case(bind(ew.round_p, rounding_method=0), unif(-3, 3)),
         Case(bind(ew.round_p, rounding_method=1), unif(-3, 3)))

for _name in FLOAT_BINARY:
    lo_, hi = _DOMAIN.get(_name, (-2, 2))
    if _name in ("eq", "ne"):     # small integers, so that some entries are equal
        vals = lambda shape: (lambda rng: rng.integers(0, 3, shape).astype(F32))  # noqa: E731
    else:
        vals = lambda shape, lo_=lo_, hi=hi: unif(lo_, hi, shape)  # noqa: E731
    p = registry[_name]
    add_case(_name, Case(bind(p), vals((3, 4)), vals((3, 4))),
             Case(bind(p), vals((3, 4)), vals(())),       # a rank-0 operand broadcasts
             Case(bind(p), vals(()), vals((3, 4))),
             Case(bind(p), vals(()), vals(())))

for _name in INT_BINARY:
    p = registry[_name]
    add_case(_name, Case(bind(p), ints(-50, 50), ints(0, 8)),
             Case(bind(p), ints(-50, 50), ints(0, 8, ())))
for _name in ("and", "or", "xor"):
    add_case(_name, Case(bind(registry[_name]), bools(), bools()))
add_case("not", Case(bind(ew.not_p), ints(-50, 50)), Case(bind(ew.not_p), bools()))
add_case("integer_pow", Case(bind(ew.integer_pow_p, y=3), unif(-2, 2)),
         Case(bind(ew.integer_pow_p, y=-2), unif(0.5, 2)))
add_case("select_n",
         Case(bind(ew.select_n_p), bools(), unif(-1, 1), unif(-1, 1)),
         Case(bind(ew.select_n_p), bools(()), unif(-1, 1), unif(-1, 1)),
         Case(bind(ew.select_n_p), ints(0, 3), unif(-1, 1), unif(-1, 1), unif(-1, 1)))
add_case("clamp", Case(bind(ew.clamp_p), unif(-1, 0, ()), unif(-2, 2), unif(0, 1, ())),
         Case(bind(ew.clamp_p), unif(-1, 0), unif(-2, 2), unif(0, 1)))
add_case("convert_element_type",
         Case(bind(ew.convert_element_type_p, new_dtype=np.dtype(I32), weak_type=False),
              unif(-9, 9)),
         Case(bind(ew.convert_element_type_p, new_dtype=np.dtype(np.bool_), weak_type=False),
              ints(-1, 2)))
add_case("bitcast_convert_type",
         Case(bind(ew.bitcast_convert_type_p, new_dtype=np.dtype(I32)), unif(-9, 9)))


def _with_iota(x):
    return x + lo.iota_p.bind(dtype=np.dtype(F32), shape=(3, 4), dimension=1)


add_case("iota", Case(_with_iota, unif(-1, 1), label="x + iota (iota has no operands)"))

# layout
add_case("broadcast_in_dim",
         Case(bind(lo.broadcast_in_dim_p, shape=(2, 3, 4), broadcast_dimensions=(1, 2)),
              unif(-1, 1, (3, 1))),
         Case(bind(lo.broadcast_in_dim_p, shape=(3, 2), broadcast_dimensions=()), unif(-1, 1, ())))
add_case("reshape", Case(bind(lo.reshape_p, new_sizes=(2, 6), dimensions=None), unif(-1, 1)),
         Case(bind(lo.reshape_p, new_sizes=(12,), dimensions=(1, 0)), unif(-1, 1)))
add_case("transpose", Case(bind(lo.transpose_p, permutation=(2, 0, 1)), unif(-1, 1, (2, 3, 4))))
add_case("squeeze", Case(bind(lo.squeeze_p, dimensions=(0, 2)), unif(-1, 1, (1, 3, 1, 2))))
add_case("rev", Case(bind(lo.rev_p, dimensions=(0, 2)), unif(-1, 1, (2, 3, 4))))
add_case("slice", Case(bind(lo.slice_p, start_indices=(1, 0), limit_indices=(3, 4), strides=(1, 2)),
                       unif(-1, 1)),
         Case(bind(lo.slice_p, start_indices=(0, 1), limit_indices=(2, 3), strides=None),
              unif(-1, 1)))
add_case("pad", Case(bind(lo.pad_p, padding_config=((1, 2, 1), (-1, 1, 0))), unif(-1, 1),
                     unif(5, 6, ())))
add_case("concatenate", Case(bind(lo.concatenate_p, dimension=1), unif(-1, 1, (3, 2)),
                             unif(-1, 1, (3, 4)), unif(-1, 1, (3, 1))))

# indexing
add_case("gather",
         Case(bind(ix.gather_p, axes=(0,), mode="clip", fill_value=None), unif(-1, 1, (5, 4)),
              ints(-1, 7, (3, 1))),
         Case(bind(ix.gather_p, axes=(0, 1), mode="fill", fill_value=None), unif(-1, 1, (5, 4)),
              ints(-1, 6, (2, 2))),
         Case(bind(ix.gather_p, axes=(1,), mode="clip", fill_value=None), unif(-1, 1, (4, 5, 6)),
              ints(0, 5, (2, 3, 1))))
for _combine in ("set", "add", "mul", "min", "max"):
    add_case("scatter",
             Case(bind(ix.scatter_p, axes=(0,), combine=_combine), unif(-1, 1, (5, 4)),
                  ints(0, 5, (3, 1)), unif(-1, 1, (3, 4))))
add_case("scatter", Case(bind(ix.scatter_p, axes=(1,), combine="add"), unif(-1, 1, (4, 5)),
                         ints(-1, 6, (3, 1)), unif(-1, 1, (3, 4))))
add_case("dynamic_slice",
         Case(bind(ix.dynamic_slice_p, slice_sizes=(2, 3)), unif(-1, 1, (5, 6)),
              ints(-2, 7, ()), ints(-2, 7, ())),
         Case(bind(ix.dynamic_slice_p, slice_sizes=(2,)), unif(-1, 1, (5,)), ints(-2, 7, ())))
add_case("dynamic_update_slice",
         Case(bind(ix.dynamic_update_slice_p), unif(-1, 1, (5, 6)), unif(5, 6, (2, 3)),
              ints(-2, 7, ()), ints(-2, 7, ())))

# dot_general
add_case("dot_general",
         Case(bind(la.dot_general_p, dimension_numbers=(((1,), (0,)), ((), ()))),
              unif(-1, 1, (3, 4)), unif(-1, 1, (4, 5))),
         Case(bind(la.dot_general_p, dimension_numbers=(((2,), (1,)), ((0,), (0,)))),
              unif(-1, 1, (2, 3, 4)), unif(-1, 1, (2, 4, 5))),
         Case(bind(la.dot_general_p, dimension_numbers=(((0,), (0,)), ((), ()))),
              unif(-1, 1, (4, 3)), unif(-1, 1, (4, 5))),
         Case(bind(la.dot_general_p, dimension_numbers=(((0,), (0,)), ((), ()))),
              unif(-1, 1, (3,)), unif(-1, 1, (3,))))

# reductions
for _name in ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min"):
    add_case(_name, Case(bind(registry[_name], axes=(1,)), unif(-1, 1, (3, 4, 5))),
             Case(bind(registry[_name], axes=(0, 2)), unif(-1, 1, (3, 4, 5))))
for _name in ("reduce_and", "reduce_or", "reduce_xor"):
    add_case(_name, Case(bind(registry[_name], axes=(1,)), ints(-9, 9, (3, 4, 5))),
             Case(bind(registry[_name], axes=(0, 2)), bools((3, 4, 5))))
for _name in ("argmax", "argmin"):
    add_case(_name, Case(bind(registry[_name], axes=(1,), index_dtype=np.dtype(I32)),
                         unif(-1, 1, (3, 4, 5))))
for _name in ("cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp"):
    add_case(_name, Case(bind(registry[_name], axis=1, reverse=False), unif(-1, 1)),
             Case(bind(registry[_name], axis=0, reverse=True), unif(-1, 1)))


# control flow
def _cond(p, x):
    return lax.cond(p > 0, lambda x: x * 2.0, lambda x: -x, x)


def _cond_closure(p, x, y):
    return lax.cond(p > 0, lambda: x * y, lambda: x + 1.0)


def _switch(i, x):
    return lax.switch(i, [lambda x: x, lambda x: jnp.sin(x), lambda x: x * x], x)


def _while(x, n):
    return lax.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] * x), (0, 1.0))


def _while_vec(x):
    return lax.while_loop(lambda c: jnp.sum(c) < 10.0, lambda c: c * 2.0 + 0.5, x)


def _scan(c0, xs):
    return lax.scan(lambda c, x: (c * 0.5 + x, c + x), c0, xs)


def _scan_reverse(c0, xs, w):
    return lax.scan(lambda c, x: (jnp.tanh(c * w + x), c.sum()), c0, xs, reverse=True)


def _fori(x):
    return lax.fori_loop(0, 4, lambda i, c: c * x + i, x)


add_case("cond", Case(_cond, unif(-1, 1, ()), unif(-1, 1, (3,))),
         Case(_cond_closure, unif(-1, 1, ()), unif(-1, 1, (3,)), unif(-1, 1, (3,))),
         Case(_switch, ints(-1, 4, ()), unif(-1, 1, (3,))))
add_case("while", Case(_while, unif(0.5, 1.5, ()), ints(0, 5, ())),
         Case(_while_vec, unif(0.1, 1, (3,))))
add_case("scan", Case(_scan, unif(-1, 1, (3,)), unif(-1, 1, (4, 3))),
         Case(_scan_reverse, unif(-1, 1, (3,)), unif(-1, 1, (4, 3)), unif(-1, 1, (3,))),
         Case(_fori, unif(0.5, 1, (2,))))


class _Sink:
    """A hashable callback that keeps what it is called with."""

    def __init__(self):
        self.calls = []

    def __call__(self, *arrays):
        self.calls.append([np.array(a) for a in arrays])

    def __repr__(self):
        return "sink"


_SINK = _Sink()


def _debug(x):
    registry["debug_callback"].bind(x, callback=_SINK, fmt=None)
    return x * 2.0


add_case("debug_callback", Case(_debug, unif(-1, 1, (3,))))


# autodiff's primitives, through the public API
@jitgrad.custom_jvp
def _softplus(x):
    return jnp.log1p(jnp.exp(x))


@_softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return _softplus(x), t / (1.0 + jnp.exp(-x))


@jitgrad.custom_vjp
def _sin(x):
    return jnp.sin(x)


_sin.defvjp(lambda x: (jnp.sin(x), jnp.cos(x)), lambda res, g: (res * g,))


def _grad_of(f):
    return jitgrad.grad(lambda y: jnp.sum(f(y)))


add_case("custom_jvp_call", Case(_softplus, unif(-1, 1, (3,))),
         Case(_grad_of(_softplus), unif(-1, 1, (3,)), label="grad of a custom_jvp function"))
add_case("custom_vjp_call", Case(_sin, unif(-1, 1, (3,))),
         Case(_grad_of(_sin), unif(-1, 1, (3,)), label="grad of a custom_vjp function"))
add_case("custom_lin", Case(_grad_of(_sin), unif(-1, 1, (3,)),
                            label="custom_lin: in the linearization of a custom_vjp function"))
add_case("remat", Case(jitgrad.checkpoint(lambda y: jnp.sin(y) * y), unif(-1, 1, (3,))),
         Case(_grad_of(jitgrad.checkpoint(lambda y: jnp.sin(y) * y)), unif(-1, 1, (3,)),
              label="grad of checkpoint"))

# Primitives that vmap never binds, so they need no batching rule.
NEVER_BATCHED = {
    "iota": "it has no operands",
    "custom_lin": "it is only ever transposed (never evaluated forwards), as in JAX",
}


# convolution and pooling (ops/conv.py, ops/windows.py)
def _conv(**kw):
    def fun(x, w):
        return lax.conv_general_dilated(x, w, **kw)
    fun.__name__ = f"conv[{kw}]"
    return fun


add_case("conv_general_dilated",
         Case(_conv(window_strides=(1, 2), padding="SAME"), unif(-1, 1, (2, 3, 5, 4)),
              unif(-1, 1, (4, 3, 3, 2))),
         Case(_conv(window_strides=(2, 1), padding=((1, 0), (0, 2)), lhs_dilation=(2, 1),
                    rhs_dilation=(1, 2), feature_group_count=2),
              unif(-1, 1, (2, 4, 5, 4)), unif(-1, 1, (6, 2, 2, 2))),
         Case(_conv(window_strides=(1,), padding="VALID", batch_group_count=2),
              unif(-1, 1, (4, 3, 6)), unif(-1, 1, (4, 3, 3))),
         Case(_conv(window_strides=(1, 1), padding="SAME",
                    dimension_numbers=("NHWC", "HWIO", "NHWC")),
              unif(-1, 1, (2, 4, 4, 3)), unif(-1, 1, (3, 3, 3, 2))))
_WINDOW = dict(window_dimensions=(1, 2, 3), window_strides=(1, 2, 1),
               padding=((0, 0), (1, 0), (1, 1)), window_dilation=(1, 1, 1))
for _name in ("reduce_window_sum", "reduce_window_max", "reduce_window_min"):
    add_case(_name, Case(bind(registry[_name], base_dilation=(1, 1, 1), **_WINDOW),
                         unif(-1, 1, (2, 5, 4))),
             Case(bind(registry[_name], window_dimensions=(2, 2), window_strides=(1, 1),
                       padding=((0, 1), (1, 0)), base_dilation=(2, 1), window_dilation=(1, 2)),
                  unif(-1, 1, (3, 4))))
add_case("select_and_gather_add",
         Case(bind(registry["select_and_gather_add"], select_prim="ge", base_dilation=(1, 1, 1),
                   **_WINDOW), unif(-1, 1, (2, 5, 4)), unif(-1, 1, (2, 5, 4))),
         Case(bind(registry["select_and_gather_add"], select_prim="le", base_dilation=(1, 1, 1),
                   **_WINDOW), unif(-1, 1, (2, 5, 4)), unif(-1, 1, (2, 5, 4))))
add_case("select_and_scatter_add",
         Case(bind(registry["select_and_scatter_add"], select_prim="ge", **_WINDOW),
              unif(-1, 1, (2, 3, 4)), unif(-1, 1, (2, 5, 4))))


# ------------------------------------------------------------------ the sweep

def in_axes_configs(ranks):
    """(label, in_axes) pairs: all mapped at 0, at 1, at -1, and each operand alone."""
    configs = [("all0", tuple(0 for _ in ranks)),
               ("all1", tuple(1 if r >= 1 else 0 for r in ranks)),
               ("all-1", tuple(-1 for _ in ranks))]
    if len(ranks) > 1:
        for i, r in enumerate(ranks):
            axes = tuple((min(1, r) if j == i else None) for j in range(len(ranks)))
            configs.append((f"only{i}", axes))
    return configs


def stack_examples(examples, axis):
    return np.stack(examples, axis=axis)


def loop_reference(fun, per_example_args, in_axes):
    """Run ``fun`` on each example in Python and stack the results along axis 0."""
    outs = []
    for b in range(B):
        args = [a[b] if ax is not None else a[0] for a, ax in zip(per_example_args, in_axes)]
        outs.append(jitgrad.tree.map(np.asarray, fun(*args)))
    return jitgrad.tree.map(lambda *xs: np.stack(xs), *outs)


def check_case(case, seed, use_jit=False, configs=None):
    rng = np.random.default_rng(seed)
    per_example = [[make(rng) for _ in range(B)] for make in case.makers]
    ranks = [np.ndim(ex[0]) for ex in per_example]
    for label, in_axes in configs or in_axes_configs(ranks):
        args = [stack_examples(ex, ax) if ax is not None else ex[0]
                for ex, ax in zip(per_example, in_axes)]
        f = vmap(case.fun, in_axes=in_axes)
        got = (jit(f) if use_jit else f)(*args)
        want = loop_reference(case.fun, per_example, in_axes)
        got_leaves, got_tree = jitgrad.tree.flatten(got)
        want_leaves, want_tree = jitgrad.tree.flatten(want)
        assert got_tree == want_tree, (case, label)
        for g, w in zip(got_leaves, want_leaves):
            g = np.asarray(g)
            assert g.dtype == w.dtype and g.shape == w.shape, (case, label, g.dtype, w.dtype,
                                                                g.shape, w.shape)
            np.testing.assert_allclose(g, w, rtol=2e-6, atol=1e-6, equal_nan=True,
                                       err_msg=f"{case} in_axes={in_axes} ({label})")


def test_sweep_covers_every_primitive():
    missing = sorted(set(PRIMITIVES) - set(CASES))
    assert not missing, (
        f"primitives without vmap sweep cases: {missing}. Give each a batching rule "
        "(prim.batch, at the end of its ops module) and an entry in CASES in tests/test_vmap.py.")


@pytest.mark.parametrize("name", PRIMITIVES)
def test_vmap_sweep(name):
    assert name in CASES, f"no vmap sweep case for primitive {name!r}: add one to CASES"
    assert registry[name].batch is not None or name in NEVER_BATCHED, \
        f"primitive {name!r} has no batching rule (prim.batch)"
    for i, case in enumerate(CASES[name]):
        check_case(case, seed=i)


@pytest.mark.parametrize("name", ["add", "select_n", "pad", "gather", "scatter",
                                  "dynamic_slice", "dynamic_update_slice", "dot_general",
                                  "reduce_max", "cumsum", "cond", "while", "scan"])
def test_vmap_sweep_under_jit(name):
    for i, case in enumerate(CASES[name]):
        ranks = [len(np.shape(m(np.random.default_rng(0)))) for m in case.makers]
        check_case(case, seed=10 + i, use_jit=True, configs=in_axes_configs(ranks)[:1]
                   + in_axes_configs(ranks)[3:])


# ------------------------------------------------------------------ the API

def test_in_axes_none_negative_and_out_axes():
    x = np.arange(24, dtype=F32).reshape(2, 3, 4)
    w = np.arange(4, dtype=F32)
    f = vmap(lambda a, b: a * b, in_axes=(-1, None))
    np.testing.assert_allclose(f(x, w[0]), np.moveaxis(x, -1, 0) * w[0])
    g = vmap(lambda a: a.sum(0), in_axes=1, out_axes=-1)
    np.testing.assert_allclose(g(x), np.stack([x[:, i].sum(0) for i in range(3)], -1))
    h = vmap(lambda a: 2.0, in_axes=0)   # an output that does not depend on the batch
    np.testing.assert_allclose(h(x), np.full((2,), 2.0))


def test_pytree_in_axes_and_out_axes():
    params = {"w": np.ones((3, 2), F32), "b": np.arange(2, dtype=F32)}
    xs = np.arange(15, dtype=F32).reshape(5, 3)

    def f(p, x):
        return {"y": x @ p["w"] + p["b"], "n": jnp.sum(x)}, p["b"] * 2

    out, b2 = vmap(f, in_axes=({"w": None, "b": None}, 0), out_axes=({"y": 1, "n": 0}, None))(
        params, xs)
    np.testing.assert_allclose(out["y"], (xs @ params["w"] + params["b"]).T)
    np.testing.assert_allclose(out["n"], xs.sum(1))
    np.testing.assert_allclose(b2, params["b"] * 2)
    # a mapped leaf inside a container, and a list spec taken as a tuple
    batch_b = np.arange(10, dtype=F32).reshape(5, 2)
    y = vmap(lambda p, x: x @ p["w"] + p["b"], in_axes=[{"w": None, "b": 0}, 0])(
        {"w": params["w"], "b": batch_b}, xs)
    np.testing.assert_allclose(y, xs @ params["w"] + batch_b)


def test_kwargs_are_mapped_over_axis_0():
    x = np.arange(6, dtype=F32).reshape(3, 2)
    out = vmap(lambda a, *, scale: a * scale, in_axes=(0,))(x, scale=np.arange(3, dtype=F32))
    np.testing.assert_allclose(out, x * np.arange(3)[:, None])


def test_axis_size_with_no_mapped_arguments():
    out = vmap(lambda x: x + 1.0, in_axes=None, axis_size=4)(np.float32(2))
    np.testing.assert_allclose(out, np.full((4,), 3.0))
    with pytest.raises(BatchingError, match="at least one non-None"):
        vmap(lambda x: x, in_axes=None)(1.0)


def test_nested_vmap():
    x = np.random.default_rng(0).normal(size=(4, 5, 3)).astype(F32)
    y = np.random.default_rng(1).normal(size=(3, 6)).astype(F32)
    f = vmap(vmap(lambda a, b: jnp.tanh(a @ b), in_axes=(0, None)), in_axes=(0, None))
    np.testing.assert_allclose(f(x, y), np.tanh(x @ y), rtol=1e-5, atol=1e-6)
    # inner mapped over the outer's unmapped argument: a closure over an outer tracer
    g = vmap(lambda a: vmap(lambda b: jnp.dot(a, b))(y.T))
    np.testing.assert_allclose(g(x[:, 0]), x[:, 0] @ y, rtol=1e-5, atol=1e-6)
    h = jit(vmap(vmap(lambda a: lax.cond(a.sum() > 0, lambda: a, lambda: -a)), in_axes=1))
    want = np.where(x.sum(-1, keepdims=True) > 0, x, -x).transpose(1, 0, 2)
    np.testing.assert_allclose(h(x), want)


def test_vmap_of_jit_and_jit_of_vmap():
    x = np.arange(12, dtype=F32).reshape(4, 3)
    f = jit(lambda a: jnp.sum(a ** 2) + a[0])
    np.testing.assert_allclose(vmap(f)(x), (x ** 2).sum(1) + x[:, 0])
    np.testing.assert_allclose(jit(vmap(f))(x), (x ** 2).sum(1) + x[:, 0])


def _loss(w, x, y):
    return jnp.sum((jnp.tanh(x @ w) - y) ** 2)


def _numeric_grad(f, w, eps=1e-3):
    w = np.asarray(w, np.float64)
    g = np.zeros_like(w)
    for idx in np.ndindex(w.shape):
        d = np.zeros_like(w)
        d[idx] = eps
        g[idx] = (float(f(w + d)) - float(f(w - d))) / (2 * eps)
    return g


def test_per_example_gradients(x64):
    rng = np.random.default_rng(0)
    w, xs, ys = rng.normal(size=(3, 2)), rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    per_example = vmap(jitgrad.grad(_loss), in_axes=(None, 0, 0))(w, xs, ys)
    assert per_example.shape == (5, 3, 2)
    for i in range(5):
        want = _numeric_grad(lambda v: _loss(v, xs[i], ys[i]), w)
        np.testing.assert_allclose(per_example[i], want, rtol=1e-5, atol=1e-7)
    jitted = jit(vmap(jitgrad.grad(_loss), in_axes=(None, 0, 0)))(w, xs, ys)
    np.testing.assert_allclose(jitted, per_example, rtol=1e-12)


def test_grad_of_vmap(x64):
    rng = np.random.default_rng(1)
    w, xs, ys = rng.normal(size=(3, 2)), rng.normal(size=(5, 3)), rng.normal(size=(5, 2))

    def total(v):
        return jnp.sum(vmap(_loss, in_axes=(None, 0, 0))(v, xs, ys))

    np.testing.assert_allclose(jitgrad.grad(total)(w), _numeric_grad(total, w),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(jitgrad.grad(lambda v: _loss(v, xs, ys))(w), jitgrad.grad(total)(w),
                               rtol=1e-10)


# ------------------------------------------------------------------ errors

def test_inconsistent_sizes_name_the_arguments():
    with pytest.raises(BatchingError) as e:
        vmap(lambda x, y: x + y)(np.ones((2, 3)), {"a": np.ones((4, 3))}["a"])
    msg = str(e.value)
    assert "inconsistent sizes" in msg and "x" in msg and "y" in msg
    assert "size 2" in msg and "size 4" in msg
    with pytest.raises(ValueError, match=r"p\['b'\]"):   # a ValueError, as in JAX
        vmap(lambda p: p["a"] + p["b"])({"a": np.ones(3), "b": np.ones(5)})
    with pytest.raises(BatchingError, match="axis_size=7"):
        vmap(lambda x: x, axis_size=7)(np.ones(3))


def test_axis_out_of_range_and_bad_specs():
    with pytest.raises(BatchingError, match="rank 1"):
        vmap(lambda x: x, in_axes=1)(np.ones(3))
    with pytest.raises(BatchingError, match="rank 0"):
        vmap(lambda x: x)(2.0)
    with pytest.raises(BatchingError, match="2 entries but 1"):
        vmap(lambda x: x, in_axes=(0, 0))(np.ones(3))
    with pytest.raises(BatchingError, match="tree prefix"):
        vmap(lambda p: p, in_axes=({"a": 0},))({"b": np.ones(3)})
    with pytest.raises(BatchingError, match="tuple"):
        vmap(lambda p: p, in_axes={"a": 0})({"a": np.ones(3)})
    with pytest.raises(BatchingError, match="ints and None"):
        vmap(lambda x: x, in_axes=("0",))(np.ones(3))


def test_out_axes_none_on_a_batched_output():
    with pytest.raises(BatchingError, match=r"output \[1\] is batched.*out_axes is None"):
        vmap(lambda x: (x.sum(), x * 2), out_axes=(0, None))(np.ones((2, 3)))
    out = vmap(lambda x: (x, 5.0), out_axes=(0, None))(np.ones((2, 3)))
    assert np.shape(out[1]) == ()


def test_python_control_flow_on_batched_value_is_a_clear_error():
    with pytest.raises(jitgrad.ConcretizationTypeError, match="batched value.*vmap"):
        vmap(lambda x: x if x > 0 else -x)(np.ones(3))


def test_escaped_batch_tracer_is_an_error():
    box = []
    vmap(lambda x: box.append(x) or x)(np.ones(3))
    with pytest.raises(jitgrad.UnexpectedTracerError, match="vmap"):
        box[0] + 1.0


def test_make_ir_of_vmap_is_plain_ir():
    ir = jitgrad.make_ir(vmap(lambda x, w: jnp.maximum(x @ w, 0.0), in_axes=(0, None)))(
        np.ones((8, 4), F32), np.ones((4, 3), F32))
    text = str(ir)
    assert "dot_general" in text and "max" in text and "transpose" not in text
