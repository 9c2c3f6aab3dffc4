"""The call path of a jitted function: dispatch overhead and output buffers (issue 8).

    python bench/bench_call_path.py [--rounds 15]

``relu(x*y+z)`` on float32, jitted on the cpu backend, against numpy eager and a
hand-written numba loop (serial for 2^12 elements, ``prange`` for 2^24) that writes into a
buffer it reuses. All candidates run in one process, round by round (interleaved);
medians per call. At 2^24 a fresh 64 MiB output costs page faults on every call, so the
jitted call is only as fast as the hand-written loop when its outputs come back from the
buffer pool (jitgrad/backends/buffers.py).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout

import numba as nb  # noqa: E402

import jitgrad  # noqa: E402
import jitgrad.numpy as jnp  # noqa: E402


@nb.njit(nogil=True)
def _serial(x, y, z, o):
    for i in range(x.size):
        v = x[i] * y[i] + z[i]
        o[i] = v if v > 0 else np.float32(0)


@nb.njit(nogil=True, parallel=True)
def _parallel(x, y, z, o):
    for i in nb.prange(x.size):
        v = x[i] * y[i] + z[i]
        o[i] = v if v > 0 else np.float32(0)


def run(n: int, rounds: int) -> None:
    rng = np.random.default_rng(0)
    x, y, z = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    xa, ya, za = (jnp.asarray(a) for a in (x, y, z))
    f = jitgrad.jit(lambda x, y, z: jnp.maximum(x * y + z, 0), backend="cpu")
    out = np.empty_like(x)
    hand = _parallel if n >= 1 << 22 else _serial
    keep = [None]

    def jitted():
        keep[0] = f(xa, ya, za)      # the previous result dies here, as in a loop

    def numpy_eager():
        keep[0] = np.maximum(x * y + z, 0)

    cands = {"jitgrad.jit[cpu]": jitted, "numpy": numpy_eager,
             "numba by hand (reused buffer)": lambda: hand(x, y, z, out)}
    for c in cands.values():
        c(), c()
    assert np.array_equal(np.asarray(f(xa, ya, za)), np.maximum(x * y + z, 0))
    inner = max(1, int(2e5 // n) * 10) if n < 1 << 20 else 3
    times = {k: [] for k in cands}
    for _ in range(rounds):
        for k, c in cands.items():
            t = time.perf_counter()
            for _ in range(inner):
                c()
            times[k].append((time.perf_counter() - t) / inner)
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(f"relu(x*y+z), {n} float32 (2^{n.bit_length() - 1}), median of {rounds} rounds:")
    for k, v in med.items():
        unit = (v * 1e6, "us") if v < 1e-3 else (v * 1e3, "ms")
        print(f"  {k:32s} {unit[0]:9.2f} {unit[1]}")
    j = med["jitgrad.jit[cpu]"]
    print(f"  jit vs numpy: {med['numpy'] / j:.2f}x faster; "
          f"vs hand-written: {med['numba by hand (reused buffer)'] / j:.2f}x its speed")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--sizes", type=int, nargs="*", default=[12, 24], help="log2 of the sizes")
    args = ap.parse_args()
    for s in args.sizes:
        run(1 << s, args.rounds)


if __name__ == "__main__":
    main()
