"""The machine's speed limits (memory bandwidth, BLAS GEMM rate), measured once and cached.

A benchmark number only means something next to what the hardware can do: a fused
elementwise kernel is judged against STREAM-triad bandwidth, a matmul against the BLAS
GEMM rate. ``measure_ceilings()`` measures both and caches them as JSON in the per-user
cache directory, keyed by the machine's identity, so later runs (and the CLI) get them
for free. The cache follows the project's rules (DESIGN.md, "Caching"): the directory is
created 0700, files are written atomically, and anything unreadable or foreign is
re-measured, never trusted.
"""
from __future__ import annotations

import datetime
import functools
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import socket
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .timing import time_interleaved

# Bump when the measurement method or the file layout changes: old files then miss.
SCHEMA_VERSION = 1

_FULL = dict(n_stream=1 << 25, gemm_sizes=(1024, 2048), repeat=7, gemm_repeat=5, warmup=1, gap_s=0.1)
# Quick mode is for tests: 2^20 floats (4 MiB) fit in L3, so its "bandwidth" is a cache
# number, not DRAM; it exercises the code paths, not the hardware.
_QUICK = dict(n_stream=1 << 20, gemm_sizes=(128, 256), repeat=3, gemm_repeat=3, warmup=1, gap_s=0.0)


@dataclass
class Ceilings:
    """Measured limits of this machine. Rates use the fastest repetition, as STREAM does: a ceiling is what the machine can reach, and other load only ever slows a run down."""

    triad_gbs: float        # a = b + s*c, best implementation, 3 arrays * itemsize per element
    copy_gbs: float         # a = b, counted as 2 arrays * itemsize per element
    gemm_f32_gflops: float  # np.dot float32, best size, 2 n^3 / t
    gemm_f64_gflops: float  # np.dot float64, best size
    machine: dict           # identity the cache is keyed by (see ``machine_info``)
    measured_at: str        # ISO-8601 UTC time of the measurement
    details: dict = field(default_factory=dict)  # every individual rate, for reports

    def roofline_time(self, bytes: float, flops: float, dtype: str = "float32") -> float:
        """Lower bound on seconds for a kernel moving ``bytes`` and doing ``flops``.

        ``max(bytes / triad bandwidth, flops / GEMM rate)``: the simple roofline, using
        the GEMM rate of ``dtype`` ("float32" or "float64") as the compute peak.
        """
        gflops = self.gemm_f64_gflops if np.dtype(dtype) == np.float64 else self.gemm_f32_gflops
        return max(bytes / (self.triad_gbs * 1e9), flops / (gflops * 1e9))

    def percent_of_roofline(self, seconds: float, bytes: float, flops: float,
                            dtype: str = "float32") -> float:
        """How close a measured time is to the roofline bound, in percent (100 = at the limit)."""
        return 100.0 * self.roofline_time(bytes, flops, dtype) / seconds


# ----------------------------------------------------------------------------- identity

