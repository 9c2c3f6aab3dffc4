"""Indexing against numpy, eagerly and under jit: ints (negative too), slices with any step,
None, Ellipsis, boolean masks (concrete; traced ones raise), scalar bools, integer-array
gathers with numpy's placement of advanced axes, traced integer scalars, JAX's clamping of
out-of-bounds reads; ``x.at[idx].set/add/multiply/min/max/get`` with every index form and
``mode``; take, take_along_axis, nonzero; iteration, ``np.asarray``, immutability."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import NonConcreteBooleanIndexError
from test_numpy_support import SETTINGS, arrays, assert_close, check, shapes


# ------------------------------------------------------------------ index strategies

def _slice(n):
    bound = st.one_of(st.none(), st.integers(-n - 2, n + 2))
    step = st.one_of(st.none(), st.integers(-3, 3).filter(bool))
    return st.builds(slice, bound, bound, step)


@st.composite
def basic_index(draw, shape):
    """ints (in bounds), slices, None and at most one Ellipsis, for an array of ``shape``."""
    def one(axis):
        n = shape[axis]
        kind = draw(st.sampled_from(["int", "slice", "slice", "none"]))
        if kind == "int" and n > 0:
            return [draw(st.integers(-n, n - 1))]
        if kind == "none":
            return [None, draw(_slice(n))]
        return [draw(_slice(n))]

    entries, axis = [], 0
    while axis < len(shape) and draw(st.integers(0, 3)):
        if draw(st.integers(0, 4)) == 0:
            # An ellipsis; the entries after it index exactly the last k axes.
            entries.append(Ellipsis)
            k = draw(st.integers(0, len(shape) - axis))
            for ax in range(len(shape) - k, len(shape)):
                entries += one(ax)
            break
        entries += one(axis)
        axis += 1
    if len(entries) == 1 and draw(st.booleans()):
        return entries[0]
    return tuple(entries)


@st.composite
def advanced_index(draw, shape):
    """A mix of integer arrays (broadcastable, negative allowed), ints, slices and None."""
    bshape = draw(shapes(0, 2, max_side=3))
    entries, n_arrays = [], 0
    for axis, n in enumerate(shape):
        if not draw(st.integers(0, 4)) and axis == len(shape) - 1:
            break
        kind = draw(st.sampled_from(["array", "array", "int", "slice", "none"]))
        if kind == "none":
            entries.append(None)
        if kind == "array" and n > 0:
            sub = bshape[draw(st.integers(0, len(bshape))):]
            entries.append(draw(arrays(np.int32, sub, min_value=-n, max_value=n - 1)))
            n_arrays += 1
        elif kind == "int" and n > 0:
            entries.append(draw(st.integers(-n, n - 1)))
        else:
            entries.append(draw(_slice(n)))
    if n_arrays == 0:
        n = shape[0]
        assume(n > 0)
        entries = [draw(arrays(np.int32, bshape, min_value=-n, max_value=n - 1))] + entries[1:]
    return tuple(entries)


def _jit_index(x, idx):
    """x[idx] under jit, with the index's arrays as traced arguments."""
    arrays_ = [e for e in (idx if isinstance(idx, tuple) else (idx,)) if isinstance(e, np.ndarray)]

    def f(v, *traced):
        it = iter(traced)
        entries = idx if isinstance(idx, tuple) else (idx,)
        real = tuple(next(it) if isinstance(e, np.ndarray) else e for e in entries)
        return v[real if isinstance(idx, tuple) else real[0]]
    return jitgrad.jit(f)(jnp.asarray(x), *[jnp.asarray(a) for a in arrays_])


# ------------------------------------------------------------------ getitem

@SETTINGS
@given(data=st.data())
def test_basic_indexing(data):
    x = data.draw(arrays(np.float32, shapes(0, 4)))
    idx = data.draw(basic_index(x.shape))
    expected = x[idx]
    assert_close(jnp.asarray(x)[idx], expected, what=f"eager x{x.shape}[{idx}]")
    assert_close(jitgrad.jit(lambda v: v[idx])(x), expected, what=f"jit x{x.shape}[{idx}]")


@SETTINGS
@given(data=st.data())
def test_advanced_indexing(data):
    x = data.draw(arrays(np.float32, shapes(1, 4, min_side=1)))
    idx = data.draw(advanced_index(x.shape))
    try:
        expected = x[idx]
    except IndexError:          # index arrays that do not broadcast together
        with pytest.raises(IndexError):
            jnp.asarray(x)[idx]
        return
    assert_close(jnp.asarray(x)[idx], expected, what=f"eager x{x.shape}[{idx}]")
    assert_close(_jit_index(x, idx), expected, what=f"jit x{x.shape}[{idx}]")


