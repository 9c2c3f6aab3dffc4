"""Kernels for windowed operations: convolution, pooling and pooling's derivatives.

All are direct (no im2col buffer), one thread per output element, so every result is
computed by one thread in a fixed order (deterministic, no atomics):

* ``conv_general_dilated``: the thread of output ``(n, o, s...)`` loops over the input
  features of its group and the kernel taps, skipping taps that land in padding or in
  the holes of an input dilation. Any layout (``dimension_numbers``), strides,
  dilations, feature and batch groups.
* ``reduce_window_{sum,max,min}``: the thread of a window reduces its taps (padding and
  dilation holes hold the reduction's identity, so they are skipped).
* ``select_and_gather_add(t, x)``: the thread of a window finds the window's winner
  (first maximum / minimum, NaN counting as the extreme, as the reference's argmax)
  and reads ``t`` there.
* ``select_and_scatter_add(s, x)``: the thread of an *operand* element visits the
  windows that contain it, recomputes each window's winner, and adds the window's
  ``s`` when it is itself the winner: the scatter becomes a gather.

These are simple kernels, not tuned ones (a tiled implicit-GEMM convolution would be
the next step on a GPU); they keep a CNN's weights and activations on the device.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...core.ir import Eqn
from ...ops.conv import dilate_shape
from .codegen import KernelBuilder, Values, unravel_into
from .loops import _prod
from .matmul import accumulate_dtype

WINDOW_KERNELS = ("conv_general_dilated", "reduce_window_sum", "reduce_window_max",
                  "reduce_window_min", "select_and_gather_add", "select_and_scatter_add")


def _names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{k}" for k in range(n)]


def _out_index(kb: KernelBuilder, shape: Sequence[int], prefix: str = "o") -> list[str]:
    names = _names(prefix, len(shape))
    unravel_into(kb, "flat", shape, names)
    return [n if d != 1 else "0" for n, d in zip(names, shape)]


def conv(kb: KernelBuilder, vals: Values, eqn: Eqn) -> int:
    """Body of the convolution kernel; returns the number of output elements."""
    lhs, rhs = eqn.invars
    out = eqn.outvars[0]
    p = eqn.params
    lhs_spec, rhs_spec, out_spec = p["dimension_numbers"]
    strides, padding = p["window_strides"], p["padding"]
    ldil, rdil = p["lhs_dilation"], p["rhs_dilation"]
    G, BG = p.get("feature_group_count", 1), p.get("batch_group_count", 1)
    ns = len(strides)
    in_sp = [lhs.aval.shape[lhs_spec[2 + d]] for d in range(ns)]
    dil_sp = dilate_shape(in_sp, ldil)
    win = [rhs.aval.shape[rhs_spec[2 + d]] for d in range(ns)]
    I = rhs.aval.shape[rhs_spec[1]]
    O = rhs.aval.shape[rhs_spec[0]]
    n_out = out.aval.shape[out_spec[0]]
    acc_dt = accumulate_dtype(lhs.aval.dtype, out.aval.dtype)
    n = out.aval.size
    with kb.block(f"for flat in range(cuda.grid(1), {n}, cuda.gridsize(1)):"):
        idx = _out_index(kb, out.aval.shape)
        nb, o = idx[out_spec[0]], idx[out_spec[1]]
        sp = [idx[out_spec[2 + d]] for d in range(ns)]
        # Which input batch entry and input features this output reads.
        n_in = f"(({o} // {O // BG}) * {n_out} + {nb})" if BG > 1 else nb
        c0 = f"({o} // {O // G}) * {I}" if G > 1 else "0"
        kb.line(f"acc = {kb.const(0, acc_dt)}")
        with kb.block(f"for i in range({I}):"):
            kb.line(f"c = {c0} + i")
            with kb.block(f"for tap in range({_prod(win)}):"):
                taps = _names("k", ns)
                unravel_into(kb, "tap", win, taps)
                taps = [t if w != 1 else "0" for t, w in zip(taps, win)]
                conds, q = [], []
                for d in range(ns):
                    u = kb.bind(f"{sp[d]} * {strides[d]} + {taps[d]} * {rdil[d]} - {padding[d][0]}",
                                prefix="u")
                    conds.append(f"{u} >= 0 and {u} < {dil_sp[d]}")
                    if ldil[d] > 1:
                        conds.append(f"{u} % {ldil[d]} == 0")
                        q.append(f"({u} // {ldil[d]})")
                    else:
                        q.append(u)
                with kb.block(f"if {' and '.join(conds) or 'True'}:"):
                    li = ["0"] * lhs.aval.ndim
                    li[lhs_spec[0]], li[lhs_spec[1]] = n_in, "c"
                    ri = ["0"] * rhs.aval.ndim
                    ri[rhs_spec[0]], ri[rhs_spec[1]] = o, "i"
                    for d in range(ns):
                        li[lhs_spec[2 + d]] = q[d]
                        ri[rhs_spec[2 + d]] = taps[d]
                    a = kb.scalar.cast(vals.read(lhs, tuple(li)), acc_dt)
                    b = kb.scalar.cast(vals.read(rhs, tuple(ri)), acc_dt)
                    kb.line(f"acc = {kb.scalar.cast(f'acc + {a} * {b}', acc_dt)}")
        value = kb.scalar.cast(kb.scalar.cast("acc", lhs.aval.dtype), out.aval.dtype) \
            if acc_dt.kind in "iu" else kb.scalar.cast("acc", out.aval.dtype)
        kb.line(f"{vals.bufs.param(out)}[flat] = {value}")
    return n


def _window_taps(kb: KernelBuilder, idx, x_shape, win, strides, padding, base_dil, win_dil):
    """Inside a loop over ``tap``: (condition that the tap is a real element, its index)."""
    nd = len(x_shape)
    taps = _names("k", nd)
    unravel_into(kb, "tap", win, taps)
    taps = [t if w != 1 else "0" for t, w in zip(taps, win)]
    dil_sp = dilate_shape(x_shape, base_dil)
    conds, pos = [], []
    for d in range(nd):
        u = kb.bind(f"{idx[d]} * {strides[d]} + {taps[d]} * {win_dil[d]} - {padding[d][0]}",
                    prefix="u")
        conds.append(f"{u} >= 0 and {u} < {dil_sp[d]}")
        if base_dil[d] > 1:
            conds.append(f"{u} % {base_dil[d]} == 0")
            pos.append(f"({u} // {base_dil[d]})")
        else:
            pos.append(u)
    return " and ".join(conds) or "True", tuple(pos)


def reduce_window(kb: KernelBuilder, vals: Values, eqn: Eqn) -> int:
    """Body of a reduce_window_{sum,max,min} kernel."""
    (x,) = eqn.invars
    out = eqn.outvars[0]
    p = eqn.params
    kind = eqn.primitive.name.rsplit("_", 1)[1]
    dt = x.aval.dtype
    s = kb.scalar
    n = out.aval.size
    win = p["window_dimensions"]
    with kb.block(f"for flat in range(cuda.grid(1), {n}, cuda.gridsize(1)):"):
        idx = _out_index(kb, out.aval.shape)
        from ...ops.windows import _identity
        kb.line(f"acc = {kb.const(_identity(kind, dt), dt)}")
        with kb.block(f"for tap in range({_prod(win)}):"):
            cond, pos = _window_taps(kb, idx, x.aval.shape, win, p["window_strides"],
                                     p["padding"], p["base_dilation"], p["window_dilation"])
            with kb.block(f"if {cond}:"):
                v = vals.read(x, pos)
                if kind == "sum":
                    kb.line(f"acc = {s.apply('add', {}, ['acc', v], [dt, dt], dt)}")
                else:
                    kb.line(f"acc = {s.apply(kind, {}, [v, 'acc'], [dt, dt], dt)}")
        kb.line(f"{vals.bufs.param(out)}[flat] = acc")
    return n


def _winner(kb: KernelBuilder, vals: Values, x, idx, p, select_prim: str, ones) -> None:
    """Binds ``best_tap``: the first tap holding the window's max ("ge") / min ("le")."""
    from ...ops.windows import _identity
    dt = x.aval.dtype
    fill = kb.const(_identity("max" if select_prim == "ge" else "min", dt), dt)
    win = p["window_dimensions"]
    base = p.get("base_dilation", ones)
    kb.line(f"best = {fill}")
    kb.line("best_tap = -1")
    with kb.block(f"for tap in range({_prod(win)}):"):
        cond, pos = _window_taps(kb, idx, x.aval.shape, win, p["window_strides"], p["padding"],
                                 base, p["window_dilation"])
        kb.line(f"v = {fill}")
        with kb.block(f"if {cond}:"):
            kb.line(f"v = {vals.read(x, pos)}")
        op = ">" if select_prim == "ge" else "<"
        better = f"v {op} best"
        if np.dtype(dt).kind == "f":
            better = f"(v != v and best == best) or ({better})"
        with kb.block(f"if best_tap < 0 or {better}:"):
            kb.line("best = v")
            kb.line("best_tap = tap")


