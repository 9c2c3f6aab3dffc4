"""Seeing what the compiler did: ``jitgrad.explain`` and ``jitgrad.to_dot``.

``jitgrad.explain(f, **jit_kwargs)(*args)`` compiles ``f`` for these arguments the way
``jit`` does, step by step, and returns an :class:`Explanation` whose ``str()`` shows:

1. the traced IR;
2. each optimisation pass with what it changed, and the IR after every pass that
   changed something (``jitgrad.passes.optimize_with_report``);
3. the kernels: the fusion groups the executable was compiled from, with the
   operations each fuses, the bytes it reads and writes and its flops, and for each two
   neighbouring groups left apart, the fusion pass's reason;
4. the generated source of the kernels (backends that generate code);
5. the time spent tracing, optimising and compiling;
6. with ``profile=True``, the time per kernel of real runs (median of ``profile_runs``).

The groups are taken from the executable itself (``executable.fused``, the
``FusedProgram`` its code was generated from), so what explain shows is what runs. The
reference backend runs the IR one equation at a time, so there each equation is a
kernel of its own.

``jitgrad.to_dot(f, path=None, **jit_kwargs)(*args)`` returns the same program as
Graphviz DOT text (one node per equation, fused groups drawn as clusters). With
``path=...svg``/``.png`` it also renders the picture when the ``graphviz`` Python package or
the ``dot`` program is installed, and says clearly when neither is (``.dot`` paths are
written as text).
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .benchmarking.cost import eqn_flops, nbytes
from .benchmarking.report import format_table, format_time
from .core.abstract import ShapedArray
from .core.ir import ClosedIR, Eqn, IR, Literal, Var, pretty_print
from .core.pytree import tree_flatten, tree_unflatten
from .core.trace import to_numpy, trace_to_ir

__all__ = ["explain", "to_dot", "Explanation", "Kernel"]


# ----------------------------------------------------------------------------- data

@dataclass
class Kernel:
    """One kernel of the compiled program, as explain shows it.

    ``group`` is the fusion pass's ``Group`` object the backend compiled (None on the
    reference backend, where every equation runs on its own).
    """

    index: int
    name: str
    kind: str
    eqns: list[Eqn]
    inputs: list[Var]
    outputs: list[Var]
    note: str = ""
    group: Any = None

    @property
    def ops(self) -> list[str]:
        """The primitive names this kernel computes, in order."""
        return [e.primitive.name for e in self.eqns]

    @property
    def bytes_read(self) -> int:
        return sum(nbytes(v.aval) for v in self.inputs)

    @property
    def bytes_written(self) -> int:
        return sum(nbytes(v.aval) for v in self.outputs)

    @property
    def flops(self) -> int:
        return sum(eqn_flops(e) for e in self.eqns)


@dataclass
class Separation:
    """Kernels ``before`` and ``after`` (indices) were left apart, for ``reason``."""

    before: int
    after: int
    reason: str


@dataclass
class Explanation:
    """What ``jit`` does with one function for one argument signature. ``str()`` shows it all."""

    function: str
    backend: str
    signature: str
    traced: ClosedIR
    optimized: ClosedIR
    pass_reports: list = field(default_factory=list)
    passes_note: str = ""
    fused: Any = None                 # the FusedProgram the executable was compiled from
    kernels: list[Kernel] = field(default_factory=list)
    separations: list[Separation] = field(default_factory=list)
    source: str | None = None
    source_note: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    profile: list[dict] | None = None
    profile_note: str = ""
    executable: Any = None
    names: dict[int, str] = field(default_factory=dict)

    @property
    def groups(self) -> list[Any]:
        """The fusion groups the executable was compiled from (``fused.groups``), in order."""
        return list(self.fused.groups) if self.fused is not None else []

    # -- rendering
    def name(self, atom: Any) -> str:
        if isinstance(atom, Literal):
            v = atom.value.item()
            return repr(v)
        return self.names.get(id(atom), "?")

    def describe_eqn(self, eqn: Eqn) -> str:
        if self.fused is not None and hasattr(self.fused, "describe_eqn"):
            return self.fused.describe_eqn(eqn)
        outs = " ".join(f"{self.name(v)}:{v.aval.str_short()}" for v in eqn.outvars) or "_"
        args = " ".join(self.name(a) for a in eqn.invars)
        return f"{outs} = {eqn.primitive.name} {args}".rstrip()

    def _section(self, title: str) -> list[str]:
        return ["", f"== {title} " + "=" * max(3, 72 - len(title))]

    def __str__(self) -> str:
        out = [f"jitgrad.explain: {self.function}({self.signature}) on backend '{self.backend}'"]
        n = len(self.traced.ir.eqns)
        out += self._section(f"traced IR ({n} equation{'s' * (n != 1)})")
        out.append(pretty_print(self.traced.ir))

        out += self._section("optimisation passes")
        if self.passes_note:
            out.append(self.passes_note)
        for r in self.pass_reports:
            mark = "*" if r.changed else " "
            out.append(f"{mark} [round {r.round}] {r.description}")
            if r.changed:
                out.append(_indent(pretty_print(r.closed.ir), 6))
        m = len(self.optimized.ir.eqns)
        out.append(f"optimised IR: {m} equation{'s' * (m != 1)} (was {n})")

        nk = len(self.kernels)
        title = f"kernels: {nk} kernel{'s' * (nk != 1)}"
        if self.fused is None:
            title += " (this backend runs one equation at a time)"
        out += self._section(title)
        apart = {s.before: s.reason for s in self.separations}
        for k in self.kernels:
            ins = " ".join(self.name(v) for v in k.inputs) or "-"
            outs = " ".join(self.name(v) for v in k.outputs) or "-"
            out.append(f"[{k.index}] {k.name} ({k.kind}): {len(k.eqns)} op{'s' * (len(k.eqns) != 1)}"
                       f" {', '.join(k.ops)}")
            out.append(f"      reads {ins} ({_bytes(k.bytes_read)}), writes {outs} "
                       f"({_bytes(k.bytes_written)}), {k.flops:,} flops")
            if k.note:
                out.append(f"      note: {k.note}")
            for e in k.eqns:
                out.append(f"        {self.describe_eqn(e)}")
            if k.index in apart:
                out.append(f"  -- not fused with [{k.index + 1}]: {apart[k.index]}")
        total_r = sum(k.bytes_read for k in self.kernels)
        total_w = sum(k.bytes_written for k in self.kernels)
        out.append(f"memory traffic of all kernels: {_bytes(total_r)} read, {_bytes(total_w)} written")

        out += self._section("generated source")
        if self.source:
            out.append(self.source.rstrip())
        else:
            out.append(self.source_note or "(this backend generates no source)")

        out += self._section("compile time")
        t = self.timings
        parts = [("trace", t.get("trace_s")), ("optimisation passes", t.get("passes_s")),
                 (f"backend compile ({self.backend})", t.get("compile_s"))]
        out.append(format_table([{"step": s, "time": format_time(v)} for s, v in parts] +
                                [{"step": "total", "time": format_time(sum(v for _, v in parts if v))}],
                                ["step", "time"]))

        if self.profile is not None or self.profile_note:
            out += self._section("profile")
            if self.profile_note:
                out.append(self.profile_note)
            if self.profile:
                total = sum(p["median_s"] for p in self.profile) or 1.0
                out.append(format_table(
                    [{"kernel": f"[{p['index']}] {p['name']}", "median": format_time(p["median_s"]),
                      "min": format_time(p["min_s"]), "share": f"{100 * p['median_s'] / total:.1f}%",
                      "GB/s": p.get("gbs")} for p in self.profile],
                    ["kernel", "median", "min", "share", "GB/s"]))
                out.append(f"sum of kernels: {format_time(sum(p['median_s'] for p in self.profile))}")
        return "\n".join(out)

    __repr__ = __str__

    def _repr_pretty_(self, p, cycle):  # IPython
        p.text(str(self))


def _indent(text: str, n: int) -> str:
    pad = " " * n
    return "\n".join(pad + line for line in text.splitlines())


def _bytes(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} B"


# ----------------------------------------------------------------------------- the pipeline

def _jit_function(f: Callable, jit_kwargs: dict):
    from .api import JitFunction
    if isinstance(f, JitFunction):
        opts = dict(static_argnums=f.static_argnums, static_argnames=f.static_argnames,
                    donate_argnums=f.donate_argnums, backend=f.backend)
        opts.update(jit_kwargs)
        return JitFunction(f.fun, **opts)
    return JitFunction(f, **jit_kwargs)


def _trace(jitted, args, kwargs) -> tuple[ClosedIR, list[Any], str]:
    """Trace as ``jit`` does: same flattening, static arguments and labels."""
    key, leaves, in_tree, static = jitted._signature(args, kwargs)
    in_avals = [ShapedArray(*sig) for sig in key[1]]
    labels = jitted._labels(args, kwargs)
    static_positions = dict(static)

    def flat_fun(*tracers):
        dyn_args, dyn_kwargs = tree_unflatten(in_tree, tracers)
        call_args, call_kwargs = jitted._merge_static(args, kwargs, dyn_args, dyn_kwargs,
                                                      static_positions)
        return tree_flatten(jitted.fun(*call_args, **call_kwargs))[0]

    closed, _ = trace_to_ir(flat_fun, in_avals, labels, description=f"jit({jitted._name})")
    sig = ", ".join(f"{lab.rsplit(' of ', 1)[0].replace('argument ', '', 1)}: {a.str_short()}"
                    .replace("'", "") for lab, a in zip(labels, in_avals))
    return closed, leaves, sig


def _optimize(traced: ClosedIR):
    """``(optimized, reports, note)``: what jit's optimiser returns, with the passes' reports."""
    from . import api
    optimized = api.optimize(traced)
    try:
        from .passes import optimize_with_report
    except ImportError:
        return optimized, [], "(the optimisation passes are not available)"
    reported, reports = optimize_with_report(traced)
    if pretty_print(reported.ir) != pretty_print(optimized.ir):
        return optimized, reports, ("note: jit's optimiser (api.optimize) produced a different IR "
                                    "than the pass pipeline reported below; the kernels are "
                                    "compiled from jit's.")
    return optimized, reports, ""


def _fused_program(executable: Any):
    """The FusedProgram an executable was compiled from, if its backend records it.

    CPU: ``executable.fused``; CUDA: ``executable.program.fused`` (a list: the program's
    own, then those of its control-flow sub-programs).
    """
    holders = [executable, getattr(executable, "program", None)]
    for holder in holders:
        fp = getattr(holder, "fused", None) if holder is not None else None
        if isinstance(fp, (list, tuple)):
            fp = fp[0] if fp else None
        if fp is not None and hasattr(fp, "groups"):
            return fp
    return None


def _source(executable: Any) -> str | None:
    """The generated source of an executable, without a leading comment block (which
    repeats the program and fusion report that explain shows anyway)."""
    for holder in (executable, getattr(executable, "program", None)):
        for attr in ("source", "generated_source", "module_source"):
            src = getattr(holder, attr, None) if holder is not None else None
            if callable(src):
                src = src()
            if isinstance(src, str) and src:
                lines = src.splitlines()
                start = 0
                while start < len(lines) and lines[start].startswith("#"):
                    start += 1
                return "\n".join(lines[start:]).strip("\n") + "\n"
    return None


def _kernels_from_fused(fp) -> tuple[list[Kernel], list[Separation]]:
    kernels = [Kernel(g.index, g.name, g.kind, list(g.eqns), list(g.inputs), list(g.outputs),
                      getattr(g, "note", ""), g) for g in fp.groups]
    seps = [Separation(s.before, s.after, s.reason) for s in getattr(fp, "apart", [])]
    return kernels, seps


def _kernels_per_eqn(ir: IR) -> list[Kernel]:
    """The reference backend's view: every equation is a step of its own."""
    kernels = []
    for i, e in enumerate(ir.eqns):
        ins, seen = [], set()
        for a in e.invars:
            if isinstance(a, Var) and id(a) not in seen:
                seen.add(id(a))
                ins.append(a)
        kernels.append(Kernel(i, f"e{i}_{e.primitive.name}", e.primitive.kind, [e], ins,
                              list(e.outvars)))
    return kernels


