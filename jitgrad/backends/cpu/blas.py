"""BLAS (GEMM) called directly from generated numba code, through numpy's own BLAS library.

Why not ``np.dot`` inside numba:

* numba implements ``np.dot`` with the BLAS that *scipy* exports to Cython
  (``scipy.linalg.cython_blas``). With numpy >= 2 wheels that is a second, separate OpenBLAS
  (``scipy.libs/libscipy_openblas-*.so``) next to numpy's (``numpy.libs/
  libscipy_openblas64_-*.so``). Each has its own pool of busy-waiting worker threads; on a
  2-core machine a program whose GEMMs go through one pool while numpy calls in the same
  process go through the other spends most of its time with the two pools spinning
  against each other (a 3.6 ms training step measured 80 ms median).
* it makes scipy a dependency of the CPU backend; jitgrad's core needs numba and numpy only;
* it cannot accumulate (``C = A @ B + C``, BLAS ``beta=1``, which folds a bias add into the
  GEMM) and costs about 0.4 s of numba compile time per call site.

This module finds the BLAS numpy itself is linked against (it is already loaded once numpy
is imported), checks it with a tiny GEMM, and exposes numba-callable helpers:
``gemm`` (2-D), ``gemm_batched`` (3-D) and ``set_threads_local``; plus Python-level
``available()``, ``info()``, ``get_num_threads()`` and ``threads_limit()``.

Calling C from numba so that numba's on-disk cache (``cache=True``) keeps working: the
generated machine code must not contain a library address (it differs between processes).
Instead each C function's address is registered at import of this module under a
jitgrad-owned symbol name (``llvmlite.binding.add_symbol``) and numba code declares it by
that name (``numba.types.ExternalFunction``); cached object code refers to the name, which
the JIT linker resolves in a later process. Two layers use this:

* the library's ``?gemm`` and thread control, as ``jitgrad_blas_sgemm_i64`` etc. (the BLAS
  integer width is part of the name);
* ``jitgrad_gemm_f32_v1`` / ``jitgrad_gemm_f64_v1`` / ``jitgrad_set_threads_v1``: numba
  ``@cfunc``s with one fixed C interface that do the layout analysis, copies and the BLAS
  call (or loops, or nothing, when there is no BLAS). ``gemm`` and ``set_threads_local``
  are thin dispatchers calling them by name, so code calling them does not depend on which
  BLAS is present, and their call sites compile fast (numba recompiles the IR of every
  dispatcher a function calls, but not of an external symbol).

The cfuncs are compiled (or loaded from numba's cache) at import of this module, about
4 s cold and well under a second warm; import it where CPU code is generated, not eagerly.

**Import order**: cached code that calls these helpers links only if this module was
imported first, so a generated module must ``from jitgrad.backends.cpu import blas`` at its
top, before its functions load. Machine code that depends on the BLAS ABI (the cfuncs) is
cached per ``ABI_TAG``; code calling the public helpers needs no such key.

Set ``JITGRAD_BLAS=none`` in the environment to disable the library (``available()`` is then
False and ``gemm`` runs as plain loops), e.g. to test the fallback.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Iterator

import numba
import numpy as np
from llvmlite import binding as llvm
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload

__all__ = ["available", "info", "BlasInfo", "ABI_TAG", "gemm", "gemm_static", "gemm_batched",
           "set_threads_local", "get_num_threads", "threads_limit"]

# CBLAS enum values (they are the same in every CBLAS).
_ROW_MAJOR = 101
_NO_TRANS = 111
_TRANS = 112


@dataclass(frozen=True)
class BlasInfo:
    """What was found: ``available`` and, if not, ``reason``; else the library and symbols.

    ``threads`` names the C function behind ``set_threads_local`` ('' if none) and
    ``threads_thread_local`` says whether it changes only the calling thread's count (MKL)
    or, as OpenBLAS does, the process-wide count (see ``set_threads_local``).
    """
    available: bool
    reason: str
    path: str = ""
    vendor: str = ""
    int_bits: int = 0
    sgemm: str = ""
    dgemm: str = ""
    threads: str = ""
    threads_thread_local: bool = False
    get_threads: str = ""
    candidates: tuple = field(default=())


# (sgemm symbol, dgemm symbol, integer bits or 0 = decide from the library, vendor)
_GEMM_SYMBOLS = (
    ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", 64, "scipy-openblas64"),   # numpy 2 wheels
    ("cblas_sgemm64_", "cblas_dgemm64_", 64, "openblas64_"),                    # numpy 1.2x wheels
    ("scipy_cblas_sgemm", "scipy_cblas_dgemm", 32, "scipy-openblas32"),
    ("cblas_sgemm$NEWLAPACK$ILP64", "cblas_dgemm$NEWLAPACK$ILP64", 64, "accelerate"),
    ("cblas_sgemm", "cblas_dgemm", 0, "cblas"),                                 # system, MKL, ...
)
# (set function, True if it is really per-thread): both take an int and return the previous.
_THREAD_SYMBOLS = (("openblas_set_num_threads_local", False), ("MKL_Set_Num_Threads_Local", True))
_GET_THREAD_SYMBOLS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                       "openblas_get_num_threads64_", "openblas_get_num_threads",
                       "MKL_Get_Max_Threads")
_CONFIG_SYMBOLS = ("scipy_openblas_get_config64_", "scipy_openblas_get_config",
                   "openblas_get_config64_", "openblas_get_config")
_NAME_HINTS = ("blas", "mkl_rt", "libmkl", "accelerate", "veclib")


def _numpy_lib_dirs() -> list[str]:
    """Where numpy wheels vendor their BLAS (Linux/Windows: numpy.libs, macOS: .dylibs)."""
    root = os.path.dirname(np.__file__)
    return [os.path.join(os.path.dirname(root), "numpy.libs"), os.path.join(root, ".dylibs")]


def _loaded_libraries() -> list[str]:
    """Shared libraries mapped into this process (Linux /proc, macOS dyld); [] elsewhere."""
    paths: list[str] = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split(None, 5)[-1].strip() if line.count(" ") >= 5 else ""
                if p.startswith("/") and ".so" in os.path.basename(p) and p not in paths:
                    paths.append(p)
        return paths
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            dyld = ctypes.CDLL(None)
            dyld._dyld_image_count.restype = ctypes.c_uint32
            dyld._dyld_get_image_name.restype = ctypes.c_char_p
            dyld._dyld_get_image_name.argtypes = [ctypes.c_uint32]
            for i in range(dyld._dyld_image_count()):
                name = dyld._dyld_get_image_name(i)
                if name:
                    paths.append(name.decode())
        except (OSError, AttributeError):
            pass
    return paths


def _numpy_blas_name() -> str:
    """The BLAS numpy says it was built with (numpy >= 1.26 build info), for messages."""
    try:
        blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version', '')}".strip()
    except (AttributeError, KeyError, TypeError):
        return "unknown"


def _candidate_paths() -> list[str]:
    """BLAS libraries to try, numpy's own first; never scipy's (the whole point)."""
    dirs = [os.path.realpath(d) for d in _numpy_lib_dirs()]
    out: list[str] = []

    def add(p: str) -> None:
        parent = os.path.dirname(p)
        scipys = os.path.basename(parent).lower() == "scipy.libs" or \
            os.path.basename(os.path.dirname(parent)).lower() == "scipy"
        if p and p not in out and not scipys:
            out.append(p)

    loaded = [p for p in _loaded_libraries()
              if any(h in os.path.basename(p).lower() for h in _NAME_HINTS)]
    # numpy's vendored library first (it is loaded too, but scipy's may be loaded as well).
    for d in dirs:
        for p in sorted(glob.glob(os.path.join(d, "*"))):
            if any(h in os.path.basename(p).lower() for h in _NAME_HINTS):
                add(p)
    for p in loaded:
        add(p)
    for name in ("openblas", "cblas", "blas", "mkl_rt"):
        add(ctypes.util.find_library(name) or "")
    return out


def _symbol(lib: ctypes.CDLL, name: str):
    try:
        return lib[name]
    except (AttributeError, ValueError):
        return None


def _address(fn) -> int:
    return ctypes.cast(fn, ctypes.c_void_p).value


def _config_string(lib: ctypes.CDLL) -> str:
    for name in _CONFIG_SYMBOLS:
        fn = _symbol(lib, name)
        if fn is not None:
            fn.restype = ctypes.c_char_p
            fn.argtypes = []
            return (fn() or b"").decode(errors="replace")
    return ""


def _self_test(sgemm, dgemm, int_bits: int) -> str:
    """'' if both GEMMs compute a small transposed product right through ctypes, else why."""
    ci = ctypes.c_int64 if int_bits == 64 else ctypes.c_int32
    for fn, dt, ct in ((sgemm, np.float32, ctypes.c_float), (dgemm, np.float64, ctypes.c_double)):
        fn.restype = None
        fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ci, ci, ci, ct, ctypes.c_void_p,
                       ci, ctypes.c_void_p, ci, ct, ctypes.c_void_p, ci]
        a = np.arange(6, dtype=dt).reshape(2, 3)           # C = 2 * A @ B.T + C, 2x3 @ 3x4
        b = np.arange(12, dtype=dt).reshape(4, 3) - 5
        c = np.ones((2, 4), dtype=dt)
        expect = 2 * a @ b.T + c
        fn(_ROW_MAJOR, _NO_TRANS, _TRANS, 2, 4, 3, 2.0, a.ctypes.data, 3, b.ctypes.data, 3,
           1.0, c.ctypes.data, 4)
        if not np.array_equal(c, expect):
            return f"{dt.__name__} GEMM self-test gave a wrong result"
    return ""


def _discover() -> tuple[BlasInfo, dict]:
    """Find a usable BLAS; returns its description and {role: (symbol, address)}."""
    if os.environ.get("JITGRAD_BLAS", "").lower() in ("none", "0", "off"):
        return BlasInfo(False, "disabled by JITGRAD_BLAS=none"), {}
    paths = _candidate_paths()
    tried: list[str] = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path}: {e}")
            continue
        for sname, dname, bits, vendor in _GEMM_SYMBOLS:
            s, d = _symbol(lib, sname), _symbol(lib, dname)
            if s is None or d is None:
                continue
            config = _config_string(lib)
            if bits == 0:
                if config:
                    vendor = "openblas"
                    bits = 64 if "USE64BITINT" in config else 32
                elif "mkl" in os.path.basename(path).lower():
                    vendor = "mkl"
                    bits = 64 if "ILP64" in os.environ.get("MKL_INTERFACE_LAYER", "") else 32
                else:
                    bits = 32
            why = _self_test(s, d, bits)
            if why:
                tried.append(f"{path}: {why}")
                break
            syms = {"sgemm": (sname, _address(s)), "dgemm": (dname, _address(d))}
            threads, local = "", False
            for tname, is_local in _THREAD_SYMBOLS:
                t = _symbol(lib, tname)
                if t is not None:
                    syms["threads"] = (tname, _address(t))
                    threads, local = tname, is_local
                    break
            get_threads = ""
            for gname in _GET_THREAD_SYMBOLS:
                g = _symbol(lib, gname)
                if g is not None:
                    syms["get_threads"] = (gname, _address(g))
                    get_threads = gname
                    break
            return BlasInfo(True, "", path, vendor, bits, sname, dname, threads, local,
                            get_threads, tuple(paths)), syms
        else:
            tried.append(f"{path}: no CBLAS sgemm/dgemm symbols")
    reason = f"no BLAS library with CBLAS sgemm/dgemm found (numpy reports {_numpy_blas_name()})"
    if tried:
        reason += " (tried " + "; ".join(tried) + ")"
    return BlasInfo(False, reason, candidates=tuple(paths)), {}


_INFO, _SYMS = _discover()
_lock = threading.Lock()


def available() -> bool:
    """True when GEMM calls go to numpy's BLAS; False means ``gemm`` runs as loops."""
    return _INFO.available


