"""The numba CPU backend: fuse, generate one module per program, compile, cache on disk.

``compile(closed_ir)`` runs the fusion pass (``jitgrad.passes.fusion``) with this
backend's ``supports`` rule, generates one Python module holding a numba function per
kernel and an ``@njit`` entry function per segment (``codegen``), loads it through the
disk cache (``loader``, ``jitgrad.backends.cache``) and returns a ``CpuExecutable``.
``executable.source`` is the generated code and ``executable.fused`` the fusion report.

Lowered natively: every elementwise primitive and reduction, the layout ops (as index
maps, never copies unless a result must be materialised), dot_general (BLAS for float32
and float64, loops otherwise), cumulative ops, gather/scatter and dynamic slices, for
bool, (u)int8-64, float32 and float64. Anything else (control flow, float16, effects
such as debug callbacks) runs through its reference implementation as a *fallback*
equation between numba segments; ``str(executable.fused)`` lists them.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

from ...core.ir import ClosedIR, Eqn
from ...core.primitive import CONTROL, ELEMENTWISE, LAYOUT, OPAQUE, REDUCTION
from ...passes import fusion, fusion_index
from .. import cache
from . import numba_startup

# Before anything makes numba load its implementations (the BLAS cfuncs, a compile).
numba_startup.defer_scipy_probe()

from . import codegen, loader, scalar  # noqa: E402
from .executable import CpuExecutable  # noqa: E402

__all__ = ["compile", "supports", "stats", "kernel_module", "CpuExecutable"]

SUPPORTED_DTYPES = frozenset(np.dtype(d) for d in (
    np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64,
    np.float32, np.float64))
NATIVE_OPAQUE = frozenset({"dot_general", "cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp",
                           "gather", "scatter", "dynamic_slice", "dynamic_update_slice"})


def supports(eqn: Eqn) -> bool | str:
    """True if this backend lowers ``eqn`` natively, else why not (it then runs as a fallback)."""
    prim = eqn.primitive
    if getattr(prim, "has_effects", False):
        return f"{prim.name} has side effects; it runs in Python, in program order"
    if prim.kind == CONTROL:
        return f"control flow ({prim.name}) is not lowered natively yet"
    for v in list(eqn.invars) + list(eqn.outvars):
        dt = np.dtype(v.aval.dtype)
        if dt not in SUPPORTED_DTYPES:
            return f"{dt.name} values are not lowered natively"
    name = prim.name
    if prim.kind == ELEMENTWISE and (name in scalar.ELEMENTWISE or name == "iota"):
        return True
    if prim.kind == REDUCTION and name in scalar.REDUCTIONS:
        return True
    if prim.kind == LAYOUT and name in fusion_index.VIEW_PRIMITIVES:
        return True
    if prim.kind == OPAQUE and name in NATIVE_OPAQUE:
        return True
    return f"{name} has no CPU lowering yet"


@functools.lru_cache(maxsize=None)
def _generator_fingerprint() -> str:
    """A hash of the code that generates and supports the kernels: a change gives new keys
    (numba's own cache would not notice a changed helper in runtime.py)."""
    files = [Path(fusion.__file__), Path(fusion_index.__file__)]
    files += sorted(Path(__file__).parent.glob("*.py"))
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def settings() -> dict:
    """Code-generation settings that are part of every cache key."""
    return {"codegen": codegen.CODEGEN_VERSION, "generator": _generator_fingerprint(), "math": scalar.settings(),
            "parallel_min": (codegen.PARALLEL_MIN_ELEMENTS, codegen.PARALLEL_MIN_WORK), "row_limit": fusion.ROW_LIMIT}


def compile(closed: ClosedIR, options: dict | None = None) -> CpuExecutable:
    """Compile ``closed`` for the CPU; the result is called with the flat argument arrays."""
    fused = fusion.fuse(closed, supports)
    plan = codegen.generate(fused)
    entries = [s.entry for s in plan.segments if isinstance(s, codegen.KernelSegment)]
    key = cache.entry_key("cpu", str(closed.ir), settings())
    module = loader.load(key, plan.source, entries) if entries else None
    return CpuExecutable(closed, fused, plan, module, key)


def kernel_module(executable: CpuExecutable):
    """A module with one Python-callable numba function per kernel of ``executable``, named
    after the kernel and taking (inputs, outputs, internal buffers): for timing kernels one
    at a time (``jitgrad.explain(..., profile=True)``). The executable itself runs each
    segment's kernels inside one entry function, which cannot be timed kernel by kernel."""
    plan = codegen.generate(executable.fused, kernels_only=True)
    key = cache.entry_key("cpu-kernels", str(executable.closed.ir), settings())
    return loader.load(key, plan.source, [])


def stats() -> dict:
    """Counters since the process started: numba compiles, disk-cache loads, in-process reuses."""
    return dict(loader.STATS)
