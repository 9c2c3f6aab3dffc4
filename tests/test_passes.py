"""Optimisation passes: each pass's effect on the IR's structure, and that it never changes
what the program computes (reference interpreter, inputs with NaN, inf and -0.0)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import jitgrad
import jitgrad.numpy as jnp
from program_generator import programs
from jitgrad import lax
from jitgrad.backends.reference import evaluate
from jitgrad.core.abstract import ShapedArray
from jitgrad.core.array import ArrayImpl
from jitgrad.core.ir import IR, ClosedIR, Eqn, Literal, Var
from jitgrad.core.primitive import CONTROL, ELEMENTWISE, OPAQUE, Primitive, registry
from jitgrad.core.trace import StagingTrace, to_numpy
from jitgrad.ops import elementwise as ew
from jitgrad.ops import layout as lo
from jitgrad.passes import (PIPELINE, eliminate_common_subexpressions, eliminate_dead_code,
                            fold_constants, fold_transposes_into_dot, optimize,
                            optimize_with_report, reorder_matmul_chains, simplify)
from jitgrad.passes.constant_folding import MAX_FOLD_ELEMENTS

F32 = np.float32
# Inputs hold NaN and inf on purpose; numpy's warnings about them are noise here.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
ALL_PASSES = [simplify, fold_constants, fold_transposes_into_dot, reorder_matmul_chains,
              eliminate_common_subexpressions, eliminate_dead_code, optimize]


# ------------------------------------------------------------------ test primitives

def _primitive(name, kind, multiple_results=False):
    """A primitive for these tests only: taken out of the global registry at once, so that
    tests enumerating the registered primitives (backend coverage) never see it."""
    p = Primitive(name, kind, multiple_results)
    del registry[name]
    return p


EFFECT_LOG = []
effect_p = _primitive("test_passes_effect", OPAQUE, multiple_results=True)
effect_p.has_effects = True
effect_p.impl = lambda *xs: EFFECT_LOG.append([np.array(x) for x in xs]) or []
effect_p.abstract_eval = lambda *avals: []

nocse_p = _primitive("test_passes_nocse", ELEMENTWISE)
nocse_p.no_cse = True
nocse_p.impl = lambda x: np.exp(x)
nocse_p.abstract_eval = lambda x: x

# A control primitive holding a bare sub-IR, as cond/scan/remat do.
call_p = _primitive("test_passes_call", CONTROL, multiple_results=True)
call_p.impl = lambda *xs, body: evaluate(body, [], xs)
call_p.abstract_eval = lambda *avals, body: list(body.out_avals)

failing_p = _primitive("test_passes_failing", ELEMENTWISE)
failing_p.impl = lambda x: 1 / 0
failing_p.abstract_eval = lambda x: x


# ------------------------------------------------------------------ helpers

def var(shape, dtype=F32, weak=False):
    return Var(ShapedArray(shape, dtype, weak))


def lit(value, dtype=F32, weak=False):
    return Literal(np.asarray(value, dtype), ShapedArray((), dtype, weak))


def eqn(prim, invars, outvars, **params):
    return Eqn(prim, invars, outvars, params, None)


def closed_ir(invars, eqns, outvars, constvars=(), consts=()):
    return ClosedIR(IR(list(constvars), list(invars), list(eqns), list(outvars)), list(consts))


def names(closed):
    return [e.primitive.name for e in closed.ir.eqns]


def run(closed, args):
    return evaluate(closed.ir, [to_numpy(c) for c in closed.consts], args)


SPECIALS = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0, -1.0, 1e30], F32)


def sample(aval, rng, finite=False):
    """Random inputs; floats include NaN, +-inf and -0.0 unless ``finite``."""
    if aval.dtype.kind == "f":
        x = rng.normal(size=aval.shape).astype(aval.dtype)
        if not finite and x.size:
            mask = rng.random(aval.shape) < 0.4
            x = np.where(mask, rng.choice(SPECIALS, size=aval.shape).astype(aval.dtype), x)
        return x
    if aval.dtype.kind == "b":
        return rng.random(aval.shape) < 0.5
    return rng.integers(-5, 5, size=aval.shape).astype(aval.dtype)


def assert_same(a, b):
    """Bit-for-bit equal values, NaNs where NaNs are, zeros of the same sign."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    if a.dtype.kind == "f":
        nan = np.isnan(a)
        np.testing.assert_array_equal(nan, np.isnan(b))
        np.testing.assert_array_equal(a[~nan], b[~nan])
        np.testing.assert_array_equal(np.signbit(a[~nan]), np.signbit(b[~nan]))
    else:
        np.testing.assert_array_equal(a, b)


