"""Turning generated source into a loaded module: in memory, or through the disk cache.

``load(key, source)`` returns the module for ``source``, executed with numba's
``cache=True`` when the disk cache is on (``config.cache``), so a later process loads
the machine code instead of compiling. One module per key per process: threads asking
for the same key wait for the first one. ``STATS`` counts what happened (tests check
that a warm process compiles nothing).
"""
from __future__ import annotations

import linecache
import logging
import sys
import threading
import time
import types
import warnings

from ...core.config import config
from ...core.errors import JitgradError
from ..cache import CacheWarning, DiskCache

logger = logging.getLogger("jitgrad")

# compiled: entry functions numba compiled; loaded: entry functions numba loaded from the
# disk cache; reused: modules found already loaded in this process.
STATS = {"compiled": 0, "loaded": 0, "reused": 0}

_MODULES: dict[str, types.ModuleType] = {}
_KEY_LOCKS: dict[str, threading.Lock] = {}
_REGISTRY_LOCK = threading.Lock()
_WARNED_DIR = False


def load(key: str, source: str, entries: list[str]) -> types.ModuleType:
    """The executed module for ``source`` (named by ``key``), compiling only if needed."""
    with _REGISTRY_LOCK:
        lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with lock:
        mod = _MODULES.get(key)
        if mod is not None and getattr(mod, "__jitgrad_source__", None) == source:
            STATS["reused"] += 1
            return mod
        mod = _load(key, source, entries)
        _MODULES[key] = mod
        return mod


def _disk() -> DiskCache | None:
    global _WARNED_DIR
    if not config.cache:
        return None
    try:
        return DiskCache("cpu")
    except OSError as e:
        if not _WARNED_DIR:
            _WARNED_DIR = True
            warnings.warn(f"jitgrad: cannot use the cache directory ({e}); compiling without "
                          "a disk cache", CacheWarning, stacklevel=4)
        return None


def _load(key: str, source: str, entries: list[str]) -> types.ModuleType:
    disk = _disk()
    t0 = time.perf_counter()
    if disk is None:
        mod = _exec(f"jitgrad_cpu_{key}", source, f"<jitgrad-cpu-{key}>", cache=False)
    else:
        with disk.lock(key):
            disk.prepare(key, source)
            mod = _exec(disk.module_name(key), source, str(disk.source_path(key)), cache=True)
            disk.record(key, source)
    compiled = loaded = 0
    for name in entries:
        stats = getattr(mod, name).stats
        if sum(stats.cache_hits.values()):
            loaded += 1
        else:
            compiled += 1
    STATS["compiled"] += compiled
    STATS["loaded"] += loaded
    logger.info("jitgrad cpu: %s module %s in %.2f s", "compiled" if compiled else
                "loaded cached", key[:12], time.perf_counter() - t0)
    return mod


def _exec(name: str, source: str, filename: str, cache: bool) -> types.ModuleType:
    """Execute ``source`` (never the file's content) as module ``name``.

    The module is registered in ``sys.modules`` (numba's cache needs to find it again by
    name); ``filename`` is where numba keys its cache (and tracebacks point)."""
    from numba.core.errors import NumbaPerformanceWarning

    mod = types.ModuleType(name)
    mod.__file__ = filename
    mod._JITGRAD_DISK_CACHE = cache
    mod.__jitgrad_source__ = source
    if not cache:
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    sys.modules[name] = mod
    try:
        with warnings.catch_warnings():
            # np.dot on a transposed view: numba warns that it copies; that is the plan.
            warnings.simplefilter("ignore", NumbaPerformanceWarning)
            exec(compile(source, filename, "exec"), mod.__dict__)
    except Exception as e:
        sys.modules.pop(name, None)
        raise BackendCompileError(
            f"the cpu backend failed to compile a program: {type(e).__name__} from numba "
            f"(an internal error of jitgrad's code generator; generated module: {filename})",
            hint="Please report it with the program. Meanwhile jit(f, backend='reference') "
                 "runs it.", find_source=False) from e
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return mod


class BackendCompileError(JitgradError, RuntimeError):
    """numba rejected code the backend generated (a bug in jitgrad, not in the program)."""
