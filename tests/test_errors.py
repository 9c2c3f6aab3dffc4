"""User mistakes in jitgrad.numpy code get clear errors: in-place assignment points to
``.at[]``; shape mismatches name the operation, both shapes and the user's own source line
(this file); Python control flow on traced values names ``jnp.where``/``lax.cond`` and the
argument the value came from; unknown keywords and numpy-only arguments are refused."""
from __future__ import annotations

import os

import numpy as np
import pytest

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import lax

THIS_FILE = os.path.basename(__file__)


def _line_of(text: str) -> int:
    """The line number in this file of the first line containing ``text``."""
    with open(__file__) as f:
        for i, line in enumerate(f, 1):
            if text in line and "_line_of" not in line:
                return i
    raise AssertionError(text)


# ------------------------------------------------------------------ immutability

def test_item_assignment_points_to_at():
    x = jnp.zeros((2, 3))
    with pytest.raises(TypeError) as info:
        x[0, 1] = 5.0
    msg = str(info.value)
    assert ".at[" in msg and ".set(" in msg


def test_item_assignment_under_jit_points_to_at():
    def f(x):
        x[0] = 1.0
        return x
    with pytest.raises(TypeError, match=r"x\.at\[idx\]\.set\(v\)"):
        jitgrad.jit(f)(jnp.zeros(3))


# ------------------------------------------------------------------ shape mismatches

def test_broadcast_mismatch_names_op_shapes_and_line_eagerly():
    with pytest.raises(TypeError) as info:
        jnp.add(jnp.ones((2, 3)), jnp.ones((4,)))  # MARK-eager-add
    msg = str(info.value)
    assert "add" in msg and "(2, 3)" in msg and "(4,)" in msg
    assert f"{THIS_FILE}:{_line_of('MARK-eager-add')}" in msg


def test_operator_mismatch_names_line():
    x, y = jnp.ones((3,)), jnp.ones((5,))
    with pytest.raises(TypeError) as info:
        x * y  # MARK-operator
    msg = str(info.value)
    assert "multiply" in msg and "(3,)" in msg and "(5,)" in msg
    assert f"{THIS_FILE}:{_line_of('MARK-operator')}" in msg


def test_broadcast_mismatch_under_jit_names_line():
    def f(a, b):
        return jnp.maximum(a, b) * 2  # MARK-jit-maximum
    with pytest.raises(TypeError) as info:
        jitgrad.jit(f)(jnp.ones((2, 3)), jnp.ones((2,)))
    msg = str(info.value)
    assert "maximum" in msg and "(2, 3)" in msg and "(2,)" in msg
    assert f"{THIS_FILE}:{_line_of('MARK-jit-maximum')}" in msg


def test_matmul_mismatch_names_shapes_and_line():
    def f(a, b):
        return a @ b  # MARK-matmul
    for run in (f, jitgrad.jit(f)):
        with pytest.raises(TypeError) as info:
            run(jnp.ones((2, 3)), jnp.ones((4, 5)))
        msg = str(info.value)
        assert "matmul" in msg and "(2, 3)" in msg and "(4, 5)" in msg
        assert f"{THIS_FILE}:{_line_of('MARK-matmul')}" in msg
        assert "transpose" in msg                      # says what to do


def test_lax_level_mismatch_under_jit_names_line():
    def f(a, b):
        return lax.add(a, b)  # MARK-lax-add
    with pytest.raises(TypeError) as info:
        jitgrad.jit(f)(jnp.ones((2, 3)), jnp.ones((3, 2)))
    msg = str(info.value)
    assert "add" in msg and "f32[2,3]" in msg and "f32[3,2]" in msg
    assert f"{THIS_FILE}:{_line_of('MARK-lax-add')}" in msg


@pytest.mark.parametrize("call,words", [
    (lambda: jnp.reshape(jnp.ones(6), (4, 2)), ["reshape", "6", "(4, 2)"]),
    (lambda: jnp.concatenate([jnp.ones((2, 3)), jnp.ones((2, 4))]), ["concatenate", "axis 0"]),
    (lambda: jnp.stack([jnp.ones(2), jnp.ones(3)]), ["stack", "(2,)", "(3,)"]),
    (lambda: jnp.broadcast_to(jnp.ones(3), (2, 4)), ["broadcast_to", "(3,)", "(2, 4)"]),
    (lambda: jnp.tensordot(jnp.ones((2, 3)), jnp.ones((4, 2)), 1), ["tensordot", "(2, 3)", "(4, 2)"]),
    (lambda: jnp.einsum("ij,jk", jnp.ones((2, 3)), jnp.ones((4, 2))), ["einsum", "'j'"]),
    (lambda: jnp.where(jnp.ones(2, bool), jnp.ones(3), 0.0), ["where", "(2,)", "(3,)"]),
    (lambda: jnp.zeros(4).at[:2].set(jnp.ones(3)), ["at[].set", "(3,)", "(2,)"]),
    (lambda: jnp.sum(jnp.ones((2, 3)), axis=2), ["sum", "axis 2", "rank 2"]),
])
def test_shape_errors_name_op_and_shapes(call, words):
    with pytest.raises(TypeError) as info:
        call()
    msg = str(info.value)
    for w in words:
        assert w in msg, (w, msg)
    assert THIS_FILE in msg


