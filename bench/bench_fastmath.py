"""jitgrad.backends.fastmath against numba's libm calls and numpy, on float32 vectors.

    python bench/bench_fastmath.py [--size 2^24] [--repeat 10] [--functions exp tanh ...]

For each function: a numba ``prange`` loop calling the fastmath approximation, the same
loop calling numba's ``np.*``/``math.*`` (scalar libm: expf, tanhf...; no SVML here), and
numpy's ufunc (``out=`` where numpy has one; erf: scipy.special.erf if installed), all
writing into a preallocated output. Then the tanh-GELU kernel the same three ways (numpy
eager allocates its temporaries, as a user would write it). Everything runs in one process,
interleaved round by round (``jitgrad.benchmarking.time_interleaved``); ratios are medians
of per-round ratios (> 1 = slower than the fastmath loop). The "floor" row is a prange loop
moving the same bytes with one multiply per element: the memory-bound limit.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numba  # noqa: E402

from jitgrad.backends import fastmath as fm  # noqa: E402
from jitgrad.benchmarking import format_table, time_interleaved  # noqa: E402
from jitgrad.benchmarking.report import format_time  # noqa: E402

_JIT = dict(parallel=True, error_model="numpy", nogil=True)


def _libm_logistic(x):
    """The reference's stable logistic with numba's libm exp (what the backend emits today)."""
    e = np.exp(-abs(x))
    return np.float32(1.0) / (np.float32(1.0) + e) if x >= 0 else e / (np.float32(1.0) + e)


LIBM: dict[str, Callable] = {
    "exp": numba.njit(lambda x: np.exp(x)),
    "expm1": numba.njit(lambda x: np.expm1(x)),
    "log": numba.njit(lambda x: np.log(x)),
    "log1p": numba.njit(lambda x: np.log1p(x)),
    "tanh": numba.njit(lambda x: np.tanh(x)),
    "logistic": numba.njit(_libm_logistic),
    "erf": numba.njit(lambda x: math.erf(x)),
}

DOMAIN = {"exp": (-10, 10), "expm1": (-10, 10), "log": (1e-3, 100), "log1p": (-0.9, 100),
          "tanh": (-5, 5), "logistic": (-10, 10), "erf": (-3, 3)}


def _numpy_ufunc(name: str) -> Callable | None:
    """numpy's float32 version writing into ``out`` (None when numpy has none)."""
    if name == "logistic":
        def logistic(x, out):
            # numpy eager, stable form; allocates temporaries as a user would.
            e = np.exp(-np.abs(x))
            np.divide(np.where(x >= 0, np.float32(1), e), np.float32(1) + e, out=out)
        return logistic
    if name == "erf":
        try:
            from scipy.special import erf
        except ImportError:
            return None
        return lambda x, out: erf(x, out=out)
    ufunc = getattr(np, name)
    return lambda x, out: ufunc(x, out=out)


def _prange_map(fn: Callable) -> Callable:
    @numba.njit(**_JIT)
    def run(x, out):
        for i in numba.prange(x.shape[0]):
            out[i] = fn(x[i])
    return run


def _prange_gelu(tanh: Callable) -> Callable:
    c0, c1 = np.float32(math.sqrt(2.0 / math.pi)), np.float32(0.044715)
    half, one = np.float32(0.5), np.float32(1.0)

    @numba.njit(**_JIT)
    def gelu(x, out):
        for i in numba.prange(x.shape[0]):
            v = x[i]
            out[i] = half * v * (one + tanh(c0 * (v + c1 * v * v * v)))
    return gelu


@numba.njit(**_JIT)
def _scale2(x, out):
    """The memory floor: the same bytes moved, one multiply per element."""
    for i in numba.prange(x.shape[0]):
        out[i] = x[i] * np.float32(2.0)


def gelu_numpy(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def _rows(results: dict, ref: str, nbytes: int) -> list[dict]:
    rows = []
    for name, r in results.items():
        rows.append({"candidate": name, "median": format_time(r.median), "min": format_time(r.min),
                     "GB/s": nbytes / r.median / 1e9,
                     f"vs {ref}": "-" if name == ref else f"{r.paired_ratio(results[ref]):.2f}x"})
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="2^24", help="elements (2^24 = 16M float32)")
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--functions", nargs="*", default=list(fm.FLOAT32))
    args = p.parse_args(argv)
    base, _, power = args.size.partition("^")      # "2^24" or "16777216"
    n = int(base) ** int(power) if power else int(base)
    rng = np.random.default_rng(0)
    out = np.empty(n, np.float32)
    nbytes = 2 * 4 * n
    print(f"n = {n}, numba {numba.__version__} ({numba.get_num_threads()} threads), "
          f"numpy {np.__version__}, repeat {args.repeat}\n")
    for name in args.functions:
        lo, hi = DOMAIN[name]
        x = rng.uniform(lo, hi, n).astype(np.float32)
        fast, libm = _prange_map(fm.FLOAT32[name]), _prange_map(LIBM[name])
        cands = {"fastmath": lambda: fast(x, out), "numba libm": lambda: libm(x, out),
                 "floor: x*2 loop": lambda: _scale2(x, out)}
        ufunc = _numpy_ufunc(name)
        if ufunc is not None:
            cands["numpy" if name != "erf" else "scipy.special"] = lambda: ufunc(x, out)
        res = time_interleaved(cands, repeat=args.repeat, warmup=2, gap_s=0.05)
        print(f"{name}(x), x ~ U({lo}, {hi})")
        print(format_table(_rows(res, "fastmath", nbytes), ["candidate", "median", "min", "GB/s", "vs fastmath"]))
        print()
    x = rng.standard_normal(n).astype(np.float32) * np.float32(3)
    fast, libm = _prange_gelu(fm.tanh_f32), _prange_gelu(LIBM["tanh"])
    cands = {"fastmath": lambda: fast(x, out), "numba libm": lambda: libm(x, out),
             "numpy eager": lambda: gelu_numpy(x), "floor: x*2 loop": lambda: _scale2(x, out)}
    res = time_interleaved(cands, repeat=args.repeat, warmup=2, gap_s=0.05)
    print("tanh-GELU 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), x ~ 3 N(0, 1)")
    print(format_table(_rows(res, "fastmath", nbytes), ["candidate", "median", "min", "GB/s", "vs fastmath"]))


if __name__ == "__main__":
    main()
