"""Elementwise baselines side by side: relu(x*y+z) and tanh-GELU on float32 vectors.

    python bench/baselines.py [--repeat 20] [--sizes 2^24 2^12] [--workloads relu gelu]

Every implementation runs in one process, interleaved round by round (see
``jitgrad.benchmarking.time_interleaved``). Reported: median and min time, GB/s (bytes
the kernel must move: inputs read once, output written once), percent of this machine's
STREAM-triad bandwidth, and the paired ratio against numpy (> 1 = slower than numpy).

To add an implementation, add one entry to ``CANDIDATES``: a name mapped to a factory
``make(workload, inputs) -> zero-argument callable`` that raises ``Unavailable`` when
it cannot run here (library missing, workload unsupported).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

# Run from a source checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jitgrad.benchmarking import format_table, measure_ceilings, time_interleaved  # noqa: E402
from jitgrad.benchmarking.report import format_time  # noqa: E402

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class Unavailable(Exception):
    """A candidate cannot run here; the message says why (printed, not fatal)."""


# ----------------------------------------------------------------------------- workloads

def relu_fma_np(x, y, z):
    """relu(x*y + z): the reference semantics (numpy eager; allocates temporaries)."""
    return np.maximum(x * y + z, np.float32(0))


def gelu_tanh_np(x):
    """tanh-approximated GELU, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    # Python float constants are "weak" under NEP 50, so the result stays float32.
    return 0.5 * x * (1.0 + np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))


@dataclass(frozen=True)
class Workload:
    """One benchmarked function: its numpy reference and how many float32 arrays it touches."""

    name: str
    n_inputs: int
    reference: Callable[..., np.ndarray]

    def bytes_moved(self, n: int) -> int:
        """Compulsory traffic: every input read once, the output written once."""
        return (self.n_inputs + 1) * 4 * n


WORKLOADS = {
    "relu": Workload("relu(x*y+z)", 3, relu_fma_np),
    "gelu": Workload("gelu_tanh(x)", 1, gelu_tanh_np),
}


# ----------------------------------------------------------------------------- candidates

def make_numpy(w: Workload, inputs: list[np.ndarray]) -> Callable[[], object]:
    """numpy eager, exactly as written (allocates its output and temporaries)."""
    return lambda: w.reference(*inputs)


def make_numexpr(w: Workload, inputs: list[np.ndarray]) -> Callable[[], object]:
    """numexpr into a preallocated output; constants passed as float32 names because
    numexpr treats Python float literals (and its maximum()) as float64."""
    try:
        import numexpr as ne
    except ImportError:
        raise Unavailable("numexpr not installed") from None
    out = np.empty_like(inputs[0])
    if w.reference is relu_fma_np:
        x, y, z = inputs
        names = {"x": x, "y": y, "z": z, "zero": np.float32(0)}
        expr = "where(x*y+z > zero, x*y+z, zero)"
    elif w.reference is gelu_tanh_np:
        names = {"x": inputs[0], "h": np.float32(0.5), "one": np.float32(1.0),
                 "k": np.float32(SQRT_2_OVER_PI), "c": np.float32(0.044715)}
        expr = "h*x*(one + tanh(k*(x + c*x*x*x)))"
    else:
        raise Unavailable(f"no numexpr expression for {w.name}")
    return lambda: ne.evaluate(expr, local_dict=names, out=out)


_NUMBA_KERNELS: dict[str, Callable] = {}


def _numba_kernel(kind: str) -> Callable:
    """Hand-written prange loops, compiled once per process (numba imported lazily)."""
    if kind not in _NUMBA_KERNELS:
        import numba

        @numba.njit(parallel=True, fastmath=True, cache=True)
        def relu_fma(x, y, z, out):
            for i in numba.prange(out.shape[0]):
                v = x[i] * y[i] + z[i]
                out[i] = v if v > 0 else np.float32(0)

        @numba.njit(parallel=True, fastmath=True, cache=True)
        def gelu_tanh(x, out):
            # np.tanh on float32 is a scalar tanhf call here (no SVML): the honest baseline.
            k = np.float32(SQRT_2_OVER_PI)
            c = np.float32(0.044715)
            for i in numba.prange(out.shape[0]):
                v = x[i]
                out[i] = np.float32(0.5) * v * (np.float32(1) + np.tanh(k * (v + c * v * v * v)))

        _NUMBA_KERNELS.update(relu=relu_fma, gelu=gelu_tanh)
    return _NUMBA_KERNELS[kind]


def make_numba(w: Workload, inputs: list[np.ndarray]) -> Callable[[], object]:
    """numba parallel prange loop writing into a preallocated output."""
    try:
        import numba  # noqa: F401
    except ImportError:
        raise Unavailable("numba not installed") from None
    out = np.empty_like(inputs[0])
    kind = {relu_fma_np: "relu", gelu_tanh_np: "gelu"}.get(w.reference)
    if kind is None:
        raise Unavailable(f"no numba kernel for {w.name}")
    kernel = _numba_kernel(kind)

    def run():
        kernel(*inputs, out)
        return out
    return run