@pytest.mark.parametrize("idx", [
    (0, slice(None), [1, 2]),              # int and array separated by a slice: axes go first
    (slice(None), 0, [1, 2]),              # adjacent int and array: they stay in place
    ([0, 1], slice(None), [1, 2]),
    (None, [0, 1], slice(None), [1, 2]),
    ([[0], [1]], None, [1, 2]),
    (slice(None), [[0, 1]], [[1], [2]]),
    (Ellipsis, [0, 2]),
    (1, Ellipsis, None, [0, 3]),
    ([1, 0], [[0], [2]], slice(1, None)),
    (slice(None, None, -1), [2, 0], 1),
])
def test_advanced_placement_cases(idx):
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    idx_np = tuple(np.asarray(e) if isinstance(e, list) else e for e in idx)
    assert_close(jnp.asarray(x)[idx], x[idx_np])
    assert_close(_jit_index(x, idx_np), x[idx_np])


@pytest.mark.parametrize("idx", [True, False, (Ellipsis, True), (None, False), (0, True),
                                 (True, 0), (True, [0, 1]), (slice(None), True, 1),
                                 (True, False)])
def test_scalar_bool_indices(idx):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    idx_np = tuple(np.asarray(e) if isinstance(e, list) else e for e in idx) \
        if isinstance(idx, tuple) else idx
    assert_close(jnp.asarray(x)[idx], x[idx_np])
    assert_close(jitgrad.jit(lambda v: v[idx])(x), x[idx_np])


@SETTINGS
@given(data=st.data())
def test_boolean_masks(data):
    x = data.draw(arrays(np.float32, shapes(1, 3)))
    k = data.draw(st.integers(1, x.ndim))
    start = data.draw(st.integers(0, x.ndim - k))
    mask = data.draw(arrays(np.bool_, x.shape[start:start + k]))
    idx = (slice(None),) * start + (mask,)
    assert_close(jnp.asarray(x)[idx], x[idx])
    assert_close(jnp.asarray(x)[jnp.asarray(mask) if start == 0 else idx], x[idx])
    # A concrete mask closed over by a jitted function is fine: its shape is static.
    assert_close(jitgrad.jit(lambda v: v[idx])(x), x[idx])
    if start == 0:
        assert_close(jnp.asarray(x)[list(mask.ravel())] if k == 1 else x[mask], x[mask])


def test_traced_boolean_mask_raises_and_suggests_where():
    x = jnp.arange(4.0)
    with pytest.raises(NonConcreteBooleanIndexError, match="jnp.where"):
        jitgrad.jit(lambda v: v[v > 1])(x)
    with pytest.raises(IndexError):                      # also an IndexError, as in JAX
        jitgrad.jit(lambda v: v[v > 1])(x)
    out = jitgrad.jit(lambda v: jnp.where(v > 1, v, 0.0))(x)
    assert_close(out, np.array([0, 0, 2, 3], np.float32))


def test_boolean_mask_shape_mismatch():
    with pytest.raises(IndexError, match="boolean index did not match"):
        jnp.ones((2, 3))[np.array([True, False, True])]


@SETTINGS
@given(x=arrays(np.float32, shapes(1, 3, min_side=1)), i=st.integers(-8, 8))
def test_traced_integer_scalar(x, i):
    n = x.shape[0]
    clamped = min(max(i + n if i < 0 else i, 0), n - 1)      # JAX clamps out-of-bounds reads
    f = jitgrad.jit(lambda v, j: v[j])
    assert_close(f(x, i), x[clamped])
    assert_close(f(x, jnp.int32(i)), x[clamped])
    if x.ndim >= 2:
        m = x.shape[1]
        c1 = min(max(i + m if i < 0 else i, 0), m - 1)
        assert_close(jitgrad.jit(lambda v, j: v[:, j])(x, i), x[:, c1])
        assert_close(jitgrad.jit(lambda v, j: v[j, ::-1])(x, i), x[clamped, ::-1])
        assert_close(jitgrad.jit(lambda v, j, k: v[j, k])(x, i, -1), x[clamped, -1])
    # Concrete out-of-bounds ints clamp as well, eagerly and under jit.
    assert_close(jnp.asarray(x)[i], x[clamped])
    assert_close(jitgrad.jit(lambda v: v[i])(x), x[clamped])