def info() -> BlasInfo:
    """The library found (path, vendor, symbols, integer width) or why none was usable."""
    return _INFO


# ------------------------------------------------------------- registration for numba
# Two layers, both called by symbol name (never by address) so cached code stays valid:
#
# 1. the library's own functions, registered as jitgrad_blas_{s,d}gemm_i{32,64} and
#    jitgrad_blas_set_threads_local; the integer width is in the name.
# 2. jitgrad_gemm_{f32,f64}_v1 (and jitgrad_set_threads_v1, int64 -> int64): numba
#    @cfuncs with one fixed C interface (int64 sizes, element strides, double alpha/beta)
#    that do everything but argument checking: zero
#    sizes, the layout analysis, contiguous copies for strides BLAS cannot express, the
#    BLAS call, or plain loops when there is no BLAS. Numba links the LLVM IR of every
#    dispatcher a function calls into that function and compiles it again, so a helper
#    called as a dispatcher costs compile time at every call site; a cfunc called through
#    an external symbol costs one call instruction. Code that calls ``gemm`` or
#    ``set_threads_local`` therefore depends on this interface only, not on which BLAS
#    (if any) is present. Changing the interface means a new _v name.
#
# numba's cache index hashes a function's bytecode and closure cells, not its globals, so
# everything whose machine code depends on the BLAS ABI is made in a factory as a closure
# over ``ABI_TAG`` (a plain string, hashing the same in every process): machine code cached
# for one ABI is never loaded for another.
ABI_TAG = (f"blas:{_INFO.vendor}:i{_INFO.int_bits}:t{int(bool(_INFO.threads))}"
           if _INFO.available else "blas:none")
