"""Lowering: a traced program -> one generated module of numba.cuda kernels + host code.

The fusion pass (``passes.fusion.fuse``) partitions the program into groups; each
group's phases become kernels:

=================  ==========================================================
phase              kernel(s)
=================  ==========================================================
loop, elementwise  grid-stride elementwise kernel (``loops``)
loop, reducing     block-per-row / thread-per-row / two-pass (``loops``)
dot                tiled matmul; an elementwise phase right after it (the
                   epilogue) is fused into the tile write-back (``matmul``)
opaque             gather/scatter/dynamic slices/cumulative ops (``opaque``),
                   convolution and pooling (``windows``)
fallback           host code: ``cond``/``while``/``scan`` and calls run their
                   sub-programs (lowered the same way) from a host loop;
                   primitives with side effects (debug callbacks) and any
                   primitive without a kernel run their reference
                   implementation on host copies of their operands
=================  ==========================================================

The module also gets one *host function* per (sub-)program, e.g.::

    def prog0(rt, a0, a1):
        ws = rt.acquire(0)
        v2 = ws[0]
        k0_dot_add_max[4, (16, 16)](a0, a1, v2)
        v3 = rt.empty(40, np.float32)
        k1_sum_div[4, 128](v2, v3)
        rt.release(0, ws)
        return [v3]

Values that only this program's kernels read live in a per-executable workspace that is
reused on every call (kernels run in order on one stream, so reuse is safe); values that
escape (outputs, operands of host-driven operations) get fresh buffers.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ...core.ir import IR, ClosedIR, Eqn, Literal, Var
from ...core.primitive import CONTROL, ELEMENTWISE, OPAQUE, REDUCTION
from ...passes import fusion_index as fi
from ...passes.fusion import (FALLBACK_GROUP, FusedProgram, Group, Phase, default_supports,
                              fuse)
from .codegen import KernelInfo, ModuleWriter
from .loops import Launch, PhaseContext, emit_phase
from .matmul import emit_matmul
from .opaque import OPAQUE_KERNELS, emit_materialize, emit_opaque
from .runtime import LaunchPolicy
from .scalar import ScalarEmitter, UnsupportedOnCuda

logger = logging.getLogger("jitgrad")

# Control primitives the host drives (their sub-programs are lowered like the program).
HOST_CONTROL = ("cond", "while", "scan")
CALL_PARAMS = ("call_ir", "ir")     # call-like control primitives (remat, custom_jvp_call, ...)
REDUCTIONS = ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min", "reduce_and",
              "reduce_or", "reduce_xor", "argmax", "argmin")


@dataclass
class Program:
    """The result of lowering: module source and what the executable needs to run it."""

    title: str
    source: str
    entry: str
    infos: dict[str, KernelInfo]
    host_eqns: list[Eqn]                        # fallback equations, by index
    literals: list[np.ndarray]                  # constant buffers, by index
    workspaces: list[list[tuple[int, np.dtype]]]   # per host function: (size, dtype)
    fused: list[FusedProgram] = field(default_factory=list)

    @property
    def kernel_names(self) -> list[str]:
        return list(self.infos)


def supports(eqn: Eqn) -> bool | str:
    """Whether the cuda backend compiles ``eqn`` into a kernel (True) or why not."""
    base = default_supports(eqn)
    if base is not True:
        return base
    prim = eqn.primitive
    if prim.kind == ELEMENTWISE and prim.name != "iota":
        if not ScalarEmitter.has_rule(prim.name):
            return f"the cuda backend has no kernel code for {prim.name}"
        if prim.name == "bitcast_convert_type" and (
                eqn.invars[0].aval.dtype.itemsize not in (4, 8)
                and (eqn.invars[0].aval.dtype.kind == "f" or eqn.outvars[0].aval.dtype.kind == "f")):
            return "bitcast of 16-bit floats runs on the host"
    elif prim.kind == REDUCTION and prim.name not in REDUCTIONS:
        return f"the cuda backend has no reduction code for {prim.name}"
    elif prim.kind == OPAQUE and prim.name != "dot_general" and prim.name not in OPAQUE_KERNELS:
        return f"{prim.name} has no cuda kernel yet; it runs on the host"
    return True


class _Function:
    """Host code of one (sub-)program being written."""

    def __init__(self, lowerer: "Lowerer", index: int, ir: IR, fused: FusedProgram):
        self.L = lowerer
        self.index = index
        self.ir = ir
        self.fused = fused
        self.name = f"prog{index}"
        self.lines: list[str] = []
        self.bufs: dict[int, str] = {}
        self.workspace: list[tuple[int, np.dtype]] = []
        self._n = 0
        producer = fused.producer
        self.views = {vid: producer[vid] for vid in fused.view_ids if vid in producer}
        self.producer = producer
        self.fresh_ids = {id(v) for v in ir.outvars if isinstance(v, Var)}
        readers: dict[int, list[tuple[int, int]]] = {}
        for g in fused.groups:
            for pi, p in enumerate(g.phases):
                for vid in p.reads:
                    readers.setdefault(vid, []).append((g.index, pi))
                if g.kind == FALLBACK_GROUP:
                    for a in p.eqns[0].invars:
                        if isinstance(a, Var):
                            self.fresh_ids.add(id(a))
                    self.fresh_ids.update(p.reads)
        self.readers = readers

    # -- names and buffers
    def describe(self, atom) -> str:
        return self.fused.name(atom)

    def new_name(self) -> str:
        self._n += 1
        return f"v{self._n}"

    def buffer(self, var: Var) -> str:
        """The host name of ``var``'s buffer, allocating it if this is its first write."""
        name = self.bufs.get(id(var))
        if name is None:
            name = self.new_name()
            size = var.aval.size
            dt = np.dtype(var.aval.dtype)
            if id(var) in self.fresh_ids:
                self.lines.append(f"{name} = rt.empty({size}, np.{dt.name})")
            else:
                self.lines.append(f"{name} = ws[{len(self.workspace)}]")
                self.workspace.append((size, dt))
            self.bufs[id(var)] = name
        return name

    def operand(self, atom) -> str:
        """A buffer holding ``atom`` for host-driven code (materialising views, literals)."""
        if isinstance(atom, Literal):
            return f"rt.literal({self.L.literal(atom)})"
        if id(atom) not in self.bufs and id(atom) in self.views:
            launch = emit_materialize(self.L.mw, atom, self.L.mw.unique("k_materialize"),
                                      self.L.policy, self.views, self.describe)
            self.fresh_ids.add(id(atom))
            self.launch(launch)
        return self.bufs[id(atom)]

    def launch(self, launch: Launch) -> None:
        names = [self.buffer(v) for v in launch.args]
        block = launch.block if isinstance(launch.block, int) else f"({', '.join(map(str, launch.block))})"
        self.lines.append(f"{launch.kernel}[{launch.grid}, {block}]({', '.join(names)})")

    # -- groups
    def lower(self) -> None:
        params = []
        for v in list(self.ir.constvars) + list(self.ir.invars):
            name = f"a{len(params)}"
            params.append(name)
            self.bufs[id(v)] = name
        self.params = params
        for g in self.fused.groups:
            if g.kind == FALLBACK_GROUP:
                self._host_group(g)
                continue
            mark = (len(self.lines), dict(self.bufs), len(self.workspace))
            try:
                self._kernel_group(g)
            except (fi.NotReadable, UnsupportedOnCuda) as e:
                # A safety net: a group this backend cannot generate as fused (it should
                # not happen) runs equation by equation on the host, and says so.
                self.lines[mark[0]:] = []
                self.bufs, self.workspace[mark[2]:] = mark[1], []
                reason = (getattr(e, "message", None) or str(e)).splitlines()[0]
                logger.warning("cuda backend: group %s runs on the host (%s)", g.name, reason)
                self.lines.append(f"# {g.name}: could not be generated ({reason}); runs on the host")
                for eqn in g.eqns:
                    self._host_eqn(eqn)

    def _needed(self, g: Group) -> set[int]:
        return {id(v) for v in g.outputs} | {id(v) for v in g.internal}

    def _kernel_group(self, g: Group) -> None:
        needed = self._needed(g)
        phases = g.phases
        i = 0
        while i < len(phases):
            p = phases[i]
            base = g.name if len(phases) == 1 else f"{g.name}_{i}"
            name = self.L.mw.unique(base)
            if p.kind == "dot":
                eqn = p.eqns[0]
                nxt = phases[i + 1] if i + 1 < len(phases) else None
                fused_ep = (nxt is not None and nxt.kind == "loop" and not nxt.reduce_axes
                            and nxt.domain == eqn.outvars[0].aval.shape)
                out = eqn.outvars[0]
                if fused_ep:
                    ctx = self._context(nxt, needed)
                    other_readers = [r for r in self.readers.get(id(out), []) if r != (g.index, i + 1)]
                    store_dot = bool(other_readers) or id(out) in {id(v) for v in self.ir.outvars
                                                                    if isinstance(v, Var)}
                    try:
                        self.launch(emit_matmul(self.L.mw, eqn, name, self.L.policy, self.views,
                                                self.producer, store_dot, ctx, self.describe))
                        i += 2
                        continue
                    except fi.NotReadable:
                        name = self.L.mw.unique(base + "_dot")
                self.launch(emit_matmul(self.L.mw, eqn, name, self.L.policy, self.views,
                                        self.producer, True, None, self.describe))
            elif p.kind == "loop":
                ctx = self._context(p, needed)
                for launch in emit_phase(self.L.mw, ctx, name, g.kind, self.L.policy):
                    self.launch(launch)
            elif p.kind == "opaque":
                for launch in emit_opaque(self.L.mw, p.eqns[0], name, self.L.policy, self.views,
                                          self.describe):
                    self.launch(launch)
            else:  # pragma: no cover - fusion only makes these phase kinds
                raise UnsupportedOnCuda(f"unknown phase kind {p.kind!r}")
            i += 1

    def _context(self, p: Phase, needed: set[int]) -> PhaseContext:
        store = [v for e in p.eqns for v in e.outvars if id(v) in needed]
        return PhaseContext(p, self.producer, self.views, store, self.describe)

    # -- host-driven groups
    def _host_group(self, g: Group) -> None:
        eqn = g.phases[0].eqns[0]
        prim = eqn.primitive.name
        args = [self.operand(a) for a in eqn.invars]
        outs = [self.new_name() for _ in eqn.outvars]
        for v, n in zip(eqn.outvars, outs):
            self.bufs[id(v)] = n
        if prim == "cond":
            self._cond(eqn, args, outs)
        elif prim == "while":
            self._while(eqn, args, outs)
        elif prim == "scan":
            self._scan(eqn, args, outs)
        elif eqn.primitive.kind == CONTROL and any(isinstance(eqn.params.get(k), IR) for k in CALL_PARAMS):
            ir = next(eqn.params[k] for k in CALL_PARAMS if isinstance(eqn.params.get(k), IR))
            f = self.L.function(ir)
            self._assign(outs, f"{f}(rt, {', '.join(args)})")
        else:
            self.lines.append(f"# {prim}: no cuda kernel; the reference implementation runs on "
                              f"host copies")
            self._host_eqn(eqn, args, outs)

    def _host_eqn(self, eqn: Eqn, args=None, outs=None) -> None:
        """Run one equation's reference implementation on host copies of its operands."""
        if args is None:
            args = [self.operand(a) for a in eqn.invars]
            outs = [self.new_name() for _ in eqn.outvars]
            for v, n in zip(eqn.outvars, outs):
                self.bufs[id(v)] = n
                self.fresh_ids.add(id(v))
        k = self.L.host_eqn(eqn)
        self._assign(outs, f"rt.host_fallback({k}, [{', '.join(args)}])")

    def _assign(self, outs: Sequence[str], expr: str) -> None:
        if outs:
            self.lines.append(f"[{', '.join(outs)}] = {expr}")
        else:
            self.lines.append(expr)

    def _cond(self, eqn: Eqn, args, outs) -> None:
        branches = eqn.params["branches"]
        fs = [self.L.function(b) for b in branches]
        index, ops = args[0], ", ".join(args[1:])
        self.lines.append(f"_which = rt.read_index({index}, {len(fs)})")
        for i, f in enumerate(fs):
            kw = "if" if i == 0 else "elif" if i < len(fs) - 1 else "else"
            cond = f" _which == {i}" if kw != "else" else ""
            self.lines.append(f"{kw}{cond}:")
            self.lines.append(f"    _outs = {f}(rt, {ops})")
        self._assign(outs, "_outs")

    def _while(self, eqn: Eqn, args, outs) -> None:
        p = eqn.params
        fc, fb = self.L.function(p["cond_ir"]), self.L.function(p["body_ir"])
        nc, nb = p["cond_nconsts"], p["body_nconsts"]
        cconsts, bconsts, carry = args[:nc], args[nc:nc + nb], args[nc + nb:]
        self.lines.append(f"_carry = [{', '.join(carry)}]")
        self.lines.append(f"while rt.read_bool({fc}(rt, {''.join(c + ', ' for c in cconsts)}*_carry)[0]):")
        self.lines.append(f"    _carry = {fb}(rt, {''.join(c + ', ' for c in bconsts)}*_carry)")
        self._assign(outs, "_carry")

    def _scan(self, eqn: Eqn, args, outs) -> None:
        p = eqn.params
        f = self.L.function(p["body"])
        nconst, ncarry, length = p["num_consts"], p["num_carry"], p["length"]
        consts, carry, xs = args[:nconst], args[nconst:nconst + ncarry], args[nconst + ncarry:]
        xs_vars = eqn.invars[nconst + ncarry:]
        ys_vars = eqn.outvars[ncarry:]
        self.lines.append(f"_carry = [{', '.join(carry)}]")
        ys = []
        for v in ys_vars:
            name = self.new_name()
            ys.append(name)
            self.lines.append(f"{name} = rt.empty({v.aval.size}, np.{v.aval.dtype.name})")
        order = f"range({length} - 1, -1, -1)" if p["reverse"] else f"range({length})"
        self.lines.append(f"for _it in {order}:")
        slices = []
        for x, v in zip(xs, xs_vars):
            n = v.aval.size // max(length, 1)
            slices.append(f"{x}[_it * {n}:(_it + 1) * {n}]")
        call_args = ", ".join(consts + ["*_carry"] + slices)
        self.lines.append(f"    _outs = {f}(rt, {call_args})")
        self.lines.append(f"    _carry = _outs[:{ncarry}]")
        for j, (name, v) in enumerate(zip(ys, ys_vars)):
            n = v.aval.size // max(length, 1)
            self.lines.append(f"    rt.copy_into({name}, _it * {n}, _outs[{ncarry + j}])")
        self._assign(outs, "list(_carry) + [" + ", ".join(ys) + "]")

    # -- the function's source
    def source(self) -> str:
        head = f"def {self.name}(rt, {', '.join(self.params)}):" if self.params else \
            f"def {self.name}(rt):"
        body = []
        if self.workspace:
            body.append(f"ws = rt.acquire({self.index})")
        body.extend(self.lines)
        if self.workspace:
            body.append(f"rt.release({self.index}, ws)")
        rets = []
        for v in self.ir.outvars:
            if isinstance(v, Literal):
                rets.append(f"rt.literal({self.L.literal(v)})")
            else:
                rets.append(self.bufs[id(v)])
        body.append(f"return [{', '.join(rets)}]")
        return head + "\n" + "\n".join("    " + line for line in body) + "\n"


