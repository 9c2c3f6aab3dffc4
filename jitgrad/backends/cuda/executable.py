"""A compiled cuda program: its loaded module, its host runtime, and how it is called.

``CudaExecutable`` is what ``jit`` caches. Two ways to call it:

* ``call_arrays(leaves)`` (what ``jit`` uses): arguments are jitgrad arrays, numpy arrays
  or scalars; GPU arrays are used in place, host values are copied to the device (see
  ``array.device_buffer``); results are ``DeviceArrayImpl``\\ s that stay on the GPU.
* ``__call__(*numpy_arrays)``: the host protocol every backend's executable has
  (numpy in, numpy out), for tests and tools.

The generated module is written to the disk cache (``module_cache``) and imported from
there, so tracebacks and profilers show its source, and numba can cache the kernels'
machine code next to it (``cache=True``) for the next process.
"""
from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np

from ...core.abstract import ShapedArray
from ...core.device import Device
from ...core.ir import ClosedIR
from . import runtime
from .array import DeviceArrayImpl, device_buffer
from .lowering import Program


class _Label:
    """``"argument 'x' of f"`` for argument ``i``, computed only when a message needs it."""

    def __init__(self, labels, i: int):
        self.labels, self.i = labels, i

    def __str__(self) -> str:
        labels = self.labels() if callable(self.labels) else self.labels
        return labels[self.i] if labels and self.i < len(labels) else f"argument {self.i}"


class HostRuntime:
    """The ``rt`` object the generated host functions call (buffers, pools, host steps)."""

    def __init__(self, program: Program):
        self.program = program
        self._pools: list[list[list[Any]]] = [[] for _ in program.workspaces]
        self._literals: list[Any] = [None] * len(program.literals)
        self._lock = threading.Lock()

    # -- buffers
    @staticmethod
    def empty(size: int, dtype) -> Any:
        return runtime.empty(size, dtype)

    def acquire(self, fid: int) -> list:
        """A workspace (the temporaries of host function ``fid``), reused across calls."""
        with self._lock:
            pool = self._pools[fid]
            if pool:
                return pool.pop()
        return [runtime.empty(n, dt) for n, dt in self.program.workspaces[fid]]

    def release(self, fid: int, ws: list) -> None:
        # Safe to hand out again at once: every later launch is queued after this call's.
        with self._lock:
            self._pools[fid].append(ws)

    def literal(self, k: int) -> Any:
        """The device buffer of constant ``k`` (uploaded once; arrays are immutable)."""
        buf = self._literals[k]
        if buf is None:
            buf = self._literals[k] = runtime.to_device(self.program.literals[k])
        return buf

    # -- host-driven steps
    @staticmethod
    def read_index(buf, n: int) -> int:
        """A branch index read back from the device, clamped into range (as ``cond`` does)."""
        i = int(buf.copy_to_host()[0])
        return min(max(i, 0), n - 1)

    @staticmethod
    def read_bool(buf) -> bool:
        return bool(buf.copy_to_host()[0])

    @staticmethod
    def copy_into(dst, offset: int, src) -> None:
        """``dst[offset : offset + src.size] = src`` on the device."""
        n = src.size
        if n:
            dst[offset:offset + n].copy_to_device(src)

    def host_fallback(self, k: int, bufs: Sequence[Any]) -> list:
        """Run equation ``k``'s reference implementation on host copies of its operands."""
        eqn = self.program.host_eqns[k]
        args = [runtime.to_host(b, a.aval.shape, a.aval.dtype) for b, a in zip(bufs, eqn.invars)]
        out = eqn.primitive.impl(*args, **eqn.params)
        outs = out if eqn.primitive.multiple_results else [out]
        return [runtime.to_device(np.asarray(o, dtype=v.aval.dtype)) for o, v in zip(outs, eqn.outvars)]


class CudaExecutable:
    """One compiled program (see the module docstring)."""

    def __init__(self, closed: ClosedIR, program: Program, module, device: Device):
        self.closed = closed
        self.program = program
        self.module = module
        self.device = device
        self.entry = getattr(module, program.entry)
        self.rt = HostRuntime(program)
        self.in_avals: list[ShapedArray] = list(closed.ir.in_avals)
        self.out_avals: list[ShapedArray] = list(closed.ir.out_avals)
        with runtime.device_context(device):
            self._consts = [device_buffer(c, v.aval, device, "a constant the function closes over")
                            for c, v in zip(closed.consts, closed.ir.constvars)]
        self.ir = closed.ir

    @property
    def source(self) -> str:
        """The generated module's source text."""
        return self.program.source

    @property
    def kernels(self) -> dict:
        """``{kernel name: KernelInfo}`` of the generated kernels."""
        return self.program.infos

    def call_buffers(self, bufs: Sequence[Any]) -> list:
        """Run on flat device buffers (the inputs, in order); returns flat output buffers."""
        with runtime.device_context(self.device):
            return self.entry(self.rt, *self._consts, *bufs)

    def call_arrays(self, leaves: Sequence[Any], labels=None) -> list:
        """Run on jitgrad/numpy arguments; returns ``DeviceArrayImpl`` results.

        ``labels``: the arguments' names for messages (a list, or a function returning
        one, called only if a message is needed)."""
        if len(leaves) != len(self.in_avals):
            raise TypeError(f"expected {len(self.in_avals)} arguments, got {len(leaves)}")
        bufs = []
        with runtime.device_context(self.device):
            for i, (x, aval) in enumerate(zip(leaves, self.in_avals)):
                bufs.append(device_buffer(x, aval, self.device, _Label(labels, i)))
        outs = self.call_buffers(bufs)
        return [DeviceArrayImpl(b, a, self.device) for b, a in zip(outs, self.out_avals)]

    def __call__(self, *args) -> list[np.ndarray]:
        """numpy in, numpy out (copies both ways)."""
        outs = self.call_arrays(args)
        return [np.asarray(o) for o in outs]
