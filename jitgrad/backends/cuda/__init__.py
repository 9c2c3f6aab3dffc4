"""The cuda backend: fused groups -> numba.cuda kernels, arrays resident on the GPU.

``compile(closed_ir)`` fuses the program (``passes.fusion``), generates one module of
``numba.cuda`` kernels plus host code that launches them in order (``lowering``), loads
it from the disk cache (``module_cache``) and returns a ``CudaExecutable`` whose
results stay on the device (``array.DeviceArrayImpl``).

Modules, one job each:

==================  ===============================================================
``runtime``         numba.cuda access, simulator detection, clear errors, launch sizes
``devicelib``       the few device helpers that differ between GPU and simulator
``scalar``          elementwise primitives as typed scalar expressions (bit-exact ints)
``codegen``         module/kernel writers, reading values through layout index maps
``loops``           elementwise, reduction and row-wise kernels
``matmul``          tiled shared-memory matmul with the epilogue in the write-back
``opaque``          gather, scatter, dynamic slices, cumulative ops, materialising views
``windows``         convolution, pooling and pooling's derivatives (direct kernels)
``lowering``        groups -> kernels + host code (control flow and fallbacks)
``executable``      running a program; host runtime (workspaces, constants)
``array``           the GPU array type, eager dispatch, transfer rules
``module_cache``    generated modules on disk
``ptx``             compiling kernels to PTX and assembling them with ptxas (no GPU needed)
==================  ===============================================================

Without a GPU, set ``NUMBA_ENABLE_CUDASIM=1`` before importing jitgrad to run the same
kernels on numba's CUDA simulator (slow: tiny launches only).
"""
from __future__ import annotations

import threading

from ...core.device import register_platform
from ...core.ir import ClosedIR
from . import runtime
from .runtime import CudaUnavailableError, is_available, is_simulator  # noqa: F401

register_platform("cuda", runtime.list_devices)

_compile_lock = threading.Lock()


def default_device():
    """The device programs run on by default (the first GPU)."""
    return runtime.list_devices()[0]


def generate(closed: ClosedIR, policy=None, title: str = "jitgrad cuda program"):
    """Lower ``closed`` into a ``lowering.Program`` (source + metadata) without loading it.

    Needs no GPU: used by the PTX tests and to show the generated code.
    """
    from .lowering import lower
    return lower(closed, policy or runtime.GPU_POLICY, title)


def compile(closed: ClosedIR, options: dict | None = None):
    """An executable for ``closed`` on the default GPU (raises CudaUnavailableError if none)."""
    runtime.numba_cuda()   # a clear error now if there is no GPU and no simulator
    from .executable import CudaExecutable
    from .module_cache import load
    program = generate(closed, runtime.launch_policy())
    with _compile_lock:
        module = load(program.source)
    return CudaExecutable(closed, program, module, default_device())
