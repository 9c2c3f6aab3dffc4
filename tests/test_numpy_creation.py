"""jnp array creation against numpy: array/asarray, zeros/ones/full/empty and *_like,
arange, linspace, eye/identity, tri/tril/triu, meshgrid; eagerly and under jit."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jitgrad
import jitgrad.numpy as jnp
from test_numpy_support import FEW, SETTINGS, arrays, assert_close, check, shapes, x64_enabled


@SETTINGS
@given(shape=shapes(), dtype=st.sampled_from(["float32", "int32", "bool", "uint8", "float16"]),
       fill=st.integers(0, 3))
def test_filled(shape, dtype, fill):
    for jfn, nfn in ((jnp.zeros, np.zeros), (jnp.ones, np.ones)):
        out = jfn(shape, dtype)
        assert out.dtype == np.dtype(dtype)
        assert_close(out, nfn(shape, dtype))
        assert_close(jitgrad.jit(lambda: jfn(shape, dtype))(), nfn(shape, dtype))
    assert_close(jnp.full(shape, fill, dtype), np.full(shape, fill, dtype))
    assert jnp.empty(shape, dtype).shape == shape
    x = np.zeros(shape, dtype)
    for jfn, value in ((jnp.zeros_like, 0), (jnp.ones_like, 1), (jnp.full_like, fill)):
        args = (x, fill) if jfn is jnp.full_like else (x,)
        out = check(lambda v: jfn(v, *args[1:]), lambda v: np.full_like(v, value), *args[:1])
        assert out.dtype == np.dtype(dtype)


def test_default_dtypes_and_x64():
    assert jnp.zeros(2).dtype == np.float32
    assert jnp.zeros_like(np.zeros(2, np.int64)).dtype == np.int32
    with x64_enabled():
        assert jnp.zeros(2).dtype == np.float64
        assert jnp.zeros_like(np.zeros(2, np.int64)).dtype == np.int64
        assert jnp.array(1.5).dtype == np.float64


def test_full_with_array_fill_value():
    out = jnp.full((2, 3), jnp.arange(3.0))
    assert_close(out, np.full((2, 3), np.arange(3.0, dtype=np.float32)))
    out = jitgrad.jit(lambda v: jnp.full((2, 2), v))(jnp.float32(4))
    assert_close(out, np.full((2, 2), 4.0, np.float32))


@SETTINGS
@given(start=st.integers(-10, 10), stop=st.integers(-10, 10), step=st.integers(-3, 3).filter(bool))
def test_arange_int(start, stop, step):
    assert_close(jnp.arange(stop), np.arange(stop))
    out = jnp.arange(start, stop, step)
    assert out.dtype == np.int32
    assert_close(out, np.arange(start, stop, step))
    assert_close(jitgrad.jit(lambda: jnp.arange(start, stop, step))(), np.arange(start, stop, step))


@SETTINGS
@given(start=st.floats(-5, 5), stop=st.floats(-5, 5), step=st.floats(0.1, 2))
def test_arange_float(start, stop, step):
    step = step if stop >= start else -step
    expected = np.arange(start, stop, step)
    out = jnp.arange(start, stop, step)
    assert out.dtype == np.float32
    assert_close(out, expected.astype(np.float32), rtol=1e-5, atol=1e-5)


@SETTINGS
@given(start=st.floats(-5, 5), stop=st.floats(-5, 5), num=st.integers(0, 7),
       endpoint=st.booleans())
def test_linspace(start, stop, num, endpoint):
    out = jnp.linspace(start, stop, num, endpoint=endpoint)
    assert out.dtype == np.float32
    assert_close(out, np.linspace(start, stop, num, endpoint=endpoint), rtol=1e-5, atol=1e-5)
    v, step = jnp.linspace(start, stop, num, endpoint=endpoint, retstep=True)
    _, nstep = np.linspace(start, stop, num, endpoint=endpoint, retstep=True)
    if num > 1:
        assert_close(step, np.float32(nstep), rtol=1e-5, atol=1e-6)
    out = jitgrad.jit(lambda a, b: jnp.linspace(a, b, num, endpoint=endpoint))(start, stop)
    assert_close(out, np.linspace(start, stop, num, endpoint=endpoint), rtol=1e-5, atol=1e-5)


def test_linspace_arrays_axis_and_int_dtype():
    a, b = np.array([0.0, 1.0]), np.array([1.0, 3.0])
    assert_close(jnp.linspace(a, b, 4), np.linspace(a, b, 4), rtol=1e-6)
    assert_close(jnp.linspace(a, b, 4, axis=1), np.linspace(a, b, 4, axis=1), rtol=1e-6)
    assert_close(jnp.linspace(0, 10, 4, dtype=jnp.int32), np.linspace(0, 10, 4, dtype=np.int32))


@SETTINGS
@given(n=st.integers(0, 5), m=st.one_of(st.none(), st.integers(0, 5)), k=st.integers(-6, 6),
       dtype=st.sampled_from(["float32", "int32", "bool"]))
def test_eye_tri(n, m, k, dtype):
    assert_close(jnp.eye(n, m, k, dtype), np.eye(n, m, k, dtype))
    assert jnp.eye(n, m, k, dtype).dtype == np.dtype(dtype)
    assert_close(jnp.tri(n, m, k, dtype), np.tri(n, m, k, dtype))
    assert_close(jnp.identity(n, dtype), np.identity(n, dtype))
    assert_close(jitgrad.jit(lambda: jnp.eye(n, m, k))(), np.eye(n, m, k))


@SETTINGS
@given(x=arrays(np.float32, shapes(min_dims=2)), k=st.integers(-4, 4))
def test_tril_triu(x, k):
    check(lambda v: jnp.tril(v, k), lambda v: np.tril(v, k), x)
    check(lambda v: jnp.triu(v, k), lambda v: np.triu(v, k), x)


@FEW
@given(a=arrays(np.float32, shapes(1, 1)), b=arrays(np.float32, shapes(1, 1)),
       c=arrays(np.float32, shapes(1, 1)), indexing=st.sampled_from(["xy", "ij"]),
       sparse=st.booleans())
def test_meshgrid(a, b, c, indexing, sparse):
    check(lambda *v: tuple(jnp.meshgrid(*v, indexing=indexing, sparse=sparse)),
          lambda *v: tuple(np.meshgrid(*v, indexing=indexing, sparse=sparse)), a, b, c)
    check(lambda *v: tuple(jnp.meshgrid(*v, indexing=indexing)),
          lambda *v: tuple(np.meshgrid(*v, indexing=indexing)), a, b)


@SETTINGS
@given(x=arrays(np.float32, shapes()))
def test_array_asarray_copy(x):
    for fn in (jnp.array, jnp.asarray, jnp.copy):
        out = fn(x)
        assert isinstance(out, jitgrad.Array)
        assert_close(out, x)
    assert_close(jnp.array(x, dtype=jnp.int32), x.astype(np.int32) if np.isfinite(x).all() else
                 np.asarray(jnp.array(x, dtype=jnp.int32)))
    assert jnp.array(x, ndmin=4).ndim == max(4, x.ndim)
    y = jnp.asarray(x)
    assert jnp.asarray(y) is y


def test_array_from_nested_lists_and_tracers():
    assert_close(jnp.array([[1, 2], [3, 4]]), np.array([[1, 2], [3, 4]], np.int32))
    assert_close(jnp.array([jnp.ones(2), np.zeros(2)]), np.array([[1, 1], [0, 0]], np.float32))
    out = jitgrad.jit(lambda a, b: jnp.array([a, b, 3.0]))(1.0, jnp.float32(2))
    assert_close(out, np.array([1, 2, 3], np.float32))
    assert out.dtype == np.float32


def test_array_refuses_unsupported_arguments():
    with pytest.raises(NotImplementedError, match="order"):
        jnp.array([1, 2], order="F")
    with pytest.raises(TypeError):
        jnp.zeros(3, dtype="complex64")
    with pytest.raises(TypeError):
        jnp.zeros(3, device="cpu0", foo=1)
    with pytest.raises(TypeError, match="shape"):
        jnp.zeros((2, 2.5))


def test_device_argument_places_the_result():
    cpu = jitgrad.devices("cpu")[0]
    for out in (jnp.zeros(2, device=cpu), jnp.ones(2, device="cpu"), jnp.arange(3, device=cpu),
                jnp.full((2,), 1.0, device=cpu), jnp.asarray([1, 2], device=cpu),
                jnp.eye(2, device=cpu), jnp.linspace(0, 1, 3, device=cpu),
                jnp.zeros_like(jnp.ones(2), device=cpu)):
        assert out.device == cpu
    with pytest.raises(ValueError):
        jnp.zeros(2, device="no-such-backend")