def _cpu_model() -> str:
    """CPU model string; /proc/cpuinfo on Linux (platform.processor() is often empty there)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas_info() -> dict:
    """numpy's BLAS (name, version, kernel architecture, threads); threadpoolctl if present.

    Only the library numpy links is reported: other BLAS copies (scipy's, torch's MKL)
    appear in threadpoolctl only once something loads them, which would make the key
    depend on import order.
    """
    try:
        from threadpoolctl import threadpool_info
        numpy_dir = os.path.dirname(os.path.abspath(np.__file__))
        libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        # Wheels put numpy's BLAS in numpy.libs/ (Linux) or numpy/.libs; conda elsewhere.
        own = [i for i in libs if str(i.get("filepath", "")).startswith(numpy_dir)]
        chosen = (own or libs)[:1]
        if chosen:
            i = chosen[0]
            return {k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
    except Exception:  # threadpoolctl missing or unable to inspect: fall back to numpy
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return {"internal_api": blas.get("name"), "version": blas.get("version")}
    except Exception:
        return {"internal_api": "unknown"}


# Environment variables that change how many threads the measured loops get.
_THREAD_ENV = ("NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER", "OMP_NUM_THREADS", "OMP_WAIT_POLICY")


def _version(dist: str) -> str | None:
    """Installed version of a distribution without importing it (numba's import is slow)."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    """The identity ceilings are cached under: a change in any field means re-measuring.

    BLAS thread count and numba's threading settings are included because they change
    the ceilings as much as a different CPU would (``OPENBLAS_NUM_THREADS=1``).
    """
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "hostname": socket.gethostname(),
        "numpy": np.__version__,
        "numba": _version("numba"),
        "blas": _blas_info(),
        "env": {k: os.environ[k] for k in _THREAD_ENV if k in os.environ},
    }


# ----------------------------------------------------------------------------- cache

def cache_dir() -> Path:
    """Per-user cache directory: $JITGRAD_CACHE_DIR, else $XDG_CACHE_HOME/jitgrad, else ~/.cache/jitgrad."""
    explicit = os.environ.get("JITGRAD_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "jitgrad"


def _ensure_cache_dir(path: Path) -> Path:
    """Create ``path`` with mode 0o700 if missing. An existing directory is left as it is:
    it may be a directory the user chose on purpose, and chmod-ing it would be rude."""
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir(mode=0o700)
            os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask; be exact
        except FileExistsError:  # another process won the race; fine
            pass
    return path


def cache_path(machine: dict, quick: bool) -> Path:
    """The cache file for this machine identity (and mode: quick numbers are not real ceilings)."""
    key = json.dumps({"schema": SCHEMA_VERSION, "machine": machine, "quick": quick}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir() / f"ceilings-{'quick-' if quick else ''}{digest}.json"


def _positive_finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _load(path: Path, machine: dict, quick: bool) -> Ceilings | None:
    """Read a cache file, or None if it is missing, damaged, or for another machine/mode."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if (not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION
                or data.get("quick") != quick or data.get("machine") != machine):
            return None
        c = data["ceilings"]
        rates = [c[k] for k in ("triad_gbs", "copy_gbs", "gemm_f32_gflops", "gemm_f64_gflops")]
        if not all(_positive_finite(r) for r in rates) or not isinstance(c["measured_at"], str):
            return None
        details = c.get("details", {})
        return Ceilings(*rates, machine=machine, measured_at=c["measured_at"],
                        details=details if isinstance(details, dict) else {})
    except (OSError, ValueError, KeyError, TypeError):  # JSONDecodeError is a ValueError
        return None


def _store(path: Path, ceilings: Ceilings, quick: bool) -> None:
    """Write atomically: temp file in the same directory, fsync, then os.replace.

    Readers therefore see the old file or the whole new one, never a partial write.
    """
    _ensure_cache_dir(path.parent)
    payload = {"schema": SCHEMA_VERSION, "quick": quick, "machine": ceilings.machine,
               "ceilings": asdict(ceilings)}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ceilings-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ----------------------------------------------------------------------------- measuring

@functools.lru_cache(maxsize=None)
def _numba_kernels() -> tuple[Callable, Callable]:
    """Compile the numba triad and copy loops once per process (numba is imported lazily).

    They write into a preallocated output: allocating inside would measure page faults
    (3.5x slower here, see BASELINES.md), not bandwidth. cache=True keeps the machine
    code on disk, so later processes skip the ~1 s parallel compile.
    """
    import numba

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def triad(a, b, c, s):
        for i in numba.prange(a.shape[0]):
            a[i] = b[i] + s * c[i]

    @numba.njit(parallel=True, cache=True)
    def copy(a, b):
        for i in numba.prange(a.shape[0]):
            a[i] = b[i]

    return triad, copy