def check_same_results(before, after, trials=4, exact=True, finite=False, seed=0):
    rng = np.random.default_rng(seed)
    assert [v.aval for v in before.ir.outvars] == [v.aval for v in after.ir.outvars]
    assert before.in_avals == after.in_avals
    for _ in range(trials):
        args = [sample(a, rng, finite) for a in before.in_avals]
        for x, y in zip(run(before, args), run(after, args)):
            if exact:
                assert_same(x, y)
            else:
                np.testing.assert_allclose(y, x, rtol=2e-5, atol=1e-5, equal_nan=True)


def assert_well_formed(closed):
    """Every operand is defined before use and every equation type-checks."""
    defined = {id(v) for v in closed.ir.constvars + closed.ir.invars}
    assert len(closed.ir.constvars) == len(closed.consts)
    for e in closed.ir.eqns:
        for a in e.invars:
            assert type(a) is Literal or id(a) in defined, f"{a} used before definition"
        out = e.primitive.abstract_eval(*[a.aval for a in e.invars], **e.params)
        outs = list(out) if e.primitive.multiple_results else [out]
        assert outs == [v.aval for v in e.outvars], e
        defined.update(id(v) for v in e.outvars)
    for a in closed.ir.outvars:
        assert type(a) is Literal or id(a) in defined


def snapshot(closed):
    return (str(closed), list(closed.ir.eqns), [list(e.invars) for e in closed.ir.eqns],
            [dict(e.params) for e in closed.ir.eqns], list(closed.ir.outvars),
            list(closed.ir.constvars), list(closed.consts))


def traced(fun, *args):
    return jitgrad.make_ir(fun)(*args)


X23 = np.zeros((2, 3), F32)


# ------------------------------------------------------------------ dead-code elimination

def test_dce_removes_unused_equations_and_keeps_results():
    c = traced(lambda x: (jnp.sin(jnp.cos(x)), jnp.exp(x))[1], X23)
    assert names(c) == ["cos", "sin", "exp"]
    out = eliminate_dead_code(c)
    assert names(out) == ["exp"]
    check_same_results(c, out)


def test_dce_keeps_effectful_equations_and_what_they_read():
    x = var((3,))
    y, z = var((3,)), var((3,))
    c = closed_ir([x], [eqn(ew.exp_p, [x], [y]), eqn(effect_p, [y], []),
                        eqn(ew.sin_p, [x], [z])], [x])
    out = eliminate_dead_code(c)
    assert names(out) == ["exp", "test_passes_effect"]
    EFFECT_LOG.clear()
    run(out, [np.arange(3, dtype=F32)])
    np.testing.assert_array_equal(EFFECT_LOG[0][0], np.exp(np.arange(3, dtype=F32)))


def test_dce_drops_unused_constants():
    x, c1, c2, y = var((2,)), var((2,)), var((2,)), var((2,))
    consts = [ArrayImpl(np.array([1.0, 2.0], F32)), ArrayImpl(np.array([3.0, 4.0], F32))]
    c = closed_ir([x], [eqn(ew.add_p, [x, c2], [y])], [y], [c1, c2], consts)
    out = eliminate_dead_code(c)
    assert out.ir.constvars == [c2] and out.consts == [consts[1]]
    check_same_results(c, out)


def test_dce_cleans_sub_irs_but_keeps_their_interface():
    a, b, d = var((3,)), var((3,)), var((3,))
    body = IR([], [a], [eqn(ew.sin_p, [a], [b]), eqn(ew.exp_p, [a], [d])], [d, a])
    x, o1, o2 = var((3,)), var((3,)), var((3,))
    c = closed_ir([x], [eqn(call_p, [x], [o1, o2], body=body)], [o1])
    out = eliminate_dead_code(c)
    new_body = out.ir.eqns[0].params["body"]
    assert [e.primitive.name for e in new_body.eqns] == ["exp"]
    assert len(new_body.outvars) == 2 and new_body.invars == [a]
    assert [e.primitive.name for e in body.eqns] == ["sin", "exp"]       # input untouched
    check_same_results(c, out)


def test_dce_keeps_control_equation_with_an_effect_inside():
    a = var((3,))
    body = IR([], [a], [eqn(effect_p, [a], [])], [])
    x = var((3,))
    c = closed_ir([x], [eqn(call_p, [x], [], body=body)], [x])
    assert names(eliminate_dead_code(c)) == ["test_passes_call"]


# ------------------------------------------------------------------ CSE

def test_cse_merges_identical_equations_and_their_consumers():
    c = traced(lambda x: jnp.exp(x) * 2.0 + jnp.exp(x) * 2.0, X23)
    assert names(c).count("exp") == 2 and names(c).count("mul") == 2
    out = eliminate_dead_code(eliminate_common_subexpressions(c))
    assert names(out) == ["exp", "mul", "add"]
    check_same_results(c, out)