def _names(ir: IR) -> dict[int, str]:
    from .core.ir import _Namer
    namer = _Namer()
    for v in list(ir.constvars) + list(ir.invars):
        namer.bind(v)
    for e in ir.eqns:
        for v in e.outvars:
            namer.bind(v)
    return namer.names


def build_explanation(f: Callable, args: Sequence[Any], kwargs: dict, jit_kwargs: dict,
                      profile: bool = False, profile_runs: int = 5) -> Explanation:
    """Trace, optimise and compile ``f`` like ``jit``, recording every step (see module doc)."""
    from . import backends
    from .core.config import config
    jitted = _jit_function(f, jit_kwargs)
    backend = jitted.backend or config.jax_platform_name

    t0 = time.perf_counter()
    traced, leaves, sig = _trace(jitted, args, kwargs)
    t1 = time.perf_counter()
    optimized, reports, note = _optimize(traced)
    t2 = time.perf_counter()
    executable = backends.get(backend).compile(optimized)
    t3 = time.perf_counter()

    ex = Explanation(function=jitted._name, backend=backend, signature=sig, traced=traced,
                     optimized=optimized, pass_reports=reports, passes_note=note,
                     executable=executable, names=_names(optimized.ir),
                     timings={"trace_s": t1 - t0, "passes_s": t2 - t1, "compile_s": t3 - t2})
    fp = _fused_program(executable)
    if fp is not None:
        ex.fused = fp
        ex.kernels, ex.separations = _kernels_from_fused(fp)
        if getattr(fp, "ir", None) is not None and fp.ir is not optimized.ir:
            ex.names = _names(fp.ir)
    else:
        ex.kernels = _kernels_per_eqn(optimized.ir)
        ex.separations = [Separation(i, i + 1, f"the {backend} backend does not fuse")
                          for i in range(len(ex.kernels) - 1)]
    ex.source = _source(executable)
    if ex.source is None:
        ex.source_note = (f"(the {backend} backend interprets the IR with numpy: no generated source)"
                          if backend == "reference" else f"(the {backend} backend exposes no source)")
    if profile:
        values = [_leaf_value(x) for x in leaves]
        ex.profile, ex.profile_note = _profile(ex, values, profile_runs)
    return ex


