"""Fusion: how many kernels reference programs compile to (like tinygrad's schedule
tests), and why neighbouring kernels were left apart. A fusion regression fails here.

These tests only partition IRs; they compile nothing.
"""
from __future__ import annotations

import numpy as np
import pytest

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import lax
from jitgrad.backends import cpu
from jitgrad.passes import optimize
from jitgrad.passes.fusion import (ELEMENTWISE_GROUP, FALLBACK_GROUP, MATMUL_GROUP, REDUCTION_GROUP,
                                   ROWWISE_GROUP, ROW_LIMIT, fuse)

F32 = np.float32


def fused(f, *args):
    """The fused program ``jit(f)`` would compile for these arguments (CPU backend rules)."""
    return fuse(optimize(jitgrad.make_ir(f)(*args)), cpu.supports)


def arr(*shape):
    return np.ones(shape, F32)


def kinds(fp):
    return [g.kind for g in fp.groups]


# ------------------------------------------------------------------ pinned kernel counts

def test_dense_bias_relu_is_one_matmul_kernel():
    fp = fused(lambda x, w, b: jnp.maximum(x @ w + b, 0), arr(8, 4), arr(4, 16), arr(16))
    assert kinds(fp) == [MATMUL_GROUP]
    g = fp.groups[0]
    assert g.name == "k0_dot_add_max"
    assert [p.kind for p in g.phases] == ["dot", "loop"]
    assert [e.primitive.name for e in g.phases[1].eqns] == ["add", "max"]
    # The bias broadcast is read through an index map, not materialised.
    assert [e.primitive.name for e in g.views] == ["broadcast_in_dim"]


def test_dense_with_residual_and_scale_is_one_kernel():
    fp = fused(lambda x, w, b, r: 0.5 * jnp.tanh(x @ w + b) + r, arr(8, 4), arr(4, 16), arr(16),
               arr(8, 16))
    assert kinds(fp) == [MATMUL_GROUP]


def _xent(logits, labels):
    m = jnp.max(logits, axis=-1, keepdims=True)
    logp = logits - m - jnp.log(jnp.sum(jnp.exp(logits - m), axis=-1, keepdims=True))
    return -jnp.mean(jnp.sum(labels * logp, axis=-1))


def test_softmax_cross_entropy_forward_is_one_kernel():
    fp = fused(_xent, arr(32, 10), arr(32, 10))
    assert kinds(fp) == [ROWWISE_GROUP]
    main, tail = fp.groups[0].phases
    assert main.reduce_axes == (1,) and main.passes >= 2
    assert tail.is_tail and tail.reduce_axes == (0,)


def test_softmax_cross_entropy_forward_and_backward_is_one_kernel():
    # value_and_grad: the loss (rows, then the mean over rows) and the gradient wrt the
    # logits (rows again) share the row passes; the mean is the tail.
    fp = fused(jitgrad.value_and_grad(_xent), arr(32, 10), arr(32, 10))
    assert kinds(fp) == [ROWWISE_GROUP], str(fp)
    main, tail = fp.groups[0].phases
    assert tail.is_tail and main.passes <= 4


@pytest.mark.parametrize("length", [1, 2, 7, 40])
def test_elementwise_chain_of_any_length_is_one_kernel(length):
    ops = [jnp.exp, jnp.tanh, lambda v: v * 2.0 + 1.0, jnp.abs, lambda v: jnp.maximum(v, 0.5),
           jnp.sin, lambda v: v / 3.0]

    def f(x, y, b):
        v = x
        for i in range(length):
            v = ops[i % len(ops)](v)
            if i % 3 == 1:
                v = v + y          # same shape
            if i % 4 == 2:
                v = v * b          # broadcast row
        return v
    fp = fused(f, arr(16, 8), arr(16, 8), arr(8))
    assert kinds(fp) == [ELEMENTWISE_GROUP]


def test_elementwise_with_layout_views_is_one_kernel():
    # Transpose, slice, reverse and broadcast of inputs are read through index maps.
    f = lambda x, y, v: jnp.exp(x.T) + y[::2, ::-1] * v[:, None]   # noqa: E731
    fp = fused(f, arr(6, 4), arr(8, 6), arr(4))
    assert kinds(fp) == [ELEMENTWISE_GROUP]
    names = {e.primitive.name for e in fp.groups[0].views}
    assert {"transpose", "slice", "rev", "broadcast_in_dim"} <= names | {"reshape"}


