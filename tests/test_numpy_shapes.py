"""jnp shape manipulation against numpy on random shapes (size-0/1 axes), eagerly and
under jit: reshape (-1, order='F'), transpose, swapaxes, moveaxis, expand_dims, squeeze,
broadcast_to, concatenate, stack, split, flip, roll, pad, tile, repeat, diff, ..."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jitgrad
import jitgrad.numpy as jnp
from test_numpy_support import FEW, SETTINGS, arrays, check, shapes, x64_enabled

f32 = lambda shape: arrays(np.float32, shape)


def _divisors_shape(draw, size):
    """A random shape with the given number of elements, one axis maybe -1."""
    dims = []
    rest = size
    for _ in range(draw(st.integers(0, 3))):
        choices = [d for d in range(1, 7) if rest % d == 0] if rest else [0, 1, 2]
        d = draw(st.sampled_from(choices))
        dims.append(d)
        rest = rest // d if d else 0
    if rest != 1 or not dims:
        dims.append(rest if size else 0)
    return dims


@SETTINGS
@given(data=st.data())
def test_reshape(data):
    x = data.draw(f32(shapes()))
    dims = _divisors_shape(data.draw, x.size)
    if x.size and data.draw(st.booleans()):
        dims[data.draw(st.integers(0, len(dims) - 1))] = -1
    order = data.draw(st.sampled_from(["C", "F"]))
    check(lambda v: jnp.reshape(v, dims, order=order), lambda v: np.reshape(v, dims, order=order), x)
    check(lambda v: v.reshape(*dims), lambda v: v.reshape(*dims), x)
    check(lambda v: jnp.ravel(v, order=order), lambda v: np.ravel(v, order=order), x)


@SETTINGS
@given(data=st.data())
def test_transpose_swapaxes_moveaxis(data):
    x = data.draw(f32(shapes()))
    nd = x.ndim
    perm = data.draw(st.permutations(range(nd)))
    check(lambda v: jnp.transpose(v, perm), lambda v: np.transpose(v, perm), x)
    check(jnp.transpose, np.transpose, x)
    check(lambda v: v.T, lambda v: v.T, x)
    if nd:
        a, b = data.draw(st.integers(-nd, nd - 1)), data.draw(st.integers(-nd, nd - 1))
        check(lambda v: jnp.swapaxes(v, a, b), lambda v: np.swapaxes(v, a, b), x)
        k = data.draw(st.integers(1, nd))
        src = data.draw(st.permutations(range(nd)))[:k]
        dst = data.draw(st.permutations(range(-nd, 0)))[:k]
        check(lambda v: jnp.moveaxis(v, src, dst), lambda v: np.moveaxis(v, src, dst), x)
        check(lambda v: jnp.moveaxis(v, src[0], dst[0]), lambda v: np.moveaxis(v, src[0], dst[0]), x)
    if nd >= 2:
        check(jnp.matrix_transpose, lambda v: np.swapaxes(v, -1, -2), x)
        check(lambda v: v.mT, lambda v: np.swapaxes(v, -1, -2), x)


@SETTINGS
@given(data=st.data())
def test_expand_dims_squeeze(data):
    x = data.draw(f32(shapes()))
    nd = x.ndim
    ax = data.draw(st.integers(-nd - 1, nd))
    check(lambda v: jnp.expand_dims(v, ax), lambda v: np.expand_dims(v, ax), x)
    k = data.draw(st.integers(1, 2))
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, nd + k - 1), min_size=k, max_size=k))))
    check(lambda v: jnp.expand_dims(v, axes), lambda v: np.expand_dims(v, axes), x)
    check(jnp.squeeze, np.squeeze, x)
    ones = [i for i, d in enumerate(x.shape) if d == 1]
    if ones:
        sq = data.draw(st.sampled_from(ones))
        check(lambda v: jnp.squeeze(v, sq), lambda v: np.squeeze(v, sq), x)
        check(lambda v: jnp.squeeze(v, (sq - nd,)), lambda v: np.squeeze(v, (sq - nd,)), x)


@SETTINGS
@given(data=st.data())
def test_broadcast_to_and_arrays(data):
    from hypothesis.extra import numpy as hnp
    shape_pair = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_side=4))
    a = data.draw(f32(shape_pair.input_shapes[0]))
    b = data.draw(f32(shape_pair.input_shapes[1]))
    target = shape_pair.result_shape
    check(lambda v: jnp.broadcast_to(v, target), lambda v: np.broadcast_to(v, target), a)
    check(lambda u, v: tuple(jnp.broadcast_arrays(u, v)), lambda u, v: tuple(np.broadcast_arrays(u, v)),
          a, b)


@st.composite
def arrays_along_axis(draw, n_min=1, n_max=4, same=False):
    """Several arrays equal in shape except along one axis (or fully equal if ``same``)."""
    base = list(draw(shapes(min_dims=1)))
    axis = draw(st.integers(-len(base), len(base) - 1))
    out = []
    for _ in range(draw(st.integers(n_min, n_max))):
        s = list(base)
        if not same:
            s[axis] = draw(st.integers(0, 3))
        out.append(draw(f32(tuple(s))))
    return out, axis


@SETTINGS
@given(data=arrays_along_axis())
def test_concatenate(data):
    xs, axis = data
    check(lambda *v: jnp.concatenate(v, axis=axis), lambda *v: np.concatenate(v, axis=axis), *xs)
    check(lambda *v: jnp.concatenate(v, axis=None), lambda *v: np.concatenate(v, axis=None), *xs)


@SETTINGS
@given(data=arrays_along_axis(same=True))
def test_stack_family(data):
    xs, axis = data
    nd = xs[0].ndim
    ax = axis
    check(lambda *v: jnp.stack(v, axis=ax), lambda *v: np.stack(v, axis=ax), *xs)
    check(lambda *v: jnp.stack(v, axis=-1), lambda *v: np.stack(v, axis=-1), *xs)
    check(lambda *v: jnp.vstack(v), lambda *v: np.vstack(v), *xs)
    check(lambda *v: jnp.hstack(v), lambda *v: np.hstack(v), *xs)
    check(lambda *v: jnp.dstack(v), lambda *v: np.dstack(v), *xs)
    if nd <= 2:
        check(lambda *v: jnp.column_stack(v), lambda *v: np.column_stack(v), *xs)


@SETTINGS
@given(data=st.data())
def test_split(data):
    x = data.draw(f32(shapes(min_dims=1)))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    n = x.shape[axis]
    sections = data.draw(st.sampled_from([d for d in range(1, 5) if n % d == 0] or [1]))
    check(lambda v: tuple(jnp.split(v, sections, axis=axis)),
          lambda v: tuple(np.split(v, sections, axis=axis)), x)
    idx = sorted(data.draw(st.lists(st.integers(-5, 6), max_size=3)))
    check(lambda v: tuple(jnp.split(v, idx, axis=axis)), lambda v: tuple(np.split(v, idx, axis=axis)), x)
    k = data.draw(st.integers(1, 4))
    check(lambda v: tuple(jnp.array_split(v, k, axis=axis)),
          lambda v: tuple(np.array_split(v, k, axis=axis)), x)


@SETTINGS
@given(data=st.data())
def test_flip_roll_rot90(data):
    x = data.draw(f32(shapes()))
    nd = x.ndim
    check(jnp.flip, np.flip, x)
    if nd:
        ax = data.draw(st.integers(-nd, nd - 1))
        check(lambda v: jnp.flip(v, ax), lambda v: np.flip(v, ax), x)
        shift = data.draw(st.integers(-7, 7))
        check(lambda v: jnp.roll(v, shift, ax), lambda v: np.roll(v, shift, ax), x)
    shift = data.draw(st.integers(-7, 7))
    check(lambda v: jnp.roll(v, shift), lambda v: np.roll(v, shift), x)
    if nd >= 2:
        k = data.draw(st.integers(-2, 5))
        check(lambda v: jnp.rot90(v, k), lambda v: np.rot90(v, k), x)
        check(jnp.fliplr, np.fliplr, x)
        check(jnp.flipud, np.flipud, x)


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric", "wrap", "empty"])
@SETTINGS
@given(data=st.data())
def test_pad(mode, data):
    x = data.draw(f32(shapes(min_dims=1, min_side=2 if mode != "constant" else 0)))
    widths = [(data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3))) for _ in range(x.ndim)]
    if mode == "empty":   # the padding's values are unspecified; the interior is x
        out = np.asarray(jnp.pad(x, widths, mode="empty"))
        assert out.shape == np.pad(x, widths).shape
        inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
        np.testing.assert_array_equal(out[inner], x)
        return
    check(lambda v: jnp.pad(v, widths, mode=mode), lambda v: np.pad(v, widths, mode=mode), x)
    if mode == "constant":
        check(lambda v: jnp.pad(v, 1, constant_values=2.5),
              lambda v: np.pad(v, 1, constant_values=2.5), x)
        if x.ndim:
            cv = [(float(i), float(-i)) for i in range(x.ndim)]
            check(lambda v: jnp.pad(v, widths, constant_values=cv),
                  lambda v: np.pad(v, widths, constant_values=cv), x)


@SETTINGS
@given(data=st.data())
def test_tile_repeat(data):
    x = data.draw(f32(shapes()))
    reps = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
    check(lambda v: jnp.tile(v, reps), lambda v: np.tile(v, reps), x)
    r = data.draw(st.integers(0, 3))
    check(lambda v: jnp.repeat(v, r), lambda v: np.repeat(v, r), x)
    if x.ndim:
        ax = data.draw(st.integers(-x.ndim, x.ndim - 1))
        check(lambda v: jnp.repeat(v, r, axis=ax), lambda v: np.repeat(v, r, axis=ax), x)
        per = data.draw(st.lists(st.integers(0, 3), min_size=x.shape[ax], max_size=x.shape[ax]))
        check(lambda v: jnp.repeat(v, np.array(per), axis=ax),
              lambda v: np.repeat(v, per, axis=ax), x)


@SETTINGS
@given(data=st.data())
def test_diff_atleast(data):
    x = data.draw(f32(shapes(min_dims=1)))
    n = data.draw(st.integers(0, 2))
    ax = data.draw(st.integers(-x.ndim, x.ndim - 1))
    check(lambda v: jnp.diff(v, n=n, axis=ax), lambda v: np.diff(v, n=n, axis=ax), x)
    check(lambda v: jnp.diff(v, axis=ax, prepend=0.0), lambda v: np.diff(v, axis=ax, prepend=0.0), x)
    for fn in ("atleast_1d", "atleast_2d", "atleast_3d"):
        check(getattr(jnp, fn), getattr(np, fn), x)
        check(getattr(jnp, fn), getattr(np, fn), x[(0,) * x.ndim] if x.size else np.float32(1))


@FEW
@given(x=arrays(np.float64, shapes()))
def test_layout_ops_keep_float64_with_x64(x):
    with x64_enabled():
        check(lambda v: jnp.flip(jnp.expand_dims(v, 0)), lambda v: np.flip(np.expand_dims(v, 0)),
              x, dtype=np.float64)
        check(lambda v: jnp.concatenate([v.ravel(), v.ravel()]),
              lambda v: np.concatenate([v.ravel(), v.ravel()]), x, dtype=np.float64)


def test_shape_ndim_size():
    x = jnp.ones((2, 3, 0))
    assert jnp.shape(x) == (2, 3, 0) and jnp.ndim(x) == 3 and jnp.size(x) == 0
    assert jnp.size(x, 1) == 3 and jnp.shape([[1, 2]]) == (1, 2)


def test_shape_errors():
    x = jnp.ones((2, 3))
    with pytest.raises(TypeError, match="cannot reshape an array of size 6 into shape"):
        jnp.reshape(x, (4, -1))
    with pytest.raises(TypeError, match="one unknown dimension"):
        jnp.reshape(x, (-1, -1))
    with pytest.raises(TypeError, match=r"cannot broadcast an array of shape \(2, 3\) to \(3, 3\)"):
        jnp.broadcast_to(x, (3, 3))
    with pytest.raises(TypeError, match="squeeze"):
        jnp.squeeze(x, 0)
    with pytest.raises(TypeError, match="equal division"):
        jnp.split(x, 2, axis=1)
    with pytest.raises(TypeError, match="same shape"):
        jnp.stack([x, x.T])
    with pytest.raises(TypeError, match="differ outside axis"):
        jnp.concatenate([x, jnp.ones((3, 3))], axis=1)
    with pytest.raises(NotImplementedError, match="mode"):
        jnp.pad(x, 1, mode="median")
    with pytest.raises(TypeError):
        jnp.pad(x, 1, stat_length=2)                      # unknown keyword
    with pytest.raises(TypeError):
        jnp.transpose(x, (0, 0))


def test_reshape_under_jit_is_one_equation():
    ir = jitgrad.make_ir(lambda v: v.reshape(3, -1))(jnp.ones((2, 3)))
    assert [e.primitive.name for e in ir.ir.eqns] == ["reshape"]