def _leaf_value(x: Any) -> Any:
    from .api import _leaf_value as leaf_value
    return leaf_value(x)


# ----------------------------------------------------------------------------- profiling

def _profile(ex: Explanation, args: list, runs: int) -> tuple[list[dict] | None, str]:
    """Time each kernel of real runs: the backend's own per-kernel profiler when it has one,
    else (the reference backend) each equation run on its own."""
    runs = max(1, int(runs))
    hook = getattr(ex.executable, "profile", None)
    if callable(hook):
        samples = [hook(*args) for _ in range(runs)]    # each: {kernel index or name: seconds}
        return _summarise(ex, samples), f"{runs} runs, timed by the {ex.backend} backend's profiler"
    if ex.fused is None:
        samples = [_time_equations(ex.optimized, args) for _ in range(runs)]
        return _summarise(ex, samples), f"{runs} runs, each equation timed on its own"
    if _has_segments(ex.executable):
        try:
            _time_segments(ex.executable, args)          # compiles the kernels on their own
            samples = [_time_segments(ex.executable, args) for _ in range(runs)]
        except Exception as e:   # a backend whose layout changed: say so, do not fail explain
            return None, f"per-kernel profiling failed: {type(e).__name__}: {e}"
        return _summarise(ex, samples), (
            f"{runs} runs after a warm-up; each kernel called on its own from Python (a few "
            "microseconds of dispatch each), fallback equations timed in Python")
    return None, (f"the {ex.backend} backend has no per-kernel profiler (executable.profile); "
                  "only whole-program times are available: use `jitgrad bench`.")


