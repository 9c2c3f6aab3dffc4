"""Generate the numba source of one executable from a ``FusedProgram``.

The module holds one ``@njit`` *entry* function per segment that runs the segment's
kernels (groups) in order: one call from Python runs the whole segment in machine code.
Each kernel is a block of the entry under a comment header naming what it fuses
(``# k0_dot_add_max: matmul kernel: ...``); only a kernel with parallel loops is a
function of its own (``parallel=True``), called from the entry. One numba function per
segment is what keeps compiling cheap: numba types, lowers, wraps and optimises every
function separately, and optimises a callee again inside its caller. A program is one
segment unless it contains fallback equations (run in Python through the reference
implementation), which split it.

Calling convention: an entry takes every array it touches as an argument, in the
order inputs, outputs, temporaries. The caller allocates outputs (fresh per call) and
temporaries (reused from a pool across calls), so the entry allocates nothing large
itself; a later memory planner can hand it donated or pooled buffers instead. Inputs are
C-contiguous and read-only; entries carry explicit signatures, so they compile (or load
from numba's cache) when the module is imported.

Shapes are static, so loops have constant bounds; a loop phase runs its rows with
``prange`` only when it is large and the program calls no BLAS (BASELINES.md: OpenMP
workers and OpenBLAS threads fight for the two cores after every BLAS call).
"""
from __future__ import annotations

import contextlib
import dataclasses
import re

import numpy as np

from ...core.ir import Eqn, Literal, Var
from ...core.primitive import ELEMENTWISE
from ...passes import fusion as fu
from ...passes import fusion_index as fi
from . import scalar

# The parallel policy (DESIGN.md, Threads). A loop phase runs with prange only when its
# program calls no BLAS (OpenMP workers and BLAS workers are never busy in one program) and
# its *work* is large: elements x the summed cost of its operations (1 per arithmetic op,
# EXPENSIVE_OP_COST per transcendental). Measured here (bench/RESULTS.md): on a quiet
# machine prange gains up to ~2x on 2 cores, but when other processes keep the cores busy
# numba's OpenMP workers spin and a prange loop costs 12-20 ms whatever its size (relu over
# 2^18 floats: 12 ms parallel, 0.4 ms serial; 2^22: 16.5 vs 13.4 ms). So only loops whose
# serial time is already about that long go parallel: PARALLEL_MIN_WORK units is about
# 10 ms serial here, and no loop under PARALLEL_MIN_ELEMENTS elements is ever parallel.
PARALLEL_MIN_WORK = 1 << 23
PARALLEL_MIN_ELEMENTS = 1 << 19
EXPENSIVE_OP_COST = 8
EXPENSIVE_OPS = frozenset({
    "exp", "exp2", "expm1", "log", "log1p", "tanh", "logistic", "erf", "erfc", "erf_inv",
    "pow", "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "asinh",
    "acosh", "atanh", "lgamma", "digamma", "cbrt", "logaddexp"})
# Row kernels keep expensive values that later passes of the row need in a row buffer of
# at most this many elements (16 KiB of float32: stays in L1) instead of recomputing them.
ROW_CACHE_MAX = 4096
# Alignment (bytes) of each array in an entry's temp buffer.
TEMP_ALIGN = 64
# Leading loops are collapsed into one parallel loop until it has this many iterations.
PARALLEL_MIN_ITERATIONS = 16
# Bumped whenever generated code changes meaning; part of the disk-cache key.
CODEGEN_VERSION = 12


@dataclasses.dataclass(eq=False)
class KernelSegment:
    """Consecutive kernels run by one entry function."""

    entry: str
    groups: list[fu.Group]
    inputs: list[Var]
    outputs: list[Var]
    temps: list[Var]
    # Bytes of the one uint8 buffer the entry takes last (0: none): its temporaries and
    # scratch arrays are views into it (``_Generator.entry``).
    temp_bytes: int = 0


@dataclasses.dataclass(eq=False)
class FallbackSegment:
    """One equation run through its reference implementation, in Python."""

    group: fu.Group

    @property
    def eqn(self) -> Eqn:
        return self.group.eqns[0]


@dataclasses.dataclass(eq=False)
class ModulePlan:
    """The generated source and how to call it."""

    source: str
    segments: list
    uses_blas: bool
    # Variables whose buffer an intermediate of their kernel is computed in first
    # (shared_buffers): never written into a donated input's buffer.
    buffer_hosts: set[int] = dataclasses.field(default_factory=set)


def is_blas_dot(eqn: Eqn) -> bool:
    """Whether this dot_general lowers to BLAS (blas.gemm) rather than explicit loops."""
    lhs, rhs = eqn.invars
    out = eqn.outvars[0].aval.dtype
    return (lhs.aval.dtype == rhs.aval.dtype == out and np.dtype(out) in
            (np.dtype(np.float32), np.dtype(np.float64)))


def _reads(phase, a: Var) -> bool:
    """Whether a phase reads variable ``a`` (from memory, in an equation or through a view)."""
    if id(a) in phase.reads:
        return True
    return any(any(v is a for v in e.invars) for e in list(phase.eqns) + list(phase.views.values()))


def writes_in_place(group: fu.Group, a: Var, o: Var) -> bool:
    """Whether kernel ``group`` may write ``o`` over ``a``'s buffer: the loop phase that
    computes ``o`` is the last phase to read ``a``, and there both are read and written
    only at one shared loop index, so every load of an iteration precedes its stores: an
    elementwise loop (no reductions, no views of ``a``) over exactly their shape, every axis
    longer than 1 (size-1 axes have no loop; rank-0 values are computed ahead of it)."""
    phases = group.phases
    writer = next((i for i, p in enumerate(phases)
                   if any(v is o for e in p.eqns for v in e.outvars)), None)
    if writer is None or any(_reads(p, a) for p in phases[writer + 1:]):
        return False
    p = phases[writer]
    if p.kind != "loop" or p.reduce_axes or tuple(p.domain) != tuple(a.aval.shape) \
            or tuple(o.aval.shape) != tuple(p.domain) or not p.domain or min(p.domain) < 2:
        return False
    if any(any(v is a for v in e.invars) for e in p.views.values()):
        return False
    for e in p.eqns:
        if any(v is a for v in e.invars) and e.primitive.kind != ELEMENTWISE:
            return False
        if any(v is o for v in e.outvars) and e.primitive.kind != ELEMENTWISE:
            return False
    return True


