"""The callable a CPU compile returns: runs the entry functions and fallbacks in order."""
from __future__ import annotations

from typing import Any, Sequence

import functools

import numpy as np

from ...core.ir import ClosedIR, Literal, Var
from ...core.trace import to_numpy
from ...passes.fusion import FusedProgram
from ..buffers import host_pool
from .codegen import FallbackSegment, KernelSegment, ModulePlan, writes_in_place


class _TempPool:
    """The byte buffer an entry carves its temporaries from (``codegen``'s ``tbuf``), reused
    across calls; one per concurrent call. ``acquire()`` gives the entry's trailing
    arguments: ``(buffer,)``, or ``()`` for an entry without temporaries.

    ``list.pop``/``list.append`` are atomic in CPython, so threads need no lock here."""

    def __init__(self, nbytes: int):
        self.nbytes = nbytes
        self.free: list[tuple[np.ndarray]] = []

    def acquire(self) -> tuple:
        if not self.nbytes:
            return ()
        try:
            return self.free.pop()
        except IndexError:
            return (np.empty(self.nbytes, np.uint8),)

    def release(self, temps: tuple) -> None:
        if temps:
            self.free.append(temps)


class CpuExecutable:
    """Runs a compiled program: ``executable(*flat_numpy_args) -> list of numpy outputs``.

    ``source`` is the generated module's text, ``fused`` the fusion report behind it.
    """

    def __init__(self, closed: ClosedIR, fused: FusedProgram, plan: ModulePlan, module, key: str):
        self.closed = closed
        self.ir = closed.ir
        self.fused = fused
        self.plan = plan
        self.source = plan.source
        self.module = module
        self.key = key
        self._in_dtypes = [np.dtype(v.aval.dtype) for v in self.ir.invars]
        self._consts = {id(v): np.ascontiguousarray(to_numpy(c))
                        for v, c in zip(self.ir.constvars, closed.consts)}
        self._arg_ids = {id(v): i for i, v in enumerate(self.ir.invars)}
        self._steps = []
        buffers = host_pool()
        for seg in plan.segments:
            if isinstance(seg, KernelSegment):
                fn = getattr(module, seg.entry)
                # Outputs (and intermediates read by a later segment) come from the buffer
                # pool when large enough: they go back to it once nobody holds them.
                allocs = [functools.partial(buffers.empty if buffers.pooled(s, d) else np.empty,
                                            s, d)
                          for s, d in ((v.aval.shape, np.dtype(v.aval.dtype)) for v in seg.outputs)]
                pool = _TempPool(seg.temp_bytes)
                self._steps.append(("kernels", fn, seg, allocs, pool))
            else:
                self._steps.append(("fallback", seg))
        self._simple = False
        self.run_values = None
        # For callers that generate their own call code (jit's fast dispatch):
        # (entry function, its inputs as argument indices or constant arrays, output
        # allocators, (acquire, release) of temporaries or None, result -> output position).
        self.call_spec = None
        self._fast = self._fast_path()

    def _fast_path(self):
        """One segment and no fallbacks: a call with no per-variable bookkeeping."""
        if len(self._steps) != 1 or self._steps[0][0] != "kernels":
            return None
        _, fn, seg, allocs, pool = self._steps[0]
        dtypes = self._in_dtypes
        # Each entry argument: an index into the call's args, or a constant array.
        sources = [self._arg_ids.get(id(v), self._consts.get(id(v))) for v in seg.inputs]
        if any(s is None for s in sources):
            return None
        out_pos = {id(v): j for j, v in enumerate(seg.outputs)}
        results = []
        for a in self.ir.outvars:
            if isinstance(a, Literal):
                results.append(("lit", a.value))
            elif id(a) in out_pos:
                results.append(("out", out_pos[id(a)]))
            elif id(a) in self._arg_ids:
                results.append(("arg", self._arg_ids[id(a)]))
            elif id(a) in self._consts:
                results.append(("const", self._consts[id(a)]))
            else:
                return None
        simple = all(kind == "out" for kind, _ in results)
        out_index = [j for _, j in results] if simple else None
        identity_out = simple and out_index == list(range(len(seg.outputs)))
        # The entry's inputs are exactly the call's arguments, in order: pass them as they are.
        identity_in = sources == list(range(len(dtypes)))
        ndarray = np.ndarray
        acquire, release, has_temps = pool.acquire, pool.release, pool.nbytes > 0
        self._simple = simple
        self._seg = seg

        def normalise(args):
            args = list(args)
            for i, dt in enumerate(dtypes):
                a = args[i]
                if not (type(a) is ndarray and a.dtype == dt and a.flags.c_contiguous):
                    args[i] = np.asarray(a, dtype=dt, order="C")
            return args

        def run_values(args, donated=None):
            """``args``: numpy arrays of the declared shapes; usually of the declared dtype
            and C-contiguous (numba's dispatcher rejects anything else, and then they are
            converted). ``donated``: {output position: buffer to write it into}."""
            outs = [a() for a in allocs]
            if donated:
                for j, buf in donated.items():
                    outs[j] = buf
            temps = acquire() if has_temps else ()
            try:
                try:
                    if identity_in:
                        fn(*args, *outs, *temps)
                    else:
                        fn(*[args[s] if type(s) is int else s for s in sources], *outs, *temps)
                except TypeError:
                    # An argument of another dtype or layout (an eager view): convert, retry.
                    args = normalise(args)
                    fn(*[args[s] if type(s) is int else s for s in sources], *outs, *temps)
            finally:
                if has_temps:
                    release(temps)
            if identity_out:
                return outs
            if simple:
                return [outs[j] for j in out_index]
            res = []
            for kind, v in results:
                if kind == "out":
                    res.append(outs[v])
                elif kind == "arg":
                    res.append(np.array(args[v], copy=True))
                else:
                    res.append(np.array(v, copy=True))
            return res

        self.run_values = run_values
        if simple:
            self.call_spec = (fn, sources, allocs, (acquire, release) if has_temps else None,
                              out_index)

        def run(*args):
            return run_values(normalise(args))
        return run

    def donation_plan(self, donate: Sequence[int]) -> dict[int, int]:
        """For donated argument positions: {argument index: output position it can be
        written into}. A donated buffer takes an output of the same shape and dtype whose
        kernel writes it only after every read of the argument: a later kernel, or the same
        elementwise loop when both are read and written at the loop index (all loads of an
        iteration come before its stores). Only single-segment programs donate."""
        if self._fast is None or not self._simple:
            return {}
        seg = self._seg
        groups = seg.groups
        writer = {}
        for gi, g in enumerate(groups):
            for v in g.outputs:
                writer.setdefault(id(v), gi)
        taken: set[int] = set()
        plan: dict[int, int] = {}
        for i in donate:
            a = self.ir.invars[i]
            if id(a) in self._arg_ids and self._arg_ids[id(a)] != i:
                continue   # the same variable twice: not expected
            readers = [gi for gi, g in enumerate(groups) if any(v is a for v in g.inputs)]
            last_read = max(readers, default=-1)
            for j, o in enumerate(seg.outputs):
                if id(o) in self.plan.buffer_hosts:
                    continue   # its kernel writes an intermediate there first
                if j in taken or o.aval.shape != a.aval.shape or \
                        np.dtype(o.aval.dtype) != np.dtype(a.aval.dtype):
                    continue
                w = writer.get(id(o))
                if w is None:
                    continue
                if last_read < w or (last_read == w and writes_in_place(groups[w], a, o)):
                    plan[i] = j
                    taken.add(j)
                    break
        return plan

    def __repr__(self) -> str:
        kernels = len(self.fused.kernels)
        return f"<CpuExecutable: {kernels} kernel{'s' if kernels != 1 else ''}, key {self.key[:12]}>"

    def _inputs(self, args: Sequence[Any]) -> dict[int, np.ndarray]:
        env: dict[int, Any] = dict(self._consts)
        for v, a, dt in zip(self.ir.invars, args, self._in_dtypes):
            if not (type(a) is np.ndarray and a.dtype == dt and a.flags.c_contiguous):
                a = np.asarray(a, dtype=dt, order="C")
            env[id(v)] = a
        return env

    def __call__(self, *args) -> list[np.ndarray]:
        if self._fast is not None:
            return self._fast(*args)
        env = self._inputs(args)
        for step in self._steps:
            if step[0] == "kernels":
                _, fn, seg, allocs, pool = step
                outs = [alloc() for alloc in allocs]
                temps = pool.acquire()
                try:
                    fn(*[env[id(v)] for v in seg.inputs], *outs, *temps)
                finally:
                    pool.release(temps)
                for v, o in zip(seg.outputs, outs):
                    env[id(v)] = o
            else:
                self._fallback(step[1], env)
        return [self._result(a, env, args) for a in self.ir.outvars]

    def _value(self, atom, env) -> Any:
        """A value for the reference implementation: reading through unmaterialised views."""
        if isinstance(atom, Literal):
            return atom.value
        got = env.get(id(atom))
        if got is not None:
            return got
        eqn = self.fused.producer[id(atom)]
        val = np.asarray(eqn.primitive.impl(*[self._value(a, env) for a in eqn.invars], **eqn.params))
        env[id(atom)] = val
        return val

    def _fallback(self, seg: FallbackSegment, env) -> None:
        eqn = seg.eqn
        out = eqn.primitive.impl(*[self._value(a, env) for a in eqn.invars], **eqn.params)
        outs = out if eqn.primitive.multiple_results else [out]
        for v, o in zip(eqn.outvars, outs):
            # Later kernels take C-contiguous arrays of the declared dtype.
            env[id(v)] = np.asarray(o, dtype=v.aval.dtype, order="C")

    def _result(self, atom, env, args) -> np.ndarray:
        if isinstance(atom, Literal):
            return np.array(atom.value)
        if id(atom) in self._arg_ids or id(atom) in self._consts:
            return np.array(env[id(atom)], copy=True)
        val = self._value(atom, env)
        # Results computed in Python (fallbacks) may be views of inputs: return fresh arrays.
        if not val.flags.owndata or any(val is a for a in args):
            val = np.array(val, copy=True)
        return val