def test_cse_compares_literals_by_bits_and_dtype():
    x = var((3,))
    outs = [var((3,)) for _ in range(4)]
    c = closed_ir([x], [eqn(ew.add_p, [x, lit(0.0)], [outs[0]]),
                        eqn(ew.add_p, [x, lit(-0.0)], [outs[1]]),
                        eqn(ew.add_p, [x, lit(0.0)], [outs[2]]),
                        eqn(ew.add_p, [x, lit(0.0, weak=True)], [outs[3]])], outs)
    out = eliminate_dead_code(eliminate_common_subexpressions(c))
    assert len(out.ir.eqns) == 3          # only the exact duplicate of 0.0 goes
    assert out.ir.outvars[2] is outs[0]
    check_same_results(c, out)


def test_cse_respects_params_commutativity_and_no_cse():
    def f(x, y):
        return (lax.reduce_sum(x, (0,)), lax.reduce_sum(x, (1,)), lax.integer_pow(x, 2),
                lax.integer_pow(x, 2), x + y, y + x, lax.max(x, y), lax.max(y, x))
    c = traced(f, X23, X23)
    out = eliminate_common_subexpressions(c)
    assert names(out) == ["reduce_sum", "reduce_sum", "integer_pow", "add", "max", "max"]
    check_same_results(c, out)

    x, y1, y2 = var((3,)), var((3,)), var((3,))
    c = closed_ir([x], [eqn(nocse_p, [x], [y1]), eqn(nocse_p, [x], [y2])], [y1, y2])
    assert eliminate_common_subexpressions(c) is c


def test_cse_never_merges_effects():
    x = var((3,))
    c = closed_ir([x], [eqn(effect_p, [x], []), eqn(effect_p, [x], [])], [x])
    assert optimize(c) is c


def test_cse_inside_sub_irs():
    a, b1, b2, s = var(()), var(()), var(()), var(())
    body = IR([], [a], [eqn(ew.exp_p, [a], [b1]), eqn(ew.exp_p, [a], [b2]),
                        eqn(ew.add_p, [b1, b2], [s])], [s])
    x, o = var(()), var(())
    c = closed_ir([x], [eqn(call_p, [x], [o], body=body)], [o])
    out, reports = optimize_with_report(c)
    assert [e.primitive.name for e in out.ir.eqns[0].params["body"].eqns] == ["exp", "add"]
    assert any(r.description == "cse: in test_passes_call: merged 1 equation (exp a)"
               for r in reports)
    check_same_results(c, out)

    # Two calls of one shared body: the body is rewritten once, and the calls still merge.
    o2 = var(())
    c = closed_ir([x], [eqn(call_p, [x], [o], body=body), eqn(call_p, [x], [o2], body=body)],
                  [o, o2])
    out = optimize(c)
    assert names(out) == ["test_passes_call"] and out.ir.outvars == [o, o]
    check_same_results(c, out)


# ------------------------------------------------------------------ constant folding

def test_fold_scalar_literals_into_a_literal():
    c = traced(lambda x: jnp.exp(lax.add(np.float32(1), np.float32(1))) * x, X23)
    assert names(c) == ["add", "exp", "mul"]
    out = fold_constants(c)
    assert names(out) == ["mul"]
    (lit_,) = [a for a in out.ir.eqns[0].invars if type(a) is Literal]
    assert lit_.value == np.exp(np.float32(2)) and lit_.aval.dtype == F32
    check_same_results(c, out)


def test_fold_keeps_weak_types():
    a, b = var((), weak=True), var((), weak=True)
    x, y = var(()), var(())
    c = closed_ir([x], [eqn(ew.add_p, [lit(1.0, weak=True), lit(2.0, weak=True)], [a]),
                        eqn(ew.neg_p, [a], [b])], [b, x])
    out = optimize(c)
    assert out.ir.eqns == [] and type(out.ir.outvars[0]) is Literal
    assert out.ir.outvars[0].aval == ShapedArray((), F32, True)
    assert out.out_avals == c.out_avals


