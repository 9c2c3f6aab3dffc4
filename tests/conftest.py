"""Shared fixtures: a float64 mode that always restores the flag, and quiet compile logs."""
import os

import pytest

import jitgrad

# tests/cuda_sim needs numba's CUDA simulator, which numba picks when it is first imported:
# it is its own pytest process (NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda_sim),
# started by tests/test_cuda_backend.py in the main run, which therefore skips it here.
if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") in ("", "0"):
    collect_ignore = ["cuda_sim"]


@pytest.fixture
def x64():
    """Enable jax_enable_x64 for one test, restoring the previous value afterwards."""
    previous = jitgrad.config.jax_enable_x64
    jitgrad.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jitgrad.config.update("jax_enable_x64", previous)