_IBITS = _INFO.int_bits or 64
_blasint = types.int64 if _IBITS == 64 else types.int32
_SGEMM_NAME = f"jitgrad_blas_sgemm_i{_IBITS}"
_DGEMM_NAME = f"jitgrad_blas_dgemm_i{_IBITS}"
_THREADS_NAME = "jitgrad_blas_set_threads_local"
_GEMM_NAMES = {4: "jitgrad_gemm_f32_v1", 8: "jitgrad_gemm_f64_v1"}
_THREADS_CFUNC_NAME = "jitgrad_set_threads_v1"
_HAVE_BLAS = _INFO.available
_HAVE_THREADS = _INFO.available and "threads" in _SYMS


def _cblas_signature(real):
    return types.void(types.intc, types.intc, types.intc, _blasint, _blasint, _blasint, real,
                      types.voidptr, _blasint, types.voidptr, _blasint, real, types.voidptr,
                      _blasint)


def _gemm_signature(ptr):
    """The jitgrad_gemm_* interface: (trans_a, trans_b, m, n, k, alpha, beta, a, a_stride0,
    a_stride1, b, ..., c, ...) -> 0, or 1 if a copy could not be allocated. Strides are in
    elements; a is m x k (k x m if trans_a), b k x n (n x k if trans_b), c m x n."""
    i, f = types.int64, types.float64
    return types.intc(types.intc, types.intc, i, i, i, f, f, ptr, i, i, ptr, i, i, ptr, i, i)