def test_traced_scalar_index_is_a_dynamic_slice():
    ir = jitgrad.make_ir(lambda v, j: v[j])(jnp.ones((4, 3)), 1)
    names = [e.primitive.name for e in ir.ir.eqns]
    assert "dynamic_slice" in names and "gather" not in names


@SETTINGS
@given(x=arrays(np.float32, shapes(1, 3, min_side=1)),
       idx=st.lists(st.integers(-10, 10), min_size=0, max_size=5))
def test_out_of_bounds_array_indices_clamp(x, idx):
    n = x.shape[0]
    idx = np.asarray(idx, np.int32)
    norm = np.clip(np.where(idx < 0, idx + n, idx), 0, n - 1)
    assert_close(jnp.asarray(x)[idx], x[norm])
    assert_close(jitgrad.jit(lambda v, i: v[i])(x, idx), x[norm])


def test_index_errors():
    x = jnp.ones((2, 3))
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., 0, ...]
    with pytest.raises(TypeError, match="Indexer"):
        x[1.5]
    with pytest.raises(TypeError, match="Indexer"):
        x[jnp.array([0.0, 1.0])]
    with pytest.raises(IndexError, match="dynamic_slice"):
        jitgrad.jit(lambda v, i: v[i:i + 2])(jnp.ones(5), 1)
    with pytest.raises(IndexError):
        x[np.array([0, 1]), np.array([0, 1, 2])]


# ------------------------------------------------------------------ .at[]

def _numpy_update(x, idx, values, op):
    y = x.copy()
    if op == "set":
        y[idx] = values
    else:
        {"add": np.add, "multiply": np.multiply, "min": np.minimum, "max": np.maximum}[op].at(
            y, idx, values)
    return y


@pytest.mark.parametrize("op", ["set", "add", "multiply", "min", "max"])
@SETTINGS
@given(data=st.data())
def test_at_updates_basic(op, data):
    x = data.draw(arrays(np.float32, shapes(1, 3), min_value=-5, max_value=5, special=False))
    idx = data.draw(basic_index(x.shape))
    target_shape = x[idx].shape
    values = data.draw(arrays(np.float32, target_shape[data.draw(st.integers(0, len(target_shape))):],
                              min_value=-5, max_value=5, special=False))
    expected = _numpy_update(x, idx, values, op)
    fn = lambda v, u: getattr(v.at[idx], op)(u)
    check(fn, None, x, values, expected=expected)


@pytest.mark.parametrize("op", ["set", "add", "multiply", "min", "max"])
@SETTINGS
@given(data=st.data())
def test_at_updates_advanced(op, data):
    x = data.draw(arrays(np.float32, shapes(1, 3, min_side=1), min_value=-5, max_value=5,
                         special=False))
    idx = data.draw(advanced_index(x.shape))
    assume(not any(e is None for e in idx))             # ufunc.at does not take newaxis
    try:
        target_shape = x[idx].shape
    except IndexError:
        return
    if op == "set":
        # Repeated positions: which update wins is unspecified (as in JAX); avoid them.
        pos = np.arange(x.size).reshape(x.shape)[idx].ravel()
        assume(len(set(pos.tolist())) == pos.size)
    values = data.draw(arrays(np.float32, target_shape, min_value=-5, max_value=5, special=False))
    expected = _numpy_update(x, idx, values, op)
    arrays_ = [e for e in idx if isinstance(e, np.ndarray)]

    def fn(v, u, *traced):
        it = iter(traced)
        real = tuple(next(it) if isinstance(e, np.ndarray) else e for e in idx)
        return getattr(v.at[real], op)(u)
    check(fn, None, x, values, *arrays_, expected=expected)


def test_at_repeated_indices_accumulate():
    x = jnp.zeros(4)
    np.testing.assert_array_equal(x.at[np.array([0, 0, 2, 0])].add(1.0), [3, 0, 1, 0])
    np.testing.assert_array_equal(jnp.ones(3).at[np.array([1, 1])].multiply(3.0), [1, 9, 1])
    np.testing.assert_array_equal(x.at[np.array([1, 1])].min(-2.0), [0, -2, 0, 0])


def test_at_boolean_mask_and_scalars():
    x = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    mask = x > 2
    expected = x.copy()
    expected[mask] = -1
    assert_close(jnp.asarray(x).at[mask].set(-1.0), expected)
    assert_close(jitgrad.jit(lambda v: v.at[mask].set(-1.0))(x), expected)
    assert_close(jnp.asarray(x).at[1, -1].add(10.0), x + np.array([[0, 0, 0], [0, 0, 10]]))
    assert_close(jnp.asarray(x).at[...].set(2.0), np.full_like(x, 2.0))
    assert_close(jnp.asarray(x).at[:, None, 1].set(np.array([[7.0], [8.0]])),
                 np.array([[0, 7, 2], [3, 8, 5]], np.float32))


