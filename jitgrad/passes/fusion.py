"""Fusion: partition an optimised IR into kernels (groups), each of which a backend
lowers to one function, and explain the partition.

``fuse(closed_ir)`` returns a ``FusedProgram``: the groups in execution order, the
variables each reads and writes, and for every two neighbouring groups the reason they
were left apart (like numba's parfor fusion report). ``str()`` prints all of it.

The model (backend-independent; the CPU and CUDA backends lower the same groups):

* A **loop phase** is one iteration space ``domain`` (the shape of the values it
  computes), optionally with ``reduce_axes`` A. Its other axes K are the *rows*. Values
  live at the *inner* level (they vary along A: shape == domain) or the *outer* level
  (one per row: reduction results, shape domain[K], or keepdims shapes), and every value
  has a canonical index: ``i0, i1, ...`` for the domain axes it varies along, ``0``
  for size-1 axes (``VarInfo.canon``). A phase computes:
    - elementwise chains with broadcasting (A empty), any number of outputs;
    - reductions with their elementwise producers (``sum(x * y)`` reads x and y once)
      and the elementwise consumers of their result at the row level (``sum / n``);
    - row-wise patterns: elementwise ops that consume a reduction's result broadcast
      back over its row, followed by more reductions (softmax, log-softmax, logsumexp,
      layer-norm, softmax cross-entropy). Each value that needs a reduction's result
      is computed in a later *pass* over the row (``VarInfo.stage``); this is legal only
      when A are the trailing axes and a row is short enough to stay in cache
      (``ROW_LIMIT``). Otherwise a consumer of a reduction's full result waits for the
      next kernel, and the report says so.
* A **group** (kernel) is one loop phase, or a producer phase followed by loop phases:
    - ``matmul``: a dot_general (BLAS core) and its epilogue, a loop phase over the
      product's shape (bias, activation, residual, scale, even a row-wise softmax);
    - a reduction/row-wise phase may be followed by one *tail* phase that reduces its
      per-row results (the mean over rows of a cross-entropy);
    - ``opaque`` ops (gather, scatter, cumsum, dynamic slices) run alone;
    - ``fallback``: an equation the backend does not lower (control flow for now) runs
      through the reference implementation, splitting the program around it.
* **Layout ops** (broadcast_in_dim, reshape, transpose, squeeze, rev, slice, pad,
  concatenate) and iota are not computed at all where they can be read through: a
  kernel reads their operand at a rewritten index (``fusion_index``). Inside a phase a
  layout op of a value computed there is free when it maps each element to itself
  (keepdims reshape, broadcast of a row result over its row); any other layout op of
  such a value (a transpose, a slice) needs other iterations' results, so its consumer
  goes to a later kernel that reads the value from memory.

Fusion is conservative: an equation joins a group only if every value it reads is
complete before that group runs (produced by an earlier group, an earlier phase of the
same group, or in the same phase at the same index in an earlier pass).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

import numpy as np

from ..core.ir import ClosedIR, Eqn, IR, Literal, Var, _Namer
from ..core.primitive import CONTROL, ELEMENTWISE, LAYOUT, OPAQUE, REDUCTION
from . import fusion_index as fi

# Group kinds.
ELEMENTWISE_GROUP = "elementwise"
REDUCTION_GROUP = "reduction"
ROWWISE_GROUP = "rowwise"
MATMUL_GROUP = "matmul"
OPAQUE_GROUP = "opaque"
FALLBACK_GROUP = "fallback"

# A row-wise kernel makes several passes over each row; beyond this many elements a row
# no longer stays in L2 between passes, and two kernels cost no more.
ROW_LIMIT = 1 << 16
# How many earlier groups an equation with no producer among them may join (sibling fusion).
SIBLING_LOOKBACK = 8

# Short names for kernel names (k3_dot_add_max).
_SHORT = {"dot_general": "dot", "reduce_sum": "sum", "reduce_prod": "prod", "reduce_max": "rmax",
          "reduce_min": "rmin", "reduce_and": "rand", "reduce_or": "ror", "reduce_xor": "rxor",
          "convert_element_type": "convert", "broadcast_in_dim": "bcast", "integer_pow": "ipow",
          "select_n": "select", "concatenate": "concat", "dynamic_slice": "dslice",
          "dynamic_update_slice": "dupdate", "bitcast_convert_type": "bitcast",
          "stop_gradient": "stopgrad", "shift_right_logical": "shr", "shift_left": "shl",
          "shift_right_arithmetic": "sar"}

Supports = Callable[[Eqn], "bool | str"]


# ----------------------------------------------------------------------------- data

@dataclasses.dataclass
class VarInfo:
    """Where a value computed in a loop phase lives.

    ``canon``: its canonical index (``("i0", "0")``); ``inner``: varies along the reduced
    axes (computed inside the row loops); ``stage``: for an inner value, the pass over the
    row that computes it; for an outer value, the number of passes that must finish before
    it is known (0: known before the first pass).
    """

    canon: tuple[str, ...]
    inner: bool
    stage: int


@dataclasses.dataclass(eq=False)
class Phase:
    """One loop nest, BLAS call, opaque op or fallback equation inside a group."""

    kind: str                                   # "loop" | "dot" | "opaque" | "fallback"
    eqns: list[Eqn] = dataclasses.field(default_factory=list)
    domain: tuple[int, ...] = ()
    reduce_axes: tuple[int, ...] = ()
    info: dict[int, VarInfo] = dataclasses.field(default_factory=dict)
    reduction_pass: dict[int, int] = dataclasses.field(default_factory=dict)  # id(out) -> pass
    reads: dict[int, Var] = dataclasses.field(default_factory=dict)   # leaves read from memory
    views: dict[int, Eqn] = dataclasses.field(default_factory=dict)   # layout eqns read through
    is_tail: bool = False

    @property
    def row_axes(self) -> tuple[int, ...]:
        """The axes that are not reduced (K)."""
        return tuple(k for k in range(len(self.domain)) if k not in self.reduce_axes)

    @property
    def passes(self) -> int:
        """How many passes over each row the phase makes (1 for elementwise and reductions)."""
        stages = [v.stage for v in self.info.values() if v.inner]
        stages += list(self.reduction_pass.values())
        return 1 + max(stages, default=0)


@dataclasses.dataclass(eq=False)
class Group:
    """One kernel: phases run in order in one function. See the module docstring."""

    index: int
    phases: list[Phase]
    kind: str = ""
    name: str = ""
    inputs: list[Var] = dataclasses.field(default_factory=list)
    outputs: list[Var] = dataclasses.field(default_factory=list)
    internal: list[Var] = dataclasses.field(default_factory=list)
    note: str = ""

    @property
    def eqns(self) -> list[Eqn]:
        return [e for p in self.phases for e in p.eqns]

    @property
    def views(self) -> list[Eqn]:
        seen: dict[int, Eqn] = {}
        for p in self.phases:
            seen.update(p.views)
        return list(seen.values())


@dataclasses.dataclass(eq=False)
class Separation:
    """Why group ``before`` and the next group ``after`` were not fused."""

    before: int
    after: int
    reason: str


class FusedProgram:
    """The partition of an IR into groups, in execution order, with its explanations."""

    def __init__(self, closed: ClosedIR, groups: list[Group], apart: list[Separation],
                 view_ids: set[int], placement: dict[int, tuple[int, int]],
                 producer: dict[int, Eqn], skipped: list[Eqn]):
        self.closed = closed
        self.groups = groups
        self.apart = apart
        self.view_ids = view_ids
        self.placement = placement
        self.producer = producer
        self.skipped = skipped
        self.names = var_names(closed.ir)

    @property
    def ir(self) -> IR:
        return self.closed.ir

    @property
    def kernels(self) -> list[Group]:
        """The groups a backend compiles (all but the fallbacks)."""
        return [g for g in self.groups if g.kind != FALLBACK_GROUP]

    @property
    def fallbacks(self) -> list[Group]:
        return [g for g in self.groups if g.kind == FALLBACK_GROUP]

    def name(self, atom) -> str:
        if isinstance(atom, Literal):
            from ..core.ir import format_literal
            return format_literal(atom)
        return self.names.get(id(atom), "?")

    def describe_eqn(self, eqn: Eqn) -> str:
        outs = " ".join(f"{self.name(v)}:{v.aval.str_short()}" for v in eqn.outvars) or "_"
        args = " ".join(self.name(a) for a in eqn.invars)
        params = ""
        if eqn.params and eqn.primitive.kind != CONTROL:
            params = "[" + ", ".join(f"{k}={_short_param(eqn.params[k])}"
                                     for k in sorted(eqn.params)) + "]"
        return f"{outs} = {eqn.primitive.name}{params} {args}".rstrip()

    def __str__(self) -> str:
        n_fb = len(self.fallbacks)
        head = (f"fused program: {len(self.kernels)} kernel{'s' if len(self.kernels) != 1 else ''}"
                + (f" + {n_fb} fallback equation{'s' if n_fb != 1 else ''}" if n_fb else "")
                + f" for {len(self.ir.eqns)} equations")
        lines = [head]
        reasons = {s.before: s.reason for s in self.apart}
        for g in self.groups:
            ins = " ".join(self.name(v) for v in g.inputs) or "-"
            outs = " ".join(self.name(v) for v in g.outputs) or "-"
            lines.append(f"  {g.name} [{g.kind}]  reads: {ins}  writes: {outs}")
            if g.note:
                lines.append(f"      note: {g.note}")
            for p in g.phases:
                if p.kind == "loop":
                    desc = f"loop over [{','.join(map(str, p.domain))}]"
                    if p.reduce_axes:
                        desc += f", reducing axes {tuple(p.reduce_axes)}"
                    if p.passes > 1:
                        desc += f", {p.passes} passes per row"
                    if p.is_tail:
                        desc += " (tail: reduces the rows' results)"
                    lines.append(f"      {desc}")
                for e in p.eqns:
                    lines.append(f"        {self.describe_eqn(e)}")
            views = g.views
            if views:
                lines.append("      reads through (index maps): "
                             + "; ".join(self.describe_eqn(e) for e in views))
            if g.internal:
                lines.append("      kept inside: " + " ".join(self.name(v) for v in g.internal))
            if g.index in reasons:
                lines.append(f"  -- not fused with the next kernel: {reasons[g.index]}")
        return "\n".join(lines)

    __repr__ = __str__


def _short_param(v) -> str:
    if isinstance(v, np.dtype):
        return v.name
    if isinstance(v, type) and issubclass(v, np.generic):
        return np.dtype(v).name
    text = repr(v)
    return text if len(text) < 60 else text[:57] + "..."


def var_names(ir: IR) -> dict[int, str]:
    """The names ``str(ir)`` gives the variables (a, b, c, ...), by ``id(var)``."""
    namer = _Namer()
    for v in list(ir.constvars) + list(ir.invars):
        namer.bind(v)
    for e in ir.eqns:
        for v in e.outvars:
            namer.bind(v)
    return namer.names


def default_supports(eqn: Eqn) -> bool | str:
    """Backends pass their own; by default everything but control flow and effects is lowered."""
    if eqn.primitive.kind == CONTROL:
        return f"{eqn.primitive.name} (control flow) is not lowered by this backend"
    if getattr(eqn.primitive, "has_effects", False):
        return f"{eqn.primitive.name} has side effects"
    return True


# ----------------------------------------------------------------------------- helpers

def canonical_map(shape: tuple[int, ...], domain: tuple[int, ...],
                  reduce_axes: tuple[int, ...]) -> tuple | None:
    """Which domain axis each axis of a value of ``shape`` runs along (None: size 1).

    A value with the domain's rank lines up axis by axis (sizes equal, or 1); a value
    with the rank of the rows lines up with the row axes. None if it fits neither.
    """
    if shape == ():
        return ()
    if len(shape) == len(domain):
        out = []
        for k, (s, d) in enumerate(zip(shape, domain)):
            if s == d and d != 1:
                out.append(k)
            elif s == 1 or (s == d == 1):
                out.append(None)
            else:
                return None
        return tuple(out)
    if reduce_axes:
        rows = [k for k in range(len(domain)) if k not in reduce_axes]
        if len(shape) == len(rows) and all(shape[i] == domain[k] for i, k in enumerate(rows)):
            return tuple(k if domain[k] != 1 else None for k in rows)
    return None


def is_view_var(var: Var, local: bool, view_ids: set[int], placement: dict) -> bool:
    """Whether a kernel reads ``var`` through its layout/iota equation (an index map)
    rather than as a value: it is not computed in the reading phase, nor materialised."""
    return not local and id(var) in view_ids and id(var) not in placement


def index_of_map(m: tuple) -> tuple[str, ...]:
    return tuple("0" if k is None else f"i{k}" for k in m)


def _short(name: str) -> str:
    return _SHORT.get(name, name)


def _is_trailing(axes: tuple[int, ...], rank: int) -> bool:
    return tuple(axes) == tuple(range(rank - len(axes), rank))


def _prod(shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


class _Reject(Exception):
    pass


# ----------------------------------------------------------------------------- the pass

class _CheckContext(fi.ReadContext):
    """Resolves an equation's operand reads inside a candidate phase, recording what it touches."""

    def __init__(self, fuser: "_Fuser", group: Group, phase_index: int, phase: Phase,
                 pending: dict[int, VarInfo]):
        self.f = fuser
        self.group = group
        self.phase_index = phase_index
        self.phase = phase
        self.pending = pending
        self.local: list[VarInfo] = []
        self.leaves: dict[int, Var] = {}
        self.views: dict[int, Eqn] = {}

    def _local_info(self, var: Var) -> VarInfo | None:
        return self.pending.get(id(var)) or self.phase.info.get(id(var))

    def view_eqn(self, var: Var) -> Eqn | None:
        if not is_view_var(var, self._local_info(var) is not None, self.f.view_ids, self.f.placement):
            return None
        eqn = self.f.producer[id(var)]
        self.views[id(eqn)] = eqn
        return eqn

    def leaf(self, var: Var, idx) -> str:
        info = self._local_info(var)
        if info is not None:
            if tuple(idx) != info.canon:
                raise fi.NotReadable(
                    f"it reads {self.f.name(var)} at other positions than the kernel computes it "
                    f"(a layout op of a value computed in the same loop needs other iterations' "
                    f"results)")
            self.local.append(info)
            return "x"
        where = self.f.placement.get(id(var))
        if where is not None:
            g, p = where
            if g == self.group.index:
                if p >= self.phase_index:
                    raise fi.NotReadable(f"{self.f.name(var)} is not complete before this loop")
            elif self.f.depends(g, self.group.index):
                raise fi.NotReadable(f"{self.f.name(var)} comes from a kernel that needs this "
                                     f"kernel's results")
        self.leaves[id(var)] = var
        return "x"

    def literal(self, lit) -> str:
        return "x"

    def cast_index(self, expr, dtype) -> str:
        return "x"


