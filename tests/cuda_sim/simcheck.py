"""Helpers for the simulator tests: run a function on the cuda backend and on the
reference interpreter, and compare."""
from __future__ import annotations

import numpy as np

import jitgrad
from jitgrad import jit
from jitgrad.backends.cuda.array import DeviceArrayImpl


def run_both(f, *args, static_argnums=()):
    """(cuda results, reference results) of ``f(*args)`` as lists of numpy arrays."""
    cuda_out = jit(f, backend="cuda", static_argnums=static_argnums)(*args)
    ref_out = jit(f, backend="reference", static_argnums=static_argnums)(*args)
    cl, rl = jitgrad.tree.leaves(cuda_out), jitgrad.tree.leaves(ref_out)
    assert len(cl) == len(rl)
    for c in cl:
        assert isinstance(c, DeviceArrayImpl), type(c)
    return [np.asarray(c) for c in cl], [np.asarray(r) for r in rl]


def check(f, *args, rtol=1e-5, atol=1e-6, exact=False, static_argnums=()):
    """Assert the cuda backend matches the reference (bit for bit if ``exact``)."""
    cuda_out, ref_out = run_both(f, *args, static_argnums=static_argnums)
    for c, r in zip(cuda_out, ref_out):
        assert c.shape == r.shape, (c.shape, r.shape)
        assert c.dtype == r.dtype, (c.dtype, r.dtype)
        if exact or c.dtype.kind in "biu":
            np.testing.assert_array_equal(c, r)
        else:
            np.testing.assert_allclose(c, r, rtol=rtol, atol=atol, equal_nan=True)
    return cuda_out
