"""jnp products against numpy: matmul/@ with batch broadcasting and 1-D operands, dot, vdot,
inner, outer, tensordot, einsum (random subscripts, ellipsis, diagonals, sums), diagonal and
trace (a gather: inf/NaN off the diagonal do not leak in), linalg.norm; eagerly and under jit."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jitgrad
import jitgrad.numpy as jnp
from test_numpy_support import FEW, SETTINGS, arrays, check, shapes, x64_enabled

TOL = dict(rtol=1e-4, atol=1e-4)


def small(dtype, shape, special=False):
    return arrays(dtype, shape, special=special, min_value=-4, max_value=4)


@st.composite
def matmul_operands(draw, dtype=np.float32):
    m, k, n = (draw(st.integers(0, 4)) for _ in range(3))
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    a_batch = [draw(st.sampled_from([1, d])) for d in batch][draw(st.integers(0, len(batch))):]
    b_batch = [draw(st.sampled_from([1, d])) for d in batch][draw(st.integers(0, len(batch))):]
    a_shape = (k,) if draw(st.integers(0, 4)) == 0 else tuple(a_batch) + (m, k)
    b_shape = (k,) if draw(st.integers(0, 4)) == 0 else tuple(b_batch) + (k, n)
    return draw(small(dtype, a_shape)), draw(small(dtype, b_shape))


@SETTINGS
@given(ab=matmul_operands())
def test_matmul(ab):
    check(jnp.matmul, np.matmul, *ab, dtype=np.float32, **TOL)
    check(lambda a, b: a @ b, lambda a, b: a @ b, *ab, **TOL)


@FEW
@given(ab=matmul_operands(np.int32))
def test_matmul_int(ab):
    check(jnp.matmul, np.matmul, *ab, dtype=np.int32)


@FEW
@given(ab=matmul_operands(np.float64))
def test_matmul_float64_with_x64(ab):
    with x64_enabled():
        check(jnp.matmul, np.matmul, *ab, dtype=np.float64)


@SETTINGS
@given(data=st.data())
def test_dot_inner_vdot(data):
    k = data.draw(st.integers(0, 4))
    a = data.draw(small(np.float32, data.draw(shapes(0, 2)) + (k,)))
    b_shape = data.draw(st.sampled_from([(k,), (k, 3), (2, k, 3), ()]))
    b = data.draw(small(np.float32, b_shape))
    check(jnp.dot, np.dot, a, b, **TOL)
    if b.ndim:
        c = data.draw(small(np.float32, b.shape[:-1] + (k,)))
        check(jnp.inner, np.inner, a, c, **TOL)
    if a.size == b.size:
        check(jnp.vdot, np.vdot, a, b.reshape(a.shape), **TOL)
    check(lambda x: jnp.dot(x, 2.0), lambda x: np.dot(x, np.float32(2)), a)


@SETTINGS
@given(a=small(np.float32, shapes()), b=small(np.float32, shapes()))
def test_outer(a, b):
    check(jnp.outer, np.outer, a, b, dtype=np.float32)


@FEW
@given(a=arrays(np.bool_, shapes(1, 1)), b=arrays(np.bool_, shapes(1, 1)))
def test_outer_bool(a, b):
    check(jnp.outer, np.outer, a, b, dtype=np.bool_)


@SETTINGS
@given(data=st.data())
def test_tensordot(data):
    a = data.draw(small(np.float32, shapes(0, 4)))
    n = data.draw(st.integers(0, a.ndim))
    b_shape = a.shape[a.ndim - n:] + data.draw(shapes(0, 2))
    b = data.draw(small(np.float32, b_shape))
    check(lambda x, y: jnp.tensordot(x, y, n), lambda x, y: np.tensordot(x, y, n), a, b, **TOL)
    if a.ndim:
        i = data.draw(st.integers(0, a.ndim - 1))
        c = data.draw(small(np.float32, (2, a.shape[i])))
        check(lambda x, y: jnp.tensordot(x, y, axes=([i], [-1])),
              lambda x, y: np.tensordot(x, y, axes=([i], [-1])), a, c, **TOL)


# ------------------------------------------------------------------ einsum

@st.composite
def einsum_problems(draw):
    """Random subscripts over labels 'abcde' with consistent sizes, 1 to 3 operands."""
    labels = "abcde"
    sizes = {l: draw(st.integers(0, 3)) for l in labels}
    n_ops = draw(st.integers(1, 3))
    terms = []
    for _ in range(n_ops):
        term = draw(st.lists(st.sampled_from(labels), max_size=4))
        terms.append("".join(term))
    used = sorted(set("".join(terms)))
    explicit = draw(st.booleans())
    if explicit:
        out = "".join(draw(st.permutations(used))[:draw(st.integers(0, len(used)))])
        spec = ",".join(terms) + "->" + out
    else:
        spec = ",".join(terms)
    ops = [draw(small(np.float32, tuple(sizes[c] for c in t))) for t in terms]
    return spec, ops


@SETTINGS
@given(problem=einsum_problems())
def test_einsum_random(problem):
    spec, ops = problem
    expected = np.einsum(spec, *[o.astype(np.float64) for o in ops])
    check(lambda *v: jnp.einsum(spec, *v), None, *ops, expected=expected, dtype=np.float32,
          rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("spec,shapes_", [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(5, 2, 3), (5, 3, 4)]),
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (4, 3, 2)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("iij->ji", [(2, 2, 3)]),
    ("i,i->", [(4,), (4,)]),
    ("i,j->ij", [(2,), (3,)]),
    ("ij->", [(2, 3)]),
    ("ij->ji", [(2, 3)]),
    ("...i->...", [(2, 3, 4)]),
    ("i...->...", [(2, 3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("ab,bc,cd,de->ae", [(2, 3), (3, 1), (1, 4), (4, 2)]),
    ("ij,ij->ij", [(1, 3), (2, 3)]),
    ("abc,cd,b->ad", [(2, 3, 4), (4, 2), (3,)]),
    ("ijk,ikl->jl", [(2, 0, 3), (2, 3, 2)]),
])
def test_einsum_cases(spec, shapes_):
    rng = np.random.default_rng(0)
    ops = [rng.standard_normal(s).astype(np.float32) for s in shapes_]
    check(lambda *v: jnp.einsum(spec, *v), lambda *v: np.einsum(spec, *v), *ops,
          rtol=1e-5, atol=1e-5)


def test_einsum_interleaved_and_dtypes():
    a = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    b = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    np.testing.assert_allclose(jnp.einsum(a, [0, 1], b, [1, 2], [0, 2]), a @ b)
    np.testing.assert_allclose(jnp.einsum(a, [Ellipsis, 1], [Ellipsis]), a.sum(1))
    i8 = np.ones((2, 3), np.int8)
    assert jnp.einsum("ij,jk->ik", i8, i8.T).dtype == np.int8
    out = jnp.einsum("ij,jk->ik", i8, i8.T, preferred_element_type=jnp.int32)
    assert out.dtype == np.int32
    bools = np.array([[True, False], [False, False]])
    assert jnp.einsum("ij,jk->ik", bools, bools).dtype == np.bool_
    np.testing.assert_array_equal(jnp.einsum("ij,jk->ik", bools, bools), bools @ bools)


def test_einsum_contraction_order_is_greedy():
    # (2x50)(50x50)(50x1): contracting b with c first leaves a 50-vector; a with b first
    # would make a 2x50 matrix. The greedy order picks the smaller intermediate.
    a, b, c = jnp.ones((2, 50)), jnp.ones((50, 50)), jnp.ones((50, 1))
    ir = jitgrad.make_ir(lambda x, y, z: jnp.einsum("ij,jk,kl->il", x, y, z))(a, b, c)
    dots = [e for e in ir.ir.eqns if e.primitive.name == "dot_general"]
    assert len(dots) == 2
    first = dots[0]
    assert {tuple(v.aval.shape) for v in first.invars} == {(50, 50), (50, 1)}


def test_einsum_uses_dot_general_not_multiply():
    ir = jitgrad.make_ir(lambda x, y: jnp.einsum("bij,bjk->bik", x, y))(
        jnp.ones((4, 2, 3)), jnp.ones((4, 3, 5)))
    names = [e.primitive.name for e in ir.ir.eqns]
    assert names.count("dot_general") == 1 and "mul" not in names


def test_einsum_errors():
    with pytest.raises(TypeError, match="size of label"):
        jnp.einsum("ij,jk->ik", jnp.ones((2, 3)), jnp.ones((4, 5)))
    with pytest.raises(ValueError, match="does not appear"):
        jnp.einsum("ij->k", jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="operand"):
        jnp.einsum("ij,jk->ik", jnp.ones((2, 3)))
    with pytest.raises(NotImplementedError, match="out"):
        jnp.einsum("ij->ji", jnp.ones((2, 3)), out=np.zeros((3, 2)))


# ------------------------------------------------------------------ diagonal / trace / norm

@SETTINGS
@given(data=st.data())
def test_diagonal_trace(data):
    x = data.draw(arrays(np.float32, shapes(2, 4)))
    nd = x.ndim
    a1, a2 = data.draw(st.permutations(range(nd)))[:2]
    a1 -= data.draw(st.sampled_from([0, nd]))
    off = data.draw(st.integers(-4, 4))
    check(lambda v: jnp.diagonal(v, off, a1, a2), lambda v: np.diagonal(v, off, a1, a2), x)
    check(lambda v: jnp.trace(v, off, a1, a2), lambda v: np.trace(v, off, a1, a2), x, **TOL)
    check(lambda v: v.diagonal(), lambda v: v.diagonal(), x)


def test_diagonal_ignores_nan_and_inf_elsewhere():
    x = np.array([[1.0, np.inf], [np.nan, 2.0]], np.float32)
    check(jnp.diagonal, np.diagonal, x)
    check(jnp.trace, np.trace, x)
    assert np.isfinite(float(jnp.trace(x)))


@pytest.mark.parametrize("ord_", [None, 1, 2, np.inf, -np.inf, 0, 3, 0.5])
@SETTINGS
@given(x=small(np.float32, shapes(1, 3, min_side=1)), keepdims=st.booleans())
def test_vector_norm(ord_, x, keepdims):
    axis = -1
    check(lambda v: jnp.linalg.norm(v, ord_, axis=axis, keepdims=keepdims),
          lambda v: np.linalg.norm(v, ord_, axis=axis, keepdims=keepdims), x, dtype=np.float32,
          **TOL)


@pytest.mark.parametrize("ord_", [None, "fro", 1, -1, np.inf, -np.inf])
@SETTINGS
@given(x=small(np.float32, shapes(2, 3, min_side=1)), keepdims=st.booleans())
def test_matrix_norm(ord_, x, keepdims):
    axis = (0, 1) if x.ndim == 2 else (2, 0)
    check(lambda v: jnp.linalg.norm(v, ord_, axis=axis, keepdims=keepdims),
          lambda v: np.linalg.norm(v, ord_, axis=axis, keepdims=keepdims), x, **TOL)


@FEW
@given(x=small(np.float32, shapes(0, 3)))
def test_norm_default_and_ints(x):
    check(jnp.linalg.norm, np.linalg.norm, x, dtype=np.float32, **TOL)
    check(lambda v: jnp.linalg.norm(v, keepdims=True),
          lambda v: np.linalg.norm(v, keepdims=True), x, **TOL)
    check(jnp.linalg.norm, np.linalg.norm, x.astype(np.int32), dtype=np.float32, **TOL)
    if x.ndim >= 1:
        check(lambda v: jnp.linalg.vector_norm(v, axis=0), lambda v: np.linalg.vector_norm(v, axis=0),
              x, **TOL)


def test_norm_unsupported():
    with pytest.raises(NotImplementedError, match="SVD"):
        jnp.linalg.norm(jnp.ones((2, 2)), 2)
    with pytest.raises(ValueError):
        jnp.linalg.norm(jnp.ones((2, 2, 2)), 1)


def test_matmul_errors_name_both_shapes():
    with pytest.raises(TypeError, match=r"\(2, 3\) @ \(4, 5\)"):
        jnp.ones((2, 3)) @ jnp.ones((4, 5))
    with pytest.raises(TypeError, match="matmul"):
        jnp.matmul(jnp.ones(3), 2.0)
    with pytest.raises(TypeError, match="cannot be broadcast"):
        jnp.ones((2, 2, 3)) @ jnp.ones((3, 3, 4))
