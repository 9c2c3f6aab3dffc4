"""Devices: where an array's data lives (the host CPU, or one GPU).

A ``Device`` is a small immutable record (platform, id) as in JAX: ``CpuDevice(id=0)``,
``CudaDevice(id=0)``. The core knows only the host device; accelerator backends register
a *lister* for their platform (``register_platform``), called lazily the first time
``jitgrad.devices("cuda")`` asks, so that importing jitgrad never touches a GPU driver.

Every concrete array knows its device (``x.device``, ``x.devices()``): a host array
(``ArrayImpl``) is on ``CPU_DEVICE``; a GPU array carries its ``CudaDevice``.
"""
from __future__ import annotations

from typing import Callable


class Device:
    """One place where arrays live and programs run: ``platform`` ('cpu', 'cuda') and ``id``."""

    __slots__ = ("platform", "id", "device_kind", "_name")

    def __init__(self, platform: str, id: int, device_kind: str = ""):
        self.platform = platform
        self.id = int(id)
        self.device_kind = device_kind or platform
        self._name = f"{platform}:{self.id}"

    def __eq__(self, other) -> bool:
        return isinstance(other, Device) and (self.platform, self.id) == (other.platform, other.id)

    def __hash__(self) -> int:
        return hash((self.platform, self.id))

    def __str__(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"{'Cpu' if self.platform == 'cpu' else self.platform.capitalize()}Device(id={self.id})"


# The host: every numpy-backed array lives here; the 'cpu' and 'reference' backends run here.
CPU_DEVICE = Device("cpu", 0, "cpu")

# Backend names that run on the host CPU.
HOST_PLATFORMS = ("cpu", "reference")

_listers: dict[str, Callable[[], list[Device]]] = {"cpu": lambda: [CPU_DEVICE]}


def register_platform(platform: str, lister: Callable[[], list[Device]]) -> None:
    """Let ``devices(platform)`` list an accelerator's devices (called lazily, may raise)."""
    _listers[platform] = lister


def platform_of(backend: str) -> str:
    """The device platform a backend runs on: 'reference' and 'cpu' run on 'cpu'; 'gpu' is 'cuda'."""
    backend = backend.lower()
    if backend in HOST_PLATFORMS:
        return "cpu"
    if backend == "gpu":
        return "cuda"
    return backend


def list_devices(platform: str) -> list[Device]:
    """The devices of ``platform`` (raises the backend's own error if it has none).

    An accelerator's lister exists once its backend module is imported; the user-level
    ``jitgrad.devices`` imports it first (the core does not import backends).
    """
    platform = platform_of(platform)
    try:
        lister = _listers[platform]
    except KeyError:
        known = ", ".join(sorted(_listers))
        raise ValueError(f"unknown jitgrad platform {platform!r}; known platforms: {known}") \
            from None
    return lister()
