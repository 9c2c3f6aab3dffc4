"""Backends: turn an optimised IR into something that runs.

Each backend module offers ``compile(closed_ir, options) -> Executable``, where an
executable is called with the flat list of argument arrays and returns the flat list of
output arrays (numpy). ``get(name)`` imports backends lazily, so ``import jitgrad`` does
not pay for numba until a program is compiled for it.
"""
from __future__ import annotations

import importlib

_MODULES = {"reference": "jitgrad.backends.reference", "cpu": "jitgrad.backends.cpu",
            "cuda": "jitgrad.backends.cuda", "gpu": "jitgrad.backends.cuda"}  # gpu: JAX's name


def register(name: str, module: str) -> None:
    """Make a backend module importable by name (``jit(f, backend=name)``)."""
    _MODULES[name] = module


def available() -> list[str]:
    """Names of the known backends."""
    return sorted(_MODULES)


def get(name: str):
    """The backend module called ``name``."""
    try:
        module = _MODULES[name]
    except KeyError:
        raise ValueError(f"unknown jitgrad backend {name!r}; known backends: "
                         f"{', '.join(available())}") from None
    return importlib.import_module(module)
