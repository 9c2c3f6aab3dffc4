"""JAX's dtype promotion, checked on the results of jnp functions (eagerly and under jit).

Weak Python scalars adopt the array's dtype (f32 * 2.0 -> f32, u8 + 1 -> u8), int + float
Python scalars give the default float, mixed integer widths join in JAX's lattice
(i8 + u8 -> i16, i32 + u32 -> i64, canonicalised to i32 without x64), bool + bool stays
bool, and the ``weak_type`` flag survives only where no strong operand was involved.
"""
from __future__ import annotations

import numpy as np
import pytest

import jitgrad
import jitgrad.numpy as jnp
from test_numpy_support import x64_enabled


def _arr(dtype, weak=False):
    if weak:
        return jnp.asarray(1.0 if np.dtype(dtype).kind == "f" else 1)
    return jnp.ones((2,), dtype)


def _both(fn, *args):
    """The result eagerly and under jit (the operator is applied the same way)."""
    eager = fn(*args)
    jitted = jitgrad.jit(fn)(*args)
    assert eager.dtype == jitted.dtype, (eager.dtype, jitted.dtype)
    assert eager.weak_type == jitted.weak_type, (eager.weak_type, jitted.weak_type)
    return eager


# (lhs dtype, rhs: dtype or Python scalar, expected dtype without x64, expected weak)
CASES = [
    ("float32", 2.0, "float32", False),
    ("float32", 2, "float32", False),
    ("float16", 2.0, "float16", False),
    ("int32", 2.5, "float32", True),       # int array + weak float -> the weak float node f*
    ("int32", 2, "int32", False),
    ("uint8", 1, "uint8", False),
    ("int8", 1, "int8", False),
    ("bool", True, "bool", False),
    ("bool", 1, "int32", True),             # bool + weak int -> the weak int node i*
    ("bool", 1.5, "float32", True),
    ("int8", "uint8", "int16", False),
    ("uint8", "int16", "int16", False),
    ("int32", "uint32", "int32", False),    # int64 in the lattice, canonicalised to 32 bits
    ("int32", "float16", "float16", False),
    ("uint16", "float32", "float32", False),
    ("float16", "float32", "float32", False),
    ("int32", "int64", "int32", False),
    ("bool", "bool", "bool", False),
    ("bool", "int8", "int8", False),
    ("bool", "float16", "float16", False),
]


@pytest.mark.parametrize("lhs,rhs,expected,weak", CASES)
@pytest.mark.parametrize("op", ["add", "multiply", "maximum", "where"])
def test_binary_promotion(lhs, rhs, expected, weak, op):
    x = _arr(lhs)
    y = rhs if not isinstance(rhs, str) else _arr(rhs)
    if op == "where":
        fn = lambda a, b: jnp.where(jnp.ones((2,), bool), a, b)
    else:
        fn = getattr(jnp, op)
    for a, b in ((x, y), (y, x)):
        out = _both(fn, a, b)
        assert out.dtype == np.dtype(expected), (lhs, rhs, op, out.dtype)
        assert out.weak_type == weak


@pytest.mark.parametrize("lhs,rhs,expected", [
    ("int32", "uint32", "int64"), ("int32", 2.5, "float64"), ("float32", 2.0, "float32"),
    ("int32", "int64", "int64"), ("uint32", "float32", "float32"), ("float32", "float64", "float64"),
    ("uint64", "int64", "float64"), ("int64", 2, "int64"),
])
def test_binary_promotion_x64(lhs, rhs, expected):
    with x64_enabled():
        x = _arr(lhs)
        y = rhs if not isinstance(rhs, str) else _arr(rhs)
        assert (x + y).dtype == np.dtype(expected)
        assert (y + x).dtype == np.dtype(expected)
        assert _both(jnp.multiply, x, _arr(rhs) if isinstance(rhs, str) else x).dtype in (
            np.dtype(expected), x.dtype)


