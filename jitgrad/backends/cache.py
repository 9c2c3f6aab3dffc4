"""The on-disk cache of compiled programs, shared by the backends.

Layout (``cache_root()`` is ``$JITGRAD_CACHE_DIR``, else ``$XDG_CACHE_HOME/jitgrad``,
else ``~/.cache/jitgrad``; every directory is created with mode 0700)::

    <root>/<backend>/jitgrad_<backend>_<key>.py              the generated module
    <root>/<backend>/jitgrad_<backend>_<key>.manifest.json   digests of everything below
    <root>/<backend>/jitgrad_<backend>_<key>.lock            serialises compiling processes
    <root>/<backend>/__pycache__/jitgrad_<backend>_<key>.*   numba's cached machine code

``key`` is a hash of the program's IR text, the backend, the versions of jitgrad,
numba, numpy, llvmlite and Python, and the code generator's settings (``entry_key``).

Trust rules. A backend regenerates a program's source on every compile (fusion and
code generation take milliseconds; numba's compile is what the cache saves) and
executes that freshly generated string, never the file: the file exists so that
numba's ``cache=True`` can key its machine code on it. If the file differs from the
fresh source (truncated, corrupted, modified, or a hash collision) it is rewritten with
a ``CacheWarning``, and numba's cached machine code for it is deleted. Numba's files are
pickles that numba loads and runs, so they are trusted only if they match the digests
this module recorded in the manifest right after numba wrote them under the lock;
anything else is deleted (with a warning if a manifest vouched for different content)
and compiled again. The 0700 directories keep other users out; the digests catch
damage and edits, not an attacker who can write the manifest too.

Concurrency: a process holds ``<key>.lock`` (``fcntl.flock``) from checking the entry
until numba has compiled or loaded it and the manifest is written, so two processes
compiling the same program do it once and never see half-written files; all writes
are temp-file + ``os.replace``. Threads of one process are serialised by the backend.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Iterator

try:  # POSIX advisory locks; elsewhere concurrent compiles still write atomically
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


class CacheWarning(UserWarning):
    """A cache entry was damaged or untrusted and has been regenerated."""


def cache_root() -> Path:
    """The per-user cache directory (not created here)."""
    explicit = os.environ.get("JITGRAD_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "jitgrad"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) with mode 0700. An existing directory is used
    as it is (the user may have chosen it deliberately)."""
    if not path.is_dir():
        try:
            path.mkdir(mode=0o700, parents=False)
        except FileNotFoundError:
            ensure_private_dir(path.parent)
            try:
                path.mkdir(mode=0o700)
            except FileExistsError:
                pass
        except FileExistsError:   # another process won the race
            pass
        else:
            os.chmod(path, 0o700)   # mkdir's mode is filtered by the umask; be exact
    if not path.is_dir():
        raise NotADirectoryError(str(path))
    return path


def library_versions() -> dict[str, str]:
    """Versions that change generated or compiled code (part of every key)."""
    import llvmlite
    import numba
    import numpy

    from .. import __version__ as jitgrad_version
    return {"jitgrad": jitgrad_version, "numba": numba.__version__, "numpy": numpy.__version__,
            "llvmlite": llvmlite.__version__, "python": sys.version,
            "machine": platform.machine()}


def entry_key(backend: str, ir_text: str, settings: dict) -> str:
    """The cache key of a program: a hash of its IR text, backend, versions and settings."""
    payload = json.dumps({"backend": backend, "ir": ir_text, "versions": library_versions(),
                          "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:40]


def sha256_file(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write via a unique temp file in the same directory, fsync, then ``os.replace``."""
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class DiskCache:
    """The cache directory of one backend. See the module docstring for the rules."""

    def __init__(self, backend: str, root: Path | None = None):
        self.backend = backend
        self.root = ensure_private_dir(root or cache_root())
        self.dir = ensure_private_dir(self.root / backend)

    def module_name(self, key: str) -> str:
        return f"jitgrad_{self.backend}_{key}"

    def source_path(self, key: str) -> Path:
        return self.dir / f"{self.module_name(key)}.py"

    def manifest_path(self, key: str) -> Path:
        return self.dir / f"{self.module_name(key)}.manifest.json"

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Exclusive across processes for one key (a no-op without fcntl)."""
        if fcntl is None:   # pragma: no cover
            yield
            return
        path = self.dir / f"{self.module_name(key)}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def read_source(self, key: str) -> str | None:
        try:
            with open(self.source_path(key), "rb") as f:
                raw = f.read()
        except OSError:
            return None
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return "\x00<undecodable>"

    def artifacts(self, key: str) -> list[Path]:
        """Files other tools derived from the module (numba's index and machine code)."""
        cache = self.dir / "__pycache__"
        if not cache.is_dir():
            return []
        prefix = self.module_name(key) + "."
        return sorted(p for p in cache.iterdir() if p.name.startswith(prefix) and p.is_file()
                      and not p.name.endswith(".tmp"))

    def read_manifest(self, key: str) -> dict | None:
        try:
            with open(self.manifest_path(key), encoding="utf-8") as f:
                data = json.load(f)
            return data if isinstance(data, dict) else None
        except (OSError, ValueError):
            return None

    def purge_artifacts(self, key: str) -> None:
        for p in self.artifacts(key):
            with contextlib.suppress(OSError):
                p.unlink()
        with contextlib.suppress(OSError):
            self.manifest_path(key).unlink()

    def prepare(self, key: str, source: str) -> None:
        """Make the entry for ``key`` hold ``source`` and only trusted artifacts.

        Call with the lock held. Warns (``CacheWarning``) when it finds a damaged or
        modified entry; nothing from such an entry is ever loaded.
        """
        path = self.source_path(key)
        current = self.read_source(key)
        digest = hashlib.sha256(source.encode()).hexdigest()
        if current is not None and current != source:
            warnings.warn(
                f"jitgrad: cache entry {path} does not match the program it is named for "
                "(truncated, corrupted or modified); it was not executed and is regenerated",
                CacheWarning, stacklevel=4)
            self.purge_artifacts(key)
            current = None
        if current is None:
            write_atomic(path, source)
            os.chmod(path, 0o600)
            self.purge_artifacts(key)   # machine code compiled from another file is stale
            return
        manifest = self.read_manifest(key)
        files = self.artifacts(key)
        if not files:
            return
        recorded = (manifest or {}).get("artifacts", {})
        trusted = (isinstance(recorded, dict) and manifest.get("source_sha256") == digest
                   and set(recorded) == {p.name for p in files}
                   and all(recorded[p.name] == sha256_file(p) for p in files)) if manifest else False
        if not trusted:
            # Without any manifest the files are leftovers of an interrupted compile: drop
            # them quietly. A manifest that vouches for other content means damage.
            if manifest is not None or self.manifest_path(key).exists():
                warnings.warn(
                    f"jitgrad: compiled code cached for {path.name} does not match its recorded "
                    "digests (corrupted or modified); it was not loaded and is compiled again",
                    CacheWarning, stacklevel=4)
            self.purge_artifacts(key)

    def record(self, key: str, source: str) -> None:
        """Record the digests of the entry's artifacts (call with the lock held, after compiling)."""
        files = self.artifacts(key)
        data = {"source_sha256": hashlib.sha256(source.encode()).hexdigest(),
                "artifacts": {p.name: sha256_file(p) for p in files}}
        if self.read_manifest(key) != data:
            write_atomic(self.manifest_path(key), json.dumps(data, indent=1, sort_keys=True))