if _HAVE_BLAS:
    llvm.add_symbol(_SGEMM_NAME, _SYMS["sgemm"][1])
    llvm.add_symbol(_DGEMM_NAME, _SYMS["dgemm"][1])
    if _HAVE_THREADS:
        llvm.add_symbol(_THREADS_NAME, _SYMS["threads"][1])

_sgemm = types.ExternalFunction(_SGEMM_NAME, _cblas_signature(types.float32))
_dgemm = types.ExternalFunction(_DGEMM_NAME, _cblas_signature(types.float64))
_set_threads = types.ExternalFunction(_THREADS_NAME, types.intc(types.intc))
_gemm_f32 = types.ExternalFunction(_GEMM_NAMES[4], _gemm_signature(types.voidptr))
_gemm_f64 = types.ExternalFunction(_GEMM_NAMES[8], _gemm_signature(types.voidptr))


@intrinsic
def _voidptr(typingctx, addr):
    """``addr`` (an integer address or a typed pointer) as a C ``void *``."""
    if isinstance(addr, types.Integer):
        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], cgutils.voidptr_t)
    elif isinstance(addr, types.CPointer):
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], cgutils.voidptr_t)
    else:
        return None
    return types.voidptr(addr), codegen


@numba.njit(cache=True)
def _operand(rows, cols, s0, s1, trans):
    """How row-major CBLAS can read a rows x cols matrix with element strides (s0, s1):
    (transpose flag, leading dimension); leading dimension 0 if it cannot."""
    if cols <= 1 or s1 == 1:                      # rows contiguous
        ld = s0 if rows > 1 else max(cols, 1)
        if ld >= max(cols, 1):
            return trans, ld
    if rows <= 1 or s0 == 1:                      # columns contiguous: read it transposed
        ld = s1 if cols > 1 else max(rows, 1)
        if ld >= max(rows, 1):
            return not trans, ld
    return trans, 0