def test_fold_small_constants_but_not_large_ones_or_generators():
    small, big = np.arange(6, dtype=F32).reshape(2, 3), np.ones(MAX_FOLD_ELEMENTS + 1, F32)
    x, cs, cb, s1, s2, b1 = var((2, 3)), var((2, 3)), var(big.shape), var((2, 3)), var((2, 3)), var(big.shape)
    gen = var((2, 3))
    c = closed_ir([x], [eqn(ew.sin_p, [cs], [s1]), eqn(ew.add_p, [x, s1], [s2]),
                        eqn(ew.sin_p, [cb], [b1]),
                        eqn(lo.broadcast_in_dim_p, [lit(2.0)], [gen], shape=(2, 3),
                            broadcast_dimensions=())],
                  [s2, b1, gen], [cs, cb], [ArrayImpl(small), ArrayImpl(big)])
    out = optimize(c)
    assert names(out) == ["add", "sin", "broadcast_in_dim"]
    assert len(out.consts) == 2         # sin(small) is now a constant; big stays as it was
    np.testing.assert_array_equal(to_numpy(out.consts[1]), np.sin(small))
    check_same_results(c, out)


def test_fold_turns_scalar_constants_into_literals_and_skips_tracers():
    x, k, y = var((2,)), var(()), var((2,))
    c = closed_ir([x], [eqn(ew.mul_p, [x, k], [y])], [y], [k], [np.asarray(3.0, F32)])
    out = optimize(c)
    assert out.consts == [] and type(out.ir.eqns[0].invars[1]) is Literal
    check_same_results(c, out)

    outer = StagingTrace("outer")
    tracer = outer.new_arg(ShapedArray((), F32))
    k2, z = var(()), var(())
    c = closed_ir([], [eqn(ew.exp_p, [k2], [z])], [z], [k2], [tracer])
    assert fold_constants(c) is c


def test_fold_skips_failing_and_effectful_equations():
    y, z = var(()), var(())
    c = closed_ir([], [eqn(failing_p, [lit(1.0)], [y]), eqn(effect_p, [lit(1.0)], [])], [y])
    assert fold_constants(c) is c


# ------------------------------------------------------------------ algebraic simplification

def _int_x(x):
    return lax.convert_element_type(x, np.int32)


SIMPLIFY_CASES = [
    # (name, function of x: f32[2,3], primitives left after optimize)
    ("x*1", lambda x: x * 1.0, []),
    ("1*x", lambda x: lax.mul(np.float32(1), x), []),
    ("x*ones_like", lambda x: x * jnp.ones_like(x), []),
    ("x/1", lambda x: x / 1.0, []),
    ("x+0.0 is not x", lambda x: x + 0.0, ["add"]),
    ("x+(-0.0)", lambda x: x + (-0.0), []),
    ("x-0.0", lambda x: x - 0.0, []),
    ("x-(-0.0) is not x", lambda x: x - (-0.0), ["sub"]),
    ("-0.0-x", lambda x: lax.sub(np.float32(-0.0), x), ["neg"]),
    ("0.0-x is not neg", lambda x: lax.sub(np.float32(0.0), x), ["sub"]),
    ("x*0.0 is not 0", lambda x: x * 0.0, ["mul"]),
    ("x-x float is not 0", lambda x: x - x, ["sub"]),
    ("x*-1", lambda x: x * -1.0, ["neg"]),
    ("neg neg", lambda x: -(-x), []),
    ("max(x,x)", lambda x: jnp.maximum(x, x), []),
    ("int x*0", lambda x: _int_x(x) * 0, ["broadcast_in_dim"]),
    ("int x+0", lambda x: _int_x(x) + 0, ["convert_element_type"]),
    ("int x-x", lambda x: _int_x(x) - _int_x(x), ["broadcast_in_dim"]),
    ("x**1", lambda x: lax.integer_pow(x, 1), []),
    ("x**0", lambda x: lax.integer_pow(x, 0), ["broadcast_in_dim"]),
    ("transpose chain", lambda x: lax.transpose(lax.transpose(x[None], (1, 0, 2)), (2, 0, 1)),
     ["reshape", "transpose"]),
    ("transpose identity", lambda x: x.T.T, []),
    ("reshape chain", lambda x: x.reshape(6).reshape(3, 2).reshape(2, 3), []),
    ("expand squeeze", lambda x: jnp.expand_dims(x, 0).squeeze(0), []),
    ("squeeze expand", lambda x: jnp.expand_dims(x[:1].squeeze(0), 0), ["slice"]),
    ("broadcast chain", lambda x: jnp.broadcast_to(jnp.broadcast_to(x[0], (3, 3)), (2, 3, 3)),
     ["slice", "reshape", "broadcast_in_dim"]),
    ("select_n True", lambda x: jnp.where(True, x, 2.0), []),
    ("select_n False", lambda x: jnp.where(False, x, 2.0), ["broadcast_in_dim"]),
    ("select_n same cases", lambda x: lax.select(x > 0, x, x), []),
    ("rev rev", lambda x: lax.rev(lax.rev(x, (0, 1)), (1, 0)), []),
    ("size-1 reduce_max", lambda x: lax.reduce_max(x[None], (0,)), []),
    ("size-1 reduce_sum float kept", lambda x: lax.reduce_sum(x[None], (0,)),
     ["reshape", "reduce_sum"]),
    ("lossy convert kept", lambda x: x.astype(jnp.float16).astype(jnp.float32),
     ["convert_element_type", "convert_element_type"]),
    ("lossless convert", lambda x: x.astype(jnp.int8).astype(jnp.float32).astype(jnp.int8),
     ["convert_element_type"]),
    ("stop_gradient kept", lambda x: lax.stop_gradient(x), ["stop_gradient"]),
]


