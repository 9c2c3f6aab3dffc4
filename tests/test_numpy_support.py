"""Shared helpers of the jitgrad.numpy tests (and a few tests of the helpers themselves).

``check(jnp_fn, np_fn, *args)`` runs ``jnp_fn`` eagerly and under ``jitgrad.jit`` (which
executes on the reference interpreter), compares both with ``np_fn`` on the same data, and
checks that eager and jit agree on dtype. The strategies make arrays of random shapes
with size-0 and size-1 dimensions, broadcastable pairs, and NaN/inf among the values.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from typing import Any, Callable

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import jitgrad
import jitgrad.numpy as jnp

# Few examples per test: the files together must run in a few minutes on 2 cores.
# JITGRAD_HYPOTHESIS_EXAMPLES=500 (say) runs a deeper search locally.
_EXAMPLES = int(os.environ.get("JITGRAD_HYPOTHESIS_EXAMPLES", "25"))
SETTINGS = settings(max_examples=_EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.function_scoped_fixture])
FEW = settings(SETTINGS, max_examples=max(1, _EXAMPLES // 2))

MAX_SIDE = 4


@contextlib.contextmanager
def x64_enabled(enabled: bool = True):
    """``jax_enable_x64`` set for a block, restored afterwards."""
    old = jitgrad.config.jax_enable_x64
    jitgrad.config.update("jax_enable_x64", enabled)
    try:
        yield
    finally:
        jitgrad.config.update("jax_enable_x64", old)


# ------------------------------------------------------------------ strategies

def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 0, max_side: int = MAX_SIDE):
    """Array shapes with sides in [min_side, max_side] (0 and 1 included by default)."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcast_shapes(n: int = 2, min_dims: int = 0, max_dims: int = 3):
    """``n`` mutually broadcastable shapes (a tuple)."""
    return hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=min_dims, max_dims=max_dims,
                                             max_side=MAX_SIDE).map(lambda b: b.input_shapes)


def elements(dtype, special: bool = True, min_value=None, max_value=None):
    """Values of ``dtype``; floats include NaN and +-inf when ``special``."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        width = dtype.itemsize * 8
        finite = st.floats(width=width, allow_nan=False, allow_infinity=False,
                           min_value=-1e4 if min_value is None else min_value,
                           max_value=1e4 if max_value is None else max_value)
        if not special:
            return finite
        return st.one_of(finite, finite, finite,
                         st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0]))
    if dtype.kind == "b":
        return st.booleans()
    info = np.iinfo(dtype)
    lo = max(info.min, -1000 if min_value is None else min_value)
    hi = min(info.max, 1000 if max_value is None else max_value)
    return st.integers(lo, hi)


def arrays(dtype, shape, special: bool = True, **kw):
    """A numpy array of ``dtype`` and ``shape`` (a shape or a shape strategy)."""
    return hnp.arrays(np.dtype(dtype), shape, elements=elements(dtype, special, **kw))


# ------------------------------------------------------------------ comparisons

def tolerance(dtype) -> dict:
    dtype = np.dtype(dtype)
    if dtype == np.float64:
        return dict(rtol=1e-9, atol=1e-12)
    if dtype == np.float16:
        return dict(rtol=2e-3, atol=1e-3)
    return dict(rtol=2e-5, atol=1e-6)


def assert_close(actual: Any, expected: Any, rtol: float | None = None,
                 atol: float | None = None, what: str = "") -> None:
    """Same shape, and equal values (close for floats; NaN matches NaN, inf matches inf)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if actual.dtype.kind == "f" or expected.dtype.kind == "f":
        tol = tolerance(actual.dtype if actual.dtype.kind == "f" else expected.dtype)
        if rtol is not None:
            tol["rtol"] = rtol
        if atol is not None:
            tol["atol"] = atol
        np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64),
                                   equal_nan=True, err_msg=what, **tol)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


def numpy_ref(np_fn: Callable, *args):
    """``np_fn`` on numpy copies of ``args`` with numpy's warnings silenced."""
    np_args = [np.asarray(a) if isinstance(a, (jitgrad.Array, np.ndarray)) else a for a in args]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np_fn(*np_args)


def check(jnp_fn: Callable, np_fn: Callable | None, *args, dtype=None, rtol=None, atol=None,
          expected=None, jit: bool = True):
    """Compare ``jnp_fn(*args)`` eagerly and under jit with ``np_fn(*args)``.

    Array arguments are passed as jitgrad arrays. ``dtype``: the result dtype JAX gives
    (checked for the eager and the jitted result). Returns the eager result.
    """
    jargs = [jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
    if expected is None:
        expected = numpy_ref(np_fn, *args)
    eager = jnp_fn(*jargs)
    _compare_tree(eager, expected, rtol, atol, "eager vs numpy")
    if jit:
        jitted = jitgrad.jit(jnp_fn)(*jargs)
        _compare_tree(jitted, expected, rtol, atol, "jit vs numpy")
        for e, j in zip(_leaves(eager), _leaves(jitted)):
            assert e.dtype == j.dtype, f"eager dtype {e.dtype} != jit dtype {j.dtype}"
    if dtype is not None:
        for e in _leaves(eager):
            assert e.dtype == np.dtype(dtype), f"dtype {e.dtype}, expected {np.dtype(dtype)}"
    return eager


def _leaves(x):
    return list(x) if isinstance(x, (tuple, list)) else [x]


def _compare_tree(actual, expected, rtol, atol, what):
    if isinstance(actual, (tuple, list)):
        assert isinstance(expected, (tuple, list)) and len(actual) == len(expected), what
        for a, e in zip(actual, expected):
            assert_close(a, e, rtol, atol, what)
    else:
        assert isinstance(actual, jitgrad.Array), f"{what}: got {type(actual).__name__}"
        assert_close(actual, expected, rtol, atol, what)


# ------------------------------------------------------------------ tests of the helpers

def test_assert_close_fails_on_different_values():
    import pytest
    with pytest.raises(AssertionError):
        assert_close(np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    with pytest.raises(AssertionError):
        assert_close(np.zeros((2, 1)), np.zeros((2,)))
    assert_close(np.array([np.inf, np.nan]), np.array([np.inf, np.nan]))


def test_check_catches_a_wrong_function():
    import pytest
    with pytest.raises(AssertionError):
        check(lambda x: x + 1, np.negative, np.arange(3.0, dtype=np.float32))
    with pytest.raises(AssertionError):
        check(lambda x: x, lambda x: x, np.arange(3.0, dtype=np.float32), dtype=np.int32)


def test_x64_enabled_restores_the_flag():
    before = jitgrad.config.jax_enable_x64
    with x64_enabled(not before):
        assert jitgrad.config.jax_enable_x64 == (not before)
    assert jitgrad.config.jax_enable_x64 == before