# ------------------------------------------------------------------ traced values in Python

def test_python_if_on_traced_value_names_where_cond_and_argument():
    def relu_if(x, scale):
        if x > 0:  # MARK-if
            return x * scale
        return x
    with pytest.raises(TypeError) as info:
        jitgrad.jit(relu_if)(jnp.float32(1.0), 2.0)
    msg = str(info.value)
    assert "jnp.where" in msg and "lax.cond" in msg
    assert "argument 'x'" in msg and "'scale'" not in msg
    assert f"{THIS_FILE}:{_line_of('MARK-if')}" in msg
    assert isinstance(info.value, jitgrad.TracerBoolConversionError)


def test_python_while_and_bool_on_traced_value():
    def f(x):
        while jnp.sum(x) > 0:
            x = x - 1
        return x
    with pytest.raises(jitgrad.TracerBoolConversionError, match="while_loop"):
        jitgrad.jit(f)(jnp.ones(2))
    with pytest.raises(jitgrad.TracerBoolConversionError):
        jitgrad.jit(lambda x: bool(x.any()))(jnp.ones(2))


def test_int_of_traced_value():
    def f(x, n):
        return jnp.zeros(int(n)) + x  # MARK-int
    with pytest.raises(TypeError) as info:
        jitgrad.jit(f)(1.0, 3)
    msg = str(info.value)
    assert "argument 'n'" in msg and "static_argnums" in msg
    out = jitgrad.jit(f, static_argnums=1)(1.0, 3)
    np.testing.assert_array_equal(out, np.ones(3))


def test_traced_mask_and_slice_bounds():
    with pytest.raises(jitgrad.NonConcreteBooleanIndexError, match="jnp.where"):
        jitgrad.jit(lambda x: x[x > 0])(jnp.ones(3))
    with pytest.raises(IndexError, match="dynamic_slice"):
        jitgrad.jit(lambda x, i: x[i:])(jnp.ones(3), 1)
    with pytest.raises(TypeError):
        jitgrad.jit(lambda n: jnp.arange(n))(3)


def test_numpy_function_on_tracer():
    with pytest.raises(TypeError, match="jitgrad.numpy"):
        jitgrad.jit(lambda x: np.sin(np.asarray(x)))(jnp.ones(2))


# ------------------------------------------------------------------ refused arguments

@pytest.mark.parametrize("call", [
    lambda x: jnp.sum(x, axes=0),
    lambda x: jnp.mean(x, keepdim=True),
    lambda x: jnp.max(x, axis=0, foo=1),
    lambda x: jnp.exp(x, out=None),
    lambda x: jnp.add(x, x, where=True),
    lambda x: jnp.reshape(x, (3, 2), foo=1),
    lambda x: jnp.transpose(x, axes=(1, 0), bar=2),
    lambda x: jnp.pad(x, 1, stat_length=3),
    lambda x: jnp.take(x, 0, axis=0, foo=1),
    lambda x: jnp.einsum("ij->ji", x, foo=1),
    lambda x: jnp.matmul(x, x.T, foo=1),
    lambda x: jnp.clip(x, 0, 1, foo=1),
    lambda x: jnp.where(x > 0, x, 0, foo=1),
    lambda x: jnp.linalg.norm(x, foo=1),
    lambda x: x.at[0].set(1.0, foo=1),
    lambda x: x.at[0].get(foo=1),
    lambda x: jnp.zeros(3, dtype=None, foo=1),
    lambda x: jnp.array([1, 2], foo=1),
    lambda x: jnp.concatenate([x, x], axis=0, foo=1),
    lambda x: jnp.cumsum(x, foo=1),
    lambda x: jnp.argmax(x, foo=1),
])
def test_unknown_keywords_raise(call):
    with pytest.raises(TypeError):
        call(jnp.ones((2, 3)))


@pytest.mark.parametrize("call", [
    lambda x: jnp.sum(x, out=np.zeros(())),
    lambda x: jnp.mean(x, out=np.zeros(())),
    lambda x: jnp.max(x, out=np.zeros(())),
    lambda x: jnp.argmax(x, out=np.zeros((), np.int32)),
    lambda x: jnp.round(x, out=np.zeros((2, 3))),
    lambda x: jnp.take(x, 0, out=np.zeros(())),
    lambda x: jnp.stack([x], out=np.zeros((1, 2, 3))),
    lambda x: jnp.outer(x, x, out=np.zeros((6, 6))),
])
def test_out_argument_is_refused(call):
    with pytest.raises(NotImplementedError, match="out"):
        call(jnp.ones((2, 3)))


def test_unsupported_modes_are_refused():
    x = jnp.ones((2, 3))
    with pytest.raises(ValueError, match="mode"):
        jnp.take(x, 0, mode="raise")
    with pytest.raises(ValueError, match="mode"):
        x.at[0].set(1.0, mode="wrap")
    with pytest.raises(NotImplementedError):
        jnp.reshape(x, (3, 2), order="A")
    with pytest.raises(ValueError, match="indexing"):
        jnp.meshgrid(x, indexing="zz")


def test_non_array_argument_suggests_static_argnums():
    with pytest.raises(TypeError, match="static_argnums"):
        jitgrad.jit(lambda x, name: x)(jnp.ones(2), "relu")
    with pytest.raises(TypeError):
        jnp.add("a", jnp.ones(2))
