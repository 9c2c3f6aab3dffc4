"""Every kind of generated cuda kernel compiles to real PTX (sm_80, sm_90) and assembles.

The simulator runs kernels as Python and accepts code the CUDA compiler rejects, so
each program below is lowered with the GPU launch policy and every kernel is compiled
with ``numba.cuda.compile_ptx`` and assembled by ``ptxas -v``, whose register and
shared-memory report is checked. This needs the PTX toolchain: the ``cuda-ptx`` extra
(``pip install -e ".[cuda-ptx]"``) or a CUDA 13.0 toolkit. Without it these tests fail
and say what to install (they never pass silently).
"""
import numpy as np
import pytest

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import grad, lax, random
from jitgrad.api import optimize
from jitgrad.backends import cuda as jc
from jitgrad.backends.cuda import ptx as ptxmod
from jitgrad.ops import indexing as ix

CCS = [(8, 0), (9, 0)]
F32 = np.float32


def _a(*shape, dtype=F32):
    return np.ones(shape, dtype)


def _max_pool(v):
    return lax.reduce_window(v, -np.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "SAME")


def _layer_norm(x, g, b):
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
    return (x - mu) * lax.rsqrt(var + 1e-5) * g + b


# name -> (function, arguments, x64): together they produce every kernel kind and strategy
# (about 30 kernels; each compiles in ~0.3-1 s per compute capability on 2 cores).
PROGRAMS = {
    "elementwise_float": (lambda x, y: (
        jnp.where(x > y, lax.erf_inv(jnp.tanh(x)), lax.lgamma(y + 2)) * lax.nextafter(x, y),
        lax.cbrt(x) + lax.exp2(y) + lax.atan2(x, y) + lax.rem(x, y) + lax.pow(jnp.abs(x), y),
        lax.round(x, 0) + lax.round(y, 1) + lax.logistic(x) + lax.integer_pow(x, -3),
        lax.pad(x, 0.0, ((1, 1, 1), (0, -1, 0))), jnp.concatenate([x, y[::-1]], 0),
        lax.convert_element_type(x, np.float16), lax.bitcast_convert_type(x, np.uint32)),
        (_a(4, 5), _a(4, 5) * 2), False),
    "elementwise_int": (lambda i, u: (
        i // (u.astype(np.int32) + 1), lax.rem(i, 3 + i * 0), i >> 3, lax.shift_left(i, i),
        lax.shift_right_logical(u, u), lax.shift_right_arithmetic(i, i), lax.integer_pow(u, 7),
        jnp.abs(i).astype(np.int8) + np.int8(1), lax.convert_element_type(i.astype(F32), np.uint8),
        lax.clamp(np.int32(0), i, np.int32(9)), jnp.bitwise_not(u) ^ u, i.astype(np.uint16)),
        (_a(6, dtype=np.int32), _a(6, dtype=np.uint32)), False),
    "random_threefry": (lambda k: random.uniform(k, (3, 5)), (random.key(0),), False),
    "reductions": (lambda x, b, i, h: (
        jnp.sum(x[:, :8], axis=1), jnp.argmax(x, axis=1), jnp.sum(jnp.exp(x)),
        jnp.any(b, axis=1), jnp.all(b[:, :5], axis=0), jnp.sum(i, axis=1) ^ lax.reduce_xor(i, (1,)),
        jnp.sum(x, axis=0), jnp.sum(h, axis=1)),
        (_a(64, 700), _a(5, 300, dtype=np.bool_), _a(9, 40, dtype=np.int32),
         _a(3, 50, dtype=np.float16)), False),
    "rowwise": (lambda x, g, b: (jitgrad.nn.softmax(x), _layer_norm(x, g, b)),
                (_a(32, 300), _a(300), _a(300)), False),
    "matmul": (lambda x, w, b, bt, i, m: (
        jnp.maximum(x @ w + b, 0), jnp.einsum("bij,bkj->bik", bt, bt), i @ i.T, m @ m.T,
        lax.dot_general(x.astype(np.float16), w.astype(np.float16), (((1,), (0,)), ((), ())),
                        preferred_element_type=F32)),
               (_a(40, 24), _a(24, 33), _a(33), _a(2, 17, 9), _a(5, 7, dtype=np.int32),
                _a(3, 4, dtype=np.bool_)), False),
    "opaque": (lambda x, idx, s: (
        ix.gather_p.bind(x, idx, axes=(1,), mode="fill", fill_value=None),
        x.at[idx[:, 0]].add(1.0), lax.dynamic_slice(x, (s, s), (2, 3)),
        lax.dynamic_update_slice(x, jnp.zeros((2, 2)), (s, s)), lax.cumlogsumexp(x, 0, True)),
               (_a(6, 5), _a(4, 1, dtype=np.int32), np.int32(2)), False),
    "windows": (lambda x, w, t: (
        lax.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=2),
        lax.conv_general_dilated(x[:, :2], w, (2, 1), "VALID", lhs_dilation=(1, 2),
                                 dimension_numbers=("NCHW", "OIHW", "NHWC")),
        grad(lambda v: jnp.sum(_max_pool(v) ** 2))(x),
        jitgrad.jvp(_max_pool, (x,), (t,))[1],
        lax.reduce_window(x, 0.0, lax.add, (1, 1, 3, 3), (1, 1, 1, 1), "SAME")),
                (_a(2, 4, 9, 8), _a(6, 2, 3, 3), _a(2, 4, 9, 8)), False),
    "control": (lambda xs, c: (
        lax.scan(lambda c, x: (c * 0.5 + x, jnp.sum(x)), c, xs.T),
        lax.cond(c[0] > 0, lambda v: v * 2, jnp.exp, c)),
                (_a(4, 3), _a(4)), False),
    "float64_int64": (lambda x, k: (jnp.exp(x) @ x.T, jnp.sum(x * 2, axis=0), k * 3 >> 2,
                                    lax.bitcast_convert_type(x, np.int64), x.astype(np.int32)),
                      (_a(5, 6, dtype=np.float64), _a(6, dtype=np.int64)), True),
}