@numba.njit(cache=True)
def _pack(src, rows, cols, s0, s1, buf, off, copy):
    """Write the rows x cols matrix at ``src`` (element strides s0, s1) into ``buf`` from
    ``off``, row-major; zeros instead if not ``copy``."""
    for i in range(rows):
        for j in range(cols):
            buf[off + i * cols + j] = src[i * s0 + j * s1] if copy else 0


def _make_gemm_cfunc(abi_tag: str, have_blas: bool, dtype, is32: bool):
    """The jitgrad_gemm_f32/f64 cfunc (see the notes above); ``abi_tag`` keys its cache."""
    ptr = types.CPointer(types.float32 if is32 else types.float64)

    @numba.cfunc(_gemm_signature(ptr), cache=True)
    def gemm_c(ta, tb, m, n, k, alpha, beta, pa, a0, a1, pb, b0, b1, pc, c0, c1):
        _ = abi_tag  # noqa: F841
        if m <= 0 or n <= 0:
            return 0
        if k <= 0 or not have_blas:
            # C = beta * C (+ loops when there is no BLAS); beta == 0 overwrites NaNs.
            for i in range(m):
                for j in range(n):
                    pc[i * c0 + j * c1] = pc[i * c0 + j * c1] * beta if beta != 0 else 0
            for i in range(m):
                for p in range(k):
                    av = alpha * (pa[p * a0 + i * a1] if ta else pa[i * a0 + p * a1])
                    if av != 0:
                        for j in range(n):
                            pc[i * c0 + j * c1] += av * (pb[j * b0 + p * b1] if tb
                                                         else pb[p * b0 + j * b1])
            return 0
        ar, ac = (k, m) if ta else (m, k)
        br, bc = (n, k) if tb else (k, n)
        fa, lda = _operand(ar, ac, a0, a1, ta != 0)
        fb, ldb = _operand(br, bc, b0, b1, tb != 0)
        fc, ldc = _operand(m, n, c0, c1, False)
        # Operands BLAS cannot read in place (negative or zero strides, no unit stride)
        # are copied into one scratch buffer, used after the call so it stays alive.
        need = (ar * ac if lda == 0 else 0) + (br * bc if ldb == 0 else 0) + \
            (m * n if ldc == 0 else 0)
        buf = np.empty(need, dtype)
        qa, qb, qc = _voidptr(pa), _voidptr(pb), _voidptr(pc)
        off = 0
        if lda == 0:
            _pack(pa, ar, ac, a0, a1, buf, off, True)
            qa, fa, lda = _voidptr(buf[off:].ctypes.data), ta != 0, max(ac, 1)
            off += ar * ac
        if ldb == 0:
            _pack(pb, br, bc, b0, b1, buf, off, True)
            qb, fb, ldb = _voidptr(buf[off:].ctypes.data), tb != 0, max(bc, 1)
            off += br * bc
        coff = off
        if ldc == 0:
            _pack(pc, m, n, c0, c1, buf, coff, beta != 0)
            qc, fc, ldc = _voidptr(buf[coff:].ctypes.data), False, n
        if fc:                     # C column-major: C.T = op(B).T @ op(A).T is row-major
            fa, fb, m, n = not fb, not fa, n, m
            qa, lda, qb, ldb = qb, ldb, qa, lda
        ca = _TRANS if fa else _NO_TRANS
        cb = _TRANS if fb else _NO_TRANS
        if is32:
            _sgemm(_ROW_MAJOR, ca, cb, m, n, k, np.float32(alpha), qa, lda, qb, ldb,
                   np.float32(beta), qc, ldc)
        else:
            _dgemm(_ROW_MAJOR, ca, cb, m, n, k, alpha, qa, lda, qb, ldb, beta, qc, ldc)
        if coff < need:            # copy C back from the scratch buffer (then fc was False)
            for i in range(m):
                for j in range(n):
                    pc[i * c0 + j * c1] = buf[coff + i * n + j]
        return 0 if buf.size == need else 1

    return gemm_c