def _has_segments(executable: Any) -> bool:
    plan = getattr(executable, "plan", None)
    return (plan is not None and hasattr(plan, "segments")
            and getattr(executable, "module", None) is not None)


def _time_segments(executable: Any, args: Sequence[Any]) -> dict[int, float]:
    """One run of a CPU executable, calling each group's kernel function on its own.

    Mirrors ``CpuExecutable.__call__`` with the backend's profiling module (one function per
    group, named after the group, taking its inputs, outputs and internal buffers in that
    order; the executable's own entries run them inline): the same buffers, the same order,
    but a clock around each kernel and each fallback equation. Keyed by group index.
    """
    from .backends.cpu import kernel_module
    ir = executable.fused.ir
    env: dict[int, Any] = {}
    for v, c in zip(ir.constvars, executable.closed.consts):
        env[id(v)] = np.ascontiguousarray(to_numpy(c))
    for v, a in zip(ir.invars, args):
        env[id(v)] = np.ascontiguousarray(np.asarray(a, dtype=v.aval.dtype))
    times: dict[int, float] = {}
    clock = time.perf_counter
    module = kernel_module(executable)
    for seg in executable.plan.segments:
        groups = getattr(seg, "groups", None)
        if groups is None:                        # a fallback equation, run in Python
            t0 = clock()
            executable._fallback(seg, env)
            times[seg.group.index] = clock() - t0
            continue
        for v in list(seg.outputs) + list(seg.temps):
            env[id(v)] = np.empty(v.aval.shape, v.aval.dtype)
        # The entry function passes its inputs to the kernels as read-only arrays: matching
        # that type lets the kernels reuse the machine code compiled for the entry.
        for v in seg.inputs:
            a = env[id(v)]
            if a.flags.writeable:
                a = a.view()
                a.flags.writeable = False
                env[id(v)] = a
        for g in groups:
            fn = getattr(module, g.name)
            params = [env[id(v)] for v in list(g.inputs) + list(g.outputs) + list(g.internal)]
            t0 = clock()
            fn(*params)
            times[g.index] = clock() - t0
    return times