def test_reduction_with_producers_is_one_kernel():
    fp = fused(lambda x, y, z, b: jnp.sum(x * y + jnp.exp(z) * b, axis=1), arr(8, 16), arr(8, 16),
               arr(8, 16), arr(16))
    assert kinds(fp) == [REDUCTION_GROUP]
    assert fp.groups[0].phases[0].passes == 1


def test_small_producer_in_another_iteration_space_runs_first():
    # exp(z) over [16] is its own kernel; the sum over [8,16] still fuses its other producers,
    # even though exp(z) is traced after x * y.
    fp = fused(lambda x, y, z: jnp.sum(x * y + jnp.exp(z), axis=1), arr(8, 16), arr(8, 16), arr(16))
    assert kinds(fp) == [ELEMENTWISE_GROUP, REDUCTION_GROUP]
    assert [e.primitive.name for e in fp.groups[0].eqns] == ["exp"]
    assert "iteration space" in fp.apart[0].reason


def test_reduction_with_epilogue_is_one_kernel():
    fp = fused(lambda x: jnp.sqrt(jnp.mean(x * x, axis=0)) + 1.0, arr(8, 16))
    assert kinds(fp) == [REDUCTION_GROUP]


@pytest.mark.parametrize("f, what", [
    (lambda x: x / jnp.sum(x), "sum of all elements"),
    (lambda x: x - jnp.max(x, axis=0), "column max (not a trailing row)"),
])
def test_reduction_then_consumer_of_its_full_value_is_two_kernels(f, what):
    fp = fused(f, arr(64, 32))
    assert len(fp.kernels) == 2, what
    assert fp.groups[0].kind == REDUCTION_GROUP and fp.groups[1].kind == ELEMENTWISE_GROUP
    (sep,) = fp.apart
    assert "needs the complete result" in sep.reason
    assert "needs the complete result" in str(fp)


def test_rowwise_softmax_is_one_kernel_with_passes():
    def softmax(x):
        m = jnp.max(x, axis=-1, keepdims=True)
        e = jnp.exp(x - m)
        return e / jnp.sum(e, axis=-1, keepdims=True)
    fp = fused(softmax, arr(64, 100))
    assert kinds(fp) == [ROWWISE_GROUP]
    (phase,) = fp.groups[0].phases
    assert phase.passes == 3   # max; sum of exp; write exp / sum


def test_layer_norm_and_logsumexp_are_one_kernel():
    def layer_norm(x, g, b):
        mu = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
        return (x - mu) / jnp.sqrt(var + 1e-5) * g + b

    def logsumexp(x):
        m = jnp.max(x, axis=-1, keepdims=True)
        return jnp.log(jnp.sum(jnp.exp(x - m), axis=-1)) + m[..., 0]
    assert kinds(fused(layer_norm, arr(16, 64), arr(64), arr(64))) == [ROWWISE_GROUP]
    assert kinds(fused(logsumexp, arr(4, 16, 64))) == [ROWWISE_GROUP]


def test_long_rows_are_not_rowwise():
    n = ROW_LIMIT * 2
    fp = fused(lambda x: x - jnp.max(x, axis=-1, keepdims=True), arr(2, n))
    assert len(fp.kernels) == 2
    assert "row-wise limit" in fp.apart[0].reason


def test_transpose_of_a_computed_value_needs_a_new_kernel():
    fp = fused(lambda x: jnp.exp(x).T + 1.0, arr(8, 8))
    assert len(fp.kernels) == 2
    assert "other positions" in fp.apart[0].reason
    assert fp.groups[0].outputs and fp.groups[0].outputs[0] in fp.groups[1].inputs


def test_different_iteration_spaces_are_two_kernels():
    fp = fused(lambda x, y: (jnp.exp(x), jnp.exp(y)), arr(8, 8), arr(5))
    assert len(fp.kernels) == 2
    assert "iteration space" in fp.apart[0].reason


def test_sibling_elementwise_ops_share_a_kernel():
    fp = fused(lambda x, y: (jnp.exp(x), jnp.sin(y), x * y), arr(8, 8), arr(8, 8))
    assert kinds(fp) == [ELEMENTWISE_GROUP]
    assert len(fp.groups[0].outputs) == 3


def test_two_matmuls_are_two_kernels_with_a_reason():
    fp = fused(lambda x, w1, w2: jnp.tanh(x @ w1) @ w2, arr(4, 8), arr(8, 8), arr(8, 2))
    assert kinds(fp) == [MATMUL_GROUP, MATMUL_GROUP]
    assert "dot_general starts its own kernel" in fp.apart[0].reason


