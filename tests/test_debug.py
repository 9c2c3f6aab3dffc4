"""jitgrad.debug.print under jit/grad/vmap, and debug_nans naming the op and the user's line."""
import inspect

import numpy as np
import pytest

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import backends, jit, vmap
from jitgrad.debug import NaNError


def _lines(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


def _cpu_backends() -> list[str]:
    """The host backends (cuda/gpu run these programs in tests/cuda_sim under the simulator)."""
    names = ["reference", "cpu"]
    for name in names:
        backends.get(name)          # an import error here is a failure, not a skip
    return names


def _grad():
    return jitgrad.grad


# ----------------------------------------------------------------------------- debug.print

def test_eager_print_formats_values(capsys):
    jitgrad.debug.print("x={} y={y:.2f}", jnp.arange(3), y=jnp.float32(1.5))
    assert _lines(capsys) == ["x=[0 1 2] y=1.50"]


@pytest.mark.parametrize("backend", _cpu_backends())
def test_print_inside_jit_shows_runtime_values_in_program_order(capsys, backend):
    def f(x):
        jitgrad.debug.print("first {}", x)
        y = jnp.sin(x) * 2.0
        t = jnp.sum(y)
        jitgrad.debug.print("second {} total={t}", y, t=t)
        return y, t

    g = jit(f, backend=backend)
    x = np.array([0.0, 1.0], np.float32)
    y, t = g(x)
    np.testing.assert_allclose(np.asarray(y), np.sin(x) * 2.0, rtol=1e-6)
    # The printed values are the ones the program computed (as numpy prints them).
    assert _lines(capsys) == [f"first {x}", f"second {np.asarray(y)} total={str(np.asarray(t))}"]
    # A cached executable prints on every call, with the new values, and never a tracer.
    g(x + 1)
    lines = _lines(capsys)
    assert lines[0] == f"first {x + 1}" and len(lines) == 2
    assert "Traced" not in "".join(lines)


def test_print_survives_optimisation_and_appears_in_the_ir(capsys):
    def f(x):
        jitgrad.debug.print("unused value {}", x * 2.0)   # nothing reads the print's input
        return x + 1.0

    ir_text = str(jitgrad.make_ir(f)(np.ones(2, np.float32)))
    assert "debug_callback" in ir_text and "print('unused value {}')" in ir_text
    from jitgrad.passes import optimize
    optimized = optimize(jitgrad.make_ir(f)(np.ones(2, np.float32)))
    assert [e.primitive.name for e in optimized.ir.eqns].count("debug_callback") == 1
    capsys.readouterr()
    jit(f)(np.ones(2, np.float32))
    assert _lines(capsys) == ["unused value [2. 2.]"]


def test_two_identical_prints_both_run(capsys):
    def f(x):
        jitgrad.debug.print("v {}", x)
        jitgrad.debug.print("v {}", x)        # CSE must not merge effects
        return x

    jit(f)(np.float32(3.0))
    assert _lines(capsys) == ["v 3.0", "v 3.0"]


def test_vmap_prints_each_example_in_order(capsys):
    def f(x, scale):
        jitgrad.debug.print("row {} scale {}", x, scale)
        return x * scale

    xs = np.arange(6, dtype=np.float32).reshape(3, 2)
    out = vmap(f, in_axes=(0, None))(xs, np.float32(2.0))
    np.testing.assert_allclose(np.asarray(out), xs * 2)
    expected = [f"row {r} scale 2.0" for r in xs]
    assert _lines(capsys) == expected
    jit(vmap(f, in_axes=(0, None)))(xs, np.float32(2.0))      # staged, then run
    assert _lines(capsys) == expected


def test_vmap_over_a_non_leading_axis(capsys):
    xs = np.arange(6, dtype=np.float32).reshape(2, 3)
    vmap(lambda c: jitgrad.debug.print("col {}", c) or c, in_axes=1)(xs)
    assert _lines(capsys) == [f"col {xs[:, j]}" for j in range(3)]


def test_grad_prints_primal_values_once(capsys):
    def loss(w):
        jitgrad.debug.print("w {}", w)
        y = jnp.sum(w * w)
        jitgrad.debug.print("loss {}", y)
        return y

    w = np.array([1.0, 2.0], np.float32)
    g = _grad()(loss)(w)
    np.testing.assert_allclose(np.asarray(g), 2 * w)
    assert _lines(capsys) == [f"w {w}", "loss 5.0"]
    g = jit(_grad()(loss))(w)
    np.testing.assert_allclose(np.asarray(g), 2 * w)
    assert _lines(capsys) == [f"w {w}", "loss 5.0"]


def test_callback_receives_numpy_values_and_static_leaves():
    seen = []
    jit(lambda x: jitgrad.debug.callback(lambda a, tag: seen.append((a, tag)), x, "t") or x)(
        np.arange(3, dtype=np.float32))
    (a, tag), = seen
    assert isinstance(a, np.ndarray) and tag == "t"
    np.testing.assert_array_equal(a, [0, 1, 2])


def test_print_rejects_a_non_string_format():
    with pytest.raises(TypeError, match="format must be a str"):
        jitgrad.debug.print(3, 1)


# ----------------------------------------------------------------------------- debug_nans

@pytest.fixture
def debug_nans():
    previous = jitgrad.config.debug_nans
    jitgrad.config.update("debug_nans", True)
    try:
        yield
    finally:
        jitgrad.config.update("debug_nans", previous)


def _nan_program(x):
    y = x * 2.0
    z = jnp.log(y - 3.0)          # NaN for x < 1.5: the line debug_nans must name
    return jnp.exp(z) + 1.0


_LOG_LINE = inspect.getsourcelines(_nan_program)[1] + 2


@pytest.mark.parametrize("backend", _cpu_backends())
def test_debug_nans_names_the_operation_and_the_source_line(debug_nans, backend):
    f = jit(_nan_program, backend=backend)
    np.testing.assert_allclose(np.asarray(f(np.full(3, 5.0, np.float32))), 8.0, rtol=1e-5)
    with pytest.raises(FloatingPointError) as info:
        f(np.array([5.0, 1.0, 5.0], np.float32))
    err = info.value
    assert isinstance(err, NaNError) and isinstance(err, jitgrad.JitgradError)
    assert "invalid value (NaN) encountered in log" in str(err)
    assert err.source is not None
    assert err.source.filename == __file__ and err.source.lineno == _LOG_LINE
    assert f"test_debug.py:{_LOG_LINE}" in str(err) and "jnp.log(y - 3.0)" in str(err)


def test_debug_nans_off_returns_the_nan(capsys):
    out = jit(_nan_program)(np.array([1.0], np.float32))
    assert np.isnan(np.asarray(out)).all()


def test_debug_nans_reports_a_nan_that_came_in_through_an_argument(debug_nans):
    with pytest.raises(FloatingPointError, match=r"encountered in mul .*argument"):
        jit(lambda x: x * 2.0)(np.array([np.nan], np.float32))


def test_debug_nans_does_not_reprint_debug_output(debug_nans, capsys):
    def f(x):
        jitgrad.debug.print("x {}", x)
        return jnp.sqrt(x)

    with pytest.raises(FloatingPointError, match="sqrt"):
        jit(f)(np.array([-1.0], np.float32))
    assert _lines(capsys) == ["x [-1.]"]