@pytest.mark.parametrize("name,fun,left", SIMPLIFY_CASES, ids=[c[0] for c in SIMPLIFY_CASES])
def test_simplify_rules(name, fun, left):
    c = traced(fun, X23)
    out = optimize(c)
    assert names(out) == left, str(out)
    assert_well_formed(out)
    check_same_results(c, out, trials=6)


def test_simplify_composes_transposes_exactly():
    c = traced(lambda x: lax.transpose(lax.transpose(x, (1, 2, 0)), (2, 0, 1)).sum(0),
               np.zeros((2, 3, 4), F32))
    out = optimize(c)
    assert "transpose" not in names(out)
    c = traced(lambda x: lax.transpose(lax.transpose(x, (1, 2, 0)), (1, 0, 2)),
               np.zeros((2, 3, 4), F32))
    out = simplify(c)
    assert names(out).count("transpose") == 2   # the first stays until DCE
    assert eliminate_dead_code(out).ir.eqns[0].params["permutation"] == (2, 1, 0)
    check_same_results(c, out)


def test_simplify_keeps_weak_types():
    # x is weakly typed (a Python float argument); mul by a strong 1.0 makes a strong
    # value, so forwarding x would change how the result promotes: it must stay.
    c = traced(lambda x: lax.mul(x, np.float32(1)), 2.0)
    assert c.in_avals[0].weak_type and not c.out_avals[0].weak_type
    out = optimize(c)
    assert names(out) == ["mul"] and out.out_avals == c.out_avals
    # Both weak: fine to forward.
    c = traced(lambda x: x * 1.0, 2.0)
    out = optimize(c)
    assert out.ir.eqns == [] and out.out_avals == c.out_avals


def test_simplify_identity_broadcast_and_same_type_convert():
    x, b, d = var((2, 3)), var((2, 3)), var((2, 3))
    c = closed_ir([x], [eqn(lo.broadcast_in_dim_p, [x], [b], shape=(2, 3),
                            broadcast_dimensions=(0, 1)),
                        eqn(ew.convert_element_type_p, [b], [d], new_dtype=np.dtype(F32),
                            weak_type=False)], [d])
    out = optimize(c)
    assert out.ir.eqns == [] and out.ir.outvars == [x]


# ------------------------------------------------------------------ transposes into dots

def test_fold_transpose_into_rhs_and_lhs_of_dot():
    a, b = np.zeros((4, 3), F32), np.zeros((5, 3), F32)
    c = traced(lambda a, b: a @ b.T, a, b)
    out = optimize(c)
    assert names(out) == ["dot_general"]
    assert out.ir.eqns[0].params["dimension_numbers"] == (((1,), (1,)), ((), ()))
    check_same_results(c, out, exact=False)

    c = traced(lambda a, b: a.T @ b, b, b)
    out = optimize(c)
    assert names(out) == ["dot_general"]
    assert out.ir.eqns[0].params["dimension_numbers"] == (((0,), (0,)), ((), ()))
    check_same_results(c, out, exact=False)


def test_fold_transpose_into_batched_dot():
    x, y = np.zeros((2, 4, 3), F32), np.zeros((2, 5, 3), F32)
    c = traced(lambda x, y: x @ jnp.swapaxes(y, 1, 2), x, y)
    out = optimize(c)
    assert names(out) == ["dot_general"]
    check_same_results(c, out, exact=False)


def test_transpose_kept_when_it_would_reorder_free_axes():
    x, w = np.zeros((2, 3, 4), F32), np.zeros((2, 5), F32)
    # Contracting axis 0 of x.T (size 4)... of transpose(x, (2, 1, 0)); its free axes (3, 2)
    # come from x's axes (1, 0), in decreasing order: folding would swap the output axes.
    c = traced(lambda x, w: lax.dot_general(lax.transpose(x, (2, 1, 0)), w,
                                            (((2,), (0,)), ((), ()))), x, w)
    out = optimize(c)
    assert names(out) == ["transpose", "dot_general"]
    check_same_results(c, out, exact=False)