def _summarise(ex: Explanation, samples: list[dict]) -> list[dict]:
    rows = []
    by_name = {k.name: k for k in ex.kernels}
    keys = list(samples[0]) if samples else []
    for key in keys:
        k = ex.kernels[key] if isinstance(key, int) and key < len(ex.kernels) else by_name.get(key)
        times = [s[key] for s in samples if key in s]
        med = statistics.median(times)
        row = {"index": k.index if k else key, "name": k.name if k else str(key),
               "median_s": med, "min_s": min(times), "gbs": None}
        if k is not None and med > 0:
            row["gbs"] = (k.bytes_read + k.bytes_written) / med / 1e9
        rows.append(row)
    return rows


def _time_equations(closed: ClosedIR, args: Sequence[Any]) -> dict[int, float]:
    """One run of the program on the reference implementations, timing every equation."""
    ir = closed.ir
    env: dict[int, Any] = {}
    for v, c in zip(ir.constvars, closed.consts):
        env[id(v)] = to_numpy(c)
    for v, x in zip(ir.invars, args):
        env[id(v)] = np.asarray(x)

    def read(a):
        return a.value if isinstance(a, Literal) else env[id(a)]

    times = {}
    clock = time.perf_counter
    for i, eqn in enumerate(ir.eqns):
        operands = [read(a) for a in eqn.invars]
        t0 = clock()
        out = eqn.primitive.impl(*operands, **eqn.params)
        times[i] = clock() - t0
        outs = out if eqn.primitive.multiple_results else [out]
        for v, o in zip(eqn.outvars, outs):
            env[id(v)] = np.asarray(o)
    return times


# ----------------------------------------------------------------------------- public API

def explain(f: Callable, *, profile: bool = False, profile_runs: int = 5,
            **jit_kwargs: Any) -> Callable[..., Explanation]:
    """``explain(f, **jit_kwargs)(*args)``: what ``jit(f, **jit_kwargs)`` does for these arguments.

    Returns an :class:`Explanation`; print it. ``profile=True`` also times each kernel over
    ``profile_runs`` real runs. ``jit_kwargs`` are ``jit``'s (``backend``, ``static_argnums``...).
    """
    def explained(*args: Any, **kwargs: Any) -> Explanation:
        return build_explanation(f, args, kwargs, jit_kwargs, profile, profile_runs)
    explained.__name__ = f"explain({getattr(f, '__name__', 'f')})"
    return explained


class DotGraph(str):
    """Graphviz DOT text (a ``str``); ``message`` says what was written where, if anything."""

    message: str = ""


def to_dot(f: Callable, *, path: str | os.PathLike | None = None,
           **jit_kwargs: Any) -> Callable[..., DotGraph]:
    """``to_dot(f, path=None, **jit_kwargs)(*args)``: the compiled program as Graphviz DOT text.

    Nodes are equations (layout ops that kernels read through are dashed), edges carry
    values with their shapes, and each kernel is a cluster. With ``path`` ending in
    ``.svg``/``.png``/``.pdf`` the graph is rendered with the ``graphviz`` package or the
    ``dot`` program; if neither is installed, the DOT text is written next to it
    (``path + '.dot'``) and ``message`` (also a warning) says how to get the picture.
    """
    def dotted(*args: Any, **kwargs: Any) -> DotGraph:
        ex = build_explanation(f, args, kwargs, jit_kwargs)
        graph = DotGraph(render_dot(ex))
        if path is not None:
            graph.message = _write_graph(str(graph), os.fspath(path))
        return graph
    return dotted


