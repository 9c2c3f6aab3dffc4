"""Interleaved, warm, noise-aware timing of several candidates side by side.

The machine this project is measured on is small and shared: medians sit 1.2-3x above
minimums, and thread pools of different libraries (OpenBLAS, libgomp, XLA) spin and
steal cores from each other (see BASELINES.md). So the timer here:

* runs every candidate in the same process, round by round, so slow phases of the
  host hit all candidates alike and per-round ratios stay meaningful;
* warms every candidate up first (compilation, page faults, caches);
* sleeps ``gap_s`` before each timed block so other libraries' worker threads go back
  to sleep instead of fighting the candidate being timed;
* repeats tiny kernels ``inner`` times per block so a block lasts >= ~2 ms and the
  clock's resolution and call overhead do not dominate;
* waits for asynchronous results (JAX) by calling ``.block_until_ready()``.
"""
from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# A timed block should last at least this long when ``inner`` is chosen automatically.
TARGET_BLOCK_S = 2e-3
# Upper bound on auto-chosen ``inner``, so a candidate that returns in ~0 s stays finite.
MAX_INNER = 1 << 20


@dataclass
class TimingResult:
    """Per-call times of one candidate, one entry per round, in seconds."""

    name: str
    times: list[float]
    inner: int = 1  # calls per timed block; each entry of ``times`` is block time / inner
    extra: dict = field(default_factory=dict)  # free-form annotations for reports

    @property
    def median(self) -> float:
        """Median per-call time (s); the headline number."""
        return float(np.median(self.times))

    @property
    def min(self) -> float:
        """Fastest per-call time (s); noise only ever adds time, so this is the optimist's bound."""
        return float(np.min(self.times))

    @property
    def p10(self) -> float:
        """10th percentile per-call time (s), lower end of the spread."""
        return float(np.percentile(self.times, 10))

    @property
    def p90(self) -> float:
        """90th percentile per-call time (s), upper end of the spread."""
        return float(np.percentile(self.times, 90))

    def paired_ratio(self, other: "TimingResult") -> float:
        """Median over rounds of ``self.times[r] / other.times[r]``.

        Both results must come from the same ``time_interleaved`` run. Pairing by round
        cancels slow phases of the host that hit both candidates, so this is more robust
        than ``self.median / other.median``. A value > 1 means ``self`` is slower.
        """
        if len(self.times) != len(other.times) or not self.times:
            raise ValueError(
                f"paired_ratio needs results with the same non-zero number of rounds; "
                f"{self.name!r} has {len(self.times)}, {other.name!r} has {len(other.times)}"
            )
        ratios = [a / b for a, b in zip(self.times, other.times)]
        return float(np.median(ratios))


def block_until_ready(result: object) -> object:
    """Wait for an (asynchronous) result: call ``.block_until_ready()`` on every leaf that has it.

    Walks tuples, lists and dict values itself rather than relying on a framework's
    pytree utilities, so no framework needs to be imported. Returns ``result``.
    """
    stack = [result]
    while stack:
        obj = stack.pop()
        if isinstance(obj, (tuple, list)):
            stack.extend(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        else:
            wait = getattr(obj, "block_until_ready", None)
            if callable(wait):
                wait()
    return result


def _run_block(fn: Callable[[], object], n: int, clock: Callable[[], float]) -> float:
    """Time ``n`` synchronised calls of ``fn``; returns the total elapsed seconds."""
    t0 = clock()
    for _ in range(n):
        # Sync every call, not just the last: otherwise async calls would overlap.
        block_until_ready(fn())
    return clock() - t0


def choose_inner(fn: Callable[[], object], target_s: float = TARGET_BLOCK_S,
                 clock: Callable[[], float] = time.perf_counter) -> int:
    """Smallest-ish number of calls whose block takes >= ``target_s`` (like ``timeit.autorange``).

    Grows the count geometrically, then extrapolates once from the last measurement,
    so a 1 us kernel costs a few ms of calibration, and a >= target_s kernel just 1 call.
    """
    n = 1
    while True:
        elapsed = _run_block(fn, n, clock)
        if elapsed >= target_s or n >= MAX_INNER:
            return n
        if elapsed <= 0:
            n *= 10
        else:
            # Aim 20% above the target so noise does not push the block below it.
            n = max(n * 2, math.ceil(n * 1.2 * target_s / elapsed))
        n = min(n, MAX_INNER)


def time_interleaved(
    candidates: dict[str, Callable[[], object]],
    repeat: int,
    warmup: int,
    gap_s: float = 0.05,
    inner: int | None = None,
    *,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, TimingResult]:
    """Time zero-argument callables side by side, round by round.

    Each candidate is called ``warmup`` times first. Then, for each of ``repeat`` rounds,
    every candidate runs one timed block of ``inner`` calls, preceded by ``sleep(gap_s)``.
    The order within a round rotates by one each round (round r starts at candidate
    r mod k) so no candidate always runs right after the same neighbour. With
    ``inner=None`` it is chosen per candidate so that a block lasts >= ~2 ms.
    The garbage collector is paused inside timed blocks (as ``timeit`` does).

    ``clock`` and ``sleep`` are injectable for tests. Returns results in the order of
    ``candidates``; ``times[r]`` of every result belongs to round r (see ``paired_ratio``).
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if inner is not None and inner < 1:
        raise ValueError(f"inner must be >= 1 or None, got {inner}")
    names = list(candidates)
    for name in names:
        for _ in range(warmup):
            block_until_ready(candidates[name]())
    inners = {name: inner if inner is not None else choose_inner(candidates[name], clock=clock)
              for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    for r in range(repeat):
        k = r % len(names) if names else 0
        for name in names[k:] + names[:k]:
            if gap_s > 0:
                sleep(gap_s)
            gc.disable()
            try:
                elapsed = _run_block(candidates[name], inners[name], clock)
            finally:
                if gc_was_enabled:
                    gc.enable()
            times[name].append(elapsed / inners[name])
    return {name: TimingResult(name, times[name], inners[name]) for name in names}
