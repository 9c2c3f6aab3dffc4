"""Kernels for opaque operations: one thread per output element, or per independent line.

* ``gather``: each output element reads its index tuple, clamps it (``mode="clip"``) or
  checks it (``mode="fill"``), and reads the operand.
* ``scatter``: the output starts as a copy of the operand; then one thread per element of
  the scattered *slice* (the operand axes that are not indexed) walks through all the
  updates in order. Updates that hit the same place are applied in index order by the
  same thread, so ``add``/``mul`` give the reference's results on every run without
  atomics, and ``set`` keeps the last update, as numpy does. The parallelism is the
  slice size; scattering scalars into a vector runs on one thread (simple, not fast).
* ``dynamic_slice`` / ``dynamic_update_slice``: start indices are read on the device
  and clamped as the reference does; the update is one pass over the output.
* ``cumsum``, ``cumprod``, ``cummax``, ``cummin``, ``cumlogsumexp``: one thread per line
  along the axis, accumulating in order (the reference's order, so float results match
  bit for bit).
* convolution and pooling (and pooling's derivatives): ``windows``.
* ``materialize``: writes a layout view (a transpose, a slice) into a buffer, for the
  host-driven operations that need their operands in memory.

Operands are read through layout views like everywhere else, so none of these needs a
materialised transpose or broadcast of its inputs.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...core.ir import Eqn, Var
from ...ops.indexing import _fill_value
from ...passes import fusion_index as fi
from .codegen import Buffers, KernelBuilder, KernelInfo, ModuleWriter, Values, unravel_into
from .loops import Launch, _prod
from .runtime import LaunchPolicy
from .scalar import UnsupportedOnCuda

from .windows import RULES as WINDOW_RULES, WINDOW_KERNELS  # noqa: E402

OPAQUE_KERNELS = ("gather", "scatter", "dynamic_slice", "dynamic_update_slice", "cumsum",
                  "cumprod", "cummax", "cummin", "cumlogsumexp") + WINDOW_KERNELS


def _names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{k}" for k in range(n)]


def _grid_loop(kb: KernelBuilder, n: int):
    return kb.block(f"for flat in range(cuda.grid(1), {n}, cuda.gridsize(1)):")


def _finish(mw: ModuleWriter, kb: KernelBuilder, bufs: Buffers, name: str, n: int,
            policy: LaunchPolicy, kind: str = "opaque", flops: int = 0) -> Launch:
    grid = policy.blocks_for(n)
    nbytes = sum(v.aval.size * v.aval.dtype.itemsize for v in bufs.vars)
    mw.add_kernel(kb.finish(name, list(bufs.names.values())),
                  KernelInfo(name, kind, [v.aval.dtype for v in bufs.vars], grid, policy.block,
                             nbytes, flops))
    return Launch(name, grid, policy.block, list(bufs.vars))


def _index_value(kb: KernelBuilder, vals: Values, atom, idx) -> str:
    """An index operand element as an int64 temporary."""
    return kb.bind(f"int64({vals.read(atom, idx)})", prefix="c")


def emit_opaque(mw: ModuleWriter, eqn: Eqn, name: str, policy: LaunchPolicy,
                views: dict[int, Eqn], describe) -> list[Launch]:
    """The kernel(s) for one opaque equation (see the module docstring)."""
    prim = eqn.primitive.name
    rule = {"gather": _gather, "scatter": _scatter, "dynamic_slice": _dynamic_slice,
            "dynamic_update_slice": _dynamic_update_slice}.get(prim)
    if rule is None and prim in ("cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp"):
        rule = _cumulative
    kb = KernelBuilder(mw)
    bufs = Buffers()
    vals = Values(kb, bufs, dict(views), {}, {}, lambda e, a: (), describe)
    if rule is None and prim in WINDOW_RULES:
        n = WINDOW_RULES[prim](kb, vals, eqn)
        flops = 0
        if prim == "conv_general_dilated":
            rhs = eqn.invars[1].aval
            flops = 2 * n * rhs.size // max(rhs.shape[eqn.params["dimension_numbers"][1][0]], 1)
        return [_finish(mw, kb, bufs, name, n, policy, kind="opaque", flops=flops)]
    if rule is None:
        raise UnsupportedOnCuda(f"the cuda backend has no kernel for {prim!r}")
    return rule(mw, kb, bufs, vals, eqn, name, policy)


def emit_materialize(mw: ModuleWriter, var: Var, name: str, policy: LaunchPolicy,
                     views: dict[int, Eqn], describe) -> Launch:
    """A kernel writing the layout view ``var`` into its own buffer."""
    if id(var) not in views:
        raise ValueError("emit_materialize: only layout views need materialising")
    # ``var`` is read through its view chain (never as a leaf), so its own buffer is only
    # ever the destination.
    return _copy_kernel(mw, var, var, name, policy, views)


# ------------------------------------------------------------------ gather

def _gather(mw, kb, bufs, vals, eqn, name, policy):
    operand, indices = eqn.invars
    out = eqn.outvars[0]
    axes = tuple(eqn.params["axes"])
    mode = eqn.params.get("mode", "clip")
    oshape, ishape = operand.aval.shape, indices.aval.shape
    batch = ishape[:-1]
    rest_axes = [a for a in range(len(oshape)) if a not in axes]
    n = out.aval.size
    fill = kb.const(_fill_value(operand.aval.dtype, eqn.params.get("fill_value")),
                    operand.aval.dtype)
    empty_axis = any(oshape[a] == 0 for a in axes)
    with _grid_loop(kb, n):
        idx = _names("o", out.aval.ndim)
        unravel_into(kb, "flat", out.aval.shape, idx)
        idx = [i if d != 1 else "0" for i, d in zip(idx, out.aval.shape)]
        if empty_axis:
            kb.line(f"{bufs.param(out)}[flat] = {fill}")
        else:
            bidx, ridx = idx[:len(batch)], idx[len(batch):]
            src = ["0"] * len(oshape)
            ok = []
            for j, a in enumerate(axes):
                c = _index_value(kb, vals, indices, tuple(bidx) + (str(j),) if ishape[-1] != 1
                                 else tuple(bidx) + ("0",))
                top = oshape[a] - 1
                if mode == "fill":
                    ok.append(f"({c} >= 0 and {c} <= {top})")
                src[a] = kb.bind(f"(0 if {c} < 0 else ({top} if {c} > {top} else {c}))",
                                 prefix="c")
            for a, r in zip(rest_axes, ridx):
                src[a] = r
            value = vals.read(operand, tuple(src))
            if ok:
                value = f"({value} if {' and '.join(ok)} else {fill})"
            kb.line(f"{bufs.param(out)}[flat] = {value}")
    return [_finish(mw, kb, bufs, name, n, policy)]


# ------------------------------------------------------------------ scatter

def _scatter(mw, kb, bufs, vals, eqn, name, policy):
    operand, indices, updates = eqn.invars
    out = eqn.outvars[0]
    axes = tuple(eqn.params["axes"])
    how = eqn.params.get("combine", "set")
    oshape, ishape = operand.aval.shape, indices.aval.shape
    batch = ishape[:-1]
    rest_axes = [a for a in range(len(oshape)) if a not in axes]
    rest_shape = [oshape[a] for a in rest_axes]
    dt = out.aval.dtype
    # Kernel 1: out = operand.
    copy = _copy_kernel(mw, operand, out, f"{name}_copy", policy, vals.views)
    # Kernel 2: thread per slice element, updates in order.
    nrest, nb = _prod(rest_shape), _prod(batch)
    with kb.block(f"for flat in range(cuda.grid(1), {nrest}, cuda.gridsize(1)):"):
        ridx = _names("r", len(rest_shape))
        unravel_into(kb, "flat", rest_shape, ridx)
        ridx = [r if d != 1 else "0" for r, d in zip(ridx, rest_shape)]
        with kb.block(f"for u in range({nb}):"):
            bidx = _names("b", len(batch))
            unravel_into(kb, "u", batch, bidx)
            bidx = [b if d != 1 else "0" for b, d in zip(bidx, batch)]
            dst = ["0"] * len(oshape)
            ok = []
            for j, a in enumerate(axes):
                c = _index_value(kb, vals, indices, tuple(bidx) + ((str(j),) if ishape[-1] != 1 else ("0",)))
                ok.append(f"{c} >= 0 and {c} < {oshape[a]}")
                dst[a] = c
            for a, r in zip(rest_axes, ridx):
                dst[a] = r
            cond = " and ".join(ok) if ok else "True"
            with kb.block(f"if {cond}:"):
                target = kb.bind(fi.linear_index(dst, oshape) if oshape else "0", prefix="d")
                upd = vals.read(updates, tuple(bidx) + tuple(ridx))
                if how == "set":
                    new = upd
                else:
                    old = kb.bind(f"{bufs.param(out)}[{target}]")
                    prim = {"add": "add", "mul": "mul", "min": "min", "max": "max"}[how]
                    new = kb.scalar.apply(prim, {}, [old, upd], [dt, dt], dt)
                kb.line(f"{bufs.param(out)}[{target}] = {new}")
    return [copy, _finish(mw, kb, bufs, name, nrest, policy)]


def _copy_kernel(mw, src, dst: Var, name, policy, views) -> Launch:
    kb = KernelBuilder(mw)
    bufs = Buffers()
    vals = Values(kb, bufs, dict(views), {}, {}, lambda e, a: (), lambda v: "a value")
    shape = dst.aval.shape
    n = _prod(shape)
    with _grid_loop(kb, n):
        idx = _names("i", len(shape))
        unravel_into(kb, "flat", shape, idx)
        idx = tuple(i if d != 1 else "0" for i, d in zip(idx, shape))
        v = vals.read(src, idx)
        kb.line(f"{bufs.param(dst)}[flat] = {v}")
    return _finish(mw, kb, bufs, name, n, policy, kind="copy")


# ------------------------------------------------------------------ dynamic slices

def _starts(kb, vals, starts: Sequence, shape, sizes) -> list[str]:
    out = []
    for s, n, k in zip(starts, shape, sizes):
        c = _index_value(kb, vals, s, ())
        out.append(kb.bind(f"(0 if {c} < 0 else ({n - k} if {c} > {n - k} else {c}))", prefix="s"))
    return out


def _dynamic_slice(mw, kb, bufs, vals, eqn, name, policy):
    operand, *starts = eqn.invars
    out = eqn.outvars[0]
    sizes = out.aval.shape
    n = out.aval.size
    with _grid_loop(kb, n):
        s = _starts(kb, vals, starts, operand.aval.shape, sizes)
        idx = _names("i", len(sizes))
        unravel_into(kb, "flat", sizes, idx)
        src = tuple(f"({b} + {i})" if d != 1 else b for b, i, d in zip(s, idx, sizes))
        kb.line(f"{bufs.param(out)}[flat] = {vals.read(operand, src)}")
    return [_finish(mw, kb, bufs, name, n, policy)]


def _dynamic_update_slice(mw, kb, bufs, vals, eqn, name, policy):
    operand, update, *starts = eqn.invars
    out = eqn.outvars[0]
    shape, ushape = operand.aval.shape, update.aval.shape
    n = out.aval.size
    with _grid_loop(kb, n):
        s = _starts(kb, vals, starts, shape, ushape)
        idx = _names("i", len(shape))
        unravel_into(kb, "flat", shape, idx)
        idx = [i if d != 1 else "0" for i, d in zip(idx, shape)]
        inside = " and ".join(f"({b} <= {i} and {i} < {b} + {k})" for b, i, k in zip(s, idx, ushape))
        with kb.block(f"if {inside or 'True'}:"):
            rel = tuple(f"({i} - {b})" for i, b in zip(idx, s))
            kb.line(f"{bufs.param(out)}[flat] = {vals.read(update, rel)}")
        with kb.block("else:"):
            kb.line(f"{bufs.param(out)}[flat] = {vals.read(operand, tuple(idx))}")
    return [_finish(mw, kb, bufs, name, n, policy)]


# ------------------------------------------------------------------ cumulative

def _cumulative(mw, kb, bufs, vals, eqn, name, policy):
    (x,) = eqn.invars
    out = eqn.outvars[0]
    axis, reverse = eqn.params["axis"], eqn.params.get("reverse", False)
    shape = x.aval.shape
    length = shape[axis]
    line_shape = [d for k, d in enumerate(shape) if k != axis]
    nlines = _prod(line_shape)
    dt = out.aval.dtype
    prim = eqn.primitive.name
    with kb.block(f"for flat in range(cuda.grid(1), {nlines}, cuda.gridsize(1)):"):
        lidx = _names("l", len(line_shape))
        unravel_into(kb, "flat", line_shape, lidx)
        lidx = [l if d != 1 else "0" for l, d in zip(lidx, line_shape)]

        def at(pos: str) -> tuple[str, ...]:
            full = list(lidx)
            full.insert(axis, pos)
            return tuple(full)
        if length:
            first = str(length - 1) if reverse else "0"
            kb.line(f"acc = {vals.read(x, at(first))}")
            vals.store(out, at(first), "acc")
            order = f"range({length - 2}, -1, -1)" if reverse else f"range(1, {length})"
            with kb.block(f"for j in {order}:"):
                v = vals.read(x, at("j"))
                kb.line(f"acc = {_accumulate(kb, prim, 'acc', v, dt)}")
                vals.store(out, at("j"), "acc")
    return [_finish(mw, kb, bufs, name, nlines, policy)]


def _accumulate(kb: KernelBuilder, prim: str, acc: str, x: str, dt: np.dtype) -> str:
    s = kb.scalar
    if prim == "cumsum":
        return s.apply("add", {}, [acc, x], [dt, dt], dt)
    if prim == "cumprod":
        return s.apply("mul", {}, [acc, x], [dt, dt], dt)
    if prim == "cummax":
        return s.p_max({}, [acc, x], [dt, dt], dt)
    if prim == "cummin":
        return s.p_min({}, [acc, x], [dt, dt], dt)
    # numpy's logaddexp(acc, x): equal -> x + log 2; else the larger plus log1p(exp(-|d|)).
    log2 = kb.const(np.log(2.0), dt)
    d = kb.bind(s.cast(f"{acc} - {x}", dt))
    big = s.cast(f"{acc} + {s.ld('log1p', dt, s.ld('exp', dt, f'-{d}'))}", dt)
    small = s.cast(f"{x} + {s.ld('log1p', dt, s.ld('exp', dt, d))}", dt)
    return (f"({s.cast(f'{acc} + {log2}', dt)} if {acc} == {x} else ({big} if {d} > 0 else "
            f"({small} if {d} <= 0 else {d})))")
