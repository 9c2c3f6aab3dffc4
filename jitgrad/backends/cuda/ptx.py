"""Compile generated kernels to PTX and assemble them with ``ptxas``, without a GPU.

The simulator runs kernels as Python, so it accepts code the real compiler rejects
(an untyped constant that makes float64 code, a function libdevice lacks). This module
compiles every kernel of a generated program with ``numba.cuda.compile_ptx`` for a
compute capability, and assembles the PTX with ``ptxas -v`` to read the registers and
shared memory each kernel uses. It needs NVVM (and, for NVIDIA's ``numba-cuda``, NVRTC):
``pip install "jitgrad[cuda-ptx]"`` installs a matching set (see pyproject.toml), or a
CUDA toolkit provides it. Run in a process *without* ``NUMBA_ENABLE_CUDASIM``.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sysconfig
import tempfile
from dataclasses import dataclass

import numpy as np

INSTALL_HINT = ('Install the PTX toolchain: pip install -e ".[cuda-ptx]" (numba-cuda with NVRTC, '
                'NVVM and ptxas 13.0 from the package index), or a CUDA 13.0 toolkit.')


class PTXToolchainError(RuntimeError):
    """compile_ptx or ptxas is missing or unusable here; the message says what to install."""


@dataclass
class Resources:
    """What ``ptxas -v`` reports for one kernel."""

    registers: int
    shared_bytes: int
    stack_bytes: int
    spill_bytes: int
    text: str


def kernel_signature(info):
    """numba's signature of a generated kernel: every argument a flat C-contiguous array."""
    from numba import types
    from numba.np.numpy_support import from_dtype
    return tuple(types.Array(from_dtype(np.dtype(d)), 1, "C") for d in info.arg_dtypes)


def compile_program(program, module, cc: tuple[int, int]) -> dict[str, str]:
    """``{kernel name: PTX text}`` for every kernel of ``program`` (loaded as ``module``)."""
    from numba import cuda
    out = {}
    for name, info in program.infos.items():
        fn = getattr(module, name).py_func
        ptx, _ = cuda.compile_ptx(fn, kernel_signature(info), cc=cc)
        out[name] = ptx
    return out


def check_compile_ptx() -> str:
    """Compile a trivial kernel; returns which numba.cuda is used, or raises with advice."""
    import numba
    if getattr(numba.config, "ENABLE_CUDASIM", 0):
        raise PTXToolchainError("PTX cannot be compiled under NUMBA_ENABLE_CUDASIM=1; run "
                                "without it.")
    try:
        from numba import cuda, types

        def probe(a):
            i = cuda.grid(1)
            if i < a.size:
                a[i] = a[i] + np.float32(1)
        cuda.compile_ptx(probe, (types.Array(types.float32, 1, "C"),), cc=(8, 0))
    except Exception as e:  # noqa: BLE001 - any failure means: no toolchain
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PTXToolchainError(f"numba.cuda.compile_ptx does not work here ({type(e).__name__}: "
                                f"{first}). {INSTALL_HINT}") from None
    return getattr(cuda, "implementation", "numba.cuda")


def find_ptxas() -> str:
    """The ptxas to use: the pip one next to NVIDIA's NVVM wheel first, else the system's."""
    candidates = []
    purelib = sysconfig.get_paths()["purelib"]
    candidates += sorted(glob.glob(os.path.join(purelib, "nvidia", "cu*", "bin", "ptxas")))
    candidates += sorted(glob.glob(os.path.join(purelib, "nvidia", "cuda_nvcc", "bin", "ptxas")))
    which = shutil.which("ptxas")
    if which:
        candidates.append(which)
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home:
            candidates.append(os.path.join(home, "bin", "ptxas"))
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise PTXToolchainError(f"ptxas was not found. {INSTALL_HINT}")


_USED = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")
_STACK = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores")


def assemble(ptx: str, arch: str, ptxas: str | None = None) -> Resources:
    """Assemble ``ptx`` for ``arch`` ('sm_90') with ``ptxas -v``; returns its resource report."""
    ptxas = ptxas or find_ptxas()
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "k.ptx"), os.path.join(d, "k.cubin")
        with open(src, "w") as f:
            f.write(ptx)
        proc = subprocess.run([ptxas, "-v", f"-arch={arch}", src, "-o", dst],
                              capture_output=True, text=True, timeout=120)
    text = proc.stdout + proc.stderr
    if proc.returncode != 0:
        hint = f" {INSTALL_HINT}" if "Unsupported .version" in text else ""
        raise PTXToolchainError(f"ptxas ({ptxas}) failed for {arch}:\n{text.strip()}{hint}")
    used = _USED.search(text)
    smem = _SMEM.search(text)
    stack = _STACK.search(text)
    return Resources(int(used.group(1)) if used else -1, int(smem.group(1)) if smem else 0,
                     int(stack.group(1)) if stack else 0, int(stack.group(2)) if stack else 0,
                     text)
