"""Kernels for fused loop phases: elementwise chains, reductions and row-wise groups.

A loop phase (``passes.fusion.Phase``) is an iteration space ``domain`` with optional
``reduce_axes``; the other axes index *rows*. Four kernel shapes, chosen from the
static sizes (``choose_strategy``):

* **elementwise** (no reduced axes): a grid-stride loop over the flat domain; every
  value is computed per element from its inputs, through layout ops' index maps.
* **block per row** (``rowwise``/``reduction``): each block takes a row (grid-stride
  over rows); its threads stride over the row's elements, accumulate, and combine their
  partial results with a shared-memory tree (``B/2, B/4, ... 1``: a fixed order, so the
  result is the same on every run). A row-wise group makes several such passes over its
  row, e.g. softmax: max, then sum of exp(x - max), then the normalised output; the
  values a pass needs from an earlier one are recomputed from the inputs rather than
  stored. Per-row results are written by thread 0.
* **two-pass reduction** for few, long rows (a full sum): the first kernel gives each
  block a slice of a row and writes one partial result per block; the second combines
  the partials of each row with a tree and finishes the row's epilogue. No atomics, so
  float results do not depend on scheduling.
* **thread per row** for short rows (at most ``SHORT_ROW`` elements), and for sums over
  leading axes (a bias gradient): each thread loops over a whole row, and neighbouring
  threads read neighbouring addresses.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ...core.abstract import ShapedArray
from ...core.ir import Eqn, Literal, Var
from ...core.primitive import REDUCTION
from ...passes import fusion_index as fi
from ...passes.fusion import Phase, canonical_map, index_of_map
from .codegen import (Buffers, KernelBuilder, KernelInfo, ModuleWriter, Values, accumulator_dtype,
                      arg_better, combine, identity_of, unravel_into)
from .runtime import LaunchPolicy
from .scalar import type_name

SHORT_ROW = 16


@dataclass
class Launch:
    """One kernel launch: ``kernel[grid, block](*buffers of args)``."""

    kernel: str
    grid: int
    block: int
    args: list[Var]
    scratch: list[Var] = field(default_factory=list)   # temporaries only this step uses


def _prod(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


def _next_pow2(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p


class PhaseContext:
    """What a loop-phase kernel needs from the lowering: producers, views, what to store."""

    def __init__(self, phase: Phase, producer: dict[int, Eqn], views: dict[int, Eqn],
                 store: Sequence[Var], describe):
        self.phase = phase
        self.producer = producer
        self.views = views
        self.store = list(store)
        self.describe = describe
        X, A = phase.domain, tuple(phase.reduce_axes)
        self.domain, self.reduce_axes = X, A
        self.row_axes = tuple(k for k in range(len(X)) if k not in A)
        self.local = {vid: info.canon for vid, info in phase.info.items()}
        self.full_index = index_of_map(canonical_map(X, X, A)) if X else ()

    def operand_index(self, eqn: Eqn, atom: Var) -> tuple[str, ...]:
        """The index an equation of this phase reads ``atom`` at (the fusion pass's rule)."""
        if not atom.aval.shape:
            return ()
        if eqn.primitive.kind == REDUCTION:
            return self.full_index
        m = canonical_map(atom.aval.shape, self.domain, self.reduce_axes)
        if m is None:
            raise fi.NotReadable(f"{self.describe(atom)} does not fit the kernel's domain")
        return index_of_map(m)

    def values(self, kb: KernelBuilder, bufs: Buffers) -> Values:
        vals = _PhaseValues(kb, bufs, dict(self.views), dict(self.local), self.producer,
                            self.operand_index, self.describe)
        return vals


class _PhaseValues(Values):
    """``Values`` that also materialise a layout op computed in the phase (a program output
    that is a view) and treat a reduction over no axes as the identity."""

    def value(self, var: Var) -> str:
        found = self.kb.lookup(("value", id(var)))
        if found is not None:
            return found
        eqn = self.producer.get(id(var))
        if eqn is not None and id(var) in self.local and (
                eqn.primitive.kind == "layout" or eqn.primitive.name == "iota"):
            canon = self.local.pop(id(var))
            self.views[id(var)] = eqn
            try:
                name = self.read(var, canon)
            finally:
                self.local[id(var)] = canon
                del self.views[id(var)]
            self.kb.remember(("value", id(var)), name)
            return name
        if eqn is not None and eqn.primitive.kind == REDUCTION and not eqn.params.get("axes"):
            name = self.read(eqn.invars[0], self.operand_index(eqn, eqn.invars[0]))
            self.kb.remember(("value", id(var)), name)
            return name
        return super().value(var)


# ------------------------------------------------------------------ strategy

def choose_strategy(phase: Phase, policy: LaunchPolicy) -> tuple[str, int, int]:
    """(strategy, threads per block, parts per row) for a loop phase."""
    X, A = phase.domain, tuple(phase.reduce_axes)
    if not A:
        return "elementwise", policy.block, 1
    nrows = _prod([X[k] for k in range(len(X)) if k not in A])
    ncol = _prod([X[a] for a in A])
    if ncol <= SHORT_ROW:
        return "thread_per_row", policy.block, 1
    if phase.passes == 1 and (len(X) - 1) not in A and nrows >= policy.block:
        # Reducing leading axes (a bias gradient: sum over the batch): neighbouring
        # threads take neighbouring columns, so each step of their loops reads memory
        # contiguously; a block per column would read with a stride.
        return "thread_per_row", policy.block, 1
    block = min(policy.row, max(32, _next_pow2(ncol)))
    if phase.passes == 1:
        parts = min(max(1, policy.grid // max(nrows, 1)), -(-ncol // (4 * block)))
        if parts > 1:
            return "two_pass", block, parts
    return "block_per_row", block, 1


def emit_phase(mw: ModuleWriter, ctx: PhaseContext, name: str, kind: str,
               policy: LaunchPolicy) -> list[Launch]:
    """Generate the kernel(s) of one loop phase; returns their launches in order."""
    strategy, block, parts = choose_strategy(ctx.phase, policy)
    if strategy == "elementwise":
        return [_elementwise(mw, ctx, name, policy)]
    if strategy == "thread_per_row":
        return [_thread_per_row(mw, ctx, name, kind, policy)]
    if strategy == "two_pass":
        return _two_pass(mw, ctx, name, kind, block, parts, policy)
    return [_block_per_row(mw, ctx, name, kind, block, policy)]


def _info(mw: ModuleWriter, name: str, kind: str, bufs: Buffers, grid: int, block: int,
          domain: Sequence[int], n_eqns: int) -> KernelInfo:
    nbytes = sum(v.aval.size * v.aval.dtype.itemsize for v in bufs.vars)
    return KernelInfo(name, kind, [v.aval.dtype for v in bufs.vars], grid, block, nbytes,
                      _prod(domain) * max(n_eqns, 1))


# ------------------------------------------------------------------ elementwise

def _elementwise(mw: ModuleWriter, ctx: PhaseContext, name: str, policy: LaunchPolicy) -> Launch:
    kb = KernelBuilder(mw)
    bufs = Buffers()
    vals = ctx.values(kb, bufs)
    X = ctx.domain
    n = _prod(X)
    with kb.block(f"for flat in range(cuda.grid(1), {n}, cuda.gridsize(1)):"):
        unravel_into(kb, "flat", X, [f"i{k}" for k in range(len(X))])
        for var in ctx.store:
            vals.store(var, ctx.local[id(var)], vals.value(var))
    grid = policy.blocks_for(n)
    mw.add_kernel(kb.finish(name, list(bufs.names.values())),
                  _info(mw, name, "elementwise", bufs, grid, policy.block, X, len(ctx.phase.eqns)))
    return Launch(name, grid, policy.block, list(bufs.vars))


# ------------------------------------------------------------------ rows

class _Rows:
    """The parts of a row phase the three row strategies share."""

    def __init__(self, ctx: PhaseContext):
        self.ctx = ctx
        phase = ctx.phase
        X, A, K = ctx.domain, ctx.reduce_axes, ctx.row_axes
        self.row_shape = [X[k] for k in K]
        self.col_shape = [X[a] for a in A]
        self.row_names = [f"i{k}" for k in K]
        self.col_names = [f"i{a}" for a in A]
        self.nrows, self.ncol = _prod(self.row_shape), _prod(self.col_shape)
        self.reductions = [e for e in phase.eqns if e.primitive.kind == REDUCTION
                           and e.params.get("axes")]
        self.passes = phase.passes
        self.inner_out = [v for v in ctx.store if phase.info[id(v)].inner]
        self.outer_out = [v for v in ctx.store if not phase.info[id(v)].inner]

    def pass_of(self, red: Eqn) -> int:
        return self.ctx.phase.reduction_pass.get(id(red.outvars[0]), 0)

    def stage_of(self, var: Var) -> int:
        return self.ctx.phase.info[id(var)].stage

    def is_arg(self, red: Eqn) -> bool:
        return red.primitive.name in ("argmax", "argmin")

    def operand_dtype(self, red: Eqn) -> np.dtype:
        return red.invars[0].aval.dtype

    def col_index(self, red: Eqn) -> str:
        """For argmax/argmin: the position along the (single) reduced axis."""
        (axis,) = red.params["axes"]
        return f"i{axis}" if self.ctx.domain[axis] != 1 else "0"

    def init(self, kb: KernelBuilder, red: Eqn) -> tuple[str, str | None]:
        dt = self.operand_dtype(red)
        ident = kb.const(identity_of(red.primitive.name, dt), accumulator_dtype(red.primitive.name, dt))
        acc = kb.fresh("acc")
        kb.line(f"{acc} = {ident}")
        if self.is_arg(red):
            idx = kb.fresh("arg")
            kb.line(f"{idx} = {kb.const(0, np.int64)}")
            return acc, idx
        return acc, None

    def accumulate(self, kb: KernelBuilder, vals: Values, red: Eqn, acc: str, idx: str | None) -> None:
        x = red.invars[0]
        v = vals.read(x, self.ctx.full_index) if not isinstance(x, Literal) else vals.literal(x)
        self.merge(kb, red, acc, idx, v, f"int64({self.col_index(red)})" if idx else None)

    def merge(self, kb, red, acc, idx, v, vi) -> None:
        name, dt = red.primitive.name, self.operand_dtype(red)
        if idx is None:
            kb.line(f"{acc} = {combine(kb, name, acc, v, dt)}")
            return
        with kb.block(f"if {arg_better(kb, name, v, vi, acc, idx, dt)}:"):
            kb.line(f"{acc} = {v}")
            kb.line(f"{idx} = {vi}")

    def result(self, kb: KernelBuilder, vals: Values, red: Eqn, acc: str, idx: str | None,
               outer: int = 0) -> None:
        out = red.outvars[0]
        value = idx if idx is not None else acc
        name = kb.bind(kb.scalar.cast(value, out.aval.dtype), prefix="r")
        vals.bind_value(out, name, outer)

    def shared(self, kb: KernelBuilder, red: Eqn, block: int) -> tuple[str, str | None]:
        dt = accumulator_dtype(red.primitive.name, self.operand_dtype(red))
        sv = kb.fresh("sm")
        kb.line(f"{sv} = cuda.shared.array({block}, {_shared_type(dt)})")
        if self.is_arg(red):
            si = kb.fresh("sm")
            kb.line(f"{si} = cuda.shared.array({block}, int64)")
            return sv, si
        return sv, None

    def tree(self, kb: KernelBuilder, red: Eqn, sv: str, si: str | None, acc: str,
             idx: str | None, block: int) -> None:
        """Combine the block's partial results in shared memory; leaves them in acc/idx."""
        kb.line(f"{sv}[tid] = {acc}")
        if si:
            kb.line(f"{si}[tid] = {idx}")
        kb.line("cuda.syncthreads()")
        half = block // 2
        while half >= 1:
            with kb.block(f"if tid < {half}:"):
                a, b = kb.bind(f"{sv}[tid]"), kb.bind(f"{sv}[tid + {half}]")
                if si:
                    ia, ib = kb.bind(f"{si}[tid]"), kb.bind(f"{si}[tid + {half}]")
                    with kb.block(f"if {arg_better(kb, red.primitive.name, b, ib, a, ia, self.operand_dtype(red))}:"):
                        kb.line(f"{sv}[tid] = {b}")
                        kb.line(f"{si}[tid] = {ib}")
                else:
                    kb.line(f"{sv}[tid] = {combine(kb, red.primitive.name, a, b, self.operand_dtype(red))}")
            kb.line("cuda.syncthreads()")
            half //= 2
        kb.line(f"{acc} = {sv}[0]")
        if si:
            kb.line(f"{idx} = {si}[0]")
        kb.line("cuda.syncthreads()")   # everyone has read [0] before the next row rewrites it

    def store_inner(self, vals: Values, stage: int) -> None:
        for var in self.inner_out:
            if self.stage_of(var) == stage:
                vals.store(var, self.ctx.local[id(var)], vals.value(var))

    def store_outer(self, vals: Values) -> None:
        for var in self.outer_out:
            vals.store(var, self.ctx.local[id(var)], vals.value(var))


def _shared_type(dt: np.dtype) -> str:
    return "uint8" if dt.kind == "b" else type_name(dt)


def _block_per_row(mw, ctx: PhaseContext, name: str, kind: str, block: int,
                   policy: LaunchPolicy) -> Launch:
    rows = _Rows(ctx)
    kb = KernelBuilder(mw)
    bufs = Buffers()
    vals = ctx.values(kb, bufs)
    kb.line("tid = cuda.threadIdx.x")
    smem = {id(r): rows.shared(kb, r, block) for r in rows.reductions}
    with kb.block(f"for row in range(cuda.blockIdx.x, {rows.nrows}, cuda.gridDim.x):"):
        unravel_into(kb, "row", rows.row_shape, rows.row_names)
        for s in range(rows.passes):
            reds = [r for r in rows.reductions if rows.pass_of(r) == s]
            accs = {id(r): rows.init(kb, r) for r in reds}
            with kb.block(f"for col in range(tid, {rows.ncol}, {block}):"):
                unravel_into(kb, "col", rows.col_shape, rows.col_names)
                for r in reds:
                    rows.accumulate(kb, vals, r, *accs[id(r)])
                rows.store_inner(vals, s)
            for r in reds:
                acc, idx = accs[id(r)]
                rows.tree(kb, r, *smem[id(r)], acc, idx, block)
                rows.result(kb, vals, r, acc, idx)
        if rows.outer_out:
            with kb.block("if tid == 0:"):
                rows.store_outer(vals)
    grid = min(policy.grid, max(rows.nrows, 1))
    mw.add_kernel(kb.finish(name, list(bufs.names.values())),
                  _info(mw, name, kind, bufs, grid, block, ctx.domain, len(ctx.phase.eqns)))
    return Launch(name, grid, block, list(bufs.vars))


def _thread_per_row(mw, ctx: PhaseContext, name: str, kind: str, policy: LaunchPolicy) -> Launch:
    rows = _Rows(ctx)
    kb = KernelBuilder(mw)
    bufs = Buffers()
    vals = ctx.values(kb, bufs)
    with kb.block(f"for row in range(cuda.grid(1), {rows.nrows}, cuda.gridsize(1)):"):
        unravel_into(kb, "row", rows.row_shape, rows.row_names)
        for s in range(rows.passes):
            reds = [r for r in rows.reductions if rows.pass_of(r) == s]
            accs = {id(r): rows.init(kb, r) for r in reds}
            with kb.block(f"for col in range({rows.ncol}):"):
                unravel_into(kb, "col", rows.col_shape, rows.col_names)
                for r in reds:
                    rows.accumulate(kb, vals, r, *accs[id(r)])
                rows.store_inner(vals, s)
            for r in reds:
                rows.result(kb, vals, r, *accs[id(r)])
        rows.store_outer(vals)
    grid = policy.blocks_for(rows.nrows)
    mw.add_kernel(kb.finish(name, list(bufs.names.values())),
                  _info(mw, name, kind, bufs, grid, policy.block, ctx.domain, len(ctx.phase.eqns)))
    return Launch(name, grid, policy.block, list(bufs.vars))


def _two_pass(mw, ctx: PhaseContext, name: str, kind: str, block: int, parts: int,
              policy: LaunchPolicy) -> list[Launch]:
    rows = _Rows(ctx)
    # Partial results: one per (row, part) per reduction (+ the index for argmax/argmin).
    partials: dict[int, tuple[Var, Var | None]] = {}
    for r in rows.reductions:
        dt = accumulator_dtype(r.primitive.name, rows.operand_dtype(r))
        pv = Var(ShapedArray((rows.nrows * parts,), dt))
        pi = Var(ShapedArray((rows.nrows * parts,), np.int64)) if rows.is_arg(r) else None
        partials[id(r)] = (pv, pi)

    # Kernel 1: block w takes part (w % parts) of row (w // parts).
    kb = KernelBuilder(mw)
    bufs = Buffers()
    vals = ctx.values(kb, bufs)
    kb.line("tid = cuda.threadIdx.x")
    smem = {id(r): rows.shared(kb, r, block) for r in rows.reductions}
    with kb.block(f"for work in range(cuda.blockIdx.x, {rows.nrows * parts}, cuda.gridDim.x):"):
        kb.line(f"row = work // {parts}")
        kb.line(f"part = work % {parts}")
        unravel_into(kb, "row", rows.row_shape, rows.row_names)
        accs = {id(r): rows.init(kb, r) for r in rows.reductions}
        with kb.block(f"for col in range(part * {block} + tid, {rows.ncol}, {parts * block}):"):
            unravel_into(kb, "col", rows.col_shape, rows.col_names)
            for r in rows.reductions:
                rows.accumulate(kb, vals, r, *accs[id(r)])
            rows.store_inner(vals, 0)
        for r in rows.reductions:
            acc, idx = accs[id(r)]
            rows.tree(kb, r, *smem[id(r)], acc, idx, block)
            pv, pi = partials[id(r)]
            with kb.block("if tid == 0:"):
                kb.line(f"{bufs.param(pv)}[work] = {acc}")
                if pi is not None:
                    kb.line(f"{bufs.param(pi)}[work] = {idx}")
    name1 = f"{name}_partials"
    grid1 = min(policy.grid, rows.nrows * parts)
    mw.add_kernel(kb.finish(name1, list(bufs.names.values())),
                  _info(mw, name1, kind, bufs, grid1, block, ctx.domain, len(ctx.phase.eqns)))
    first = Launch(name1, grid1, block, list(bufs.vars),
                   scratch=[v for pair in partials.values() for v in pair if v is not None])

    # Kernel 2: block per row combines its parts, then finishes the row's epilogue.
    kb = KernelBuilder(mw)
    bufs = Buffers()
    vals = ctx.values(kb, bufs)
    block2 = min(block, max(32, _next_pow2(parts)))
    kb.line("tid = cuda.threadIdx.x")
    smem = {id(r): rows.shared(kb, r, block2) for r in rows.reductions}
    with kb.block(f"for row in range(cuda.blockIdx.x, {rows.nrows}, cuda.gridDim.x):"):
        unravel_into(kb, "row", rows.row_shape, rows.row_names)
        accs = {id(r): rows.init(kb, r) for r in rows.reductions}
        with kb.block(f"for q in range(tid, {parts}, {block2}):"):
            for r in rows.reductions:
                acc, idx = accs[id(r)]
                pv, pi = partials[id(r)]
                v = kb.bind(f"{bufs.param(pv)}[row * {parts} + q]")
                vi = kb.bind(f"{bufs.param(pi)}[row * {parts} + q]") if pi is not None else None
                rows.merge(kb, r, acc, idx, v, vi)
        for r in rows.reductions:
            acc, idx = accs[id(r)]
            rows.tree(kb, r, *smem[id(r)], acc, idx, block2)
            rows.result(kb, vals, r, acc, idx)
        if rows.outer_out:
            with kb.block("if tid == 0:"):
                rows.store_outer(vals)
    name2 = f"{name}_finish"
    grid2 = min(policy.grid, max(rows.nrows, 1))
    mw.add_kernel(kb.finish(name2, list(bufs.names.values())),
                  _info(mw, name2, kind, bufs, grid2, block2, (rows.nrows, parts), 1))
    return [first, Launch(name2, grid2, block2, list(bufs.vars))]