def test_fold_transpose_of_a_dot_result_by_swapping_operands():
    a, b = np.zeros((4, 3), F32), np.zeros((3, 5), F32)
    c = traced(lambda a, b: (a @ b).T, a, b)
    out = optimize(c)
    assert names(out) == ["dot_general"]
    assert out.ir.eqns[0].invars == c.ir.invars[::-1]
    assert out.ir.eqns[0].params["dimension_numbers"] == (((0,), (1,)), ((), ()))
    check_same_results(c, out, exact=False)

    x, y = np.zeros((2, 4, 3), F32), np.zeros((2, 3, 5), F32)
    c = traced(lambda x, y: jnp.swapaxes(x @ y, 1, 2), x, y)
    out = optimize(c)
    assert names(out) == ["dot_general"]
    check_same_results(c, out, exact=False)

    c = traced(lambda a, b: ((a @ b).T, a @ b), a, b)       # the product is needed anyway
    assert names(optimize(c)) == ["dot_general", "transpose"]


def test_broadcast_literal_operands_become_scalars():
    c = traced(lambda x: x * lax.full((2, 3), 2.0, F32) + jnp.ones_like(x) * 0.5, X23)
    out = optimize(c)
    assert names(out) == ["mul", "add"], str(out)
    assert all(type(a) is Literal for e in out.ir.eqns for a in e.invars[:1] if a.aval.shape == ())
    check_same_results(c, out)
    # With no full-shaped operand left the broadcast must stay: it gives the output its shape.
    c = traced(lambda s: lax.full((2, 3), 2.0, F32) * s, np.float32(1))
    out = optimize(c)
    assert names(out) == ["broadcast_in_dim", "mul"]
    check_same_results(c, out)


# ------------------------------------------------------------------ matmul chains

def _dots(closed):
    return [e for e in closed.ir.eqns if e.primitive.name == "dot_general"]


def test_matmul_chain_picks_the_cheap_association():
    a, b, v = np.zeros((50, 60), F32), np.zeros((60, 70), F32), np.zeros((70, 1), F32)
    c = traced(lambda a, b, v: (a @ b) @ v, a, b, v)
    out, reports = optimize_with_report(c)
    first, second = _dots(out)
    assert first.invars == [c.ir.invars[1], c.ir.invars[2]]            # b @ v first
    assert second.invars == [c.ir.invars[0], first.outvars[0]]
    (r,) = [r for r in reports if r.name == "matmul_chains" and r.changed]
    assert r.description == ("matmul_chains: reassociated 1 matmul chain ((a @ b) @ c -> "
                             "a @ (b @ c): 2.14e+05 -> 7.2e+03 multiply-adds)")
    check_same_results(c, out, exact=False, finite=True)


def test_matmul_chain_already_cheap_or_shared_is_left_alone():
    a, b, v = np.zeros((50, 60), F32), np.zeros((60, 70), F32), np.zeros((70, 1), F32)
    c = traced(lambda a, b, v: a @ (b @ v), a, b, v)
    assert optimize(c) is c
    c = traced(lambda a, b, v: ((a @ b) @ v, a @ b), a, b, v)   # a @ b is needed anyway
    out = optimize(c)
    assert len(_dots(out)) == 2


def test_matmul_chain_with_transposes_and_vectors():
    a, b, m, v = (np.zeros((40, 30), F32), np.zeros((40, 30), F32), np.zeros((30, 30), F32),
                  np.zeros((30,), F32))
    c = traced(lambda a, b, m, v: ((a.T @ b) @ m.T) @ v, a, b, m, v)
    out = optimize(c)
    dots = _dots(out)
    assert len(dots) == 3
    assert all(e.outvars[0].aval.shape[1] == 1 for e in dots)      # only matrix-vector products
    assert "transpose" not in names(out)
    check_same_results(c, out, exact=False, finite=True)


def test_matmul_chain_outer_product_first():
    u, w, m = np.zeros((100, 1), F32), np.zeros((1, 100), F32), np.zeros((100, 100), F32)
    c = traced(lambda u, w, m: (u @ w) @ m, u, w, m)
    out = optimize(c)
    assert [e.outvars[0].aval.shape for e in _dots(out)] == [(1, 100), (100, 100)]
    check_same_results(c, out, exact=False, finite=True)


def test_integer_matmul_chain_is_exact():
    a, b, v = (np.zeros((20, 30), np.int32), np.zeros((30, 40), np.int32),
               np.zeros((40, 2), np.int32))
    c = traced(lambda a, b, v: (a @ b) @ v, a, b, v)
    out = optimize(c)
    assert _dots(out)[0].invars[0] is c.ir.invars[1]
    check_same_results(c, out)


# ------------------------------------------------------------------ pipeline and reports

