"""Device-side helpers that generated kernel modules import (``from ... import ld``).

Generated kernels are the same source on a real GPU and under numba's simulator; the
few things that must be spelled differently for the two live here:

* ``ld``: the math library. On a GPU it is ``numba.cuda.libdevice`` (``ld.expf`` is
  CUDA's accurate single-precision ``expf``); under the simulator it is a numpy shim
  with the same function names, computing in the same dtype (Python's ``math`` would
  compute in double precision and raise on overflow, where CUDA returns inf).
* bit reinterpretation (``bitcast_convert_type``): libdevice's ``float_as_int`` family
  on a GPU, numpy views under the simulator (same names on ``ld``).

Generated code calls only ``ld`` functions, never ``cuda.jit(device=True)`` helpers:
numba compiles a device function for the *current* GPU's compute capability, which
would make ``compile_ptx`` need a driver.

Everything else a kernel needs (wrap-around integer arithmetic, saturating float->int
casts, NaN-propagating max/min) is written inline by ``scalar.py`` with numba's typed
scalar constructors (``uint32(...)``), which behave the same on both targets.
"""
from __future__ import annotations

import numpy as np

import numba

# numba decides once, when it is first imported, whether numba.cuda is the simulator.
SIMULATED = bool(getattr(numba.config, "ENABLE_CUDASIM", 0))

if not SIMULATED:
    from numba.cuda import libdevice as ld  # noqa: F401  (re-exported to generated modules)

else:
    class _NumpyLibdevice:
        """The libdevice functions generated kernels call, computed with numpy scalars.

        Each takes and returns numpy scalars of the function's precision (``expf`` is
        float32, ``exp`` float64), with IEEE results (inf/nan) instead of exceptions;
        ``float_as_int`` and friends reinterpret bits as CUDA's do.
        """

        def __init__(self):
            unary = {
                "exp": np.exp, "exp2": np.exp2, "expm1": np.expm1, "log": np.log,
                "log1p": np.log1p, "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x),
                "cbrt": np.cbrt, "tanh": np.tanh, "sin": np.sin, "cos": np.cos, "tan": np.tan,
                "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh,
                "cosh": np.cosh, "asinh": np.arcsinh, "acosh": np.arccosh,
                "atanh": np.arctanh, "floor": np.floor, "ceil": np.ceil, "fabs": np.abs,
                "trunc": np.trunc, "rint": np.rint,
                "round": lambda x: np.sign(x) * np.floor(np.abs(x) + 0.5),
                "erf": _scipy_or_math("erf"), "lgamma": _scipy_or_math("gammaln"),
                "erfinv": _scipy_or_math("erfinv"),
            }
            binary = {"pow": np.power, "atan2": np.arctan2, "fmod": np.fmod,
                      "nextafter": np.nextafter}
            for name, fn in unary.items():
                setattr(self, name, _typed1(fn, np.float64))
                setattr(self, name + "f", _typed1(fn, np.float32))
            for name, fn in binary.items():
                setattr(self, name, _typed2(fn, np.float64))
                setattr(self, name + "f", _typed2(fn, np.float32))

        @staticmethod
        def float_as_int(x):
            return np.asarray(x, np.float32).view(np.int32)[()]

        @staticmethod
        def int_as_float(i):
            return np.asarray(i).astype(np.int32).view(np.float32)[()]

        @staticmethod
        def double_as_longlong(x):
            return np.asarray(x, np.float64).view(np.int64)[()]

        @staticmethod
        def longlong_as_double(i):
            return np.asarray(i).astype(np.int64).view(np.float64)[()]

    def _typed1(fn, dt):
        def call(x):
            with np.errstate(all="ignore"):
                return dt(fn(dt(x)))
        return call

    def _typed2(fn, dt):
        def call(x, y):
            with np.errstate(all="ignore"):
                return dt(fn(dt(x), dt(y)))
        return call

    def _scipy_or_math(name):
        try:
            from scipy import special
            return getattr(special, name)
        except ImportError:  # pragma: no cover - scipy is optional
            import math
            from ...ops.elementwise import _erf_inv
            if name == "erfinv":
                return lambda x: _erf_inv(np.asarray(x, np.float64))[()]
            fn = math.erf if name == "erf" else math.lgamma
            return lambda x: np.float64(fn(float(x))) if np.isfinite(x) else np.float64(
                fn(float(x)) if name == "erf" else np.inf)

    ld = _NumpyLibdevice()
