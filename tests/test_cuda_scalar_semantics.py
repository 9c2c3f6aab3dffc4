"""The cuda backend's scalar templates under numba's *real* typing rules (no GPU needed).

The simulator runs kernels as Python on numpy scalars, so it cannot show how numba types
the generated integer code (``uint32 + uint32`` is 64-bit in numba; ``float32 * 2.0``
would be float64). numba's CPU and CUDA targets share those typing rules, so here the
same expressions ``scalar.ScalarEmitter`` writes for kernels are compiled with
``numba.njit`` and compared with the reference implementations bit for bit: integer
wrap-around, shifts by any amount, C division, saturating float->int conversion.
(Functions from libdevice, which exists only on the GPU, are left to the simulator and
PTX tests.)
"""
import numpy as np
import pytest

import numba
from numba import boolean, float32, float64, int8, int16, int32, int64, uint8, uint16, uint32, uint64  # noqa: F401

from jitgrad.backends.cuda.codegen import KernelBuilder, ModuleWriter
from jitgrad.core.primitive import registry

BINARY = ["add", "sub", "mul", "div", "rem", "max", "min", "and", "or", "xor", "shift_left",
          "shift_right_logical", "shift_right_arithmetic", "eq", "lt", "ge"]
UNARY = ["neg", "abs", "sign", "square", "not"]

EDGES = {
    np.int32: [0, 1, -1, 7, -7, 2**31 - 1, -2**31, 123456789, -5, 3, 31, 32, 33, -33, 100, 2],
    np.uint32: [0, 1, 7, 2**32 - 1, 2**31, 0x9E3779B9, 123456789, 3, 31, 32, 33, 5, 64, 2, 9, 1000],
    np.int8: [0, 1, -1, 127, -128, 7, -7, 3, 8, 9, -9, 100, -100, 2, 5, 64],
    np.uint16: [0, 1, 65535, 32768, 7, 3, 15, 16, 17, 255, 256, 1000, 2, 9, 100, 12345],
}


def _compile(body_lines, consts, nargs, nouts):
    args = ", ".join([f"x{i}" for i in range(nargs)] + [f"out{j}" for j in range(nouts)])
    src = [f"def f({args}):", "    for i in range(x0.size):"]
    src += [f"        a{k} = x{k}[i]" for k in range(nargs)]
    src += ["        " + line.strip() for line in body_lines]
    env = dict(np=np, **{n: getattr(numba, n) for n in
                         ("boolean", "int8", "int16", "int32", "int64", "uint8", "uint16",
                          "uint32", "uint64", "float32", "float64")})
    exec("\n".join(consts), env)
    exec("\n".join(src), env)
    return numba.njit(error_model="numpy")(env["f"])


def _emit(ops, dtype, nargs):
    """Source lines computing each op on a0..; each result stored to out{k}[i]."""
    mw = ModuleWriter("semantics")
    kb = KernelBuilder(mw)
    dt = np.dtype(dtype)
    for k, (name, params, out_dt) in enumerate(ops):
        args = [f"a{j}" for j in range(nargs)]
        expr = kb.scalar.apply(name, params, args, [dt] * nargs, np.dtype(out_dt))
        kb.line(f"out{k}[i] = {expr}")
    return kb.lines, mw.consts.lines()


@pytest.mark.parametrize("dtype", list(EDGES))
def test_integer_templates_under_numba_typing(dtype):
    x = np.array(EDGES[dtype], dtype)
    y = np.roll(x, 5)
    y[2] = 0
    ops = []
    for name in BINARY:
        out = registry[name].abstract_eval(_aval(x), _aval(y))
        ops.append((name, {}, out.dtype))
    lines, consts = _emit(ops, dtype, 2)
    outs = [np.zeros(x.shape, o[2]) for o in ops]
    _compile(lines, consts, 2, len(ops))(x, y, *outs)
    for (name, _, _), got in zip(ops, outs):
        with np.errstate(all="ignore"):
            want = registry[name].impl(x, y)
        np.testing.assert_array_equal(got, want, err_msg=f"{name} on {np.dtype(dtype).name}")
    ops = [(name, {}, dtype) for name in UNARY] + [("integer_pow", {"y": 5}, dtype)]
    lines, consts = _emit(ops, dtype, 1)
    outs = [np.zeros(x.shape, dtype) for _ in ops]
    _compile(lines, consts, 1, len(ops))(x, *outs)
    for (name, params, _), got in zip(ops, outs):
        with np.errstate(all="ignore"):
            want = registry[name].impl(x, **params)
        np.testing.assert_array_equal(got, want, err_msg=f"{name} on {np.dtype(dtype).name}")


def _aval(x):
    from jitgrad.core.abstract import ShapedArray
    return ShapedArray(x.shape, x.dtype)


def test_conversions_under_numba_typing():
    f = np.array([0.0, -0.0, 1.5, -2.5, 0.5, -0.7, 2.5, 100.9, -100.9, 7.0, 65000.0, 3e9, -3e9,
                  1e20, np.nan, np.inf, -np.inf, 2147483520.0], np.float32)
    targets = [np.int32, np.uint32, np.int8, np.uint8, np.int16, np.bool_]
    ops = [("convert_element_type", {"new_dtype": t}, t) for t in targets]
    lines, consts = _emit(ops, np.float32, 1)
    outs = [np.zeros(f.shape, t) for t in targets]
    _compile(lines, consts, 1, len(ops))(f, *outs)
    for t, got in zip(targets, outs):
        if t is np.bool_:
            np.testing.assert_array_equal(got, f != 0)
            continue
        info = np.iinfo(t)
        with np.errstate(invalid="ignore"):
            trunc = np.trunc(f.astype(np.float64))
        want = np.where(np.isnan(trunc), 0, np.clip(np.nan_to_num(trunc, posinf=info.max,
                                                                  neginf=info.min),
                                                    info.min, info.max)).astype(t)
        np.testing.assert_array_equal(got, want, err_msg=f"float32 -> {np.dtype(t).name}")


def test_float32_stays_float32_under_numba_typing():
    """Typed constants keep float32 arithmetic in float32 (numba would widen 2.0 to f64)."""
    x = np.array([1.1, -2.3, 3.7e-3, 1e30], np.float32)
    y = np.array([0.3, 7.0, -1e-3, 3.0], np.float32)
    ops = [(n, {}, np.float32) for n in ("add", "sub", "mul", "div", "max", "min")]
    ops += [("integer_pow", {"y": 3}, np.float32), ("sign", {}, np.float32)]
    lines, consts = _emit(ops[:6], np.float32, 2)
    outs = [np.zeros(4, np.float32) for _ in range(6)]
    fn = _compile(lines, consts, 2, 6)
    fn(x, y, *outs)
    for (name, _, _), got in zip(ops, outs):
        np.testing.assert_array_equal(got, registry[name].impl(x, y), err_msg=name)
    sig = fn.signatures[0]
    assert all(t.dtype == numba.float32 for t in sig)
    typemap = fn.overloads[sig].type_annotation.typemap
    assert not any(v == numba.float64 for k, v in typemap.items() if not k.startswith("$")), \
        {k: v for k, v in typemap.items() if v == numba.float64}