@pytest.mark.parametrize("jit", [False, True])
def test_at_traced_scalar_index(jit):
    f = lambda v, i, u: v.at[i].set(u)
    f = jitgrad.jit(f) if jit else f
    x = jnp.zeros((3, 2))
    assert_close(f(x, 1, jnp.ones(2)), np.array([[0, 0], [1, 1], [0, 0]], np.float32))
    assert_close(f(x, -1, 5.0), np.array([[0, 0], [0, 0], [5, 5]], np.float32))


def test_at_out_of_bounds_modes():
    x = jnp.arange(4.0)
    idx = np.array([1, 7, -9])
    # Default (and 'drop'/'fill'): out-of-bounds updates are dropped.
    assert_close(x.at[idx].set(-1.0), np.array([0, -1, 2, 3], np.float32))
    assert_close(x.at[idx].add(10.0, mode="drop"), np.array([0, 11, 2, 3], np.float32))
    assert_close(x.at[7].set(-1.0), np.arange(4.0))
    # 'clip' clamps them into bounds.
    assert_close(x.at[idx].set(-1.0, mode="clip"), np.array([-1, -1, 2, -1], np.float32))
    assert_close(jitgrad.jit(lambda v, i: v.at[i].add(1.0))(x, 9), np.arange(4.0))
    assert_close(jitgrad.jit(lambda v, i: v.at[i].add(1.0, mode="clip"))(x, 9),
                 np.array([0, 1, 2, 4], np.float32))


def test_at_get_modes_and_fill_value():
    x = jnp.arange(4.0)
    idx = np.array([1, 7, -1, -9])
    assert_close(x.at[idx].get(), np.array([1, 3, 3, 0], np.float32))            # clamped
    assert_close(x.at[idx].get(mode="fill"), np.array([1, np.nan, 3, np.nan], np.float32))
    assert_close(x.at[idx].get(mode="fill", fill_value=-5.0), np.array([1, -5, 3, -5], np.float32))
    assert_close(x.at[9].get(mode="fill", fill_value=-5.0), np.float32(-5))
    assert_close(jitgrad.jit(lambda v, i: v.at[i].get(mode="fill", fill_value=0.0))(x, 9),
                 np.float32(0))
    xi = jnp.arange(4)
    assert int(xi.at[9].get(mode="fill")) == np.iinfo(np.int32).min
    assert int(jnp.arange(4, dtype=jnp.uint8).at[9].get(mode="fill")) == 255
    with pytest.raises(ValueError, match="mode"):
        x.at[0].get(mode="wrap")


def test_at_divide_power_apply_subtract():
    x = jnp.arange(1.0, 5.0)
    assert_close(x.at[1:3].divide(2.0), np.array([1, 1, 1.5, 4], np.float32))
    assert_close(x.at[np.array([0, 3])].power(2.0), np.array([1, 2, 3, 16], np.float32))
    assert_close(x.at[::2].apply(jnp.negative), np.array([-1, 2, -3, 4], np.float32))
    assert_close(x.at[-1].subtract(1.0), np.array([1, 2, 3, 3], np.float32))


def test_at_value_shape_mismatch():
    with pytest.raises(TypeError, match=r"values of shape \(3,\).*indexed shape \(2,\)"):
        jnp.zeros(4).at[:2].set(jnp.ones(3))


# ------------------------------------------------------------------ take / take_along_axis

@pytest.mark.parametrize("mode", [None, "fill", "clip", "wrap"])
@SETTINGS
@given(data=st.data())
def test_take(mode, data):
    x = data.draw(arrays(np.float32, shapes(1, 3, min_side=1)))
    axis = data.draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
    n = x.size if axis is None else x.shape[axis]
    idx = data.draw(arrays(np.int32, shapes(0, 2), min_value=-2 * n, max_value=2 * n))
    if mode in (None, "fill"):
        norm = np.where(idx < 0, idx + n, idx)
        ok = (norm >= 0) & (norm < n)
        base = np.take(x, np.where(ok, norm, 0), axis=axis)
        okb = ok.reshape((1,) * (0 if axis is None else (axis % x.ndim)) + ok.shape
                         + (1,) * (0 if axis is None else x.ndim - 1 - axis % x.ndim))
        expected = np.where(okb, base, np.nan).astype(np.float32)
    elif mode == "clip":
        expected = np.take(x, np.clip(idx, 0, n - 1), axis=axis)     # negative -> 0 (numpy, JAX)
    else:
        expected = np.take(x, idx, axis=axis, mode="wrap")
    check(lambda v, i: jnp.take(v, i, axis=axis, mode=mode), None, x, idx, expected=expected)


