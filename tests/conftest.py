"""Shared fixtures: a float64 mode that always restores the flag, and quiet compile logs."""
import pytest

import jitgrad


@pytest.fixture
def x64():
    """Enable jax_enable_x64 for one test, restoring the previous value afterwards."""
    previous = jitgrad.config.jax_enable_x64
    jitgrad.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jitgrad.config.update("jax_enable_x64", previous)
