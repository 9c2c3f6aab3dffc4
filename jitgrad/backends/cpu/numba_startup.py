"""numba's start-up, made cheaper where jitgrad can do so without changing what numba does.

numba imports ``numba.np.arraymath`` (with all its implementation registries) before it
first compiles or loads anything from its cache, and that module runs
``import scipy.linalg.cython_blas`` at import time, only to set a flag that its
``np.correlate``/``np.convolve`` check later. When scipy is installed this import pulls in
scipy.linalg and numpy.f2py: about 0.3 s of every process's first jit call, warm cache or
not. jitgrad calls numpy's own BLAS (``blas.py``) and never those two functions, so
``defer_scipy_probe`` imports arraymath with the probe disabled, then puts the real check
back and sets the flag from whether scipy is installed at all; numba's ``np.dot`` and
``np.linalg`` still run their own check when used. It is best effort: with another numba
whose internals differ, it does nothing.
"""
from __future__ import annotations

import importlib.util
import sys


def defer_scipy_probe() -> bool:
    """Import ``numba.np.arraymath`` without its scipy probe; True if it did so."""
    if "numba.np.arraymath" in sys.modules:
        return False
    try:
        from numba.np import linalg
        probe = linalg.ensure_blas
    except Exception:   # noqa: BLE001 - an optimisation never fails the backend
        return False
    linalg.ensure_blas = lambda: None
    try:
        from numba.np import arraymath
    except Exception:   # noqa: BLE001
        return False
    finally:
        linalg.ensure_blas = probe
    if not hasattr(arraymath, "_HAVE_BLAS"):
        return False
    arraymath.ensure_blas = probe
    arraymath._HAVE_BLAS = importlib.util.find_spec("scipy") is not None
    return True
