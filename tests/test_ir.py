"""The IR: typed equations, stable printing, source lines, constants and literals."""
import numpy as np
import pytest

import jitgrad
import jitgrad.numpy as jnp
from jitgrad.core.ir import ir_fingerprint, pretty_print


def mlp_loss(params, x, y):
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    out = h @ params["w2"]
    return jnp.mean((out - y) ** 2)


def _params():
    rng = np.random.default_rng(0)
    return {"w1": rng.normal(size=(3, 4)).astype(np.float32),
            "b1": np.zeros(4, np.float32),
            "w2": rng.normal(size=(4, 2)).astype(np.float32)}


def test_ir_is_typed_and_prints_like_a_jaxpr():
    x = np.ones((5, 3), np.float32)
    y = np.zeros((5, 2), np.float32)
    ir = jitgrad.make_ir(mlp_loss)(_params(), x, y)
    text = str(ir)
    assert text.startswith("{ lambda ; a:f32[4] b:f32[3,4] c:f32[4,2] d:f32[5,3] e:f32[5,2]. let")
    assert "dot_general" in text and "tanh" in text and "integer_pow" in text
    assert text.rstrip().endswith("}")
    # Every equation's output has a type consistent with what the numpy reference computes.
    names = [e.primitive.name for e in ir.ir.eqns]
    assert names[0] == "dot_general"
    assert ir.ir.outvars[0].aval.shape == () and ir.ir.outvars[0].aval.dtype == np.float32


def test_printing_is_deterministic_and_hashable():
    x = np.ones((5, 3), np.float32)
    y = np.zeros((5, 2), np.float32)
    a = jitgrad.make_ir(mlp_loss)(_params(), x, y)
    b = jitgrad.make_ir(mlp_loss)(_params(), x, y)
    assert str(a) == str(b)
    assert ir_fingerprint(a.ir) == ir_fingerprint(b.ir)
    c = jitgrad.make_ir(mlp_loss)(_params(), np.ones((6, 3), np.float32), np.zeros((6, 2), np.float32))
    assert ir_fingerprint(a.ir) != ir_fingerprint(c.ir)


def test_equations_record_the_users_source_line():
    ir = jitgrad.make_ir(mlp_loss)(_params(), np.ones((5, 3), np.float32), np.zeros((5, 2), np.float32))
    tanh = next(e for e in ir.ir.eqns if e.primitive.name == "tanh")
    assert tanh.source is not None
    assert tanh.source.filename == __file__
    assert "jnp.tanh" in tanh.source.line_text()


def test_python_scalars_become_literals_and_arrays_become_constants():
    w = jnp.arange(3.0)
    ir = jitgrad.make_ir(lambda x: x * 2.0 + w)(np.ones(3, np.float32))
    text = str(ir)
    assert "2.0:f32[]" in text
    assert len(ir.ir.constvars) == 1 and ir.ir.constvars[0].aval.shape == (3,)


def test_names_continue_past_z():
    def many(x):
        for _ in range(30):
            x = x + 1.0
        return x
    text = str(jitgrad.make_ir(many)(1.0))
    assert " ba:" in text or "ba:f32" in text


def test_shape_error_points_at_user_line():
    def bad(x, y):
        return x @ y       # the line the error must show
    with pytest.raises(TypeError) as err:
        jitgrad.jit(bad)(np.ones((2, 3), np.float32), np.ones((4, 5), np.float32))
    msg = str(err.value)
    assert "matmul" in msg and "(2, 3)" in msg and "(4, 5)" in msg
    assert "test_ir.py" in msg and "the line the error must show" in msg


def test_bool_of_tracer_names_argument_and_alternatives():
    def f(x, threshold):
        if x.sum() > threshold:
            return x
        return -x
    with pytest.raises(jitgrad.TracerBoolConversionError) as err:
        jitgrad.jit(f)(np.ones(3, np.float32), 1.0)
    msg = str(err.value)
    assert "jnp.where" in msg and "lax.cond" in msg
    assert "'x'" in msg and "'threshold'" in msg
    assert "test_ir.py" in msg


def test_int_of_tracer_suggests_static_argnums():
    with pytest.raises(jitgrad.ConcretizationTypeError, match="static_argnums"):
        jitgrad.jit(lambda n: jnp.ones(int(n)))(3)


def test_numpy_on_tracer_is_a_clear_error():
    with pytest.raises(jitgrad.TracerArrayConversionError, match="jitgrad.numpy"):
        jitgrad.jit(lambda x: np.sin(np.asarray(x)))(np.ones(2, np.float32))


def test_pretty_print_nested_indentation_roundtrip():
    ir = jitgrad.make_ir(lambda x: jnp.sum(jnp.exp(x)))(np.ones((2, 2), np.float32))
    assert pretty_print(ir.ir) == str(ir)