def test_optimize_returns_its_input_when_nothing_applies_and_is_idempotent():
    c = traced(lambda x: jnp.exp(x) + 1.0, X23)
    assert optimize(c) is c
    c = traced(lambda x: jnp.exp(x) * 1.0 + jnp.exp(x), X23)
    once = optimize(c)
    assert once is not c and optimize(once) is once


@pytest.mark.parametrize("pass_fn", ALL_PASSES, ids=lambda f: f.__name__)
def test_passes_never_mutate_their_input(pass_fn):
    def f(a, b, x):
        h = (a @ b.T) @ x.T
        return (jnp.exp(h) * 1.0 + jnp.exp(h), -(-x), x.T.T, jnp.sin(2.0) * x, a[None].squeeze(0))
    c = traced(f, np.zeros((8, 3), F32), np.zeros((9, 3), F32), np.zeros((2, 9), F32))
    before = snapshot(c)
    out = pass_fn(c)
    assert snapshot(c) == before
    assert_well_formed(out)
    check_same_results(c, out, exact=False, finite=True)


def test_report_names_each_pass_and_what_it_changed():
    c = traced(lambda x: (jnp.exp(x) * 1.0 + jnp.exp(x), jnp.sin(x))[0], X23)
    out, reports = optimize_with_report(c)
    first_round = [r for r in reports if r.round == 0]
    assert [r.name for r in first_round] == [name for name, _ in PIPELINE]
    text = [r.description for r in first_round]
    assert text == [
        "simplify: x*1 -> x: 1 equation (mul b 1.0:f32[])",
        "fold_constants: no change",
        "cse: merged 1 equation (exp a)",
        "fold_transposes: no change",
        "dce: removed 1 dead equation (sin a)",
        "matmul_chains: no change",
    ]
    assert reports[-1].closed is out
    assert all(not r.changed for r in reports if r.round > 0)
    for r in reports:
        assert_well_formed(r.closed)
        check_same_results(c, r.closed)


def test_jit_runs_the_optimised_program():
    def f(x, w):
        return jnp.maximum(x @ w.T * 1.0, 0.0) - (-(-x.sum()))
    x, w = np.random.default_rng(0).normal(size=(2, 4, 3)).astype(F32)
    jf = jitgrad.jit(f)
    lowered = jf.lower(x, w)
    assert "transpose" not in names(lowered) and "mul" not in names(lowered)
    assert names(lowered).count("neg") == 0
    np.testing.assert_allclose(jf(x, w), np.maximum(x @ w.T, 0) - x.sum(), rtol=1e-5)


def test_control_flow_bodies_are_optimised():
    def f(p, x):
        return lax.cond(p, lambda x: jnp.exp(x) * 1.0 + jnp.exp(x), lambda x: -(-x), x)
    c = traced(f, True, np.zeros(3, F32))
    out = optimize(c)
    (cond,) = [e for e in out.ir.eqns if e.primitive.name == "cond"]
    bodies = [[e.primitive.name for e in b.eqns] for b in cond.params["branches"]]
    assert sorted(bodies) == [[], ["exp", "add"]]
    rng = np.random.default_rng(0)
    for p in (True, False):
        x = sample(ShapedArray((3,), F32), rng)
        for a, b in zip(run(c, [np.asarray(p), x]), run(out, [np.asarray(p), x])):
            assert_same(a, b)


# ------------------------------------------------------------------ random programs

FLOAT_LITERALS = [0.0, -0.0, 1.0, -1.0, 2.0, 0.5, float("nan"), float("inf"), float("-inf")]
INT_LITERALS = [0, 1, -1, 3]
MATS = {"a": (3, 4), "b": (4, 5), "c": (5, 2), "v": (2, 1)}