def test_fallbacks_are_reported_and_split_the_program():
    def f(x, n):
        y = jnp.exp(x)
        z = lax.cond(n > 0, lambda v: v * 2, lambda v: v, y)
        return z + 1
    fp = fused(f, arr(4, 4), np.array(1, np.int32))
    assert FALLBACK_GROUP in kinds(fp)
    fb = fp.fallbacks[0]
    assert "control flow" in fb.note and "fallback" in str(fp)
    assert len(fp.kernels) == 2


def test_mlp_backward_fuses_relu_mask_with_bias_gradient():
    def loss(w1, b1, w2, x, y):
        h = jnp.maximum(x @ w1 + b1, 0)
        return _xent(h @ w2, y)
    g = jitgrad.grad(loss, argnums=(0, 1, 2))
    fp = fused(g, arr(16, 32), arr(32), arr(32, 10), arr(8, 16), arr(8, 10))
    # No kernel exists only to reduce the relu-masked gradient over the batch: the mask
    # is applied in the epilogue of the matmul that produces the gradient, and the
    # bias gradient's column sum is computed in the same pass.
    bias_grad_groups = [g for g in fp.groups if any(e.primitive.name == "reduce_sum" and
                                                    e.outvars[0].aval.shape == (32,) for e in g.eqns)]
    assert len(bias_grad_groups) == 1
    grp = bias_grad_groups[0]
    assert grp.kind in (MATMUL_GROUP, REDUCTION_GROUP)
    prims = {e.primitive.name for e in grp.eqns}
    assert prims & {"select_n", "mul", "gt"}, str(fp)
    assert len(fp.kernels) <= 6, str(fp)


def test_report_is_readable():
    fp = fused(lambda x, w, b: (jnp.maximum(x @ w + b, 0), jnp.sum(x)), arr(8, 4), arr(4, 16), arr(16))
    text = str(fp)
    assert text.startswith("fused program: ")
    for g in fp.groups:
        assert g.name in text
    assert "not fused with the next kernel" in text
    assert "reads through (index maps)" in text


def test_every_neighbouring_pair_has_a_reason():
    def f(x, w):
        a = jnp.exp(x)
        b = a.T @ w
        c = jnp.sum(b)
        return b / c, jnp.cumsum(x, axis=0)
    fp = fused(f, arr(8, 4), arr(8, 3))
    assert len(fp.apart) == len(fp.groups) - 1
    assert all(s.reason for s in fp.apart)
    assert [(s.before, s.after) for s in fp.apart] == [(i, i + 1) for i in range(len(fp.groups) - 1)]


def test_dead_equations_are_not_fused():
    from jitgrad.core.ir import IR, ClosedIR
    closed = jitgrad.make_ir(lambda x: (jnp.exp(x), jnp.sin(x)))(arr(3))
    ir = closed.ir
    pruned = ClosedIR(IR(ir.constvars, ir.invars, ir.eqns, ir.outvars[:1]), closed.consts)
    fp = fuse(pruned, cpu.supports)
    assert [e.primitive.name for e in fp.skipped] == ["sin"]


def test_a_broadcast_output_never_joins_an_empty_iteration_space():
    # b*3 (shape (1,)) would broadcast into a loop over [0]: that loop never runs, so the
    # product would never be written. It must be a kernel of its own.
    fp = fused(lambda a, b: (a * 2, b * 3), np.zeros(0, np.float32), np.ones(1, np.float32))
    assert len(fp.groups) == 2, str(fp)
    out = jitgrad.jit(lambda a, b: (a * 2, b * 3), backend="cpu")(
        np.zeros(0, np.float32), np.ones(1, np.float32))
    np.testing.assert_array_equal(np.asarray(out[1]), [3.0])


def test_an_absorbed_producer_leaves_the_dependency_graph():
    # Normalising rows of an empty (0, 2) array: the per-row statistics (shape (0, 1))
    # cannot join the empty row loops, form kernels of their own that read a reduction,
    # and are then absorbed into their one reader. Absorbed, a kernel must no longer wait
    # for its inputs' kernels (it was once scheduled anyway: "fusion made a cycle").
    def normalize(x):
        mu = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
        return (x - mu) / jnp.sqrt(var + 1.0)
    x = np.zeros((0, 2), np.float32)
    fp = fused(normalize, x)
    assert all(g.phases for g in fp.groups), str(fp)
    out = jitgrad.jit(normalize, backend="cpu")(x)
    assert np.asarray(out).shape == (0, 2)
