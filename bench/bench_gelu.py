"""tanh-GELU through ``jitgrad.jit(..., backend="cpu")`` with and without fast_math.

    python bench/bench_gelu.py [--size 2^24] [--repeat 15] [--no-jax]

GELU(x) = 0.5 x (1 + tanh(0.79788456 (x + 0.044715 x^3))) on float32 x ~ 3 N(0, 1), in one
process, steady state (compiled and warmed up first), interleaved round by round
(``jitgrad.benchmarking.time_interleaved``). Candidates:

* ``jit cpu fast_math``: the default, float32 tanh via ``jitgrad.backends.fastmath``;
* ``jit cpu libm``: the same program with ``jitgrad.config.fast_math`` off (libm ``tanhf``);
* ``numpy eager``: the same expression on numpy arrays (allocates its temporaries);
* ``jax.jit`` (when jax is installed and ``--no-jax`` is not given).

Each jitgrad call returns a freshly allocated output, as a user's call does. The flag is
part of jit's cache key, so the two jitgrad candidates set it before each call (a dict
write, microseconds); each finds its own compiled program. Ratios are medians of per-round
ratios against ``jit cpu fast_math`` (> 1 = slower).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numba  # noqa: E402

import jitgrad  # noqa: E402
import jitgrad.numpy as jnp  # noqa: E402
from jitgrad.benchmarking import format_table, time_interleaved  # noqa: E402
from jitgrad.benchmarking.report import format_time  # noqa: E402

C0, C1 = 0.79788456, 0.044715


def gelu_numpy(x):
    """numpy eager, float32 throughout."""
    f = np.float32
    return f(0.5) * x * (f(1) + np.tanh(f(C0) * (x + f(C1) * x ** 3)))


def _jitgrad_candidate(fast_math: bool, x: np.ndarray):
    jf = jitgrad.jit(lambda v: 0.5 * v * (1 + jnp.tanh(C0 * (v + C1 * v ** 3))), backend="cpu")

    def run():
        jitgrad.config.update("fast_math", fast_math)
        return jf(x)
    run()   # compile under this flag
    exe = list(jf._cache.values())[-1].executable
    marker = "rt.tanh_f32(" if fast_math else "np.tanh("
    assert marker in exe.source, "the generated kernel is not the one this candidate names"
    return run


def _jax_candidate(x: np.ndarray):
    try:
        import jax
        import jax.numpy as jjnp
    except ImportError:
        return None
    f = jax.jit(lambda v: 0.5 * v * (1 + jjnp.tanh(C0 * (v + C1 * v ** 3))))
    xd = jax.device_put(x)
    return lambda: f(xd).block_until_ready()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="2^24", help="elements (2^24 = 16M float32)")
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--no-jax", action="store_true")
    args = p.parse_args(argv)
    base, _, power = args.size.partition("^")
    n = int(base) ** int(power) if power else int(base)
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32) * np.float32(3)
    flag = jitgrad.config.fast_math
    try:
        cands = {"jit cpu fast_math": _jitgrad_candidate(True, x),
                 "jit cpu libm": _jitgrad_candidate(False, x),
                 "numpy eager": lambda: gelu_numpy(x)}
        if not args.no_jax:
            jax_run = _jax_candidate(x)
            if jax_run is not None:
                cands["jax.jit"] = jax_run
        # Same results up to float32 rounding (fast_math: tanh within 2 ulp).
        ref = gelu_numpy(x)
        for name in ("jit cpu fast_math", "jit cpu libm"):
            np.testing.assert_allclose(np.asarray(cands[name]()), ref, rtol=1e-5, atol=1e-6)
        res = time_interleaved(cands, repeat=args.repeat, warmup=2, gap_s=0.05)
    finally:
        jitgrad.config.update("fast_math", flag)
    print(f"tanh-GELU, n = {n} float32, numba {numba.__version__} "
          f"({numba.get_num_threads()} threads), numpy {np.__version__}, repeat {args.repeat}")
    ref_name = "jit cpu fast_math"
    rows = [{"candidate": k, "median": format_time(r.median), "min": format_time(r.min),
             "vs fast_math": "-" if k == ref_name else f"{r.paired_ratio(res[ref_name]):.2f}x"}
            for k, r in res.items()]
    print(format_table(rows, ["candidate", "median", "min", "vs fast_math"]))


if __name__ == "__main__":
    main()
