"""GEMM from numba: jitgrad's blas.gemm (numpy's OpenBLAS) vs numba's np.dot vs numpy.

Variants run interleaved in one process, in a shuffled order each repetition, so that they
see the same machine noise. Table 1 runs only the variants that use numpy's BLAS; table 2
adds numba's np.dot, whose calls go to scipy's separate OpenBLAS, so that two thread pools
are active in the process (the spinning of one slows the calls made right after it in the
other). Each sample is the mean of a few back-to-back calls; tables give the median sample
in microseconds.

    python bench/bench_blas.py [--repeat 30] [--compile-repeat 10]

Variants (out-of-place output buffer preallocated, float32, row-major):
  gemm/1t     njit: prev = blas.set_threads_local(1); blas.gemm(...); restore
  gemm/def    njit: blas.gemm(...) with the library's default thread count
  numba.dot   njit: np.dot(a, b, out)   (needs scipy; scipy's own OpenBLAS)
  numpy.dot   np.dot(a, b, out=out) from Python (numpy's OpenBLAS)
Compile: the first call of a fresh @njit function holding one gemm call vs one np.dot call
(helpers already compiled, i.e. the cost per call site).
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

import numba
import numpy as np

from jitgrad.backends.cpu import blas

SHAPES = [(128, 256, 256), (128, 64, 256), (512, 1024, 1024)]   # (m, k, n)


@numba.njit
def gemm_one_thread(a, b, c):
    prev = blas.set_threads_local(1)
    blas.gemm(a, b, c, False, False, 1.0, 0.0)
    blas.set_threads_local(prev)


@numba.njit
def gemm_default(a, b, c):
    blas.gemm(a, b, c, False, False, 1.0, 0.0)


@numba.njit
def numba_dot(a, b, c):
    np.dot(a, b, c)


def numpy_dot(a, b, c):
    np.dot(a, b, out=c)


VARIANTS = {"gemm/1t": gemm_one_thread, "gemm/def": gemm_default,
            "numba.dot": numba_dot, "numpy.dot": numpy_dot}


def bench_table(variants: list[str], repeat: int) -> None:
    """One table: every variant on every shape, interleaved in a shuffled order."""
    rng = np.random.default_rng(0)
    print(f"{'m x k @ k x n':>22} " + " ".join(f"{v:>11}" for v in variants) + "   (median us)")
    for m, k, n in SHAPES:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        outs = {v: np.empty((m, n), np.float32) for v in variants}
        for v in variants:                 # compile, warm up, check
            for _ in range(3):
                VARIANTS[v](a, b, outs[v])
            np.testing.assert_allclose(outs[v], a @ b, rtol=1e-3, atol=1e-3)
        t0 = time.perf_counter()
        numpy_dot(a, b, outs[variants[-1]])
        inner = max(1, min(50, int(2e-3 / max(time.perf_counter() - t0, 1e-7))))
        samples: dict[str, list[float]] = {v: [] for v in variants}
        order = list(variants)
        for _ in range(repeat):
            random.shuffle(order)
            for v in order:
                f, c = VARIANTS[v], outs[v]
                t0 = time.perf_counter()
                for _ in range(inner):
                    f(a, b, c)
                samples[v].append((time.perf_counter() - t0) / inner * 1e6)
        name = f"{m}x{k} @ {k}x{n}"
        print(f"{name:>22} " + " ".join(f"{statistics.median(samples[v]):11.1f}"
                                        for v in variants) + f"   (x{inner} per sample)")


GEMM_SRC = "def f(a, b, c):\n    blas.gemm(a, b, c, False, False, 1.0, 0.0)\n"
DOT_SRC = "def f(a, b, c):\n    np.dot(a, b, c)\n"


def compile_once(src: str, a, b, c) -> float:
    ns = {"np": np, "blas": blas}
    exec(src, ns)                       # a fresh function object: numba compiles anew
    f = numba.njit(ns["f"])
    t0 = time.perf_counter()
    f(a, b, c)
    return time.perf_counter() - t0


def bench_compile(repeat: int) -> None:
    a = np.ones((8, 4), np.float32)
    b = np.ones((4, 5), np.float32)
    c = np.empty((8, 5), np.float32)
    times: dict[str, list[float]] = {"gemm": [], "np.dot": []}
    for _ in range(repeat):
        for name, src in random.sample([("gemm", GEMM_SRC), ("np.dot", DOT_SRC)], 2):
            times[name].append(compile_once(src, a, b, c))
    print("compile of a fresh @njit function with one call (median s, per call site): " +
          ", ".join(f"{k} {statistics.median(v):.3f} (min {min(v):.3f})" for k, v in times.items()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=30, help="interleaved samples per variant")
    p.add_argument("--compile-repeat", type=int, default=10, help="compiles per variant")
    args = p.parse_args()
    t0 = time.perf_counter()
    gemm_default(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32),
                 np.empty((2, 2), np.float32))
    print(f"first gemm-calling function in this process: {time.perf_counter() - t0:.2f} s "
          "(includes numba start-up and loading or compiling blas.py's helpers)")
    info = blas.info()
    print(f"BLAS: {info.path} ({info.vendor}, {info.int_bits}-bit ints), threads "
          f"{blas.get_num_threads()}, thread control {info.threads or 'none'}")
    print("\n1) numpy's BLAS only (numba.dot not called yet: scipy's OpenBLAS pool never started)")
    bench_table(["gemm/1t", "gemm/def", "numpy.dot"], args.repeat)
    print("\n2) all four interleaved (numba.dot's calls go to scipy's OpenBLAS, the rest to numpy's)")
    bench_table(list(VARIANTS), args.repeat)
    print()
    bench_compile(args.compile_repeat)


if __name__ == "__main__":
    main()