@SETTINGS
@given(data=st.data())
def test_take_along_axis(data):
    x = data.draw(arrays(np.float32, shapes(1, 3, min_side=1)))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    n = x.shape[axis]
    ishape = list(x.shape)
    ishape[axis] = data.draw(st.integers(0, 4))
    for d in range(x.ndim):
        if d != axis % x.ndim and data.draw(st.booleans()):
            ishape[d] = 1
    idx = data.draw(arrays(np.int32, tuple(ishape), min_value=-n, max_value=n - 1))
    expected = np.take_along_axis(x, np.where(idx < 0, idx + n, idx), axis=axis)
    check(lambda v, i: jnp.take_along_axis(v, i, axis), None, x, idx, expected=expected)


def test_take_along_axis_out_of_bounds_fill():
    x = jnp.arange(6.0).reshape(2, 3)
    idx = np.array([[0, 5], [2, -1]])
    assert_close(jnp.take_along_axis(x, idx, 1), np.array([[0, np.nan], [5, 5]], np.float32))
    assert_close(jnp.take_along_axis(x, idx, 1, mode="clip"), np.array([[0, 2], [5, 5]], np.float32))


# ------------------------------------------------------------------ nonzero and friends

@SETTINGS
@given(x=arrays(np.int32, shapes(1, 3), min_value=-1, max_value=1), size=st.integers(0, 6))
def test_nonzero(x, size):
    expected = np.nonzero(x)
    check(lambda v: jnp.nonzero(v), None, x, expected=expected, jit=False)
    check(jnp.flatnonzero, np.flatnonzero, x, jit=False)
    check(jnp.argwhere, np.argwhere, x, jit=False)

    def padded(a):
        a = a[:size]
        return np.concatenate([a, np.full(size - len(a), -1, a.dtype)]).astype(np.int32)
    check(lambda v: jnp.nonzero(v, size=size, fill_value=-1), None, x,
          expected=tuple(padded(a) for a in expected))
    check(lambda v: jnp.where(v, size=size, fill_value=-1), None, x,
          expected=tuple(padded(a) for a in expected))


def test_nonzero_of_traced_array_needs_size():
    with pytest.raises(NonConcreteBooleanIndexError, match="size"):
        jitgrad.jit(jnp.nonzero)(jnp.ones(3))


# ------------------------------------------------------------------ array protocol

def test_setitem_raises_type_error_pointing_to_at():
    x = jnp.zeros(3)
    with pytest.raises(TypeError, match=r"\.at\[") as info:
        x[0] = 1.0
    assert "immutable" in str(info.value)

    def f(v):
        v[0] = 1.0
        return v
    with pytest.raises(TypeError, match=r"\.at\["):
        jitgrad.jit(f)(x)


def test_iteration_over_arrays_and_tracers():
    x = np.arange(6.0, dtype=np.float32).reshape(3, 2)
    rows = list(jnp.asarray(x))
    assert len(rows) == 3 and all(isinstance(r, jitgrad.Array) for r in rows)
    assert_close(rows[2], x[2])
    out = jitgrad.jit(lambda v: sum(r * i for i, r in enumerate(v)))(x)
    assert_close(out, x[1] + 2 * x[2])
    a, b, c = jnp.asarray(x)
    assert_close(b, x[1])
    with pytest.raises(TypeError):
        list(jnp.float32(1))
    with pytest.raises(TypeError):
        jitgrad.jit(lambda v: list(v))(jnp.float32(1))


def test_numpy_conversion():
    x = jnp.arange(3.0)
    a = np.asarray(x)
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    np.testing.assert_array_equal(a, [0, 1, 2])
    with pytest.raises(ValueError):
        a[0] = 5.0                                      # the buffer is read-only
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    assert np.array(x).flags.writeable
    with pytest.raises(TypeError, match="np.asarray"):
        jitgrad.jit(lambda v: np.asarray(v))(x)
    assert float(x[2]) == 2.0 and int(jnp.arange(3)[1]) == 1
    assert x.tolist() == [0.0, 1.0, 2.0]
    assert len(jnp.ones((4, 2))) == 4


def test_getitem_results_are_immutable_views_of_nothing():
    x = jnp.arange(4.0)
    y = x[1:3]
    with pytest.raises(ValueError):
        np.asarray(y)[0] = 9.0
    assert float(x[1]) == 1.0
