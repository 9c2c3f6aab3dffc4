"""A pool of host output buffers that takes a buffer back once nothing can see it.

Measured on the 2-core development VM: writing a fresh 64 MiB array costs about 3.5x the
fused loop that fills it (the kernel page-faults every new page; glibc hands large blocks
straight back to the OS on free). So executables take their large outputs from this pool.

How a buffer comes back: the pool keeps a reference to every buffer it created, and a
buffer is free again exactly when the pool's reference is the only one left
(``sys.getrefcount``). Everything that can read a numpy buffer holds a reference to it:
the ``ArrayImpl`` that wraps it, numpy views (``np.asarray(x)`` is a view whose ``base`` is
the buffer, so the view keeps it alive), memoryviews, ctypes handles. A buffer is therefore
never handed out twice while anything can still see it; there are no finalizers to run
and nothing to do when a user array dies. Reference cycles only delay the reuse.

Bounds: only buffers of at least ``MIN_BYTES`` are pooled (small ones come cheaply from
malloc's free lists), at most ``PER_KEY`` per (shape, dtype), and at most ``max_bytes`` in
all (``JITGRAD_BUFFER_POOL_MB``, default 1024); beyond that, free buffers of the least
recently used shapes are dropped, and if none is free the request is a plain ``np.empty``.
"""
from __future__ import annotations

import os
import sys
import threading
from collections import OrderedDict

import numpy as np

__all__ = ["BufferPool", "host_pool", "MIN_BYTES"]

MIN_BYTES = 64 * 1024
PER_KEY = 8

_getrefcount = sys.getrefcount


def _calibrate() -> int:
    """What ``getrefcount`` reports, in ``BufferPool.empty``'s loop, for a buffer that only
    the pool's list references (the list, the loop variable, the call's argument)."""
    probe = [np.empty(1)]
    for b in probe:
        return _getrefcount(b)
    raise AssertionError


_FREE_REFCOUNT = _calibrate()


class BufferPool:
    """Per-(shape, dtype) lists of owned buffers; ``empty`` reuses one nobody sees."""

    def __init__(self, max_bytes: int, min_bytes: int = MIN_BYTES, per_key: int = PER_KEY):
        self.max_bytes = max_bytes
        self.min_bytes = min_bytes
        self.per_key = per_key
        self._lists: "OrderedDict[tuple, list[np.ndarray]]" = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.stats = {"created": 0, "unpooled": 0}

    def pooled(self, shape: tuple, dtype) -> bool:
        """Whether buffers of this shape and dtype go through the pool (large enough)."""
        n = np.dtype(dtype).itemsize
        for s in shape:
            n *= s
        return n >= self.min_bytes

    def empty(self, shape: tuple, dtype) -> np.ndarray:
        """A C-contiguous, writable, uninitialised buffer that nothing else references."""
        bufs = self._lists.get((shape, dtype))
        if bufs is not None:
            # No lock needed (with the GIL): the loop variable is itself a reference, so a
            # second thread testing the same buffer at the same time sees one too many.
            for b in bufs:
                if _getrefcount(b) == _FREE_REFCOUNT:
                    return b
        return self._create(shape, dtype, bufs)

    def _create(self, shape: tuple, dtype, bufs) -> np.ndarray:
        key = (shape, dtype)
        b = np.empty(shape, dtype)
        with self._lock:
            if (bufs is None or len(bufs) < self.per_key) and self._make_room(b.nbytes, key):
                if bufs is None:
                    bufs = self._lists.setdefault(key, [])
                else:
                    self._lists.move_to_end(key)
                bufs.append(b)
                self._bytes += b.nbytes
                self.stats["created"] += 1
            else:
                self.stats["unpooled"] += 1
        return b

    def _make_room(self, nbytes: int, keep: tuple) -> bool:
        """Drop free buffers of the least recently grown shapes until ``nbytes`` fit."""
        if self._bytes + nbytes <= self.max_bytes:
            return True
        for key in list(self._lists):
            if key == keep:
                continue
            bufs = self._lists[key]
            for b in list(bufs):
                if _getrefcount(b) == _FREE_REFCOUNT + 1:   # + the list() copy's reference
                    bufs.remove(b)
                    self._bytes -= b.nbytes
            if not bufs:
                del self._lists[key]
            if self._bytes + nbytes <= self.max_bytes:
                return True
        return False

    def clear(self) -> None:
        """Forget every pooled buffer (buffers still in use stay valid: they are only unpooled)."""
        with self._lock:
            self._lists.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the pool, in use or free."""
        return self._bytes


_HOST = BufferPool(int(float(os.environ.get("JITGRAD_BUFFER_POOL_MB", "1024")) * (1 << 20)))


def host_pool() -> BufferPool:
    """The process-wide pool of host buffers (shared by every executable)."""
    return _HOST
