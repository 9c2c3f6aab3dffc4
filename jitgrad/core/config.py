"""Global configuration flags, JAX-style: ``jitgrad.config.update("jax_enable_x64", True)``.

Each flag has a default, may be preset from an environment variable, and is read by
the stages that care (dtype canonicalisation, compile logging, backend choice, the
disk cache). Flags that change what a traced program means or how it is compiled are
listed in ``TRACE_FLAGS`` and become part of every executable's cache key, so flipping
one never reuses a program built under the old value.
"""
from __future__ import annotations

import os
from typing import Any, Callable


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


class Config:
    """The flag store. Read flags as attributes (``config.jax_enable_x64``)."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._validators: dict[str, Callable[[Any], Any]] = {}
        self._listeners: list[Callable[[str, Any], None]] = []

    def define(self, name: str, default: Any, validate: Callable[[Any], Any] = lambda v: v) -> None:
        """Declare a flag with its default value and a validator that normalises it."""
        self._values[name] = validate(default)
        self._validators[name] = validate

    def update(self, name: str, value: Any) -> None:
        """Set a flag, e.g. ``config.update("jax_enable_x64", True)``."""
        if name not in self._values:
            known = ", ".join(sorted(self._values))
            raise AttributeError(f"jitgrad.config has no flag {name!r}; known flags: {known}")
        self._values[name] = self._validators[name](value)
        for listener in self._listeners:
            listener(name, self._values[name])

    def on_update(self, listener: Callable[[str, Any], None]) -> None:
        """Call ``listener(name, value)`` after every update (used to drop stale caches)."""
        self._listeners.append(listener)

    def read(self, name: str) -> Any:
        """The current value of a flag."""
        return self._values[name]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(f"jitgrad.config has no flag {name!r}") from None

    def trace_key(self) -> tuple:
        """The flag values that change the meaning of a traced program (part of cache keys)."""
        return tuple(self._values[n] for n in TRACE_FLAGS)


def _platform(value: Any) -> str:
    value = str(value).lower()
    if value not in ("cpu", "cuda", "reference"):
        raise ValueError(f"jax_platform_name must be 'cpu', 'cuda' or 'reference', got {value!r}")
    return value


config = Config()
config.define("jax_enable_x64", _env_bool("JAX_ENABLE_X64", _env_bool("JITGRAD_ENABLE_X64", False)), bool)
config.define("log_compiles", _env_bool("JITGRAD_LOG_COMPILES", False), bool)
config.define("jax_log_compiles", False, bool)
# jit's default backend: the numba CPU backend ("reference" evaluates with numpy, op by op).
config.define("jax_platform_name", os.environ.get("JITGRAD_PLATFORM", "cpu"), _platform)
config.define("cache", _env_bool("JITGRAD_CACHE", True), bool)
config.define("debug_nans", _env_bool("JITGRAD_DEBUG_NANS", False), bool)
config.define("jax_debug_nans", False, bool)
# jitgrad.random: JAX >= 0.5's default split/random_bits scheme (see jitgrad/random.py).
config.define("jax_threefry_partitionable", _env_bool("JAX_THREEFRY_PARTITIONABLE", True), bool)
# CPU backend: vectorisable float32 exp/log/tanh/... (backends/fastmath.py) instead of libm.
config.define("fast_math", _env_bool("JITGRAD_FAST_MATH", True), bool)

# Flags whose value changes what a trace produces; part of every cache key.
TRACE_FLAGS = ("jax_enable_x64", "jax_platform_name", "debug_nans",
               "jax_threefry_partitionable", "fast_math")