def select_and_gather_add(kb: KernelBuilder, vals: Values, eqn: Eqn) -> int:
    """Body of select_and_gather_add: each window's winner position, read from ``t``."""
    t, x = eqn.invars
    out = eqn.outvars[0]
    p = eqn.params
    ones = (1,) * x.aval.ndim
    n = out.aval.size
    win = p["window_dimensions"]
    with kb.block(f"for flat in range(cuda.grid(1), {n}, cuda.gridsize(1)):"):
        idx = _out_index(kb, out.aval.shape)
        _winner(kb, vals, x, idx, p, p["select_prim"], ones)
        kb.line(f"res = {kb.const(0, out.aval.dtype)}")
        with kb.block("if best_tap >= 0:"):
            kb.line("tap = best_tap")
            cond, pos = _window_taps(kb, idx, x.aval.shape, win, p["window_strides"],
                                     p["padding"], p.get("base_dilation", ones),
                                     p["window_dilation"])
            with kb.block(f"if {cond}:"):
                kb.line(f"res = {vals.read(t, pos)}")
        kb.line(f"{vals.bufs.param(out)}[flat] = res")
    return n


def select_and_scatter_add(kb: KernelBuilder, vals: Values, eqn: Eqn) -> int:
    """Body of select_and_scatter_add: a thread per operand element gathers from the
    windows whose winner it is (in window order)."""
    src, x = eqn.invars
    out = eqn.outvars[0]
    p = eqn.params
    nd = x.aval.ndim
    ones = (1,) * nd
    win, strides, padding = p["window_dimensions"], p["window_strides"], p["padding"]
    wdil = p["window_dilation"]
    out_sp = src.aval.shape
    dt = out.aval.dtype
    n = x.aval.size
    with kb.block(f"for flat in range(cuda.grid(1), {n}, cuda.gridsize(1)):"):
        e = _out_index(kb, x.aval.shape, prefix="e")
        kb.line(f"total = {kb.const(0, dt)}")
        # Windows w containing e: e = w * stride + tap * dilation - pad_lo for some tap.
        with kb.block(f"for mine in range({_prod(win)}):"):
            mine = _names("m", nd)
            unravel_into(kb, "mine", win, mine)
            mine = [m if w != 1 else "0" for m, w in zip(mine, win)]
            conds, w_idx = [], []
            for d in range(nd):
                num = kb.bind(f"{e[d]} + {padding[d][0]} - {mine[d]} * {wdil[d]}", prefix="w")
                conds.append(f"{num} >= 0 and {num} % {strides[d]} == 0 and "
                             f"{num} // {strides[d]} < {out_sp[d]}")
                w_idx.append(f"({num} // {strides[d]})" if strides[d] != 1 else num)
            with kb.block(f"if {' and '.join(conds) or 'True'}:"):
                w_names = []
                for d in range(nd):
                    name = kb.fresh("wi")
                    kb.line(f"{name} = {w_idx[d]}")
                    w_names.append(name)
                _winner(kb, vals, x, w_names, p, p["select_prim"], ones)
                with kb.block("if best_tap == mine:"):
                    v = vals.read(src, tuple(w_names))
                    kb.line(f"total = {kb.scalar.apply('add', {}, ['total', v], [dt, dt], dt)}")
        kb.line(f"{vals.bufs.param(out)}[flat] = total")
    return n


RULES = {"conv_general_dilated": conv, "reduce_window_sum": reduce_window,
         "reduce_window_max": reduce_window, "reduce_window_min": reduce_window,
         "select_and_gather_add": select_and_gather_add,
         "select_and_scatter_add": select_and_scatter_add}