def test_operators_follow_the_same_rules():
    f32 = jnp.ones(3, jnp.float32)
    assert (f32 * 2.0).dtype == np.float32
    assert (2.0 * f32).dtype == np.float32
    assert (f32 / 2).dtype == np.float32
    assert (f32 ** 2).dtype == np.float32
    i32 = jnp.ones(3, jnp.int32)
    assert (i32 + 2.5).dtype == np.float32
    assert (i32 / 2).dtype == np.float32                 # true division -> default float
    assert (i32 // 2).dtype == np.int32
    assert (i32 % 2).dtype == np.int32
    assert (i32 ** 2).dtype == np.int32
    u8 = jnp.ones(3, jnp.uint8)
    assert (u8 + 1).dtype == np.uint8
    assert (u8 * 3).dtype == np.uint8
    b = jnp.ones(3, bool)
    assert (b + b).dtype == np.bool_ and (b * b).dtype == np.bool_
    assert (b & b).dtype == np.bool_
    assert (b + 1).dtype == np.int32


def test_weak_types():
    w = jnp.asarray(2.0)
    assert w.weak_type and w.dtype == np.float32
    assert (w * 3.0).weak_type                           # weak op weak stays weak
    assert not (w * jnp.ones(2)).weak_type               # a strong operand decides
    assert (w * jnp.ones(2, jnp.float16)).dtype == np.float16
    assert (jnp.asarray(2) + jnp.ones(2, jnp.int8)).dtype == np.int8
    assert not jnp.asarray(2.0, dtype=jnp.float32).weak_type
    assert not jnp.array([1.0, 2.0]).weak_type
    assert jnp.full((2,), 1.5).weak_type                # as in JAX: a weak fill value
    assert not jnp.full((2,), 1.5, jnp.float32).weak_type
    assert jnp.zeros_like(w).weak_type and not jnp.zeros_like(w, jnp.float32).weak_type


@pytest.mark.parametrize("fn,dtype_in,expected", [
    (jnp.exp, "int32", "float32"), (jnp.sqrt, "bool", "float32"), (jnp.sin, "uint8", "float32"),
    (jnp.exp, "float16", "float16"), (jnp.arctan2, "int8", "float32"),
    (jnp.true_divide, "int32", "float32"), (jnp.floor, "int32", "int32"),
    (jnp.round, "int16", "int16"), (jnp.rint, "int32", "float32"), (jnp.square, "bool", "int32"),
    (jnp.negative, "uint8", "uint8"), (jnp.abs, "int8", "int8"), (jnp.sign, "float32", "float32"),
    (jnp.logical_not, "float32", "bool"), (jnp.isnan, "int32", "bool"),
    (jnp.subtract, "uint16", "uint16"), (jnp.float_power, "int32", "float32"),
    (jnp.hypot, "int32", "float32"), (jnp.logaddexp, "int8", "float32"),
])
def test_function_result_dtypes(fn, dtype_in, expected):
    x = jnp.ones((3,), dtype_in)
    import inspect
    try:
        nargs = len([p for p in inspect.signature(fn).parameters.values()
                     if p.default is inspect.Parameter.empty])
    except (TypeError, ValueError):
        nargs = 1
    args = (x,) * max(1, nargs)
    assert _both(fn, *args).dtype == np.dtype(expected)


@pytest.mark.parametrize("fn,dtype_in,expected", [
    (jnp.sum, "bool", "int32"), (jnp.sum, "int8", "int32"), (jnp.sum, "uint8", "uint32"),
    (jnp.sum, "float16", "float16"), (jnp.prod, "int16", "int32"), (jnp.mean, "int32", "float32"),
    (jnp.mean, "bool", "float32"), (jnp.var, "int8", "float32"), (jnp.std, "float16", "float16"),
    (jnp.max, "int8", "int8"), (jnp.argmax, "float32", "int32"), (jnp.cumsum, "bool", "int32"),
    (jnp.cumsum, "int8", "int32"), (jnp.any, "float32", "bool"), (jnp.count_nonzero, "float32", "int32"),
])
def test_reduction_result_dtypes(fn, dtype_in, expected):
    x = jnp.ones((2, 3), dtype_in)
    assert _both(fn, x).dtype == np.dtype(expected)


def test_reduction_result_dtypes_x64():
    with x64_enabled():
        assert jnp.sum(jnp.ones(3, bool)).dtype == np.int64
        assert jnp.mean(jnp.ones(3, jnp.int32)).dtype == np.float64
        assert jnp.argmax(jnp.ones(3)).dtype == np.int64
        assert jnp.ones(3).dtype == np.float64
        assert jnp.arange(3).dtype == np.int64


def test_creation_dtypes():
    assert jnp.zeros(3).dtype == np.float32
    assert jnp.zeros(3, np.dtype("int32")).dtype == np.int32      # np.dtype objects are falsy
    assert jnp.ones(3, jnp.int8).dtype == np.int8
    assert jnp.eye(2, dtype=np.dtype("bool")).dtype == np.bool_
    assert jnp.arange(3).dtype == np.int32
    assert jnp.arange(3.0).dtype == np.float32
    assert jnp.arange(0, 1, 0.25).dtype == np.float32
    assert jnp.linspace(0, 1, 5).dtype == np.float32
    assert jnp.array([1, 2]).dtype == np.int32
    assert jnp.array([1, 2.5]).dtype == np.float32
    assert jnp.array(np.arange(3, dtype=np.float64)).dtype == np.float32
    assert jnp.full((2,), 3).dtype == np.int32
    assert jnp.full((2,), True).dtype == np.bool_
    assert jnp.asarray(np.uint8(3)).dtype == np.uint8


def test_matmul_and_einsum_promote():
    a = jnp.ones((2, 3), jnp.int32)
    b = jnp.ones((3, 2), jnp.float32)
    assert (a @ b).dtype == np.float32
    assert jnp.einsum("ij,jk->ik", a, b).dtype == np.float32
    assert jnp.dot(a, a.T).dtype == np.int32
    bb = jnp.ones((2, 2), bool)
    assert (bb @ bb).dtype == np.bool_
    assert jnp.matmul(a, a.T, preferred_element_type=jnp.float32).dtype == np.float32


def test_concatenate_and_stack_promote():
    assert jnp.concatenate([jnp.ones(2, jnp.int8), jnp.ones(2, jnp.uint8)]).dtype == np.int16
    assert jnp.stack([jnp.ones(2, jnp.float16), jnp.ones(2, jnp.float32)]).dtype == np.float32
    assert jnp.concatenate([jnp.ones(2), jnp.ones(2)], dtype=jnp.int32).dtype == np.int32


def test_at_updates_keep_the_array_dtype():
    x = jnp.zeros(3, jnp.int32)
    assert x.at[0].set(2.7).dtype == np.int32
    assert int(x.at[0].set(2.7)[0]) == 2
    assert jnp.zeros(3, jnp.float16).at[1].add(1.0).dtype == np.float16