@pytest.fixture(scope="module")
def toolchain():
    try:
        impl = ptxmod.check_compile_ptx()
        ptxas = ptxmod.find_ptxas()
    except ptxmod.PTXToolchainError as e:
        pytest.fail(str(e), pytrace=False)
    return impl, ptxas


def _lower(name):
    fn, args, x64 = PROGRAMS[name]
    before = jitgrad.config.jax_enable_x64
    jitgrad.config.update("jax_enable_x64", x64)
    try:
        closed = optimize(jitgrad.make_ir(fn)(*args))
        return jc.generate(closed, title=f"ptx test program {name}")
    finally:
        jitgrad.config.update("jax_enable_x64", before)


@pytest.fixture(scope="module")
def compiled(toolchain):
    """{program: (Program, {cc: {kernel: PTX}}, {cc: {kernel: Resources}})}."""
    from jitgrad.backends.cuda.module_cache import load
    _, ptxas = toolchain
    out = {}
    for name in PROGRAMS:
        program = _lower(name)
        module = load(program.source)
        ptx, res = {}, {}
        for cc in CCS:
            ptx[cc] = ptxmod.compile_program(program, module, cc)
            res[cc] = {k: ptxmod.assemble(text, f"sm_{cc[0]}{cc[1]}", ptxas)
                       for k, text in ptx[cc].items()}
        out[name] = (program, ptx, res)
    return out


def test_every_kernel_kind_compiles(compiled):
    kinds, names = set(), []
    for program, ptx, _ in compiled.values():
        kinds |= {i.kind for i in program.infos.values()}
        names += list(program.infos)
        for cc in CCS:
            assert set(ptx[cc]) == set(program.infos)
            for text in ptx[cc].values():
                assert f".target sm_{cc[0]}{cc[1]}" in text
    assert kinds >= {"elementwise", "reduction", "rowwise", "matmul", "opaque", "copy"}, kinds
    assert any(n.endswith("_partials") for n in names) and any(n.endswith("_finish") for n in names)


def test_float32_programs_stay_float32(compiled):
    """No float64 arithmetic sneaks into float32 programs (untyped constants would do that)."""
    for name, (program, ptx, _) in compiled.items():
        if PROGRAMS[name][2]:
            continue
        for kernel, text in ptx[(9, 0)].items():
            for op in ("add.f64", "mul.f64", "fma.rn.f64", "div.rn.f64", "sub.f64"):
                if op in text and not _uses_double_libdevice(program.source, kernel):
                    pytest.fail(f"{name}/{kernel} computes in float64 ({op})")


def _uses_double_libdevice(source: str, kernel: str) -> bool:
    # libdevice's sinf/cosf/tanf reduce huge arguments in double precision (checked: no
    # other single-precision libdevice function we call contains f64 code).
    body = source.split(f"def {kernel}(", 1)[1].split("\n@cuda.jit", 1)[0]
    return any(f"ld.{fn}f(" in body for fn in ("sin", "cos", "tan"))


def test_ptxas_reports_registers_and_shared_memory(compiled):
    for program, _, res in compiled.values():
        for cc in CCS:
            for kernel, r in res[cc].items():
                assert r.registers > 0, (kernel, r.text)
                body = program.source.split(f"def {kernel}(", 1)[1].split("\n@cuda.jit", 1)[0]
                if "cuda.shared.array" in body:
                    assert r.shared_bytes > 0, (kernel, r.text)
                if program.infos[kernel].kind == "matmul":
                    assert r.shared_bytes >= 2 * 16 * 16 * 4, (kernel, r.text)