class Lowerer:
    """Lowers a program and its sub-programs into one ``ModuleWriter``."""

    def __init__(self, policy: LaunchPolicy, title: str):
        self.policy = policy
        self.mw = ModuleWriter(title)
        self.functions: list[_Function] = []
        self._by_ir: dict[int, str] = {}
        self._keep: list[Any] = []
        self.host_eqns: list[Eqn] = []
        self.literals: list[np.ndarray] = []
        self._literal_index: dict[tuple, int] = {}

    def literal(self, lit: Literal) -> int:
        value = np.asarray(lit.value, dtype=lit.aval.dtype)
        key = (value.dtype.str, value.tobytes())
        k = self._literal_index.get(key)
        if k is None:
            k = len(self.literals)
            self.literals.append(value.reshape(1))
            self._literal_index[key] = k
        return k

    def host_eqn(self, eqn: Eqn) -> int:
        self.host_eqns.append(eqn)
        return len(self.host_eqns) - 1

    def function(self, ir: IR, closed: ClosedIR | None = None) -> str:
        """Lower ``ir`` into a host function (once per IR object); returns its name."""
        found = self._by_ir.get(id(ir))
        if found is not None:
            return found
        closed = closed or ClosedIR(ir, [None] * len(ir.constvars))
        self._keep.append(ir)
        fused = fuse(closed, supports)
        fn = _Function(self, len(self.functions), ir, fused)
        self.functions.append(fn)
        self._by_ir[id(ir)] = fn.name
        fn.lower()
        return fn.name

    def program(self, closed: ClosedIR) -> Program:
        entry = self.function(closed.ir, closed)
        for fn in self.functions:
            self.mw.add_host(fn.source())
        return Program(self.mw.title, self.mw.source(), entry, dict(self.mw.infos),
                       self.host_eqns, self.literals, [fn.workspace for fn in self.functions],
                       [fn.fused for fn in self.functions])


def lower(closed: ClosedIR, policy: LaunchPolicy, title: str = "jitgrad cuda program") -> Program:
    """Lower ``closed`` (an optimised IR) into a ``Program`` for ``policy``'s launch sizes."""
    return Lowerer(policy, title).program(closed)
