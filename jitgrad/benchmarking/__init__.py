"""Benchmarking foundation shared by bench/ scripts and the ``jitgrad bench`` CLI.

Deliberately independent of the rest of jitgrad (numpy, stdlib, lazily numba, optionally
threadpoolctl), so it can measure baselines and machine ceilings on its own.

- ``time_interleaved`` / ``TimingResult``: side-by-side timing with paired ratios.
- ``measure_ceilings`` / ``Ceilings``: triad/copy bandwidth and GEMM rates, cached per machine.
- ``format_table``: plain-text tables for reports.
"""
from .ceilings import Ceilings, cache_dir, machine_info, measure_ceilings
from .report import format_table, format_value
from .timing import TimingResult, block_until_ready, choose_inner, time_interleaved

__all__ = [
    "Ceilings", "TimingResult", "block_until_ready", "cache_dir", "choose_inner",
    "format_table", "format_value", "machine_info", "measure_ceilings", "time_interleaved",
]
