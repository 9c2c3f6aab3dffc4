"""Shared fixtures: a float64 mode that always restores the flag, and quiet compile logs.

In this process, ``jit`` defaults to the ``reference`` backend (the oracle): the core's tests
check semantics, and compiling each of them through numba would cost minutes. The CPU and
CUDA backends have their own tests, which name their backend and compare it with the
reference; the examples run in subprocesses on the real default (``cpu``). Set
``JITGRAD_PLATFORM`` to run the whole suite on another backend.
"""
import os

import pytest

import jitgrad

if "JITGRAD_PLATFORM" not in os.environ:
    jitgrad.config.update("jax_platform_name", "reference")

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