def _program(recipe, info):
    """A traced function of (x, y: f32[2,3], s: f32[], k: i32[2,3], a, b, c, v) built from
    a list of (op, i, j, l) draws. Float values live in pools by shape; matrix products
    read only the finite matrices (reassociation may turn inf into NaN: not a bug)."""
    def fun(x, y, s, k, a, b, c, v):
        f, ft, ints, mats = [x, y], [], [k], []
        mat_in = {"a": a, "b": b, "c": c, "v": v}

        def pick(pool, i):
            return pool[i % len(pool)]

        def flit(i):
            return np.float32(FLOAT_LITERALS[i % len(FLOAT_LITERALS)])

        for op, i, j, l in recipe:
            p, q = pick(f, i), pick(f, j)
            if op == 0:
                f.append(-p)
            elif op == 1:
                f.append(jnp.exp(p))
            elif op == 2:
                f.append(lax.add(p, q if l % 2 else flit(l)))
            elif op == 3:
                f.append(lax.sub(p, flit(l)) if l % 2 else lax.sub(flit(l), p))
            elif op == 4:
                f.append(lax.mul(p, flit(l)) if l % 2 else lax.mul(flit(l), p))
            elif op == 5:
                f.append(lax.div(p, flit(l)))
            elif op == 6:
                f.append(lax.max(p, q) if l % 2 else lax.min(p, p))
            elif op == 7:
                ft.append(p.T)
            elif op == 8 and ft:
                f.append(pick(ft, i).T)
            elif op == 9:
                f.append(p.reshape(6).reshape(3, 2).reshape(2, 3))
            elif op == 10:
                which = (l % 3 == 0) if l % 2 else (p > q)
                f.append(jnp.where(which, p, q if l % 4 else flit(j)))
            elif op == 11:
                ints.append(lax.mul(pick(ints, i), np.int32(INT_LITERALS[l % 4])) if j % 2
                            else lax.add(pick(ints, i), np.int32(INT_LITERALS[l % 4])))
            elif op == 12:
                ints.append(lax.sub(pick(ints, i), pick(ints, j)))
            elif op == 13:
                f.append(p.astype(jnp.float16).astype(jnp.float32) if l % 2
                         else lax.convert_element_type(pick(ints, j), F32))
            elif op == 14:
                f.append(jnp.broadcast_to(lax.reduce_max(p, (1,))[:, None], (2, 3)))
            elif op == 15:
                order = "abcv"[i % 3:]
                m = mat_in[order[0]]
                for name in order[1:1 + (l % 3) + 1]:
                    m = m @ mat_in[name] if j % 2 else (m.T.T @ mat_in[name])
                mats.append(m)
                if l % 5 == 0 and len(order) >= 3:
                    mats.append(mat_in[order[0]] @ (mat_in[order[1]] @ mat_in[order[2]]))
            elif op == 16:
                f.append(p * s + jnp.sin(s))
            elif op == 17:
                f.append(jnp.sum(p, axis=0, keepdims=True) * p)
            elif op == 18:
                f.append(lax.integer_pow(p, l % 3))
            elif op == 19:
                f.append(jnp.exp(p) + jnp.exp(p))
        exact = [f[-1], pick(f, recipe[0][1]), ints[-1]] + ft[-1:]
        info["n_exact"] = len(exact)
        return exact + mats
    return fun


def _program_inputs(rng):
    floats = [sample(ShapedArray((2, 3), F32), rng) for _ in range(2)]
    s = sample(ShapedArray((), F32), rng)
    k = rng.integers(-3, 4, size=(2, 3)).astype(np.int32)
    mats = [rng.normal(size=MATS[n]).astype(F32) for n in "abcv"]
    return floats + [s, k] + mats


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 19), st.integers(0, 50), st.integers(0, 50),
                          st.integers(0, 50)), min_size=1, max_size=12),
       st.integers(0, 2 ** 16))
def test_optimize_never_changes_results_of_random_programs(recipe, seed):
    rng = np.random.default_rng(seed)
    args = _program_inputs(rng)
    info = {}
    c = traced(_program(recipe, info), *args)
    out = optimize(c)
    assert_well_formed(out)
    assert out.out_avals == c.out_avals
    assert len(out.ir.eqns) <= len(c.ir.eqns)
    for _ in range(2):
        before, after = run(c, args), run(out, args)
        for idx, (x, y) in enumerate(zip(before, after)):
            if idx < info["n_exact"]:
                assert_same(x, y)
            else:
                np.testing.assert_allclose(y, x, rtol=1e-4, atol=1e-5)
        args = _program_inputs(rng)


@settings(max_examples=120, deadline=None)
@given(programs(max_steps=10))
def test_optimize_never_changes_results_of_generated_programs(prog):
    """The shared generator's programs (broadcasting, size-0/1 axes, NaN/inf, row-wise
    patterns, matmuls): bit-for-bit the same, except what matmuls may round differently."""
    c = traced(lambda *xs: prog(*xs), *prog.inputs)
    out, reports = optimize_with_report(c)
    assert_well_formed(out)
    assert out.out_avals == c.out_avals
    reassociated = any(r.name == "matmul_chains" and r.changed for r in reports)
    has_dot = any(e.primitive.name == "dot_general" for e in c.ir.eqns)
    for x, y in zip(run(c, prog.inputs), run(out, prog.inputs)):
        if not has_dot:
            assert_same(x, y)
        elif not reassociated:
            np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-5, equal_nan=True)
        else:   # a different association can meet inf - inf where the original did not
            both = np.isfinite(x) & np.isfinite(y)
            np.testing.assert_allclose(y[both], x[both], rtol=1e-4, atol=1e-4)
