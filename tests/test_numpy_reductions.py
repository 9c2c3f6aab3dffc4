"""jnp reductions against numpy: random shapes (size-0/1 axes), every axis form (None, int,
negative, tuple), keepdims, where=, initial=, NaN/inf, eagerly and under jit."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import jitgrad.numpy as jnp
from test_numpy_support import FEW, SETTINGS, arrays, check, shapes, x64_enabled


@st.composite
def array_and_axis(draw, dtype=np.float32, nonempty_axes=False, single=False, **kw):
    """An array and an axis argument: None, an int (maybe negative) or a tuple of ints."""
    x = draw(arrays(dtype, shapes(), **kw))
    nd = x.ndim
    choices = [None] if (not single and (not nonempty_axes or x.size)) else []
    if nd:
        choices += list(range(-nd, nd))
        if not single:
            choices += [tuple(sorted(draw(st.sets(st.integers(0, nd - 1), min_size=1))))]
    if nonempty_axes:
        def ok(ax):
            axes = range(nd) if ax is None else ((ax,) if isinstance(ax, int) else ax)
            return all(x.shape[a] > 0 for a in axes)
        choices = [c for c in choices if ok(c)]
    if not choices:
        x = np.ones((2,), dtype)
        choices = [0]
    return x, draw(st.sampled_from(choices))


SUM_LIKE = {
    "sum": (jnp.sum, np.sum), "prod": (jnp.prod, np.prod), "mean": (jnp.mean, np.mean),
    "var": (jnp.var, np.var), "std": (jnp.std, np.std), "any": (jnp.any, np.any),
    "all": (jnp.all, np.all), "nansum": (jnp.nansum, np.nansum),
    "nanprod": (jnp.nanprod, np.nanprod), "count_nonzero": (jnp.count_nonzero, np.count_nonzero),
    "nanmean": (jnp.nanmean, np.nanmean),
}
MINMAX = {"max": (jnp.max, np.max), "min": (jnp.min, np.min), "amax": (jnp.amax, np.amax),
          "amin": (jnp.amin, np.amin), "ptp": (jnp.ptp, np.ptp),
          "nanmax": (jnp.nanmax, np.nanmax), "nanmin": (jnp.nanmin, np.nanmin)}


def _tol(name):
    # var/std/prod accumulate differently from numpy's pairwise float32 sums.
    return dict(rtol=1e-3, atol=1e-3) if name in ("var", "std", "prod", "nanprod", "mean",
                                                 "nanmean", "sum", "nansum") else {}


@pytest.mark.parametrize("name", sorted(SUM_LIKE))
@pytest.mark.parametrize("keepdims", [False, True])
@SETTINGS
@given(xa=array_and_axis(np.float32, min_value=-5, max_value=5))
def test_sum_like(name, keepdims, xa):
    x, axis = xa
    jfn, nfn = SUM_LIKE[name]
    if name == "count_nonzero":
        ref = lambda v: np.asarray(np.count_nonzero(v, axis=axis, keepdims=keepdims))
    else:
        ref = lambda v: nfn(v, axis=axis, keepdims=keepdims)
    out = check(lambda v: jfn(v, axis=axis, keepdims=keepdims), ref, x, **_tol(name))
    if name in ("any", "all"):
        assert out.dtype == np.bool_
    elif name == "count_nonzero":
        assert out.dtype == np.int32
    else:
        assert out.dtype == np.float32


@pytest.mark.parametrize("name", sorted(MINMAX))
@pytest.mark.parametrize("keepdims", [False, True])
@SETTINGS
@given(xa=array_and_axis(np.float32, nonempty_axes=True))
def test_min_max(name, keepdims, xa):
    x, axis = xa
    jfn, nfn = MINMAX[name]
    check(lambda v: jfn(v, axis=axis, keepdims=keepdims),
          lambda v: nfn(v, axis=axis, keepdims=keepdims), x, dtype=np.float32)


@pytest.mark.parametrize("name", ["sum", "prod", "max", "min", "any", "all"])
@SETTINGS
@given(xa=array_and_axis(np.int32, nonempty_axes=True, min_value=-3, max_value=3))
def test_int_reductions(name, xa):
    x, axis = xa
    jfn, nfn = getattr(jnp, name), getattr(np, name)
    out = check(lambda v: jfn(v, axis=axis), lambda v: nfn(v, axis=axis), x)
    assert out.dtype == (np.bool_ if name in ("any", "all") else np.int32)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("keepdims", [False, True])
@SETTINGS
@given(xa=array_and_axis(np.float32, nonempty_axes=True, single=True))
def test_argmax_argmin(name, keepdims, xa):
    x, axis = xa
    jfn, nfn = getattr(jnp, name), getattr(np, name)
    check(lambda v: jfn(v, axis=axis, keepdims=keepdims),
          lambda v: nfn(v, axis=axis, keepdims=keepdims), x, dtype=np.int32)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@FEW
@given(x=arrays(np.float32, shapes(min_dims=1, min_side=1)))
def test_argmax_argmin_flat(name, x):
    jfn, nfn = getattr(jnp, name), getattr(np, name)
    check(jfn, nfn, x, dtype=np.int32)


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@SETTINGS
@given(xa=array_and_axis(np.float32, single=True, min_value=-3, max_value=3))
def test_cumulative(name, xa):
    x, axis = xa
    jfn, nfn = getattr(jnp, name), getattr(np, name)
    check(lambda v: jfn(v, axis=axis), lambda v: nfn(v, axis=axis), x, dtype=np.float32,
          rtol=1e-4, atol=1e-4)
    check(jfn, nfn, x, dtype=np.float32, rtol=1e-4, atol=1e-4)   # axis=None flattens


@FEW
@given(xa=array_and_axis(np.int8, single=True, min_value=-3, max_value=3))
def test_cumsum_int8_accumulates_in_int32(xa):
    x, axis = xa
    check(lambda v: jnp.cumsum(v, axis=axis), lambda v: np.cumsum(v, axis=axis).astype(np.int32),
          x, dtype=np.int32)


@pytest.mark.parametrize("name", ["sum", "mean", "prod", "max", "min", "any", "all"])
@SETTINGS
@given(data=st.data())
def test_where_mask(name, data):
    x, axis = data.draw(array_and_axis(np.float32, min_value=-3, max_value=3))
    mask = data.draw(arrays(np.bool_, x.shape))
    kw = dict(initial=-100.0) if name == "max" else dict(initial=100.0) if name == "min" else {}
    jfn, nfn = getattr(jnp, name), getattr(np, name)
    check(lambda v, m: jfn(v, axis=axis, where=m, **kw),
          lambda v, m: nfn(v, axis=axis, where=m, **kw), x, mask, rtol=1e-4, atol=1e-4)


@FEW
@given(xa=array_and_axis(np.float32, min_value=-3, max_value=3))
def test_initial(xa):
    x, axis = xa
    check(lambda v: jnp.sum(v, axis=axis, initial=2.0),
          lambda v: np.sum(v, axis=axis, initial=2.0), x, rtol=1e-4, atol=1e-4)
    check(lambda v: jnp.max(v, axis=axis, initial=0.5),
          lambda v: np.max(v, axis=axis, initial=0.5), x)


@pytest.mark.parametrize("ddof", [0, 1])
@FEW
@given(xa=array_and_axis(np.float32, special=False, min_value=-3, max_value=3))
def test_var_std_ddof(ddof, xa):
    x, axis = xa
    check(lambda v: jnp.var(v, axis=axis, ddof=ddof), lambda v: np.var(v, axis=axis, ddof=ddof),
          x, rtol=1e-3, atol=1e-3)
    check(lambda v: jnp.std(v, axis=axis, correction=ddof),
          lambda v: np.std(v, axis=axis, ddof=ddof), x, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("name", ["sum", "mean", "var", "max", "argmax", "cumsum"])
@FEW
@given(xa=array_and_axis(np.float64, nonempty_axes=True, single=True))
def test_float64_with_x64(name, xa):
    x, axis = xa
    jfn, nfn = getattr(jnp, name), getattr(np, name)
    with x64_enabled():
        out = check(lambda v: jfn(v, axis=axis), lambda v: nfn(v, axis=axis), x)
        assert out.dtype == (np.int64 if name == "argmax" else np.float64)


@FEW
@given(xa=array_and_axis(np.int64, single=True, min_value=-10**9, max_value=10**9))
def test_int64_sum_with_x64(xa):
    x, axis = xa
    with x64_enabled():
        check(lambda v: jnp.sum(v, axis=axis), lambda v: np.sum(v, axis=axis), x, dtype=np.int64)


@FEW
@given(xa=array_and_axis(np.float32, special=False, nonempty_axes=True, min_value=-3,
                         max_value=3), w=st.floats(0.5, 2.0))
def test_average(xa, w):
    x, axis = xa
    assume(x.size > 0)     # numpy's average of an empty array divides by zero
    weights = np.full(x.shape, w, np.float32)
    check(lambda v: jnp.average(v, axis=axis),
          lambda v: np.average(v, axis=axis).astype(np.float32), x, rtol=1e-4, atol=1e-4)
    check(lambda v, ww: jnp.average(v, axis=axis, weights=ww),
          lambda v, ww: np.average(v, axis=axis, weights=ww), x, weights, rtol=1e-4, atol=1e-4)


def test_empty_reductions():
    e = jnp.zeros((0, 3))
    np.testing.assert_array_equal(jnp.sum(e, axis=0), np.zeros(3))
    np.testing.assert_array_equal(jnp.prod(e, axis=0), np.ones(3))
    assert bool(jnp.all(e)) and not bool(jnp.any(e))
    assert np.isnan(float(jnp.mean(e)))
    with pytest.raises(ValueError, match="zero-size array to reduction operation max"):
        jnp.max(e, axis=0)
    with pytest.raises(ValueError, match="argmax of an empty sequence"):
        jnp.argmax(e)
    np.testing.assert_array_equal(jnp.max(e, axis=1), np.zeros((0,)))
    np.testing.assert_array_equal(jnp.max(e, axis=0, initial=-1.0), -np.ones(3))


def test_methods():
    x = jnp.arange(6.0).reshape(2, 3)
    assert float(x.sum()) == 15.0
    np.testing.assert_array_equal(x.max(axis=0), [3, 4, 5])
    np.testing.assert_array_equal(x.argmax(axis=1), [2, 2])
    np.testing.assert_allclose(x.mean(1), [1, 4])
    np.testing.assert_allclose(x.std(), np.std(np.arange(6.0)), rtol=1e-6)
    np.testing.assert_array_equal(x.cumsum(), np.cumsum(np.arange(6.0)))
    assert bool(x.any()) and not bool(x.all())


def test_reductions_refuse_out_and_bad_axes():
    x = jnp.ones((2, 3))
    with pytest.raises(NotImplementedError, match="out"):
        jnp.sum(x, out=np.zeros(3))
    with pytest.raises(TypeError, match="axis 2 is out of bounds"):
        jnp.sum(x, axis=2)
    with pytest.raises(TypeError, match="repeated axis"):
        jnp.mean(x, axis=(0, -2))
    with pytest.raises(TypeError):
        jnp.sum(x, axes=0)                                # unknown keyword
    with pytest.raises(ValueError, match="initial"):
        jnp.max(x, where=x > 0)
