"""The callable a CPU compile returns: runs the entry functions and fallbacks in order."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...core.ir import ClosedIR, Literal, Var
from ...core.trace import to_numpy
from ...passes.fusion import FusedProgram
from .codegen import FallbackSegment, KernelSegment, ModulePlan


class _TempPool:
    """Temporaries of one segment, reused across calls; one set per concurrent call.

    ``list.pop``/``list.append`` are atomic in CPython, so threads need no lock here."""

    def __init__(self, specs: list[tuple[tuple[int, ...], np.dtype]]):
        self.specs = specs
        self.free: list[list[np.ndarray]] = []

    def acquire(self) -> list[np.ndarray]:
        try:
            return self.free.pop()
        except IndexError:
            return [np.empty(s, d) for s, d in self.specs]

    def release(self, temps: list[np.ndarray]) -> None:
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
        for seg in plan.segments:
            if isinstance(seg, KernelSegment):
                fn = getattr(module, seg.entry)
                outs = [(v.aval.shape, np.dtype(v.aval.dtype)) for v in seg.outputs]
                pool = _TempPool([(v.aval.shape, np.dtype(v.aval.dtype)) for v in seg.temps])
                self._steps.append(("kernels", fn, seg, outs, pool))
            else:
                self._steps.append(("fallback", seg))
        self._fast = self._fast_path()

    def _fast_path(self):
        """One segment and no fallbacks: a call with no per-variable bookkeeping."""
        if len(self._steps) != 1 or self._steps[0][0] != "kernels":
            return None
        _, fn, seg, out_specs, pool = self._steps[0]
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
        ndarray = np.ndarray

        def run(*args):
            args = list(args)
            for i, dt in enumerate(dtypes):
                a = args[i]
                if not (type(a) is ndarray and a.dtype == dt and a.flags.c_contiguous):
                    args[i] = np.asarray(a, dtype=dt, order="C")
            outs = [np.empty(s, d) for s, d in out_specs]
            temps = pool.acquire()
            try:
                fn(*[args[s] if type(s) is int else s for s in sources], *outs, *temps)
            finally:
                pool.release(temps)
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
        return run

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
                _, fn, seg, out_specs, pool = step
                outs = [np.empty(s, d) for s, d in out_specs]
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
