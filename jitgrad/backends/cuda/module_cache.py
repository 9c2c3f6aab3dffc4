"""Generated cuda modules on disk: written once, verified, imported from their file.

Each module is stored as ``<cache>/cuda/jgcuda_<hash>.py``, where the hash covers the
source text and the versions of jitgrad and numba. The directory is created private
(0700); a file is written to a temporary name and renamed into place, so another
process never sees half a module; and an existing file is used only if its content
hashes to its name: a damaged or foreign file is rewritten, never imported.

Importing from a real file (rather than ``exec``) lets numba cache the compiled kernels
next to it (``@cuda.jit(cache=True)``), so a second process does not compile them again.
``JITGRAD_CACHE_DIR`` moves the cache; with ``jitgrad.config.update("cache", False)``
modules go to a per-process temporary directory instead.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import threading

_lock = threading.Lock()
_tmpdir: str | None = None


def cache_dir() -> str:
    """The directory holding generated cuda modules (created 0700)."""
    global _tmpdir
    from ...core.config import config
    if not config.read("cache"):
        if _tmpdir is None:
            _tmpdir = tempfile.mkdtemp(prefix="jitgrad-cuda-")
        return _tmpdir
    root = os.environ.get("JITGRAD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "jitgrad")
    path = os.path.join(root, "cuda")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def module_key(source: str) -> str:
    """The content hash naming a module (source + library versions)."""
    import numba
    import jitgrad
    text = f"jitgrad={getattr(jitgrad, '__version__', '?')};numba={numba.__version__}\n{source}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _digest_ok(path: str, source: str) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read() == source
    except OSError:
        return False


def load(source: str):
    """Import the module with this source text (writing it to the cache first if needed)."""
    key = module_key(source)
    name = f"jgcuda_{key}"
    with _lock:
        mod = sys.modules.get(name)
        if mod is not None:
            return mod
        directory = cache_dir()
        path = os.path.join(directory, name + ".py")
        if not _digest_ok(path, source):
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=name, suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(source)
                os.replace(tmp, path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            del sys.modules[name]
            raise
        return mod
