"""Print this machine's ceilings: STREAM triad/copy bandwidth and BLAS GEMM rates.

    python bench/ceilings.py [--refresh] [--quick]

The numbers are cached per machine in the jitgrad cache directory (see
``jitgrad.benchmarking.ceilings.cache_dir``); ``--refresh`` measures again (~15 s).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Run from a source checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jitgrad.benchmarking import format_table, measure_ceilings  # noqa: E402
from jitgrad.benchmarking.ceilings import cache_path  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, get (or measure) the ceilings, print them as tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refresh", action="store_true", help="measure even if cached")
    parser.add_argument("--quick", action="store_true", help="small sizes (tests; not real ceilings)")
    args = parser.parse_args(argv)

    c = measure_ceilings(refresh=args.refresh, quick=args.quick)
    print(format_table([
        {"ceiling": "triad a=b+s*c (f32)", "value": c.triad_gbs, "unit": "GB/s"},
        {"ceiling": "copy a=b (f32)", "value": c.copy_gbs, "unit": "GB/s"},
        {"ceiling": "GEMM float32 (np.dot)", "value": c.gemm_f32_gflops, "unit": "GFLOP/s"},
        {"ceiling": "GEMM float64 (np.dot)", "value": c.gemm_f64_gflops, "unit": "GFLOP/s"},
    ], ["ceiling", "value", "unit"]))
    print()
    print(format_table([{"measurement": k, "value": v} for k, v in c.details.items()],
                       ["measurement", "value"]))
    print()
    m = c.machine
    print(f"machine: {m.get('cpu')} x{m.get('cores')} on {m.get('hostname')}, "
          f"numpy {m.get('numpy')}, numba {m.get('numba')}, BLAS {m.get('blas')}")
    print(f"measured at {c.measured_at}; cached in {cache_path(m, args.quick)}")
    load = c.details.get("load_avg_1min")
    if isinstance(load, (int, float)) and load > 0.5:
        print(f"note: load average was {load:.2f} while measuring; other processes make ceilings "
              f"pessimistic. Rerun with --refresh on a quiet machine.")


if __name__ == "__main__":
    main()
