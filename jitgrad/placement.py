"""Devices and data placement, with JAX's names: ``devices``, ``device_put``, ``device_get``.

    import jitgrad
    gpu = jitgrad.devices("cuda")[0]          # CudaDevice(id=0)
    params = jitgrad.device_put(params, gpu)   # a pytree, copied to the GPU once
    step = jitgrad.jit(train_step, backend="cuda")
    params = step(params, x, y)                # weights stay on the GPU between calls
    host = jitgrad.device_get(params)          # numpy arrays again

Backend names: ``"cpu"`` and ``"reference"`` run on the host (``CpuDevice(id=0)``),
``"cuda"`` (or ``"gpu"``) on NVIDIA GPUs. The default is ``config.jax_platform_name``
(``JITGRAD_PLATFORM`` in the environment). Asking for cuda where there is no GPU raises
``CudaUnavailableError``, whose message says how to use numba's simulator
(``NUMBA_ENABLE_CUDASIM=1`` set before importing jitgrad) or the CPU instead.

``jax_transfer_guard`` (``"log"`` by default, or ``"allow"``/``"disallow"``; also the
``JITGRAD_TRANSFER_GUARD`` environment variable) decides what happens when a jitgrad
host array is copied to the GPU implicitly because it meets GPU arrays; see
``jitgrad.backends.cuda.array`` for the full rules. Unlike JAX, host *input data*
(numpy arrays, Python scalars) is always copied without a log.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from .core.array import Array, ArrayImpl
from .core.config import config
from .core.device import CPU_DEVICE, Device, list_devices, platform_of
from .core.pytree import tree_map


def _guard_mode(value: Any) -> str:
    value = str(value).lower()
    if value not in ("allow", "log", "disallow"):
        raise ValueError(f"jax_transfer_guard must be 'allow', 'log' or 'disallow', got {value!r}")
    return value


if "jax_transfer_guard" not in config._values:
    config.define("jax_transfer_guard", os.environ.get("JITGRAD_TRANSFER_GUARD", "log"), _guard_mode)


def default_backend() -> str:
    """The backend ``jit`` uses when none is given (``config.jax_platform_name``)."""
    return config.read("jax_platform_name")


def _ensure_backend(platform: str) -> None:
    if platform == "cuda":
        from . import backends
        backends.get("cuda")   # registers the cuda device lister


def devices(backend: str | None = None) -> list[Device]:
    """The devices of ``backend`` (default: the default backend), as ``jax.devices``.

    ``devices("cpu")`` is ``[CpuDevice(id=0)]``; ``devices("cuda")`` lists the GPUs (one
    simulated device under ``NUMBA_ENABLE_CUDASIM=1``) or raises ``CudaUnavailableError``.
    """
    platform = platform_of(backend or default_backend())
    _ensure_backend(platform)
    return list_devices(platform)


def local_devices(backend: str | None = None) -> list[Device]:
    """The same as ``devices`` (jitgrad runs in one process)."""
    return devices(backend)


def device_count(backend: str | None = None) -> int:
    """How many devices ``backend`` has."""
    return len(devices(backend))


def _to_device(x: Any, device: Device) -> Any:
    from .core.trace import Tracer, get_aval
    if isinstance(x, Tracer):
        return x      # inside a trace placement is the executable's business (as in JAX)
    if device.platform == "cpu":
        if isinstance(x, ArrayImpl):
            return x
        if isinstance(x, Array):     # from a GPU: an explicit copy
            return ArrayImpl(np.asarray(x), x.weak_type)
        aval = get_aval(x)
        return ArrayImpl(np.array(x, dtype=aval.dtype), aval.weak_type)
    if device.platform == "cuda":
        from .backends.cuda import runtime
        from .backends.cuda.array import DeviceArrayImpl
        if type(x) is DeviceArrayImpl:
            if x.device == device:
                return x
            host = np.asarray(x)    # GPU -> GPU through the host (explicitly asked for)
            aval = x.aval
        else:
            aval = get_aval(x)
            host = np.asarray(x, dtype=aval.dtype)
        with runtime.device_context(device):
            buf = runtime.to_device(host)
        return DeviceArrayImpl(buf, aval, device)
    raise ValueError(f"device_put: unknown device {device!r}")


def device_put(x: Any, device: Device | str | None = None) -> Any:
    """Copy every array of the pytree ``x`` to ``device`` (default: the default backend's
    first device); arrays already there are returned as they are. ``device`` may also be
    a backend name ("cuda", "cpu")."""
    if device is None or isinstance(device, str):
        device = devices(device)[0]
    if not isinstance(device, Device):
        raise TypeError(f"device_put: expected a jitgrad Device (see jitgrad.devices()), "
                        f"got {type(device).__name__}")
    return tree_map(lambda a: _to_device(a, device), x)


def device_get(x: Any) -> Any:
    """The pytree ``x`` with every array copied to a numpy array on the host."""
    return tree_map(lambda a: np.asarray(a) if isinstance(a, Array) else a, x)


__all__ = ["devices", "local_devices", "device_count", "device_put", "device_get",
           "default_backend", "Device", "CPU_DEVICE"]