_gemm_cfuncs = {4: _make_gemm_cfunc(ABI_TAG, _HAVE_BLAS, np.float32, True),
                8: _make_gemm_cfunc(ABI_TAG, _HAVE_BLAS, np.float64, False)}
for _size, _cf in _gemm_cfuncs.items():
    llvm.add_symbol(_GEMM_NAMES[_size], _cf.address)


def _check_operands(a, b, c):
    """Typing-time check (numba overload below) that a, b, c share a float32/64 dtype."""


@overload(_check_operands)
def _check_operands_typing(a, b, c):
    arrays = (a, b, c)
    if not all(isinstance(x, types.Array) and x.ndim == 2 for x in arrays):
        raise TypingError("blas.gemm: a, b and c must be 2-D arrays (gemm_batched: 3-D)")
    if {x.dtype for x in arrays} not in ({types.float32}, {types.float64}):
        raise TypingError("blas: a, b and c must all be float32 or all float64, got "
                          f"{a.dtype}, {b.dtype}, {c.dtype}")
    if not c.mutable:
        raise TypingError("blas: c must be writable")
    return lambda a, b, c: None


@numba.njit(cache=True, inline="never")
def _gemm2d(a, b, c, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
    _check_operands(a, b, c)
    ta, tb = bool(trans_a), bool(trans_b)
    m = a.shape[1] if ta else a.shape[0]
    k = a.shape[0] if ta else a.shape[1]
    kb = b.shape[1] if tb else b.shape[0]
    n = b.shape[0] if tb else b.shape[1]
    isz = c.itemsize
    # One raise site: each costs compile time at every call site of gemm.
    if (k != kb or c.shape[0] != m or c.shape[1] != n or a.strides[0] % isz or
            a.strides[1] % isz or b.strides[0] % isz or b.strides[1] % isz or
            c.strides[0] % isz or c.strides[1] % isz):
        raise ValueError("gemm: shapes do not match (op(a) is m x k, op(b) k x n, c m x n) "
                         "or strides are not multiples of the item size")
    # a, b, c are the caller's arrays, alive for the whole call: raw addresses are safe.
    args = (np.intc(ta), np.intc(tb), np.int64(m), np.int64(n), np.int64(k),
            np.float64(alpha), np.float64(beta),
            _voidptr(a.ctypes.data), np.int64(a.strides[0] // isz), np.int64(a.strides[1] // isz),
            _voidptr(b.ctypes.data), np.int64(b.strides[0] // isz), np.int64(b.strides[1] // isz),
            _voidptr(c.ctypes.data), np.int64(c.strides[0] // isz), np.int64(c.strides[1] // isz))
    if isz == 4:
        status = _gemm_f32(*args)
    else:
        status = _gemm_f64(*args)
    if status != 0:
        raise MemoryError()


@numba.njit(cache=True, inline="never")
def _gemm_batched(a, b, c, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
    if a.ndim != 3 or b.ndim != 3 or c.ndim != 3:
        raise ValueError("gemm_batched: a, b and c must be 3-D")
    nb = c.shape[0]
    if a.shape[0] != nb or b.shape[0] != nb:
        raise ValueError("gemm_batched: a, b and c must have the same batch size")
    for i in range(nb):
        _gemm2d(a[i], b[i], c[i], trans_a, trans_b, alpha, beta)


@intrinsic
def gemm_static(typingctx, a, b, c):
    """``c[...] = a @ b`` for 2-D arrays whose shapes the caller guarantees match (generated
    code, where shapes are static): a direct call of the ``jitgrad_gemm_*`` cfunc, no checks.

    ``gemm`` is a dispatcher: numba links its LLVM IR into every function calling it, once
    per operand signature, and optimises and compiles it again there (5 copies in the MLP
    training step, about a third of its machine code). This emits only the call. Any
    strides work (the cfunc reads C- or Fortran-ordered operands in place, copies others);
    a copy that cannot be allocated raises MemoryError, as ``gemm`` does."""
    arrays = (a, b, c)
    if not all(isinstance(x, types.Array) and x.ndim == 2 for x in arrays) or \
            {x.dtype for x in arrays} not in ({types.float32}, {types.float64}) or \
            not c.mutable:
        return None
    sig = types.none(a, b, c)
    name = _GEMM_NAMES[8 if a.dtype == types.float64 else 4]

    def codegen(context, builder, signature, args):
        from llvmlite import ir as llir
        from numba.np.arrayobj import make_array
        i64, i32 = llir.IntType(64), llir.IntType(32)
        arys = [make_array(t)(context, builder, v) for t, v in zip(signature.args, args)]
        isz = context.get_abi_sizeof(context.get_data_type(a.dtype))
        fields = []
        for ary in arys:
            shape = cgutils.unpack_tuple(builder, ary.shape, 2)
            strides = cgutils.unpack_tuple(builder, ary.strides, 2)
            fields.append((shape, [builder.sdiv(s, i64(isz)) for s in strides],
                           builder.bitcast(ary.data, cgutils.voidptr_t)))
        (ash, ast_, ap), (bsh, bst, bp), (csh, cst, cp) = fields
        fnty = llir.FunctionType(i32, [i32, i32, i64, i64, i64, llir.DoubleType(),
                                       llir.DoubleType(), cgutils.voidptr_t, i64, i64,
                                       cgutils.voidptr_t, i64, i64, cgutils.voidptr_t, i64, i64])
        fn = cgutils.get_or_insert_function(builder.module, fnty, name)
        status = builder.call(fn, [i32(0), i32(0), ash[0], bsh[1], ash[1],
                                   llir.Constant(llir.DoubleType(), 1.0),
                                   llir.Constant(llir.DoubleType(), 0.0),
                                   ap, ast_[0], ast_[1], bp, bst[0], bst[1], cp, cst[0], cst[1]])
        with builder.if_then(builder.icmp_signed("!=", status, i32(0)), likely=False):
            context.call_conv.return_user_exc(
                builder, MemoryError, ("jitgrad: no memory for a copy of a GEMM operand",))
        return context.get_dummy_value()
    return sig, codegen


def _make_threads_cfunc(abi_tag: str, have_threads: bool):
    """The jitgrad_set_threads_v1 cfunc: the library's thread control, or 0 without one."""
    if have_threads:
        @numba.cfunc(types.int64(types.int64), cache=True)
        def set_threads_c(n):
            _ = abi_tag  # noqa: F841
            return np.int64(_set_threads(np.intc(n)))
    else:
        @numba.cfunc(types.int64(types.int64), cache=True)
        def set_threads_c(n):
            _ = abi_tag  # noqa: F841
            return np.int64(0)
    return set_threads_c


_threads_cfunc = _make_threads_cfunc(ABI_TAG, _HAVE_THREADS)
llvm.add_symbol(_THREADS_CFUNC_NAME, _threads_cfunc.address)
_set_threads_v1 = types.ExternalFunction(_THREADS_CFUNC_NAME, types.int64(types.int64))


@numba.njit(cache=True, inline="never")
def _set_threads_local(n):
    return _set_threads_v1(np.int64(n))



# The public helpers are numba dispatchers; they carry these docstrings for help() and docs.
gemm = _gemm2d
gemm.__doc__ = """gemm(a, b, c, trans_a=False, trans_b=False, alpha=1.0, beta=0.0) -> None

    ``c[...] = alpha * op(a) @ op(b) + beta * c`` in place, where ``op(x)`` is ``x.T`` when its
    flag is set (read in place, never copied). Callable from numba code and from Python.

    a, b, c: 2-D float32 or float64 arrays of one dtype, op(a) m x k, op(b) k x n, c m x n.
    Any layout works; C- or Fortran-contiguous operands (and row/column slices of them) go
    to BLAS without a copy, other strides are copied first. ``c`` must not overlap a or b.
    beta=0 overwrites c (NaNs in c do not propagate); beta=1 accumulates, e.g. fill c with a
    broadcast bias, then gemm(..., beta=1.0) adds the product to it.
    Zero sizes: m == 0 or n == 0 does nothing; k == 0 leaves c = beta * c.
    Raises ValueError on mismatched shapes (or strides that are not a multiple of the item
    size); other or mixed dtypes, non-2-D arrays or a read-only ``c`` fail numba typing.
    Without a BLAS (``available()`` False) it computes the same result with loops.
    Compile cost per call site: about that of ``np.dot``'s (the work is in a cfunc called
    by symbol name, compiled once per process or loaded from numba's cache).
    """
gemm_batched = _gemm_batched
gemm_batched.__doc__ = """gemm_batched(a, b, c, trans_a=False, trans_b=False, alpha=1.0, beta=0.0) -> None

    ``gemm`` on each of the leading-axis slices of 3-D arrays: for every i,
    ``c[i] = alpha * op(a[i]) @ op(b[i]) + beta * c[i]``; op transposes the last two axes.
    All three arrays must have the same batch size (no broadcasting). One BLAS call per
    batch entry.
    """
set_threads_local = _set_threads_local
set_threads_local.__doc__ = """set_threads_local(n) -> int: set the BLAS thread count, returning the previous one.

    Wraps ``openblas_set_num_threads_local`` (OpenBLAS >= 0.3.27) or
    ``MKL_Set_Num_Threads_Local``; callable from numba code and from Python. Restore with
    ``set_threads_local(previous)``. Returns 0 and does nothing when the library has no
    such function (``info().threads == ''``).

    Scope: with MKL the count is per calling thread. With OpenBLAS (numpy's wheels, checked
    with 0.3.31) it is NOT: despite its name the function sets the process-wide count and
    returns the previous process-wide count, so while it is lowered, numpy calls and GEMMs
    from other threads also run with it, and two threads doing set/restore concurrently can
    leave the wrong count behind. Generated code that may run in several threads should use
    ``threads_limit`` (Python-level, reference counted) around its entry call instead.
    """


def get_num_threads() -> int:
    """The library's process-wide thread count (what numpy's GEMMs use); 0 if unknown."""
    if "get_threads" not in _SYMS:
        return 0
    fn = ctypes.CFUNCTYPE(ctypes.c_int)(_SYMS["get_threads"][1])
    return int(fn())


_limit_depth = 0
_limit_saved = 0


@contextlib.contextmanager
def threads_limit(n: int = 1) -> Iterator[None]:
    """Run the body with the BLAS limited to ``n`` threads, then restore the previous count.

    Safe when several threads use it at once: the first to enter sets the count, the last
    to leave restores it (reference counted under a lock), so concurrent users never leave
    the library at the wrong count. While any user is inside, the whole process (numpy
    included, for OpenBLAS) uses ``n`` threads. Does nothing without a thread control.
    """
    global _limit_depth, _limit_saved
    if not _HAVE_THREADS:
        yield
        return
    with _lock:
        if _limit_depth == 0:
            _limit_saved = int(set_threads_local(n))
        _limit_depth += 1
    try:
        yield
    finally:
        with _lock:
            _limit_depth -= 1
            if _limit_depth == 0:
                set_threads_local(_limit_saved)
