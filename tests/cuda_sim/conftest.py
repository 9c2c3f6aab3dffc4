"""The cuda backend's tests, run on numba's CUDA simulator in their own process.

numba chooses the simulator once, when it is first imported, from NUMBA_ENABLE_CUDASIM;
so this directory is its own pytest run, started with the variable set::

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda_sim

The main test run skips this directory (tests/conftest.py) and runs that command in a
subprocess instead (tests/test_cuda_backend.py), so README's single test command covers
both. Kernels are launched on a grid of at most 2 blocks of 32 threads here (the
simulator runs a Python thread per CUDA thread), so keep shapes tiny.
"""
import os

import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") in ("", "0"):
    raise pytest.UsageError(
        "tests/cuda_sim must run with NUMBA_ENABLE_CUDASIM=1 set before Python starts: "
        "NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda_sim")

import numba  # noqa: E402

if not numba.config.ENABLE_CUDASIM:  # pragma: no cover - the variable was read too late
    raise pytest.UsageError("numba did not pick up NUMBA_ENABLE_CUDASIM=1")