class _Fuser:
    def __init__(self, closed: ClosedIR, supports: Supports):
        self.closed = closed
        self.ir = closed.ir
        self.supports = supports
        self.producer: dict[int, Eqn] = {id(v): e for e in self.ir.eqns for v in e.outvars}
        self.out_ids = {id(v) for v in self.ir.outvars if isinstance(v, Var)}
        self.names = var_names(self.ir)
        self.groups: list[Group] = []
        self.deps: list[set[int]] = []           # group -> groups it reads from
        self.why: dict[tuple[int, int], str] = {}   # (group, other) -> why not fused
        self.why_any: dict[int, str] = {}
        self.last_effect: int | None = None
        self.removed: set[int] = set()
        self.placement: dict[int, tuple[int, int]] = {}
        self.view_ids: set[int] = set()
        self.skipped: list[Eqn] = []
        self.live = self._liveness()

    def name(self, atom) -> str:
        if isinstance(atom, Literal):
            return repr(atom.value.item())
        return self.names.get(id(atom), "?")

    def _liveness(self) -> set[int]:
        live = set(self.out_ids)
        for eqn in reversed(self.ir.eqns):
            if any(id(v) in live for v in eqn.outvars) or getattr(eqn.primitive, "has_effects", False):
                for a in eqn.invars:
                    if isinstance(a, Var):
                        live.add(id(a))
                for v in eqn.outvars:
                    live.add(id(v))
        return live

    # -- driver
    def run(self) -> FusedProgram:
        for eqn in self.ir.eqns:
            if not any(id(v) in self.live for v in eqn.outvars) and \
                    not getattr(eqn.primitive, "has_effects", False):
                self.skipped.append(eqn)
                continue
            ok = self.supports(eqn)
            prim = eqn.primitive
            if ok is not True:
                reason = ok if isinstance(ok, str) else f"{prim.name} is not lowered by this backend"
                self._new_group(FALLBACK_GROUP, Phase("fallback", [eqn]),
                                f"{prim.name} runs through the reference implementation: {reason}",
                                note=f"fallback: {reason}")
            elif prim.name == "iota" or prim.kind == LAYOUT:
                self.view_ids.add(id(eqn.outvars[0]))
                if id(eqn.outvars[0]) in self.out_ids:
                    self._place(eqn)    # a program output must be materialised
            elif prim.name == "dot_general":
                self._new_group(MATMUL_GROUP, Phase("dot", [eqn]),
                                "a dot_general starts its own kernel (BLAS computes the product; "
                                "its epilogue fuses after it)")
            elif prim.kind in (ELEMENTWISE, REDUCTION):
                self._place(eqn)
            else:
                self._new_group(OPAQUE_GROUP, Phase("opaque", [eqn]),
                                f"{prim.name} is an opaque op and runs as its own kernel")
        return self._finish()

    def _new_group(self, kind: str, phase: Phase, reason: str, note: str = "") -> Group:
        g = Group(len(self.groups), [phase], kind=kind, note=note)
        deps: set[int] = set()
        for e in phase.eqns:
            for a in e.invars:
                if isinstance(a, Var):
                    for r in self._roots(a, phase.views):
                        phase.reads[id(r)] = r
                        if id(r) in self.placement:
                            deps.add(self.placement[id(r)][0])
        if getattr(phase.eqns[0].primitive, "has_effects", False):
            # Effects keep their program order.
            if self.last_effect is not None:
                deps.add(self.last_effect)
            self.last_effect = g.index
        self._register(g, deps, reason)
        for e in phase.eqns:
            for v in e.outvars:
                self.placement[id(v)] = (g.index, 0)
        return g

    def _register(self, g: Group, deps: set[int], reason: str) -> None:
        self.groups.append(g)
        self.deps.append(set(deps))
        self.why_any[g.index] = reason

    def depends(self, a: int, b: int) -> bool:
        """Whether group ``a`` needs (directly or not) results of group ``b``."""
        if a == b:
            return True
        stack, seen = [a], set()
        while stack:
            x = stack.pop()
            if x in seen:
                continue
            seen.add(x)
            for d in self.deps[x]:
                if d == b:
                    return True
                stack.append(d)
        return False

    def _roots(self, var: Var, views: dict[int, Eqn] | None = None) -> Iterable[Var]:
        """The materialised variables ``var`` is read from (through layout ops / iota)."""
        stack, seen = [var], set()
        while stack:
            v = stack.pop()
            if id(v) in seen:
                continue
            seen.add(id(v))
            if id(v) in self.view_ids and id(v) not in self.placement:
                eqn = self.producer[id(v)]
                if views is not None:
                    views[id(eqn)] = eqn
                stack.extend(a for a in eqn.invars if isinstance(a, Var))
            else:
                yield v

    # -- placing an elementwise / reduction / materialised layout equation
    def _place(self, eqn: Eqn) -> None:
        producers: set[int] = set()
        for a in eqn.invars:
            if isinstance(a, Var):
                for r in self._roots(a):
                    if id(r) in self.placement:
                        producers.add(self.placement[id(r)][0])
        # Producers first (vertical fusion, most recent first), then recent siblings.
        candidates = sorted(producers, reverse=True)
        last = len(self.groups) - 1
        candidates += [g for g in range(last, max(-1, last - SIBLING_LOOKBACK), -1)
                       if g not in producers]
        reasons: dict[int, str] = {}
        for g in candidates:
            blocker = next((p for p in producers if p != g and self.depends(p, g)), None)
            if blocker is not None:
                reasons[g] = (f"{eqn.primitive.name} also reads results of another kernel that "
                              f"needs this kernel's results first (fusing would make a cycle)")
                continue
            why = self._try_join(self.groups[g], eqn)
            if why is None:
                self.deps[g].update(p for p in producers if p != g)
                return
            reasons[g] = why
        # A new group of its own.
        if eqn.primitive.kind == REDUCTION:
            x = eqn.invars[0]
            phase = Phase("loop", domain=x.aval.shape, reduce_axes=tuple(sorted(eqn.params["axes"])))
        else:
            phase = Phase("loop", domain=eqn.outvars[0].aval.shape)
        g = Group(len(self.groups), [phase], kind="")
        self._register(g, producers, reasons.get(last, "no data dependence on the previous kernel"))
        for other, why in reasons.items():
            self.why[(g.index, other)] = why
        why = self._check_and_commit(g, 0, phase, eqn)
        assert why is None, why

    def _try_join(self, group: Group, eqn: Eqn) -> str | None:
        """Add ``eqn`` to ``group`` if legal; return None on success, else the reason."""
        last = group.phases[-1]
        pname = eqn.primitive.name
        if last.kind == "fallback":
            return f"the previous kernel is a fallback ({last.eqns[0].primitive.name})"
        if last.kind == "opaque":
            return f"{last.eqns[0].primitive.name} is an opaque op and runs alone"
        if last.kind == "dot":
            dot_out = last.eqns[0].outvars[0]
            reads_dot = any(r is dot_out for a in eqn.invars if isinstance(a, Var)
                            for r in self._roots(a))
            if not reads_dot:
                return "it does not read the matmul's result"
            if eqn.primitive.kind == REDUCTION:
                phase = Phase("loop", domain=dot_out.aval.shape,
                              reduce_axes=tuple(sorted(eqn.params["axes"])))
            else:
                phase = Phase("loop", domain=dot_out.aval.shape)
            why = self._check_and_commit(group, len(group.phases), phase, eqn)
            if why is None:
                group.phases.append(phase)
            return why
        # Loop phases in order: an equation joins the earliest that can take it (a row-level
        # op belongs to the rows, not to the tail that reduces them); the check refuses a
        # phase that would read results of a later one.
        why = None
        for qi, phase in enumerate(group.phases):
            if phase.kind != "loop":
                continue
            reason = self._check_and_commit(group, qi, phase, eqn)
            if reason is None:
                return None
            if qi == len(group.phases) - 1 or why is None:
                why = reason
        # A reduction of the rows' results may start the group's tail phase.
        if (eqn.primitive.kind == REDUCTION and last.reduce_axes and not last.is_tail
                and isinstance(eqn.invars[0], Var)):
            x = eqn.invars[0]
            roots = list(self._roots(x))
            if roots and all(id(r) in last.info and not last.info[id(r)].inner for r in roots):
                tail = Phase("loop", domain=x.aval.shape,
                             reduce_axes=tuple(sorted(eqn.params["axes"])), is_tail=True)
                why2 = self._check_and_commit(group, len(group.phases), tail, eqn)
                if why2 is None:
                    group.phases.append(tail)
                    return None
        return why

    def _check_and_commit(self, group: Group, phase_index: int, phase: Phase, eqn: Eqn) -> str | None:
        try:
            self._check(group, phase_index, phase, eqn, commit=True)
        except _Reject as e:
            return str(e)
        return None

    def _check(self, group: Group, phase_index: int, phase: Phase, eqn: Eqn, commit: bool) -> None:
        prim = eqn.primitive
        X = phase.domain
        A = phase.reduce_axes
        out = eqn.outvars[0]
        is_red = prim.kind == REDUCTION
        if is_red:
            x = eqn.invars[0]
            R = tuple(sorted(eqn.params["axes"]))
            if x.aval.shape != X:
                raise _Reject(f"{prim.name} runs over {x.aval.str_short()}, a different iteration "
                              f"space than the kernel's [{','.join(map(str, X))}]")
            if A and R != A:
                raise _Reject(f"{prim.name} reduces axes {R} but the kernel reduces axes {A}")
            if not A and R and any(v.stage for v in phase.info.values()):
                raise _Reject("internal: reduction axes change after passes were assigned")
            newA = R if not A else A
            operand_map = canonical_map(X, X, newA)
            out_map = canonical_map(out.aval.shape, X, newA)
        else:
            newA = A
            out_map = canonical_map(out.aval.shape, X, A)
            if out_map is None:
                raise _Reject(f"{prim.name} computes {out.aval.str_short()}, a different iteration "
                              f"space than the kernel's [{','.join(map(str, X))}]"
                              + (f" reduced over axes {A}" if A else ""))
            operand_map = out_map
            # A broadcast (size-1) output would be written inside loops that never run.
            if _prod(X) == 0 and _prod(out.aval.shape) != 0:
                raise _Reject(f"{prim.name} computes {out.aval.str_short()}, but the kernel's "
                              f"iteration space [{','.join(map(str, X))}] is empty")
        assert out_map is not None
        # Re-derive inner flags if this reduction sets the phase's reduced axes.
        infos = phase.info
        if newA != A:
            infos = {k: VarInfo(v.canon, _is_inner(v.canon, newA), v.stage) for k, v in phase.info.items()}
        tmp_phase = Phase(phase.kind, phase.eqns, X, newA, infos, phase.reduction_pass)
        ctx = _CheckContext(self, group, phase_index, tmp_phase, {})
        # A materialised layout op / iota reads its own output through its index map.
        is_view = prim.kind == LAYOUT or prim.name == "iota"
        if is_view:
            try:
                fi.read_view_eqn(eqn, index_of_map(out_map), ctx)
            except fi.NotReadable as e:
                raise _Reject(str(e)) from None
        operands = [] if is_view else (eqn.invars[:1] if is_red else eqn.invars)
        for a in operands:
            if isinstance(a, Literal):
                continue
            a_map = canonical_map(a.aval.shape, X, newA) if not is_red else operand_map
            if a_map is None:
                raise _Reject(f"operand {self.name(a)} {a.aval.str_short()} does not fit the kernel's "
                              f"iteration space")
            try:
                fi.read_expr(a, index_of_map(a_map) if a.aval.shape else (), ctx)
            except fi.NotReadable as e:
                raise _Reject(str(e)) from None
        dep_stage = max((i.stage for i in ctx.local), default=0)
        canon = index_of_map(out_map)
        if is_red:
            red_pass = dep_stage
            info = VarInfo(canon, False, red_pass + 1)
            multi = red_pass > 0
        else:
            inner = _is_inner(canon, newA)
            info = VarInfo(canon, inner, dep_stage)
            multi = inner and dep_stage > 0
            red_pass = None
        if multi:
            row = _prod([X[a] for a in newA])
            if not _is_trailing(newA, len(X)):
                raise _Reject(f"{prim.name} needs the complete result of a reduction over axes "
                              f"{newA} of [{','.join(map(str, X))}], which are not the trailing "
                              f"axes (not a row-wise pattern)")
            if len(newA) == len(X):
                raise _Reject(f"{prim.name} needs the complete result of a reduction over all "
                              f"elements of [{','.join(map(str, X))}] (no rows to work through "
                              f"one at a time)")
            if row > ROW_LIMIT:
                raise _Reject(f"{prim.name} needs the complete result of a reduction over rows of "
                              f"{row} elements, longer than the row-wise limit {ROW_LIMIT}")
        if not commit:
            return
        # Commit.
        gi = group.index
        if newA != A:
            phase.reduce_axes = newA
            phase.info.clear()
            phase.info.update(infos)
        phase.eqns.append(eqn)
        phase.info[id(out)] = info
        if red_pass is not None:
            phase.reduction_pass[id(out)] = red_pass
        phase.reads.update(ctx.leaves)
        phase.views.update(ctx.views)
        self.placement[id(out)] = (gi, phase_index)

    # -- absorbing producers that turned out to have a single consumer
    def _absorb_producers(self) -> None:
        """Move an elementwise group into the one loop that reads its results.

        An elementwise op traced before its consumer's kernel existed (``h > 0`` before
        the matmul whose epilogue selects with it) starts its own group; once all of its
        results turn out to be read by a single loop phase, at their own positions, it is
        computed there instead of being written to memory and read back.
        """
        changed = True
        while changed:
            changed = False
            readers: dict[int, set[tuple[int, int]]] = {}
            for g in self.groups:
                if g.index in self.removed:
                    continue
                for pi, p in enumerate(g.phases):
                    for vid in p.reads:
                        readers.setdefault(vid, set()).add((g.index, pi))
            for P in self.groups:
                if P.index in self.removed or len(P.phases) != 1:
                    continue
                src = P.phases[0]
                if src.kind != "loop" or src.reduce_axes or src.reduction_pass:
                    continue
                outs = [v for e in src.eqns for v in e.outvars]
                if any(id(v) in self.out_ids for v in outs):
                    continue
                rs = set().union(*[readers.get(id(v), set()) for v in outs])
                if len(rs) != 1:
                    continue
                ((gi, qi),) = rs
                if gi == P.index or gi in self.removed:
                    continue
                G = self.groups[gi]
                if self._try_absorb(P, G, qi):
                    changed = True
                    break

    def _try_absorb(self, P: Group, G: Group, qi: int) -> bool:
        phase = G.phases[qi]
        if phase.kind != "loop":
            return False
        src = P.phases[0]
        saved = (list(phase.eqns), dict(phase.info), dict(phase.reads), dict(phase.views),
                 dict(self.placement))
        try:
            for e in src.eqns:
                for v in e.outvars:       # not yet placed in G: read as locals once added
                    self.placement.pop(id(v), None)
                self._check(G, qi, phase, e, commit=True)
            # Every read in the phase must still resolve with P's values now local.
            absorbed = {id(v) for e in src.eqns for v in e.outvars}
            for e in saved[0]:
                ctx = _CheckContext(self, G, qi, phase, {})
                if e.primitive.kind == LAYOUT or e.primitive.name == "iota":
                    fi.read_view_eqn(e, phase.info[id(e.outvars[0])].canon, ctx)
                    continue
                ops = e.invars[:1] if e.primitive.kind == REDUCTION else e.invars
                for a in ops:
                    if isinstance(a, Var):
                        m = canonical_map(a.aval.shape, phase.domain, phase.reduce_axes) \
                            if e.primitive.kind != REDUCTION else \
                            canonical_map(phase.domain, phase.domain, phase.reduce_axes)
                        fi.read_expr(a, index_of_map(m), ctx)
        except (_Reject, fi.NotReadable):
            phase.eqns[:] = saved[0]
            phase.info.clear()
            phase.info.update(saved[1])
            phase.reads.clear()
            phase.reads.update(saved[2])
            phase.views.clear()
            phase.views.update(saved[3])
            self.placement = saved[4]
            return False
        # Commit: P's equations first (they read only earlier kernels), then G's.
        new = phase.eqns[len(saved[0]):]
        phase.eqns[:] = new + saved[0]
        for vid in absorbed:
            phase.reads.pop(vid, None)
        self.deps[G.index] |= self.deps[P.index] - {G.index}
        self.deps[G.index].discard(P.index)
        for ds in self.deps:
            if P.index in ds:
                ds.discard(P.index)
                ds.add(G.index)
        self.deps[G.index].discard(G.index)
        self.deps[P.index] = set()   # gone: nothing waits for it, it waits for nothing
        self.removed.add(P.index)
        return True

    # -- finishing: outputs, inputs, kinds, names
    def _order(self) -> None:
        """Put the groups in a dependency order (creation order where free) and renumber."""
        n = len(self.groups)
        users: list[list[int]] = [[] for _ in range(n)]
        pending = [len(d) for d in self.deps]
        for g, ds in enumerate(self.deps):
            for d in ds:
                users[d].append(g)
        import heapq
        ready = [g for g in range(n) if pending[g] == 0 and g not in self.removed]
        heapq.heapify(ready)
        order = []
        while ready:
            g = heapq.heappop(ready)
            order.append(g)
            for u in users[g]:
                pending[u] -= 1
                if pending[u] == 0:
                    heapq.heappush(ready, u)
        assert len(order) == n - len(self.removed), "fusion made a cycle"
        new_index = {old: new for new, old in enumerate(order)}
        groups = [self.groups[old] for old in order]
        for k, g in enumerate(groups):
            g.index = k
        self.placement = {vid: (new_index[g], p) for vid, (g, p) in self.placement.items()}
        apart = []
        for k in range(1, len(order)):
            a, b = order[k - 1], order[k]
            reason = (self.why.get((b, a)) or self.why.get((a, b)) or self.why_any.get(b)
                      or "no data dependence on the previous kernel")
            apart.append(Separation(k - 1, k, reason))
        self.groups, self.apart = groups, apart

    def _finish(self) -> FusedProgram:
        self._absorb_producers()
        self._order()
        readers: dict[int, list[tuple[int, int]]] = {}
        for g in self.groups:
            for pi, p in enumerate(g.phases):
                for vid in p.reads:
                    readers.setdefault(vid, []).append((g.index, pi))
        for g in self.groups:
            outputs, internal = [], []
            for pi, p in enumerate(g.phases):
                for e in p.eqns:
                    for v in e.outvars:
                        rs = readers.get(id(v), [])
                        outside = id(v) in self.out_ids or any(rg != g.index for rg, _ in rs)
                        if p.kind == "fallback":
                            outside = True
                        inside = any(rg == g.index and rp != pi for rg, rp in rs) or \
                            (p.kind in ("dot", "opaque") and not outside)
                        if outside:
                            outputs.append(v)
                        elif inside:
                            internal.append(v)
            g.outputs, g.internal = outputs, internal
            ins: dict[int, Var] = {}
            for p in g.phases:
                for vid, v in p.reads.items():
                    where = self.placement.get(vid)
                    if where is None or where[0] != g.index:
                        ins[vid] = v
            g.inputs = list(ins.values())
            g.kind = g.kind or _loop_kind(g)
            if not g.kind:
                g.kind = _loop_kind(g)
            g.name = self._kernel_name(g)
        return FusedProgram(self.closed, self.groups, self.apart, self.view_ids, self.placement,
                            self.producer, self.skipped)

    def _kernel_name(self, g: Group) -> str:
        names: list[str] = []
        for e in g.eqns:
            n = _short(e.primitive.name)
            if n not in names:
                names.append(n)
        if len(names) > 5:
            names = names[:5] + ["etc"]
        return f"k{g.index}_" + "_".join(names)


def _is_inner(canon: tuple[str, ...], reduce_axes: tuple[int, ...]) -> bool:
    return any(f"i{a}" in canon for a in reduce_axes)


def _loop_kind(g: Group) -> str:
    loops = [p for p in g.phases if p.kind == "loop"]
    if any(p.passes > 1 for p in loops):
        return ROWWISE_GROUP
    if any(p.reduce_axes for p in loops):
        return REDUCTION_GROUP
    return ELEMENTWISE_GROUP


def fuse(closed: ClosedIR, supports: Supports | None = None) -> FusedProgram:
    """Partition ``closed`` into kernels. ``supports(eqn)`` says whether the backend lowers
    an equation (True) or why not (a string: it then runs as a fallback)."""
    return _Fuser(closed, supports or default_supports).run()