def shared_buffers(fused: fu.FusedProgram) -> dict[int, Var]:
    """Intermediates that live inside one kernel and can be computed in the buffer of a
    value the kernel writes later: {id of the intermediate: the variable whose buffer it
    uses}. A matmul's raw product, for one, goes straight into the output its epilogue
    (bias, activation) then rewrites in place: no temporary, half the epilogue's memory
    traffic. Each buffer serves one intermediate; chains resolve in ``buffer_name``."""
    shared: dict[int, Var] = {}
    for g in fused.groups:
        if g.kind == fu.FALLBACK_GROUP:
            continue
        taken: set[int] = set()
        for a in g.internal:
            for o in list(g.outputs) + list(g.internal):
                if o is a or id(o) in taken or o.aval.shape != a.aval.shape or \
                        o.aval.dtype != a.aval.dtype:
                    continue
                if writes_in_place(g, a, o):
                    shared[id(a)] = o
                    taken.add(id(o))
                    break
    return shared


class _Writer:
    def __init__(self):
        self.lines: list[str] = []
        self.depth = 0

    def __call__(self, text: str) -> None:
        self.lines.append("    " * self.depth + text if text else "")

    @contextlib.contextmanager
    def block(self, header: str):
        self(header)
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    @contextlib.contextmanager
    def counted_loops(self, names, sizes):
        """``for name in range(size):`` nested in order, closed on exit."""
        for name, size in zip(names, sizes):
            self(f"for {name} in range({size}):")
            self.depth += 1
        try:
            yield
        finally:
            self.depth -= len(names)

    def text(self) -> str:
        return "\n".join(self.lines)


class _Reads(fi.ReadContext):
    """How a kernel reads variables: computed scalars by name, arrays by index."""

    def __init__(self, gen: "_Generator", phase: fu.Phase | None, exclude: Var | None = None):
        self.gen = gen
        self.phase = phase
        self.exclude = exclude
        self.touched: set[int] = set()

    def _local(self, var: Var) -> bool:
        return (self.phase is not None and id(var) in self.phase.info
                and var is not self.exclude)

    def view_eqn(self, var: Var) -> Eqn | None:
        f = self.gen.fused
        if not fu.is_view_var(var, self._local(var), f.view_ids, f.placement):
            return None
        return f.producer[id(var)]

    def leaf(self, var: Var, idx) -> str:
        if self._local(var):
            assert tuple(idx) == self.phase.info[id(var)].canon, (var, idx)
            self.touched.add(id(var))
            return self.gen.scalar_name(var)
        return self.gen.element(var, idx)

    def literal(self, lit: Literal) -> str:
        return scalar.literal_atom(lit)

    def cast_index(self, expr: str, dtype) -> str:
        return scalar.cast(expr, dtype)


_SIMPLE = re.compile(r"^(?:[A-Za-z_]\w*|np\.\w+\(-?[\w.+-]*\))$")


def _simple(expr: str) -> bool:
    """A name or a typed literal: cheap to repeat in an expression."""
    return bool(_SIMPLE.match(expr))