def _q(text: str) -> str:
    """A DOT string literal; newlines become DOT's line breaks."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_COLORS = {"matmul": "#d9e8fb", "elementwise": "#e2f5e1", "reduction": "#fdf1d6",
           "rowwise": "#fde2d6", "opaque": "#eeeeee", "fallback": "#f6d6f5"}


def render_dot(ex: Explanation) -> str:
    """The DOT text of an explanation's program (see ``to_dot``)."""
    ir = (ex.fused.ir if ex.fused is not None and getattr(ex.fused, "ir", None) is not None
          else ex.optimized.ir)
    producer: dict[int, str] = {}
    lines = [f"digraph {_q('jitgrad: ' + ex.function)} {{",
             "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="monospace", fontsize=10];',
             '  edge [fontname="monospace", fontsize=9];',
             f"  label={_q(f'{ex.function}({ex.signature}) on {ex.backend}: {len(ex.kernels)} kernels')};"]
    for i, v in enumerate(ir.constvars):
        producer[id(v)] = f"c{i}"
        lines.append(f"  c{i} [shape=note, label={_q(f'const {ex.name(v)}: {v.aval.str_short()}')}];")
    for i, v in enumerate(ir.invars):
        producer[id(v)] = f"in{i}"
        lines.append(f"  in{i} [shape=ellipse, label={_q(f'{ex.name(v)}: {v.aval.str_short()}')}];")
    eqn_node = {id(e): f"e{i}" for i, e in enumerate(ir.eqns)}
    for e in ir.eqns:
        for v in e.outvars:
            producer[id(v)] = eqn_node[id(e)]

    def node(e: Eqn, extra: str = "") -> str:
        outs = ", ".join(v.aval.str_short() for v in e.outvars) or "(effect)"
        label = e.primitive.name + "\n" + outs
        return f"{eqn_node[id(e)]} [label={_q(label)}{extra}];"

    placed = set()
    for k in ex.kernels:
        color = _COLORS.get(k.kind, "#eeeeee")
        lines.append(f"  subgraph cluster_{k.index} {{")
        lines.append(f"    label={_q(f'[{k.index}] {k.name} ({k.kind}), {_bytes(k.bytes_read + k.bytes_written)}')};")
        lines.append(f'    style="rounded,filled"; fillcolor="{color}"; color="#777777";')
        for e in k.eqns:
            placed.add(id(e))
            lines.append("    " + node(e))
        lines.append("  }")
    for e in ir.eqns:
        if id(e) not in placed:
            # Layout ops read through by kernels (index maps), or dead equations.
            lines.append("  " + node(e, ', style="dashed"'))
    for e in ir.eqns:
        for a in e.invars:
            if isinstance(a, Var) and id(a) in producer:
                lines.append(f"  {producer[id(a)]} -> {eqn_node[id(e)]} [label={_q(a.aval.str_short())}];")
    for i, a in enumerate(ir.outvars):
        lines.append(f"  out{i} [shape=ellipse, style=bold, label={_q(f'output {i}')}];")
        if isinstance(a, Var) and id(a) in producer:
            lines.append(f"  {producer[id(a)]} -> out{i};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _write_graph(dot: str, path: str) -> str:
    """Write ``dot`` to ``path`` (rendered by extension); returns what happened, in words."""
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    if fmt in ("dot", "gv", ""):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(dot)
        return f"wrote DOT to {path}"
    try:
        import graphviz  # type: ignore
        src = graphviz.Source(dot)
        data = src.pipe(format=fmt)
        with open(path, "wb") as fh:
            fh.write(data)
        return f"wrote {path} (graphviz package)"
    except ImportError:
        pass
    except Exception as e:   # the package is there but its `dot` executable is not
        if shutil.which("dot") is None:
            return _no_graphviz(dot, path, f"the graphviz package could not run dot ({e})")
    exe = shutil.which("dot")
    if exe is None:
        return _no_graphviz(dot, path, "neither the graphviz Python package nor the dot program "
                                       "is installed")
    proc = subprocess.run([exe, f"-T{fmt}", "-o", path], input=dot.encode(), capture_output=True)
    if proc.returncode != 0:
        return _no_graphviz(dot, path, f"dot failed: {proc.stderr.decode(errors='replace').strip()}")
    return f"wrote {path} (dot)"


def _no_graphviz(dot: str, path: str, why: str) -> str:
    fallback = path + ".dot"
    with open(fallback, "w", encoding="utf-8") as fh:
        fh.write(dot)
    msg = (f"cannot render {path}: {why}. Wrote the DOT text to {fallback} instead; install "
           "Graphviz (apt-get install graphviz, or pip install graphviz plus the dot program) "
           f"and run: dot -T{os.path.splitext(path)[1].lstrip('.')} {fallback} -o {path}")
    warnings.warn(msg, stacklevel=3)
    return msg