def make_jax(w: Workload, inputs: list[np.ndarray]) -> Callable[[], object]:
    """jax.jit of the same formula, inputs already on the device; the timer blocks on results."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        raise Unavailable("jax not installed (pip install jax jaxlib)") from None
    fns = {
        relu_fma_np: lambda x, y, z: jnp.maximum(x * y + z, 0),
        gelu_tanh_np: lambda x: 0.5 * x * (1.0 + jnp.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))),
    }
    if w.reference not in fns:
        raise Unavailable(f"no jax function for {w.name}")
    f = jax.jit(fns[w.reference])
    args = [jax.device_put(a) for a in inputs]
    return lambda: f(*args)


def make_torch(w: Workload, inputs: list[np.ndarray]) -> Callable[[], object]:
    """PyTorch eager, the formula op by op (what a JIT fuses away), on tensors sharing numpy's memory."""
    try:
        import torch
    except ImportError:
        raise Unavailable("torch not installed (pip install torch)") from None
    fns = {
        relu_fma_np: lambda x, y, z: torch.relu(x * y + z),
        gelu_tanh_np: lambda x: 0.5 * x * (1.0 + torch.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))),
    }
    if w.reference not in fns:
        raise Unavailable(f"no torch function for {w.name}")
    f = fns[w.reference]
    args = [torch.from_numpy(a) for a in inputs]
    return lambda: f(*args)


# Name -> factory. The first entry is the reference that paired ratios are taken against.
CANDIDATES: dict[str, Callable[[Workload, list[np.ndarray]], Callable[[], object]]] = {
    "numpy eager": make_numpy,
    "numexpr (out=)": make_numexpr,
    "numba prange (out=)": make_numba,
    "jax.jit": make_jax,
    "torch eager": make_torch,
}


# ----------------------------------------------------------------------------- driver

def parse_size(text: str) -> int:
    """An element count: "4096", "2^12" or "2**12"."""
    for sep in ("**", "^"):
        if sep in text:
            base, exp = text.split(sep, 1)
            return int(base) ** int(exp)
    return int(text)


def _as_numpy(result: object) -> np.ndarray:
    """A candidate's result as a numpy array (jax arrays and torch tensors both support this)."""
    if hasattr(result, "numpy") and not isinstance(result, np.ndarray):
        return result.numpy()
    return np.asarray(result)


def run_workload(w: Workload, n: int, repeat: int, warmup: int, gap_s: float, ceilings) -> str:
    """Build every candidate for ``w`` at size ``n``, check its answer, time them, return the table."""
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(n, dtype=np.float32) for _ in range(w.n_inputs)]
    expected = w.reference(*inputs)
    fns, notes = {}, []
    for name, make in CANDIDATES.items():
        try:
            fn = make(w, inputs)
            got = _as_numpy(fn())  # also compiles, outside the timed region
            if got.dtype != np.float32:
                raise Unavailable(f"returned {got.dtype}, expected float32")
            # tanh implementations differ by a few ulps; a wrong formula is off by far more.
            if not np.allclose(got, expected, rtol=1e-4, atol=1e-5):
                raise Unavailable(f"wrong answer (max abs err {np.max(np.abs(got - expected)):.3g})")
        except Unavailable as e:
            notes.append(f"  skipped {name}: {e}")
            continue
        fns[name] = fn
    results = time_interleaved(fns, repeat=repeat, warmup=warmup, gap_s=gap_s)
    ref = results.get(next(iter(CANDIDATES)))
    nbytes = w.bytes_moved(n)
    rows = []
    for name, r in results.items():
        rows.append({
            "impl": name,
            "median": format_time(r.median),
            "min": format_time(r.min),
            "p10-p90": f"{format_time(r.p10)} - {format_time(r.p90)}",
            "GB/s": nbytes / r.median / 1e9,
            "% triad": ceilings.percent_of_roofline(r.median, nbytes, 0) if ceilings else None,
            "x numpy (paired)": f"{r.paired_ratio(ref):.2f}x" if ref is not None else None,
            "inner": r.inner,
        })
    title = f"{w.name}, n={n} float32 ({nbytes / 2**20:.3g} MiB moved), {repeat} rounds"
    table = format_table(rows, ["impl", "median", "min", "p10-p90", "GB/s", "% triad",
                                "x numpy (paired)", "inner"])
    return "\n".join([title, table] + notes)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and print one table per (workload, size)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="timed rounds (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per candidate first")
    parser.add_argument("--gap", type=float, default=0.05, help="sleep before each timed block (s)")
    parser.add_argument("--sizes", nargs="+", default=[2**24, 2**12], type=parse_size,
                        help="element counts, e.g. 2^24 4096 (default 2^24 2^12)")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--no-ceilings", action="store_true",
                        help="skip the %% triad column (measuring ceilings the first time takes ~20 s)")
    args = parser.parse_args(argv)

    ceilings = None if args.no_ceilings else measure_ceilings()
    if ceilings is not None:
        print(f"triad bandwidth ceiling: {ceilings.triad_gbs:.1f} GB/s (cached; bench/ceilings.py --refresh)")
    print(f"{os.cpu_count()} cores; times are per call; ratios paired by round\n")
    for n in args.sizes:
        for key in args.workloads:
            print(run_workload(WORKLOADS[key], n, args.repeat, args.warmup, args.gap, ceilings))
            print()


if __name__ == "__main__":
    main()