class _Generator:
    def __init__(self, fused: fu.FusedProgram):
        self.fused = fused
        self.names = fused.names
        self.tmp = 0
        self.uses_blas = any(e.primitive.name == "dot_general" and is_blas_dot(e)
                             for g in fused.groups for e in g.eqns)
        # While an entry's body is generated: the bytes of its temp buffer used so far
        # (scratch arrays are carved from it); None in a separate kernel function.
        self.temp_used: int | None = None
        # Intermediates computed in another variable's buffer (shared_buffers); none in
        # a profiling module, whose kernels are called with every buffer of their own.
        self.shared: dict[int, Var] = {}

    def carve(self, shape, dtype) -> str | None:
        """An expression for a scratch array of ``shape``/``dtype`` in the entry's temp
        buffer (one argument instead of one per array: numba unboxes, types and wraps every
        argument), or None outside an entry."""
        if self.temp_used is None:
            return None
        shape = tuple(int(d) for d in shape)
        off = self.temp_used
        n = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        # At least one block even for an empty array: the entry then has a buffer to view.
        self.temp_used += max(1, -(-n // TEMP_ALIGN)) * TEMP_ALIGN
        return f"rt.carve(tbuf, {off}, {shape!r}, {scalar.np_type(dtype)})"

    def scratch(self, w, name: str, shape, dtype) -> None:
        """``name = <uninitialised array>``: from the temp buffer, else ``np.empty``."""
        expr = self.carve(shape, dtype)
        if expr is None:
            expr = f"np.empty({tuple(int(d) for d in shape)!r}, {scalar.np_type(dtype)})"
        w(f"{name} = {expr}")

    # -- naming
    def buffer_name(self, var: Var) -> str:
        while id(var) in self.shared:
            var = self.shared[id(var)]
        return f"b_{self.names[id(var)]}"

    def scalar_name(self, var: Var) -> str:
        return f"v_{self.names[id(var)]}"

    def fresh(self, prefix: str = "t") -> str:
        self.tmp += 1
        return f"{prefix}{self.tmp}"

    def element(self, var: Var, idx) -> str:
        if not idx:
            return f"{self.buffer_name(var)}[()]"
        return f"{self.buffer_name(var)}[{', '.join(idx)}]"

    def read(self, atom, idx, ctx: _Reads) -> str:
        return fi.read_expr(atom, idx, ctx)

    # -- parallel policy
    def parallel(self, phase: fu.Phase) -> bool:
        """Whether ``phase`` runs its loops with prange (the policy above)."""
        n = int(np.prod(phase.domain, dtype=np.int64)) if phase.domain else 1
        if self.uses_blas or n < PARALLEL_MIN_ELEMENTS:
            return False
        cost = sum(EXPENSIVE_OP_COST if e.primitive.name in EXPENSIVE_OPS else 1
                   for e in phase.eqns)
        return n * max(cost, 1) >= PARALLEL_MIN_WORK

    # -- loops
    @contextlib.contextmanager
    def loops(self, w: _Writer, axes, domain, parallel: bool, serial_axes=()):
        """Nested loops over ``axes`` of ``domain`` (size-1 axes need none: their index is 0).

        With ``parallel``, the leading loops (none of ``serial_axes``) are collapsed into one
        ``prange`` loop of at least PARALLEL_MIN_ITERATIONS iterations where possible."""
        axes = [a for a in axes if domain[a] != 1]
        opened = 0
        if parallel and axes and axes[0] not in serial_axes:
            c, n = 0, 1
            while c < len(axes) and n < PARALLEL_MIN_ITERATIONS and axes[c] not in serial_axes:
                n *= domain[axes[c]]
                c += 1
            lead = axes[:c]
            if len(lead) == 1:
                w(f"for i{lead[0]} in prange({domain[lead[0]]}):")
                w.depth += 1
            else:
                t = self.fresh("p")
                w(f"for {t} in prange({n}):")
                w.depth += 1
                for k, e in zip(lead, fi.unravel(t, [domain[a] for a in lead])):
                    w(f"i{k} = {e}")
            opened = 1
            axes = axes[c:]
        for a in axes:
            w(f"for i{a} in range({domain[a]}):")
            w.depth += 1
            opened += 1
        try:
            yield
        finally:
            w.depth -= opened

    # -- statements
    def bind(self, w: _Writer, expr: str) -> str:
        if _simple(expr):
            return expr
        t = self.fresh()
        w(f"{t} = {expr}")
        return t

    def eqn_statement(self, w: _Writer, eqn: Eqn, phase: fu.Phase) -> set[int]:
        """Emit ``v_out = ...`` for an elementwise or materialised layout equation."""
        out = eqn.outvars[0]
        info = phase.info[id(out)]
        prim = eqn.primitive
        if prim.kind == "layout" or prim.name == "iota":
            ctx = _Reads(self, phase, exclude=out)
            expr = fi.read_view_eqn(eqn, info.canon, ctx)
        else:
            ctx = _Reads(self, phase)
            args = []
            for a in eqn.invars:
                m = fu.canonical_map(a.aval.shape, phase.domain, phase.reduce_axes)
                e = self.read(a, fu.index_of_map(m), ctx)
                if prim.name in scalar.MULTI_USE or prim.name == "convert_element_type":
                    e = self.bind(w, e)
                elif not _simple(e) and len(e) > 60:
                    e = self.bind(w, e)
                args.append(e)
            expr = scalar.elementwise_expr(eqn, args)
        w(f"{self.scalar_name(out)} = {expr}")
        return ctx.touched

    # ------------------------------------------------------------------ loop phases
    def loop_phase(self, w: _Writer, group: fu.Group, phase: fu.Phase) -> None:
        X, A, K = phase.domain, phase.reduce_axes, phase.row_axes
        written = {id(v) for v in group.outputs + group.internal}
        reds = [e for e in phase.eqns if e.primitive.kind == "reduction"]
        others = [e for e in phase.eqns if e.primitive.kind != "reduction"]
        info = phase.info
        outv = lambda e: e.outvars[0]  # noqa: E731
        # Values needing no loop index (rank 0, from rank-0 values only) are computed first.
        deps = self._deps(phase, phase.eqns)
        pre, pre_vars = [], set()
        for e in others:
            v = info[id(outv(e))]
            if not v.inner and v.canon == () and v.stage == 0 and deps[id(outv(e))] <= pre_vars:
                pre.append(e)
                pre_vars.add(id(outv(e)))
        pre_ids = {id(e) for e in pre}
        outer = [e for e in others if not info[id(outv(e))].inner and id(e) not in pre_ids]
        inner = [e for e in others if info[id(outv(e))].inner]
        par = self.parallel(phase)
        w(f"# loop over [{','.join(map(str, X))}]" + (f", reducing axes {A}" if A else "")
          + (f", {phase.passes} passes per row" if phase.passes > 1 else "")
          + (" (parallel)" if par else ""))
        for e in pre:
            self.eqn_statement(w, e, phase)
        for e in pre:
            if id(outv(e)) in written:
                w(f"{self.element(outv(e), ())} = {self.scalar_name(outv(e))}")
        trailing = fu._is_trailing(A, len(X))
        if A and not trailing:
            self._memory_order(w, phase, reds, outer, inner, written, par)
        else:
            self._row_order(w, phase, reds, outer, inner, written, par)

    def _deps(self, phase: fu.Phase, eqns) -> dict[int, set[int]]:
        """For each equation output: the local values its expression reads (dry run)."""
        deps = {}
        for e in eqns:
            scratch = _Writer()
            if e.primitive.kind == "reduction":
                ctx = _Reads(self, phase)
                self.read(e.invars[0], fu.index_of_map(fu.canonical_map(phase.domain, phase.domain,
                                                                       phase.reduce_axes)), ctx)
                deps[id(e.outvars[0])] = ctx.touched
            else:
                deps[id(e.outvars[0])] = self.eqn_statement(scratch, e, phase)
        return deps

    def _row_order(self, w, phase, reds, outer, inner, written, par) -> None:
        X, A, K = phase.domain, phase.reduce_axes, phase.row_axes
        info = phase.info
        deps = self._deps(phase, phase.eqns)
        inner_ids = {id(e.outvars[0]): e for e in inner}
        n_rows = int(np.prod([X[k] for k in K], dtype=np.int64)) if K else 1
        passes = []     # per pass: (its reductions, the inner values it writes)
        for p in range(phase.passes):
            passes.append(([r for r in reds if phase.reduction_pass[id(r.outvars[0])] == p],
                           [e for e in inner if info[id(e.outvars[0])].stage == p
                            and id(e.outvars[0]) in written]))

        def needed_in(p: int, cached: dict[int, int]) -> set[int]:
            """Inner values pass ``p`` computes; a value in ``cached`` from an earlier
            pass is read back, not recomputed from its operands."""
            preds, writes = passes[p]
            stack = [id(r.invars[0]) for r in preds if isinstance(r.invars[0], Var)]
            stack += [id(e.outvars[0]) for e in writes]
            for r in preds:
                stack.extend(deps[id(r.outvars[0])])
            needed: set[int] = set()
            while stack:
                vid = stack.pop()
                if vid in needed or vid not in inner_ids:
                    continue
                needed.add(vid)
                if cached.get(vid, p) >= p:
                    stack.extend(deps[vid])
            return needed
        cached = self._row_cache(phase, inner, [needed_in(p, {}) for p in range(phase.passes)])
        row_buffers = {vid: self.fresh("rc") for vid in cached}
        par_rows = par and n_rows > 1

        def allocate_row_buffers(per_thread: bool):
            for vid, name in row_buffers.items():
                dtype = inner_ids[vid].outvars[0].aval.dtype
                if per_thread:
                    # numba hoists np.empty out of the prange loop: once per worker thread
                    w(f"{name} = np.empty({X[A[0]]}, {scalar.np_type(dtype)})")
                else:
                    self.scratch(w, name, (X[A[0]],), dtype)
        if not par_rows:
            allocate_row_buffers(False)
        with self.loops(w, K, X, par_rows):
            if par_rows:
                allocate_row_buffers(True)
            for e in outer:
                if info[id(e.outvars[0])].stage == 0:
                    self.eqn_statement(w, e, phase)
            for p in range(phase.passes):
                preds, writes = passes[p]
                needed = needed_in(p, cached)
                if preds or needed:
                    if phase.passes > 1:
                        w(f"# pass {p}")
                    for r in preds:
                        self._init_acc(w, r)
                    with self.loops(w, A, X, False):
                        for e in inner:
                            vid = id(e.outvars[0])
                            if vid not in needed:
                                continue
                            if cached.get(vid, p) < p:
                                w(f"{self.scalar_name(e.outvars[0])} = {row_buffers[vid]}[i{A[0]}]")
                                continue
                            self.eqn_statement(w, e, phase)
                            if vid in cached:
                                w(f"{row_buffers[vid]}[i{A[0]}] = {self.scalar_name(e.outvars[0])}")
                        for r in preds:
                            self._accumulate(w, r, phase)
                        for e in writes:
                            v = e.outvars[0]
                            w(f"{self.element(v, info[id(v)].canon)} = {self.scalar_name(v)}")
                    for r in preds:
                        self._finish_acc(w, r)
                for e in outer:
                    if info[id(e.outvars[0])].stage == p + 1:
                        self.eqn_statement(w, e, phase)
            for e in list(reds) + outer:
                v = e.outvars[0]
                if id(v) in written:
                    w(f"{self.element(v, info[id(v)].canon)} = {self.scalar_name(v)}")

    def _row_cache(self, phase: fu.Phase, inner: list[Eqn], needed: list[set[int]]) -> dict[int, int]:
        """Expensive per-element values (exp, log, tanh...) that several passes of a row
        need: {value id: the pass that computes them}. That pass also stores them in a row
        buffer (L1-resident: at most ROW_CACHE_MAX elements) for the later passes to read,
        instead of computing them again (softmax's backward needs exp(z - max) three times).
        Only for rows along one axis."""
        X, A = phase.domain, phase.reduce_axes
        if len(A) != 1 or not 1 < X[A[0]] <= ROW_CACHE_MAX:
            return {}
        cached = {}
        for e in inner:
            vid = id(e.outvars[0])
            users = [p for p, n in enumerate(needed) if vid in n]
            if e.primitive.name in EXPENSIVE_OPS and len(users) > 1:
                cached[vid] = users[0]
        return cached

    def _init_acc(self, w, r: Eqn) -> None:
        v = r.outvars[0]
        name = r.primitive.name
        if name in ("argmax", "argmin"):
            w(f"m_{self.names[id(v)]} = {scalar.literal(0, r.invars[0].aval.dtype)}")
            w(f"{self.scalar_name(v)} = -1")
        else:
            w(f"{self.scalar_name(v)} = {scalar.reduction_init(name, v.aval.dtype)}")

    def _accumulate(self, w, r: Eqn, phase: fu.Phase, acc: str | None = None,
                    best: str | None = None) -> None:
        v = r.outvars[0]
        name = r.primitive.name
        ctx = _Reads(self, phase)
        x = self.read(r.invars[0], fu.index_of_map(fu.canonical_map(phase.domain, phase.domain,
                                                                   phase.reduce_axes)), ctx)
        acc = acc or self.scalar_name(v)
        if name in ("argmax", "argmin"):
            x = self.bind(w, x)
            best = best or f"m_{self.names[id(v)]}"
            (axis,) = r.params["axes"]
            j = f"i{axis}" if phase.domain[axis] != 1 else "0"
            cond = scalar.arg_better(name, r.invars[0].aval.dtype, best, x)
            with w.block(f"if {acc} < 0 or {cond}:"):
                w(f"{best} = {x}")
                w(f"{acc} = {j}")
        else:
            w(f"{acc} = {scalar.reduction_combine(name, v.aval.dtype, acc, x, reorderable=True)}")

    def _finish_acc(self, w, r: Eqn) -> None:
        v = r.outvars[0]
        if r.primitive.name in ("argmax", "argmin"):
            w(f"{self.scalar_name(v)} = {scalar.cast(self.scalar_name(v), v.aval.dtype)}")

    def _memory_order(self, w, phase, reds, outer, inner, written, par) -> None:
        """A single-pass reduction over non-trailing axes: loop in memory order and keep one
        accumulator per row in an array (a column sum reads rows contiguously)."""
        X, A, K = phase.domain, phase.reduce_axes, phase.row_axes
        info = phase.info
        kshape = tuple(X[k] for k in K)
        accs = {}
        for r in reds:
            v = r.outvars[0]
            name = self.names[id(v)]
            kidx = info[id(v)].canon
            arg = r.primitive.name in ("argmax", "argmin")
            if id(v) in written and not arg:
                acc = self.buffer_name(v)
            else:
                acc = f"a_{name}"
                self.scratch(w, acc, kshape, np.int64 if arg else v.aval.dtype)
            best = None
            if arg:
                best = f"m_{name}"
                self.scratch(w, best, kshape, r.invars[0].aval.dtype)
            accs[id(v)] = (acc, best, kidx)
        n_rows = int(np.prod(kshape, dtype=np.int64)) if kshape else 1
        kpar = par and n_rows > 1
        with self.loops(w, K, X, kpar):
            for r in reds:
                acc, best, kidx = accs[id(r.outvars[0])]
                a = f"{acc}[{', '.join(kidx)}]" if kidx else f"{acc}[()]"
                if best is not None:
                    w(f"{a} = -1")
                else:
                    w(f"{a} = {scalar.reduction_init(r.primitive.name, r.outvars[0].aval.dtype)}")
        # Parallel over axis 0 only if it is not reduced (rows then own their accumulators).
        with self.loops(w, range(len(X)), X, par, serial_axes=A):
            for e in outer:
                if info[id(e.outvars[0])].stage == 0:
                    self.eqn_statement(w, e, phase)
            for e in inner:
                self.eqn_statement(w, e, phase)
            for r in reds:
                acc, best, kidx = accs[id(r.outvars[0])]
                ai = f"{acc}[{', '.join(kidx)}]" if kidx else f"{acc}[()]"
                bi = (f"{best}[{', '.join(kidx)}]" if kidx else f"{best}[()]") if best else None
                self._accumulate(w, r, phase, acc=ai, best=bi)
            for e in inner:
                v = e.outvars[0]
                if id(v) in written:
                    w(f"{self.element(v, info[id(v)].canon)} = {self.scalar_name(v)}")
        need_epilogue = any(info[id(e.outvars[0])].stage > 0 for e in outer) or any(
            id(e.outvars[0]) in written for e in outer) or any(
            r.primitive.name in ("argmax", "argmin") and id(r.outvars[0]) in written for r in reds) \
            or any(accs[id(r.outvars[0])][0] != self.buffer_name(r.outvars[0]) and
                   id(r.outvars[0]) in written for r in reds)
        if not need_epilogue:
            return
        with self.loops(w, K, X, kpar):
            for r in reds:
                v = r.outvars[0]
                acc, best, kidx = accs[id(v)]
                a = f"{acc}[{', '.join(kidx)}]" if kidx else f"{acc}[()]"
                w(f"{self.scalar_name(v)} = {scalar.cast(a, v.aval.dtype) if best else a}")
            for e in outer:
                self.eqn_statement(w, e, phase)
            for e in list(reds) + outer:
                v = e.outvars[0]
                if id(v) in written and not (e in reds and accs[id(v)][0] == self.buffer_name(v)):
                    w(f"{self.element(v, info[id(v)].canon)} = {self.scalar_name(v)}")

    # ------------------------------------------------------------------ matmul
    def dot_phase(self, w: _Writer, eqn: Eqn) -> None:
        lhs, rhs = eqn.invars
        out = eqn.outvars[0]
        (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
        lf = tuple(a for a in range(lhs.aval.ndim) if a not in lc and a not in lb)
        rf = tuple(a for a in range(rhs.aval.ndim) if a not in rc and a not in rb)
        size = lambda var, axes: int(np.prod([var.aval.shape[a] for a in axes], dtype=np.int64))  # noqa
        B, M, N, Kc = size(lhs, lb), size(lhs, lf), size(rhs, rf), size(lhs, lc)
        o = self.buffer_name(out)
        w(f"# {self.fused.describe_eqn(eqn)}")
        if not is_blas_dot(eqn):
            self._dot_loops(w, eqn, lb, lf, lc, rb, rc, rf)
            return
        if B * M * N == 0:
            return
        if Kc == 0:
            w(f"{o}[...] = {scalar.literal(0, out.aval.dtype)}" if out.aval.ndim else
              f"{o}[()] = {scalar.literal(0, out.aval.dtype)}")
            return
        if B == 1:
            L = self._operand(w, lhs, [lf, lc], (M, Kc))
            R = self._operand(w, rhs, [rc, rf], (Kc, N))
            O = o if out.aval.shape == (M, N) else f"{o}.reshape(({M}, {N}))"
            # gemm_static: the cfunc call only (gemm's dispatcher IR would be linked into
            # the entry, and optimised and compiled there, once per operand signature).
            w(f"blas.gemm_static({L}, {R}, {O})")
        else:
            L = self._operand(w, lhs, [lb, lf, lc], (B, M, Kc))
            R = self._operand(w, rhs, [rb, rc, rf], (B, Kc, N))
            o3 = self.fresh("o")   # unique: kernels share the entry's namespace
            w(f"{o3} = {o}.reshape(({B}, {M}, {N}))")
            with w.block(f"for bb in range({B}):"):
                w(f"blas.gemm_static({L}[bb], {R}[bb], {o3}[bb])")

    def _operand(self, w, var, groups, sizes) -> str:
        """``var`` as an array whose axes are the axis ``groups`` merged (sizes ``sizes``):
        a reshaped / transposed view of a contiguous array where possible (BLAS reads
        transposed operands in place), else a contiguous copy read through index maps."""
        f = self.fused
        perm = list(range(var.aval.ndim))
        root = var
        while isinstance(root, Var) and fu.is_view_var(root, False, f.view_ids, f.placement) and \
                f.producer[id(root)].primitive.name == "transpose":
            e = f.producer[id(root)]
            p = e.params["permutation"]
            perm = [p[a] for a in perm]
            root = e.invars[0]
        if isinstance(root, Var) and not fu.is_view_var(root, False, f.view_ids, f.placement):
            rshape = root.aval.shape
            pos = {a: i for i, a in enumerate(a for a in range(len(rshape)) if rshape[a] != 1)}
            rgroups = [[pos[perm[a]] for a in g if rshape[perm[a]] != 1] for g in groups]
            if all(rg == list(range(rg[0], rg[0] + len(rg))) for rg in rgroups if rg):
                runs = sorted((rg[0], i) for i, rg in enumerate(rgroups) if rg)
                order = [i for _, i in runs] + [i for i, rg in enumerate(rgroups) if not rg]
                in_order = tuple(sizes[i] for i in order)
                expr = self.buffer_name(root)
                if in_order != tuple(rshape):
                    expr = f"{expr}.reshape({in_order})"
                inv = [order.index(i) for i in range(len(groups))]
                if inv != sorted(inv):
                    expr = f"{expr}.T" if len(groups) == 2 else \
                        f"np.transpose({expr}, {tuple(inv)})"
                if expr == self.buffer_name(root):
                    return expr
                t = self.fresh("op")
                w(f"{t} = {expr}")
                return t
        # Copy into a contiguous array, reading through any layout ops.
        ctx = _Reads(self, None)
        t = self.fresh("op")
        self.scratch(w, t, sizes, var.aval.dtype)
        cs = [f"c{k}" for k in range(len(groups))]
        with w.counted_loops(cs, sizes):
            idx = ["0"] * var.aval.ndim
            for g, c in zip(groups, cs):
                for a, e in zip(g, fi.unravel(c, [var.aval.shape[a] for a in g])):
                    idx[a] = e
            w(f"{t}[{', '.join(cs)}] = {self.read(var, idx, ctx)}")
        return t

    def _dot_loops(self, w, eqn, lb, lf, lc, rb, rc, rf) -> None:
        """A dot_general BLAS cannot do (integers, bool, mixed precision): explicit loops,
        accumulating as the reference does."""
        lhs, rhs = eqn.invars
        out = eqn.outvars[0]
        odt, idt = np.dtype(out.aval.dtype), np.dtype(lhs.aval.dtype)
        ctx = _Reads(self, None)
        if idt.kind == "b":
            acc_dt = np.dtype(np.int32)
        else:
            acc_dt = odt if odt.kind == idt.kind else idt
        shape = out.aval.shape
        nb_, nl = len(lb), len(lf)
        csizes = [lhs.aval.shape[a] for a in lc]
        acc = self.fresh("acc")   # typed per kernel: unique in the entry's namespace
        with self.loops(w, range(len(shape)), shape, False):
            w(f"{acc} = {scalar.literal(0, acc_dt)}")
            cvars = [f"c{j}" for j in range(len(lc))]
            with w.counted_loops(cvars, csizes):
                li, ri = ["0"] * lhs.aval.ndim, ["0"] * rhs.aval.ndim
                for k, a in enumerate(lb):
                    li[a] = f"i{k}" if shape[k] != 1 else "0"
                for k, a in enumerate(rb):
                    ri[a] = f"i{k}" if shape[k] != 1 else "0"
                for k, a in enumerate(lf):
                    li[a] = f"i{nb_ + k}" if shape[nb_ + k] != 1 else "0"
                for k, a in enumerate(rf):
                    ri[a] = f"i{nb_ + nl + k}" if shape[nb_ + nl + k] != 1 else "0"
                for cv, a, b, n in zip(cvars, lc, rc, csizes):
                    li[a] = cv if n != 1 else "0"
                    ri[b] = cv if n != 1 else "0"
                x = scalar.cast(self.read(lhs, li, ctx), acc_dt) if idt != acc_dt else self.read(lhs, li, ctx)
                y = scalar.cast(self.read(rhs, ri, ctx), acc_dt) if idt != acc_dt else self.read(rhs, ri, ctx)
                prod = f"{x} * {y}"
                if acc_dt.kind == "f":
                    w(f"{acc} = {acc} + {prod}")
                else:
                    w(f"{acc} = {scalar.cast(f'{acc} + {prod}', acc_dt)}")
            idx = [f"i{k}" if shape[k] != 1 else "0" for k in range(len(shape))]
            res = scalar.cast(f"{acc} > 0", odt) if idt.kind == "b" else scalar.cast(acc, odt)
            w(f"{self.element(out, idx)} = {res}")

    # ------------------------------------------------------------------ opaque ops
    def opaque_phase(self, w: _Writer, eqn: Eqn) -> None:
        name = eqn.primitive.name
        w(f"# {self.fused.describe_eqn(eqn)}")
        if name in ("cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp"):
            self._cumulative(w, eqn)
        elif name == "gather":
            self._gather(w, eqn)
        elif name == "scatter":
            self._scatter(w, eqn)
        elif name == "dynamic_slice":
            self._dynamic_slice(w, eqn)
        elif name == "dynamic_update_slice":
            self._dynamic_update_slice(w, eqn)
        else:   # pragma: no cover - supports() keeps these out
            raise NotImplementedError(name)

    def _cumulative(self, w, eqn) -> None:
        x = eqn.invars[0]
        out = eqn.outvars[0]
        axis, reverse = eqn.params["axis"], eqn.params.get("reverse", False)
        shape = x.aval.shape
        n = shape[axis]
        if n == 0 or 0 in shape:
            return
        ctx = _Reads(self, None)
        others = [a for a in range(len(shape)) if a != axis]
        dt = out.aval.dtype

        def idx(j: str):
            return [j if a == axis else (f"i{a}" if shape[a] != 1 else "0") for a in range(len(shape))]
        first = str(n - 1) if reverse else "0"
        acc = self.fresh("acc")   # typed per kernel: unique in the entry's namespace
        with self.loops(w, others, shape, False):
            w(f"{acc} = {self.read(x, idx(first), ctx)}")
            w(f"{self.element(out, idx(first))} = {acc}")
            with w.block(f"for k in range(1, {n}):"):
                w(f"j = {n - 1} - k" if reverse else "j = k")
                w(f"{acc} = {scalar.cumulative_combine(eqn.primitive.name, dt, acc, self.read(x, idx('j'), ctx))}")
                w(f"{self.element(out, idx('j'))} = {acc}")

    def _index_values(self, w, eqn, indices: Var, batch_idx, k: int, ctx) -> list[str]:
        cols = []
        for j in range(k):
            c = f"c{j}"
            w(f"{c} = np.int64({self.read(indices, list(batch_idx) + [str(j) if indices.aval.shape[-1] != 1 else '0'], ctx)})")
            cols.append(c)
        return cols

    def _gather(self, w, eqn) -> None:
        from ...ops.indexing import _fill_value
        operand, indices = eqn.invars
        out = eqn.outvars[0]
        axes = tuple(eqn.params["axes"])
        mode = eqn.params.get("mode", "clip")
        fill = _fill_value(operand.aval.dtype, eqn.params.get("fill_value"))
        oshape, ishape = operand.aval.shape, indices.aval.shape
        shape = out.aval.shape
        if 0 in shape:
            return
        dt = out.aval.dtype
        fill_lit = scalar.literal(fill, dt)
        if operand.aval.size == 0:   # a gathered axis is empty: the reference fills
            with self.loops(w, range(len(shape)), shape, False):
                w(f"{self.element(out, [f'i{k}' if shape[k] != 1 else '0' for k in range(len(shape))])} = {fill_lit}")
            return
        ctx = _Reads(self, None)
        nbatch = len(ishape) - 1
        rest = [a for a in range(len(oshape)) if a not in axes]
        oidx_all = [f"i{k}" if shape[k] != 1 else "0" for k in range(len(shape))]
        with self.loops(w, range(nbatch), shape, False):
            cols = self._index_values(w, eqn, indices, oidx_all[:nbatch], len(axes), ctx)
            conds = [f"0 <= {c} < {oshape[a]}" for c, a in zip(cols, axes)]
            if mode == "fill":
                w(f"ok = {' and '.join(conds) if conds else 'True'}")
            for c, a in zip(cols, axes):
                w(f"{c} = min(max({c}, 0), {oshape[a] - 1})")
            with self.loops(w, range(nbatch, len(shape)), shape, False):
                oi = ["0"] * len(oshape)
                for c, a in zip(cols, axes):
                    oi[a] = c
                for k, a in enumerate(rest):
                    oi[a] = oidx_all[nbatch + k]
                val = self.read(operand, oi, ctx)
                if mode == "fill":
                    val = f"({val} if ok else {fill_lit})"
                w(f"{self.element(out, oidx_all)} = {val}")

    def _copy(self, w, src, dst: Var, ctx) -> None:
        shape = dst.aval.shape
        if 0 in shape:
            return
        idx = [f"i{k}" if shape[k] != 1 else "0" for k in range(len(shape))]
        with self.loops(w, range(len(shape)), shape, False):
            w(f"{self.element(dst, idx)} = {self.read(src, idx, ctx)}")

    def _scatter(self, w, eqn) -> None:
        operand, indices, updates = eqn.invars
        out = eqn.outvars[0]
        axes = tuple(eqn.params["axes"])
        combine = eqn.params.get("combine", "set")
        ctx = _Reads(self, None)
        self._copy(w, operand, out, ctx)
        oshape, ishape, ushape = operand.aval.shape, indices.aval.shape, updates.aval.shape
        if operand.aval.size == 0 or updates.aval.size == 0:
            return
        nbatch = len(ishape) - 1
        rest = [a for a in range(len(oshape)) if a not in axes]
        uidx = [f"i{k}" if ushape[k] != 1 else "0" for k in range(len(ushape))]
        with self.loops(w, range(nbatch), ushape, False):
            cols = self._index_values(w, eqn, indices, uidx[:nbatch], len(axes), ctx)
            conds = [f"0 <= {c} < {oshape[a]}" for c, a in zip(cols, axes)]
            with w.block(f"if {' and '.join(conds) if conds else 'True'}:"):
                with self.loops(w, range(nbatch, len(ushape)), ushape, False):
                    oi = ["0"] * len(oshape)
                    for c, a in zip(cols, axes):
                        oi[a] = c
                    for k, a in enumerate(rest):
                        oi[a] = uidx[nbatch + k]
                    target = self.element(out, oi)
                    val = self.read(updates, uidx, ctx)
                    w(f"{target} = {scalar.scatter_combine(combine, out.aval.dtype, target, val)}")

    def _starts(self, w, starts, shape, sizes, ctx) -> list[str]:
        names = []
        for j, (s, n, k) in enumerate(zip(starts, shape, sizes)):
            d = f"d{j}"
            w(f"{d} = min(max(np.int64({self.read(s, (), ctx)}), 0), {n - k})")
            names.append(d)
        return names

    def _dynamic_slice(self, w, eqn) -> None:
        operand, *starts = eqn.invars
        out = eqn.outvars[0]
        shape = out.aval.shape
        if 0 in shape:
            return
        ctx = _Reads(self, None)
        ds = self._starts(w, starts, operand.aval.shape, shape, ctx)
        idx = [f"i{k}" if shape[k] != 1 else "0" for k in range(len(shape))]
        with self.loops(w, range(len(shape)), shape, False):
            src = [f"({d} + {i})" if i != "0" else d for d, i in zip(ds, idx)]
            w(f"{self.element(out, idx)} = {self.read(operand, src, ctx)}")

    def _dynamic_update_slice(self, w, eqn) -> None:
        operand, update, *starts = eqn.invars
        out = eqn.outvars[0]
        ctx = _Reads(self, None)
        self._copy(w, operand, out, ctx)
        ushape = update.aval.shape
        if 0 in ushape or 0 in operand.aval.shape:
            return
        ds = self._starts(w, starts, operand.aval.shape, ushape, ctx)
        idx = [f"i{k}" if ushape[k] != 1 else "0" for k in range(len(ushape))]
        with self.loops(w, range(len(ushape)), ushape, False):
            dst = [f"({d} + {i})" if i != "0" else d for d, i in zip(ds, idx)]
            w(f"{self.element(out, dst)} = {self.read(update, idx, ctx)}")

    # ------------------------------------------------------------------ kernels & entries
    def kernel_parallel(self, group: fu.Group) -> bool:
        """Whether any loop phase of ``group`` runs in parallel (the policy of ``parallel``)."""
        return any(self.parallel(p) for p in group.phases if p.kind == "loop")

    def summary(self, group: fu.Group) -> str:
        """What a kernel computes, for its header: ``matmul kernel: z from a, w``."""
        return (f"{group.kind} kernel: {', '.join(self.names[id(v)] for v in group.outputs) or '-'}"
                f" from {', '.join(self.names[id(v)] for v in group.inputs) or '-'}")

    def kernel_body(self, w: _Writer, group: fu.Group) -> None:
        """The statements of one kernel (at ``w``'s depth), reading and writing the
        ``b_<name>`` buffers of its variables directly."""
        start = len(w.lines)
        for p in group.phases:
            if p.kind == "loop":
                self.loop_phase(w, group, p)
            elif p.kind == "dot":
                self.dot_phase(w, p.eqns[0])
            else:
                self.opaque_phase(w, p.eqns[0])
        if all(ln.lstrip().startswith("#") for ln in w.lines[start:]):
            w("pass")   # nothing to compute (an empty shape): keep the block valid

    def kernel(self, group: fu.Group, callable_from_python: bool = False) -> tuple[str, list[Var]]:
        """(source of a separate kernel function, its parameters in order): for kernels
        with parallel loops, which numba compiles with ``parallel=True``, and for every
        kernel of a profiling module (``callable_from_python``)."""
        params = list(group.inputs) + list(group.outputs) + \
            [v for v in group.internal if id(v) not in self.shared]
        w = _Writer()
        flags = "parallel=True, " if self.kernel_parallel(group) else ""
        if not callable_from_python:
            # Called only from the entry: no wrappers for calls from Python or as a cfunc.
            flags += "no_cpython_wrapper=True, no_cfunc_wrapper=True, "
        w(f"@nb.njit({flags}**_OPTS)")
        with w.block(f"def {group.name}({', '.join(self.buffer_name(v) for v in params)}):"):
            w(f'"""{self.summary(group)}."""')
            self.kernel_body(w, group)
        return w.text(), params

    def generate(self, header: str, kernels_only: bool = False) -> ModulePlan:
        pieces = [header]
        segments: list = []
        if kernels_only:   # a profiling module: each kernel a function callable from Python
            for g in self.fused.groups:
                if g.kind != fu.FALLBACK_GROUP:
                    pieces.append(self.kernel(g, callable_from_python=True)[0])
            return ModulePlan("\n\n\n".join(pieces) + "\n", [], self.uses_blas)
        self.shared = shared_buffers(self.fused)
        # Serial kernels are written inline into their segment's entry (one numba function
        # per segment: numba compiles each function separately, and a callee is compiled,
        # wrapped and optimised on its own and then again inside its caller). Kernels with
        # parallel loops stay functions of their own, so only they pay for parfors.
        separate: dict[int, list[Var]] = {}
        for g in self.fused.groups:
            if g.kind != fu.FALLBACK_GROUP and self.kernel_parallel(g):
                src, params = self.kernel(g)
                separate[g.index] = params
                pieces.append(src)
        # Split into segments at fallbacks.
        runs: list = []
        cur: list[fu.Group] = []
        for g in self.fused.groups:
            if g.kind == fu.FALLBACK_GROUP:
                if cur:
                    runs.append(cur)
                    cur = []
                runs.append(g)
            else:
                cur.append(g)
        if cur:
            runs.append(cur)
        ir = self.fused.ir
        out_ids = {id(v) for v in ir.outvars if isinstance(v, Var)}
        for si, run in enumerate(runs):
            if isinstance(run, fu.Group):
                segments.append(FallbackSegment(run))
                continue
            produced: dict[int, Var] = {}
            reads: dict[int, Var] = {}
            for g in run:
                for v in g.inputs:
                    reads.setdefault(id(v), v)
                for v in g.outputs + g.internal:
                    if id(v) not in self.shared:
                        produced[id(v)] = v
            later_reads: set[int] = set(out_ids)
            for later in runs[si + 1:]:
                gs = [later] if isinstance(later, fu.Group) else later
                for g in gs:
                    later_reads.update(id(v) for v in g.inputs)
            inputs = [v for k, v in reads.items() if k not in produced]
            outputs = [v for k, v in produced.items() if k in later_reads]
            temps = [v for k, v in produced.items() if k not in later_reads]
            entry = f"entry{si}"
            src, temp_bytes = self.entry(entry, run, inputs, outputs, temps, separate)
            segments.append(KernelSegment(entry, run, inputs, outputs, temps, temp_bytes))
            pieces.append(src)
        consts, code = hoist_literals("\n\n\n".join(pieces[1:]))
        source = "\n\n\n".join([pieces[0], "# Typed literals of the functions below.\n" + consts,
                                 code]) + "\n"
        return ModulePlan(source, segments, self.uses_blas,
                          {id(v) for v in self.shared.values()})

    def entry(self, name, run, inputs, outputs, temps, separate) -> tuple[str, int]:
        """(source of entry ``name``, bytes of its temp buffer). Temporaries and scratch
        arrays are views into one uint8 buffer argument ``tbuf``: every array argument
        costs numba typing, unboxing code in the Python wrapper (about 15 ms of compile
        each) and time per call."""
        def typ(v: Var, ro: bool) -> str:
            return f"_A({scalar.nb_type(v.aval.dtype)}, {v.aval.ndim}{', True' if ro else ''})"
        self.temp_used = 0
        body = _Writer()
        body.depth = 1
        for v in temps:
            body(f"{self.buffer_name(v)} = {self.carve(v.aval.shape, v.aval.dtype)}")
        for g in run:
            body("")
            body(f"# {g.name}: {self.summary(g)}")
            if g.index in separate:
                body(f"{g.name}({', '.join(self.buffer_name(v) for v in separate[g.index])})")
            else:
                self.kernel_body(body, g)
        temp_bytes, self.temp_used = self.temp_used, None
        sig = [typ(v, True) for v in inputs] + [typ(v, False) for v in outputs]
        params = [self.buffer_name(v) for v in inputs + outputs]
        if temp_bytes:
            sig.append("_A(nb.uint8, 1)")
            params.append("tbuf")
        w = _Writer()
        # No cfunc wrapper: entries are only called from Python, and that wrapper (unboxing
        # every array argument again) costs ~5% of the compile.
        w(f"@nb.njit(nb.void({', '.join(sig)}), cache=_CACHE, no_cfunc_wrapper=True, **_OPTS)")
        with w.block(f"def {name}({', '.join(params)}):"):
            w(f'"""Runs {", ".join(g.name for g in run)} in order."""')
        return w.text() + "\n" + body.text(), temp_bytes


# A typed literal as scalar.literal writes it: np.float32(0.5), np.int32(-3), np.float32(-np.inf).
_TYPED_LITERAL = re.compile(r"\bnp\.(bool_|u?int(?:8|16|32|64)|float(?:16|32|64))"
                            r"\((-?(?:np\.inf|np\.nan|[0-9][0-9.e+-]*))\)")


def hoist_literals(code: str) -> tuple[str, str]:
    """(definitions, code): each typed literal of ``code`` (``np.float32(0.5)``) replaced by
    a module constant (``_c3``), defined once in ``definitions``. numba freezes a global's
    value: the constant costs one statement to type and lower, where the call costs four
    (the global ``np``, the attribute, the argument, the call) and a call resolution."""
    names: dict[str, str] = {}

    def sub(m: re.Match) -> str:
        return names.setdefault(m.group(0), f"_c{len(names)}")

    lines = [ln if ln.lstrip().startswith("#") else _TYPED_LITERAL.sub(sub, ln)
             for ln in code.split("\n")]
    defs = "".join(f"{n} = {lit}\n" for lit, n in names.items())
    return defs, "\n".join(lines)




def module_header(fused: fu.FusedProgram) -> str:
    """Imports and a comment holding the program and its fusion report."""
    lines = ["# jitgrad CPU executable: generated code, do not edit (the disk cache checks it).",
             "#", "# Program:"]
    lines += ["#   " + ln for ln in str(fused.ir).splitlines()]
    lines += ["#", "# Fusion:"]
    lines += ["#   " + ln for ln in str(fused).splitlines()]
    lines += [
        "import math",
        "",
        "import numba as nb",
        "import numpy as np",
        "from numba import prange",
        "",
        "from jitgrad.backends.cpu import runtime as rt",
        "# First: cached machine code calls the BLAS by a symbol name this import registers.",
        "from jitgrad.backends.cpu import blas",
        "",
        "# Set by the loader before the module runs: whether numba may cache machine code on disk.",
        '_CACHE = bool(globals().get("_JITGRAD_DISK_CACHE", False))',
        '_OPTS = dict(nogil=True, error_model="numpy")',
        "",
        "",
        "def _A(dtype, ndim, readonly=False):",
        '    return nb.types.Array(dtype, ndim, "C", readonly=readonly)',
    ]
    return "\n".join(lines)


def generate(fused: fu.FusedProgram, kernels_only: bool = False) -> ModulePlan:
    """The module source for ``fused`` and the segments to run. ``kernels_only``: instead,
    a module with one function per kernel, named after it and callable from Python with
    (inputs, outputs, internal buffers), for timing kernels one by one."""
    gen = _Generator(fused)
    return gen.generate(module_header(fused), kernels_only)