def _measure_bandwidth(n: int, repeat: int, warmup: int, gap_s: float) -> dict[str, float]:
    """GB/s of triad and copy, numba prange and numpy, on ``n`` float32 elements."""
    rng = np.random.default_rng(0)
    a = np.empty(n, np.float32)
    b = rng.standard_normal(n, dtype=np.float32)
    c = rng.standard_normal(n, dtype=np.float32)
    s = np.float32(3.0)  # a float32 scalar keeps the arithmetic in float32
    triad, copy = _numba_kernels()

    def np_triad() -> None:  # two passes into the output, no temporaries
        np.multiply(c, s, out=a)
        np.add(a, b, out=a)

    res = time_interleaved({
        "triad_numba": lambda: triad(a, b, c, s),
        "triad_numpy": np_triad,
        "copy_numba": lambda: copy(a, b),
        "copy_numpy": lambda: np.copyto(a, b),
    }, repeat=repeat, warmup=warmup, gap_s=gap_s)
    itemsize = a.itemsize
    return {name: (3 if name.startswith("triad") else 2) * itemsize * n / r.min / 1e9
            for name, r in res.items()}


def _measure_gemm(sizes: tuple[int, ...], repeat: int, warmup: int, gap_s: float) -> dict[str, float]:
    """GFLOP/s of np.dot for square float32 and float64 matrices, 2 n^3 / fastest time."""
    rng = np.random.default_rng(0)
    candidates = {}
    for dtype in (np.float32, np.float64):
        for n in sizes:
            x = rng.standard_normal((n, n)).astype(dtype)
            y = rng.standard_normal((n, n)).astype(dtype)
            out = np.empty((n, n), dtype)
            # Default arguments bind this iteration's arrays to the lambda.
            candidates[f"gemm_{np.dtype(dtype).name}_{n}"] = lambda x=x, y=y, out=out: np.dot(x, y, out=out)
    res = time_interleaved(candidates, repeat=repeat, warmup=warmup, gap_s=gap_s)
    return {name: 2 * int(name.rsplit("_", 1)[1]) ** 3 / r.min / 1e9 for name, r in res.items()}


def _measure(machine: dict, quick: bool) -> Ceilings:
    """Run all measurements. Bandwidth and GEMM are separate interleaved runs: mixing
    numba's OpenMP loops with OpenBLAS calls round by round would time their thread fight."""
    p = _QUICK if quick else _FULL
    # Other processes make every ceiling pessimistic; the load average lets readers tell.
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    bw = _measure_bandwidth(p["n_stream"], p["repeat"], p["warmup"], p["gap_s"])
    gemm = _measure_gemm(p["gemm_sizes"], p["gemm_repeat"], p["warmup"], p["gap_s"])
    return Ceilings(
        triad_gbs=max(bw["triad_numba"], bw["triad_numpy"]),
        copy_gbs=max(bw["copy_numba"], bw["copy_numpy"]),
        gemm_f32_gflops=max(v for k, v in gemm.items() if k.startswith("gemm_float32")),
        gemm_f64_gflops=max(v for k, v in gemm.items() if k.startswith("gemm_float64")),
        machine=machine,
        measured_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        details={**{f"{k}_gbs": v for k, v in bw.items()}, **{f"{k}_gflops": v for k, v in gemm.items()},
                 "n_stream": p["n_stream"], "quick": quick, "load_avg_1min": load},
    )


def measure_ceilings(refresh: bool = False, quick: bool = False) -> Ceilings:
    """This machine's ceilings, from the cache when a valid entry exists, else measured and cached.

    ``refresh=True`` measures even if cached. ``quick=True`` uses small sizes (seconds,
    for tests) and is cached separately, so it never stands in for a full measurement.
    A full measurement takes ~10-20 s on 2 cores and allocates ~400 MiB.
    """
    machine = machine_info()
    path = cache_path(machine, quick)
    if not refresh:
        cached = _load(path, machine, quick)
        if cached is not None:
            return cached
    ceilings = _measure(machine, quick)
    try:
        _store(path, ceilings, quick)
    except OSError as e:  # a read-only or full disk should not cost the caller the numbers
        warnings.warn(f"jitgrad: could not cache ceilings in {path.parent}: {e}", stacklevel=2)
    return ceilings
