"""Access to ``numba.cuda``: the real driver or numba's CUDA simulator, and launch policy.

Everything that touches the CUDA driver goes through this module, so that:

* importing jitgrad (or this backend) never initialises a driver: ``numba.cuda`` is
  imported on first use;
* asking for the GPU where there is none is one clear ``CudaUnavailableError`` that
  says how to run on numba's simulator or on the CPU instead, never a numba traceback;
* the simulator (``NUMBA_ENABLE_CUDASIM=1``, which numba reads when *it* is first
  imported) is detected once, and launches are kept small there: it runs every CUDA
  thread as a Python thread (about 0.2 ms each), so generated kernels stride over their
  data with a capped grid (``LaunchPolicy``).

``JITGRAD_CUDA_LAUNCH`` overrides the policy, e.g. ``"block=64,grid=4,tile=8,row=32"``.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ...core.device import Device
from ...core.errors import JitgradError

HOW_TO = ("To test the cuda backend without a GPU, run the process with NUMBA_ENABLE_CUDASIM=1 "
          "set before numba or jitgrad is imported (numba's CUDA simulator, slow but exact); "
          "to run on the CPU use jit(f, backend='cpu') or "
          "jitgrad.config.update('jax_platform_name', 'cpu').")


class CudaUnavailableError(JitgradError, RuntimeError):
    """The cuda backend was asked for, but there is no usable GPU, driver or simulator."""

    def __init__(self, message: str, hint: str = HOW_TO):
        super().__init__(message, hint=hint, find_source=False)


_lock = threading.Lock()
_state: dict[str, Any] = {}


def simulator_requested() -> bool:
    """True if the environment asks for numba's CUDA simulator."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0").strip() not in ("", "0")


def numba_cuda():
    """The ``numba.cuda`` module, after checking that it can run kernels here.

    Raises ``CudaUnavailableError`` (with instructions) when it cannot.
    """
    mod = _state.get("cuda")
    if mod is not None:
        return mod
    with _lock:
        if "cuda" in _state:
            return _state["cuda"]
        import numba
        sim = bool(getattr(numba.config, "ENABLE_CUDASIM", 0))
        if simulator_requested() and not sim:
            raise CudaUnavailableError(
                "NUMBA_ENABLE_CUDASIM=1 is set, but numba was imported before it was set, so "
                "numba is using the real CUDA target.",
                hint="Set NUMBA_ENABLE_CUDASIM=1 in the environment before starting Python (or "
                     "before the first `import numba` / `import jitgrad`).")
        try:
            from numba import cuda
        except ImportError as e:  # pragma: no cover - depends on the installed numba
            raise CudaUnavailableError(
                f"numba.cuda cannot be imported ({e}).",
                hint="Install NVIDIA's CUDA target for numba: pip install numba-cuda. " + HOW_TO) from None
        if not sim:
            try:
                ok = cuda.is_available()
            except Exception as e:  # pragma: no cover - depends on the machine
                ok, why = False, str(e)
            else:
                why = ""
            if not ok:
                detail = f" ({why.strip().splitlines()[0]})" if why.strip() else ""
                raise CudaUnavailableError(
                    "The cuda backend needs an NVIDIA GPU with a working CUDA driver, and none "
                    f"was found{detail}.")
        _state["cuda"] = cuda
        _state["sim"] = sim
        return cuda


def is_simulator() -> bool:
    """True when kernels run on numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    if "sim" not in _state:
        numba_cuda()
    return _state["sim"]


def is_available() -> bool:
    """True if cuda kernels can run here (a GPU and driver, or the simulator)."""
    try:
        numba_cuda()
        return True
    except CudaUnavailableError:
        return False


def list_devices() -> list[Device]:
    """The visible GPUs as ``CudaDevice``\\ s (one simulated device under the simulator)."""
    cuda = numba_cuda()
    if is_simulator():
        return [Device("cuda", 0, "CUDA simulator")]
    out = []
    for i, gpu in enumerate(cuda.gpus):
        name = gpu.name.decode() if isinstance(gpu.name, bytes) else str(gpu.name)
        out.append(Device("cuda", i, name))
    return out


def device_context(device: Device):
    """A context manager making ``device`` current for allocations and launches."""
    cuda = numba_cuda()
    if is_simulator():
        import contextlib
        return contextlib.nullcontext()
    return cuda.gpus[device.id]


# ------------------------------------------------------------------ transfers

def to_device(value: np.ndarray):
    """Copy a host array to the current device as a flat, C-contiguous device buffer."""
    cuda = numba_cuda()
    flat = np.ascontiguousarray(value).reshape(-1)
    return cuda.to_device(flat)


def empty(size: int, dtype) -> Any:
    """An uninitialised flat device buffer of ``size`` elements."""
    return numba_cuda().device_array(max(int(size), 0), dtype=np.dtype(dtype))


def to_host(buf, shape: tuple[int, ...], dtype) -> np.ndarray:
    """Copy a flat device buffer back into a host array of ``shape``."""
    dtype = np.dtype(dtype)
    if int(np.prod(shape, dtype=np.int64)) == 0:
        return np.zeros(shape, dtype)
    host = buf.copy_to_host()
    return np.asarray(host, dtype).reshape(shape)


def synchronize() -> None:
    """Wait for all launched work on the current device."""
    numba_cuda().synchronize()


# ------------------------------------------------------------------ launch policy

@dataclass(frozen=True)
class LaunchPolicy:
    """How big launches are. Kernels stride over their data, so any grid is correct.

    ``block``: threads per block of elementwise/opaque kernels; ``grid``: the cap on
    blocks (grid-stride loops cover the rest); ``tile``: the matmul tile edge (threads
    per matmul block = tile**2); ``row``: threads per block of row-wise and reduction
    kernels (a power of two, for the shared-memory tree).
    """

    block: int = 256
    grid: int = 1024
    tile: int = 16
    row: int = 128

    def blocks_for(self, n: int, per_block: int | None = None) -> int:
        """Blocks for ``n`` work items of ``per_block`` each, at least 1, at most ``grid``."""
        per = per_block or self.block
        return max(1, min(self.grid, -(-int(n) // per)))


# The simulator runs one Python thread per CUDA thread: keep launches to a handful of warps.
SIMULATOR_POLICY = LaunchPolicy(block=32, grid=2, tile=8, row=32)
GPU_POLICY = LaunchPolicy()


def _parse_policy(text: str, base: LaunchPolicy) -> LaunchPolicy:
    fields = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, _, value = part.partition("=")
        key = key.strip()
        if key not in ("block", "grid", "tile", "row") or not value.strip().isdigit():
            raise ValueError(f"JITGRAD_CUDA_LAUNCH: cannot read {part!r}; expected e.g. "
                             "'block=64,grid=4,tile=8,row=32'")
        fields[key] = int(value)
    policy = replace(base, **fields)
    if policy.row & (policy.row - 1) or policy.block & (policy.block - 1):
        raise ValueError("JITGRAD_CUDA_LAUNCH: block and row must be powers of two")
    return policy


def launch_policy() -> LaunchPolicy:
    """The policy for this process: GPU-sized, or tiny under the simulator."""
    policy = _state.get("policy")
    if policy is None:
        base = SIMULATOR_POLICY if is_simulator() else GPU_POLICY
        text = os.environ.get("JITGRAD_CUDA_LAUNCH", "")
        policy = _parse_policy(text, base) if text else base
        _state["policy"] = policy
    return policy
